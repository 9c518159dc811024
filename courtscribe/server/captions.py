"""Live captions of public hearings (庭审直播): the overlay's feed, the WebVTT and JSON feeds for
players and archives, and the court's kill switch.

The overlay gets lines as they become stable (stabilized partials, then the final: captioner.py);
the archive feeds are cut from the finals, the record's own text. The kill switch is a ledger entry
(``captions``: blanked or not, at hearing time, by whom, why): every feed leaves out what was said
while captions were blanked, an open overlay blanks at once, and a hearing that is not public has no
captions at all, whoever asks.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections import OrderedDict
from typing import Any
from weakref import WeakKeyDictionary

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.websockets import WebSocketDisconnect

from ..access.guard import Denied
from ..logs import get_logger
from ..access.scopes import Action, Principal
from ..records import formats
from ..records.model import Name, Utterance
from ..records.store import RecordStore
from ..streaming.captioner import Captioner, cues
from ..redaction.public import (CAPTIONS, CARRY_MS, WITHHELD, Choices, Stretch, choices, dark,
                                switched, within)
from ..streaming.broadcast import Delayed, PublicFeed
from ..streaming.events import CaptionsSwitched, Endpoint, Event, Final, Partial, RedactionChanged
from . import deps
from .auth import on_hearing, ws_deny, ws_enter
from .hearings import notify
from .sockets import follow

router = APIRouter(prefix="/v1/hearings", tags=["captions"])
log = get_logger(__name__)
FINAL_WAIT_S = 0.8  # after the VAD's endpoint, how long the overlay waits for the final before the last partial
SWITCH_CHECK_S = 2.0  # how often an overlay reads the kill switch from the record besides its events


# -- the kill switch ------------------------------------------------------------------------
def blanks(store: RecordStore, hearing_id: str, held_ms: int = 0) -> list[Stretch]:
    """Stretches of hearing time (ms) whose captions the court ordered blank; an open end: still blank.
    ``held_ms``: the broadcast delay, for switches whose entry does not say from when its dump began."""
    return list(choices(store.entries(hearing_id, kinds=(CAPTIONS,)), held_ms).withheld)


def blanked(cue: dict, stretches: list[Stretch]) -> bool:
    return within(cue["start_ms"], cue["end_ms"], stretches)


def _wall(opened: dt.datetime | None, ms: int) -> float | None:
    """Hearing time as wall-clock seconds (the epoch), for streams that arrive in real time."""
    return opened.timestamp() + ms / 1000 if opened else None


class CaptionSwitch(BaseModel):
    blanked: bool
    reason: Name | None = None


@router.post("/{hearing_id}/captions/switch")
def switch(hearing_id: str, body: CaptionSwitch, request: Request, who=on_hearing(Action.blank_captions)) -> dict:
    """The court orders captions off (不公开内容) or back on. Takes effect at once on every overlay."""
    store = deps.store(request)
    at_ms = store.now_ms(hearing_id)
    # what the broadcast delay still held is dumped with it: off the air, so out of the public version too
    delay_ms = deps.settings(request).caption_delay_ms
    held = {"from_ms": max(0, at_ms - delay_ms), "held_ms": delay_ms} if body.blanked else {}
    store.note(hearing_id, actor=who.name, kind=CAPTIONS,
               payload={"blanked": body.blanked, "at_ms": at_ms, "reason": body.reason, **held})
    event = CaptionsSwitched(hearing_id=hearing_id, blanked=body.blanked, at_ms=at_ms, reason=body.reason)
    notify(request, event)
    return event.wire()


# -- feeds --------------------------------------------------------------------------------------
BACKFILL_MS = 60_000  # how far back a reconnecting overlay's missed lines are sent (older ones are stale)
MADE_KEPT = 32  # archive feeds kept made, per record store (each: one hearing's cues, prefixed or not)
_made: WeakKeyDictionary[RecordStore, OrderedDict[tuple, tuple[int, list[dict]]]] = WeakKeyDictionary()
_made_lock = threading.Lock()


def _public_cues(request: Request, hearing_id: str, prefix: bool) -> list[dict]:
    """The archive feeds' cues: the public version's finals (redacted), blanked stretches left out.
    Players poll them every few seconds, and a long hearing's public version takes a while to make:
    it is made again only when the hearing's ledger has moved (every change, every redaction choice
    and switch is an entry in it)."""
    store = deps.store(request)
    _require_public(store, hearing_id)
    held_ms = deps.settings(request).caption_delay_ms  # what the live feed's dump dropped stays out too
    key = (hearing_id, prefix, held_ms)
    head = store.head(hearing_id)
    with _made_lock:
        made = _made.setdefault(store, OrderedDict())
        if (kept := made.get(key)) is not None and kept[0] == head:
            return kept[1]
    stretches = blanks(store, hearing_id, held_ms)
    record = deps.records(request).public_version(hearing_id)[0]
    out = [c for u in record.utterances if u.text and u.text != WITHHELD
           for c in cues(u.model_dump(mode="json"), prefix=prefix) if not blanked(c, stretches)]
    with _made_lock:
        made[key] = (head, out)
        made.move_to_end(key)
        while len(made) > MADE_KEPT:
            made.popitem(last=False)
    return out


def _require_public(store: RecordStore, hearing_id: str) -> None:
    scope = store.scope(hearing_id)
    if scope is not None and scope[2] is not True:
        raise Denied(403, "not_public", f"hearing {hearing_id} is not public: it has no captions")


@router.get("/{hearing_id}/captions.json")
def captions_json(hearing_id: str, request: Request, prefix: bool = False, who=on_hearing(Action.caption)) -> dict:
    """Every caption cue so far (a player or archive polls it); blanked stretches left out."""
    return {"hearing_id": hearing_id, "cues": _public_cues(request, hearing_id, prefix)}


@router.get("/{hearing_id}/captions.vtt")
def captions_vtt(hearing_id: str, request: Request, prefix: bool = False, who=on_hearing(Action.caption)) -> Response:
    """The same cues as WebVTT (two lines a cue), for HLS/DASH players."""
    text = formats.vtt_cues([(c["start_ms"], c["end_ms"], "\n".join(c["lines"]), None)
                             for c in _public_cues(request, hearing_id, prefix)])
    return Response(text, media_type="text/vtt; charset=utf-8")


@router.websocket("/{hearing_id}/captions")
async def captions_socket(ws: WebSocket, hearing_id: str, prefix: bool = False,
                          since_ms: int | None = None) -> None:
    """The overlay's feed: a ``cue`` per caption line as it becomes stable (captioner.py), its words
    redacted and held ``caption_delay_ms`` (streaming/broadcast.py); ``blank`` when the court switches;
    ``withdraw`` when the clerk protects a name or hides words: what the overlay holds unshown, or
    shows, was masked without them. ``since_ms``: an overlay that reconnects says where the last
    line it aired ended (hearing time): the lines said after it (up to ``BACKFILL_MS`` back) come
    first, what the broadcast delay held when it dropped and what was said while it was away."""
    async with ws_enter(ws, deps.access(ws)) as who:
        if who:
            await _caption_feed(ws, hearing_id, prefix, who, since_ms)


async def _caption_feed(ws: WebSocket, hearing_id: str, prefix: bool, who: Principal,
                        since_ms: int | None) -> None:
    access, live = deps.access(ws), deps.live(ws)
    store, records = deps.store(ws), deps.records(ws)
    delay_ms = deps.settings(ws).caption_delay_ms  # a blank dumps what the delay still held
    try:
        await access.check(who, Action.caption, hearing_id)
        await asyncio.to_thread(_require_public, store, hearing_id)
        stretches = await asyncio.to_thread(blanks, store, hearing_id, delay_ms)
    except Denied as err:
        await ws_deny(ws, access, err, who, hearing=hearing_id)
        return
    state: dict[str, Any] = {"dark": dark(stretches), "opened": None,
                             "captioner": Captioner(prefix=prefix), "feed": PublicFeed(Choices()), "fresh": False,
                             "switches": 0, "seen": set(), "gone": set()}
    sending, waits = asyncio.Lock(), set()

    async def send(lines: list[dict]) -> None:
        # what is said while blanked is followed, never shown: a line still held when the court
        # blanks is dropped with it
        lines = [x for x in lines if not state["dark"] and not blanked(x, stretches)]
        if not lines:
            return
        opened = state["opened"] = state["opened"] or await asyncio.to_thread(store.opened_at, hearing_id)
        async with sending:
            for line in lines:  # wall-clock times of the line's words let an overlay delay and measure
                await ws.send_json({"type": "cue", **line, "lines": [line["text"]],
                                    "spoken_at": _wall(opened, line["start_ms"]),
                                    "speech_end_at": _wall(opened, line["end_ms"]), "sent_at": time.time()})

    async def flush_later(utterance_id: str) -> None:
        await asyncio.sleep(FINAL_WAIT_S)
        if held.holds_final(utterance_id):
            return  # its final is on its way: its words go out instead
        try:
            await send(state["captioner"].flush(utterance_id))
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the overlay went away; follow() ends the feed

    async def due(event: Event) -> None:
        """An event whose delay is over: its redacted words become lines."""
        if not state["fresh"]:  # the choices as of subscribing (later ones come as redaction events)
            state["feed"].chosen = await asyncio.to_thread(records.choices, hearing_id, False)
            state["fresh"] = True
        captioner = state["captioner"]
        for public in state["feed"].public(event):
            try:
                if isinstance(public, Partial):
                    await send(captioner.partial(public))
                elif isinstance(public, Final):
                    await send(captioner.final(public))
            except (WebSocketDisconnect, RuntimeError, OSError):
                return  # the overlay went away; follow() ends the feed
            if isinstance(public, Endpoint):
                waits.add(task := asyncio.create_task(flush_later(public.utterance_id)))
                task.add_done_callback(waits.discard)
        if isinstance(event, Final):  # an open tail it leaves waits CARRY_MS for the rest, no longer
            waits.add(task := asyncio.create_task(release_later(event.utterance.channel, event.utterance_id)))
            task.add_done_callback(waits.discard)

    async def release_later(channel: int, utterance_id: str) -> None:
        await asyncio.sleep(CARRY_MS / 1000)
        try:
            for public in state["feed"].release(channel, utterance_id):
                await send(state["captioner"].final(public))
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the overlay went away; follow() ends the feed

    held = Delayed(due, delay_ms / 1000)

    async def deliver(event: Event) -> bool:
        if isinstance(event, CaptionsSwitched):
            state["switches"] += 1
            state["dark"] = event.blanked
            switched(stretches, event.blanked, event.at_ms, max(0, event.at_ms - delay_ms))
            # either way nothing said before the switch goes out after it: a blank dumps what the
            # broadcast delay held, captions back drop what was said in the dark; the utterances
            # under way are forgotten, not waited for (cut again from its start, one aired the
            # dumped words), and no open tail said before (a number: 下降超50%) is carried into
            # the next words, which would air it with their times
            held.clear()
            state["gone"] |= state["seen"]
            state["seen"] = set()
            state["captioner"] = Captioner(prefix=prefix)
            state["feed"] = PublicFeed(state["feed"].chosen)
            async with sending:  # the switch's reason is the court's (it may name who is protected)
                await ws.send_json({"type": "blank", "blanked": event.blanked})
        elif isinstance(event, RedactionChanged):
            state["feed"].chosen = await asyncio.to_thread(records.choices, hearing_id, False)
            if event.hides:  # lines the overlay holds for a delayed broadcast were masked without it
                async with sending:  # (a lift shows more: what it holds may go out as it is)
                    await ws.send_json({"type": "withdraw"})
        elif isinstance(event, (Partial, Final, Endpoint)) and event.utterance_id not in state["gone"]:
            state["seen"].add(event.utterance_id)
            held.put(event)
        return True

    async def hello() -> dict:
        """The switch as the ledger says once subscribed: a switch made while this overlay was
        connecting is in what it reads, or comes after it as an event (never lost between)."""
        stretches[:] = await asyncio.to_thread(blanks, store, hearing_id, delay_ms)
        state["dark"] = dark(stretches)
        if since_ms is not None:  # after the hello: the lines it missed (airing.js airs none twice)
            now = await asyncio.to_thread(store.now_ms, hearing_id)
            missed = await asyncio.to_thread(store.recent, hearing_id, max(since_ms, now - BACKFILL_MS))
            waits.add(task := asyncio.create_task(backfill(missed)))
            task.add_done_callback(waits.discard)
        return {"type": "subscribed", "hearing_id": hearing_id, "blanked": state["dark"]}

    async def backfill(missed: list[Utterance]) -> None:
        try:
            chosen = await asyncio.to_thread(records.choices, hearing_id) if missed else None
        except Exception as err:  # noqa: BLE001 - no backfill (nothing unchecked airs); logged
            log.error("missed lines not sent", hearing=hearing_id, error=repr(err))
            return
        unaired = chosen.unaired if chosen else frozenset()
        for u in missed:  # through the same masking, blanking and line cutting as every live final;
            # none the court blanked, nor one a blank took off the air (as the archive)
            if not within(u.start_ms, u.end_ms, stretches) and u.id not in unaired:
                await due(Final(hearing_id=hearing_id, utterance_id=u.id, utterance=u))

    async def watch() -> None:
        """The switch as the record holds it, every ``SWITCH_CHECK_S``: a switch made on another
        gateway whose event the bus lost (a restart, a gateway far behind) still takes effect."""
        head = None
        while True:
            await asyncio.sleep(SWITCH_CHECK_S)
            seen = state["switches"]
            try:
                if head == (head := await asyncio.to_thread(store.head, hearing_id)):
                    continue
                now = await asyncio.to_thread(blanks, store, hearing_id, delay_ms)
            except Exception as err:  # noqa: BLE001 - the store is away: its events still come
                log.warning("caption switch not read", hearing=hearing_id, error=repr(err))
                continue
            if state["switches"] != seen:  # a switch's event came while reading: it is newer
                head = None
                continue
            blank = dark(now)
            stretches[:] = now  # the record's stretches, a switch on another gateway's included
            if blank != state["dark"]:
                at = (now[-1][0] if blank else now[-1][1] or 0) if now else 0
                try:
                    await deliver(CaptionsSwitched(hearing_id=hearing_id, blanked=blank, at_ms=at, reason=None))
                except (WebSocketDisconnect, RuntimeError, OSError):
                    return  # the overlay went away; follow() ends the feed

    waits.add(runner := asyncio.create_task(held.run()))
    waits.add(asyncio.create_task(watch()))
    try:
        await follow(ws, live.hub, hearing_id, deliver, hello=hello)
    finally:
        runner.cancel()
        for task in list(waits):
            task.cancel()

