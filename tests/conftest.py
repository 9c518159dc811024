"""Shared fixtures: the real test data beside the checkout, and the embedded models loaded once."""
from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import pytest

import browser as browser_tools

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("COURTSCRIBE_TEST_DATA", ROOT.parent / "shared" / "data"))
ZH = DATA / "zh-smoke"
# The room front end (WPE by default) has tests of its own on every path (test_frontend.py, with the
# setting named there); the rest of the suite checks behaviour on the audio as it came, which keeps
# it within its 15 minutes on 2 cores (WPE costs ~6 % of real time on every decode).
os.environ.setdefault("COURTSCRIBE_FRONTEND", "none")


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
    from courtscribe.components import load_components

    return load_components(Settings())


@pytest.fixture(scope="session")
def funasr_models(tmp_path_factory) -> Path:
    """Tiny random-weight models of FunASR's own classes (streaming Paraformer, SeACo-Paraformer,
    CT-punc), as the production loader finds them in COURTSCRIBE_MODEL_DIR."""
    from courtscribe.models.random_init import write_all

    return write_all(tmp_path_factory.mktemp("funasr-models"), size="tiny")


@pytest.fixture(scope="session")
def funasr_engine(funasr_models, tmp_path_factory):
    """The production FunASR engine on those models, loaded through ``load_engine``."""
    from courtscribe.config import Settings
    from courtscribe.models import default_registry
    from courtscribe.components import load_engine

    settings = Settings(engine="funasr", model_dir=funasr_models, model_cache_dir=tmp_path_factory.mktemp("cache"))
    return load_engine(settings, default_registry(settings))


@pytest.fixture(scope="session")
def funasr_server(funasr_models, tmp_path_factory):
    """`courtscribe serve` on the production engine (those models), shared by the FunASR tests."""
    home = tmp_path_factory.mktemp("funasr-server")
    proc, url = start_server(home, COURTSCRIBE_ENGINE="funasr", COURTSCRIBE_MODEL_DIR=str(funasr_models))
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    assert "Traceback" not in (home / "server.log").read_text(), "the server logged a traceback"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, port: int | None = None, **env_extra: str) -> tuple[subprocess.Popen, str]:
    """`courtscribe serve` in a real process on a free loopback port (or ``port``: a restart), data
    under ``home``. Token checks are off (loopback only) unless ``COURTSCRIBE_INSECURE_NO_AUTH="0"``:
    tests of access control turn them on (tests/test_access.py)."""
    port = port or free_port()
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
    return issue_tokens(home, token=(role, name, *scope))["token"]


_ISSUE_MANY = """
import json, sys
from typer.testing import CliRunner
from courtscribe.cli import app
out = {}
for key, args in json.loads(sys.argv[1]).items():
    r = CliRunner().invoke(app, ["tokens", "issue", "--json", *args])
    if r.exit_code:
        sys.exit(r.output)
    out[key] = json.loads(r.stdout)["token"]
print(json.dumps(out))
"""


