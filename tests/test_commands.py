"""Dictation voice commands: what a judge says to punctuate and correct becomes document edits."""
import pytest

from courtscribe.asr.commands import Dictation, parse


@pytest.mark.parametrize("said, ops", [
    ("本院认为，原告的诉讼请求成立", [{"op": "insert", "text": "本院认为，原告的诉讼请求成立"}]),
    ("本院认为句号", [{"op": "insert", "text": "本院认为。"}]),
    ("本院认为，句号。", [{"op": "insert", "text": "本院认为。"}]),  # the engine's own marks beside the command go
    ("原告是否同意调解问号", [{"op": "insert", "text": "原告是否同意调解？"}]),
    ("判决如下冒号新段落一、驳回原告的诉讼请求句号", [{"op": "insert", "text": "判决如下：\n\n一、驳回原告的诉讼请求。"}]),
    ("换行。", [{"op": "insert", "text": "\n"}]),
    ("删除上一句。", [{"op": "delete_sentence"}]),
    ("撤销", [{"op": "undo"}]),
    ("以上事实清楚逗号", [{"op": "insert", "text": "以上事实清楚，"}]),
    ("", []),
    ("。", []),
])
def test_spoken_commands_become_edits(said, ops):
    assert parse(said) == ops


def test_edit_commands_count_only_on_their_own_because_they_are_also_words_of_law():
    assert parse("撤销合同的请求") == [{"op": "insert", "text": "撤销合同的请求"}]
    assert parse("原告请求撤销。") == [{"op": "insert", "text": "原告请求撤销。", "auto_mark": "。"}]
    assert parse("，撤销。") == [{"op": "undo"}]


@pytest.mark.parametrize("said", ["提供部分号码", "双方交换行为证据", "一句号召", "询问号码", "被告假冒号码",
                                  "本院认为应当另起一段落实责任"])
def test_a_command_word_inside_other_words_is_written_not_obeyed(said):
    """部分号码 holds no 分号 and 交换行为 no 换行: the judge's words are written as said."""
    assert parse(said) == [{"op": "insert", "text": said}]


def test_a_command_said_as_a_word_of_its_own_is_obeyed_mid_sentence():
    assert parse("本院认为句号被告应当还款") == [{"op": "insert", "text": "本院认为。被告应当还款"}]
    assert parse("开庭逗号现在核对当事人") == [{"op": "insert", "text": "开庭，现在核对当事人"}]
    assert parse("本院认为新段落被告") == [{"op": "insert", "text": "本院认为\n\n被告"}]


@pytest.mark.parametrize("said, mark", [("句号", "。"), ("问号。", "？"), ("，逗号。", "，"), ("顿号", "、")])
def test_a_mark_said_on_its_own_punctuates_what_came_before(said, mark):
    """A pause, then 问号: the sentence before was a question (the engine's mark at its end is replaced)."""
    assert parse(said) == [{"op": "punctuate", "text": mark}]


def test_a_dictations_hotwords_spare_names_that_sound_like_commands():
    from courtscribe.asr.commands import spare
    from courtscribe.asr.finals import polish

    assert spare(("窦浩", "张三", "鞠浩", "窦浩然", "李四")) == ("张三", "李四")
    assert parse(polish("以上事实清楚逗号", spare(("窦浩",)))) == [{"op": "insert", "text": "以上事实清楚，"}]


@pytest.mark.parametrize("said, text", [
    ("依照左书名号中华人民共和国民法典右书名号第五百七十七条", "依照《中华人民共和国民法典》第五百七十七条"),
    ("依照，前书名号，中华人民共和国民事诉讼法，后书名号。第一百四十四条",
     "依照《中华人民共和国民事诉讼法》第一百四十四条"),
    ("被告称冒号前引号我没有借过钱后引号句号", "被告称：“我没有借过钱”。"),
    ("原告左括号反诉被告右括号", "原告（反诉被告）"),
    ("此后省略号", "此后……"),
])
def test_paired_marks_are_said_with_their_side(said, text):
    """A ruling cites statutes in 《》 and quotes a party in “”: 左/前 opens, 右/后 closes."""
    assert parse(said) == [{"op": "insert", "text": text}]


