"""The ``courtscribe`` command: transcribe files, manage models, run the service."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from .config import get_settings
from .logs import configure
from .access.cli import audit_app, tokens_app
from .records.cli import app as records_app

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_show_locals=False)
models_app = typer.Typer(no_args_is_help=True, help="List, verify and fetch the models courtscribe uses.")
app.add_typer(models_app, name="models")
app.add_typer(records_app, name="records")
app.add_typer(tokens_app, name="tokens")
app.add_typer(audit_app, name="audit")


def _fail(message: str, code: int = 2) -> None:
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


def _settings(engine: str | None):
    settings = get_settings()
    if engine is None:
        return settings
    from .components import ENGINES

    if engine not in ENGINES:
        _fail(f"unknown engine {engine!r}: choose {' or '.join(ENGINES)}")
    return settings.model_copy(update={"engine": engine})


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

    settings = _settings(engine)
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


@models_app.command("list")
def models_list() -> None:
    """Every model courtscribe knows, where it comes from, and whether it is available here."""
    from .models import ModelError, default_registry

    reg = default_registry()
    for spec in reg.specs.values():
        try:
            where = str(reg.resolve(spec.name))
            state = "available"
        except ModelError:
            where, state = "-", "missing"
        src = spec.source
        origin = getattr(src, "model_id", None) or getattr(src, "repo", None) or f"wheel:{src.package}"
        typer.echo(f"{spec.name:26} {spec.kind:14} {state:10} {origin}  [{spec.licence}]  {where}")


@models_app.command("verify")
def models_verify(
    names: list[str] = typer.Argument(None, help="Models to verify (default: every available one)."),
    embedded: bool = typer.Option(False, "--embedded", help="Only the embedded defaults (must all pass)."),
) -> None:
    """Rehash model files against the pinned SHA-256; exit 1 on any mismatch."""
    from .models import default_registry

    reg = default_registry()
    chosen = names or [s.name for s in reg.specs.values() if s.embedded or not embedded]
    failed = False
    for name in chosen:
        spec = reg.get(name)
        res = reg.verify(name)
        if res.ok:
            typer.echo(f"ok       {name}  {res.path}")
        elif res.path is None and not spec.embedded and not names:
            typer.echo(f"missing  {name}  (production model, not installed)")
        else:
            failed = True
            for problem in res.problems:
                typer.echo(f"FAILED   {name}  {problem}", err=True)
    if not names:  # the font printed 笔录 embed is pinned like the models
        from .records import fonts

        try:
            ok, what = fonts.verify()
            typer.echo(f"{'ok' if ok else 'FAILED':<8} bilu-font  {what}", err=not ok)
            failed |= not ok
        except fonts.FontMissing as err:
            typer.echo(f"missing  bilu-font  ({err})")
    if failed:
        raise typer.Exit(1)


@models_app.command("fetch")
def models_fetch(name: str, model_id: Optional[str] = typer.Option(None, "--model-id", help="ModelScope id instead of the catalog's."),
                 revision: Optional[str] = typer.Option(None, help="ModelScope revision instead of the catalog's.")) -> None:
    """Download a production model from ModelScope into $COURTSCRIBE_MODEL_DIR (needs the hub)."""
    from .models import ModelError, default_registry

    try:
        typer.echo(default_registry().fetch(name, model_id=model_id, revision=revision))
    except ModelError as err:
        _fail(str(err))


@app.command("stream")
def stream_cmd(
    audio: Optional[Path] = typer.Argument(None, help="Audio file to replay as a live source (or use --mic)."),
    mic: bool = typer.Option(False, "--mic", help="Stream a live input device instead of a file; Ctrl-C ends."),
    device: str = typer.Option("alsa:default", help="Input device for --mic as FORMAT:NAME, e.g. alsa:hw:1,0."),
    url: str = typer.Option("ws://127.0.0.1:8000/v1/stream", help="The server's native streaming endpoint."),
    speed: float = typer.Option(1.0, help="Replay speed: 1 = real time, 2 = twice as fast, 0 = as fast as accepted."),
    hearing: Optional[str] = typer.Option(None, help="Hearing id (a room recorder's token needs none: its room's hearing)."),
    channel: int = typer.Option(0, help="Courtroom channel this source is."),
    role: Optional[str] = typer.Option(None, help="Role of the speaker on this channel, e.g. 审判长."),
    hotword: list[str] = typer.Option([], "--hotword"),
    token: Optional[str] = typer.Option(None, envvar="COURTSCRIBE_TOKEN", help="This recorder's access token."),
    cafile: Optional[Path] = typer.Option(None, help="CA certificate to trust for a wss:// server (PEM)."),
) -> None:
    """Stream a file (in real time) or a microphone to a running server; partials update in place,
    finals print as lines."""
    import asyncio
    import signal
    import ssl

    from .audio import AudioError
    from .clients.capture import CaptureError, chunks_from_device
    from .clients.stream_client import chunks_from_file, stream

    if mic == (audio is not None):
        _fail("give either an audio file or --mic")

    def show(event: dict) -> None:
        if event["type"] == "partial":
            sys.stderr.write(f"\r\033[K… {event['speaker']}：{event['text']}")
        elif event["type"] == "final":
            u = event["utterance"]
            sys.stderr.write("\r\033[K")
            typer.echo(f"[{u['start_ms'] / 1000:7.2f}–{u['end_ms'] / 1000:7.2f}] {u['speaker']}：{u['text']}")
        elif event["type"] == "error":
            sys.stderr.write(f"\r\033[Kserver: {event['code']}: {event['message']}\n")

    async def main() -> None:
        stop = asyncio.Event()  # Ctrl-C ends the source; the server still sends the last finals
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
        chunks = chunks_from_device(device, stop=stop) if mic else chunks_from_file(audio)
        tls = ssl.create_default_context(cafile=str(cafile)) if cafile else None
        await stream(url, chunks, speed=0 if mic else speed, hearing_id=hearing, channel=channel, role=role,
                     hotwords=hotword, on_event=show, stop=stop, token=token, ssl=tls)

    try:
        asyncio.run(main())
    except (AudioError, CaptureError) as err:
        _fail(str(err))
    except (OSError, RuntimeError) as err:
        _fail(f"cannot stream to {url}: {err}")


@app.command()
def serve(host: Optional[str] = typer.Option(None), port: Optional[int] = typer.Option(None),
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

    from .server.app import InsecureBind, create_app
    from .cluster.proxy import MAX_WS_MESSAGE  # larger: closed (1009); each protocol refuses its own in words

    settings = _settings(engine)
    update = {k: v for k, v in (("host", host), ("port", port), ("ssl_certfile", ssl_certfile),
                                ("ssl_keyfile", ssl_keyfile)) if v is not None}
    if insecure_no_auth:
        update["insecure_no_auth"] = True
    settings = settings.model_copy(update=update)
    if bool(settings.ssl_certfile) != bool(settings.ssl_keyfile):
        _fail("TLS needs both --ssl-certfile and --ssl-keyfile")
    configure(settings.log_level, settings.log_format)
    if cluster:
        _serve_cluster(cluster, serve_config, settings, engine, insecure_no_auth)
        return
    try:
        application = create_app(settings)
    except InsecureBind as err:
        _fail(str(err))
    config = uvicorn.Config(application, host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
                            ssl_certfile=settings.ssl_certfile, ssl_keyfile=settings.ssl_keyfile,
                            ws_max_size=MAX_WS_MESSAGE, timeout_keep_alive=5, server_header=False,
                            ws_ping_interval=settings.ws_ping_interval_s, ws_ping_timeout=settings.ws_ping_timeout_s,
                            limit_concurrency=settings.max_connections,
                            # X-Forwarded-For only from proxies court IT names (none by default)
                            proxy_headers=bool(settings.forwarded_allow_ips),
                            forwarded_allow_ips=settings.forwarded_allow_ips or None,
                            timeout_graceful_shutdown=15)  # SIGTERM: streams get 15 s to finish their finals
    server = _loopback_server()(config) if settings.insecure_no_auth else uvicorn.Server(config)
    server.run()
    if getattr(server, "refused", None):
        _fail(server.refused)


def _loopback_server():
    import uvicorn

    from .access.guard import is_loopback

    class LoopbackServer(uvicorn.Server):
        """Without tokens: after binding, every bound address must be a loopback one, else stop."""
        refused: str | None = None

        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            bound = [sock.getsockname()[0] for srv in getattr(self, "servers", []) for sock in (srv.sockets or [])]
            wide = [a for a in bound if not is_loopback(a)]
            if wide:
                self.refused = (f"--insecure-no-auth is refused: the server was bound to {', '.join(wide)}, "
                                "which other hosts can reach; loopback addresses only")
                self.should_exit = True
    return LoopbackServer


def _serve_cluster(address: str, config: Optional[Path], settings, engine: Optional[str], insecure: bool) -> None:
    from .access.guard import is_loopback
    from .cluster.app import serve_cluster

    if insecure and not is_loopback(settings.host):
        _fail(f"--insecure-no-auth is refused on {settings.host}: loopback addresses only")
    if settings.ssl_certfile:
        _fail("TLS on a cluster terminates at its ingress (load balancer, Kubernetes Ingress), not in courtscribe")
    overrides: dict = {"engine": engine} if engine else {}
    if insecure:
        overrides["insecure_no_auth"] = True
    # the Serve config's address stands unless the command line or the environment names one
    given = settings.model_fields_set
    serve_cluster(address, config, host=settings.host if "host" in given else None,
                  port=settings.port if "port" in given else None, settings=overrides)


def main() -> None:
    app()
