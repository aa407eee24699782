#!/usr/bin/env bash
# Blind embeddings through real Apache Kafka 3.9 (KRaft, loopback): an
# ee-consumer serving the encrypted all-MiniLM-L6-v2, the key holder's
# ee-producer (--task embed), and a confluent-kafka client for the refusals
# (tests/integration/embed_test.py). Oracle: ee-model embed on the
# plaintext model. Starts a 1-node cluster unless one is running.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/itest_lib.bash"
itest_setup embed "ee-consumer --bootstrap 127.0.0.1:9092 --name wemb"
"$PY" tests/integration/embed_test.py --bin build/bin \
    --model .cache/models/all-MiniLM-L6-v2.gguf \
    --bootstrap 127.0.0.1:9092 --work "$work" --cache .cache/itest
