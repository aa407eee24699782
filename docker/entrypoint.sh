#!/bin/sh
# Worker entrypoint (the image's ENTRYPOINT): runs ee-consumer with the given
# flags. Unless they already name the worker (--name), adds
# --name "$EE_WORKER_NAME" or, by default, the container's hostname, so that
# replicas of one compose service (deploy.replicas, --scale) are told apart
# in replies (`worker` field), logs and metrics. exec: ee-consumer replaces
# this shell, so it receives `docker stop`'s SIGTERM itself (and drains
# in-flight jobs for up to [worker] grace_ms).
set -eu
for a in "$@"; do
    case "$a" in
        --name|--name=*) exec ee-consumer "$@" ;;
    esac
done
exec ee-consumer "$@" --name "${EE_WORKER_NAME:-$(uname -n)}"
