"""All settings in one place, read from ``COURTSCRIBE_*`` environment variables (or a .env file).

Why one object: the CLI, the server and the tests must agree on where models, audio and records
live, and court IT configures a deployment by environment, not by editing code.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    return Path.home() / ".cache" / "courtscribe"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COURTSCRIBE_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default_factory=lambda: _default_home() / "data",
                           description="Records, audio archive, database.")
    model_cache_dir: Path = Field(default_factory=lambda: _default_home() / "models",
                                  description="Where assembled model files (e.g. joined Whisper weights) are kept.")
    model_dir: Path | None = Field(default=None,
                                   description="Local directory holding production models, one sub-dir per model name.")
    engine: str = Field(default="whisper", description="ASR engine: whisper (embedded) or funasr (production).")
    vad: str = Field(default="silero", description=(
        "VAD for files: silero (ONNX, in faster-whisper) or fsmn-vad (FunASR). silero is the default by "
        "measurement: lower CER on zh-smoke and no torch/FunASR start-up cost (bench/cer.py)."))
    language: str = "zh"
    device: str = "cpu"
    cpu_threads: int = Field(default=2, ge=1)
    beam_size: int = Field(default=5, ge=1, le=10)
    max_segment_s: float = Field(default=30.0, gt=1.0,
                                 description="Longest stretch the engine decodes at once; longer VAD segments are split.")
    host: str = "127.0.0.1"
    port: int = 8000
    log_format: str = Field(default="console", pattern="^(console|json)$")
    log_level: str = "INFO"
    max_upload_mb: int = Field(default=2048, ge=1)
    max_streams: int = Field(default=4, ge=1, description="Live streams admitted at once; more get 'busy'.")
    idle_timeout_s: float = Field(default=60.0, gt=0, description="A silent or half-open connection is closed after this.")
    stream_vad_silence_ms: int = Field(default=800, ge=100, description="End-of-utterance silence for live streams.")
    database_url: str | None = Field(default=None, description=(
        "SQLAlchemy URL of the record store, e.g. postgresql+psycopg://user@host/courtscribe; "
        "default: SQLite (WAL) at DATA_DIR/courtscribe.db."))

    @property
    def records_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'courtscribe.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
