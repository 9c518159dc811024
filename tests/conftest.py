"""Shared fixtures: the real test data beside the checkout, and the embedded models loaded once."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("COURTSCRIBE_TEST_DATA", ROOT.parent / "shared" / "data"))
ZH = DATA / "zh-smoke"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (ZH / "manifest.jsonl").exists():
        pytest.fail(f"test data not found at {DATA}: the shared/ folder must sit beside the checkout")
    return DATA


@pytest.fixture(scope="session")
def manifest(data_dir) -> dict[str, dict]:
    rows = [json.loads(line) for line in (ZH / "manifest.jsonl").read_text().splitlines() if line]
    return {r["audio"]: r for r in rows}


@pytest.fixture(scope="session")
def components():
    """The embedded default pipeline (Whisper base + silero VAD), loaded once for the session."""
    from courtscribe.config import Settings
    from courtscribe.transcribe import load_components

    return load_components(Settings())
