"""Typed access to what the running server holds: routes and sockets ask here, never
``request.app.state`` directly, so what each one needs is named and typed in one place. ``access``
exists from ``create_app`` on; the rest once start-up has built it (services.py)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

if TYPE_CHECKING:  # the types only: importing them here would tie every route module to all of them
    from ..access.guard import Access
    from ..config import Settings
    from ..records.service import Records
    from ..records.store import RecordStore
    from ..streaming.jobs import Jobs
    from ..streaming.live import LiveHearings
    from ..components import Components
    from .services import Services
    from .files import FileWork
    from .sockets import Stopping


def access(conn: HTTPConnection) -> Access:
    return conn.app.state.access


def stopping(conn: HTTPConnection) -> Stopping:
    """Whether the server is stopping, for its audio sockets (an app made without one: never)."""
    from .sockets import Stopping

    state = conn.app.state
    if getattr(state, "stopping", None) is None:
        state.stopping = Stopping()
    return state.stopping


def services(conn: HTTPConnection) -> Services:
    return conn.app.state.services


def settings(conn: HTTPConnection) -> Settings:
    return services(conn).settings


def components(conn: HTTPConnection) -> Components:
    return services(conn).components


def store(conn: HTTPConnection) -> RecordStore:
    return services(conn).records


def live(conn: HTTPConnection) -> LiveHearings:
    return services(conn).live


def jobs(conn: HTTPConnection) -> Jobs:
    return services(conn).jobs


def files(conn: HTTPConnection) -> FileWork:
    """The one file pipeline (uploads, jobs, FunASR offline) and its workers."""
    return services(conn).files


def records(conn: HTTPConnection) -> Records:
    """Sign, verify, export: the record rules the routes share with ``courtscribe records``."""
    from ..records.service import Records

    return Records(store(conn), access(conn).audit, archive(conn))


def archive(conn: HTTPConnection) -> Path:
    """The folder of the hearings' audio (records/archive.py)."""
    return services(conn).archive
