#!/usr/bin/env python3
"""What steering costs in speed: `tiller bench` unsteered against the same bench steered
by one control vector on every block and one ActAdd pair, on the same model, threads and
lengths, the two runs interleaved rep by rep so that machine noise lands on both. The
table gives each median tok/s and the overhead, median unsteered / median steered - 1
(issue 18's bar: under 2% at 1B).

The control vector is random (a seeded NumPy draw, one direction of norm 4 per block,
written as llama.cpp's control-vector GGUF into a temporary directory): its values do not
change the work. It is added at blocks 1 to n_layer - 1, Tiller's (and llama.cpp's)
default range; the ActAdd pair is " Love" / " Hate" at --actadd-layer, added to the
first positions of every test's tokens. Run through bench/steering-overhead.

Timing cannot resolve 2% on a shared machine whose runs spread by 2 to 10%, so
--instructions counts instead: valgrind's callgrind runs each bench at 1 thread and
counts the instructions executed, which noise does not move. Two runs of each kind
with different lengths, and their difference divided by the extra tokens, give the
instructions per generated token (and per prompt token) with the load and set-up
left out. Valgrind knows no AVX-512, so the kernels it counts are the AVX2 ones.
"""
import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import gguf

REPO = Path(__file__).resolve().parent.parent
TILLER = REPO / "build" / "tiller"


def progress(message):
    print(message, file=sys.stderr, flush=True)


def model_shape(model):
    out = subprocess.run([str(TILLER), "inspect", model, "--json"], check=True, capture_output=True,
                         text=True).stdout
    info = json.loads(out)
    return info["n_layer"], info["n_embd"]


def write_control_vector(path, n_layer, n_embd):
    rng = np.random.Generator(np.random.PCG64(18))
    writer = gguf.GGUFWriter(str(path), "controlvector")
    writer.add_string("controlvector.model_hint", "bench")
    writer.add_int32("controlvector.layer_count", n_layer)
    for block in range(n_layer):
        direction = rng.standard_normal(n_embd).astype(np.float32)
        writer.add_tensor(f"direction.{block}", direction * np.float32(4 / np.linalg.norm(direction)))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def bench(model, args, threads, steering):
    command = [str(TILLER), "bench", "-m", model, "--json", "-p", str(args.n_prompt), "-n", str(args.n_gen),
               "-t", str(threads), "-r", "1"] + steering
    return {e["test"]: e["tok_s"] for e in json.loads(subprocess.run(command, check=True, capture_output=True,
                                                                       text=True).stdout)}


def timed_rows(args, steering):
    """Median tok/s unsteered and steered per thread count and test, runs interleaved."""
    rows = []
    for threads in args.threads:
        plain, steered = {}, {}
        for rep in range(args.reps):
            progress(f"steering-overhead: {threads} threads, rep {rep + 1}/{args.reps}")
            for test, value in bench(args.model, args, threads, []).items():
                plain.setdefault(test, []).append(value)
            for test, value in bench(args.model, args, threads, steering).items():
                steered.setdefault(test, []).append(value)
        for test in plain:
            a, b = statistics.median(plain[test]), statistics.median(steered[test])
            rows.append([str(threads), test, f"{a:.2f}", f"{b:.2f}", f"{100 * (a / b - 1):+.1f}%"])
    return rows


def instructions(model, n_prompt, n_gen, steering):
    """What one callgrind run of `tiller bench -r 1` (a warm-up and a timed run) executes."""
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", str(TILLER), "bench", "-m", model,
               "-p", str(n_prompt), "-n", str(n_gen), "-t", "1", "-r", "1"] + steering
    run = subprocess.run(command, capture_output=True, text=True)
    found = re.search(r"Collected : (\d+)", run.stderr)
    if run.returncode != 0 or not found:
        raise SystemExit(f"steering-overhead: callgrind failed ({run.returncode}): {run.stderr.strip()[-500:]}")
    return int(found.group(1))


def instruction_rows(model, steering):
    """Instructions per prompt token and per generated token, unsteered and steered."""
    if shutil.which("valgrind") is None:
        raise SystemExit("steering-overhead: --instructions needs valgrind (apt-get install valgrind)")
    rows = []
    # (test, n_prompt pair, n_gen pair): each bench runs its test twice (warm-up, timed).
    for test, prompts, gens in (("pp", (32, 96), (0, 0)), ("tg", (0, 0), (4, 12))):
        extra = 2 * (prompts[1] - prompts[0] + gens[1] - gens[0])
        per_token = []
        for label, flags in (("unsteered", []), ("steered", steering)):
            progress(f"steering-overhead: callgrind, {test}, {label}")
            small = instructions(model, prompts[0], gens[0], flags)
            large = instructions(model, prompts[1], gens[1], flags)
            per_token.append((large - small) / extra)
        rows.append(["1", f"{test} (instructions/token)", f"{per_token[0]:.4g}", f"{per_token[1]:.4g}",
                     f"{100 * (per_token[1] / per_token[0] - 1):+.3f}%"])
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-m", "--model", required=True, help="a .gguf path")
    parser.add_argument("-t", "--threads", default="1,2", type=lambda t: [int(v) for v in t.split(",")])
    parser.add_argument("-p", "--n-prompt", type=int, default=512)
    parser.add_argument("-n", "--n-gen", type=int, default=128)
    parser.add_argument("-r", "--reps", type=int, default=5)
    parser.add_argument("--actadd-layer", type=int, default=None, help="default: n_layer / 3")
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions per token under callgrind (1 thread) instead of timing")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    n_layer, n_embd = model_shape(args.model)
    layer = args.actadd_layer if args.actadd_layer is not None else n_layer // 3
    with tempfile.TemporaryDirectory() as scratch:
        vector = Path(scratch) / "random-control-vector.gguf"
        write_control_vector(vector, n_layer, n_embd)
        steering = ["--control-vector", str(vector), "--actadd", " Love", " Hate", "--actadd-layer", str(layer)]
        rows = instruction_rows(args.model, steering) if args.instructions else timed_rows(args, steering)
    if args.instructions:
        header = ["threads", "test", "unsteered", "steered", "overhead"]
        how = "instructions per token under callgrind (AVX2 kernels), differences of two lengths"
    else:
        header = ["threads", "test", "unsteered tok/s", "steered tok/s", "overhead"]
        how = f"{args.reps} interleaved reps, medians"
    print(f"model: {args.model}; {how}; steering: a control vector on blocks "
          f"1-{n_layer - 1} and ActAdd ' Love' - ' Hate' at block {layer}\n")
    if args.markdown:
        print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
        for row in [header] + rows:
            print("  ".join(v.rjust(w) for v, w in zip(row, widths)))


if __name__ == "__main__":
    main()
