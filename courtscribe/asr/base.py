"""The one interface every ASR engine implements, so the embedded Whisper engine and the production
FunASR engine are interchangeable plug-ins.

Two passes, as courtroom streaming needs them:
- ``Engine.transcribe`` is the accurate pass over one VAD segment (whole files, and the final of a
  live utterance): punctuated text with token timestamps, in absolute hearing time.
- ``Engine.open_stream`` returns an :class:`EngineStream` for the online pass: audio chunks in,
  partial hypotheses out, and ``finalize`` at the VAD endpoint.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from ..audio import SAMPLE_RATE
from ..config import Settings
from ..records.model import Token


@dataclass(frozen=True)
class DecodeOptions:
    language: str = "zh"
    # other languages an utterance may be in (courts hear English, interpreters): an engine that can
    # tell transcribes an utterance that is confidently in one of them in that language
    languages: tuple[str, ...] = ("zh", "en")
    hotwords: tuple[str, ...] = ()
    beam_size: int = 5
    # One utterance per piece (live streams, and files, which are decoded utterance by utterance too):
    # engines may fit their work to it (Whisper encodes a window fitted to the utterance instead of
    # always 30 s).
    live: bool = False
    # numbers written as a 笔录 writes them (asr/itn.py, numbers.py); False: as spoken, for a client
    # that asked so (FunASR's ``itn: false``)
    itn: bool = True

    @classmethod
    def from_settings(cls, settings: Settings, *, language: str | None = None,
                      hotwords: Sequence[str] = ()) -> DecodeOptions:
        """A file's options as the server's settings say (language, languages, beam): the one place
        the CLI, uploads, jobs and FunASR's offline mode get them from."""
        return cls(language=language or settings.language, languages=tuple(settings.languages),
                   hotwords=tuple(hotwords), beam_size=settings.beam_size)


@dataclass
class Hypothesis:
    """Engine output for a stretch of audio. Times are absolute ms (segment offset already added)."""

    text: str
    start_ms: int
    end_ms: int
    tokens: list[Token] = field(default_factory=list)
    language: str | None = None
    is_final: bool = True
    confidence: float | None = None
    flags: tuple[str, ...] = ()  # e.g. ("unrecognized", "loop"): see asr/coverage.py
    speaker: str | None = None  # who said it, once diarization cut the engine's sentence at a speaker change


class EngineStream(ABC):
    """Per-connection online state. Not thread-safe: one stream is fed by one caller."""

    @abstractmethod
    def accept(self, audio: np.ndarray) -> Hypothesis | None:
        """Add 16 kHz float32 audio; return a partial hypothesis when one is ready."""

    @abstractmethod
    def finalize(self) -> list[Hypothesis]:
        """End the current utterance: accurate final hypotheses, then reset for the next one."""


