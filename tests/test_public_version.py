"""A public trial against a real server: personal data spoken into a live stream and typed by the
clerk never reaches the caption feed, captions.json/.vtt or any public-version export, while the
record and the internal export keep every word (redaction/, server/redactions.py)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from pathlib import Path

import docx
import httpx
import numpy as np
import pypdf
import pytest
import soundfile as sf
import websockets

from courtscribe.clients import stream_file

COURT = Path(__file__).resolve().parent.parent / "bench" / "court"
TYPED = "身份证号110101199003071233，邮箱zhangsan@qq.com，车牌京A12345，住在建国路88号院3号楼，王小红的电话13800138000，在红星幼儿园上学"
SECRETS = (
    "110101199003071233",
    "zhangsan",
    "12345",
    "建国路",
    "13800138000",
    "王小红",
    "红星幼儿园",
)
DIGIT = dict(zip("零一二三四五六七八九幺", "01234567891"))
FORMATS = ("txt", "plain", "json", "srt", "vtt", "docx", "pdf", "ofd")


def readable(fmt: str, data: bytes) -> str:
    """What a reader of an exported file reads."""
    if fmt == "docx":
        doc = docx.Document(io.BytesIO(data))
        cells = [c.text for t in doc.tables for r in t.rows for c in r.cells]
        return "".join([p.text for p in doc.paragraphs] + cells)
    if fmt == "pdf":
        return "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(data)).pages).replace(
            "\n", ""
        )
    if fmt == "ofd":
        logging.getLogger("easyofd").setLevel(logging.ERROR)
        from easyofd.ofd import OFD

        reader = OFD()
        reader.read(data, fmt="binary")
        return "".join(
            o["text"] for d in reader.data for p in d["page_info"].values() for o in p["text_list"]
        )
    return data.decode("utf-8")


def runs(text: str) -> list[str]:
    """The digit runs a reader sees (spoken digits as digits, groups joined across spaces and dashes)."""
    return re.findall(r"\d+", re.sub(r"[-\s]", "", "".join(DIGIT.get(c, c) for c in text)))


def _clip(tmp_path: Path) -> Path:
    """Lines 2, 3 and 6 of the private bench hearing: an ID, a mobile, an address, a landline, the
    protected witness's name."""
    lines = json.loads((COURT / "private.json").read_text(encoding="utf-8"))["lines"]
    audio, sr = sf.read(COURT / "private.flac", dtype="float32")
    parts = []
    for n in (2, 3, 6):
        line = lines[n - 1]
        parts += [
            audio[line["start_ms"] * sr // 1000 : line["end_ms"] * sr // 1000],
            np.zeros(sr, np.float32),
        ]
    path = tmp_path / "private.wav"
    sf.write(path, np.concatenate(parts), sr)
    return path


@pytest.mark.slow
def test_personal_data_never_reaches_a_public_output_and_the_record_keeps_it(server, tmp_path):
    api, ws = f"{server}/v1/hearings", server.replace("http://", "ws://")
    assert (
        httpx.post(
            api,
            json={
                "id": "pub-1",
                "public": True,
                "title": "公开庭审",
                "participants": [
                    {"role": "witness", "name": "王小红", "protected": True},
                    {"role": "plaintiff", "name": "张建国"},
                ],
            },
        ).status_code
        == 201
    )

    async def watch_and_speak() -> tuple[list[dict], list[dict]]:
        async with websockets.connect(f"{ws}/v1/hearings/pub-1/captions") as sock:
            assert json.loads(await sock.recv())["type"] == "subscribed"
            result = await stream_file(
                f"{ws}/v1/stream", _clip(tmp_path), speed=0, hearing_id="pub-1"
            )
            said = {f["utterance_id"] for f in result.finals if f["utterance"]["text"]}
            got: list[dict] = []
            while {
                c["utterance_id"] for c in got if c["last"]
            } != said:  # each utterance's last line
                got.append(json.loads(await asyncio.wait_for(sock.recv(), 60)))
            return got, result.finals

    cues, finals = asyncio.run(watch_and_speak())
    first = next(f["utterance_id"] for f in finals if f["utterance"]["text"])
    edited = httpx.patch(
        f"{api}/pub-1/utterances/{first}", json={"text": TYPED, "reason": "书记员补录"}
    )
    assert edited.status_code == 200
    added = httpx.post(
        f"{api}/pub-1/redactions",
        json={"action": "add", "text": "红星幼儿园", "reason": "可识别未成年人"},
    )
    assert added.status_code == 201

    record = httpx.get(f"{api}/pub-1/export", params={"format": "json"}).json()
    internal = httpx.get(f"{api}/pub-1/export", params={"format": "txt"}).text
    assert (
        next(u["text"] for u in record["utterances"] if u["id"] == first) == TYPED
        and TYPED in internal
    )
    log = httpx.get(f"{api}/pub-1/redactions").json()
    # what the redaction log says the public version hides, of the lines as spoken (the first
    # line's spoken words went out live before the clerk typed over them)
    spoken = [r["words"] for r in log["log"] if r["utterance_id"] != first and r["field"] == "text"]
    outputs = {"feed": "".join(c["text"] for c in cues),
               "captions.json": httpx.get(f"{api}/pub-1/captions.json").text,
               "captions.vtt": httpx.get(f"{api}/pub-1/captions.vtt").text}
    for fmt in FORMATS:
        got = httpx.get(f"{api}/pub-1/export", params={"format": fmt, "version": "public"}, timeout=120)
        assert got.status_code == 200, got.text
        assert "%E5%85%AC%E5%BC%80%E7%89%88" in got.headers["content-disposition"]  # 公开版, in its name
        outputs[fmt] = readable(fmt, got.content)
    for name, text in outputs.items():
        assert "王小红" not in text, name
        seen = runs(text)
        for words in spoken:  # no 6 digits in a row of a number hidden, nor the words themselves
            number = "".join(r for r in runs(words))
            assert not any(number[i:i + 6] in r for r in seen for i in range(len(number) - 5)), (name, words)
            assert len(words) < 3 or words not in text, (name, words)
        if name != "feed":  # the overlay's lines went out before the clerk typed
            assert "王某" in text, name
            for secret in SECRETS:
                assert secret not in text, (name, secret)
    assert "公开版" in outputs["txt"] and "公开版" in outputs["docx"]

    assert log["protected"] == ["王小红"]
    kinds = {r["category"] for r in log["log"] if r["utterance_id"] == first}
    assert {"id_card", "email", "plate", "address", "name", "mobile", "clerk"} <= kinds
    assert all(
        TYPED[r["start"] : r["end"]] == r["words"]
        for r in log["log"]
        if r["utterance_id"] == first and r["field"] == "text"
    )
    package = httpx.get(f"{api}/pub-1/export", params={"format": "package", "version": "public"})
    assert package.status_code == 422  # the audio would say it all
    assert httpx.get(f"{api}/pub-1/verify").json()["ok"]  # choices are ledger entries; the chain holds

    lifted = httpx.post(
        f"{api}/pub-1/redactions",
        json={
            "action": "lift",
            "text": "13800138000",
            "utterance_id": first,
            "reason": "公开的单位电话",
        },
    )
    assert lifted.status_code == 201
    public = httpx.get(f"{api}/pub-1/export", params={"format": "txt", "version": "public"}).text
    assert "13800138000" in public and "110101199003071233" not in public
