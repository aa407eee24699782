#!/usr/bin/env bash
# Blind image classification through real Apache Kafka 3.9 (KRaft,
# loopback): an ee-consumer serving the encrypted digits CNN (no stem), the
# key holder's ee-producer classify on PNG and PGM files, and a
# confluent-kafka client for the refusals (tests/integration/vision_test.py).
# Oracle: ee-model classify on the plaintext model, same files. Starts a
# 1-node cluster unless one is running.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/itest_lib.bash"
itest_setup vision "ee-consumer --bootstrap 127.0.0.1:9092 --name wvis"
"$PY" tests/integration/vision_test.py --bin build/bin \
    --model .cache/models/eecnn-digits.gguf --test-set .cache/models/eecnn-digits-test.gguf \
    --bootstrap 127.0.0.1:9092 --work "$work" --cache .cache/itest
