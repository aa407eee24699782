#!/usr/bin/env bash
# ee-producer against the development broker (librdkafka mock cluster) and a
# fake keyless worker: request format and headers, decryption of replies,
# streaming, dedupe of duplicate finals, error replies, timeouts, an
# unreachable broker, `wait`, `load`, and the exit codes 0-4.
#
# Starts its own ee-devbroker (not scripts/devbroker.sh, whose state file is
# shared with whoever else uses the machine) and stops it at the end. The
# fake worker (python3 + kcat, below) echoes a request's encrypted prompt ids
# back as its output, so a correct client prints the prompt's own text.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
BIN=build/bin
P=$BIN/ee-producer
MODEL=.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
NAME=producer_devbroker

fail() { echo "$NAME: FAIL: $*" >&2; exit 1; }
if [[ ! -f "$MODEL" ]]; then
    echo "$NAME: SKIP: $MODEL missing (run 'make model'); the client needs its tokenizer"
    exit 0
fi
for b in ee-producer ee-devbroker ee-model; do
    [[ -x "$BIN/$b" ]] || fail "$BIN/$b not built (make $BIN/$b)"
done
command -v kcat >/dev/null || fail "kcat not found"
command -v jq >/dev/null || fail "jq not found"
command -v python3 >/dev/null || fail "python3 not found"

