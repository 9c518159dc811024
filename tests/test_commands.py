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
