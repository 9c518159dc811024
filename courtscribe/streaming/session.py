"""One live audio source: streaming VAD cuts utterances, partials while they run, a final at each end
(its steps, from the seat's bleed check to the record's lines: lines.py).

Audio time is counted from the first sample of the stream (ms); the session keeps only the audio
its open utterance needs (recent.py).
"""
from __future__ import annotations

import asyncio
import errno
import itertools
import secrets
from dataclasses import dataclass, field, replace
from typing import Awaitable, Callable

import numpy as np

from ..audio import SAMPLE_RATE as SR
from ..asr.base import Engine, EngineStream, Hypothesis
from ..asr.finals import polish_partial
from ..asr.vad import Vad
from ..config import RoomFrontEnd
from .. import metrics
from ..diarization.bleed import OwnVoice
from ..logs import get_logger
from ..records.model import Utterance
from .events import Endpoint, Event, Level
from .protocol import ErrorCode, StreamError, error_event, partial_event
from .delivery import Delivery
from .levels import LevelMeter
from .pieces import cut_point
from .intake import Intake
from .recent import RecentAudio
from .scheduler import DecodeScheduler
from .source import SessionConfig, Sinks
from .speakers import WATCH_S
from .stability import Stabilizer
from .lines import FinalSteps

log = get_logger(__name__)
MIN_TURN_MS = 300  # a "change" this close to the utterance's start is its first words, not a turn
TAIL_MS = 300  # a piece the VAD ends sooner than this after the cut holds no speech of its own
MAX_PENDING_FINALS = 4  # a client replaying faster than the engine decodes waits here (backpressure)


@dataclass
class _Open:
    id: str
    start_ms: int
    stream: EngineStream
    fed: int  # absolute sample up to which the engine stream has been fed
    closed: bool = False
    continues: bool = False  # a piece of a long utterance, after the first (pieces.py)
    stability: Stabilizer = field(default_factory=Stabilizer)
    shown: tuple[str, int] = ("", 0)  # the last partial's text and settled length
    reads: tuple[int, ...] = ()  # how far (stream ms) its last two partials read
    reading: bool = False  # a partial has taken its audio and is being decoded
    voice: OwnVoice | None = None  # a seat mic's: where its own voice begins (partials wait for it)
    delivered: bool = False  # its final is out: a partial decoded since is stale
    watched: int = 0  # sample up to which it was looked at for a speaker change


