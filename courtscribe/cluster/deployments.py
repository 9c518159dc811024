"""Ray Serve deployments: engine replicas that batch across streams, and the gateway.

- ``OfflineASR``: the accurate pass (finals of live utterances, file windows).
- ``OnlineASR``: the online pass. Engines without streaming state (Whisper) preview the utterance
  so far, statelessly; engines with a cache (FunASR) keep each stream on one replica (Serve's model
  multiplexing routes its chunks there, as for the VAD) and advance every due stream, from every
  gateway, in one forward pass (``online.py``).
- ``SpeakerEmbedding``: voice embeddings for mixed-channel diarization and enrollment.
- ``Punctuation``: CT-Transformer for the FunASR engine's finals, batched across the finals
  replicas (its own GPU share and replica count; Whisper writes its own punctuation).
- ``VAD`` (``stream_vad: deployment``): streaming FSMN-VAD for every live source. A source's VAD
  state lives on one replica: Serve's model multiplexing routes all of a stream's chunks there
  (the stream's key is the "model"), so gateways hold no streaming model.
- ``Gateway``: the whole courtscribe app (WebSockets, REST, pages, record store) with the engines
  above behind the same interfaces as in-process. A WebSocket stays on the replica that accepted it,
  so a stream's state (VAD, utterance audio, speaker turns) lives in one gateway; with several
  replicas, a hearing's events and the clerk's changes reach the others through ``Events`` (bus.py).

Each engine deployment gathers calls from every stream of every gateway with ``@serve.batch`` and
decodes them in one engine call; batch size and wait window come from its ``user_config``, so court
IT tunes them in the Serve config file without a restart.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import Future
from itertools import groupby
from typing import Any, Callable

import numpy as np
from ray import serve

from ..asr.base import DecodeOptions, Hypothesis
from ..config import Settings
from ..logs import get_logger

log = get_logger(__name__)
Piece = tuple[np.ndarray, int]


def _settings(overrides: dict | None) -> Settings:
    return Settings(**(overrides or {}))


async def _per_options(options: list[DecodeOptions], run: Callable[[list[int], DecodeOptions], list]) -> list:
    """One engine call per set of equal decode options (language, hotwords decode together), in a
    worker thread; ``run(indices, options)`` returns one result per index."""
    out: list[Any] = [None] * len(options)
    order = sorted(range(len(options)), key=lambda i: repr(options[i]))
    for _, group in groupby(order, key=lambda i: repr(options[i])):
        group = list(group)
        for i, result in zip(group, await asyncio.to_thread(run, group, options[group[0]])):
            out[i] = result
    return out


def _per_request(flat: list, requests: list[list]) -> list[list]:
    """Results of several requests' items decoded in one call, handed back to each request in order
    (each gets as many as it sent)."""
    out, k = [], 0
    for request in requests:
        out.append(flat[k:k + len(request)])
        k += len(request)
    return out


class _Batching:
    """``user_config`` → the batch queue's size and wait window (live-tunable), and batch counts."""

    batched: tuple[str, ...] = ()
    counts: dict[str, int]

    def _counted(self, n: int) -> None:
        self.counts = getattr(self, "counts", {"batches": 0, "requests": 0})
        self.counts["batches"] += 1
        self.counts["requests"] += n

    def batch_stats(self, reset: bool = False) -> dict:
        """Requests and engine batches since the last reset (the bench reports the mean batch)."""
        out = dict(getattr(self, "counts", {"batches": 0, "requests": 0}))
        if reset:
            self.counts = {"batches": 0, "requests": 0}
        return out

    def reconfigure(self, config: dict) -> None:
        for name in self.batched:
            method = getattr(self, name)
            method.set_max_batch_size(int(config.get("max_batch_size", 8)))
            method.set_batch_wait_timeout_s(float(config.get("batch_wait_timeout_s", 0.01)))


def _load_engine(settings: dict | None, punctuator: Any = None):
    from ..models import default_registry
    from ..components import load_engine

    s = _settings(settings)
    engine = load_engine(s, default_registry(s), punctuator)
    engine.transcribe(np.zeros(16_000, np.float32))  # a fresh replica pays its first-call allocations now
    return engine


