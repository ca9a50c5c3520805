#!/usr/bin/env python3
"""Writes random-weight GGUF models in the exact shapes of the models people steer (1B to 8B),
quantized to Q4_K_M by llama.cpp's own quantizer, for the benchmarks (bench/vs-llamacpp,
docs/performance.md). Their outputs mean nothing; their sizes, layouts and weight types are
those of the real files, which is what speed depends on.

  <out>/<name>-Q4_K_M.gguf     name: llama-3.2-1b-shape  qwen2.5-1.5b-shape  llama-3.1-8b-shape

<out> defaults to ${TILLER_MODELS:-~/.cache/tiller/models}/shapes, never the repository.

Each model is first written as F16 (every matrix; norms, biases and rope factors F32, as in a
converted file), then quantized with the pinned llama-cpp-python's `llama_model_quantize`
(LLAMA_FTYPE_MOSTLY_Q4_K_M, so the mix of Q4_K, Q6_K and fallbacks is llama.cpp's choice), and
the F16 file is deleted unless --keep-f16. The weights come from integer draws of numpy's
PCG64 with one seed per model, scaled by float32 constants (as scripts/make-family-models.py
does), so the F16 file is the same bytes on any CPU; its sha256 is checked against
scripts/shape-models.tsv. The quantized file is not: llama.cpp's quantizer may round
differently on different CPUs, and nothing compares its bytes.

The tokenizer is SmolLM2-135M's (every tokenizer.* key of <models>/smollm2-135m-instruct.gguf),
padded with unused tokens to the real model's vocabulary size (128256 for Llama 3, 151936 for
Qwen2.5), so the embedding and output matrices have their real shapes.

  --out DIR           write into DIR
  --models a,b        only these (default: all three; the 8B takes about 16 GB of disk while
                      its F16 file exists, and several minutes)
  --keep-f16          keep <name>-F16.gguf beside the quantized file
  --update-manifest   record the F16 files' sha256 in the manifest instead of checking them
Run it through scripts/make-shape-models.sh, which provides the pinned environment.
"""
import argparse
import ctypes
import hashlib
import math
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

import gguf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from golden_support import quiet_llama_cpp, sha256_file  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
MANIFEST = REPO / "scripts" / "shape-models.tsv"
MODELS = Path(os.environ.get("TILLER_MODELS", Path.home() / ".cache" / "tiller" / "models"))
TOKENIZER_SOURCE = "smollm2-135m-instruct.gguf"
TOKEN_TYPE_UNUSED = 5
LLAMA_FTYPE_MOSTLY_Q4_K_M = 15
UNIFORM_STD = 127 / math.sqrt(3)  # std of integers uniform in [-127, 127]

# The real models' hyper-parameters (their config.json, as convert_hf_to_gguf.py writes them).
SHAPES = {
    "llama-3.2-1b-shape": dict(seed=101, arch="llama", n_layer=16, n_embd=2048, n_head=32, n_head_kv=8,
                               head_dim=64, n_ff=8192, n_vocab=128256, ctx=131072, rope_base=500000.0,
                               eps=1e-5, tied=True, rope_factor=32.0),
    "qwen2.5-1.5b-shape": dict(seed=102, arch="qwen2", n_layer=28, n_embd=1536, n_head=12, n_head_kv=2,
                               head_dim=128, n_ff=8960, n_vocab=151936, ctx=32768, rope_base=1000000.0,
                               eps=1e-6, tied=True),
    "llama-3.1-8b-shape": dict(seed=103, arch="llama", n_layer=32, n_embd=4096, n_head=32, n_head_kv=8,
                               head_dim=128, n_ff=14336, n_vocab=128256, ctx=131072, rope_base=500000.0,
                               eps=1e-5, tied=False, rope_factor=8.0),
}
EMBD_STD = 0.05
IN_GAIN, OUT_GAIN, OUTPUT_NORM_GAIN, BIAS_STD = 1.0, 0.5, 5.0, 0.1
ROWS_PER_DRAW = 4096  # rows drawn at a time, to bound the float32 temporaries
_PROGRESS_LOG = None


def progress(message, end="\n"):
    print(message, file=sys.stderr, end=end, flush=True)


