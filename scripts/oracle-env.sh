#!/usr/bin/env bash
# Creates (once) the oracle's Python environment outside the repo and prints the
# path of its python. Pinned versions, so goldens regenerate the same way.
# llama-cpp-python compiles llama.cpp from source: minutes, the first time only.
set -euo pipefail

cache="${TILLER_CACHE:-$HOME/.cache/tiller}"
venv="$cache/oracle-venv"
pins=(gguf==0.19.0 numpy==2.4.6 llama-cpp-python==0.3.36 jinja2==3.1.6)
stamp="$venv/.tiller-pins"

if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "${pins[*]}" ]; then
  echo "oracle-env: building $venv with ${pins[*]} (llama.cpp compiles from source; minutes)" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip >&2
  "$venv/bin/python" -m pip install -q "${pins[@]}" >&2
  echo "${pins[*]}" > "$stamp"
fi
echo "$venv/bin/python"
