"""The "before" rows of bench/diarization.py's table: an older commit's file and live records of the same
recordings (run bench/diarization.py first: it writes the Mandarin mix).

    git worktree add /tmp/before 8215169
    cd /tmp/before && PYTHONPATH=/tmp/before /path/to/checkout/.venv/bin/python /path/to/checkout/bench/diarization_before.py

(from the old checkout: its server, started with `python -m courtscribe`, must import the old package).
Writes bench/out/diarization_before.json.
"""
from __future__ import annotations

import json

from common import OUT, table
from who import ASK_WHO, live_record, lost, recordings, scores, wrong_mouth

from courtscribe.components import load_components
from courtscribe.transcribe import transcribe_file


def main() -> None:
    import courtscribe

    comp, rows = load_components(), []
    recs = {k: v for k, v in recordings().items() if k != "court"}
    for name, (path, ref) in recs.items():
        lines = [(u.start_ms, u.end_ms, u.speaker, bool(ASK_WHO & set(u.flags)))
                 for u in transcribe_file(path, comp).utterances]
        rows.append({"recording": name, "system": "before, file record", **scores(ref, lines),
                     **wrong_mouth(ref, lines), "lost": lost(ref, lines)})
    for name, (lines, waits) in live_record({k: p for k, (p, _) in recs.items()}).items():
        ref = recs[name][1]
        waits = sorted(waits)
        rows.append({"recording": name, "system": "before, live record", **scores(ref, lines),
                     **wrong_mouth(ref, lines), "lost": lost(ref, lines),
                     "final p50 s": waits[len(waits) // 2], "final max s": waits[-1]})
    print(f"courtscribe from {courtscribe.__file__}\n")
    print(table(rows, ["recording", "system", "DER", "JER", "speakers", "turns", "said s", "own mouth",
                       "else flagged s", "wrong mouth s", "no line s", "own lines flagged", "lost",
                       "final p50 s", "final max s"]))
    (OUT / "diarization_before.json").write_text(json.dumps(rows, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
