"""flags on lines: speech without usable text is an 'unrecognized' line (asr/coverage.py)

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('utterances') as batch:
        batch.add_column(sa.Column('flags', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('utterances') as batch:
        batch.drop_column('flags')
