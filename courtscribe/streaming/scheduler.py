"""One decode worker shared by every live stream.

Engine work is CPU-bound: on a 2-core machine two decodes at once only slow each other, so all
streams share one worker (``workers`` for a GPU). Finals go first and are batched across streams
into one engine call (optionally waiting ``final_wait_ms`` for more to join) — unless the engine's
partials are incremental (``Engine.incremental_partials``: FunASR's streaming pass) and one has
waited past its deadline (``partial_deadline_ms``) while the worker keeps up: then one round of
partials runs first, so a run of finals delays partials without starving them (previews that
re-decode the utterance, Whisper's, keep waiting: the final makes a late one moot). When the worker
has been busy for nearly all of the last few seconds (``OVERLOAD``), the box cannot keep up with
both and the record comes first: finals strictly before partials until it can. Partials are
coalesced per stream (a stream has at most one queued, which takes all the audio that arrived
meanwhile) and served round-robin; an engine that advances many streams in one forward pass
(``Engine.partial_batch``) gets every stream that is due in one call. A partial decoded past its
deadline is counted (``courtscribe_partials_late_total``): its stream's chunks merge into fewer
partials, none of its audio is skipped. File transcriptions
come last, one speech window per turn, and only while no live utterance is open or waiting for its
final (or after ``FILE_STARVE_S``): a file window's decode (seconds for a long Whisper window) is
never started just before a courtroom's line needs the worker. Admission is bounded:
past ``max_streams`` slots a new stream is told "busy" instead of slowing everyone down. A slot is
one stream, or up to ``SEATS_PER_SLOT`` seat microphones of one hearing: one person speaks at a
time there, and a seat's previews wait for its own voice (bench/seat_load.py).

An engine with a second lane (``Engine.lanes``: Whisper's second CTranslate2 replica) serves a
stream's partials beside the worker while it holds that stream's final, so a long utterance's next
piece keeps the screens moving while the piece before it is finalized; only while the box keeps up
(``OVERLOAD``).
"""
from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..asr.base import DecodeOptions, Engine, EngineStream, Hypothesis
from .. import metrics
from ..logs import get_logger
from .protocol import ErrorCode, StreamError

log = get_logger(__name__)
LOAD_WINDOW_S = 5.0
OVERLOAD = 0.9  # share of the window the worker was decoding: beyond it, partials wait for every final
FILE_STARVE_S = 15.0  # a file window waits at most this long for the courtroom to pause
SEATS_PER_SLOT = 4  # a hearing's seat microphones sharing one live slot
MAX_SEATS = 16  # seat microphones one hearing may hold (a role is the source's word: a bound, not a discount)


@dataclass(eq=False)  # a job is itself: comparing fields would compare audio arrays (deque.remove does)
class _Final:
    pieces: list[tuple[np.ndarray, int]]
    options: DecodeOptions
    future: asyncio.Future
    queued: float = field(default_factory=time.monotonic)
    sid: str | None = None  # a live stream's final


@dataclass(eq=False)
class _Partial:
    take: Callable[[], tuple[EngineStream, np.ndarray] | None]  # in the worker: the stream and its new audio
    finish: Callable[[Hypothesis | None], Any]  # in the worker: the engine's partial → the job's result
    future: asyncio.Future
    queued: float  # monotonic time the stream first wanted it


