"""Live captions of public hearings (庭审直播): short, stable lines cut from finals, their feeds
(WebSocket for the overlay, WebVTT and JSON for players and archives) and the court's kill switch.

Only finals become captions: a partial's words change as the speaker goes on, and a broadcast
caption that rewrites itself is unreadable. A final is cut at punctuation into lines of at most
16 characters, two lines a cue (the broadcast norm); its time span is shared out by characters.
The kill switch is a ledger entry (``captions``: blanked or not, at hearing time, by whom, why):
every feed leaves out what was said while captions were blanked, an open overlay blanks at once,
and a hearing that is not public has no captions at all, whoever asks.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import time

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import Response
from pydantic import BaseModel

from ..access.guard import Denied, on_hearing, ws_deny, ws_enter
from ..access.scopes import Action
from ..records import formats
from ..records.api import notify
from ..records.model import Name, Role
from ..records.store import RecordStore
from .live import follow

MAX_CHARS = 16
LINES_PER_CUE = 2
_BREAKS = set("，。！？；：、,.!?;:")
_DROPPED_AT_LINE_END = "，。、；：,.;: "  # captions end lines without commas and full stops

router = APIRouter(prefix="/v1/hearings", tags=["captions"])


# -- cutting finals into caption lines -------------------------------------------------------
def caption_lines(text: str, max_chars: int = MAX_CHARS) -> list[str]:
    """Lines of at most ``max_chars`` characters, broken after punctuation where possible and never
    inside a Latin word or a number unless it alone is longer than a line."""
    phrases, current = [], ""
    for ch in text.strip():
        current += ch
        if ch in _BREAKS:
            phrases.append(current.strip())
            current = ""
    if current.strip():
        phrases.append(current.strip())
    lines, line = [], ""
    for phrase in phrases:
        if len((line + phrase).rstrip(_DROPPED_AT_LINE_END)) <= max_chars:
            line += phrase
            continue
        if line:
            lines.append(line)
        while len(phrase.rstrip(_DROPPED_AT_LINE_END)) > max_chars:
            cut = _cut(phrase, max_chars)
            lines.append(phrase[:cut])
            phrase = phrase[cut:].lstrip()
        line = phrase
    lines.append(line)
    return [s for s in (x.rstrip(_DROPPED_AT_LINE_END).strip() for x in lines) if s]


def _cut(s: str, n: int) -> int:
    """Where to break ``s`` at most ``n`` characters in: before a Latin word or number that would be split."""
    cut = n
    while cut > 0 and _wordish(s[cut - 1]) and _wordish(s[cut]):
        cut -= 1
    return cut or n


def _wordish(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def cues(u: dict, *, prefix: bool = False) -> list[dict]:
    """One final (a record-format utterance) as caption cues of up to two lines each."""
    who = Role(u["role"]).label if u.get("role") else None
    text = f"{who}：{u['text']}" if prefix and who else u["text"]
    lines = caption_lines(text)
    groups = [lines[i:i + LINES_PER_CUE] for i in range(0, len(lines), LINES_PER_CUE)]
    total = sum(len("".join(g)) for g in groups) or 1
    start, span = u["start_ms"], max(1, u["end_ms"] - u["start_ms"])
    out, done = [], 0
    for k, group in enumerate(groups):
        done += len("".join(group))
        end = u["end_ms"] if k == len(groups) - 1 else u["start_ms"] + span * done // total
        out.append({"id": f"{u['id']}.{k}", "utterance_id": u["id"], "start_ms": start, "end_ms": end,
                    "lines": group, "who": who})
        start = end
    return out


# -- the kill switch ------------------------------------------------------------------------
def blanks(store: RecordStore, hearing_id: str) -> list[tuple[int, int | None]]:
    """Stretches of hearing time (ms) whose captions the court ordered blank; an open end: still blank."""
    out: list[tuple[int, int | None]] = []
    for e in store.entries(hearing_id):
        if e.kind != "captions":
            continue
        p = json.loads(e.payload)
        if p["blanked"] and (not out or out[-1][1] is not None):
            out.append((p["at_ms"], None))
        elif not p["blanked"] and out and out[-1][1] is None:
            out[-1] = (out[-1][0], p["at_ms"])
    return out


def blanked(cue: dict, stretches: list[tuple[int, int | None]]) -> bool:
    return any(cue["end_ms"] > a and (b is None or cue["start_ms"] < b) for a, b in stretches)


def _wall(opened: dt.datetime | None, ms: int) -> float | None:
    """Hearing time as wall-clock seconds (the epoch), for streams that arrive in real time."""
    return opened.timestamp() + ms / 1000 if opened else None


class CaptionSwitch(BaseModel):
    blanked: bool
    reason: Name | None = None


@router.post("/{hearing_id}/captions/switch")
def switch(hearing_id: str, body: CaptionSwitch, request: Request, who=on_hearing(Action.blank_captions)) -> dict:
    """The court orders captions off (不公开内容) or back on. Takes effect at once on every overlay."""
    store: RecordStore = request.app.state.records
    at_ms = store.now_ms(hearing_id)
    store.note(hearing_id, actor=who.name, kind="captions",
               payload={"blanked": body.blanked, "at_ms": at_ms, "reason": body.reason})
    event = {"type": "captions", "hearing_id": hearing_id, "blanked": body.blanked, "at_ms": at_ms,
             "reason": body.reason}
    notify(request, hearing_id, event)
    return event


# -- feeds --------------------------------------------------------------------------------------
def _public_cues(store: RecordStore, hearing_id: str, prefix: bool) -> list[dict]:
    _require_public(store, hearing_id)
    stretches = blanks(store, hearing_id)
    record = store.record(hearing_id)
    return [c for u in record.utterances if u.text for c in cues(u.model_dump(mode="json"), prefix=prefix)
            if not blanked(c, stretches)]


def _require_public(store: RecordStore, hearing_id: str) -> None:
    scope = store.scope(hearing_id)
    if scope is not None and scope[2] is not True:
        raise Denied(403, "not_public", f"hearing {hearing_id} is not public: it has no captions")


@router.get("/{hearing_id}/captions.json")
def captions_json(hearing_id: str, request: Request, prefix: bool = False, who=on_hearing(Action.caption)) -> dict:
    """Every caption cue so far (a player or archive polls it); blanked stretches left out."""
    return {"hearing_id": hearing_id, "cues": _public_cues(request.app.state.records, hearing_id, prefix)}


@router.get("/{hearing_id}/captions.vtt")
def captions_vtt(hearing_id: str, request: Request, prefix: bool = False, who=on_hearing(Action.caption)) -> Response:
    """The same cues as WebVTT (two lines a cue), for HLS/DASH players."""
    text = formats.vtt_cues([(c["start_ms"], c["end_ms"], "\n".join(c["lines"]))
                             for c in _public_cues(request.app.state.records, hearing_id, prefix)])
    return Response(text, media_type="text/vtt; charset=utf-8")


@router.websocket("/{hearing_id}/captions")
async def captions_socket(ws: WebSocket, hearing_id: str, prefix: bool = False) -> None:
    """The overlay's feed: ``cue`` messages as finals arrive, ``blank`` when the court switches."""
    access, live = ws.app.state.access, ws.app.state.live
    store: RecordStore = ws.app.state.records
    if not (who := await ws_enter(ws, access)):
        return
    try:
        await access.check(who, Action.caption, hearing_id)
        await asyncio.to_thread(_require_public, store, hearing_id)
        stretches = await asyncio.to_thread(blanks, store, hearing_id)
    except Denied as err:
        await ws_deny(ws, access, err, who, hearing=hearing_id)
        return
    state = {"dark": bool(stretches) and stretches[-1][1] is None, "opened": None}

    async def deliver(event: dict) -> bool:
        if event["type"] == "captions":
            state["dark"] = event["blanked"]
            await ws.send_json({"type": "blank", "blanked": event["blanked"], "reason": event.get("reason")})
        elif event["type"] == "final" and not state["dark"] and event["utterance"]["text"]:
            opened = state["opened"] = state["opened"] or await asyncio.to_thread(store.opened_at, hearing_id)
            for cue in cues(event["utterance"], prefix=prefix):  # wall-clock times let an overlay delay and measure
                await ws.send_json({"type": "cue", **cue, "spoken_at": _wall(opened, cue["start_ms"]),
                                    "speech_end_at": _wall(opened, event["utterance"]["end_ms"]),
                                    "sent_at": time.time()})
        return True

    await follow(ws, live.hub, hearing_id, deliver,
                 hello={"type": "subscribed", "hearing_id": hearing_id, "blanked": state["dark"]})
