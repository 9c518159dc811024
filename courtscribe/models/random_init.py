"""Shape-true FunASR model directories with random weights, for tests and benchmarks.

Why: the production models (streaming Paraformer, SeACo-Paraformer-large, CT-punc) cannot be
downloaded here, but the code that loads and runs them must still be tested for real. These
directories have the same files a ModelScope download has (config.yaml, configuration.json,
tokens.json, am.mvn, model.pt); the weights are produced by FunASR's own model classes with a fixed
seed. ``tiny`` models are small enough for unit tests; ``full`` ones have the published models'
shapes (vocabulary 8404, 50 encoder blocks of 512, 16 decoder blocks), hence their real compute cost.
The text they produce is noise: accuracy is never measured with them.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import yaml

Size = Literal["tiny", "full"]
# Characters in the tiny vocabulary: enough Mandarin court words for hotword tests.
TINY_CHARS = ("审判长原告被告代理人证据法院开庭现在请陈述诉讼请求事实理由本案判决合同借款利息"
              "张三李四王五赵六钱七孙八周九吴十郑一二三四五六七八九十百千万元年月日的了是在有我你他")
PUNC_LIST = ["<unk>", "_", "，", "。", "？", "、"]


def _vocab(size: Size) -> list[str]:
    chars = sorted(set(TINY_CHARS)) if size == "tiny" else [chr(0x4E00 + i) for i in range(8400)]
    return ["<blank>", "<s>", "</s>", *chars, "<unk>"]


def _dims(size: Size) -> dict:
    if size == "tiny":
        return dict(d=32, heads=2, ff=64, enc=2, dec=2, seaco_ff=32, seaco_blocks=1)
    return dict(d=512, heads=4, ff=2048, enc=50, dec=16, seaco_ff=1024, seaco_blocks=4)


def _frontend(online: bool) -> dict:
    return {"fs": 16000, "window": "hamming", "n_mels": 80, "frame_length": 25, "frame_shift": 10,
            "lfr_m": 7, "lfr_n": 6, **({} if online else {"dither": 0.0})}


def _encoder_conf(g: dict, streaming: bool) -> dict:
    conf = {"output_size": g["d"], "attention_heads": g["heads"], "linear_units": g["ff"], "num_blocks": g["enc"],
            "dropout_rate": 0.1, "positional_dropout_rate": 0.1, "attention_dropout_rate": 0.1,
            "input_layer": "pe_online" if streaming else "pe", "pos_enc_class": "SinusoidalPositionEncoder",
            "normalize_before": True, "kernel_size": 11, "sanm_shfit": 0, "selfattention_layer_type": "sanm"}
    if streaming:
        conf.update(chunk_size=[12, 15], stride=[8, 10], pad_left=[0, 0],
                    encoder_att_look_back_factor=[4, 4], decoder_att_look_back_factor=[1, 1])
    return conf


def _decoder_conf(g: dict, shift: int) -> dict:
    return {"attention_heads": g["heads"], "linear_units": g["ff"], "num_blocks": g["dec"], "dropout_rate": 0.1,
            "positional_dropout_rate": 0.1, "self_attention_dropout_rate": 0.1, "src_attention_dropout_rate": 0.1,
            "att_layer_num": g["dec"], "kernel_size": 11, "sanm_shfit": shift}


def streaming_paraformer_config(size: Size) -> dict:
    g = _dims(size)
    return {
        "model": "ParaformerStreaming",
        "model_conf": {"ctc_weight": 0.0, "lsm_weight": 0.1, "length_normalized_loss": True,
                       "predictor_weight": 1.0, "predictor_bias": 1, "sampling_ratio": 0.75},
        "encoder": "SANMEncoderChunkOpt", "encoder_conf": _encoder_conf(g, streaming=True),
        "decoder": "ParaformerSANMDecoder", "decoder_conf": _decoder_conf(g, shift=5),
        "predictor": "CifPredictorV2",
        "predictor_conf": {"idim": g["d"], "threshold": 1.0, "l_order": 1, "r_order": 1, "tail_threshold": 0.45},
        "frontend": "WavFrontendOnline", "frontend_conf": _frontend(online=True),
        "tokenizer": "CharTokenizer", "tokenizer_conf": {"unk_symbol": "<unk>", "split_with_space": True},
    }


def seaco_paraformer_config(size: Size) -> dict:
    g = _dims(size)
    vocab = _vocab(size)
    seaco = {**_decoder_conf(g, shift=0), "linear_units": g["seaco_ff"], "num_blocks": g["seaco_blocks"],
             "kernel_size": 21, "use_output_layer": False, "wo_input_layer": True}
    seaco.pop("att_layer_num")
    return {
        "model": "SeacoParaformer",
        "model_conf": {"ctc_weight": 0.0, "lsm_weight": 0.1, "length_normalized_loss": True,
                       "predictor_weight": 1.0, "predictor_bias": 1, "sampling_ratio": 0.75,
                       "inner_dim": g["d"], "bias_encoder_type": "lstm", "bias_encoder_bid": False,
                       "seaco_lsm_weight": 0.1, "seaco_length_normal": True, "train_decoder": False,
                       "NO_BIAS": len(vocab) - 2},
        "encoder": "SANMEncoder", "encoder_conf": _encoder_conf(g, streaming=False),
        "decoder": "ParaformerSANMDecoder", "decoder_conf": _decoder_conf(g, shift=0),
        "seaco_decoder": "ParaformerSANMDecoder", "seaco_decoder_conf": seaco,
        "predictor": "CifPredictorV3",
        "predictor_conf": {"idim": g["d"], "threshold": 1.0, "l_order": 1, "r_order": 1, "tail_threshold": 0.45,
                           "smooth_factor2": 0.25, "noise_threshold2": 0.01, "upsample_times": 3,
                           "use_cif1_cnn": False, "upsample_type": "cnn_blstm"},
        "frontend": "WavFrontend", "frontend_conf": _frontend(online=False),
        "tokenizer": "CharTokenizer", "tokenizer_conf": {"unk_symbol": "<unk>", "split_with_space": True},
    }


def punc_config(size: Size) -> dict:
    d = 32 if size == "tiny" else 256
    return {
        "model": "CTTransformer",
        "model_conf": {"ignore_id": 0, "embed_unit": d, "att_unit": d, "dropout_rate": 0.1,
                       "punc_list": PUNC_LIST, "punc_weight": [1.0] * len(PUNC_LIST), "sentence_end_id": 3},
        "encoder": "SANMEncoder",
        "encoder_conf": {"input_size": d, "output_size": d, "attention_heads": 2 if size == "tiny" else 8,
                         "linear_units": 4 * d, "num_blocks": 1 if size == "tiny" else 4, "dropout_rate": 0.1,
                         "positional_dropout_rate": 0.1, "attention_dropout_rate": 0.0, "input_layer": "pe",
                         "pos_enc_class": "SinusoidalPositionEncoder", "normalize_before": True, "kernel_size": 11,
                         "sanm_shfit": 0, "selfattention_layer_type": "sanm", "padding_idx": 0},
        "tokenizer": "CharTokenizer", "tokenizer_conf": {"unk_symbol": "<unk>"},
    }


def _am_mvn(dim: int = 560) -> str:
    """Kaldi-nnet CMVN file as FunASR ships it: a shift and a scale per LFR feature dimension."""
    shift = " ".join(["-10.0"] * dim)
    scale = " ".join(["0.25"] * dim)
    return (f"<Nnet>\n<Splice> {dim} {dim}\n[ 0 ]\n<AddShift> {dim} {dim}\n<LearnRateCoef> 0 [ {shift} ]\n"
            f"<Rescale> {dim} {dim}\n<LearnRateCoef> 0 [ {scale} ]\n</Nnet>\n")


def write_model(kind: Literal["paraformer-zh-streaming", "paraformer-zh", "ct-punc"], out: Path,
                size: Size = "tiny", seed: int = 0) -> Path:
    """Write a loadable model directory; the weights come from FunASR's classes (seeded random init)."""
    import torch

    from ..asr.funasr_loader import auto_model

    config = {"paraformer-zh-streaming": streaming_paraformer_config, "paraformer-zh": seaco_paraformer_config,
              "ct-punc": punc_config}[kind](size)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    vocab = _vocab(size)
    if kind == "ct-punc":  # the punctuation model reads words, not acoustic tokens
        vocab = ["<blank>", "<s>", "</s>", *sorted(set(TINY_CHARS)), "<unk>"] if size == "tiny" else vocab
    (out / "tokens.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (out / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
    metas: dict = {"init_param": "model.pt", "config": "config.yaml", "tokenizer_conf": {"token_list": "tokens.json"}}
    if kind == "paraformer-zh":  # SeACo splits hotwords into tokens with it, as the published model does
        (out / "seg_dict").write_text("".join(f"{t} {t}\n" for t in vocab[3:-1]), encoding="utf-8")
    if kind != "ct-punc":
        (out / "am.mvn").write_text(_am_mvn())
        metas["frontend_conf"] = {"cmvn_file": "am.mvn"}
    (out / "configuration.json").write_text(json.dumps(
        {"framework": "pytorch", "model": {"type": "funasr"}, "file_path_metas": metas,
         "courtscribe": {"random_init": True, "size": size, "seed": seed}}, indent=1))
    weights = out / "model.pt"
    weights.unlink(missing_ok=True)
    torch.manual_seed(seed)
    model = auto_model(out, device="cpu")  # no model.pt yet: FunASR builds the classes with random init
    torch.save(model.model.state_dict(), weights)
    return out


def write_all(root: Path, size: Size = "tiny", seed: int = 0) -> Path:
    """The three production ASR models under ``root/<name>/``, as COURTSCRIBE_MODEL_DIR expects."""
    for i, kind in enumerate(("paraformer-zh-streaming", "paraformer-zh", "ct-punc")):
        write_model(kind, Path(root) / kind, size, seed + i)  # type: ignore[arg-type]
    return Path(root)


if __name__ == "__main__":  # python -m courtscribe.models.random_init DIR [tiny|full]: models for benches
    import sys

    print(write_all(Path(sys.argv[1]), size=sys.argv[2] if len(sys.argv) > 2 else "tiny"))  # type: ignore[arg-type]
