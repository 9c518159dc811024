"""The HTTP file API: OpenAI-shaped ``/v1/audio/transcriptions`` for short files, and jobs with
progress for long recordings.

Both run the file pipeline (VAD → engine → diarizer) in a bounded worker pool off the event loop;
its engine work goes through the live decode scheduler's file tier, so an upload never delays a
live screen by more than one speech window. A full pool or queue answers 503 "busy" at once.
"""
from __future__ import annotations

import asyncio
import json
from typing import AsyncIterator, BinaryIO, Callable, Literal

import numpy as np
from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from ..access.scopes import AccessRole, Action, HearingScope, Principal
from ..audio import Audio, AudioError, AudioTooLong, decode
from ..diarization.known import name_voices
from ..records import formats, intake
from ..records.model import HEARING_ID, Record
from ..text import joined
from .known_voices import FORM_LIMITS, known_speakers, known_voices
from ..streaming.jobs import Job, JobStatus, Mirrored, QueueFull
from . import deps
from .auth import allow

ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json", "diarized_json"]
ResultFormat = Literal["json", "text", "srt", "vtt", "verbose_json", "diarized_json", "record", "txt", "docx"]
router = APIRouter()


def shown(record: Record) -> str:
    """The record's text as a reader sees it: a stretch that was not recognized is the gap note to
    replay (never a silent hole), Latin words spaced."""
    return joined([u.shown_text for u in record.utterances])


def _openai_json(record: Record, verbose: bool) -> dict:
    text = shown(record)
    if not verbose:
        return {"text": text}
    return {
        "task": "transcribe", "language": record.hearing.language, "duration": record.source.duration_ms / 1000,
        "text": text,
        "segments": [{"id": i, "start": u.start_ms / 1000, "end": u.end_ms / 1000, "text": u.shown_text,
                      "speaker": u.speaker, "avg_logprob": None, "confidence": u.confidence, "flags": u.flags}
                     for i, u in enumerate(record.utterances)],
        "words": [{"word": t.text, "start": t.start_ms / 1000, "end": t.end_ms / 1000}
                  for u in record.utterances for t in u.tokens],
    }


def _segments(record: Record) -> list[dict]:
    """The record's lines as OpenAI's diarized segments, each in its speaker's name; a line the
    machine doubts keeps its flags (``speaker_unsure``, ``overlap``…: a field OpenAI's have not)."""
    return [{"type": "transcript.text.segment", "id": u.id, "start": u.start_ms / 1000, "end": u.end_ms / 1000,
             "speaker": u.speaker, "text": u.shown_text, **({"flags": u.flags} if u.flags else {})}
            for u in record.utterances]


def respond(record: Record, fmt: str) -> Response:
    """A finished record in an OpenAI response format, or one of the record's own formats."""
    if fmt in ("json", "verbose_json"):
        return JSONResponse(_openai_json(record, fmt == "verbose_json"))
    if fmt == "diarized_json":
        duration = record.source.duration_ms / 1000
        return JSONResponse({"task": "transcribe", "duration": duration, "text": shown(record),
                             "segments": _segments(record), "usage": {"type": "duration", "seconds": duration}})
    if fmt == "text":
        return PlainTextResponse(shown(record) + "\n")
    writer = formats.writer("json" if fmt == "record" else fmt)  # the record's own formats: the registry's
    headers = {"Content-Disposition": f"attachment; filename=record.{writer.extension}"} if writer.binary else None
    return Response(formats.render_bytes(record, "json" if fmt == "record" else fmt), media_type=writer.media_type,
                    headers=headers)


async def _upload(request: Request, file: UploadFile) -> Audio:
    """The upload read and decoded in one of the server's intake places (503 busy when none is free)."""
    settings = deps.settings(request)
    try:
        return await deps.files(request).intake.run(_read, file.file, settings.max_upload_mb, settings.max_audio_s)
    except AudioTooLong as err:
        raise HTTPException(413, detail={"code": "too_long", "message": str(err)}) from None
    except AudioError as err:
        raise HTTPException(400, detail={"code": "bad_audio", "message": str(err)}) from None


def _read(f: BinaryIO, max_mb: int, max_seconds: float) -> Audio:
    """Blocking: the spooled upload's bytes, decoded (at most ``max_mb`` of them)."""
    data = f.read(max_mb * 1024 * 1024 + 1)
    if len(data) > max_mb * 1024 * 1024:
        raise HTTPException(413, detail={"code": "too_large", "message": f"upload exceeds {max_mb} MB"})
    return decode(data, max_seconds=max_seconds)


