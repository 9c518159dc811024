"""Online state on engine replicas (cluster/online.py) and the gateway's side of it
(``RemoteEngine`` with a stateful online pass), without Ray: Serve's handle is replaced by a
loopback that calls the replica's object in this process (the transport, as in test_peers.py);
the engine is the real FunASR engine on tiny random-weight models."""
from __future__ import annotations

import pytest

from courtscribe.asr.base import DecodeOptions
from courtscribe.audio import decode
from courtscribe.cluster.online import LOST, OnlineStreams, Request
from courtscribe.cluster.remote import RemoteEngine

from conftest import ZH


class _Reply:
    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


class _Method:
    def __init__(self, fn):
        self.fn = fn

    def remote(self, *args):
        return _Reply(self.fn(*args))


class Loopback:
    """What the gateway uses of a Serve handle: ``.options(multiplexed_model_id=…)`` and
    ``.method.remote(*args).result()``; every stream goes to ``replica``."""

    def __init__(self, replica: OnlineStreams | None = None, engine=None):
        self.replica, self.engine, self.calls = replica, engine, []

    def options(self, **_):
        return self

    def __getattr__(self, name):
        if name == "advance":
            def advance(key, audio, at, offset_ms, options):
                self.calls.append(at)
                return self.replica.advance([Request(key, audio, at, offset_ms, options)])[0]
            return _Method(advance)
        if name == "close":
            return _Method(self.replica.close)
        if name == "transcribe":
            return _Method(self.engine.transcribe_many)
        raise AttributeError(name)


@pytest.fixture(scope="module")
def clip():
    return decode(ZH / "market_25s.wav").channel(0)


def partials(stream, audio, frame=3_200, shown=None):
    """The partial texts a screen would show (a repeat of the last one changes nothing)."""
    shown = [] if shown is None else shown
    for i in range(0, audio.size, frame):
        if (hyp := stream.accept(audio[i:i + frame])) and (not shown or hyp.text != shown[-1]):
            shown.append(hyp.text)
    return shown


def test_a_replica_advances_many_streams_in_one_call_as_each_alone(funasr_engine, clip):
    sources = [clip[:48_000], clip[48_000:96_000], clip[96_000:144_000]]
    want = [funasr_engine.open_stream().accept(a).text for a in sources]
    replica = OnlineStreams(funasr_engine)
    got = replica.advance([Request(f"u{k}", a, 0, 0, DecodeOptions()) for k, a in enumerate(sources)])
    assert [h.text for h in got] == want and len(replica.held) == 3
    replica.close("u1")
    assert set(replica.held) == {"u0", "u2"}


def test_a_stream_the_replica_does_not_hold_is_answered_lost(funasr_engine, clip):
    replica = OnlineStreams(funasr_engine, capacity=2)
    assert replica.advance([Request("gone", clip[:9_600], 9_600, 0, DecodeOptions())]) == [LOST]
    replica.advance([Request(k, clip[:9_600], 0, 0, DecodeOptions()) for k in ("a", "b", "c")])
    assert list(replica.held) == ["b", "c"]  # the least recently fed went past capacity
    # out of step (a request lost on the way): LOST, and the state is dropped, not guessed at
    assert replica.advance([Request("b", clip[9_600:19_200], 4_800, 0, DecodeOptions())]) == [LOST]
    assert "b" not in replica.held


def test_the_gateway_resends_the_utterance_to_a_replica_that_lost_it(funasr_engine, clip):
    """Partials through the remote stream equal the in-process stream's; when the replica loses the
    stream mid-utterance (restart, rerouting) the gateway sends the utterance so far again and the
    partials go on as if nothing happened; the final is the offline pass of all of it."""
    audio = clip[:96_000]
    want = partials(funasr_engine.open_stream(offset_ms=2_000), audio)
    replica = OnlineStreams(funasr_engine)
    handle = Loopback(replica, funasr_engine)
    remote = RemoteEngine(handle, handle, name="funasr", model_name="m", stateful_online=True)
    stream = remote.open_stream(offset_ms=2_000)
    got = partials(stream, audio[:48_000])
    replica.held.clear()  # the replica restarted
    partials(stream, audio[48_000:], shown=got)
    assert got == want and want
    assert 0 in handle.calls[1:]  # the re-send, from sample 0
    finals = stream.finalize()
    assert [h.text for h in finals] == [h.text for h in funasr_engine.transcribe(audio, offset_ms=2_000)]
    assert not replica.held and stream.offset_ms == 2_000 + 6_000  # closed there; ready for the next utterance
