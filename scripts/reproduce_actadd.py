#!/usr/bin/env python3
"""The ActAdd paper's topic and sentiment measures, reproduced with `tiller sweep`.

    scripts/reproduce-actadd.sh [--models gemma-3-270m,smollm2-135m-instruct] [-t 2]
                                [--out build/reproduce-actadd] [--figures docs/evaluation]

For each model and each steering pair below, two sweeps over the texts in eval/texts/
(written for this project and used for nothing else, so held out from any tuning):

  likelihood  five blocks (from early to late) x coefficients 1, 4, 16: the perplexity ratio
              (steered / unsteered) on the on-topic texts and on the off-topic texts,
              and the KL damage on neutral text (paper: Figures 6-7, Table 6);
  sampled     three blocks (early, middle, late) x coefficients 1, 4, 16: topic words
              per 100 words in completions of eval/texts/prompts.txt, the same seeds
              steered and unsteered, with the fluency of the steered completions
              (paper: Figure 5, the wedding-word frequency against coefficient).

The pairs are the paper's: " weddings" - "" and its longer "I talk about weddings
constantly" - "I do not talk about weddings constantly", and "Love" - "Hate" for
sentiment (on-topic: positive texts, off-topic: negative texts). ActAdd's rows start
at the text's first token, BOS included (align "context", the paper's).

Each sweep's folder keeps cells.jsonl, so an interrupted run resumes where it stopped.
Writes OUT/<model>/<pair>-<sweep>/ (the sweep's files and heatmaps), one figure per
model and pair into FIGURES (<model>-<pair>.png), and OUT/summary.md, a table of the
figures the docs quote (both halves of the texts pooled).
"""
import argparse
import json
import math
import re
import os
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FormatStrFormatter, NullFormatter, ScalarFormatter  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TILLER = REPO / "build" / "tiller"
TEXTS = REPO / "eval" / "texts"

WEDDING_WORDS = ["wedding", "wedded", "marry", "married", "marriage", "bride", "groom", "honeymoon"]
POSITIVE_WORDS = ["love", "lovely", "happy", "happiness", "joy", "wonderful", "delight", "glad", "grateful",
                  "beautiful", "kind", "great"]

PAIRS = {
    "weddings": {"positive": " weddings", "negative": "", "on": "weddings.txt", "off": "unrelated.txt",
                 "words": WEDDING_WORDS},
    "weddings-long": {"positive": "I talk about weddings constantly",
                      "negative": "I do not talk about weddings constantly",
                      "on": "weddings.txt", "off": "unrelated.txt", "words": WEDDING_WORDS},
    "love-hate": {"positive": "Love", "negative": "Hate", "on": "positive.txt", "off": "negative.txt",
                  "words": POSITIVE_WORDS},
}
LIKELIHOOD_COEFS = [1, 4, 16]
SAMPLED_COEFS = [1, 4, 16]


def blocks_of(model: str) -> int:
    out = subprocess.run([str(TILLER), "inspect", model, "--json"], capture_output=True, text=True, check=True)
    return int(json.loads(out.stdout)["n_layer"])  # README: `inspect --json` always has n_layer


def spec_for(pair: dict, blocks: list, coefs: list, sampled: bool, samples: int) -> dict:
    spec = {
        "sweep": {"actadd": {"positive": pair["positive"], "negative": pair["negative"], "blocks": blocks,
                             "coefs": coefs, "align": "context"}},
        "select": {"objective": "topic_words" if sampled else "likelihood"},
    }
    if sampled:
        spec["topic_words"] = {"prompts": {"file": str(TEXTS / "prompts.txt")}, "words": pair["words"],
                               "samples": samples, "max_tokens": 40}
        spec["fluency"] = True
    else:
        spec["likelihood"] = {"on_topic": {"file": str(TEXTS / pair["on"])},
                              "off_topic": {"file": str(TEXTS / pair["off"])}}
        spec["damage"] = {"texts": {"file": str(TEXTS / "neutral.txt")}}
    return spec


