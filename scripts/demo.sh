#!/usr/bin/env bash
# Tiller's main job on the default model, from a fresh machine: installs what the
# build needs, fetches the model, builds, and generates a chat answer (greedy, so
# the same text every time; extra arguments go to `tiller run`). When steering
# lands this becomes a steered generation beside the unsteered one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh
scripts/fetch-models.sh smollm2-135m-instruct
scripts/build.sh release >/dev/null
build/tiller run -m smollm2-135m-instruct --chat -p "Write two sentences about the sea." -n 96 --temp 0 "$@"
