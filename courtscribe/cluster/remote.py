"""The gateway's side of the engine deployments: the same small interfaces as in-process
(:class:`Engine`, :class:`EngineStream`, :class:`SpeakerEncoder`), each call a Serve handle call.

Everything a stream remembers stays here, in the gateway that holds its WebSocket: the audio of
the utterance in progress, the VAD state, the speaker turns. Finals are stateless (a final decodes
a whole utterance), so any replica can answer and a call whose replica died is simply made again;
Serve routes the retry to a live replica. Partials are too for engines without streaming state (a
preview of the utterance so far); an engine with a cache per stream (FunASR) keeps it on one online
replica, and a replica that lost it says so: the gateway sends the utterance so far again
(``online.py``).
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
from .. import metrics
from .online import LOST

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

    def __init__(self, offline: Any, online: Any, *, name: str, model_name: str, sample_rate: int = SR,
                 partial_every_ms: int = 600, stateful_online: bool = False):
        self.offline, self.online = offline, online
        self.name, self.model_name, self.sample_rate = name, model_name, sample_rate
        # the online replicas hold a cache per stream (FunASR) rather than preview the utterance so far
        self.partial_every_ms, self.incremental_partials = partial_every_ms, stateful_online

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
        if self.incremental_partials:
            return _RemoteOnlineStream(self, offset_ms, options)
        return PreviewStream(self, offset_ms, options, self.partial_every_ms)


class _RemoteOnlineStream(EngineStream):
    """A stream whose online state lives on the online replica its utterance was routed to."""

    def __init__(self, engine: RemoteEngine, offset_ms: int, options: DecodeOptions):
        self.engine, self.offset_ms, self.options = engine, offset_ms, options
        self._begin()

    def _begin(self) -> None:
        self.key = uuid.uuid4().hex  # one per utterance: its replica may change between utterances
        self.handle = self.engine.online.options(multiplexed_model_id=self.key)
        self._audio: list[np.ndarray] = []
        self.fed = 0

    def accept(self, audio: np.ndarray) -> Hypothesis | None:
        audio = audio.astype(np.float32, copy=False)
        self._audio.append(audio)
        got = call(self.handle, "advance", self.key, audio, self.fed, self.offset_ms, self.options, stage="partial")
        if got == LOST:  # that replica no longer holds this utterance: all of it again, from the start
            metrics.RETRIES.labels("partial").inc()
            got = call(self.handle, "advance", self.key, np.concatenate(self._audio), 0, self.offset_ms, self.options,
                       stage="partial")
        self.fed += audio.size
        return got if isinstance(got, Hypothesis) else None

    def finalize(self) -> list[Hypothesis]:
        audio = np.concatenate(self._audio) if self._audio else np.zeros(0, np.float32)
        hyps = self.engine.transcribe(audio, offset_ms=self.offset_ms, options=self.options)
        self.handle.close.remote(self.key)  # the replica's state for it can go (unanswered: nothing waits)
        self.offset_ms += audio.size * 1000 // SR
        self._begin()
        return hyps


class RemotePunctuator(Punctuator):
    """Punctuation from the Punctuation deployment (called from a finals replica's worker thread).
    Its name is asked when first needed, from that thread: a finals replica loads its models while
    the Punctuation replica starts, instead of after it."""

    def __init__(self, handle: Any, name: str | None = None):
        self.handle, self._name = handle, name

    @property
    def name(self) -> str:  # type: ignore[override]
        if self._name is None:
            self._name = call(self.handle, "describe", stage="punctuation")["name"]
        return self._name

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
