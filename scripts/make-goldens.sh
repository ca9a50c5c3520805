#!/usr/bin/env bash
# Regenerates every committed golden file from the oracles (the gguf package,
# llama.cpp through llama-cpp-python), in the pinned environment of oracle-env.sh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/fetch-models.sh"
python="$("$here/oracle-env.sh")"
"$python" "$here/make-dequant-goldens.py"
