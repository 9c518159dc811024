"""Voice commands for dictation (法官语音录入): words a judge says to punctuate, break lines and
correct, rather than words to be written.

A dictation stream (``"dictation": true`` in its start) gets, with each final, the edits its words
mean for the document: ``insert`` (text, with spoken punctuation turned into marks; ``auto_mark``:
the mark the engine itself put at its end, which a mark said next may replace), ``punctuate`` (a
closing or sentence mark said on its own, or said first before the final's words: it replaces the
engine's mark at the end of the text dictated before), ``retract`` (the start of a command that
ended the previous final, written there, now taken back: 新段 | 落。 is 新段落),
``delete_sentence`` (删除上一句) and ``undo`` (撤销), the last two only when said on their own (one
or several, in order). An opening mark (左引号, 左书名号, 左括号) is always an ``insert``: it begins
something, so it never takes the place of the mark before it. The page applies them to its editor;
any other client can too. The engine punctuates on its own: the mark it put beside a spoken command
is dropped, so "开庭，句号。" writes "开庭。" and not "开庭，。".

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
OPENING = frozenset("《“（")  # begins something: inserted, never in place of the mark before it
_AUTO = "，。？！：；、,.?!:; "  # what the engine may have put around a command word
_ENGINE_MARKS = _AUTO.strip()
_MARK_WORD = re.compile("|".join(sorted(map(re.escape, MARKS), key=len, reverse=True)))
_EDIT_WORD = re.compile("|".join(sorted(map(re.escape, EDITS), key=len, reverse=True)))
_EDIT_RUN = re.compile(f"(?:(?:{_EDIT_WORD.pattern})[{re.escape(_AUTO)}]*)+")
# a command a pause may cut in two: 3+ characters, so each side keeps 2 and 1 at least
_SPLITTABLE = sorted((w for w in (*MARKS, *EDITS) if len(w) >= 3), key=len, reverse=True)


def parse(text: str) -> list[dict]:
    """The edits one final means. 删除上一句 and 撤销 count only said on their own (a pause before and
    after; several in a row are each obeyed): 撤销 is also a word of law ("请求撤销合同"), which must
    be written, not obeyed."""
    alone = text.strip(_AUTO)
    if alone and _EDIT_RUN.fullmatch(alone):
        return [{"op": EDITS[word]} for word in _EDIT_WORD.findall(alone)]
    lead, body, auto = _marks(text)
    # "…还款。" pause "问号": the sentence was a question; "。" pause "逗号被告…": it goes on
    ops = [{"op": "punctuate", "text": lead}] if lead else []
    if body.strip(_AUTO):
        ops.append({"op": "insert", "text": body, **({"auto_mark": auto} if auto else {})})
    return ops


class Dictation:
    """One dictation stream's finals in turn (its socket holds one): a command that a pause cut in
    two (新段 | 落。, 左书 | 名号中华…, 删除上 | 一句。) is obeyed once the rest of it begins the next
    final, and its start, written with the final before, is taken back (``retract``)."""

    def __init__(self) -> None:
        self._said = ""  # the previous final, as the engine gave it
        self._wrote = ""  # what that final's insert wrote ("" when it wrote nothing)

    def parse(self, text: str) -> list[dict]:
        ops = self._joined(text) or parse(text)
        self._said = text
        self._wrote = ops[-1]["text"] if ops and ops[-1]["op"] == "insert" else ""
        return ops

    def _joined(self, text: str) -> list[dict]:
        before, after = self._said.rstrip(_AUTO), text.lstrip(_AUTO)
        for word in _SPLITTABLE:
            for k in range(len(word) - 1, 1, -1):
                head, rest = word[:k], word[k:]
                if not (before.endswith(head) and after.startswith(rest)):
                    continue
                whole = word + after[len(rest):]
                tail = head + self._said[len(before):]  # as the previous insert wrote it
                if not self._wrote.endswith(tail):
                    continue
                if word in EDITS:  # on its own: a pause before its start, nothing after its end
                    if before[:-k][-1:] not in ("", *_AUTO) or whole.strip(_AUTO) != word:
                        continue
                elif _obeyed(whole, 0, len(word), word_bounds(whole)):
                    # as said whole: the engine's mark before a mark word goes with it
                    kept = self._wrote[:-len(tail)]
                    tail = kept[len(kept.rstrip(_AUTO)):] + tail
                else:
                    continue
                return [{"op": "retract", "text": tail}, *parse(whole)]
        return []


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


def _marks(text: str) -> tuple[str, str, str]:
    """Spoken punctuation as marks, each replacing the engine's own marks on either side of it:
    (the closing and sentence marks said first, before any words; the rest as written; the
    engine's own mark at the end of that, if any)."""
    lead, out, at = [], [], 0
    found = list(_MARK_WORD.finditer(text))
    cuts = word_bounds(text) if found else set()
    for m in found:
        if not _obeyed(text, m.start(), m.end(), cuts):
            continue
        words = text[at:m.start()].rstrip(_AUTO)
        mark = MARKS[m.group(0)]
        if not out and not words.strip(_AUTO) and mark.strip() and mark[0] not in OPENING:
            lead.append(mark)  # said first, before any words: it ends what was dictated before
        else:
            out.extend((words, mark))
        at = m.end()
        while at < len(text) and text[at] in _AUTO:
            at += 1
    rest = text[at:]
    out.append(rest)
    auto = rest[len(rest.rstrip(_ENGINE_MARKS)):] if rest.strip(_AUTO) else ""
    return "".join(lead), "".join(out), auto
