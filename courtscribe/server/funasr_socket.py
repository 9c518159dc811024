"""FunASR's WebSocket protocol (runtime/docs/websocket_protocol.md), so FunASR's own Python and
HTML5 clients work against courtscribe unchanged, at ``/`` and ``/funasr``.

Client: a JSON config ``{mode, wav_name, wav_format, audio_fs, chunk_size, hotwords, itn,
is_speaking}``, binary audio, ``{"is_speaking": false}`` (current clients: ``"is_end": true``) at
the end of each file, then the next file's config over the same socket. Server: ``{mode,
wav_name, text, is_final, timestamp, stamp_sents}`` where ``mode`` is ``2pass-online``/
``2pass-offline`` in 2pass mode, else the requested mode; online texts are increments that FunASR
clients append; ``{mode, wav_name, is_final, is_end: true}`` acknowledges an ``is_end``. No ``mode``,
or a live mode with a file format (``wav_format`` not ``pcm``), is a whole file (``Config``); PCM
with no ``mode`` is recorded live and answered once (FunASR's C++ offline client); offline PCM that
comes as it is spoken (a microphone) is recorded live and answered at each pause, as FunASR's own
server answers it, in ``offline`` messages. The last config holds for audio after a file's end;
audio before any config is refused, never silently dropped.
"""
from __future__ import annotations

import json
import time
import re


from fastapi import APIRouter
from starlette.websockets import WebSocket

from ..asr.base import DecodeOptions
from ..text import grown
from ..access.guard import Denied
from ..logs import get_logger
from ..records.model import HEARING_ID, Utterance
from ..streaming.events import Error, Event, Final, Partial
from ..streaming.stability import beyond
from ..streaming.live import Gate, LiveHearings, PcmInput, open_gate
from ..streaming.protocol import ErrorCode, StreamError
from ..streaming.session import StreamSession
from ..streaming.source import ANY_CHANNEL, SessionConfig
from . import deps
from .auth import ws_deny, ws_enter
from .files import FileWork
from .funasr_config import Config, Refused, reply
from .funasr_times import line_sents, line_timestamp
from .funasr_whole import MAX_OFFLINE_HELD, Held, answer_once, answer_whole
from .sockets import close, gate, idle_limit, run, send

MAX_OFFLINE_BYTES = 512 << 20
PACE_PROBE_S = 2.0  # offline PCM's first seconds of audio tell a microphone from a file sent at once
PACE_LIMIT_S = 60.0  # … and a minute of it held whole is a file


_held = Held(MAX_OFFLINE_HELD)


log = get_logger(__name__)
router = APIRouter()


@router.websocket("/")
async def funasr_root(ws: WebSocket) -> None:
    """FunASR clients connect to ws://host:port with no path (token: ?token=…, or a listed recorder host)."""
    await _funasr(ws)


@router.websocket("/funasr")
async def funasr_path(ws: WebSocket) -> None:
    await _funasr(ws)


async def _funasr(ws: WebSocket) -> None:
    access = deps.access(ws)
    async with ws_enter(ws, access, legacy=True) as who:
        if not who:
            return
        hearing_id = ws.query_params.get("hearing")
        if hearing_id is not None and not re.fullmatch(HEARING_ID, hearing_id):
            await ws_deny(ws, access, Denied(400, "bad_message", f"?hearing={hearing_id!r} is not a hearing id"), who)
            return
        async with gate(access, who) as check:
            await funasr_stream(ws, deps.live(ws), deps.files(ws), check, hearing_id=hearing_id,
                                holder=who.token_id)


class _File:
    """One utterance stream of a connection (a FunASR client sends several files over one socket):
    its config, its live session or offline bytes, what was sent of each line, what went wrong."""

    def __init__(self, cfg: Config, holder: str = ""):
        self.cfg, self.holder = cfg, holder  # holder: whose token its whole file counts against
        self.session: StreamSession | None = None
        self.pcm: PcmInput | None = None
        self.offline = bytearray()  # a whole file's bytes as they come (frames of any size, one buffer)
        self.refused = False  # a whole file refused part-way (too large, busy): never answered from a part
        self.sent: dict[str, str] = {}
        self.lines: list[Utterance] = []  # a file answered once: its finals until its end
        self.errors: list[str] = []
        self.cut: str | None = None  # why it ended before its end (the server stopping)
        self.ending = False  # its end was asked: the lines still to come are its last
        self.held: dict | None = None  # the last line's reply since then: it goes out as the is_final one
        self.courtroom: str | None = None  # the recorder's courtroom: its front ends (offline mode)
        self.live = False  # offline PCM coming as it is spoken: recorded and answered live
        self.began: float | None = None  # when its first audio came (offline PCM: how it is paced)
        self.unrecorded: str | None = None  # said in the answer of a whole file sent with ?hearing=

    @property
    def whole(self) -> bool:
        return self.cfg.whole and not self.live

    def spoken(self, more: int) -> bool:
        """Whether offline PCM still held whole comes as it is spoken (``more``: bytes just come):
        past its first ``PACE_PROBE_S``, at least half its time has passed since it began (a
        microphone; one whose first frames were read in a burst passes a little later), where a
        file sent at once takes next to none. Past ``PACE_LIMIT_S`` held, it is a file."""
        now = time.monotonic()
        self.began = self.began or now
        heard_s = (len(self.offline) + more) / 2 / self.cfg.audio_fs
        if not self.cfg.paceable or self.live or self.refused or not PACE_PROBE_S <= heard_s <= PACE_LIMIT_S:
            return False
        return now - self.began >= heard_s / 2

    def whole_file(self) -> bytes:
        """The whole file's bytes, the socket's buffer given back."""
        data = bytes(self.offline)
        self.drop()
        return data

    def drop(self) -> None:
        _held.give(len(self.offline), self.holder)
        self.offline = bytearray()


