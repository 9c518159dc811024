"""README's layer picture, checked against the code's imports (lazy ones inside functions too): each
part of the package imports only from the parts under it, FastAPI and starlette only in server/,
Ray only in cluster/. A new arrow up is a design change: it belongs in the picture first."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "courtscribe"
RANK = {
    "__main__": 8, "cli": 7,
    "serving": 6,
    "cluster": 5,
    "server": 4,
    "streaming": 3,
    "transcribe": 2, "components": 2, "backup": 2, "transfer": 2,
    "arguments": 1, "asr": 1, "diarization": 1, "records": 1, "access": 1, "models": 1, "clients": 1, "redaction": 1,
    "frontend": 1,
    # leaves: the domain model and what every layer may use
    "records.model": 0, "audio": 0, "text": 0, "chain": 0, "db": 0, "metrics": 0, "config": 0, "logs": 0,
    "seal": 0, "casenumbers": 0,
}
SIDEWAYS = {  # arrows within one layer, each for a reason
    ("diarization", "asr"): "CAM++ loads through FunASR's model loader (asr/funasr_loader.py); the engine's "
                             "sentences are cut at speaker changes (diarization/attribute.py)",
    ("models", "asr"): "random-weight FunASR models are built through the same loader",
    ("records", "access"): "a signature's ledger head is anchored in the audit log (records/service.py)",
    ("transcribe", "components"): "the file pipeline runs on the loaded components",
    ("records", "redaction"): "a record's public version is one of its exports (records/service.py)",
    ("redaction", "asr"): "protected names are found by sound, as hotwords are (asr/hotwords.py)",
    ("backup", "transfer"): "a PostgreSQL store is backed up through the store's copy (transfer.py)",
    ("clients", "arguments"): "`courtscribe stream` (clients/command.py) takes its options as the other "
                              "commands do",
    ("models", "records"): "`courtscribe models verify` checks the 笔录 font, pinned as the models are "
                           "(records/fonts.py)",
}
# starlette in cluster/ too: Serve's own HTTP proxy takes our frame limit as starlette middleware
ONLY_IN = {"fastapi": {"server"}, "starlette": {"server", "cluster"}, "ray": {"cluster"}}


def _part(module: list[str]) -> str:
    if module[:2] == ["records", "model"]:
        return "records.model"
    return module[0] if module else "__init__"


def imports() -> list[tuple[str, str, str]]:
    """(importing part, imported part or third-party top name, file) for every import in the package."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        rel = list(path.relative_to(PACKAGE).with_suffix("").parts)
        here = rel[:-1] if rel[-1] != "__init__" else rel[:-1]
        me = _part(rel if rel[-1] != "__init__" else rel[:-1] or ["__init__"])
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name.split(".") for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level:
                base = here[:len(here) - (node.level - 1)]
                targets = [base + node.module.split(".")] if node.module else [base + [a.name] for a in node.names]
                targets = [["courtscribe", *t] for t in targets]
            elif isinstance(node, ast.ImportFrom):
                targets = [node.module.split(".")]
            else:
                continue
            for t in targets:
                name = _part(t[1:]) if t[0] == "courtscribe" else t[0]
                found.append((me, name, str(path.relative_to(PACKAGE.parent))))
    return found


def test_every_import_points_down_the_layers():
    up = [(src, dst, f) for src, dst, f in imports() if dst in RANK and src in RANK and src != dst
          and RANK[dst] >= RANK[src] and (src, dst) not in SIDEWAYS]
    assert not up, "imports against the layer picture (README.md): " + "; ".join(f"{f}: {s} → {d}" for s, d, f in up)


def test_web_and_ray_libraries_stay_in_their_layer():
    stray = [(src, dst, f) for src, dst, f in imports() if dst in ONLY_IN and src not in ONLY_IN[dst]]
    assert not stray, "; ".join(f"{f} imports {d}" for _, d, f in stray)


def test_the_picture_names_every_part():
    parts = {src for src, _, _ in imports()} - {"__init__"}
    assert parts <= set(RANK), parts - set(RANK)
