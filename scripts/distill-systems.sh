#!/usr/bin/env bash
# Distills each system prompt of eval/distill/systems.json into a control vector on
# one model (default SmolLM2-135M-Instruct) with `tiller vector distill`'s default
# grid, and prints each one's held-out figures (docs/distill.md).
#   scripts/distill-systems.sh [MODEL] [OUT_DIR]      (default: smollm2-135m-instruct, distill-out)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

model="${1:-smollm2-135m-instruct}"
out="${2:-distill-out}"
mkdir -p "$out"
names=$(python3 -c 'import json; print(" ".join(s["name"] for s in json.load(open("eval/distill/systems.json"))))')
for name in $names; do
  system=$(python3 -c 'import json, sys; print(next(s["system"] for s in json.load(open("eval/distill/systems.json")) if s["name"] == sys.argv[1]))' "$name")
  build/tiller vector distill -m "$model" --system "$system" --prompts eval/distill/prompts-train.txt \
    --eval-prompts eval/distill/prompts-eval.txt -o "$out/$name.gguf" --json > "$out/$name.json"
  python3 - "$name" "$out/$name.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[2]))
ratio = d["kl_steered"] / d["kl_unsteered"]
print(f"{sys.argv[1]}: scale {d['scale']:g} at blocks {d['layers']}; held-out KL unsteered "
      f"{d['kl_unsteered']:.3f}, steered {d['kl_steered']:.3f} ({ratio:.0%})")
PY
done
