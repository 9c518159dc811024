"""Many streams' next chunks through FunASR's streaming Paraformer in one forward pass.

FunASR's streaming model keeps one cache per stream and decodes one stream at a time (its cache
has batch size one: FunASR issue #2274). The encoder and decoder weights are what a chunk costs —
read once per call whatever the batch — so a box serving many streams spends most of its time
re-reading them. :func:`step` advances several streams by one chunk each in one pass and reads and
writes FunASR's own cache dicts, so a stream may go through FunASR's ``inference`` or through here,
chunk by chunk, interchangeably (tests compare the two):

- per stream (cheap): the waveform frontend (fbank, LFR, CMVN and its carry-over), the position
  encoding from the stream's own frame index, the 5 overlap frames, the CIF predictor (FunASR's own
  ``forward_chunk`` with the stream's integrator state);
- batched: every encoder layer, each stream's look-back keys/values (none to ``look_back`` chunks)
  left-padded and masked out of the attention; every decoder layer for the streams whose predictor
  fired tokens (a stream that fired none keeps its decoder caches untouched, as FunASR does), tokens
  right-padded (the decoder's FSMN memory is causal) and the cross-attention look-back masked for
  streams that have none yet.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence


@dataclass(frozen=True)
class Streaming:
    chunk_size: tuple[int, int, int]
    encoder_look_back: int
    decoder_look_back: int


def new_cache(model, kwargs: dict, s: Streaming) -> dict:
    """An empty stream cache, FunASR's own layout."""
    return model.init_cache({}, encoder_conf=kwargs["encoder_conf"], frontend_conf=kwargs["frontend_conf"],
                            chunk_size=list(s.chunk_size), encoder_chunk_look_back=s.encoder_look_back,
                            decoder_chunk_look_back=s.decoder_look_back)


@torch.inference_mode()
def step(model, kwargs: dict, chunks: list[tuple[np.ndarray, dict]]) -> list[list[str]]:
    """Each ``(audio, cache)`` advanced by one chunk (``chunk_size[1] * 960`` samples, not the last
    of its stream); the tokens each chunk fired, in order. Caches are updated in place."""
    from funasr.utils.load_utils import extract_fbank

    if not chunks:
        return []
    device, frontend, tokenizer = kwargs["device"], kwargs["frontend"], kwargs["tokenizer"]
    feats = []
    for audio, cache in chunks:
        speech, lengths = extract_fbank([torch.from_numpy(audio)], data_type="sound", frontend=frontend,
                                        cache=cache["frontend"], is_final=False)
        speech, lengths = speech.to(device), lengths.to(device)
        if model.normalize is not None:
            speech, lengths = model.normalize(speech, lengths)
        feats.append(speech)
    caches = [c for _, c in chunks]
    enc, lens = _encode(model.encoder, feats, [c["encoder"] for c in caches])
    out: list[list[str]] = [[] for _ in chunks]
    fired, embeds = [], []
    for b, cache in enumerate(caches):
        emb, n, _, _ = model.predictor.forward_chunk(enc[b:b + 1, :lens[b]], cache["encoder"], is_final=False)
        n = int(n.round().long()[0])
        if n > 0:
            fired.append(b)
            embeds.append(emb[0, :n])
    if not fired:
        return out
    logits = _decode(model.decoder, [enc[b, :lens[b]] for b in fired], embeds, [caches[b]["decoder"] for b in fired])
    for row, b in enumerate(fired):
        ids = logits[row, :embeds[row].size(0)].argmax(dim=-1).tolist()
        ids = [i for i in ids if i not in (model.eos, model.sos, model.blank_id)]
        out[b] = tokenizer.ids2tokens(ids)
    return out


