"""The whole pipeline on real Mandarin clips: audio → VAD → Whisper → diarizer → record."""
import numpy as np
import pytest
import soundfile as sf

from courtscribe.text import for_scoring
from courtscribe.audio import decode
from courtscribe.records import Record, Role
from courtscribe.transcribe import transcribe_audio, transcribe_file

pytestmark = pytest.mark.slow


def check_timeline(record: Record) -> None:
    assert record.utterances, "no utterances"
    starts = [u.start_ms for u in record.utterances]
    assert starts == sorted(starts)
    by_speaker: dict[str, int] = {}
    for u in record.utterances:
        assert 0 <= u.start_ms <= u.end_ms <= record.source.duration_ms
        assert u.start_ms >= by_speaker.get(u.speaker, 0), f"{u.id} overlaps the previous line of {u.speaker}"
        by_speaker[u.speaker] = u.end_ms
        assert u.text.strip()
        for t in u.tokens:
            assert u.start_ms <= t.start_ms <= t.end_ms <= u.end_ms
    assert [u.id for u in record.utterances] == [f"u{i:05d}" for i in range(1, len(record.utterances) + 1)]


def cer(ref: str, hyp: str) -> float:
    import jiwer

    return jiwer.cer(for_scoring(ref), for_scoring(hyp))


def test_justice_clip_is_transcribed_accurately_with_timestamps(components, data_dir, manifest):
    record = transcribe_file(data_dir / "zh-smoke" / "justice.wav", components, speakers=1)
    check_timeline(record)
    text = "".join(u.text for u in record.utterances)
    assert cer(manifest["justice.wav"]["text"], text) <= 0.1, text
    assert "。" in text or "，" in text  # punctuated, full-width
    assert all(u.tokens for u in record.utterances)  # word timestamps from the engine
    assert record.pipeline.engine == "whisper" and record.pipeline.vad == "silero"


def test_market_clip_record_is_well_formed(components, data_dir):
    record = transcribe_file(data_dir / "zh-smoke" / "market_25s.wav", components)
    check_timeline(record)
    assert record.source.duration_ms == 25008
    assert sum(len(u.text) for u in record.utterances) > 60


def test_one_hour_of_silence_gives_an_empty_record_quickly(components, tmp_path):
    path = tmp_path / "recess.wav"
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", samplerate=16000, channels=1, subtype="PCM_16") as f:
        for _ in range(60):  # one hour, written a minute at a time; -90 dBFS dither, no speech
            f.write((rng.standard_normal(16000 * 60) * 3e-5).astype(np.float32))
    record = transcribe_file(path, components)
    assert record.source.duration_ms == 3_600_000
    assert record.utterances == []


def test_noise_only_gives_no_hallucinated_text(components, tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "hum.wav"
    t = np.arange(16000 * 20) / 16000
    sf.write(path, (0.02 * np.sin(2 * np.pi * 50 * t) + 0.003 * rng.standard_normal(t.size)).astype(np.float32), 16000)
    assert transcribe_file(path, components).utterances == []


def test_two_channels_each_attributed_to_its_role(components, data_dir, tmp_path, manifest):
    a = sf.read(data_dir / "zh-smoke" / "welcome.wav", dtype="float32")[0]
    b = sf.read(data_dir / "zh-smoke" / "custody.wav", dtype="float32")[0]
    n = a.size + b.size + 16000
    left, right = np.zeros(n, np.float32), np.zeros(n, np.float32)
    left[: a.size] = a  # the judge speaks first on channel 0 ...
    right[a.size + 16000:] = b  # ... then the plaintiff on channel 1
    path = tmp_path / "court.wav"
    sf.write(path, np.stack([left, right], axis=1), 16000)
    record = transcribe_audio(decode(path, mono=False), components,
                              roles={0: Role.presiding_judge, 1: Role.plaintiff})
    check_timeline(record)
    judge = "".join(u.text for u in record.utterances if u.role is Role.presiding_judge)
    plaintiff = "".join(u.text for u in record.utterances if u.role is Role.plaintiff)
    assert {u.channel for u in record.utterances} == {0, 1}
    assert cer(manifest["welcome.wav"]["text"], judge) < 0.3, judge
    assert cer(manifest["custody.wav"]["text"], plaintiff) < 0.4, plaintiff
    assert record.utterances[0].role is Role.presiding_judge and record.pipeline.diarizer == "channel"


def test_header_only_file_gives_empty_record(components, tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, np.float32), 16000)
    record = transcribe_file(path, components)
    assert record.utterances == [] and record.source.duration_ms == 0


def test_batched_windows_keep_their_own_text(components, data_dir):
    """Identical windows decoded in one batch: each gets its own text (segment starts are rounded)."""
    x = decode(data_dir / "zh-smoke" / "justice.wav").channel(0)[10310 * 16:13052 * 16]
    a, b = components.engine.transcribe_many([(x, 10310), (x, 50000)])
    assert a and b and a[0].text == b[0].text
    assert a[0].start_ms >= 10310 and b[0].start_ms >= 50000


def test_a_gap_keeps_its_place_when_the_line_around_it_starts_early():
    """Whisper started a segment at 0 s, its first word stretched over 5 s it skipped; the skipped
    speech is a flagged gap: it keeps its own times (where to listen), the line starts at its words."""
    from courtscribe.records.model import UNRECOGNIZED, Token, Utterance
    from courtscribe.transcribe import _tidy_timeline

    said = Utterance(id="a", start_ms=0, end_ms=10_000, speaker="说话人1", text="我同意调解。",
                     tokens=[Token(text="我", start_ms=0, end_ms=5_700), Token(text="同意调解。", start_ms=5_700,
                                                                            end_ms=10_000)])
    gap = Utterance(id="b", start_ms=200, end_ms=5_700, speaker="说话人1", text="", flags=[UNRECOGNIZED, "empty"])
    first, second = _tidy_timeline([said, gap], 20_000)
    assert (first.text, first.start_ms, first.end_ms) == ("", 200, 5_700)
    assert (second.text, second.start_ms, second.end_ms) == ("我同意调解。", 4_700, 10_000)
