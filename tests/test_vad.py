import numpy as np
import pytest

from courtscribe.asr.vad import FsmnVad, SileroVad, active_islands, decode_windows
from courtscribe.audio import decode
from courtscribe.models import default_registry

# Speech in zh-smoke/vad_30s_48k.wav, per the data README: about 9.9-23.9 s and 26.0-27.2 s
# (FunASR's offline mode). Streaming VAD with an 800 ms end-silence splits the first stretch at its
# pauses, and silero does not call the short burst at 10.2 s speech (Whisper finds no words there),
# so the checks are: nothing outside the speech regions, and the speech inside them covered.
REGIONS = [(9700, 24400), (25700, 27600)]
CORE = [(12000, 23800), (26100, 27100)]


@pytest.fixture(scope="module")
def fsmn():
    return FsmnVad(default_registry().resolve("fsmn-vad-embedded"))


@pytest.fixture(scope="module")
def clip(data_dir):
    return decode(data_dir / "zh-smoke" / "vad_30s_48k.wav").channel(0)


def close(spans, expected, tol_ms):
    return len(spans) == len(expected) and all(abs(a - c) <= tol_ms and abs(b - d) <= tol_ms
                                               for (a, b), (c, d) in zip(spans, expected))


def overlap(spans, regions) -> int:
    return sum(max(0, min(b, d) - max(a, c)) for a, b in spans for c, d in regions)


def check_speech(spans):
    assert spans, "no speech found"
    assert overlap(spans, REGIONS) == sum(b - a for a, b in spans), f"speech outside {REGIONS}: {spans}"
    core = sum(b - a for a, b in CORE)
    assert overlap(spans, CORE) >= 0.9 * core, f"{spans} cover too little of {CORE}"


def test_fsmn_vad_real_weights_on_48k_clip(fsmn, clip):
    check_speech(fsmn.segments(clip))


def test_fsmn_streaming_matches_file_mode(fsmn, clip):
    """Live audio arrives in 200 ms pieces; the segments must be those of the whole file."""
    stream, opened, spans = fsmn.open_stream(chunk_ms=200), None, []
    step = 3200
    for pos in range(0, clip.size, step):
        for ev in stream.feed(clip[pos:pos + step], final=pos + step >= clip.size):
            if ev.start_ms is not None:
                opened = ev.start_ms
            if ev.end_ms is not None:
                spans.append((opened, ev.end_ms))
    assert close(spans, fsmn.segments(clip), 400), spans


def test_silero_agrees(clip):
    check_speech(SileroVad().segments(clip))


def test_progress_reports_every_sample(fsmn, clip):
    seen = []
    fsmn.segments(clip, progress=seen.append)
    assert sum(seen) == clip.size


def test_digital_silence_costs_nothing(fsmn):
    silence = np.zeros(16000 * 600, np.float32)  # ten minutes of a recess
    assert active_islands(silence) == []
    assert fsmn.segments(silence) == []


def test_islands_bridge_short_gaps():
    x = np.zeros(16000 * 20, np.float32)
    x[16000 * 2:16000 * 3] = 0.1
    x[16000 * 4:16000 * 5] = 0.1  # 1 s gap: bridged
    x[16000 * 15:16000 * 16] = 0.1  # 10 s gap: separate
    islands = active_islands(x)
    assert len(islands) == 2
    assert islands[0][0] == 16000 * 2 - 8000 and islands[0][1] == 16000 * 5 + 8000


def test_decode_windows_merge_split_and_pad():
    spans = [(1000, 2000), (2500, 4000), (9000, 10000), (20000, 95000)]
    windows = decode_windows(spans, max_ms=30000, total_ms=100000)
    assert windows[0] == (800, 4200)  # merged across a 0.5 s gap, padded 200 ms
    assert windows[1] == (8800, 10200)  # 5 s gap: its own window
    long = windows[2:]
    assert len(long) == 3 and all(e - s <= 30000 for s, e in long)  # padded, still within Whisper's 30 s
    assert long[0][0] == 19800 and long[-1][1] == 95200
    assert all(a[1] <= b[0] for a, b in zip(windows, windows[1:]))  # padding never overlaps


@pytest.mark.parametrize("load", ["stream", "file"])
def test_fsmn_threshold_setting_reaches_every_stream(load):
    """Court IT tunes the FSMN-VAD for noisy rooms in one setting; live and file VADs obey it."""
    from courtscribe.components import load_stream_vad, load_vad
    from courtscribe.config import Settings

    settings = Settings(fsmn_vad_threshold=0.25, vad="fsmn-vad")
    vad = (load_stream_vad if load == "stream" else load_vad)(settings, default_registry(settings))
    stream = vad.open_stream()
    stream.feed(np.zeros(3200, np.float32))
    assert stream.cache["stats"].speech_noise_thres == 0.25
    own = FsmnVad(default_registry().resolve("fsmn-vad-embedded")).open_stream()
    own.feed(np.zeros(3200, np.float32))
    assert own.cache["stats"].speech_noise_thres == 0.6  # unset: the model's own


def room_tone(seconds: int) -> np.ndarray:
    """Pink noise at -60 dBFS: a quiet courtroom between two speakers."""
    spec = np.fft.rfft(np.random.default_rng(7).standard_normal(16000 * seconds))
    tone = np.fft.irfft(spec / np.sqrt(np.maximum(np.arange(spec.size), 1)), 16000 * seconds)
    return (tone / np.std(tone) * 1e-3).astype(np.float32)


@pytest.mark.parametrize("clip, speech_ms", [("justice.wav", 440), ("welcome.wav", 950)])
def test_silero_finds_an_onset_after_a_long_silence_where_it_finds_it_after_a_short_one(data_dir, clip, speech_ms):
    """After 20 s of room tone silero's state is deep in silence and it used to call the first
    syllable late (justice.wav lost its first character): the same words must start the same."""
    words = decode(data_dir / "zh-smoke" / clip).channel(0)[speech_ms * 16:]
    vad = SileroVad()
    short = vad.segments(np.concatenate([room_tone(1), words]))[0][0] - 1000
    long = vad.segments(np.concatenate([room_tone(20), words]))[0][0] - 20000
    assert abs(long - short) <= 100, (short, long)