# -- encoder ----------------------------------------------------------------------------------------
def _encode(encoder, feats: list[torch.Tensor], caches: list[dict]) -> tuple[torch.Tensor, list[int]]:
    rows = []
    for x, cache in zip(feats, caches):
        x = x * encoder.output_size() ** 0.5
        x = encoder.embed(x, cache)  # the stream's own start_idx, advanced
        rows.append(encoder._add_overlap_chunk(x, cache)[0])  # its 5 carried-over frames, kept for next time
    lens = [r.size(0) for r in rows]
    xs = pad_sequence(rows, batch_first=True)
    valid = _valid(lens, xs.size(1), xs.device)
    first = caches[0]
    chunk_size, look_back = first["chunk_size"], first["encoder_chunk_look_back"]
    layers = [*encoder.encoders0, *encoder.encoders]
    kept = [list(c["opt"]) if c["opt"] is not None else [None] * len(layers) for c in caches]
    for i, layer in enumerate(layers):
        xs, new = _encoder_layer(layer, xs, valid, lens, [k[i] for k in kept], chunk_size, look_back)
        for k, cache in zip(kept, new):
            k[i] = cache
    if encoder.normalize_before:
        xs = encoder.after_norm(xs)
    if look_back > 0 or look_back == -1:
        for cache, k in zip(caches, kept):
            cache["opt"] = k
    return xs, lens


def _encoder_layer(layer, x, valid, lens, caches, chunk_size, look_back):
    """``EncoderLayerSANM.forward_chunk`` over a batch (FunASR's arithmetic, masks added)."""
    residual = x
    if layer.normalize_before:
        x = layer.norm1(x)
    att = layer.self_attn
    q, k, v, v_flat = att.forward_qkv(x)
    new = caches
    mask = valid
    if chunk_size is not None and look_back > 0 or look_back == -1:
        keep = look_back * chunk_size[1] if look_back != -1 else None
        k, v, past, new = _look_back(att, k, v, caches, [n - chunk_size[2] for n in lens], keep)
        mask = torch.cat((past, valid), dim=1)
    fsmn = att.forward_fsmn(v_flat, valid.to(x.dtype))  # zeros past each stream's end, as pad_fn gives
    scores = torch.matmul(q * att.d_k ** (-0.5), k.transpose(-2, -1))
    attn = att.forward_attention(v, scores, mask[:, None, :]) + fsmn
    x = residual + attn if layer.in_size == layer.size else attn
    if not layer.normalize_before:
        x = layer.norm1(x)
    residual = x
    if layer.normalize_before:
        x = layer.norm2(x)
    x = residual + layer.feed_forward(x)
    if not layer.normalize_before:
        x = layer.norm2(x)
    return x, new


# -- decoder ----------------------------------------------------------------------------------------
def _decode(decoder, memories: list[torch.Tensor], tokens: list[torch.Tensor], caches: list[dict]) -> torch.Tensor:
    mem = pad_sequence(memories, batch_first=True)
    mem_valid = _valid([m.size(0) for m in memories], mem.size(1), mem.device)
    counts = [t.size(0) for t in tokens]
    x = pad_sequence(tokens, batch_first=True)
    n_fsmn = len(decoder.decoders) + (len(decoder.decoders2) if decoder.decoders2 is not None else 0)
    fsmn = [list(c["decode_fsmn"]) if c["decode_fsmn"] is not None else [None] * n_fsmn for c in caches]
    opt = [list(c["opt"]) if c["opt"] is not None else [None] * len(decoder.decoders) for c in caches]
    chunk_size, look_back = caches[0]["chunk_size"], caches[0]["decoder_chunk_look_back"]
    for i in range(decoder.att_layer_num):
        x, f, o = _decoder_layer(decoder.decoders[i], x, counts, mem, mem_valid, [r[i] for r in fsmn],
                                 [r[i] for r in opt], chunk_size, look_back)
        for b in range(len(caches)):
            fsmn[b][i], opt[b][i] = f[b], o[b]
    if decoder.num_blocks - decoder.att_layer_num > 1:  # FunASR's own condition
        for i, layer in enumerate(decoder.decoders2):
            j = i + decoder.att_layer_num
            x, f, _ = _decoder_layer(layer, x, counts, mem, mem_valid, [r[j] for r in fsmn], None, None, 0)
            for b in range(len(caches)):
                fsmn[b][j] = f[b]
    for layer in decoder.decoders3:
        x, *_ = layer.forward_chunk(x, mem)  # position-wise: padding stays apart
    if decoder.normalize_before:
        x = decoder.after_norm(x)
    if decoder.output_layer is not None:
        x = decoder.output_layer(x)
    for b, cache in enumerate(caches):
        cache["decode_fsmn"] = fsmn[b]
        if look_back > 0 or look_back == -1:
            cache["opt"] = opt[b]
    return torch.log_softmax(x, dim=-1)


