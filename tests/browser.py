"""What the web-page tests need beside the server: Debian's Chromium driven by Playwright (the
fixtures are in conftest.py), a TCP relay whose connections a test can cut (a network drop between
a screen and the server), and a recorder that streams a real clip in the background."""
from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
from pathlib import Path


from courtscribe.clients import stream_file

CHROMIUM = os.environ.get("COURTSCRIBE_CHROMIUM", "/usr/bin/chromium")
# Headless, offline: no sandbox as root, no background calls home (this machine has no outside network).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]
SCREENS = Path(os.environ.get("COURTSCRIBE_SCREENSHOTS", Path(__file__).resolve().parent.parent / "bench" / "out" / "screens"))


def chromium_path() -> str | None:
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


def shot(pg, name: str) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SCREENS / f"{name}.png"))


class Relay:
    """A loopback TCP relay to ``port``. ``cut()`` drops every open connection at once (as a pulled
    cable would); while ``down`` it refuses new ones (accepts and closes them)."""

    def __init__(self, port: int):
        self.target = port
        self.down = False
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.down:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target))
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def close(self) -> None:
        self.cut()
        self._listener.close()


def in_thread(coroutine_function, timeout: float = 120):
    """Run ``coroutine_function()`` to completion in a thread of its own and return its result:
    Playwright's sync API keeps an event loop in the test's thread, so asyncio.run cannot go there."""
    box: dict = {}

    def run() -> None:
        try:
            box["result"] = asyncio.run(coroutine_function())
        except BaseException as err:  # noqa: BLE001 - re-raised in the test's thread
            box["error"] = err
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "the coroutine did not finish"
    if "error" in box:
        raise box["error"]
    return box["result"]


class Recorder(threading.Thread):
    """A courtroom microphone: streams a clip into a hearing in real time, in the background."""

    def __init__(self, ws_url: str, clip: Path, *, hearing_id: str, token: str, role: str = "presiding_judge",
                 speed: float = 1.0, channel: int = 0):
        super().__init__(daemon=True)
        self.args = (ws_url + "/v1/stream", clip)
        self.kw = dict(hearing_id=hearing_id, token=token, role=role, speed=speed, channel=channel)
        self.result = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = asyncio.run(stream_file(*self.args, **self.kw))
        except BaseException as err:  # noqa: BLE001 - reported by the test that joins
            self.error = err

    def play(self):
        """Stream the whole clip now (in this thread's place: Playwright's loop owns the test thread)."""
        self.start()
        return self.finish()

    def finish(self, timeout: float = 120):
        self.join(timeout)
        assert not self.is_alive(), "the recorder did not finish"
        if self.error:
            raise self.error
        return self.result
