#!/usr/bin/env bash
# The Kafka service end to end on a real Apache Kafka 3.9 (KRaft, loopback):
# ee-consumer workers, clients confluent-kafka and kcat, oracle = local
# encrypted generation (tests/integration/service_test.py lists the cases).
# Starts a 1-node cluster unless one is running (then uses and keeps it).
# The key and encrypted model are made once and kept in .cache/itest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/itest_lib.bash"
itest_setup service "ee-consumer --bootstrap 127.0.0.1:9092"
"$PY" tests/integration/service_test.py --bin build/bin \
    --model .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf \
    --bootstrap 127.0.0.1:9092 --work "$work" --cache .cache/itest ${SERVICE_ONLY:+--only "$SERVICE_ONLY"}
