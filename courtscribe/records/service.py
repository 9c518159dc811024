"""What is done to a hearing's record as a whole: sign, verify, export, package. The REST routes
and ``courtscribe records`` both call this, so a rule kept here holds on both: a signature's
anchor goes into the audit log, verify reads those anchors, an export is named by its 案号 and a
package holds what the writer registry says."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..access.audit import AuditLog
from ..access.scopes import Principal
from ..logs import get_logger
from . import archive, formats, package
from ..redaction import public
from ..redaction.public import Choices, Redaction
from .model import LINKED, PROTECTION, REDACTION, Record, Role
from .store import RecordStore, Signed
from .verify import ANCHOR, Verification

log = get_logger(__name__)
EXPORTS = (*formats.WRITERS, "package")  # what a person may ask for: every writer, and the 电子卷宗 package
UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f]')  # not in a file name on Windows or Linux


@dataclass(frozen=True)
class Export:
    data: bytes
    media_type: str
    filename: str


def filename(record: Record, extension: str) -> str:
    """A court files exports by 案号: the case number names the file, else the hearing id."""
    stem = UNSAFE.sub("_", record.hearing.case_number or record.hearing.id).strip() or record.hearing.id
    return f"{stem}.{extension}"


class Records:
    """One hearing store, its audit log and its audio archive, as the routes and the CLI share them."""

    def __init__(self, store: RecordStore, audit: AuditLog, archive_dir: Path):
        self.store, self.audit, self.archive_dir = store, audit, archive_dir

    def sign(self, hearing_id: str, *, by: str, role: Role, who: Principal | None = None,
             read_back: str | None = None) -> Signed:
        """Sign, then anchor the signed ledger's head in the audit log (a file outside the database):
        a database rewritten later no longer matches it. The signature stands if the anchor cannot be
        written; the ledger's own seal still guards it, and the failure is logged."""
        signed = self.store.sign(hearing_id, by=by, role=role, token=who.token_id if who else None,
                                 read_back=read_back)
        try:
            self.audit.record(ANCHOR, who, hearing=hearing_id, seq=signed.seq, hash=signed.hash,
                              digest=signed.digest, signer=by)
        except (OSError, ValueError) as err:
            log.error("ledger anchor not written to the audit log", hearing=hearing_id, error=repr(err))
        return signed

    def verify(self, hearing_id: str) -> Verification:
        """Chain, lines, status, signatures and seals, and every anchored head still in the ledger."""
        return self.store.verify(hearing_id, self.audit.entries())

    def export(self, hearing_id: str, fmt: str, *, public: bool = False) -> Export:
        """The record, or its public version (personal data masked: redaction/public.py), in ``fmt``.
        Raises ValueError for a format no writer has (a public version has no package: the audio
        says what the text hides), fonts.FontMissing for a printed form without its font."""
        if fmt == "package" and public:
            raise ValueError("a public version is a document, not a package: the hearing's audio says what it hides")
        if fmt == "package":  # the record and the ledger it was read from, as of one moment
            record, ledger = self.store.snapshot(hearing_id)
            data = package.build(record, archive.hearing_files(self.archive_dir, hearing_id), self.store.seal_key,
                                 ledger)
            return Export(data, package.MEDIA_TYPE, filename(record, "zip"))
        writer = formats.writer(fmt)
        record = self.public_version(hearing_id)[0] if public else self.store.record(hearing_id)
        stem = filename(record, writer.extension)
        if public:
            stem = stem.replace(f".{writer.extension}", f"-公开版.{writer.extension}")
        return Export(formats.render_bytes(record, fmt), writer.media_type, stem)

    def public_version(self, hearing_id: str,
                       chosen: Choices | None = None) -> tuple[Record, list[Redaction]]:
        """The hearing's public version (its record with what the finder and the clerk hide masked)
        and its redaction log (what it hides, in the record's own words: for the clerk to review)."""
        if chosen is None:
            chosen = self.choices(hearing_id)
        return public.public_version(self.store.record(hearing_id), chosen)

    def choices(self, hearing_id: str, aired: bool = True) -> Choices:
        """Who is protected and what the clerk hid or showed in the public version, from the ledger;
        ``aired``: which lines a blank took off the air too (it reads every final's entry)."""
        kinds = (PROTECTION, REDACTION, public.CAPTIONS, *LINKED)
        kinds += (public.FINAL,) if aired else ()
        return public.choices(self.store.entries(hearing_id, kinds=kinds))
