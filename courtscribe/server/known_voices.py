"""OpenAI's known speakers for a file (``known_speaker_names[]`` with
``known_speaker_references[]``): each reference a data URL of 2 to 10 s of one person speaking,
checked before the upload is transcribed (a bad one is a 400 that names it, never a quietly
unnamed voice); their voice prints by name, for diarization/known.py."""
from __future__ import annotations

import asyncio
import base64
import binascii

import numpy as np
from fastapi import HTTPException, Request

from ..audio import AudioError, decode
from ..diarization.embedding import EncoderError, SpeakerEncoder
from ..diarization.known import reference_print
from . import deps

MAX_KNOWN = 10  # names a file may bring (OpenAI takes 4)
SECONDS = (2.0, 10.0)  # a reference's length, as OpenAI asks
MAX_REFERENCE_B64 = 4 * -(-(4 << 20) // 3)  # 4 MiB of audio: a 10 s WAV at 48 kHz stereo is under 2


def _refused(message: str) -> HTTPException:
    return HTTPException(400, detail={"code": "bad_known_speaker", "message": message})


async def known_voices(request: Request, names: list[str], references: list[str]) -> dict[str, np.ndarray]:
    """Name → voice print; empty when the caller named nobody."""
    if not names and not references:
        return {}
    if len(names) != len(references):
        raise _refused(f"known_speaker_names[] and known_speaker_references[] pair up: {len(names)} names, "
                       f"{len(references)} references")
    if len(names) > MAX_KNOWN:
        raise _refused(f"at most {MAX_KNOWN} known speakers, not {len(names)}")
    if any(not n.strip() for n in names) or len(set(names)) != len(names):
        raise _refused("each known speaker needs a name of their own")
    encoder = await asyncio.to_thread(deps.files(request).components.speaker_encoder)
    return {name: await asyncio.to_thread(_print, k, name, ref, encoder)
            for k, (name, ref) in enumerate(zip(names, references))}


def _print(k: int, name: str, reference: str, encoder: SpeakerEncoder) -> np.ndarray:
    where = f"known_speaker_references[{k}] ({name})"
    header, comma, data = reference.partition(",")
    if not comma or not header.startswith("data:") or not header.endswith(";base64"):
        raise _refused(f"{where} is not a base64 data URL (data:audio/wav;base64,…)")
    if len(data) > MAX_REFERENCE_B64:
        raise _refused(f"{where} is larger than a reference of {SECONDS[1]:.0f} s needs")
    try:
        audio = decode(base64.b64decode(data, validate=True), max_seconds=SECONDS[1] + 1)
    except (binascii.Error, ValueError, AudioError) as err:
        raise _refused(f"{where} is not audio: {err}") from None
    seconds = audio.duration_ms / 1000
    if not SECONDS[0] <= seconds <= SECONDS[1]:
        raise _refused(f"{where} is {seconds:.1f} s: a reference is {SECONDS[0]:.0f} to {SECONDS[1]:.0f} s of "
                       "the person speaking")
    try:
        return reference_print(audio.channel(0), encoder)
    except EncoderError as err:
        raise _refused(f"{where}: {err}") from None
