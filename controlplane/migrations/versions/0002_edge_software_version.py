"""edge software version

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 18:09:10.434224
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    with op.batch_alter_table("edges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("software_version", sa.String(length=64), nullable=True))


def downgrade() -> None:

    with op.batch_alter_table("edges", schema=None) as batch_op:
        batch_op.drop_column("software_version")
