#!/usr/bin/env bash
# Blind embeddings through real Apache Kafka 3.9 (KRaft, loopback): an
# ee-consumer serving the encrypted all-MiniLM-L6-v2, the key holder's
# ee-producer (--task embed), and a confluent-kafka client for the refusals
# (tests/integration/embed_test.py). Oracle: ee-model embed on the
# plaintext model. Starts a 1-node cluster unless one is running.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
K=scripts/kafka.sh
PY=.cache/venv/bin/python
started=0
if bash "$K" status >/dev/null 2>&1; then
    echo "embed: using the running cluster"
else
    KAFKA_NODES=1 bash "$K" up
    started=1
fi
work="$(mktemp -d)"
cleanup() {
    pkill -TERM -f "ee-consumer --bootstrap 127.0.0.1:9092 --name wemb" 2>/dev/null || true
    rm -rf "$work"
    if ((started)); then bash "$K" down || true; fi
}
trap cleanup EXIT
"$PY" tests/integration/embed_test.py --bin build/bin \
    --model .cache/models/all-MiniLM-L6-v2.gguf \
    --bootstrap 127.0.0.1:9092 --work "$work" --cache .cache/itest
