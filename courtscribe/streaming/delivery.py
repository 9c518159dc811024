"""The last step of a live line: who said it, stored, then announced, in that order.

Persist before announcing; a store that is away or fails is told to the clerk, never silent (the
line is still shown, and kept on disk while the store is away).
"""
from __future__ import annotations

from typing import Awaitable, Callable

import numpy as np

from ..logs import get_logger
from ..records.model import CONTINUES, Utterance
from ..records.reading import Named, plainly
from .events import Event
from .protocol import ErrorCode, error_event, final_event
from .source import Sinks
from .speakers import Label

log = get_logger(__name__)


class Delivery:
    def __init__(self, sinks: Sinks, emit: Callable[[Event], Awaitable[None]], label: str,
                 hearing_id: str | None):
        self.sinks, self.emit, self.label, self.hearing_id = sinks, emit, label, hearing_id
        self.gaps: dict[str, list[str]] = {}  # a line's flagged gaps: they take its speaker when it changes
        self.before: str | None = None  # the speaker of the line delivered last

    async def line(self, u: Utterance, audio: np.ndarray | None, label: Label | None = None, *,
                   gap_of: str | None = None) -> tuple[Utterance, Label | None]:
        """Who said it (``label``: its speaker turn's, already on it; else ``audio``, a mixed
        channel's, places the voice), stored, announced, and any relabels diarization made of
        earlier lines; the line as it went out, and its label. ``gap_of``: the line whose speaker
        this flagged stretch of its speech has, later relabels included."""
        if gap_of is not None:
            self.gaps.setdefault(gap_of, []).append(u.id)
        updates: list[tuple[str, Label]] = []
        if label is None:
            u, label, updates = await self._who(u, audio)
        if label is not None and self.sinks.speakers is not None:
            self.sinks.speakers.spoke(label)
        if CONTINUES in u.flags and u.speaker != self.before:  # after another voice: a turn of its own
            u = u.model_copy(update={"flags": [f for f in u.flags if f != CONTINUES]})
        self.before = u.speaker
        named = await self._store(u, label.voice if label else None)
        if named is not None:  # a person's label on the line, or its voice named or unnamed while it was on its way
            u = u.model_copy(update=named._asdict())
            label = Label(*named, voice=label.voice) if label else None
        await self.emit(final_event(u, self.hearing_id))
        for uid, relabel in updates:
            await self.relabel(uid, relabel)
        return u, label

    async def relabel(self, uid: str, label: Label) -> None:
        """An earlier line's speaker, as diarization now sees it: stored, then announced; its flagged
        gaps go with it."""
        for gap in self.gaps.get(uid, ()):
            await self._relabel(gap, label)
        await self._relabel(uid, label)

    async def _relabel(self, uid: str, label: Label) -> None:
        if self.sinks.on_relabel:
            try:
                named = await self.sinks.on_relabel(uid, label)
            except Exception as err:  # noqa: BLE001
                log.error("speaker update not stored", session=self.label, utterance=uid, error=repr(err))
                return
            if named is False:  # waiting on disk: the screens hear what the record holds when it is stored
                return
            if named:
                label = Label(*named, voice=label.voice)
        await self.emit(label.event(uid, self.hearing_id))

    async def _who(self, u: Utterance,
                   audio: np.ndarray | None) -> tuple[Utterance, Label | None, list[tuple[str, Label]]]:
        if self.sinks.speakers is None or audio is None or not audio.size:
            return u, None, []
        try:
            return await self.sinks.speakers.assign(u, audio)
        except Exception as err:  # noqa: BLE001 - an utterance without a speaker beats no utterance
            log.error("speaker not assigned", session=self.label, utterance=u.id, error=repr(err))
            return self.sinks.speakers.guess(u), None, []

    async def _store(self, u: Utterance, voice: str | None) -> Named | None:
        """``voice``: the voice (说话人N) the line was heard as; the store puts the line under whom a
        clerk names that voice as now, and says so when that is not the line's label."""
        if not self.sinks.on_final:
            return None
        try:
            stored = await self.sinks.on_final(u, voice)
        except Exception as err:  # noqa: BLE001 - the clerk must hear of it
            log.error("final not stored", session=self.label, utterance=u.id, error=repr(err))
            # which line, and where: the screens mark it as not in the record (its final follows)
            said = f"utterance {u.id} could not be stored: {plainly(err)}"
            await self.emit(error_event(ErrorCode.STORE, said, utterance_id=u.id, channel=u.channel,
                                        start_ms=u.start_ms, end_ms=u.end_ms))
            return None
        if stored is False:
            await self.emit(error_event(ErrorCode.STORE_DELAYED, f"record store unavailable: utterance {u.id} "
                                        "waits (on disk, in memory if the disk is full) and will be stored when "
                                        "the store is back", utterance_id=u.id))
        return stored or None
