#!/usr/bin/env bash
# make demo: the main job end to end on the embedded default. Until the Kafka
# service lands (issue 4) this is local generation with the real model.
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
