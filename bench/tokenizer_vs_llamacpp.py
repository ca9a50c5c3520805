#!/usr/bin/env python3
"""Tokenization throughput, Tiller against llama.cpp (through llama-cpp-python), on
the same text, model and machine, in one run with the two interleaved.

Run through bench/tokenizer-vs-llamacpp, which provides the pinned oracle
environment and a release build. Inputs are made from the valid-UTF-8 entries of
tests/data/tokenizer/corpus.jsonl, repeated to the size wanted:
  mixed     entries joined by newlines (prose, code, CJK, emoji, numbers ...)
  one-line  the same with every newline turned into a space: a single long line
For each input it prints the median time of each engine and the ratio
llama.cpp time / Tiller time (above 1: Tiller is faster).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from golden_support import quiet_llama_cpp  # noqa: E402

L = quiet_llama_cpp()
import llama_cpp  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
MODELS = Path(os.environ.get("TILLER_MODELS", Path.home() / ".cache" / "tiller" / "models"))
BENCH = REPO / "build" / "bench" / "tiller-bench-tokenize"


def corpus_text():
    lines = []
    for line in (REPO / "tests" / "data" / "tokenizer" / "corpus.jsonl").open(encoding="utf-8"):
        if line.strip():
            entry = json.loads(line)
            if "text" in entry:
                lines.append(entry["text"])
    return "\n".join(lines) + "\n"


def make_input(size, one_line):
    text = corpus_text()
    if one_line:
        text = text.replace("\r", " ").replace("\n", " ")
    data = text.encode() * (size // len(text.encode()) + 1)
    return data[:size].decode("utf-8", "ignore").encode()


class LlamaCpp:
    def __init__(self, model):
        self.llm = llama_cpp.Llama(model_path=str(MODELS / f"{model}.gguf"), vocab_only=True, verbose=False)
        self.vocab = L.llama_model_get_vocab(self.llm.model)
        self.buffer = (L.llama_token * 16)()

    def time(self, data, per_line):
        pieces = data.split(b"\n") if per_line else [data]
        needed = max(len(p) for p in pieces) + 16
        if len(self.buffer) < needed:
            self.buffer = (L.llama_token * needed)()
        start = time.perf_counter()
        total = 0
        for piece in pieces:
            n = L.llama_tokenize(self.vocab, piece, len(piece), self.buffer, len(self.buffer), False, False)
            assert n >= 0
            total += n
        return time.perf_counter() - start, total


def time_tiller(model, path, per_line):
    command = [str(BENCH), model, str(path), "--reps", "1"] + (["--per-line"] if per_line else [])
    result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    return result["seconds"][0], result["tokens"]


def compare(model, oracle, label, data, per_line, reps, scratch):
    path = scratch / f"{model}-{label}.txt"
    path.write_bytes(data)
    tiller_times, llama_times = [], []
    for _ in range(reps):  # interleaved, so both see the same machine load
        seconds, tiller_tokens = time_tiller(model, path, per_line)
        tiller_times.append(seconds)
        seconds, llama_tokens = oracle.time(data, per_line)
        llama_times.append(seconds)
    tiller, llama = statistics.median(tiller_times), statistics.median(llama_times)
    same = "same tokens" if tiller_tokens == llama_tokens else f"TOKEN COUNTS DIFFER {tiller_tokens} vs {llama_tokens}"
    print(f"| {model} | {label} | {len(data) / 1e6:.3f} | {tiller * 1e3:9.1f} | {llama * 1e3:9.1f} | "
          f"{llama / tiller:6.2f} | {len(data) / tiller / 1e6:6.1f} | {same} |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--models", default="smollm2-135m-instruct,gemma-3-270m")
    parser.add_argument("--scaling", action="store_true", help="also 1 KB .. 10 MB single-line inputs")
    args = parser.parse_args()
    print(f"llama-cpp-python {llama_cpp.__version__}; {L.llama_print_system_info().decode().strip()}")
    print("| model | input | MB | Tiller ms | llama.cpp ms | llama.cpp/Tiller | Tiller MB/s | check |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        for model in args.models.split(","):
            oracle = LlamaCpp(model)
            mixed = make_input(1 << 20, one_line=False)
            compare(model, oracle, "1 MB mixed, one call", mixed, False, args.reps, scratch)
            compare(model, oracle, "1 MB mixed, per line", mixed, True, args.reps, scratch)
            if args.scaling:
                for size, name in ((1 << 10, "1 KB"), (100 << 10, "100 KB"), (1 << 20, "1 MB"), (10 << 20, "10 MB")):
                    reps = args.reps if size <= (1 << 20) else max(1, args.reps // 2)
                    compare(model, oracle, f"{name} one line", make_input(size, one_line=True), False, reps, scratch)


if __name__ == "__main__":
    sys.exit(main())
