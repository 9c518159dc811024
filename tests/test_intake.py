"""A live source's audio after the archive (streaming/intake.py): front ends, the engine's audio, the
seat-bleed copy and the VAD agree on where every sample is."""
import numpy as np

from courtscribe.asr.vad import VadEvent, VadStream
from courtscribe.config import RoomFrontEnd
from courtscribe.streaming.intake import Intake
from courtscribe.streaming.recent import RecentAudio

SR = 16_000


class Counting(VadStream):
    """A VAD stream that reports nothing and remembers what it was fed, and when."""

    def __init__(self, recent: RecentAudio):
        self.recent = recent
        self.fed = 0
        self.ahead = 0
        self.finals = 0

    def feed(self, audio: np.ndarray, *, final: bool = False) -> list[VadEvent]:
        self.fed += audio.size
        self.ahead = max(self.ahead, self.fed - self.recent.end)
        self.finals += final
        assert not (final and audio.size), "the end of input comes on its own"
        return []


def run(front: RoomFrontEnd, seconds: float = 3.0):
    recent = RecentAudio()
    vad = Counting(recent)
    room: list[tuple[int, int]] = []
    intake = Intake(front, vad, recent, lambda at, audio: room.append((at, audio.size)))
    x = np.random.default_rng(0).standard_normal(int(seconds * SR)).astype(np.float32) * 0.05
    pos = 0
    for n in np.random.default_rng(1).integers(50, 4000, size=10_000):
        if pos >= x.size:
            break
        intake.take(x[pos:pos + n])
        pos += n
    intake.finish()
    return x, recent, vad, room


def test_the_vad_never_runs_ahead_of_the_engines_audio():
    x, recent, vad, room = run(RoomFrontEnd(asr="rnnoise", vad="none"))  # the VAD's audio comes sooner
    assert vad.ahead == 0
    assert vad.fed == recent.end == x.size and vad.finals == 1


def test_the_seat_bleed_copy_is_the_engines_audio_where_it_lies():
    x, recent, vad, room = run(RoomFrontEnd(asr="wpe", vad="wpe"))
    assert sum(n for _, n in room) == recent.end == x.size
    assert all(at == sum(n for _, n in room[:k]) for k, (at, _) in enumerate(room))  # contiguous, in order
    assert vad.ahead == 0 and vad.fed == x.size


def test_without_front_ends_the_audio_passes_as_it_came():
    x, recent, vad, room = run(RoomFrontEnd(asr="none", vad="none"), seconds=1.0)
    assert np.array_equal(recent.slice(0, x.size), x)


def test_who_speaks_is_told_from_the_audio_as_it_came():
    """Speaker embeddings know rooms, not WPE's output: the voices' copy is the audio as it came."""
    x = np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.05
    recent = RecentAudio()
    intake = Intake(RoomFrontEnd(asr="wpe", vad="none"), Counting(recent), recent)
    intake.take(x)
    intake.finish()
    assert np.array_equal(intake.voices.slice(0, x.size), x)
    assert not np.array_equal(recent.slice(0, x.size), x)  # the engine hears WPE's output
    plain = RecentAudio()
    assert Intake(RoomFrontEnd(asr="none", vad="none"), Counting(plain), plain).voices is plain  # no copy
