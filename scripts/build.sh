#!/usr/bin/env bash
# Configures and builds one flavour of Tiller into build/ (release), build-sanitize/
# (AddressSanitizer + UndefinedBehaviorSanitizer), build-fuzz/ (clang, libFuzzer) or
# build-emulate/ (the AVX-512 kernels run through SIMDe on a CPU without AVX-512,
# under the same sanitizers; see src/ops/x86_simd.h).
#   scripts/build.sh [release|sanitize|fuzz|emulate]      (default: release)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

flavour="${1:-release}"
case "$flavour" in
  release)  dir=build;          flags=(-DCMAKE_BUILD_TYPE=Release) ;;
  sanitize) dir=build-sanitize; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DTILLER_SANITIZE=ON) ;;
  fuzz)     dir=build-fuzz;     flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DTILLER_FUZZ=ON
                                       -DCMAKE_CXX_COMPILER=clang++ -DTILLER_UNITY_BUILD=OFF
                                       -DTILLER_FUZZ_SECONDS="${TILLER_FUZZ_SECONDS:-60}") ;;
  emulate)  dir=build-emulate;  flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DTILLER_EMULATE_AVX512=ON -DTILLER_SANITIZE=ON) ;;
  *) echo "build.sh: unknown flavour '$flavour' (release, sanitize, fuzz or emulate)" >&2; exit 2 ;;
esac

cmake -S . -B "$dir" -G Ninja -DTILLER_WERROR=ON "${flags[@]}" >/dev/null
targets=()
# The fuzz build runs only its fuzzers (scripts/test.sh): building the test suite,
# the command line and the benchmarks again under clang and the sanitizers would
# cost minutes of CI for nothing it runs.
# It also compiles the library and the server one file at a time (the other flavours
# batch them into unity files, where a file that forgot an include can lean on an
# earlier file of its batch): so CI sees such a file. It costs about 40 s on 2 cores
# (this build took 144 s, 272 CPU s, on a 2-core Xeon, 2026-12-06).
[ "$flavour" = fuzz ] && targets=(--target fuzz_gguf_reader fuzz_tokenizer fuzz_server_request make-bad-ggufs)
cmake --build "$dir" -j "$(nproc)" "${targets[@]}"
