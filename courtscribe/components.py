"""The pipeline's parts, registered by name in one place: engines, file VADs, speaker encoders (and
the live VAD and punctuator every engine shares). Settings name them (``COURTSCRIBE_ENGINE``,
``_VAD``, ``_SPEAKER_ENCODER``); a loader imports its libraries only when chosen, so the embedded
default and the production models are plug-ins of one table each, and a new one is one entry."""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from .config import Settings, get_settings
from .models import Registry, default_registry

if TYPE_CHECKING:
    from .asr.base import Engine
    from .asr.punctuation import Punctuator
    from .asr.vad import Vad
    from .diarization.embedding import SpeakerEncoder
    from .diarization.segmentation import Segmenter

T = TypeVar("T")
ENGINES: dict[str, Callable[..., Engine]] = {}  # name → loader(settings, registry, punctuator)
VADS: dict[str, Callable[[Settings, Registry], Vad]] = {}
SPEAKER_ENCODERS: dict[str, Callable[[Settings, Registry], SpeakerEncoder]] = {}
_background = ThreadPoolExecutor(max_workers=2, thread_name_prefix="courtscribe-load")


def registers(table: dict[str, T], name: str) -> Callable[[T], T]:
    def add(loader: T) -> T:
        table[name] = loader
        return loader
    return add


def pick(table: dict[str, T], kind: str, name: str) -> T:
    if name not in table:
        raise ValueError(f"unknown {kind} {name!r}: choose {' or '.join(table)}")
    return table[name]


@registers(ENGINES, "whisper")
def _whisper(settings: Settings, registry: Registry, punctuator: Punctuator | None = None) -> Engine:
    """The embedded engine: Whisper base on CTranslate2 (it writes its own punctuation)."""
    from .asr.whisper_engine import WhisperEngine

    return WhisperEngine(registry.resolve("whisper-base"), device=settings.device, cpu_threads=settings.cpu_threads,
                         lanes=settings.decode_lanes)


@registers(ENGINES, "funasr")
def _funasr(settings: Settings, registry: Registry, punctuator: Punctuator | None = None) -> Engine:
    """The production engine: streaming Paraformer partials, SeACo-Paraformer finals, CT-punc (in
    process unless ``punctuator`` is given: the cluster's Punctuation deployment)."""
    from .asr.funasr_engine import FunasrEngine

    online, offline = (_production_model(registry, n, settings.model_fetch)
                       for n in ("paraformer-zh-streaming", "paraformer-zh"))
    punc = punctuator or _production_model(registry, "ct-punc", settings.model_fetch)
    return FunasrEngine(online, offline, punc, device=settings.device, fp16=settings.fp16,
                        cpu_threads=settings.cpu_threads, use_itn=settings.itn, max_batch=settings.final_batch)


@registers(VADS, "fsmn-vad")
def _fsmn_vad(settings: Settings, registry: Registry) -> Vad:
    from .asr.vad import FsmnVad

    return FsmnVad(_fsmn_dir(settings, registry), max_segment_ms=int(settings.segment_s * 1000),
                   threshold=settings.fsmn_vad_threshold, device=settings.device)


@registers(VADS, "silero")
def _silero_vad(settings: Settings, registry: Registry) -> Vad:
    from .asr.vad import SileroVad

    return SileroVad(max_segment_ms=int(settings.segment_s * 1000), threshold=settings.vad_threshold)


@registers(SPEAKER_ENCODERS, "campplus")
def _campplus(settings: Settings, registry: Registry) -> SpeakerEncoder:
    from .diarization.embedding import CampplusEncoder

    return CampplusEncoder(registry.resolve("campplus-zh-en") / "campplus_cn_en_common.pt", device=settings.device)


@registers(SPEAKER_ENCODERS, "resemblyzer")
def _resemblyzer(settings: Settings, registry: Registry) -> SpeakerEncoder:
    from .diarization.embedding import ResemblyzerEncoder

    return ResemblyzerEncoder(registry.resolve("resemblyzer-ge2e") / "pretrained.pt", device=settings.device)


def load_engine(settings: Settings, registry: Registry, punctuator: Punctuator | None = None) -> Engine:
    return pick(ENGINES, "engine", settings.engine)(settings, registry, punctuator)


def load_vad(settings: Settings, registry: Registry) -> Vad:
    return pick(VADS, "VAD", settings.vad)(settings, registry)