class Draw:
    def __init__(self, seed):
        self.rng = np.random.Generator(np.random.PCG64(seed))

    def uniform(self, shape, std):
        scale = np.float32(std / UNIFORM_STD)
        return self.rng.integers(-127, 128, size=shape, dtype=np.int16).astype(np.float32) * scale

    def around(self, n, centre, spread):
        return (np.float32(centre) + self.rng.integers(-16, 17, size=n, dtype=np.int16).astype(np.float32)
                * np.float32(spread / 16))

    def f16_matrix(self, n_out, n_in, std):
        out = np.empty((n_out, n_in), dtype=np.float16)
        for first in range(0, n_out, ROWS_PER_DRAW):
            last = min(first + ROWS_PER_DRAW, n_out)
            out[first:last] = self.uniform((last - first, n_in), std).astype(np.float16)
        return out


def llama3_rope_factors(head_dim, base, factor, low=1.0, high=4.0, original=8192):
    """convert_hf_to_gguf.py's rope_freqs for rope_type llama3."""
    out = []
    for i in range(0, head_dim, 2):
        wavelen = 2 * math.pi * base ** (i / head_dim)
        if wavelen < original / high:
            out.append(1.0)
        elif wavelen > original / low:
            out.append(factor)
        else:
            smooth = (original / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def tokenizer_keys(source, n_vocab):
    """SmolLM2's tokenizer.* keys with tokens and token types padded to n_vocab."""
    reader = gguf.GGUFReader(str(source))
    keys = []
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        main = field.types[0]
        sub = field.types[-1] if main == gguf.GGUFValueType.ARRAY else None
        value = field.contents()
        if key == "tokenizer.ggml.tokens":
            value = list(value) + [f"<|tiller_unused_{i}|>" for i in range(len(value), n_vocab)]
        elif key == "tokenizer.ggml.token_type":
            value = list(value) + [TOKEN_TYPE_UNUSED] * (n_vocab - len(value))
        keys.append((key, value, main, sub))
    return keys


def tensor_plan(h, draw):
    """[(name, shape as (n_out, n_in) or (n,), make)]: make() returns the tensor's array."""
    n_embd, n_kv, hd, n_ff = h["n_embd"], h["n_head_kv"], h["head_dim"], h["n_ff"]
    q_width, kv_width = h["n_head"] * hd, n_kv * hd
    plan = []

    def matrix(name, n_out, n_in, std):
        plan.append((name, (n_out, n_in), lambda: draw.f16_matrix(n_out, n_in, std)))

    def vector(name, n, make):
        plan.append((name, (n,), make))

    matrix("token_embd.weight", h["n_vocab"], n_embd, EMBD_STD)
    if not h["tied"]:
        matrix("output.weight", h["n_vocab"], n_embd, EMBD_STD)
    vector("output_norm.weight", n_embd, lambda: draw.around(n_embd, OUTPUT_NORM_GAIN, 0.5))
    if h["arch"] == "llama":
        vector("rope_freqs.weight", hd // 2, lambda: llama3_rope_factors(hd, h["rope_base"], h["rope_factor"]))
    for il in range(h["n_layer"]):
        p = f"blk.{il}."
        vector(p + "attn_norm.weight", n_embd, lambda: draw.around(n_embd, 1.0, 0.25))
        matrix(p + "attn_q.weight", q_width, n_embd, IN_GAIN / math.sqrt(n_embd))
        matrix(p + "attn_k.weight", kv_width, n_embd, IN_GAIN / math.sqrt(n_embd))
        matrix(p + "attn_v.weight", kv_width, n_embd, IN_GAIN / math.sqrt(n_embd))
        if h["arch"] == "qwen2":
            vector(p + "attn_q.bias", q_width, lambda: draw.uniform(q_width, BIAS_STD))
            vector(p + "attn_k.bias", kv_width, lambda: draw.uniform(kv_width, BIAS_STD))
            vector(p + "attn_v.bias", kv_width, lambda: draw.uniform(kv_width, BIAS_STD))
        matrix(p + "attn_output.weight", n_embd, q_width, OUT_GAIN / math.sqrt(q_width))
        vector(p + "ffn_norm.weight", n_embd, lambda: draw.around(n_embd, 1.0, 0.25))
        matrix(p + "ffn_gate.weight", n_ff, n_embd, IN_GAIN / math.sqrt(n_embd))
        matrix(p + "ffn_up.weight", n_ff, n_embd, IN_GAIN / math.sqrt(n_embd))
        matrix(p + "ffn_down.weight", n_embd, n_ff, OUT_GAIN / math.sqrt(n_ff))
    return plan


def write_f16(name, tokenizer_source, path):
    h = SHAPES[name]
    draw = Draw(h["seed"])
    w = gguf.GGUFWriter(str(path), h["arch"])
    w.add_name("Tiller random-weight benchmark model")
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_block_count(h["n_layer"])
    w.add_context_length(h["ctx"])
    w.add_embedding_length(h["n_embd"])
    w.add_feed_forward_length(h["n_ff"])
    w.add_head_count(h["n_head"])
    w.add_head_count_kv(h["n_head_kv"])
    w.add_layer_norm_rms_eps(h["eps"])
    w.add_rope_freq_base(h["rope_base"])
    if h["arch"] == "llama":
        w.add_rope_dimension_count(h["head_dim"])
    for key, value, main, sub in tokenizer_keys(tokenizer_source, h["n_vocab"]):
        w.add_key_value(key, value, main, sub_type=sub)

    plan = tensor_plan(h, draw)
    for tensor_name, shape, _ in plan:
        dtype = np.float16 if len(shape) == 2 else np.float32
        w.add_tensor_info(tensor_name, shape, np.dtype(dtype), math.prod(shape) * np.dtype(dtype).itemsize)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for i, (tensor_name, _, make) in enumerate(plan):
        if sys.stderr.isatty():
            progress(f"\r  F16 {i + 1}/{len(plan)} {tensor_name:<28}", end="")
        w.write_tensor_data(make())
    if sys.stderr.isatty():
        progress("")
    w.close()


def quantize(source, target, threads):
    """llama.cpp's quantizer, Q4_K_M; its per-tensor log lines drive a progress line."""
    L = quiet_llama_cpp()
    counter = re.compile(r"\[\s*(\d+)/\s*(\d+)\]")

    def on_log(level, text, user_data):
        match = counter.search(text.decode(errors="replace")) if text else None
        if match and sys.stderr.isatty():
            progress(f"\r  Q4_K_M {match.group(1)}/{match.group(2)}", end="")

    global _PROGRESS_LOG  # llama.cpp keeps the pointer: the callback must outlive this call
    _PROGRESS_LOG = L.llama_log_callback(on_log)
    L.llama_log_set(_PROGRESS_LOG, ctypes.c_void_p(0))
    params = L.llama_model_quantize_default_params()
    params.ftype = LLAMA_FTYPE_MOSTLY_Q4_K_M
    params.nthread = threads
    status = L.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params))
    if sys.stderr.isatty():
        progress("")
    if status != 0:
        raise SystemExit(f"make-shape-models: llama_model_quantize failed on {source} ({status})")