async def funasr_stream(ws: WebSocket, live: LiveHearings, files: FileWork, gate: Gate = open_gate,
                        hearing_id: str | None = None, holder: str = "") -> None:
    """An accepted FunASR client's socket; ``hearing_id`` (``?hearing=`` on the URL, an extension
    FunASR clients need not know) puts its audio and lines into that hearing's record.

    As FunASR's own server (runtime/python/websocket, since its PR #3440): ``is_speaking: false``
    finishes the current file (its last lines, the last of them the ``is_final`` reply: an empty
    one when no line was left to say); with ``is_end:
    true`` an acknowledgement ``{mode, wav_name, is_final: true, is_end: true}`` follows
    (``is_final: false`` and ``error`` when the file had a failure). The socket stays open for the
    next file's config until the client closes it (or is idle past the timeout)."""
    adapter = _Funasr(ws, live, files, gate, hearing_id, holder)
    await run(ws, adapter.idle_s, adapter)


class _Funasr:
    """FunASR's protocol: one file at a time over the socket, each opened by its config."""

    def __init__(self, ws: WebSocket, live: LiveHearings, files: FileWork, gate: Gate, hearing_id: str | None,
                 holder: str = ""):
        self.ws, self.live, self.files, self.gate, self.hearing_id = ws, live, files, gate, hearing_id
        self.holder = holder
        self.file: _File | None = None
        self.config: Config | None = None  # the last config: it holds for audio after a file's end
        self.unfiled: list[str] = []  # what went wrong outside a file: told in the next acknowledgement
        self.refusal: dict | None = None  # the mode and wav_name of a file refused at its config
        self.refused = False

    async def text(self, text: str) -> bool:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            data = None
        if not isinstance(data, dict):  # said (FunASR's own server drops the connection), not fatal
            raise StreamError(ErrorCode.BAD_JSON, "a text frame must be a JSON object (the config, or "
                              f"is_speaking false at a file's end); this one was not: {text[:80]!r}")
        if self.file is None and data.get("is_speaking") is not False:
            try:
                self.config = Config(data, self.config)
            except Refused as err:  # its audio is dropped until the next config: said now and at its end
                self.config = None
                self.refusal = err.names
                raise
            if self.refusal is not None:  # the refused file was never ended: its error is not this one's
                self.refusal = None
                self.unfiled = []
            await self._open(self.config, said=False)
        if data.get("is_speaking") is False:
            done, self.file = self.file, None
            errors, self.unfiled = self.unfiled, []
            names = self.refusal or {"wav_name": str(data.get("wav_name") or "microphone")}
            await _finish(self.ws, self.live, self.files, done, ack=bool(data.get("is_end")), names=names,
                          errors=errors)
            self.refusal = None
        return True

    async def _open(self, cfg: Config, *, said: bool) -> None:
        """A file with ``cfg`` (``said``: its warnings were said at its config, for an earlier file)."""
        self.file = _File(cfg, self.holder)
        self.file.errors, self.unfiled = self.unfiled, []
        await _begin(self.ws, self.file, self.gate, self.hearing_id, warn=not said)

    async def audio(self, data: bytes) -> None:
        if self.file is None and self.config is None:  # said once; the acknowledgement says it again
            if not self.unfiled:
                raise StreamError("not_started", "audio before the first config (the JSON message that opens a "
                                  "file) is discarded: send the config first")
            return
        if self.file is None:  # after a file's end, with no new config: the next file, as the last one
            assert self.config is not None
            await self._open(self.config, said=True)
        file = self.file
        assert file is not None
        if file.spoken(len(data)):
            await self._live_now(file, data)
            return
        if not file.whole and file.session is None:
            await _join(self.ws, self.live, file, self.gate, self.hearing_id)
        await _audio(self.ws, file, data)

    async def _live_now(self, file: _File, data: bytes) -> None:
        """Offline PCM found to come as it is spoken: it joins its hearing with what came so far and
        ``data``, fed a second at a time (a live frame's size). A join refused (busy, the hearing
        closed) refuses the file: its error is said, and a part of it is never answered as whole."""
        try:
            await _join(self.ws, self.live, file, self.gate, self.hearing_id)
        except BaseException:
            file.refused = True
            file.drop()
            raise
        file.live = True
        assert file.session is not None and file.pcm is not None
        held = file.whole_file() + data
        step = file.cfg.audio_fs * 2
        for at in range(0, len(held), step):
            await file.session.feed(file.pcm.convert(held[at:at + step]))

    def idle_s(self) -> float:
        """How long the client may send nothing: a live file not started yet (the page waits for its
        Start click) holds nothing, so it may wait far longer than a running one."""
        waiting = self.file is not None and not self.file.whole and self.file.session is None
        return idle_limit(self.live.idle_timeout_s, waiting=waiting)

    async def failed(self, err: StreamError) -> bool:
        file = self.file
        if not err.announced:  # said in FunASR's reply shape, which its clients show
            said = reply(file.cfg if file else None, is_final=err.fatal, error=err.message, code=err.code)
            await send(self.ws, {**said, **(err.names if isinstance(err, Refused) else {})})
        if not err.fatal:
            (file.errors if file is not None else self.unfiled).append(err.message)
        if err.close_code is not None:  # refused (scope, no such hearing, limits): no file was taken
            self.file, self.refused = None, True
            if file is not None:
                file.drop()
                await self.live.leave(file.session)
            await close(self.ws)
            return False
        return not err.fatal

    async def _cut_short(self, file: _File) -> None:
        """The server stops mid-file: a whole file is not decoded from a part, a live one's lines so
        far are answered with the reason; either way the client is told to send it again."""
        note = "the server is restarting: this file was cut short at what had arrived; send it again"
        if file.whole:
            file.refused = True
            await send(self.ws, reply(file.cfg, is_final=True, error=note, code="server_restart"))
        else:
            file.errors.append(note)
            file.cut = note

    async def end(self, gone: bool) -> None:
        if self.refused:
            return
        if gone:
            if self.file is not None:
                self.file.drop()
                await self.live.leave(self.file.session)  # what was received is still stored
            return
        if self.file is not None:  # a fatal error (or idle) mid-file: finish what came, then close
            if deps.stopping(self.ws).begun.is_set():  # no answer may pass for the whole file's
                await self._cut_short(self.file)
            await _finish(self.ws, self.live, self.files, self.file, ack=False)
        await close(self.ws)