tmp="$(mktemp -d)"
broker_pid=""
worker_pid=""
cleanup() {
    # the worker runs in its own process group (setsid): python and its kcat
    [[ -n "$worker_pid" ]] && kill -TERM -- "-$worker_pid" 2>/dev/null || true
    [[ -n "$broker_pid" ]] && kill -TERM "$broker_pid" 2>/dev/null || true
    [[ -n "$broker_pid" ]] && wait "$broker_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# ---- broker, key, worker ------------------------------------------------------
REPLY=ee.replies.ptest
setsid "$BIN/ee-devbroker" --topic ee.requests.smollm2.small:2 --topic ee.requests.smollm2.large:1 \
    --topic "$REPLY:3" --bootstrap-file "$tmp/boot" >"$tmp/broker.log" 2>&1 </dev/null &
broker_pid=$!
for _ in $(seq 100); do [[ -s "$tmp/boot" ]] && break; sleep 0.1; done
[[ -s "$tmp/boot" ]] || fail "ee-devbroker did not start: $(cat "$tmp/broker.log")"
BOOT="$(cat "$tmp/boot")"

KEY="$tmp/k.eekey"
"$BIN/ee-model" keygen --out "$KEY" >/dev/null || fail "keygen"
# Requests carry the key bound to the plain model (ee-llama-v2).
KEYID="$("$BIN/ee-model" key-id --key "$KEY" --model "$MODEL")" || fail "key-id"
enc() { "$BIN/ee-model" tokenize --model "$MODEL" --key "$KEY" --json "$@" | tr -d ' '; }

cat >"$tmp/worker.py" <<'EOF'
# Fake keyless worker: replies with the request's own (encrypted) prompt ids.
#   id contains "err" -> error reply; "dup" -> the final reply twice (the
#   second with other tokens); "drop" -> no reply; "stream": one partial per
#   token, then the final.
import json, subprocess, sys
boot, topic = sys.argv[1], sys.argv[2]
cons = subprocess.Popen(["kcat", "-C", "-b", boot, "-t", topic, "-o", "beginning", "-u", "-q",
                         "-X", "fetch.wait.max.ms=20", "-f", "%s\n"],
                        stdout=subprocess.PIPE, text=True)
for line in cons.stdout:
    r = json.loads(line)
    rid, toks = r["id"], r["input"]["tokens"]
    if "drop" in rid:
        continue
    out = []
    if "err" in rid:
        out.append({"v": 1, "id": rid, "status": "error", "seq": 0, "final": True,
                    "error": {"code": "bad_token", "message": "input.tokens[0]: fake"},
                    "worker": "fake-1"})
    else:
        seq = 0
        if r.get("stream"):
            for t in toks:
                out.append({"v": 1, "id": rid, "status": "ok", "seq": seq, "final": False,
                            "output": {"tokens": [t]}})
                seq += 1
        fin = {"v": 1, "id": rid, "status": "ok", "seq": seq, "final": True,
               "output": {"tokens": toks}, "finish_reason": "stop",
               "usage": {"prompt_tokens": len(toks), "completion_tokens": len(toks)},
               "timings": {"queue_ms": 1.5, "prefill_ms": 10.0, "decode_ms": 20.0},
               "worker": "fake-1"}
        out.append(fin)
        if "dup" in rid:
            out.append(dict(fin, output={"tokens": [1, 2, 3]}))
    data = "".join(json.dumps(o) + "\n" for o in out)
    subprocess.run(["kcat", "-P", "-b", boot, "-t", r["reply_to"], "-k", rid], input=data,
                   text=True, check=True)
EOF
setsid python3 "$tmp/worker.py" "$BOOT" ee.requests.smollm2.small >"$tmp/worker.log" 2>&1 </dev/null &
worker_pid=$!

COMMON=(--bootstrap "$BOOT" --key "$KEY" --plain-model "$MODEL")
SUB=("$P" submit "${COMMON[@]}" --model smollm2 --reply-to "$REPLY")

# run EXPECTED_RC NAME cmd...: stdout in $tmp/NAME.out, stderr in $tmp/NAME.err
run() {
    local want=$1 name=$2 rc=0
    shift 2
    "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" || rc=$?
    [[ $rc == "$want" ]] ||
        fail "$name: exit $rc, expected $want; stdout: $(head -c 600 "$tmp/$name.out"); stderr: $(head -c 600 "$tmp/$name.err")"
}
has() { grep -qF -- "$2" "$tmp/$1" || fail "$1 lacks '$2': $(head -c 600 "$tmp/$1")"; }

# ---- usage ------------------------------------------------------------------------
run 0 help "$P" --help
has help.out "exit codes"
run 0 subhelp "$P" submit --help
has subhelp.out "--prompts-file"
run 1 badint "${SUB[@]}" --prompt hi --max-tokens abc
has badint.err "ee-producer submit: --max-tokens: 'abc' is not an integer in 1..1048576"
run 1 badflag "$P" wait --nope
has badflag.err "unknown flag '--nope'"
run 1 nokey "$P" submit --bootstrap "$BOOT" --key "$tmp/none" --plain-model "$MODEL" \
    --model smollm2 --prompt hi
has nokey.err "--key"

# ---- the request record -----------------------------------------------------------
run 0 plain "${SUB[@]}" --prompt "What is the capital of France?" --chat --id job-req1 \
    --max-tokens 32 --temperature 0.5 --seed 7 --deadline-ms 60000 --session sess-1
[[ "$(cat "$tmp/plain.out")" == job-req1 ]] || fail "submit printed '$(cat "$tmp/plain.out")'"
timeout 20 kcat -C -b "$BOOT" -t ee.requests.smollm2.small -e -q -f '%k\t%h\t%s\n' >"$tmp/req"
line="$(grep -F '"id":"job-req1"' "$tmp/req")" || fail "request job-req1 not on the topic"
IFS=$'\t' read -r rkey rhdr rbody <<<"$line"
[[ "$rkey" == sess-1 ]] || fail "record key '$rkey', expected the session"
[[ "$rhdr" == *"ee-id=job-req1"* && "$rhdr" == *"ee-reply-to=$REPLY"* ]] || fail "headers: $rhdr"
want_toks="$(enc --chat --prompt "What is the capital of France?")"
now_ms=$(($(date +%s) * 1000))
jq -e --arg k "$KEYID" --arg r "$REPLY" --argjson t "$want_toks" --argjson now "$now_ms" '
    .v == 1 and .id == "job-req1" and .session == "sess-1" and .model == "smollm2" and
    .key_id == $k and .task == "generate" and .input.tokens == $t and .reply_to == $r and
    .params.max_tokens == 32 and .params.temperature == 0.5 and .params.seed == 7 and
    .stream == false and (.deadline_ms - $now) > 50000 and (.deadline_ms - $now) < 70000
' <<<"$rbody" >/dev/null || fail "request body: $rbody"

# ---- --wait: decrypted answer (echo worker), JSON ----------------------------------
run 0 wait1 "${SUB[@]}" --prompt "Paris." --id job-paris --wait --timeout-ms 20000
[[ "$(cat "$tmp/wait1.out")" == $'job-paris\nParis.' ]] || fail "wait1: $(cat "$tmp/wait1.out")"
run 0 wjson "${SUB[@]}" --prompt "Paris." --wait --json --timeout-ms 20000
jq -se --argjson t "$(enc --prompt Paris.)" '
    length == 2 and .[0].event == "submitted" and .[0].class == "small" and
    .[0].prompt_tokens == ($t | length) and .[0].encrypted_prompt == $t and
    .[1].event == "result" and .[1].status == "ok" and .[1].text == "Paris." and
    .[1].encrypted_tokens == $t and .[1].finish_reason == "stop" and
    .[1].worker == "fake-1" and .[1].latency_ms > 0 and .[1].usage.completion_tokens == 2
' "$tmp/wjson.out" >/dev/null || fail "wjson: $(cat "$tmp/wjson.out")"

# ---- a hand-written reply (class large has no worker) -------------------------------
"${SUB[@]}" --prompt "x" --class large --id job-hand --wait --timeout-ms 20000 \
    >"$tmp/hand.out" 2>"$tmp/hand.err" &
hand=$!
for _ in $(seq 100); do [[ -s "$tmp/hand.out" ]] && break; sleep 0.05; done
printf '{"v":1,"id":"job-hand","status":"ok","seq":0,"final":true,"output":{"tokens":%s},"finish_reason":"stop","usage":{"prompt_tokens":1,"completion_tokens":2},"timings":{"queue_ms":1,"prefill_ms":2,"decode_ms":3}}\n' \
    "$(enc --prompt 'Paris.')" | kcat -P -b "$BOOT" -t "$REPLY" -k job-hand
rc=0
wait "$hand" || rc=$?
[[ $rc == 0 && "$(cat "$tmp/hand.out")" == $'job-hand\nParis.' ]] ||
    fail "hand: exit $rc: $(cat "$tmp/hand.out" "$tmp/hand.err")"

# ---- several prompts, ids suffixed ---------------------------------------------------
printf 'first prompt\n\n   \nsecond prompt\r\n' >"$tmp/prompts"
run 0 multi "${SUB[@]}" --prompts-file "$tmp/prompts" --id m --wait --timeout-ms 20000
has multi.out "m-1: first prompt"
has multi.out "m-2: second prompt"
[[ "$(grep -c . "$tmp/multi.out")" == 4 ]] || fail "multi: $(cat "$tmp/multi.out")"

# ---- streaming: a character split across byte tokens --------------------------------
run 0 stream "${SUB[@]}" --prompt "Hi 🎉 日本 done" --stream --timeout-ms 20000
[[ "$(tail -n 1 "$tmp/stream.out")" == "Hi 🎉 日本 done" ]] || fail "stream: $(cat "$tmp/stream.out")"
run 0 sjson "${SUB[@]}" --prompt "Hi 🎉 日本 done" --stream --json --timeout-ms 20000
jq -se '
    ([.[] | select(.event == "partial")] | length) > 3 and
    ([.[] | select(.event == "partial") | .text] | add) == "Hi 🎉 日本 done" and
    (.[-1].event == "result" and .[-1].text == "Hi 🎉 日本 done")
' "$tmp/sjson.out" >/dev/null || fail "sjson: $(cat "$tmp/sjson.out")"

# ---- duplicates, errors, timeouts ------------------------------------------------------
run 0 dup "${SUB[@]}" --prompt "once" --id job-dup1 --wait --json --timeout-ms 20000
jq -se 'map(select(.event == "result")) | length == 1 and .[0].text == "once"' \
    "$tmp/dup.out" >/dev/null || fail "dup: $(cat "$tmp/dup.out")"
run 2 err "${SUB[@]}" --prompt "x" --id job-err1 --wait --timeout-ms 20000
has err.err "job job-err1: error bad_token: input.tokens[0]: fake"
run 3 tmo "${SUB[@]}" --prompt "x" --id job-drop1 --wait --timeout-ms 1500
has tmo.err "timed out after 1500 ms waiting for 1 job(s): job-drop1"
run 4 unreach "$P" submit --bootstrap 127.0.0.1:1 --key "$KEY" --plain-model "$MODEL" \
    --model smollm2 --prompt x --timeout-ms 5000
has unreach.err "cannot reach Kafka at 127.0.0.1:1"
run 4 nomodel "$P" submit "${COMMON[@]}" --reply-to "$REPLY" --prompt x --model nosuch
has nomodel.err "request topic 'ee.requests.nosuch.small' does not exist"
run 4 noreply "$P" submit "${COMMON[@]}" --model smollm2 --prompt x --reply-to ee.replies.none
has noreply.err "reply topic 'ee.replies.none' does not exist"

# ---- wait: afterwards, by id -------------------------------------------------------------
run 0 later "${SUB[@]}" --prompt "Later." --id job-later
sleep 0.5
run 2 waitids "$P" wait "${COMMON[@]}" --reply-to "$REPLY" --id job-later --id job-dup1 \
    --id job-err1 --timeout-ms 10000
has waitids.out "job-later: Later."
has waitids.out "job-dup1: once"
has waitids.err "job job-err1: error bad_token"
run 3 waitmiss "$P" wait "${COMMON[@]}" --reply-to "$REPLY" --id job-never --timeout-ms 1000
has waitmiss.err "job-never"

# ---- load --------------------------------------------------------------------------------
run 0 load "$P" load "${COMMON[@]}" --model smollm2 --reply-to "$REPLY" \
    --prompts-file "$tmp/prompts" --count 12 --concurrency 3 --json
jq -e '.jobs.ok == 12 and .jobs.error == 0 and .jobs.timeout == 0 and .workers["fake-1"] == 12
       and .latency_ms.p50 > 0 and .latency_ms.max >= .latency_ms.p99 and .generated_tokens > 0' \
    "$tmp/load.out" >/dev/null || fail "load: $(cat "$tmp/load.out")"
run 3 loadtmo "$P" load "${COMMON[@]}" --model smollm2 --reply-to "$REPLY" --prompt x \
    --class large --count 2 --timeout-ms 800
has loadtmo.out "0 ok, 0 error, 2 timeout"
# records and report: timed-out jobs are recorded; without a plotter the
# records and summary stay, the error says so and the timeout still wins
run 3 loadrec env EE_PYTHON=/nonexistent/python "$P" load "${COMMON[@]}" --model smollm2 \
    --reply-to "$REPLY" --prompt x --class large --count 2 --timeout-ms 800 --report "$tmp/rep"
has loadrec.err "--report: plots not drawn"
has loadrec.err "records and summary.json are in $tmp/rep"
[[ "$(head -1 "$tmp/rep/records.jsonl" | jq -r .record)" == run ]] || fail "loadrec: no run line"
[[ "$(jq -r 'select(.record == "job") | .status' "$tmp/rep/records.jsonl" | sort | uniq -c | tr -s ' ')" == " 2 timeout" ]] ||
    fail "loadrec: $(cat "$tmp/rep/records.jsonl")"
jq -e '.jobs.timeout == 2 and .latency_from == "actual_send"' "$tmp/rep/summary.json" >/dev/null ||
    fail "loadrec summary: $(cat "$tmp/rep/summary.json")"
[[ "$(grep -c $'\r' "$tmp/loadrec.err")" == 0 ]] || fail "loadrec: progress line on a pipe"
run 0 loadbar "$P" load "${COMMON[@]}" --model smollm2 --reply-to "$REPLY" --prompt "Hi." \
    --count 3 --concurrency 3 --progress
has loadbar.err "3/3 done, 0 in flight, 0 errors |"
[[ "$(tail -c 4 "$tmp/loadbar.err" | od -An -c | tr -d ' ')" == '\r033[K' ]] ||
    fail "loadbar: the progress line is not erased at the end: $(od -c "$tmp/loadbar.err" | tail -3)"
run 1 loadprog "$P" load "${COMMON[@]}" --model smollm2 --prompt x --progress --no-progress
has loadprog.err "give at most one of --progress and --no-progress"
run 1 loadbadrec "$P" load "${COMMON[@]}" --model smollm2 --prompt x --records /nonexistent/r.jsonl
has loadbadrec.err "--records: cannot create '/nonexistent/r.jsonl'"

echo "$NAME: OK"
