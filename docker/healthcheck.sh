#!/bin/bash
# HEALTHCHECK for the worker image: GET /healthz on the worker's metrics port
# and succeed only on HTTP 200 (the worker answers 503 "<reason>" when it is
# not healthy). Uses bash's /dev/tcp instead of curl or wget: neither is in
# debian:bookworm-slim, and adding curl would pull libcurl and a dozen more
# libraries (and a ready-made HTTP client) into an image meant for untrusted
# hosts. bash is Essential in Debian, so it is always there.
#
# Port: $EE_METRICS_PORT (default 9464, the config default). The worker must
# bind 127.0.0.1, 0.0.0.0 or :: (config [worker] metrics_bind) for this to
# reach it; metrics_port = 0 disables /healthz, and then this check fails.
set -u
port=${EE_METRICS_PORT:-9464}
exec 3<>"/dev/tcp/127.0.0.1/${port}" || exit 1
printf 'GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
IFS= read -r -t 5 status <&3 || exit 1
exec 3<&-
case "$status" in
    "HTTP/1."[01]" 200 "*) exit 0 ;;
    *) echo "healthz: ${status%$'\r'}" >&2; exit 1 ;;
esac