class DecodeScheduler:
    def __init__(self, engine: Engine, *, max_streams: int = 8, final_batch: int = 8, workers: int = 1,
                 final_wait_ms: int = 0, partial_deadline_ms: int = 600, partial_batch: int = 16):
        self.engine, self.max_streams, self.final_batch, self.workers = engine, max_streams, final_batch, workers
        self.final_wait_s = final_wait_ms / 1000
        self.partial_deadline_s = partial_deadline_ms / 1000
        self.partial_batch = max(1, min(partial_batch, getattr(engine, "partial_batch", 1)))
        self.deadlines = getattr(engine, "incremental_partials", False)
        self._finals: deque[_Final] = deque()
        self._files: deque[_Final] = deque()
        self._partials: dict[str, _Partial] = {}
        self._order: deque[str] = deque()
        self._previewing: set[str] = set()  # streams whose partial is running: one at a time per stream
        self._finalizing: Counter[str] = Counter()  # streams with a final queued or decoding
        self._speaking: Counter[str] = Counter()  # streams with an utterance open or its final not yet in
        self._wake = asyncio.Event()
        self._lane_wake = asyncio.Event()
        self.lane = workers == 1 and getattr(engine, "lanes", 1) > 1  # partials beside a final
        self._holding: set[str] = set()  # streams whose final the worker's engine call holds now
        self._streams: set[str] = set()
        self._seats: dict[str, str] = {}  # stream → the hearing whose seat microphone it is
        self._tasks: list[asyncio.Task] = []
        self._ids = itertools.count(1)
        self._busy: deque[tuple[float, float]] = deque()  # (start, end) of recent engine calls
        metrics.DECODE_LOAD.set_function(self.load)
        self.stats = {"finals": 0, "final_batches": 0, "partials": 0, "partial_batches": 0, "partials_skipped": 0,
                      "partials_late": 0, "file_windows": 0, "lane_partials": 0}
        metrics.watch({"finals": lambda: len(self._finals), "partials": lambda: len(self._partials),
                       "files": lambda: len(self._files)}, lambda: len(self._streams))

    # -- admission --------------------------------------------------------------------------
    def admit(self, seat_of: str | None = None) -> str:
        """A new live stream's id; ``seat_of``: the hearing it is a seat microphone of."""
        seats = Counter(self._seats.values())
        alone = len(self._streams) - len(self._seats)
        if seat_of is None:
            alone += 1
        elif seats[seat_of] >= MAX_SEATS:
            raise StreamError(ErrorCode.BUSY, f"hearing {seat_of} holds its limit of {MAX_SEATS} seat microphones",
                              fatal=True)
        else:
            seats[seat_of] += 1
        if _slots(alone, seats) > self.max_streams:
            raise StreamError(ErrorCode.BUSY, f"the server is at its limit of {self.max_streams} live slots (a "
                              f"stream each; a hearing's seat microphones {SEATS_PER_SLOT} to one); retry later",
                              fatal=True)
        sid = f"s{next(self._ids)}"
        self._streams.add(sid)
        if seat_of is not None:
            self._seats[sid] = seat_of
        return sid

    @property
    def slots(self) -> int:
        """Live slots taken now."""
        return _slots(len(self._streams) - len(self._seats), Counter(self._seats.values()))

    def release(self, sid: str) -> None:
        self._streams.discard(sid)
        self._seats.pop(sid, None)
        if self._speaking.pop(sid, None):
            self._poke()
        if sid in self._order:
            self._order.remove(sid)
        job = self._partials.pop(sid, None)
        if job and not job.future.done():
            job.future.set_result(None)

    @property
    def active_streams(self) -> int:
        return len(self._streams)

    def speaking(self, sid: str, on: bool) -> None:
        """A live utterance opened (True) or its final is in (False): file windows wait meanwhile."""
        self._speaking[sid] += 1 if on else -1
        if self._speaking[sid] <= 0:
            del self._speaking[sid]
            self._poke()

    def _file_due(self) -> float | None:
        """0: a file window may run now; else the seconds until it may anyway (None: none waits).
        Only one worker waits for pauses: several (a GPU, a cluster's replicas) have room for both."""
        while self._files and self._files[0].future.done():  # cancelled with its job
            self._files.popleft()
        if not self._files:
            return None
        if not self._speaking or self.workers > 1:
            return 0.0
        return max(0.0, FILE_STARVE_S - (time.monotonic() - self._files[0].queued))

    # -- jobs -------------------------------------------------------------------------------
    async def final(self, pieces: list[tuple[np.ndarray, int]], options: DecodeOptions,
                    sid: str | None = None) -> list[list[Hypothesis]]:
        """``sid``: the stream's partials wait while its final decodes (finals first, also when
        several workers run at once and partials go to other engine replicas sharing the CPU), or
        go on beside it on the engine's second lane (``_lane_work``)."""
        self._ensure_started()
        job = _Final(pieces, options, asyncio.get_running_loop().create_future(), sid=sid)
        self._finals.append(job)
        if sid:
            self._finalizing[sid] += 1
        self._poke()
        try:
            return await job.future
        finally:
            if sid:
                self._finalizing[sid] -= 1
                if self._finalizing[sid] <= 0:
                    del self._finalizing[sid]
                self._poke()

    async def file_windows(self, pieces: list[tuple[np.ndarray, int]], options: DecodeOptions) -> list[list[Hypothesis]]:
        """Decode a file's speech windows when no live work waits, one window per turn."""
        self._ensure_started()
        out: list[list[Hypothesis]] = []
        for piece in pieces:
            job = _Final([piece], options, asyncio.get_running_loop().create_future())
            self._files.append(job)
            self._poke()
            out += await job.future
        return out

    def partial(self, sid: str, take: Callable[[], tuple[EngineStream, np.ndarray] | None],
                finish: Callable[[Hypothesis | None], Any]) -> asyncio.Future | None:
        """Queue a partial of stream ``sid`` unless it already has one queued (which will take this
        audio too). ``take`` and ``finish`` run in the worker thread, around the engine call."""
        if sid in self._partials:
            self.stats["partials_skipped"] += 1
            return None
        self._ensure_started()
        job = _Partial(take, finish, asyncio.get_running_loop().create_future(), time.monotonic())
        self._partials[sid] = job
        if sid not in self._order:
            self._order.append(sid)
        self._poke()
        return job.future

    # -- worker -----------------------------------------------------------------------------
    def _poke(self) -> None:
        self._wake.set()
        self._lane_wake.set()

    def _ensure_started(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._work(), name=f"decode-worker-{i}") for i in range(self.workers)]
            if self.lane:
                self._tasks.append(asyncio.create_task(self._lane_work(), name="decode-lane"))

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _work(self) -> None:
        while True:
            due = self._file_due()
            if not self._finals and not self._runnable() and (due is None or due > 0):
                self._wake.clear()
                try:  # a file window that waited for the courtroom to pause runs at ``due`` anyway
                    await asyncio.wait_for(self._wake.wait(), due)
                except asyncio.TimeoutError:
                    pass
                continue
            try:
                if self._finals and not self._overdue():
                    await self._run_finals()
                elif self._runnable():
                    await self._run_partials()
                elif self._finals:
                    await self._run_finals()
                else:
                    await self._run_file_window()
            except Exception:  # noqa: BLE001 - the worker is every stream's: it must outlive any one job
                log.exception("decode worker step failed")

    async def _lane_work(self) -> None:
        """The second lane: while the worker decodes a stream's final and the box keeps up, that
        stream's partials (its speaker goes on: the next piece, or the next utterance). Other streams' wait for the worker
        as before: with several speaking, partials beside every final would slow the record."""
        while True:
            sids = [sid for sid in self._order if sid in self._partials and sid not in self._previewing
                    and sid in self._holding]
            if not (sids and self.load() < OVERLOAD):
                self._lane_wake.clear()
                await self._lane_wake.wait()
                continue
            try:
                await self._run_partials(sids[:self.partial_batch], lane=True)
            except Exception:  # noqa: BLE001 - like the worker, the lane outlives any one job
                log.exception("decode lane step failed")

    async def _run_file_window(self) -> None:
        job = self._files.popleft()
        if not job.future.done():  # its job may have been cancelled meanwhile
            await self._decode([job], job.options)
            self.stats["file_windows"] += 1

    async def _run_finals(self) -> None:
        if self.final_wait_s and len(self._finals) < self.final_batch:
            await asyncio.sleep(self.final_wait_s)  # dynamic batching: let other streams' finals join
        first = self._finals.popleft()
        batch = [first]
        for job in list(self._finals):  # same options (language, hotwords) decode together
            if len(batch) >= self.final_batch:
                break
            if job.options == first.options:
                self._finals.remove(job)
                batch.append(job)
        if await self._decode(batch, first.options):
            self.stats["finals"] += len(batch)
            self.stats["final_batches"] += 1

    async def _transcribe(self, pieces: list[tuple[np.ndarray, int]], options: DecodeOptions,
                          streams: set[str]) -> list[list[Hypothesis]]:
        """The worker's engine call for finals and file windows: the lane may serve the partials of
        ``streams`` (whose finals these are) meanwhile."""
        self._holding = streams
        self._lane_wake.set()
        try:
            return await asyncio.to_thread(self.engine.transcribe_many, pieces, options)
        finally:
            self._holding = set()

    async def _decode(self, batch: list[_Final], options: DecodeOptions) -> bool:
        """One engine call for the jobs' pieces; each job's future gets its share (or the error)."""
        pieces = [p for job in batch for p in job.pieces]
        started, began = time.perf_counter(), time.monotonic()
        try:
            results = await self._transcribe(pieces, options, {job.sid for job in batch if job.sid})
        except Exception as err:  # noqa: BLE001 - an engine failure fails these jobs, not the worker
            if len(batch) > 1:  # one stream's bad audio must not fail the others batched with it
                log.warning("batched decode failed; decoding its jobs one by one", jobs=len(batch), error=repr(err))
                done = [await self._decode([job], options) for job in batch]
                return any(done)
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(err)
            return False
        self._worked(began)
        took, audio_s = time.perf_counter() - started, sum(a.size for a, _ in pieces) / self.engine.sample_rate
        metrics.STAGE_SECONDS.labels("final").observe(took)
        metrics.FINALS.inc(len(pieces))
        if audio_s > 0:
            metrics.RTF.observe(took / audio_s)
        pos = 0
        for job in batch:
            n = len(job.pieces)
            if not job.future.done():
                job.future.set_result(results[pos:pos + n])
            pos += n
        return True

    def _ready(self) -> list[str]:
        """Streams with a queued partial and none running or finalizing (an online stream is fed by
        one caller), in round-robin order."""
        return [sid for sid in self._order if sid in self._partials and sid not in self._previewing
                and sid not in self._finalizing]

    def _runnable(self) -> bool:
        return bool(self._ready())

    def _worked(self, started: float) -> None:
        now = time.monotonic()
        self._busy.append((started, now))
        while self._busy and self._busy[0][1] < now - LOAD_WINDOW_S:
            self._busy.popleft()

    def load(self) -> float:
        """Share of the last ``LOAD_WINDOW_S`` seconds the worker(s) spent in engine calls."""
        now = time.monotonic()
        since = now - LOAD_WINDOW_S
        return sum(end - max(start, since) for start, end in self._busy if end > since) / (LOAD_WINDOW_S * self.workers)

    def _overdue(self) -> bool:
        if not self.deadlines or self.load() >= OVERLOAD:  # previews, or behind on everything: the record first
            return False
        limit = time.monotonic() - self.partial_deadline_s
        return any(self._partials[sid].queued < limit for sid in self._ready())

    async def _run_partials(self, sids: list[str] | None = None, *, lane: bool = False) -> None:
        """One engine call for up to ``partial_batch`` streams' partials (``lane``: beside the worker,
        not counted in its load)."""
        sids = sids or self._ready()[:self.partial_batch]
        for sid in sids:  # they go to the back of the round
            self._order.remove(sid)
            self._order.append(sid)
        jobs = [self._partials.pop(sid) for sid in sids]
        self._previewing.update(sids)
        started, began = time.perf_counter(), time.monotonic()
        try:
            results = await asyncio.to_thread(self._advance, jobs)
            metrics.STAGE_SECONDS.labels("partial").observe(time.perf_counter() - started)
        except Exception as err:  # noqa: BLE001 - a failed preview fails these partials only
            results = [err] * len(jobs)
        finally:
            if not lane:
                self._worked(began)
            self._previewing.difference_update(sids)
            self._poke()  # partials of these streams may have queued meanwhile
        now = time.monotonic()
        late = sum(now - job.queued > self.partial_deadline_s for job in jobs)
        self.stats["partials"] += len(jobs)
        self.stats["lane_partials"] += len(jobs) if lane else 0
        self.stats["partial_batches"] += 1
        self.stats["partials_late"] += late
        metrics.PARTIALS_LATE.inc(late)
        metrics.PARTIAL_BATCH.observe(len(jobs))
        for job, result in zip(jobs, results):
            metrics.PARTIAL_WAIT.observe(now - job.queued)
            if job.future.done():
                continue
            if isinstance(result, Exception):
                job.future.set_exception(result)
            else:
                job.future.set_result(result)

    def _advance(self, jobs: list[_Partial]) -> list[Any]:
        """In the worker thread: each job's new audio into its stream, all streams through the engine
        in one call, each partial finished by its job."""
        taken = [job.take() for job in jobs]
        hyps = iter(self.engine.accept_many([t for t in taken if t is not None]))
        return [job.finish(next(hyps) if t is not None else None) for job, t in zip(jobs, taken)]


def _slots(alone: int, seats: Counter[str]) -> int:
    """Live slots of ``alone`` streams of their own and of hearings' seat microphones (hearing → how
    many): a stream each, a hearing's seat microphones ``SEATS_PER_SLOT`` to one."""
    return alone + sum(-(-n // SEATS_PER_SLOT) for n in seats.values())
