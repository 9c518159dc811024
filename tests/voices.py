"""Voices a test can tell apart by construction, for who-said-what logic (turns, strays, live
labels) without the speaker models' numerics: each voice is a pure tone, the encoder's embedding
says which tones sound, the segmenter hears a tone as a local speaker as segmentation-3.0 hears a
voice, and a scripted VAD and engine say which words were spoken when. The models themselves are
tested on real speech elsewhere (test_turns.py, test_diarization.py)."""
from __future__ import annotations

import asyncio

import numpy as np

from courtscribe.asr.base import DecodeOptions, Engine, EngineStream, Hypothesis
from courtscribe.asr.vad import Vad, VadEvent, VadStream
from courtscribe.diarization.embedding import SpeakerEncoder
from courtscribe.diarization.segmentation import Segmentation
from courtscribe.records.model import Token

SR = 16000
TONES = [200, 300, 450, 650, 900, 1200]
JUDGE, CLERK, WITNESS = 200, 450, 900


def voice(tone: int, ms: int, amp: float = 0.3) -> np.ndarray:
    t = np.arange(ms * SR // 1000) / SR
    return (amp * np.sin(2 * np.pi * tone * t)).astype(np.float32)


def silence(ms: int) -> np.ndarray:
    return np.zeros(ms * SR // 1000, np.float32)


class ToneEncoder(SpeakerEncoder):
    """One axis per tone: two voices are orthogonal, one voice is always itself."""
    name, dim = "tone", 8

    def embed(self, audio: np.ndarray) -> np.ndarray:
        spec = np.abs(np.fft.rfft(audio.astype(np.float64)))
        freqs = np.fft.rfftfreq(audio.size, 1 / SR)
        v = np.zeros(self.dim)
        for i, tone in enumerate(TONES):
            v[i] = spec[(freqs > tone - 20) & (freqs < tone + 20)].sum()
        v[-1] = 1e-3 * spec.sum() + 1e-9
        return (v / np.linalg.norm(v)).astype(np.float32)


class ToneSegmenter:
    """segmentation-3.0's shape: 10 s windows every 1 s, ~17 ms frames, up to 3 local speakers
    numbered by first appearance in the window; a frame holds a voice where its tone sounds."""
    name = "tone-seg"
    frame_ms = frame_len_ms = 16.875

    def __init__(self):
        self.window, self.step = 10 * SR, SR

    def starts(self, samples: int) -> list[int]:
        if samples <= self.window:
            return [0]
        out = list(range(0, samples - self.window + 1, self.step))
        return out + ([samples - self.window] if out[-1] + self.window < samples else [])

    def starts_over(self, speech, samples: int) -> list[int]:
        spans = [(a * SR // 1000, b * SR // 1000) for a, b in speech]
        return [s for s in self.starts(samples) if any(a < s + self.window and b > s for a, b in spans)]

    def __call__(self, audio: np.ndarray, starts=None) -> Segmentation:
        starts = self.starts(audio.size) if starts is None else starts
        frames = int(10_000 / self.frame_ms)
        act = np.zeros((len(starts), frames, 3), np.uint8)
        hop = self.frame_ms * SR / 1000
        t = np.arange(512) / SR
        basis = np.stack([np.exp(-2j * np.pi * tone * t) for tone in TONES]) * np.hanning(512)
        for w, s in enumerate(starts):
            order: dict[int, int] = {}
            for f in range(frames):
                c = s + int((f + 0.5) * hop)
                if c >= audio.size:
                    break
                piece = np.zeros(512)
                lo = max(0, c - 256)
                got = audio[lo:c + 256]
                piece[lo - (c - 256):lo - (c - 256) + got.size] = got
                for i in np.nonzero(np.abs(basis @ piece) > 8)[0].tolist():
                    if i not in order and len(order) < 3:
                        order[i] = len(order)
                    if i in order:
                        act[w, f, order[i]] = 1
        return Segmentation(np.array(starts, np.int64) * 1000 // SR, act, self.frame_ms, self.frame_len_ms)


class _ScriptVadStream(VadStream):
    def __init__(self, spans):
        self.spans, self.fed, self.sent = spans, 0, set()

    def feed(self, audio, *, final=False):
        self.fed += audio.size
        now = self.fed * 1000 // SR
        out = []
        for i, (a, b) in enumerate(self.spans):
            if ("s", i) not in self.sent and now >= a:
                self.sent.add(("s", i))
                out.append(VadEvent(a, None))
            if ("e", i) not in self.sent and ("s", i) in self.sent and (now >= b + 300 or final):
                self.sent.add(("e", i))
                out.append(VadEvent(None, b))
        return out


class ScriptVad(Vad):
    """Speech where the script says (ms spans)."""
    name = "script"

    def __init__(self, spans):
        self.spans = spans

    def open_stream(self, chunk_ms=200):
        return _ScriptVadStream(self.spans)


class _Silent(EngineStream):
    def accept(self, audio):
        return None

    def finalize(self):
        return []


class ScriptEngine(Engine):
    """The words of the script, (text, start_ms, end_ms) in stream time: a decode of a stretch
    returns those whose middle lies in it, as one sentence."""
    name = model_name = "script"

    def __init__(self, words):
        self.words = words

    def transcribe(self, audio, *, offset_ms=0, options=DecodeOptions()):
        end = offset_ms + audio.size * 1000 // SR
        said = [w for w in self.words if offset_ms <= (w[1] + w[2]) / 2 < end]
        if not said:
            return []
        return [Hypothesis(text="".join(w[0] for w in said), start_ms=said[0][1], end_ms=said[-1][2], language="zh",
                           tokens=[Token(text=t, start_ms=a, end_ms=b, prob=0.9) for t, a, b in said])]

    def transcribe_many(self, pieces, options=DecodeOptions()):
        return [self.transcribe(a, offset_ms=o, options=options) for a, o in pieces]

    def open_stream(self, *, offset_ms=0, options=DecodeOptions()):
        return _Silent()


def run_live(audio, spans, words, *, speakers=None, channel=0, role=None, room=None, engine=None, pause=None):
    """A live session of one source over the script (``engine``: a ScriptEngine of the words, or one
    given); the lines it delivered. ``pause(ms)``: awaited after each chunk (ms fed so far)."""
    from courtscribe.streaming.scheduler import DecodeScheduler
    from courtscribe.streaming.session import StreamSession
    from courtscribe.streaming.source import SessionConfig, Sinks

    engine = engine or ScriptEngine(words)

    async def emit(event):
        pass

    async def main():
        scheduler = DecodeScheduler(engine)
        sid = scheduler.admit()
        session = StreamSession(engine, ScriptVad(spans), scheduler, sid,
                                SessionConfig(hearing_id="h", channel=channel, role=role), emit,
                                Sinks(speakers=speakers, room=room))
        for i in range(0, audio.size, SR // 5):
            await session.feed(audio[i:i + SR // 5])
            await asyncio.sleep(0)
            if pause is not None:
                await pause(min(audio.size, i + SR // 5) * 1000 // SR)
        lines = await session.finish()
        await scheduler.close()
        return lines
    return asyncio.run(main())
