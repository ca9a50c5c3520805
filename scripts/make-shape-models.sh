#!/usr/bin/env bash
# Random-weight models in the shapes of Llama-3.2-1B, Qwen2.5-1.5B and Llama-3.1-8B, Q4_K_M by
# llama.cpp's quantizer, into the model cache (scripts/make-shape-models.py says how).
#   scripts/make-shape-models.sh [--models a,b] [--keep-f16] [--update-manifest]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/fetch-models.sh >/dev/null
python="$(scripts/oracle-env.sh)"
exec "$python" scripts/make-shape-models.py "$@"
