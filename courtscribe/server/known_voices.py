"""OpenAI's known speakers for a file (``known_speaker_names[]`` with
``known_speaker_references[]``): each reference a data URL of 2 to 10 s of one person speaking,
checked before the upload is transcribed (a bad one is a 400 that names it, never a quietly
unnamed voice); their voice prints by name, for diarization/known.py."""
from __future__ import annotations

import base64
import binascii
from typing import Callable, TypedDict

import numpy as np
from fastapi import Form, HTTPException, Request
from pydantic import TypeAdapter, ValidationError

from ..audio import AudioError, AudioTooLong, decode
from ..diarization.embedding import EncoderError, SpeakerEncoder
from ..diarization.known import reference_print
from ..records.model import Speaker, speaker_number
from . import deps

class FormLimits(TypedDict, total=False):
    """FastAPI's form limits of a route (its own type is private)."""

    max_fields: int
    max_files: int
    max_part_size: int


MAX_KNOWN = 10  # names a file may bring (OpenAI takes 4)
SECONDS = (2.0, 10.0)  # a reference's length, as OpenAI asks
MAX_REFERENCE_B64 = 4 * -(-(4 << 20) // 3)  # 4 MiB of audio: a 10 s WAV at 48 kHz stereo is under 2
# the routes' form limits: a field may hold a reference (Starlette's default: 1 MiB), and there are
# few fields (its default: 1000, which at this size would let one request hold gigabytes)
FORM_LIMITS: FormLimits = {"max_part_size": MAX_REFERENCE_B64 + 4096, "max_fields": 64, "max_files": 1}


def known_speakers(names: list[str] = Form([], alias="known_speaker_names[]"),
                   references: list[str] = Form([], alias="known_speaker_references[]"),
                   names_plain: list[str] = Form([], alias="known_speaker_names"),  # curl -F without []
                   references_plain: list[str] = Form([], alias="known_speaker_references"),
                   ) -> tuple[list[str], list[str]]:
    """The form's known speakers (a route's dependency: parsed only; :func:`known_voices` reads
    them once the caller is let in)."""
    return names + names_plain, references + references_plain


def _refused(message: str) -> HTTPException:
    return HTTPException(400, detail={"code": "bad_known_speaker", "message": message})


async def known_voices(request: Request, names: list[str], references: list[str]) -> dict[str, np.ndarray]:
    """Name → voice print; empty when the caller named nobody. The references are decoded and
    printed in one of the server's intake places, as an upload is (503 busy when none is free)."""
    if not names and not references:
        return {}
    if len(names) != len(references):
        raise _refused(f"known_speaker_names[] and known_speaker_references[] pair up: {len(names)} names, "
                       f"{len(references)} references")
    if len(names) > MAX_KNOWN:
        raise _refused(f"at most {MAX_KNOWN} known speakers, not {len(names)}")
    for name in names:
        _check_name(name)
    files = deps.files(request)
    return await files.intake.run(_prints, names, references, files.components.speaker_encoder)


def _check_name(name: str) -> None:
    """A name prints as a speaker label: never a machine's number (it would merge two voices under
    one label), never blank, long or with control characters (a caption line breaks on them)."""
    try:
        TypeAdapter(Speaker).validate_python(name)
    except ValidationError:
        raise _refused(f"known speaker name {name[:80]!r}: at most 64 characters, no control characters") from None
    if not name.strip():
        raise _refused("each known speaker needs a name")
    if speaker_number(name) is not None:
        raise _refused(f"known speaker name {name!r} is how the machine numbers voices it does not know: "
                       "give the person's name or role")


def _prints(names: list[str], references: list[str], encoder: Callable[[], SpeakerEncoder]) -> dict[str, np.ndarray]:
    if len(set(names)) != len(names):
        raise _refused("each known speaker needs a name of their own")
    loaded = encoder()
    return {name: _print(k, name, ref, loaded) for k, (name, ref) in enumerate(zip(names, references))}


def _print(k: int, name: str, reference: str, encoder: SpeakerEncoder) -> np.ndarray:
    where = f"known_speaker_references[{k}] ({name})"
    header, comma, data = reference.partition(",")
    if not comma or not header.startswith("data:") or not header.endswith(";base64"):
        raise _refused(f"{where} is not a base64 data URL (data:audio/wav;base64,…)")
    if len(data) > MAX_REFERENCE_B64:
        raise _refused(f"{where} is larger than a reference of {SECONDS[1]:.0f} s needs")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise _refused(f"{where} is not valid base64") from None
    try:  # the budget counts samples as at 16 kHz stereo: 10 s at 48 kHz stereo is 30 s of them
        audio = decode(raw, max_seconds=4 * SECONDS[1])
    except AudioTooLong:
        raise _refused(f"{where} is longer than {SECONDS[1]:.0f} s") from None
    except AudioError:
        raise _refused(f"{where} is not audio that can be read (WAV, MP3, FLAC, Opus…)") from None
    seconds = audio.duration_ms / 1000
    if not SECONDS[0] <= seconds <= SECONDS[1]:
        raise _refused(f"{where} is {seconds:.1f} s: a reference is {SECONDS[0]:.0f} to {SECONDS[1]:.0f} s of "
                       "the person speaking")
    try:
        return reference_print(audio.channel(0), encoder)
    except EncoderError as err:
        raise _refused(f"{where}: {err}") from None
