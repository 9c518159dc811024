"""The server's one file pipeline: an upload (``/v1/audio/transcriptions``), a job (``/v1/jobs``)
and FunASR's offline mode all run ``transcribe.py`` with options from the settings, within the same
workers, and their decodes wait in the scheduler's file tier behind every live utterance, so a
recording being transcribed never holds up a courtroom's lines."""
from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Callable

from ..asr import finals
from ..asr.base import DecodeOptions
from ..asr.hotwords import merge
from ..audio import Audio
from ..components import Components
from ..config import Settings
from ..records.model import Record
from ..streaming.live import LiveHearings
from ..text import join_pieces
from ..transcribe import transcribe_audio

Progress = Callable[[str, float], None]  # (stage, fraction): a job's status


class Busy(Exception):
    """Every file worker is busy and the queue is full: come back later (503 ``busy``)."""


FILE_NICE = 10  # a file's own CPU work (VAD, speaker turns) beside live work: a small share of a core


def _in_background() -> None:
    """A file-work thread runs at a lower priority (Linux sets it per thread; threads it starts, such
    as the speaker turns beside the decode, inherit it), so the live streams' threads get the CPU
    first; its decodes still wait in the scheduler's file tier behind every live utterance."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), FILE_NICE)
    except (AttributeError, OSError):  # not Linux, or not allowed: it runs at the normal priority
        pass


class FileThreads(ThreadPoolExecutor):
    """The threads file work runs in (uploads, jobs, FunASR offline), never the event loop's default
    executor: their lower priority must not reach live work."""

    def __init__(self, workers: int):
        super().__init__(max_workers=workers, thread_name_prefix="file-work", initializer=_in_background)


class WorkerPool:
    """At most ``workers`` files run and ``queue`` wait; beyond that, callers are told to come back."""

    def __init__(self, workers: int, queue: int, threads: FileThreads | None = None):
        self._slots = threading.BoundedSemaphore(workers + queue)
        self._run = asyncio.Semaphore(workers)
        self.threads = threads or FileThreads(workers)

    def start(self, fn, *args, **kwargs) -> asyncio.Future:
        """Take a place (Busy at once, before a streamed answer sends its 200) and run ``fn`` in it.
        The place is given back when the work is over, however its asker fares: a caller cancelled
        (the client left) or a streamed answer never read does not end the thread, so the place
        stays taken until the thread is done, and no place is lost either."""
        if not self._slots.acquire(blocking=False):
            raise Busy("all transcription workers are busy; retry later")
        work = asyncio.ensure_future(self._run_in_place(partial(fn, *args, **kwargs)))
        work.add_done_callback(lambda _: self._slots.release())
        return work

    async def _run_in_place(self, call):
        async with self._run:
            return await asyncio.get_running_loop().run_in_executor(self.threads, call)

    async def submit(self, fn, *args, **kwargs):
        """``start``, then wait for the answer (the work goes on if this wait is cancelled)."""
        return await asyncio.shield(self.start(fn, *args, **kwargs))


class Intake:
    """Uploads being read and decoded (hours of audio are gigabytes each): no more at a time than
    the pool could take, else Busy at once, before any of it is decoded."""

    def __init__(self, places: int):
        self.places, self.taken = places, 0

    async def run(self, fn, *args):
        """``fn(*args)`` in a thread, in a place given back when the thread ends (a client that left
        does not end the decode, so it does not free the place either)."""
        if self.taken >= self.places:
            raise Busy("as many recordings as the server may decode at once are being decoded; retry later")
        self.taken += 1
        work = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        work.add_done_callback(self._given_back)
        return await asyncio.shield(work)

    def _given_back(self, _work: asyncio.Future) -> None:
        self.taken -= 1


class FileWork:
    def __init__(self, components: Components, live: LiveHearings, settings: Settings, *, workers: int = 1,
                 queue: int = 4):
        self.components, self.live, self.settings = components, live, settings
        self.pool = WorkerPool(workers, queue, FileThreads(workers))
        self.job_threads = FileThreads(1)  # a long job has its own worker: uploads never wait hours behind it
        self.intake = Intake(workers + queue)

    async def run_job(self, fn, *args):
        """A job's pipeline, in its own file-work thread (its windows still take turns with the
        uploads' in the scheduler's file tier)."""
        return await asyncio.get_running_loop().run_in_executor(self.job_threads, partial(fn, *args))

    def options(self, language: str | None = None, words: list[str] | tuple[str, ...] = ()) -> DecodeOptions:
        """The settings' options, biased to ``words`` and the court's vocabulary."""
        return DecodeOptions.from_settings(self.settings, language=language, hotwords=merge(words, self.live.lexicon))

    def runner(self, audio: Audio, options: DecodeOptions, *, filename: str | None = None,
               on_text: Callable[[str], object] | None = None,
               courtroom: str | None = None) -> Callable[[Progress | None], Record]:
        """The pipeline for one recording, to run in a worker thread (``pool``); made on the event
        loop, which its decodes go back to. ``on_text``: each decoded window's text as it comes;
        ``courtroom``: whose front ends it goes through."""
        loop = asyncio.get_running_loop()
        scheduler = self.live.scheduler

        def decode_windows(pieces, opts):
            result = asyncio.run_coroutine_threadsafe(scheduler.file_windows(pieces, opts), loop).result()
            if on_text is not None:
                for hyps in result:
                    if text := join_pieces([h.text for h in finals.polish_all(hyps, opts.hotwords, opts.itn)]):
                        on_text(text)
            return result

        def run(on_progress: Progress | None = None) -> Record:
            def fraction(stage: str, done: float, total: float) -> None:
                if on_progress is not None:
                    on_progress(stage, done / total if total > 0 else 0.0)
            # one window at a time: the scheduler decodes file windows singly anyway, and progress moves
            return transcribe_audio(audio, self.components, options=options, source_path=filename,
                                    decode=decode_windows, on_progress=fraction, batch=1, courtroom=courtroom)
        return run
