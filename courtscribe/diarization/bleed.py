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

import numpy as np

SR = 16_000
BLOCK_MS = 500
MAX_LAG_MS = 30
MARGIN_DB = 6.0
MIN_CORRELATION = 0.6
MIN_SPAN_MS = 300

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


def is_bleed(block: np.ndarray, others: list[np.ndarray], *, margin_db: float = MARGIN_DB,
             min_correlation: float = MIN_CORRELATION) -> bool:
    own = _rms(block)
    if own == 0.0:
        return False
    for other in others:
        if _rms(other) >= own * 10 ** (margin_db / 20) and \
                correlation(block, other, MAX_LAG_MS * SR // 1000) >= min_correlation:
            return True
    return False


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
