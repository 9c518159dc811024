"""A live source's audio on its way in, after the archive: the courtroom's front ends, the audio the
engine decodes from, the seat-bleed check's copy, and the streaming VAD.

Why one place: the front ends (frontend.py) give their output a few ms late, each its own amount,
and every consumer must agree on where sample k is. Here the engine's audio is kept as it comes out
(``RecentAudio``, aligned with the recording), the seat-bleed check sees the same audio, and the VAD
is never fed further than the engine's audio reaches: a VAD end must find its utterance's audio.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import metrics
from ..asr.vad import VadEvent, VadStream
from ..config import RoomFrontEnd
from ..frontend import front_end
from .recent import RecentAudio

RoomWrite = Callable[[int, np.ndarray], None]  # (sample of the stream, audio): a seat mic's copy


class Intake:
    def __init__(self, front: RoomFrontEnd, vad: VadStream, recent: RecentAudio,
                 room: RoomWrite | None = None) -> None:
        self.vad = vad
        self.recent = recent
        self._room = room
        self._to_engine = front_end(front.asr).open_stream()
        self._to_vad = None if front.vad == front.asr else front_end(front.vad).open_stream()
        self._waiting = np.zeros(0, np.float32)  # the VAD's audio ahead of the engine's, held back
        self._fed = 0  # samples the VAD has had
        # the audio as it came, for who is speaking (speaker embeddings are trained on rooms, not on
        # WPE's output): the engine's own when no front end changes it
        self.voices = recent if front.asr == "none" else RecentAudio()

    def take(self, audio: np.ndarray) -> list[VadEvent]:
        """Raw audio in (already archived); the VAD's events out. In a worker thread."""
        if self.voices is not self.recent:
            self.voices.append(audio)
        return self._hear(self._to_engine.feed(audio), self._to_vad.feed(audio) if self._to_vad else None)

    def finish(self) -> list[VadEvent]:
        """End of input: what the front ends still hold, then the VAD's end."""
        return self._hear(self._to_engine.flush(), self._to_vad.flush() if self._to_vad else None, final=True)

    def _hear(self, heard: np.ndarray, for_vad: np.ndarray | None, *, final: bool = False) -> list[VadEvent]:
        at = self.recent.append(heard)
        if self._room is not None:
            self._room(at, heard)
        if for_vad is None:
            for_vad = heard
        else:
            waiting = np.concatenate([self._waiting, for_vad])
            ready = waiting.size if final else max(0, self.recent.end - self._fed)
            for_vad = waiting[:ready]
            self._waiting = waiting[ready:]
        self._fed += for_vad.size
        with metrics.STAGE_SECONDS.labels("vad").time():
            events = self.vad.feed(for_vad) if for_vad.size else []
            # the end of input goes on its own: FSMN's final call fails on a few samples' input
            return events + (self.vad.feed(np.zeros(0, np.float32), final=True) if final else [])
