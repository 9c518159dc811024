"""The file workers' places and the uploads' intake places (server/files.py): a place is held
exactly as long as its work runs."""
import asyncio
import threading

import pytest

from courtscribe.server.files import Busy, Intake, WorkerPool


def pool() -> WorkerPool:
    return WorkerPool(workers=1, queue=0)


class Held:
    """Work that runs until released: a decode still going after its client left."""

    def __init__(self):
        self.started, self.release = threading.Event(), threading.Event()

    def __call__(self) -> str:
        self.started.set()
        self.release.wait(30)
        return "done"

    async def running(self) -> None:
        await asyncio.to_thread(self.started.wait, 30)


async def until_over(work: asyncio.Future) -> None:
    await asyncio.wait({work})
    await asyncio.sleep(0)  # its done-callbacks (the place given back) run in the next round


def test_a_place_is_given_back_when_its_work_ends():
    async def main():
        workers = pool()
        work = workers.start(lambda: 42)
        with pytest.raises(Busy):
            workers.start(lambda: 0)
        await until_over(work)
        assert work.result() == 42
        assert await workers.submit(lambda: 7) == 7
    asyncio.run(main())


def test_work_never_started_gives_its_place_back():
    """A streamed answer whose client left before its body was read: its work is cancelled
    before it began, and the place is free again."""
    async def main():
        workers = pool()
        work = workers.start(lambda: pytest.fail("cancelled work ran"))
        work.cancel()
        await until_over(work)
        assert await workers.submit(lambda: "next") == "next"
    asyncio.run(main())


def test_a_waiter_cancelled_does_not_free_a_place_its_thread_still_runs_in():
    async def main():
        workers, slow = pool(), Held()
        waiter = asyncio.create_task(workers.submit(slow))
        await slow.running()
        waiter.cancel()
        await asyncio.wait({waiter})
        with pytest.raises(Busy):  # the thread still decodes: its place is still taken
            workers.start(lambda: 0)
        slow.release.set()
        for _ in range(300):
            try:
                return await workers.submit(lambda: None)
            except Busy:
                await asyncio.sleep(0.1)
        pytest.fail("the place was never given back")
    asyncio.run(main())


def test_a_failure_gives_the_place_back_and_reaches_the_waiter():
    def broken():
        raise ValueError("bad file")

    async def main():
        workers = pool()
        with pytest.raises(ValueError, match="bad file"):
            await workers.submit(broken)
        assert await workers.submit(lambda: 1) == 1
    asyncio.run(main())


def test_uploads_past_the_intake_places_are_refused_before_decoding_and_a_place_outlives_its_client():
    async def main():
        intake, decode = Intake(1), Held()
        first = asyncio.create_task(intake.run(decode))
        await decode.running()
        with pytest.raises(Busy):
            await intake.run(lambda: pytest.fail("decoded past the places"))
        first.cancel()  # the client left: its decode goes on, and keeps the place
        await asyncio.wait({first})
        with pytest.raises(Busy):
            await intake.run(lambda: None)
        decode.release.set()
        for _ in range(300):
            if intake.taken == 0:
                return await intake.run(lambda: "next")
            await asyncio.sleep(0.1)
        pytest.fail("the place was never given back")
    assert asyncio.run(main()) == "next"
