"""The ``courtscribe`` command: transcribe files, manage models, run the service."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, Optional

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError

from .config import (Settings, environment_names, get_settings, problem,
                     unknown_variables, variable)
from .logs import configure, get_logger
from .access.cli import audit_app, tokens_app
from .models.cli import app as models_app
from .records.cli import app as records_app

if TYPE_CHECKING:
    import asyncio

    from websockets.exceptions import ConnectionClosed

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_show_locals=False)
app.add_typer(models_app, name="models")
app.add_typer(records_app, name="records")
app.add_typer(tokens_app, name="tokens")
app.add_typer(audit_app, name="audit")


SETTINGS_ERRORS = (ValidationError, SettingsError)
log = get_logger(__name__)


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


class ProgressBars:
    """A file's stages as terminal bars (``transcribe_audio``'s ``on_progress``): speech detection
    over the audio, then transcription over the speech found; the pipeline itself draws nothing."""

    UNITS = {"speech detection": "s", "transcription": "s speech"}

    def __init__(self) -> None:
        self.stage: str | None = None
        self.bar = None

    def __call__(self, stage: str, done: float, total: float) -> None:
        if stage != self.stage:
            self.close()
            self.stage = stage
            if stage in self.UNITS:
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc=stage, bar_format="{desc}: {percentage:3.0f}%|{bar}| "
                                "{n:.0f}/{total:.0f} " + self.UNITS[stage] + " [{elapsed}<{remaining}]")
        if self.bar is not None:
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


ENGINE_HELP = ("whisper (embedded, CPU) or funasr (production Paraformer 2-pass; models from COURTSCRIBE_MODEL_DIR). "
               "Default: COURTSCRIBE_ENGINE or whisper.")


def _settings() -> Settings:
    """The settings, or one line saying which variable is wrong and what it takes (exit 2): court
    IT reads that, not a traceback through pydantic."""
    try:
        return get_settings()
    except SETTINGS_ERRORS as err:
        _fail(problem(err) or str(err))


def _engine_settings(engine: str | None) -> Settings:
    """The settings with ``--engine`` applied; the engine and the VAD must be in their plug-in
    tables (components.py), which a pattern in config.py would only copy."""
    from .components import ENGINES, VADS

    settings = _settings()
    if engine is not None:
        if engine not in ENGINES:
            _fail(f"unknown engine {engine!r}: choose {' or '.join(ENGINES)}")
        settings = settings.model_copy(update={"engine": engine})
    for field, table in (("engine", ENGINES), ("vad", VADS)):
        if (value := getattr(settings, field)) not in table:
            _fail(f"{variable(field)}={value!r} is not accepted: give one of {', '.join(table)}")
    return settings


def _parse_speakers(value: str):
    if value == "auto":
        return "auto"
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        _fail(f"--speakers takes 'auto' or a positive number, not {value!r}")
    return n


def _parse_roles(values: list[str]):
    from .records.model import Role

    roles = {}
    for item in values:
        ch, _, role = item.partition("=")
        try:
            roles[int(ch)] = Role.parse(role)
        except ValueError as err:
            _fail(f"--channel-role {item!r}: {err}" if ch.isdigit() else
                  f"--channel-role takes CHANNEL=ROLE (e.g. 0=审判长), not {item!r}")
    return roles


@app.command()
def transcribe(
    audio: Path = typer.Argument(..., help="Recording: WAV, FLAC, OGG, MP3, M4A... any rate and channel count."),
    format: str = typer.Option("json", "--format", "-f", help="json | txt | srt | vtt | docx | pdf | ofd"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output file (default: stdout; docx, pdf, ofd need -o)."),
    speakers: str = typer.Option("auto", help="Single-channel diarization: 'auto' or the number of speakers."),
    channels: bool = typer.Option(False, "--channels/--mix", help="Keep each channel apart (mic per seat group)."),
    channel_role: list[str] = typer.Option([], "--channel-role", help="CHANNEL=ROLE, e.g. 0=审判长 1=原告代理人."),
    language: Optional[str] = typer.Option(None, help="zh (default), en, or auto."),
    hotword: list[str] = typer.Option([], "--hotword", help="Names and terms to favour (repeatable)."),
    title: Optional[str] = typer.Option(None, help="Hearing title for the record header."),
    case_number: Optional[str] = typer.Option(None, help="案号"),
    progress: bool = typer.Option(True, "--progress/--quiet"),
    store: Optional[str] = typer.Option(None, "--store", help="Also keep it in the record store as this hearing id "
                                        "(lines, and the audio in the archive); a hearing scheduled beforehand "
                                        "takes it after what it has recorded."),
    engine: Optional[str] = typer.Option(None, "--engine", help=ENGINE_HELP),
) -> None:
    """Transcribe a hearing recording into a time-aligned court record."""
    import uuid

    from .asr.base import DecodeOptions
    from .audio import AudioError, decode
    from .components import load_components
    from .models import ModelError
    from .records import Hearing, formats
    from .transcribe import transcribe_audio

    settings = _engine_settings(engine)
    configure(settings.log_level if progress else "WARNING", settings.log_format)
    if format not in formats.FORMATS:
        _fail(f"unknown format {format!r}; choose one of {', '.join(formats.FORMATS)}")
    if format in ("docx", "pdf", "ofd") and output is None:
        _fail(f"{format} output is binary: give a file with -o")
    n_speakers, roles = _parse_speakers(speakers), _parse_roles(channel_role)
    lang = language or settings.language
    bars = ProgressBars() if progress else None
    try:
        pcm = decode(audio, mono=not channels)  # bad input fails here, before any model loads
        comp = load_components(settings)
        record = transcribe_audio(
            pcm, comp, speakers=n_speakers, roles=roles, source_path=str(audio), on_progress=bars,
            hearing=Hearing(id=uuid.uuid4().hex[:12], title=title or audio.stem, case_number=case_number, language=lang),
            options=DecodeOptions.from_settings(settings, language=lang, hotwords=hotword))
    except (AudioError, ModelError, ValueError) as err:
        _fail(str(err))
    finally:
        if bars is not None:
            bars.close()
    if store:
        _keep(record, pcm, store)
    if output is None:
        sys.stdout.write(formats.render(record, format))  # type: ignore[arg-type]
    else:
        from .records.fonts import FontMissing

        try:
            formats.write(record, format, output)
        except FontMissing as err:
            _fail(str(err))
        typer.echo(f"wrote {output} ({len(record.utterances)} utterances)", err=True)


def _keep(record, pcm, hearing_id: str) -> None:
    """Into the record store: a new hearing, or the one the clerk scheduled (records/intake.py)."""
    from .records import intake
    from .records.store import RecordError, RecordStore
    from .seal import load_key

    settings = get_settings()
    try:
        offset = intake.keep(RecordStore(settings.records_url, load_key(settings)), settings.data_dir / "archive", record,
                             [pcm.channel(c) for c in range(pcm.channels)], hearing_id, actor="courtscribe transcribe")
    except RecordError as err:
        _fail(str(err))
    where = f" from {offset / 1000:.1f} s of hearing time" if offset else ""
    typer.echo(f"stored as hearing {hearing_id}{where}", err=True)


@app.command("stream")
def stream_cmd(
    audio: Optional[Path] = typer.Argument(None, help="Audio file to replay as a live source (or use --mic)."),
    mic: bool = typer.Option(False, "--mic", help="Stream a live input device instead of a file; Ctrl-C ends."),
    device: str = typer.Option("alsa:default", help="Input device for --mic as FORMAT:NAME, e.g. alsa:hw:1,0."),
    url: str = typer.Option("ws://127.0.0.1:8000/v1/stream", help="The server's native streaming endpoint."),
    speed: float = typer.Option(1.0, help="Replay speed: 1 = real time, 2 = twice as fast, 0 = as fast as accepted."),
    hearing: Optional[str] = typer.Option(None, help="Hearing id (a room recorder's token needs none: its room's hearing)."),
    channel: int = typer.Option(0, help="Courtroom channel this source is (with --seats: the first's)."),
    role: Optional[str] = typer.Option(None, help="Role of the speaker on this channel, e.g. 审判长."),
    seats: int = typer.Option(0, min=0, help=(
        "A mixer with a microphone per seat: stream its first N channels at once, each a seat of its own "
        "(channel, channel+1, …), on one clock; their roles: --channel-role, else the hearing's channel map.")),
    channel_role: list[str] = typer.Option([], "--channel-role", help="With --seats: CHANNEL=ROLE, e.g. 0=审判长."),
    hotword: list[str] = typer.Option([], "--hotword"),
    token: Optional[str] = typer.Option(None, envvar="COURTSCRIBE_TOKEN", help="This recorder's access token."),
    cafile: Optional[Path] = typer.Option(None, help="CA certificate to trust for a wss:// server (PEM)."),
    reconnect_s: float = typer.Option(600.0, "--reconnect-s", min=0, help=(
        "When the server restarts or the network drops, keep trying this many seconds to come back, "
        "keeping the audio meanwhile (0: end the stream instead).")),
    unsent_dir: Path = typer.Option(Path("."), "--unsent-dir", file_okay=False, help=(
        "With --mic: where the audio the server may not have is saved when the stream ends while the "
        "server is unreachable (Ctrl-C, or --reconnect-s ran out).")),
) -> None:
    """Stream a file (in real time) or a microphone to a running server; partials update in place,
    finals print as lines. A server restart or a dropped connection does not end it: the audio
    recorded meanwhile is sent when the server is back, from where its record of the channel ends."""
    import asyncio
    import signal
    import ssl
    from functools import partial

    from websockets.exceptions import ConnectionClosed, WebSocketException

    from .audio import AudioError
    from .clients.capture import CaptureError, chunks_from_device
    from .clients.stream_client import NotTakenBack, chunks_from_file, fan_out, on_one_clock, stream

    if mic == (audio is not None):
        _fail("give either an audio file or --mic")
    if seats and role:
        _fail("--role names one channel's speaker: with --seats, give --channel-role CHANNEL=ROLE")
    seat_roles = {ch: r.label for ch, r in _parse_roles(channel_role).items()}
    if strays := sorted(set(seat_roles) - set(range(channel, channel + seats))):
        _fail(f"--channel-role names channel(s) {strays} that are not streamed: --seats N streams channels "
              f"{channel}…{channel + seats - 1}" if seats else "--channel-role is for --seats (a mixer's channels)")
    if mic and (why := _unwritable(unsent_dir)):  # found out now, not when the audio has nowhere else to go
        _fail(f"--unsent-dir {unsent_dir}: {why}")

    def show(event: dict) -> None:
        if event["type"] == "partial":
            sys.stderr.write(f"\r\033[K… {event['speaker']}：{event['text']}")
        elif event["type"] == "final":
            u = event["utterance"]
            sys.stderr.write("\r\033[K")
            typer.echo(f"[{u['start_ms'] / 1000:7.2f}–{u['end_ms'] / 1000:7.2f}] {u['speaker']}：{u['text']}")
        elif event["type"] == "error":
            sys.stderr.write(f"\r\033[Kserver: {event['code']}: {event['message']}\n")
        elif event["type"] == "reconnecting":
            why = "the server is restarting" if event["code"] == 1012 else "the connection was lost"
            sys.stderr.write(f"\r\033[K{why}: reconnecting (try {event['attempt']}), "
                             "the audio is kept\n")

    async def main() -> bool:
        stop = asyncio.Event()  # Ctrl-C ends the source; the server still sends the last finals
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.set_exception_handler(_said_once)
        chunks = (chunks_from_device(device, stop=stop, channels=seats) if mic
                  else chunks_from_file(audio, channels=seats))
        tls = ssl.create_default_context(cafile=str(cafile)) if cafile else None

        async def one(source, k: int, on_ready=None, **placed):
            started: list[dict] = []

            def ready(event: dict) -> None:
                started.append(event)
                if on_ready:
                    on_ready(event)
            try:
                return await stream(url, source, speed=0 if mic else speed, hearing_id=hearing, channel=channel + k,
                                    role=seat_roles.get(channel + k, role), hotwords=hotword, on_event=show,
                                    stop=stop, token=token, ssl=tls, reconnect_s=reconnect_s, drain=mic,
                                    on_unsent=partial(_save_unsent, unsent_dir, channel + k) if mic else None,
                                    seat=bool(seats), on_ready=ready, **placed)
            except Exception as err:
                if seats:  # said now, with its channel; refused at its start, no seat is recorded half a courtroom
                    sys.stderr.write(f"\r\033[Kchannel {channel + k}: {err}\n")
                    if not started:
                        stop.set()
                raise
        got = await on_one_clock(one, fan_out(chunks, seats)) if seats else [await one(chunks, 0)]
        if failed := [r for r in got if isinstance(r, BaseException)]:
            raise failed[0]  # each was said as it came; the others streamed on (or stopped, if it was refused)
        return all(any(e["type"] == "end" and "reason" not in e for e in g.events) for g in got)

    try:
        ended = asyncio.run(main())
    except (AudioError, CaptureError) as err:
        _fail(str(err))
    except ConnectionClosed as err:  # the server went away (restart, crash, network) mid-stream
        sys.stderr.write("\r\033[K")
        _fail(_ended_early(url, err), code=1)
    except NotTakenBack as err:  # it restarted and did not take the stream back in --reconnect-s
        sys.stderr.write("\r\033[K")
        _fail(f"the server at {url} restarted: {err}", code=1)
    except (OSError, RuntimeError, WebSocketException) as err:  # refused: address, TLS, HTTP status
        _fail(f"cannot stream to {url}: {err}")
    if not ended:  # closed in good order, but before the server said the stream was done
        sys.stderr.write("\r\033[K")
        _fail(_ended_early(url), code=1)


def _unwritable(folder: Path) -> str | None:
    """Why a microphone's unsent audio could not be saved in ``folder``, if it could not."""
    import os

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        return err.strerror or str(err)
    return None if os.access(folder, os.W_OK | os.X_OK) else "not writable"


