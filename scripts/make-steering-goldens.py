#!/usr/bin/env python3
"""Writes the control-vector goldens the C++ steering tests compare against, with llama.cpp as
the oracle (through llama-cpp-python's llama_set_adapter_cvec, pinned in scripts/oracle-env.sh).

For each model it writes, into tests/data/steering/:
  <model>-random.gguf    random directions for blocks 1..n_layer-1, seed 1; per block the norm is
                         0.5 x the median norm of llama.cpp's l_out-<N> (resid_post of block N)
                         over the positions (BOS excluded) of NORM_TEXT
  <model>-random2.gguf   the same with seed 2
  <model>-meandiff.gguf  difference of means: per block N, mean over PAIRS of
                         l_out-N(pos)[last token] - l_out-N(neg)[last token]
  <model>-tiller.gguf    written by Tiller itself (build/tiller, which must be built):
                         `tiller vector combine meandiff:0.1 random:0.02`; llama.cpp reads it
                         through the same gguf-package path as the others, so its case shows
                         that a file Tiller writes gives the same logits in llama.cpp
  <model>-cvec.json      per case (files with scales, layer range) and per held-out text: the top
                         64 (id, logit) pairs and the log-sum-exp of llama.cpp's logits at every
                         position with the control vector applied
The vector files are written with the gguf package's GGUFWriter (general.architecture =
"controlvector", controlvector.model_hint, controlvector.layer_count, tensors direction.N, F32,
1-D [n_embd]) and read back with its GGUFReader to build llama.cpp's buffer the way
common/common.cpp's llama_control_vector_load does (sum of scale x direction over the files).

It also reads, when present, <model>-trained.gguf: a vector `tiller vector train` wrote (the
happy/sad persona recipe; the command is in the json's notes), applied in two cases.

Before writing, it checks llama.cpp's semantics with an eval callback: a vector set only for
block K changes l_out-(K-1) not at all and l_out-K by exactly the direction at every position,
and a layer range excluding K leaves l_out-K unchanged.
Run it through scripts/make-goldens.sh, which provides the pinned environment.

  --out DIR      write into DIR instead of tests/data/steering
  --models M,..  only these models
"""
import argparse
import ctypes
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from golden_support import quiet_llama_cpp, sha256_file

L = quiet_llama_cpp()

import gguf
import llama_cpp

_spec = importlib.util.spec_from_file_location(
    "make_forward_goldens", Path(__file__).resolve().parent / "make-forward-goldens.py")
fwd = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fwd)

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data" / "steering"
TEXTS = REPO / "tests" / "data" / "forward" / "texts.jsonl"
MODEL_NAMES = ("smollm2-135m-instruct", "gemma-3-270m")
N_HELD_OUT = 3
HELD_OUT_TOKENS = 96  # every text of texts.jsonl is longer than this for SmolLM2: token prefixes
RANDOM_NORM_FRACTION = 0.5
NORM_TEXT = "The quick brown fox jumps over the lazy dog near the river bank."
PAIRS = [
    ("I feel so happy today", "I feel so sad today"),
    ("What a wonderful, joyful morning", "What a terrible, miserable morning"),
    ("She smiled with delight at the news", "She cried with grief at the news"),
    ("This is the best day of my life", "This is the worst day of my life"),
    ("I love spending time with my friends", "I hate spending time with my friends"),
    ("The party was fun and cheerful", "The funeral was grim and sorrowful"),
    ("He laughed and danced all night", "He wept and grieved all night"),
    ("Everything is going great for me", "Everything is going wrong for me"),
]
# partial layer ranges (inclusive, as --control-vector-layer-range START END gives them)
PARTIAL = {"smollm2-135m-instruct": (5, 15), "gemma-3-270m": (4, 10)}


