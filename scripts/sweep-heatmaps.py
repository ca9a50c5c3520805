#!/usr/bin/env python3
"""Heatmaps of a `tiller sweep` result: one PNG per metric it measured.

    python3 scripts/sweep-heatmaps.py DIR [-o OUTDIR]

Reads DIR/sweep.json (written by `tiller sweep SPEC --out DIR`) and writes
OUTDIR/<metric>.png (OUTDIR defaults to DIR): the grid's rows (blocks or block
ranges) down, its columns (coefficients or scales) across, one panel per half of
the texts (select: even-indexed texts, the half the chosen cell was chosen on;
report: odd-indexed ones), each value written in its cell, the chosen cell
outlined. The figure per metric:

    on_topic, off_topic  perplexity ratio, steered over unsteered (< 1: likelier)
    topic_words          topic words per 100 words in the steered samples
    damage               mean KL(unsteered || steered) per position on neutral text
    ab                   mean P(matching answer), steered
    fluency              steered minus unsteered samples' log-probability per token
                         under the unsteered model

Prints the paths it wrote. Needs numpy and matplotlib (python/constraints.txt).
"""
import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.colors as colors  # noqa: E402
import matplotlib.patches as patches  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# metric -> (title, function of the metric's JSON object giving the figure, colour map)
FIGURES = {
    "on_topic": ("on-topic perplexity ratio (steered / unsteered)", lambda m: m["perplexity_ratio"], "RdYlGn_r"),
    "off_topic": ("off-topic perplexity ratio (steered / unsteered)", lambda m: m["perplexity_ratio"], "RdYlGn_r"),
    "topic_words": ("topic words per 100 words, steered", lambda m: m["per100_steered"], "viridis"),
    "damage": ("damage: mean KL(unsteered || steered) per position", lambda m: m["kl"], "magma_r"),
    "ab": ("P(matching answer), steered", lambda m: m["p_steered"], "viridis"),
    "fluency": (
        "fluency: steered - unsteered samples' log-prob per token",
        lambda m: m["logprob_steered_samples"] - m["logprob_unsteered_samples"],
        "RdYlGn",
    ),
}


def grid(result: dict, metric: str, half: int) -> np.ndarray:
    values = np.full((len(result["rows"]), len(result["columns"])), np.nan)
    extract = FIGURES[metric][1]
    for cell in result["cells"]:
        figures = cell["halves"][half]
        if metric in figures:
            values[cell["row"], cell["column"]] = extract(figures[metric])
    return values


def draw(result: dict, metric: str, path: Path) -> None:
    title = FIGURES[metric][0]
    rows, columns = result["rows"], result["columns"]
    halves = [grid(result, metric, 0), grid(result, metric, 1)]
    finite = np.concatenate([h[np.isfinite(h)] for h in halves])
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if low == high:
        low, high = low - 0.5, high + 0.5
    width = max(6.0, 1.0 + 0.9 * len(columns)) * 2
    height = max(3.0, 1.2 + 0.5 * len(rows))
    fig, axes = plt.subplots(1, 2, figsize=(width, height), constrained_layout=True)
    chosen = result.get("chosen")
    for half, (ax, values) in enumerate(zip(axes, halves)):
        # Ratios on a log scale, so that 0.5 and 2 sit as far from 1 as each other.
        ratio = metric in ("on_topic", "off_topic") and low > 0
        norm = colors.LogNorm(vmin=low, vmax=high) if ratio else colors.Normalize(vmin=low, vmax=high)
        image = ax.imshow(values, cmap=FIGURES[metric][2], norm=norm, aspect="auto")
        ax.set_xticks(range(len(columns)), labels=columns, rotation=45, ha="right")
        ax.set_yticks(range(len(rows)), labels=rows)
        ax.set_title(("select half" if half == 0 else "report half") + f": {title}", fontsize=9)
        for r in range(len(rows)):
            for c in range(len(columns)):
                if np.isfinite(values[r, c]):
                    shade = float(norm(values[r, c]))
                    ax.text(c, r, f"{values[r, c]:.3g}", ha="center", va="center", fontsize=7,
                            color="white" if shade < 0.25 or shade > 0.75 else "black")
        if chosen is not None:
            ax.add_patch(patches.Rectangle((chosen["column"] - 0.5, chosen["row"] - 0.5), 1, 1, fill=False,
                                           edgecolor="black", linewidth=2.5))
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dir", type=Path, help="the folder `tiller sweep --out` wrote")
    parser.add_argument("-o", "--out", type=Path, help="where the PNGs go (default: DIR)")
    args = parser.parse_args()
    source = args.dir / "sweep.json"
    if not source.is_file():
        print(f"sweep-heatmaps: {source}: no such file (run tiller sweep SPEC --out {args.dir} first)",
              file=sys.stderr)
        return 1
    result = json.loads(source.read_text())
    out = args.out or args.dir
    out.mkdir(parents=True, exist_ok=True)
    measured = [m for m in FIGURES if any(m in cell["halves"][0] for cell in result["cells"])]
    for metric in measured:
        path = out / f"{metric}.png"
        draw(result, metric, path)
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
