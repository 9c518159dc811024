"""ASR engines behind one interface (``Engine``/``EngineStream``) and the VAD that gates them."""
from .base import DecodeOptions, Engine, EngineStream, Hypothesis

__all__ = ["DecodeOptions", "Engine", "EngineStream", "Hypothesis"]
