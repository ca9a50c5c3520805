#!/usr/bin/env python3
"""Writes the tokenizer goldens the C++ tests compare against, with llama.cpp as the oracle.

Reads tests/data/tokenizer/corpus.jsonl (scripts/make-tokenizer-corpus.py) and, for
each model, writes tests/data/tokenizer/<model>.json holding what llama.cpp (through
llama-cpp-python, pinned in scripts/oracle-env.sh) answers for:
  tokenize      every corpus entry in the 4 modes add_special x parse_special
  detokenize    llama_detokenize of the ids of one tokenize mode, in 3 flag variants
  token_pieces  llama_token_to_piece of every vocabulary id (in full or hashed, see header)
  roundtrip     which ids come back as themselves from tokenize(piece(id))
  special       bos/eos/eot/... ids, add_bos/add_eos, eog ids, token attribute histograms
The "header" object of each file documents the exact calls and flags.
Run it through scripts/make-goldens.sh, which provides the pinned environment.

  --bench   instead of writing goldens, measures llama.cpp tokenization throughput on
            about 1 MiB of corpus text (median of 5) and prints it.
"""
import collections
import ctypes
import hashlib
import json
import os
import statistics
import struct
import sys
import time
from pathlib import Path

from golden_support import quiet_llama_cpp, sha256_file

# Some corpus entries make llama.cpp abort (without gdb, thanks to quiet_llama_cpp) or
# warn (a doubled BOS, provoked on purpose); neither belongs in the output.
L = quiet_llama_cpp()

import gguf
import llama_cpp

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data" / "tokenizer"
CORPUS = DATA / "corpus.jsonl"
MODELS = Path(os.environ.get("TILLER_MODELS", Path.home() / ".cache" / "tiller" / "models"))
MODEL_NAMES = ("smollm2-135m-instruct", "gemma-3-270m")

MODES = [(a, p) for p in (0, 1) for a in (0, 1)]  # (add_special, parse_special)
FULL_PIECES_LIMIT = 100_000  # vocabularies up to this size store every piece in full
PIECE_CHUNK = 4096  # ids per chunk hash

ATTR_NAMES = {
    0: "UNDEFINED", 1 << 0: "UNKNOWN", 1 << 1: "UNUSED", 1 << 2: "NORMAL", 1 << 3: "CONTROL",
    1 << 4: "USER_DEFINED", 1 << 5: "BYTE", 1 << 6: "NORMALIZED", 1 << 7: "LSTRIP",
    1 << 8: "RSTRIP", 1 << 9: "SINGLE_WORD",
}
GGUF_TYPE_NAMES = {1: "NORMAL", 2: "UNKNOWN", 3: "CONTROL", 4: "USER_DEFINED", 5: "UNUSED", 6: "BYTE"}


def mode_key(add_special, parse_special):
    return f"special{add_special}_parse{parse_special}"


def load_corpus():
    # split on "\n" only: entries may hold U+2028 or U+0085, which str.splitlines() breaks on
    raw = CORPUS.read_bytes()
    entries = []
    for line in raw.decode("utf-8").split("\n"):
        if not line:
            continue
        obj = json.loads(line)
        data = obj["text"].encode("utf-8") if "text" in obj else bytes.fromhex(obj["hex"])
        entries.append((obj["name"], data))
    return entries, hashlib.sha256(raw).hexdigest()


def attr_names(attr):
    if attr == 0:
        return "UNDEFINED"
    return "|".join(name for bit, name in ATTR_NAMES.items() if bit and attr & bit)


