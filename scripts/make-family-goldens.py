#!/usr/bin/env python3
"""Writes the goldens of the random-weight family models (scripts/make-family-models.py), with
llama.cpp as the oracle (through llama-cpp-python, pinned in scripts/oracle-env.sh), for
tests/test_family_golden.cpp.

For each model <models>/random/<family>-<type>.gguf it writes tests/data/families/<family>-<type>.json:
  header          as the forward goldens' (tests/data/forward/<model>.json), with the model's sha256
  texts           the first N_TEXTS texts of tests/data/forward/texts.jsonl, each cut to its first
                  MAX_TOKENS tokens: ids, per position the top 64 (id, logit) pairs and the row's
                  log-sum-exp (the forward goldens' entry format, scripts/make-forward-goldens.py)
  self_agreement  llama.cpp with an F32 KV cache against these (F16 KV cache) entries, per text:
                  positions, kl_sum, top1, computed as the forward goldens' self-agreement files
                  are (and as the test measures Tiller)
  hidden          l_out-<L> (the residual stream after block L) of every block for one short text,
                  caught with the eval callback as in <model>-hidden.json (float32, base64)
  steering        the family's random control vector tests/data/families/<family>-cvec.gguf applied
                  through llama_set_adapter_cvec (scale 1, blocks 1..n_layer-1): per text of
                  STEER_TEXTS (their first STEER_TOKENS tokens) the top 64 logits and log-sum-exp;
                  and its own self-agreement (F32 KV cache, same vector)
  stats           what makes the model look trained: mean entropy and top-1 probability of the
                  next-token distributions, median |l_out| per block
The control vector of a family (written once from its F32 model, kept when present so that
every type of a family shares it) holds, for blocks 1..n_layer-1, random directions of norm
VECTOR_NORM_FRACTION x the median norm of that block's l_out, as make-steering-goldens.py makes
its random vectors.
Run it with the oracle's python (scripts/make-goldens.sh does), after scripts/make-test-models.sh.

  --models M,..   only these (e.g. llama-F32,gemma3-Q4_K); default every model of the manifest
  --out DIR       write into DIR instead of tests/data/families
  --new-vectors   write the control vectors again even if present
"""
import argparse
import base64
import json
import sys
import time
from pathlib import Path

import numpy as np

from golden_support import load_script, quiet_llama_cpp, sha256_file

L = quiet_llama_cpp()

HERE = Path(__file__).resolve().parent


fwd = load_script("make_forward_goldens", "make-forward-goldens.py")
steer = load_script("make_steering_goldens", "make-steering-goldens.py")
models_script = load_script("make_family_models", "make-family-models.py")

REPO = HERE.parent
DATA = REPO / "tests" / "data" / "families"
RANDOM = fwd.MODELS / "random"
N_TEXTS = 4
MAX_TOKENS = 200
STEER_TEXTS = 4
STEER_TOKENS = 192
VECTOR_SEED = 11
# Milder than make-steering-goldens.py's 0.5: these models' streams are random, and at 0.5 the
# vector swamps them (KL from the unsteered distribution of 5 nats, the top 64 no longer covering
# the mass the KL is measured on).
VECTOR_NORM_FRACTION = 0.1
HIDDEN_TEXT = fwd.HIDDEN_TEXT

NOTES = {
    "texts": "As in tests/data/forward/<model>.json (header.notes there): per text ids, top_ids "
             "int32 [n, top_k], top_logits float32 [n, top_k], lse float64 [n], base64 little-endian; "
             f"the first {N_TEXTS} texts of texts.jsonl, each its first {MAX_TOKENS} tokens",
    "self_agreement": "llama.cpp again with type_k = type_v = F32 (every other parameter as "
                      "header.context), against these entries: per text positions, kl_sum (sum over "
                      "positions of KL(golden || F32 run) over the golden's top_k tokens, log p = "
                      "top_logit - lse, log q = logit - log-sum-exp of the F32 row, float64) and top1 "
                      "(positions where the F32 run's argmax is the golden's first top_id)",
    "hidden": "One llama_decode of ids on a second context with the scheduler's eval callback "
              "(make-forward-goldens.py's hidden_states): l_out-<L> for every block L, ne = "
              "[n_embd, n_tokens], data = base64 float32 [n_tokens, n_embd] row-major",
    "steering": "buf = float32 [n_layer - 1, n_embd], row N-1 = direction.N of the vector file "
                "(gguf.GGUFReader) x scale; llama_set_adapter_cvec(ctx, buf, buf.size, n_embd, "
                "layer_start, layer_end) before llm.reset(); llm.eval(ids): llama.cpp adds row N-1 "
                "to l_out-N at every position. Texts: the first STEER_TEXTS texts' first tokens; "
                "entries as in texts; self_agreement as above, the F32-KV run steered alike; "
                "kl_vs_unsteered_mean: mean KL(unsteered || steered) of llama.cpp's own rows",
    "stats": "entropy and top1_prob: means over every position of the texts of llama.cpp's "
             "next-token distribution (ln 49152 = 10.8 is uniform); l_out_median_norm: per block the "
             "median over the hidden text's positions of |l_out-L|",
}


