"""No speech span vanishes (asr/coverage.py, asr/finals.py): gaps are flagged lines, loops never pass."""
from courtscribe.asr.base import Hypothesis
from dataclasses import replace

from courtscribe.asr.coverage import (ECHO, ENGINE_ERROR, EMPTY, FAILED, LOOP, NO_SPEECH, UNRECOGNIZED,
                                       complete, discarded, filled)
from courtscribe.asr.finals import finish, polish_partial
from courtscribe.text import looped
from courtscribe.records.model import Utterance, gap_note


def hyp(text, start, end):
    return Hypothesis(text=text, start_ms=start, end_ms=end, language="zh")


def test_a_span_without_text_is_a_flagged_line():
    [line] = complete([], 17_000, 28_000)
    assert (line.start_ms, line.end_ms, line.text, line.confidence) == (17_000, 28_000, "", 0.0)
    assert line.flags == (UNRECOGNIZED, EMPTY)


def test_engine_error_and_loop_are_the_reasons():
    assert complete([], 0, 2000, reason=ENGINE_ERROR)[0].flags == (UNRECOGNIZED, ENGINE_ERROR)
    [line] = complete([hyp("证证证证证证证证证证证证", 0, 2000)], 0, 2000)
    assert line.flags == (UNRECOGNIZED, LOOP) and line.text == ""


def test_a_skipped_sentence_inside_a_span_becomes_a_gap_between_the_others():
    lines = complete([hyp("第一句。", 0, 3000), hyp("第三句。", 9000, 12_000)], 0, 12_000)
    assert [(h.text, h.start_ms, h.end_ms) for h in lines] == [
        ("第一句。", 0, 3000), ("", 3300, 8700), ("第三句。", 9000, 12_000)]
    assert lines[1].flags == (UNRECOGNIZED, EMPTY)


def test_words_decide_what_is_covered_and_only_inside_the_span():
    from courtscribe.records.model import Token

    words = [Token(text=c, start_ms=a, end_ms=a + 300) for c, a in (("我", 500), ("想", 800), ("在", 4000), ("家", 4300))]
    h = Hypothesis(text="我想在家", start_ms=0, end_ms=4600, tokens=words, language="zh")
    # the segment claims 0–4600 ms, its words leave 1.4–3.7 s without text: that is a gap
    assert [(g.start_ms, g.end_ms) for g in complete([h], 0, 4600) if g.flags] == [(1400, 3700)]
    # a span the hypothesis only partly lies in: its words outside the span count for nothing
    assert [(g.start_ms, g.end_ms) for g in complete([h], 1000, 3200) if g.flags] == [(1400, 3200)]


def test_a_gap_a_turns_own_decode_filled_is_no_line_and_what_it_left_stays_one():
    """A live utterance's 4 s hole, a speaker turn inside it decoded again on its own ("我想问",
    3.3–4.5 s): the gap keeps only what that left without words, if still long enough to be one."""
    [first, gap] = complete([hyp("第一句。", 0, 1_000)], 0, 5_000)
    assert (gap.start_ms, gap.end_ms) == (1_300, 5_000)
    again = [hyp("我想问", 3_300, 4_500)]
    # 1.3–3.0 s: nobody's words
    assert filled([first, gap], again) == [first, replace(gap, end_ms=3_000)]
    assert filled([first, gap], [hyp("我想问", 1_600, 4_700)]) == [first]
    assert filled([first, gap], [hyp("", 1_600, 4_700)]) == [first, gap]  # no words: fills nothing
    turn_gap = complete([], 1_600, 4_700)  # the turn's own decode heard nothing: its gap is there
    assert filled([first, gap], turn_gap) == [first]


def test_timestamp_slack_and_blips_are_not_gaps():
    assert complete([hyp("好的。", 400, 2600)], 0, 3000) == [hyp("好的。", 400, 2600)]
    assert complete([], 0, 200) == []  # a click, not speech


def test_finish_polishes_sentences_and_keeps_other_languages_as_they_are():
    words = ("诉讼", "休庭")
    lines = finish([hyp("宿宋请求", 0, 1000), Hypothesis("The witness is here.", 1000, 2000, language="en")],
                   0, 2000, words)
    assert [h.text for h in lines] == ["诉讼请求", "The witness is here."]


def test_loops_never_reach_a_screen():
    assert polish_partial(hyp("证证证证证证证证证证证证", 0, 1000)) is None
    assert polish_partial(hyp("我说", 0, 1000)).text == "我说"
    assert looped("好的好的好的好的") and looped("对不起对不起对不起对不起")
    assert not looped("对对对") and not looped("我不知道我不知道") and not looped("今天天气很好我们开庭")
    assert looped("证证证证证证") and looped("被告证证证证证") and not looped("对对对对。")  # a turn decoded alone
    assert looped("我方提交的证据证证证证证证证")  # seven times: a loop in any line
    for said in ("对对对对对，我当时就在现场看到他闯红灯", "对，对，对，对，对。", "No, noooooo, I never saw him",
                 "国家AAAAA级景区", "13800000000"):
        assert not looped(said), said


def test_an_unrecognized_line_shows_a_gap_until_someone_types_it():
    u = Utterance(id="u1", start_ms=17_000, end_ms=28_000, speaker="原告", text="", flags=[UNRECOGNIZED, EMPTY])
    assert u.unrecognized and u.shown_text == "〔00:17–00:28 未能识别，请核听录音〕" == gap_note(17_000, 28_000)
    typed = u.model_copy(update={"text": "我同意。"})
    assert not typed.unrecognized and typed.shown_text == "我同意。"
    assert gap_note(3_600_000, 3_605_000) == "〔1:00:00–1:00:05 未能识别，请核听录音〕"