def run_sweep(model: str, spec: dict, out: Path, threads: int) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    spec_path = out / "spec.json"
    text = json.dumps(spec, indent=2) + "\n"
    if not spec_path.exists() or spec_path.read_text() != text:
        spec_path.write_text(text)
    print(f"== {model}: {out.name}", file=sys.stderr, flush=True)
    subprocess.run([str(TILLER), "sweep", str(spec_path), "-m", model, "-t", str(threads), "--out", str(out)],
                   check=True)
    subprocess.run([sys.executable, str(REPO / "scripts" / "sweep-heatmaps.py"), str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    return json.loads((out / "sweep.json").read_text())


def pooled_ratio(cell: dict, metric: str) -> float:
    """Perplexity ratio over both halves, token-weighted."""
    halves = [h[metric] for h in cell["halves"]]
    tokens = sum(h["tokens"] for h in halves)
    delta = sum(h["delta"] * h["tokens"] for h in halves) / tokens
    return math.exp(-delta)


def pooled_mean(cell: dict, metric: str, field: str) -> float:
    return sum(h[metric][field] for h in cell["halves"]) / 2


def table(result: dict) -> dict:
    """(block, coef) -> the cell, from a sweep.json."""
    out = {}
    for cell in result["cells"]:
        actadd = cell["steering"]["actadd"][0]
        out[(actadd["layer"], actadd["coef"])] = cell
    return out


def plain_log_axes(ax, coefs: list | None) -> None:
    """Ratios on a log scale with plain numbers; coefficients as given."""
    ax.yaxis.set_major_formatter(ScalarFormatter())
    low, high = ax.get_ylim()
    # Minor ticks labelled only within a decade, where there are few major ones.
    ax.yaxis.set_minor_formatter(FormatStrFormatter("%.2g") if high / low < 10 else NullFormatter())
    ax.tick_params(axis="y", which="minor", labelsize=7)
    if coefs:
        ax.set_xticks(coefs, labels=[f"{c:g}" for c in coefs])


def figure(model: str, name: str, likelihood: dict, sampled: dict | None, path: Path) -> None:
    cells = table(likelihood)
    blocks = sorted({b for b, _ in cells})
    coefs = sorted({c for _, c in cells})
    panels = 3 if sampled else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 4.2), constrained_layout=True)
    shown = [blocks[0], blocks[len(blocks) // 2], blocks[-1]]
    palette = plt.get_cmap("viridis")
    ax = axes[0]
    for i, block in enumerate(shown):
        colour = palette(i / max(1, len(shown) - 1) * 0.85)
        ax.plot(coefs, [pooled_ratio(cells[(block, c)], "on_topic") for c in coefs], "o-", color=colour,
                label=f"block {block}, on-topic")
        ax.plot(coefs, [pooled_ratio(cells[(block, c)], "off_topic") for c in coefs], "s--", color=colour,
                label=f"block {block}, off-topic")
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("coefficient")
    ax.set_ylabel("perplexity ratio (steered / unsteered)")
    ax.set_title("perplexity ratio against coefficient", fontsize=10)
    plain_log_axes(ax, coefs)
    ax.legend(fontsize=7)
    ax = axes[1]
    for coef, marker in ((1, "o"), (4, "^")):
        if (blocks[0], coef) not in cells:
            continue
        ax.plot(blocks, [pooled_ratio(cells[(b, coef)], "on_topic") for b in blocks], marker + "-",
                label=f"coef {coef}, on-topic")
        ax.plot(blocks, [pooled_ratio(cells[(b, coef)], "off_topic") for b in blocks], marker + "--",
                label=f"coef {coef}, off-topic")
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("block (the vector added before it)")
    ax.set_title("perplexity ratio against block", fontsize=10)
    plain_log_axes(ax, None)
    ax.legend(fontsize=7)
    if sampled:
        ax = axes[2]
        scells = table(sampled)
        sblocks = sorted({b for b, _ in scells})
        scoefs = sorted({c for _, c in scells})
        # The unsteered samples use the same seeds in every cell: one baseline.
        base = pooled_mean(scells[(sblocks[0], scoefs[0])], "topic_words", "per100_unsteered")
        for i, block in enumerate(sblocks):
            ax.plot(scoefs, [pooled_mean(scells[(block, c)], "topic_words", "per100_steered") for c in scoefs],
                    "o-", color=palette(i / max(1, len(sblocks) - 1) * 0.85), label=f"block {block}")
        ax.axhline(base, color="grey", linewidth=0.8, label="unsteered")
        ax.set_xscale("log", base=2)
        ax.set_xticks(scoefs, labels=[f"{c:g}" for c in scoefs])
        ax.set_xlabel("coefficient")
        ax.set_ylabel("topic words per 100 words")
        ax.set_title("topic words in sampled completions", fontsize=10)
        ax.legend(fontsize=7)
    fig.suptitle(f"{model}: ActAdd {name}", fontsize=11)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def share_on_topic(samples: list, words: list) -> float:
    """The share of samples with at least one topic word at a word start (the paper's
    "success in steering topic"), as tiller counts words: case-insensitive."""
    pattern = re.compile(r"(?<![0-9A-Za-z\x80-\uffff])(" + "|".join(map(re.escape, words)) + ")", re.IGNORECASE)
    return sum(1 for s in samples if pattern.search(s)) / max(1, len(samples))


def pooled_share(cell: dict, field: str, words: list) -> float:
    return share_on_topic([s for h in cell["halves"] for s in h["topic_words"][field]], words)


def summary_rows(model: str, name: str, likelihood: dict, sampled: dict | None) -> list:
    cells = table(likelihood)
    rows = []
    best = min(cells.items(), key=lambda kv: pooled_ratio(kv[1], "on_topic") / pooled_ratio(kv[1], "off_topic"))
    (block, coef), cell = best
    damage = pooled_mean(cell, "damage", "kl")
    rows.append(f"| {model} | {name} | likelihood, best on/off | block {block}, coef {coef:g} | "
                f"on {pooled_ratio(cell, 'on_topic'):.3f}, off {pooled_ratio(cell, 'off_topic'):.3f}, "
                f"damage KL {damage:.3f} |")
    for b, c in sorted(cells):
        if c == 1:
            rows.append(f"| {model} | {name} | likelihood | block {b}, coef 1 | "
                        f"on {pooled_ratio(cells[(b, c)], 'on_topic'):.3f}, "
                        f"off {pooled_ratio(cells[(b, c)], 'off_topic'):.3f}, "
                        f"damage KL {pooled_mean(cells[(b, c)], 'damage', 'kl'):.3f} |")
    if sampled:
        for (b, c), cell in sorted(table(sampled).items()):
            words = PAIRS[name]["words"]
            rows.append(f"| {model} | {name} | topic words /100 | block {b}, coef {c:g} | "
                        f"{pooled_mean(cell, 'topic_words', 'per100_unsteered'):.2f} -> "
                        f"{pooled_mean(cell, 'topic_words', 'per100_steered'):.2f}; samples on topic "
                        f"{100 * pooled_share(cell, 'samples_unsteered', words):.0f}% -> "
                        f"{100 * pooled_share(cell, 'samples_steered', words):.0f}%; fluency "
                        f"{pooled_mean(cell, 'fluency', 'logprob_steered_samples') - pooled_mean(cell, 'fluency', 'logprob_unsteered_samples'):+.3f} |")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="gemma-3-270m,smollm2-135m-instruct")
    parser.add_argument("--pairs", default=",".join(PAIRS))
    parser.add_argument("-t", "--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--samples", type=int, default=1, help="completions per prompt and side")
    parser.add_argument("--sampled-pairs", default="weddings,love-hate",
                        help="the pairs that also get the sampled sweep (none: likelihood only)")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "reproduce-actadd")
    parser.add_argument("--figures", type=Path, default=REPO / "docs" / "evaluation")
    args = parser.parse_args()
    args.figures.mkdir(parents=True, exist_ok=True)
    rows = ["| model | pair | measure | cell | figures |", "|---|---|---|---|---|"]
    for model in args.models.split(","):
        n = blocks_of(model)
        # Gemma 3 270M (18 blocks): 2, 6, 9, 12, 15 and 2, 6, 12; SmolLM2 (30): 3, 10, 15, 20, 25 and 3, 10, 20.
        five = [n // 9, n // 3, n // 2, (2 * n) // 3, (5 * n) // 6]
        three = [n // 9, n // 3, (2 * n) // 3]
        for name in args.pairs.split(","):
            pair = PAIRS[name]
            base = args.out / model / name
            likelihood = run_sweep(model, spec_for(pair, five, LIKELIHOOD_COEFS, False, args.samples),
                                   Path(f"{base}-likelihood"), args.threads)
            sampled = None
            if name in args.sampled_pairs.split(","):
                sampled = run_sweep(model, spec_for(pair, three, SAMPLED_COEFS, True, args.samples),
                                    Path(f"{base}-sampled"), args.threads)
            figure(model, name, likelihood, sampled, args.figures / f"{model}-{name}.png")
            rows += summary_rows(model, name, likelihood, sampled)
    (args.out / "summary.md").write_text("\n".join(rows) + "\n")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
