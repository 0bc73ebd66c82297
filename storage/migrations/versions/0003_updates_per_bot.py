"""processed_updates keyed by bot: update ids are unique per bot only

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows from before are kept under bot 0; the first start adopts them for its own bot id
    # (storage.residents.adopt_update_claims), so a redelivery right after the upgrade is still
    # recognised.
    op.create_table('processed_updates_per_bot',
    sa.Column('bot_id', sa.BigInteger(), nullable=False),
    sa.Column('update_id', sa.BigInteger(), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('bot_id', 'update_id')
    )
    op.execute(
        'INSERT INTO processed_updates_per_bot (bot_id, update_id, processed_at) '
        'SELECT 0, update_id, processed_at FROM processed_updates'
    )
    with op.batch_alter_table('processed_updates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_processed_updates_processed_at'))
    op.drop_table('processed_updates')
    op.rename_table('processed_updates_per_bot', 'processed_updates')
    with op.batch_alter_table('processed_updates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_processed_updates_processed_at'), ['processed_at'], unique=False)


def downgrade() -> None:
    op.create_table('processed_updates_single',
    sa.Column('update_id', sa.BigInteger(), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('update_id')
    )
    op.execute(
        'INSERT INTO processed_updates_single (update_id, processed_at) '
        'SELECT update_id, max(processed_at) FROM processed_updates GROUP BY update_id'
    )
    with op.batch_alter_table('processed_updates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_processed_updates_processed_at'))
    op.drop_table('processed_updates')
    op.rename_table('processed_updates_single', 'processed_updates')
    with op.batch_alter_table('processed_updates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_processed_updates_processed_at'), ['processed_at'], unique=False)
