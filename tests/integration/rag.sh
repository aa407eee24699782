#!/usr/bin/env bash
# Blind retrieval and RAG through real Apache Kafka 3.9 (KRaft, loopback):
# a worker serving the encrypted all-MiniLM-L6-v2 and SmolLM2 and the blind
# index "pydoc" (faiss, loaded from its compacted topic), the key holder's
# ee-producer index/ask, confluent-kafka for search jobs and raw topic
# reads (tests/integration/rag_test.py). Oracles: exact plaintext search
# (numpy over ee-model embed on the plaintext model) and plaintext
# generation (ee-model generate on the plaintext SmolLM2).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
K=scripts/kafka.sh
PY=.cache/venv/bin/python
started=0
if bash "$K" status >/dev/null 2>&1; then
    echo "rag: using the running cluster"
else
    KAFKA_NODES=1 bash "$K" up
    started=1
fi
work="$(mktemp -d)"
cleanup() {
    pkill -TERM -f "ee-consumer --bootstrap 127.0.0.1:9092 --name wrag" 2>/dev/null || true
    rm -rf "$work"
    if ((started)); then bash "$K" down || true; fi
}
trap cleanup EXIT
"$PY" tests/integration/rag_test.py --bin build/bin \
    --encoder .cache/models/all-MiniLM-L6-v2.gguf \
    --llm .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf \
    --bootstrap 127.0.0.1:9092 --work "$work" --cache .cache/itest
