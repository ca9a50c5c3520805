#!/usr/bin/env bash
# Regenerates every committed golden file from the oracles (the gguf package,
# llama.cpp through llama-cpp-python), in the pinned environment of oracle-env.sh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/fetch-models.sh"
python="$("$here/oracle-env.sh")"
"$python" "$here/make-dequant-goldens.py"
# The tokenizer corpus needs only the standard library; goldens come from llama.cpp.
"$python" "$here/make-tokenizer-corpus.py"
"$python" "$here/make-tokenizer-goldens.py"
"$python" "$here/make-chat-goldens.py"
"$python" "$here/make-forward-goldens.py"
# llama.cpp against itself (F32 vs F16 KV cache): the spread the forward and steering tests' bounds derive from.
"$python" "$here/make-forward-goldens.py" --self-agreement
"$here/build.sh" release >/dev/null  # the steering goldens run tiller itself
"$python" "$here/make-steering-goldens.py"
# The random-weight family models (written once, pinned by scripts/family-models.tsv) and
# llama.cpp's goldens of them: tests/data/families.
"$here/make-test-models.sh"
"$python" "$here/make-family-goldens.py"
# (The NumPy reference for `tiller vector train` is no golden: TrainNumpyReference
# computes it at test time, scripts/numpy-train-reference.py, on the machine under test.)
