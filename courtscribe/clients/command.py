"""`courtscribe stream`: a file or a microphone (a mixer's seats, each a channel) into a running
server, as a court's recorder PC runs it; what the server may not have is kept, and said."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from ..arguments import fail, parse_roles

if TYPE_CHECKING:
    import asyncio

    from websockets.exceptions import ConnectionClosed


def stream_command(
    audio: Optional[Path] = typer.Argument(
        None, help="Audio file to replay as a live source (or use --mic)."),
    mic: bool = typer.Option(
        False, "--mic", help="Stream a live input device instead of a file; Ctrl-C ends."),
    device: str = typer.Option(
        "alsa:default", help="Input device for --mic as FORMAT:NAME, e.g. alsa:hw:1,0."),
    url: str = typer.Option(
        "ws://127.0.0.1:8000/v1/stream", help="The server's native streaming endpoint."),
    speed: float = typer.Option(
        1.0, help="Replay speed: 1 = real time, 2 = twice as fast, 0 = as fast as accepted."),
    hearing: Optional[str] = typer.Option(
        None, help="Hearing id (a room recorder's token needs none: its room's hearing)."),
    channel: int = typer.Option(
        0, help="Courtroom channel this source is (with --seats: the first's)."),
    role: Optional[str] = typer.Option(
        None, help="Role of the speaker on this channel, e.g. 审判长."),
    seats: int = typer.Option(0, min=0, help=(
        "A mixer with a microphone per seat: stream its first N channels at once, each a seat of "
        "its own (channel, channel+1, …), on one clock; their roles: --channel-role, else the "
        "hearing's channel map. A seat whose stream ends records on into --unsent-dir (--mic).")),
    channel_role: list[str] = typer.Option(
        [], "--channel-role", help="With --seats: CHANNEL=ROLE, e.g. 0=审判长."),
    hotword: list[str] = typer.Option([], "--hotword"),
    token: Optional[str] = typer.Option(
        None, envvar="COURTSCRIBE_TOKEN", help="This recorder's access token."),
    cafile: Optional[Path] = typer.Option(
        None, help="CA certificate to trust for a wss:// server (PEM)."),
    reconnect_s: float = typer.Option(600.0, "--reconnect-s", min=0, help=(
        "When the server restarts or the network drops, keep trying this many seconds to come "
        "back, keeping the audio meanwhile (0: end the stream instead).")),
    unsent_dir: Path = typer.Option(Path("."), "--unsent-dir", file_okay=False, help=(
        "With --mic: where the audio the server may not have is saved when the stream ends while "
        "the server is unreachable (Ctrl-C, or --reconnect-s ran out).")),
) -> None:
    """Stream a file (in real time) or a microphone to a running server; partials update in place,
    finals print as lines. A server restart or a dropped connection does not end it: the audio
    recorded meanwhile is sent when the server is back, from where its record of the channel
    ends."""
    import asyncio
    import signal
    import ssl
    from functools import partial

    from websockets.exceptions import ConnectionClosed, WebSocketException

    from ..audio import AudioError
    from .capture import CaptureError, chunks_from_device
    from .stream_client import NotTakenBack, chunks_from_file, fan_out, on_one_clock, stream

    if mic == (audio is not None):
        fail("give either an audio file or --mic")
    if seats and role:
        fail("--role names one channel's speaker: with --seats, give --channel-role CHANNEL=ROLE")
    seat_roles = {ch: r.label for ch, r in parse_roles(channel_role).items()}
    if strays := sorted(set(seat_roles) - set(range(channel, channel + seats))):
        fail(f"--channel-role names channel(s) {strays} that are not streamed: --seats N streams "
             f"channels {channel}…{channel + seats - 1}" if seats
             else "--channel-role is for --seats (a mixer's channels)")
    if mic and (why := _unwritable(unsent_dir)):  # now, not when the audio has nowhere else to go
        fail(f"--unsent-dir {unsent_dir}: {why}")

    def show(event: dict) -> None:
        if event["type"] == "partial":
            sys.stderr.write(f"\r\033[K… {event['speaker']}：{event['text']}")
        elif event["type"] == "final":
            u = event["utterance"]
            sys.stderr.write("\r\033[K")
            when = f"{u['start_ms'] / 1000:7.2f}–{u['end_ms'] / 1000:7.2f}"
            typer.echo(f"[{when}] {u['speaker']}：{u['text']}")
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
        chunks = (chunks_from_device(device, stop=stop, channels=seats) if audio is None
                  else chunks_from_file(audio, channels=seats))
        tls = ssl.create_default_context(cafile=str(cafile)) if cafile else None

        async def one(source, k: int, on_ready=None, **placed):
            started: list[dict] = []

            def ready(event: dict) -> None:
                started.append(event)
                if on_ready:
                    on_ready(event)
            try:
                keep = partial(_save_unsent, unsent_dir, channel + k, bool(seats)) if mic else None
                return await stream(url, source, speed=0 if mic else speed, hearing_id=hearing,
                                    channel=channel + k, role=seat_roles.get(channel + k, role),
                                    hotwords=hotword, on_event=show, stop=stop, token=token,
                                    ssl=tls, reconnect_s=reconnect_s, drain=mic, on_unsent=keep,
                                    seat=bool(seats), on_ready=ready, **placed)
            except Exception as err:
                if seats:  # said now, with its channel; refused at its start: no half a courtroom
                    sys.stderr.write(f"\r\033[Kchannel {channel + k}: {err}\n")
                    if not started:
                        stop.set()
                raise
        got = await on_one_clock(one, fan_out(chunks, seats)) if seats else [await one(chunks, 0)]
        streamed = []
        for g in got:
            if isinstance(g, BaseException):  # each was said as it came; the others streamed on (or
                raise g                       # stopped, if it was refused)
            streamed.append(g)
        return all(any(e["type"] == "end" and "reason" not in e for e in g.events)
                   for g in streamed)

    try:
        ended = asyncio.run(main())
    except (AudioError, CaptureError) as err:
        fail(str(err))
    except ConnectionClosed as err:  # the server went away (restart, crash, network) mid-stream
        sys.stderr.write("\r\033[K")
        fail(_ended_early(url, err), code=1)
    except NotTakenBack as err:  # it restarted and did not take the stream back in --reconnect-s
        sys.stderr.write("\r\033[K")
        fail(f"the server at {url} restarted: {err}", code=1)
    except (OSError, RuntimeError, WebSocketException) as err:  # refused: address, TLS, HTTP status
        fail(f"cannot stream to {url}: {err}")
    if not ended:  # closed in good order, but before the server said the stream was done
        sys.stderr.write("\r\033[K")
        fail(_ended_early(url), code=1)


def _unwritable(folder: Path) -> str | None:
    """Why a microphone's unsent audio could not be saved in ``folder``, if it could not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        return err.strerror or str(err)
    return None if os.access(folder, os.W_OK | os.X_OK) else "not writable"


