"""One live audio source: streaming VAD cuts utterances, partials while they run, a final at each end.

Audio time is counted from the first sample of the stream (ms). The session keeps only the audio
of the utterance in progress plus a second of context, so memory stays flat however long a hearing
runs or however fast a client replays a file.
"""
from __future__ import annotations

import asyncio
import errno
import itertools
import secrets
import threading
from dataclasses import dataclass, replace
from typing import Awaitable, Callable

import numpy as np

from ..audio import SAMPLE_RATE as SR
from ..asr.base import Engine, EngineStream, Hypothesis
from ..asr.coverage import ENGINE_ERROR, MIN_GAP_MS
from ..asr.finals import finish, polish_partial
from ..text import join_pieces
from ..asr.vad import Vad
from .. import metrics
from ..diarization import attribute
from ..diarization.bleed import voiced_share
from ..diarization.turns import Turn
from ..logs import get_logger
from ..records.model import CROSSTALK_UNCHECKED, UNRECOGNIZED, Utterance
from .events import Endpoint, Event, Level
from .protocol import ErrorCode, StreamError, error_event, final_event, partial_event
from .levels import LevelMeter
from .scheduler import DecodeScheduler
from .source import SessionConfig, Sinks
from .speakers import WATCH_S, Label, unheard_turns

log = get_logger(__name__)
BLEED_SHARE = 0.8  # an utterance mostly made of a neighbour's bleed (voiced blocks) is not recorded on this seat
MIN_TURN_MS = 300  # a "change" this close to the utterance's start is its first words, not a turn
MAX_PENDING_FINALS = 4  # a client replaying faster than the engine decodes waits here (backpressure)


@dataclass
class _Open:
    id: str
    start_ms: int
    stream: EngineStream
    fed: int  # absolute sample up to which the engine stream has been fed
    closed: bool = False
    partial_text: str = ""
    watched: int = 0  # sample up to which it was looked at for a speaker change


@dataclass
class _Seat:
    """A seat mic's utterance after its neighbours' check: its audio (their bleed muted), whether it
    is theirs altogether, whether anything was muted, and whether the check could not be completed."""
    audio: np.ndarray
    theirs: bool = False
    muted: bool = False
    unchecked: bool = False


