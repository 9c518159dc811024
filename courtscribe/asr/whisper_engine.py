"""The embedded engine: Whisper base (multilingual) through faster-whisper / CTranslate2, int8 on CPU.

Decoding choices, measured on ../shared/data/zh-smoke (bench/cer.py):
- language forced to ``zh`` with a Simplified-Chinese prompt that also admits English words
  (code-switching in testimony: names, brands, quoted English). Forcing ``zh`` with a pure-Chinese
  prompt drops English speech entirely.
- beam 5 for the accurate pass, greedy for partials; OpenCC t2s on every piece of text.
"""
from __future__ import annotations

import threading
from pathlib import Path

import ctranslate2
import numpy as np

from ..records.model import Token
from .base import DecodeOptions, Engine, EngineStream, Hypothesis
from .text import join_pieces, tidy, to_simplified

PROMPTS = {
    "zh": "以下是普通话的句子,其中可能夹杂English words。",
}
# Hallucination guards. Whisper fills near-silence with invented text ("作词作曲", repeats of the
# previous sentence, "试试试…" loops). Such segments carry a high no-speech probability together
# with a low log-probability, a repetition-loop compression ratio, or a copy of the previous text.
NO_SPEECH_PROB = 0.5
LOW_LOGPROB = -0.3
MAX_COMPRESSION = 2.4
BATCH_SIZE = 8
SEED = 20170301  # 法释〔2017〕5号 took effect on 1 March 2017


_SENTENCE_END = ("。", "？", "！", "?", "!", "；")


def split_sentences(hyp: Hypothesis, min_chars: int = 6, soft_max_ms: int = 8000) -> list[Hypothesis]:
    """One line per sentence: Whisper may return a 25 s window as one segment, which is no use to a
    clerk who must correct or replay a line. Cuts after sentence-final punctuation, and at a comma
    once a line runs past ``soft_max_ms`` (spoken Mandarin strings clauses with commas); times
    come from the word timestamps."""
    if not hyp.tokens:
        return [hyp]
    pieces, current = [], []
    for tok in hyp.tokens:
        current.append(tok)
        end = tok.text.rstrip()
        long_clause = end.endswith(("，", ",")) and tok.end_ms - current[0].start_ms >= soft_max_ms
        if (end.endswith(_SENTENCE_END) or long_clause) and len("".join(t.text for t in current).strip()) >= min_chars:
            pieces.append(current)
            current = []
    if current:
        if pieces and len("".join(t.text for t in current).strip()) < min_chars:
            pieces[-1] += current
        else:
            pieces.append(current)
    if len(pieces) == 1:
        return [hyp]
    return [Hypothesis(text=join_pieces([t.text for t in toks]), start_ms=toks[0].start_ms, end_ms=toks[-1].end_ms,
                       tokens=toks, language=hyp.language, is_final=hyp.is_final,
                       confidence=round(float(np.mean([t.prob for t in toks if t.prob is not None] or [0.0])), 4))
            for toks in pieces]


def _token_budget(seconds: float) -> int:
    """Most tokens a window can honestly need (fast Mandarin is ~6 characters/s, up to 2 tokens each,
    plus timestamps). Hallucination loops otherwise run to Whisper's 448-token limit at every
    fallback temperature: 24 s instead of 1.5 s for a 5 s window, measured."""
    return int(min(440, 16 + 15 * seconds))


def _failed(seg) -> bool:
    """Whisper's own test for a failed decode, which triggers its temperature fallback."""
    return seg.compression_ratio > MAX_COMPRESSION or seg.avg_logprob < -1.0


def _hallucinated(seg, previous_text: str) -> bool:
    if seg.compression_ratio > MAX_COMPRESSION:
        return True
    if seg.no_speech_prob > NO_SPEECH_PROB and (seg.avg_logprob < LOW_LOGPROB or seg.text.strip() == previous_text):
        return True
    return False


