"""A FunASR client's whole file (offline mode, or a file format): decoded through the server's file
pipeline once it is all in, and answered in one message (server/funasr_socket.py takes it in)."""
from __future__ import annotations

from collections import Counter
from dataclasses import replace

from starlette.websockets import WebSocket

from ..audio import SAMPLE_RATE, Audio, AudioError, AudioTooLong, decode, pcm16_to_float, resample
from ..logs import get_logger
from ..records.model import Utterance
from ..streaming.live import LiveHearings
from .files import Busy, FileWork
from .funasr_config import Config, reply
from .funasr_times import line_sents, shown_times, timestamp
from .sockets import send

log = get_logger(__name__)
MAX_OFFLINE_HELD = 1 << 30  # whole files in memory, every FunASR socket together


class Held:
    """Bytes of whole files the FunASR sockets hold in memory, together: many sockets of 512 MB
    each must not take the server's memory (and so every courtroom's streams) with them, and one
    token's sockets hold half of it at most (its two stream slots' files must not fill it alone)."""

    def __init__(self, limit: int):
        self.limit, self.bytes = limit, 0
        self.by: Counter[str] = Counter()  # holder (a token id) → its bytes

    def take(self, n: int, holder: str = "") -> bool:
        if self.bytes + n > self.limit or self.by[holder] + n > self.limit // 2:
            return False
        self.bytes += n
        self.by[holder] += n
        return True

    def give(self, n: int, holder: str = "") -> None:
        self.bytes = max(0, self.bytes - n)
        self.by[holder] -= n
        if self.by[holder] <= 0:
            del self.by[holder]


def _audio_of(cfg: Config, data: bytes, max_seconds: float) -> Audio:
    """An offline file's audio at 16 kHz: raw PCM at the client's rate, or any container."""
    if cfg.wav_format != "pcm":
        return decode(data, max_seconds=max_seconds)  # channels mixed, as an upload's: none dropped
    if len(data) // 2 > max_seconds * cfg.audio_fs:  # a whole recording: not subject to the live per-frame limit
        raise AudioTooLong(f"the recording is longer than {int(max_seconds)} s, the most one file may be "
                           "(COURTSCRIBE_MAX_AUDIO_S): split it, or stream it live")
    pcm = resample(pcm16_to_float(data[: len(data) // 2 * 2]), cfg.audio_fs)
    return Audio(pcm[None, :], SAMPLE_RATE, cfg.audio_fs, 1)


async def answer_whole(ws: WebSocket, live: LiveHearings, files: FileWork, cfg: Config, data: bytes,
                   courtroom: str | None = None, note: str | None = None) -> str | None:
    """Offline mode: a whole file (PCM or any container) through the server's file pipeline (the
    same as an upload's: its workers, its place behind live streams), one reply (``note``: a
    warning it carries); returns what went wrong, if anything."""
    try:  # in an intake place as an upload's, within the file limit (a small file may unpack into hours)
        audio = await files.intake.run(_audio_of, cfg, data, live.max_audio_s)
    except Busy as err:
        await send(ws, reply(cfg, is_final=True, error=str(err), code="busy"))
        return str(err)
    except AudioError as err:
        code = "too_long" if isinstance(err, AudioTooLong) else "bad_audio"
        await send(ws, reply(cfg, is_final=True, error=str(err), code=code))
        return str(err)
    try:
        record = await files.pool.submit(files.runner(audio, replace(files.options(words=cfg.hotwords), itn=cfg.itn),
                                                      filename=cfg.wav_name, courtroom=courtroom))
    except Busy as err:
        await send(ws, reply(cfg, is_final=True, error=str(err), code="busy"))
        return str(err)
    except Exception as err:  # noqa: BLE001 - the client hears it in its own protocol, never an empty text
        log.exception("offline file failed", wav_name=cfg.wav_name)
        await send(ws, reply(cfg, is_final=True, error=f"transcription failed: {type(err).__name__}",
                              code="transcription_failed"))
        return f"transcription failed: {type(err).__name__}"
    lines = list(record.utterances)
    await send(ws, answer_once(cfg, lines, notes=[note] if note else []))
    failed = [u for u in lines if "engine_error" in u.flags]
    return f"{len(failed)} stretch(es) could not be decoded (engine error)" if failed else None


def answer_once(cfg: Config, lines: list[Utterance], *, notes: list[str] | None = None,
                error: str | None = None) -> dict:
    """A whole file's one reply: all its lines' text, a time for each unit of it, its sentences
    (``notes``: warnings it carries beside its config's; ``error``: what went wrong in it)."""
    lines = sorted(lines, key=lambda u: u.start_ms)
    who = list(dict.fromkeys(u.speaker for u in lines))  # FunASR numbers speakers from 0 (its sentence_info's spk)
    sents = [s | {"spk": who.index(u.speaker)} for u in lines for s in line_sents(u, u.shown_text)]
    # a stretch without text is written as the record writes it, so the client's text shows the gap
    text, times = shown_times(lines)
    said = [*cfg.notes, *(notes or [])]
    extra = {"warning": "; ".join(said)} if said else {}
    if error:
        extra["error"] = error
    return reply(cfg, mode=cfg.result_mode, text=text, is_final=True, timestamp=timestamp(text, times),
                  stamp_sents=sents, **extra)
