#!/usr/bin/env bash
# Tiller's main job on the default model, from a fresh machine: installs what the
# build needs, fetches the model, builds, and prints three completions of one
# prompt without and with ActAdd steering ("Love" - "Hate" added before block 6,
# coefficient 5), side by side, with the same seeds. Extra arguments go to
# `tiller run` (e.g. other --actadd pairs, -s SEED, --json).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh
scripts/fetch-models.sh smollm2-135m-instruct
scripts/build.sh release >/dev/null
build/tiller run -m smollm2-135m-instruct -p "I went up to my friend and said" -n 48 -s 7 \
  --actadd "Love" "Hate" --actadd-layer 6 --actadd-coef 5 --compare --samples 3 "$@"