class WhisperEngine(Engine):
    name = "whisper"

    def __init__(self, model_dir: Path, *, model_name: str = "whisper-base", device: str = "cpu",
                 cpu_threads: int = 2, compute_type: str | None = None, word_timestamps: bool = True):
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        self.model_name = model_name
        self.word_timestamps = word_timestamps
        compute = compute_type or ("int8" if device == "cpu" else "float16")
        self.model = WhisperModel(str(model_dir), device=device, compute_type=compute, cpu_threads=cpu_threads)
        self._batched = BatchedInferencePipeline(self.model)
        # CTranslate2 models are safe to share, but one decode at a time keeps 2 cores from thrashing.
        self._lock = threading.Lock()

    def _decode(self, audio: np.ndarray, offset_ms: int, options: DecodeOptions, *, beam_size: int,
                words: bool, fallback: bool = True) -> list[Hypothesis]:
        return self._decode_many([(audio, offset_ms)], options, beam_size=beam_size, words=words,
                                 fallback=fallback)[0]

    def _decode_many(self, pieces: list[tuple[np.ndarray, int]], options: DecodeOptions, *, beam_size: int,
                     words: bool, fallback: bool = True) -> list[list[Hypothesis]]:
        """Decode several speech windows (each ≤ 30 s): batched, each exactly once, then Whisper's
        temperature fallback for the windows whose greedy result failed.

        faster-whisper's batched pipeline decodes each clip once and aligns words afterwards. Its
        sequential mode instead re-decodes the short tail after the last word of every window,
        where Whisper invents text and its fallback then loops (24 s instead of 1.5 s for one 5 s
        window, measured on zh-smoke/welcome.wav); but the batched mode has no fallback, and a
        window that fell into a repetition loop (zh-smoke/lamp.wav) needs one.
        """
        results: list[list[Hypothesis]] = [[] for _ in pieces]
        live = [i for i, (a, _) in enumerate(pieces) if a.size >= self.sample_rate // 10]
        if not live:
            return results
        language = None if options.language in ("", "auto") else options.language
        kw = dict(language=language, initial_prompt=PROMPTS.get(language or ""), beam_size=beam_size,
                  hotwords=" ".join(options.hotwords) or None, word_timestamps=words, without_timestamps=False,
                  vad_filter=False)
        audio = np.concatenate([pieces[i][0].astype(np.float32, copy=False) for i in live])
        bounds = np.cumsum([0] + [pieces[i][0].size for i in live])
        clips = [{"start": bounds[k] / self.sample_rate, "end": bounds[k + 1] / self.sample_rate}
                 for k in range(len(live))]
        with self._lock:
            ctranslate2.set_random_seed(SEED)
            segments, info = self._batched.transcribe(
                audio, clip_timestamps=clips, batch_size=BATCH_SIZE,
                max_new_tokens=_token_budget(max(c["end"] - c["start"] for c in clips)), **kw)
            per_clip: list[list] = [[] for _ in live]
            for seg in segments:
                # by the segment's midpoint: reported starts are rounded and can fall just before
                # their clip's first sample
                mid = round((seg.start + seg.end) / 2 * self.sample_rate)
                k = int(np.searchsorted(bounds, mid, side="right")) - 1
                per_clip[min(max(k, 0), len(live) - 1)].append(seg)
            for k, i in enumerate(live):
                base = bounds[k] / self.sample_rate
                if fallback and any(_failed(seg) for seg in per_clip[k]):
                    ctranslate2.set_random_seed(SEED)
                    redo, _ = self.model.transcribe(pieces[i][0], condition_on_previous_text=False,
                                                    max_new_tokens=_token_budget(clips[k]["end"] - clips[k]["start"]),
                                                    **kw)
                    per_clip[k], base = list(redo), 0.0
                results[i] = self._hypotheses(per_clip[k], language or info.language, base_s=base,
                                              offset_ms=pieces[i][1], audio_ms=1000 * pieces[i][0].size // self.sample_rate)
        return results

    def _hypotheses(self, segments, lang: str, *, base_s: float, offset_ms: int, audio_ms: int) -> list[Hypothesis]:
        out, previous = [], ""
        for seg in segments:
            if _hallucinated(seg, previous):
                continue
            previous = seg.text.strip()
            hyp = self._hypothesis(seg, lang, base_s=base_s, offset_ms=offset_ms, end_limit=offset_ms + audio_ms)
            if hyp:
                out += split_sentences(hyp)
        return out

    @staticmethod
    def _hypothesis(seg, lang: str, *, base_s: float, offset_ms: int, end_limit: int) -> Hypothesis | None:
        """Segment times are relative to the concatenated batch; make them absolute hearing times."""
        text = tidy(seg.text)
        if not text or any(text in tidy(p) for p in PROMPTS.values()):
            return None  # empty, or Whisper repeating its conditioning prompt

        def ms(t: float) -> int:
            return int(min(end_limit, max(offset_ms, offset_ms + round((t - base_s) * 1000))))

        tokens = [Token(text=to_simplified(w.word), start_ms=ms(w.start), end_ms=ms(w.end),
                        prob=round(float(w.probability), 4)) for w in (seg.words or []) if w.word.strip()]
        conf = float(np.mean([t.prob for t in tokens])) if tokens else float(np.exp(seg.avg_logprob))
        start = ms(seg.start)
        return Hypothesis(text=text, start_ms=start, end_ms=max(start, ms(seg.end)), tokens=tokens, language=lang,
                          is_final=True, confidence=round(conf, 4))

    def transcribe_many(self, pieces: list[tuple[np.ndarray, int]],
                        options: DecodeOptions = DecodeOptions()) -> list[list[Hypothesis]]:
        return self._decode_many(pieces, options, beam_size=options.beam_size, words=self.word_timestamps)

    def transcribe(self, audio: np.ndarray, *, offset_ms: int = 0,
                   options: DecodeOptions = DecodeOptions()) -> list[Hypothesis]:
        return self._decode(audio, offset_ms, options, beam_size=options.beam_size, words=self.word_timestamps)

    def open_stream(self, *, offset_ms: int = 0, options: DecodeOptions = DecodeOptions()) -> EngineStream:
        return WhisperStream(self, offset_ms, options)


class WhisperStream(EngineStream):
    """Online pass for Whisper: Whisper is not a streaming model, so partials re-decode the utterance
    so far (greedy, no word alignment) at most every ``partial_every_ms`` of new audio."""

    def __init__(self, engine: WhisperEngine, offset_ms: int, options: DecodeOptions, partial_every_ms: int = 600):
        self.engine, self.options, self.partial_every = engine, options, partial_every_ms
        self.offset_ms = offset_ms  # absolute time of the buffer's first sample
        self._buf: list[np.ndarray] = []
        self._frames = 0
        self._since_partial = 0

    def accept(self, audio: np.ndarray) -> Hypothesis | None:
        self._buf.append(audio.astype(np.float32, copy=False))
        self._frames += audio.size
        self._since_partial += audio.size
        if self._since_partial * 1000 < self.partial_every * self.engine.sample_rate:
            return None
        self._since_partial = 0
        # A partial is a preview: greedy, no word alignment, no fallback re-decodes (a failed
        # partial is simply not shown; the final decodes properly).
        hyps = self.engine._decode(np.concatenate(self._buf), self.offset_ms, self.options, beam_size=1, words=False,
                                   fallback=False)
        if not hyps:
            return None
        end = self.offset_ms + self._frames * 1000 // self.engine.sample_rate
        return Hypothesis(text="".join(h.text for h in hyps), start_ms=hyps[0].start_ms, end_ms=end,
                          language=hyps[0].language, is_final=False)

    def finalize(self) -> list[Hypothesis]:
        audio = np.concatenate(self._buf) if self._buf else np.zeros(0, np.float32)
        hyps = self.engine.transcribe(audio, offset_ms=self.offset_ms, options=self.options)
        self.offset_ms += self._frames * 1000 // self.engine.sample_rate
        self._buf, self._frames, self._since_partial = [], 0, 0
        return hyps
