#!/usr/bin/env bash
# The ActAdd paper's weddings and sentiment measures on our models (scripts/reproduce_actadd.py
# says what runs); docs/evaluation.md sets the results beside the paper's.
#   scripts/reproduce-actadd.sh [--models NAME,..] [--pairs weddings,weddings-long,love-hate]
#                               [-t THREADS] [--samples N] [--sampled-pairs LIST] [--out DIR] [--figures DIR]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh >/dev/null
scripts/fetch-models.sh >/dev/null
scripts/build.sh release >/dev/null
# matplotlib and NumPy at the versions the tests pin, in a venv of their own.
venv=build/plot-venv
if ! "$venv/bin/python" -c "import matplotlib, numpy" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -c python/constraints.txt numpy matplotlib
fi
exec "$venv/bin/python" scripts/reproduce_actadd.py "$@"
