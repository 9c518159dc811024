"""access: API tokens (and revoked JWT ids); a hearing's own court for token scopes

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('access_tokens',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=True),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('court', sa.String(length=256), nullable=True),
    sa.Column('room', sa.String(length=128), nullable=True),
    sa.Column('hearing', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('hearings') as batch:
        batch.add_column(sa.Column('court', sa.String(length=256), nullable=True))
    # hearings scheduled under a case take the case's court
    op.execute("UPDATE hearings SET court = (SELECT cases.court FROM cases WHERE cases.id = hearings.case_id) "
               "WHERE case_id IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('hearings') as batch:
        batch.drop_column('court')
    op.drop_table('access_tokens')
