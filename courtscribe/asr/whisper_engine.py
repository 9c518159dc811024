"""The embedded engine: Whisper base (multilingual) through faster-whisper / CTranslate2, int8 on CPU.

Decoding choices, measured on ../shared/data/zh-smoke (bench/cer.py):
- language forced to ``zh`` with a Simplified-Chinese prompt that also admits English words
  (code-switching in testimony: names, brands, quoted English). Forcing ``zh`` with a pure-Chinese
  prompt drops English speech entirely.
- beam 5 for the accurate pass, greedy for partials; OpenCC t2s on every piece of text.
- live decodes (partials and the finals of live streams) encode a window fitted to the utterance
  (8, 15 or 30 s) instead of Whisper's fixed 30 s: the encoder is most of a decode's cost on CPU
  (0.87 s for 30 s, 0.13 s for 10 s), so a 5 s utterance decodes in ~0.4 s instead of ~1.2 s, at
  about the same CER (bench/window.py). Files keep the 30 s window, the measured accurate pass.
"""
from __future__ import annotations

import functools
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import ctranslate2
import faster_whisper.transcribe as _fw
import numpy as np
from faster_whisper.audio import pad_or_trim as _fw_pad_or_trim

from ..records.model import Token
from .base import DecodeOptions, Engine, EngineStream, Hypothesis, PreviewStream
from .coverage import discarded
from .hotwords import court_terms
from .languages import SWITCH, language_runs
from .whisper_text import before_loop, decode_failed, discard_reason, looped_text, split_sentences
from ..logs import get_logger
from ..text import looped, tidy, to_simplified

PROMPTS = {
    "zh": "以下是普通话的句子,其中可能夹杂English words。",
}
REPETITION_PENALTY = 1.2  # for the second try of a window whose first decode failed (see _rescue)
# Whisper's fallback temperatures; a live window reaches the fallback only after its temperature-0
# decode failed (and again with the penalty), so it starts at 0.2 instead of repeating that decode.
TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
BATCH_SIZE = 8
HOTWORD_TOKENS = 100  # of Whisper's 448-token context; the rest is for the prompt and the text
LIVE_WINDOWS_S = (8, 15, 30)  # encoder windows for live decodes; each holds the audio plus >= 1 s
LANGUAGE_SWITCH = SWITCH  # Whisper's probability above which an utterance is decoded in another hearing language
SEED = 20170301  # 法释〔2017〕5号 took effect on 1 March 2017
# mixed-language utterances: Whisper's language on short windows of a final (see language_runs)
SUB_WINDOW_S = 2.0
SUB_HOP_S = 1.0
SUB_ENCODER_S = 3.0  # each window encoded in a 3 s window of its own, not Whisper's 30 s


# faster-whisper pads every window's features to 3000 frames (30 s) before encoding, through the
# module-level ``pad_or_trim``; CTranslate2's Whisper encoder itself takes any length up to that.
# The engine sets a shorter length for the decode in progress (under its lock, in this thread).
_window = threading.local()
log = get_logger(__name__)


def _pad_or_trim(array, length: int = 3000, **kw):
    return _fw_pad_or_trim(array, getattr(_window, "frames", None) or length, **kw)


_fw.pad_or_trim = _pad_or_trim


@contextmanager
def _encoder_window(frames: int | None):
    _window.frames = frames
    try:
        yield
    finally:
        _window.frames = None


def window_frames(seconds: float, windows: tuple[int, ...] = LIVE_WINDOWS_S) -> int:
    """The shortest encoder window (in 10 ms feature frames) holding ``seconds`` plus 1 s of padding."""
    for w in windows:
        if seconds + 1.0 <= w:
            return int(w * 100)
    return 3000


def _passes(live: bool, fallback: bool) -> tuple[bool, ...]:
    """Which encoder windows a decode tries, fitted (True) or full: live decodes the fitted one, and
    a final whose text loops there the full one too; a preview (no ``fallback``) whose text loops
    shows what came before the loop (its retry cost a courtroom's screen over a second of the worker)."""
    if not live:
        return (False,)
    return (True, False) if fallback else (True,)