class StreamSession:
    def __init__(self, engine: Engine, vad: Vad, scheduler: DecodeScheduler, sid: str, config: SessionConfig,
                 emit: Callable[[Event], Awaitable[None]], sinks: Sinks | None = None):
        self.engine, self.scheduler, self.sid, self.cfg, self.emit = engine, scheduler, sid, config, emit
        self.sinks = sinks or Sinks()
        self.vad = vad.open_stream(chunk_ms=200)
        self.options = replace(config.options, live=True)  # a screen is waiting: the engine's fast path
        # unique across restarts too: a hearing's utterances keep their ids in the record store
        self.label = f"c{config.channel}-{secrets.token_hex(3)}"
        self._n = itertools.count(1)
        self._lock = threading.Lock()
        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0  # absolute sample index of _buf[0]
        self.samples = 0
        self._utt: _Open | None = None
        self._finals: set[asyncio.Task] = set()
        self._last_final: asyncio.Task | None = None  # finals decode side by side but are announced in order
        self._watching: asyncio.Future | None = None  # a look for a speaker change in the open utterance
        self.utterances: list[Utterance] = []
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
        with self._lock:
            self._buf = np.concatenate([self._buf, audio.astype(np.float32, copy=False)])
            at = self.cfg.offset_ms * SR // 1000 + self.samples
            self.samples += audio.size
        try:
            events = await asyncio.to_thread(self._take, audio, at)
        except OSError as err:
            await self._archive_failed(err)
        await self._handle_vad(events)
        utt = self._utt
        speaking = utt is not None and not utt.closed
        if utt is not None and speaking:
            self._want_partial(utt)
            self._watch_turns(utt)
        if self.sinks.on_screen is not None and (reading := self.meter.feed(audio)):
            self.sinks.on_screen(Level(hearing_id=self.cfg.hearing_id, channel=self.cfg.channel, speaker=self.speaker,
                                       rms_db=reading[0], peak_db=reading[1], speech=speaking,
                                       at_ms=self.cfg.offset_ms + self.samples * 1000 // SR))
        self._trim()
        while len(self._finals) >= MAX_PENDING_FINALS:
            await asyncio.wait(self._finals, return_when=asyncio.FIRST_COMPLETED)

    def _take(self, audio: np.ndarray, at: int):
        """In a worker thread: archive the audio first (it is court data), then run the VAD."""
        if self.sinks.recorder is not None:
            self.sinks.recorder.write(audio)
        if self.sinks.room is not None:
            self.sinks.room.write(self.cfg.channel, at, audio)
        metrics.AUDIO_SECONDS.inc(audio.size / SR)
        with metrics.STAGE_SECONDS.labels("vad").time():
            return self.vad.feed(audio)

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
        """End of stream: flush the VAD, finalize the open utterance, wait for every final."""
        events = await asyncio.to_thread(self.vad.feed, np.zeros(0, np.float32), final=True)
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
                self._close(ev.end_ms)

    def _open(self, start_ms: int) -> None:
        start = max(start_ms * SR // 1000, self._buf_start)
        uid = f"{self.label}-{next(self._n):04d}"
        self._utt = _Open(uid, start * 1000 // SR, self.engine.open_stream(offset_ms=start * 1000 // SR,
                                                                        options=self.options), fed=start)
        self.scheduler.speaking(self.sid, True)  # until its final is in (``_close``)

    def _close(self, end_ms: int) -> None:
        utt = self._utt
        assert utt is not None
        utt.closed = True
        end = max(utt.start_ms * SR // 1000, min(end_ms * SR // 1000, self.samples))
        audio = self._slice(utt.start_ms * SR // 1000, end)
        if self.sinks.on_screen is not None:  # captions may show the last partial if the final is slow
            self.sinks.on_screen(Endpoint(hearing_id=self.cfg.hearing_id, utterance_id=utt.id, channel=self.cfg.channel,
                                          end_ms=end * 1000 // SR + self.cfg.offset_ms))
        task = asyncio.create_task(self._final(utt, audio, end * 1000 // SR, self._last_final))
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
        audio = self._slice(first, self.samples)
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
    def _want_partial(self, utt: _Open) -> None:
        fut = self.scheduler.partial(self.sid, lambda: self._take_partial(utt),
                                     lambda hyp: polish_partial(hyp, self.options.hotwords))
        if fut is not None:
            fut.add_done_callback(lambda f: self._partial_done(utt, f))

    def _take_partial(self, utt: _Open) -> tuple[EngineStream, np.ndarray] | None:
        """Runs in the decode worker: all audio that arrived since last time, for the engine stream."""
        if utt.closed:
            return None
        with self._lock:
            audio = self._slice_locked(utt.fed, self.samples)
            utt.fed = self.samples
        return (utt.stream, audio) if audio.size else None

    def _partial_done(self, utt: _Open, fut: asyncio.Future) -> None:
        if fut.cancelled():
            return
        if fut.exception() is not None:  # a failed preview is not shown; the final still comes
            log.warning("partial decode failed", session=self.label, error=repr(fut.exception()))
            return
        hyp: Hypothesis | None = fut.result()  # polished in the worker (_want_partial's finish)
        if hyp is None or utt.closed:
            return
        if not hyp.text or hyp.text == utt.partial_text:
            return
        utt.partial_text = hyp.text
        off = self.cfg.offset_ms
        asyncio.ensure_future(self.emit(partial_event(utt.id, self.cfg.channel, self.speaker, utt.start_ms + off,
                                                      hyp.end_ms + off, hyp.text, self.cfg.hearing_id,
                                                      self.cfg.role)))

    # -- finals -----------------------------------------------------------------------------
    async def _final(self, utt: _Open, audio: np.ndarray, end_ms: int, previous: asyncio.Task | None) -> None:
        """One utterance's final, in named steps: the seat's check for a neighbour's bleed, the decode,
        its speaker turns (a mixed channel), the utterances and flagged gaps inside it, then each
        stored and announced in the stream's order."""
        seat = await self._check_seat(utt, audio)
        if seat.theirs:  # a neighbour's sentence: theirs to record; the final clears the partial
            await _after(previous)
            await self.emit(final_event(self._utterance(utt, [], end_ms), self.cfg.hearing_id))
            return
        hyps, failed = await self._decode(utt, seat.audio, end_ms)
        turns, relabels = await self.sinks.speakers.find_turns(utt.id, seat.audio, utt.start_ms) \
            if self.sinks.speakers else ([], [])
        hyps = attribute.split(hyps, turns)  # every word to its speaker
        # a turn the engine gave no word is decoded on its own (after a failed decode the whole span is one gap)
        redone = [] if failed else await self._unheard(utt, seat.audio, turns, hyps, end_ms)
        await _after(previous)  # a decode retried on another replica must not let later utterances overtake it
        for k, (uid, group) in enumerate(await self._groups(utt, hyps, redone, end_ms, failed, seat, turns)):
            who = group[0].speaker if turns else None
            label = self.sinks.speakers.label(who) if who and self.sinks.speakers else None
            utterance, gaps = self._split(utt, uid, group, end_ms, seat, first=k == 0, label=label)
            await self._deliver(utterance, None if label else seat.audio)
            for n, gap in enumerate(gaps, 1):  # after the utterance: they carry the speaker it was given
                await self._deliver(self._gap(uid, n, gap, utterance), None)
        for uid, relabel in relabels:
            if await self._store_relabel(uid, relabel):
                await self.emit(relabel.event(uid, self.cfg.hearing_id))

    async def _unheard(self, utt: _Open, audio: np.ndarray, turns: list[Turn], hyps: list[Hypothesis],
                       end_ms: int) -> list[Hypothesis]:
        """Each turn the engine gave no word, decoded again on its own: its text, or a flagged gap."""
        async def decode(piece: np.ndarray, start_ms: int) -> list[Hypothesis]:
            [more] = await self.scheduler.final([(piece, start_ms)], self.options, sid=self.sid)
            return more
        return await unheard_turns(turns, hyps, audio, utt.start_ms, end_ms, decode, self.options)

    async def _check_seat(self, utt: _Open, audio: np.ndarray) -> _Seat:
        """A seat mic's utterance against its neighbours' audio: theirs when most of its voice is their
        bleed; else their bleed is muted out of it, or — their audio late — the utterance is flagged."""
        if self.sinks.room is None or not audio.size:
            return _Seat(audio)
        check = await asyncio.to_thread(self.sinks.room.bleed_blocks, self.cfg.channel,
                                        utt.start_ms + self.cfg.offset_ms, audio)
        bleed, unchecked = check.blocks, not check.complete
        if bleed.size and voiced_share(audio, bleed) >= BLEED_SHARE:
            log.info("bleed suppressed", session=self.label, utterance=utt.id)
            return _Seat(audio, theirs=True)
        if unchecked:
            log.warning("neighbour audio late: bleed not checked", session=self.label, utterance=utt.id)
        return _Seat(self.sinks.room.mute(audio, bleed), muted=bool(bleed.any()), unchecked=unchecked)

    async def _decode(self, utt: _Open, audio: np.ndarray, end_ms: int) -> tuple[list[Hypothesis], str | None]:
        """The engine's hypotheses, or none and why: one failed decode must not end the hearing, nor
        lose the utterance (it becomes a flagged utterance to replay)."""
        try:
            [hyps] = await self.scheduler.final([(audio, utt.start_ms)], self.options, sid=self.sid)
            return hyps, None
        except Exception as err:  # noqa: BLE001
            log.error("final decode failed", session=self.label, utterance=utt.id, error=repr(err))
            off = self.cfg.offset_ms
            await self.emit(error_event(ErrorCode.ENGINE, f"utterance {utt.id} could not be decoded: {err}; it is "
                                        "recorded as a flagged utterance to replay", utterance_id=utt.id,
                                        hearing_id=self.cfg.hearing_id, start_ms=utt.start_ms + off, end_ms=end_ms + off))
            return [], ENGINE_ERROR

    async def _groups(self, utt: _Open, hyps: list[Hypothesis], redone: list[Hypothesis], end_ms: int,
                      failed: str | None, seat: _Seat, turns: list[Turn]) -> list[tuple[str, list[Hypothesis]]]:
        """The utterance's pieces (sentences and flagged gaps: nothing said vanishes, asr/coverage.py;
        ``redone``: turns decoded again, already finished), one group per speaker turn, each with its
        id (the first keeps the utterance's)."""
        pieces = await asyncio.to_thread(finish, hyps, utt.start_ms, end_ms, self.options.hotwords, reason=failed,
                                         language=self.options.language)
        pieces = sorted(pieces + redone, key=lambda h: h.start_ms)
        if seat.muted:  # a short stretch without text where a neighbour's voice was cut out: that seat records it
            pieces = [h for h in pieces if UNRECOGNIZED not in h.flags or h.end_ms - h.start_ms >= MIN_GAP_MS]
        return [(utt.id if k == 0 else f"{utt.id}-t{k}", g) for k, g in enumerate(attribute.by_turn(pieces, turns))]

    def _split(self, utt: _Open, uid: str, pieces: list[Hypothesis], end_ms: int, seat: _Seat, *, first: bool,
               label: Label | None) -> tuple[Utterance, list[Hypothesis]]:
        """One speaker's utterance, and the stretches of its speech the engine gave no text for."""
        main = [h for h in pieces if UNRECOGNIZED not in h.flags] or pieces[:1]
        start = utt.start_ms if first else min(h.start_ms for h in pieces)
        end = max(h.end_ms for h in pieces) if label and pieces else end_ms
        utterance = self._utterance(utt, main, end, uid=uid, start_ms=start)
        if label is not None:
            utterance = utterance.model_copy(update={"speaker": label.speaker, "role": label.role,
                                                     "participant": label.participant})
        if seat.unchecked:  # kept (never a hole), flagged for the clerk: it may repeat a neighbour's words
            utterance = utterance.model_copy(update={"flags": [*utterance.flags, CROSSTALK_UNCHECKED]})
        return utterance, [h for h in pieces if UNRECOGNIZED in h.flags and h not in main]

    def _gap(self, uid: str, k: int, h: Hypothesis, of: Utterance) -> Utterance:
        off = self.cfg.offset_ms
        return Utterance(id=f"{uid}-g{k}", start_ms=h.start_ms + off, end_ms=h.end_ms + off, channel=self.cfg.channel,
                         speaker=of.speaker, role=of.role, participant=of.participant, text="", language=h.language,
                         confidence=0.0, flags=list(h.flags))

    async def _deliver(self, u: Utterance, audio: np.ndarray | None) -> None:
        """Who said it, stored, announced (and any relabels diarization made of earlier utterances)."""
        u, updates = await self._who(u, audio)
        self.utterances.append(u)
        await self._store(u)
        await self.emit(final_event(u, self.cfg.hearing_id))
        for uid, label in updates:
            if await self._store_relabel(uid, label):
                await self.emit(label.event(uid, self.cfg.hearing_id))

    async def _who(self, u: Utterance, audio: np.ndarray | None) -> tuple[Utterance, list[tuple[str, Label]]]:
        if self.sinks.speakers is None or audio is None or not audio.size:
            return u, []
        try:
            return await self.sinks.speakers.assign(u, audio)
        except Exception as err:  # noqa: BLE001 - an utterance without a speaker beats no utterance
            log.error("speaker not assigned", session=self.label, utterance=u.id, error=repr(err))
            return u, []

    async def _store(self, u: Utterance) -> None:
        """Persist before announcing; a store that is away or fails is told to the clerk (the utterance is
        still shown, and kept on disk when the store is away)."""
        if not self.sinks.on_final:
            return
        try:
            if await self.sinks.on_final(u) is False:
                await self.emit(error_event(ErrorCode.STORE_DELAYED, f"record store unavailable: utterance {u.id} is "
                                            "kept on disk and will be stored when it is back", utterance_id=u.id))
        except Exception as err:  # noqa: BLE001 - the clerk must hear of it
            log.error("final not stored", session=self.label, utterance=u.id, error=repr(err))
            await self.emit(error_event(ErrorCode.STORE, f"utterance {u.id} could not be stored: {err}"))

    async def _store_relabel(self, uid: str, label: Label) -> bool:
        if not self.sinks.on_relabel:
            return True
        try:
            await self.sinks.on_relabel(uid, label)
            return True
        except Exception as err:  # noqa: BLE001
            log.error("speaker update not stored", session=self.label, utterance=uid, error=repr(err))
            return False

    def _utterance(self, utt: _Open, hyps: list[Hypothesis], end_ms: int, *, uid: str | None = None,
                   start_ms: int | None = None) -> Utterance:
        off = self.cfg.offset_ms
        start = utt.start_ms if start_ms is None else start_ms
        tokens = [t.model_copy(update={"start_ms": t.start_ms + off, "end_ms": t.end_ms + off})
                  for h in hyps for t in h.tokens]
        probs = [t.prob for t in tokens if t.prob is not None]
        flags = list(dict.fromkeys(f for h in hyps for f in h.flags))
        return Utterance(id=uid or utt.id, start_ms=start + off, end_ms=max(start, end_ms) + off,
                         channel=self.cfg.channel, speaker=self.speaker, role=self.cfg.role,
                         text=join_pieces([h.text for h in hyps]), tokens=tokens,
                         language=hyps[0].language if hyps else self.options.language,
                         confidence=0.0 if UNRECOGNIZED in flags else round(float(np.mean(probs)), 4) if probs else None,
                         flags=flags)

    # -- buffer -----------------------------------------------------------------------------
    def _slice(self, a: int, b: int) -> np.ndarray:
        with self._lock:
            return self._slice_locked(a, b)

    def _slice_locked(self, a: int, b: int) -> np.ndarray:
        lo, hi = max(0, a - self._buf_start), max(0, b - self._buf_start)
        return self._buf[lo:hi].copy()

    def _trim(self) -> None:
        """Drop audio nobody needs any more: before the open utterance, keeping 1 s of context."""
        keep_from = self.samples - SR
        if self._utt and not self._utt.closed:
            keep_from = min(keep_from, self._utt.start_ms * SR // 1000)
        with self._lock:
            cut = keep_from - self._buf_start
            if cut > 0:
                self._buf = self._buf[cut:]
                self._buf_start += cut


async def _after(task: asyncio.Task | None) -> None:
    """Wait until an earlier final of the stream is stored and announced (whatever became of it)."""
    if task is not None and not task.done():
        await asyncio.wait([task])
