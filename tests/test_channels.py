"""Each source of a hearing holds a channel of its own: two FunASR clients (two courtroom PCs; the
protocol names no channel) each get one, and each line replays its own source's audio; a native
source naming a channel another source holds is refused (channel_busy), not mixed into it."""
import asyncio
import json

import httpx
import numpy as np
import pytest
import websockets

from courtscribe.audio import SAMPLE_RATE as SR
from courtscribe.audio import decode, float_to_pcm16
from courtscribe.records import archive

from conftest import ZH, start_server

pytestmark = pytest.mark.slow


async def _funasr_pc(url: str, pcm: bytes) -> None:
    """FunASR's client at HEAD: 2pass, 60 ms frames at real-time pace, then the end of input."""
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"mode": "2pass", "chunk_size": [5, 10, 5], "wav_name": "pc", "wav_format": "pcm",
                                  "audio_fs": SR, "is_speaking": True, "itn": True}))
        for at in range(0, len(pcm), 1920):
            await ws.send(pcm[at:at + 1920])
            await asyncio.sleep(0.03)
        await ws.send(json.dumps({"is_speaking": False, "is_end": True}))  # PR #3440's end of input
        while not json.loads(await asyncio.wait_for(ws.recv(), 120)).get("is_end"):
            pass


async def _sources(base: str, hearing_id: str, n: int) -> None:
    """Until the hearing has ``n`` sources connected (its status says which)."""
    async with httpx.AsyncClient() as client:
        while True:
            got = await client.get(f"{base}/v1/hearings/{hearing_id}/status")
            if got.status_code == 200 and len(got.json()["sources"]) >= n:
                return
            await asyncio.sleep(0.05)


async def _native(url: str, channel: int) -> dict:
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "start", "hearing_id": "h-seats", "channel": channel}))
        return json.loads(await asyncio.wait_for(ws.recv(), 60))


def test_two_sources_without_channels_each_hold_one_and_a_named_channel_taken_is_refused(tmp_path):
    proc, base = start_server(tmp_path)
    ws = base.replace("http://", "ws://")
    clips = {name: decode(ZH / name).channel(0) for name in ("justice.wav", "market_25s.wav")}
    try:
        async def two_pcs_and_a_third():
            pcs = [asyncio.create_task(_funasr_pc(f"{ws}/?hearing=h-seats", float_to_pcm16(x)))
                   for x in clips.values()]
            await _sources(base, "h-seats", 2)  # both PCs are streaming: their channels are held
            said = await _native(f"{ws}/v1/stream", 0)
            await asyncio.gather(*pcs)
            return said
        refused = asyncio.run(asyncio.wait_for(two_pcs_and_a_third(), 300))
        assert refused["type"] == "error" and refused["code"] == "channel_busy", refused
        root = tmp_path / "data" / "archive"
        # each channel's audio from where its source joined the hearing to its end: the whole clip
        held = sorted(archive.recorded_ms(root, "h-seats", ch) - archive.segments(root, "h-seats", ch)[0][0]
                      for ch in (0, 1))
        assert held == sorted(x.size * 1000 // SR for x in clips.values())  # each source's audio whole
        lines = httpx.get(f"{base}/v1/hearings/h-seats").json()["utterances"]
        assert {u["channel"] for u in lines} == {0, 1}
        for u in lines:  # a line replays its own source's audio
            said = archive.read(root, "h-seats", u["channel"], u["start_ms"], u["end_ms"])
            assert float(np.abs(said).max()) > 0.01, u
        assert _native_after(ws)["type"] == "ready"  # the PCs gone, channel 0 is free again
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _native_after(ws: str) -> dict:
    return asyncio.run(_native(f"{ws}/v1/stream", 0))


def test_a_courtroom_pc_leaves_the_seats_of_the_hearings_channel_map_to_their_recorders(server):
    """The hearing maps channel 0 to the judge's seat; a FunASR PC connecting first takes channel 1,
    and the seat's recorder starting after it is not refused channel 0."""
    ws = server.replace("http://", "ws://")
    made = httpx.post(f"{server}/v1/hearings", json={"id": "h-map", "channels": {"0": "审判长"}})
    assert made.status_code == 201, made.text

    async def pc_then_seat() -> dict:
        pcm = float_to_pcm16(decode(ZH / "welcome.wav").channel(0))
        pc = asyncio.create_task(_funasr_pc(f"{ws}/?hearing=h-map", pcm))
        await _sources(server, "h-map", 1)
        async with websockets.connect(f"{ws}/v1/stream", max_size=None) as seat:
            await seat.send(json.dumps({"type": "start", "hearing_id": "h-map", "channel": 0, "role": "审判长"}))
            ready = json.loads(await asyncio.wait_for(seat.recv(), 60))
            await seat.send(json.dumps({"type": "stop"}))
        await pc
        return ready
    ready = asyncio.run(asyncio.wait_for(pc_then_seat(), 300))
    assert ready["type"] == "ready" and ready["channel"] == 0, ready
    lines = httpx.get(f"{server}/v1/hearings/h-map").json()["utterances"]
    assert lines and {u["channel"] for u in lines} == {1}  # the PC's lines, on its own channel


def test_a_recorder_naming_only_its_channel_is_the_seat_the_hearings_channel_map_gives_it(server):
    """The clerk scheduled the hearing with its seat microphones (channel 1: 原告代理人); a seat
    microphone streaming channel 1 without naming a role is that seat: its ready, its lines and their
    speaker are 原告代理人's, not voices numbered on a mixed microphone (说话人N). One on a channel the
    map gives no seat is refused, never recorded as a mixed microphone beside the seats."""
    from courtscribe.clients.stream_client import stream_file

    made = httpx.post(f"{server}/v1/hearings", json={"id": "h-mapped", "channels": {"0": "审判长", "1": "原告代理人"}})
    assert made.status_code == 201, made.text
    result = asyncio.run(stream_file(server.replace("http://", "ws://") + "/v1/stream", ZH / "welcome.wav", speed=0,
                                     hearing_id="h-mapped", channel=1, seat=True))
    assert result.ready["speaker"] == "原告代理人", result.ready
    lines = httpx.get(f"{server}/v1/hearings/h-mapped").json()["utterances"]
    assert lines and all((u["channel"], u["speaker"], u["role"]) == (1, "原告代理人", "plaintiff_agent")
                         for u in lines), lines

    async def unmapped() -> dict:
        async with websockets.connect(server.replace("http://", "ws://") + "/v1/stream") as ws:
            await ws.send(json.dumps({"type": "start", "hearing_id": "h-mapped", "channel": 5, "seat": True}))
            return json.loads(await asyncio.wait_for(ws.recv(), 60))
    refused = asyncio.run(unmapped())
    assert (refused["type"], refused["code"]) == ("error", "no_seat"), refused
