#!/usr/bin/env bash
# Tiller's main job on the default model, from a fresh machine: installs what the
# build needs, fetches the model, builds, and shows what the model is.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh
scripts/fetch-models.sh smollm2-135m-instruct
scripts/build.sh release >/dev/null
build/tiller inspect smollm2-135m-instruct "$@"
