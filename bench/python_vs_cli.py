"""The Python package's speed against the command line's on the same machine, model,
text (512 tokens) and threads, runs interleaved rep by rep: `tiller logits` (its
own timing of the forward passes, printed on stderr) against Model.logits and
Model.run_with_cache (the whole call, copies into NumPy included), each in a warm
process. Prints medians and the ratio Python / CLI (1.00 = as fast; > 1 slower).
    bench/python-vs-cli [--models a,b] [--threads 1,2] [--tokens 512] [--reps 7] [--json]
"""

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tiller

REPO = Path(__file__).resolve().parents[1]


def text_of(model: tiller.Model, n_tokens: int) -> str:
    """Held-out prose from the forward goldens' texts, cut to about n_tokens tokens."""
    texts = [json.loads(line)["text"] for line in (REPO / "tests/data/forward/texts.jsonl").open()]
    joined = "\n\n".join(texts)
    ids = model.tokenize(joined, add_special=False)
    if len(ids) < n_tokens:
        sys.exit(f"the texts hold only {len(ids)} tokens")
    return model.detokenize(ids[: n_tokens - 1])


def cli_seconds(cli: str, model: str, text_file: str, threads: int) -> float:
    result = subprocess.run([cli, "logits", "-m", model, "-f", text_file, "-b", "512", "-t", str(threads),
                             "--top", "1", "--npy", "/dev/null"], capture_output=True, text=True, check=True)
    match = re.search(r"logits: (\d+) tokens in ([0-9.]+) s", result.stderr)
    return float(match.group(2))


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="smollm2-135m-instruct,gemma-3-270m")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--cli", default=str(Path(sys.executable).parent / "tiller"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for name in args.models.split(","):
        for threads in [int(t) for t in args.threads.split(",")]:
            model = tiller.Model(name, threads=threads)
            text = text_of(model, args.tokens)
            n_tokens = len(model.tokenize(text))
            with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
                f.write(text)
                f.flush()
                samples = {"cli": [], "logits": [], "cache_all": [], "cache_resid_post": []}
                model.logits(text)  # warm: pages of the weights, the session's buffers
                for rep in range(args.reps):
                    samples["cli"].append(cli_seconds(args.cli, model.path, f.name, threads))
                    samples["logits"].append(timed(lambda: model.logits(text)))
                    samples["cache_all"].append(timed(lambda: model.run_with_cache(text)))
                    samples["cache_resid_post"].append(
                        timed(lambda: model.run_with_cache(text, names="blocks.*.hook_resid_post")))
            medians = {k: statistics.median(v) for k, v in samples.items()}
            row = {"model": name, "threads": threads, "tokens": n_tokens, "reps": args.reps,
                   **{f"{k}_s": round(v, 4) for k, v in medians.items()},
                   **{f"{k}_ratio": round(medians[k] / medians["cli"], 3)
                      for k in ("logits", "cache_all", "cache_resid_post")}}
            rows.append(row)
            if not args.json:
                print(f"{name:24} t={threads} {n_tokens} tokens: tiller logits {medians['cli']:.3f} s | "
                      f"Model.logits {medians['logits']:.3f} s ({row['logits_ratio']:.3f}x) | "
                      f"run_with_cache all {medians['cache_all']:.3f} s ({row['cache_all_ratio']:.3f}x) | "
                      f"resid_post only {medians['cache_resid_post']:.3f} s ({row['cache_resid_post_ratio']:.3f}x)",
                      flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
