from pathlib import Path

import numpy as np
import pytest

from courtscribe.audio import Audio, decode
from courtscribe.diarization import ChannelDiarizer
from courtscribe.diarization.embedding import EmbeddingDiarizer
from courtscribe.records import Role, Utterance


def utt(i, start, end, channel=0) -> Utterance:
    return Utterance(id=f"u{i}", start_ms=start, end_ms=end, channel=channel, speaker="", text=f"第{i}句")


def rttm_turns(path: Path, min_ms: int = 1000) -> list[tuple[int, int, str]]:
    turns = []
    for line in path.read_text().splitlines():
        f = line.split()
        start, dur = int(float(f[3]) * 1000), int(float(f[4]) * 1000)
        if dur >= min_ms:
            turns.append((start, start + dur, f[7]))
    return turns


def test_channel_diarizer_maps_roles_and_numbers_unmapped_channels():
    audio = Audio(np.zeros((3, 16000), np.float32), 16000, 16000, 3)
    out = ChannelDiarizer({0: Role.presiding_judge, 2: Role.defendant_agent}).assign(
        [utt(1, 0, 100, 0), utt(2, 100, 200, 1), utt(3, 200, 300, 2)], audio)
    assert [(u.speaker, u.role) for u in out] == [("审判长", Role.presiding_judge), ("说话人2", None),
                                                  ("被告代理人", Role.defendant_agent)]
    assert [u.text for u in out] == ["第1句", "第2句", "第3句"]


@pytest.fixture(scope="module")
def sample(data_dir):
    return decode(data_dir / "diarization" / "sample.wav"), rttm_turns(data_dir / "diarization" / "sample.rttm")


def test_embedding_diarizer_separates_the_two_reference_speakers(components, sample):
    """Utterances cut at the reference turns: the two RTTM speakers get two different labels."""
    audio, turns = sample
    utterances = [utt(i, s, e) for i, (s, e, _) in enumerate(turns)]
    out = EmbeddingDiarizer(components.speaker_encoder(), num_speakers=2).assign(utterances, audio)
    mapping: dict[str, set[str]] = {}
    for (_, _, ref), u in zip(turns, out):
        mapping.setdefault(ref, set()).add(u.speaker)
    assert all(len(v) == 1 for v in mapping.values()), mapping
    assert len(set.union(*mapping.values())) == 2
    assert out[0].speaker == "说话人1"  # numbered by first appearance


def test_embedding_diarizer_auto_keeps_one_speaker_as_one(components, data_dir):
    audio = decode(data_dir / "zh-smoke" / "justice.wav")
    utterances = [utt(1, 100, 4690), utt(2, 5020, 10030), utt(3, 10310, 13030)]
    out = EmbeddingDiarizer(components.speaker_encoder()).assign(utterances, audio)
    assert {u.speaker for u in out} == {"说话人1"}


def test_short_utterances_follow_the_previous_speaker(components, sample):
    audio, _ = sample
    out = EmbeddingDiarizer(components.speaker_encoder(), num_speakers=2).assign(
        [utt(1, 10570, 14700), utt(2, 14700, 15000)], audio)
    assert out[1].speaker == out[0].speaker


def test_bad_speaker_count():
    with pytest.raises(ValueError):
        EmbeddingDiarizer(encoder=None, num_speakers=0)
