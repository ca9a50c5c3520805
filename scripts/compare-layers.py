#!/usr/bin/env python3
"""Where do Tiller's and llama.cpp's forward passes part? A per-layer comparison.

Runs one text through llama.cpp (the pinned llama-cpp-python, with an eval callback that
catches every named tensor) and through `tiller dump --hook all`, then prints, for every
block, the relative error (|ours - theirs| / |theirs|, per position, mean and max) at the
five hook points, and the first block and position where the error passes --threshold.

At that block it also quantizes both engines' normed inputs of the attention projections
the way llama.cpp's kernels do (8-bit blocks: Q8_0/Q8_1 for 32-weight formats, Q8_K for
K-quants) and counts the 8-bit values that differ per position: a difference of one unit
there, from inputs that agree to 1e-7, is a rounding flip, not a bug.

  scripts/oracle-env.sh scripts/compare-layers.py [--model NAME] [--text TEXT] [--threshold 1e-4]
"""
import argparse
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
spec = importlib.util.spec_from_file_location("forward_goldens", HERE / "make-forward-goldens.py")
fg = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fg)

# llama.cpp's graph names for Tiller's hook points, per architecture.
NAMES = {
    "llama": {"attn_out": "attn_out-{}", "resid_mid": "ffn_inp-{}", "mlp_out": "ffn_out-{}",
              "resid_post": "l_out-{}"},
    "gemma3": {"attn_out": "attn_post_norm-{}", "resid_mid": "sa_out-{}", "mlp_out": "ffn_post_norm-{}",
               "resid_post": "l_out-{}"},
}
HOOKS = ("resid_pre", "attn_out", "resid_mid", "mlp_out", "resid_post")


def capture(llm, text):
    fg.wanted_tensor = lambda name: name not in ("kq-0", "kq_soft_max-0") and "kq" not in name.split("-")[0]
    ids, captured, _, _ = fg.hidden_states(llm, text)
    tensors = {}
    for t in captured:
        ne = t["ne"]
        if ne[2] != 1 or ne[3] != 1:
            continue  # per-head views; the flat [width, tokens] form comes first
        values = np.frombuffer(__import__("base64").b64decode(t["data"]), dtype="<f4")
        tensors[(t["name"], t["op"])] = values.reshape(ne[1], ne[0]).astype(np.float64)
    return ids, tensors


def find(tensors, name, op=None):
    hits = [v for (n, o), v in tensors.items() if n == name and (op is None or o == op)]
    return hits[-1] if hits else None


def q8_blocks(x, block):
    """8-bit values as llama.cpp's x86 kernels make them (Q8_0/Q8_1: 32, Q8_K: 256)."""
    n, w = x.shape
    xb = x.astype(np.float32).reshape(n, w // block, block)
    if block == 32:
        amax = np.abs(xb).max(axis=2, keepdims=True)
        inv = np.where(amax > 0, np.float32(127) / np.where(amax > 0, amax, 1), 0).astype(np.float32)
        return np.rint(xb * inv)
    idx = np.abs(xb).argmax(axis=2)[..., None]
    extreme = np.take_along_axis(xb, idx, axis=2)
    iscale = np.where(extreme != 0, np.float32(-127) / np.where(extreme != 0, extreme, 1), 0).astype(np.float32)
    return np.minimum(127, np.rint(iscale * xb))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--text", default=fg.HIDDEN_TEXT)
    ap.add_argument("--threshold", type=float, default=1e-4)
    ap.add_argument("--tiller", default=str(HERE.parent / "build" / "tiller"))
    args = ap.parse_args()

    path = fg.MODELS / f"{args.model}.gguf"
    llm = fg.open_model(path)
    ids, theirs = capture(llm, args.text)
    architecture = "gemma3" if find(theirs, "inp_scaled") is not None else "llama"
    with tempfile.TemporaryDirectory() as out:
        text_file = Path(out) / "text.txt"
        text_file.write_text(args.text, encoding="utf-8")
        subprocess.run([args.tiller, "dump", "-m", str(path), "-f", str(text_file), "--hook", "all", "-o", out],
                       check=True, stdout=subprocess.DEVNULL)
        n_layer = sum(1 for (n, _) in theirs if n.startswith("l_out-"))
        ours = {(L, h): np.load(f"{out}/blocks.{L}.hook_{h}.npy").astype(np.float64)
                for L in range(n_layer) for h in HOOKS}
    print(f"{args.model} ({architecture}), {len(ids)} tokens: relative error per position, mean / max")
    print(f"{'block':>5} " + " ".join(f"{h:>19}" for h in HOOKS))
    first = None
    for L in range(n_layer):
        cells = []
        for h in HOOKS:
            if h == "resid_pre":
                ref = find(theirs, f"l_out-{L - 1}") if L > 0 else find(theirs, "inp_scaled" if architecture == "gemma3" else "embd")
            else:
                ref = find(theirs, NAMES[architecture][h].format(L))
            if ref is None:
                cells.append(f"{'-':>19}")
                continue
            rel = np.linalg.norm(ours[(L, h)] - ref, axis=1) / np.maximum(np.linalg.norm(ref, axis=1), 1e-30)
            cells.append(f"{rel.mean():9.2e} {rel.max():9.2e}")
            if first is None and rel.max() > args.threshold:
                first = (L, h, int(rel.argmax()), float(rel.max()))
        print(f"{L:>5} " + " ".join(cells))
    if first is None:
        print(f"no hook point passes {args.threshold:g}")
        return
    L, h, pos, err = first
    print(f"first above {args.threshold:g}: block {L} {h}, position {pos} ({err:.2e})")
    theirs_in = find(theirs, f"attn_norm-{L}")
    if theirs_in is not None:
        # Tiller's attention-norm output, recomputed from its resid_pre the way both engines do it.
        pre = ours[(L, "resid_pre")].astype(np.float32)
        import gguf
        reader = gguf.GGUFReader(str(path))
        weight = next(np.asarray(t.data, dtype=np.float32) for t in reader.tensors
                      if t.name == f"blk.{L}.attn_norm.weight")
        eps = np.float32(1e-5 if architecture == "llama" else 1e-6)
        mean = ((pre * pre).astype(np.float64).sum(axis=1) / pre.shape[1]).astype(np.float32)
        ours_in = (pre * (np.float32(1) / np.sqrt(mean + eps))[:, None]).astype(np.float32) * weight
        q_type = next(t.tensor_type for t in reader.tensors if t.name == f"blk.{L}.attn_q.weight")
        block = 256 if q_type.name.endswith("_K") else 32
        a, b = q8_blocks(theirs_in, block), q8_blocks(ours_in, block)
        rel_in = np.linalg.norm(ours_in - theirs_in, axis=1) / np.linalg.norm(theirs_in, axis=1)
        flips = (a != b).reshape(a.shape[0], -1).sum(axis=1)
        print(f"block {L} attention input ({q_type.name} weights, {block}-blocks): relative difference "
              f"max {rel_in.max():.1e}; 8-bit values that differ per position: {flips.tolist()}")


if __name__ == "__main__":
    main()
