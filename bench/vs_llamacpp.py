#!/usr/bin/env python3
"""Prompt processing (ppN) and generation (tgN) speed, Tiller against llama.cpp
(the pinned llama-cpp-python's library, through its low-level API), on the same
model, threads, lengths and machine.

Run through bench/vs-llamacpp, which provides the pinned oracle environment and a
release build. The two engines run interleaved, rep by rep (Tiller, llama.cpp,
Tiller, ...), each with its model loaded once (Tiller in one `tiller bench
--on-request` process per model; --fresh-processes starts one per rep, load
included), so that noise from other work on the machine hits both alike; the
table gives each engine's median tok/s and the ratio of medians Tiller/llama.cpp
(above 1: Tiller is faster). Both engines: a context of exactly the test's tokens,
n_batch 512, f16 KV cache, one untimed warm-up run before each timed one.
ppN is one llama_decode of N tokens in a cleared cache; tgN is N single-token
decodes, each computing its logits; tgNxS (--sequences S) is S sequences decoding
together, N steps of one llama_decode of S tokens (one per sequence, each computing
its logits), tok/s counting all S x N. Progress goes to stderr.
"""
import argparse
import ctypes
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from golden_support import quiet_llama_cpp  # noqa: E402

L = quiet_llama_cpp()

REPO = Path(__file__).resolve().parent.parent
TILLER = REPO / "build" / "tiller"
STREAM = REPO / "build" / "bench" / "tiller-bench-stream"
N_BATCH = 512
GGML_TYPE_F16 = 1
NOT_TEXT = (1 << 3) | (1 << 0) | (1 << 1)  # control, unknown, unused: as Tiller's bench skips


def progress(message):
    print(message, file=sys.stderr, flush=True)


def int_list(text):
    values = [int(v) for v in text.split(",")]
    if any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got '{text}'")
    return values


def bench_tokens(vocab, count):
    """The ids `tiller bench` uses (src/cli/bench_runner.cpp: the same generator and filter)."""
    n_vocab = L.llama_vocab_n_tokens(vocab)
    mask = (1 << 64) - 1
    state, tokens, attempt = 0x2545F4914F6CDD1D, [], 0
    while len(tokens) < count:
        state = (state * 6364136223846793005 + 1442695040888963407) & mask
        token = (state >> 33) % n_vocab
        if (L.llama_vocab_get_attr(vocab, token) & NOT_TEXT) == 0 or attempt > 1000 * count:
            tokens.append(token)
        attempt += 1
    return tokens


class LlamaCpp:
    def __init__(self, path):
        params = L.llama_model_default_params()
        self.model = L.llama_model_load_from_file(str(path).encode(), params)
        if not self.model:
            raise SystemExit(f"vs-llamacpp: llama.cpp could not load {path}")
        self.vocab = L.llama_model_get_vocab(self.model)

    def _context(self, n_tokens, threads, n_seq=1):
        params = L.llama_context_default_params()
        params.n_ctx = n_tokens * n_seq
        params.n_seq_max = n_seq
        params.n_batch = N_BATCH
        params.n_ubatch = N_BATCH
        params.n_threads = threads
        params.n_threads_batch = threads
        params.type_k = GGML_TYPE_F16
        params.type_v = GGML_TYPE_F16
        params.no_perf = True
        context = L.llama_init_from_model(self.model, params)
        if not context:
            raise SystemExit("vs-llamacpp: llama.cpp could not create a context")
        return context

    @staticmethod
    def _decode(context, batch, tokens, first_position):
        batch.n_tokens = len(tokens)
        for i, token in enumerate(tokens):
            batch.token[i] = token
            batch.pos[i] = first_position + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = i == len(tokens) - 1
        if L.llama_decode(context, batch) != 0:
            raise SystemExit("vs-llamacpp: llama_decode failed")

    def _one_run(self, context, batch, tokens, n_prompt, n_gen):
        L.llama_memory_clear(L.llama_get_memory(context), True)
        start = time.perf_counter()
        if n_prompt:
            for first in range(0, n_prompt, N_BATCH):  # llama_decode takes at most n_batch tokens
                self._decode(context, batch, tokens[first:min(first + N_BATCH, n_prompt)], first)
        else:
            for i in range(n_gen):
                self._decode(context, batch, tokens[i:i + 1], i)
        L.llama_synchronize(context)
        return (n_prompt + n_gen) / (time.perf_counter() - start)

    def tok_s(self, tokens, n_prompt, n_gen, threads):
        """One warm-up run, then one timed run, in a context made for the test."""
        context = self._context(n_prompt + n_gen, threads)
        batch = L.llama_batch_init(max(min(n_prompt, N_BATCH), 1), 0, 1)
        try:
            self._one_run(context, batch, tokens, n_prompt, n_gen)
            return self._one_run(context, batch, tokens, n_prompt, n_gen)
        finally:
            L.llama_batch_free(batch)
            L.llama_free(context)

    def batched_tok_s(self, tokens, n_gen, n_seq, threads):
        """tg with n_seq sequences in one batch per step: one warm-up run, one timed run."""
        context = self._context(n_gen, threads, n_seq)
        batch = L.llama_batch_init(n_seq, 0, n_seq)
        try:
            def one_run():
                L.llama_memory_clear(L.llama_get_memory(context), True)
                start = time.perf_counter()
                for i in range(n_gen):
                    batch.n_tokens = n_seq
                    for s in range(n_seq):
                        batch.token[s] = tokens[i + s]
                        batch.pos[s] = i
                        batch.n_seq_id[s] = 1
                        batch.seq_id[s][0] = s
                        batch.logits[s] = True
                    if L.llama_decode(context, batch) != 0:
                        raise SystemExit("vs-llamacpp: llama_decode failed")
                L.llama_synchronize(context)
                return n_seq * n_gen / (time.perf_counter() - start)
            one_run()
            return one_run()
        finally:
            L.llama_batch_free(batch)
            L.llama_free(context)

    def close(self):
        L.llama_model_free(self.model)


