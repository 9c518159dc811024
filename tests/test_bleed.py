"""Mic-per-seat courtrooms: a neighbour's speech leaking into a seat mic is recorded once, under the
seat that spoke it; two people really speaking at once both stay. Built from real clips."""
import jiwer
import numpy as np

from courtscribe.asr.text import for_scoring
from courtscribe.audio import Audio, decode
from courtscribe.diarization import bleed
from courtscribe.records import Role
from courtscribe.transcribe import transcribe_audio

SR = 16_000
SEATS = {0: ("justice.wav", 1.0, Role.presiding_judge), 1: ("custody.wav", 17.0, Role.plaintiff_agent),
         2: ("brexit.wav", 9.0, Role.defendant)}  # brexit overlaps justice for several seconds


def courtroom(data_dir, bleed_db=(-12, -20), delay_ms=(3, 6)):
    """Three seat mics; each speaker leaks into the next seat at -12 dB and the far one at -20 dB."""
    clips = {ch: decode(data_dir / "zh-smoke" / name).channel(0) for ch, (name, _, _) in SEATS.items()}
    total = int(40 * SR)
    direct = np.zeros((3, total), np.float32)
    for ch, (_, at, _) in SEATS.items():
        a = int(at * SR)
        direct[ch, a:a + clips[ch].size] = clips[ch]
    mics = direct.copy()
    for src in range(3):
        for dst in range(3):
            if src != dst:
                far = abs(src - dst) - 1
                d = delay_ms[far] * SR // 1000
                mics[dst, d:] += direct[src, :-d] * 10 ** (bleed_db[far] / 20)
    rng = np.random.default_rng(0)
    mics += rng.normal(0, 1e-3, mics.shape).astype(np.float32)  # room noise
    return Audio(mics, SR, SR, 3), clips


def test_correlated_louder_copy_is_bleed_and_real_overlap_is_not(data_dir):
    audio, _ = courtroom(data_dir)
    a = lambda ch, t: audio.channel(ch)[int(t * SR): int(t * SR) + 8_000]  # noqa: E731
    # 3 s: only the judge speaks; the plaintiff agent's mic carries the judge's bleed
    assert bleed.is_bleed(a(1, 3.0), [a(0, 3.0), a(2, 3.0)])
    assert not bleed.is_bleed(a(0, 3.0), [a(1, 3.0), a(2, 3.0)])
    # 11.5 s: judge and defendant both really speak, equally loud (at 11.0 s the judge pauses)
    assert not bleed.is_bleed(a(0, 11.5), [a(1, 11.5), a(2, 11.5)])
    assert not bleed.is_bleed(a(2, 11.5), [a(0, 11.5), a(1, 11.5)])


def test_every_utterance_lands_once_under_the_right_seat(data_dir, components, manifest):
    audio, clips = courtroom(data_dir)
    record = transcribe_audio(audio, components, roles={ch: role for ch, (_, _, role) in SEATS.items()})
    for ch, (name, at, role) in SEATS.items():
        lines = [u for u in record.utterances if u.channel == ch]
        assert lines and all(u.role == role for u in lines)
        # nothing on this seat outside the time its own speaker talked: no bleed transcribed
        end = at + clips[ch].size / SR
        assert all(at - 0.5 <= u.start_ms / 1000 and u.end_ms / 1000 <= end + 0.5 for u in lines), (name, lines)
        said = for_scoring("".join(u.text for u in lines))
        assert jiwer.cer(for_scoring(manifest[name]["text"]), said) < 0.35, (name, said)


def test_live_seat_mics_record_each_sentence_once(server, data_dir):
    """Two seat mics of one hearing streaming at once over the real server: the judge's sentences
    leak into the plaintiff agent's mic at -12 dB, and the agent's into the judge's; each sentence
    is stored once, under the seat that spoke it."""
    import asyncio

    import httpx

    from courtscribe.clients.stream_client import stream

    judge = decode(data_dir / "zh-smoke" / "justice.wav").channel(0)
    agent = decode(data_dir / "zh-smoke" / "custody.wav").channel(0)
    total = judge.size + agent.size + 2 * SR
    direct = np.zeros((2, total), np.float32)
    direct[0, :judge.size] = judge
    direct[1, judge.size + SR: judge.size + SR + agent.size] = agent
    d = 3 * SR // 1000
    mics = direct.copy()
    mics[1, d:] += direct[0, :-d] * 10 ** (-12 / 20)
    mics[0, d:] += direct[1, :-d] * 10 ** (-12 / 20)

    async def chunks(x):
        for i in range(0, x.size, 3_200):
            yield x[i:i + 3_200]

    async def main():
        return await asyncio.gather(*(stream(server.replace("http", "ws") + "/v1/stream", chunks(mics[ch]), speed=2,
                                             hearing_id="h-seats", channel=ch, role=role)
                                      for ch, role in ((0, "审判长"), (1, "原告代理人"))))

    asyncio.run(main())
    lines = httpx.get(f"{server}/v1/hearings/h-seats").json()["utterances"]
    assert lines
    for u in lines:
        if u["channel"] == 0:
            assert u["end_ms"] <= judge.size / 16 + 1_000, u  # the judge's seat: only while the judge spoke
        else:
            assert u["start_ms"] >= judge.size / 16 - 500, u  # the agent's seat: none of the judge's bleed
    judge_text = for_scoring("".join(u["text"] for u in lines if u["channel"] == 0))
    agent_text = for_scoring("".join(u["text"] for u in lines if u["channel"] == 1))
    assert judge_text and agent_text