async def _begin(ws: WebSocket, file: _File, gate: Gate, hearing_id: str | None, *, warn: bool = True) -> None:
    """A file's first message taken. A live file joins its hearing with its first audio, not here:
    FunASR's page sends its config on connecting and its audio when the user clicks Start, maybe
    minutes later, and a socket waiting so holds no stream and no hearing meanwhile."""
    cfg = file.cfg

    async def say(warning: str) -> None:  # once, in a frame FunASR clients show and skip, or in the answer
        if cfg.answer_only:
            cfg.notes.append(warning)
        else:
            await send(ws, reply(cfg, warning=warning))
    if cfg.hotword_problem and warn:
        await say(cfg.hotword_problem)
    if cfg.whole:  # a file of its own: it joins no hearing (offline PCM: unless it comes as spoken)
        unrecorded = (f"a whole file ({cfg.mode}, {cfg.wav_format}) is answered here and not put in hearing "
                      f"{hearing_id}: stream PCM as it is spoken to record it there, or upload it with "
                      "POST /v1/jobs and hearing_id")
        if hearing_id is not None and cfg.paceable:
            file.unrecorded = unrecorded  # said in its answer, if it is not found to be a microphone
        elif hearing_id is not None and warn:
            await say(unrecorded)
        file.courtroom = (await gate(None, into_room=False)).courtroom


async def _join(ws: WebSocket, live: LiveHearings, file: _File, gate: Gate, hearing_id: str | None) -> None:
    """A live file's session, at its first audio: into its hearing, through the gate."""
    async def emit(event: Event) -> None:  # bound to this file: its last finals come after the next begins
        await _deliver(ws, file, event)

    admitted = await gate(hearing_id)
    file.session = await live.join(SessionConfig(
        hearing_id=admitted.hearing_id, channel=ANY_CHANNEL, court=admitted.court, courtroom=admitted.courtroom,
        options=DecodeOptions(hotwords=file.cfg.hotwords, itn=file.cfg.itn)), emit)
    file.pcm = PcmInput(file.cfg.audio_fs)


