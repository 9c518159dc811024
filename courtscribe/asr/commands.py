"""Voice commands for dictation (法官语音录入): words a judge says to punctuate, break lines and
correct, rather than words to be written.

A dictation stream (``"dictation": true`` in its start) gets, with each final, the edits its words
mean for the document: ``insert`` (text, with spoken punctuation turned into marks), ``delete_sentence``
(删除上一句) and ``undo`` (撤销), the last two only when said on their own. The page applies them
to its editor; any other client can too. The engine punctuates on its own: the mark it put beside a
spoken command is dropped, so "开庭，句号。" writes "开庭。" and not "开庭，。".
"""
from __future__ import annotations

import re

MARKS = {"句号": "。", "逗号": "，", "问号": "？", "冒号": "：", "分号": "；", "感叹号": "！", "顿号": "、",
         "换行": "\n", "新段落": "\n\n", "另起一段": "\n\n"}
EDITS = {"删除上一句": "delete_sentence", "撤销": "undo", "撤消": "undo"}
_AUTO = "，。？！：；、,.?!:; "  # what the engine may have put around a command word
_MARK_WORD = re.compile("|".join(sorted(map(re.escape, MARKS), key=len, reverse=True)))


def parse(text: str) -> list[dict]:
    """The edits one final means. 删除上一句 and 撤销 count only said on their own (a pause before and
    after): 撤销 is also a word of law ("请求撤销合同"), which must be written, not obeyed."""
    alone = text.strip(_AUTO)
    if alone in EDITS:
        return [{"op": EDITS[alone]}]
    written = _marks(text)
    return [{"op": "insert", "text": written}] if written.strip(_AUTO) else []


def _marks(text: str) -> str:
    """Spoken punctuation as marks, each replacing the engine's own marks on either side of it."""
    out, at = [], 0
    for m in _MARK_WORD.finditer(text):
        out.append(text[at:m.start()].rstrip(_AUTO))
        out.append(MARKS[m.group(0)])
        at = m.end()
        while at < len(text) and text[at] in _AUTO:
            at += 1
    out.append(text[at:])
    return "".join(out)

