#!/usr/bin/env bash
# make demo: the main job end to end on the embedded default.
#
# The key holder makes a key and encrypts the model (once, cached in
# .cache/demo); the development broker (ee-devbroker: librdkafka's mock
# cluster, in memory, no JVM) and one worker (ee-consumer, which never sees
# the key) start; ee-producer encrypts a prompt, submits it, waits for the
# encrypted reply and decrypts it. Printed: the prompt, the request record
# exactly as the worker received it from Kafka (encrypted ids), the reply
# record (encrypted ids), the decrypted answer, and timings. Everything
# started here is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
BIN=build/bin
DEMO=.cache/demo
PROMPT=${PROMPT:-"What is the capital of France? Answer in one sentence."}
KEY=$DEMO/demo.eekey
# The served file's type: q8_0 by default (plaintext-like speed and memory,
# KLD 0.002 against the exact model: docs/BENCHMARKS.md "Quantized
# encrypted models"); EE_TYPE=f32 serves the exact one.
EE_TYPE=${EE_TYPE:-q8_0}
ENC=$DEMO/SmolLM2-135M-Instruct.enc-$EE_TYPE.gguf
REPLIES=ee.replies.demo
mkdir -p "$DEMO"
WLOG=$DEMO/worker.log

wpid=""
cleanup() {
  if [ -n "$wpid" ] && kill -0 "$wpid" 2>/dev/null; then
    kill -TERM "$wpid"; wait "$wpid" 2>/dev/null || true
  fi
  if [ "$started_broker" = 1 ]; then bash scripts/devbroker.sh stop >/dev/null 2>&1 || true; fi
}
started_broker=0
trap cleanup EXIT

echo "== 1. key holder: key + encrypted model (trusted machine; cached)"
[ -f "$KEY" ] || $BIN/ee-model keygen --out "$KEY" >/dev/null
if [ ! -f "$ENC" ] || [ "$($BIN/ee-model info --model "$ENC" --json | jq -r .scheme_status)" != current ] \
   || ! $BIN/ee-model generate --model "$ENC" --key "$KEY" --plain-model "$MODEL" --prompt hi \
        --max-tokens 1 >/dev/null 2>&1; then
  $BIN/ee-model encrypt --model "$MODEL" --key "$KEY" --type "$EE_TYPE" --out "$ENC"
fi
KEY_ID=$($BIN/ee-model info --model "$ENC" --json | jq -r .key_id)
echo "   key $KEY (0600, never leaves this side), key id $KEY_ID"
echo "   encrypted model $ENC ($EE_TYPE)"

# Sealed and signed jobs (docs/PROTOCOL.md): the worker pool's sealing key
# and the client's signing key; the worker refuses anything else.
POOLKEY=$DEMO/pool.key
CLIENTKEY=$DEMO/client.key
[ -f "$POOLKEY" ] || $BIN/ee-consumer keygen --out "$POOLKEY" >/dev/null
[ -f "$CLIENTKEY" ] || $BIN/ee-producer keygen --out "$CLIENTKEY" >"$DEMO/client.pub"
CLIENTPK=$(cat "$DEMO/client.pub")
printf '[worker]\nrequire_sealed = 1\nrequire_signed = 1\npool_key = %s\n[tenant demo]\npublic_key = %s\nmodels = smollm2\n' \
  "$POOLKEY" "$CLIENTPK" >"$DEMO/worker.ini"

echo "== 2. broker: ee-devbroker (development only, in memory)"
bash scripts/devbroker.sh status >/dev/null 2>&1 || started_broker=1
BOOT=$(bash scripts/devbroker.sh start)
echo "   bootstrap $BOOT"

echo "== 3. worker: ee-consumer (no key; log $WLOG)"
$BIN/ee-consumer --config "$DEMO/worker.ini" --bootstrap "$BOOT" --model "smollm2=$ENC" --class small,large \
  --threads "$(nproc)" --metrics-port 0 --name demo-worker --grace-ms 2000 \
  --kafka session.timeout.ms=6000 >"$WLOG" 2>&1 &
wpid=$!
for _ in $(seq 1 600); do
  grep -q '"event":"partitions_assigned"' "$WLOG" && break
  kill -0 "$wpid" 2>/dev/null || { echo "worker exited:"; cat "$WLOG"; exit 1; }
  sleep 0.1
