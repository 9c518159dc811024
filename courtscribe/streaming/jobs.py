"""Transcription jobs for long recordings: submit, poll progress, fetch the record when it is done.

A whole-day hearing takes longer than an HTTP request should stay open, so ``POST /v1/jobs``
answers at once with a job id; ``GET /v1/jobs/{id}`` reports the stage and a fraction done.
Jobs run one at a time, behind live streams (their engine work goes through the decode
scheduler's file tier). The queue is bounded: past it, a new job is refused with "busy".
Finished jobs are kept in memory (the last ``keep``) until the record store takes them over.

With several gateway replicas a job runs where it was submitted, and is announced to the others
(``peers.py``): any replica answers its polls and lists it, passes a cancel on to the owner, and
fetches its record from the bus when asked for the result.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Protocol
from dataclasses import dataclass, field
from enum import Enum

from ..logs import get_logger
from ..records.model import Record

log = get_logger(__name__)


class JobStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class JobCancelled(Exception):
    pass


class QueueFull(Exception):
    pass


@dataclass
class Job:
    id: str
    filename: str | None
    audio_s: float
    run: Callable[[Callable[[str, float], None]], Record] | None  # called with a progress callback; None
    # once the job has ended (its closure holds the upload's audio: freed then, not when forgotten)
    status: JobStatus = JobStatus.QUEUED
    stage: str = "queued"
    progress: float = 0.0
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    error: str | None = None
    record: Record | None = None
    cancel_requested: bool = False
    owner: str = "-"  # the token that submitted it: only it (or an admin of its court) sees the job
    court: str | None = None  # the submitter's court

    def view(self) -> dict:
        seconds = ((self.finished_at or dt.datetime.now(dt.timezone.utc)) - self.started_at).total_seconds() \
            if self.started_at else None
        return {"id": self.id, "object": "transcription.job", "status": self.status.value, "stage": self.stage,
                "progress": round(self.progress, 3), "filename": self.filename, "audio_seconds": round(self.audio_s, 2),
                "created_at": self.created_at.isoformat(), "started_at": _iso(self.started_at),
                "finished_at": _iso(self.finished_at), "processing_seconds": round(seconds, 2) if seconds else None,
                "error": self.error, "utterances": len(self.record.utterances) if self.record else None,
                "result_url": f"/v1/jobs/{self.id}/result" if self.status is JobStatus.DONE else None}


def _iso(t: dt.datetime | None) -> str | None:
    return t.isoformat() if t else None


@dataclass
class Mirrored:
    """A job another gateway replica runs, as that replica last announced it."""

    id: str
    owner: str
    snapshot: dict
    court: str | None = None

    @property
    def status(self) -> JobStatus:
        return JobStatus(self.snapshot["status"])

    @property
    def stage(self) -> str:
        return self.snapshot["stage"]

    @property
    def progress(self) -> float:
        return self.snapshot["progress"]

    @property
    def error(self) -> str | None:
        return self.snapshot["error"]

    def view(self) -> dict:
        return self.snapshot


ANNOUNCE_EVERY_S = 0.5  # progress reaches the other replicas at most this often


@dataclass(frozen=True)
class JobNews:
    """A file job's latest state (and its record once done), so any replica answers its polls."""
    job: dict
    owner: str | None = None
    court: str | None = None
    record: dict | None = None


class JobPeers(Protocol):
    """The other gateway replicas, as jobs need them (``peers.Peers``): told of each job here, asked
    for one that runs there, asked to cancel it."""

    def announce(self, news: JobNews) -> None: ...

    async def fetch_job(self, job_id: str) -> dict | None: ...

    def cancel_job(self, job_id: str) -> None: ...