def _save_unsent(folder: Path, channel: int, hearing_id: str | None, at_ms: int, audio) -> None:
    """A microphone's audio the server may not have (the stream ended while it was unreachable),
    saved beside the recorder (else in the temporary folder), its owner's alone (court audio), and
    said so: it exists nowhere else."""
    import os
    import re
    import tempfile

    import soundfile as sf

    from .audio import SAMPLE_RATE

    said = time.strftime("%H%M%S", time.gmtime(at_ms // 1000))
    hearing = re.sub(r"[^\w.-]", "_", hearing_id or "hearing")[:64]  # the server's word: never a path
    name = f"unsent-{hearing}-ch{channel}-{said}-{time.strftime('%Y%m%d-%H%M%S')}.wav"
    seconds = audio.size / SAMPLE_RATE
    problems = []
    for place in dict.fromkeys([folder, Path(tempfile.gettempdir())]):
        path = place / name
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as err:
            problems.append(f"{place}: {err.strerror or err}")
            continue
        try:
            with os.fdopen(fd, "wb") as f:
                sf.write(f, audio, SAMPLE_RATE, subtype="PCM_16", format="WAV")
        except Exception as err:  # noqa: BLE001 - the next place, then said: the audio is at stake
            path.unlink(missing_ok=True)
            problems.append(f"{place}: {err}")
            continue
        sys.stderr.write(f"\r\033[Kthe server may not have {seconds:.0f} s of this microphone's audio (hearing "
                         f"{hearing_id or '?'}, from {time.strftime('%H:%M:%S', time.gmtime(at_ms // 1000))} of "
                         f"its time): saved in {path.resolve()}\n")
        return
    sys.stderr.write(f"\r\033[K{seconds:.0f} s of audio the server may not have could not be saved: "
                     f"{'; '.join(problems)}\n")


def _said_once(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """A lost connection fails the client's sender and its reader task alike: the command reports
    it once, so the reader's "exception was never retrieved" is not printed as a traceback."""
    from websockets.exceptions import ConnectionClosed

    if not isinstance(context.get("exception"), ConnectionClosed):
        loop.default_exception_handler(context)


def _ended_early(url: str, err: ConnectionClosed | None = None) -> str:
    """A stream cut short, for the person at the microphone: who ended it, and how."""
    if err is not None and err.rcvd is None:
        return f"the connection to {url} was lost (no close from the server): the stream ended"
    said = ""
    if err is not None and err.rcvd is not None:
        said = f" (code {err.rcvd.code}{': ' + err.rcvd.reason if err.rcvd.reason else ''})"
    return f"the server at {url} closed the stream before its end{said}"


@app.command()
def serve(host: Optional[str] = typer.Option(None),
          port: Optional[int] = typer.Option(None, min=1, max=65535, help="TCP port, 1-65535."),
          engine: Optional[str] = typer.Option(None, "--engine", help=ENGINE_HELP),
          insecure_no_auth: bool = typer.Option(False, "--insecure-no-auth", help=(
              "No token checks: local development only, refused unless bound to a loopback address.")),
          ssl_certfile: Optional[Path] = typer.Option(None, help="TLS certificate (PEM): https:// and wss://."),
          ssl_keyfile: Optional[Path] = typer.Option(None, help="TLS private key (PEM)."),
          cluster: Optional[str] = typer.Option(None, "--cluster", help=(
              "Serve on Ray: 'ray' starts (or joins) a cluster here, 'ray://host:10001' or 'host:6379' joins one. "
              "Engines become Serve deployments that batch across streams; clients see the same API.")),
          serve_config: Optional[Path] = typer.Option(None, "--serve-config", help=(
              "Ray Serve config file (default: the CPU variant shipped in courtscribe/cluster/configs)."))) -> None:
    """Run the HTTP service on the configured engine (embedded Whisper by default), in this process
    or (--cluster) on a Ray cluster."""
    import uvicorn

    from . import serving
    from .cluster.proxy import MAX_WS_MESSAGE  # larger: closed (1009); each protocol refuses its own in words

    settings = _engine_settings(engine)
    update = {k: v for k, v in (("host", host), ("port", port), ("ssl_certfile", ssl_certfile),
                                ("ssl_keyfile", ssl_keyfile)) if v is not None}
    if insecure_no_auth:
        update["insecure_no_auth"] = True
    settings = settings.model_copy(update=update)
    if bool(settings.ssl_certfile) != bool(settings.ssl_keyfile):
        _fail("TLS needs both --ssl-certfile and --ssl-keyfile")
    configure(settings.log_level, settings.log_format)
    for name, close in unknown_variables(environment_names()):
        log.warning("not a courtscribe setting: ignored", variable=name, did_you_mean=close)
    try:
        if cluster:
            serving.serve_cluster(cluster, serve_config, settings, engine, insecure_no_auth)
            return
        if settings.insecure_no_auth:
            serving.loopback_only(settings.host)
        application = serving.application(settings)
    except serving.StartError as err:
        _fail(str(err))
    config = uvicorn.Config(application, host=settings.host, port=settings.port,
                            log_level=settings.log_level.lower(),
                            ssl_certfile=settings.ssl_certfile, ssl_keyfile=settings.ssl_keyfile,
                            ws_max_size=MAX_WS_MESSAGE, timeout_keep_alive=5, server_header=False,
                            ws_ping_interval=settings.ws_ping_interval_s, ws_ping_timeout=settings.ws_ping_timeout_s,
                            limit_concurrency=settings.max_connections,
                            # X-Forwarded-For only from proxies court IT names (none by default)
                            proxy_headers=bool(settings.forwarded_allow_ips),
                            forwarded_allow_ips=settings.forwarded_allow_ips or None,
                            timeout_graceful_shutdown=10)  # SIGTERM: requests, after the sources
    server = serving.court_server(config, loopback=settings.insecure_no_auth)
    server.run()
    if getattr(server, "refused", None):
        _fail(server.refused)
    if not server.started:  # its start-up failed inside uvicorn, which logged why: not a clean exit
        raise typer.Exit(3)


@app.command("backup")
def backup_cmd(
    dest: Path = typer.Argument(..., help="A new or empty folder, outside the data folder."),
    with_key: bool = typer.Option(False, "--with-key", help=(
        "Copy keys/seal.key too (whoever holds a backup with its key can reseal a rewritten "
        "record: keep such a backup where only court IT reads it).")),
) -> None:
    """Back up the court data into DEST and verify the copy.

    The record store (SQLite: a consistent copy, WAL included), audit/, spool/ and archive/, with a
    manifest of SHA-256s; then every hearing in the copy is verified (exit 1 if any does not)."""
    import sqlite3

    from . import backup

    try:
        made = backup.make(_settings(), dest, with_key=with_key)
    except backup.BackupError as err:
        _fail(str(err))
    except (sqlite3.Error, OSError) as err:
        _fail(f"the backup into {dest} failed: {err}")
    for line, bad in made.lines():
        typer.echo(line, err=bad)
    if not made.ok:
        raise typer.Exit(1)


def main() -> None:
    """The console script. ``records``, ``tokens`` and ``audit`` read the settings themselves: a
    wrong variable is one line there too (exit 2); any other error keeps its traceback."""
    try:
        app()
    except SETTINGS_ERRORS as err:
        if (said := problem(err)) is None:  # another model's ValidationError: a bug, not a setting
            raise
        typer.echo(f"error: {said}", err=True)
        sys.exit(2)
