"""The production engine: FunASR's streaming Paraformer (online pass) and SeACo-Paraformer-large
(offline pass) with CT-Transformer punctuation and inverse text normalization.

Same :class:`Engine` interface as the embedded Whisper engine, so ``--engine funasr`` changes
nothing else. The 2-pass split is FunASR's own: partials from the streaming model every 600 ms chunk
(its encoder/decoder caches kept per stream), and at each VAD endpoint the utterance re-decoded by
the large model with character timestamps, then punctuated and normalized.

Batching: ``transcribe_many`` decodes the finals of many streams in one forward call (the decode
scheduler collects them); FunASR's own runtime decodes one utterance at a time. ``accept_many``
advances many streams' online passes together: the chunks due go through the streaming model in
one forward pass (:mod:`courtscribe.asr.online_batch`, each stream's FunASR cache gathered and
scattered back), where FunASR's runtime runs one stream's chunk at a time.

Models load through :func:`courtscribe.asr.funasr_loader.auto_model` from local directories
(ModelScope downloads or the GPU image's baked-in copies). Tests load random-weight models of the
same classes through this very code (``courtscribe.models.random_init``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE as SR
from ..records.model import Token
from ..logs import get_logger
from . import online_batch
from .base import DecodeOptions, Engine, EngineStream, Hypothesis
from .funasr_loader import LockedModel
from .hotwords import clean, corrector
from .itn import itn
from .punctuation import CtPunctuator, Punctuator
from ..text import join_pieces

MIN_SAMPLES = 1_600  # under 100 ms the frontend yields no frame: nothing to decode
SENTENCE_END = "。？！?!"
log = get_logger(__name__)


@dataclass(frozen=True)
class StreamingConfig:
    """FunASR's streaming knobs: [0, 10, 5] = 600 ms chunks with 300 ms look-ahead."""

    chunk_size: tuple[int, int, int] = (0, 10, 5)
    encoder_chunk_look_back: int = 4
    decoder_chunk_look_back: int = 1

    @property
    def chunk_samples(self) -> int:
        return self.chunk_size[1] * 960

    def batched(self) -> online_batch.Streaming:
        return online_batch.Streaming(self.chunk_size, self.encoder_chunk_look_back, self.decoder_chunk_look_back)


def _exact_batching(model) -> None:
    """Make a batched offline pass give what one-at-a-time gives (to float tolerance).

    FunASR pads a batch to its longest piece and leaves encoder output in the padding: the CIF
    predictor's convolution then reads it at each shorter piece's last frame (its last token
    changes), and the timestamp predictor's BLSTM runs backwards from the padded end (its times
    change). Zeroing the padding is what a lone piece sees; timestamps are predicted per piece on
    its own frames (a small network next to the encoder and decoder).
    """
    import torch

    encode, timestamps = model.encode, getattr(model, "calc_predictor_timestamp", None)

    def masked_encode(speech, speech_lengths, *args, **kwargs):
        out, lens = encode(speech, speech_lengths, *args, **kwargs)
        enc = out[0] if isinstance(out, tuple) else out
        if enc.size(0) > 1:
            keep = torch.arange(enc.size(1), device=enc.device)[None, :] < lens[:, None]
            enc = enc * keep[..., None].to(enc.dtype)
            out = (enc, *out[1:]) if isinstance(out, tuple) else enc
        return out, lens

    def per_piece_timestamps(encoder_out, encoder_out_lens, token_num):
        if encoder_out.size(0) == 1:
            return timestamps(encoder_out, encoder_out_lens, token_num)
        parts = [timestamps(encoder_out[i:i + 1, :n], encoder_out_lens[i:i + 1], token_num[i:i + 1])
                 for i, n in enumerate(encoder_out_lens.tolist())]
        return tuple(_pad_stack([p[k][0] for p in parts]) for k in range(len(parts[0])))

    model.encode = masked_encode
    if timestamps is not None:
        model.calc_predictor_timestamp = per_piece_timestamps