async def _heard_as(request: Request, hearing_id: str | None, who: Principal | None) -> tuple[list[str], str | None]:
    """The vocabulary and courtroom an upload is heard with: a hearing's recording as its live lines
    are (its parties, names, 案由 and hotwords; its courtroom's front ends), else the submitter's room."""
    room = who.room if who else None
    if not hearing_id:
        return [], room

    def look() -> tuple[list[str], str | None]:
        store = deps.store(request)
        scope = store.scope(hearing_id)
        return ([], room) if scope is None else (store.vocabulary(hearing_id), scope[1] or room)
    return await asyncio.to_thread(look)


async def _file_run(request: Request, audio: Audio, filename: str | None, language: str | None,
                    prompt: str | None, hearing_id: str | None = None, who: Principal | None = None,
                    on_text: Callable[[str], object] | None = None, known: dict[str, np.ndarray] | None = None):
    """The pipeline call for one upload, its engine work routed through the live scheduler; with a
    ``hearing_id`` the record and its audio are also kept in the record store and archive, in the
    submitter's court and courtroom. ``on_text``: each decoded window's text as it comes (a
    streamed answer's deltas)."""
    files = deps.files(request)
    words, courtroom = await _heard_as(request, hearing_id, who)
    options = files.options(language, (prompt or "").split() + words)
    pipeline = files.runner(audio, options, filename=filename, on_text=on_text, courtroom=courtroom)

    def run(on_progress: Callable[[str, float], None] | None = None) -> Record:
        """``on_progress(stage, fraction)``: the job's status."""
        record = pipeline(on_progress)
        if known:
            channels = [audio.channel(c) for c in range(audio.channels)]
            record.utterances = name_voices(record.utterances, channels, files.components.speaker_encoder(), known)
        if hearing_id:
            if who is not None:
                _still_ours(deps.store(request), hearing_id, who)
                record.hearing.court = record.hearing.court or who.court
                record.hearing.courtroom = record.hearing.courtroom or who.room
            intake.keep(deps.store(request), deps.archive(request), record,
                        [audio.channel(c) for c in range(audio.channels)], hearing_id,
                        actor=f"job {filename or ''} ({who.name if who else '-'})")
        return record
    return run


class HearingTaken(RuntimeError):
    """The job's hearing id was taken, while the job ran, by a hearing outside its submitter's scope."""


def _still_ours(store, hearing_id: str, who: Principal) -> None:
    """Checked when the job finishes, not only when it was submitted: another court may have created
    the id meanwhile, and one court's lines must never land in another court's hearing."""
    scope = store.scope(hearing_id)
    if scope is not None and who.refusal(Action.manage, HearingScope(hearing_id, *scope)) is not None:
        raise HearingTaken(f"hearing {hearing_id} was created outside this token's scope while the job ran: nothing "
                           "was stored in it; submit again with another hearing id")


@router.post("/v1/audio/transcriptions", form_limits=FORM_LIMITS)
async def transcriptions(request: Request, file: UploadFile = File(...), model: str = Form("whisper-base"),
                         language: str | None = Form(None), response_format: ResponseFormat = Form("json"),
                         prompt: str | None = Form(None), stream: bool = Form(False),
                         who: Principal = allow(Action.transcribe),
                         speakers: tuple[list[str], list[str]] = Depends(known_speakers)) -> Response:
    """OpenAI-compatible file transcription; ``verbose_json`` adds speakers and word times,
    ``diarized_json`` is the lines as speaker segments (voices the caller knows named after
    ``known_speaker_names[]``/``known_speaker_references[]``); ``stream=true`` answers with
    server-sent events (``transcript.text.delta`` as the recording is decoded, a
    ``transcript.text.segment`` per line for ``diarized_json``, then ``transcript.text.done``).
    For long recordings use ``POST /v1/jobs`` and poll."""
    known = await known_voices(request, *speakers)
    audio = await _upload(request, file)
    if stream:
        loop, texts = asyncio.get_running_loop(), asyncio.Queue[str]()
        run = await _file_run(request, audio, file.filename, language, prompt, who=who, known=known,
                              on_text=lambda text: loop.call_soon_threadsafe(texts.put_nowait, text))
        # started here, not in the answer's body: a client gone before its first byte gives the place back
        work = deps.files(request).pool.start(run)
        return StreamingResponse(_events(work, texts, segments=response_format == "diarized_json"),
                                 media_type="text/event-stream", headers={"X-Accel-Buffering": "no"})
    record = await deps.files(request).pool.submit(await _file_run(request, audio, file.filename, language, prompt,
                                                                   who=who, known=known))
    return respond(record, response_format)


