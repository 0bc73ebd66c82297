"""published releases per area

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 18:12:28.750428
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('area_releases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('area_code', sa.String(length=64), nullable=False),
    sa.Column('round_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('cut_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started', sa.Integer(), nullable=False),
    sa.Column('final', sa.Boolean(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['round_id'], ['rounds.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('area_code', 'round_id', 'seq')
    )
    op.create_table('release_series',
    sa.Column('area_code', sa.String(length=64), nullable=False),
    sa.Column('round_id', sa.Integer(), nullable=False),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('comments', sa.JSON(), nullable=False),
    sa.Column('closed', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['round_id'], ['rounds.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('area_code', 'round_id')
    )
    op.create_table('release_charts',
    sa.Column('release_id', sa.Integer(), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('png', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['release_id'], ['area_releases.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('release_id', 'language')
    )
    with op.batch_alter_table('answers', schema=None) as batch_op:
        batch_op.create_index('ix_answers_text_answered_at', ['answered_at'], unique=False, sqlite_where=sa.text('text_language IS NOT NULL'), postgresql_where=sa.text('text_language IS NOT NULL'))

    with op.batch_alter_table('digests_sent', schema=None) as batch_op:
        batch_op.add_column(sa.Column('release_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_digests_sent_release_id'), ['release_id'], unique=False)
        batch_op.create_foreign_key('fk_digests_sent_release_id', 'area_releases', ['release_id'], ['id'], ondelete='SET NULL')



def downgrade() -> None:
    with op.batch_alter_table('digests_sent', schema=None) as batch_op:
        batch_op.drop_constraint('fk_digests_sent_release_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_digests_sent_release_id'))
        batch_op.drop_column('release_id')

    with op.batch_alter_table('answers', schema=None) as batch_op:
        batch_op.drop_index('ix_answers_text_answered_at', sqlite_where=sa.text('text_language IS NOT NULL'), postgresql_where=sa.text('text_language IS NOT NULL'))

    op.drop_table('release_charts')
    op.drop_table('release_series')
    op.drop_table('area_releases')
