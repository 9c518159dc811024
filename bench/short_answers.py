"""A witness who only answers briefly: whose mouth the answers go in, and whether the record says
when it cannot tell (diarization/turns.py ``strays``, the ``speaker_unsure`` flag).

    .venv/bin/python bench/short_answers.py

Six 3 s questions (one real voice, justice.wav) each answered by another real voice (custody.wav)
in 0.7, 0.9 or 1.2 s, 0.6 s apart; speaker turns of the whole recording (segmentation-3.0 +
CAM++). Per answer length: the answers given to the questioner as a sure turn (a silent
misattribution: should be 0), answers in a turn of their own flagged unsure, and the speakers
found. Beside it, every zh-smoke clip (one voice each): a second speaker or an unsure turn there
is a false alarm. Writes bench/out/short_answers.json.
"""
from __future__ import annotations

import numpy as np

from common import DATA, save, table

from courtscribe.audio import decode
from courtscribe.components import load_components
from courtscribe.diarization import attribute
from courtscribe.diarization.turns import diarize

SR = 16000
STARTS_MS = [700, 1400, 3300, 4000, 4700, 5300]  # where each answer is cut from the witness's clip


def exchange(questions: np.ndarray, answers: np.ndarray, answer_ms: int):
    parts, truth, t = [], [], 0
    for k, start in enumerate(STARTS_MS):
        parts += [questions[(k * 2000) % 9000 * 16:][:3000 * 16], np.zeros(600 * 16, np.float32)]
        truth.append((t, t + 3000, "Q"))
        t += 3600
        parts += [answers[start * 16:][:answer_ms * 16], np.zeros(900 * 16, np.float32)]
        truth.append((t, t + answer_ms, "A"))
        t += answer_ms + 900
    return np.concatenate(parts), truth


def main() -> None:
    comp = load_components()
    seg, enc = comp.segmenter(), comp.speaker_encoder()
    zh = DATA / "zh-smoke"
    questions = decode(zh / "justice.wav").channel(0)[48 * 16:]
    answers = decode(zh / "custody.wav").channel(0)
    rows = []
    for answer_ms in (700, 900, 1200):
        audio, truth = exchange(questions, answers, answer_ms)
        turns = diarize(audio, seg, enc, speech=[(a, b) for a, b, _ in truth])
        asker = attribute.speaker_at(*truth[0][:2], turns)
        said = [[x for x in turns if min(x.end_ms, b) - max(x.start_ms, a) > 0] for a, b, who in truth if who == "A"]
        rows.append({"answers": f"{answer_ms} ms",
                     "to the questioner, sure": sum(any(x.speaker == asker and x.sure for x in t) for t in said),
                     "own turn, flagged": sum(all(not x.sure for x in t if x.speaker != asker) and
                                              any(not x.sure for x in t) for t in said),
                     "speakers": len({x.speaker for x in turns})})
    print(table(rows, list(rows[0])))
    alone = []
    for clip in sorted(zh.glob("*.wav")):
        turns = diarize(decode(clip).channel(0), seg, enc)
        alone.append({"clip": clip.name, "speakers": len({x.speaker for x in turns}),
                      "unsure turns": sum(not x.sure for x in turns)})
    print(table(alone, list(alone[0])))
    print("wrote", save("short_answers", {"exchanges": rows, "one_voice": alone}))


if __name__ == "__main__":
    main()
