#!/usr/bin/env bash
# Configures and builds one flavour of Tiller into build/ (release), build-sanitize/
# (AddressSanitizer + UndefinedBehaviorSanitizer) or build-fuzz/ (clang, libFuzzer).
#   scripts/build.sh [release|sanitize|fuzz]      (default: release)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

flavour="${1:-release}"
case "$flavour" in
  release)  dir=build;          flags=(-DCMAKE_BUILD_TYPE=Release) ;;
  sanitize) dir=build-sanitize; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DTILLER_SANITIZE=ON) ;;
  fuzz)     dir=build-fuzz;     flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DTILLER_FUZZ=ON
                                       -DCMAKE_CXX_COMPILER=clang++
                                       -DTILLER_FUZZ_SECONDS="${TILLER_FUZZ_SECONDS:-60}") ;;
  *) echo "build.sh: unknown flavour '$flavour' (release, sanitize or fuzz)" >&2; exit 2 ;;
esac

cmake -S . -B "$dir" -G Ninja -DTILLER_WERROR=ON "${flags[@]}" >/dev/null
cmake --build "$dir" -j "$(nproc)"
