#!/usr/bin/env bash
# The layering of core/ and the worker (docs/LAYERS.md), checked from the
# sources alone (no compiler, no package, so it runs before the install):
#   1. a core file includes only headers of its own layer or of a layer it
#      may use (the USES_* lists in the Makefile, which also set each
#      layer's include path, so the compiler refuses an upward include);
#   2. no include cycle between modules, in core/ and in consumer/ (a module
#      is a .c with its .h, and its _impl.h if any; tsort finds loops);
#   3. the negative control: an upward include and a cycle, planted in a
#      copy, are both caught.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
fail() { echo "layers: FAIL: $*" >&2; exit 1; }

# Allowed layers per layer, read from the Makefile (USES_x = ...).
uses() { sed -n "s/^USES_$1 *= *//p" "$ROOT/Makefile"; }
LAYERS=$(sed -n 's/^LAYERS *= *//p' "$ROOT/Makefile")
[ -n "$LAYERS" ] || fail "LAYERS not found in the Makefile"

# check_tree DIR: prints violations, returns 1 if any.
check_tree() {
    local dir="$1" bad=0
    # layer of every core header
    declare -A layer_of=()
    for l in $LAYERS; do
        for h in "$dir"/core/"$l"/*.h; do [ -e "$h" ] && layer_of[$(basename "$h")]=$l; done
    done
    for l in $LAYERS; do
        local allowed; allowed=" $(uses "$l") "
        for f in "$dir"/core/"$l"/*.[ch] "$dir"/core/"$l"/*.cpp; do
            [ -e "$f" ] || continue
            while read -r inc; do
                local hl="${layer_of[$inc]:-}"
                [ -n "$hl" ] || continue
                if [[ "$allowed" != *" $hl "* ]]; then
                    echo "  core/$l/$(basename "$f") includes $inc from layer $hl (allowed: $(uses "$l"))"
                    bad=1
                fi
            done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
        done
    done
    # module graph: edges module -> included module, within each program
    for part in core consumer; do
        local edges
        edges=$(for f in $(find "$dir/$part" -name '*.[ch]' -o -name '*.cpp'); do
            local m; m=$(basename "$f"); m=${m%.*}; m=${m%_impl}
            sed -n 's/^#include "\([^"]*\)\.h".*/\1/p' "$f" | sed 's/_impl$//' | while read -r dep; do
                [ "$dep" = "$m" ] || echo "$m $dep"
            done
        done)
        if ! out=$(printf '%s\n' "$edges" | tsort 2>&1 >/dev/null); then :; fi
        if [ -n "$out" ]; then
            echo "  include cycle in $part/:"
            printf '%s\n' "$out" | sed 's/^/    /'
            bad=1
        fi
    done
    return $bad
}

if ! report=$(check_tree "$ROOT"); then
    echo "$report" >&2
    fail "the layering is broken (see above)"
fi

# Negative control: plant an upward include and a cycle in a copy.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/core" "$tmp/consumer"
cp -r "$ROOT/core/." "$tmp/core/"
cp -r "$ROOT/consumer/." "$tmp/consumer/"
cp "$ROOT/Makefile" "$tmp/Makefile"
ROOT="$tmp"
echo '#include "ee_proto.h"' >> "$tmp/core/base/ee_error.c"
report=$(check_tree "$tmp") && fail "negative control: an upward include (base -> svc) was not caught"
grep -q "ee_error.c includes ee_proto.h" <<<"$report" || fail "negative control: wrong report: $report"
cp "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/core/base/ee_error.c" "$tmp/core/base/ee_error.c"
echo '#include "svc_poll.h"' >> "$tmp/consumer/svc_queue.c"
report=$(check_tree "$tmp") && fail "negative control: an include cycle (svc_queue -> svc_poll) was not caught"
grep -q "include cycle in consumer" <<<"$report" || fail "negative control: wrong report: $report"

n_core=$(find "$(dirname "${BASH_SOURCE[0]}")/../../core" -name '*.c' -o -name '*.cpp' | wc -l)
echo "layers: $n_core core files in $(wc -w <<<"$LAYERS") layers include only downward; no include cycle in core/ or consumer/; both negative controls caught"
