"""Live speaker labels for a mixed channel: the online diarizer between a session and the record.

A session whose source is one mixed microphone (no seat role) hands each final utterance's audio to
:class:`LiveSpeakers`; the line gets the speaker's label — an enrolled participant's name and role,
or 说话人N — before it is stored and announced, and earlier lines whose speaker changed as the
diarizer learned more come back as updates (``speaker_update`` events; stored as machine relabels,
which never override a label a person set).
"""
from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..diarization.embedding import SpeakerEncoder
from ..diarization.online import OnlineDiarizer
from ..records.model import Participant, Role, Utterance
from .events import SpeakerUpdate


@dataclass(frozen=True)
class Label:
    speaker: str
    role: Role | None = None
    participant: str | None = None

    def event(self, utterance_id: str, hearing_id: str | None) -> SpeakerUpdate:
        return SpeakerUpdate(hearing_id=hearing_id, utterance_id=utterance_id, speaker=self.speaker, role=self.role,
                             participant=self.participant)


class LiveSpeakers:
    def __init__(self, encoder: SpeakerEncoder, voices: Sequence[tuple[Participant, bytes]] = ()):
        self.diarizer = OnlineDiarizer(encoder)
        self.labels: dict[str, Label] = {}
        for person, voice in voices:
            self.enroll(person, np.frombuffer(voice, np.float32))
        self.last: Label | None = None

    def enroll(self, person: Participant, voice: np.ndarray) -> None:
        key = person.name or person.role.label
        self.labels[key] = Label(key, person.role, person.name)
        self.diarizer.enroll(key, voice)

    def label(self, key: str) -> Label:
        return self.labels.get(key) or Label(key)

    async def assign(self, u: Utterance, audio: np.ndarray) -> tuple[Utterance, list[tuple[str, Label]]]:
        """The utterance with its speaker, and (utterance id, label) updates for earlier lines."""
        result = await asyncio.to_thread(self.diarizer.add, u.id, audio, u.start_ms)
        if result.speaker is not None:
            self.last = self.label(result.speaker)
        if self.last is not None:  # too short to tell: the same turn as the line before
            u = u.model_copy(update={"speaker": self.last.speaker, "role": self.last.role,
                                     "participant": self.last.participant})
        return u, [(uid, self.label(key)) for uid, key in result.updates]
