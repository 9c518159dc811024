"""Voice commands for dictation (法官语音录入): words a judge says to punctuate, break lines and
correct, rather than words to be written.

A dictation stream (``"dictation": true`` in its start) gets, with each final, the edits its words
mean for the document: ``insert`` (text, with spoken punctuation turned into marks), ``punctuate`` (a
mark said on its own: it replaces the mark the engine put at the end of the text before),
``delete_sentence`` (删除上一句) and ``undo`` (撤销), the last two only when said on their own. The
page applies them to its editor; any other client can too. The engine punctuates on its own: the mark
it put beside a spoken command is dropped, so "开庭，句号。" writes "开庭。" and not "开庭，。".

A mark word is a command only as a word of its own: before a pause (the engine's mark, the final's
end) or where the sentence's words break around it (本院认为/句号/被告). Inside other words it is
written: 部分号码 has no 分号, 交换行为 no 换行, 一句号召 no 句号.
"""
from __future__ import annotations

import re

from .hotwords import sounds, word_bounds

MARKS = {"句号": "。", "逗号": "，", "问号": "？", "冒号": "：", "分号": "；", "感叹号": "！", "顿号": "、",
         "省略号": "……", "破折号": "——", "换行": "\n", "新段落": "\n\n"}
# paired marks, said with their side (左/前 opens, 右/后 closes): a ruling cites 《中华人民共和国民法典》
# and quotes a party's words; a bare 书名号 or 引号 says neither side, so it is written as said
MARKS |= {f"{side}{word}": pair[k] for word, pair in {"书名号": "《》", "引号": "“”", "括号": "（）"}.items()
          for k, sides in enumerate(("左前", "右后")) for side in sides}
EDITS = {"删除上一句": "delete_sentence", "撤销": "undo", "撤消": "undo"}
_AUTO = "，。？！：；、,.?!:; "  # what the engine may have put around a command word
_MARK_WORD = re.compile("|".join(sorted(map(re.escape, MARKS), key=len, reverse=True)))


def parse(text: str) -> list[dict]:
    """The edits one final means. 删除上一句 and 撤销 count only said on their own (a pause before and
    after): 撤销 is also a word of law ("请求撤销合同"), which must be written, not obeyed."""
    alone = text.strip(_AUTO)
    if alone in EDITS:
        return [{"op": EDITS[alone]}]
    if alone in MARKS and MARKS[alone].strip():  # "…还款。" pause "问号": the sentence was a question
        return [{"op": "punctuate", "text": MARKS[alone]}]
    written = _marks(text)
    return [{"op": "insert", "text": written}] if written.strip(_AUTO) else []


def spare(hotwords: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """A dictation stream's hotwords without those that sound like a command (窦浩 is 逗号 to the ear):
    the sound-alike pass would write the name where the judge said the command."""
    said = [sounds(word) for word in (*MARKS, *EDITS)]
    return tuple(w for w in hotwords if not any(_within(c, sounds(w)) for c in said))


def _within(part: tuple[str, ...], whole: tuple[str, ...]) -> bool:
    return any(whole[i:i + len(part)] == part for i in range(len(whole) - len(part) + 1))


def _obeyed(text: str, start: int, end: int, cuts: set[int]) -> bool:
    """A mark word said as a command: a pause follows it, or the words break around it."""
    return end == len(text) or text[end] in _AUTO or text[end] == "\n" or (start in cuts and end in cuts)


def _marks(text: str) -> str:
    """Spoken punctuation as marks, each replacing the engine's own marks on either side of it."""
    out, at = [], 0
    found = list(_MARK_WORD.finditer(text))
    cuts = word_bounds(text) if found else set()
    for m in found:
        if not _obeyed(text, m.start(), m.end(), cuts):
            continue
        out.append(text[at:m.start()].rstrip(_AUTO))
        out.append(MARKS[m.group(0)])
        at = m.end()
        while at < len(text) and text[at] in _AUTO:
            at += 1
    out.append(text[at:])
    return "".join(out)

