"""After a crash: what the archive holds past a channel's last line is a flagged line, never silence.

A server killed mid-utterance loses the decode of what was being said, but not its audio: the
recorder had synced it to a ``.part`` segment, which ``archive.recover`` finishes at the next start.
Each channel whose recovered audio goes on past its last line (stored, or waiting in the spool)
gets an ``unrecognized`` line over that stretch, flagged ``interrupted``: the clerk sees the gap,
replays it and types what was said.
"""
from __future__ import annotations

from pathlib import Path

import soundfile as sf

from ..audio import SAMPLE_RATE as SR
from ..logs import get_logger
from . import archive
from .model import SPEAKER_UNSURE, UNRECOGNIZED, Utterance
from .reading import NotFound
from .store import RecordStore

log = get_logger(__name__)
INTERRUPTED = "interrupted"  # the reason of such a line: the server stopped while it was spoken
MIN_UNHEARD_MS = 300  # less than this past the last line is the VAD's own end silence
UNKNOWN = "未知发言人"


def unheard(store: RecordStore, root: Path, finished: list[Path],
            waiting: list[tuple[str, Utterance]]) -> list[Utterance]:
    """Flag, as lines of their hearings, the stretches of the segments a crash left open
    (``finished``: ``archive.recover``'s) that no line covers; ``waiting``: the spool's lines
    (hearing id, line), not yet stored. Returns the lines written."""
    reach: dict[tuple[str, int], int] = {}
    for path in finished:
        key = (path.parent.parent.name, int(path.parent.name.removeprefix("ch")))
        end = int(path.stem) + sf.info(path).frames * 1000 // SR
        reach[key] = max(reach.get(key, 0), end)
    written = []
    records: dict[str, list[Utterance] | None] = {}  # each hearing read once, whatever its channels
    for (hearing_id, channel), audio_end in sorted(reach.items()):
        if hearing_id not in records:
            records[hearing_id] = _lines(store, hearing_id)
        said = records[hearing_id]
        if said is None:  # audio of a hearing the store never had (its creation failed)
            log.warning("recovered audio of an unknown hearing", hearing=hearing_id, channel=channel)
            continue
        lines = [u for u in [*said, *(u for hid, u in waiting if hid == hearing_id)] if u.channel == channel]
        first = archive.segments(root, hearing_id, channel)[0][0]
        start = max([first, *(u.end_ms for u in lines)])
        if audio_end - start < MIN_UNHEARD_MS:
            continue
        if store.status(hearing_id) == "signed":  # nothing is added to a signed record: court IT must know
            log.error("audio past a signed record's last line", hearing=hearing_id, channel=channel,
                      start_ms=start, end_ms=audio_end)
            continue
        last = max(lines, key=lambda u: u.end_ms, default=None)
        line = Utterance(id=f"c{channel}-recovered-{start}", start_ms=start, end_ms=audio_end, channel=channel,
                         speaker=last.speaker if last else UNKNOWN, role=last.role if last else None,
                         participant=last.participant if last else None, text="", confidence=0.0,
                         flags=[UNRECOGNIZED, INTERRUPTED, SPEAKER_UNSURE])
        store.machine_final(hearing_id, line, actor="courtscribe")
        log.warning("audio the server stopped on is flagged for the clerk", hearing=hearing_id,
                    channel=channel, start_ms=start, end_ms=audio_end)
        written.append(line)
    return written


def _lines(store: RecordStore, hearing_id: str) -> list[Utterance] | None:
    try:
        return store.record(hearing_id).utterances
    except NotFound:
        return None
