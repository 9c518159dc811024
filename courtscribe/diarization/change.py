"""A speaker change inside a running live utterance, confirmed, so the utterance can be closed there
(as a pause closes it) and each turn's final comes as that turn ends, not when everybody stops.

The segmentation model reads the utterance's last 10 s; a candidate change is where one local
speaker's voice gives way to another's, or where speech resumes after a pause (the model often keeps
one label for a question and its quick answer). Each candidate whose new side has been heard for
``CONFIRM_MS`` is confirmed by voice (CAM++ of the stretches either side): the same voice on both
sides is no change.
"""
from __future__ import annotations

import numpy as np

from .embedding import SpeakerEncoder
from .segmentation import SR, Segmenter
from .turns import PAUSE_MS, THRESHOLD, frames_audio

CONFIRM_MS = 700  # the new voice heard this long: a turn, not a cough or a "嗯"
BEFORE_MS = 700  # the old voice heard this long before it: a change, not the utterance's first words
COMPARE_MS = 3_000  # at most this much of each side is compared by voice (turns.MAX_EMBED_MS caps it too)
RECENT_MS = 4_000  # candidates this recent are compared by voice (the session looks every second)


def latest_change(audio: np.ndarray, segmenter: Segmenter, encoder: SpeakerEncoder) -> int | None:
    """Where (ms from the start of ``audio``) the last confirmed speaker change is, or None."""
    tail = audio[-segmenter.window:]
    base = (audio.size - tail.size) * 1000 // SR
    seg = segmenter(tail)
    act = seg.activity[0]
    who = np.where(act.sum(axis=1) == 1, act.argmax(axis=1), -1)  # one voice, or silence/overlap (-1)
    voiced = np.nonzero(who >= 0)[0]
    if voiced.size == 0:
        return None
    frame = seg.frame_ms
    pause = int(PAUSE_MS / frame)
    # where one local voice gives way to another, or speech resumes after a pause (the model often
    # keeps one label for two people when one answers the other after a breath)
    changes = [int(f) for p, f in zip(voiced, voiced[1:]) if who[p] != who[f] or f - p > pause]
    bounds = [0, *changes, int(voiced[-1]) + 1]
    recent = (tail.size * 1000 / SR - RECENT_MS) / frame  # older changes were looked at by earlier looks
    for i in range(len(bounds) - 2, 0, -1):  # newest first
        lo, at, hi = bounds[i - 1], bounds[i], bounds[i + 1]  # the stretches either side of ``at``
        if at < recent:
            break
        after = voiced[(voiced >= at) & (voiced < hi)][: int(COMPARE_MS / frame)]
        before = voiced[(voiced >= lo) & (voiced < at)][-int(COMPARE_MS / frame):]
        if after.size * frame < CONFIRM_MS or before.size * frame < BEFORE_MS:
            continue
        a, b = encoder.embed_many([frames_audio(tail, seg, 0, before), frames_audio(tail, seg, 0, after)])
        if float(a @ b) < 1 - THRESHOLD:
            return base + int(at * frame)
    return None

