#!/usr/bin/env bash
# The service on a 3-broker Kafka 3.9 cluster (replication 3,
# min.insync.replicas 2): end to end, then SIGKILL of a partition leader
# mid-run with no job lost (tests/integration/service_test.py). Starts and
# stops its own cluster; refuses to run beside another one.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
K=scripts/kafka.sh
PY=.cache/venv/bin/python
if bash "$K" status >/dev/null 2>&1; then
    echo "service_3node: a Kafka cluster is already running; stop it first (make kafka-down)" >&2
    exit 1
fi
KAFKA_NODES=3 bash "$K" up
work="$(mktemp -d)"
cleanup() {
    pkill -TERM -f "ee-consumer --bootstrap 127.0.0.1:9092,127.0.0.1:9094" 2>/dev/null || true
    rm -rf "$work"
    bash "$K" down || true
}
trap cleanup EXIT
"$PY" tests/integration/service_test.py --bin build/bin \
    --model .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf \
    --bootstrap 127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096 --nodes 3 \
    --work "$work" --cache .cache/itest --only ${SERVICE_ONLY:-end_to_end,broker_failover}
