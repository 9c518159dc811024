"""The audio archive: every channel of a hearing kept as it arrives, crash-safe.

Layout: ``DATA_DIR/archive/HEARING/chN/TTTTTTTTTTTT.flac``, one FLAC segment per ``segment_s``
of audio, named by the hearing time (ms) of its first sample. The segment being recorded is raw
PCM16 (``.part``) fsync'd at least every ``sync_s``: a FLAC header is only valid once a file is
finished, raw PCM is valid up to its last synced byte. A finished segment is encoded to FLAC and
renamed into place atomically; after a crash, ``recover`` finishes the leftover ``.part`` files.
Every line's (channel, start_ms, end_ms) finds its audio here: ``read`` serves replay.
"""
from __future__ import annotations

import fcntl
import os
import re
import time
from typing import BinaryIO
from pathlib import Path

import numpy as np
import soundfile as sf

from ..audio import SAMPLE_RATE as SR
from ..audio import float_to_pcm16, pcm16_to_float
from .model import HEARING_ID

_SEGMENT = re.compile(r"^(\d{12})\.(flac|part)$")


def hearing_dir(root: Path, hearing_id: str) -> Path:
    """The hearing's folder; an id that would leave the archive (``..``, ``/``) is refused here
    whatever the caller checked."""
    if not re.fullmatch(HEARING_ID, hearing_id):
        raise ValueError(f"not a hearing id: {hearing_id!r}")
    return Path(root) / hearing_id


class ChannelRecorder:
    def __init__(self, root: Path, hearing_id: str, channel: int, start_ms: int, *, segment_s: float = 60.0,
                 sync_s: float = 2.0):
        self.dir = hearing_dir(root, hearing_id) / f"ch{channel}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.segment_samples, self.sync_s = int(segment_s * SR), sync_s
        self._next_ms = start_ms  # hearing time of the next sample to write
        self._file: BinaryIO | None = None
        self._part: Path | None = None
        self._in_segment = 0
        self._synced = time.monotonic()

    def write(self, audio: np.ndarray) -> None:
        """Append 16 kHz float32 audio (called from a worker thread, never the event loop)."""
        pcm = np.frombuffer(float_to_pcm16(audio), np.int16)
        while pcm.size:
            if self._file is None:
                self._part = self.dir / f"{self._next_ms:012d}.part"
                self._file = open(self._part, "ab")
                fcntl.flock(self._file, fcntl.LOCK_EX)  # recording: ``recover`` elsewhere leaves it alone
                self._in_segment = 0
            take = pcm[:self.segment_samples - self._in_segment]
            self._file.write(take.tobytes())
            self._in_segment += take.size
            self._next_ms += take.size * 1000 // SR
            pcm = pcm[take.size:]
            if self._in_segment >= self.segment_samples:
                self._finish()
        if self._file is not None and time.monotonic() - self._synced >= self.sync_s:
            self._sync()

    def _sync(self) -> None:
        assert self._file is not None
        self._file.flush()
        os.fsync(self._file.fileno())
        self._synced = time.monotonic()

    def _finish(self) -> None:
        self._sync()
        assert self._file is not None and self._part is not None
        self._file.close()
        finish_segment(self._part)
        self._file, self._part = None, None

    def close(self) -> None:
        if self._file is not None:
            self._finish()


def store_recording(root: Path, hearing_id: str, channels: list[np.ndarray], start_ms: int = 0) -> None:
    """Archive a whole recording (a transcribed file) the way live audio is archived."""
    for ch, audio in enumerate(channels):
        rec = ChannelRecorder(root, hearing_id, ch, start_ms)
        for i in range(0, audio.size, SR * 10):
            rec.write(audio[i:i + SR * 10])
        rec.close()


def finish_segment(part: Path) -> Path:
    """``.part`` (raw PCM16) → ``.flac``, atomically; an empty part is just removed."""
    data = part.read_bytes()
    data = data[: len(data) // 2 * 2]
    flac = part.with_suffix(".flac")
    if data:
        tmp = part.with_suffix(".flac.tmp")
        sf.write(tmp, np.frombuffer(data, np.int16), SR, format="FLAC", subtype="PCM_16")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, flac)
    part.unlink()
    return flac


def recover(root: Path) -> list[Path]:
    """Finish the segments a crash left open (their audio up to the last sync is kept). A segment still
    being recorded (another gateway replica on the same archive, a recorder of this process) is locked
    and left to its recorder."""
    done = []
    for part in sorted(Path(root).glob("*/ch*/*.part")) if Path(root).is_dir() else []:
        try:
            with open(part, "rb") as f:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                done.append(finish_segment(part))  # the lock is held until it is finished
        except (BlockingIOError, FileNotFoundError):  # recording, or finished by its recorder meanwhile
            continue
    return done


def segments(root: Path, hearing_id: str, channel: int) -> list[tuple[int, Path]]:
    d = hearing_dir(root, hearing_id) / f"ch{channel}"
    found = [(int(m.group(1)), p) for p in d.glob("*") if (m := _SEGMENT.match(p.name))] if d.is_dir() else []
    return sorted(found)


def hearing_files(root: Path, hearing_id: str) -> list[tuple[str, Path]]:
    """Every finished segment of a hearing as (``chN/TTTT.flac``, path), for the e-case-file package."""
    d = hearing_dir(root, hearing_id)
    return [(str(p.relative_to(d)), p) for p in sorted(d.glob("ch*/*.flac"))] if d.is_dir() else []


def read(root: Path, hearing_id: str, channel: int, start_ms: int, end_ms: int) -> np.ndarray:
    """The archived audio of one channel between two hearing times (silence where none was recorded)."""
    out = np.zeros(max(0, (end_ms - start_ms) * SR // 1000), np.float32)
    for seg_ms, path in segments(root, hearing_id, channel):
        lo = (seg_ms - start_ms) * SR // 1000  # where the segment starts in ``out``
        a, b = max(0, -lo), min(_frames(path), out.size - lo)
        if a >= b:  # outside the stretch: not decoded (a replay in a long hearing reads a minute, not hours)
            continue
        if path.suffix == ".flac":
            audio = sf.read(path, start=a, stop=b, dtype="float32")[0]
        else:  # being recorded: what has reached the disk so far
            with open(path, "rb") as f:
                f.seek(a * 2)
                raw = f.read((b - a) * 2)
            audio = pcm16_to_float(raw[: len(raw) // 2 * 2])
        out[lo + a: lo + a + audio.size] = audio
    return out


def _frames(path: Path) -> int:
    """Samples in a segment, without decoding it."""
    return sf.info(path).frames if path.suffix == ".flac" else path.stat().st_size // 2


def recorded_ms(root: Path, hearing_id: str, channel: int) -> int:
    """Hearing time up to which a channel's audio is on disk."""
    end = 0
    for seg_ms, path in segments(root, hearing_id, channel):
        end = max(end, seg_ms + _frames(path) * 1000 // SR)
    return end