def l_out_capture(llm, ids, cvec=None):
    """{N: float32 [n_tokens, n_embd]} of every l_out-N of one decode of ids, on a second
    context with the eval callback; cvec = (buffer, il_start, il_end) is set on it first."""
    ggml = fwd._ggml()
    out = {}

    def callback(tensor, ask, user_data):
        name = ggml.ggml_get_name(tensor).decode()
        if not name.startswith("l_out-"):
            return not ask
        if ask:
            return True
        head = fwd._TensorHead.from_address(tensor)
        assert head.type == 0 and ggml.ggml_is_contiguous(tensor), name
        size = ggml.ggml_nbytes(tensor)
        buf = (ctypes.c_uint8 * size)()
        ggml.ggml_backend_tensor_get(tensor, buf, 0, size)
        out[int(name[6:])] = np.frombuffer(bytes(buf), dtype="<f4").reshape(head.ne[1], head.ne[0]).copy()
        return True

    cb = L.ggml_backend_sched_eval_callback(callback)
    params = L.llama_context_params.from_buffer_copy(llm.context_params)
    params.cb_eval = cb
    params.cb_eval_user_data = None
    ctx = L.llama_init_from_model(llm.model, params)
    assert ctx, "llama_init_from_model failed"
    batch = L.llama_batch_init(len(ids), 0, 1)
    try:
        if cvec is not None:
            set_cvec(ctx, L.llama_model_n_embd(llm.model), *cvec)
        for i, t in enumerate(ids):
            batch.token[i] = t
            batch.pos[i] = i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = 1
        batch.n_tokens = len(ids)
        assert L.llama_decode(ctx, batch) == 0
    finally:
        L.llama_batch_free(batch)
        L.llama_free(ctx)
    return out


def set_cvec(ctx, n_embd, data, il_start, il_end):
    """llama_set_adapter_cvec(ctx, data, len, n_embd, il_start, il_end); data None clears it."""
    if data is None:
        rc = L.llama_set_adapter_cvec(ctx, None, 0, n_embd, -1, -1)
    else:
        data = np.ascontiguousarray(data, dtype=np.float32)
        ptr = data.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        rc = L.llama_set_adapter_cvec(ctx, ptr, data.size, n_embd, il_start, il_end)
    assert rc == 0, f"llama_set_adapter_cvec returned {rc}"