done
grep -q '"event":"partitions_assigned"' "$WLOG" || { echo "worker got no partitions:"; tail "$WLOG"; exit 1; }
POOLPK=$(grep -o '"pool_public_key":"[0-9a-f]*' "$WLOG" | head -1 | cut -d'"' -f4)
echo "   serving ee.requests.smollm2.{small,large}; only sealed jobs signed by tenant 'demo'"
echo "   pool public key $POOLPK"

echo "== 4. client: ee-producer submit --wait"
echo "   prompt: $PROMPT"
OUT=$DEMO/producer.out
$BIN/ee-producer submit --bootstrap "$BOOT" --model smollm2 --key "$KEY" --plain-model "$MODEL" \
  --chat --prompt "$PROMPT" --max-tokens 96 --reply-to "$REPLIES" --wait --json --timeout-ms 60000 \
  --pool-pk "$POOLPK" --client-key "$CLIENTKEY" --tenant demo >"$OUT"
JOB=$(head -1 "$OUT" | jq -r .id)
TOPIC=$(head -1 "$OUT" | jq -r .topic)
RESULT=$(grep '"status"' "$OUT" | tail -1)

echo
echo "== what the broker stores (the request record on $TOPIC, from Kafka):"
kcat -C -b "$BOOT" -t "$TOPIC" -e -q -f '   key %k, %S bytes, headers %h\n' 2>/dev/null \
  | grep "key $JOB," | cut -c1-420
printf '   value: '
kcat -C -b "$BOOT" -t "$TOPIC" -e -q -f '%s' -c 1 2>/dev/null | head -c 60 | LC_ALL=C tr -c '[:print:]' '.'
echo " ..."
echo "   (sealed to the worker pool; the headers are routing metadata and the signature)"
echo
echo "== what the worker sees once it opened the seal (encrypted token ids):"
head -1 "$OUT" | jq -c '{id, topic, encrypted_prompt}' | cut -c1-400
echo
echo "== what the worker returned (encrypted ids; on Kafka sealed to the client's reply key):"
echo "$RESULT" | jq -c '{id, encrypted_tokens, finish_reason}' | cut -c1-400
echo
echo "== decrypted by the client (key $KEY_ID):"
echo "$RESULT" | jq -r .text
echo
echo "$RESULT" | jq -r '"== timings: end to end \(.latency_ms|floor) ms at the client; worker: queue \(.timings.queue_ms) ms, prefill \(.timings.prefill_ms|floor) ms, decode \(.timings.decode_ms|floor) ms for \(.usage.completion_tokens) tokens (\(.usage.prompt_tokens) prompt tokens), finish \(.finish_reason), by \(.worker)"'
[ "$(echo "$RESULT" | jq -r .status)" = ok ] || { echo "demo: job failed"; exit 1; }

# What EE does not protect against (docs/SECURITY.md): a worker that holds
# the public SmolLM2 weights attacks the encrypted file it serves.
echo
echo "== a worker holding the public weights: ee-model audit (no key, no traffic)"
ENC_IDS=$(head -1 "$OUT" | jq -r '.encrypted_prompt | map(tostring) | join(",")')
AUDIT=$($BIN/ee-model audit --model "$ENC" --public "$MODEL" --tokens "$ENC_IDS" --json \
        --threads "$(nproc)")
RECOVERED=$(echo "$AUDIT" | jq -r '.text | capture("<\\|im_start\\|>user\n(?<u>[\\s\\S]*?)<\\|im_end\\|>").u // .')
echo "$AUDIT" | jq -r '"   it recovered \(.vocab_recovered * 10000 | floor / 100)% of the token permutation from the weights in \(.seconds * 10 | floor / 10) s"'
echo "   prompt recovered without the key: $RECOVERED"
if [ "$RECOVERED" = "$PROMPT" ]; then
  echo "   identical to the prompt: EE does not hide prompts from a worker holding the"
  echo "   public weights (class 1 in docs/SECURITY.md; make security-report measures all classes)"
else
  echo "   (differs from the prompt; see docs/SECURITY.md for the measured threat table)"
fi
