"""Faults a hearing must survive: an engine call that fails (one stream hears of it, the others do
not notice), the record store away for 5 s (finals wait on disk, then arrive in order), and a full
disk (recording stops loudly, nothing already written is damaged). kill -9: tests/test_crash.py."""
import asyncio
import json
import subprocess
import time

import httpx
import numpy as np
import pytest
import websockets

from courtscribe.asr.base import DecodeOptions
from courtscribe.audio import decode, float_to_pcm16
from courtscribe.clients.stream_client import stream
from courtscribe.records import archive
from courtscribe.streaming.scheduler import DecodeScheduler

from conftest import ZH, start_server

POISON = "__fail_once__"  # a hotword that makes the wrapped engine fail its first final


class Flaky:
    """The real engine, with one injected failure: the first final decoded with the POISON hotword raises
    (and, for the scheduler test, any call containing a piece of exactly ``bad_len`` samples)."""

    def __init__(self, engine, bad_len: int = -1):
        self._engine, self.bad_len, self.calls, self.failed = engine, bad_len, [], 0

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def transcribe_many(self, pieces, options=DecodeOptions()):
        self.calls.append(len(pieces))
        if any(a.size == self.bad_len for a, _ in pieces) or (POISON in options.hotwords and not self.failed):
            self.failed += 1
            raise RuntimeError("CUDA error: an illegal memory access was encountered (injected)")
        return self._engine.transcribe_many(pieces, options)


def test_a_failed_batch_is_retried_piece_by_piece(components):
    clip = decode(ZH / "news_kfc.wav").channel(0)
    engine = Flaky(components.engine, bad_len=12345)

    async def main():
        sched = DecodeScheduler(engine, max_streams=4, final_batch=8)
        try:
            return await asyncio.gather(sched.final([(clip, 0)], DecodeOptions()),
                                        sched.final([(np.zeros(12345, np.float32), 0)], DecodeOptions()),
                                        return_exceptions=True)
        finally:
            await sched.close()

    good, bad = asyncio.run(main())
    assert engine.calls[0] == 2, engine.calls  # they were batched together, the batch failed...
    assert "肯德基" in good[0][0].text  # ...and the good stream's final still came
    assert isinstance(bad, RuntimeError)


async def _watch(url: str, hearing: str, seen: list, stop: asyncio.Event) -> None:
    async with websockets.connect(f"{url}/v1/hearings/{hearing}/events") as ws:
        while not stop.is_set():
            try:
                seen.append(json.loads(await asyncio.wait_for(ws.recv(), 0.5)))
            except asyncio.TimeoutError:
                continue


def test_record_store_outage_of_5_s_loses_no_final(tmp_path, postgres):
    db = postgres.createdb("courtscribe_outage")
    proc, http = start_server(tmp_path, COURTSCRIBE_DATABASE_URL=db)
    ws = http.replace("http://", "ws://")
    silence = np.zeros(16000, np.float32)
    watched, outage = [], {}

    async def clips():
        for name in ("news_kfc", "custody", "welcome", "brexit", "lamp", "news_foxconn", "news_kfc"):
            audio = np.concatenate([decode(ZH / f"{name}.wav").channel(0), silence])
            for i in range(0, audio.size, 3200):
                yield audio[i:i + 3200]

    async def break_the_database(result_events: list):
        while not any(e["type"] == "final" for e in result_events):
            await asyncio.sleep(0.1)
        await asyncio.to_thread(postgres.stop)
        outage["from"] = time.monotonic()
        while not any(e.get("code") == "store_delayed" for e in result_events):
            assert time.monotonic() - outage["from"] < 30, "no final arrived during the outage"
            await asyncio.sleep(0.1)
        await asyncio.sleep(max(0.0, 5 - (time.monotonic() - outage["from"])))
        await asyncio.to_thread(postgres.start)
        outage["s"] = time.monotonic() - outage["from"]

    async def main():
        events, stop = [], asyncio.Event()
        watcher = asyncio.create_task(_watch(ws, "h-outage", watched, stop))
        await asyncio.sleep(0.5)
        breaker = asyncio.create_task(break_the_database(events))
        result = await stream(f"{ws}/v1/stream", clips(), hearing_id="h-outage", speed=2, on_event=events.append)
        await breaker
        deadline = time.monotonic() + 20
        while not any(e["type"] == "store_recovered" for e in watched) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        stop.set()
        await watcher
        return result

    try:
        result = asyncio.run(main())
        assert outage["s"] >= 5
        delayed = [e for e in result.events if e.get("code") == "store_delayed"]
        assert delayed and any(e.get("code") == "store_delayed" for e in watched)  # the clerk was told
        assert sum(e["lines"] for e in watched if e["type"] == "store_recovered") >= len(delayed)
        record = httpx.get(f"{http}/v1/hearings/h-outage", timeout=30).json()
        stored = [(u["id"], u["text"]) for u in record["utterances"]]
        seen = [(f["utterance"]["id"], f["utterance"]["text"]) for f in result.finals if f["utterance"]["text"]]
        assert set(seen) <= set(stored), (stored, seen)  # every final the client saw
        assert httpx.get(f"{http}/v1/hearings/h-outage/verify", timeout=30).json()["ok"] is True
        assert not (tmp_path / "data" / "spool" / "pending.jsonl").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def small_disk(tmp_path):
    """The audio archive on a 256 KiB filesystem (8 s of audio): a real ENOSPC, not a simulated one."""
    mount = tmp_path / "data" / "archive"
    mount.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_stops_recording_loudly_and_keeps_what_was_written(tmp_path, small_disk):
    proc, http = start_server(tmp_path)
    ws = http.replace("http://", "ws://")
    clip = decode(ZH / "justice.wav").channel(0)
    long = np.concatenate([clip, clip])  # 26 s: more than the disk holds

    async def chunks():
        for i in range(0, long.size, 3200):
            yield long[i:i + 3200]

    async def main():
        watched, stop = [], asyncio.Event()
        watcher = asyncio.create_task(_watch(ws, "h-full", watched, stop))
        await asyncio.sleep(0.5)
        result = await stream(f"{ws}/v1/stream", chunks(), hearing_id="h-full", role="审判长", speed=0)
        await asyncio.sleep(0.5)
        stop.set()
        await watcher
        return result, watched

    try:
        result, watched = asyncio.run(main())
        errors = [e for e in result.events if e["type"] == "error"]
        assert errors and errors[-1]["code"] == "disk_full" and errors[-1]["fatal"] is True
        assert "recording of channel 0 stopped" in errors[-1]["message"]
        assert any(e.get("code") == "disk_full" for e in watched)  # the clerk's screen saw it too
        assert result.events[-1]["type"] == "end"
        # what reached the disk is the audio that was sent, sample for sample (±2 LSB: PCM16 → float → PCM16)
        kept_ms = archive.recorded_ms(tmp_path / "data" / "archive", "h-full", 0)
        assert 4000 < kept_ms < 9000
        kept = archive.read(tmp_path / "data" / "archive", "h-full", 0, 0, kept_ms)
        sent = np.frombuffer(float_to_pcm16(long[:kept.size]), np.int16)
        stored = np.frombuffer(float_to_pcm16(kept), np.int16).astype(np.int32)
        assert np.abs(stored - sent.astype(np.int32)).max() <= 2
        assert httpx.get(f"{http}/healthz").status_code == 200  # the server itself carries on
        assert httpx.get(f"{http}/v1/hearings/h-full/verify").json()["ok"] is True
    finally:
        proc.terminate()
        proc.wait(timeout=30)
