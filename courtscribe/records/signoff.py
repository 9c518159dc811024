"""Sign-off: the bench and the clerk sign what was read back, the parties' signatures (or refusals)
are noted, and after it only 补正申请 are added. The first signature locks the record."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from .db import UtteranceRow
from .ledger import record_digest
from .model import FINAL_AFTER_EDIT, Role
from .naming import VoiceNaming
from . import signing
from .reading import Conflict, RecordError


class NotYours(RecordError):
    """A signature in a seat the record gives someone else."""
    status, code = 403, "not_the_signer"


@dataclass(frozen=True)
class Signed:
    """A signature as the ledger holds it: the record's digest and the ledger's head after it."""
    digest: str
    seq: int
    hash: str


class SignOff(VoiceNaming):
    """The store's sign-off (``RecordStore`` writes)."""

    if TYPE_CHECKING:
        _lock: threading.RLock

    def sign(self, hearing_id: str, *, by: str, role: Role, token: str | None = None,
             read_back: str | None = None) -> Signed:
        """Sign what was read back: the hearing must be closed; the first signature locks it. The
        digest is taken under the write lock, and the ledger must not have grown since (another
        process's write): what is signed is exactly what was digested. ``read_back``: the digest of
        the record the signer read back (``digest``); a record changed since is not signed."""
        with self._lock:
            seen = len(self.entries(hearing_id))
            record = self.record(hearing_id)
            digest = record_digest(record)
            if read_back is not None and read_back != digest:
                raise Conflict(f"the record of {hearing_id} changed after it was read back: read it back again "
                               "and sign then")

            def change(s, h):
                if h.status not in ("closed", "signed"):
                    raise Conflict(f"hearing {hearing_id} is {h.status}: close it and read the record back before signing")
                if why := signing.refusal(record, by, Role(role)):
                    raise NotYours(why)
                if h.status == "closed" and (late := self._late_final(s, h.id)):  # the first signature
                    raise Conflict(f"line {late}: the engine heard otherwise after the clerk's correction; look at it "
                                   "(edit or confirm the line) before the record is signed", utterance_id=late)
                if self._head_seq(s, hearing_id) != seen:
                    raise Conflict(f"the record of {hearing_id} changed while it was being signed: read it back and sign again")
                h.status = "signed"
            entry = self._write(hearing_id, by, "signed", {"by": by, "role": Role(role).value, "digest": digest,
                                                           **({"token": token} if token else {})},
                                signed_ok=True, change=change)
        return Signed(digest, entry.seq, entry.hash)

    @staticmethod
    def _late_final(s: Session, hearing_id: str) -> str | None:
        """A line whose late final still waits for the clerk's look (``final_after_edit``)."""
        rows = s.execute(select(UtteranceRow.id, UtteranceRow.flags).where(UtteranceRow.hearing_id == hearing_id))
        return next((uid for uid, flags in rows if FINAL_AFTER_EDIT in (flags or [])), None)

    def digest(self, hearing_id: str) -> str:
        """The digest a signature would take now (``sign``'s ``read_back``)."""
        return record_digest(self.record(hearing_id))

    def note_party_signature(self, hearing_id: str, *, name: str, role: Role, actor: str, refused: bool = False,
                             reason: str | None = None) -> None:
        """The clerk notes that a party signed the read-back record (or refused to, and why)."""
        if why := signing.note_refusal(self.record(hearing_id), name, Role(role)):
            raise NotYours(why)

        def change(s, h):
            if h.status not in ("closed", "signed"):
                raise Conflict(f"hearing {hearing_id} is {h.status}: close it and read the record back first")
        self._write(hearing_id, actor, "party_signature", {"name": name, "role": Role(role).value,
                                                           "refused": refused, "reason": reason},
                    signed_ok=True, change=change)

    def request_correction(self, hearing_id: str, *, by: str, text: str, reason: str, role: Role | None = None,
                           utterance_id: str | None = None, name: str | None = None) -> None:
        """A 补正申请 by ``by``, or noted by ``by`` for the participant ``name`` (``role`` theirs)."""
        def change(s, h):
            if h.status != "signed":
                raise Conflict("before sign-off, correct the utterance itself; 补正申请 are for signed records")
        self._write(hearing_id, by, "correction_request", {"utterance_id": utterance_id, "text": text,
                                                          "reason": reason, "role": role.value if role else None,
                                                          **({"name": name} if name else {})},
                    signed_ok=True, change=change)
