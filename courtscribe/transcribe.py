"""Whole-recording transcription: audio → VAD → ASR engine → diarizer → Record.

This is what ``courtscribe transcribe`` and the HTTP file API run, on Components built once
(components.py: the parts are plug-ins chosen by settings).
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np

from . import audio as audio_mod
from .asr.base import DecodeOptions, Hypothesis
from .asr.coverage import ENGINE_ERROR, MAX_WORD_MS, MIN_GAP_MS, complete, filled, usable
from .asr.finals import finish, polish_all
from .asr.hotwords import load_lexicon, merge
from .casenumbers import case_word
from .asr.vad import decode_windows
from .components import Components
from .frontend import front_end
from .diarization import attribute, bleed
from .diarization.base import ChannelDiarizer, Diarizer
from .diarization.turns import Turn
from .logs import get_logger
from .records.model import (SPEAKER_UNSURE, UNRECOGNIZED, Hearing, Pipeline, Record, Role, Source,
                            Utterance)

Speakers = int | Literal["auto"]
Decode = Callable[[list[tuple[np.ndarray, int]], DecodeOptions], list[list[Hypothesis]]]
# (stage, seconds done, seconds in all): "speech detection" over the audio, "transcription" over the
# speech found, then "diarization"; the CLI draws bars from it, a job keeps its fraction
Progress = Callable[[str, float, float], None]
log = get_logger(__name__)
PAD_MS = 200  # context either side of a span decoded on its own
TURN_PAD_MS = 60  # a speaker turn decoded on its own: little enough context not to take in the neighbour's words
BATCH = 8  # speech windows per engine call: batched decoding, and a progress update per batch


def make_diarizer(comp: Components, audio: audio_mod.Audio, speakers: Speakers,
                  roles: dict[int, Role] | None) -> Diarizer:
    """Several channels: one seat group each. One channel: speaker turns unless told there is one."""
    if audio.channels > 1 or speakers == 1:
        return ChannelDiarizer(roles)
    from .diarization.turns import TurnDiarizer

    return TurnDiarizer(comp.segmenter(), comp.speaker_encoder(),
                        num_speakers=None if speakers == "auto" else int(speakers))


def transcribe_audio(audio: audio_mod.Audio, comp: Components, *, options: DecodeOptions | None = None,
                     speakers: Speakers = "auto", roles: dict[int, Role] | None = None,
                     hearing: Hearing | None = None, source_path: str | None = None,
                     on_progress: Progress | None = None, decode: Decode | None = None,
                     batch: int = BATCH, courtroom: str | None = None) -> Record:
    """``on_progress`` hears how far each stage is; ``decode`` replaces the direct engine call (the
    server routes file work through its scheduler, behind live streams), and ``batch`` is how many
    speech windows go to it at once. The hearing's courtroom (else ``courtroom``, the submitter's)
    chooses the room front ends."""
    decode = decode or comp.engine.transcribe_many
    report = on_progress or (lambda stage, done, total: None)
    options = options or DecodeOptions.from_settings(comp.settings)
    h = hearing or Hearing(id="x")  # the caller's words, the hearing's own, then the court's vocabulary
    options = replace(options, hotwords=merge(options.hotwords, h.parties, [h.cause or "", case_word(h.case_number)],
                                              load_lexicon(comp.settings.lexicon_file)))
    started = time.perf_counter()
    if audio.channels == 1 and speakers != 1:
        comp.warm_speaker_encoder()
        comp.warm_segmenter()
    max_ms = int(comp.settings.segment_s * 1000)
    total_s = audio.channels * audio.frames / audio.sample_rate
    spans: list[tuple[int, list[tuple[int, int]]]] = []
    scanned_s = 0.0

    def scanned(n: int) -> None:
        nonlocal scanned_s
        scanned_s += n / audio.sample_rate
        report("speech detection", scanned_s, total_s)

    chosen = comp.settings.front_ends(h.courtroom or courtroom)  # the hearing's room, else the caller's
    raw = [audio.channel(ch) for ch in range(audio.channels)]
    heard = _through(chosen.vad, raw, report)
    found = [comp.vad.segments(x, progress=scanned) for x in heard]
    channel_audio = heard if chosen.asr == chosen.vad else _through(chosen.asr, raw, report)
    if audio.channels > 1:  # a seat mic's copy of a neighbour's speech is not a second sentence
        found = bleed.suppress(channel_audio, found)
        channel_audio = [bleed.mute_outside(x, spans_) for x, spans_ in zip(channel_audio, found)]
    for ch, chan_spans in enumerate(found):
        spans.append((ch, decode_windows(chan_spans, max_ms=max_ms, total_ms=audio.duration_ms)))
    speech_s = sum((e - s) / 1000 for _, segs in spans for s, e in segs)
    done_s = 0.0

    def decoded(seconds: float) -> None:
        nonlocal done_s
        done_s += seconds
        report("transcription", done_s, speech_s)

    report("diarization", 0.0, 1.0)
    diarizer = make_diarizer(comp, audio, speakers, roles)
    with ThreadPoolExecutor(1, thread_name_prefix="diarization") as beside:  # runs while the engine decodes
        # who speaks, on the audio as it came (speaker embeddings know rooms, not WPE's output)
        voices = raw if audio.channels == 1 else channel_audio
        turns = beside.submit(lambda: [diarizer.turns(x, spans_) for x, spans_ in zip(voices, found)])
        jobs = [(ch, s, e) for ch, segs in spans for s, e in segs]
        utterances = transcribe_speech(jobs, found, channel_audio, audio.sample_rate, decode, options, batch,
                                       decoded, turns=turns.result)
    utterances = _tidy_timeline(diarizer.assign(utterances, audio), audio.duration_ms)
    elapsed = time.perf_counter() - started
    log.info("transcribed", audio_s=round(audio.duration_ms / 1000, 1), speech_s=round(speech_s, 1),
             utterances=len(utterances), seconds=round(elapsed, 2),
             rtf=round(elapsed / max(audio.duration_ms / 1000, 1e-3), 3), diarizer=diarizer.name)
    return Record(
        hearing=hearing or Hearing(id=uuid.uuid4().hex[:12], title=Path(source_path).stem if source_path else None,
                                   language=options.language),
        source=Source(path=source_path, duration_ms=audio.duration_ms, sample_rate=audio.source_rate,
                      channels=audio.source_channels),
        pipeline=Pipeline(engine=comp.engine.name, model=comp.engine.model_name, vad=comp.vad.name,
                          diarizer=diarizer.name),
        utterances=utterances,
    )


def transcribe_speech(windows: list[tuple[int, int, int]], speech: list[list[tuple[int, int]]],
                      channel_audio: list[np.ndarray], sr: int, decode: Decode, options: DecodeOptions,
                      batch: int = BATCH, decoded: Callable[[float], None] | None = None,
                      turns: Callable[[], list[list[Turn] | None]] | None = None) -> list[Utterance]:
    """Every stretch of speech into lines, none lost: ``windows`` are (channel, start_ms, end_ms) to
    decode, ``speech`` each channel's VAD spans, ``turns`` gives each channel's speaker turns (or
    None), asked for once the first windows are decoded (diarization may run beside them).

    First pass: windows of several utterances (up to 30 s), which Whisper reads best with the
    context (zh-smoke CER 0.18 this way, 0.24 decoding each utterance alone; measured). Whisper may
    still skip a sentence inside a window: each VAD speech span (or stretch of one) that no usable
    line covers is decoded again on its own, and what still has no text becomes a flagged line
    (asr/coverage.py). With speaker turns, each sentence is cut at the speaker changes in it, and a
    turn that got no word or too few (its sentence lost in another speaker's) is decoded again on
    its own too (attribute.unheard, attribute.reheard)."""
    out: list[tuple[int, Hypothesis]] = []
    holes: list[tuple[int, int, int, Turn | None]] = []  # (channel, start_ms, end_ms, its turn) without text
    by_channel: list[list[Turn] | None] = []
    for ch, (hyps, failed), (s, e) in _decode_all(windows, channel_audio, sr, decode, options, batch, decoded):
        by_channel = by_channel or (turns() if turns else [None] * len(channel_audio))
        inside = [span for span in speech[ch] if span[0] < e and span[1] > s]
        kept = polish_all(_seat_lines(ch, attribute.split(hyps, by_channel[ch] or []), channel_audio, speech),
                          options.hotwords, options.itn)
        said = [h for h in kept if usable(h)]
        out += [(ch, h) for h in said]
        found = [(ch, g.start_ms, g.end_ms, None) for a, b in inside
                 for g in complete([h for h in kept if h.start_ms < b and h.end_ms > a], max(a, s), min(b, e))
                 if UNRECOGNIZED in g.flags
                 and not _neighbours_bleed((g.start_ms, g.end_ms), ch, speech, channel_audio, sr)]
        holes += found + [(ch, t.start_ms, t.end_ms, t) for a, b in inside
                          for t in attribute.unheard(by_channel[ch] or [], said, max(a, s), min(b, e))
                          if not any(min(t.end_ms, y) > max(t.start_ms, x) for _, x, y, _ in found)]
    turns_of = by_channel or [None] * len(channel_audio)
    redo = partial(_decode_again, channel_audio=channel_audio, speech=speech, turns=turns_of, sr=sr,
                   decode=decode, options=options, batch=batch)
    out, turned = redo(holes, out, [])
    # a stretch decoded again is cut at the turns too: a turn it gave too few words, once more alone
    words = [[h for c, h in out if c == ch and usable(h)] for ch in range(len(channel_audio))]
    thin = [(ch, t.start_ms, t.end_ms, t) for ch, a, b, who in holes if not who
            for t in attribute.thin(turns_of[ch] or [], words[ch], a, b)]
    out, turned = redo(thin, out, turned)
    out = _echoes_flagged(out, turned)
    return [Utterance(id="", start_ms=h.start_ms, end_ms=h.end_ms, channel=ch, speaker=_who(h, turns_of[ch]),
                      text=h.text, tokens=h.tokens, language=h.language, confidence=h.confidence, flags=list(h.flags))
            for ch, h in out]


def _decode_again(holes: list[tuple[int, int, int, Turn | None]], out: list[tuple[int, Hypothesis]],
                  turned: list[tuple[int, Hypothesis]], *, channel_audio: list[np.ndarray],
                  speech: list[list[tuple[int, int]]], turns: list[list[Turn] | None], sr: int,
                  decode: Decode, options: DecodeOptions,
                  batch: int) -> tuple[list[tuple[int, Hypothesis]], list[tuple[int, Hypothesis]]]:
    """``holes`` (channel, start_ms, end_ms, the speaker turn or None) decoded again, batched
    together: a stretch's lines go into ``out`` cut at the turns; a turn's (attribute.reheard: in
    place of its first words, if it heard more) into ``turned``."""
    if holes:
        log.info("re-decoding speech the windows left without text, or turns with too few words",
                 spans=holes)
    pad = {True: TURN_PAD_MS, False: PAD_MS}
    jobs = [(ch, max(0, a - pad[bool(who)]), b + pad[bool(who)]) for ch, a, b, who in holes]
    redone = _decode_all(jobs, channel_audio, sr, decode, options, batch, None)
    for (ch, a, b, turn), (_, (hyps, failed), _) in zip(holes, redone):
        hyps = hyps if turn else attribute.split(hyps, turns[ch] or [])
        pieces = finish(_seat_lines(ch, hyps, channel_audio, speech), a, b, options.hotwords, reason=failed,
                        language=options.language, itn=options.itn)
        if turn:
            mine = [h for c, h in out if c == ch]  # a thin turn's first words may give way
            own = attribute.turn_pieces(turn, pieces, turns[ch] or [])
            mine, own = attribute.reheard(mine, turn, own)
            out = [(c, h) for c, h in out if c != ch] + [(ch, h) for h in mine]
            turned = turned + [(ch, h) for h in own]
        else:
            out = out + [(ch, h) for h in pieces]
    return out, turned


def _echoes_flagged(said: list[tuple[int, Hypothesis]],
                    turned: list[tuple[int, Hypothesis]]) -> list[tuple[int, Hypothesis]]:
    """Both lines of words heard twice across a speaker change flagged (attribute.echoes), and gap
    lines cut to what the turns decoded on their own left without words (coverage.filled), channel
    by channel."""
    out = []
    for ch in sorted({c for c, _ in said + turned}):
        own = [h for c, h in turned if c == ch]
        first, again = attribute.echoes(filled([h for c, h in said if c == ch], own), own)
        out += [(ch, h) for h in first + again]
    return out


def _through(name: str, channels: list[np.ndarray], report: Progress) -> list[np.ndarray]:
    """Each channel through a room front end (frontend.py), as the courtroom's settings chose."""
    fe = front_end(name)
    total_s = sum(x.size for x in channels) / audio_mod.SAMPLE_RATE
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        report(f"room front end ({name})", done / audio_mod.SAMPLE_RATE, total_s)

    return [fe.process(x, step) for x in channels]


def _who(h: Hypothesis, turns: list[Turn] | None) -> str:
    """A line's speaker: the one its words were cut for, else who holds its time (a gap line)."""
    return h.speaker or (attribute.speaker_at(h.start_ms, h.end_ms, turns) if turns else None) or ""


def _seat_lines(ch: int, hyps: list[Hypothesis], channel_audio: list[np.ndarray],
                speech: list[list[tuple[int, int]]]) -> list[Hypothesis]:
    """A seat mic's lines without the words its neighbours said (bleed.own_words), each cut where
    another seat spoke in a pause between its words (attribute.cut_across); one channel: as they are."""
    if len(channel_audio) < 2:
        return hyps
    others = [x for c, x in enumerate(channel_audio) if c != ch]
    theirs = [span for c, spans in enumerate(speech) if c != ch for span in spans]
    return [cut for h in hyps for piece in bleed.own_words(h, channel_audio[ch], others)
            for cut in attribute.cut_across(piece, theirs)]


def _neighbours_bleed(hole: tuple[int, int], ch: int, speech: list[list[tuple[int, int]]],
                      channel_audio: list[np.ndarray], sr: int) -> bool:
    """A short stretch without text on one seat while another seat has speech, at least as loud
    there: what is left of the neighbour's voice after bleed suppression (bleed.py), which that
    seat records. Someone really speaking there (a prompt 没有。 right after the question: louder on
    their own seat) or over a neighbour for longer than ``MIN_GAP_MS`` stays flagged."""
    a, b = hole
    if b - a >= MIN_GAP_MS:
        return False
    lo, hi = a * sr // 1000, b * sr // 1000  # the whole stretch: a question's tail may end in it
    return any(any(s < b and e > a for s, e in spans) and not bleed.louder(channel_audio[ch][lo:hi], x[lo:hi])
               for c, (spans, x) in enumerate(zip(speech, channel_audio)) if c != ch)


def _decode_all(jobs: list[tuple[int, int, int]], channel_audio: list[np.ndarray], sr: int, decode: Decode,
                options: DecodeOptions, batch: int, decoded: Callable[[float], None] | None):
    """(channel, (hypotheses, why it failed or None), (start_ms, end_ms)) of each job, ``batch`` per engine call."""
    for i in range(0, len(jobs), batch):
        group = jobs[i:i + batch]
        pieces = [(channel_audio[ch][s * sr // 1000: e * sr // 1000], s) for ch, s, e in group]
        for (ch, s, e), result in zip(group, _decode_each(decode, pieces, options)):
            yield ch, result, (s, e)
            if decoded:
                decoded((e - s) / 1000)


def _decode_each(decode: Decode, pieces: list[tuple[np.ndarray, int]],
                 options: DecodeOptions) -> list[tuple[list[Hypothesis], str | None]]:
    """Each piece's hypotheses and, where the engine failed on it, why. A failed batch is retried
    piece by piece, so one bad window costs only its own lines (which become flagged gaps)."""
    try:
        return [(hyps, None) for hyps in decode(pieces, options)]
    except Exception as err:  # noqa: BLE001 - the rest of the recording still gets its record
        if len(pieces) == 1:
            log.error("decode failed", offset_ms=pieces[0][1], error=repr(err))
            return [([], ENGINE_ERROR)]
    return [r for p in pieces for r in _decode_each(decode, [p], options)]


def _tidy_timeline(utterances: list[Utterance], duration_ms: int) -> list[Utterance]:
    """Order by time, keep inside the audio, never overlap within one speaker, number the lines. A
    line starts where its words are heard (Whisper stretches a segment's first word back over speech
    it skipped), and a flagged gap keeps its own times: it is where the clerk must listen. So do
    words nobody is sure are the speaker's (``speaker_unsure``): they may lie inside her line."""
    out: list[Utterance] = []
    last_end: dict[tuple[str, bool], int] = {}
    for u in sorted(utterances, key=lambda u: (_heard_from(u), u.channel)):
        gap = UNRECOGNIZED in u.flags
        voice = (u.speaker, SPEAKER_UNSURE in u.flags)
        start = _heard_from(u) if gap else max(_heard_from(u), last_end.get(voice, 0))
        end = min(max(u.end_ms, start), duration_ms)
        start = min(start, end)
        if not gap:
            last_end[voice] = end
        tokens = [t.model_copy(update={"start_ms": int(np.clip(t.start_ms, start, end)),
                                       "end_ms": int(np.clip(t.end_ms, start, end))}) for t in u.tokens]
        out.append(u.model_copy(update={"id": f"u{len(out) + 1:05d}", "start_ms": start, "end_ms": end,
                                        "tokens": tokens}))
    return out


def _heard_from(u: Utterance) -> int:
    """Where a line's words begin: its first word's time, a stretched one's last ``MAX_WORD_MS`` only."""
    heard = [max(t.start_ms, t.end_ms - MAX_WORD_MS) for t in u.tokens]
    return max(u.start_ms, min(heard)) if heard else u.start_ms


def transcribe_file(path: str | Path, comp: Components, *, split_channels: bool = False,
                    **kwargs) -> Record:
    audio = audio_mod.decode(path, mono=not split_channels)
    return transcribe_audio(audio, comp, source_path=str(path), **kwargs)
