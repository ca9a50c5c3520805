#!/usr/bin/env python3
"""`tiller sweep` against one `tiller logits` per cell per text, on an ActAdd
likelihood sweep (issue 17's benchmark: 8 blocks x 8 coefficients over 16 texts,
target >= 5x).

The old way is what scripts/actadd-sweep.py (which tiller sweep replaced) did: for every text, one unsteered
`tiller logits --npy` run, and for every (block, coefficient) and text one steered
run with `--actadd POS NEG --actadd-layer L --actadd-coef C --actadd-align context`;
each run's logits are read back with NumPy and the mean log-probability per token of
the text's own next tokens computed (log-softmax at the token that follows). The new
way is one `tiller sweep` with the same texts (half on-topic, half off-topic), grid
and threads. Both sides produce the same figure per cell (the mean log-probability
change on the on-topic texts), which is checked to agree (1e-3 nats: the two pack
rows differently, so the last bits of a logit may differ on tiled kernels).

Run through bench/sweep-vs-logits (a release build, the model fetched). Use a small
grid (--blocks 2 --coefs 2 --texts 2) for a smoke run.
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
TILLER = REPO / "build" / "tiller"

ON_TOPIC = [
    "The wedding was held in June, and the bride wore her grandmother's lace dress.",
    "Guests threw rice as the newlyweds walked out of the little stone chapel.",
    "They planned the reception for two hundred guests and a band that played until midnight.",
    "The best man lost the rings an hour before the ceremony and found them in his shoe.",
    "Her sister caught the bouquet and blushed while everyone at the wedding cheered.",
    "The groom practised his vows for weeks but forgot them at the altar.",
    "A wedding cake of five tiers stood in the middle of the hall, covered in roses.",
    "The couple sent invitations to every cousin they had, even the ones they had never met.",
]
OFF_TOPIC = [
    "The stock market fell sharply on Tuesday after the bank raised interest rates.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
    "The train to the coast leaves every hour from the second platform.",
    "He repaired the bicycle chain with a small tool he kept in his backpack.",
    "Volcanic ash can stay in the upper atmosphere for months after an eruption.",
    "The library extended its opening hours during the exam period.",
    "A good compiler turns loops over arrays into vector instructions.",
    "The farmer moved the sheep to the higher pasture before the storm.",
]


def run(args, **kw):
    result = subprocess.run([str(TILLER), *args], capture_output=True, text=True, **kw)
    if result.returncode != 0:
        sys.exit(f"tiller {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def mean_logprob(npy: Path, ids) -> tuple:
    logits = np.load(npy).astype(np.float64)
    top = logits.max(axis=1, keepdims=True)
    log_probs = logits - top - np.log(np.exp(logits - top).sum(axis=1, keepdims=True))
    picked = log_probs[np.arange(len(ids) - 1), np.asarray(ids[1:])]
    return float(picked.sum()), len(ids) - 1


def old_way(model, texts, blocks, coefs, pair, threads, tmp: Path) -> dict:
    files = []
    for i, text in enumerate(texts):
        path = tmp / f"text{i}.txt"
        path.write_text(text)
        files.append(path)
    npy = tmp / "logits.npy"
    unsteered = []
    for path in files:
        out = run(["logits", "-m", model, "-f", str(path), "--top", "1", "--json", "--npy", str(npy), "-t", str(threads)])
        ids = json.loads(out.stdout)["ids"]
        unsteered.append((ids, mean_logprob(npy, ids)))
    deltas = {}
    for block in blocks:
        for coef in coefs:
            steered_sum = unsteered_sum = tokens = 0.0
            for i, path in enumerate(files):
                run(["logits", "-m", model, "-f", str(path), "--top", "1", "--npy", str(npy), "-t", str(threads),
                     "--actadd", pair[0], pair[1], "--actadd-layer", str(block), "--actadd-coef", str(coef),
                     "--actadd-align", "context"])
                ids, (u, n) = unsteered[i]
                s, _ = mean_logprob(npy, ids)
                if i < len(texts) // 2:  # the on-topic half
                    steered_sum += s
                    unsteered_sum += u
                    tokens += n
            deltas[(block, coef)] = (steered_sum - unsteered_sum) / tokens
    return deltas


def new_way(model, texts, blocks, coefs, pair, threads, tmp: Path) -> dict:
    half = len(texts) // 2
    spec = {
        "likelihood": {"on_topic": texts[:half], "off_topic": texts[half:]},
        "sweep": {"actadd": {"positive": pair[0], "negative": pair[1], "blocks": blocks, "coefs": coefs,
                             "align": "context"}},
    }
    spec_path = tmp / "sweep.json"
    spec_path.write_text(json.dumps(spec))
    out = run(["sweep", str(spec_path), "-m", model, "-t", str(threads), "--out", str(tmp / "sweep-out"), "--json"])
    result = json.loads(out.stdout)
    deltas = {}
    for cell in result["cells"]:
        # Both halves together: token-weighted, as the old way sums every on-topic text.
        a, b = cell["halves"][0]["on_topic"], cell["halves"][1]["on_topic"]
        delta = (a["delta"] * a["tokens"] + b["delta"] * b["tokens"]) / (a["tokens"] + b["tokens"])
        deltas[(blocks[cell["row"]], coefs[cell["column"]])] = delta
    return deltas


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-m", "--model", default="smollm2-135m-instruct")
    parser.add_argument("-t", "--threads", type=int, default=2)
    parser.add_argument("--blocks", type=int, default=8, help="how many blocks (spread over the model's)")
    parser.add_argument("--coefs", type=int, default=8, help="how many coefficients (1, 2, 3, 4, 6, 8, 12, 16)")
    parser.add_argument("--texts", type=int, default=16, help="how many texts, half on-topic (at most 16)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    per_side = max(1, min(8, args.texts // 2))
    texts = ON_TOPIC[:per_side] + OFF_TOPIC[:per_side]
    blocks = [1 + 2 * i for i in range(args.blocks)]  # 1, 3, ..., 15: within SmolLM2's and Gemma 3's blocks
    coefs = [1, 2, 3, 4, 6, 8, 12, 16][: args.coefs]
    pair = (" weddings", "")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        start = time.perf_counter()
        new = new_way(args.model, texts, blocks, coefs, pair, args.threads, tmp)
        new_seconds = time.perf_counter() - start
        start = time.perf_counter()
        old = old_way(args.model, texts, blocks, coefs, pair, args.threads, tmp)
        old_seconds = time.perf_counter() - start
    worst = max(abs(old[k] - new[k]) for k in old)
    figures = {"blocks": len(blocks), "coefs": len(coefs), "texts": len(texts), "threads": args.threads,
               "sweep_s": round(new_seconds, 3), "logits_per_cell_s": round(old_seconds, 3),
               "ratio": round(old_seconds / new_seconds, 2), "worst_delta_difference": worst}
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"{len(blocks)} blocks x {len(coefs)} coefficients over {len(texts)} texts, {args.threads} threads")
        print(f"  tiller sweep:                {new_seconds:8.2f} s")
        print(f"  tiller logits per cell/text: {old_seconds:8.2f} s")
        print(f"  ratio: {old_seconds / new_seconds:.1f}x (target >= 5x); figures agree within {worst:.2e} nats")
    if worst > 1e-3:
        print(f"sweep-vs-logits: the two ways disagree by {worst} nats per token", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
