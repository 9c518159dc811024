"""search what was said: SQLite FTS5 (trigram) over the lines' text, PostgreSQL pg_trgm where allowed

Revision ID: 0005
Revises: 0004

SQLite: an external-content FTS5 table kept by triggers on ``utterances`` (keyed by its rowid:
a later migration that rebuilds ``utterances`` must recreate the triggers and run
``INSERT INTO utterance_fts(utterance_fts) VALUES('rebuild')``). PostgreSQL: a trigram GIN index
serves the same ILIKE the finder always runs; without the extension (no privilege) search still
works, by scanning.
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

SQLITE = [
    "CREATE VIRTUAL TABLE utterance_fts USING fts5(text, content='utterances', content_rowid='rowid', "
    "tokenize='trigram')",
    "CREATE TRIGGER utterances_fts_insert AFTER INSERT ON utterances BEGIN "
    "INSERT INTO utterance_fts(rowid, text) VALUES (new.rowid, new.text); END",
    "CREATE TRIGGER utterances_fts_delete AFTER DELETE ON utterances BEGIN "
    "INSERT INTO utterance_fts(utterance_fts, rowid, text) VALUES ('delete', old.rowid, old.text); END",
    "CREATE TRIGGER utterances_fts_update AFTER UPDATE OF text ON utterances BEGIN "
    "INSERT INTO utterance_fts(utterance_fts, rowid, text) VALUES ('delete', old.rowid, old.text); "
    "INSERT INTO utterance_fts(rowid, text) VALUES (new.rowid, new.text); END",
    "INSERT INTO utterance_fts(utterance_fts) VALUES ('rebuild')",
]


def _fts5_trigram() -> bool:
    """Whether the SQLite library Python uses has FTS5 with the trigram tokenizer."""
    import sqlite3

    try:
        sqlite3.connect(":memory:").execute("CREATE VIRTUAL TABLE probe USING fts5(x, tokenize='trigram')")
        return True
    except sqlite3.OperationalError:
        return False


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        if _fts5_trigram():  # else (no FTS5, or SQLite < 3.34): the finder scans instead
            for statement in SQLITE:
                op.execute(statement)
    elif bind.dialect.name == "postgresql":
        available = bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")).scalar()
        if available:
            try:
                with bind.begin_nested():
                    bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
                    bind.execute(sa.text("CREATE INDEX ix_utterances_text_trgm ON utterances "
                                         "USING gin (text gin_trgm_ops)"))
            except sa.exc.DBAPIError:
                pass  # no privilege for the extension: the finder's ILIKE scans instead


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS utterances_fts_{name}")
        op.execute("DROP TABLE IF EXISTS utterance_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_utterances_text_trgm")
