#!/usr/bin/env python3
"""Writes small random-weight GGUF models, one per architecture family and weight type, in the
shapes of real models scaled down, for the family goldens (scripts/make-family-goldens.py) and
tests/test_family_golden.cpp.

  <out>/<family>-<type>.gguf      family: llama qwen2 qwen3 phi3 gemma2 gemma3 gpt2
                                  type:   F32 F16 Q8_0 and one K-quant per family (FAMILIES)

<out> defaults to ${TILLER_MODELS:-~/.cache/tiller/models}/random. Every file borrows the
tokenizer of SmolLM2-135M (every tokenizer.* key copied from
<models>/smollm2-135m-instruct.gguf with the gguf package's reader; 49,152 tokens), so
n_vocab = 49152 in every family and the held-out texts tokenize alike everywhere.

The weights are random but deterministic to the byte on any CPU: the only random draws are
integers from numpy's Generator(PCG64(seed)), one seed per family, and every value is built from
them by elementwise IEEE arithmetic in float32 (no exp/log/sin, no reductions whose order could
depend on the SIMD code numpy dispatches to, no normal draws); the rope factors are computed in
Python floats with the math module. Q8_0 is the gguf package's own quantizer (elementwise, and
a max, which is exact in any order). The K-quant types are written as valid random blocks
directly (llama.cpp's quantizer is not in the pinned environment): per 256-weight super-block a
float16 d (and dmin) of a magnitude giving the intended weight spread, random 6-bit scales (for
Q4_K with the 6-bit min chosen so that the block is centred near zero) and random quants, for
every matrix whose input width is a multiple of 256; the others are Q8_0, as real K-quant files
mix types. Norm weights, biases and rope factors stay F32 in every type, as in real files. The
F32, F16 and Q8_0 files of a family hold the same weights (rounded); the K-quant file holds other
random weights of the same spread.

The scales are chosen so that the models behave like trained ones where the tests look: a
residual stream of steady size and next-token distributions of a few nats of entropy (not
ln 49152 = 10.8); scripts/make-family-goldens.py measures and prints both with llama.cpp.

Every file written is checked against the manifest scripts/family-models.tsv (name, sha256): a
mismatch is an error. Files already present with the manifest's sha256 are not rewritten.

  --out DIR           write into DIR
  --families F,..     only these families
  --update-manifest   (re)write every file and rewrite the manifest with their sha256
Run it through scripts/make-test-models.sh, which provides the pinned environment (gguf, numpy).
"""
import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

import gguf
from gguf import GGMLQuantizationType as QT

from golden_support import sha256_file

REPO = Path(__file__).resolve().parent.parent
MANIFEST = REPO / "scripts" / "family-models.tsv"
MODELS = Path(os.environ.get("TILLER_MODELS", Path.home() / ".cache" / "tiller" / "models"))
TOKENIZER_SOURCE = "smollm2-135m-instruct.gguf"
N_VOCAB = 49152
QK_K = 256
UNIFORM_STD = 127 / math.sqrt(3)  # std of integers uniform in [-127, 127] (approximately)

