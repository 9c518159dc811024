"""The composition root: what a running server holds, built once at start-up and closed at shutdown.

Engines load once; the live pipeline (scheduler, hub, sessions: streaming/), the record store, the
audio archive and the file workers are made here and nowhere else. CPU-bound work runs off the
event loop: live decodes in the shared DecodeScheduler, file pipelines in a bounded worker pool;
when either is full a client gets "busy" at once instead of everyone slowing down.
"""
from __future__ import annotations

import asyncio
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from .. import metrics
from ..access.guard import Access
from ..asr import finals
from ..asr.base import DecodeOptions
from ..asr.hotwords import load_lexicon
from ..asr.vad import Vad
from ..config import Settings
from ..db import serving
from ..logs import get_logger
from ..records import archive, recovery
from ..records.model import Pipeline
from ..records.spool import Spool
from ..records.store import RecordStore
from ..seal import load_key
from ..streaming.events import StoreRecovered
from ..streaming.hub import Hub
from ..streaming.jobs import Jobs
from ..streaming.live import LiveHearings
from ..streaming.peers import PeerLink, Peers, Transport
from ..streaming.protocol import ErrorCode, error_event
from ..streaming.scheduler import DecodeScheduler
from ..components import Components, load_components, load_stream_vad
from .files import FileWork

log = get_logger(__name__)
SPOOL_RETRY_S = 1.0


@dataclass
class Services:
    """What the running server holds (routes reach it through deps.py)."""

    settings: Settings
    components: Components
    records: RecordStore
    live: LiveHearings
    jobs: Jobs
    files: FileWork
    archive: Path
    link: PeerLink | None = None  # one gateway replica of several: the way to and from the others
    serving_lock: IO[str] | None = None  # db.serving: held while this process serves the data folder


async def start(settings: Settings, access: Access, components: Components | None = None,
                records: RecordStore | None = None, transport: Transport | None = None) -> Services:
    """Load (or take) the engines and open the record store; the server answers once this returns.
    ``transport``: the bus to the other gateway replicas (``cluster/``): the live hearings' events and
    the jobs' news go out through it, and the others' come in (``Services.link`` runs both ways)."""
    _private(settings.data_dir)
    serving_lock = serving(settings.data_dir)  # released when the process ends (its fd with it)
    if settings.decode_workers > 1:  # remote decodes wait in threads: room for all of them and the VAD's
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(2 * settings.decode_workers + 8))
    comp = components if components is not None else await asyncio.to_thread(load_components, settings)
    # LiveHearings streams use the streaming FSMN-VAD whatever VAD files use (in a cluster: its VAD deployment);
    # it loads (mostly imports) while the engine's first decode runs in C++ and the word lists warm.
    vad_loading = asyncio.create_task(_stream_vad(settings, comp))
    warming = asyncio.get_running_loop().run_in_executor(None, finals.warm)
    # The engine's first call (a cluster's: the first round trip to its replicas) before the first
    # hearing's: a greedy preview of 1 s of silence (a full decode of silence bought nothing more)
    await asyncio.to_thread(comp.engine.preview_many, [(np.zeros(16000, np.float32), 0)], DecodeOptions(live=True))
    vad = await vad_loading
    scheduler = DecodeScheduler(comp.engine, max_streams=settings.max_streams, final_batch=settings.final_batch,
                                final_wait_ms=settings.final_wait_ms, workers=settings.decode_workers,
                                partial_deadline_ms=settings.partial_deadline_ms, partial_batch=settings.partial_batch)
    store = records if records is not None else await asyncio.to_thread(RecordStore, settings.records_url,
                                                                               load_key(settings))
    access.attach(store)
    if ".cache" in settings.data_dir.parts:  # tools and admins clear caches: court data must not live there
        log.warning("court data is in a cache directory; move it (README: Where court data lives)",
                    data_dir=str(settings.data_dir))
    audio_dir = settings.data_dir / "archive"
    finished = await asyncio.to_thread(archive.recover, audio_dir)  # segments a crash left open
    spool = Spool(settings.spool_dir, store)
    if finished:
        log.warning("finished audio segments left open by a crash", segments=len(finished))
        await _flag_unheard(store, audio_dir, finished, spool)
    metrics.watch_store(store.reachable, lambda: spool.pending, lambda: shutil.disk_usage(settings.data_dir).free)
    peers = Peers(transport) if transport is not None else None
    hub = Hub(relay=peers.event if peers else None)  # a gateway among several: events go to the others too
    voices, turns = await asyncio.to_thread(comp.live_speaker_models)  # the live streams' own
    # seats by their channel's role; one mixed microphone by the live speaker models
    pipeline = Pipeline(engine=comp.engine.name, model=comp.engine.model_name, vad=vad.name,
                        diarizer="+".join(["channel", f"online-{voices.name}", turns.name]))
    live = LiveHearings(comp.engine, vad, scheduler, hub, idle_timeout_s=settings.idle_timeout_s, records=store,
                pipeline=pipeline, archive=audio_dir, lexicon=load_lexicon(settings.lexicon_file),
                languages=tuple(settings.languages), max_segment_ms=int(settings.segment_s * 1000),
                max_audio_s=settings.max_audio_s,
                speaker_encoder=voices, segmenter=turns,
                spool=spool, peers=peers, front_ends=settings.front_ends)
    files = FileWork(comp, live, settings)
    jobs = Jobs(peers=peers, runs=files.run_job)  # in a file-work thread of its own
    link = PeerLink(peers, live, jobs) if peers is not None else None
    await warming
    return Services(settings, comp, store, live, jobs, files, audio_dir, link, serving_lock)


