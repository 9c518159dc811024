"""Dictation voice commands: what a judge says to punctuate and correct becomes document edits."""
import pytest

from courtscribe.asr.commands import parse


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
    assert parse("原告请求撤销。") == [{"op": "insert", "text": "原告请求撤销。"}]
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
