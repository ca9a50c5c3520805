#!/usr/bin/env python3
"""Finds the block and coefficient at which an ActAdd pair steers best.

    $(scripts/oracle-env.sh) scripts/actadd-sweep.py scripts/sweeps/weddings.json \
        [-m MODEL] [--layers 2,4,6] [--coefs 2,4,8] [--samples 6] [-t 2]

The spec file names the pair and two sets of continuations of a few neutral
prompts: on-topic ones (what the steering should make likelier) and off-topic
ones (ordinary text it should leave alone). For every (block, coefficient) the
script runs `tiller logits` with the pair and measures, teacher-forced, the mean
log-probability per token of each continuation after its prompt, minus the same
without steering (the ActAdd paper's likelihood measure, made cheap and free of
sampling noise):

    gain   = mean change on the on-topic continuations   (want: up)
    damage = mean change on the off-topic ones            (want: near 0)
Then it samples completions, steered and unsteered with the same seeds, at the
--candidates cells of largest gain among those with gain > 0 and damage >=
--max-damage, counts the spec's topic words in them, and picks the cell whose
completions use the most (ties: the larger gain - |damage|). Likelihood is cheap
and free of sampling noise but rewards mild steering; the count is what a reader
of the text sees. Needs numpy (the oracle env has it).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TILLER = os.path.join(ROOT, "build", "tiller")


def tiller(*args):
    result = subprocess.run([TILLER, *map(str, args)], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"actadd-sweep: tiller {' '.join(map(str, args))}: {result.stderr.strip()}")
    return result.stdout


def steering_flags(spec, layer, coef):
    if layer is None:
        return []
    return ["--actadd", spec["positive"], spec["negative"], "--actadd-layer", layer, "--actadd-coef", coef]


def continuation_logprob(model, prompt, continuation, flags, threads, scratch):
    """Mean log-probability per token of `continuation` after `prompt`."""
    n_prompt = len(json.loads(tiller("tokenize", "-m", model, "--json", prompt))["ids"])
    npy = os.path.join(scratch, "logits.npy")
    out = json.loads(tiller("logits", "-m", model, "-p", prompt + continuation, "--json", "--top", "1",
                            "--npy", npy, "-t", threads, *flags))
    ids = out["ids"]
    logits = np.load(npy).astype(np.float64)
    rows = logits[n_prompt - 1:len(ids) - 1]
    log_z = np.log(np.exp(rows - rows.max(axis=1, keepdims=True)).sum(axis=1)) + rows.max(axis=1)
    targets = np.array(ids[n_prompt:])
    return float(np.mean(rows[np.arange(len(targets)), targets] - log_z))


def likelihoods(spec, flags, threads, scratch):
    """(on-topic, off-topic) mean log-prob per token over every prompt x continuation."""
    def mean_over(key):
        return np.mean([continuation_logprob(spec["model"], p, c, flags, threads, scratch)
                        for p in spec["prompts"] for c in spec[key]])
    return mean_over("on_topic"), mean_over("off_topic")


def topic_word_rate(texts, words):
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, words)) + r")", re.IGNORECASE)
    n_words = sum(len(t.split()) for t in texts)
    return sum(len(pattern.findall(t)) for t in texts) / max(n_words, 1)


def measure(spec, layers, coefs, threads):
    """The unsteered baseline and every cell's gain and damage."""
    with tempfile.TemporaryDirectory() as scratch:
        base_on, base_off = likelihoods(spec, [], threads, scratch)
        cells = []
        total = len(layers) * len(coefs)
        for i, layer in enumerate(layers):
            for j, coef in enumerate(coefs):
                on, off = likelihoods(spec, steering_flags(spec, layer, coef), threads, scratch)
                cells.append({"layer": layer, "coef": coef, "gain": on - base_on, "damage": off - base_off})
                if sys.stderr.isatty():
                    print(f"\r{i * len(coefs) + j + 1}/{total} cells", end="", file=sys.stderr, flush=True)
        if sys.stderr.isatty():
            print(file=sys.stderr)
    return base_on, base_off, cells


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec")
    ap.add_argument("-m", "--model", help="instead of the spec's model (default smollm2-135m-instruct)")
    ap.add_argument("--layers", default="1,3,6,9,12,15,18,21,24")
    ap.add_argument("--coefs", default="1,2,4,8,16")
    ap.add_argument("--max-damage", type=float, default=-0.4,
                    help="cells that lower off-topic log-prob per token by more than this are not chosen")
    ap.add_argument("--candidates", type=int, default=5, help="cells sampled after the likelihood sweep")
    ap.add_argument("--samples", type=int, default=6)
    ap.add_argument("-n", type=int, default=40, help="tokens per sampled completion")
    ap.add_argument("-t", "--threads", default="2")
    ap.add_argument("--json", help="also write every cell's figures here")
    ap.add_argument("--cells-from", help="take the cells from an earlier run's --json instead of measuring")
    args = ap.parse_args()
    with open(args.spec) as f:
        spec = json.load(f)
    spec.setdefault("model", "smollm2-135m-instruct")
    if args.model:
        spec["model"] = args.model
    layers = [int(x) for x in args.layers.split(",")]
    coefs = [float(x) for x in args.coefs.split(",")]

    if args.cells_from:
        with open(args.cells_from) as f:
            earlier = json.load(f)
        cells = earlier["cells"]
        base_on, base_off = earlier["baseline"]["on_topic"], earlier["baseline"]["off_topic"]
        layers = sorted({c["layer"] for c in cells})
        coefs = sorted({c["coef"] for c in cells})
    else:
        base_on, base_off, cells = measure(spec, layers, coefs, args.threads)

    print(f'ActAdd "{spec["positive"]}" - "{spec["negative"]}" on {spec["model"]}: '
          f"change in mean log-prob per token, on-topic / off-topic (nats)")
    print("block " + "".join(f"{'c=' + format(c, 'g'):>16}" for c in coefs))
    for layer in layers:
        row = [c for c in cells if c["layer"] == layer]
        print(f"{layer:>5} " + "".join(f"{c['gain']:>+8.2f}/{c['damage']:<+7.2f}" for c in row))
    # Likelihood narrows the grid; sampled text decides: the cells with the largest
    # on-topic gain that keep damage within bounds are sampled, and the one whose
    # completions use the most topic words wins (ties: the better likelihood score).
    allowed = [c for c in cells if c["damage"] >= args.max_damage and c["gain"] > 0]
    candidates = sorted(allowed, key=lambda c: c["gain"], reverse=True)[:args.candidates]
    if not candidates:
        sys.exit("actadd-sweep: no cell raises the on-topic likelihood within --max-damage")
    prompt = spec["sample_prompt"]
    print(f"topic words per 100 words in {args.samples} completions of {prompt!r} (seeds 1..{args.samples}):")
    unsteered_rate = None
    for c in candidates:
        out = json.loads(tiller("run", "-m", spec["model"], "-p", prompt, "-n", args.n, "-s", 1, "-t", args.threads,
                                "--compare", "--samples", args.samples, "--json",
                                *steering_flags(spec, c["layer"], c["coef"])))
        c["samples"] = out["samples"]
        c["topic_rate"] = topic_word_rate([s["steered"] for s in out["samples"]], spec["topic_words"])
        unsteered_rate = topic_word_rate([s["unsteered"] for s in out["samples"]], spec["topic_words"])
        print(f"  block {c['layer']:>2} c={c['coef']:<4g} gain {c['gain']:+.2f} damage {c['damage']:+.2f}: "
              f"{100 * c['topic_rate']:.1f} (unsteered {100 * unsteered_rate:.1f})")
    best = max(candidates, key=lambda c: (c["topic_rate"], c["gain"] - abs(c["damage"])))
    print(f"best: block {best['layer']}, coefficient {best['coef']:g}; the two samples with the most topic words:")
    shown = sorted(best["samples"], key=lambda s: -topic_word_rate([s["steered"]], spec["topic_words"]))[:2]
    for s in shown:
        print(f"  seed {s['seed']} unsteered: {s['unsteered']!r}")
        print(f"  seed {s['seed']} steered:   {s['steered']!r}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"spec": spec, "baseline": {"on_topic": base_on, "off_topic": base_off},
                       "cells": cells, "best": {"layer": best["layer"], "coef": best["coef"]}}, f, indent=1)


if __name__ == "__main__":
    main()
