"""diarization/known.py's rule, on voices whose prints are set by hand (a pitch per voice read back
as a direction): one name per voice and one voice per name, the nearest pairs first, and a voice
too far from every reference keeps its number. The real CAM++ path: tests/test_clients.py."""
import numpy as np

from courtscribe.diarization.embedding import SpeakerEncoder
from courtscribe.diarization.known import name_voices
from courtscribe.records.model import UNRECOGNIZED, Utterance

SR = 16000


class Pitch(SpeakerEncoder):
    """A piece's print: the direction its dominant frequency points to (angle = Hz / 1000 rad)."""

    name = "pitch"
    dim = 2

    def embed(self, audio: np.ndarray) -> np.ndarray:
        hz = np.argmax(np.abs(np.fft.rfft(audio))) * SR / audio.size
        return np.array([np.cos(hz / 1000), np.sin(hz / 1000)], np.float32)


def tone(hz: float, seconds: float, level: float = 0.3) -> np.ndarray:
    return (level * np.sin(2 * np.pi * hz * np.arange(int(seconds * SR)) / SR)).astype(np.float32)


def line(uid: str, speaker: str, start_s: float, seconds: float, *, flags=()) -> Utterance:
    return Utterance(id=uid, start_ms=int(start_s * 1000), end_ms=int((start_s + seconds) * 1000), channel=0,
                     speaker=speaker, text="" if flags else "某句话", flags=list(flags))


def test_each_voice_takes_the_nearest_free_name_and_a_far_one_keeps_its_number():
    audio = np.concatenate([tone(500, 3), tone(1500, 3), tone(3000, 3)])  # three voices
    lines = [line("a", "说话人1", 0, 3), line("b", "说话人2", 3, 3), line("c", "说话人3", 6, 3)]
    references = {"审判长": Pitch().embed(tone(520, 3)), "原告": Pitch().embed(tone(1480, 3))}
    named = name_voices(lines, [audio], Pitch(), references)
    assert [u.speaker for u in named] == ["审判长", "原告", "说话人3"]  # 3 kHz is 1.5 rad from both


def test_two_voices_near_one_name_do_not_both_take_it():
    audio = np.concatenate([tone(500, 3), tone(560, 3)])
    lines = [line("a", "说话人1", 0, 3), line("b", "说话人2", 3, 3)]
    named = name_voices(lines, [audio], Pitch(), {"证人": Pitch().embed(tone(550, 3))})
    assert [u.speaker for u in named] == ["说话人1", "证人"]  # 560 Hz is the nearer


def test_a_voice_is_known_by_its_recognized_lines_only():
    """A text-less flagged stretch (someone else's cough, a neighbour) never names a voice."""
    audio = np.concatenate([tone(500, 3), tone(3000, 3, level=0.9)])  # louder: it would rule the print
    lines = [line("a", "说话人1", 0, 3), line("g", "说话人1", 3, 3, flags=[UNRECOGNIZED])]
    named = name_voices(lines, [audio], Pitch(), {"审判长": Pitch().embed(tone(510, 3))})
    assert [u.speaker for u in named] == ["审判长", "审判长"]  # the flagged line goes with its voice


def test_the_nearest_pair_is_named_first_not_the_best_total():
    """A is 0.90 from X and 0.45 from Y; B is 0.50 from X and far from Y. The best total pairing
    (A→Y, B→X) would put Y's name on a voice that is X's: A is X, B keeps its number."""
    audio = np.concatenate([tone(1451, 3), tone(2047, 3)])  # angles 1.451 and 2.047 rad
    lines = [line("a", "说话人1", 0, 3), line("b", "说话人2", 3, 3)]
    references = {"X": Pitch().embed(tone(1000, 3)), "Y": Pitch().embed(tone(347, 3))}
    assert [u.speaker for u in name_voices(lines, [audio], Pitch(), references)] == ["X", "说话人2"]


def test_a_seats_role_is_never_renamed():
    audio = tone(500, 3)
    lines = [line("a", "审判长", 0, 3)]
    assert name_voices(lines, [audio], Pitch(), {"原告": Pitch().embed(tone(500, 3))})[0].speaker == "审判长"


def test_a_voice_about_as_near_two_names_keeps_its_number():
    """One voice the diarizer heard for two people alike (or one voice alike to two samples) is
    nobody's for sure: it keeps its number, never the nearer of two names by a hair."""
    audio = np.concatenate([tone(1000, 3), tone(3000, 3)])
    lines = [line("a", "说话人1", 0, 3), line("b", "说话人2", 3, 3)]
    references = {"原告": Pitch().embed(tone(960, 3)), "被告": Pitch().embed(tone(1050, 3)),
                  "证人": Pitch().embed(tone(2950, 3))}
    assert [u.speaker for u in name_voices(lines, [audio], Pitch(), references)] == ["说话人1", "证人"]
