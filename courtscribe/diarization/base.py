"""Who spoke: the diarizer interface, and the simplest honest diarizer (one speaker per channel).

A diarizer receives the utterances the engine produced (with channel and times) and the audio, and
returns them with ``speaker`` (and ``role`` where the channel map says) filled in. Courtrooms with a
microphone per seat group are diarized by their channel map; single-channel recordings need
speaker embeddings (see ``courtscribe.diarization.embedding``).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np

from ..audio import Audio
from ..records.model import Role, Utterance

if TYPE_CHECKING:
    from .turns import Turn


class Diarizer(ABC):
    name: str

    def turns(self, audio: np.ndarray, speech: list[tuple[int, int]] | None = None) -> list[Turn] | None:
        """Who spoke when in one channel's audio (``speech``: its VAD spans, ms), before it is
        transcribed, so the engine's sentences can be cut at speaker changes; None where a channel
        is one seat (its speaker is known)."""
        return None

    @abstractmethod
    def assign(self, utterances: list[Utterance], audio: Audio) -> list[Utterance]:
        """Return the utterances with speaker labels; must not change text or times."""


def speaker_label(n: int) -> str:
    """Unknown voices are 说话人N (1-based) until a clerk names them."""
    return f"说话人{n}"


class ChannelDiarizer(Diarizer):
    """Each channel is one seat group: its speaker is the channel's role when mapped, else 说话人N."""

    name = "channel"

    def __init__(self, roles: dict[int, Role] | None = None):
        self.roles = roles or {}

    def assign(self, utterances: list[Utterance], audio: Audio) -> list[Utterance]:
        out = []
        for u in utterances:
            role = self.roles.get(u.channel)
            speaker = role.label if role else speaker_label(u.channel + 1)
            out.append(u.model_copy(update={"speaker": speaker, "role": role}))
        return out