# Per family: the scaled-down shape and hyper-parameters (the real model it follows in the
# comment), its seed and its K-quant type. n_embd, the query width and n_ff are multiples of 256
# where the real model's are, so that the K-quant covers most matrices.
FAMILIES = {
    # Llama-3.2-1B: head_dim 64, 32 heads / 8 KV heads, SwiGLU, rope 500000 with llama3 factors
    "llama": dict(seed=1, kquant="Q4_K", extra=("Q3_K", "IQ4_XS", "BF16"), n_layer=4, n_embd=256, n_head=4, n_head_kv=1, head_dim=64,
                  n_ff=1024, ctx=131072, rope_base=500000.0, eps=1e-5, tied=True),
    # Qwen2.5-0.5B: biases on Q, K, V, 14 heads / 2 KV heads, rope 1e6, tied
    "qwen2": dict(seed=2, kquant="Q4_K", extra=("Q2_K", "IQ4_NL"), n_layer=4, n_embd=256, n_head=4, n_head_kv=2, head_dim=64,
                  n_ff=1280, ctx=32768, rope_base=1000000.0, eps=1e-6, tied=True),
    # Qwen3-0.6B: q/k RMS norms per head, head_dim 128, 16 heads x 128 = 2048 != n_embd 1024, 8 KV heads
    "qwen3": dict(seed=3, kquant="Q6_K", n_layer=4, n_embd=256, n_head=4, n_head_kv=2, head_dim=128,
                  n_ff=768, ctx=40960, rope_base=1000000.0, eps=1e-6, tied=True),
    # Phi-3-mini-128k: fused qkv, fused gate/up, head_dim 96, LongRoPE, untied output
    # (its 32 heads share no KV heads; 2 KV heads here, as Phi-3-medium has GQA, to test the split)
    "phi3": dict(seed=4, kquant="Q4_K", n_layer=4, n_embd=384, n_head=4, n_head_kv=2, head_dim=96,
                 n_ff=1024, ctx=131072, orig_ctx=4096, rope_base=10000.0, eps=1e-5, tied=False),
    # gemma-2-2b: head_dim 256, 8 heads / 4 KV heads, soft-caps 50 and 30, sliding window on every
    # other block (here 32 tokens), post norms, GELU, embeddings scaled by sqrt(n_embd), tied
    "gemma2": dict(seed=5, kquant="Q6_K", n_layer=4, n_embd=256, n_head=2, n_head_kv=1, head_dim=256,
                   n_ff=1024, ctx=8192, rope_base=10000.0, eps=1e-6, tied=True, window=32,
                   attn_softcap=50.0, final_softcap=30.0),
    # gemma-3-270m: 4 heads x 256 = 1024 > n_embd 640, 1 KV head, q/k norms, 5 sliding blocks then
    # a global one (here window 32), rope 1e6 global / 10000 local, tied
    "gemma3": dict(seed=6, kquant="Q4_K", n_layer=6, n_embd=256, n_head=4, n_head_kv=1, head_dim=256,
                   n_ff=768, ctx=32768, rope_base=1000000.0, eps=1e-6, tied=True, window=32),
    # GPT-2: learned positions, LayerNorm with bias, fused qkv, biases on every matrix, GELU, tied
    "gpt2": dict(seed=7, kquant="Q6_K", n_layer=4, n_embd=256, n_head=4, n_head_kv=4, head_dim=64,
                 n_ff=1024, ctx=1024, eps=1e-5, tied=True),
}
TYPES = ("F32", "F16", "Q8_0")
FILE_TYPE = {"F32": gguf.LlamaFileType.ALL_F32, "F16": gguf.LlamaFileType.MOSTLY_F16,
             "Q8_0": gguf.LlamaFileType.MOSTLY_Q8_0, "Q4_K": gguf.LlamaFileType.MOSTLY_Q4_K_M,
             "Q6_K": gguf.LlamaFileType.MOSTLY_Q6_K, "Q2_K": gguf.LlamaFileType.MOSTLY_Q2_K,
             "Q3_K": gguf.LlamaFileType.MOSTLY_Q3_K_M, "IQ4_XS": gguf.LlamaFileType.MOSTLY_IQ4_XS,
             "IQ4_NL": gguf.LlamaFileType.MOSTLY_IQ4_NL, "BF16": gguf.LlamaFileType.MOSTLY_BF16}

# Spreads (std of the weights, relative to 1/sqrt(fan-in) for matrices): chosen, and checked with
# llama.cpp, for a stream of steady size and a few nats of next-token entropy.
EMBD_STD = 0.05          # token (and position) embedding elements
IN_GAIN = 1.0            # q, k, v, gate, up: outputs of about the input's size
OUT_GAIN = 0.5           # attention output and down projections: a block adds a moderate update
OUTPUT_NORM_GAIN = 5.0   # final norm weight: logit std ~ gain x EMBD_STD x sqrt(n_embd)
POST_NORM_GAIN = 2.5     # gemma's post-attention/FFN norms: blocks outweigh the scaled embedding, so
                         # the next token is not mostly the current one
