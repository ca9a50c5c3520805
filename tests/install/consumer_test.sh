#!/usr/bin/env bash
# The installed package, tested from outside the tree (ctest: InstalledPackage):
#  1. `cmake --install` of this build into a temporary prefix;
#  2. every installed public header includes only the standard library and other
#     tiller/ headers, compiles alone (-fsyntax-only, only the prefix's include
#     folder on the path), and is included by the umbrella tiller/tiller.h;
#  3. tests/install/consumer, a separate project, configures with
#     find_package(tiller) against that prefix only, builds, and prints the
#     default model's block count (30 for SmolLM2-135M).
# A missing model skips step 3's run (exit 77), or fails it when TILLER_REQUIRE_MODELS=1.
#   consumer_test.sh BUILD_DIR CONSUMER_SOURCE CXX GENERATOR BUILD_TYPE CXX_FLAGS LINK_FLAGS
# CXX_FLAGS and LINK_FLAGS are the build's own global ones (the sanitizers), so that
# the consumer links against a sanitized library in the sanitizer builds.
set -euo pipefail

build_dir="$1" consumer_source="$2" cxx="$3" generator="$4" build_type="$5" cxx_flags="$6" link_flags="$7"
model_name=smollm2-135m-instruct expected_n_layer=30

scratch="$(mktemp -d "${TMPDIR:-/tmp}/tiller-install-test.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
prefix="$scratch/prefix"
say() { echo "consumer_test: $*" >&2; }
die() { say "FAIL: $*"; exit 1; }

cmake --install "$build_dir" --prefix "$prefix" >"$scratch/install.log" || { cat "$scratch/install.log" >&2; die "cmake --install failed"; }
headers_dir="$prefix/include/tiller"
[ -f "$headers_dir/tiller.h" ] || die "no include/tiller/tiller.h installed"
config="$(find "$prefix" -name tillerConfig.cmake -print -quit)"
[ -n "$config" ] || die "no tillerConfig.cmake installed"
[ -f "$(dirname "$config")/tillerConfigVersion.cmake" ] || die "no tillerConfigVersion.cmake beside $config"

headers=()
for header in "$headers_dir"/*.h; do headers+=("$header"); done
say "${#headers[@]} public headers"
for header in "${headers[@]}"; do
  name="$(basename "$header")"
  # Only <standard> (no folder, no .h) or "tiller/NAME.h" of another installed header.
  while IFS= read -r line; do
    if [[ "$line" =~ ^#[[:space:]]*include[[:space:]]*\<([a-z_]+)\>[[:space:]]*$ ]]; then continue; fi
    if [[ "$line" =~ ^#[[:space:]]*include[[:space:]]*\"tiller/([a-z0-9_]+\.h)\"[[:space:]]*$ ]]; then
      [ -f "$headers_dir/${BASH_REMATCH[1]}" ] || die "$name: $line: no such public header"
      continue
    fi
    die "$name: $line: a public header includes only the standard library and tiller/ headers"
  done < <(grep -E '^#[[:space:]]*include' "$header")
  if [ "$name" != tiller.h ] && ! grep -q "^#include \"tiller/$name\"$" "$headers_dir/tiller.h"; then
    die "tiller/tiller.h does not include tiller/$name"
  fi
done
# Each header alone (a one-line source file including it), two at a time.
mkdir "$scratch/alone"
for header in "${headers[@]}"; do
  name="$(basename "$header" .h)"
  echo "#include <tiller/$name.h>" >"$scratch/alone/$name.cpp"
done
printf '%s\0' "$scratch"/alone/*.cpp |
  xargs -0 -n1 -P2 "$cxx" -std=c++20 -fsyntax-only -Wall -Wextra -Wpedantic -Werror -I"$prefix/include" ||
  die "a public header does not compile alone (above)"

consumer_build="$scratch/consumer-build"
cmake -S "$consumer_source" -B "$consumer_build" -G "$generator" \
  -DCMAKE_BUILD_TYPE="$build_type" -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_CXX_FLAGS="$cxx_flags" -DCMAKE_EXE_LINKER_FLAGS="$link_flags" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
  >"$scratch/configure.log" 2>&1 || { cat "$scratch/configure.log" >&2; die "the consumer does not configure"; }
found="$(sed -n 's/^tiller_DIR:PATH=//p' "$consumer_build/CMakeCache.txt")"
[ "$found" = "$(dirname "$config")" ] || die "find_package(tiller) found '$found', not the installed prefix"
cmake --build "$consumer_build" >"$scratch/build.log" 2>&1 || { cat "$scratch/build.log" >&2; die "the consumer does not build"; }
say "the consumer configured and built against $prefix"

model="${TILLER_MODELS:-$HOME/.cache/tiller/models}/$model_name.gguf"
if [ ! -f "$model" ]; then
  [ "${TILLER_REQUIRE_MODELS:-}" = 1 ] && die "model $model_name is missing ($model)"
  say "model $model_name is not fetched; run scripts/fetch-models.sh $model_name"
  exit 77
fi
output="$("$consumer_build/consumer" "$model")" || die "the consumer failed on $model"
[ "$output" = "$expected_n_layer" ] || die "the consumer printed '$output', expected $expected_n_layer"
say "the consumer printed n_layer $output for $model_name"
