"""Existing clients against courtscribe, measured: FunASR's protocol as its current Python client
speaks it (every zh-smoke speech clip over ONE connection, each file acknowledged) beside the
native protocol, CER per clip; and OpenAI's streamed transcription: time to the first delta vs
time to the whole text.

    .venv/bin/python bench/clients.py                     # table + bench/out/clients.json
    .venv/bin/python bench/clients.py --funasr-client PATH/funasr_wss_client.py

``--funasr-client``: also run FunASR's own client script (runtime/python/websocket in
modelscope/FunASR, not shipped here) on a wav.scp of the same clips, its text read from the
events log it writes, so the numbers come from FunASR's code too.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cer, save, scored_clips, table  # noqa: E402
from stream_load import start_server  # noqa: E402

from courtscribe.audio import decode, float_to_pcm16  # noqa: E402
from courtscribe.clients import stream_file  # noqa: E402

CHUNK = 1920  # 60 ms of 16 kHz PCM16, as FunASR's client sends it (chunk_size [5, 10, 5], interval 10)


async def funasr_one_connection(url: str, clips: list[dict]) -> dict[str, str]:
    """FunASR's current client's sequence for a wav.scp, real-time paced, all files on one socket."""
    texts = {}
    async with websockets.connect(url.replace("http", "ws") + "/", subprotocols=["binary"], max_size=None) as ws:
        for clip in clips:
            name, pcm = clip["audio"], float_to_pcm16(decode(clip["path"]).channel(0))
            await ws.send(json.dumps({"mode": "2pass", "chunk_size": [5, 10, 5], "chunk_interval": 10, "audio_fs": 16000,
                                      "wav_name": name, "wav_format": "pcm", "is_speaking": True, "itn": True,
                                      "encoder_chunk_look_back": 4, "decoder_chunk_look_back": 0, "hotwords": ""}))
            replies: list[dict] = []
            reader = asyncio.create_task(_until_ack(ws, replies))
            for i in range(0, len(pcm), CHUNK):
                await ws.send(pcm[i:i + CHUNK])
                await asyncio.sleep(0.06)
            await ws.send(json.dumps({"is_speaking": False, "is_end": True}))
            await reader
            ack = replies[-1]
            if not ack.get("is_final"):
                raise RuntimeError(f"{name}: {ack.get('error')}")
            texts[name] = "".join(r.get("text", "") for r in replies if r.get("mode") == "2pass-offline")
    return texts


async def _until_ack(ws, replies: list[dict]) -> None:
    while not replies or not replies[-1].get("is_end"):
        replies.append(json.loads(await ws.recv()))


async def native(url: str, clips: list[dict]) -> dict[str, str]:
    out = {}
    for clip in clips:
        result = await stream_file(url.replace("http", "ws") + "/v1/stream", clip["path"], speed=1.0)
        out[clip["audio"]] = result.text
    return out


def funasr_script(script: Path, url: str, clips: list[dict]) -> dict[str, str]:
    """FunASR's own client script on a wav.scp; its events.jsonl gives each file's 2pass-offline text."""
    work = Path(tempfile.mkdtemp(prefix="funasr-client-"))
    scp = work / "wav.scp"
    scp.write_text("".join(f"{c['audio']} {c['path']}\n" for c in clips))
    port = url.rsplit(":", 1)[1]
    out = subprocess.run([sys.executable, str(script), "--host", "127.0.0.1", "--port", port, "--ssl", "0",
                          "--mode", "2pass", "--audio_in", str(scp), "--log_dir", str(work / "logs")],
                         capture_output=True, text=True, timeout=900, cwd=work)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    texts: dict[str, str] = {c["audio"]: "" for c in clips}
    for events in (work / "logs").rglob("*.jsonl"):
        for line in events.read_text().splitlines():
            e = json.loads(line)
            if e.get("mode") == "2pass-offline" and e.get("wav_name") in texts:
                texts[e["wav_name"]] += e.get("text") or ""
    return texts


def openai_stream(url: str, path: Path) -> dict:
    from openai import OpenAI

    client = OpenAI(base_url=f"{url}/v1", api_key="local", max_retries=0)
    started, first, deltas = time.perf_counter(), None, 0
    with open(path, "rb") as f:
        for ev in client.audio.transcriptions.create(model="whisper-base", file=f, stream=True, language="zh"):
            if ev.type == "transcript.text.delta":
                deltas += 1
                first = first or time.perf_counter() - started
            elif ev.type == "transcript.text.done":
                whole = time.perf_counter() - started
    with open(path, "rb") as f:
        started = time.perf_counter()
        client.audio.transcriptions.create(model="whisper-base", file=f, language="zh")
        plain = time.perf_counter() - started
    return {"clip": path.name, "deltas": deltas, "first_delta_s": first, "done_s": whole, "json_answer_s": plain}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--funasr-client", type=Path, help="FunASR's runtime/python/websocket/funasr_wss_client.py")
    args = ap.parse_args()
    clips = scored_clips()
    proc, url = start_server(max_streams=2)
    try:
        one = asyncio.run(funasr_one_connection(url, clips))
        own = asyncio.run(native(url, clips))
        theirs = funasr_script(args.funasr_client, url, clips) if args.funasr_client else {}
        stream = openai_stream(url, clips[0]["path"].parent / "market_25s.wav")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    rows = [{"clip": c["audio"], "funasr_one_socket": cer([c["text"]], [one[c["audio"]]]),
             "native": cer([c["text"]], [own[c["audio"]]]),
             **({"funasr_script": cer([c["text"]], [theirs[c["audio"]]])} if theirs else {})} for c in clips]
    refs = [c["text"] for c in clips]
    rows.append({"clip": "ALL (corpus CER)", "funasr_one_socket": cer(refs, [one[c["audio"]] for c in clips]),
                 "native": cer(refs, [own[c["audio"]] for c in clips]),
                 **({"funasr_script": cer(refs, [theirs[c["audio"]] for c in clips])} if theirs else {})})
    cols = ["clip", "funasr_one_socket", "native"] + (["funasr_script"] if theirs else [])
    print(table(rows, cols))
    print()
    print(table([stream], list(stream)))
    path = save("clients", {"cer": rows, "files_on_one_socket": len(one), "openai_stream": stream,
                            "texts": {"funasr_one_socket": one, "native": own, "funasr_script": theirs}})
    print(f"\nwritten {path}")


if __name__ == "__main__":
    main()
