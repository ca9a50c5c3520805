#!/usr/bin/env bash
# Everything from a fresh machine to a full test run: installs the build
# dependencies, fetches the models, then builds and tests three ways: release,
# under AddressSanitizer + UndefinedBehaviorSanitizer, and a bounded fuzz run.
# TILLER_FUZZ_SECONDS sets the fuzz run's length (default 60). TILLER_GOLDEN_LIMIT
# sets how many forward-pass golden texts and prompts the release build checks
# (default 20 of 65 and 50; "all" for every one, some 20 minutes with today's
# scalar kernels; sanitizer builds check 1 of each).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh
scripts/fetch-models.sh
export TILLER_REQUIRE_MODELS=1   # a missing model fails the real-model tests instead of skipping them

for flavour in release sanitize fuzz; do
  echo "== $flavour build and tests" >&2
  scripts/build.sh "$flavour"
  dir=build; [ "$flavour" != release ] && dir="build-$flavour"
  filter=()
  [ "$flavour" = fuzz ] && filter=(-R '^fuzz_')   # the fuzz build runs only the fuzzer
  limit=(); [ "$flavour" = release ] && limit=(env "TILLER_GOLDEN_LIMIT=${TILLER_GOLDEN_LIMIT:-20}")
  "${limit[@]}" ctest --test-dir "$dir" --output-on-failure -j "$(nproc)" "${filter[@]}"
done
