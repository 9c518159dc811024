"""The decode worker's second lane: partials go on beside a final (streaming/scheduler.py).

The real engine, with its finals held at a gate the test opens: what is checked is the order in
which work is served, never how long it took."""
from __future__ import annotations

import asyncio
import threading

import numpy as np

from courtscribe.asr.base import DecodeOptions
from courtscribe.audio import decode
from courtscribe.streaming.scheduler import DecodeScheduler

from conftest import ZH

LIVE = DecodeOptions(language="zh", live=True)


class Gated:
    """The real engine whose finals wait at a gate until the test opens it."""

    def __init__(self, engine, lanes: int):
        self._engine = engine
        self.lanes = lanes
        self.entered = threading.Event()
        self.gate = threading.Event()

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def transcribe_many(self, pieces, options=DecodeOptions()):
        self.entered.set()
        if not self.gate.wait(120):
            raise TimeoutError("the test never opened the gate")
        return self._engine.transcribe_many(pieces, options)


def _clip() -> np.ndarray:
    return decode(ZH / "news_kfc.wav").channel(0)


async def _partial_while_final_held(engine: Gated, sched: DecodeScheduler, *, overloaded: bool = False,
                                    sid: str = "s1"):
    """A final of stream s1 held in the engine, then a partial of stream ``sid`` (s1: its next
    piece): whether the partial came while the final was held, and both results."""
    clip = _clip()
    stream = engine.open_stream(options=LIVE)
    final = asyncio.ensure_future(sched.final([(clip[:48_000], 0)], DecodeOptions(language="zh"), sid="s1"))
    await asyncio.to_thread(engine.entered.wait, 120)
    if overloaded:
        sched.load = lambda: 1.0  # the box is behind: the record first
    partial = sched.partial(sid, lambda: (stream, clip[48_000:80_000]), lambda hyp: hyp)
    assert partial is not None
    expected = engine.lanes > 1 and not overloaded and sid == "s1"  # then wait as long as it takes
    done, _ = await asyncio.wait([partial], timeout=120 if expected else 5)
    beside = partial in done
    engine.gate.set()
    return beside, await final, await partial


def _run(engine: Gated, **kw):
    async def main():
        sched = DecodeScheduler(engine, max_streams=2)
        sched._ensure_started()
        try:
            return *await _partial_while_final_held(engine, sched, **kw), sched.stats["lane_partials"]
        finally:
            engine.gate.set()
            await sched.close()
    return asyncio.run(main())


def test_a_partial_goes_on_beside_a_final_on_the_second_lane(components):
    engine = Gated(components.engine, lanes=2)
    beside, [final], partial, lane = _run(engine)
    assert beside and lane == 1  # the next piece's partial came while the piece before was being finalized
    assert isinstance(final, list)  # both came (what the model wrote is not the question)


def test_one_lane_serves_the_final_first(components):
    engine = Gated(components.engine, lanes=1)
    beside, [final], partial, lane = _run(engine)
    assert not beside and lane == 0  # it waited for the final (and then came)
    assert isinstance(final, list)


def test_an_overloaded_box_keeps_the_second_lane_for_the_record(components):
    engine = Gated(components.engine, lanes=2)
    beside, [final], partial, lane = _run(engine, overloaded=True)
    assert not beside and lane == 0
    assert isinstance(final, list)


def test_another_streams_partial_waits_for_the_final_as_before(components):
    """The lane is for the stream whose own piece is being finalized: partials of every stream
    beside every final would slow the record when several people speak."""
    engine = Gated(components.engine, lanes=2)
    beside, [final], partial, lane = _run(engine, sid="s2")
    assert not beside and lane == 0
    assert isinstance(final, list)


def test_a_hearings_seat_microphones_share_live_slots_and_other_streams_count_one_each():
    """Two slots: one dictation stream and a courtroom's four seat microphones fit (one person speaks
    at a time there); a fifth seat needs a second slot, and so does another hearing's seat; a seat
    that leaves gives its share back."""
    import pytest

    from courtscribe.streaming.protocol import StreamError
    from courtscribe.streaming.scheduler import MAX_SEATS, SEATS_PER_SLOT

    from voices import ScriptEngine

    scheduler = DecodeScheduler(ScriptEngine([]), max_streams=2)
    scheduler.admit()
    seats = [scheduler.admit(seat_of="h1") for _ in range(SEATS_PER_SLOT)]
    assert scheduler.slots == 2 and scheduler.active_streams == 1 + SEATS_PER_SLOT
    for more in ("h1", "h2", None):
        with pytest.raises(StreamError) as refused:
            scheduler.admit(seat_of=more)
        assert refused.value.code == "busy"
    scheduler.release(seats[0])
    scheduler.admit(seat_of="h1")
    assert scheduler.slots == 2
    roomy = DecodeScheduler(ScriptEngine([]), max_streams=100)
    for _ in range(MAX_SEATS):
        roomy.admit(seat_of="h1")
    with pytest.raises(StreamError, match="seat microphones"):  # one hearing's seats are bounded, slots or not
        roomy.admit(seat_of="h1")