def _decoder_layer(layer, tgt, counts, mem, mem_valid, fsmn, opt, chunk_size, look_back):
    """``DecoderLayerSANM.forward_chunk`` over a batch."""
    residual = tgt
    if layer.normalize_before:
        tgt = layer.norm1(tgt)
    tgt = layer.feed_forward(tgt)
    x, new_fsmn, new_opt = tgt, fsmn, opt
    if layer.self_attn:
        if layer.normalize_before:
            tgt = layer.norm2(tgt)
        x, new_fsmn = _decoder_fsmn(layer.self_attn, tgt, counts, fsmn)
        x = residual + layer.dropout(x)
    if layer.src_attn is not None:
        residual = x
        if layer.normalize_before:
            x = layer.norm3(x)
        att, new_opt = _cross_attention(layer.src_attn, x, mem, mem_valid, opt, chunk_size, look_back)
        x = residual + att
    return x, new_fsmn, new_opt


def _decoder_fsmn(att, x, counts, caches):
    """``MultiHeadedAttentionSANMDecoder`` with each stream's memory of its last ``kernel - 1``
    inputs (FunASR keeps those, and the current chunk's, as the cache)."""
    left, right = att.pad_fn.padding
    if right:
        raise ValueError("the batched decoder needs a causal FSMN memory (sanm_shfit = (kernel - 1) / 2)")
    history = att.kernel_size - 1
    inputs = x.transpose(1, 2)
    past = [c[0, :, -history:] if c is not None else inputs.new_zeros(inputs.size(1), left) for c in caches]
    seq = torch.cat((torch.stack(past), inputs), dim=2)
    out = att.fsmn_block(seq).transpose(1, 2)
    out = att.dropout(out + x)
    new = [seq[b:b + 1, :, :history + n] if caches[b] is not None else seq[b:b + 1, :, :left + n]
           for b, n in enumerate(counts)]
    return out, new


def _cross_attention(att, x, mem, mem_valid, caches, chunk_size, look_back):
    """``MultiHeadedAttentionCrossAtt.forward_chunk`` with each stream's look-back."""
    q, k, v = att.forward_qkv(x, mem)
    mask, new = mem_valid, caches
    if chunk_size is not None and look_back > 0:
        k, v, past, new = _look_back(att, k, v, caches, mem_valid.sum(dim=1).tolist(), look_back * chunk_size[1])
        mask = torch.cat((past, mem_valid), dim=1)
    scores = torch.matmul(q * att.d_k ** (-0.5), k.transpose(-2, -1))
    return att.forward_attention(v, scores, mask[:, None, :]), new


# -- look-back and padding --------------------------------------------------------------------------
def _look_back(att, k, v, caches, kept: list[int], keep: int | None):
    """Each stream's cached keys/values put before this chunk's (left-padded; which past positions
    are real), and its next cache: the past plus its first ``kept[b]`` positions of this chunk, the
    last ``keep`` of them (None: all), in FunASR's layout."""
    past_k = [c["k"][0] if c is not None else k.new_zeros(att.h, 0, att.d_k) for c in caches]
    past_v = [c["v"][0] if c is not None else v.new_zeros(att.h, 0, att.d_k) for c in caches]
    trim = slice(-keep, None) if keep else slice(None)
    new = [{"k": torch.cat((past_k[b], k[b, :, :n]), dim=1)[:, trim][None],
            "v": torch.cat((past_v[b], v[b, :, :n]), dim=1)[:, trim][None]} for b, n in enumerate(kept)]
    pk, real = _left_pad(past_k, k.device)
    pv, _ = _left_pad(past_v, k.device)
    return torch.cat((pk, k), dim=2), torch.cat((pv, v), dim=2), real, new


# -- padding ----------------------------------------------------------------------------------------
def _valid(lens: list[int], width: int, device) -> torch.Tensor:
    return torch.arange(width, device=device)[None, :] < torch.tensor(lens, device=device)[:, None]


def _left_pad(parts: list[torch.Tensor], device) -> tuple[torch.Tensor, torch.Tensor]:
    """(heads, time, d) pieces of different time → (batch, heads, longest, d), padded on the left
    (the past), and which positions are real."""
    width = max(p.size(1) for p in parts)
    out = torch.stack([torch.nn.functional.pad(p, (0, 0, width - p.size(1), 0)) for p in parts])
    lens = [p.size(1) for p in parts]
    real = torch.arange(width, device=device)[None, :] >= (width - torch.tensor(lens, device=device))[:, None]
    return out, real
