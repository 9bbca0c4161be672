"""edge settings, trunk codecs, number plan replacement

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 19:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("edges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("settings", sa.JSON(), server_default="{}", nullable=False))
    with op.batch_alter_table("trunks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("codecs", sa.JSON(), server_default="[]", nullable=False))
    with op.batch_alter_table("number_plans", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("replacement", sa.String(length=200), server_default="", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("number_plans", schema=None) as batch_op:
        batch_op.drop_column("replacement")
    with op.batch_alter_table("trunks", schema=None) as batch_op:
        batch_op.drop_column("codecs")
    with op.batch_alter_table("edges", schema=None) as batch_op:
        batch_op.drop_column("settings")