class _UnsentFile:
    """A seat's audio after its stream ended, written on into the file its unsent audio went to."""

    def __init__(self, out, path: Path, channel: int, seconds: float) -> None:
        self.out = out
        self.path = path
        self.channel = channel
        self.seconds = seconds
        self.more = 0  # samples written after the stream ended

    def write(self, audio) -> None:
        if self.out is None:
            return
        try:
            self.out.write(audio)
            self.more += audio.size
        except Exception as err:  # noqa: BLE001 - said, and the file is kept as far as it got
            sys.stderr.write(f"\r\033[Kchannel {self.channel}: recording into {self.path} "
                             f"stopped: {err}\n")
            self.close()

    def close(self) -> None:
        if self.out is None:
            return
        out = self.out
        self.out = None
        try:
            out.close()
        except Exception as err:  # noqa: BLE001 - a full disk at the end: what was written is there
            sys.stderr.write(f"\r\033[Kchannel {self.channel}: {self.path} not finished: {err}\n")
        from ..audio import SAMPLE_RATE

        seconds = self.seconds + self.more / SAMPLE_RATE
        sys.stderr.write(f"\r\033[Kchannel {self.channel}: {seconds:.0f} s of its audio the server "
                         f"may not have are in {self.path}\n")


def _save_unsent(folder: Path, channel: int, record_on: bool, hearing_id: str | None, at_ms: int,
                 audio) -> _UnsentFile | None:
    """A microphone's audio the server may not have (the stream ended while it was unreachable),
    saved beside the recorder (else in the temporary folder), its owner's alone (court audio), and
    said so: it exists nowhere else. ``record_on``: a mixer's seat, whose microphone records on
    while the others stream: what it records next is written on into the same file."""
    import re
    import tempfile

    import soundfile as sf

    from ..audio import SAMPLE_RATE

    said = time.strftime("%H%M%S", time.gmtime(at_ms // 1000))
    hearing = re.sub(r"[^\w.-]", "_", hearing_id or "hearing")[:64]  # the server's: never a path
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
            out = sf.SoundFile(fd, "w", SAMPLE_RATE, 1, subtype="PCM_16", format="WAV",
                               closefd=True)
            out.write(audio)
            if not record_on:
                out.close()
        except Exception as err:  # noqa: BLE001 - the next place, then said: the audio is at stake
            path.unlink(missing_ok=True)
            problems.append(f"{place}: {err}")
            continue
        on = ("; its stream has ended, its microphone records on into that file until this command "
              "ends" if record_on else "")
        when = time.strftime("%H:%M:%S", time.gmtime(at_ms // 1000))
        sys.stderr.write(f"\r\033[Kthe server may not have {seconds:.0f} s of channel {channel}'s "
                         f"audio (hearing {hearing_id or '?'}, from {when} of its time): saved in "
                         f"{path.resolve()}{on}\n")
        return _UnsentFile(out, path.resolve(), channel, seconds) if record_on else None
    sys.stderr.write(f"\r\033[K{seconds:.0f} s of audio the server may not have could not be "
                     "saved: "
                     f"{'; '.join(problems)}\n")
    return None


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