def _sse(event: dict) -> bytes:
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode()


async def _events(work: asyncio.Future, texts: asyncio.Queue[str], *, segments: bool = False) -> AsyncIterator[bytes]:
    """OpenAI's transcription stream: a delta per decoded window, then the whole text (what the JSON
    answer would say); a failure is an ``error`` event, never a silently short text."""
    while not work.done() or not texts.empty():
        getter = asyncio.ensure_future(texts.get())
        await asyncio.wait({getter, work}, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            yield _sse({"type": "transcript.text.delta", "delta": getter.result()})
        else:
            getter.cancel()
    try:
        record = work.result()
    except Exception as err:  # noqa: BLE001 - told to the client in the stream's own terms
        yield _sse({"type": "error", "error": {"type": "server_error", "code": "transcription_failed",
                                               "message": f"{type(err).__name__}: {err}"}})
        return
    for segment in _segments(record) if segments else []:
        yield _sse(segment)
    yield _sse({"type": "transcript.text.done", "text": shown(record)})


@router.post("/v1/jobs", status_code=202, form_limits=FORM_LIMITS)
async def create_job(request: Request, file: UploadFile = File(...), language: str | None = Form(None),
                     prompt: str | None = Form(None),
                     hearing_id: str | None = Form(None, pattern=HEARING_ID),
                     who: Principal = allow(Action.transcribe),
                     speakers: tuple[list[str], list[str]] = Depends(known_speakers)) -> JSONResponse:
    """Queue a long recording; the answer names the job to poll at ``GET /v1/jobs/{id}``. With
    ``hearing_id`` the finished record becomes that hearing in the record store: a new one, or one
    scheduled beforehand (not yet signed), whose record it joins after what is already recorded.
    Known speakers as for ``/v1/audio/transcriptions``."""
    if hearing_id:
        await deps.access(request).check(who, Action.manage, hearing_id, missing_ok=True)
    known = await known_voices(request, *speakers)
    audio = await _upload(request, file)
    try:
        run = await _file_run(request, audio, file.filename, language, prompt, hearing_id, who, known=known)
        job = deps.jobs(request).submit(run, filename=file.filename, audio_s=audio.duration_ms / 1000,
                                        owner=who.token_id, court=who.court)
    except QueueFull as err:
        raise HTTPException(503, detail={"code": "busy", "message": str(err)}) from None
    return JSONResponse(job.view(), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})


def _mine(job: Job | Mirrored, who: Principal) -> bool:
    """Its submitter's, or an admin's of the submitter's court (only a server-wide admin sees all)."""
    return job.owner == who.token_id or (who.role is AccessRole.admin and who.court in (None, job.court))


async def _job(request: Request, job_id: str, who: Principal) -> Job | Mirrored:
    job = await deps.jobs(request).find(job_id)
    if job is None or not _mine(job, who):
        raise HTTPException(404, detail={"code": "no_such_job", "message": f"no job {job_id!r} (finished jobs are "
                                         "kept for a while, then forgotten)"})
    return job


@router.get("/v1/jobs")
async def list_jobs(request: Request, who: Principal = allow(Action.transcribe)) -> dict:
    return {"object": "list", "data": [j.view() for j in deps.jobs(request).all() if _mine(j, who)]}


@router.get("/v1/jobs/{job_id}")
async def get_job(request: Request, job_id: str, who: Principal = allow(Action.transcribe)) -> dict:
    return (await _job(request, job_id, who)).view()


@router.get("/v1/jobs/{job_id}/result")
async def job_result(request: Request, job_id: str, format: ResultFormat = Query("record"),
                     who: Principal = allow(Action.transcribe)) -> Response:
    job = await _job(request, job_id, who)
    record = await deps.jobs(request).record(job) if job.status is JobStatus.DONE else None
    if record is None:
        raise HTTPException(409, detail={"code": f"job_{job.status.value}", "message": job.error or
                                         f"job {job_id} is {job.status.value} ({job.stage}, {job.progress:.0%})"})
    return respond(record, format)


@router.delete("/v1/jobs/{job_id}")
async def cancel_job(request: Request, job_id: str, who: Principal = allow(Action.transcribe)) -> dict:
    """Cancel a queued or running job (a running one stops at its next window)."""
    job = await _job(request, job_id, who)
    return (deps.jobs(request).cancel(job_id) or job).view()
