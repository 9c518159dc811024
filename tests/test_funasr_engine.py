"""The production FunASR engine, run for real on random-weight models of FunASR's own classes.

The models are shape-true in structure (streaming Paraformer with SANM chunk encoder, SeACo-
Paraformer with CIF-v3 timestamps and the bias decoder, CT-Transformer), tiny in size, written by
``courtscribe.models.random_init`` and loaded through the production loader (``load_engine`` with
``COURTSCRIBE_MODEL_DIR``). Their text is noise, so these tests check plumbing and invariants —
cache continuity, batching equivalence, time mapping, hotword handling, concurrency — never accuracy.
"""
from __future__ import annotations

import asyncio
import json
import threading
import time

import numpy as np
import pytest
import websockets

from courtscribe.asr.base import DecodeOptions
from courtscribe.audio import decode, float_to_pcm16
from courtscribe.config import Settings
from courtscribe.models import ModelError, default_registry
from courtscribe.components import load_engine

from conftest import ZH


@pytest.fixture(scope="module")
def model_dir(funasr_models):
    return funasr_models


@pytest.fixture(scope="module")
def engine(funasr_engine):
    return funasr_engine


@pytest.fixture(scope="module")
def clip():
    return decode(ZH / "market_25s.wav").channel(0)


def pieces_of(clip):
    return [(clip[:48_000], 1_000), (clip[48_000:160_000], 5_000), (clip[160_000:200_000], 12_000),
            (clip[200_000:], 20_000)]


def texts(hyps):
    return ["".join(h.text for h in group) for group in hyps]


def test_loads_through_the_production_path(engine):
    assert engine.name == "funasr"
    assert engine.model_name == "paraformer-zh+paraformer-zh-streaming+ct-punc"
    assert type(engine.online.auto.model).__name__ == "ParaformerStreaming"
    assert type(engine.offline.auto.model).__name__ == "SeacoParaformer"
    assert type(engine.punctuator.model.auto.model).__name__ == "CTTransformer"


def test_a_missing_model_is_a_clear_startup_error(tmp_path):
    settings = Settings(engine="funasr", model_dir=tmp_path, model_cache_dir=tmp_path / "cache")
    with pytest.raises(ModelError) as err:
        load_engine(settings, default_registry(settings))
    msg = str(err.value)
    assert "paraformer-zh-streaming" in msg and "iic/speech_paraformer-large" in msg and str(tmp_path) in msg


@pytest.fixture
def one_batch(engine):
    """Every piece in one forward call, however different their lengths (the worst case for padding)."""
    engine.max_padding = 100.0
    yield engine
    engine.max_padding, engine.max_batch = 0.25, 16


def test_batched_offline_pass_equals_one_at_a_time(one_batch, clip):
    engine = one_batch
    pieces = pieces_of(clip)
    for options in (DecodeOptions(), DecodeOptions(hotwords=("张三", "借款合同"))):
        batched = engine.transcribe_many(pieces, options)
        single = [engine.transcribe(a, offset_ms=off, options=options) for a, off in pieces]
        assert texts(batched) == texts(single)
        assert all(texts(batched)), "random weights still emit tokens for every piece"
        stamps = [[(t.start_ms, t.end_ms) for h in g for t in h.tokens] for g in batched]
        assert stamps == [[(t.start_ms, t.end_ms) for h in g for t in h.tokens] for g in single]


def test_batches_are_cut_at_max_batch_and_by_padding(one_batch, clip):
    from courtscribe.asr.funasr_engine import pack

    engine, pieces = one_batch, pieces_of(clip)
    whole = engine.transcribe_many(pieces)
    engine.max_batch = 3
    assert texts(engine.transcribe_many(pieces)) == texts(whole)
    engine.max_padding, engine.max_batch = 0.25, 16
    assert texts(engine.transcribe_many(pieces)) == texts(whole)
    # shortest first; a 2 s piece never waits in a batch padded to 20 s
    assert pack([32_000, 320_000, 33_000, 31_000, 330_000], 16, 0.25) == [[3, 0, 2], [1, 4]]
    assert pack([16_000] * 5, 2, 0.25) == [[0, 1], [2, 3], [4]]


