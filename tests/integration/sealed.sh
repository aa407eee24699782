#!/usr/bin/env bash
# Sealed and signed jobs end to end on a real Apache Kafka 3.9 (KRaft,
# loopback): tests/integration/sealed_test.py lists the cases. Starts a
# 1-node cluster unless one is running (then uses and keeps it).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/itest_lib.bash"
itest_setup sealed ""
"$PY" tests/integration/sealed_test.py --bin build/bin \
    --model .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf --bootstrap 127.0.0.1:9092 \
    --work "$work" --cache .cache/itest --kafka-data .cache/kafka/data
