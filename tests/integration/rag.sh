#!/usr/bin/env bash
# Blind retrieval and RAG through real Apache Kafka 3.9 (KRaft, loopback):
# a worker serving the encrypted all-MiniLM-L6-v2 and SmolLM2 and the blind
# index "pydoc" (faiss, loaded from its compacted topic), the key holder's
# ee-producer index/ask, confluent-kafka for search jobs and raw topic
# reads (tests/integration/rag_test.py). Oracles: exact plaintext search
# (numpy over ee-model embed on the plaintext model) and plaintext
# generation (ee-model generate on the plaintext SmolLM2).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/itest_lib.bash"
itest_setup rag "ee-consumer --bootstrap 127.0.0.1:9092 --name wrag"
"$PY" tests/integration/rag_test.py --bin build/bin \
    --encoder .cache/models/all-MiniLM-L6-v2.gguf \
    --llm .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf \
    --bootstrap 127.0.0.1:9092 --work "$work" --cache .cache/itest