@serve.deployment(name="OfflineASR", max_ongoing_requests=64)
class OfflineASR(_Batching):
    batched = ("transcribe",)

    async def __init__(self, settings: dict | None = None, punctuation: Any = None):
        from .remote import RemotePunctuator

        # FunASR: its finals' punctuation is the Punctuation deployment's (the engine calls it from
        # its worker thread, where the handle is waited on, not on this replica's event loop)
        punctuator = RemotePunctuator(punctuation) if punctuation is not None else None
        self.engine = await asyncio.to_thread(_load_engine, settings, punctuator)

    def describe(self) -> dict:
        return {"name": self.engine.name, "model": self.engine.model_name, "sample_rate": self.engine.sample_rate}

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def transcribe(self, pieces: list[list[Piece]], options: list[DecodeOptions]) -> list[list[list[Hypothesis]]]:
        self._counted(len(pieces))

        def decode(group: list[int], opts: DecodeOptions) -> list[list[list[Hypothesis]]]:
            decoded = self.engine.transcribe_many([p for i in group for p in pieces[i]], opts)
            return _per_request(decoded, [pieces[i] for i in group])
        return await _per_options(options, decode)


@serve.deployment(name="OnlineASR", max_ongoing_requests=256)
class OnlineASR(_Batching):
    batched = ("preview", "_advance")

    def __init__(self, settings: dict | None = None):
        from .online import OnlineStreams

        self.engine = _load_engine(settings)
        self.streams = OnlineStreams(self.engine)

    def describe(self) -> dict:
        # a cache per stream: streams stay on a replica (advance); else any replica previews
        return {"stateful": self.engine.incremental_partials}

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def preview(self, audio: list[np.ndarray], offset: list[int],
                      options: list[DecodeOptions]) -> list[Hypothesis | None]:
        self._counted(len(audio))
        return await _per_options(options, lambda group, opts: self.engine.preview_many(
            [(audio[i], offset[i]) for i in group], opts))

    @serve.multiplexed(max_num_models_per_replica=4096)
    async def _route(self, key: str) -> str:
        return key  # nothing to load: multiplexing is what keeps a stream's chunks on this replica

    async def advance(self, key: str, audio: np.ndarray, at: int, offset_ms: int, options: DecodeOptions):
        """The next audio of the stream named by the request's multiplexed id; its partial, or LOST."""
        from .online import Request

        await self._route(serve.get_multiplexed_model_id())
        return await self._advance(Request(key, audio, at, offset_ms, options))

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.005)
    async def _advance(self, requests: list) -> list:
        self._counted(len(requests))
        return await asyncio.to_thread(self.streams.advance, requests)

    def close(self, key: str) -> None:
        self.streams.close(key)


@serve.deployment(name="Punctuation", max_ongoing_requests=256)
class Punctuation(_Batching):
    batched = ("marks_many",)

    def __init__(self, settings: dict | None = None):
        from ..models import default_registry
        from ..components import load_punctuator

        s = _settings(settings)
        self.punctuator = load_punctuator(s, default_registry(s))

    def describe(self) -> dict:
        return {"name": self.punctuator.name}

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005)
    async def marks_many(self, texts: list[list[list[str]]]) -> list[list[list[str]]]:
        """Each request is one engine batch's word sequences; all requests' sequences in one call."""
        self._counted(len(texts))
        flat = await asyncio.to_thread(self.punctuator.marks_many, [words for request in texts for words in request])
        return _per_request(flat, texts)


class _Held:
    """One stream's VAD state on this replica, opened by its first chunk."""

    stream: Any = None
    base_ms: int = 0


@serve.deployment(name="VAD", max_ongoing_requests=1024)
class VAD:
    def __init__(self, settings: dict | None = None):
        from ..models import default_registry
        from ..components import load_stream_vad

        s = _settings(settings)
        self.vad = load_stream_vad(s, default_registry(s))
        self.streams = 0

    def describe(self) -> dict:
        return {"name": self.vad.name, "streams": self.streams}

    @serve.multiplexed(max_num_models_per_replica=4096)
    async def _state(self, key: str) -> _Held:
        self.streams += 1
        return _Held()

    async def feed(self, chunk_ms: int, at_ms: int, audio: np.ndarray, final: bool) -> list[tuple[int | None, int | None]]:
        """One chunk of the stream named by the request's multiplexed id; events in stream time. A
        state opened mid-stream (its replica was lost) counts from ``at_ms``."""
        held = await self._state(serve.get_multiplexed_model_id())
        if held.stream is None:
            held.stream, held.base_ms = self.vad.open_stream(chunk_ms), at_ms
        events = await asyncio.to_thread(held.stream.feed, audio, final=final)
        shift = lambda t: None if t is None else t + held.base_ms  # noqa: E731
        return [(shift(e.start_ms), shift(e.end_ms)) for e in events]


