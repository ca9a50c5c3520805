#!/usr/bin/env python3
"""`tiller serve` against llama-cpp-python's server (python -m llama_cpp.server,
the pinned 0.3.36 with its [server] extra) under the same load, on the same
model, threads and context, on loopback; then Tiller alone on the loads of issue
16's targets.

Run through bench/serve-vs-llamacpp, which provides the oracle environment and a
release build. The load is scripts/serve_load.py's: N requests, C at a time,
half streamed and half whole, half chat and half text, fixed seeds, temperature
0.8, every request generating exactly --max-tokens tokens (Tiller's ignore_eos;
for llama.cpp a logit bias of -100 on the model's end tokens), so that the two
servers' latencies cover the same work whatever each one samples. The servers
take turns, rep by rep, so that other work on the machine hits both alike; each
figure is the median over the reps.

llama_cpp.server runs one generation at a time (one Llama object behind a lock):
requests beyond the first wait. Its default interrupt_requests=True would cut a
stream short whenever another request waits, so it is run with False, and with
logits_all False (its default True computes logits for every prompt position,
which Tiller does not and no request here asks for).

Tiller alone: aggregate tokens/s with C requests at a time against 1 at a time
(target >= 3x), and C requests each naming a different control vector against
C unsteered (target: < 5% slower). The vectors are random directions written
into a temporary --vector-dir.
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
from gguf import GGUFReader, GGUFWriter

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
import serve_load  # noqa: E402

TILLER = REPO / "build" / "tiller"
END_TOKENS = ("<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<end_of_turn>", "<eos>", "<|end|>",
              "</s>")
FIGURES = ("requests_per_s", "latency_p50_s", "latency_p99_s", "ttft_p50_s", "tok_s", "tokens",
           "tokens_counted_from_chunks")


def progress(message):
    print(message, file=sys.stderr, flush=True)


def model_facts(path):
    """Width, block count and the ids of the tokens that end a generation."""
    reader = GGUFReader(str(path))

    def value(key):
        field = reader.fields.get(key)
        return None if field is None else field.contents()

    arch = value("general.architecture")
    ends = {value(key) for key in ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id")} - {None}
    tokens = value("tokenizer.ggml.tokens") or []
    ends |= {i for i, text in enumerate(tokens) if text in END_TOKENS}
    return value(f"{arch}.embedding_length"), value(f"{arch}.block_count"), sorted(ends)


def write_vectors(folder, width, blocks, count):
    """`count` control vectors of random +-1 directions on the middle half of the blocks."""
    names = []
    for k in range(count):
        name = f"v{k}"
        writer = GGUFWriter(str(folder / f"{name}.gguf"), "controlvector")
        writer.add_string("controlvector.model_hint", "")
        chosen = range(blocks // 4, 3 * blocks // 4)
        writer.add_int32("controlvector.layer_count", len(chosen))
        rng = np.random.default_rng(k)
        for block in chosen:
            writer.add_tensor(f"direction.{block}", rng.choice([-1.0, 1.0], size=width).astype(np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        names.append(name)
    return names


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url, path, process, log, seconds=300):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"serve-vs-llamacpp: the server exited ({process.returncode}):\n{log()}")
        try:
            with urllib.request.urlopen(url + path, timeout=5) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.HTTPError):
            pass
        time.sleep(0.1)
    raise SystemExit(f"serve-vs-llamacpp: the server at {url} was not ready in {seconds} s:\n{log()}")


class Server:
    """A server process on loopback, its output kept in a file for when it fails."""

    def __init__(self, name, command, url, ready_path, folder):
        self.name, self.url = name, url
        self.log_path = folder / f"{name}.log"
        self.log_file = open(self.log_path, "w")
        self.process = subprocess.Popen(command, stdout=self.log_file, stderr=subprocess.STDOUT)
        wait_ready(url, ready_path, self.process, self.log)

    def log(self):
        return self.log_path.read_text()[-3000:]

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log_file.close()


def start_tiller(args, path, vector_dir, folder):
    port = free_port()
    command = [str(TILLER), "serve", "-m", str(path), "--host", "127.0.0.1", "--port", str(port),
               "-t", str(args.threads), "-c", str(args.ctx), "--parallel", str(args.parallel),
               "--queue", str(max(args.requests, args.concurrency)), "--vector-dir", str(vector_dir)]
    return Server("tiller", command, f"http://127.0.0.1:{port}", "/health", folder)


def start_llamacpp(args, path, folder):
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(path), "--host", "127.0.0.1",
               "--port", str(port), "--n_threads", str(args.threads), "--n_threads_batch", str(args.threads),
               "--n_ctx", str(args.ctx), "--interrupt_requests", "False", "--logits_all", "False",
               "--verbose", "False"]
    return Server("llama.cpp", command, f"http://127.0.0.1:{port}", "/v1/models", folder)


def one_load(server, specs, concurrency):
    outcomes, wall = serve_load.run_load(server.url, specs, concurrency, progress=False)
    summary = serve_load.summarize(outcomes, wall)
    if summary["ok"] != summary["requests"]:
        bad = next(o for o in outcomes if not o.ok)
        raise SystemExit(f"serve-vs-llamacpp: {server.name}: {serve_load.format_summary(summary)}; "
                         f"first failure: {bad.status} {bad.error}\n{server.log()}")
    return summary


def medians(summaries):
    return {key: statistics.median(s[key] for s in summaries) for key in FIGURES}


def measure(args):
    path = Path(args.model) if args.model.endswith(".gguf") else args.model_dir / f"{args.model}.gguf"
    if not path.is_file():
        raise SystemExit(f"serve-vs-llamacpp: no model {path} (scripts/fetch-models.sh)")
    width, blocks, ends = model_facts(path)
    bias = {str(token): -100 for token in ends}
    load = dict(max_tokens=args.max_tokens, seed=args.seed)
    tiller_unsteered = serve_load.make_specs(args.requests, extra={"ignore_eos": True}, **load)
    llama_unsteered = serve_load.make_specs(args.requests, extra={"logit_bias": bias}, **load)
    alone = serve_load.make_specs(max(2, args.requests // args.concurrency), extra={"ignore_eos": True}, **load)
    results = {"tiller": [], "llama.cpp": [], "tiller 1 at a time": [], "tiller unsteered": [],
               "tiller vectors": []}
    with tempfile.TemporaryDirectory(prefix="serve-vs-llamacpp-") as scratch:
        folder = Path(scratch)
        vector_dir = folder / "vectors"
        vector_dir.mkdir()
        names = write_vectors(vector_dir, width, blocks, args.concurrency)
        steered = serve_load.make_specs(args.requests, kinds=("vector",), vectors=names,
                                        extra={"ignore_eos": True}, **load)
        servers = []
        try:
            progress(f"serve-vs-llamacpp: starting both servers on {path.name}, {args.threads} threads, "
                     f"context {args.ctx}")
            tiller = start_tiller(args, path, vector_dir, folder)
            servers.append(tiller)
            llama = start_llamacpp(args, path, folder)
            servers.append(llama)
            warm = serve_load.make_specs(2, max_tokens=4)
            one_load(tiller, warm, 2)
            one_load(llama, warm, 2)
            for rep in range(args.reps):
                progress(f"  rep {rep + 1}/{args.reps}: the same unsteered load on each, then Tiller's own loads")
                # Tiller's loads back to back, then llama.cpp's, then a pause: its
                # threads keep spinning a while after its last request, which would
                # slow whatever ran next.
                results["tiller"].append(one_load(tiller, tiller_unsteered, args.concurrency))
                results["tiller vectors"].append(one_load(tiller, steered, args.concurrency))
                results["tiller 1 at a time"].append(one_load(tiller, alone, 1))
                results["tiller unsteered"].append(results["tiller"][-1])
                results["llama.cpp"].append(one_load(llama, llama_unsteered, args.concurrency))
                time.sleep(2)
        finally:
            for server in servers:
                server.stop()
    return {name: medians(summaries) for name, summaries in results.items()}, results


def print_report(args, figures):
    def ms(value):
        return f"{value * 1000:.0f}"

    rows = [("tiller serve", figures["tiller"]), ("llama_cpp.server", figures["llama.cpp"])]
    header = ["server", "req/s", "p50 ms", "p99 ms", "p50 TTFT ms", "tok/s", "tokens"]
    table = [[name, f"{f['requests_per_s']:.2f}", ms(f["latency_p50_s"]), ms(f["latency_p99_s"]),
              ms(f["ttft_p50_s"]), f"{f['tok_s']:.1f}", f"{f['tokens']:.0f}"] for name, f in rows]
    ours, theirs = figures["tiller"], figures["llama.cpp"]
    table.append(["Tiller/llama.cpp", f"{ours['requests_per_s'] / theirs['requests_per_s']:.2f}",
                  f"{ours['latency_p50_s'] / theirs['latency_p50_s']:.2f}",
                  f"{ours['latency_p99_s'] / theirs['latency_p99_s']:.2f}",
                  f"{ours['ttft_p50_s'] / theirs['ttft_p50_s']:.2f}", f"{ours['tok_s'] / theirs['tok_s']:.2f}", ""])
    print(f"{args.requests} unsteered requests, {args.concurrency} at a time, {args.max_tokens} tokens each "
          f"(half streamed, half chat), {args.threads} threads, context {args.ctx}; "
          f"median of {args.reps} rep{'s' if args.reps > 1 else ''}")
    widths = [max(len(row[i]) for row in [header] + table) for i in range(len(header))]
    for row in [header] + table:
        print("  ".join(value.rjust(width) for value, width in zip(row, widths)))
    print("(latency and TTFT ratios: below 1 is Tiller faster; req/s and tok/s: above 1 is)")
    for name, f in rows:
        if f["tokens_counted_from_chunks"]:
            print(f"{name} sends no usage in its streams (no stream_options): their text chunks were counted "
                  f"as tokens ({f['tokens_counted_from_chunks']:.0f} streams)")
    print(f"llama_cpp.server serves one request at a time (one model behind a lock); run with "
          f"--n_threads {args.threads} --n_threads_batch {args.threads} --n_ctx {args.ctx} "
          f"--interrupt_requests False --logits_all False. tiller serve: --parallel {args.parallel}.")
    print()
    scale = figures["tiller"]["tok_s"] / figures["tiller 1 at a time"]["tok_s"]
    cost = 1 - figures["tiller vectors"]["tok_s"] / figures["tiller unsteered"]["tok_s"]
    print(f"Tiller, aggregate tok/s with {args.concurrency} at a time against 1 alone: "
          f"{figures['tiller']['tok_s']:.1f} / {figures['tiller 1 at a time']['tok_s']:.1f} = {scale:.2f}x "
          f"(target >= 3x)")
    print(f"Tiller, {args.concurrency} at a time each with a different control vector against unsteered: "
          f"{figures['tiller vectors']['tok_s']:.1f} / {figures['tiller unsteered']['tok_s']:.1f} tok/s, "
          f"cost {cost * 100:.1f}% (target < 5%)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", "-m", default="smollm2-135m-instruct", help="a model name or a .gguf path")
    parser.add_argument("--model-dir", type=Path,
                        default=Path(os.environ.get("TILLER_MODELS", Path.home() / ".cache" / "tiller" / "models")))
    parser.add_argument("--threads", "-t", type=int, default=2)
    parser.add_argument("--ctx", "-c", type=int, default=1024, help="context positions (per session for Tiller)")
    parser.add_argument("--requests", "-n", type=int, default=64, help="requests per load")
    parser.add_argument("--concurrency", "-C", type=int, default=8, help="requests at a time")
    parser.add_argument("--parallel", type=int, default=8, help="tiller serve --parallel")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of the table")
    args = parser.parse_args()
    for name in ("threads", "ctx", "requests", "concurrency", "parallel", "max_tokens", "reps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if not TILLER.is_file():
        raise SystemExit(f"serve-vs-llamacpp: no {TILLER} (scripts/build.sh release)")
    figures, samples = measure(args)
    if args.json:
        print(json.dumps({"settings": vars(args) | {"model_dir": str(args.model_dir)}, "medians": figures,
                          "samples": samples}, indent=1))
    else:
        print_report(args, figures)


if __name__ == "__main__":
    main()
