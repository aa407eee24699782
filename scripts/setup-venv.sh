#!/usr/bin/env bash
# Python virtualenv for test oracles and benchmark peers (never the product).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.cache/venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -r tests/ref/requirements.txt
echo "venv: ready at $VENV"