async def _audio(ws: WebSocket, file: _File, data: bytes) -> None:
    if file.whole:
        if len(file.offline) + len(data) > MAX_OFFLINE_BYTES:
            file.refused = True
            raise StreamError("frame_too_large", "offline upload exceeds 512 MB", fatal=True)
        if not _held.take(len(data), file.holder):
            file.refused = True
            raise StreamError("busy", "the server holds as many whole files as it may in memory right now: "
                              "send this one again in a minute, or upload it with POST /v1/jobs", fatal=True)
        file.offline += data
        return
    if file.session is None or file.pcm is None:  # a live mode's file begins with its session
        raise StreamError("not_started", "audio before the file's first message")
    await file.session.feed(file.pcm.convert(data))


async def _deliver(ws: WebSocket, file: _File, event: Event) -> None:
    """A live event in FunASR's reply shape (online texts as increments, 2pass finals whole); a file
    answered once keeps its finals and errors for its one reply."""
    cfg, sent = file.cfg, file.sent
    live_mode = "2pass-online" if cfg.mode == "2pass" else cfg.mode
    if cfg.once:
        if isinstance(event, Final):
            file.lines.append(event.utterance)
        elif isinstance(event, Error):
            file.errors.append(event.message)
        return
    if isinstance(event, Partial):
        # FunASR clients append text in the order it was said: after the final before it; offline
        # mode (a microphone's) has no partials
        if event.ahead or cfg.mode == "offline":
            return
        settled = event.text[:event.stable]  # FunASR clients append increments: only what stays
        if more := grown(sent.get(event.utterance_id, ""), settled):
            sent[event.utterance_id] = settled
            await _line(ws, file, reply(cfg, mode=live_mode, text=more), last=False)
    elif isinstance(event, Final):
        u = event.utterance
        if cfg.mode in ("2pass", "offline"):
            sent.pop(event.utterance_id, None)
            await _line(ws, file, reply(cfg, mode=cfg.result_mode, text=u.text, timestamp=line_timestamp(u),
                                        stamp_sents=line_sents(u)))
        else:  # online: the rest of the utterance (after what was sent, as the final reads it)
            sent_text = sent.pop(event.utterance_id, "")
            if rest := beyond(sent_text, u.text):
                await _line(ws, file, reply(cfg, mode="online", text=rest))
    elif isinstance(event, Error):  # an utterance the engine failed on, a full archive disk…
        file.errors.append(event.message)
        said = reply(cfg, mode=live_mode, is_final=bool(event.fatal), error=event.message, code=event.code)
        await _line(ws, file, said, last=False)


async def _line(ws: WebSocket, file: _File, message: dict, *, last: bool = True) -> None:
    """A line's reply (``last``: a final's, not a partial's). Once the file's end was asked, the last
    final's is held back to be its ``is_final`` reply, as FunASR's servers send the last text there
    (its ``funasr_client_api`` returns that message); what comes after it sends it on first."""
    held, file.held = file.held, None  # taken before any await: a partial's task may come meanwhile
    if held is not None:
        await send(ws, held)
    if file.ending and last:
        file.held = message
    else:
        await send(ws, message)


async def _finish(ws: WebSocket, live: LiveHearings, files: FileWork, file: _File | None, *, ack: bool,
                  names: dict | None = None, errors: list[str] | None = None) -> None:
    """End one file: its last lines, FunASR's closing ``is_final`` reply, and (``is_end``) the
    acknowledgement its current clients wait for before sending the next file (``errors``: what
    went wrong outside any file)."""
    if file is not None:
        file.ending = True
        await live.leave(file.session)
        cfg = file.cfg
        if file.whole and file.refused:  # its error was said; a part of it is not its text
            file.drop()
        elif file.whole:
            err = await answer_whole(ws, live, files, cfg, file.whole_file(), file.courtroom, file.unrecorded)
            if err:
                file.errors.append(err)
        else:
            file.drop()  # a file gone live holds nothing: its held bytes went to its session
            problems = "; ".join(dict.fromkeys(file.errors)) or None
            cut = {"error": file.cut, "code": "server_restart"} if file.cut else {}
            if cfg.once:
                last = answer_once(cfg, file.lines, error=problems)
            else:  # the last line's reply, or an empty one where every line went out before the end
                last = {**(file.held or reply(cfg)), "is_final": True, **cut}
            file.ending = False  # a line later still (none should be) goes out as it comes
            file.held = None
            await send(ws, last)
    if ack:
        errors = file.errors if file else errors or []
        named = {"mode": file.cfg.mode, "wav_name": file.cfg.wav_name} if file else names or {}
        ack_reply = {"mode": "2pass", "wav_name": "microphone", **named, "is_final": not errors, "is_end": True}
        if errors:
            ack_reply["error"] = "; ".join(dict.fromkeys(errors))
        await send(ws, ack_reply)
