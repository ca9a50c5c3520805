#!/usr/bin/env python3
"""Writes the golden `tiller vector train` is compared against: the directions NumPy computes
from the activations `tiller dump` writes, one prompt at a time.

For each model and each prompt of tests/data/train/pairs.jsonl ({"positive", "negative"} per
line) it runs
  TILLER_KERNELS=avx2 tiller dump -m MODEL -f PROMPT_FILE --hook blocks.*.hook_resid_post -o DIR -t 2
(the prompt tokenized as a plain prompt, BOS where the model adds one: as `vector train`
tokenizes without --chat), reads each block's [n_tokens, n_embd] float32 array, and takes the
row of the read token: the last one, the mean of all rows, or row K. Then per block L >= 1, in
float64, with d_i = pos_i - neg_i (n pairs):
  mean        v = mean_i d_i
  pca-diff    the first right singular vector of the rows d_i - mean(d) (PCA of the differences,
              centred, as sklearn's PCA in repeng's pca_diff)
  pca-center  the first right singular vector of the 2n rows +d_i/2, -d_i/2 (each pair centred
              on its midpoint, as repeng's pca_center)
the sign chosen so that mean_i (d_i . u) > 0 for the unit direction u, and the direction
written as u x mean_i (d_i . u) ("--scale projection"). The SVD route is independent of
Tiller's (an eigensolver on summed outer products).

It also writes a probe: the first positive prompt's last resid_post row at every block. The
test dumps that prompt with the build under test: where the rows are the same bits, the build
rounds as the one that made the golden and the comparison applies; where they are not (another
optimization level, the sanitizers, new kernels), the test says by how much and skips it.

Writes tests/data/train/<model>-numpy.json: per case (method, read) the blocks and the
directions, float32 [n_blocks, n_embd], base64 of little-endian raw values, row-major.
Needs only NumPy and a built tiller (default build/tiller); scripts/make-goldens.sh runs it with
the oracle environment's python (scripts/oracle-env.sh), which has NumPy.

  --tiller PATH  the tiller binary
  --models M,..  only these models
"""
import argparse
import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data" / "train"
PAIRS = DATA / "pairs.jsonl"
MODELS = ("smollm2-135m-instruct", "gemma-3-270m")
# The products' kernel level (TILLER_KERNELS): one kernel for any number of rows, so
# that a prompt dumped alone and the same prompt packed by `vector train` give the
# same bits; the test runs `vector train` at this level too.
KERNELS = "avx2"
CASES = [("mean", "last"), ("pca-diff", "last"), ("pca-center", "last"), ("pca-diff", "mean"),
         ("mean", "index:2")]


def cpu_has_avx512f():
    """Whether this CPU has AVX-512F. Recorded for goldens made at a level above avx2
    (where the kind of CPU matters); at avx2 and below TILLER_KERNELS pins every SIMD
    choice (level_pins_all_kernels), so the same bits come on any CPU that runs it."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return "avx512f" in line.split()
    return False


def sha256_file(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def dump(tiller, model, text, work):
    """{block: float32 [n_tokens, n_embd]} of resid_post for one prompt."""
    prompt = work / "prompt.txt"
    prompt.write_text(text)
    out = work / "dump"
    subprocess.run([tiller, "dump", "-m", model, "-f", str(prompt), "--hook", "blocks.*.hook_resid_post",
                    "-o", str(out), "-t", "2"], check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "TILLER_KERNELS": KERNELS})
    blocks = {}
    for f in out.glob("blocks.*.hook_resid_post.npy"):
        blocks[int(f.name.split(".")[1])] = np.load(f)
    return blocks


def read_row(rows, read):
    if read == "last":
        return rows[-1]
    if read == "mean":
        return rows.astype(np.float64).mean(axis=0)
    k = int(read.split(":")[1])
    return rows[k]


def direction(d, method):
    if method == "mean":
        v = d.mean(axis=0)
    elif method == "pca-diff":
        v = np.linalg.svd(d - d.mean(axis=0), full_matrices=False)[2][0]
    else:
        x = np.vstack([d / 2, -d / 2])
        v = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)[2][0]
    u = v / np.linalg.norm(v)
    gap = float((d @ u).mean())
    if gap < 0:
        u, gap = -u, -gap
    return u * gap


def golden_for(tiller, model):
    pairs = [json.loads(line) for line in PAIRS.read_text().splitlines()]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        dumps = [(dump(tiller, model, p["positive"], work), dump(tiller, model, p["negative"], work))
                 for p in pairs]
    n_layer = len(dumps[0][0])
    blocks = list(range(1, n_layer))
    cases = []
    for method, read in CASES:
        rows = []
        for b in blocks:
            d = np.stack([read_row(pos[b], read).astype(np.float64) - read_row(neg[b], read).astype(np.float64)
                          for pos, neg in dumps])
            rows.append(direction(d, method))
        directions = np.asarray(rows, dtype="<f4")
        cases.append({"method": method, "read": read, "scale": "projection", "blocks": blocks,
                      "directions": base64.b64encode(directions.tobytes()).decode("ascii")})
        print(f"  {model} {method} read {read}: norms "
              + " ".join(f"{b}:{np.linalg.norm(r):.2f}" for b, r in zip(blocks, rows) if b % 5 == 0),
              file=sys.stderr)
    first = dumps[0][0]
    probe = np.asarray([first[b][-1] for b in blocks], dtype="<f4")
    return {"header": {"generator": "scripts/make-train-goldens.py", "model": model,
                       "pairs_file": "tests/data/train/pairs.jsonl", "pairs_sha256": sha256_file(PAIRS),
                       "n_pairs": len(pairs), "n_embd": int(dumps[0][0][1].shape[1]),
                       "hook_point": "hook_resid_post", "kernels": KERNELS, "avx512f": cpu_has_avx512f(),
                       "level_pins_all_kernels": True,
                       "activations": "tiller dump, one prompt per process, plain prompt (no --chat)",
                       "binary": {"directions": "<f4 [n_blocks, n_embd]"}},
            "probe": {"prompt": pairs[0]["positive"], "blocks": blocks, "read": "last",
                      "rows": base64.b64encode(probe.tobytes()).decode("ascii")},
            "cases": cases}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiller", default=str(REPO / "build" / "tiller"))
    ap.add_argument("--models", default=",".join(MODELS))
    args = ap.parse_args()
    for model in [m for m in args.models.split(",") if m]:
        payload = golden_for(args.tiller, model)
        target = DATA / f"{model}-numpy.json"
        target.write_text(json.dumps(payload, separators=(",", ":")) + "\n")
        print(f"{target}: {target.stat().st_size} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
