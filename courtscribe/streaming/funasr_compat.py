"""FunASR's WebSocket protocol (runtime/docs/websocket_protocol.md), so FunASR's own Python and
HTML5 clients work against courtscribe unchanged, at ``/`` and ``/funasr``.

Client: a JSON config ``{mode, wav_name, wav_format, audio_fs, chunk_size, hotwords, itn,
is_speaking}``, binary audio, ``{"is_speaking": false}`` at the end. Server: ``{mode, wav_name,
text, is_final, timestamp, stamp_sents}`` where ``mode`` is ``2pass-online``/``2pass-offline`` in
2pass mode, else the requested mode. Online texts are increments that FunASR clients append.
"""
from __future__ import annotations

import asyncio
import json
import re

from starlette.websockets import WebSocket, WebSocketDisconnect

from ..asr.base import DecodeOptions
from ..asr.hotwords import HotwordError, merge, parse_weighted
from ..asr.text import join_pieces
from ..asr.vad import decode_windows
from ..audio import SAMPLE_RATE, AudioError, decode, pcm16_to_float, resample
from ..records.model import Token
from .live import Gate, Live, PcmInput, _send, close_session, open_gate, open_session, receive
from .protocol import SAMPLE_RATES, StreamError
from ..transcribe import transcribe_speech
from .session import SessionConfig

_PUNCT = "，。？！、；：,.?!;:"
MAX_OFFLINE_BYTES = 512 << 20


def parse_hotwords(value) -> tuple[tuple[str, ...], str | None]:
    """FunASR sends hotwords as a JSON string ``{"word": weight}`` (or space-separated words).
    Returns the usable words and, when some entries were refused, why."""
    try:
        return tuple(parse_weighted(value)), None
    except HotwordError as err:
        return tuple(err.usable), str(err)


def timestamp(tokens: list[Token]) -> str:
    return json.dumps([[t.start_ms, t.end_ms] for t in tokens])


def stamp_sents(tokens: list[Token]) -> list[dict]:
    """Sentences as FunASR reports them: characters space-separated, their punctuation, times."""
    sents, cur = [], []
    for t in tokens:
        cur.append(t)
        if t.text.strip()[-1:] in _PUNCT:
            sents.append(cur)
            cur = []
    if cur:
        sents.append(cur)
    out = []
    for s in sents:
        text = "".join(t.text for t in s).strip()
        punc = text[-1] if text[-1:] in _PUNCT else ""
        body = text.rstrip(_PUNCT)
        seg = " ".join(body.split()) if re.search(r"[A-Za-z]", body) else " ".join(ch for ch in body if not ch.isspace())
        out.append({"text_seg": seg, "punc": punc, "start": s[0].start_ms, "end": s[-1].end_ms,
                    "ts_list": [[t.start_ms, t.end_ms] for t in s]})
    return out


def _reply(cfg: "_Config | None", *, text: str = "", is_final: bool = False, mode: str | None = None, **extra) -> dict:
    """One message in the shape FunASR clients read (``extra``: our ``warning``/``error``/``code``)."""
    return {"mode": mode or (cfg.mode if cfg else "2pass"), "wav_name": cfg.wav_name if cfg else "", "text": text,
            "is_final": is_final, "timestamp": "[]", "stamp_sents": [], **extra}


class _Config:
    def __init__(self, data: dict):
        self.mode = data.get("mode", "2pass")
        if self.mode not in ("online", "offline", "2pass"):
            raise StreamError("bad_message", f"mode must be online, offline or 2pass, not {self.mode!r}", fatal=True)
        self.wav_name = str(data.get("wav_name", "microphone"))
        self.wav_format = str(data.get("wav_format", "pcm")).lower()
        try:
            self.audio_fs = int(data.get("audio_fs", 16000) or 16000)
        except (TypeError, ValueError, OverflowError):
            self.audio_fs = 0
        if self.audio_fs not in SAMPLE_RATES:
            raise StreamError("bad_sample_rate", f"audio_fs {self.audio_fs} is not supported", fatal=True)
        self.hotwords, self.hotword_problem = parse_hotwords(data.get("hotwords"))


