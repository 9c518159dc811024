"""What an OpenAI Realtime transcription client configured (``session.update``, GA, or
``transcription_session.update``, beta), checked whole: a value of the wrong type is the client's
mistake, answered with an error, never a crash or half an update."""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..streaming.protocol import StreamError, sample_rate

DEFAULT_RATE = 24_000  # OpenAI's pcm16


@dataclass(frozen=True)
class Setup:
    """What the client configured (both the GA and the beta shapes of ``session``); ``manual``:
    turn detection off (``turn_detection: null``), each commit one item."""
    rate: int = DEFAULT_RATE
    language: str | None = None
    prompt: str | None = None
    model: str = "whisper-base"
    manual: bool = False

    def updated(self, session: object) -> Setup:
        """This setup with ``session``'s changes, all or none: a value of the wrong type is the
        client's mistake (an ``invalid_value`` error), never a crash or half an update."""
        session = _object(session, "session")
        audio_in = _object(_object(session.get("audio"), "session.audio").get("input"), "session.audio.input")  # GA
        transcription = _object(audio_in.get("transcription") or session.get("input_audio_transcription"),
                                "transcription")
        return replace(self, rate=self._rate(audio_in.get("format") or session.get("input_audio_format")),
                       language=_text(transcription, "language", self.language),
                       prompt=_text(transcription, "prompt", self.prompt),
                       model=_text(transcription, "model", self.model) or self.model,
                       manual=self._manual(audio_in, session))

    def _rate(self, fmt: object) -> int:
        if isinstance(fmt, dict) and fmt.get("type", "audio/pcm") == "audio/pcm":  # GA: its rate may be left out
            rate = fmt.get("rate", DEFAULT_RATE)
            return sample_rate(int(rate) if isinstance(rate, float) and rate.is_integer() else rate)
        if fmt in ("pcm16", "audio/pcm"):
            return DEFAULT_RATE
        if fmt is None:
            return self.rate
        raise StreamError("unsupported_format", f"input audio format {str(fmt)[:40]!r}: only PCM16 is served")

    def _manual(self, audio_in: dict, session: dict) -> bool:
        for where in (audio_in, session):  # GA, then beta
            if "turn_detection" in where:
                if where["turn_detection"] is None:
                    return True
                kind = _object(where["turn_detection"], "turn_detection").get("type", "server_vad")
                if kind not in ("server_vad", "semantic_vad"):
                    raise StreamError("invalid_value", f"turn_detection type {str(kind)[:40]!r}: server_vad or null")
                return False
        return self.manual

    def view(self, ga: bool) -> dict:
        transcription = {"model": self.model, "language": self.language, "prompt": self.prompt or ""}
        turns = None if self.manual else {"type": "server_vad"}  # semantic_vad is served by the server's VAD
        if ga:
            return {"type": "transcription", "object": "realtime.transcription_session", "id": "session",
                    "audio": {"input": {"format": {"type": "audio/pcm", "rate": self.rate},
                                        "transcription": transcription, "turn_detection": turns}}}
        return {"object": "realtime.transcription_session", "id": "session", "input_audio_format": "pcm16",
                "input_audio_transcription": transcription, "turn_detection": turns}


def _object(value: object, name: str) -> dict:
    """``value`` as a JSON object (None: an empty one)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise StreamError("invalid_value", f"{name} must be an object, not {type(value).__name__}")
    return value


def _text(fields: dict, key: str, current: str | None) -> str | None:
    """A string field: left out, it stays as it was; null clears it."""
    if key not in fields:
        return current
    value = fields[key]
    if value is not None and not isinstance(value, str):
        raise StreamError("invalid_value", f"transcription.{key} must be a string, not {type(value).__name__}")
    return value
