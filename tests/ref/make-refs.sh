#!/usr/bin/env bash
# Produce the reference outputs the model tier compares against, by running
# every tests/ref/ref_*.py oracle: ref_X.py --model M --out-dir D.
# Each oracle skips its work when its outputs are newer than its inputs.
set -euo pipefail
PY=$1 MODEL=$2 OUT=$3
mkdir -p "$OUT"
for s in tests/ref/ref_*.py; do
  [ -e "$s" ] || continue
  echo "refs: $s"
  "$PY" "$s" --model "$MODEL" --out-dir "$OUT"
done
