"""Live streams' online state on an engine replica, for engines whose online pass has a cache
(FunASR's streaming Paraformer): a stream's chunks must reach the replica that holds its cache,
and the replica advances all the streams that are due — from every gateway — in one engine call.

The gateway keeps the utterance's audio (its final decodes all of it anywhere). Each request says
how many samples the stream had sent before it (``at``); a replica that does not hold the stream
at that point (it restarted, or Serve routed the stream elsewhere after a replica was lost) answers
:data:`LOST`, and the gateway sends the utterance so far again from sample 0. So a lost replica
costs a re-decode of one utterance's audio, never a partial out of step with its audio.

Plain Python: the Serve deployment (``deployments.OnlineASR``) wraps it, tests drive it directly.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from ..asr.base import DecodeOptions, Engine, EngineStream, Hypothesis

LOST = "lost"  # this replica does not hold the stream at the point the request continues from


@dataclass
class Request:
    key: str  # the stream's utterance, named by the gateway
    audio: np.ndarray
    at: int  # samples the stream had sent before this audio
    offset_ms: int
    options: DecodeOptions


@dataclass
class _Held:
    stream: EngineStream
    fed: int = 0


class OnlineStreams:
    """The streams one replica holds, the least recently fed dropped past ``capacity`` (a gateway
    that vanished never says goodbye; a dropped stream that comes back is answered :data:`LOST`)."""

    def __init__(self, engine: Engine, capacity: int = 4096):
        self.engine, self.capacity = engine, capacity
        self.held: OrderedDict[str, _Held] = OrderedDict()

    def advance(self, requests: list[Request]) -> list[Hypothesis | None | str]:
        """Every request's audio into its stream, all of them through the engine in one call."""
        out: list[Hypothesis | None | str] = [None] * len(requests)
        work, index = [], []
        for i, r in enumerate(requests):
            held = self.held.get(r.key)
            if r.at == 0:  # a stream's start, or the gateway re-sending it all
                held = self.held[r.key] = _Held(self.engine.open_stream(offset_ms=r.offset_ms, options=r.options))
            elif held is None or held.fed != r.at:
                self.held.pop(r.key, None)
                out[i] = LOST
                continue
            self.held.move_to_end(r.key)
            held.fed += r.audio.size
            work.append((held.stream, r.audio))
            index.append(i)
        if work:
            for i, hyp in zip(index, self.engine.accept_many(work)):
                out[i] = hyp
        while len(self.held) > self.capacity:
            self.held.popitem(last=False)
        return out

    def close(self, key: str) -> None:
        self.held.pop(key, None)
