"""A courtroom's seat microphones streamed live at once into one server: what they cost, and the record.

    .venv/bin/python bench/seat_load.py [--seats 1 4 8] [--seconds 120] [--max-streams N]

The mock hearing of bench/court/ (four voices, one at a time as in court) goes in three ways, each
on a fresh ``courtscribe serve`` with its default settings (``--max-streams``: another
``COURTSCRIBE_MAX_STREAMS``): ``1`` one mixed microphone (the hearing as one stream), ``4`` its four
speakers' seat microphones (−20 dB bleed of the others on each), ``8`` the same with four more seats
nobody speaks at (审判员, 人民陪审员…: they hear only the others' bleed), all from one process in real
time as ``courtscribe stream --seats`` sends them (one clock). Per way: seats refused, final and
partial latency (as bench/stream_load.py measures them; also of the finals that are lines with text,
without a seat's empty finals of a neighbour's bleed), the server's CPU seconds per second of
hearing, partials shown and lines recorded under a seat whose speaker did not say them (the
reference line they overlap most is another seat's), and the record (lost lines, flagged-only
lines, CER of the Mandarin lines, as bench/court_speech.py scores them).
Writes bench/out/seat_load.json.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save, table  # noqa: E402
from court_speech import CASE, HERE, ROLES, reference, score, seat_mics  # noqa: E402
from stream_load import pct, latencies, start_server  # noqa: E402

from courtscribe.clients.stream_client import fan_out, on_one_clock, stream  # noqa: E402
from courtscribe.config import Settings  # noqa: E402
from courtscribe.records.model import Role  # noqa: E402

SILENT_SEATS = [Role.judge, Role.juror, Role.plaintiff, Role.defendant_agent]  # seats 4.. nobody speaks at
CHUNK = 3200  # 200 ms


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def mixer(mics: np.ndarray):
    """The mics as one device delivers them: every channel's 200 ms at once, (channels, samples)."""
    for i in range(0, mics.shape[0], CHUNK):
        yield mics[i:i + CHUNK].T


async def streams(url: str, hearing: str, mics: np.ndarray, roles: dict[int, Role]) -> list:
    """Every mic's stream at once, as ``courtscribe stream --seats`` sends them (one clock); a
    refused one is its error, not a result."""
    ws = url.replace("http", "ws") + "/v1/stream"

    def one(source, k: int, **placed):
        return stream(ws, source, hearing_id=hearing, channel=k, role=roles[k].value if k in roles else None,
                      seat=bool(roles), **placed)
    if mics.shape[1] == 1:
        return [await one(fan_out(mixer(mics), 1)[0], 0)]
    return await on_one_clock(one, fan_out(mixer(mics), mics.shape[1]))


def _own(partial: dict, lines: list[dict]) -> bool:
    """Whether a partial on a seat mic is of its own seat's speech (the reference line it overlaps
    most)."""
    overlap = [(min(partial["end_ms"], ln["end_ms"]) - max(partial["start_ms"], ln["start_ms"]),
                ln["channel"]) for ln in lines]
    most, channel = max(overlap, default=(0, None))
    return most <= 0 or channel == partial["channel"]


def measure(seats: int, seconds: float, max_streams: int | None) -> dict:
    lines = [ln for ln in reference() if ln["end_ms"] <= seconds * 1000]
    audio = HERE / "hearing.flac"
    source = audio if seats == 1 else seat_mics(audio, lines, seats)
    mics = sf.read(source, dtype="float32", always_2d=True)[0][: int(seconds * 16_000)]
    roles = {} if seats == 1 else {**ROLES, **{4 + i: r for i, r in enumerate(SILENT_SEATS[: seats - 4])}}
    proc, url = start_server(max_streams=max_streams or Settings().max_streams)
    try:
        hearing = f"seats-{seats}-{time.time_ns()}"
        channels = {str(c): r.value for c, r in roles.items()}
        httpx.post(url + "/v1/hearings", json={"id": hearing, **CASE, "channels": channels},
                   timeout=30).raise_for_status()
        before = cpu_s(proc.pid)
        results = asyncio.run(streams(url, hearing, mics, roles))
        used = cpu_s(proc.pid) - before
        record = httpx.get(f"{url}/v1/hearings/{hearing}", timeout=30).json()
    finally:
        proc.terminate()
        proc.wait(30)
    ran = [r for r in results if not isinstance(r, BaseException)]
    refused = [repr(r)[:120] for r in results if isinstance(r, BaseException)]
    partial, final = [], []
    wrong = [{k: p[k] for k in ("channel", "start_ms", "end_ms", "text")}
             for r in ran for p in r.partials if seats > 1 and not _own(p, lines)]
    misplaced = [{k: u[k] for k in ("channel", "start_ms", "end_ms", "text")} for u in record["utterances"]
                 if seats > 1 and u["text"].strip() and not _own(u, lines)]
    said = []  # finals that are lines with text (a seat's empty final of a neighbour's bleed is no line)
    for r in ran:
        lags = latencies(r)
        partial += lags["partial"]
        final += lags["final"]
        said += [lag for f, lag in zip(r.finals, lags["final"]) if f["utterance"]["text"]]
    scored = score(f"{seats} mic(s)", record["utterances"], lines, seconds)
    return {"mics": seats, "refused": len(refused), "refusals": refused, "finals": len(final),
            "partials": len(partial), "partials_other_seat": len(wrong),
            "lines_other_seat": len(misplaced),
            "partial_p95_s": pct(partial, 95), "final_p50_s": pct(final, 50), "final_p95_s": pct(final, 95),
            "line_final_p95_s": pct(said, 95),
            "cpu_per_s": used / seconds,
            **{k: scored[k] for k in ("lines", "utterances", "lost", "flagged only", "CER zh", "numbers")},
            "other_seat": wrong, "misplaced": misplaced}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seats", type=int, nargs="+", default=[1, 4, 8], help="1 (one mixed mic) or 4..8 seats")
    ap.add_argument("--seconds", type=float, default=120.0, help="how much of the hearing (from its start)")
    ap.add_argument("--max-streams", type=int, help="COURTSCRIBE_MAX_STREAMS (default: the server's)")
    args = ap.parse_args()
    if any(n != 1 and not 4 <= n <= 4 + len(SILENT_SEATS) for n in args.seats):
        ap.error(f"--seats: 1, or 4 to {4 + len(SILENT_SEATS)}")
    rows = []
    for n in args.seats:
        rows.append(measure(n, args.seconds, args.max_streams))
        print(f"{n} mic(s): refused {rows[-1]['refused']}, final p95 {rows[-1]['final_p95_s']:.2f} s",
              file=sys.stderr)
    print(table(rows, ["mics", "refused", "finals", "partials", "partials_other_seat", "partial_p95_s",
                       "final_p50_s", "final_p95_s", "line_final_p95_s", "cpu_per_s", "lines_other_seat", "lost",
                       "flagged only",
                       "CER zh", "numbers"]))
    for r in rows:
        for why in r["refusals"]:
            print(f"{r['mics']} mics, refused: {why}")
    print(f"\nwrote {save('seat_load', {'seconds': args.seconds, 'rows': rows})}")


if __name__ == "__main__":
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
    main()
