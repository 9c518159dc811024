"""Batched online pass (asr/online_batch.py) against FunASR's own one-stream-at-a-time inference,
on a random-weight streaming Paraformer of FunASR's classes (its text is noise: compared, not read)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from funasr.utils.postprocess_utils import sentence_postprocess

from courtscribe.asr import online_batch
from courtscribe.asr.funasr_loader import LockedModel
from courtscribe.audio import decode

from conftest import ZH

STEP = 9_600  # 600 ms
STREAMING = online_batch.Streaming((0, 10, 5), encoder_look_back=4, decoder_look_back=1)


@pytest.fixture(scope="module")
def online(tmp_path_factory):
    from courtscribe.models.random_init import write_model

    path = write_model("paraformer-zh-streaming", tmp_path_factory.mktemp("online"), size="tiny")
    return LockedModel(path, device="cpu", ncpu=1, frontend_conf={"dither": 0.0})


@pytest.fixture(scope="module")
def sources():
    clip = decode(ZH / "market_25s.wav").channel(0)
    noise = np.random.default_rng(7).normal(0, 0.05, clip.size).astype(np.float32)
    return [clip, clip[5 * STEP:], noise, np.zeros_like(clip)]  # speech, later speech, noise, silence


def funasr_alone(online: LockedModel, audio: np.ndarray, chunks: int) -> list[str]:
    cache: dict = {}
    out = []
    for k in range(chunks):
        [res] = online.generate(audio[k * STEP:(k + 1) * STEP], cache=cache, is_final=False, chunk_size=[0, 10, 5],
                                encoder_chunk_look_back=4, decoder_chunk_look_back=1, disable_pbar=True) or [{}]
        out.append(res.get("text", ""))
    return out


@pytest.fixture(params=["dense", "sparse"])
def fires(request, online):
    """"sparse": the predictor's bias lowered so a chunk fires 0 or 1 token (random weights fire ~5
    on anything), which puts streams that fire nothing beside ones that do in one batch."""
    bias = online.auto.model.predictor.cif_output.bias
    saved = bias.data.clone()
    if request.param == "sparse":
        bias.data -= 3.0
    yield request.param
    bias.data = saved


def test_streams_at_different_positions_in_one_batch_decode_as_each_alone(online, sources, fires):
    """Streams join one by one, so each batch mixes look-backs of 0 to 4 chunks, and decoder caches
    present and absent (a stream's first tokens may come chunks after it joined)."""
    chunks = 10
    want = [funasr_alone(online, audio, chunks) for audio in sources]
    model, kwargs = online.auto.model, online.auto.kwargs
    caches = [online_batch.new_cache(model, kwargs, STREAMING) for _ in sources]
    got: list[list[str]] = [[] for _ in sources]
    sizes = []
    for tick in range(chunks + len(sources)):
        rows = [b for b in range(len(sources)) if tick >= b and len(got[b]) < chunks]
        fired = online_batch.step(model, kwargs, [(sources[b][len(got[b]) * STEP:(len(got[b]) + 1) * STEP], caches[b])
                                                  for b in rows])
        sizes.append(len(rows))
        for b, tokens in zip(rows, fired):
            got[b].append(sentence_postprocess(tokens)[0] if tokens else "")
    assert max(sizes) == len(sources)
    assert got == want
    said = [t for texts in want for t in texts]
    assert all(said) if fires == "dense" else (any(said) and not all(said))


def test_caches_match_funasrs_after_a_batched_step(online, sources):
    """The state a stream carries on (FunASR's own cache layout) is FunASR's, to float tolerance."""
    model, kwargs = online.auto.model, online.auto.kwargs
    alone: dict = {}
    for k in range(3):
        online.generate(sources[0][k * STEP:(k + 1) * STEP], cache=alone, is_final=False, chunk_size=[0, 10, 5],
                        encoder_chunk_look_back=4, decoder_chunk_look_back=1, disable_pbar=True)
    batched = [online_batch.new_cache(model, kwargs, STREAMING) for _ in range(2)]
    for k in range(3):
        online_batch.step(model, kwargs, [(sources[0][k * STEP:(k + 1) * STEP], batched[0]),
                                          (sources[2][k * STEP:(k + 1) * STEP], batched[1])])
    mine = batched[0]
    assert mine["encoder"]["start_idx"] == alone["encoder"]["start_idx"]
    pairs = [(mine["encoder"]["feats"], alone["encoder"]["feats"]),
             (mine["encoder"]["cif_hidden"], alone["encoder"]["cif_hidden"]),
             (mine["encoder"]["cif_alphas"], alone["encoder"]["cif_alphas"])]
    pairs += [(a[key], b[key]) for a, b in zip(mine["encoder"]["opt"], alone["encoder"]["opt"]) for key in ("k", "v")]
    if alone["decoder"]["decode_fsmn"] is not None:
        pairs += list(zip(mine["decoder"]["decode_fsmn"], alone["decoder"]["decode_fsmn"]))
        pairs += [(a[key], b[key]) for a, b in zip(mine["decoder"]["opt"], alone["decoder"]["opt"]) for key in ("k", "v")]
    for a, b in pairs:
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
