"""The receive loop every audio socket shares (server/sockets.py), apart from a server: a client
waiting on the server's own work (a long offline file, a queue) is not idle."""
import asyncio

from fastapi import FastAPI
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from courtscribe.server.sockets import run, send
from courtscribe.streaming.protocol import StreamError

IDLE_S, WORK_S = 1.0, 3.0  # the server works three idle limits long on each message


class _SlowWork:
    """A protocol whose every text message takes the server ``WORK_S`` to answer."""

    def __init__(self, ws: WebSocket):
        self.ws = ws

    async def text(self, text: str) -> bool:
        await asyncio.sleep(WORK_S)
        await send(self.ws, {"answer": text})
        return True

    async def audio(self, data: bytes) -> None:
        pass

    async def failed(self, err: StreamError) -> bool:
        await send(self.ws, {"error": err.code})
        return not err.fatal

    async def end(self, gone: bool) -> None:
        if not gone:
            await self.ws.close()


def _app() -> FastAPI:
    app = FastAPI()

    @app.websocket("/slow")
    async def slow(ws: WebSocket) -> None:
        await ws.accept()
        await run(ws, IDLE_S, _SlowWork(ws))
    return app


def test_the_idle_clock_stands_still_while_the_server_works_for_the_client():
    """FunASR's C++ offline client sends a file, then waits for its text before sending the next:
    a decode longer than the idle limit closed the socket after the first answer (idle_timeout)
    and its next file was lost. Once the server is done, the clock runs again."""
    with TestClient(_app()).websocket_connect("/slow") as ws:
        answers = []
        for name in ("first.wav", "second.wav"):
            ws.send_text(name)
            answers.append(ws.receive_json())
        assert answers == [{"answer": "first.wav"}, {"answer": "second.wav"}]
        assert ws.receive_json() == {"error": "idle_timeout"}  # quiet past the limit, the server not at work
