#!/usr/bin/env python3
"""Writes the dequantization goldens the C++ tests compare against.

The reference is the `gguf` Python package (pinned in scripts/oracle-env.sh), a
reader and dequantizer independent of Tiller's. Two files come out:
  tests/data/dequant/synthetic.json  random blocks of every type Tiller dequantizes
  tests/data/dequant/<model>.json     sampled rows of real tensors of each type in each model
Run it through scripts/make-goldens.sh, which provides the pinned environment.
"""
import json
import os
import sys
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize

from golden_support import sha256_file

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "data" / "dequant"
MODELS = Path(os.environ.get("TILLER_MODELS", Path.home() / ".cache" / "tiller" / "models"))

# Byte offsets of the f16 scale fields in one block, which random bytes must not
# turn into NaN or infinity. These types draw from one shared random stream, in
# this order, so their cases stay as first committed.
F16_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
# Types added later: each draws from its own stream, seeded by its type id, so
# that adding one changes no other case.
F16_FIELDS_OWN_STREAM = {
    T.Q2_K: [80, 82], T.Q3_K: [108], T.IQ4_NL: [0], T.IQ4_XS: [0],
}
SEED = 20261127


def floats(values):
    # repr of a float32 widened to a double is exact and parses back to the same float32
    return [float(v) for v in np.asarray(values, dtype=np.float32).reshape(-1)]


def random_blocks(rng, qtype, scale_offsets):
    block_size, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = 6
    raw = rng.integers(0, 256, size=(n_blocks, block_bytes), dtype=np.uint8)
    for b in range(n_blocks):
        for offset in scale_offsets:
            # varied magnitudes and signs, one subnormal scale among them
            scale = np.float16(6e-8) if b == 3 else np.float16(rng.normal(0.0, 0.05))
            raw[b, offset:offset + 2] = np.frombuffer(scale.tobytes(), dtype=np.uint8)
    values = dequantize(raw, qtype)
    return {"type": qtype.name, "n": n_blocks * block_size,
            "bytes_hex": raw.tobytes().hex(), "values": floats(values)}


def synthetic_cases():
    rng = np.random.default_rng(SEED)
    cases = [random_blocks(rng, qtype, offsets) for qtype, offsets in F16_FIELDS.items()]
    specials = [0.0, -0.0, 1.0, -2.5, 65504.0, -65504.0, 6.1e-5, 5.96e-8, -3.0e-6, 0.333]
    f32 = np.concatenate([np.array(specials, np.float32), rng.normal(0, 3, 54).astype(np.float32)])
    f16 = f32.astype(np.float16)
    bf16_bits = (f32.view(np.uint32) >> 16).astype(np.uint16)
    cases.append({"type": "F32", "n": f32.size, "bytes_hex": f32.tobytes().hex(),
                  "values": floats(dequantize(f32.view(np.uint8), T.F32))})
    cases.append({"type": "F16", "n": f16.size, "bytes_hex": f16.tobytes().hex(),
                  "values": floats(dequantize(f16.view(np.uint8), T.F16))})
    cases.append({"type": "BF16", "n": bf16_bits.size, "bytes_hex": bf16_bits.tobytes().hex(),
                  "values": floats(dequantize(bf16_bits.view(np.uint8), T.BF16))})
    for qtype, offsets in F16_FIELDS_OWN_STREAM.items():
        cases.append(random_blocks(np.random.default_rng([SEED, qtype.value]), qtype, offsets))
    return cases


def sampled_rows(path):
    reader = gguf.GGUFReader(path)
    by_type = {}
    for tensor in reader.tensors:
        by_type.setdefault(tensor.tensor_type, []).append(tensor)
    rows = []
    for qtype, tensors in sorted(by_type.items(), key=lambda item: item[0].name):
        picks = {0: None, len(tensors) // 2: None, len(tensors) - 1: None}
        for index in picks:
            tensor = tensors[index]
            row_length = int(tensor.shape[0])
            n_rows = int(tensor.n_elements) // row_length
            data = np.asarray(tensor.data).view(np.uint8).reshape(n_rows, -1)
            for row in sorted({0, n_rows // 2, n_rows - 1}):
                values = dequantize(data[row], qtype).reshape(-1)
                assert values.size == row_length
                rows.append({"tensor": tensor.name, "type": qtype.name, "row": row,
                             "values": floats(values)})
    return rows


def write(name, payload):
    OUT.mkdir(parents=True, exist_ok=True)
    target = OUT / name
    target.write_text(json.dumps(payload, separators=(",", ":")) + "\n")
    print(f"wrote {target.relative_to(REPO)}", file=sys.stderr)


def main():
    header = {"generator": "scripts/make-dequant-goldens.py", "reference": f"gguf {gguf.__version__}"
              if hasattr(gguf, "__version__") else "gguf (pinned in scripts/oracle-env.sh)"}
    write("synthetic.json", {**header, "cases": synthetic_cases()})
    for model in ("smollm2-135m-instruct", "gemma-3-270m"):
        path = MODELS / f"{model}.gguf"
        if not path.exists():
            sys.exit(f"{path} is missing: run scripts/fetch-models.sh first")
        write(f"{model}.json", {**header, "model": model, "model_sha256": sha256_file(path),
                                "rows": sampled_rows(path)})


if __name__ == "__main__":
    main()