def _prompt_words(hotwords: tuple[str, ...]) -> str | None:
    """The words Whisper's prompt carries: the hearing's own (names, its hotwords, 案由, case number),
    not the shipped court vocabulary. Measured on zh-smoke (bench/cer.py): with just the first 8
    vocabulary terms (the roles) in the prompt CER rose from 0.180 to 0.228, Whisper base dropping
    the English of a code-switched clip; the vocabulary is applied to finals by sound instead
    (asr/finals.py), which leaves zh-smoke as it was."""
    return " ".join(w for w in hotwords if w not in court_terms()) or None


def _token_budget(seconds: float, room: int) -> int:
    """Most tokens a window can honestly need (fast Mandarin is ~6 characters/s, up to 2 tokens each,
    plus timestamps), within the ``room`` the prompt leaves in Whisper's 448-token context.
    Hallucination loops otherwise run to the limit at every fallback temperature: 24 s instead of
    1.5 s for a 5 s window, measured."""
    return int(min(room, 16 + 15 * seconds))


class WhisperEngine(Engine):
    name = "whisper"

    def __init__(self, model_dir: Path, *, model_name: str = "whisper-base", device: str = "cpu",
                 cpu_threads: int = 2, compute_type: str | None = None, word_timestamps: bool = True,
                 lanes: int = 1):
        from faster_whisper import WhisperModel

        self.model_name = model_name
        self.word_timestamps = word_timestamps
        compute = compute_type or ("int8" if device == "cpu" else "float16")
        self.lanes = lanes  # a CTranslate2 replica each: decodes side by side (a final and a partial)
        self.model = WhisperModel(str(model_dir), device=device, compute_type=compute, cpu_threads=cpu_threads,
                                  num_workers=lanes)
        self._pipelines = threading.local()  # the batched pipeline keeps per-call state: one per thread
        # CTranslate2 models are safe to share; more decodes at once than replicas would only queue
        self._lock = threading.BoundedSemaphore(lanes)

    def _pipeline(self):
        """This thread's batched pipeline (it keeps the last speech timestamp on itself)."""
        if (pipeline := getattr(self._pipelines, "pipeline", None)) is None:
            from faster_whisper import BatchedInferencePipeline

            pipeline = self._pipelines.pipeline = BatchedInferencePipeline(self.model)
        return pipeline

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

        Live decodes try the fitted encoder window first; a clip whose text loops there (Whisper,
        short of its usual 30 s, may read the padding as more speech and repeat the sentence:
        zh-smoke/news_kfc.wav in an 8 s window) is decoded again with the full window. A live window
        whose decode fails is tried once with a repetition penalty before the fallback (``_rescue``).
        """
        results: list[list[Hypothesis]] = [[] for _ in pieces]
        todo = [i for i, (a, _) in enumerate(pieces) if a.size >= self.sample_rate // 10]
        with self._lock:
            # a final (``fallback``) is read in its languages' stretches apart: see language_parts
            parts = self._language_parts(pieces, todo, options) if fallback else \
                [(i, *pieces[i], lang) for lang, group in self._by_language(pieces, todo, options).items()
                 for i in group]
            subs = [(audio, offset) for _, audio, offset, _ in parts]
            sub_results: list[list[Hypothesis]] = [[] for _ in subs]
            by_lang: dict[str | None, list[int]] = {}
            for k, (*_, lang) in enumerate(parts):
                by_lang.setdefault(lang, []).append(k)
            for language, group in by_lang.items():
                self._decode_group(subs, group, language, sub_results, options, beam_size=beam_size, words=words,
                                   fallback=fallback)
            for (i, *_), hyps in zip(parts, sub_results):
                results[i] += hyps
        return [sorted(r, key=lambda h: h.start_ms) for r in results]

    def _decode_group(self, pieces: list[tuple[np.ndarray, int]], group: list[int], language: str | None,
                      results: list[list[Hypothesis]], options: DecodeOptions, *, beam_size: int, words: bool,
                      fallback: bool) -> None:
        """The pieces of ``group``, all in ``language``, decoded into ``results``."""
        kw = dict(language=language, initial_prompt=PROMPTS.get(language or ""), beam_size=beam_size,
                  hotwords=_prompt_words(options.hotwords) if language == "zh" else None, word_timestamps=words,
                  without_timestamps=False, vad_filter=False)
        kw["hotwords"], room = self._fit_prompt(kw["initial_prompt"], kw["hotwords"])
        for fitted in _passes(options.live, fallback):
            retry = []
            for window, batch in self._windows(group, pieces, fitted):
                with _encoder_window(window):
                    decoded = self._batch([pieces[i][0] for i in batch], kw, room)
                failed = []
                for i, (segments, lang, base) in zip(batch, decoded):
                    loops = fitted and any(looped_text(seg.text) or looped(seg.text) for seg in segments)
                    if loops and fallback:
                        retry.append(i)
                    elif loops:  # a preview: the words before the loop
                        results[i] = before_loop(segments, lang, kw, *pieces[i])
                    elif fallback and any(decode_failed(seg) for seg in segments):
                        failed.append((i, pieces[i], (segments, lang, base)))
                    else:
                        results[i] = self._hypotheses(list(segments), lang, kw, pieces[i], base_s=base,
                                                      preview=not fallback)
                if failed:
                    self._rescue(failed, results, kw, room, window, penalty=options.live)
            group = retry

    def _by_language(self, pieces: list[tuple[np.ndarray, int]], todo: list[int],
                     options: DecodeOptions) -> dict[str | None, list[int]]:
        """The pieces grouped by the language each is decoded in. Whisper's own language detection,
        per piece on its fitted window (batched): a piece confidently (≥ ``LANGUAGE_SWITCH``) in
        another of ``options.languages`` is decoded in that language; forcing Mandarin on English
        speech makes Whisper drop it or translate it, and the record would lose what was said."""
        language = None if options.language in ("", "auto") else options.language
        others = [lang for lang in options.languages if lang != language]
        if not todo or not others:
            return {language: todo} if todo else {}
        groups: dict[str | None, list[int]] = {}
        for window, batch in self._windows(todo, pieces, True):
            for i, probs in zip(batch, self._languages([pieces[i][0] for i in batch], window)):
                best = max(others, key=lambda lang: probs.get(lang, 0.0))
                pick = best if probs.get(best, 0.0) >= LANGUAGE_SWITCH or language is None else language
                groups.setdefault(pick, []).append(i)
        return groups

    def _language_parts(self, pieces: list[tuple[np.ndarray, int]], todo: list[int],
                        options: DecodeOptions) -> list[tuple[int, np.ndarray, int, str | None]]:
        """Each piece as (piece, audio, offset, language) stretches: a piece whose stretches are
        confidently in different hearing languages (a witness's English, then the interpreter's
        Mandarin, in one breath) is cut between them, at the quietest point, and each stretch is
        decoded in its own language; Whisper in either one alone drops or translates the other."""
        whole = self._by_language(pieces, todo, options)
        out = []
        for lang, group in whole.items():
            for i in group:
                audio, offset = pieces[i]
                runs = language_runs(audio, self._sub_languages(audio, options), lang, sample_rate=self.sample_rate,
                                     window_s=SUB_WINDOW_S, hop_s=SUB_HOP_S)
                if len(runs) == 1:
                    out.append((i, audio, offset, lang))
                    continue
                log.info("mixed languages in one utterance", offset_ms=offset, runs=runs)
                for k, (a, b, run_lang) in enumerate(runs):
                    end = audio.size if k == len(runs) - 1 else b * self.sample_rate // 1000
                    out.append((i, audio[a * self.sample_rate // 1000:end], offset + a, run_lang))
        return out

    def _sub_languages(self, audio: np.ndarray, options: DecodeOptions) -> list[dict[str, float]]:
        """Whisper's language probabilities on ``SUB_WINDOW_S`` windows every ``SUB_HOP_S`` (encoded
        in a short window of their own, batched): cheap next to the decode."""
        if len(options.languages) < 2 or audio.size < 2 * SUB_WINDOW_S * self.sample_rate:
            return []
        hop = int(SUB_HOP_S * self.sample_rate)
        size = int(SUB_WINDOW_S * self.sample_rate)
        frames = int(SUB_ENCODER_S * 100)
        found = self._languages([audio[s:s + size] for s in range(0, audio.size - size + 1, hop)], frames)
        return [{lang: p for lang, p in probs.items() if lang in options.languages} for probs in found]

    def _languages(self, clips: list[np.ndarray], frames: int | None) -> list[dict[str, float]]:
        """Whisper's language probabilities for each clip, encoded together in ``frames``-long windows."""
        feats = [_pad_or_trim(self.model.feature_extractor(clip), frames or 3000) for clip in clips]
        with _encoder_window(frames):
            found = self.model.model.detect_language(self.model.encode(np.stack(feats)))
        return [{token[2:-2]: p for token, p in ranked} for ranked in found]

    def _windows(self, todo: list[int], pieces: list[tuple[np.ndarray, int]],
                 fitted: bool) -> list[tuple[int | None, list[int]]]:
        """Batches that share an encoder window: fitted, each piece goes with those of its own window
        size (a 2 s line batched with an 8 s one would be encoded, and decoded, as 15 s, and its text
        would differ from its decode alone); the full window takes everything at once. On 2 CPU
        cores, 12 utterances of 8 streams decode 1.2–1.5× faster so grouped than one at a time."""
        if not todo:
            return []
        if not fitted:
            return [(None, todo)]
        groups: dict[int, list[int]] = {}
        for i in todo:
            groups.setdefault(window_frames(pieces[i][0].size / self.sample_rate), []).append(i)
        return sorted(groups.items())

    def _rescue(self, failed: list[tuple[int, tuple[np.ndarray, int], tuple]], results: list, kw: dict, room: int,
                window: int | None, *, penalty: bool) -> None:
        """Windows whose decode failed (a repetition loop, a garbled pass). Live (``penalty``): once
        more, batched, with a repetition penalty; what still fails takes Whisper's temperature
        fallback (up to six sequential decodes; live ones skip temperature 0, which has just failed
        twice: 1.2 s of a 2-core CPU saved on lamp.wav, same text). zh-smoke/lamp.wav (English, then Mandarin) looped on
        its English sentence as a live final and the fallback took 15 s; the penalty pass read both
        languages in 1.9 s (2-core CPU). Not for the first try of every window: the penalty also
        pushes away genuine repeats (肯德基 became 肯德鸡 in news_kfc.wav). Files, where the fallback's
        accuracy matters more than seconds, go straight to it, as before."""
        if penalty:
            with _encoder_window(window):
                again = self._batch([audio for _, (audio, _), _ in failed],
                                    {**kw, "repetition_penalty": REPETITION_PENALTY}, room)
        else:
            again = [first for _, _, first in failed]
        for (i, (audio, offset_ms), _), (segments, lang, base) in zip(failed, again):
            if any(decode_failed(seg) for seg in segments):
                ctranslate2.set_random_seed(SEED)
                segments, _ = self.model.transcribe(audio, condition_on_previous_text=False,
                                                    temperature=TEMPERATURES[1:] if penalty else TEMPERATURES,
                                                    max_new_tokens=_token_budget(audio.size / self.sample_rate, room), **kw)
                base = 0.0
            results[i] = self._hypotheses(list(segments), lang, kw, (audio, offset_ms), base_s=base)

    @functools.lru_cache(maxsize=256)  # noqa: B019 - one engine per process; partials re-ask every 600 ms
    def _fit_prompt(self, initial_prompt: str | None, hotwords: str | None) -> tuple[str | None, int]:
        """The hotwords kept within ``HOTWORD_TOKENS`` (whole words, in the order given), and the
        tokens left for the text once faster-whisper's prompt is in (its get_prompt: the initial
        prompt, the hotwords, 5 special tokens). Without this a 28 s window with the code-switch
        prompt asked for 465 of Whisper's 448 tokens and failed."""
        def n(text: str) -> int:
            return len(self.model.hf_tokenizer.encode(text, add_special_tokens=False).ids)

        words: list[str] = []
        for word in (hotwords or "").split():
            if n(" " + " ".join(words + [word])) > HOTWORD_TOKENS:
                break
            words.append(word)
        kept = " ".join(words) or None
        used = n(initial_prompt or "") + (n(" " + kept) if kept else 0) + 5
        return kept, self.model.max_length - used

    def _batch(self, clips_audio: list[np.ndarray], kw: dict, room: int) -> list[tuple[list, str, float]]:
        """One batched decode of several clips: each clip's segments, language and start in the batch."""
        audio = np.concatenate([a.astype(np.float32, copy=False) for a in clips_audio])
        bounds = np.cumsum([0] + [a.size for a in clips_audio])
        clips = [{"start": bounds[k] / self.sample_rate, "end": bounds[k + 1] / self.sample_rate}
                 for k in range(len(clips_audio))]
        ctranslate2.set_random_seed(SEED)
        segments, info = self._pipeline().transcribe(audio, clip_timestamps=clips, batch_size=BATCH_SIZE,
                                                  max_new_tokens=_token_budget(max(a.size for a in clips_audio) / self.sample_rate, room),
                                                  **kw)
        per_clip: list[list] = [[] for _ in clips_audio]
        for seg in segments:
            # by the segment's midpoint: reported starts are rounded and can fall just before their
            # clip's first sample
            mid = round((seg.start + seg.end) / 2 * self.sample_rate)
            k = min(max(int(np.searchsorted(bounds, mid, side="right")) - 1, 0), len(clips_audio) - 1)
            per_clip[k].append(seg)
        lang = kw["language"] or info.language
        return [(segs, lang, bounds[k] / self.sample_rate) for k, segs in enumerate(per_clip)]

    def _hypotheses(self, segments, lang: str, kw: dict, piece: tuple[np.ndarray, int], *,
                    base_s: float, preview: bool = False) -> list[Hypothesis]:
        """The segments Whisper decoded from ``piece`` (audio, offset) with ``kw`` (prompt, hotwords);
        one its guards threw away (an echo of its conditioning, an invention) is a ``discarded``
        stretch, which the record flags where no other words cover it."""
        audio, offset_ms = piece
        end_limit = offset_ms + 1000 * audio.size // self.sample_rate

        def ms(t: float) -> int:
            """Segment times are relative to the concatenated batch: absolute hearing times."""
            return int(min(end_limit, max(offset_ms, offset_ms + round((t - base_s) * 1000))))
        out: list[Hypothesis] = []
        previous = ""
        for seg in segments:
            if why := discard_reason(seg, kw["initial_prompt"], kw["hotwords"], previous, preview=preview):
                out.append(discarded(ms(seg.start), ms(seg.end), why))
                continue
            previous = seg.text.strip()
            out += split_sentences(self._hypothesis(seg, lang, ms))
        return out

    @staticmethod
    def _hypothesis(seg, lang: str, ms: Callable[[float], int]) -> Hypothesis:
        text = tidy(seg.text)
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
        return PreviewStream(self, offset_ms, options)  # Whisper is not a streaming model

    def preview_many(self, pieces: list[tuple[np.ndarray, int]],
                     options: DecodeOptions = DecodeOptions()) -> list[Hypothesis | None]:
        """A partial is a preview: greedy, no word alignment, no fallback re-decodes (a failed
        partial is simply not shown; the final decodes properly). Several streams' previews batch."""
        decoded = self._decode_many(pieces, options, beam_size=1, words=False, fallback=False)
        out: list[Hypothesis | None] = []
        for (audio, offset), decodes in zip(pieces, decoded):
            end = offset + audio.size * 1000 // self.sample_rate
            hyps = [h for h in decodes if h.text]  # what its guards threw away is no preview
            out.append(Hypothesis(text="".join(h.text for h in hyps), start_ms=hyps[0].start_ms, end_ms=end,
                                  language=hyps[0].language, is_final=False) if hyps else None)
        return out

