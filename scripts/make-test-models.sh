#!/usr/bin/env bash
# Writes (once) the random-weight models of every architecture family that
# tests/test_family_golden.cpp checks, into ${TILLER_MODELS:-~/.cache/tiller/models}/random
# (scripts/make-family-models.py; files already there with the sha256 of
# scripts/family-models.tsv are kept). Its Python environment is a small pinned venv
# outside the repo, ${TILLER_CACHE:-~/.cache/tiller}/tools-venv (gguf and numpy only),
# built once as scripts/oracle-env.sh builds the oracle's. Needs SmolLM2's file, whose
# tokenizer the models borrow: run it after scripts/fetch-models.sh.
#   scripts/make-test-models.sh [make-family-models.py options]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

cache="${TILLER_CACHE:-$HOME/.cache/tiller}"
venv="$cache/tools-venv"
pins=(gguf==0.19.0 numpy==2.4.6)
stamp="$venv/.tiller-pins"

if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "${pins[*]}" ]; then
  echo "make-test-models: building $venv with ${pins[*]}" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip >&2
  "$venv/bin/python" -m pip install -q "${pins[@]}" >&2
  echo "${pins[*]}" > "$stamp"
fi
"$venv/bin/python" "$here/make-family-models.py" "$@"
