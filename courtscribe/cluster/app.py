"""The courtscribe Serve application and ``courtscribe serve --cluster``.

One YAML (a Ray Serve config file: ``deploy/serve-cpu.yaml``, ``deploy/serve-gpu.yaml``) says how
many replicas of each deployment run, with what CPU/GPU share, autoscaling and batching. The same
file goes to ``serve deploy`` or a KubeRay RayService; ``courtscribe serve --cluster`` deploys it
through Serve's own config path (what ``serve run config.yaml`` does), so there is one way to
describe a deployment, not two.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import yaml

from ..logs import get_logger
from .proxy import CALLBACK

log = get_logger(__name__)
APP_NAME = "courtscribe"
CONFIGS = Path(__file__).resolve().parent / "configs"
# Nothing leaves the machine: Ray's usage stats and pyannote's telemetry are off in every worker.
QUIET_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "PYANNOTE_METRICS_ENABLED": "0", "HF_HUB_OFFLINE": "1",
             "MODELSCOPE_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


def build(args: dict[str, Any]):
    """Serve application builder (``import_path: courtscribe.cluster.app:build``). ``args.settings``
    are courtscribe settings for every replica (else each reads its COURTSCRIBE_* environment)."""
    from ..config import Settings
    from .bus import Events
    from .deployments import VAD, Gateway, OfflineASR, OnlineASR, Punctuation, SpeakerEmbedding

    settings = dict((args or {}).get("settings") or {})
    chosen = Settings(**settings)
    # FunASR's finals are punctuated by a deployment of their own; Whisper writes its own marks
    offline = OfflineASR.bind(settings, Punctuation.bind(settings)) if chosen.engine == "funasr" else \
        OfflineASR.bind(settings)
    vad = VAD.bind(settings) if chosen.stream_vad == "deployment" else None
    return Gateway.bind(settings, offline, OnlineASR.bind(settings), SpeakerEmbedding.bind(settings), vad,
                        Events.bind())


def load_config(path: Path, *, host: str | None = None, port: int | None = None,
                settings: dict[str, Any] | None = None) -> dict:
    """The Serve config file, with the command line's address and settings folded in; the gateways
    are told the address their proxies serve (the allowed Host names follow from it)."""
    config = yaml.safe_load(Path(path).read_text())
    http = config.setdefault("http_options", {})
    http["host"] = host or http.get("host") or "127.0.0.1"
    http["port"] = port or http.get("port") or 8000
    for app in config.get("applications", []):
        if app.get("name") == APP_NAME:
            args = app.setdefault("args", {})
            args["settings"] = {**(args.get("settings") or {}), **(settings or {}),
                                "host": http["host"], "port": http["port"]}
        env = app.setdefault("runtime_env", {}).setdefault("env_vars", {})
        for key, value in QUIET_ENV.items():
            env.setdefault(key, value)
    return config


def connect(address: str, *, num_cpus: int | None = None) -> None:
    """``ray``: join the cluster this machine belongs to, else start one here; ``ray://…`` or
    ``host:port``: join that cluster."""
    os.environ.update({k: v for k, v in QUIET_ENV.items() if k not in os.environ})
    # Serve's HTTP proxies (processes of the cluster started here) apply our proxy rules
    os.environ.setdefault("RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH", CALLBACK)
    import ray

    if ray.is_initialized():
        return
    kw: dict[str, Any] = {"namespace": "serve", "include_dashboard": False, "log_to_driver": False}
    try:
        if address in ("ray", "local"):
            try:
                ray.init(address="auto", namespace="serve", log_to_driver=False)
            except ConnectionError:
                _start_local(num_cpus, kw)
        else:
            ray.init(address=address, namespace="serve", log_to_driver=False)
    finally:
        private_token_file()


def _start_local(num_cpus: int | None, kw: dict[str, Any], tries: int = 2) -> None:
    """Start a one-machine cluster. On a busy machine Ray's raylet can miss its fixed 30 s to
    register ("The current node timed out during startup"): the half-started processes are
    stopped and the start is tried again, as court IT would by hand."""
    import ray

    for attempt in range(1, tries + 1):
        try:
            ray.init(num_cpus=num_cpus, **kw)
            return
        except Exception as err:  # noqa: BLE001 - Ray raises a bare Exception for this
            ray.shutdown()
            _stop_session(Path(kw.get("_temp_dir") or "/tmp/ray") / "session_latest")
            if attempt == tries or "timed out during startup" not in str(err):
                raise
            log.warning("local Ray cluster did not start in time; starting it again", error=str(err))


def _stop_session(latest: Path) -> None:
    """Stop what a failed start left running (its GCS, monitor, dashboard): ``ray.shutdown`` does
    not know them, since ``ray.init`` never returned. They name their session's directory."""
    import psutil

    if not latest.exists():
        return
    session = str(latest.resolve())
    for p in psutil.process_iter(["cmdline"]):
        try:
            if p.pid != os.getpid() and any(session in part for part in p.info["cmdline"] or ()):
                p.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue


RAY_TOKEN_FILE = Path.home() / ".ray" / "auth_token"


def private_token_file(path: Path = RAY_TOKEN_FILE) -> None:
    """Ray writes its cluster token (the key to run code on every node) readable by all local users:
    owner only."""
    if path.exists() and path.stat().st_mode & 0o077:
        path.chmod(0o600)


def deploy(config: dict, *, timeout_s: float = 600.0, wait: bool = True) -> None:
    """Deploy a Serve config (dict) on the connected cluster and wait until it is running (with
    ``wait=False``, return once Serve has it: the caller does other work, then ``wait_running``)."""
    from ray.serve._private import api as serve_api
    from ray.serve.config import ProxyLocation, gRPCOptions
    from ray.serve.schema import ServeDeploySchema

    schema = ServeDeploySchema.model_validate(config)
    client = serve_api.serve_start(http_options=schema.http_options.model_dump(),
                                   proxy_location=schema.proxy_location or ProxyLocation.EveryNode,
                                   grpc_options=gRPCOptions(**schema.grpc_options.model_dump()))
    client.deploy_apps(schema, _blocking=False)
    if wait:
        wait_running(timeout_s)


def wait_running(timeout_s: float = 600.0) -> None:
    """Until the courtscribe application runs; its failure to deploy raises with Serve's message."""
    from ray import serve

    deadline = time.monotonic() + timeout_s
    while True:
        app = serve.status().applications.get(APP_NAME)
        state = getattr(app, "status", None)
        if state == "RUNNING":
            return
        if state in ("DEPLOY_FAILED", "UNHEALTHY"):
            raise RuntimeError(f"courtscribe did not deploy ({state}): {app.message}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"courtscribe not running after {timeout_s:.0f} s (state {state})")
        time.sleep(1.0)


def serve_cluster(address: str, config_path: Path | None, *, host: str | None, port: int | None,
                  settings: dict[str, Any], num_cpus: int | None = None) -> None:
    """``courtscribe serve --cluster …``: deploy, then keep the driver alive until interrupted.
    ``host``/``port`` None: the Serve config's (its gateways are told the address they serve)."""
    from ray import serve

    connect(address, num_cpus=num_cpus)
    config = load_config(config_path or CONFIGS / "serve-cpu.yaml", host=host, port=port, settings=settings)
    deploy(config)
    http = config["http_options"]
    log.info("courtscribe is serving on the Ray cluster", url=f"http://{http['host']}:{http['port']}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        serve.shutdown()
