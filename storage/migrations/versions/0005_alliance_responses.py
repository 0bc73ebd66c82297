"""alliance responses to residents and their reactions

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 17:10:33.452847
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alliance_responses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('alliance_id', sa.Integer(), nullable=True),
    sa.Column('area_code', sa.String(length=64), nullable=False),
    sa.Column('round_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('translations', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reviewed_by', sa.String(length=64), nullable=True),
    sa.Column('review_note', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['alliance_id'], ['alliances.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['round_id'], ['rounds.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('alliance_responses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alliance_responses_alliance_id'), ['alliance_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_alliance_responses_round_id'), ['round_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_alliance_responses_status'), ['status'], unique=False)

    op.create_table('alliance_response_recipients',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('response_id', sa.Integer(), nullable=False),
    sa.Column('resident_id', sa.Integer(), nullable=True),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('translated', sa.Boolean(), nullable=False),
    sa.Column('queued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reaction', sa.String(length=16), nullable=True),
    sa.Column('reacted_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['response_id'], ['alliance_responses.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('response_id', 'resident_id')
    )
    with op.batch_alter_table('alliance_response_recipients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alliance_response_recipients_resident_id'), ['resident_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('alliance_response_recipients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alliance_response_recipients_resident_id'))

    op.drop_table('alliance_response_recipients')
    with op.batch_alter_table('alliance_responses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alliance_responses_status'))
        batch_op.drop_index(batch_op.f('ix_alliance_responses_round_id'))
        batch_op.drop_index(batch_op.f('ix_alliance_responses_alliance_id'))

    op.drop_table('alliance_responses')
