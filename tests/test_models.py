import shutil

import pytest

from courtscribe.models import ModelError, Registry, default_registry
from courtscribe.models.catalog import ALL, WHISPER_BASE


@pytest.fixture()
def registry(tmp_path):
    return Registry(ALL, cache_dir=tmp_path / "cache", model_dir=tmp_path / "models")


def test_embedded_models_resolve_offline_and_verify(registry):
    for spec in ALL:
        if spec.embedded:
            result = registry.verify(spec.name)
            assert result.ok, result.problems
            assert result.path and result.path.is_dir()


def test_whisper_is_assembled_from_two_wheels(registry):
    path = registry.resolve("whisper-base")
    assert (path / "model.bin").stat().st_size > 140_000_000
    assert {"config.json", "tokenizer.json", "vocabulary.json"} <= {p.name for p in path.iterdir()}
    assert not list(path.glob("*.part*")) and not list(path.glob("*.tmp"))


def test_corrupted_model_file_fails_verify_with_clear_message(registry):
    path = registry.resolve("whisper-base")
    with open(path / "model.bin", "r+b") as f:
        f.seek(1_000_000)
        f.write(b"\xde\xad\xbe\xef")
    result = registry.verify("whisper-base")
    assert not result.ok
    [problem] = result.problems
    assert "model.bin" in problem and "corrupt" in problem and "expected 905e5bf8336bcc62" in problem
    assert "courtscribe models verify whisper-base" in problem  # says how to repair
    registry.repair("whisper-base")
    assert registry.verify("whisper-base").ok


def test_missing_production_model_names_model_and_how_to_provide(registry):
    with pytest.raises(ModelError) as err:
        registry.resolve("paraformer-zh-streaming")
    msg = str(err.value)
    assert "paraformer-zh-streaming" in msg
    assert "iic/speech_paraformer-large_asr_nat-zh-cn-16k-common-vocab8404-online" in msg
    assert str(registry.model_dir / "paraformer-zh-streaming") in msg
    assert "courtscribe models fetch paraformer-zh-streaming" in msg


def test_local_model_dir_is_used_and_checked_for_completeness(registry):
    target = registry.model_dir / "ct-punc"
    target.mkdir(parents=True)
    (target / "config.yaml").write_text("model: CTTransformer\n")
    with pytest.raises(ModelError, match="incomplete: missing model.pt, tokens.json"):
        registry.resolve("ct-punc")
    (target / "model.pt").write_bytes(b"x")
    (target / "tokens.json").write_text("[]")
    assert registry.resolve("ct-punc") == target


def test_fetch_without_hub_fails_clearly(registry, monkeypatch):
    monkeypatch.setenv("MODELSCOPE_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(ModelError, match="could not download"):
        registry.fetch("fsmn-vad")


def test_unknown_model(registry):
    with pytest.raises(ModelError, match="unknown model 'nope'"):
        registry.resolve("nope")


def test_wrong_wheel_content_is_refused(tmp_path, monkeypatch):
    spec = WHISPER_BASE
    bad = type(spec)(**{**spec.__dict__, "sha256": {**spec.sha256, "model.bin": "0" * 64}})
    reg = Registry([bad], cache_dir=tmp_path)
    with pytest.raises(ModelError, match="not the pinned ones"):
        reg.resolve("whisper-base")
    assert not (tmp_path / "whisper-base" / "model.bin").exists()


def test_default_registry_follows_settings(tmp_path, monkeypatch):
    from courtscribe.config import Settings

    reg = default_registry(Settings(model_cache_dir=tmp_path / "c", model_dir=tmp_path / "m"))
    assert reg.cache_dir == tmp_path / "c" and reg.model_dir == tmp_path / "m"
    shutil.rmtree(tmp_path)
