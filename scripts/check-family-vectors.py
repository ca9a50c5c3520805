#!/usr/bin/env python3
"""Checks that a control vector `tiller vector train` writes on each family's random-weight model
loads in llama.cpp and steers it as it steers Tiller.

For each family's F32 model (<models>/random/<family>-F32.gguf, scripts/make-test-models.sh):
trains a mean-difference vector with build/tiller on tests/data/train/pairs.jsonl, reads it the
way llama.cpp's common code does (make-steering-goldens.load_cvec), applies it through
llama_set_adapter_cvec (blocks 1 to n_layer - 1, scale 1), and compares llama.cpp's steered
logits on one held-out text with `tiller logits --control-vector` on the same text: mean KL
(llama.cpp || Tiller) and top-1 agreement, beside how far the vector moves llama.cpp's own
distribution (KL steered || unsteered), so that a vector that did nothing cannot pass.
Prints one line per family; exits non-zero when a family's KL exceeds 0.005 or its top-1 is
below 99%. Run it with the oracle's python (scripts/oracle-env.sh) after building Tiller:
  $(scripts/oracle-env.sh) scripts/check-family-vectors.py
"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from golden_support import load_script, quiet_llama_cpp

L = quiet_llama_cpp()
HERE = Path(__file__).resolve().parent
REPO = HERE.parent


fwd = load_script("make_forward_goldens", "make-forward-goldens.py")
steer = load_script("make_steering_goldens", "make-steering-goldens.py")
FAMILIES = ("llama", "qwen2", "qwen3", "phi3", "gemma2", "gemma3", "gpt2")
TILLER = REPO / "build" / "tiller"


def main():
    text = json.loads((REPO / "tests/data/forward/texts.jsonl").read_text().split("\n")[5])["text"][:700]
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for family in FAMILIES:
            model = fwd.MODELS / "random" / f"{family}-F32.gguf"
            vector = Path(tmp) / f"{family}.gguf"
            subprocess.run([TILLER, "vector", "train", "-m", model, "--pairs", REPO / "tests/data/train/pairs.jsonl",
                            "-o", vector], check=True, capture_output=True)
            ours_path = Path(tmp) / f"{family}.npy"
            subprocess.run([TILLER, "logits", "-m", model, "-p", text, "--npy", ours_path, "-c", str(fwd.N_CTX),
                            "--control-vector", vector], check=True, capture_output=True)
            ours = np.load(ours_path)
            llm = fwd.open_model(model)
            n_embd, n_layer = L.llama_model_n_embd(llm.model), L.llama_model_n_layer(llm.model)
            ids = fwd.tokenize(llm, text)
            plain = fwd.evaluate(llm, ids)
            steer.set_cvec(llm._ctx.ctx, n_embd, steer.load_cvec([(vector, 1.0)], n_embd), 1, n_layer - 1)
            theirs = fwd.evaluate(llm, ids)
            assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
            kl = float(np.mean(fwd.kl_per_row(theirs, ours)))
            moved = float(np.mean(fwd.kl_per_row(theirs, plain)))
            top1 = float(np.mean(theirs.argmax(1) == ours.argmax(1)))
            ok = kl <= 0.005 and top1 >= 0.99 and moved > 10 * max(kl, 1e-6)
            failed |= not ok
            print(f"{family:7s} {len(ids)} positions: KL(llama.cpp || Tiller) {kl:.2e}, top-1 {100 * top1:.2f}%, "
                  f"the vector moves llama.cpp by KL {moved:.3f}: {'ok' if ok else 'FAILED'}", flush=True)
            del llm
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