def _private(data_dir: Path) -> None:
    """Court data is the court's: the data folder is the server account's alone (another local
    account could read every record and recording in a folder left 0755)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    found = data_dir.stat()
    mode = found.st_mode & 0o777
    if mode & 0o077 and found.st_uid == os.getuid():
        data_dir.chmod(mode & 0o700)
        log.warning("data folder was open to other accounts: now the server's alone", data_dir=str(data_dir),
                    was=oct(mode))


async def _flag_unheard(store: RecordStore, audio_dir: Path, finished: list[Path], spool: Spool) -> None:
    """What the server stopped on mid-utterance becomes a flagged line to replay (records/recovery.py);
    with the store away at start-up, court IT reads the log and the audio stays in the archive."""
    try:
        await asyncio.to_thread(recovery.unheard, store, audio_dir, finished, spool.waiting())
    except Exception as err:  # noqa: BLE001 - the server starts all the same
        log.error("audio left by a crash not checked against the record", error=type(err).__name__,
                  segments=[str(p.relative_to(audio_dir)) for p in finished])


async def _stream_vad(settings: Settings, comp: Components) -> Vad:
    if comp.stream_vad is not None:
        return comp.stream_vad
    return await asyncio.to_thread(load_stream_vad, settings, comp.registry)


async def stop(services: Services) -> None:
    await services.jobs.close()
    await services.live.scheduler.close()
    services.records.close()
    if services.serving_lock is not None:
        services.serving_lock.close()


async def flush_spool(live: LiveHearings) -> None:
    """Finals that waited on disk (database away, or a crash during an outage) reach the store as
    soon as it is back; the hearing's screens are told."""
    loop, spool = asyncio.get_running_loop(), live.spool
    if spool is None:  # a server built without one (tests that give their own store)
        return
    spool.on_flushed = lambda hid, n: loop.call_soon_threadsafe(
        live.publish, hid, StoreRecovered(hearing_id=hid, utterances=n, lines=n))

    def refused(hid: str, uid: str | None, why: str) -> None:  # a line outside the record is never silent
        said = (f"a line kept on disk while the record store was away was refused by it ({why}): it is not in "
                "the record; court IT finds it in the spool's rejected.jsonl")
        event = (error_event(ErrorCode.STORE, said, hearing_id=hid, utterance_id=uid) if uid
                 else error_event(ErrorCode.STORE, said, hearing_id=hid))
        loop.call_soon_threadsafe(live.publish, hid, event)
    spool.on_refused = refused
    while True:
        if spool.pending:
            try:
                await asyncio.to_thread(spool.flush)
            except Exception as err:  # noqa: BLE001 - keep trying; the lines are safe on disk
                log.error("spool flush failed", error=repr(err))
        await asyncio.sleep(SPOOL_RETRY_S)
