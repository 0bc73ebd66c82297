"""alliance digests pause while the bot is out of the group

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 08:08:43.070944
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('alliances', schema=None) as batch_op:
        batch_op.add_column(sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('alliances', schema=None) as batch_op:
        batch_op.drop_column('removed_at')