def issue_tokens(home: Path, **specs: tuple[str, ...]) -> dict[str, str]:
    """Several tokens from the same `courtscribe tokens issue` command, run in one process (one
    interpreter start instead of one per token): ``name=(role, holder, *scope)``."""
    args = {k: ["--role", role, "--name", holder, *scope] for k, (role, holder, *scope) in specs.items()}
    env = {"COURTSCRIBE_DATA_DIR": str(home / "data"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", _ISSUE_MANY, json.dumps(args)], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


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


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """A record store on SQLite and on the session's PostgreSQL server (tests run once on each)."""
    from courtscribe.records.store import RecordStore

    url = f"sqlite:///{tmp_path / 'records.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    s = RecordStore(url)
    yield s
    s.close()


# -- One local Ray cluster for the Ray tests -------------------------------------------------------
# Starting Ray and Serve (GCS, raylet, controller, proxy) costs tens of seconds on a busy machine, and
# an idle cluster keeps ~0.4 of a core busy. The modules marked `ray` share one cluster and one Serve
# instance (one HTTP port): each deploys its application on it and deletes it when done; the cluster
# stops after the last consecutive `ray` test, so it neither starts twice nor idles through the rest.
class RayCluster:
    port: int | None = None

    @classmethod
    def serve_port(cls) -> int:
        """The port Serve's proxy listens on, the local cluster started (or joined) first."""
        import ray

        from courtscribe.cluster import app as cluster_app

        if cls.port is None or not ray.is_initialized():
            # Ray starts its workers at nice 15: beside the other pytest worker the replicas would get
            # only the CPU it leaves (a deploy took 80 s on 2 busy cores, 27 s on idle ones)
            os.environ["RAY_worker_niceness"] = "0"
            cluster_app.connect("ray", num_cpus=2)
            cls.port = free_port()
        return cls.port

    @staticmethod
    def undeploy() -> None:
        """Remove this module's application (its replicas stop); Serve and the cluster stay up."""
        from ray import serve

        from courtscribe.cluster import app as cluster_app

        serve.delete(cluster_app.APP_NAME)

    @classmethod
    def stop(cls) -> None:
        import ray

        ray.shutdown()  # the local cluster this run started goes with it
        cls.port = None


@pytest.fixture(scope="session")
def ray_cluster() -> type[RayCluster]:
    """The shared local cluster. Tests take it as this fixture, never by importing this module: pytest
    loads conftest.py as ``conftest``, and ``from tests.conftest import …`` would load a second copy
    whose ``RayCluster`` the hook below never sees (then the cluster idled to the end of the run)."""
    return RayCluster


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield  # the module's fixtures (its deployment) are torn down first
    if RayCluster.port is not None and (nextitem is None or nextitem.get_closest_marker("ray") is None):
        RayCluster.stop()


# -- Two workers: `make test` runs `pytest -n 2` (pytest-xdist) ----------------------------------
# Run serially the suite keeps 2 cores ~75 % busy (streams paced in real time, servers starting,
# Ray idling): two workers overlap that. A file's tests stay on one worker (its module fixtures
# start once). Some files go together as one unit: the Ray files (one local Ray cluster at a time:
# a second `ray.init(address="auto")` would join the first's) with the other users of the FunASR
# session fixtures, and the users of the TLS `court` server, so that these start once. Units go out
# longest first, as measured on this suite (how soon the run ends depends on it, never a result);
# other files follow in their usual order.
UNITS = {"ray": ("test_cluster.py", "test_cluster_funasr.py", "test_funasr_engine.py", "test_cluster_online.py"),
         "court": ("test_access.py", "test_security.py", "test_security_round2.py", "test_fuzz.py", "test_finder.py", "test_front_page.py")}
UNIT_OF = {name: unit for unit, names in UNITS.items() for name in names}
LONGEST_FIRST = (*UNITS["ray"], *UNITS["court"], "test_web.py", "test_faults.py", "test_streaming.py", "test_cli.py",
                 "test_no_outbound.py", "test_app.py", "test_clients.py", "test_crash.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadFileScheduling

    class ByUnit(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return UNIT_OF.get(path.rsplit("/", 1)[-1], path)

    config.option.loadscopereorder = False  # keep the order above, not "most tests first"
    return ByUnit(config, log)


# Counts the fuzz tests collect (tests/test_fuzz.py) as `record_property("fuzz", {name: counts})`:
# reports carry them from the workers; printed at the end of every run, beside pass/fail.
FUZZ_COUNTS: dict[str, dict] = {}


def pytest_runtest_logreport(report):
    for key, value in report.user_properties:
        if key == "fuzz":
            FUZZ_COUNTS.update(value)


def pytest_terminal_summary(terminalreporter):
    if FUZZ_COUNTS:
        terminalreporter.section("fuzzing: inputs tried, server errors and crashes")
        for name, counts in FUZZ_COUNTS.items():
            terminalreporter.write_line(f"{name}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))


COURT_A, COURT_B = "北京市第一中级人民法院", "上海市浦东新区人民法院"
FAILED_AUTH_LIMIT = 200  # wrong tokens a minute from one address, on the shared access-test server
TOKEN_RATE_LIMIT = 150  # requests a minute per token there: above what any test's own use of a token needs
JWT_KEY = "test-signing-key-of-the-court-identity-system-0123456789"


def self_signed(home: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "courtscribe.test")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False).sign(key, hashes.SHA256()))
    crt, pem = home / "cert.pem", home / "key.pem"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem


class Court:
    """The server under test and a token per role and scope."""

    def __init__(self, home: Path, url: str, cert: Path):
        self.home, self.url, self.ws = home, url, url.replace("https://", "wss://")
        self.tls = ssl.create_default_context(cafile=str(cert))
        self.http = httpx.Client(base_url=url, verify=self.tls, timeout=30)
        self._issued: dict[str, dict[str, str]] = {}

    def tokens(self, key: str, **specs: tuple[str, ...]) -> dict[str, str]:
        """Tokens a test module issues for itself, once per session (``issue_tokens``'s specs)."""
        if key not in self._issued:
            self._issued[key] = issue_tokens(self.home, **specs)
        return self._issued[key]

    def as_(self, token: str | None, method: str, path: str, headers: dict | None = None, **kw) -> httpx.Response:
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.request(method, path, headers={**auth, **(headers or {})}, **kw)


@pytest.fixture(scope="session")
def court(tmp_path_factory):
    """One real server over TLS with tokens on, shared by the access and security tests (each test
    issues what it changes for itself, so any order works)."""
    home = tmp_path_factory.mktemp("access")
    crt, key = self_signed(home)
    t = issue_tokens(home, admin=("admin", "信息中心管理员"),
                     clerk=("clerk", "赵书记员", "--court", COURT_A),
                     clerk_b=("clerk", "钱书记员", "--court", COURT_B),
                     judge=("judge", "孙法官", "--court", COURT_A),
                     viewer=("viewer", "旁听终端", "--court", COURT_A),
                     caption=("caption", "直播导播", "--court", COURT_A),
                     rec_r1=("recorder", "第一法庭录音", "--court", COURT_A, "--room", "第一法庭"),
                     rec_r2=("recorder", "第二法庭录音", "--court", COURT_A, "--room", "第二法庭"),
                     busy=("viewer", "刷新过快的终端", "--court", COURT_A))
    hosts = json.dumps({"127.0.0.2": {"court": COURT_A, "room": "第一法庭"}})
    proc, url = start_server(home, COURTSCRIBE_INSECURE_NO_AUTH="0", COURTSCRIBE_SSL_CERTFILE=str(crt),
                             COURTSCRIBE_SSL_KEYFILE=str(key), COURTSCRIBE_JWT_KEY=JWT_KEY,
                             COURTSCRIBE_RECORDER_HOSTS=hosts, COURTSCRIBE_RATE_LIMIT=f"{TOKEN_RATE_LIMIT}/minute",
                             COURTSCRIBE_MAX_AUDIO_S="600", COURTSCRIBE_MAX_REPLAY_S="60",
                             # the tests' own wrong tokens (dozens a minute, all from 127.0.0.1) must not
                             # trip the per-address limit; test_security checks it from another address
                             COURTSCRIBE_FAILED_AUTH_LIMIT=f"{FAILED_AUTH_LIMIT}/minute")
    c = Court(home, url, crt)
    c.t = t
    for hid, court_, room, public in (("h-pub", COURT_A, "第一法庭", True), ("h-closed", COURT_A, "第一法庭", False),
                                      ("h-b", COURT_B, "第三法庭", True), ("h-sign", COURT_A, "第一法庭", True)):
        r = c.as_(t["admin"], "POST", "/v1/hearings", json={"id": hid, "court": court_, "courtroom": room,
                                                           "public": public})
        assert r.status_code == 201, r.text
    yield c
    c.http.close()
    proc.terminate()
    proc.wait(timeout=30)


# -- Chromium for the page tests (tests/test_web.py, tests/test_front_page.py) ---------------------
@pytest.fixture(scope="module")
def playwright():
    if browser_tools.chromium_path() is None:
        pytest.fail("Chromium is missing: `make test` installs Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright):
    b = playwright.chromium.launch(executable_path=browser_tools.chromium_path(), args=browser_tools.CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture
def page(browser):
    """A fresh tab (its own cookies and sessionStorage); a script error on it fails the test. Accepts
    the test server's self-signed certificate (tests/conftest.py ``court``)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN", accept_downloads=True,
                                  ignore_https_errors=True)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert not errors, f"the page threw: {errors}"