def test_a_word_stretched_over_seconds_covers_only_its_end():
    """Whisper, decoding a mixed utterance in Mandarin, writes nothing for the English and stretches
    its first character back over it: that stretch is a gap, not covered speech."""
    from courtscribe.records.model import Token

    words = [Token(text="他", start_ms=0, end_ms=2900), Token(text="在", start_ms=2900, end_ms=3200),
             Token(text="家", start_ms=3200, end_ms=3500)]
    h = Hypothesis(text="他在家", start_ms=0, end_ms=3500, tokens=words, language="zh")
    assert [(g.start_ms, g.end_ms) for g in complete([h], 0, 3500) if g.flags] == [(0, 1600)]


def test_a_stretch_the_engine_threw_away_is_flagged_where_no_words_cover_it():
    """An echo of the prompt between two sentences, shorter than the 1.5 s hole the record flags by
    itself: flagged all the same, for what words and their slack leave of it."""
    lines = complete([hyp("第一句。", 0, 3000), discarded(3000, 4000, ECHO), hyp("第三句。", 4000, 7000)], 0, 7000)
    assert [(h.text, h.start_ms, h.end_ms, h.flags) for h in lines] == [
        ("第一句。", 0, 3000, ()), ("", 3300, 3700, (UNRECOGNIZED, ECHO)), ("第三句。", 4000, 7000, ())]


def test_a_thrown_away_stretch_words_cover_or_too_short_to_hold_speech_is_no_line():
    covered = complete([hyp("第一句。", 0, 3000), discarded(500, 2500, NO_SPEECH)], 0, 3000)
    assert [h.text for h in covered] == ["第一句。"]
    short = complete([hyp("第一句。", 0, 3000), discarded(3000, 3500, ECHO), hyp("第二句。", 3500, 6000)], 0, 6000)
    assert [h.text for h in short] == ["第一句。", "第二句。"]  # 3.3–3.5 s left: under 300 ms
    twice = complete([hyp("第一句。", 0, 1000), discarded(1000, 3000, ECHO), discarded(1500, 3000, NO_SPEECH)],
                     0, 3000)
    assert [(h.start_ms, h.end_ms, h.flags[1]) for h in twice if h.flags] == [(1300, 3000, ECHO)]  # one line


def test_a_span_whose_every_word_was_thrown_away_is_one_line_saying_why():
    [line] = complete([discarded(0, 1200, ECHO), discarded(1200, 2000, ECHO)], 0, 2000)
    assert (line.start_ms, line.end_ms, line.flags) == (0, 2000, (UNRECOGNIZED, ECHO))


def test_a_number_is_never_taken_for_a_loop_and_a_short_loop_between_sentences_is_flagged():
    """13800000000 and 100000000元 repeat digits as no engine loop does; a sentence the engine did loop
    on between two good ones is a gap to replay, however short."""
    from courtscribe.text import unlooped

    for said in ("我的电话是13800000000。", "赔偿100000000元。", "一三八零零零零零零零零", "卡号6222000000000000"):
        assert not looped(said) and unlooped(said) == said
    lines = complete([hyp("诉讼请求金额是多少？", 0, 2000), hyp("赔偿100000000元。", 2100, 3300),
                      hyp("有什么证据？", 3400, 5000)], 0, 5000)
    assert [h.text for h in lines] == ["诉讼请求金额是多少？", "赔偿100000000元。", "有什么证据？"]
    lines = complete([hyp("诉讼请求金额是多少？", 0, 2000), hyp("好的好的好的好的好的", 2100, 3300),
                      hyp("有什么证据？", 3400, 5000)], 0, 5000)
    assert [(h.text, h.flags) for h in lines][1] == ("", (UNRECOGNIZED, LOOP))


def test_a_short_answer_the_engine_could_not_read_is_flagged_not_dropped():
    """A "是" of 250 ms whose decode failed Whisper's own test: too short to be speech by length
    alone, but the engine heard words there, so the clerk gets a line to replay."""
    alone = complete([discarded(0, 250, FAILED)], 0, 250)
    assert [(h.start_ms, h.end_ms, h.flags) for h in alone] == [(0, 250, (UNRECOGNIZED, FAILED))]
    between = complete([hyp("你同意吗？", 0, 3000), discarded(4000, 4250, FAILED), hyp("下一个问题。", 4600, 7000)],
                       0, 7000)
    assert [(h.text, h.start_ms, h.flags) for h in between] == [
        ("你同意吗？", 0, ()), ("", 4000, (UNRECOGNIZED, FAILED)), ("下一个问题。", 4600, ())]
    # noise the engine wrote words over is still no line when that short
    assert complete([discarded(0, 250, NO_SPEECH)], 0, 250) == []
    slack = complete([hyp("你同意吗？", 0, 3000), discarded(3000, 3250, FAILED)], 0, 3250)
    assert [h.text for h in slack] == ["你同意吗？"]  # inside the words' own slack
    after = complete([hyp("你同意吗？", 0, 3000), discarded(3200, 3450, FAILED)], 0, 3450)
    assert [(h.start_ms, h.flags) for h in after][1:] == [(3300, (UNRECOGNIZED, FAILED))]  # past the slack
    tiny = complete([hyp("你同意吗？", 0, 3000), discarded(3400, 3480, FAILED)], 0, 3500)
    assert [(h.start_ms, h.flags) for h in tiny][1:] == [(3400, (UNRECOGNIZED, FAILED))]  # all of it alone
    [mixed] = complete([discarded(0, 100, NO_SPEECH), discarded(100, 250, FAILED)], 0, 250)
    assert mixed.flags == (UNRECOGNIZED, FAILED)  # words it could not read, not noise
