"""a hearing's own 案由 and parties: the clerk's for this hearing, beside the case's first ones

Revision ID: 0006
Revises: 0005

Null in both (every hearing made before): the record shows the case's, as it always did.
"""
from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('hearings') as batch:
        batch.add_column(sa.Column('cause', sa.String(length=256), nullable=True))
        batch.add_column(sa.Column('parties', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('hearings') as batch:
        batch.drop_column('parties')
        batch.drop_column('cause')
