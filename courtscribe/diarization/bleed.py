"""Cross-talk between seat microphones: a loud speaker leaks into the neighbours' mics.

When two channels carry the same speech at once, the copy on the quieter channel is bleed: it is
the same waveform, delayed by a few milliseconds and 10–20 dB down. Each stretch of detected speech
is checked in 500 ms blocks against every other channel: a block is bleed when another channel is
at least ``margin_db`` louder there *and* the two are strongly correlated within ±30 ms. Bleed
blocks are cut out before transcription, so one sentence is recorded once, under the seat that
spoke it. Two people really speaking at once are different waveforms (low correlation), so both
stay.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..asr.base import Hypothesis
from ..asr.coverage import ENGINE_ERROR, MIN_GAP_MS, UNRECOGNIZED
from ..audio import SAMPLE_RATE as SR
from .attribute import cut_at

BLOCK_MS = 500
MAX_LAG_MS = 30
MARGIN_DB = 6.0
MIN_CORRELATION = 0.6
MIN_SPAN_MS = 300
MIN_WORD_MS = 200  # a word's audio checked for bleed: at least this much around its middle
BLEED_SHARE = 0.8  # an utterance mostly made of a neighbour's bleed (voiced blocks) is not its seat's
QUIET_DB = 20.0  # a block this far below an utterance's loudest is a pause: neither theirs nor its own

Span = tuple[int, int]


def correlation(x: np.ndarray, y: np.ndarray, max_lag: int) -> float:
    """Largest normalised cross-correlation of x and y over lags within ±max_lag samples."""
    n = x.size + y.size
    size = 1 << (n - 1).bit_length()
    cc = np.fft.irfft(np.fft.rfft(x, size) * np.conj(np.fft.rfft(y, size)), size)
    lags = np.concatenate([cc[:max_lag + 1], cc[-max_lag:]])
    denom = float(np.linalg.norm(x) * np.linalg.norm(y))
    return float(np.abs(lags).max() / denom) if denom > 0 else 0.0


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if x.size else 0.0


def louder(x: np.ndarray, y: np.ndarray, margin_db: float = 0.0) -> bool:
    """Whether ``x`` is at least ``margin_db`` louder than ``y``."""
    return _rms(x) >= _rms(y) * 10 ** (margin_db / 20) and _rms(x) > 0.0


def is_bleed(block: np.ndarray, others: list[np.ndarray], *, margin_db: float = MARGIN_DB,
             min_correlation: float = MIN_CORRELATION, max_lag_ms: int = MAX_LAG_MS) -> bool:
    own = _rms(block)
    if own == 0.0:
        return False
    for other in others:
        if _rms(other) >= own * 10 ** (margin_db / 20) and \
                correlation(block, other, max_lag_ms * SR // 1000) >= min_correlation:
            return True
    return False


def own_words(h: Hypothesis, here: np.ndarray, others: list[np.ndarray], *, offset_ms: int = 0,
              max_lag_ms: int = MAX_LAG_MS) -> list[Hypothesis]:
    """``h`` (a line decoded on the seat mic ``here``, word times in ms of it) without its words that
    are a neighbour's bleed: louder on a neighbour's mic and the same waveform there (``others``,
    aligned with ``here``). Block-wise suppression keeps a 500 ms block where a question's end meets
    a prompt answer's bleed, and the answer's 没有 was decoded into the question's line, in the
    questioner's mouth. Each run of the seat's own words stays a line of its own. ``offset_ms``:
    the time of ``here``'s first sample; ``max_lag_ms``: how far apart the mics may run (live)."""
    if not h.tokens or not others:
        return [h]
    theirs = []
    for tok in h.tokens:
        start, end = tok.start_ms - offset_ms, tok.end_ms - offset_ms
        mid = (start + end) // 2
        lo, hi = [max(0, at) * SR // 1000 for at in (min(start, mid - MIN_WORD_MS // 2),
                                                    max(end, mid + MIN_WORD_MS // 2))]
        theirs.append(is_bleed(here[lo:hi], [x[lo:hi] for x in others], max_lag_ms=max_lag_ms))
    if not any(theirs):
        return [h]
    cuts = [i for i in range(1, len(theirs)) if theirs[i] != theirs[i - 1]]
    return [piece for a, piece in cut_at(h, cuts) if not theirs[a]]


def voiced_share(audio: np.ndarray, blocks: np.ndarray, quiet_db: float = QUIET_DB) -> float:
    """The share of an utterance's voiced 500 ms blocks that are bleed. Blocks more than
    ``quiet_db`` below its loudest (the pauses between a neighbour's words, which carry nothing on
    this seat either) count for neither side."""
    block = BLOCK_MS * SR // 1000
    rms = np.array([_rms(audio[i * block:(i + 1) * block]) for i in range(blocks.size)])
    voiced = rms >= rms.max(initial=0.0) * 10 ** (-quiet_db / 20)
    return float(blocks[voiced].mean()) if voiced.any() and rms.max() > 0 else 0.0


def suppress(channels: list[np.ndarray], spans: list[list[Span]], **kwargs) -> list[list[Span]]:
    """Each channel's speech spans with the bleed cut out (pieces under 300 ms dropped)."""
    if len(channels) < 2:
        return spans
    out = []
    block = BLOCK_MS * SR // 1000
    for ch, chan_spans in enumerate(spans):
        kept: list[Span] = []
        for s, e in chan_spans:
            for a in range(s * SR // 1000, e * SR // 1000, block):
                b = min(a + block, e * SR // 1000)
                others = [channels[k][a:b] for k in range(len(channels)) if k != ch]
                if not is_bleed(channels[ch][a:b], others, **kwargs):
                    a_ms, b_ms = a * 1000 // SR, b * 1000 // SR
                    if kept and a_ms - kept[-1][1] <= 1:
                        kept[-1] = (kept[-1][0], b_ms)
                    else:
                        kept.append((a_ms, b_ms))
        out.append([(a, b) for a, b in kept if b - a >= MIN_SPAN_MS])
    return out


def mute_outside(x: np.ndarray, spans: list[Span], pad_ms: int = 100) -> np.ndarray:
    """The channel with everything but its own speech silenced: decode windows add context around
    speech and merge nearby spans, and must not carry a neighbour's bleed back in."""
    keep = np.zeros(x.size, bool)
    for s, e in spans:
        keep[max(0, (s - pad_ms) * SR // 1000): (e + pad_ms) * SR // 1000] = True
    return np.where(keep, x, 0.0).astype(x.dtype)


@dataclass
class BleedCheck:
    """Which 500 ms blocks are a neighbour's bleed, and whether every neighbour's audio was there
    to compare with (``complete`` False: a neighbour's audio stalled, bleed may have been missed)."""

    blocks: np.ndarray
    complete: bool = True
    near: list[np.ndarray] = field(default_factory=list)  # each neighbour's audio over it


@dataclass
class Seat:
    """A seat mic's utterance after its neighbours' check: its audio (their bleed muted), whether it
    is theirs altogether, whether anything was muted, and whether the check could not be completed."""
    audio: np.ndarray
    theirs: bool = False
    muted: bool = False
    unchecked: bool = False
    # most of it was their bleed, not all: what is left is kept where the engine hears words in it
    # (a "对" said over a louder neighbour), flagged as it may still be theirs
    mostly_theirs: bool = False
    blocks: np.ndarray | None = None  # which 500 ms blocks of it were their bleed (muted)
    raw: np.ndarray | None = None  # … and as it came, with the neighbours' audio over it (``own``)
    neighbours: list[np.ndarray] = field(default_factory=list)

    @property
    def for_engine(self) -> np.ndarray:
        """What the engine decodes: with a neighbour's bleed in it, the audio as it came (``own``
        then drops their words): decoded muted, a prompt answer after a question muted to seconds of
        silence was taken for no speech (是。, 没有。, an ID number lost from their own seat's line)."""
        return self.raw if self.muted and self.raw is not None else self.audio

    def own(self, hyps: list[Hypothesis], start_ms: int) -> list[Hypothesis]:
        """``hyps`` decoded from ``for_engine`` (``start_ms`` its time) without the neighbours' words
        (``own_words``); as they are where nothing of theirs was in it."""
        if not self.muted or self.raw is None or not self.neighbours:
            return hyps
        return [piece for h in hyps for piece in own_words(h, self.raw, self.neighbours, offset_ms=start_ms,
                                                           max_lag_ms=RoomAudio.LIVE_LAG_MS)]

    def heard(self) -> tuple[int, int]:
        """The samples from its first block not muted to its last: where its own voice is, so its
        lines begin no earlier (an answer's line never before the question it answers)."""
        own = np.flatnonzero(~self.blocks) if self.blocks is not None else np.zeros(0, int)
        if not own.size:
            return 0, self.audio.size
        block = BLOCK_MS * SR // 1000
        return int(own[0]) * block, min(self.audio.size, (int(own[-1]) + 1) * block)

    def pieces(self, pieces: list[Hypothesis], start_ms: int = 0) -> list[Hypothesis]:
        """The utterance's pieces (``start_ms``: where it starts), where a neighbour's voice was cut
        out (``muted``): a stretch without text that is all their muted voice, or a short one between
        this seat's words, is theirs (their seat records it). Never an engine's failure, nor a stretch
        of an utterance that has no words at all: those stay flagged to replay."""
        if not self.muted or all(UNRECOGNIZED in h.flags for h in pieces):
            return pieces
        return [h for h in pieces if UNRECOGNIZED not in h.flags or ENGINE_ERROR in h.flags
                or h.end_ms - h.start_ms >= MIN_GAP_MS and not self._theirs(h, start_ms)]

    def _theirs(self, h: Hypothesis, start_ms: int) -> bool:
        """Whether a stretch is their muted voice but for less than ``MIN_GAP_MS`` of it (the edge of
        a block where this seat's words begin)."""
        if self.blocks is None:
            return False
        ends = (start_ms + BLOCK_MS * np.arange(self.blocks.size + 1)).tolist()
        own = sum(max(0, min(b, h.end_ms) - max(a, h.start_ms))
                  for a, b, muted in zip(ends, ends[1:], self.blocks) if not muted)
        return own + max(0, h.end_ms - max(h.start_ms, ends[-1])) < MIN_GAP_MS  # past its blocks: its own


class RoomAudio:
    """The last ``keep_s`` of every seat mic of one live hearing, in hearing time, so a channel's
    utterance can be checked against its neighbours' audio before it is decoded. Live channels are
    aligned by the wall clock they joined at, so lags up to 250 ms are searched."""

    LIVE_LAG_MS = 250
    # a neighbour's audio relayed from another gateway replica can arrive after this channel's VAD
    # has closed an utterance: its check waits for their audio to cover the utterance while it keeps
    # coming (a loaded bus is late, not gone), and gives up when a neighbour sends nothing for
    # PEER_STALL_S or after PEER_MAX_WAIT_S in all: the line is then kept and flagged, never dropped
    PEER_STALL_S = 2.0
    PEER_MAX_WAIT_S = 15.0

    def __init__(self, keep_s: float = 120.0):
        self.keep = int(keep_s * SR)
        self._chans: dict[int, tuple[int, np.ndarray]] = {}  # channel -> (first sample, audio)
        self._lock = threading.Lock()
        self._written = threading.Condition(self._lock)
        self._written_at: dict[int, float] = {}  # channel → when its audio last came (monotonic)
        # a gateway replica among several: seat audio written here also goes to the gateways that
        # hold the hearing's other seat mics (streaming/peers.py), and theirs comes here
        self.relay: Callable[[int, int, np.ndarray], None] | None = None

    def write(self, channel: int, at: int, audio: np.ndarray, *, relay: bool = True) -> None:
        """``at``: hearing-time sample index of ``audio[0]``."""
        if relay and self.relay is not None:
            self.relay(channel, at, audio)
        with self._lock:
            start, buf = self._chans.get(channel, (at, np.zeros(0, np.float32)))
            end = start + buf.size
            if at > end:  # a gap (reconnect later): silence in between
                buf = np.concatenate([buf, np.zeros(at - end, np.float32)])
            elif at < end:  # a reconnect restarting earlier: the new audio wins
                buf = buf[:max(0, at - start)]
            buf = np.concatenate([buf, audio.astype(np.float32, copy=False)])
            if buf.size > self.keep:
                start, buf = start + buf.size - self.keep, buf[-self.keep:]
            self._chans[channel] = (start, buf)
            self._written_at[channel] = time.monotonic()
            self._written.notify_all()

    def remove(self, channel: int) -> bool:
        """Forget a channel that left; True when no channel is left."""
        with self._lock:
            self._chans.pop(channel, None)
            self._written_at.pop(channel, None)
            self._written.notify_all()
            return not self._chans

    def _read(self, channel: int, a: int, b: int) -> np.ndarray:
        start, buf = self._chans[channel]
        out = np.zeros(b - a, np.float32)
        lo, hi = max(a, start), min(b, start + buf.size)
        if hi > lo:
            out[lo - a:hi - a] = buf[lo - start:hi - start]
        return out

    def _ends(self, channel: int) -> dict[int, int]:
        return {k: first + buf.size for k, (first, buf) in self._chans.items() if k != channel}

    def _await_neighbours(self, channel: int, end: int) -> bool:
        """Hold the lock until every neighbour's audio reaches ``end``; False when one stalled behind it."""
        deadline = time.monotonic() + self.PEER_MAX_WAIT_S
        while True:
            behind = {k: e for k, e in self._ends(channel).items() if e < end}
            left = deadline - time.monotonic()
            if not behind:
                return True
            if left <= 0:
                return False
            moved = self._written.wait_for(lambda: any(self._ends(channel).get(k, end) > e for k, e in behind.items()),
                                           timeout=min(self.PEER_STALL_S, left))
            if not moved:
                return False

    def bleed_blocks(self, channel: int, start_ms: int, audio: np.ndarray) -> BleedCheck:
        """For each 500 ms block of ``audio`` (this channel from ``start_ms``): is it a neighbour's bleed?"""
        block, a0 = BLOCK_MS * SR // 1000, start_ms * SR // 1000
        with self._lock:
            complete = self._await_neighbours(channel, a0 + audio.size)
            whole = [self._read(k, a0, a0 + audio.size) for k in self._chans if k != channel]
        out = []
        for a in range(0, audio.size, block):
            b = min(a + block, audio.size)
            out.append(is_bleed(audio[a:b], [x[a:b] for x in whole], max_lag_ms=self.LIVE_LAG_MS))
        return BleedCheck(np.array(out, bool), complete, whole)

    def covering(self, channel: int, a: int, b: int) -> tuple[list[np.ndarray], bool]:
        """The audio over samples ``a``–``b`` (hearing time) of each neighbour whose audio is here up to
        ``b`` now, and False while a neighbour's still on its way (behind, but it sent something in
        the last ``PEER_STALL_S``: a loaded server or bus is late, not gone)."""
        now = time.monotonic()
        with self._lock:
            ends = self._ends(channel)
            here = [self._read(k, a, b) for k, end in ends.items() if end >= b]
            coming = any(end < b and now - self._written_at.get(k, 0.0) < self.PEER_STALL_S
                         for k, end in ends.items())
        return here, not coming

    def mute(self, audio: np.ndarray, blocks: np.ndarray) -> np.ndarray:
        out = audio.copy()
        block = BLOCK_MS * SR // 1000
        for i in np.flatnonzero(blocks):
            out[i * block:(i + 1) * block] = 0.0
        return out

    def seat(self, channel: int, start_ms: int, audio: np.ndarray) -> Seat:
        """A seat's utterance against its neighbours: theirs when all its voice is their bleed; else
        their bleed muted out of it, flagged unchecked where their audio came too late, or where it
        was most of the voice (what is left may be a word of this seat's, or a block of theirs the
        check missed)."""
        check = self.bleed_blocks(channel, start_ms, audio)
        share = voiced_share(audio, check.blocks) if check.blocks.size else 0.0
        if share >= 1.0:
            return Seat(audio, theirs=True)
        mostly = share >= BLEED_SHARE
        return Seat(self.mute(audio, check.blocks), muted=bool(check.blocks.any()),
                    unchecked=mostly or not check.complete, mostly_theirs=mostly, blocks=check.blocks,
                    raw=audio, neighbours=check.near)


@dataclass
class OwnVoice:
    """Where a running utterance on a seat mic first carries its own voice, decided block by block as
    its audio comes (``at``: its sample; None while all of it so far is a neighbour's bleed). Its
    partials wait until then and leave out what came before: a neighbour's words never show under
    this seat, and nobody decodes them for it (its final is checked whole, ``RoomAudio.seat``)."""
    start: int  # the utterance's first sample (the source's own count)
    shift: int  # the hearing-time sample of the source's first (its neighbours' audio is in hearing time)
    checked: int = 0  # samples of it decided
    loudest: float = 0.0
    at: int | None = None

    def update(self, room: RoomAudio, channel: int, audio: np.ndarray) -> int | None:
        """``audio``: the utterance from its sample ``start + checked`` to now."""
        block = BLOCK_MS * SR // 1000
        done = 0
        while self.at is None and done + block <= audio.size:
            a = self.start + self.checked + done
            others, ready = room.covering(channel, self.shift + a, self.shift + a + block)
            if not ready:
                break  # a neighbour's audio of this block is still on its way
            here = audio[done:done + block]
            level = _rms(here)
            self.loudest = max(self.loudest, level)
            voiced = level > 0.0 and level >= self.loudest * 10 ** (-QUIET_DB / 20)
            if voiced and not is_bleed(here, others, max_lag_ms=room.LIVE_LAG_MS):
                self.at = a
            done += block
        self.checked += done
        return self.at

    def mute_before(self, audio: np.ndarray, first: int) -> np.ndarray:
        """``audio`` (from sample ``first``) with what precedes the utterance's own voice silenced."""
        if self.at is None or first >= self.at:
            return audio
        out = audio.copy()
        out[:self.at - first] = 0.0
        return out
