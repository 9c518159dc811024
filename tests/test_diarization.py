from pathlib import Path

import numpy as np
import pytest

from courtscribe.audio import Audio, decode
from courtscribe.diarization import ChannelDiarizer
from courtscribe.diarization.clustering import WindowDiarizer
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


def test_window_diarizer_separates_the_two_reference_speakers(components, sample):
    """Utterances cut at the reference turns: the two RTTM speakers get two different labels."""
    audio, turns = sample
    utterances = [utt(i, s, e) for i, (s, e, _) in enumerate(turns)]
    out = WindowDiarizer(components.speaker_encoder(), num_speakers=2).assign(utterances, audio)
    mapping: dict[str, set[str]] = {}
    for (_, _, ref), u in zip(turns, out):
        mapping.setdefault(ref, set()).add(u.speaker)
    assert all(len(v) == 1 for v in mapping.values()), mapping
    assert len(set.union(*mapping.values())) == 2
    assert out[0].speaker == "说话人1"  # numbered by first appearance


def test_window_diarizer_auto_keeps_one_speaker_as_one(components, data_dir):
    audio = decode(data_dir / "zh-smoke" / "justice.wav")
    utterances = [utt(1, 100, 4690), utt(2, 5020, 10030), utt(3, 10310, 13030)]
    out = WindowDiarizer(components.speaker_encoder()).assign(utterances, audio)
    assert {u.speaker for u in out} == {"说话人1"}


def test_short_utterances_follow_the_previous_speaker(components, sample):
    audio, _ = sample
    out = WindowDiarizer(components.speaker_encoder(), num_speakers=2).assign(
        [utt(1, 10570, 14000), utt(2, 16000, 16300)], audio)  # 300 ms alone: too short to embed
    assert out[1].speaker == out[0].speaker


def test_bad_speaker_count():
    with pytest.raises(ValueError):
        WindowDiarizer(encoder=None, num_speakers=0)


# -- live diarization and enrollment ----------------------------------------------------------
from courtscribe.diarization.embedding import EncoderError, enrollment_embedding  # noqa: E402
from courtscribe.diarization.online import OnlineDiarizer  # noqa: E402




@pytest.fixture(scope="module")
def voices(data_dir):
    """Three different people (the zh-smoke clips' speakers: foxconn and kfc share a news anchor)."""
    return {n: decode(data_dir / "zh-smoke" / f"{n}.wav").channel(0) for n in ("justice", "market_25s", "custody")}


def test_online_diarizer_labels_turns_as_they_come(components, voices):
    d = OnlineDiarizer(components.speaker_encoder())
    a, b = voices["justice"], voices["market_25s"]
    turns = [("u1", a[:64_000]), ("u2", b[:80_000]), ("u3", a[64_000:160_000]), ("u4", b[80_000:240_000])]
    got = [d.add(uid, x, i * 10_000).speaker for i, (uid, x) in enumerate(turns)]
    assert got == ["说话人1", "说话人2", "说话人1", "说话人2"]
    assert d.add("u5", a[:3_000], 50_000).speaker is None  # 190 ms: too short to tell anyone apart


def test_enrolled_people_get_their_names_from_the_first_line(components, voices):
    enc = components.speaker_encoder()
    d = OnlineDiarizer(enc)
    d.enroll("张三", enrollment_embedding(enc, voices["justice"][:80_000]))
    d.enroll("李四", enrollment_embedding(enc, voices["market_25s"][:80_000]))
    assert d.add("u1", voices["market_25s"][160_000:300_000], 0).speaker == "李四"
    assert d.add("u2", voices["justice"][100_000:200_000], 9_000).speaker == "张三"
    assert d.add("u3", voices["custody"], 20_000).speaker == "说话人1"  # nobody enrolled this voice


def test_a_voice_as_near_two_enrolled_people_is_flagged_not_given_to_one(components, voices):
    """Two participants whose samples sound alike (here: one sample enrolled under two names): a
    line of that voice is either's by a hair, so it goes out flagged 发言人待核, never unflagged."""
    import asyncio

    from courtscribe.records.model import SPEAKER_UNSURE, Participant, Role, Utterance
    from courtscribe.streaming.speakers import LiveSpeakers

    enc = components.speaker_encoder()
    sample = enrollment_embedding(enc, voices["justice"][:80_000])
    d = OnlineDiarizer(enc)
    d.enroll("张三", sample)
    d.enroll("李四", sample)
    got = d.add("u1", voices["justice"][100_000:200_000], 0)
    assert got.speaker in ("张三", "李四") and not got.sure
    live = LiveSpeakers(enc, [(Participant(role=Role.plaintiff, name="张三"), sample.tobytes()),
                              (Participant(role=Role.defendant, name="李四"), sample.tobytes())])
    line = Utterance(id="u1", start_ms=0, end_ms=6_250, speaker="", text="我同意。")
    said, _, _ = asyncio.run(live.assign(line, voices["justice"][100_000:200_000]))
    assert said.speaker in ("张三", "李四") and SPEAKER_UNSURE in said.flags


def test_a_line_a_person_labelled_is_never_relabelled(components, voices):
    d = OnlineDiarizer(components.speaker_encoder())
    d.add("u1", voices["justice"][:64_000], 0)
    d.fix("u1", "书记员")
    for i in range(4):
        assert all(uid != "u1" for uid, _ in d.add(f"v{i}", voices["market_25s"][i * 64_000:(i + 1) * 64_000], i).updates)