def write_vector(path, model_hint, directions):
    """directions: {N: float32 [n_embd]} for blocks N >= 1."""
    w = gguf.GGUFWriter(str(path), "controlvector")
    w.add_string("controlvector.model_hint", model_hint)
    w.add_uint32("controlvector.layer_count", len(directions))
    for n in sorted(directions):
        w.add_tensor(f"direction.{n}", np.ascontiguousarray(directions[n], dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def load_cvec(files, n_embd):
    """llama.cpp's common llama_control_vector_load: buffer [max N, n_embd] whose row N-1 is the
    sum over files of scale x direction.N (rows of blocks no file names stay 0)."""
    rows = {}
    for path, scale in files:
        r = gguf.GGUFReader(str(path))
        arch = r.fields["general.architecture"]
        assert bytes(arch.parts[arch.data[0]]).decode() == "controlvector"
        for t in r.tensors:
            assert t.name.startswith("direction."), t.name
            n = int(t.name.split(".")[1])
            assert n >= 1 and t.data.dtype == np.float32 and t.data.size == n_embd, t.name
            rows[n] = rows.get(n, np.zeros(n_embd)) + scale * np.asarray(t.data, dtype=np.float64).reshape(-1)
    buf = np.zeros((max(rows), n_embd), dtype=np.float32)
    for n, v in rows.items():
        buf[n - 1] = v.astype(np.float32)
    return buf


def verify_semantics(llm, n_embd, n_layer, rng):
    """direction.N lands on l_out-N, every position; the range gates it."""
    ids = fwd.tokenize(llm, NORM_TEXT)
    base = l_out_capture(llm, ids)
    k = n_layer // 2
    d = (rng.standard_normal(n_embd) * 3.0).astype(np.float32)
    buf = np.zeros((n_layer - 1, n_embd), dtype=np.float32)
    buf[k - 1] = d
    on = l_out_capture(llm, ids, (buf, 1, n_layer - 1))
    assert np.array_equal(on[k - 1], base[k - 1]), "block K-1 changed"
    err = np.abs(on[k] - base[k] - d[None, :]).max()
    assert err < 1e-4 * max(1.0, np.abs(base[k]).max()), f"l_out-K moved by {err} from the direction"
    off = l_out_capture(llm, ids, (buf, k + 1, n_layer - 1))
    assert np.array_equal(off[k], base[k]), "range [K+1, end] still steered block K"
    off2 = l_out_capture(llm, ids, (buf, 1, k - 1))
    assert np.array_equal(off2[k], base[k]), "range [1, K-1] still steered block K"
    only = l_out_capture(llm, ids, (buf, k, k))
    assert np.array_equal(only[k], on[k]), "range [K, K] differs from the full range"
    print(f"  semantics ok: row K-1 of the buffer (K={k}) is added to l_out-{k} at all "
          f"{len(ids)} positions (max err {err:.2e}); l_out-{k - 1} unchanged; ranges inclusive",
          file=sys.stderr)


def stream_norms(llm, n_layer, text=NORM_TEXT):
    """{N: median over the positions of text (the first excluded: BOS, or an outlier where none is
    added) of |l_out-N|} for blocks 1..n_layer-1."""
    hs = l_out_capture(llm, fwd.tokenize(llm, text))
    return {n: float(np.median(np.linalg.norm(hs[n][1:].astype(np.float64), axis=1))) for n in range(1, n_layer)}


def random_directions(norms, n_embd, seed, fraction=RANDOM_NORM_FRACTION):
    """{N: float32 [n_embd]}: a random direction per block of norms, of norm fraction x norms[N]."""
    rng = np.random.default_rng(seed)
    dirs = {}
    for n in sorted(norms):
        v = rng.standard_normal(n_embd)
        dirs[n] = (v / np.linalg.norm(v) * fraction * norms[n]).astype(np.float32)
    return dirs


def make_vectors(model, llm, out, n_embd, n_layer, arch):
    norms = stream_norms(llm, n_layer)
    files = {}
    for label, seed in (("random", 1), ("random2", 2)):
        files[label] = out / f"{model}-{label}.gguf"
        write_vector(files[label], arch, random_directions(norms, n_embd, seed))
    acc = {n: np.zeros(n_embd) for n in range(1, n_layer)}
    for pos, neg in PAIRS:
        hp = l_out_capture(llm, fwd.tokenize(llm, pos))
        hn = l_out_capture(llm, fwd.tokenize(llm, neg))
        for n in acc:
            acc[n] += hp[n][-1].astype(np.float64) - hn[n][-1].astype(np.float64)
    md = {n: (v / len(PAIRS)).astype(np.float32) for n, v in acc.items()}
    files["meandiff"] = out / f"{model}-meandiff.gguf"
    write_vector(files["meandiff"], arch, md)
    files["tiller"] = out / f"{model}-tiller.gguf"
    tiller = REPO / "build" / "tiller"
    if not tiller.exists():
        sys.exit(f"{tiller} is missing: run scripts/build.sh first (the 'tiller' case needs it)")
    subprocess.run([str(tiller), "vector", "combine", f"{files['meandiff']}:0.1", f"{files['random']}:0.02",
                    "-o", str(files["tiller"])], check=True)
    print(f"  resid_post median norms (block: norm) "
          + " ".join(f"{n}:{norms[n]:.1f}" for n in range(1, n_layer, max(1, n_layer // 6)))
          + "; meandiff norms " + " ".join(f"{n}:{np.linalg.norm(md[n]):.1f}"
                                           for n in range(1, n_layer, max(1, n_layer // 6))),
          file=sys.stderr)
    return files, norms


def goldens_for(model, out):
    path = fwd.MODELS / f"{model}.gguf"
    if not path.exists():
        sys.exit(f"{path} is missing: run scripts/fetch-models.sh first")
    llm = fwd.open_model(path)
    vocab = L.llama_model_get_vocab(llm.model)
    n_embd = L.llama_model_n_embd(llm.model)
    n_layer = L.llama_model_n_layer(llm.model)
    arch = llm.metadata.get("general.architecture", "")
    print(f"{model}: n_embd {n_embd}, n_layer {n_layer}, arch {arch}", file=sys.stderr)
    verify_semantics(llm, n_embd, n_layer, np.random.default_rng(0))
    files, norms = make_vectors(model, llm, out, n_embd, n_layer, arch)

    held_out = []
    for name, text in fwd.load_jsonl(TEXTS)[:N_HELD_OUT]:
        ids = fwd.tokenize(llm, text)
        assert len(ids) >= HELD_OUT_TOKENS, name
        held_out.append((name, ids[:HELD_OUT_TOKENS]))

    full = (1, n_layer - 1)
    ps, pe = PARTIAL[model]
    cases = [
        ("random+0.05", [("random", 0.05)], full),  # mild: the others change the output a lot
        ("meandiff+0.5", [("meandiff", 0.5)], full),
        ("random+0.5", [("random", 0.5)], full),
        ("random-2", [("random", -2.0)], full),
        ("random+2", [("random", 2.0)], full),
        ("meandiff+2", [("meandiff", 2.0)], full),
        ("meandiff-2-partial", [("meandiff", -2.0)], (ps, pe)),
        ("random+1,random2-0.5", [("random", 1.0), ("random2", -0.5)], full),
        ("tiller-written", [("tiller", 1.0)], full),  # 0.1 meandiff + 0.02 random, written by Tiller: mild
    ]
    trained = out / f"{model}-trained.gguf"
    if trained.exists():
        files["trained"] = trained
        cases += [("trained+0.15", [("trained", 0.15)], full), ("trained-0.3", [("trained", -0.3)], full)]
    ctx = llm._ctx.ctx
    base = {name: fwd.evaluate(llm, ids) for name, ids in held_out}
    case_out = []
    for label, spec, (il_start, il_end) in cases:
        buf = load_cvec([(files[f], s) for f, s in spec], n_embd)
        set_cvec(ctx, n_embd, buf, il_start, il_end)
        entries, kls, agree, npos = [], [], 0, 0
        for name, ids in held_out:
            logits = fwd.evaluate(llm, ids)
            entries.append({"name": name, **fwd.top_entry(logits)})
            kls.extend(fwd.kl_per_row(base[name], logits).tolist())
            agree += int((logits.argmax(1) == base[name].argmax(1)).sum())
            npos += len(ids)
        set_cvec(ctx, n_embd, None, -1, -1)
        kl_mean = float(np.mean(kls))
        print(f"  case {label:22s} layers {il_start}..{il_end}: mean KL(unsteered||steered) "
              f"{kl_mean:.4f}, max {max(kls):.3f}, top-1 same as unsteered {agree}/{npos}",
              file=sys.stderr)
        case_out.append({
            "name": label,
            "files": [{"file": files[f].name, "scale": s} for f, s in spec],
            "layer_start": il_start, "layer_end": il_end,
            "kl_vs_unsteered_mean": kl_mean,
            "texts": entries,
        })
    # clearing restores the unsteered logits bit for bit
    name, ids = held_out[0]
    assert np.array_equal(fwd.evaluate(llm, ids), base[name]), "clearing the cvec left a trace"

    header = fwd.header_for(model, path, llm, vocab, {
        "load": fwd.API_MAIN["load"], "tokenize": fwd.API_MAIN["tokenize"],
        "evaluate": fwd.API_MAIN["evaluate"],
        "control_vector": "buf = float32 [max N over the files, n_embd], row N-1 = sum over the "
                          "case's files of scale x direction.N (read with gguf.GGUFReader), as "
                          "llama.cpp's common llama_control_vector_load builds it; then "
                          "llama_set_adapter_cvec(ctx, buf, buf.size, n_embd, layer_start, "
                          "layer_end) on the Llama object's context before llm.reset(); "
                          "llm.eval(ids); cleared after each case with data=NULL",
    })
    header.update({
        "generator": "scripts/make-steering-goldens.py",
        "n_embd": n_embd, "n_layer": n_layer,
        "texts_file": "tests/data/forward/texts.jsonl", "texts_sha256": sha256_file(TEXTS),
        "top_k": fwd.TOP_K,
        "binary": {"top_ids": "<i4", "top_logits": "<f4", "lse": "<f8"},
        "vector_files": {f: {"file": p.name, "sha256": sha256_file(p)} for f, p in files.items()},
        "notes": {
            "semantics": "llama.cpp adds row N-1 of the buffer (direction.N summed over files "
                         "with their scales) to l_out-N, the output of block N (0-based), at "
                         "every position, for layer_start <= N <= layer_end (inclusive); "
                         "block 0 is never steered. layer_start/layer_end are the values "
                         "--control-vector-layer-range START END gives; without that flag "
                         "llama.cpp uses 1 and n_layer - 1 (the 'full' range here). Checked "
                         "in this script with an eval callback",
            "vectors": f"random/random2: per block N in 1..n_layer-1 a Gaussian direction "
                       f"(numpy default_rng seed 1 / 2) scaled to {RANDOM_NORM_FRACTION} x the "
                       f"median over positions 1.. of |l_out-N| for the text {NORM_TEXT!r}; "
                       f"meandiff: per block N, mean over the pairs of l_out-N at the last "
                       f"token of the positive minus the negative prompt (tokenized like the "
                       f"texts); pairs: {PAIRS}; tiller: written by `tiller vector combine "
                       f"meandiff:0.1 random:0.02` (Tiller's own control-vector writer)",
            "trained": "<model>-trained.gguf was written by Tiller: tiller vector train -m MODEL --chat "
                       "--template 'Act as if you are extremely {persona}.' --personas happy,sad "
                       "--suffixes tests/data/train/suffixes.txt --max-pairs 60 -t 2 (and --chat-template gemma "
                       "for gemma-3-270m, which carries no template; method mean, "
                       "scale projection, read last, blocks 1..n_layer-1 at hook_resid_post)",
            "texts": f"The first {N_HELD_OUT} texts of tests/data/forward/texts.jsonl, each cut "
                     f"to its first {HELD_OUT_TOKENS} tokens (BOS included where the vocabulary "
                     f"adds it; the ids are given, evaluate exactly them); per case and text: "
                     "top_ids int32 [n_tokens, top_k], top_logits float32 [n_tokens, top_k] "
                     "(per position, logit descending, equal logits by id ascending), lse "
                     "float64 [n_tokens] (log-sum-exp of the full float32 row, in float64); "
                     "base64 of little-endian raw values, row-major, as in the forward goldens",
            "kl_vs_unsteered_mean": "mean over positions of KL(unsteered || steered) of "
                                    "llama.cpp's own distributions: how much the case steers",
        },
    })
    return {"header": header,
            "texts": [{"name": n, "n_tokens": len(ids), "ids": ids} for n, ids in held_out],
            "cases": case_out}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DATA)
    ap.add_argument("--models", default=",".join(MODEL_NAMES))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for model in [m for m in args.models.split(",") if m]:
        start = time.perf_counter()
        payload = goldens_for(model, args.out)
        target = args.out / f"{model}-cvec.json"
        target.write_text(json.dumps(payload, separators=(",", ":")) + "\n")
        print(f"{model}: {time.perf_counter() - start:.1f} s", file=sys.stderr)
        for p in sorted(args.out.glob(f"{model}*")):
            print(f"  {p.name}: {p.stat().st_size} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