class Oracle:
    """llama.cpp's vocabulary calls, made with buffers large enough for any answer."""

    def __init__(self, path):
        self.llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
        self.vocab = L.llama_model_get_vocab(self.llm.model)
        self.n_vocab = L.llama_vocab_n_tokens(self.vocab)
        self._tok_buf = (L.llama_token * 4096)()
        self._piece_buf = ctypes.create_string_buffer(256)

    def tokenize(self, data, add_special, parse_special):
        # the documented high-level call; llama-cpp-python's add_bos is llama_tokenize's add_special
        return self.llm.tokenize(data, add_bos=bool(add_special), special=bool(parse_special))

    def tokenize_raw(self, data, add_special, parse_special):
        # llama_tokenize straight, one pass with a reused buffer (the wrapper above sizes its
        # first buffer by n_ctx_train, which is 0 for a vocab-only model, so it always runs twice)
        n = L.llama_tokenize(self.vocab, data, len(data), self._tok_buf, len(self._tok_buf),
                             bool(add_special), bool(parse_special))
        if n < 0:
            self._tok_buf = (L.llama_token * (-n))()
            n = L.llama_tokenize(self.vocab, data, len(data), self._tok_buf, len(self._tok_buf),
                                 bool(add_special), bool(parse_special))
            assert n >= 0
        return list(self._tok_buf[:n])

    def tokenize_guarded(self, data, add_special, parse_special, raw=False):
        """The ids, or None when llama.cpp aborts the process on this input.

        Valid UTF-8 never aborts it, so only other inputs pay for a forked child. (llama.cpp's
        BPE pre-tokenizer throws std::invalid_argument "invalid codepoint" out of llama_tokenize,
        which terminates, on 4-byte sequences that decode above U+10FFFF, e.g. F4 90 80 80.)"""
        call = self.tokenize_raw if raw else self.tokenize
        if _valid_utf8(data):
            return call(data, add_special, parse_special)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            ids = call(data, add_special, parse_special)
            with os.fdopen(write_end, "w") as out:
                out.write(json.dumps(ids))
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end) as inp:
            answer = inp.read()
        _, status = os.waitpid(pid, 0)
        if status != 0:
            return None
        return json.loads(answer)

    def piece(self, token, special):
        n = L.llama_token_to_piece(self.vocab, token, self._piece_buf, len(self._piece_buf), 0, special)
        if n < 0:
            self._piece_buf = ctypes.create_string_buffer(-n)
            n = L.llama_token_to_piece(self.vocab, token, self._piece_buf, len(self._piece_buf), 0, special)
        assert n >= 0
        return self._piece_buf.raw[:n]

    def detokenize(self, ids, remove_special, unparse_special):
        arr = (L.llama_token * max(1, len(ids)))(*ids)
        size = 64 * len(ids) + 64
        buf = ctypes.create_string_buffer(size)
        n = L.llama_detokenize(self.vocab, arr, len(ids), buf, size, remove_special, unparse_special)
        if n < 0:
            size = -n
            buf = ctypes.create_string_buffer(size)
            n = L.llama_detokenize(self.vocab, arr, len(ids), buf, size, remove_special, unparse_special)
        assert n >= 0
        return buf.raw[:n]


def special_section(oracle, path):
    v = oracle.vocab
    ids = {name: getattr(L, f"llama_vocab_{name}")(v) for name in
           ("bos", "eos", "eot", "sep", "nl", "pad", "cls", "fim_pre", "fim_suf", "fim_mid",
            "fim_pad", "fim_rep", "fim_sep")}
    attrs = [L.llama_vocab_get_attr(v, t) for t in range(oracle.n_vocab)]
    histogram = collections.Counter(attrs)
    reader = gguf.GGUFReader(path)
    gguf_types = collections.Counter(int(x) for x in reader.fields["tokenizer.ggml.token_type"].contents())
    return {
        "n_vocab": oracle.n_vocab,
        "vocab_type": L.llama_vocab_type(v),
        "ids": ids,
        "add_bos": bool(L.llama_vocab_get_add_bos(v)),
        "add_eos": bool(L.llama_vocab_get_add_eos(v)),
        "add_sep": bool(L.llama_vocab_get_add_sep(v)),
        "eog_ids": [t for t in range(oracle.n_vocab) if L.llama_vocab_is_eog(v, t)],
        "control_ids_count": sum(1 for t in range(oracle.n_vocab) if L.llama_vocab_is_control(v, t)),
        "attr_histogram": [{"attr": a, "names": attr_names(a), "count": histogram[a]}
                           for a in sorted(histogram)],
        "gguf_token_type_histogram": [{"type": t, "name": GGUF_TYPE_NAMES.get(t, "?"),
                                       "count": gguf_types[t]} for t in sorted(gguf_types)],
    }, attrs