def read_manifest():
    if not MANIFEST.exists():
        return {}
    rows = [line.split("\t") for line in MANIFEST.read_text().splitlines() if line and not line.startswith("#")]
    return {row[0]: row[1] for row in rows}


def write_manifest(digests):
    lines = ["# name\tsha256 of <name>-F16.gguf, written by scripts/make-shape-models.py (--update-manifest)"]
    lines += [f"{name}\t{digests[name]}" for name in SHAPES if name in digests]
    MANIFEST.write_text("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=MODELS / "shapes")
    parser.add_argument("--models", default=",".join(SHAPES), type=lambda text: text.split(","))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--keep-f16", action="store_true")
    parser.add_argument("--update-manifest", action="store_true")
    args = parser.parse_args()
    unknown = [m for m in args.models if m not in SHAPES]
    if unknown:
        parser.error(f"unknown model '{unknown[0]}' (known: {', '.join(SHAPES)})")
    source = MODELS / TOKENIZER_SOURCE
    if not source.exists():
        raise SystemExit(f"make-shape-models: {source} is missing; run scripts/fetch-models.sh first")

    args.out.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest()
    for name in args.models:
        target = args.out / f"{name}-Q4_K_M.gguf"
        if target.exists() and not args.update_manifest:
            progress(f"make-shape-models: {target} is there")
            continue
        f16 = args.out / f"{name}-F16.gguf"
        started = time.monotonic()
        progress(f"make-shape-models: {name}: writing {f16}")
        write_f16(name, source, f16)
        digest = sha256_file(f16)
        if args.update_manifest:
            manifest[name] = digest
        elif manifest.get(name) != digest:
            f16.unlink()
            raise SystemExit(f"make-shape-models: {f16.name} has sha256 {digest}, the manifest says "
                             f"{manifest.get(name, 'nothing')}")
        progress(f"make-shape-models: {name}: quantizing to {target} with llama.cpp ({args.threads} threads)")
        partial = target.with_suffix(".partial")
        quantize(f16, partial, args.threads)
        partial.rename(target)
        if not args.keep_f16:
            f16.unlink()
        progress(f"make-shape-models: {name}: done in {time.monotonic() - started:.0f} s, "
                 f"{target.stat().st_size / 1e9:.2f} GB")
    if args.update_manifest:
        write_manifest(manifest)


if __name__ == "__main__":
    main()
