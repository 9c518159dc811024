"""`courtscribe records ...`: the record store from a shell, for clerks' scripts and court IT.

Writes go to the database the server uses (``COURTSCRIBE_DATABASE_URL``, or SQLite under
``COURTSCRIBE_DATA_DIR``); every change is a ledger entry like the same change made over HTTP.
Signing, verifying and exporting go through ``records/service.py``, as the REST routes do.
"""
from __future__ import annotations

import sys
from pathlib import Path

import typer

from ..config import get_settings
from ..seal import load_key
from . import formats, layout
from .ledger import record_digest
from .model import Record, Role
from .service import EXPORTS
from .store import RecordError, RecordStore

app = typer.Typer(no_args_is_help=True, help="Hearings, corrections, sign-off, exports and verification.")
BY = typer.Option(..., "--by", help="Who does this (name as printed on the record).")


def _store() -> RecordStore:
    settings = get_settings()
    return RecordStore(settings.records_url, load_key(settings))


def _records():
    """The server's own record rules (records/service.py): its audit log, its audio archive."""
    from ..access.audit import AuditLog
    from .service import Records

    settings = get_settings()
    return Records(_store(), AuditLog(Path(settings.audit_file), load_key(settings)), settings.data_dir / "archive")


def _run(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except (RecordError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None


def _role(text: str) -> Role:
    return _run(Role.parse, text)


@app.command("list")
def list_hearings() -> None:
    """Every hearing: id, status, courtroom and title, one per line (tab-separated)."""
    for h in _store().hearings():
        typer.echo(f"{h['id']}\t{h['status']}\t{h['courtroom'] or '-'}\t{h['title'] or ''}")


@app.command()
def create(hearing: str, by: str = BY, case_number: str = typer.Option(None, help="案号"),
           cause: str = typer.Option(None, help="案由"), court: str = typer.Option(None),
           courtroom: str = typer.Option(None), title: str = typer.Option(None),
           public: bool = typer.Option(False, "--public/--closed", help="公开 or 不公开审理"),
           channel_role: list[str] = typer.Option([], "--channel-role", help="CHANNEL=ROLE, e.g. 0=审判长"),
           hotword: list[str] = typer.Option([], "--hotword")) -> None:
    """Schedule a hearing (live sources that name it join it)."""
    channels = {int(c): _role(r) for c, r in (item.split("=", 1) for item in channel_role)}
    _run(_store().create_hearing, actor=by, hearing_id=hearing, case_number=case_number, cause=cause, court=court,
         courtroom=courtroom, title=title, public=public, channels=channels, hotwords=hotword)
    typer.echo(hearing)


@app.command("open")
def open_(hearing: str, by: str = BY) -> None:
    """Open a scheduled hearing (开庭): the record's opening time is set now."""
    _run(_store().open_hearing, hearing, actor=by)


@app.command()
def close(hearing: str, by: str = BY) -> None:
    """Close a hearing (闭庭): its record can then be read back and signed."""
    _run(_store().close_hearing, hearing, actor=by)


@app.command()
def participant(hearing: str, by: str = BY, role: str = typer.Option(...), name: str = typer.Option(None),
                channel: int = typer.Option(None)) -> None:
    """Name a participant of the hearing (role, name, the channel of their microphone)."""
    _run(_store().add_participant, hearing, actor=by, role=_role(role), name=name, channel=channel)


@app.command()
def pause(hearing: str, by: str = BY, at_ms: int = typer.Option(...), reason: str = typer.Option(...),
          resumed: bool = typer.Option(False, "--resumed", help="Log the resumption instead of the pause.")) -> None:
    """Log that recording paused (or resumed) and why, as the record must show."""
    _run(_store().interruption, hearing, actor=by, kind="resumed" if resumed else "paused", at_ms=at_ms, reason=reason)


@app.command()
def edit(hearing: str, utterance: str, text: str, by: str = BY, reason: str = typer.Option(None)) -> None:
    """Correct a line's text (a ledger entry keeps who, when, why and the text before)."""
    _run(_store().edit, hearing, utterance, text, actor=by, reason=reason)


@app.command("read-back")
def read_back(hearing: str) -> None:
    """The 笔录 to read back (核对朗读), and on stderr the digest of exactly that record: ``sign``
    takes it, so a line that changed after the reading is not signed unread."""
    record = _run(_store().record, hearing)
    sys.stdout.write(layout.plain(record))
    digest = record_digest(record)
    typer.echo(f"read back; sign with: courtscribe records sign {hearing} --read-back {digest} ...", err=True)


@app.command()
def sign(hearing: str, by: str = BY, role: str = typer.Option(...),
         read_back: str = typer.Option(..., "--read-back", help="The digest `read-back` printed")) -> None:
    """Sign the closed record that was read back; prints the SHA-256 digest signed (its ledger head
    goes into the audit log, as a signature made on the screen does)."""
    typer.echo(_run(_records().sign, hearing, by=by, role=_role(role), read_back=read_back).digest)


@app.command("request-correction")
def request_correction(hearing: str, by: str = BY, text: str = typer.Option(...), reason: str = typer.Option(...),
                       utterance: str = typer.Option(None), role: str = typer.Option(None)) -> None:
    """补正申请 on a signed record: appended beside the original, never replacing it."""
    _run(_store().request_correction, hearing, by=by, text=text, reason=reason, utterance_id=utterance,
         role=_role(role) if role else None)


@app.command()
def export(hearing: str, format: str = typer.Option("docx", "--format", "-f", help=" | ".join(EXPORTS)),
           output: Path = typer.Option(None, "--output", "-o",
                                       help="The file (default: named by the 案号 for a printed form or package, "
                                            "'… (2).pdf' where that exists; a text format goes to stdout)"),
           public: bool = typer.Option(False, "--public", help=(
               "The public version: personal data masked as judgments are de-identified, the record "
               "itself unchanged"))) -> None:
    """Export the record as a document or the e-case-file package (zip with audio and ledger)."""
    from .fonts import FontMissing

    if format not in EXPORTS:
        _run(formats.writer, format)  # says which formats there are
    try:
        got = _run(_records().export, hearing, format, public=public)
    except FontMissing as err:  # no embeddable CJK font: the message says how to get one
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    if output is not None:
        output.write_bytes(got.data)
    elif format == "package" or formats.writer(format).binary:
        output = _new_file(Path(got.filename), got.data)
    else:
        sys.stdout.write(got.data.decode("utf-8"))
        return
    typer.echo(str(output), err=True)


def _new_file(path: Path, data: bytes) -> Path:
    """``data`` in ``path``, or beside it as ``name (2).pdf``… where it exists: the hearings of one
    case share its 案号, and a signed 笔录 already filed is never written over unasked."""
    for n in range(1, 1000):
        candidate = path if n == 1 else path.with_name(f"{path.stem} ({n}){path.suffix}")
        try:
            with open(candidate, "xb") as out:
                out.write(data)
            return candidate
        except FileExistsError:
            continue
    raise typer.BadParameter(f"{path} and 998 more of its name exist: give --output")


@app.command("import")
def import_(record_json: Path, by: str = BY, hearing: str = typer.Option(None, help="Id (default: the record's).")) -> None:
    """Store a record written by `courtscribe transcribe -f json` as a hearing of its own."""
    record = _run(Record.model_validate_json, record_json.read_text())
    hid = _run(_store().import_record, record, actor=by, hearing_id=hearing)
    typer.echo(f"{hid}: {len(record.utterances)} lines")


@app.command()
def verify(hearing: str) -> None:
    """Check the hash chain, the stored lines and every signature; exit 1 at the first broken link."""
    report = _run(_records().verify, hearing)  # the server's own check
    if report.ok:
        typer.echo(f"ok: {hearing}, {report.entries} ledger entries, chain intact")
        return
    where = f" (ledger entry {report.broken_seq})" if report.broken_seq else ""
    typer.echo(f"BROKEN{where}: {report.problem}", err=True)
    raise typer.Exit(1)


@app.command("verify-package")
def verify_package(path: Path) -> None:
    """Check an exported package: every file against its manifest, sealed with this court's key."""
    from . import package

    problems = package.verify(path, load_key(get_settings()))
    for p in problems:
        typer.echo(f"BROKEN: {p}", err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"ok: {path}: every file matches the manifest, sealed with this court's key")


@app.command()
def protect(hearing: str, name: str, by: str = BY, reason: str = typer.Option(None, help="e.g. 未成年人, 被害人"),
            off: bool = typer.Option(False, "--off", help="No longer protected")) -> None:
    """Mark a person protected (a minor, a victim, a protected witness): their name and its
    sound-alikes are masked (张某) in the live captions and the public version."""
    from ..redaction.public import PROTECTION, protection

    _run(_store().note, hearing, actor=by, kind=PROTECTION, payload=protection(name, not off, reason))


@app.command()
def redact(hearing: str, text: str, by: str = BY, line: str = typer.Option(None, "--line", help="The utterance id "
           "(default: every line)"), lift: bool = typer.Option(False, "--lift", help="Show words the finder hid"),
           reason: str = typer.Option(None)) -> None:
    """Hide words in the public version that the finder missed (or ``--lift``: show words it hid).
    The record itself never changes; the choice is a ledger entry."""
    from ..redaction.public import REDACTION, redaction

    _run(_store().note, hearing, actor=by, kind=REDACTION,
         payload=redaction("lift" if lift else "add", text, line, reason))


@app.command()
def redactions(hearing: str) -> None:
    """The public version's redaction log, for the clerk to review: line, field, kind, span, the
    words hidden and what shows instead."""
    _, log = _run(_records().public_version, hearing)
    for r in log:
        typer.echo(f"{r.utterance_id or '-'}\t{r.field}\t{r.category}\t{r.start}-{r.end}\t{r.words}\t{r.replacement}")
