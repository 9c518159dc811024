"""The ``courtscribe`` command: transcribe files, manage models, run the service."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError

from .arguments import fail, parse_roles, parse_speakers, parse_voices
from .clients.command import stream_command
from .config import (Settings, environment_names, get_settings, masked_url, problem,
                     unknown_variables, variable)
from .logs import configure, get_logger
from .access.cli import audit_app, tokens_app
from .models.cli import app as models_app
from .records.cli import app as records_app

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_show_locals=False)
app.add_typer(models_app, name="models")
app.add_typer(records_app, name="records")
app.add_typer(tokens_app, name="tokens")
app.add_typer(audit_app, name="audit")
app.command("stream")(stream_command)


SETTINGS_ERRORS = (ValidationError, SettingsError)
log = get_logger(__name__)


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
        fail(problem(err) or str(err))


def _engine_settings(engine: str | None) -> Settings:
    """The settings with ``--engine`` applied; the engine and the VAD must be in their plug-in
    tables (components.py), which a pattern in config.py would only copy."""
    from .components import ENGINES, VADS

    settings = _settings()
    if engine is not None:
        if engine not in ENGINES:
            fail(f"unknown engine {engine!r}: choose {' or '.join(ENGINES)}")
        settings = settings.model_copy(update={"engine": engine})
    for field, table in (("engine", ENGINES), ("vad", VADS)):
        if (value := getattr(settings, field)) not in table:
            fail(f"{variable(field)}={value!r} is not accepted: give one of {', '.join(table)}")
    return settings


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
    voice: list[str] = typer.Option([], "--voice", help=(
        "NAME=FILE: a voice the court knows (FILE: a few seconds of NAME speaking); the voice in the "
        "recording nearest it is printed as NAME, e.g. --voice 审判长=judge.wav (repeatable).")),
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
        fail(f"unknown format {format!r}; choose one of {', '.join(formats.FORMATS)}")
    if format in ("docx", "pdf", "ofd") and output is None:
        fail(f"{format} output is binary: give a file with -o")
    n_speakers, roles = parse_speakers(speakers), parse_roles(channel_role)
    samples = parse_voices(voice)
    lang = language or settings.language
    bars = ProgressBars() if progress else None
    try:
        pcm = decode(audio, mono=not channels)  # bad input fails here, before any model loads
        comp = load_components(settings)
        record = transcribe_audio(
            pcm, comp, speakers=n_speakers, roles=roles, source_path=str(audio), on_progress=bars,
            hearing=Hearing(id=uuid.uuid4().hex[:12], title=title or audio.stem, case_number=case_number, language=lang),
            options=DecodeOptions.from_settings(settings, language=lang, hotwords=hotword))
        if samples:
            record.utterances = _named(record.utterances, pcm, samples, comp.speaker_encoder())
    except (AudioError, ModelError, ValueError) as err:
        fail(str(err))
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
            fail(str(err))
        typer.echo(f"wrote {output} ({len(record.utterances)} utterances)", err=True)


def _named(utterances, pcm, samples: dict, encoder):
    """The recording's voices named after the court's samples of them (diarization/known.py)."""
    from .audio import SAMPLE_RATE
    from .diarization.embedding import EncoderError
    from .diarization.known import SAMPLE_S, name_voices, reference_print

    prints = {}
    for name, audio in samples.items():
        try:
            prints[name] = reference_print(audio[:SAMPLE_S * SAMPLE_RATE], encoder)
        except EncoderError as err:
            fail(f"--voice {name}: {err}")
    return name_voices(utterances, [pcm.channel(c) for c in range(pcm.channels)], encoder, prints)


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
        fail(str(err))
    where = f" from {offset / 1000:.1f} s of hearing time" if offset else ""
    typer.echo(f"stored as hearing {hearing_id}{where}", err=True)


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
        fail("TLS needs both --ssl-certfile and --ssl-keyfile")
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
        fail(str(err))
    from .server.handshake import CourtHttp

    config = uvicorn.Config(application, host=settings.host, port=settings.port,
                            log_level=settings.log_level.lower(),
                            ssl_certfile=settings.ssl_certfile, ssl_keyfile=settings.ssl_keyfile,
                            ws_max_size=MAX_WS_MESSAGE, timeout_keep_alive=5, server_header=False,
                            ws_ping_interval=settings.ws_ping_interval_s, ws_ping_timeout=settings.ws_ping_timeout_s,
                            limit_concurrency=settings.max_connections, http=CourtHttp,
                            # X-Forwarded-For only from proxies court IT names (none by default)
                            proxy_headers=bool(settings.forwarded_allow_ips),
                            forwarded_allow_ips=settings.forwarded_allow_ips or None,
                            timeout_graceful_shutdown=10)  # SIGTERM: requests, after the sources
    server = serving.court_server(config, loopback=settings.insecure_no_auth)
    server.run()
    if getattr(server, "refused", None):
        fail(server.refused)
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

    from sqlalchemy.exc import SQLAlchemyError

    from . import backup

    try:
        made = backup.make(_settings(), dest, with_key=with_key)
    except backup.BackupError as err:
        fail(str(err))
    except (sqlite3.Error, SQLAlchemyError, OSError) as err:
        fail(f"the backup into {dest} failed: {err}")
    for line, bad in made.lines():
        typer.echo(line, err=bad)
    if not made.ok:
        raise typer.Exit(1)


@app.command("copy-store")
def copy_store_cmd(
    target: str = typer.Argument(..., help=(
        "The new, empty database, e.g. 'postgresql+psycopg://cs@db/courtscribe' (password from "
        "PGPASSWORD or ~/.pgpass) or sqlite:////path/courtscribe.db; its tables are made.")),
    source: Optional[str] = typer.Option(None, "--from", help=(
        "The store to copy (default: this server's, COURTSCRIBE_DATABASE_URL or the data folder's); "
        "a backup's: sqlite:////backup/DIR/courtscribe.db.")),
) -> None:
    """Copy the record store (hearings, ledgers, participants, tokens) into another database,
    row for row, and verify every hearing there: from one box's SQLite to a cluster's PostgreSQL,
    or a backup back into either. Stop the server first: a write meanwhile rolls the copy back."""
    from sqlalchemy.exc import SQLAlchemyError

    from . import backup, transfer
    from .access.audit import AuditLog
    from .db import served

    settings = _settings()
    if (source or settings.records_url) == settings.records_url and served(settings.data_dir):
        fail(f"a courtscribe server is serving from {settings.data_dir}: stop it first (what it records "
             "after the copy would be in the old store only)")
    key = backup.verify_key(settings)
    anchors = AuditLog(settings.audit_file, key).entries() if settings.audit_file.is_file() else []
    try:
        made = transfer.copy_store(source or settings.records_url, target, seal_key=key, anchors=anchors)
    except transfer.TransferError as err:
        fail(str(err))
    except (SQLAlchemyError, OSError) as err:
        fail(f"the copy into {masked_url(target)} failed: {err}")
    for line, bad in made.lines():
        typer.echo(line, err=bad)
    if not made.ok:
        raise typer.Exit(1)
    password = " (its password as before)" if "***" in made.target else ""
    typer.echo(f"to serve from it, stop the server and start it with COURTSCRIBE_DATABASE_URL='{made.target}'"
               f"{password}: archive/, audit/, spool/ and keys/ stay in the data folder {settings.data_dir}")


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
