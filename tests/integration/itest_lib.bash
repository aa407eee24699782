# Sourced by the integration wrappers (not a test itself: test-integration
# runs *.sh). itest_setup NAME WORKER_PATTERN: cd to the repository, start
# a 1-node Apache Kafka 3.9 on loopback unless one is running (then use it
# and leave it running), make a work directory ($work), and on exit stop
# this test's workers (ee-consumer processes whose command line contains
# WORKER_PATTERN; empty: the test stops its own), remove $work and stop the cluster if we started it.
# Sets ROOT, K (scripts/kafka.sh), PY (the test venv's python) and work.
itest_setup() {
    local name=$1
    ITEST_PATTERN=$2
    ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
    cd "$ROOT"
    K=scripts/kafka.sh
    PY=.cache/venv/bin/python
    ITEST_STARTED=0
    if bash "$K" status >/dev/null 2>&1; then
        echo "$name: using the running cluster"
    else
        KAFKA_NODES=1 bash "$K" up
        ITEST_STARTED=1
    fi
    work="$(mktemp -d)"
    trap itest_cleanup EXIT
}

itest_cleanup() {
    if [ -n "$ITEST_PATTERN" ]; then pkill -TERM -f "$ITEST_PATTERN" 2>/dev/null || true; fi
    rm -rf "$work"
    if ((ITEST_STARTED)); then bash "$K" down || true; fi
}