def test_timestamps_are_absolute_hearing_time(engine, clip):
    for (audio, offset), hyps in zip(pieces_of(clip), engine.transcribe_many(pieces_of(clip))):
        tokens = [t for h in hyps for t in h.tokens]
        assert tokens
        assert offset <= tokens[0].start_ms
        assert tokens[-1].end_ms <= offset + audio.size * 1000 // 16_000 + 100
        assert all(a.start_ms <= b.start_ms for a, b in zip(tokens, tokens[1:]))
        assert all(h.start_ms == h.tokens[0].start_ms and h.end_ms == h.tokens[-1].end_ms for h in hyps)


def test_punctuation_splits_sentences(engine, clip):
    hyps = engine.transcribe(clip[:160_000], offset_ms=0)
    assert len(hyps) > 1
    assert all(h.text[-1] in "。？！" for h in hyps[:-1])


def test_too_short_or_silent_pieces_decode_to_nothing(engine, clip):
    out = engine.transcribe_many([(clip[:800], 0), (np.zeros(0, np.float32), 0), (clip[:48_000], 0)])
    assert out[0] == [] and out[1] == [] and out[2]


def test_hotwords_reach_seaco_as_tokens_and_unsafe_ones_never_do(engine, clip):
    """SeACo reads a hotword ending in .txt as a file and one starting with http as a URL."""
    engine.transcribe(clip[:32_000], options=DecodeOptions(hotwords=("张三", "http://example.com/x", "/etc/a.txt")))
    tokenizer = engine.offline.auto.kwargs["tokenizer"]
    assert engine.offline.auto.model.hotword_list == [tokenizer.tokens2ids(["张", "三"]), [engine.offline.auto.model.sos]]


def stream_text(engine, clip, frame: int, reset_every_chunk: bool = False, options=DecodeOptions()) -> str:
    s = engine.open_stream(offset_ms=0, options=options)
    last = None
    for i in range(0, 96_000, frame):
        if reset_every_chunk:
            s.cache = {}
        hyp = s.accept(clip[i:i + frame])
        last = hyp or last
    return last.text if last else ""


def test_streaming_cache_carries_across_chunks(engine, clip):
    """Partials do not depend on how the client cut its frames (the stream re-chunks to 600 ms),
    and they do depend on the cache: decoding each chunk without it gives other text."""
    a = stream_text(engine, clip, 1_600)
    assert a and a == stream_text(engine, clip, 9_600) == stream_text(engine, clip, 4_000)
    assert stream_text(engine, clip, 9_600, reset_every_chunk=True) != a


def test_streams_advanced_together_partial_as_each_alone(engine, clip, monkeypatch):
    """``accept_many`` (what the decode worker calls) puts the chunks due of several streams through
    one forward pass each round; fed 50 ms at a time together, 100–250 ms frames alone."""
    sources = [clip, clip[48_000:], clip[::-1].copy()]
    frames = [1_600, 3_200, 4_000]
    want = [stream_text(engine, audio, frame) for audio, frame in zip(sources, frames)]
    batches: list[int] = []
    step = engine.online_step
    monkeypatch.setattr(engine, "online_step", lambda streams: (batches.append(len(streams)), step(streams)))
    streams = [engine.open_stream() for _ in sources]
    got = [""] * len(sources)
    for i in range(0, 96_000, 800):
        work = [(s, a[i:i + 800]) for s, a in zip(streams, sources)]
        for k, hyp in enumerate(engine.accept_many(work)):
            got[k] = hyp.text if hyp else got[k]
    assert got == want and all(want)
    assert max(batches) == len(sources)


def test_stream_partials_then_final_in_absolute_time(engine, clip):
    s = engine.open_stream(offset_ms=7_000)
    partials = [h for i in range(0, 64_000, 3_200) if (h := s.accept(clip[i:i + 3_200]))]
    assert len(partials) >= 5 and all(not p.is_final for p in partials)
    # one partial per whole 600 ms chunk: the last of 4 s of audio covers 3.6 s
    assert all(p.start_ms == 7_000 for p in partials) and partials[-1].end_ms == 7_000 + 3_600
    assert all(b.text.startswith(a.text[:len(a.text) - 2]) for a, b in zip(partials, partials[1:]))
    finals = s.finalize()
    assert finals and texts([finals]) == texts([engine.transcribe(clip[:64_000], offset_ms=7_000)])
    assert s.cache == {} and s.offset_ms == 11_000  # ready for the next utterance


