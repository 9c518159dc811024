"""The court record as data: Hearing, Participant, Role, Utterance, Token, Record.

JSON (``Record.model_dump_json``) is the canonical form; every other format is written from it.
Times are integer milliseconds from the start of the hearing recording.
"""
from __future__ import annotations

import datetime as dt
import re
import secrets
from enum import Enum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "courtscribe.record/1"
UNRECOGNIZED = "unrecognized"  # see asr/coverage.py
CROSSTALK_UNCHECKED = "crosstalk_unchecked"  # see diarization/bleed.py RoomAudio
OVERLAP = "overlap"  # two people spoke at once in this utterance: see diarization/attribute.py
OVERLAP_NOTE = "〔同时发言〕"  # how exports mark such an utterance
CROSSTALK_NOTE = "〔可能串音，请核听录音〕"  # a crosstalk_unchecked line nobody has looked at yet
# the machine could not tell who said the line (too short to know the voice, a voice unlike every
# speaker it knows, the speaker model failed): the label is its best guess, shown as one until a
# person assigns the speaker or confirms the line
SPEAKER_UNSURE = "speaker_unsure"
SPEAKER_UNSURE_NOTE = "〔发言人待核，请核听录音〕"
# the speaker went on from the previous utterance of the channel: a long utterance finalized in
# pieces while it was spoken (streaming/pieces.py); exports print the pieces as one flowing turn
CONTINUES = "continues"
# the engine's final came after a clerk corrected the line's partial, and says more or otherwise: her
# text stands (rule 1) and the final's is kept beside it; the line waits for her look until she
# edits or confirms it again (the final's words never vanish unseen)
FINAL_AFTER_EDIT = "final_after_edit"
# ledger kinds of the clerk's choices about the public version (redaction/public.py): they change
# nothing of the record, and a public version is often made after sign-off
PROTECTION = "protection"
REDACTION = "redaction"
MACHINE = "asr"  # who writes a live stream's (or the spool's) finals in the ledger
LINKED = {"split": "new_id", "merge": "other"}  # the second utterance a split makes or a merge removes


def split_id(uid: str, token: str) -> str:
    """The id of the second half a split of ``uid`` makes: the line's own id, then the split's."""
    return f"{lineage(uid)}.{token}"


def lineage(uid: str) -> str:
    """The id of the line a (split) line came from: every half of it shares it."""
    return uid.split(".")[0]


def speaker_number(label: str) -> int | None:
    """N of a voice the machine numbered (说话人N, until a clerk names it); None for a name or role."""
    m = re.fullmatch(r"说话人(\d+)", label)
    return int(m.group(1)) if m else None


def gap_note(start_ms: int, end_ms: int) -> str:
    """The visible gap every export writes where speech was not recognized: 〔00:17–00:28 未能识别，请核听录音〕."""
    def mmss(ms: int) -> str:
        h, rem = divmod(ms // 1000, 3600)
        return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60:02d}:{rem % 60:02d}"
    return f"〔{mmss(start_ms)}–{mmss(end_ms)} 未能识别，请核听录音〕"

# Bounds every value that reaches the database has: a 64-bit column cannot hold an unbounded integer, and a
# request is refused with 422 rather than failing in the store.
Channel = Annotated[int, Field(ge=0, le=63)]
# names a folder in the audio archive: word characters, '.', '-'; never '/', '..' or a leading dot
HEARING_ID = r"^\w[\w.-]{0,63}$"
ZH_TZ = dt.timezone(dt.timedelta(hours=8))  # the courts' time: Beijing, printed and scheduled in it
def new_hearing_id() -> str:
    """A hearing id the server chooses: unguessable, so no court can probe another court's ids."""
    return secrets.token_hex(8)