def bench_flags(model_path, n_prompt, n_gen, threads, sequences):
    return ["-m", str(model_path), "-p", str(n_prompt), "-n", str(n_gen), "-t", ",".join(map(str, threads)),
            "-r", "1", "-b", str(N_BATCH), "-s", ",".join(map(str, sequences))]


class ResidentTiller:
    """One `tiller bench --on-request` for a model: loaded once, like llama.cpp's model
    here, and asked for one warm-up and one timed run of a test per rep."""

    def __init__(self, model_path, n_prompt, n_gen, threads, sequences):
        self.process = subprocess.Popen(
            [str(TILLER), "bench", "--on-request"] + bench_flags(model_path, n_prompt, n_gen, threads, sequences),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def rep(self, tests, threads):
        """{test name: entry} for one run of each test, in order."""
        entries = {}
        for test in tests:
            try:
                self.process.stdin.write(f"{test} {threads}\n")
                self.process.stdin.flush()
                line = self.process.stdout.readline()
            except BrokenPipeError:  # it ended before reading the request (its error is on stderr)
                line = ""
            if not line:
                raise SystemExit(f"vs-llamacpp: tiller bench --on-request ended (exit {self.process.wait()})")
            entries[test] = json.loads(line)
        return entries

    def close(self):
        self.process.stdin.close()
        if self.process.wait() != 0:
            raise SystemExit(f"vs-llamacpp: tiller bench --on-request failed (exit {self.process.returncode})")


def tiller_fresh_rep(model_path, n_prompt, n_gen, threads, sequences):
    """One `tiller bench -r 1` in a process of its own (load, warm-up, run): {test name: entry}."""
    out = subprocess.run([str(TILLER), "bench", "--json"] + bench_flags(model_path, n_prompt, n_gen, [threads],
                                                                         sequences),
                         check=True, capture_output=True, text=True).stdout
    return {entry["test"]: entry for entry in json.loads(out)}


def spread(samples):
    """(max - min) / median of a cell's samples: how far apart the reps landed."""
    return (max(samples) - min(samples)) / statistics.median(samples)


def stream_bandwidth(threads):
    out = subprocess.run([str(STREAM), "--json", "--mib", "512", "--reps", "5", "--threads",
                          ",".join(map(str, threads))], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def measure(args):
    cells = []
    for model in args.models:
        path = Path(model) if model.endswith(".gguf") else args.model_dir / f"{model}.gguf"
        progress(f"vs-llamacpp: {model}")
        llama = LlamaCpp(path)
        tokens = bench_tokens(llama.vocab, max(args.n_prompt, args.n_gen + max(args.sequences) - 1))
        tests = [f"pp{args.n_prompt}"] + [f"tg{args.n_gen}" + (f"x{s}" if s > 1 else "") for s in args.sequences]
        resident = None if args.fresh_processes else ResidentTiller(path, args.n_prompt, args.n_gen, args.threads,
                                                                     args.sequences)
        for threads in args.threads:
            samples = {"tiller": {t: [] for t in tests}, "llama.cpp": {t: [] for t in tests}}
            bytes_per_token = None
            for rep in range(args.reps):
                progress(f"  {threads} threads, rep {rep + 1}/{args.reps}")
                tiller = (tiller_fresh_rep(path, args.n_prompt, args.n_gen, threads, args.sequences)
                          if resident is None else resident.rep(tests, threads))
                for test in tests:
                    samples["tiller"][test].append(tiller[test]["tok_s"])
                bytes_per_token = tiller[tests[1]]["weight_bytes_per_token"]
                samples["llama.cpp"][tests[0]].append(llama.tok_s(tokens, args.n_prompt, 0, threads))
                for test, n_seq in zip(tests[1:], args.sequences):
                    samples["llama.cpp"][test].append(
                        llama.tok_s(tokens, 0, args.n_gen, threads) if n_seq == 1
                        else llama.batched_tok_s(tokens, args.n_gen, n_seq, threads))
            for test, n_seq in zip(tests, [0] + args.sequences):
                kind = "pp" if n_seq == 0 else "tg"
                ours = statistics.median(samples["tiller"][test])
                theirs = statistics.median(samples["llama.cpp"][test])
                cell = {"model": model, "threads": threads, "test": test,
                        "tiller_tok_s": ours, "llamacpp_tok_s": theirs, "ratio": ours / theirs,
                        "tiller_samples": samples["tiller"][test], "llamacpp_samples": samples["llama.cpp"][test],
                        "tiller_spread": spread(samples["tiller"][test]),
                        "llamacpp_spread": spread(samples["llama.cpp"][test])}
                if n_seq == 1:  # every sequence reads the weights once per step: GB/s only alone
                    cell["weight_bytes_per_token"] = bytes_per_token
                    cell["tiller_gb_s"] = bytes_per_token * ours / 1e9
                    cell["llamacpp_gb_s"] = bytes_per_token * theirs / 1e9
                cells.append(cell)
        if resident is not None:
            resident.close()
        llama.close()
    return cells


def print_table(cells, stream, markdown):
    header = ["model", "threads", "test", "Tiller tok/s", "llama.cpp tok/s", "Tiller/llama.cpp",
              "tg GB/s Tiller", "tg GB/s llama.cpp", "spread Tiller", "spread llama.cpp"]
    rows = [[c["model"], str(c["threads"]), c["test"], f"{c['tiller_tok_s']:.2f}", f"{c['llamacpp_tok_s']:.2f}",
             f"{c['ratio']:.2f}", f"{c['tiller_gb_s']:.2f}" if "tiller_gb_s" in c else "",
             f"{c['llamacpp_gb_s']:.2f}" if "llamacpp_gb_s" in c else "",
             f"{100 * c['tiller_spread']:.0f}%", f"{100 * c['llamacpp_spread']:.0f}%"] for c in cells]
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
        for row in [header] + rows:
            print("  ".join(value.rjust(width) for value, width in zip(row, widths)))
    print()
    print("memory bandwidth (tiller-bench-stream, 512 MiB arrays; copy counts bytes read + written):")
    for m in stream:
        print(f"  {m['kind']} {m['threads']} thread(s): best {m['best_gb_s']:.2f} GB/s, "
              f"median {m['median_gb_s']:.2f} GB/s")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="smollm2-135m-instruct,gemma-3-270m",
                        type=lambda text: text.split(","), help="model names or .gguf paths, comma-separated")
    parser.add_argument("--model-dir", type=Path,
                        default=Path(__import__("os").environ.get("TILLER_MODELS",
                                                                  Path.home() / ".cache" / "tiller" / "models")))
    parser.add_argument("--threads", "-t", type=int_list, default=[1, 2])
    parser.add_argument("-p", "--n-prompt", type=int, default=512)
    parser.add_argument("-n", "--n-gen", type=int, default=128)
    parser.add_argument("--reps", "-r", type=int, default=5)
    parser.add_argument("--sequences", "-s", type=int_list, default=[1],
                        help="generation tests with this many sequences decoding together (tgNxS), comma-separated")
    parser.add_argument("--fresh-processes", action="store_true",
                        help="a new Tiller process (load, warm-up, run) for every rep, instead of one resident "
                             "process per model as llama.cpp's model stays loaded here")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true")
    output.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    if args.n_prompt <= 0 or args.n_gen <= 0 or args.reps <= 0:
        parser.error("-p, -n and --reps must be positive")

    L.llama_backend_init()
    system_info = L.llama_print_system_info().decode()
    progress(f"llama.cpp system info: {system_info}")
    progress("vs-llamacpp: memory bandwidth")
    stream = stream_bandwidth(args.threads)
    cells = measure(args)
    if args.json:
        print(json.dumps({"llamacpp_system_info": system_info, "stream": stream,
                          "tiller_process": "fresh per rep" if args.fresh_processes else "resident",
                          "cells": cells}, indent=2))
    else:
        print(f"llama.cpp system info: {system_info}")
        tiller_runs = ("a fresh Tiller process per rep" if args.fresh_processes
                       else "each engine's model loaded once")
        print(f"reps: {args.reps}, interleaved, {tiller_runs}; medians shown; "
              f"spread = (max - min) / median of the reps\n")
        print_table(cells, stream, args.markdown)


if __name__ == "__main__":
    main()