BIAS_STD = 0.1


def family_types(family):
    """F32, F16, Q8_0, the family's K-quant, then the weight types only some families carry
    (Q2_K, Q3_K, IQ4_NL, IQ4_XS, BF16: one family each is enough to hold their products to
    llama.cpp's)."""
    return TYPES + (FAMILIES[family]["kquant"],) + FAMILIES[family].get("extra", ())


def model_names(families=None):
    return [f"{f}-{t}" for f in (families or FAMILIES) for t in family_types(f)]


class Draw:
    """Deterministic values from integer draws only (see the docstring)."""

    def __init__(self, seed):
        self.rng = np.random.Generator(np.random.PCG64(seed))

    def ints(self, low, high, shape, dtype=np.int32):
        """Integers uniform in [low, high]."""
        return self.rng.integers(low, high + 1, size=shape, dtype=dtype)

    def uniform(self, shape, std):
        """float32 values of about the given std: integers in [-127, 127] times a float32 scale."""
        scale = np.float32(std / UNIFORM_STD)
        return self.ints(-127, 127, shape, np.int16).astype(np.float32) * scale

    def around(self, shape, centre, spread):
        """float32 values centre + (integer in [-16, 16]) x spread/16."""
        return (np.float32(centre) + self.ints(-16, 16, shape, np.int16).astype(np.float32)
                * np.float32(spread / 16))

    def matrix(self, n_out, n_in, gain):
        return self.uniform((n_out, n_in), gain / math.sqrt(n_in))

    def q4_k(self, n_out, n_in, std):
        """Raw Q4_K rows [n_out, n_in / 256 x 144] of random valid blocks with weights of about std:
        w = d x sc x q - dmin x m, q in 0..15, sc in 4..8, dmin = d, m = 15 sc / 2 rounded down
        (so a sub-block's weights centre near 0), d = std / (4.61 x 6) x (1 + k/16), k in -2..2."""
        nb = n_out * (n_in // QK_K)
        k = self.ints(-2, 2, (nb, 1), np.int16).astype(np.float32)
        d = (np.float32(std / (4.61 * 6.0)) * (np.float32(1) + k / np.float32(16))).astype(np.float16)
        sc = self.ints(4, 8, (nb, 8), np.uint8)
        m = (sc * np.uint8(15)) // np.uint8(2)
        scales = np.empty((nb, 12), dtype=np.uint8)
        scales[:, 0:4] = sc[:, 0:4] | ((sc[:, 4:8] >> 4) << 6)
        scales[:, 4:8] = m[:, 0:4] | ((m[:, 4:8] >> 4) << 6)
        scales[:, 8:12] = (sc[:, 4:8] & 0x0F) | ((m[:, 4:8] & 0x0F) << 4)
        qs = self.ints(0, 255, (nb, QK_K // 2), np.uint8)
        blocks = np.concatenate([d.view(np.uint8), d.view(np.uint8), scales, qs], axis=1)
        return blocks.reshape(n_out, -1)

    def q6_k(self, n_out, n_in, std):
        """Raw Q6_K rows of random valid blocks: w = d x sc x (q - 32), q in 0..63, sc = +-(8..16),
        d = std / (18.5 x 12) x (1 + k/16), k in -2..2."""
        nb = n_out * (n_in // QK_K)
        ql = self.ints(0, 255, (nb, QK_K // 2), np.uint8)
        qh = self.ints(0, 255, (nb, QK_K // 4), np.uint8)
        sign = self.ints(0, 1, (nb, QK_K // 16), np.int8) * np.int8(2) - np.int8(1)
        scales = (self.ints(8, 16, (nb, QK_K // 16), np.int8) * sign).astype(np.int8)
        k = self.ints(-2, 2, (nb, 1), np.int16).astype(np.float32)
        d = (np.float32(std / (18.5 * 12.0)) * (np.float32(1) + k / np.float32(16))).astype(np.float16)
        blocks = np.concatenate([ql, qh, scales.view(np.uint8), d.view(np.uint8)], axis=1)
        return blocks.reshape(n_out, -1)

    def q2_k(self, n_out, n_in, std):
        """Raw Q2_K rows (scales[16], qs[64], d, dmin): w = d x sc x q - dmin x m, q in 0..3,
        sc in 4..8, dmin = d, m = 3 sc / 2 rounded down (sub-blocks centre near 0),
        d = std / (1.12 x 6) x (1 + k/16), k in -2..2."""
        nb = n_out * (n_in // QK_K)
        sc = self.ints(4, 8, (nb, 16), np.uint8)
        m = (sc * np.uint8(3)) // np.uint8(2)
        qs = self.ints(0, 255, (nb, QK_K // 4), np.uint8)
        k = self.ints(-2, 2, (nb, 1), np.int16).astype(np.float32)
        d = (np.float32(std / (1.12 * 6.0)) * (np.float32(1) + k / np.float32(16))).astype(np.float16)
        blocks = np.concatenate([sc | (m << np.uint8(4)), qs, d.view(np.uint8), d.view(np.uint8)], axis=1)
        return blocks.reshape(n_out, -1)

    def q3_k(self, n_out, n_in, std):
        """Raw Q3_K rows (hmask[32], qs[64], scales[12], d): random quants in -4..3 and random
        6-bit scales (sc - 32 in -32..31, RMS about 18.5), d = std / (18.5 x 2.35) x (1 + k/16)."""
        nb = n_out * (n_in // QK_K)
        bits = self.ints(0, 255, (nb, 32 + 64 + 12), np.uint8)
        k = self.ints(-2, 2, (nb, 1), np.int16).astype(np.float32)
        d = (np.float32(std / (18.5 * 2.35)) * (np.float32(1) + k / np.float32(16))).astype(np.float16)
        return np.concatenate([bits, d.view(np.uint8)], axis=1).reshape(n_out, -1)

    def iq4_nl(self, n_out, n_in, std):
        """Raw IQ4_NL rows (d, qs[16] per 32 weights): w = d x level[q], the 16 non-linear levels
        (RMS about 66), d = +-std / 66 x (1 + k/16): the sign drawn per block, as the levels' mean
        (-6.5) would otherwise shift every output the same way and the stream would grow block
        after block."""
        nb = n_out * (n_in // 32)
        k = self.ints(-2, 2, (nb, 1), np.int16).astype(np.float32)
        sign = (self.ints(0, 1, (nb, 1), np.int16) * np.int16(2) - np.int16(1)).astype(np.float32)
        d = (np.float32(std / 66.0) * (np.float32(1) + k / np.float32(16)) * sign).astype(np.float16)
        return np.concatenate([d.view(np.uint8), self.ints(0, 255, (nb, 16), np.uint8)], axis=1).reshape(n_out, -1)

    def iq4_xs(self, n_out, n_in, std):
        """Raw IQ4_XS rows (d, scales_h, scales_l[4], qs[128]): random 6-bit sub-block scales
        (ls - 32, RMS about 18.5) and levels, d = std / (18.5 x 66) x (1 + k/16)."""
        nb = n_out * (n_in // QK_K)
        k = self.ints(-2, 2, (nb, 1), np.int16).astype(np.float32)
        d = (np.float32(std / (18.5 * 66.0)) * (np.float32(1) + k / np.float32(16))).astype(np.float16)
        return np.concatenate([d.view(np.uint8), self.ints(0, 255, (nb, 2 + 4 + 128), np.uint8)],
                              axis=1).reshape(n_out, -1)


# Types written as random valid blocks (llama.cpp's quantizer is not at hand): the Draw method
# and the number of weights a row must be a multiple of; other rows fall back to Q8_0.
RANDOM_BLOCKS = {"Q4_K": (Draw.q4_k, QK_K), "Q6_K": (Draw.q6_k, QK_K), "Q2_K": (Draw.q2_k, QK_K),
                 "Q3_K": (Draw.q3_k, QK_K), "IQ4_XS": (Draw.iq4_xs, QK_K), "IQ4_NL": (Draw.iq4_nl, 32)}


def llama3_rope_factors(head_dim, base, factor=32.0, low=1.0, high=4.0, original=8192):
    """convert_hf_to_gguf.py's rope_freqs for rope_type llama3 (Llama-3.2-1B's parameters)."""
    out = []
    low_wavelen, high_wavelen = original / low, original / high
    for i in range(0, head_dim, 2):
        freq = 1.0 / (base ** (i / head_dim))
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (original / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def longrope_factors(n, long):
    """Phi-3-style LongRoPE factors (n = rot dims / 2), increasing from 1 with the wavelength:
    short ones up to ~1.9, long ones up to ~41, as in Phi-3-mini-128k's config."""
    top = 40.0 if long else 0.9
    return np.array([1.0 + top * (i / (n - 1)) ** 2 for i in range(n)], dtype=np.float32)


def read_tokenizer(source):
    """Every tokenizer.* key of the source model: [(key, value, type, array element type)]."""
    reader = gguf.GGUFReader(str(source))
    keys = []
    for key, field in reader.fields.items():
        if key.startswith("tokenizer."):
            main = field.types[0]
            keys.append((key, field.contents(), main, field.types[-1] if main == gguf.GGUFValueType.ARRAY else None))
    n_tokens = len(reader.fields["tokenizer.ggml.tokens"].data)
    assert n_tokens == N_VOCAB, f"{source}: {n_tokens} tokens, expected {N_VOCAB}"
    return keys


class Tensors:
    """Collects a model's tensors, each in the storage of the file's weight type."""

    def __init__(self, draw, wtype, kdraw=None):
        self.draw, self.wtype, self.kdraw = draw, wtype, kdraw
        self.items = []

    def vector(self, name, values):
        self.items.append((name, np.ascontiguousarray(values, dtype=np.float32), None))

    def matrix(self, name, n_out, n_in, gain=None, std=None, kquant_ok=True):
        std = std if std is not None else gain / math.sqrt(n_in)
        # The F32/F16/Q8_0 files share one draw sequence, the K-quant file has its own.
        if self.wtype in RANDOM_BLOCKS and kquant_ok and n_in % RANDOM_BLOCKS[self.wtype][1] == 0:
            raw = RANDOM_BLOCKS[self.wtype][0](self.kdraw, n_out, n_in, std)
            self.items.append((name, raw, QT[self.wtype]))
            return
        source = self.kdraw if self.wtype in RANDOM_BLOCKS else self.draw
        w = source.uniform((n_out, n_in), std)
        if self.wtype == "F32":
            self.items.append((name, w, None))
        elif self.wtype == "F16":
            self.items.append((name, w.astype(np.float16), None))
        elif self.wtype == "BF16":
            self.items.append((name, gguf.quants.quantize(w, QT.BF16), QT.BF16))
        else:
            self.items.append((name, gguf.quants.quantize(w, QT.Q8_0), QT.Q8_0))


def build(family, wtype, tokenizer, path):
    h = FAMILIES[family]
    arch = family
    n_embd, n_head, n_kv, hd, n_ff, n_layer = (h[k] for k in ("n_embd", "n_head", "n_head_kv", "head_dim",
                                                                "n_ff", "n_layer"))
    q_width, kv_width = n_head * hd, n_kv * hd
    t = Tensors(Draw(h["seed"]), wtype, Draw(1000 + h["seed"]))
    d = t.kdraw if wtype in RANDOM_BLOCKS else t.draw  # norms and biases: the file's own draw

    w = gguf.GGUFWriter(str(path), arch)
    # Not the family's name: llama.cpp sets token attributes by model name ("phi3" looks up "</s>",
    # which SmolLM2's vocabulary lacks)
    w.add_name("Tiller random-weight test model")
    w.add_file_type(FILE_TYPE[wtype])
    w.add_block_count(n_layer)
    w.add_context_length(h["ctx"])
    w.add_embedding_length(n_embd)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    if family == "gpt2":
        w.add_layer_norm_eps(h["eps"])
    else:
        w.add_layer_norm_rms_eps(h["eps"])
        w.add_rope_freq_base(h["rope_base"])
    if family in ("qwen3", "gemma2", "gemma3"):
        w.add_key_length(hd)
        w.add_value_length(hd)
    if family in ("llama", "phi3"):
        w.add_rope_dimension_count(hd)
    if family == "phi3":
        w.add_rope_scaling_orig_ctx_len(h["orig_ctx"])
        # convert_hf_to_gguf.py's Phi3 LongRoPE attention factor
        w.add_rope_scaling_attn_factors(math.sqrt(1 + math.log(h["ctx"] / h["orig_ctx"]) / math.log(h["orig_ctx"])))
    if family in ("gemma2", "gemma3"):
        w.add_sliding_window(h["window"])
    if family == "gemma2":
        w.add_attn_logit_softcapping(h["attn_softcap"])
        w.add_final_logit_softcapping(h["final_softcap"])
    for key, value, main, sub in tokenizer:
        w.add_key_value(key, value, main, sub_type=sub)

    gemma = family in ("gemma2", "gemma3")
    t.matrix("token_embd.weight", N_VOCAB, n_embd, std=EMBD_STD)
    if family == "gpt2":
        t.matrix("position_embd.weight", h["ctx"], n_embd, std=EMBD_STD, kquant_ok=False)
    if not h["tied"]:
        t.matrix("output.weight", N_VOCAB, n_embd, std=EMBD_STD)
    t.vector("output_norm.weight", d.around(n_embd, OUTPUT_NORM_GAIN, 0.5))
    if family == "gpt2":
        t.vector("output_norm.bias", d.uniform(n_embd, BIAS_STD))
    if family == "llama":
        t.vector("rope_freqs.weight", llama3_rope_factors(hd, h["rope_base"]))
    if family == "phi3":
        t.vector("rope_factors_long.weight", longrope_factors(hd // 2, True))
        t.vector("rope_factors_short.weight", longrope_factors(hd // 2, False))

    for il in range(n_layer):
        p = f"blk.{il}."
        t.vector(p + "attn_norm.weight", d.around(n_embd, 1.0, 0.25))
        if family == "gpt2":
            t.vector(p + "attn_norm.bias", d.uniform(n_embd, BIAS_STD))
        if family in ("phi3", "gpt2"):
            t.matrix(p + "attn_qkv.weight", q_width + 2 * kv_width, n_embd, IN_GAIN)
            if family == "gpt2":
                t.vector(p + "attn_qkv.bias", d.uniform(q_width + 2 * kv_width, BIAS_STD))
        else:
            t.matrix(p + "attn_q.weight", q_width, n_embd, IN_GAIN)
            t.matrix(p + "attn_k.weight", kv_width, n_embd, IN_GAIN)
            t.matrix(p + "attn_v.weight", kv_width, n_embd, IN_GAIN)
        if family == "qwen2":
            t.vector(p + "attn_q.bias", d.uniform(q_width, BIAS_STD))
            t.vector(p + "attn_k.bias", d.uniform(kv_width, BIAS_STD))
            t.vector(p + "attn_v.bias", d.uniform(kv_width, BIAS_STD))
        if family in ("qwen3", "gemma3"):
            t.vector(p + "attn_q_norm.weight", d.around(hd, 1.0, 0.25))
            t.vector(p + "attn_k_norm.weight", d.around(hd, 1.0, 0.25))
        t.matrix(p + "attn_output.weight", n_embd, q_width, OUT_GAIN)
        if family == "gpt2":
            t.vector(p + "attn_output.bias", d.uniform(n_embd, BIAS_STD))
        if gemma:
            t.vector(p + "post_attention_norm.weight", d.around(n_embd, POST_NORM_GAIN, 0.5))
        t.vector(p + "ffn_norm.weight", d.around(n_embd, 1.0, 0.25))
        if family == "gpt2":
            t.vector(p + "ffn_norm.bias", d.uniform(n_embd, BIAS_STD))
        if family == "phi3":
            t.matrix(p + "ffn_up.weight", 2 * n_ff, n_embd, IN_GAIN)  # gate rows, then up rows
        elif family == "gpt2":
            t.matrix(p + "ffn_up.weight", n_ff, n_embd, IN_GAIN)
            t.vector(p + "ffn_up.bias", d.uniform(n_ff, BIAS_STD))
        else:
            t.matrix(p + "ffn_gate.weight", n_ff, n_embd, IN_GAIN)
            t.matrix(p + "ffn_up.weight", n_ff, n_embd, IN_GAIN)
        t.matrix(p + "ffn_down.weight", n_embd, n_ff, OUT_GAIN)
        if family == "gpt2":
            t.vector(p + "ffn_down.bias", d.uniform(n_embd, BIAS_STD))
        if gemma:
            t.vector(p + "post_ffw_norm.weight", d.around(n_embd, POST_NORM_GAIN, 0.5))

    for name, data, raw in t.items:
        w.add_tensor(name, data, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def read_manifest():
    if not MANIFEST.exists():
        return {}
    rows = [line.split("\t") for line in MANIFEST.read_text().splitlines() if line and not line.startswith("#")]
    return {name: digest for name, digest in rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=MODELS / "random")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--update-manifest", action="store_true")
    args = ap.parse_args()
    families = [f for f in args.families.split(",") if f]
    for f in families:
        if f not in FAMILIES:
            sys.exit(f"unknown family {f!r} (known: {', '.join(FAMILIES)})")
    source = MODELS / TOKENIZER_SOURCE
    if not source.exists():
        sys.exit(f"{source} is missing (the tokenizer the random models borrow): run scripts/fetch-models.sh")
    args.out.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest()
    start = time.perf_counter()
    bad, written, kept, tokenizer = [], 0, 0, None
    for name in model_names(families):
        path = args.out / f"{name}.gguf"
        expected = manifest.get(name)
        if not args.update_manifest and expected and path.exists() and sha256_file(path) == expected:
            kept += 1
            continue
        family, wtype = name.rsplit("-", 1)
        t0 = time.perf_counter()
        tokenizer = tokenizer or read_tokenizer(source)
        tmp = path.with_suffix(".gguf.tmp")
        build(family, wtype, tokenizer, tmp)
        digest = sha256_file(tmp)
        tmp.replace(path)
        written += 1
        print(f"{path.name}: {path.stat().st_size} bytes, {time.perf_counter() - t0:.1f} s, sha256 {digest}",
              file=sys.stderr)
        if args.update_manifest:
            manifest[name] = digest
        elif digest != expected:
            bad.append(f"{name}: sha256 {digest}, manifest {expected or '(none)'}")
    if args.update_manifest:
        lines = ["# name\tsha256 of <name>.gguf, written by scripts/make-family-models.py (--update-manifest)"]
        lines += [f"{n}\t{manifest[n]}" for n in model_names() if n in manifest]
        MANIFEST.write_text("\n".join(lines) + "\n")
        print(f"wrote {MANIFEST}", file=sys.stderr)
    print(f"make-family-models: {written} written, {kept} already present in {args.out}, "
          f"{time.perf_counter() - start:.1f} s", file=sys.stderr)
    if bad:
        sys.exit("make-family-models: files differ from scripts/family-models.tsv (another gguf or numpy "
                 "version, or a changed generator; --update-manifest after a deliberate change):\n  "
                 + "\n  ".join(bad))


if __name__ == "__main__":
    main()