def texts():
    return fwd.load_jsonl(fwd.TEXTS)


def entries_for(llm, rows, max_tokens):
    return [fwd.text_entry(llm, name, text, max_tokens)[0] for name, text in rows]


def self_agreement(other, entries, k):
    rows = [{"name": e["name"], **fwd.agreement_with_entry(fwd.evaluate(other, e["ids"]), e, k)} for e in entries]
    n = sum(r["positions"] for r in rows)
    summary = {"positions": n, "mean_kl": sum(r["kl_sum"] for r in rows) / n,
               "top1": sum(r["top1"] for r in rows) / n}
    return {"texts": rows, "summary": summary}


def distribution_stats(llm, entries):
    entropy, top1 = [], []
    for e in entries:
        logits = fwd.evaluate(llm, e["ids"])
        lp = logits.astype(np.float64) - fwd.log_sum_exp(logits)[:, None]
        p = np.exp(lp)
        entropy.extend((-(p * lp).sum(axis=1)).tolist())
        top1.extend(p.max(axis=1).tolist())
    return float(np.mean(entropy)), float(np.mean(top1))


def vector_for(family, out, n_embd, n_layer, new):
    path = out / f"{family}-cvec.gguf"
    if new or not path.exists():
        norms = steer.stream_norms(fwd.open_model(RANDOM / f"{family}-F32.gguf"), n_layer)
        steer.write_vector(path, family, steer.random_directions(norms, n_embd, VECTOR_SEED, VECTOR_NORM_FRACTION))
        print(f"  wrote {path.name}: random directions, {VECTOR_NORM_FRACTION} x the median "
              f"|l_out| per block", file=sys.stderr)
    return path


def steering(llm, other, path, entries, n_embd, n_layer, k):
    buf = steer.load_cvec([(path, 1.0)], n_embd)
    assert buf.shape[0] == n_layer - 1
    held_out = [e["ids"][:STEER_TOKENS] for e in entries[:STEER_TEXTS]]
    base = [fwd.evaluate(llm, ids) for ids in held_out]
    for ctx_llm in (llm, other):
        steer.set_cvec(ctx_llm._ctx.ctx, n_embd, buf, 1, n_layer - 1)
    try:
        steered, kls = [], []
        for e, ids, unsteered in zip(entries, held_out, base):
            logits = fwd.evaluate(llm, ids)
            steered.append({"name": e["name"], "ids": ids, **fwd.top_entry(logits)})
            kls.extend(fwd.kl_per_row(unsteered, logits).tolist())
        agreement = self_agreement(other, steered, k)
    finally:
        for ctx_llm in (llm, other):
            steer.set_cvec(ctx_llm._ctx.ctx, n_embd, None, -1, -1)
    assert np.array_equal(fwd.evaluate(llm, held_out[0]), base[0]), "clearing the cvec left a trace"
    return {"file": path.name, "scale": 1.0, "layer_start": 1, "layer_end": n_layer - 1,
            "kl_vs_unsteered_mean": float(np.mean(kls)), "texts": steered, "self_agreement": agreement}


