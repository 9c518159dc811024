"""cases are keyed by (court, case number): another court's case is never found or echoed

Revision ID: 0004
Revises: 0003
"""
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}  # names SQLite's unnamed UNIQUE(case_number)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table('cases', naming_convention=NAMING) as batch:
            batch.drop_constraint('uq_cases_case_number', type_='unique')
            batch.create_unique_constraint('uq_cases_court_case_number', ['court', 'case_number'])
    else:
        op.drop_constraint('cases_case_number_key', 'cases', type_='unique')
        op.create_unique_constraint('uq_cases_court_case_number', 'cases', ['court', 'case_number'])


def downgrade() -> None:
    with op.batch_alter_table('cases') as batch:
        batch.drop_constraint('uq_cases_court_case_number', type_='unique')
        batch.create_unique_constraint('cases_case_number_key', ['case_number'])
