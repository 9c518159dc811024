"""`courtscribe tokens …` and `courtscribe audit …`: court IT issues and revokes tokens on the
server's own machine (database access is the credential) and checks the audit chain.

The record store and the token codec load in the commands that use them: ``audit verify`` is a
court IT person's quick check and need not load SQLAlchemy, alembic and JWT (~1 s a call)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from ..config import get_settings
from ..seal import SealKeyError, load_key
from .audit import AuditLog
from .scopes import AccessRole, Principal

if TYPE_CHECKING:  # loaded only by the commands that use it (JWT, the database)
    from .tokens import Tokens

tokens_app = typer.Typer(no_args_is_help=True, help="Issue, list and revoke access tokens.")
audit_app = typer.Typer(no_args_is_help=True, help="Read and verify the audit log.")
CLI = Principal(token_id="cli", role=AccessRole.admin, name="courtscribe tokens (server console)")


def _tokens() -> Tokens:
    from ..db import connect
    from .tokens import Tokens

    return Tokens(connect(get_settings().records_url))  # the record store's database, its schema up to date


def _audit() -> AuditLog:
    settings = get_settings()
    return AuditLog(settings.audit_file, load_key(settings))


@tokens_app.command("issue")
def issue(role: AccessRole = typer.Option(..., "--role", help="recorder | clerk | judge | viewer | caption | monitor | admin"),
          name: str = typer.Option(..., "--name", help="Who or what holds it, as the audit log and records name it."),
          court: Optional[str] = typer.Option(None, "--court", help="Court it is limited to (all but admin need one)."),
          room: Optional[str] = typer.Option(None, "--room", help="Courtroom it is limited to."),
          hearing: Optional[str] = typer.Option(None, "--hearing", help="Single hearing it is limited to."),
          days: Optional[float] = typer.Option(None, "--days", help="Expires after this many days (default: never)."),
          as_json: bool = typer.Option(False, "--json", help="Print the token and its scope as JSON.")) -> None:
    """Issue a token; it is printed once (only its hash is stored)."""
    from .tokens import TokenError

    try:
        out = _tokens().issue(role, name=name, court=court, room=room, hearing=hearing, days=days)
    except TokenError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    _audit().record("token_issued", CLI, token_id=out.id, role=role.value, name=name, court=court, room=room,
                    hearing=hearing, expires_at=out.expires_at.isoformat() if out.expires_at else None)
    if as_json:
        typer.echo(json.dumps({"token": out.token, "id": out.id, "role": role.value, "scope": out.principal.scope_text()},
                              ensure_ascii=False))
    else:
        typer.echo(out.token)
        typer.echo(f"id {out.id}: {role.value} for {name}, {out.principal.scope_text()}", err=True)


@tokens_app.command("revoke")
def revoke(token_id: str = typer.Argument(..., help="The token's id (or a JWT's jti).")) -> None:
    """Revoke a token (or a JWT by its jti); the audit log records it."""
    known = _tokens().revoke(token_id)
    _audit().record("token_revoked", CLI, token_id=token_id, known=known)
    typer.echo(f"revoked {token_id}" + ("" if known else " (no such API token: recorded as a revoked JWT id)"))


@tokens_app.command("list")
def list_tokens() -> None:
    """Every token issued: id, role, active or revoked, holder and scope (never the token itself)."""
    for t in _tokens().list():
        state = "revoked" if t.revoked_at else "active"
        scope = ", ".join(f"{k} {v}" for k, v in (("court", t.court), ("room", t.room), ("hearing", t.hearing)) if v)
        typer.echo(f"{t.id}\t{t.role}\t{state}\t{t.name}\t{scope or 'server-wide'}")


@audit_app.command("verify")
def verify(path: Optional[Path] = typer.Option(None, "--file", help="Audit log (default: the server's).")) -> None:
    """Check the audit log's hash chain; exit 1 when any entry was altered, removed or inserted."""
    try:
        log = AuditLog(path, load_key(get_settings())) if path else _audit()
    except SealKeyError as err:  # an emptied key would make every entry verify unsealed
        typer.echo(f"BROKEN: {err}")
        raise typer.Exit(1) from None
    problems = log.verify()
    for p in problems:
        typer.echo(f"line {p.line}: {p.message}")
    typer.echo(f"{len(log.entries())} entries, {'chain intact' if not problems else f'{len(problems)} problems'}")
    raise typer.Exit(1 if problems else 0)


@audit_app.command("show")
def show(last: int = typer.Option(20, "--last", help="How many of the newest entries.")) -> None:
    """Print the newest audit log entries, one JSON object per line."""
    for e in _audit().entries()[-last:]:
        typer.echo(json.dumps(e, ensure_ascii=False))
