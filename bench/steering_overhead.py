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
"""
import argparse
import json
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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-m", "--model", required=True, help="a .gguf path")
    parser.add_argument("-t", "--threads", default="1,2", type=lambda t: [int(v) for v in t.split(",")])
    parser.add_argument("-p", "--n-prompt", type=int, default=512)
    parser.add_argument("-n", "--n-gen", type=int, default=128)
    parser.add_argument("-r", "--reps", type=int, default=5)
    parser.add_argument("--actadd-layer", type=int, default=None, help="default: n_layer / 3")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    n_layer, n_embd = model_shape(args.model)
    layer = args.actadd_layer if args.actadd_layer is not None else n_layer // 3
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        vector = Path(scratch) / "random-control-vector.gguf"
        write_control_vector(vector, n_layer, n_embd)
        steering = ["--control-vector", str(vector), "--actadd", " Love", " Hate", "--actadd-layer", str(layer)]
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
    header = ["threads", "test", "unsteered tok/s", "steered tok/s", "overhead"]
    print(f"model: {args.model}; {args.reps} interleaved reps, medians; steering: a control vector on blocks "
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