class StreamSession(FinalSteps):
    def __init__(self, engine: Engine, vad: Vad, scheduler: DecodeScheduler, sid: str, config: SessionConfig,
                 emit: Callable[[Event], Awaitable[None]], sinks: Sinks | None = None,
                 front: RoomFrontEnd | None = None):
        self.engine, self.scheduler, self.sid, self.cfg, self.emit = engine, scheduler, sid, config, emit
        self.sinks = sinks or Sinks()
        self.options = replace(config.options, live=True)  # a screen is waiting: the engine's fast path
        # unique across restarts too: a hearing's utterances keep their ids in the record store
        self.label = f"c{config.channel}-{secrets.token_hex(3)}"
        self._n = itertools.count(1)
        self.recent = RecentAudio()
        room = self.sinks.room
        self.intake = Intake(front or RoomFrontEnd(asr="none", vad="none"), vad.open_stream(chunk_ms=200), self.recent,
                             None if room is None else
                             lambda at, audio: room.write(config.channel, config.offset_ms * SR // 1000 + at, audio))
        self._utt: _Open | None = None
        self._finals: set[asyncio.Task] = set()
        self._last_final: asyncio.Task | None = None  # finals decode side by side but are announced in order
        self._watching: asyncio.Future | None = None  # a look for a speaker change in the open utterance
        self._reading: _Open | None = None  # whose audio the partial in the worker took
        self.utterances: list[Utterance] = []
        self.delivery = Delivery(self.sinks, emit, self.label, config.hearing_id)
        self.meter = LevelMeter()

    def use_hotwords(self, words: tuple[str, ...]) -> None:
        """New hotwords from the hearing: the next utterance (and finals not yet queued) use them."""
        self.options = replace(self.options, hotwords=tuple(words))

    @property
    def speaker(self) -> str:
        if self.cfg.role:
            return self.cfg.role.label
        if self.sinks.speakers and self.sinks.speakers.last:  # partials show the current turn's speaker
            return self.sinks.speakers.last.speaker
        return self.cfg.speaker or f"说话人{self.cfg.channel + 1}"

    # -- audio in ---------------------------------------------------------------------------
    async def feed(self, audio: np.ndarray) -> None:
        try:
            events = await asyncio.to_thread(self._take, audio)
        except OSError as err:
            await self._archive_failed(err)
        await self._handle_vad(events)
        utt = self._utt
        speaking = utt is not None and not utt.closed
        if utt is not None and speaking:
            utt = self._piece(utt)
            if await self._own_voice(utt):
                self._want_partial()
            self._watch_turns(utt)
        if self.sinks.on_screen is not None and (reading := self.meter.feed(audio)):
            self.sinks.on_screen(Level(hearing_id=self.cfg.hearing_id, channel=self.cfg.channel, speaker=self.speaker,
                                       rms_db=reading[0], peak_db=reading[1], speech=speaking,
                                       at_ms=self.cfg.offset_ms + self.samples * 1000 // SR))
        self._trim()
        while len(self._finals) >= MAX_PENDING_FINALS:
            await asyncio.wait(self._finals, return_when=asyncio.FIRST_COMPLETED)

    def _take(self, audio: np.ndarray):
        """In a worker thread: archive the audio as it came (it is court data), then the room's front
        ends, then the VAD."""
        if self.sinks.recorder is not None:
            self.sinks.recorder.write(audio)
        metrics.AUDIO_SECONDS.inc(audio.size / SR)
        return self.intake.take(audio)

    async def _archive_failed(self, err: OSError) -> None:
        """Audio that cannot be archived is not court record: stop this source loudly. What was
        written stays valid (raw PCM up to the last whole sample; the open segment is finished
        by the next start-up's recovery)."""
        self.sinks.recorder = None
        code = ErrorCode.DISK_FULL if err.errno == errno.ENOSPC else ErrorCode.ARCHIVE
        message = (f"recording of channel {self.cfg.channel} stopped at {self.samples * 1000 // SR} ms: the audio "
                   f"archive cannot be written ({err.strerror or err}). Free space, then reconnect the source.")
        log.error("recording stopped", session=self.label, hearing=self.cfg.hearing_id, error=repr(err))
        await self.emit(error_event(code, message, fatal=True, channel=self.cfg.channel, hearing_id=self.cfg.hearing_id))
        raise StreamError(code, message, fatal=True, announced=True)

    async def finish(self) -> list[Utterance]:
        """End of stream: flush the front ends and the VAD, finalize the open utterance, wait for every final."""
        events = await asyncio.to_thread(self.intake.finish)
        await self._handle_vad(events)
        if self._utt and not self._utt.closed:
            self._close(self.samples * 1000 // SR)
        if self._finals:
            await asyncio.gather(*self._finals, return_exceptions=True)
        if self.sinks.recorder is not None:
            try:
                await asyncio.to_thread(self.sinks.recorder.close)
            except OSError as err:  # the open segment stays raw PCM; start-up recovery finishes it
                log.error("audio segment not finished", session=self.label, error=repr(err))
        return self.utterances

    async def _handle_vad(self, events) -> None:
        for ev in events:
            if ev.start_ms is not None:
                if self._utt and not self._utt.closed:
                    self._close(ev.start_ms)
                self._open(ev.start_ms)
            if ev.end_ms is not None and self._utt and not self._utt.closed:
                if self._utt.continues and ev.end_ms - self._utt.start_ms < TAIL_MS and not self._utt.shown[0]:
                    self._drop_tail(self._utt)
                else:
                    self._close(ev.end_ms)

    def _drop_tail(self, utt: _Open) -> None:
        """A piece was cut in the pause the VAD then ended the utterance in: what follows the cut is
        that pause's end, no speech (kept in the audio archive, like every pause)."""
        utt.closed = True
        self.scheduler.speaking(self.sid, False)

    def _open(self, start_ms: int, *, continues: bool = False) -> None:
        start = max(start_ms * SR // 1000, self.recent.start)
        uid = f"{self.label}-{next(self._n):04d}"
        voice = None if self.sinks.room is None else OwnVoice(start, self.cfg.offset_ms * SR // 1000)
        self._utt = _Open(uid, start * 1000 // SR, self.engine.open_stream(offset_ms=start * 1000 // SR,
                                                                        options=self.options), fed=start,
                          continues=continues, voice=voice)
        self.scheduler.speaking(self.sid, True)  # until its final is in (``_close``)

    def _piece(self, utt: _Open) -> _Open:
        """A long utterance is finalized up to a pause in it (pieces.py) while its speaker goes on in
        the next piece: the screens get its final now, not when the speaker stops."""
        at = cut_point(self.recent.slice(utt.start_ms * SR // 1000, self.samples),
                       after_ms=_settled_by(utt) - utt.start_ms)
        if at is None:
            return utt
        self._close(utt.start_ms + at, goes_on=True)
        self._open(utt.start_ms + at, continues=True)
        assert self._utt is not None
        return self._utt

    def _close(self, end_ms: int, *, goes_on: bool = False) -> None:
        """``goes_on``: a piece of a long utterance, its speaker still talking."""
        utt = self._utt
        assert utt is not None
        utt.closed = True
        end = max(utt.start_ms * SR // 1000, min(end_ms * SR // 1000, self.samples))
        audio = self.recent.slice(utt.start_ms * SR // 1000, end)
        voices = self.intake.voices.slice(utt.start_ms * SR // 1000, end)  # as it came, for who said it
        if self.sinks.on_screen is not None and not goes_on:  # captions may show the last partial if the
            # final is slow (not a piece's: its partial may hold words of the next piece)
            self.sinks.on_screen(Endpoint(hearing_id=self.cfg.hearing_id, utterance_id=utt.id, channel=self.cfg.channel,
                                          end_ms=end * 1000 // SR + self.cfg.offset_ms))
        task = asyncio.create_task(self._final(utt, audio, end * 1000 // SR, self._last_final, voices))
        self._last_final = task
        self._finals.add(task)
        task.add_done_callback(self._finals.discard)
        task.add_done_callback(lambda _: self.scheduler.speaking(self.sid, False))

    # -- speaker changes --------------------------------------------------------------------
    def _watch_turns(self, utt: _Open) -> None:
        """A mixed channel: each second of a running utterance, look for a confirmed speaker change
        in it (in a thread, never holding up the audio); where one is, the utterance ends there and
        the next begins, so each turn's final comes as the turn ends."""
        if self.sinks.speakers is None or self._watching is not None or self.samples - utt.watched < SR:
            return
        utt.watched = self.samples
        first = max(utt.start_ms * SR // 1000, self.samples - WATCH_S * SR)  # all a look needs, not the minute
        audio = self.intake.voices.slice(first, self.samples)
        self._watching = asyncio.ensure_future(asyncio.to_thread(self.sinks.speakers.change, audio))
        self._watching.add_done_callback(lambda f: self._turn_seen(utt, f, first * 1000 // SR - utt.start_ms))

    def _turn_seen(self, utt: _Open, fut: asyncio.Future, looked_from_ms: int) -> None:
        self._watching = None
        if fut.cancelled() or fut.exception() is not None:
            if not fut.cancelled():  # the turn is still split when its final comes
                log.warning("speaker change check failed", session=self.label, error=repr(fut.exception()))
            return
        at = fut.result()
        if at is None or utt.closed or self._utt is not utt or looked_from_ms + at < MIN_TURN_MS:
            return
        at += looked_from_ms
        log.info("speaker change: utterance closed", session=self.label, utterance=utt.id, at_ms=utt.start_ms + at)
        self._close(utt.start_ms + at)
        self._open(utt.start_ms + at)

    # -- partials ---------------------------------------------------------------------------
    async def _own_voice(self, utt: _Open) -> bool:
        """Whether the utterance has a voice of its own yet: a seat mic's is previewed from there on."""
        voice, room = utt.voice, self.sinks.room
        if voice is None or room is None or voice.at is not None:
            return True
        audio = self.recent.slice(voice.start + voice.checked, self.samples)
        return await asyncio.to_thread(voice.update, room, self.cfg.channel, audio) is not None

    def _want_partial(self) -> None:
        """A partial of the open utterance (whichever is open when the worker gets to it: a job queued
        for a piece that was cut meanwhile serves the next piece)."""
        fut = self.scheduler.partial(self.sid, self._take_partial, self._finish_partial)
        if fut is not None:
            fut.add_done_callback(self._partial_done)

    def _take_partial(self) -> tuple[EngineStream, np.ndarray] | None:
        """Runs in the decode worker: all audio that arrived since last time, for the engine stream."""
        utt = self._reading = self._utt
        if utt is None or utt.closed or utt.voice is not None and utt.voice.at is None:
            self._reading = None  # nothing open, or a seat's utterance with no voice of its own yet
            return None
        first = utt.fed
        audio, utt.fed = self.recent.since(first)
        if utt.voice is not None:
            audio = utt.voice.mute_before(audio, first)
        utt.reading = bool(audio.size)
        return (utt.stream, audio) if audio.size else None

    def _finish_partial(self, hyp: Hypothesis | None) -> tuple[_Open | None, Hypothesis | None]:
        """Runs in the decode worker, right after the engine: the partial, polished, and whose it is."""
        return self._reading, polish_partial(hyp, self.options.hotwords, self.options.itn)

    def _partial_done(self, fut: asyncio.Future) -> None:
        if fut.cancelled():
            return
        if fut.exception() is not None:  # a failed preview is not shown; the final still comes
            log.warning("partial decode failed", session=self.label, error=repr(fut.exception()))
            return
        if fut.result() is None:  # the stream was released with this partial still queued
            return
        utt, hyp = fut.result()
        if utt is None:
            return
        utt.reading = False
        if hyp is None or utt.delivered or not hyp.text:  # shown until the final replaces it
            return
        utt.reads = (*utt.reads, hyp.end_ms)[-2:]
        shown = utt.stability.update(hyp.text)  # what it settled on stays as it was shown
        if shown == utt.shown:
            return
        utt.shown = shown
        off = self.cfg.offset_ms
        ahead = self._last_final is not None and not self._last_final.done()  # decoded beside a final
        asyncio.ensure_future(self.emit(partial_event(utt.id, self.cfg.channel, self.speaker, utt.start_ms + off,
                                                      hyp.end_ms + off, shown[0], self.cfg.hearing_id,
                                                      self.cfg.role, stable=shown[1], continues=utt.continues,
                                                      ahead=ahead)))

    # -- buffer -----------------------------------------------------------------------------
    @property
    def samples(self) -> int:
        """Samples received so far."""
        return self.recent.end

    def _trim(self) -> None:
        """Drop audio nobody needs any more: before the open utterance, keeping 1 s of context."""
        keep_from = self.samples - SR
        if self._utt and not self._utt.closed:
            keep_from = min(keep_from, self._utt.start_ms * SR // 1000)
        self.recent.forget_before(keep_from)
        self.intake.voices.forget_before(keep_from)


def _settled_by(utt: _Open) -> int:
    """How far into the audio (stream ms) the utterance's partials may have settled words: as far as
    the one before the last read (a word is settled when two agree), or the last one if a partial
    being decoded now may agree with it. A piece's cut goes no earlier."""
    reads = utt.reads[-1:] if utt.reading else utt.reads[:-1]
    return reads[0] if reads else utt.start_ms