def load_speaker_encoder(settings: Settings, registry: Registry) -> SpeakerEncoder:
    return pick(SPEAKER_ENCODERS, "speaker encoder", settings.speaker_encoder)(settings, registry)


def load_segmenter(settings: Settings, registry: Registry) -> Segmenter:
    from .diarization.segmentation import Segmenter

    return Segmenter(registry.resolve("pyannote-segmentation-3.0"), step_s=settings.segmentation_step_s,
                     device=settings.device)


def load_stream_vad(settings: Settings, registry: Registry) -> Vad:
    """Live sources' VAD, whatever VAD files use: FSMN-VAD in streaming mode, ending an utterance
    after ``stream_vad_silence_ms`` of silence."""
    from .asr.vad import FsmnVad

    return FsmnVad(_fsmn_dir(settings, registry), max_end_silence_ms=settings.stream_vad_silence_ms,
                   max_segment_ms=int(settings.segment_s * 1000),
                   threshold=settings.fsmn_vad_threshold, device=settings.device)


def load_punctuator(settings: Settings, registry: Registry) -> Punctuator:
    """CT-Transformer punctuation on its own (the cluster's Punctuation deployment)."""
    from .asr.punctuation import CtPunctuator

    return CtPunctuator(_production_model(registry, "ct-punc", settings.model_fetch), device=settings.device,
                        cpu_threads=settings.cpu_threads)


def _production_model(registry: Registry, name: str, fetch: bool) -> Path:
    """The local copy of a production model; downloaded first only when court IT allowed it."""
    from .models import ModelError

    try:
        return registry.resolve(name)
    except ModelError:
        if not fetch:
            raise
        return registry.fetch(name)


def _fsmn_dir(settings: Settings, registry: Registry) -> Path:
    """The production FSMN-VAD when court IT provided it, else the embedded wheel's."""
    name = "fsmn-vad" if settings.model_dir and (settings.model_dir / "fsmn-vad").is_dir() else "fsmn-vad-embedded"
    return registry.resolve(name)


@dataclass
class Components:
    """The parts a server or a file run holds, loaded once: engine, file VAD, the speaker encoder on
    first need (only mono recordings and mixed live sources use it)."""

    engine: Engine
    vad: Vad
    registry: Registry
    settings: Settings
    _encoder: Future | None = None
    _segmenter: Future | None = None
    stream_vad: Vad | None = None  # live sources' VAD when not loaded here (the cluster's VAD deployment)

    def __post_init__(self) -> None:
        self._encoder_given = self._encoder is not None  # from outside: a cluster's deployment

    def warm_speaker_encoder(self) -> Future:
        """Start loading the speaker-embedding model in the background; its imports and first run
        take seconds that overlap with VAD and ASR this way."""
        if self._encoder is None:
            self._encoder = _background.submit(self._load_encoder)
        return self._encoder

    def speaker_encoder(self) -> SpeakerEncoder:
        return self.warm_speaker_encoder().result()

    def warm_segmenter(self) -> Future:
        """Start loading the speaker-turn model (pyannote segmentation-3.0) in the background."""
        if self._segmenter is None:
            self._segmenter = _background.submit(load_segmenter, self.settings, self.registry)
        return self._segmenter

    def segmenter(self) -> Segmenter:
        return self.warm_segmenter().result()

    def live_speaker_models(self) -> tuple[SpeakerEncoder, Segmenter]:
        """The live streams' own speaker models, apart from the ones file work uses: a recording's
        speaker turns (minutes of model work, at a lower priority) then never hold a courtroom's
        line waiting on a model's lock. An encoder given from outside (a cluster's deployment,
        which batches every caller) is shared."""
        encoder = self.speaker_encoder() if self._encoder_given else self._load_encoder()
        return encoder, load_segmenter(self.settings, self.registry)

    def _load_encoder(self) -> SpeakerEncoder:
        enc = load_speaker_encoder(self.settings, self.registry)
        enc.embed(np.zeros(16_000, np.float32))  # first call pays for lazy imports
        return enc


def load_components(settings: Settings | None = None) -> Components:
    settings = settings or get_settings()
    registry = default_registry(settings)
    import faster_whisper  # noqa: F401 - both loaders import it: first here, or their threads deadlock on its module locks
    vad = _background.submit(load_vad, settings, registry)  # loads while the engine loads
    engine = load_engine(settings, registry)
    return Components(engine, vad.result(), registry, settings)
