"""Command-line arguments the commands share: parsed, or refused in one line (exit 2) that says
what the option takes; court IT reads that, not a traceback."""
from __future__ import annotations

from typing import Literal, NoReturn

import numpy as np
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


def parse_voices(values: list[str]) -> dict[str, np.ndarray]:
    """``--voice NAME=FILE`` options: each name's sample, decoded (16 kHz mono)."""
    from .audio import AudioError, decode
    from .records.model import speaker_number

    voices: dict[str, np.ndarray] = {}
    for item in values:
        name, _, path = item.partition("=")
        if not name.strip() or not path:
            fail(f"--voice takes NAME=FILE (e.g. 审判长=judge.wav), not {item!r}")
        if speaker_number(name) is not None or name in voices:
            fail(f"--voice {name}: give each person's own name or role (说话人N is the machine's)")
        try:
            voices[name] = decode(path).channel(0)
        except AudioError as err:
            fail(f"--voice {name}: {err}")
    return voices

