"""pairing tokens and edge revocation

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 18:16:39.079180
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pairing_tokens",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("edge_id", sa.String(length=36), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["edge_id"],
            ["edges.id"],
            name=op.f("fk_pairing_tokens_edge_id_edges"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisations.id"],
            name=op.f("fk_pairing_tokens_org_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pairing_tokens")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_pairing_tokens_token_sha256")),
    )
    with op.batch_alter_table("pairing_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pairing_tokens_edge_id"), ["edge_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_pairing_tokens_org_id"), ["org_id"], unique=False)

    with op.batch_alter_table("edges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("edges", schema=None) as batch_op:
        batch_op.drop_column("revoked_at")

    with op.batch_alter_table("pairing_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pairing_tokens_org_id"))
        batch_op.drop_index(batch_op.f("ix_pairing_tokens_edge_id"))

    op.drop_table("pairing_tokens")