def pieces_section(oracle, attrs):
    n = oracle.n_vocab
    with_special = [oracle.piece(t, True) for t in range(n)]
    without_special = [oracle.piece(t, False) for t in range(n)]

    def digest(ids):
        h = hashlib.sha256()
        for t in ids:
            h.update(struct.pack("<I", len(with_special[t])))
            h.update(with_special[t])
        return h.hexdigest()

    section = {
        "n": n,
        "sha256": digest(range(n)),
        "chunk_size": PIECE_CHUNK,
        "chunk_sha256": [digest(range(s, min(n, s + PIECE_CHUNK))) for s in range(0, n, PIECE_CHUNK)],
        "not_normal": [[t, attrs[t], with_special[t].hex()] for t in range(n) if attrs[t] != 4],
        "special0_differs": [[t, without_special[t].hex()] for t in range(n)
                             if without_special[t] != with_special[t]],
        "full": n <= FULL_PIECES_LIMIT,
    }
    if section["full"]:
        section["pieces"] = [p.hex() for p in with_special]
    else:
        section["sample_every"] = 97
        section["sample"] = [[t, with_special[t].hex()] for t in range(0, n, 97)]
    return section, with_special


def roundtrip_section(oracle, pieces):
    ok, aborted = [], []
    for t, p in enumerate(pieces):
        ids = oracle.tokenize_guarded(p, False, True, raw=True)
        if ids is None:
            aborted.append(t)
        elif ids == [t]:
            ok.append(t)
    if len(ok) <= len(pieces) - len(ok):
        return {"list": "roundtrips", "n_roundtrip": len(ok), "ids": ok, "aborted_ids": aborted}
    ok_set = set(ok)
    failing = [t for t in range(len(pieces)) if t not in ok_set]
    return {"list": "fails", "n_roundtrip": len(ok), "ids": failing, "aborted_ids": aborted}


ORACLE_ABORT = ("llama.cpp aborted the process: llama_tokenize threw std::invalid_argument "
                "'invalid codepoint' (a 4-byte UTF-8 form decoding above U+10FFFF)")

HEADER_NOTES = {
    "tokenize": "ids = Llama.tokenize(bytes, add_bos=A, special=B), which is llama_tokenize("
                "vocab, text, len, ..., add_special=A, parse_special=B); key specialA_parseB. "
                "A case whose ids is null made llama.cpp abort the process in every mode "
                "(oracle_error says why; its detokenize entries are null too): the golden only "
                "asks a tokenizer not to crash on it",
    "detokenize": "bytes (hex) of llama_detokenize(vocab, ids, n, buf, size, remove_special, "
                  "unparse_special) called directly (not Llama.detokenize, whose 32-byte piece "
                  "buffer is too small for some pieces and which strips a space after BOS). "
                  "Variants: remove0_unparse1 and remove0_unparse0 take the ids of special0_parse1; "
                  "remove1_unparse0 takes the ids of special1_parse1",
    "token_pieces": "piece(t) = llama_token_to_piece(vocab, t, buf, size, lstrip=0, special=true). "
                    "sha256 is over, for t = 0..n-1 in order, uint32 little-endian len(piece) "
                    "followed by the piece bytes; chunk_sha256[k] is the same over ids "
                    "k*chunk_size .. min(n, (k+1)*chunk_size)-1. not_normal lists [id, "
                    "llama_vocab_get_attr, piece hex] for every id whose attr is not NORMAL (4). "
                    "special0_differs lists [id, piece hex with special=false] where that differs. "
                    "If full, pieces holds every piece in hex; otherwise sample holds [id, piece hex] "
                    "for ids 0, sample_every, 2*sample_every, ...",
    "roundtrip": "t roundtrips when llama_tokenize(piece(t) with special=true, add_special=false, "
                 "parse_special=true) == [t]; ids lists the roundtripping ids if list == "
                 "'roundtrips', or the failing ids if list == 'fails' (whichever is shorter); "
                 "aborted_ids are ids whose piece made llama.cpp abort (they count as failing)",
    "special": "llama_vocab_{bos,eos,eot,...}, llama_vocab_get_add_{bos,eos,sep}, llama_vocab_is_eog, "
               "llama_vocab_is_control, llama_vocab_get_attr over all ids (-1 = none); "
               "gguf_token_type_histogram counts tokenizer.ggml.token_type in the file itself",
}


