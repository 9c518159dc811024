"""A transcribed recording into the record store (``transcribe --store``, ``POST /v1/jobs`` with a
``hearing_id``): a hearing of its own, or — when the clerk scheduled the hearing beforehand, with its
案号 and participants — its lines and audio join that hearing in hearing time, after what is already
recorded (a second recording of the same day follows the first).
"""
from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np

from . import archive
from .clock import RECORDING_ADDED
from .model import Record, speaker_number
from .reading import Locked
from .store import RecordStore


def keep(store: RecordStore, archive_root: Path, record: Record, channels: list[np.ndarray], hearing_id: str, *,
         actor: str) -> int:
    """Store ``record`` and its audio as (or into) ``hearing_id``; returns where it starts in hearing time (ms)."""
    if store.scope(hearing_id) is None:
        store.import_record(record, actor=actor, hearing_id=hearing_id)
        _note(store, hearing_id, record, actor=actor, offset_ms=0, lines=len(record.utterances))
        offset = 0
    else:
        offset = _recorded_until(store, archive_root, hearing_id, len(channels))
        add_recording(store, hearing_id, record, actor=actor, offset_ms=offset)
    archive.store_recording(archive_root, hearing_id, channels, start_ms=offset)
    return offset


def _recorded_until(store: RecordStore, root: Path, hearing_id: str, n_channels: int) -> int:
    return max([store.last_end_ms(hearing_id)] + [archive.recorded_ms(root, hearing_id, c) for c in range(n_channels)])


def add_recording(store: RecordStore, hearing_id: str, record: Record, *, actor: str, offset_ms: int) -> list[str]:
    """The recording's participants (those not named yet) and lines, moved by ``offset_ms``; line ids
    get a prefix of their own (a hearing may take several recordings). A signed record takes none."""
    status = store.status(hearing_id)
    if status == "signed":
        raise Locked(f"hearing {hearing_id} is signed: a recording can no longer be added")
    if status == "scheduled":  # nothing heard live: the recording's models wrote the record
        store.set_pipeline(hearing_id, record.pipeline)
    present = {(p.role, p.name, p.channel) for p in store.record(hearing_id).participants}
    for p in record.participants:
        if (p.role, p.name, p.channel) not in present:
            store.add_participant(hearing_id, actor=actor, role=p.role, name=p.name, channel=p.channel)
    tag, engine, ids = uuid.uuid4().hex[:6], f"{record.pipeline.engine}/{record.pipeline.model}", []
    voices = _fresh_voices(store, hearing_id, record)
    for u in record.utterances:
        tokens = [t.model_copy(update={"start_ms": t.start_ms + offset_ms, "end_ms": t.end_ms + offset_ms})
                  for t in u.tokens]
        moved = u.model_copy(update={"id": f"{tag}-{u.id}", "start_ms": u.start_ms + offset_ms,
                                     "end_ms": u.end_ms + offset_ms, "tokens": tokens,
                                     "speaker": voices.get((u.channel, u.speaker), u.speaker)})
        store.machine_final(hearing_id, moved, actor=engine)
        ids.append(moved.id)
    _note(store, hearing_id, record, actor=actor, offset_ms=offset_ms, lines=len(ids))
    return ids


def _note(store: RecordStore, hearing_id: str, record: Record, *, actor: str, offset_ms: int,
          lines: int) -> None:
    """The ledger's word that a recording joined the hearing: where, how long (its 闭庭, clock.py)."""
    store.note(hearing_id, actor=actor, kind=RECORDING_ADDED, payload={
        "source": record.source.path, "offset_ms": offset_ms,
        "duration_ms": record.source.duration_ms,
        "lines": lines, "engine": f"{record.pipeline.engine}/{record.pipeline.model}"})


def _fresh_voices(store: RecordStore, hearing_id: str, record: Record) -> dict[tuple[int, str], str]:
    """A recording's voices (说话人N, numbered from 1 by its own diarization) numbered after every
    voice the hearing's record already has, on any channel (its live room mics number from one
    set too): the afternoon's 说话人1 is not the morning's, and naming the one must not name the other."""
    taken = store.voices_numbered(hearing_id)
    if not taken:
        return {}
    return {(u.channel, u.speaker): f"说话人{taken + n}" for u in record.utterances
            if (n := speaker_number(u.speaker)) is not None}
