"""Starting the service: what is checked before uvicorn runs (the record store opens, the engines
load, the data folder is writable, no token checks only on a loopback address), so that a wrong
setting is one line naming it (``StartError``), and the line saying what the server really uses."""
from __future__ import annotations

from pathlib import Path

from .config import Settings, masked_url, variable
from .logs import get_logger

log = get_logger(__name__)


class StartError(Exception):
    """The service cannot start as configured: the message names the setting and what it takes."""


def application(settings: Settings):
    """The app with its record store open and its engines loaded before uvicorn starts: a database
    that cannot be reached, a missing model or a data folder that cannot be written is then one line
    naming the setting (inside uvicorn's start-up each was a traceback)."""
    from sqlalchemy.exc import ArgumentError, OperationalError

    from .components import load_components
    from .models import ModelError
    from .records.store import RecordStore
    from .seal import SealKeyError, load_key
    from .server.app import InsecureBind, create_app

    where = variable("database_url") if settings.database_url else variable("data_dir")
    try:
        store = RecordStore(settings.records_url, load_key(settings))  # quick: before the models
        components = load_components(settings)
        application = create_app(settings, components=components, records=store)
    except OperationalError as err:
        raise StartError(f"cannot open the record store {masked_url(settings.records_url)} (from {where}): "
                         f"{str(err.orig or err).splitlines()[0]}") from None
    except ArgumentError as err:
        raise StartError(f"{variable('database_url')} is not a database URL SQLAlchemy can open ({err}); "
                         "e.g. postgresql+psycopg://user@host/courtscribe") from None
    except (ModelError, SealKeyError, InsecureBind) as err:
        raise StartError(str(err)) from None
    except OSError as err:
        raise StartError(_unusable(settings, err)) from None
    _log_start(settings, components)
    return application


def _unusable(settings: Settings, err: OSError) -> str:
    """An OSError at start-up, said as the setting behind it where it is the data folder."""
    path = Path(err.filename or "")
    if path == settings.data_dir or settings.data_dir in path.parents:
        return (f"{variable('data_dir')}={settings.data_dir} cannot be used: {err.strerror} "
                f"({path}); give a directory courtscribe can create and write")
    return f"{path}: {err.strerror}" if err.filename else str(err)


def _log_start(settings: Settings, components) -> None:
    """One line with what this server really uses: a data folder, database, engine or font other
    than court IT meant shows here, not weeks later in the records."""
    from .records.fonts import FontMissing, font_file

    try:
        font = str(font_file())
    except FontMissing:
        font = "none (printed records fail: courtscribe models verify says why)"
    log.info("courtscribe starts", data_dir=str(settings.data_dir),
             records=masked_url(settings.records_url), engine=components.engine.name,
             model=components.engine.model_name, font=font)


def loopback_only(host: str) -> None:
    """Without token checks only a loopback address is served (``create_app`` checks it again)."""
    from .access.guard import is_loopback

    if not is_loopback(host):
        raise StartError(f"--insecure-no-auth is refused on {host}: loopback addresses only")


DRAIN_S = 15.0  # SIGTERM: how long the audio sockets get for their last finals (then 10 s for requests)


def court_server(config, *, loopback: bool):
    """The uvicorn server: on SIGTERM its audio sockets first finish what they received (the last
    finals reach their clients, then 1012: come back) before uvicorn drops the connections;
    ``loopback``: without tokens, it stops when it finds itself bound beyond loopback (``refused``)."""
    import uvicorn

    from .access.guard import is_loopback
    from .server.sockets import Stopping

    class CourtServer(uvicorn.Server):
        refused: str | None = None

        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            bound = [sock.getsockname()[0] for srv in getattr(self, "servers", []) for sock in (srv.sockets or [])]
            wide = [a for a in bound if not is_loopback(a)]
            if loopback and wide:
                self.refused = (f"--insecure-no-auth is refused: the server was bound to {', '.join(wide)}, "
                                "which other hosts can reach; loopback addresses only")
                self.should_exit = True

        async def shutdown(self, sockets=None) -> None:
            stopping = getattr(config.app.state, "stopping", None)
            if isinstance(stopping, Stopping) and not self.force_exit:
                for server in getattr(self, "servers", []):
                    server.close()  # no new connection while the sources finish
                await stopping.finish(DRAIN_S)
            await super().shutdown(sockets)
    return CourtServer(config)


def serve_cluster(address: str, config: Path | None, settings: Settings, engine: str | None,
                  insecure: bool) -> None:
    """The service on a Ray cluster (``cluster/app.py``), with the same rules as in one process."""
    from .cluster.app import serve_cluster as on_ray

    if insecure:
        loopback_only(settings.host)
    if settings.ssl_certfile:
        raise StartError("TLS on a cluster terminates at its ingress (load balancer, Kubernetes "
                         "Ingress), not in courtscribe")
    overrides: dict = {"engine": engine} if engine else {}
    if insecure:
        overrides["insecure_no_auth"] = True
    # the Serve config's address stands unless the command line or the environment names one
    given = settings.model_fields_set
    on_ray(address, config, host=settings.host if "host" in given else None,
           port=settings.port if "port" in given else None, settings=overrides)