class Engine(ABC):
    name: str
    model_name: str
    sample_rate: int = SAMPLE_RATE
    # how many streams' online passes one ``accept_many`` call should carry: 1 unless the engine
    # advances many streams in one forward pass (the decode worker then hands it all that are due)
    partial_batch: int = 1
    # partials advance a state chunk by chunk (a chunk left now must be decoded later anyway, so
    # serving it on time costs nothing overall), rather than re-decoding the utterance so far (a
    # late preview is work the final makes moot): only the former are worth a deadline
    incremental_partials: bool = False
    # decodes the engine runs side by side (replicas of its own): past 1, the decode worker lets
    # partials go on while a final decodes (streaming/scheduler.py)
    lanes: int = 1

    @abstractmethod
    def transcribe(self, audio: np.ndarray, *, offset_ms: int = 0,
                   options: DecodeOptions = DecodeOptions()) -> list[Hypothesis]:
        """Accurate pass over one speech segment; may return several sentence-level hypotheses."""

    def transcribe_many(self, pieces: list[tuple[np.ndarray, int]],
                        options: DecodeOptions = DecodeOptions()) -> list[list[Hypothesis]]:
        """Accurate pass over several segments ``(audio, offset_ms)``; engines that can batch override it."""
        return [self.transcribe(a, offset_ms=off, options=options) for a, off in pieces]

    @abstractmethod
    def open_stream(self, *, offset_ms: int = 0, options: DecodeOptions = DecodeOptions()) -> EngineStream:
        """Online pass for one audio source."""

    def accept_many(self, work: list[tuple[EngineStream, np.ndarray]]) -> list[Hypothesis | None]:
        """New audio for several of this engine's streams, each stream at most once; each one's
        partial (or None). Engines that batch streams override it."""
        return [stream.accept(audio) for stream, audio in work]

    def preview_many(self, pieces: list[tuple[np.ndarray, int]],
                     options: DecodeOptions = DecodeOptions()) -> list[Hypothesis | None]:
        """Stateless partials: one preview of each utterance-so-far ``(audio, offset_ms)``.

        Remote engine replicas serve these (a stream's state stays with its gateway, so any replica
        can answer, and a retry after a replica dies is the same call again). The default replays
        the audio through a fresh online stream; engines that can batch override it."""
        out: list[Hypothesis | None] = []
        for audio, offset in pieces:
            hyp = self.open_stream(offset_ms=offset, options=options).accept(audio)
            out.append(hyp if hyp is None else Hypothesis(hyp.text, offset, offset + audio.size * 1000 // self.sample_rate,
                                                           language=hyp.language, is_final=False))
        return out


class PreviewStream(EngineStream):
    """The online pass of an engine without streaming state (Whisper, or any engine on remote
    replicas): it keeps the utterance's audio, previews all of it every ``partial_every_ms`` of new
    audio (``preview_many``, which such an engine must implement) and decodes it whole at the end."""

    PIN_LANGUAGE_MS = 1200  # a preview of this much speech settles the utterance's language for the next ones
    ONSET_EVERY_MS = 400  # until a preview has words: the first words reach the screens sooner

    def __init__(self, engine: Engine, offset_ms: int, options: DecodeOptions, partial_every_ms: int = 600):
        self.engine, self.options, self.partial_every = engine, options, partial_every_ms
        self._heard = False  # a preview has had words
        self._preview_options = options
        self.offset_ms = offset_ms  # absolute time of the buffer's first sample
        self._buf: list[np.ndarray] = []
        self._frames = 0
        self._since_partial = 0

    def accept(self, audio: np.ndarray) -> Hypothesis | None:
        self._buf.append(audio.astype(np.float32, copy=False))
        self._frames += audio.size
        self._since_partial += audio.size
        every = self.partial_every if self._heard else min(self.partial_every, self.ONSET_EVERY_MS)
        if self._since_partial * 1000 < every * self.engine.sample_rate:
            return None
        self._since_partial = 0
        hyp = self.engine.preview_many([(np.concatenate(self._buf), self.offset_ms)], self._preview_options)[0]
        self._heard = self._heard or bool(hyp and hyp.text)
        if hyp is not None and hyp.language and len(self._preview_options.languages) > 1 and \
                self._frames * 1000 >= self.PIN_LANGUAGE_MS * self.engine.sample_rate:
            # later previews decode in the language found instead of checking again each time (an
            # encoder pass per preview); the final checks the whole utterance once more
            self._preview_options = replace(self.options, language=hyp.language, languages=(hyp.language,))
        return hyp

    def finalize(self) -> list[Hypothesis]:
        audio = np.concatenate(self._buf) if self._buf else np.zeros(0, np.float32)
        hyps = self.engine.transcribe(audio, offset_ms=self.offset_ms, options=self.options)
        self.offset_ms += self._frames * 1000 // self.engine.sample_rate
        self._buf, self._frames, self._since_partial = [], 0, 0
        self._heard = False
        self._preview_options = self.options
        return hyps