def golden_for(name, out, new_vectors):
    family = name.rsplit("-", 1)[0]
    path = RANDOM / f"{name}.gguf"
    if not path.exists():
        sys.exit(f"{path} is missing: run scripts/make-test-models.sh first")
    start = time.perf_counter()
    llm = fwd.open_model(path)
    other = fwd.open_model(path, type_k=L.GGML_TYPE_F32, type_v=L.GGML_TYPE_F32)
    vocab = L.llama_model_get_vocab(llm.model)
    n_embd, n_layer = L.llama_model_n_embd(llm.model), L.llama_model_n_layer(llm.model)
    k = fwd.TOP_K

    entries = entries_for(llm, texts()[:N_TEXTS], MAX_TOKENS)
    agreement = self_agreement(other, entries, k)
    ids, tensors, _, same = fwd.hidden_states(llm, HIDDEN_TEXT)
    hidden = [t for t in tensors if t["name"].startswith("l_out-")]
    assert [t["name"] for t in hidden] == [f"l_out-{i}" for i in range(n_layer)], [t["name"] for t in hidden]
    norms = [float(np.median(np.linalg.norm(np.frombuffer(base64.b64decode(t["data"]), "<f4")
                                            .reshape(t["ne"][1], t["ne"][0]).astype(np.float64), axis=1)))
             for t in hidden]
    entropy, top1_prob = distribution_stats(llm, entries)
    vector = vector_for(family, out, n_embd, n_layer, new_vectors)
    steered = steering(llm, other, vector, entries, n_embd, n_layer, k)

    header = fwd.header_for(name, path, llm, vocab, {
        "load": fwd.API_MAIN["load"], "tokenize": fwd.API_MAIN["tokenize"] + f"; then ids[:{MAX_TOKENS}]",
        "evaluate": fwd.API_MAIN["evaluate"]})
    header.update({"generator": "scripts/make-family-goldens.py", "family": family,
                   "weight_type": name.rsplit("-", 1)[1], "model_file": f"random/{name}.gguf",
                   "n_embd": n_embd, "n_layer": n_layer, "top_k": k,
                   "texts_file": "tests/data/forward/texts.jsonl", "texts_sha256": sha256_file(fwd.TEXTS),
                   "models_manifest_sha256": sha256_file(models_script.MANIFEST),
                   "binary": {"top_ids": "<i4", "top_logits": "<f4", "lse": "<f8", "data": "<f4"},
                   "notes": NOTES})
    payload = {
        "header": header,
        "texts": [{key: e[key] for key in ("name", "n_tokens", "ids", "top_ids", "top_logits", "lse")} for e in entries],
        "self_agreement": agreement,
        "hidden": {"text": HIDDEN_TEXT, "ids": ids, "logits_match_main": same, "tensors": hidden},
        "steering": steered,
        "stats": {"entropy": entropy, "top1_prob": top1_prob, "l_out_median_norm": norms},
    }
    s, st = agreement["summary"], steered["self_agreement"]["summary"]
    print(f"{name}: {s['positions']} positions; entropy {entropy:.2f} nats, top-1 p {top1_prob:.3f}; "
          f"|l_out| {' '.join(f'{x:.1f}' for x in norms)}; llama.cpp F16 vs F32 KV: mean KL {s['mean_kl']:.2e}, "
          f"top-1 {100 * s['top1']:.2f}%; steered: KL vs unsteered {steered['kl_vs_unsteered_mean']:.3f}, "
          f"self KL {st['mean_kl']:.2e}, top-1 {100 * st['top1']:.2f}%; {time.perf_counter() - start:.1f} s",
          file=sys.stderr)
    return payload


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DATA)
    ap.add_argument("--models", default=",".join(models_script.model_names()))
    ap.add_argument("--new-vectors", action="store_true")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    manifest = models_script.read_manifest()
    renewed = set()
    for name in [m for m in args.models.split(",") if m]:
        digest = sha256_file(RANDOM / f"{name}.gguf")
        if manifest.get(name) != digest:
            sys.exit(f"{name}.gguf is not the manifest's (scripts/family-models.tsv): run scripts/make-test-models.sh")
        family = name.rsplit("-", 1)[0]
        payload = golden_for(name, args.out, args.new_vectors and family not in renewed)
        renewed.add(family)
        target = args.out / f"{name}.json"
        target.write_text(json.dumps(payload, separators=(",", ":")) + "\n")
        print(f"  wrote {target} ({target.stat().st_size} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
