#!/usr/bin/env bash
# Chaos soak (make test-chaos; not in make test): 3 brokers, 3 workers,
# sealed and signed jobs at a steady rate, a worker SIGKILLed every 20 s,
# one broker killed and restarted mid-run (tests/integration/chaos.py).
# Starts and stops its own 3-node cluster. CHAOS_JOBS, CHAOS_RATE override.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
K=scripts/kafka.sh
if bash "$K" status >/dev/null 2>&1; then
    echo "chaos: a Kafka cluster is already running; stop it first (make kafka-down)" >&2
    exit 1
fi
KAFKA_NODES=3 bash "$K" up
work="$(mktemp -d)"
cleanup() {
    pkill -TERM -f "ee-consumer --config $work" 2>/dev/null || true
    rm -rf "$work"
    bash "$K" down || true
}
trap cleanup EXIT
.cache/venv/bin/python tests/integration/chaos.py --bin build/bin \
    --model .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf --cache .cache/itest --work "$work" \
    --jobs "${CHAOS_JOBS:-2000}" --rate "${CHAOS_RATE:-5}" --json-out build/chaos.json
