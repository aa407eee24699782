#!/usr/bin/env bash
# make demo: the main job end to end on the embedded default. Until the Kafka
# service lands (issue 4): local generation with the real model, then the
# same prompt through the encrypted model (key holder encrypts, model runs
# blind on encrypted ids, key holder decrypts).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
BIN=build/bin
PROMPT=${PROMPT:-"What is the capital of France? Answer in one sentence."}
echo "== model"
$BIN/ee-model info --model "$MODEL" | sed -n '/^tokenizer:/q;p'
echo
echo "== prompt: $PROMPT"
echo "== token ids (chat template):"
$BIN/ee-model tokenize --model "$MODEL" --chat --prompt "$PROMPT"
echo
echo "== answer (greedy, streamed):"
$BIN/ee-model generate --model "$MODEL" --chat --prompt "$PROMPT" --max-tokens 96

echo
echo "== equivariant encryption: the same question, answered blind"
DEMO=.cache/demo
mkdir -p "$DEMO"
KEY=$DEMO/demo.eekey
ENC=$DEMO/SmolLM2-135M-Instruct.enc-f32.gguf
[ -f "$KEY" ] || $BIN/ee-model keygen --out "$KEY" >/dev/null
if [ ! -f "$ENC" ] || ! $BIN/ee-model info --model "$ENC" --json | grep -q '"encrypted": true'; then
  $BIN/ee-model encrypt --model "$MODEL" --key "$KEY" --out "$ENC"
fi
echo "(the worker sees only the ids marked [worker receives] / [worker returns])"
$BIN/ee-model generate --model "$ENC" --key "$KEY" --plain-model "$MODEL" --chat \
  --prompt "$PROMPT" --max-tokens 96 --show-ciphertext
