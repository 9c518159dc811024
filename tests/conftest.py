"""Shared fixtures: the real test data beside the checkout, and the embedded models loaded once."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("COURTSCRIBE_TEST_DATA", ROOT.parent / "shared" / "data"))
ZH = DATA / "zh-smoke"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (ZH / "manifest.jsonl").exists():
        pytest.fail(f"test data not found at {DATA}: the shared/ folder must sit beside the checkout")
    return DATA


@pytest.fixture(scope="session")
def manifest(data_dir) -> dict[str, dict]:
    rows = [json.loads(line) for line in (ZH / "manifest.jsonl").read_text().splitlines() if line]
    return {r["audio"]: r for r in rows}


@pytest.fixture(scope="session")
def components():
    """The embedded default pipeline (Whisper base + silero VAD), loaded once for the session."""
    from courtscribe.config import Settings
    from courtscribe.transcribe import load_components

    return load_components(Settings())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, **env_extra: str) -> tuple[subprocess.Popen, str]:
    """`courtscribe serve` in a real process on a free loopback port, data under ``home``. Token
    checks are off (loopback only) unless ``COURTSCRIBE_INSECURE_NO_AUTH="0"``: tests of access
    control turn them on (tests/test_access.py)."""
    port = free_port()
    log = open(home / "server.log", "a+")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COURTSCRIBE_DATA_DIR": str(home / "data"),
           "COURTSCRIBE_INSECURE_NO_AUTH": "1", **env_extra}
    proc = subprocess.Popen([sys.executable, "-m", "courtscribe", "serve", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    cert = env.get("COURTSCRIBE_SSL_CERTFILE")  # TLS: https:// and wss://, trusting that certificate
    url = f"{'https' if cert else 'http'}://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            pytest.fail(f"server exited: {log.read()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1, verify=cert or True).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    pytest.fail("server did not start in 120 s")


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    """`courtscribe ARGS` as court IT runs it, on the data under ``home``."""
    env = {"COURTSCRIBE_DATA_DIR": str(home / "data"), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "courtscribe", *args], capture_output=True, text=True, env=env,
                          timeout=60)


def issue(home: Path, role: str, name: str, *scope: str) -> str:
    """A new token from the admin CLI (`courtscribe tokens issue`)."""
    out = cli(home, "tokens", "issue", "--role", role, "--name", name, "--json", *scope)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["token"]


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The service as `make serve` runs it (2 live streams at most, 5 s idle timeout)."""
    home = tmp_path_factory.mktemp("server")
    proc, url = start_server(home, COURTSCRIBE_MAX_STREAMS="2", COURTSCRIBE_IDLE_TIMEOUT_S="5")
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    assert "Traceback" not in (home / "server.log").read_text(), "the server logged a traceback"


def _run_as_postgres(args: list, **kw) -> None:
    """PostgreSQL refuses to run as root: the test cluster runs as the postgres user there."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run(prefix + [str(a) for a in args], check=True, capture_output=True, **kw)


class PgServer:
    """A real PostgreSQL server on loopback, started for this test run (Debian's postgresql); tests
    of outages stop and start it."""

    def __init__(self, bindir: Path, root: Path):
        self.bindir, self.root, self.data, self.port = bindir, root, root / "data", free_port()
        _run_as_postgres([bindir / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "-E", "UTF8",
                          "--no-sync"])
        self.start()

    def start(self) -> None:
        _run_as_postgres([self.bindir / "pg_ctl", "-D", self.data, "-l", self.root / "server.log", "-w", "-o",
                          f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off", "start"])

    def stop(self) -> None:
        _run_as_postgres([self.bindir / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop"])

    def createdb(self, name: str) -> str:
        _run_as_postgres([self.bindir / "createdb", "-h", "127.0.0.1", "-p", self.port, "-U", "postgres", name])
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="session")
def postgres():
    import glob
    import shutil
    import tempfile

    initdb = shutil.which("initdb") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))), None)
    if initdb is None:
        pytest.skip("PostgreSQL is not installed on this machine (Debian: apt-get install postgresql); "
                    "the PostgreSQL runs of the record-store tests are skipped")
    root = Path(tempfile.mkdtemp(prefix="courtscribe-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    server = PgServer(Path(os.path.realpath(initdb)).parent, root)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(postgres):
    return postgres.createdb("courtscribe_test")


# Counts the fuzz tests collect (tests/test_fuzz.py); printed at the end of every run, beside pass/fail.
FUZZ_COUNTS: dict[str, dict] = {}


def pytest_terminal_summary(terminalreporter):
    if FUZZ_COUNTS:
        terminalreporter.section("fuzzing: inputs tried, server errors and crashes")
        for name, counts in FUZZ_COUNTS.items():
            terminalreporter.write_line(f"{name}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
