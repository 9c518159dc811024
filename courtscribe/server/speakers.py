"""REST endpoints for who-is-who: enroll a participant's voice, refine a hearing's speaker labels.

Voice prints are computed here and kept only in the record store (participants.voice); audio is
taken from an upload or from the hearing's own archive. Live sessions of the hearing pick up a new
enrollment at once.
"""
from __future__ import annotations

import asyncio

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ..audio import AudioError, decode
from ..access.scopes import Action, Principal
from ..diarization.embedding import EncoderError, enrollment_embedding
from ..diarization.refine import propose
from ..records import archive
from ..records.model import Channel, Millis, Name, Role
from ..streaming.speakers import Label
from . import deps, errors
from .auth import on_hearing
from .deps import store
from .hearings import changed

router = APIRouter(prefix="/v1/hearings", tags=["speakers"])
MAX_ENROLL_BYTES = 20 << 20
MAX_ENROLL_S = 300  # a voice sample is seconds long; more is refused, not decoded


class VoiceName(BaseModel):
    """Who a voice of one channel is: the speaker as printed, with the role and participant when known."""

    channel: Channel = 0  # each mixed channel numbers its own voices
    speaker: Name
    role: Role | None = None
    participant: Name | None = None


@router.post("/{hearing_id}/voices/{voice}")
def name_voice(hearing_id: str, voice: str, body: VoiceName, request: Request,
               who: Principal = on_hearing(Action.edit)) -> dict:
    """Every line of one voice (the diarizer's 说话人N) to a person at once, and the hearing's next
    lines of that voice too; ``DELETE`` undoes it."""
    # the running source first: a line it finishes meanwhile is named by it, the ones before by the store
    deps.live(request).voice_named(hearing_id, voice, Label(body.speaker, body.role, body.participant),
                                   channel=body.channel)
    lines = store(request).name_voice(hearing_id, voice, actor=who.name, **body.model_dump())
    return {"voice": voice, "utterances": [changed(request, hearing_id, uid) for uid in lines]}


@router.delete("/{hearing_id}/voices/{voice}")
def unname_voice(hearing_id: str, voice: str, request: Request, channel: Channel = 0,
                 who: Principal = on_hearing(Action.edit)) -> dict:
    deps.live(request).voice_named(hearing_id, voice, None, channel=channel)
    lines = store(request).unname_voice(hearing_id, voice, actor=who.name, channel=channel)
    return {"voice": voice, "utterances": [changed(request, hearing_id, uid) for uid in lines]}


class Stretch(BaseModel):
    """A stretch of the hearing's own recording in which only this person speaks."""

    channel: Channel = 0
    from_ms: Millis
    to_ms: Millis = Field(gt=0)


async def bad_enrollment(_request: Request, err: EncoderError) -> JSONResponse:
    """Audio too short or too quiet to enroll a voice from: the clerk is told why (422)."""
    return errors.answer(422, "bad_enrollment_audio", str(err))


def _encoder(request: Request):
    return deps.live(request).speaker_encoder


async def _enroll(request: Request, hearing_id: str, name: str, audio: np.ndarray, source: str, actor: str) -> dict:
    voice = await asyncio.to_thread(enrollment_embedding, _encoder(request), audio)  # EncoderError: below
    person = await asyncio.to_thread(store(request).enroll_voice, hearing_id, name, voice, actor=actor, source=source)
    deps.live(request).enrolled(hearing_id, person, voice)
    return {"hearing_id": hearing_id, "participant": name, "enrolled": True, "source": source}


@router.put("/{hearing_id}/participants/{name}/voice")
async def enroll_upload(hearing_id: str, name: str, request: Request, who: Principal = on_hearing(Action.edit)):
    """Enroll from a recording of the person (any audio format, a few seconds of speech)."""
    body = await request.body()
    if len(body) > MAX_ENROLL_BYTES:
        return errors.answer(413, "too_large", "enrollment audio is limited to 20 MB")
    try:
        audio = (await asyncio.to_thread(decode, body, max_seconds=MAX_ENROLL_S)).channel(0)
    except AudioError as err:
        return errors.answer(422, "bad_audio", str(err))
    return await _enroll(request, hearing_id, name, audio, "upload", who.name)


@router.post("/{hearing_id}/participants/{name}/voice")
async def enroll_from_hearing(hearing_id: str, name: str, body: Stretch, request: Request,
                              who: Principal = on_hearing(Action.edit)):
    """Enroll from a stretch of the hearing's archive the clerk picked (e.g. a line of this person)."""
    if body.to_ms - body.from_ms > 60_000 or body.to_ms <= body.from_ms:
        return errors.answer(422, "bad_stretch", "pick 1.5 to 60 s of the recording")
    audio = await asyncio.to_thread(archive.read, deps.archive(request), hearing_id, body.channel,
                                    body.from_ms, body.to_ms)
    return await _enroll(request, hearing_id, name, audio, f"hearing c{body.channel} {body.from_ms}-{body.to_ms} ms",
                         who.name)


@router.post("/{hearing_id}/speakers/refine")
async def refine(hearing_id: str, request: Request, apply: bool = False, speakers: int | None = Query(None, ge=1, le=64),
                 who: Principal = on_hearing(Action.edit)) -> dict:
    """Re-diarize the hearing's mixed-channel lines over the whole recording; propose relabels
    (``apply=true`` writes them). Lines a person labelled keep their labels."""
    s = store(request)
    record = await asyncio.to_thread(s.record, hearing_id)
    human = await asyncio.to_thread(s.human_speakers, hearing_id)
    voices = [(p, np.frombuffer(v, np.float32)) for p, v in await asyncio.to_thread(s.voices, hearing_id)]
    mapped = set(await asyncio.to_thread(s.channel_roles, hearing_id))  # seat mics: their role is their speaker
    proposals = []
    for ch in sorted({u.channel for u in record.utterances} - mapped):
        # only what was recorded: a line whose times were typed past the recording has no audio to compare
        recorded = await asyncio.to_thread(archive.recorded_ms, deps.archive(request), hearing_id, ch)
        lines = [u for u in record.utterances if u.channel == ch and (u.role is None or u.participant)
                 and u.start_ms < recorded]
        if not lines:
            continue
        audio = await asyncio.to_thread(archive.read, deps.archive(request), hearing_id, ch, 0,
                                        min(recorded, max(u.end_ms for u in lines)))
        proposals += await asyncio.to_thread(propose, lines, audio, _encoder(request), voices=voices,
                                             num_speakers=speakers, human=human)
    if apply:
        for p in proposals:
            await asyncio.to_thread(s.relabel, hearing_id, p.utterance_id, speaker=p.after, role=p.role,
                                    participant=p.participant, actor=f"refinement ({who.name})")
    return {"hearing_id": hearing_id, "applied": apply, "proposals": [p.as_dict() for p in proposals]}
