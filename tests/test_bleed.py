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