def goldens_for(model, corpus, corpus_sha):
    path = MODELS / f"{model}.gguf"
    if not path.exists():
        sys.exit(f"{path} is missing: run scripts/fetch-models.sh first")
    oracle = Oracle(path)

    cases = []
    for name, data in corpus:
        ids = {}
        for add_special, parse_special in MODES:
            key = mode_key(add_special, parse_special)
            ids[key] = oracle.tokenize_guarded(data, add_special, parse_special)
            if ids[key] is not None and _valid_utf8(data):
                assert ids[key] == oracle.tokenize_raw(data, add_special, parse_special)
        if any(v is None for v in ids.values()):
            assert all(v is None for v in ids.values()), name
            cases.append({"name": name, "ids": None, "oracle_error": ORACLE_ABORT})
        else:
            cases.append({"name": name, "ids": ids})

    detok = []
    for case in cases:
        if case["ids"] is None:
            detok.append({"name": case["name"], "remove0_unparse1": None, "remove0_unparse0": None,
                          "remove1_unparse0": None})
            continue
        ids = case["ids"]["special0_parse1"]
        detok.append({
            "name": case["name"],
            "remove0_unparse1": oracle.detokenize(ids, False, True).hex(),
            "remove0_unparse0": oracle.detokenize(ids, False, False).hex(),
            "remove1_unparse0": oracle.detokenize(case["ids"]["special1_parse1"], True, False).hex(),
        })

    special, attrs = special_section(oracle, path)
    pieces, with_special = pieces_section(oracle, attrs)
    roundtrip = roundtrip_section(oracle, with_special)

    header = {
        "generator": "scripts/make-tokenizer-goldens.py",
        "oracle": f"llama-cpp-python {llama_cpp.__version__} (llama.cpp built by it), "
                  f"Llama(model_path, vocab_only=True)",
        "llama_cpp_python": llama_cpp.__version__,
        "model": model,
        "model_sha256": sha256_file(path),
        "corpus": "tests/data/tokenizer/corpus.jsonl",
        "corpus_sha256": corpus_sha,
        "notes": HEADER_NOTES,
    }
    return {
        "header": header,
        "special": special,
        "tokenize": {"modes": [mode_key(a, p) for a, p in MODES], "cases": cases},
        "detokenize": {"input_modes": {"remove0_unparse1": "special0_parse1",
                                       "remove0_unparse0": "special0_parse1",
                                       "remove1_unparse0": "special1_parse1"},
                       "cases": detok},
        "token_pieces": pieces,
        "roundtrip": roundtrip,
    }


def bench(corpus):
    texts = [data for _, data in corpus if b"\x00" not in data]
    texts = [t for t in texts if _valid_utf8(t)]
    target = 1 << 20
    parts, size, i = [], 0, 0
    while size < target:
        parts.append(texts[i % len(texts)])
        size += len(parts[-1]) + 1
        i += 1
    blob = b"\n".join(parts)
    lines = blob.split(b"\n")
    print(f"bench text: {len(blob)} bytes, {len(lines)} lines, from {len(texts)} corpus entries")
    for model in MODEL_NAMES:
        oracle = Oracle(MODELS / f"{model}.gguf")
        runs = {
            "Llama.tokenize one call": lambda: len(oracle.tokenize(blob, 0, 0)),
            "Llama.tokenize per line": lambda: sum(len(oracle.tokenize(x, 0, 0)) for x in lines),
            "llama_tokenize one call (one pass)": lambda: len(oracle.tokenize_raw(blob, 0, 0)),
            "llama_tokenize per line (one pass)": lambda: sum(len(oracle.tokenize_raw(x, 0, 0))
                                                              for x in lines),
        }
        for label, fn in runs.items():
            times, n_tokens = [], 0
            for _ in range(5):
                start = time.perf_counter()
                n_tokens = fn()
                times.append(time.perf_counter() - start)
            t = statistics.median(times)
            print(f"{model:24s} {label:36s} {n_tokens:8d} tokens  median {t * 1e3:8.1f} ms  "
                  f"{len(blob) / t / 1e6:6.2f} MB/s  {n_tokens / t / 1e6:6.3f} Mtok/s")


def _valid_utf8(data):
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def main():
    corpus, corpus_sha = load_corpus()
    if "--bench" in sys.argv[1:]:
        bench(corpus)
        return
    DATA.mkdir(parents=True, exist_ok=True)
    for model in MODEL_NAMES:
        start = time.perf_counter()
        payload = goldens_for(model, corpus, corpus_sha)
        target = DATA / f"{model}.json"
        target.write_text(json.dumps(payload, separators=(",", ":")) + "\n")
        print(f"wrote {target.relative_to(REPO)} ({target.stat().st_size} bytes, "
              f"{time.perf_counter() - start:.1f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
