"""The gateway's side of the engine deployments: the same small interfaces as in-process
(:class:`Engine`, :class:`EngineStream`, :class:`SpeakerEncoder`), each call a Serve handle call.

Everything a stream remembers stays here, in the gateway that holds its WebSocket: the audio of
the utterance in progress, the VAD state, the speaker turns. Engine calls are stateless (a final
decodes a whole utterance, a partial previews the utterance so far), so any replica can answer and
a call whose replica died is simply made again; Serve routes the retry to a live replica.
"""
from __future__ import annotations

import time
import uuid
from typing import Any

import numpy as np

from ..asr.base import DecodeOptions, Engine, EngineStream, Hypothesis, PreviewStream
from ..asr.punctuation import Punctuator
from ..asr.vad import SR, Vad, VadEvent, VadStream
from ..diarization.embedding import SpeakerEncoder
from ..logs import get_logger
from . import metrics

log = get_logger(__name__)
RETRY_FOR_S = 60.0  # a replica restart (model load) fits in this; past it the utterance reports an engine error


def _gone(err: BaseException) -> bool:
    """Errors that mean "that replica is gone or unreachable", not "this audio cannot be decoded"."""
    from ray import exceptions as rx

    return isinstance(err, (rx.RayActorError, rx.ActorUnavailableError, rx.WorkerCrashedError,
                            rx.NodeDiedError, rx.ObjectLostError)) or type(err).__name__ in (
        "DeploymentUnavailableError", "BackPressureError")


def call(handle: Any, method: str, *args, stage: str) -> Any:
    """One deployment call from a gateway worker thread, retried while replicas come and go."""
    deadline, delay = time.monotonic() + RETRY_FOR_S, 0.2
    while True:
        started = time.perf_counter()
        try:
            with metrics.IN_FLIGHT.labels(stage).track_inprogress():
                result = getattr(handle, method).remote(*args).result()
        except Exception as err:  # noqa: BLE001 - sorted below: retry a lost replica, raise the rest
            if not _gone(err) or time.monotonic() > deadline:
                raise
            metrics.RETRIES.labels(stage).inc()
            log.warning("engine replica lost; retrying on another", stage=stage, error=type(err).__name__)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
            continue
        metrics.STAGE_SECONDS.labels(f"remote_{stage}").observe(time.perf_counter() - started)
        return result


class RemoteEngine(Engine):
    """An :class:`Engine` whose decodes run on the offline (finals) and online (partials) deployments."""

    def __init__(self, offline: Any, online: Any, *, name: str, model_name: str, sample_rate: int = 16_000,
                 partial_every_ms: int = 600):
        self.offline, self.online = offline, online
        self.name, self.model_name, self.sample_rate = name, model_name, sample_rate
        self.partial_every_ms = partial_every_ms

    def transcribe_many(self, pieces: list[tuple[np.ndarray, int]],
                        options: DecodeOptions = DecodeOptions()) -> list[list[Hypothesis]]:
        return call(self.offline, "transcribe", pieces, options, stage="final")

    def transcribe(self, audio: np.ndarray, *, offset_ms: int = 0,
                   options: DecodeOptions = DecodeOptions()) -> list[Hypothesis]:
        return self.transcribe_many([(audio, offset_ms)], options)[0]

    def preview_many(self, pieces: list[tuple[np.ndarray, int]],
                     options: DecodeOptions = DecodeOptions()) -> list[Hypothesis | None]:
        return [call(self.online, "preview", audio, offset, options, stage="partial") for audio, offset in pieces]

    def open_stream(self, *, offset_ms: int = 0, options: DecodeOptions = DecodeOptions()) -> EngineStream:
        return PreviewStream(self, offset_ms, options, self.partial_every_ms)


class RemotePunctuator(Punctuator):
    """Punctuation from the Punctuation deployment (called from a finals replica's worker thread)."""

    def __init__(self, handle: Any, name: str):
        self.handle, self.name = handle, name

    def marks_many(self, texts: list[list[str]]) -> list[list[str]]:
        return call(self.handle, "marks_many", texts, stage="punctuation") if texts else []


class RemoteVad(Vad):
    """The VAD deployment: each stream's chunks go to the replica holding its state."""

    def __init__(self, handle: Any, name: str):
        self.handle, self.name = handle, name

    def open_stream(self, chunk_ms: int = 200) -> VadStream:
        return _RemoteVadStream(self.handle.options(multiplexed_model_id=uuid.uuid4().hex), chunk_ms)


class _RemoteVadStream(VadStream):
    def __init__(self, handle: Any, chunk_ms: int):
        self.handle, self.chunk_ms, self.fed = handle, chunk_ms, 0

    def feed(self, audio: np.ndarray, *, final: bool = False) -> list[VadEvent]:
        at_ms = self.fed * 1000 // SR
        self.fed += audio.size
        if audio.size == 0 and not final:
            return []
        got = call(self.handle, "feed", self.chunk_ms, at_ms, audio.astype(np.float32, copy=False), final, stage="vad")
        return [VadEvent(start, end) for start, end in got]


class RemoteSpeakerEncoder(SpeakerEncoder):
    """Speaker embeddings from the embedding deployment (CAM++ or Resemblyzer on its replicas)."""

    def __init__(self, handle: Any, *, name: str, dim: int):
        self.handle, self.name, self.dim = handle, name, dim

    def embed_many(self, pieces: list[np.ndarray]) -> np.ndarray:
        if not pieces:
            return np.zeros((0, self.dim), np.float32)
        return call(self.handle, "embed_many", pieces, stage="speaker")

    def embed(self, audio: np.ndarray) -> np.ndarray:
        return self.embed_many([audio])[0]
