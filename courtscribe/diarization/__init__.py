"""Speaker attribution: channel maps for mic-per-seat courtrooms, embeddings for mixed audio."""
from .base import ChannelDiarizer, Diarizer, speaker_label

__all__ = ["ChannelDiarizer", "Diarizer", "speaker_label"]
