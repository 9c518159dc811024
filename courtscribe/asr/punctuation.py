"""Punctuation for recognisers that write none (FunASR's Paraformer): the mark after each word.

One small interface, so production runs CT-Transformer inside the engine's process or, in a
cluster, as a deployment of its own (its own GPU share and replica count, batched across the
finals replicas: ``cluster/deployments.py``) without the engine knowing which.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from .funasr_loader import LockedModel


class Punctuator(ABC):
    name: str

    @abstractmethod
    def marks_many(self, texts: list[list[str]]) -> list[list[str]]:
        """For each word sequence, the mark after each word ('' for none)."""


class CtPunctuator(Punctuator):
    """FunASR's CT-Transformer (``ct-punc``), from a local model directory."""

    def __init__(self, model_dir: Path | str, *, device: str = "cpu", cpu_threads: int = 2):
        self.model = LockedModel(Path(model_dir), device=device, ncpu=cpu_threads)
        self.name = Path(model_dir).name
        self._punc_list = list(self.model.auto.model.punc_list)
        self._no_punc = {i for i, p in enumerate(self._punc_list) if p in ("_", "<unk>")}

    def marks_many(self, texts: list[list[str]]) -> list[list[str]]:
        return [self._marks(words) for words in texts]

    def _marks(self, words: list[str]) -> list[str]:
        if not words:
            return []
        # A list, not a bare string: FunASR reads a bare string that names a file or URL as one.
        [res] = self.model.generate([" ".join(words)], disable_pbar=True) or [{}]
        classes = res.get("punc_array")
        classes = classes.tolist() if classes is not None else []
        if len(classes) != len(words):
            return [""] * len(words)
        return ["" if c in self._no_punc else self._punc_list[c] for c in classes]
