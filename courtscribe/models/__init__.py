"""Model registry: ``default_registry()`` knows every model by name and resolves it offline."""
from __future__ import annotations

from ..config import Settings, get_settings
from .catalog import ALL
from .registry import ModelError, ModelSpec, Registry, VerifyResult, sha256_file

__all__ = ["ModelError", "ModelSpec", "Registry", "VerifyResult", "default_registry", "sha256_file"]


def default_registry(settings: Settings | None = None) -> Registry:
    s = settings or get_settings()
    return Registry(ALL, cache_dir=s.model_cache_dir, model_dir=s.model_dir)
