"""The audio archive: segments as audio arrives, fsync'd, FLAC when finished, recovered after a crash."""
import numpy as np
import soundfile as sf

from courtscribe.audio import float_to_pcm16, pcm16_to_float
from courtscribe.records import archive


def _pcm_roundtrip(x):
    return pcm16_to_float(float_to_pcm16(x))


def test_segments_rotate_and_read_back_across_them(tmp_path):
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(16000 * 25) * 0.1).astype(np.float32)
    rec = archive.ChannelRecorder(tmp_path, "h1", 2, start_ms=5000, segment_s=10)
    for i in range(0, audio.size, 3200):
        rec.write(audio[i:i + 3200])
    kinds = [p.suffix for _, p in archive.segments(tmp_path, "h1", 2)]
    assert kinds == [".flac", ".flac", ".part"]  # the third is still being recorded
    assert archive.recorded_ms(tmp_path, "h1", 2) == 30000
    got = archive.read(tmp_path, "h1", 2, 12000, 27000)  # spans all three segments, the open one too
    np.testing.assert_array_equal(got, _pcm_roundtrip(audio[7 * 16000:22 * 16000]))
    rec.close()
    assert [(ms, p.name) for ms, p in archive.segments(tmp_path, "h1", 2)] == [
        (5000, "000000005000.flac"), (15000, "000000015000.flac"), (25000, "000000025000.flac")]
    assert sf.info(tmp_path / "h1" / "ch2" / "000000025000.flac").frames == 16000 * 5
    before = archive.read(tmp_path, "h1", 2, 0, 6000)
    assert not before[:16000 * 5].any() and before[16000 * 5:].any()  # silence where nothing was recorded


def test_an_open_segment_left_by_a_crash_is_finished_on_recovery(tmp_path):
    audio = (np.sin(np.arange(16000 * 3) / 10) * 0.3).astype(np.float32)
    rec = archive.ChannelRecorder(tmp_path, "h2", 0, start_ms=0, sync_s=0)  # fsync every write
    rec.write(audio)
    del rec  # the process dies: no close()
    finished = archive.recover(tmp_path)
    assert [p.name for p in finished] == ["000000000000.flac"]
    np.testing.assert_array_equal(archive.read(tmp_path, "h2", 0, 0, 3000), _pcm_roundtrip(audio))
    assert archive.recover(tmp_path) == []


def test_a_stretch_inside_one_segment_or_past_the_recording_reads_exactly(tmp_path):
    rng = np.random.default_rng(1)
    audio = (rng.standard_normal(16000 * 25) * 0.1).astype(np.float32)
    rec = archive.ChannelRecorder(tmp_path, "h3", 0, start_ms=0, segment_s=10)
    rec.write(audio)
    rec.close()
    np.testing.assert_array_equal(archive.read(tmp_path, "h3", 0, 11_500, 13_250),
                                  _pcm_roundtrip(audio[11_500 * 16: 13_250 * 16]))
    tail = archive.read(tmp_path, "h3", 0, 24_000, 27_000)  # the last second, then nothing recorded
    np.testing.assert_array_equal(tail[:16000], _pcm_roundtrip(audio[24 * 16000:]))
    assert tail.size == 3 * 16000 and not tail[16000:].any()


def test_a_replica_starting_up_leaves_a_segment_another_is_recording_to_its_recorder(tmp_path):
    """Two gateway replicas share the archive: one starting (or restarting) recovers what a crash left
    open, never the segment the other is still recording into (its audio would stop there)."""
    audio = (np.sin(np.arange(16000 * 4) / 10) * 0.3).astype(np.float32)
    live = archive.ChannelRecorder(tmp_path, "h3", 0, start_ms=0, sync_s=0)
    live.write(audio[:16000 * 2])
    crashed = tmp_path / "h4" / "ch0" / "000000000000.part"  # a replica that died mid-hearing
    crashed.parent.mkdir(parents=True)
    crashed.write_bytes(float_to_pcm16(audio[:16000]))
    assert [p.parent.parent.name for p in archive.recover(tmp_path)] == ["h4"]
    live.write(audio[16000 * 2:])
    live.close()
    np.testing.assert_array_equal(archive.read(tmp_path, "h3", 0, 0, 4000), _pcm_roundtrip(audio))
