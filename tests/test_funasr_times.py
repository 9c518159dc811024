"""FunASR's ``timestamp`` as FunASR's HTML5 page reads it (runtime/html5/static/main.js): it cuts the
shown text at 。？，、?. and spaces and, word by word, reads ``timestamp[i][0]`` and moves ``i`` on by
the word's length in UTF-16 units (by one for a word of Latin letters). Every read must land inside
the list, whatever tokens the engine gave and however the text was rewritten after decoding."""
import json
import re

from courtscribe.records.model import Token, Utterance, UNRECOGNIZED
from courtscribe.server.funasr_times import line_sents, line_timestamp, shown_times, timestamp


def page_reads(text: str, stamp: str) -> list[int]:
    """The indexes the page reads, walking the words as it does."""
    reads, i = [], 0
    for word in re.sub(r"[。？，、?. ]", ",", text).split(","):  # an ASCII comma cuts too
        if not word:
            continue
        reads.append(i)
        i += 1 if re.fullmatch(r"[a-zA-Z]+", word) else len(word.encode("utf-16-le")) // 2
    assert all(r < len(json.loads(stamp)) for r in reads), (text, stamp)
    return reads


def line(uid, text, start, end, tokens=(), flags=()):
    return Utterance(id=uid, start_ms=start, end_ms=end, speaker="说话人1", text=text, flags=list(flags),
                     tokens=[Token(text=t, start_ms=a, end_ms=b) for t, a, b in tokens])


def _lines() -> list[Utterance]:
    whisper = line("a", "被告应于2026年12月31日前偿还借款。", 0, 4000,  # word tokens; numbers rewritten after decoding
                   [("被告", 0, 400), ("应于", 400, 800), ("二零二六年", 800, 1800), ("十二月", 1800, 2400),
                    ("三十一日前", 2400, 3000), ("偿还借款。", 3000, 4000)])
    english = line("b", "The court is adjourned. 闭庭。", 5000, 7000,
                   [(" The", 5000, 5200), (" court", 5200, 5500), (" is", 5500, 5600), (" adjourned.", 5600, 6200),
                    ("闭庭。", 6300, 7000)])
    rare = line("c", "𠮷野家，好,嗯。", 8000, 9000)  # no tokens; a character outside the BMP counts twice
    return [whisper, english, rare]


def test_every_character_the_page_counts_has_a_time_whatever_the_tokens():
    whisper, english, rare = _lines()
    for u in (whisper, english, rare):
        page_reads(u.text, line_timestamp(u))
    reads = page_reads(english.text, line_timestamp(english))
    assert [json.loads(line_timestamp(english))[r][0] for r in reads] == [5000, 5200, 5500, 5600, 6300]


def test_a_whole_file_with_a_gap_the_record_shows_has_times_for_the_gap_note_too():
    lines = [line("a", "本庭现在开庭。", 0, 2000, [(ch, 300 * i, 300 * i + 300) for i, ch in enumerate("本庭现在开庭。")]),
             line("b", "", 2000, 13000, flags=[UNRECOGNIZED]),
             line("c", "hello world", 13000, 14000, [(" hello", 13000, 13500), (" world", 13500, 14000)])]
    text, times = shown_times(lines)
    assert "未能识别" in text and len(times) == len(text)
    stamp = timestamp(text, times)
    page_reads(text, stamp)
    starts = [a for a, _ in json.loads(stamp)]
    assert starts == sorted(starts) and starts[0] == 0 and starts[-1] == 13500
    assert json.loads(timestamp("", [])) == []


def test_stamp_sents_hold_one_span_for_each_unit_of_their_text_seg():
    """FunASR's protocol: ``ts_list`` has one ``[start, end]`` per unit of ``text_seg`` (a character,
    a word for English), whatever the engine's tokens were (words, numbers rewritten after decoding)."""
    for u in _lines():
        sents = line_sents(u)
        assert "".join(s["text_seg"].replace(" ", "") + s["punc"] for s in sents) == u.text.replace(" ", "")
        for s in sents:
            assert len(s["text_seg"].split()) == len(s["ts_list"]), s
            assert s["start"] == s["ts_list"][0][0] and s["end"] == s["ts_list"][-1][1]
            assert all(u.start_ms <= a <= b <= u.end_ms for a, b in s["ts_list"])
    english = line_sents(_lines()[1])
    assert [s["text_seg"] for s in english] == ["The court is adjourned", "闭 庭"]


def test_each_character_has_a_time_of_its_own_in_order_as_paraformer_gives_them():
    """Whisper's word tokens gave every character of a word the word's whole span (custody.wav:
    ``[456,1256],[456,1256]``), and characters no token spells (numbers rewritten after decoding)
    took a share of the line that could lie before the token times beside them (news_kfc.wav:
    ``[1948,2148],[1937,2158]``). FunASR gives one distinct span per character, in order."""
    whisper, english, rare = _lines()
    overlapping = line("d", "我想问我在滨海。", 400, 2600,
                       [("我想问", 456, 1256), ("我在", 1200, 1700), ("滨海。", 1650, 2600)])
    clipped = line("e", "今天天气。", 0, 800, [("今天", 0, 800), ("天气", 100, 500)])  # a word inside the last
    for u in (whisper, english, rare, overlapping, clipped):
        spans = json.loads(line_timestamp(u))
        assert all(a <= b for a, b in spans), spans
        assert all(b <= c for (_, b), (c, _) in zip(spans, spans[1:])), spans  # none before the last one's end
        assert len(set(map(tuple, spans))) == len(spans), spans  # none twice
    spans = json.loads(line_timestamp(overlapping))
    assert spans[:3] == [[456, 723], [723, 989], [989, 1256]], spans  # the word's time, shared in order