def test_enrollment_refuses_short_or_silent_audio(components, voices):
    enc = components.speaker_encoder()
    with pytest.raises(EncoderError, match="at least 1500 ms"):
        enrollment_embedding(enc, voices["justice"][:16_000])
    with pytest.raises(EncoderError, match="silence"):
        enrollment_embedding(enc, np.zeros(5 * 16_000, np.float32))


def test_a_voice_the_clerk_named_carries_the_name_on_its_next_lines(components, voices):
    """Naming 说话人1 mid-hearing: the live labeller writes that voice's next lines under the person."""
    import asyncio

    from courtscribe.records.model import Role
    from courtscribe.streaming.speakers import Label, LiveSpeakers

    live = LiveSpeakers(components.speaker_encoder())
    a = voices["justice"]

    def line(uid, start):
        return Utterance(id=uid, start_ms=start, end_ms=start + 4000, channel=0, speaker="", text="…")
    first, _, _ = asyncio.run(live.assign(line("u1", 0), a[:64_000]))
    assert first.speaker == "说话人1"
    live.name("说话人1", Label("原告 张三", Role.plaintiff, "张三"))
    later, _, _ = asyncio.run(live.assign(line("u2", 9_000), a[64_000:160_000]))
    assert (later.speaker, later.role, later.participant) == ("原告 张三", Role.plaintiff, "张三")
    live.name("说话人1", None)  # undone
    again, _, _ = asyncio.run(live.assign(line("u3", 20_000), a[160_000:240_000]))
    assert again.speaker == "说话人1"


def test_a_reconnected_source_keeps_each_voices_number_and_name(components, voices):
    """Before the reconnect: justice's voice was 说话人1 (a clerk named it 原告 张三), market's
    说话人2. The new connection's labeller learns both again from the archived lines: market's next
    line is 说话人2 again, a new voice is 说话人3 (never a number someone else had), and the name
    stays on 说话人1's next line."""
    import asyncio

    from courtscribe.records.reading import HeardVoice
    from courtscribe.streaming.speakers import LiveSpeakers

    a, b, c = voices["justice"], voices["market_25s"], voices["custody"]
    archived = np.concatenate([a[:80_000], b[:160_000]])  # the channel's recording so far: a at 0 s, b at 5 s
    heard = [HeardVoice("说话人1", [(0, 5_000)], ("原告 张三", Role.plaintiff, "张三")),
             HeardVoice("说话人2", [(5_000, 15_000)])]
    live = LiveSpeakers(components.speaker_encoder())
    live.recall(heard, lambda start, end: archived[start * 16:end * 16])

    def line(uid, start):
        return Utterance(id=uid, start_ms=start, end_ms=start + 5000, channel=0, speaker="", text="…")
    again, _, _ = asyncio.run(live.assign(line("u1", 20_000), b[160_000:320_000]))
    new, _, _ = asyncio.run(live.assign(line("u2", 30_000), c[:96_000]))
    named, _, _ = asyncio.run(live.assign(line("u3", 40_000), a[80_000:]))
    assert (again.speaker, new.speaker) == ("说话人2", "说话人3")
    assert (named.speaker, named.role, named.participant) == ("原告 张三", Role.plaintiff, "张三")


def test_a_voice_whose_audio_is_gone_still_keeps_its_number(components, voices):
    """Nothing archived for 说话人4 (a disk restored without it): a new voice is 说话人5, not 说话人1."""
    import asyncio

    from courtscribe.records.reading import HeardVoice
    from courtscribe.streaming.speakers import LiveSpeakers

    live = LiveSpeakers(components.speaker_encoder())
    live.recall([HeardVoice("说话人4", [(0, 4_000)])], lambda start, end: np.zeros((end - start) * 16, np.float32))
    line = Utterance(id="u1", start_ms=9_000, end_ms=14_000, channel=0, speaker="", text="…")
    first, _, _ = asyncio.run(live.assign(line, voices["custody"][:80_000]))
    assert first.speaker == "说话人5"


class _Prints:
    """Voice prints given by hand (``add_voice`` takes them as they are): no audio is embedded."""
    name, dim = "prints", 3


def test_a_voice_between_two_speakers_is_in_doubt_before_it_is_learnt_from():
    """Sureness is asked of the speakers as they stood when the voice was heard: learning the
    voice into the nearer one first would make any voice sure of it. And a voice as near a speaker
    its utterance's other voice took is in doubt too (two voices alike must not swap unflagged)."""
    d = OnlineDiarizer(_Prints())
    d.add_voice(np.array([1.0, 0, 0], np.float32))  # 说话人1
    d.add_voice(np.array([0, 1.0, 0], np.float32), exclude={"说话人1"})  # 说话人2
    between = np.array([1.0, 1.0, 0], np.float32) / np.sqrt(2)
    first = d.add_voice(between)
    assert first.speaker in ("说话人1", "说话人2") and not first.sure
    other = d.add_voice(between, exclude={first.speaker}, learn=False)
    assert other.speaker not in (None, first.speaker) and not other.sure
    clear = d.add_voice(np.array([0, 0.1, 1.0], np.float32), learn=False)
    assert clear.speaker is None and clear.sure  # like nobody: a stray, not a doubted speaker
    assert d.add_voice(np.array([0.05, 1.0, 0], np.float32), learn=False).sure  # clearly 说话人2