def test_a_paired_mark_said_without_its_side_is_written_as_said():
    assert parse("原告提交了书名号") == [{"op": "insert", "text": "原告提交了书名号"}]
    assert parse("右书名号。") == [{"op": "punctuate", "text": "》"}]


@pytest.mark.parametrize("said, ops", [
    ("被告是否已经还款。", [{"op": "insert", "text": "被告是否已经还款。", "auto_mark": "。"}]),
    ("被告是否已经还款问号", [{"op": "insert", "text": "被告是否已经还款？"}]),  # said: not the engine's
    ("本院认为，句号。", [{"op": "insert", "text": "本院认为。"}]),
])
def test_an_insert_names_the_mark_the_engine_put_at_its_end(said, ops):
    """Only the engine's own mark may give way to a mark said next; one the judge said stays."""
    assert parse(said) == ops


@pytest.mark.parametrize("said, mark", [("左引号。", "“"), ("左书名号", "《"), ("，前括号。", "（")])
def test_an_opening_mark_said_alone_is_inserted_never_in_place_of_the_mark_before(said, mark):
    """被告辩称： then 左引号: the colon stays (被告辩称：“), so the mark is an insert, not punctuate."""
    assert parse(said) == [{"op": "insert", "text": mark}]


def test_a_mark_said_first_in_a_final_ends_what_was_dictated_before():
    """原告诉称。 pause "逗号被告辩称": the comma takes the place of the engine's 。 (punctuate), and the
    words follow as an insert; an opening mark said first begins the words instead."""
    assert parse("逗号被告辩称") == [{"op": "punctuate", "text": "，"}, {"op": "insert", "text": "被告辩称"}]
    assert parse("，右引号，句号。") == [{"op": "punctuate", "text": "”。"}]
    assert parse("左引号我已经还清了。") == [{"op": "insert", "text": "“我已经还清了。", "auto_mark": "。"}]
    assert parse("换行被告辩称") == [{"op": "insert", "text": "\n被告辩称"}]


@pytest.mark.parametrize("said, ops", [
    ("撤销，撤销。", ["undo", "undo"]),
    ("撤销撤销", ["undo", "undo"]),
    ("删除上一句，撤销。", ["delete_sentence", "undo"]),
])
def test_a_final_made_only_of_edit_commands_is_each_of_them_in_order(said, ops):
    assert [op["op"] for op in parse(said)] == ops
    assert parse("撤销，撤销合同。")[0]["op"] == "insert"  # words of law among them: written


@pytest.mark.parametrize("finals, last", [
    (["原告诉称新段", "落。被告辩称"], [{"op": "retract", "text": "新段"},
                                {"op": "insert", "text": "\n\n被告辩称"}]),
    (["原告诉称，新段。", "落。"], [{"op": "retract", "text": "，新段。"}, {"op": "insert", "text": "\n\n"}]),
    (["依照左书", "名号中华人民共和国民法典右书名号。"],
     [{"op": "retract", "text": "左书"}, {"op": "insert", "text": "《中华人民共和国民法典》"}]),
    (["被告辩称右书", "名号。"], [{"op": "retract", "text": "右书"}, {"op": "punctuate", "text": "》"}]),
    (["借贷关系成立。删除上", "一句。"], [{"op": "retract", "text": "删除上"}, {"op": "delete_sentence"}]),
])
def test_a_command_a_pause_cut_in_two_is_obeyed_when_the_next_final_ends_it(finals, last):
    """The start of the command was written with the first final; the second takes it back."""
    stream = Dictation()
    for text in finals[:-1]:
        stream.parse(text)
    assert stream.parse(finals[-1]) == last


@pytest.mark.parametrize("finals", [
    ["依法删除上", "述内容。"],  # no command: 删除上述
    ["借贷关系成立删除上", "一句。"],  # 删除上一句 counts only on its own: no pause before it
])
def test_words_that_only_look_like_a_cut_command_are_written(finals):
    stream = Dictation()
    ops = [stream.parse(text) for text in finals]
    assert all(op["op"] == "insert" for final in ops[:-1] for op in final)
    assert ops[-1] == parse(finals[-1])


def test_a_stream_joins_only_a_final_with_the_one_just_before():
    stream = Dictation()
    stream.parse("原告诉称新段")
    stream.parse("被告辩称。")
    assert stream.parse("落。") == parse("落。")
