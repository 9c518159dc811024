"""Court audio never leaves the machine: the server, watched by an audit hook in every Python process
it runs (tests/netwatch/sitecustomize.py), makes no network contact beyond loopback while it starts,
loads its models, transcribes files, streams a hearing with live diarization over both protocols,
and exports the record — on the embedded default and on FunASR models from a local directory."""
import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import websockets

from courtscribe.audio import decode, float_to_pcm16
from courtscribe.clients import stream_file

from conftest import DATA, ZH, start_server

NETWATCH = Path(__file__).resolve().parent / "netwatch"


def watched(home: Path) -> dict[str, str]:
    log = home / "netwatch.jsonl"
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(NETWATCH), os.environ.get("PYTHONPATH")])),
            "NETWATCH_LOG": str(log)}


def contacts(home: Path) -> tuple[list[dict], list[dict]]:
    """(processes watched, contacts beyond loopback) from the hook's log."""
    rows = [json.loads(line) for line in (home / "netwatch.jsonl").read_text().splitlines()]
    return [r for r in rows if r["event"] == "watching"], [r for r in rows if r["event"] != "watching"]


def test_the_watch_sees_an_outbound_connection(tmp_path):
    """The control: the same hook does report a process that reaches out (TEST-NET address, DNS name)."""
    code = ("import socket\n"
            "for target in (('192.0.2.1', 9), ('modelscope.cn', 443)):\n"
            "    try: socket.create_connection(target, timeout=0.2)\n"
            "    except OSError: pass\n")
    subprocess.run([sys.executable, "-c", code], env={**os.environ, **watched(tmp_path)}, check=True, timeout=60)
    procs, out = contacts(tmp_path)
    assert len(procs) == 1
    assert {"socket.connect", "socket.getaddrinfo"} <= {c["event"] for c in out}
    assert any(c.get("host") == "modelscope.cn" for c in out)


async def _funasr_2pass(url: str, path: Path) -> list[dict]:
    audio = decode(path).channel(0)
    async with websockets.connect(url.replace("http", "ws") + "/?hearing=offline-check-2") as ws:
        await ws.send(json.dumps({"mode": "2pass", "wav_name": "t", "is_speaking": True, "chunk_size": [5, 10, 5]}))
        for i in range(0, audio.size, 3200):
            await ws.send(float_to_pcm16(audio[i:i + 3200]))
        await ws.send(json.dumps({"is_speaking": False, "is_end": True}))
        replies = []
        while not replies or not replies[-1].get("is_end"):  # until the end-of-input acknowledgement
            replies.append(json.loads(await ws.recv()))
        return replies


def _exercise(url: str) -> None:
    """What a court does in a day, in miniature."""
    clip = ZH / "news_kfc.wav"
    with open(clip, "rb") as f:
        r = httpx.post(f"{url}/v1/audio/transcriptions", files={"file": (clip.name, f, "audio/wav")}, timeout=300)
    assert r.status_code == 200 and r.json()["text"]
    # one mixed microphone, no role: the online diarizer labels who speaks
    result = asyncio.run(stream_file(url.replace("http", "ws") + "/v1/stream", DATA / "diarization" / "sample.wav",
                                     hearing_id="offline-check", speed=0))
    assert result.finals
    replies = asyncio.run(_funasr_2pass(url, ZH / "justice.wav"))
    assert any(m.get("is_final") for m in replies)
    for fmt in ("docx", "pdf", "package"):
        r = httpx.get(f"{url}/v1/hearings/offline-check/export", params={"format": fmt}, timeout=120)
        assert r.status_code == 200, r.text
    assert httpx.post(f"{url}/v1/hearings/offline-check/speakers/refine", timeout=300).status_code == 200


@pytest.mark.parametrize("engine", ["embedded", "funasr"])
def test_no_contact_beyond_loopback_while_serving(engine, tmp_path, request):
    env = watched(tmp_path)
    if engine == "funasr":  # production's code path, on shape-true tiny models in a local directory
        env |= {"COURTSCRIBE_ENGINE": "funasr", "COURTSCRIBE_MODEL_DIR": str(request.getfixturevalue("funasr_models"))}
    proc, url = start_server(tmp_path, **env)
    try:
        _exercise(url)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    procs, out = contacts(tmp_path)
    assert procs, "the hook was not loaded into the server"
    assert out == [], f"the server reached beyond loopback: {out[:5]}"
    print(f"{engine}: {len(procs)} process(es) watched, 0 contacts beyond loopback")
