"""The database underneath the record and token stores (courtscribe/db.py)."""
import multiprocessing
import uuid

import pytest
from sqlalchemy import inspect

from courtscribe.db import connect


def _open(url: str, barrier) -> None:
    barrier.wait(60)
    connect(url).dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_processes_opening_a_new_database_at_once_all_start_on_one_schema(backend, tmp_path, request):
    """The gateway replicas of a cluster start together on a database nobody has opened yet: each
    brings its schema up to date in turn, and every one starts (none creates a table the other just
    made: "table cases already exists" stopped a replica before)."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'new.db'}"
    else:
        url = request.getfixturevalue("postgres").createdb(f"fresh_{uuid.uuid4().hex[:10]}")
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_open, args=(url, barrier)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 4
    engine = connect(url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {"cases", "hearings", "ledger", "access_tokens", "alembic_version"} <= tables, tables


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_migrations_make_the_schema_the_models_describe(backend, tmp_path, request):
    """What alembic built and what the code reads and writes agree, column by column (a NOT NULL
    the models said and a migration did not, a length one changed and the other kept)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import courtscribe.access.tokens  # noqa: F401 - their tables are in Base's metadata
    import courtscribe.records.db  # noqa: F401
    from courtscribe.db import Base

    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'new.db'}"
    else:
        url = request.getfixturevalue("postgres").createdb(f"schema_{uuid.uuid4().hex[:10]}")
    engine = connect(url)
    with engine.connect() as c:
        diffs = compare_metadata(MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata)
    engine.dispose()
    search = ("utterance_fts", "ix_utterances_text_trgm")  # the search index's own (0005), not the models'
    assert [d for d in diffs if not _named(d).startswith(search)] == []


def _named(diff) -> str:
    """The table or index a compare_metadata difference is about."""
    first = diff[0] if isinstance(diff, list) else diff
    thing = first[1] if len(first) > 1 else None
    return str(getattr(thing, "name", "") or "")
