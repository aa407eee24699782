#!/usr/bin/env bash
# The Kafka service end to end on a real Apache Kafka 3.9 (KRaft, loopback):
# ee-consumer workers, clients confluent-kafka and kcat, oracle = local
# encrypted generation (tests/integration/service_test.py lists the cases).
# Starts a 1-node cluster unless one is running (then uses and keeps it).
# The key and encrypted model are made once and kept in .cache/itest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
K=scripts/kafka.sh
PY=.cache/venv/bin/python
started=0
if bash "$K" status >/dev/null 2>&1; then
    echo "service: using the running cluster"
else
    KAFKA_NODES=1 bash "$K" up
    started=1
fi
work="$(mktemp -d)"
cleanup() {
    pkill -TERM -f "ee-consumer --bootstrap 127.0.0.1:9092" 2>/dev/null || true
    rm -rf "$work"
    if ((started)); then bash "$K" down || true; fi
}
trap cleanup EXIT
"$PY" tests/integration/service_test.py --bin build/bin \
    --model .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf \
    --bootstrap 127.0.0.1:9092 --work "$work" --cache .cache/itest ${SERVICE_ONLY:+--only "$SERVICE_ONLY"}