@serve.deployment(name="SpeakerEmbedding", max_ongoing_requests=64)
class SpeakerEmbedding:
    def __init__(self, settings: dict | None = None):
        from ..models import default_registry
        from ..components import load_speaker_encoder

        s = _settings(settings)
        self.encoder = load_speaker_encoder(s, default_registry(s))

    def describe(self) -> dict:
        return {"name": self.encoder.name, "dim": self.encoder.dim}

    async def embed_many(self, pieces: list[np.ndarray]) -> np.ndarray:
        return await asyncio.to_thread(self.encoder.embed_many, pieces)


async def _proxy_host() -> str:
    """The host Serve's HTTP proxies bind (the controller's HTTP options)."""
    import ray
    from ray.serve._private.constants import SERVE_CONTROLLER_NAME, SERVE_NAMESPACE

    controller = ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
    return (await controller.get_http_config.remote()).host


def _prepare_gateway() -> None:
    """Import the web app and warm the finals' word lists (``asr/finals.py``): a few seconds of CPU
    that would otherwise come after the engines answer."""
    from ..asr import finals
    from ..server import app  # noqa: F401

    finals.warm()


@serve.deployment(name="Gateway", max_ongoing_requests=4096)
@serve.ingress()
class Gateway:
    """The courtscribe app on a replica; engines are Serve handles (see ``remote.py``)."""

    async def __init__(self, settings: dict | None, offline: Any, online: Any, speaker: Any, vad: Any, events: Any):
        self.settings, self.handles, self.events = settings or {}, (offline, online, speaker, vad), events
        # the app's code and word lists load while the engine replicas start (they take longer)
        preparing = asyncio.create_task(asyncio.to_thread(_prepare_gateway))
        # what the engines serve, asked once (the app is built on the replica's event loop: await here)
        self.info, self.voice, online_info, vad_info = await asyncio.gather(
            offline.describe.remote(), speaker.describe.remote(), online.describe.remote(),
            vad.describe.remote() if vad is not None else asyncio.sleep(0))
        self.stateful_online = online_info["stateful"]
        self.vad_name = vad_info["name"] if vad is not None else None
        self.proxy_host = await _proxy_host()
        await preparing


    def __serve_build_asgi_app__(self):
        from ..models import default_registry
        from ..server.app import create_app
        from ..components import Components, load_vad
        from ..access.quota import Slots
        from .bus import BusLimits, link
        from .remote import RemoteEngine, RemoteSpeakerEncoder, RemoteVad

        offline, online, speaker, vad = self.handles
        # every final is its own request: the engine replica batches across streams *and* gateways
        # the address Serve's proxies really listen on decides what --insecure-no-auth may do, not the settings'
        s = _settings({"decode_workers": 32, **self.settings, "final_batch": 1, "host": self.proxy_host})
        registry = default_registry(s)
        info, voice = self.info, self.voice
        engine = RemoteEngine(offline, online, name=info["name"], model_name=info["model"],
                              sample_rate=info["sample_rate"], stateful_online=self.stateful_online)
        encoder: Future = Future()
        encoder.set_result(RemoteSpeakerEncoder(speaker, name=voice["name"], dim=voice["dim"]))
        # files keep their VAD here (silero by default: ONNX, light); live sources' streaming VAD is
        # the VAD deployment's when the config says so, else loaded here by the app
        comp = Components(engine, load_vad(s, registry), registry, s, _encoder=encoder,
                          stream_vad=RemoteVad(vad, self.vad_name) if vad is not None else None)
        origin = serve.get_replica_context().replica_id.unique_id
        log.info("gateway replica ready", engine=engine.name, model=engine.model_name, speakers=voice["name"],
                 gateway=origin)
        slots = Slots(max_streams=s.max_streams, per_token=s.max_streams_per_token, reserved=s.reserved_streams,
                      per_room=s.max_streams_per_room)
        return create_app(s, components=comp, peers=link(self.events, origin),
                          limits=BusLimits(self.events, origin, slots))