class Jobs:
    def __init__(self, *, queue: int = 16, keep: int = 100, peers: JobPeers | None = None,
                 runs: Callable[..., Awaitable[Record]] | None = None):
        self.queue_limit, self.keep = queue, keep
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._mirrored: OrderedDict[str, Mirrored] = OrderedDict()
        self._pending: asyncio.Queue[Job] = asyncio.Queue()
        self._seq = itertools.count(1)
        self._worker: asyncio.Task | None = None
        self.peers = peers  # a gateway replica among several: the others
        self.runs = runs  # how a job's pipeline runs (the server's file workers); None: a thread of its own

    def _announce(self, job: Job, *, done: bool = False) -> None:
        if self.peers is not None:
            self.peers.announce(JobNews(job.view(), job.owner, job.court,
                                        job.record.model_dump(mode="json") if done and job.record else None))

    def mirror(self, news: JobNews) -> None:
        """Another replica's job changed."""
        view = news.job
        self._mirrored[view["id"]] = Mirrored(view["id"], news.owner or "-", view, news.court)
        self._mirrored.move_to_end(view["id"])
        while len(self._mirrored) > self.keep:
            self._mirrored.popitem(last=False)

    async def record(self, job: Job | Mirrored) -> Record | None:
        """A finished job's record, wherever the job ran."""
        if isinstance(job, Job):
            return job.record
        got = await self.peers.fetch_job(job.id) if self.peers else None
        return Record.model_validate(got["record"]) if got and got.get("record") else None

    def submit(self, run: Callable[[Callable[[str, float], None]], Record], *, filename: str | None,
               audio_s: float, owner: str = "-", court: str | None = None) -> Job:
        if sum(j.status is JobStatus.QUEUED for j in self._jobs.values()) >= self.queue_limit:
            raise QueueFull(f"{self.queue_limit} transcription jobs are already waiting; retry later")
        job = Job(id=f"job-{next(self._seq):05d}-{secrets.token_hex(4)}", filename=filename, audio_s=audio_s, run=run,
                  owner=owner, court=court)
        self._jobs[job.id] = job
        self._announce(job)
        self._pending.put_nowait(job)
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name="transcription-jobs")
        self._forget_old()
        return job

    def get(self, job_id: str) -> Job | Mirrored | None:
        return self._jobs.get(job_id) or self._mirrored.get(job_id)

    async def find(self, job_id: str, *, tries: int = 6, wait_s: float = 0.25) -> Job | Mirrored | None:
        """A job here, or one another replica has just taken: its announcement may still be on its way
        to this replica (a poll right after the upload's 202 reaches the other replica first), so the
        bus is asked directly, a few times, before the job is called unknown."""
        if (job := self.get(job_id)) is not None or self.peers is None:
            return job
        for attempt in range(tries):
            got = await self.peers.fetch_job(job_id)
            if got and "job" in got:  # the bus's form of the news (``peers.wire``)
                self.mirror(JobNews(got["job"], got.get("owner"), got.get("court"), got.get("record")))
                return self.get(job_id)
            if attempt + 1 < tries:
                await asyncio.sleep(wait_s)
        return None

    def all(self) -> list[Job | Mirrored]:
        return list(self._jobs.values()) + [m for m in self._mirrored.values() if m.id not in self._jobs]

    def cancel(self, job_id: str) -> Job | Mirrored | None:
        """Cancel here, or ask the replica running it (its next announcement says cancelled)."""
        job = self.get(job_id)
        if isinstance(job, Mirrored):
            if job.status in (JobStatus.QUEUED, JobStatus.RUNNING) and self.peers is not None:
                self.peers.cancel_job(job_id)
            return job
        if job and job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
            job.cancel_requested = True
            if job.status is JobStatus.QUEUED:
                self._finish(job, JobStatus.CANCELLED)
        return job

    async def close(self) -> None:
        if self._worker:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)

    async def _work(self) -> None:
        while True:
            job = await self._pending.get()
            if job.status is not JobStatus.QUEUED:
                continue
            job.status, job.stage, job.started_at = JobStatus.RUNNING, "starting", dt.datetime.now(dt.timezone.utc)
            self._announce(job)
            started = time.perf_counter()
            said = [started]

            def progress(stage: str, fraction: float, job: Job = job) -> None:
                if job.cancel_requested:
                    raise JobCancelled()
                changed = stage != job.stage
                job.stage, job.progress = stage, min(1.0, fraction)
                if changed or time.perf_counter() - said[0] >= ANNOUNCE_EVERY_S:
                    said[0] = time.perf_counter()
                    self._announce(job)

            run = job.run
            assert run is not None, "a queued job keeps its run until it ends"
            try:
                job.record = await (self.runs(run, progress) if self.runs else asyncio.to_thread(run, progress))
            except JobCancelled:
                self._finish(job, JobStatus.CANCELLED)
            except Exception as err:  # noqa: BLE001 - a failed job is reported, the worker goes on
                job.error = f"{type(err).__name__}: {err}"
                self._finish(job, JobStatus.FAILED)
                log.error("transcription job failed", job=job.id, error=job.error)
            else:
                job.progress = 1.0
                self._finish(job, JobStatus.DONE)
                log.info("transcription job done", job=job.id, audio_s=round(job.audio_s, 1),
                         seconds=round(time.perf_counter() - started, 1))

    def _finish(self, job: Job, status: JobStatus) -> None:
        job.status, job.stage, job.finished_at = status, status.value, dt.datetime.now(dt.timezone.utc)
        job.run = None  # the audio goes with it
        self._announce(job, done=True)

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.status not in (JobStatus.QUEUED, JobStatus.RUNNING)]
        for job in finished[:max(0, len(finished) - self.keep)]:
            del self._jobs[job.id]
