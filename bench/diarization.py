"""DER on the reference two-speaker recording, live and refined, for each speaker encoder.

    .venv/bin/python bench/diarization.py

``../shared/data/diarization/sample.wav`` against ``sample.rttm``, pyannote.metrics DER with a
0.25 s collar and overlapped speech scored. Rows:
- baseline: silero VAD, Resemblyzer embeddings of 1.5 s windows, agglomerative clustering into 2
  (the naive system the issue starts from);
- live: the utterances the live streaming FSMN-VAD cuts (800 ms end-silence, 60 s at most), each
  diarized as it ends by ``OnlineDiarizer`` (labels as the screen shows them at the end, speaker
  updates applied);
- refined: all speech clustered at once (``cluster.speaker_segments``), speaker count found by
  threshold ("auto") or given (a hearing knows its participants).
Writes bench/out/diarization.json and a timeline plot bench/out/diarization.png.
"""
from __future__ import annotations

import time
import warnings

import numpy as np

from common import DATA, OUT, save, table
from courtscribe.asr.vad import FsmnVad, SileroVad
from courtscribe.audio import decode
from courtscribe.config import Settings
from courtscribe.diarization.clustering import speaker_segments
from courtscribe.diarization.embedding import CampplusEncoder, ResemblyzerEncoder
from courtscribe.diarization.online import OnlineDiarizer
from courtscribe.models import default_registry

warnings.filterwarnings("ignore", module="pyannote")


def reference():
    from pyannote.core import Annotation, Segment

    ref = Annotation()
    for line in (DATA / "diarization" / "sample.rttm").read_text().splitlines():
        f = line.split()
        ref[Segment(float(f[3]), float(f[3]) + float(f[4]))] = f[7]
    return ref


def der(ref, segments) -> float:
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    hyp = Annotation()
    for a, b, lab in segments:
        hyp[Segment(a / 1000, b / 1000)] = str(lab)
    return float(DiarizationErrorRate(collar=0.25, skip_overlap=False)(ref, hyp))


def live_utterances(vad: FsmnVad, x: np.ndarray) -> list[tuple[int, int]]:
    """Utterance spans exactly as a live session's streaming VAD cuts them (200 ms frames)."""
    stream, spans, start = vad.open_stream(chunk_ms=200), [], None
    for i in range(0, x.size, 3200):
        for ev in stream.feed(x[i:i + 3200], final=i + 3200 >= x.size):
            if ev.start_ms is not None:
                start = ev.start_ms
            if ev.end_ms is not None and start is not None:
                spans.append((start, ev.end_ms))
                start = None
    return spans


def main() -> None:
    registry = default_registry(Settings())
    x = decode(DATA / "diarization" / "sample.wav").channel(0)
    ref = reference()
    vad = FsmnVad(registry.resolve("fsmn-vad-embedded"))
    utts = live_utterances(vad, x)
    speech = SileroVad().segments(x)
    encoders = {"campplus": CampplusEncoder(registry.resolve("campplus-zh-en") / "campplus_cn_en_common.pt"),
                "resemblyzer": ResemblyzerEncoder(registry.resolve("resemblyzer-ge2e") / "pretrained.pt")}
    rows, timelines = [], {}

    def row(system, encoder, segs, t):
        rows.append({"system": system, "encoder": encoder, "DER": der(ref, segs),
                     "speakers": len({s[2] for s in segs}), "seconds": round(time.perf_counter() - t, 2)})
        return segs

    t = time.perf_counter()
    row("baseline: silero + 1.5 s windows, k=2", "resemblyzer",
        speaker_segments(encoders["resemblyzer"], x, speech, num_speakers=2), t)
    for name, enc in encoders.items():
        t = time.perf_counter()
        online = OnlineDiarizer(enc)
        for i, (s, e) in enumerate(utts):
            online.add(f"u{i}", x[s * 16: e * 16], s)
        timelines[f"live ({name})"] = row("live: streaming VAD utterances, online", name, online.segments(), t)
        t = time.perf_counter()
        timelines[f"refined ({name})"] = row("refined: all speech, auto count", name,
                                             speaker_segments(enc, x, utts), t)
        t = time.perf_counter()
        row("refined: all speech, 2 participants", name, speaker_segments(enc, x, utts, num_speakers=2), t)

    print(f"sample.wav, {len(utts)} live utterance(s) {utts}; DER with 0.25 s collar, overlap scored\n")
    print(table(rows, ["system", "encoder", "DER", "speakers", "seconds"]))
    path = save("diarization", {"utterances": utts, "rows": rows})
    _plot(ref, timelines)
    print(f"\nwrote {path} and {OUT / 'diarization.png'}")


def _plot(ref, timelines: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tracks = {"reference": [(s.start * 1000, s.end * 1000, lab) for s, _, lab in ref.itertracks(yield_label=True)]}
    tracks.update(timelines)
    fig, ax = plt.subplots(figsize=(11, 0.6 + 0.45 * len(tracks)))
    colours = plt.get_cmap("tab10")
    for row_i, (name, segs) in enumerate(tracks.items()):
        labels = sorted({str(s[2]) for s in segs})
        for a, b, lab in segs:
            ax.broken_barh([(a / 1000, (b - a) / 1000)], (row_i - 0.35, 0.7),
                           color=colours(labels.index(str(lab)) % 10))
    ax.set_yticks(range(len(tracks)), list(tracks))
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.set_title("who spoke when: sample.wav")
    fig.tight_layout()
    OUT.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT / "diarization.png", dpi=110)


if __name__ == "__main__":
    main()
