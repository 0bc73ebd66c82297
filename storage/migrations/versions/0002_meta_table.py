"""meta table: facts about the data, first the fingerprint of the pseudonym key

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 16:02:41.843935
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The fingerprint itself is written by `buurtstem run` at its first start (it knows the key).
    op.create_table('meta',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=200), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )


def downgrade() -> None:
    op.drop_table('meta')
