"""A live utterance's final, in named steps: the seat's check for a neighbour's bleed, the decode,
the speaker turns in it, then the record's lines (sentences, and flagged gaps where the engine gave
no text) each stored and announced in the stream's order. The steps of :class:`StreamSession`
(session.py), apart from its audio, VAD and partials."""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Awaitable, Callable

import numpy as np

from ..audio import SAMPLE_RATE as SR
from ..asr.base import DecodeOptions, Hypothesis
from ..asr.coverage import ENGINE_ERROR, filled, usable
from ..asr.finals import finish
from ..diarization import attribute
from ..diarization.bleed import Seat
from ..diarization.turns import Turn
from ..logs import get_logger
from ..records.model import CONTINUES, CROSSTALK_UNCHECKED, SPEAKER_UNSURE, UNRECOGNIZED, Utterance
from ..text import join_pieces
from .delivery import Delivery
from .events import Event
from .protocol import ErrorCode, error_event, final_event
from .scheduler import DecodeScheduler
from .source import SessionConfig, Sinks
from .speakers import Found, Label, unheard_turns

if TYPE_CHECKING:
    from .session import _Open

log = get_logger(__name__)


class FinalSteps:
    """What the final's steps use of the session (set by :class:`StreamSession`)."""

    cfg: SessionConfig
    sinks: Sinks
    scheduler: DecodeScheduler
    sid: str
    label: str
    options: DecodeOptions
    emit: Callable[[Event], Awaitable[None]]
    delivery: Delivery
    utterances: list[Utterance]

    @property
    def speaker(self) -> str:
        raise NotImplementedError

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
        found = await self.sinks.speakers.find_turns(utt.id, voices, utt.start_ms) \
            if self.sinks.speakers else Found([], [])
        turns, relabels = found.turns, found.relabels
        hyps = attribute.split(hyps, turns)  # every word to its speaker
        # a turn the engine gave no word or too few is decoded on its own (after a failed decode the
        # whole span is one gap)
        if not failed:
            hyps, redone = await self._unheard(utt, seat.audio, turns, hyps, end_ms)
        else:
            redone = []
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
            if unheard or who in found.doubted:
                utterance = utterance.flagged(SPEAKER_UNSURE)
            utterance, said = await self.delivery.line(utterance, seat.audio, label)
            self.utterances.append(utterance)
            for n, gap in enumerate(gaps, 1):  # after the utterance: they carry the speaker it was given
                line, _ = await self.delivery.line(self._gap(uid, n, gap, utterance), None, said, gap_of=uid)
                self.utterances.append(line)
        for uid, relabel in relabels:
            await self.delivery.relabel(uid, relabel)

    async def _unheard(self, utt: _Open, audio: np.ndarray, turns: list[Turn], hyps: list[Hypothesis],
                       end_ms: int) -> tuple[list[Hypothesis], list[Hypothesis]]:
        """Each turn the engine gave no word or too few, decoded again on its own: the utterance's
        pieces as they stay, and the turns' text or flagged gaps (speakers.unheard_turns)."""
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
        pieces, redone = attribute.echoes(filled(pieces, redone), redone)
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
                         confidence=0.0,
                         flags=list(h.flags) + [f for f in of.flags if f == SPEAKER_UNSURE])

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


async def _after(task: asyncio.Task | None) -> None:
    """Wait until an earlier final of the stream is stored and announced (whatever became of it)."""
    if task is not None and not task.done():
        await asyncio.wait([task])
