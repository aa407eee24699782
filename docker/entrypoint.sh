#!/bin/sh
# Worker entrypoint (the image's ENTRYPOINT): runs ee-consumer with the given
# flags. Unless they already name the worker (--name), adds
# --name "$EE_WORKER_NAME" or, by default, the container's hostname, so that
# replicas of one compose service (deploy.replicas, --scale) are told apart
# in replies (`worker` field), logs and metrics. exec: ee-consumer replaces
# this shell, so it receives `docker stop`'s SIGTERM itself (and drains
# in-flight jobs for up to [worker] grace_ms).
#
# Sealed and signed jobs: each $EE_TENANTS_DIR/NAME.pub (default
# /etc/eeinfer/tenants; a client's public key as `ee-producer keygen`
# prints it) becomes a [tenant NAME] section allowed every model, appended
# to a copy of the --config file in /tmp that the worker then reads.
set -eu
tenants_dir=${EE_TENANTS_DIR:-/etc/eeinfer/tenants}
cfg=""
prev=""
for a in "$@"; do
    [ "$prev" = "--config" ] && cfg=$a
    case "$a" in --config=*) cfg=${a#--config=} ;; esac
    prev=$a
done
if [ -n "$cfg" ] && ls "$tenants_dir"/*.pub >/dev/null 2>&1; then
    merged=${TMPDIR:-/tmp}/worker-with-tenants.ini
    cp "$cfg" "$merged"
    for f in "$tenants_dir"/*.pub; do
        name=$(basename "$f" .pub)
        printf '\n[tenant %s]\npublic_key = %s\nmodels = *\n' "$name" "$(tr -d ' \n' <"$f")" >>"$merged"
    done
    prev=""
    for a in "$@"; do # the list is expanded before the loop: set -- is safe
        [ "$prev" = "" ] && set --
        if [ "$prev" = "--config" ]; then a=$merged; fi
        case "$a" in --config=*) a="--config=$merged" ;; esac
        set -- "$@" "$a"
        prev=$a
    done
fi
for a in "$@"; do
    case "$a" in
        --name|--name=*) exec ee-consumer "$@" ;;
    esac
done
exec ee-consumer "$@" --name "${EE_WORKER_NAME:-$(uname -n)}"
