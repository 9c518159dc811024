"""Caption text: lines of at most 16 characters, the archive's cues cut from finals, and the live
overlay's lines that never change once shown, out early from settled partials, then finals.

A partial's words change as the speaker goes on, and a caption that rewrites itself is unreadable;
waiting for finals alone puts every line ~1–4 s behind the speech end (the VAD's end silence plus the
final decode). So a line goes out as soon as its words are settled (the partial's ``stable`` prefix,
stability.py) and it is complete — it ends at punctuation (any mark: a preview's "。" may become
"，"), or fills a line. The final then supplies only what the partials had not settled, aligned
against what was shown. If the final is slow (a hard utterance can take seconds to decode on a CPU),
the overlay does not wait: ``flush``, called a moment after the VAD's endpoint, shows the last
partial's remaining words. A long utterance finalized in pieces (``continues``) goes on in the same
caption flow, without its speaker's name again. Lines shown are never taken back; the
captions.json/vtt archive feeds use the finals (the record).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..asr.hotwords import word_bounds
from ..records.model import CONTINUES, Role, Utterance
from .events import Final, Partial
from .stability import MARKS, beyond

MAX_CHARS = 16
LINES_PER_CUE = 2
_DROPPED_AT_LINE_END = "，。、；：,.;: "  # captions end lines without commas and full stops
MAX_OPEN = 64  # utterances whose partials are followed at once (an overlay per hearing: a few channels)


# -- cutting text into caption lines ---------------------------------------------------------
def caption_lines(text: str, max_chars: int = MAX_CHARS, *, lead: str = "") -> list[str]:
    """Lines of at most ``max_chars`` characters, broken after punctuation where possible and never
    inside a Latin word or a number unless it alone is longer than a line. ``lead`` (the speaker's
    role, 原告：) goes before the first words, never on a line of its own."""
    phrases, current = [], ""
    text = text.strip()
    for i, ch in enumerate(text):
        current += ch
        if _ends_phrase(text, i, whole=True):
            phrases.append(current.strip())
            current = ""
    if current.strip():
        phrases.append(current.strip())
    if lead and phrases:
        phrases[0] = lead + phrases[0]
    lines, line = [], ""
    for phrase in phrases:
        if len((line + phrase).rstrip(_DROPPED_AT_LINE_END)) <= max_chars:
            line += phrase
            continue
        if line:
            lines.append(line)
        while len(phrase.rstrip(_DROPPED_AT_LINE_END)) > max_chars:
            cut = _cut(phrase, max_chars)
            lines.append(phrase[:cut])
            phrase = phrase[cut:].lstrip()
        line = phrase
    lines.append(line)
    # a line of marks alone (a closing ” or 》 after a flush, a ……) says nothing on air
    return [s for s in (x.rstrip(_DROPPED_AT_LINE_END).strip() for x in lines) if any(c.isalnum() for c in s)]


def _cut(s: str, n: int) -> int:
    """Where to break ``s`` at most ``n`` characters in: at the end of a word (支付, 受理 are not
    cut), never inside a Latin word or a number, written or in Chinese (十二万三千五百, 二零二六),
    unless that would leave less than half a line."""
    ends = [b for b in word_bounds(s[:n + 8]) if n // 2 <= b <= n and not _joined(s, b)]
    if ends:
        return max(ends)
    cut = n
    while cut > 0 and _joined(s, cut):
        cut -= 1
    return cut if cut >= n // 2 else n


def _joined(s: str, at: int) -> bool:
    """Whether the characters either side of ``at`` belong to one number (with its unit: 15日) or
    Latin word."""
    if not 0 < at < len(s):
        return False
    before, after = s[at - 1], s[at]
    number = before.isdigit() or before in _NUMERALS
    return _wordish(before) and _wordish(after) or number and (after in _NUMERALS or after in _UNITS)


_NUMERALS = "零〇一二三四五六七八九十百千万亿两幺点"
_UNITS = "年月日时分秒元块号条款项%％岁个"


def _wordish(ch: str) -> bool:
    """Part of a Latin word, a number or an address: 3.85%, 15:30, example.com/a stay on one line."""
    return ch.isascii() and ch.isprintable() and not ch.isspace()


def _ends_phrase(text: str, i: int, *, whole: bool) -> bool:
    """Whether the mark at ``i`` ends a phrase: a Chinese mark always; an ASCII one where a space, a
    Chinese character or the text's end follows it (not the point of 3.85 or the colon of 15:30).
    ``whole``: the text is all there is (a partial's last "3." may still become 3.85)."""
    if text[i] not in MARKS:
        return False
    if not text[i].isascii():
        return True
    if i + 1 == len(text):
        return whole
    return not _wordish(text[i + 1])


def cues(u: dict, *, prefix: bool = False) -> list[dict]:
    """One final (a record-format utterance) as caption cues of up to two lines each."""
    who = Role(u["role"]).label if u.get("role") else None
    named = prefix and who and CONTINUES not in u.get("flags", [])  # a piece goes on from its speaker's line
    lines = caption_lines(u["text"], lead=f"{who}：" if named else "")
    groups = [lines[i:i + LINES_PER_CUE] for i in range(0, len(lines), LINES_PER_CUE)]
    total = sum(len("".join(g)) for g in groups) or 1
    start, span = u["start_ms"], max(1, u["end_ms"] - u["start_ms"])
    out, done = [], 0
    for k, group in enumerate(groups):
        done += len("".join(group))
        end = u["end_ms"] if k == len(groups) - 1 else u["start_ms"] + span * done // total
        out.append({"id": f"{u['id']}.{k}", "utterance_id": u["id"], "start_ms": start, "end_ms": end,
                    "lines": group, "who": who})
        start = end
    return out


# -- live lines from partials and finals ---------------------------------------------------------
@dataclass
class _Open:
    channel: int
    event: Partial | None = None  # the previous partial
    flushed: bool = False  # its speaker stopped and the rest of its last partial went out
    shown: str = ""  # the partial text already out as lines (a prefix of what partials agree on)
    lines: int = 0


@dataclass
class Captioner:
    """One overlay's view of a hearing. ``partial``/``final`` take the hub's events and return the
    lines to show now: ``{"id", "utterance_id", "text", "start_ms", "end_ms", "who", "stable", "last"}``
    (``stable``: partial, endpoint or final; ``last``: the utterance's words are all out, as far as known)."""

    prefix: bool = False
    _open: dict[str, _Open] = field(default_factory=dict)
    _last: tuple | None = None  # whose line went out last: another speaker's next line is named again

    def partial(self, e: Partial) -> list[dict]:
        u = self._open.setdefault(e.utterance_id, _Open(e.channel))
        if len(self._open) > MAX_OPEN:  # a source vanished without its finals: forget the oldest
            self._open.pop(next(iter(self._open)))
        u.event = e
        if self._behind(e.utterance_id, u):  # its lines go out after the words said before them
            return []
        settled = e.text[:e.stable]
        if not settled.startswith(u.shown):  # a source that revised what it had settled: the final says
            return []
        out = []
        for piece in _complete(settled[len(u.shown):]):
            u.shown += piece
            out += self._lines(e.utterance_id, e, u, piece, len(u.shown), len(e.text), "partial")
        return out

    def flush(self, utterance_id: str) -> list[dict]:
        """The speaker has stopped and the final is late: show the rest of the last partial now (the
        final then adds only what it has beyond that)."""
        u = self._open.get(utterance_id)
        if u is None or u.event is None or self._behind(utterance_id, u):  # words said before it first
            return []
        last = u.event.text
        piece = beyond(u.shown, last)
        u.shown = last
        u.flushed = True
        if not piece.strip():
            return []
        return self._lines(utterance_id, u.event, u, piece, len(last), len(last), "endpoint", last=True)

    def final(self, e: Final) -> list[dict]:
        u = self._open.pop(e.utterance_id, _Open(e.utterance.channel))
        text = e.utterance.text
        rest = beyond(u.shown, text)
        return self._lines(e.utterance_id, e.utterance, u, rest, len(text), len(text), "final", last=True)

    def _behind(self, uid: str, u: _Open) -> bool:
        """An earlier utterance of the channel is still waiting for its final (a piece of a long one
        is finalized while its speaker goes on, and the next piece's partial can come first)."""
        for other, o in self._open.items():
            if other == uid:
                return False
            if o.channel == u.channel and not o.flushed:
                return True
        return False

    def _lines(self, uid: str, said: Partial | Utterance, u: _Open, piece: str, upto: int, total: int, stable: str,
               last: bool = False) -> list[dict]:
        """``piece`` (ending at character ``upto`` of the ``total`` the speaker has said so far, in the
        span and role of ``said``) as caption lines."""
        who = said.role.label if said.role else None
        goes_on = said.continues if isinstance(said, Partial) else CONTINUES in said.flags
        first = u.lines == 0 and not goes_on  # a piece of a long utterance: its speaker was named
        speaker = (said.role, said.speaker, said.channel)
        named = first or self._last != speaker  # two channels interleaved: whose line this is again
        lead = f"{who}：" if self.prefix and who and named and piece.strip() else ""
        text = lead + piece.strip() if lead else piece
        if piece.strip():
            self._last = speaker
        lines = caption_lines(piece, lead=lead)
        start, span = said.start_ms, max(1, said.end_ms - said.start_ms)
        begin = upto - len(piece)
        out, done = [], 0
        for k, line in enumerate(lines):
            done += len(line)
            at = upto if k == len(lines) - 1 else begin + min(len(piece), round(done * len(piece) / max(1, len(text))))
            out.append({"id": f"{uid}.{u.lines}", "utterance_id": uid, "text": line,
                        "start_ms": start + span * max(0, at - len(line)) // max(1, total),
                        "end_ms": start + span * at // max(1, total), "who": who, "stable": stable,
                        "last": last and k == len(lines) - 1})
            u.lines += 1
        return out


def _complete(text: str) -> list[str]:
    """The leading pieces of ``text`` that can be shown: phrases ending at punctuation, and a full
    line's worth of a phrase that goes on without one. What may still grow stays behind."""
    out, current = [], ""
    for i, ch in enumerate(text):
        current += ch
        if _ends_phrase(text, i, whole=False):
            out.append(current)
            current = ""
    while len(current) > MAX_CHARS:
        cut = _cut(current, MAX_CHARS)
        out.append(current[:cut])
        current = current[cut:]
    return out
