"""All settings in one place, read from ``COURTSCRIBE_*`` environment variables (or a .env file).

Why one object: the CLI, the server and the tests must agree on where models, audio and records
live, and court IT configures a deployment by environment, not by editing code.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable
from functools import lru_cache
import json
import os
from pathlib import Path
import re

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

PREFIX = "COURTSCRIBE_"


def _default_home() -> Path:
    """Model files assembled here can be made again: a cache."""
    return Path.home() / ".cache" / "courtscribe"


OLD_DATA = Path.home() / ".cache" / "courtscribe" / "data"  # where versions before 2026-12 kept court data


def _default_data() -> Path:
    """Court records, audio, keys and the audit log: a data directory (``$XDG_DATA_HOME``), never a
    cache that tools and admins clear. Data an older version kept in ``OLD_DATA`` is used there until
    court IT moves it (README: "Where court data lives"), so an upgrade never starts an empty store."""
    new = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "courtscribe"
    return OLD_DATA if not new.exists() and OLD_DATA.exists() else new


_FRONT_END = "^(none|wpe|rnnoise)$"  # frontend.NAMES


class RoomFrontEnd(BaseModel):
    """One courtroom's front ends: for the engine and for the VAD."""

    asr: str = Field(default="wpe", pattern=_FRONT_END)
    vad: str = Field(default="none", pattern=_FRONT_END)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, env_file=".env", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data,
                           description="Records, audio archive, database, seal key, audit log (not a cache).")
    model_cache_dir: Path = Field(default_factory=lambda: _default_home() / "models",
                                  description="Where assembled model files (e.g. joined Whisper weights) are kept.")
    model_dir: Path | None = Field(default=None,
                                   description="Local directory holding production models, one sub-dir per model name.")
    engine: str = Field(default="whisper", description="ASR engine: whisper (embedded) or funasr (production).")
    vad: str = Field(default="silero", description=(
        "VAD for files: silero (ONNX, in faster-whisper) or fsmn-vad (FunASR). silero is the default by "
        "measurement: lower CER on zh-smoke and no torch/FunASR start-up cost (bench/cer.py)."))
    vad_threshold: float = Field(default=0.5, ge=0.05, le=0.95, description=(
        "Speech probability at which silero's VAD starts a span (it ends 0.15 below). Measured on simulated "
        "courtrooms (bench/acoustics.py)."))
    fsmn_vad_threshold: float | None = Field(default=None, ge=-1.0, le=1.0, description=(
        "FSMN-VAD (live streams; files with vad=fsmn-vad) calls a frame speech when P(speech) is "
        "at least P(noise) + this. Default: the model's own, 0.6. 0.3 suits babble and gallery "
        "rooms (fewer lines only flagged, bench/acoustics.py) but calls a quiet room's hiss speech "
        "and bridges a speaker's pauses into one long utterance (zh-smoke), so it is not the default."))
    language: str = "zh"
    languages: list[str] = Field(default_factory=lambda: ["zh", "en"], description=(
        "Languages a hearing may hear (JSON list, e.g. [\"zh\",\"en\"]): each utterance is checked, and one "
        "confidently in another of these languages is transcribed in it instead of in `language`."))
    device: str = Field(default="cpu", pattern="^(cpu|cuda)$", description="Where models run.")
    cpu_threads: int = Field(default=2, ge=1)
    beam_size: int = Field(default=5, ge=1, le=10)
    max_segment_s: float | None = Field(default=None, gt=1.0, description=(
        "Longest stretch the engine decodes at once; longer VAD segments are split. Default: the engine's "
        "own limit (30 s, Whisper's window; 60 s for FunASR)."))
    speaker_encoder: str = Field(default="campplus", pattern="^(campplus|resemblyzer)$", description=(
        "Speaker embeddings for diarization: campplus (CAM++ zh-en, default by measurement: DER 0.07-0.10 vs "
        "0.46-0.49 on the reference recording, bench/diarization.py) or resemblyzer."))
    segmentation_step_s: float = Field(default=2.5, ge=0.5, le=10.0, description=(
        "Hop of the 10 s speaker-segmentation windows over a recording (pyannote's own default is 1 s; "
        "2.5 s measured as good on the reference recording at 40 % of the cost, bench/diarization.py)."))
    frontend: str = Field(default="wpe", pattern=_FRONT_END, description=(
        "Front end of the engine's audio: none, wpe (dereverberation) or rnnoise (noise suppression), "
        "frontend.py. wpe by measurement on simulated courtrooms (bench/acoustics.py): lower CER in "
        "reverberant rooms and on clean audio, higher with a near microphone in a dry room (RT60 0.3 s), "
        "where a courtroom's frontend_rooms entry says none. rnnoise only for fan noise without voices: "
        "it takes a gallery's babble and the speech with it."))
    frontend_vad: str = Field(default="none", pattern=_FRONT_END, description=(
        "Front end of the VAD's audio, chosen apart from the engine's (what helps one can hurt the other): "
        "none by measurement (the engine on WPE, the VAD on the audio as it came: lowest CER, no line lost)."))
    frontend_rooms: dict[str, RoomFrontEnd] = Field(default_factory=dict, description=(
        'Per courtroom, by the hearing\'s courtroom: {"第三法庭": {"asr": "wpe", "vad": "none"}}.'))
    itn: bool = Field(default=True, description="Inverse text normalization of FunASR output (二零二四年 → 2024年).")
    fp16: bool = Field(default=False, description="Half precision for FunASR models on a CUDA device.")
    lexicon_file: Path | None = Field(default=None, description=(
        "Court-wide legal lexicon, one term per line: hotwords for every hearing."))
    final_batch: int = Field(default=8, ge=1, le=64, description="Most finals decoded in one engine call.")
    final_wait_ms: int = Field(default=0, ge=0, le=200, description=(
        "How long the decode worker waits for more finals to batch with the first (0: take what is queued). "
        "A few ms helps a GPU serving many streams."))
    partial_batch: int = Field(default=16, ge=1, le=256, description=(
        "Most live streams one online engine call advances (engines that batch them: FunASR's streaming pass)."))
    partial_deadline_ms: int = Field(default=600, ge=50, le=10_000, description=(
        "An incremental partial (FunASR's streaming pass) waiting longer than this goes before queued finals "
        "(one round) while the box keeps up; any partial waiting longer counts as late."))
    decode_workers: int = Field(default=1, ge=1, le=256, description=(
        "Decode calls in flight at once. 1 on a CPU box (two decodes only slow each other); on a Ray "
        "cluster the gateway keeps many in flight so the engine replicas can batch across streams."))
    decode_lanes: int = Field(default=2, ge=1, le=4, description=(
        "Decodes the embedded engine runs side by side, a CTranslate2 replica each: with 2 a live stream's "
        "partials go on while the worker finalizes (a long utterance's screen keeps moving, streaming/"
        "scheduler.py); 1: one decode at a time."))
    model_fetch: bool = Field(default=False, description=(
        "Download missing production models from ModelScope at start-up (needs the hub; off: no outbound calls)."))
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535, description="TCP port the server listens on.")
    log_format: str = Field(default="console", pattern="^(console|json)$")
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$",
                           description="Python logging level, in any case (debug, INFO…).")
    max_upload_mb: int = Field(default=2048, ge=1)
    caption_delay_ms: int = Field(default=3000, ge=0, le=60_000, description=(
        "Broadcast delay of the live caption feed: a final's redaction replaces a partial's before it "
        "goes out, and a blanking order drops what is still held (3 s, the broadcast norm)."))
    max_streams: int = Field(default=4, ge=1, description=(
        "Live slots: a stream each, a hearing's seat microphones four to one (one person speaks at a "
        "time); a stream past them gets 'busy'."))
    idle_timeout_s: float = Field(default=60.0, gt=0, description="A silent or half-open connection is closed after this.")
    ws_ping_interval_s: float = Field(default=20.0, gt=0, description=(
        "WebSocket keepalive: the server pings each connection this often…"))
    ws_ping_timeout_s: float = Field(default=20.0, gt=0, description=(
        "…and closes it (1011) when no pong came back within this (a peer gone without a word). A source "
        "the decoder is behind is still read, so its pongs are answered (server/sockets.py: up to 16 MiB "
        "of audio read ahead)."))
    stream_vad_silence_ms: int = Field(default=800, ge=100, description="End-of-utterance silence for live streams.")
    stream_vad: str = Field(default="gateway", pattern="^(gateway|deployment)$", description=(
        "Cluster only: where live sources' streaming VAD runs — in each gateway replica (one box: no extra "
        "hop per 200 ms chunk) or on the VAD deployment (thin gateways for a cluster)."))
    insecure_no_auth: bool = Field(default=False, description=(
        "Turn token checks off (local development and tests only): refused unless the server binds only "
        "loopback addresses."))
    jwt_key: str | None = Field(default=None, description="Shared secret (HS256) of JWTs issued by the court's identity system.")
    jwt_public_key: Path | None = Field(default=None, description="PEM public key (RS256/ES256/EdDSA) of such JWTs.")
    jwt_audience: str = "courtscribe"
    recorder_hosts: dict[str, dict[str, str]] = Field(default_factory=dict, description=(
        'Courtroom PCs allowed on the FunASR endpoint without a token: {"10.1.2.3": {"court": "…", "room": "…"}}.'))
    rate_limit: str = Field(default="1200/minute", description="Requests and connections per token.")
    failed_auth_limit: str = Field(default="30/minute", description=(
        "Wrong or missing tokens from one address before further wrong ones get 429 (a valid token is "
        "always let in)."))
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed cross-site (none by default).")
    ssl_certfile: Path | None = Field(default=None, description="TLS certificate (PEM): serve https:// and wss://.")
    ssl_keyfile: Path | None = None
    max_connections: int = Field(default=4096, ge=16, description="Open connections at most (then 503).")
    max_sockets_per_token: int = Field(default=64, ge=1, description=(
        "Open WebSockets one token may hold at once (screens, overlays, audio sources); past it 4429. "
        "WebSockets count against max_connections too."))
    max_body_kb: int = Field(default=1024, ge=1, description="Largest request body outside audio uploads.")
    forwarded_allow_ips: list[str] = Field(default_factory=list, description=(
        "Reverse proxies whose X-Forwarded-For/-Proto headers are believed (JSON list of addresses). Empty: "
        "none, so no client can pose as a courtroom PC's address by sending the header."))
    allowed_hosts: list[str] = Field(default_factory=list, description=(
        "Names and addresses clients reach this server by, as the Host header says (JSON list; '*' for any). "
        "Empty: from the bind address: a loopback bind answers to 127.0.0.1/localhost/::1; 0.0.0.0 or :: to "
        "this machine's name and addresses too. Any other Host is refused, so a web page cannot rebind a "
        "name of its own to this server (DNS rebinding) and pose as a courtroom PC. Name here the DNS "
        "name courtroom PCs use (and a Kubernetes Service's name)."))
    parties_sign: bool = Field(default=False, description=(
        "The parties (and their agents) sign the read-back 笔录 too: the clerk screen lists them beside the "
        "bench and the clerk, and the clerk notes each one's signature (paper or pad) or refusal."))
    adhoc_hearings: bool = Field(default=False, description=(
        "With tokens on, a courtroom's recorder that names no hearing, in a room with none open or "
        "scheduled today, opens a new hearing (under an id the server chooses) instead of being refused. "
        "A hearing id a court's token names must always be one of its court's hearings."))
    ws_origins: list[str] = Field(default_factory=list, description=(
        "Web origins (scheme://host:port) whose pages may open WebSockets besides the server's own pages "
        "(cors_origins count too). A browser socket from any other origin is refused (CSWSH)."))
    max_streams_per_token: int = Field(default=2, ge=1, description=(
        "Live streams one token may hold at once (recorder tokens excepted: a courtroom's seat mics)."))
    max_streams_per_room: int | None = Field(default=None, ge=1, description=(
        "Live streams one courtroom's recorders may hold at once (its seat mics and room mics); set it where "
        "one server takes several courtrooms, so one room's recorder never leaves another's hearing 'busy'. "
        "Default: no limit beside max_streams."))
    recorder_reserved_streams: int | None = Field(default=None, ge=0, description=(
        "Live stream slots only courtroom recorders may take (default: a quarter of max_streams, at least 1), "
        "so dictation or ad-hoc streams never leave a hearing without its recorder."))
    max_audio_s: float = Field(default=6 * 3600, gt=0, description=(
        "Longest recording one upload may decode to (seconds): a small compressed file must not unpack into "
        "gigabytes. Longer hearings: split the recording or stream it live."))
    max_replay_s: float = Field(default=600, gt=0, description=(
        "Longest stretch of audio one replay request returns (a line made 2 h long by hand is cut here)."))
    seal_key: str | None = Field(default=None, description=(
        "Key (text) that seals signed records and the audit log (HMAC). Default: a random key kept in "
        "DATA_DIR/keys/seal.key (0600). Keep it outside the database and its backups."))
    page_signing: bool = Field(default=False, description=(
        "Printed 笔录 (PDF, OFD, DOCX) carry a signing strip at the foot of every page, where the "
        "participants sign or initial each page."))
    database_url: str | None = Field(default=None, description=(
        "SQLAlchemy URL of the record store, e.g. postgresql+psycopg://user@host/courtscribe; "
        "default: SQLite (WAL) at DATA_DIR/courtscribe.db."))

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_upper(cls, value: object) -> object:
        """``debug`` as well as ``DEBUG``: Python's logging only knows the upper-case names."""
        return value.upper() if isinstance(value, str) else value

    def front_ends(self, courtroom: str | None) -> RoomFrontEnd:
        """The front ends a courtroom's audio passes through (its own, else the server's)."""
        return self.frontend_rooms.get(courtroom or "") or RoomFrontEnd(asr=self.frontend, vad=self.frontend_vad)

    @property
    def segment_s(self) -> float:
        return self.max_segment_s or (60.0 if self.engine == "funasr" else 30.0)

    @property
    def reserved_streams(self) -> int:
        if self.recorder_reserved_streams is not None:
            return min(self.recorder_reserved_streams, self.max_streams - 1)
        return min(max(1, self.max_streams // 4), self.max_streams - 1)

    @property
    def seal_key_file(self) -> Path:
        return self.data_dir / "keys" / "seal.key"

    @property
    def audit_file(self) -> Path:
        return self.data_dir / "audit" / "audit.jsonl"

    @property
    def spool_dir(self) -> Path:
        """Finals that could not be stored (database away) wait here, on disk, in order."""
        return self.data_dir / "spool"

    @property
    def records_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'courtscribe.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


# -- what court IT is told when the settings are wrong ------------------------------------------
# COURTSCRIBE_* variables read outside Settings (records/fonts.py, `courtscribe stream`), and the
# test suite's and benchmarks' own: none of them is a misspelt setting
OTHER_VARIABLES = frozenset({"FONT_FILE", "TOKEN", "CHROMIUM", "SCREENSHOTS"})
TOOL_PREFIXES = ("TEST_", "BENCH_")
SECRETS = frozenset({"seal_key", "jwt_key", "database_url"})  # never echoed back in an error
_CHOICES = re.compile(r"^\^\(([\w|-]+)\)\$$")  # a pattern that lists the accepted words


def variable(field: str) -> str:
    """The environment variable a setting is read from."""
    return f"{PREFIX}{field.upper()}"


def problem(err: ValidationError | SettingsError) -> str | None:
    """One line naming each wrong variable, what it holds and what it takes; None for an error
    that is not about the settings (another model's ValidationError)."""
    if isinstance(err, SettingsError):
        found = re.search(r'field "(\w+)"', str(err))
        return _not_json(found.group(1)) if found else str(err)
    if err.title != Settings.__name__:
        return None
    return "; ".join(_wrong(e["loc"], e["msg"], e.get("input"), e.get("ctx") or {})
                     for e in err.errors())


def _shown(field: str, value: object) -> str:
    return "=…" if field in SECRETS else f"={value!r}"


def _wrong(loc: tuple, msg: str, value: object, ctx: dict) -> str:
    field = str(loc[0])
    where = f" ({'.'.join(map(str, loc[1:]))})" if len(loc) > 1 else ""
    choices = _CHOICES.match(str(ctx.get("pattern", "")))
    takes = (f"give one of {', '.join(choices.group(1).split('|'))}" if choices
             else msg[0].lower() + msg[1:])  # pydantic's own words: "input should be …"
    return f"{variable(field)}{where}{_shown(field, value)} is not accepted: {takes}"


def _not_json(field: str) -> str:
    """pydantic-settings reads list and dict settings as JSON before validating: say which shape."""
    info = Settings.model_fields.get(field)
    kind = getattr(info.annotation, "__origin__", None) if info else None
    example = info.get_default(call_default_factory=True) if info else None
    shape = "a JSON list" if kind is list else "a JSON object" if kind is dict else "JSON"
    given = os.environ.get(variable(field), os.environ.get(variable(field).lower()))
    shown = _shown(field, given) if given is not None else " (in .env)"
    hint = f", e.g. {json.dumps(example, ensure_ascii=False)}" if example else ""
    return f"{variable(field)}{shown} is not JSON: give {shape}{hint}"


def unknown_variables(names: Iterable[str]) -> list[tuple[str, str | None]]:
    """``COURTSCRIBE_*`` names no setting reads, each with the closest one that does: Settings
    ignores them, so a typo (``DATABSE_URL``) would quietly send records to a local SQLite file."""
    known = {f.upper() for f in Settings.model_fields} | OTHER_VARIABLES
    found = []
    for name in sorted({n.upper()[len(PREFIX):] for n in names if n.upper().startswith(PREFIX)}):
        if name in known or name.startswith(TOOL_PREFIXES):
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)  # without the shared prefix
        found.append((PREFIX + name, PREFIX + close[0] if close else None))
    return found


def environment_names(env_file: Path = Path(".env")) -> list[str]:
    """The names Settings reads from: the environment, and the .env file if there is one."""
    names = list(os.environ)
    if env_file.is_file():
        from dotenv import dotenv_values

        names += list(dotenv_values(env_file))
    return names


def masked_url(url: str) -> str:
    """A database URL fit for a log line: its password (in the authority or the query) as ***."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
        if parsed.password is not None:  # as the driver reads it: a "/" or "@" in it included
            url = parsed.render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL SQLAlchemy reads: the patterns below still mask
        pass
    url = re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)
    return re.sub(r"(?i)(password=)[^&]*", r"\1***", url)