async def funasr_stream(ws: WebSocket, live: Live, gate: Gate = open_gate, hearing_id: str | None = None) -> None:
    """An accepted FunASR client's socket; ``hearing_id`` (``?hearing=`` on the URL, an extension
    FunASR clients need not know) puts its audio and lines into that hearing's record."""
    cfg: _Config | None = None
    session = None
    offline: list[bytes] = []
    sent: dict[str, str] = {}

    async def emit(event: dict) -> None:
        if cfg is None:
            return
        live_mode = "2pass-online" if cfg.mode == "2pass" else cfg.mode
        if event["type"] == "partial":
            prev, text = sent.get(event["utterance_id"], ""), event["text"]
            if text.startswith(prev) and len(text) > len(prev):  # FunASR clients append increments
                sent[event["utterance_id"]] = text
                await _send(ws, _reply(cfg, mode=live_mode, text=text[len(prev):]))
        elif event["type"] == "final":
            u = event["utterance"]
            tokens = [Token(**t) for t in u["tokens"]]
            if cfg.mode == "2pass":
                sent.pop(event["utterance_id"], None)
                await _send(ws, _reply(cfg, mode="2pass-offline", text=u["text"], timestamp=timestamp(tokens),
                                       stamp_sents=stamp_sents(tokens)))
            else:  # online: the rest of the line, as an increment
                prev = sent.pop(event["utterance_id"], "")
                rest = u["text"][len(prev):] if u["text"].startswith(prev) else ""
                if rest:
                    await _send(ws, _reply(cfg, mode="online", text=rest))
        elif event["type"] == "error":  # an utterance the engine failed on, a full archive disk…
            await _send(ws, _reply(cfg, mode=live_mode, is_final=bool(event.get("fatal")), error=event["message"],
                                   code=event["code"]))

    try:
        while True:
            try:
                msg = await receive(ws, live.idle_timeout_s)
                if msg.get("text") is not None:
                    try:
                        data = json.loads(msg["text"])
                    except (ValueError, RecursionError):
                        continue  # FunASR's server ignores what it cannot parse
                    if not isinstance(data, dict):
                        continue
                    if cfg is None:
                        cfg = _Config(data)
                        if cfg.hotword_problem:  # said once, in a frame FunASR clients show and skip
                            await _send(ws, _reply(cfg, warning=cfg.hotword_problem))
                        court, courtroom = await gate(hearing_id if cfg.mode != "offline" else None)
                        if cfg.mode != "offline":
                            session = await open_session(live, SessionConfig(
                                hearing_id=hearing_id, court=court, courtroom=courtroom,
                                options=DecodeOptions(hotwords=cfg.hotwords)), emit)
                            pcm = PcmInput(cfg.audio_fs)
                    if data.get("is_speaking") is False:
                        break
                elif msg.get("bytes") is not None and cfg is not None:
                    if cfg.mode == "offline":
                        offline.append(msg["bytes"])
                        if sum(map(len, offline)) > MAX_OFFLINE_BYTES:
                            raise StreamError("frame_too_large", "offline upload exceeds 512 MB", fatal=True)
                    else:
                        audio, warning = pcm.convert(msg["bytes"])
                        if warning:
                            await _send(ws, _reply(cfg, warning=warning))
                        await session.feed(audio)
            except StreamError as err:
                if not err.announced:  # said in FunASR's reply shape, which its clients show
                    await _send(ws, _reply(cfg, is_final=err.fatal, error=err.message, code=err.code))
                if err.code in ("forbidden", "unauthorized"):  # (the session, if any, is closed below)
                    await ws.close(4403)
                    return
                if err.fatal:
                    break
    except WebSocketDisconnect:
        pass
    finally:
        await close_session(live, session)
    if cfg is not None and cfg.mode == "offline":  # (no cfg: it was refused, said above, or never came)
        await _offline(ws, live, cfg, b"".join(offline))
    elif cfg is not None:
        await _send(ws, _reply(cfg, mode="2pass-offline" if cfg.mode == "2pass" else "online", is_final=True))
    try:
        await ws.close(1000)
    except RuntimeError:
        pass


async def _offline(ws: WebSocket, live: Live, cfg: _Config, data: bytes) -> None:
    """Offline mode: a whole file (PCM or any container) decoded in one go, one reply."""
    try:
        if cfg.wav_format == "pcm":  # a whole recording: not subject to the live per-frame limit
            audio = resample(pcm16_to_float(data[: len(data) // 2 * 2]), cfg.audio_fs)
        else:
            audio = decode(data).channel(0)
    except AudioError as err:
        await _send(ws, _reply(cfg, is_final=True, error=str(err), code="bad_audio"))
        return
    spans = await asyncio.to_thread(live.vad.segments, audio)
    windows = decode_windows(spans, max_ms=live.max_segment_ms, total_ms=audio.size * 1000 // SAMPLE_RATE)
    loop = asyncio.get_running_loop()

    def engine(pieces, options):
        return asyncio.run_coroutine_threadsafe(live.scheduler.final(pieces, options), loop).result()

    options = DecodeOptions(hotwords=merge(cfg.hotwords, live.lexicon), languages=live.languages)
    lines = await asyncio.to_thread(transcribe_speech, [(0, s, e) for s, e in windows], [spans], [audio],
                                    SAMPLE_RATE, engine, options)
    tokens = [t for u in lines for t in u.tokens]
    # a stretch without text is written as the record writes it, so the client's text shows the gap
    await _send(ws, _reply(cfg, text=join_pieces([u.shown_text for u in lines]), is_final=True,
                           timestamp=timestamp(tokens), stamp_sents=stamp_sents(tokens)))
