"""The channel panel's level meter: dBFS of what a microphone sends, a few readings a second."""
import numpy as np

from courtscribe.streaming.levels import FLOOR_DB, LevelMeter, dbfs


def test_readings_are_rms_and_peak_in_dbfs_over_the_chunks_since_the_last():
    now = [0.0]
    meter = LevelMeter(every_s=0.25, clock=lambda: now[0])
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(1600) / 16000).astype(np.float32)
    assert meter.feed(tone) == (dbfs(0.5 / np.sqrt(2)), dbfs(0.5))  # the first reading comes at once
    assert (round(dbfs(0.5 / np.sqrt(2))), round(dbfs(0.5))) == (-9, -6)
    now[0] = 0.1
    assert meter.feed(tone) is None  # too soon: kept for the next reading
    now[0] = 0.3
    rms, peak = meter.feed(np.zeros(1600, np.float32))  # half tone, half silence
    assert abs(rms - dbfs(0.5 / 2)) < 0.2 and peak == dbfs(0.5)


def test_silence_reads_as_the_floor_and_an_empty_chunk_gives_no_reading():
    meter = LevelMeter(every_s=0)
    assert meter.feed(np.zeros(0, np.float32)) is None
    assert meter.feed(np.zeros(320, np.float32)) == (FLOOR_DB, FLOOR_DB)
