#!/usr/bin/env bash
# Smoke test of the local Kafka from scripts/kafka.sh: create a topic, produce
# keyed records with acks=all, read them back (plain and through a consumer
# group). Exits non-zero on any failure.
#
# If a cluster of KAFKA_NODES (default 1) is already running it is used and
# left running; otherwise the test starts one and stops it at the end.
# With 3 nodes the topic has replication factor 3 and min.insync.replicas=2.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
K="$ROOT/scripts/kafka.sh"
N="${KAFKA_NODES:-1}"
COUNT="${SMOKE_COUNT:-100}"
TOPIC="smoke-$$-$RANDOM"
PARTS=3

fail() { echo "kafka_smoke: FAIL: $*" >&2; exit 1; }

started=0
if bash "$K" status >/dev/null 2>&1 && [[ "$(cat "$ROOT/.cache/kafka/run/nodes")" == "$N" ]]; then
    echo "kafka_smoke: using the running $N-node cluster"
else
    KAFKA_NODES="$N" bash "$K" up
    started=1
fi
tmp="$(mktemp -d)"
cleanup() {
    rm -rf "$tmp"
    if ((started)); then bash "$K" down || true; fi
}
trap cleanup EXIT

BS="127.0.0.1:9092"
((N == 3)) && BS="127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096"

bash "$K" topic "$TOPIC" "$PARTS" >/dev/null || fail "topic create"

# Metadata: all partitions have N replicas.
md="$(kcat -b "$BS" -L -t "$TOPIC" -m 10)"
grep -q "$PARTS partitions" <<<"$md" || fail "expected $PARTS partitions: $md"
if ((N == 3)); then
    [[ "$(grep -c 'replicas: [123],[123],[123],' <<<"$md")" == "$PARTS" ]] || fail "expected RF 3: $md"
    bash "$K" describe "$TOPIC" | grep -q 'min.insync.replicas=2' || fail "min.insync.replicas=2 not set"
fi

# Produce keyed records with acks=all; kcat exits non-zero on delivery failure.
seq 1 "$COUNT" | sed 's/.*/key&:value&/' >"$tmp/sent"
kcat -b "$BS" -P -t "$TOPIC" -K: -X acks=all -X enable.idempotence=true <"$tmp/sent" ||
    fail "produce"

# Read back from the beginning of every partition.
timeout 60 kcat -b "$BS" -C -t "$TOPIC" -o beginning -e -q -f '%k:%s\n' >"$tmp/got" ||
    fail "consume (rc $?)"
sort "$tmp/sent" >"$tmp/sent.s"
sort "$tmp/got" >"$tmp/got.s"
cmp -s "$tmp/sent.s" "$tmp/got.s" ||
    fail "round trip mismatch: sent $(wc -l <"$tmp/sent"), got $(wc -l <"$tmp/got")"

# Same through a consumer group (exercises __consumer_offsets and its RF).
timeout 60 kcat -b "$BS" -G "g-$TOPIC" -o beginning -c "$COUNT" -q -f '%k:%s\n' "$TOPIC" \
    >"$tmp/group" || fail "group consume (rc $?)"
sort "$tmp/group" | cmp -s "$tmp/sent.s" - || fail "group round trip mismatch"

echo "kafka_smoke: OK ($N node(s), topic $TOPIC, $PARTS partitions, $COUNT records, acks=all)"