HearingId = Annotated[str, Field(pattern=HEARING_ID, description="Word characters (汉字 too), '.', '-'; 64 at most")]
Millis = Annotated[int, Field(ge=0, le=10**11)]  # three years of hearing time
# no control characters: a record must print (DOCX/PDF are XML and refuse them); Text may hold line breaks
Name = Annotated[str, Field(max_length=200, pattern=r"^[^\x00-\x1f\x7f\ufffe\uffff]*$")]
Text = Annotated[str, Field(max_length=20_000, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]*$")]
# as long as the record store's columns keep them (PostgreSQL refuses longer; SQLite would not):
# a speaker's label; a participant's name, a courtroom, a case number
Speaker = Annotated[str, Field(max_length=64, pattern=r"^[^\x00-\x1f\x7f\ufffe\uffff]*$")]
ShortName = Annotated[str, Field(max_length=128, pattern=r"^[^\x00-\x1f\x7f\ufffe\uffff]*$")]


class Role(str, Enum):
    """Procedural roles as they appear in a 庭审笔录. Values are stable ids; ``label`` is what is printed."""

    presiding_judge = "presiding_judge"
    judge = "judge"
    juror = "juror"
    clerk = "clerk"
    plaintiff = "plaintiff"
    plaintiff_agent = "plaintiff_agent"
    defendant = "defendant"
    defendant_agent = "defendant_agent"
    prosecutor = "prosecutor"
    defender = "defender"
    accused = "accused"  # a criminal trial's 被告人 (a civil one's is 被告)
    victim = "victim"
    third_party = "third_party"
    witness = "witness"
    other = "other"

    @property
    def label(self) -> str:
        return _LABELS[self]

    @classmethod
    def _missing_(cls, value):  # Role("原告代理人") works as Role("plaintiff_agent"): APIs accept either
        return next((r for r in cls if r.label == value), None)

    @classmethod
    def parse(cls, text: str) -> "Role":
        """Accept an id (``plaintiff_agent``) or the Chinese label (``原告代理人``)."""
        for role in cls:
            if text in (role.value, role.label):
                return role
        choices = ", ".join(f"{r.value}/{r.label}" for r in cls)
        raise ValueError(f"unknown role {text!r}; expected one of: {choices}")


_LABELS = {
    Role.presiding_judge: "审判长", Role.judge: "审判员", Role.juror: "人民陪审员", Role.clerk: "书记员",
    Role.plaintiff: "原告", Role.plaintiff_agent: "原告代理人", Role.defendant: "被告",
    Role.defendant_agent: "被告代理人", Role.prosecutor: "公诉人", Role.defender: "辩护人",
    Role.accused: "被告人", Role.victim: "被害人",
    Role.third_party: "第三人", Role.witness: "证人", Role.other: "其他",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=False)


class Token(_Model):
    """A word (English) or character/word piece (Chinese) with its time, as the engine aligned it."""

    text: str
    start_ms: int = Field(ge=0)
    end_ms: int = Field(ge=0)
    prob: float | None = None


class UtteranceStatus(str, Enum):
    """partial: still being spoken; final: the engine's accurate pass; edited: a person changed the
    text (which then wins over any later machine text); confirmed: a person checked it as is."""

    partial = "partial"
    final = "final"
    edited = "edited"
    confirmed = "confirmed"


class Utterance(_Model):
    id: str
    start_ms: Millis
    end_ms: Millis
    channel: Channel = 0
    speaker: str
    role: Role | None = None
    text: str
    tokens: list[Token] = Field(default_factory=list)
    language: str | None = None
    confidence: float | None = Field(default=None, description="Mean token probability, 0..1")
    status: UtteranceStatus = UtteranceStatus.final
    machine_text: str | None = Field(default=None, description="The engine's text, kept beside a human edit")
    participant: str | None = Field(default=None, description="Name of the participant the utterance is attributed to")
    flags: list[str] = Field(default_factory=list, description=(
        "Why an utterance needs a person: 'unrecognized' (speech without usable text: listen and type it), "
        "with the reason 'empty', 'loop' or 'engine_error'; 'crosstalk_unchecked' (a neighbouring seat's "
        "audio arrived too late to check this utterance for its bleed: it may repeat that seat's words); 'overlap' "
        "(another voice spoke at the same time: exports mark it 〔同时发言〕); 'continues' (not a warning: the "
        "speaker went on from the channel's previous utterance, a long utterance finalized in pieces while "
        "it was spoken; exports print the pieces as one turn); 'final_after_edit' (the engine's final came after a "
        "clerk corrected the partial and says otherwise: its text is ``machine_text``; cleared when she edits "
        "or confirms the line again); 'speaker_unsure' (the machine could not tell who said it: the label is a "
        "guess, exports write 〔发言人待核，请核听录音〕, until a person assigns the speaker or confirms the line)"))

    def flagged(self, flag: str) -> Utterance:
        """The utterance with ``flag`` among its flags (once)."""
        return self if flag in self.flags else self.model_copy(update={"flags": [*self.flags, flag]})

    @property
    def unrecognized(self) -> bool:
        """Speech the engine gave no usable text for, and nobody has typed yet."""
        return UNRECOGNIZED in self.flags and not self.text.strip()

    @property
    def shown_text(self) -> str:
        """What a reader sees: the text, or for an unrecognized stretch a visible gap to replay."""
        return gap_note(self.start_ms, self.end_ms) if self.unrecognized else self.text

    @property
    def printed_text(self) -> str:
        """What an export prints: the shown text, and what a reader of the page must know of it: another
        voice spoke over it, who said it is the machine's guess, it may repeat a neighbouring seat
        (until a person looked at it), the engine
        heard otherwise after the clerk's correction (until she looked again)."""
        notes = [OVERLAP_NOTE if OVERLAP in self.flags else "",
                 SPEAKER_UNSURE_NOTE if SPEAKER_UNSURE in self.flags else "",
                 CROSSTALK_NOTE if CROSSTALK_UNCHECKED in self.flags and self.status is UtteranceStatus.final else "",
                 f"〔识别结果另为：{self.machine_text}〕" if FINAL_AFTER_EDIT in self.flags and self.machine_text else ""]
        return self.shown_text + "".join(notes)

    @property
    def speaker_label(self) -> str:
        """How the utterance is attributed on paper: the role (and name) when known, else the speaker label."""
        if self.role and self.participant:
            return f"{self.role.label}{self.participant}"
        return self.role.label if self.role else self.speaker


class Participant(_Model):
    name: str | None = None
    role: Role
    channel: int | None = None
    speaker: str | None = None


class Source(_Model):
    path: str | None = None
    duration_ms: int = Field(ge=0)
    sample_rate: int
    channels: int


class Hearing(_Model):
    id: str
    title: str | None = None
    case_number: str | None = Field(default=None, description="案号")
    cause: str | None = Field(default=None, description="案由")
    parties: list[str] = Field(default_factory=list, description="The case's parties (当事人) as named in the case")
    court: str | None = None
    courtroom: str | None = None
    public: bool | None = Field(default=None, description="公开审理 (True) or 不公开 (False)")
    scheduled_at: dt.datetime | None = None
    started_at: dt.datetime | None = Field(default=None, description="When the hearing actually opened")
    closed_at: dt.datetime | None = None
    language: str = "zh"


class Correction(_Model):
    """One human change to an utterance: never overwrites, the record keeps every step."""

    utterance_id: str
    at: dt.datetime
    by: str
    field: str = Field(description="text or speaker")
    before: str | None
    after: str
    reason: str | None = None


class Interruption(_Model):
    """Recording paused or resumed (法释〔2017〕5号 requires the record to show it, with the reason)."""

    at: dt.datetime
    at_ms: int = Field(ge=0, description="Hearing time of the pause or resumption")
    kind: str = Field(pattern="^(paused|resumed)$")
    reason: str
    by: str


class Signature(_Model):
    by: str
    role: Role
    at: dt.datetime
    digest: str = Field(description="SHA-256 of the record's canonical JSON that was read back and signed")


class PartySignature(_Model):
    """A party's signature on the read-back 笔录 (on paper or a signature pad), or a refusal to sign,
    as the clerk notes it (民诉法: a refusal is recorded, and the record stands)."""

    name: str
    role: Role
    at: dt.datetime
    noted_by: str
    refused: bool = False
    reason: str | None = None


class CorrectionRequest(_Model):
    """补正申请 after sign-off: appended beside the signed text, never replacing it."""

    utterance_id: str | None
    at: dt.datetime
    by: str
    noted_by: str | None = Field(default=None, description="The clerk who noted a participant's request")
    role: Role | None = None
    text: str
    reason: str


class Pipeline(_Model):
    """Which models produced the record, so a reader can judge and reproduce it."""

    engine: str
    model: str
    vad: str
    diarizer: str


class RedactionNote(_Model):
    """Where a public version hides something: its line and field, and the span of the mask in the
    public text (what was hidden is in the clerk's redaction log, never here)."""

    category: str
    utterance_id: str | None = None
    field: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)


class PublicVersion(_Model):
    """Marks a record as the public version of a hearing's record (redaction/public.py)."""

    made_at: dt.datetime
    redactions: list[RedactionNote] = Field(default_factory=list)


class Record(_Model):
    schema_version: str = SCHEMA_VERSION
    hearing: Hearing
    source: Source
    pipeline: Pipeline
    participants: list[Participant] = Field(default_factory=list)
    utterances: list[Utterance] = Field(default_factory=list)
    corrections: list[Correction] = Field(default_factory=list)
    interruptions: list[Interruption] = Field(default_factory=list)
    signatures: list[Signature] = Field(default_factory=list)
    correction_requests: list[CorrectionRequest] = Field(default_factory=list)
    party_signatures: list[PartySignature] = Field(default_factory=list)
    public_version: PublicVersion | None = Field(default=None, description=(
        "Set only on a public version: personal data masked, the record's own text unchanged elsewhere"))
    created_at: dt.datetime = Field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))

    def speakers(self) -> list[str]:
        seen: dict[str, None] = {}
        for u in self.utterances:
            seen.setdefault(u.speaker_label, None)
        return list(seen)
