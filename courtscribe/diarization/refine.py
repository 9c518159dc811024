"""Offline refinement of a hearing's speaker labels, at close or on demand.

Live labels are decided one utterance at a time; at the end the whole recording is available. Each
mixed-channel line's audio is cut into windows, all windows are clustered at once, and every line
gets the cluster holding most of it. Clusters are then named so that nothing a person decided moves:
a cluster that holds lines a clerk labelled takes that label; one close to an enrolled voice takes
that participant; otherwise the label most of its lines already carry, or a fresh 说话人N. The
result is a list of proposals; applying them writes machine relabels, which never override a
label set by a person (ledger rule 3).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from ..records.model import Participant, Role, Utterance
from .base import speaker_label
from .clustering import THRESHOLD, cluster, majority, to_segments
from .embedding import SpeakerEncoder, window_audio, windows

ENROLLED_MATCH = 0.4  # cosine similarity of a cluster to an enrolled voice to take that name


@dataclass(frozen=True)
class Proposal:
    utterance_id: str
    before: str
    after: str
    role: Role | None = None
    participant: str | None = None

    def as_dict(self) -> dict:
        return {"utterance_id": self.utterance_id, "before": self.before, "after": self.after,
                "role": self.role.value if self.role else None, "participant": self.participant}


def propose(lines: list[Utterance], audio: np.ndarray, encoder: SpeakerEncoder, *,
            voices: list[tuple[Participant, np.ndarray]] = (), num_speakers: int | None = None,
            human: set[str] = frozenset()) -> list[Proposal]:
    """Relabels for one channel's lines (``audio`` is that channel from hearing time 0)."""
    spans = [(u.start_ms, u.end_ms) for u in lines]
    wins = windows(spans)
    if not wins:
        return []
    X = encoder.embed_many(window_audio(audio, wins))
    labels = cluster(X, num_speakers, THRESHOLD)
    segs = to_segments(wins, labels)
    of_line = {u.id: majority(u.start_ms, u.end_ms, segs) for u in lines}
    names = _name_clusters(lines, of_line, X, labels, voices, human)
    out = []
    for u in lines:
        c = of_line[u.id]
        if c is None or u.id in human:
            continue
        name, role, person = names[c]
        if name != u.speaker:
            out.append(Proposal(u.id, u.speaker, name, role, person))
    return out


def _name_clusters(lines, of_line, X, labels, voices, human) -> dict[int, tuple[str, Role | None, str | None]]:
    names: dict[int, tuple[str, Role | None, str | None]] = {}
    taken: set[str] = set()
    clusters = sorted(set(labels.tolist()))
    by_id = {u.id: u for u in lines}
    # 1. what people decided
    for c in clusters:
        votes = Counter(by_id[uid].speaker for uid, k in of_line.items() if k == c and uid in human)
        if votes:
            name = votes.most_common(1)[0][0]
            u = next(by_id[uid] for uid, k in of_line.items() if k == c and uid in human and by_id[uid].speaker == name)
            if name not in taken:
                names[c], taken = (name, u.role, u.participant), taken | {name}
    # 2. enrolled voices
    for c in clusters:
        if c in names or not voices:
            continue
        centroid = X[labels == c].mean(axis=0)
        centroid /= max(np.linalg.norm(centroid), 1e-9)
        sims = [float(centroid @ v) for _, v in voices]
        best = int(np.argmax(sims))
        person = voices[best][0]
        name = person.name or person.role.label
        if sims[best] >= ENROLLED_MATCH and name not in taken:
            names[c], taken = (name, person.role, person.name), taken | {name}
    # 3. the label most of its lines carry now, else a fresh one
    n = 0
    for c in clusters:
        if c in names:
            continue
        votes = Counter(by_id[uid].speaker for uid, k in of_line.items() if k == c)
        name = next((v for v, _ in votes.most_common() if v not in taken), None)
        while name is None or name in taken:
            n += 1
            name = speaker_label(n) if speaker_label(n) not in taken else None
        u = next((by_id[uid] for uid, k in of_line.items() if k == c and by_id[uid].speaker == name), None)
        names[c], taken = (name, u.role if u else None, u.participant if u else None), taken | {name}
    return names
