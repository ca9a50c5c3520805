#!/usr/bin/env python3
"""The reference `tiller vector train` is compared against (TrainNumpyReference in
tests/test_train.cpp runs this at test time, on the machine under test): the directions NumPy
computes, in float64, from the activations `tiller dump` writes, one prompt at a time.

For each prompt of PAIRS ({"positive", "negative"} per line) it runs
  tiller dump -m MODEL -f PROMPT_FILE --hook blocks.*.hook_resid_post -o DIR -t 2
with the environment it was given (the test sets TILLER_KERNELS=avx2: one product kernel for
any number of rows, so that a prompt dumped alone and the same prompt packed with others by
`vector train` give the same bits), reads each block's [n_tokens, n_embd] float32 array, and
takes the row of the read token: the last one, the mean of all rows, or row K. Then per block
L >= 1, in float64, with d_i = pos_i - neg_i (n pairs):
  mean        v = mean_i d_i
  pca-diff    the first right singular vector of the rows d_i - mean(d) (PCA of the differences,
              centred, as sklearn's PCA in repeng's pca_diff)
  pca-center  the first right singular vector of the 2n rows +d_i/2, -d_i/2 (each pair centred
              on its midpoint, as repeng's pca_center)
the sign chosen so that mean_i (d_i . u) > 0 for the unit direction u, and the direction
written as u x mean_i (d_i . u) ("--scale projection"). The SVD route is independent of
Tiller's (a Lanczos eigensolver on summed outer products).

For the PCA methods it also records, per block, the relative eigengap (s1^2 - s2^2) / s1^2 of
the first two singular values, which bounds how far a small error can turn the direction, and
the sign margin |mean_i (d_i . u)| / (mean_i |d_i|), which says how far it is from flipping.

Writes one JSON object to OUT: {"n_embd", "n_pairs", "cases": [{"method", "read", "blocks",
"directions": [[float, ...] per block] (float64), "eigengap": [...], "sign_margin": [...]}]}.
Needs only Python 3 and NumPy (Debian: python3-numpy, installed by scripts/setup.sh).

  --tiller PATH  the tiller binary (required)
  --model PATH   the model file (required)
  --pairs PATH   the pairs file (default tests/data/train/pairs.jsonl)
  --out PATH     where to write the JSON (required)
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CASES = [("mean", "last"), ("pca-diff", "last"), ("pca-center", "last"), ("pca-diff", "mean"),
         ("mean", "index:2")]


def dump(tiller, model, text, work):
    """{block: float32 [n_tokens, n_embd]} of resid_post for one prompt."""
    prompt = work / "prompt.txt"
    prompt.write_text(text)
    out = work / "dump"
    subprocess.run([tiller, "dump", "-m", model, "-f", str(prompt), "--hook", "blocks.*.hook_resid_post",
                    "-o", str(out), "-t", "2"], check=True, stdout=subprocess.DEVNULL)
    blocks = {}
    for f in out.glob("blocks.*.hook_resid_post.npy"):
        blocks[int(f.name.split(".")[1])] = np.load(f)
    return blocks


def read_row(rows, read):
    if read == "last":
        return rows[-1].astype(np.float64)
    if read == "mean":
        return rows.astype(np.float64).mean(axis=0)
    return rows[int(read.split(":")[1])].astype(np.float64)


def direction(d, method):
    """(direction, relative eigengap or None, sign margin)."""
    gap_ratio = None
    if method == "mean":
        v = d.mean(axis=0)
    else:
        x = d - d.mean(axis=0) if method == "pca-diff" else np.vstack([d / 2, -d / 2])
        if method == "pca-center":
            x = x - x.mean(axis=0)
        _, s, vt = np.linalg.svd(x, full_matrices=False)
        v = vt[0]
        gap_ratio = float((s[0] ** 2 - s[1] ** 2) / s[0] ** 2)
    u = v / np.linalg.norm(v)
    projection = float((d @ u).mean())
    if projection < 0:
        u, projection = -u, -projection
    margin = projection / float(np.linalg.norm(d, axis=1).mean())
    return u * projection, gap_ratio, margin


def reference(tiller, model, pairs_file):
    pairs = [json.loads(line) for line in Path(pairs_file).read_text().splitlines() if line]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        dumps = [(dump(tiller, model, p["positive"], work), dump(tiller, model, p["negative"], work))
                 for p in pairs]
    blocks = sorted(dumps[0][0])[1:]
    cases = []
    for method, read in CASES:
        rows, gaps, margins = [], [], []
        for b in blocks:
            d = np.stack([read_row(pos[b], read) - read_row(neg[b], read) for pos, neg in dumps])
            v, gap, margin = direction(d, method)
            rows.append(v.tolist())
            gaps.append(gap)
            margins.append(margin)
        cases.append({"method": method, "read": read, "blocks": blocks, "directions": rows,
                      "eigengap": gaps, "sign_margin": margins})
    return {"n_embd": int(dumps[0][0][blocks[0]].shape[1]), "n_pairs": len(pairs), "cases": cases}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiller", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--pairs", default=str(REPO / "tests" / "data" / "train" / "pairs.jsonl"))
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    result = reference(args.tiller, args.model, args.pairs)
    Path(args.out).write_text(json.dumps(result) + "\n")
    print(f"numpy-train-reference: {len(result['cases'])} cases, NumPy {np.__version__}", file=sys.stderr)


if __name__ == "__main__":
    main()
