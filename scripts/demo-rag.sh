#!/usr/bin/env bash
# make demo-rag: blind retrieval-augmented generation end to end on the
# embedded default (docs/RAG.md).
#
# The key holder encrypts all-MiniLM-L6-v2 and SmolLM2 (once, cached in
# .cache/demo); the development broker (ee-devbroker, in memory) and one
# worker start (no key: it serves both encrypted models and the blind index
# "pydoc" from its topic); ee-producer index puts the packaged corpus (78
# topics of the Python reference manual) into the index: each text embedded
# blind by the worker, sealed here; ee-producer ask asks a question: blind
# search, documents opened here, blind generation. Printed: what the broker
# stores for a document and for the question, the sources, the answer.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/bin
DEMO=.cache/demo
ENCODER=.cache/models/all-MiniLM-L6-v2.gguf
LLM=.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
QUESTION=${QUESTION:-"What do assert statements do?"}
KEY=$DEMO/demo.eekey
ENC_E=$DEMO/all-MiniLM-L6-v2.enc.gguf
ENC_L=$DEMO/SmolLM2-135M-Instruct.enc-q8_0.gguf
mkdir -p "$DEMO"
WLOG=$DEMO/worker-rag.log
wpid=""
started_broker=0
cleanup() {
  if [ -n "$wpid" ] && kill -0 "$wpid" 2>/dev/null; then kill -TERM "$wpid"; wait "$wpid" 2>/dev/null || true; fi
  if [ "$started_broker" = 1 ]; then bash scripts/devbroker.sh stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

echo "== 1. key holder: one key, two encrypted models (cached)"
[ -f "$KEY" ] || $BIN/ee-model keygen --out "$KEY" >/dev/null
for pair in "$ENCODER:$ENC_E:f32" "$LLM:$ENC_L:q8_0"; do
  IFS=: read -r plain enc type <<<"$pair"
  if [ ! -f "$enc" ] || [ "$($BIN/ee-model info --model "$enc" --json | jq -r .scheme_status)" != current ] \
     || [ "$($BIN/ee-model key-id --key "$KEY" --model "$plain")" != "$($BIN/ee-model info --model "$enc" --json | jq -r .key_id)" ]; then
    $BIN/ee-model encrypt --model "$plain" --key "$KEY" --type "$type" --out "$enc"
  fi
done
echo "   $ENC_E (ee-bert-v1), $ENC_L (ee-llama-v2, q8_0)"

echo "== 2. broker: ee-devbroker (development only, in memory)"
if bash scripts/devbroker.sh status >/dev/null 2>&1; then
  echo "   a devbroker is already running; stop it first (bash scripts/devbroker.sh stop)"; exit 1
fi
started_broker=1
BOOT=$(bash scripts/devbroker.sh start --topic ee.index.pydoc:1 --topic ee.requests.minilm.small:2 \
        --topic ee.requests.smollm2.small:2 --topic ee.replies.demo-rag:1)
echo "   bootstrap $BOOT"

echo "== 3. worker: ee-consumer --index pydoc=minilm (no key; log $WLOG)"
$BIN/ee-consumer --bootstrap "$BOOT" --model "minilm=$ENC_E" --model "smollm2=$ENC_L" \
  --index pydoc=minilm:flat --class small --threads "$(nproc)" --metrics-port 0 --name rag-worker \
  --grace-ms 2000 --kafka session.timeout.ms=6000 >"$WLOG" 2>&1 &
wpid=$!
for _ in $(seq 1 600); do
  grep -q '"event":"partitions_assigned"' "$WLOG" 2>/dev/null && break
  kill -0 "$wpid" 2>/dev/null || { echo "worker exited:"; cat "$WLOG"; exit 1; }
  sleep 0.1
done
grep -o '"event":"index_loaded"[^}]*' "$WLOG" | head -1 | sed 's/^/   /'

echo "== 4. key holder: ee-producer index (78 documents, embedded blind, sealed here)"
t0=$(date +%s%N)
$BIN/ee-producer index --bootstrap "$BOOT" --model minilm --index pydoc --key "$KEY" \
  --plain-model "$ENCODER" --docs tests/data/rag_corpus.jsonl --reply-to ee.replies.demo-rag \
  --timeout-ms 240000 >/dev/null
echo "   indexed in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
echo
echo "== what the broker stores for document 'assert' (ee.index.pydoc):"
kcat -C -b "$BOOT" -t ee.index.pydoc -e -q -f '%k %s\n' 2>/dev/null | grep '^assert ' | tail -1 \
  | cut -d' ' -f2- | jq -c '{id, key_id, embedding: (.embedding[0:4] | map(tostring) | join(",") + ",..."), doc: (.doc[0:48] + "...")}'
echo "   (the vector is encrypted; the text is sealed: XChaCha20-Poly1305 under the key holder's key)"
sleep 1

echo
echo "== 5. ee-producer ask: $QUESTION"
OUT=$DEMO/ask.json
$BIN/ee-producer ask --bootstrap "$BOOT" --model minilm --index pydoc --key "$KEY" \
  --plain-model "$ENCODER" --llm smollm2 --llm-plain-model "$LLM" --question "$QUESTION" \
  --k 2 --max-tokens 96 --json --reply-to ee.replies.demo-rag --timeout-ms 240000 >"$OUT"
echo "== what the worker saw of the question (the search request on ee.requests.minilm.small):"
kcat -C -b "$BOOT" -t ee.requests.minilm.small -e -q -f '%s\n' 2>/dev/null | jq -c 'select(.task=="search") | {task, input: (.input.tokens | map(tostring) | join(",")), search}' | tail -1
echo
echo "== sources (blind search; documents opened here):"
jq -r '.sources[] | "   \(.id) (score \(.score * 1000 | floor / 1000)): \(.text[0:110])..."' "$OUT"
echo
echo "== answer (blind generation, decrypted here):"
jq -r .answer "$OUT"
echo
jq -r '"== timings: search \(.search_ms|floor) ms, generation \(.generate_ms|floor) ms (\(.answer_tokens) tokens)"' "$OUT"
echo
echo "== what EE protects here (docs/RAG.md, docs/SECURITY.md): a worker holding the public"
echo "   MiniLM/SmolLM2 weights reads the question and the answer: ee-model audit recovers 100% of"
echo "   the encoder's permutations in ~9 s and 99.97% of SmolLM2's vocabulary in ~23 s (make"
echo "   security-report, rows 1e and 1); the documents stay sealed by libsodium, whatever it holds."
