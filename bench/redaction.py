"""Does personal data stay out of a public trial's captions and public record, while the court's own
numbers stay in?

    .venv/bin/python bench/redaction.py [--speed 1] [--delay-ms 3000]

bench/court/private.flac (written by ``bench/court_tts.py private``: 12 hearing lines in synthetic
Mandarin that speak 居民身份证号码, mobile, landline and bank-card numbers digit by digit, a licence
plate, a street address, and a protected minor witness's name, beside amounts, dates, a statute and a
case number) is streamed into a public hearing of a fresh server at ``--speed`` × real time, with the
witness marked protected. The caption overlay's socket is followed throughout; then captions.json,
captions.vtt and the public version in every format are read, and the internal record beside them.

Per output: private items that leak (a number: any 6 of its digits in a row in one run of digits, in
any written or spoken form; a plate: its digits; an address: its road or house number), protected-name mentions masked,
court numbers (exact, as in the internal record) that went missing. Beside it, the finder over the
mock hearing's reference lines and the engine's own text of them (bench/out/court_speech_turns.json):
every find there is a false redaction. And the caption line latency (its words spoken → sent) against
the delay + 3 s target. Prints tables, writes bench/out/redaction.json.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import re
import sys
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import OUT, save, table  # noqa: E402
from stream_load import pct, start_server  # noqa: E402

from courtscribe.asr.hotwords import sounds  # noqa: E402
from courtscribe.audio import decode  # noqa: E402
from courtscribe.clients.stream_client import SR, stream  # noqa: E402
from courtscribe.redaction.detect import Finder  # noqa: E402

COURT = Path(__file__).resolve().parent / "court"
PROTECTED = "王小红"
FORMATS = ("txt", "json", "srt", "vtt", "docx", "pdf", "ofd")
_DIGITS = {
    **dict(zip("零〇一二三四五六七八九幺", "001234567891")),
    **{chr(0xFF10 + i): str(i) for i in range(10)},
}


def digits(text: str) -> str:
    return "".join(_DIGITS.get(c, c) for c in text if c.isdigit() or c in _DIGITS)


def runs(text: str) -> list[str]:
    """The digit runs a reader sees (spoken digits as digits, groups joined across spaces and dashes)."""
    return re.findall(r"\d+", re.sub(r"[-\s]", "", "".join(_DIGITS.get(c, c) for c in text)))


def text_of(fmt: str, data: bytes) -> str:
    """What a reader of the exported file can read."""
    if fmt == "docx":
        import docx

        return "\n".join(p.text for p in docx.Document(io.BytesIO(data)).paragraphs) + "\n".join(
            c.text for t in docx.Document(io.BytesIO(data)).tables for r in t.rows for c in r.cells
        )
    if fmt == "pdf":
        import pypdf

        return "\n".join(
            page.extract_text() or "" for page in pypdf.PdfReader(io.BytesIO(data)).pages
        )
    if fmt == "ofd":
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            xml = "".join(
                z.read(n).decode("utf-8", "replace") for n in z.namelist() if n.endswith(".xml")
            )
        return "".join(re.findall(r"<ofd:TextCode[^>]*>([^<]*)</ofd:TextCode>", xml))
    return data.decode("utf-8")


def leaks(item: dict, text: str) -> bool:
    """Whether a reader of ``text`` learns the private ``item``."""
    value = item["value"]
    if item["category"] == "address":
        return any(part in text for part in ("建国路", "88号", "八十八号", "501室", "五零一室"))
    seen = runs(text)
    if item["category"] == "plate":
        return any("12345" in r for r in seen)
    number = digits(value)
    return any(number[i:i + 6] in r for r in seen for i in range(len(number) - 5))


def names_left(text: str) -> int:
    """Mentions of the protected name, as written or as any sound-alike, in ``text``."""
    heard, want = sounds(text), sounds(PROTECTED)
    whole = sum(heard[i : i + 3] == want for i in range(len(text) - 2))
    given = sum(heard[i : i + 2] == want[1:] for i in range(len(text) - 1))
    return max(whole, given)


async def follow_and_speak(
    http: str, hid: str, speed: float, delay_s: float
) -> tuple[list[dict], object]:
    ws = http.replace("http", "ws")
    cues: list[dict] = []
    audio = decode(COURT / "private.flac").channel(0)

    async def chunks(step_ms: int = 200):
        step = SR * step_ms // 1000
        for i in range(0, audio.size, step):
            yield audio[i : i + step]

    async with websockets.connect(f"{ws}/v1/hearings/{hid}/captions") as sock:
        await sock.recv()  # subscribed

        async def listen() -> None:
            async for msg in sock:
                e = json.loads(msg)
                if e["type"] == "cue":
                    cues.append({**e, "received_at": time.time()})

        listener = asyncio.create_task(listen())
        result = await stream(f"{ws}/v1/stream", chunks(), hearing_id=hid, speed=speed)
        await asyncio.sleep(delay_s + 6)  # the last lines: the delay, the endpoint's flush
        listener.cancel()
    return cues, result


def false_finds(finder: Finder) -> list[dict]:
    """Finds in lines that hold no personal data: the mock hearing's references, the engine's text of
    them, and this bench's court-number lines."""
    lines = [
        x["text"] for x in json.loads((COURT / "hearing.json").read_text(encoding="utf-8"))["lines"]
    ]
    turns = OUT / "court_speech_turns.json"
    if turns.exists():
        for row in json.loads(turns.read_text(encoding="utf-8"))["rows"]:
            lines += [d["got"] for d in row.get("detail", []) if d.get("got")]
    private = json.loads((COURT / "private.json").read_text(encoding="utf-8"))["lines"]
    lines += [
        x["text"] for x in private if not x.get("private") and not x.get("protected_mentions")
    ]
    return [
        {"text": t, "found": t[f.start : f.end], "category": f.category}
        for t in lines
        for f in finder.find(t)
    ], len(lines)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--speed", type=float, default=1.0)
    ap.add_argument("--delay-ms", type=int, default=3000)
    args = ap.parse_args()
    meta = json.loads((COURT / "private.json").read_text(encoding="utf-8"))["lines"]
    items = [i for x in meta for i in x.get("private", [])]
    mentions = sum(x.get("protected_mentions", 0) for x in meta)
    court = [c for x in meta for c in x.get("court", [])]

    proc, http = start_server(2, COURTSCRIBE_CAPTION_DELAY_MS=str(args.delay_ms))
    api = f"{http}/v1/hearings"
    try:
        httpx.post(
            api,
            json={
                "id": "public-1",
                "public": True,
                "title": "公开庭审",
                "participants": [
                    {"role": "witness", "name": PROTECTED, "protected": True},
                    {"role": "plaintiff", "name": "张建国"},
                    {"role": "defendant", "name": "李明"},
                ],
            },
        ).raise_for_status()
        cues, result = asyncio.run(
            follow_and_speak(http, "public-1", args.speed, args.delay_ms / 1000)
        )
        outputs = {
            "captions feed": "".join(c["text"] for c in cues),
            "captions.json": json.dumps(
                httpx.get(f"{api}/public-1/captions.json").json(), ensure_ascii=False
            ),
            "captions.vtt": httpx.get(f"{api}/public-1/captions.vtt").text,
        }
        for fmt in FORMATS:
            got = httpx.get(
                f"{api}/public-1/export", params={"format": fmt, "version": "public"}, timeout=120
            )
            got.raise_for_status()
            outputs[f"public {fmt}"] = text_of(fmt, got.content)
        internal = httpx.get(f"{api}/public-1/export", params={"format": "txt"}).text
        log = httpx.get(f"{api}/public-1/redactions").json()["log"]
    finally:
        proc.terminate()
        proc.wait(60)

    said_names = names_left(internal)  # mentions the engine wrote (as the name or a sound-alike)
    heard_items = [i for i in items if leaks(i, internal)]  # items the record holds at all
    heard_court = [c for c in court if c in internal]
    rows = []
    for name, text in outputs.items():
        leaked = [i for i in heard_items if leaks(i, text)]
        rows.append(
            {
                "output": name,
                "private_items": len(heard_items),
                "leaked": len(leaked),
                "names_in_record": said_names,
                "names_left": names_left(text),
                "court_numbers": len(heard_court),
                "court_missing": sum(c not in text for c in heard_court),
                "leaked_items": [i["value"] for i in leaked],
            }
        )
    lags = [c["sent_at"] - c["speech_end_at"] for c in cues if c.get("speech_end_at")]
    false, scanned = false_finds(Finder())
    latency = {
        "lines": len(lags),
        "p50_s": pct(lags, 50),
        "p95_s": pct(lags, 95),
        "max_s": max(lags) if lags else float("nan"),
        "target_s": args.delay_ms / 1000 + 3,
    }
    print(
        f"private items spoken {len(items)}, in the internal record {len(heard_items)}; "
        f"protected-name mentions spoken {mentions}, in the record {said_names}"
    )
    print(
        table(
            rows,
            [
                "output",
                "private_items",
                "leaked",
                "names_in_record",
                "names_left",
                "court_numbers",
                "court_missing",
            ],
        )
    )
    print(table([latency], ["lines", "p50_s", "p95_s", "max_s", "target_s"]))
    print(f"false redactions on {scanned} lines without personal data: {len(false)}")
    for f in false:
        print(f"  {f['category']}: {f['found']!r} in {f['text']!r}")
    verdict = {
        "leaked": sum(r["leaked"] for r in rows),
        "names_left": sum(r["names_left"] for r in rows),
        "court_missing": sum(r["court_missing"] for r in rows),
        "false_redactions": len(false),
        "caption_line_p95_s": latency["p95_s"],
        "within_target": latency["p95_s"] <= latency["target_s"],
    }
    print(" · ".join(f"{k}: {v}" for k, v in verdict.items()))
    path = save(
        "redaction",
        {
            "args": vars(args),
            "rows": rows,
            "latency": latency,
            "false": false,
            "cues": cues,
            "internal": internal,
            "log": log,
            "finals": [f["utterance"]["text"] for f in result.finals],
            **verdict,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
