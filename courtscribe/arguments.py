"""Command-line arguments the commands share: parsed, or refused in one line (exit 2) that says
what the option takes; court IT reads that, not a traceback."""
from __future__ import annotations

from typing import Literal, NoReturn

import typer

from .records.model import Role


def fail(message: str, code: int = 2) -> NoReturn:
    """Say what is wrong and end the command."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def parse_speakers(value: str) -> int | Literal["auto"]:
    """``--speakers``: how many voices a file holds, or auto."""
    if value == "auto":
        return "auto"
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        fail(f"--speakers takes 'auto' or a positive number, not {value!r}")
    return n


def parse_roles(values: list[str]) -> dict[int, Role]:
    """``--channel-role CHANNEL=ROLE`` options, e.g. ``0=审判长``."""
    roles: dict[int, Role] = {}
    for item in values:
        ch, _, role = item.partition("=")
        try:
            roles[int(ch)] = Role.parse(role)
        except ValueError as err:
            fail(f"--channel-role {item!r}: {err}" if ch.isdigit() else
                  f"--channel-role takes CHANNEL=ROLE (e.g. 0=审判长), not {item!r}")
    return roles
