#!/usr/bin/env bash
# The Python package as a user gets it: `pip wheel .` from this tree (the build
# `pip install .` runs), that wheel installed into a fresh virtual environment
# (Debian's python3; scikit-build-core and nanobind come from PyPI at the versions
# in python/constraints.txt), then its pytest suite (agreement with the command line
# the same wheel installs) and every example under examples/.
#   scripts/python-test.sh             what CI runs (scripts/test.sh)
#   scripts/python-test.sh sanitize    the same with the extension and its command line
#                                      built under ASan + UBSan (some 8 minutes more;
#                                      not in CI, run it after changing python/src)
# Expects scripts/setup.sh to have run and the models to be fetched.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
mode="${1:-release}"
case "$mode" in
  release) venv=$root/build-python/venv ;;
  sanitize) venv=$root/build-python/venv-sanitize ;;
  *) echo "python-test.sh: unknown mode '$mode' (release or sanitize)" >&2; exit 2 ;;
esac
rm -rf "$venv"
/usr/bin/python3 -m venv "$venv"
export PIP_CONSTRAINT="$root/python/constraints.txt" PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off

if [ "$mode" = release ]; then
  echo "python: pip wheel . (scikit-build-core: the library, the extension, the command line)" >&2
  rm -rf build-python/dist
  "$venv/bin/pip" wheel -q --no-deps -w build-python/dist "$root"
  wheel=$(ls build-python/dist/tiller-*.whl)
  echo "python: pip install $(basename "$wheel")[test,examples] into $venv" >&2
  "$venv/bin/pip" install -q "$wheel[test,examples]"
else
  # The interpreter is not instrumented: the sanitizer runtimes are preloaded, and
  # leaks are not looked for (CPython keeps objects until exit).
  echo "python: pip install . under ASan + UBSan into $venv" >&2
  "$venv/bin/pip" install -q scikit-build-core nanobind pathspec packaging numpy pytest matplotlib
  "$venv/bin/pip" install -q --no-build-isolation --config-settings=cmake.define.TILLER_SANITIZE=ON \
    --config-settings=cmake.build-type=RelWithDebInfo --config-settings=build-dir=build-python/sanitize "$root"
  LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
  export LD_PRELOAD ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi

# Out of the source tree, so that `import tiller` is the installed package.
out=build-python/run-$mode
mkdir -p "$out"
cd "$out"
"$venv/bin/python" -c 'import tiller, sys; print("python: tiller from", tiller.__file__, file=sys.stderr)'
"$venv/bin/python" -m pytest "$root/tests/python" -q -p no:cacheprovider
shopt -s nullglob
for example in "$root"/examples/*.py; do
  name=$(basename "$example" .py)
  echo "python: example $name" >&2
  MPLBACKEND=Agg "$venv/bin/python" "$example" --out "examples-out/$name"
done
