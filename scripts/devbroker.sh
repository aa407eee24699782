#!/usr/bin/env bash
# Development-only Kafka for `make demo`: ee-devbroker (librdkafka mock
# cluster, in memory, no real transactions, data lost on stop).
#   scripts/devbroker.sh start [extra ee-devbroker flags]  -> prints bootstrap servers
#   scripts/devbroker.sh stop
#   scripts/devbroker.sh status
# State: .cache/devbroker/{pid,bootstrap,log}. Integration tests use real Kafka 3.9.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=.cache/devbroker
BIN=build/bin/ee-devbroker
PIDF=$DIR/pid
BOOT=$DIR/bootstrap
LOG=$DIR/log
TOPICS=(ee.requests.smollm2.small:2 ee.requests.smollm2.large:1 ee.replies.demo:1 ee.dlq:1)

# Prints the pid if the pid file names a live ee-devbroker, else fails.
running_pid() {
  local pid
  [ -f "$PIDF" ] || return 1
  pid=$(cat "$PIDF" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q 'ee-devbroker' || return 1
  echo "$pid"
}

start() {
  local pid
  if pid=$(running_pid); then
    [ -s "$BOOT" ] && { cat "$BOOT"; return 0; }
    echo "devbroker: running (pid $pid) but $BOOT is missing; run stop first" >&2
    return 1
  fi
  [ -x "$BIN" ] || make -s "$BIN" >&2
  mkdir -p "$DIR"
  rm -f "$BOOT" "$PIDF"
  local args=()
  for t in "${TOPICS[@]}"; do args+=(--topic "$t"); done
  # setsid: own session, so the caller's Ctrl-C / shell exit does not kill it.
  setsid "$BIN" "${args[@]}" --bootstrap-file "$BOOT" "$@" >"$LOG" 2>&1 </dev/null &
  pid=$!
  echo "$pid" > "$PIDF"
  for _ in $(seq 100); do
    if [ -s "$BOOT" ]; then cat "$BOOT"; return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "devbroker: exited during startup:" >&2; cat "$LOG" >&2
      rm -f "$PIDF"; return 1
    fi
    sleep 0.1
  done
  echo "devbroker: no bootstrap file after 10 s (log: $LOG)" >&2
  kill -TERM "$pid" 2>/dev/null || true
  rm -f "$PIDF"
  return 1
}

stop() {
  local pid
  if ! pid=$(running_pid); then
    rm -f "$PIDF" "$BOOT"
    echo "devbroker: not running"
    return 0
  fi
  kill -TERM "$pid"
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$PIDF" "$BOOT"; echo "devbroker: stopped"; return 0; }
    sleep 0.1
  done
  echo "devbroker: pid $pid ignored SIGTERM for 10 s; sending SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PIDF" "$BOOT"
  return 1
}

status() {
  local pid
  if pid=$(running_pid); then echo "running pid $pid bootstrap $(cat "$BOOT" 2>/dev/null)"; else echo "not running"; return 3; fi
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  start) start "$@" ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start [ee-devbroker flags] | stop | status" >&2; exit 2 ;;
esac