def pack(lengths: list[int], max_batch: int, max_padding: float) -> list[list[int]]:
    """Indices grouped into batches of similar length. A batch costs about its size times its
    longest piece, so a piece joins the current batch (shortest first) only while the padding stays
    under ``max_padding`` of the real audio: on a CPU, batching 2 s with 20 s utterances is slower
    than decoding them apart (bench/funasr_engine.py); equal lengths batch ~2× faster even there."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    batches: list[list[int]] = []
    current: list[int] = []
    total = 0
    for i in order:
        n = lengths[i]
        if current and (len(current) >= max_batch or (len(current) + 1) * n > (1 + max_padding) * (total + n)):
            batches.append(current)
            current, total = [], 0
        current.append(i)
        total += n
    if current:
        batches.append(current)
    return batches


def _pad_stack(rows):
    import torch

    width = max(r.size(0) for r in rows)
    return torch.stack([torch.nn.functional.pad(r, (0, width - r.size(0))) for r in rows])


class FunasrEngine(Engine):
    name = "funasr"
    incremental_partials = True

    def __init__(self, online_dir: Path, offline_dir: Path, punc: Punctuator | Path | None = None, *, device: str = "cpu",
                 fp16: bool = False, cpu_threads: int = 2, use_itn: bool = True, max_batch: int = 16,
                 max_padding: float = 0.25, streaming: StreamingConfig = StreamingConfig()):
        if fp16 and not device.startswith("cuda"):
            raise ValueError("fp16 needs a CUDA device")
        # Dither is a training-time augmentation, and the streaming model's published config leaves
        # it at FunASR's default (on): inference must be deterministic, so it is off here.
        common = dict(device=device, ncpu=cpu_threads, fp16=fp16, frontend_conf={"dither": 0.0})
        self.online = LockedModel(online_dir, **common)
        self.offline = LockedModel(offline_dir, **common)
        _exact_batching(self.offline.auto.model)
        # a model directory: CT-Transformer here; a Punctuator: e.g. the cluster's Punctuation deployment
        self.punctuator = CtPunctuator(punc, device=device, cpu_threads=cpu_threads) \
            if isinstance(punc, (str, Path)) else punc
        self.device, self.fp16, self.use_itn, self.streaming = device, fp16, use_itn, streaming
        self.max_batch, self.max_padding = max_batch, max_padding
        self.partial_batch = max_batch
        self.model_name = f"{Path(offline_dir).name}+{Path(online_dir).name}" + \
            (f"+{self.punctuator.name}" if self.punctuator else "")

    # -- offline pass -------------------------------------------------------------------------
    def transcribe(self, audio: np.ndarray, *, offset_ms: int = 0,
                   options: DecodeOptions = DecodeOptions()) -> list[Hypothesis]:
        return self.transcribe_many([(audio, offset_ms)], options)[0]

    def transcribe_many(self, pieces: list[tuple[np.ndarray, int]],
                        options: DecodeOptions = DecodeOptions()) -> list[list[Hypothesis]]:
        """The given pieces in as few forward calls as padding allows (see :func:`pack`), then all
        their punctuation in one call; results in the order given."""
        out: list[list[Hypothesis]] = [[] for _ in pieces]
        todo = [i for i, (a, _) in enumerate(pieces) if a.size >= MIN_SAMPLES]
        hotword = " ".join(clean(options.hotwords)) or None
        decoded: list[tuple[int, dict]] = []
        for idx in pack([pieces[i][0].size for i in todo], self.max_batch, self.max_padding):
            idx = [todo[k] for k in idx]
            results = self.offline.generate([pieces[i][0].astype(np.float32, copy=False) for i in idx],
                                            batch_size=len(idx), hotword=hotword, disable_pbar=True)
            if not results:  # FunASR returns nothing when no piece of the batch holds a token
                continue
            if len(results) != len(idx):
                raise RuntimeError(f"FunASR returned {len(results)} results for a batch of {len(idx)}")
            decoded += [(i, r) for i, r in zip(idx, results) if r.get("text", "").split()]
        words = [r["text"].split() for _, r in decoded]
        marks = self.punctuator.marks_many(words) if self.punctuator and words else [[""] * len(w) for w in words]
        for (i, result), w, m in zip(decoded, words, marks):
            out[i] = self._sentences(w, m, result.get("timestamp") or [], pieces[i][1], options.itn)
        return out

    def _sentences(self, words: list[str], marks: list[str], stamps: list, offset_ms: int,
                   itn: bool = True) -> list[Hypothesis]:
        """Timestamped characters with their punctuation → sentence hypotheses in absolute time."""
        if len(stamps) != len(words):  # no per-token times: spread the tokens evenly over the stamps' span
            lo, hi = (stamps[0][0], stamps[-1][1]) if stamps else (0, 0)
            step = (hi - lo) / len(words)
            stamps = [[int(lo + k * step), int(lo + (k + 1) * step)] for k in range(len(words))]
        tokens = [Token(text=w, start_ms=offset_ms + int(s), end_ms=offset_ms + int(e)) for w, (s, e) in zip(words, stamps)]
        sentences, current = [], []
        for tok, mark in zip(tokens, marks):
            current.append(tok.model_copy(update={"text": tok.text + mark}) if mark else tok)
            if mark and mark in SENTENCE_END:
                sentences.append(current)
                current = []
        if current:
            sentences.append(current)
        return [self._hypothesis(s, itn) for s in sentences]

    def _hypothesis(self, tokens: list[Token], written: bool = True) -> Hypothesis:
        text = join_pieces([t.text for t in tokens])
        return Hypothesis(text=itn(text) if self.use_itn and written else text, start_ms=tokens[0].start_ms,
                          end_ms=tokens[-1].end_ms, tokens=tokens, language="zh")

    # -- online pass --------------------------------------------------------------------------
    def open_stream(self, *, offset_ms: int = 0, options: DecodeOptions = DecodeOptions()) -> EngineStream:
        return ParaformerStream(self, offset_ms, options)

    def accept_many(self, work: list[tuple[EngineStream, np.ndarray]]) -> list[Hypothesis | None]:
        """Each stream's new audio; then, round after round, every stream with a whole chunk due
        advances by one chunk, up to ``max_batch`` streams per forward pass. A stream that had
        several chunks due (the box fell behind) gives one partial for all of them."""
        streams = [stream for stream, _ in work]
        for stream, audio in work:
            stream.take(audio)
        advanced: set[int] = set()
        while due := [s for s in streams if s.due]:
            advanced.update(map(id, due))
            for k in range(0, len(due), self.max_batch):
                self.online_step(due[k:k + self.max_batch])
        return [s.partial() if id(s) in advanced else None for s in streams]

    def online_step(self, streams: list["ParaformerStream"]) -> None:
        """One chunk of each stream through the streaming model in one forward pass."""
        model, kwargs = self.online.auto.model, self.online.auto.kwargs
        for s in streams:
            if not s.cache:
                s.cache = online_batch.new_cache(model, kwargs, self.streaming.batched())
        chunks = [(s.next_chunk(), s.cache) for s in streams]
        try:
            with self.online.lock, self.online.precision():
                fired = online_batch.step(model, kwargs, chunks)
        except Exception:
            for s in streams:  # a half-updated cache would garble what follows: start afresh
                s.cache = {}
            raise
        for s, tokens in zip(streams, fired):
            s.tokens += tokens


class ParaformerStream(EngineStream):
    """Online pass for one audio source: 600 ms chunks through the streaming model, its cache kept
    across chunks; the text so far, hotword-biased, is the partial."""

    def __init__(self, engine: FunasrEngine, offset_ms: int, options: DecodeOptions):
        self.engine, self.options, self.offset_ms = engine, options, offset_ms
        self.bias = corrector(clean(options.hotwords))
        self._reset()

    def _reset(self) -> None:
        self.cache: dict = {}
        self._pending = np.zeros(0, np.float32)
        self._audio: list[np.ndarray] = []
        self._samples = 0
        self.tokens: list[str] = []

    def accept(self, audio: np.ndarray) -> Hypothesis | None:
        return self.engine.accept_many([(self, audio)])[0]

    def take(self, audio: np.ndarray) -> None:
        audio = audio.astype(np.float32, copy=False)
        self._audio.append(audio)
        self._samples += audio.size
        self._pending = np.concatenate([self._pending, audio])

    @property
    def due(self) -> bool:
        return self._pending.size >= self.engine.streaming.chunk_samples

    def next_chunk(self) -> np.ndarray:
        step = self.engine.streaming.chunk_samples
        chunk, self._pending = self._pending[:step], self._pending[step:]
        return chunk

    def partial(self) -> Hypothesis | None:
        """The text of the chunks decoded so far, timed to the last whole chunk."""
        if not self.tokens:
            return None
        from funasr.utils.postprocess_utils import sentence_postprocess

        text = sentence_postprocess(self.tokens)[0]
        end = self.offset_ms + (self._samples - self._pending.size) * 1000 // SR
        return Hypothesis(text=self.bias(join_pieces([text])), start_ms=self.offset_ms, end_ms=end,
                          language="zh", is_final=False)

    def finalize(self) -> list[Hypothesis]:
        """The utterance's accurate pass (offline model), then a fresh cache for the next one."""
        audio = np.concatenate(self._audio) if self._audio else np.zeros(0, np.float32)
        hyps = self.engine.transcribe(audio, offset_ms=self.offset_ms, options=self.options)
        self.offset_ms += self._samples * 1000 // SR
        self._reset()
        return hyps
