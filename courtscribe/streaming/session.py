"""One live audio source: streaming VAD cuts utterances, partials while they run, a final at each end.

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
from ..asr.coverage import ENGINE_ERROR, usable
from ..asr.finals import finish, polish_partial
from ..text import join_pieces
from ..asr.vad import Vad
from ..config import RoomFrontEnd
from .. import metrics
from ..diarization import attribute
from ..diarization.bleed import OwnVoice, Seat
from ..diarization.turns import Turn
from ..logs import get_logger
from ..records.model import CONTINUES, CROSSTALK_UNCHECKED, SPEAKER_UNSURE, UNRECOGNIZED, Utterance
from .events import Endpoint, Event, Level
from .protocol import ErrorCode, StreamError, error_event, final_event, partial_event
from .delivery import Delivery
from .levels import LevelMeter
from .pieces import cut_point
from .intake import Intake
from .recent import RecentAudio
from .scheduler import DecodeScheduler
from .source import SessionConfig, Sinks
from .speakers import WATCH_S, Label, unheard_turns
from .stability import Stabilizer

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


class StreamSession:
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

    # -- finals -----------------------------------------------------------------------------
    async def _final(self, utt: _Open, audio: np.ndarray, end_ms: int, previous: asyncio.Task | None,
                     voices: np.ndarray) -> None:
        """One utterance's final, in named steps: the seat's check for a neighbour's bleed, the decode,
        its speaker turns (a mixed channel; found on ``voices``, its audio as it came), the utterances
        and flagged gaps inside it, then each stored and announced in the stream's order."""
        seat = await self._check_seat(utt, audio)
        # a seat with a neighbour's bleed in it: decoded as it came (a prompt answer needs the question
        # before it), then their words dropped
        hyps, failed = ([], None) if seat.theirs else await self._decode(utt, seat.for_engine, end_ms)
        hyps = seat.own(hyps, utt.start_ms)
        lo, hi = seat.heard()
        if seat.theirs or (seat.mostly_theirs and not failed and not any(usable(h) for h in hyps)):
            await _after(previous)  # a neighbour's sentence: theirs to record; the final clears the partial
            utt.delivered = True
            await self.emit(final_event(self._utterance(utt, [], end_ms), self.cfg.hearing_id))
            return
        turns, relabels = await self.sinks.speakers.find_turns(utt.id, voices, utt.start_ms) \
            if self.sinks.speakers else ([], [])
        hyps = attribute.split(hyps, turns)  # every word to its speaker
        # a turn the engine gave no word is decoded on its own (after a failed decode the whole span is one gap)
        redone = [] if failed else await self._unheard(utt, seat.audio, turns, hyps, end_ms)
        await _after(previous)  # a decode retried on another replica must not let later utterances overtake it
        utt.delivered = True
        groups = [(uid, g) for uid, g in await self._groups(utt, hyps, redone, end_ms, failed, seat, turns) if g]
        if not groups:  # too short to hold speech (a piece cut at the stream's end): no line, the partial goes
            await self.emit(final_event(self._utterance(utt, [], end_ms), self.cfg.hearing_id))
        # a seat's lines start and end with its own voice: a neighbour's question muted at its start
        # put its answer's line before the question's (their VADs opened alike)
        own = (utt.start_ms + lo * 1000 // SR, min(end_ms, utt.start_ms + hi * 1000 // SR))
        reaches = attribute.reaches([g for _, g in groups], turns, *own)
        for k, ((uid, group), (start, end, unheard)) in enumerate(zip(groups, reaches)):
            who = group[0].speaker if turns else None
            label = self.sinks.speakers.label(who) if who and self.sinks.speakers else None
            utterance, gaps = self._split(utt, uid, group, (start, end), seat, first=k == 0, label=label)
            if unheard:
                utterance = utterance.flagged(SPEAKER_UNSURE)
            utterance, said = await self.delivery.line(utterance, seat.audio, label)
            self.utterances.append(utterance)
            for n, gap in enumerate(gaps, 1):  # after the utterance: they carry the speaker it was given
                line, _ = await self.delivery.line(self._gap(uid, n, gap, utterance), None, said, gap_of=uid)
                self.utterances.append(line)
        for uid, relabel in relabels:
            await self.delivery.relabel(uid, relabel)

    async def _unheard(self, utt: _Open, audio: np.ndarray, turns: list[Turn], hyps: list[Hypothesis],
                       end_ms: int) -> list[Hypothesis]:
        """Each turn the engine gave no word, decoded again on its own: its text, or a flagged gap."""
        async def decode(piece: np.ndarray, start_ms: int) -> list[Hypothesis]:
            [more] = await self.scheduler.final([(piece, start_ms)], self.options, sid=self.sid)
            return more
        return await unheard_turns(turns, hyps, audio, utt.start_ms, end_ms, decode, self.options)

    async def _check_seat(self, utt: _Open, audio: np.ndarray) -> Seat:
        """A seat mic's utterance against its neighbours' audio (diarization/bleed.py)."""
        if self.sinks.room is None or not audio.size:
            return Seat(audio)
        seat = await asyncio.to_thread(self.sinks.room.seat, self.cfg.channel, utt.start_ms + self.cfg.offset_ms,
                                       audio)
        if seat.theirs:
            log.info("bleed suppressed", session=self.label, utterance=utt.id)
        elif seat.unchecked:
            log.warning("neighbour audio late: bleed not checked", session=self.label, utterance=utt.id)
        return seat

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
                      failed: str | None, seat: Seat, turns: list[Turn]) -> list[tuple[str, list[Hypothesis]]]:
        """The utterance's pieces (sentences and flagged gaps: nothing said vanishes, asr/coverage.py;
        ``redone``: turns decoded again, already finished), one group per speaker turn, each with its
        id (the first keeps the utterance's)."""
        pieces = await asyncio.to_thread(finish, hyps, utt.start_ms, end_ms, self.options.hotwords, reason=failed,
                                         language=self.options.language, itn=self.options.itn)
        pieces, redone = attribute.echoes(pieces, redone)
        pieces = seat.pieces(sorted(pieces + redone, key=lambda h: h.start_ms), utt.start_ms)
        return [(utt.id if k == 0 else f"{utt.id}-t{k}", g) for k, g in enumerate(attribute.by_turn(pieces, turns))]

    def _split(self, utt: _Open, uid: str, pieces: list[Hypothesis], reach: tuple[int, int], seat: Seat, *,
               first: bool, label: Label | None) -> tuple[Utterance, list[Hypothesis]]:
        """One speaker's utterance over ``reach`` (its time in the utterance), and the stretches of
        its speech the engine gave no text for."""
        main = [h for h in pieces if UNRECOGNIZED not in h.flags] or pieces[:1]
        utterance = self._utterance(utt, main, reach[1], uid=uid, start_ms=reach[0])
        if label is not None:
            utterance = utterance.model_copy(update={"speaker": label.speaker, "role": label.role,
                                                     "participant": label.participant})
        if seat.unchecked:  # kept (never a hole), flagged for the clerk: it may repeat a neighbour's words
            utterance = utterance.flagged(CROSSTALK_UNCHECKED)
        if first and utt.continues:  # the record prints it on from the piece before
            utterance = utterance.flagged(CONTINUES)
        return utterance, [h for h in pieces if UNRECOGNIZED in h.flags and h not in main]

    def _gap(self, uid: str, k: int, h: Hypothesis, of: Utterance) -> Utterance:
        off = self.cfg.offset_ms
        return Utterance(id=f"{uid}-g{k}", start_ms=h.start_ms + off, end_ms=h.end_ms + off, channel=self.cfg.channel,
                         speaker=of.speaker, role=of.role, participant=of.participant, text="", language=h.language,
                         confidence=0.0, flags=list(h.flags))

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


async def _after(task: asyncio.Task | None) -> None:
    """Wait until an earlier final of the stream is stored and announced (whatever became of it)."""
    if task is not None and not task.done():
        await asyncio.wait([task])
