"""Clients that append text (FunASR's online increments, Realtime deltas) get words in the order
they were said: a partial decoded ahead of an earlier utterance's final is not sent to them."""
from __future__ import annotations

import asyncio

from starlette.websockets import WebSocketState

from courtscribe.server import funasr_socket, realtime
from courtscribe.server.funasr_config import Config
from courtscribe.streaming.protocol import partial_event


class Socket:
    application_state = client_state = WebSocketState.CONNECTED

    def __init__(self) -> None:
        self.sent: list[dict] = []

    async def send_json(self, data: dict) -> None:
        self.sent.append(data)


def _partial(uid: str, text: str, *, ahead: bool):
    return partial_event(uid, 0, "审判长", 0, 600, text, "h", stable=len(text), ahead=ahead)


def test_funasr_online_text_skips_partials_ahead_of_a_final():
    ws = Socket()
    file = funasr_socket._File(Config({"mode": "online"}))
    asyncio.run(funasr_socket._deliver(ws, file, _partial("u2", "下一句", ahead=True)))
    assert ws.sent == []
    asyncio.run(funasr_socket._deliver(ws, file, _partial("u2", "下一句", ahead=False)))
    assert [m["text"] for m in ws.sent] == ["下一句"]


def test_realtime_deltas_skip_partials_ahead_of_a_final():
    ws = Socket()
    items = realtime._Items()
    asyncio.run(realtime._deliver(ws, items, _partial("u2", "下一句", ahead=True)))
    assert ws.sent == [] and not items.ids  # no item begun out of order
    asyncio.run(realtime._deliver(ws, items, _partial("u2", "下一句", ahead=False)))
    assert [m["type"] for m in ws.sent][-1] == "conversation.item.input_audio_transcription.delta"
