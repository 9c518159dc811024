"""Who must sign a hearing's record and who has: the bench and the clerk always, the parties where
the court requires it (``COURTSCRIBE_PARTIES_SIGN``). Each signs in any order once the record is
read back; the first signature locks the text, the others still come. A party who refuses is
noted, and the record stands (民诉法: 拒绝签名盖章的，记明情况附卷)."""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from .model import Record, Role

BENCH = (Role.presiding_judge, Role.judge, Role.juror)
PARTIES = (Role.plaintiff, Role.plaintiff_agent, Role.defendant, Role.defendant_agent, Role.third_party,
           Role.prosecutor, Role.defender, Role.accused, Role.victim)
# who signs on paper, the clerk noting it (or their refusal): the parties and the other participants
# (民诉法: 当事人和其他诉讼参与人), a witness of their testimony too
NOTED = (*PARTIES, Role.witness, Role.other)


@dataclass
class Signer:
    role: Role
    name: str | None
    state: str = "pending"  # pending | signed | refused
    at: dt.datetime | None = None
    reason: str | None = None
    noted: bool = False  # the state is the clerk's note (a party on paper), not a signature of their own

    @property
    def party(self) -> bool:
        return self.role in PARTIES

    def view(self) -> dict:
        return {**asdict(self), "role": self.role.value, "role_label": self.role.label, "party": self.party,
                "at": self.at.isoformat() if self.at else None}


def signers(record: Record, parties_sign: bool = False, everyone: bool = False) -> list[Signer]:
    """Everyone who signs, each with where they stand. A bench or clerk the participants do not
    name is still asked for (审判长, 书记员); a signature by someone not listed is shown too.
    ``everyone``: every participant (the printed 笔录's signature lines, signed on paper)."""
    people = [p for p in record.participants if everyone or p.role in BENCH or p.role is Role.clerk
              or (parties_sign and p.role in PARTIES)]
    out = [Signer(p.role, p.name) for p in people]
    if not any(s.role in BENCH for s in out):
        out.insert(0, Signer(Role.presiding_judge, None))
    if not any(s.role is Role.clerk for s in out):
        out.append(Signer(Role.clerk, None))
    for sig in record.signatures:
        mine = next((s for s in out if s.state == "pending" and s.role == sig.role and s.name in (None, sig.by)),
                    None)
        if mine is None:
            mine = Signer(sig.role, sig.by)
            out.append(mine)
        mine.name, mine.state, mine.at = sig.by, "signed", sig.at
    for noted in record.party_signatures:  # a clerk's note is about a participant, never the bench
        if noted.role not in NOTED:
            continue
        mine = next((s for s in out if s.role == noted.role and s.name == noted.name), None)
        if mine is None:
            mine = Signer(noted.role, noted.name)
            out.append(mine)
        elif mine.state == "signed" and not mine.noted:  # signed in their own name: a note changes nothing
            continue
        mine.state = "refused" if noted.refused else "signed"
        mine.at, mine.reason, mine.noted = noted.at, noted.reason, True
    return out


def refusal(record: Record, by: str, role: Role) -> str | None:
    """Why ``by`` may not sign ``record`` as ``role`` (None: they may). Where the participants name
    who sits in that seat, only they sign in it (a judge's token is no seat on every bench of its
    court); one the participants name signs in their own seat; nobody signs twice."""
    if any(sig.by == by for sig in record.signatures):
        return f"{by} has signed this record already"
    named = _named(record, role)
    if named and by not in named:
        return (f"the record names {'、'.join(named)} as {role.label}, not {by}: only they sign as "
                f"{role.label} (if the participants are wrong, the clerk corrects them before anyone signs)")
    own = [p.role for p in record.participants if p.name == by and (p.role in BENCH or p.role is Role.clerk)]
    if own and role not in own:
        return f"the record names {by} as {'、'.join(r.label for r in own)}: sign in that seat"
    return None


def note_refusal(record: Record, name: str, role: Role) -> str | None:
    """Why the clerk may not note ``name``'s signature as ``role``: the participants name others in it."""
    named = _named(record, role)
    if named and name not in named:
        return (f"the record names {'、'.join(named)} as {role.label}, not {name}: add {name} to the "
                "participants first")
    return None


def _named(record: Record, role: Role) -> list[str]:
    """Whom the participants name in ``role``."""
    return [p.name for p in record.participants if p.role is role and p.name]
