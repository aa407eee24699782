#!/usr/bin/env bash
# Sealed and signed jobs end to end on a real Apache Kafka 3.9 (KRaft,
# loopback): tests/integration/sealed_test.py lists the cases. Starts a
# 1-node cluster unless one is running (then uses and keeps it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
K=scripts/kafka.sh
started=0
if bash "$K" status >/dev/null 2>&1; then
    echo "sealed: using the running cluster"
else
    KAFKA_NODES=1 bash "$K" up
    started=1
fi
work="$(mktemp -d)"
cleanup() {
    rm -rf "$work"
    if ((started)); then bash "$K" down || true; fi
}
trap cleanup EXIT
.cache/venv/bin/python tests/integration/sealed_test.py --bin build/bin \
    --model .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf --bootstrap 127.0.0.1:9092 \
    --work "$work" --cache .cache/itest --kafka-data .cache/kafka/data