def test_concurrent_streams_and_finals_match_sequential(engine, clip):
    pieces = pieces_of(clip)
    want_final = texts(engine.transcribe_many(pieces))
    want_partial = stream_text(engine, clip, 3_200)
    got: dict[str, object] = {}

    def partial(i):
        got[f"p{i}"] = stream_text(engine, clip, 3_200)

    def final(i):
        got[f"f{i}"] = texts(engine.transcribe_many(pieces))

    threads = [threading.Thread(target=fn, args=(i,)) for i in range(3) for fn in (partial, final)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert all(got[f"p{i}"] == want_partial and got[f"f{i}"] == want_final for i in range(3))


def test_the_decode_worker_waits_for_finals_to_batch(engine, clip):
    """With a wait window, finals of streams that end a few ms apart decode in one engine call."""
    from courtscribe.streaming.scheduler import DecodeScheduler

    async def run(wait_ms):
        scheduler = DecodeScheduler(engine, final_wait_ms=wait_ms)
        first = asyncio.ensure_future(scheduler.final([(clip[:48_000], 0)], DecodeOptions()))
        await asyncio.sleep(0.005)
        second = await scheduler.final([(clip[48_000:96_000], 3_000)], DecodeOptions())
        await first
        await scheduler.close()
        return scheduler.stats["final_batches"], second

    batches, second = asyncio.run(run(100))
    assert batches == 1 and second[0]
    assert asyncio.run(run(0))[0] == 2


def queue_partials(scheduler, streams, audio, order):
    """Each stream's partial queued with the scheduler as a live session does (take, then finish)."""
    futures = []
    for k, stream in enumerate(streams):
        def finish(hyp, k=k):
            order.append(f"partial{k}")
            return hyp
        futures.append(scheduler.partial(f"s{k}", lambda stream=stream, k=k: (stream, audio[k]), finish))
    return futures


def test_the_decode_worker_advances_every_due_stream_in_one_engine_call(engine, clip, monkeypatch):
    from courtscribe.streaming.scheduler import DecodeScheduler

    audio = [clip[:19_200], clip[19_200:38_400], clip[38_400:57_600]]
    want = [engine.open_stream().accept(a).text for a in audio]
    calls: list[int] = []
    accept = engine.accept_many
    monkeypatch.setattr(engine, "accept_many", lambda work: (calls.append(len(work)), accept(work))[1])

    async def run():
        scheduler = DecodeScheduler(engine)
        hyps = await asyncio.gather(*queue_partials(scheduler, [engine.open_stream() for _ in audio], audio, []))
        await scheduler.close()
        return hyps, scheduler.stats

    hyps, stats = asyncio.run(run())
    assert [h.text for h in hyps] == want
    assert calls == [3] and stats["partials"] == 3 and stats["partial_batches"] == 1


@pytest.mark.parametrize("deadline_ms, busy_s, first", [(10_000, 0, "final"), (20, 0, "partial0"), (20, 5, "final")])
def test_a_partial_past_its_deadline_goes_before_queued_finals(engine, clip, monkeypatch, deadline_ms, busy_s, first):
    """Finals go first while partials are on time; a partial that waited past its deadline gets one
    round before the finals (it is delayed, never dropped, and counted late) — unless the worker has
    been busy all along (the box is behind): then the record comes first."""
    from courtscribe.streaming.scheduler import DecodeScheduler

    order: list[str] = []
    transcribe = engine.transcribe_many
    monkeypatch.setattr(engine, "transcribe_many", lambda *a, **k: (order.append("final"), transcribe(*a, **k))[1])

    async def run():
        scheduler = DecodeScheduler(engine, partial_deadline_ms=deadline_ms)
        if busy_s:
            scheduler._worked(time.monotonic() - busy_s)  # as if it had decoded for the last 5 s
        final = asyncio.ensure_future(scheduler.final([(clip[:32_000], 0)], DecodeOptions()))  # queues first
        [partial] = queue_partials(scheduler, [engine.open_stream()], [clip[:19_200]], order)
        time.sleep(0.05)  # the partial waits: the event loop, and so the worker, is held
        await asyncio.gather(partial, final)
        await scheduler.close()
        return scheduler.stats

    stats = asyncio.run(run())
    assert order[0] == first and sorted(order) == ["final", "partial0"]
    assert stats["partials_late"] == (1 if deadline_ms < 50 else 0)


def test_fp16_needs_cuda(model_dir):
    from courtscribe.asr.funasr_engine import FunasrEngine

    with pytest.raises(ValueError, match="CUDA"):
        FunasrEngine(model_dir / "paraformer-zh-streaming", model_dir / "paraformer-zh", fp16=True)


# -- through the real server (conftest.py ``funasr_server``) ------------------------------------
async def _send_clip(ws, clip, seconds: float, frame_ms: int = 100, speed: float = 2.5):
    """At ``speed`` × real time: much faster and a loaded CI machine decodes only finals (partials of
    a stream that is behind are skipped by design), so the online pass would go unseen."""
    n = 16 * frame_ms
    for i in range(0, int(seconds * 16_000), n):
        await ws.send(float_to_pcm16(clip[i:i + n]))
        await asyncio.sleep(frame_ms / 1000 / speed)


def test_2pass_over_the_funasr_protocol(funasr_server, clip):
    """A FunASR client in 2pass mode sees 2pass-online increments, then the 2pass-offline line;
    a string hotword weight is refused out loud (FunASR's server drops it silently)."""
    async def run():
        msgs = []
        async with websockets.connect(funasr_server.replace("http", "ws") + "/") as ws:
            await ws.send(json.dumps({"mode": "2pass", "chunk_size": [5, 10, 5], "wav_name": "t", "is_speaking": True,
                                      "hotwords": json.dumps({"张三": 20, "李四": "20"}), "audio_fs": 16000}))
            await _send_clip(ws, clip, 12)
            await ws.send(json.dumps({"is_speaking": False, "is_end": True}))
            while not msgs or not msgs[-1].get("is_end"):  # until the end-of-input acknowledgement
                msgs.append(json.loads(await asyncio.wait_for(ws.recv(), 60)))
        return msgs[:-1]

    msgs = asyncio.run(run())
    assert "李四" in msgs[0]["warning"] and "numbers" in msgs[0]["warning"]
    modes = [m["mode"] for m in msgs[1:]]
    assert "2pass-online" in modes and "2pass-offline" in modes
    assert modes.index("2pass-online") < modes.index("2pass-offline")
    offline = [m for m in msgs if m["mode"] == "2pass-offline" and m["text"]]
    assert offline and all(json.loads(m["timestamp"]) for m in offline)


def test_a_stream_joining_a_hearing_gets_its_vocabulary(engine, tmp_path):
    """Session words first, then the hearing's hotwords, parties, participants' names, 案由, case number, lexicon."""
    from courtscribe.asr.vad import FsmnVad
    from courtscribe.records.model import Role
    from courtscribe.records.store import RecordStore
    from courtscribe.streaming.hub import Hub
    from courtscribe.streaming.live import LiveHearings
    from courtscribe.streaming.scheduler import DecodeScheduler
    from courtscribe.streaming.session import SessionConfig

    settings = Settings(data_dir=tmp_path)
    store = RecordStore(f"sqlite:///{tmp_path / 'r.db'}")
    store.create_hearing(actor="书记员", hearing_id="h1", case_number="(2026)京0105民初1号", cause="民间借贷纠纷",
                         parties=["张三", "李四"], hotwords=["借款合同"])
    store.add_participant("h1", actor="书记员", role=Role("审判长"), name="王五")
    vad = FsmnVad(default_registry(settings).resolve("fsmn-vad-embedded"))

    async def run():
        live = LiveHearings(engine, vad, DecodeScheduler(engine), Hub(), records=store, lexicon=("民法典", "张三"))
        cfg = SessionConfig(hearing_id="h1", options=DecodeOptions(hotwords=("赵六", "http://x")))
        session = await live.join(cfg, lambda event: asyncio.sleep(0))
        await live.leave(session)
        await live.scheduler.close()
        return session.options.hotwords

    assert asyncio.run(run()) == ("赵六", "借款合同", "张三", "李四", "王五", "民间借贷纠纷", "2026京0105民初1号", "民法典")
