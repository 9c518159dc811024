"""Short answers on seat microphones (一问一答): a prompt 没有。 is not taken for the questioner's
bleed and dropped, its bleed on the questioner's mic is not put in the questioner's line, and
an answer is never printed before the question it answers (transcribe.py, diarization/bleed.py,
diarization/attribute.py). Real speech from zh-smoke; the engine is not run: its words are given."""
import numpy as np

from courtscribe.asr.base import Hypothesis
from courtscribe.audio import decode
from courtscribe.diarization import attribute, bleed
from courtscribe.records.model import Token
from courtscribe.transcribe import _neighbours_bleed

SR = 16_000
BLEED_DB = -20


def _seats(data_dir) -> tuple[np.ndarray, np.ndarray]:
    """Two seat mics, 10 s: the judge speaks 0–4 s and 5.5–9 s (justice.wav), the party answers
    4.2–4.8 s (a slice of custody.wav); each voice leaks into the other mic 20 dB down."""
    judge, party = np.zeros(10 * SR, np.float32), np.zeros(10 * SR, np.float32)
    words = decode(data_dir / "zh-smoke" / "justice.wav").channel(0)
    judge[:4 * SR] = words[:4 * SR]
    judge[int(5.5 * SR):9 * SR] = words[4 * SR:int(7.5 * SR)]
    answer = decode(data_dir / "zh-smoke" / "custody.wav").channel(0)[SR:int(1.6 * SR)]
    party[int(4.2 * SR):int(4.8 * SR)] = answer / max(1e-6, float(np.abs(answer).max())) * 0.5
    leak = 10 ** (BLEED_DB / 20)
    return judge + leak * party, party + leak * judge


def test_a_prompt_answer_on_its_own_seat_is_not_taken_for_the_questioners_bleed(data_dir):
    judge, party = _seats(data_dir)
    speech = [[(0, 4100), (5400, 9100)], [(4150, 4850)]]
    # the answer's stretch on its own seat, without words from the engine: kept (flagged), not dropped
    assert not _neighbours_bleed((4150, 4850), 1, [[(0, 4900), (5400, 9100)], [(4150, 4850)]], [judge, party], SR)
    # what the judge's voice leaves on the party's mic is the judge's
    assert _neighbours_bleed((1000, 1800), 1, speech, [judge, party], SR)


def test_the_answers_bleed_is_cut_out_of_the_questioners_line(data_dir):
    judge, party = _seats(data_dir)
    words = [("请", 3000, 3400), ("回答", 3400, 3900), ("没有", 4250, 4750), ("你", 5600, 5900), ("当时", 5900, 6400)]
    line = Hypothesis(text="请回答。没有。你当时", start_ms=3000, end_ms=6400,
                      tokens=[Token(text=w, start_ms=a, end_ms=b) for w, a, b in words])
    kept = bleed.own_words(line, judge, [party])
    assert [h.text for h in kept] == ["请回答。", "你当时"]
    assert kept[0].end_ms <= 4250 and kept[1].start_ms >= 4750
    assert bleed.own_words(line, party, [judge])[0].text == "没有。"  # on its own seat it stays


def test_a_seats_line_is_cut_where_another_seat_spoke_in_a_pause_of_it():
    words = [("三千五百元", 3500, 4900), ("愿意", 7400, 8100)]
    line = Hypothesis(text="三千五百元。愿意。", start_ms=3500, end_ms=8100,
                      tokens=[Token(text=w, start_ms=a, end_ms=b) for w, a, b in words])
    assert [h.text for h in attribute.cut_across(line, [(5600, 7300)])] == ["三千五百元。", "愿意。"]
    assert attribute.cut_across(line, [(4800, 5000)]) == [line]  # another voice's edge only
    # a word the engine stretched back over the question it answers is placed after the question
    stretched = Hypothesis(text="属实没有", start_ms=4400, end_ms=8500,
                           tokens=[Token(text="属实", start_ms=4400, end_ms=5300),
                                   Token(text="没有", start_ms=5700, end_ms=8500)])
    first, second = attribute.cut_across(stretched, [(5900, 7950)])
    assert (first.text, second.text) == ("属实", "没有") and second.start_ms >= 7300


# -- one mixed microphone: a short answer little like anyone is flagged, never sure ------------
def test_words_in_a_stretch_nobody_is_sure_of_are_a_flagged_line_of_their_own():
    from courtscribe.diarization.turns import Turn
    from courtscribe.records.model import SPEAKER_UNSURE

    turns = [Turn(0, 8600, "说话人1"), Turn(8600, 8960, "说话人1", sure=False)]
    words = [("你", 5300, 5700), ("当时", 5700, 6100), ("对", 8620, 8800)]
    line = Hypothesis(text="你当时？对。", start_ms=5300, end_ms=8800,
                      tokens=[Token(text=w, start_ms=a, end_ms=b) for w, a, b in words])
    question, answer = attribute.split([line], turns)
    assert (question.text, SPEAKER_UNSURE in question.flags) == ("你当时？", False)
    assert (answer.text, SPEAKER_UNSURE in answer.flags) == ("对。", True)
    # a word the engine placed mostly before such a stretch stays, but its line is flagged
    early = Hypothesis(text="没有。你", start_ms=4320, end_ms=5700,
                       tokens=[Token(text="没有", start_ms=4320, end_ms=4640), Token(text="你", start_ms=5300,
                                                                                 end_ms=5700)])
    [line] = attribute.split([early], [Turn(0, 4556, "说话人1"), Turn(4556, 4826, "说话人2", sure=False),
                                       Turn(5000, 6000, "说话人1")])
    assert SPEAKER_UNSURE in line.flags


def test_a_stray_voice_one_window_heard_apart_holds_its_frames_and_a_doubt_splits_a_turn():
    from courtscribe.diarization.turns import _by_doubt, _strays_heard

    on = np.zeros((10, 3), bool)
    on[:, 0] = True  # two windows heard the question and the answer as one unit of speaker 0
    strays = np.zeros((10, 3))
    strays[6:9, 2] = 1  # a third window heard frames 6-8 as a unit of its own, unlike anyone
    _strays_heard(on, strays)
    assert on[:6, 0].all() and not on[6:9, 0].any() and on[6:9, 2].all() and on[9, 0]
    assert _by_doubt(np.array([False, False, True, True, False]), 10) == [(10, 12, False), (12, 14, True),
                                                                          (14, 15, False)]
