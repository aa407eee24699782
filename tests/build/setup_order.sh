#!/usr/bin/env bash
# Regression test for the setup contract (issue 8): on a fresh clone of a
# machine without the project's packages, every README target installs them
# before anything compiles, links or computes a flag.
#
# CI cannot uninstall packages, so this checks the order instead, in a copy
# of the tracked tree with no .cache (no stamps) and no build/:
#   1. `make -n TARGET` for every phony target that builds or runs something
#      prints `bash scripts/install-deps.sh` as its first command;
#   2. parsing the Makefile and expanding those recipes runs no tool that a
#      package provides (pkg-config, cc, python3, ...): shims first on PATH
#      record any call, so a flag computed at parse time is caught;
#   3. reading a package flag before the install step is a make error that
#      names the cause, not a silently empty flag.
set -euo pipefail
command -v git >/dev/null || { echo "setup_order: FAIL: git is needed to list the tracked files" >&2; exit 1; }
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# Targets that need no package: cleaning, stopping Kafka, the install itself.
NO_PACKAGES="clean distclean kafka-down kafka-status deps FORCE test-setup"

fail() { echo "setup_order: FAIL: $*" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
tree="$tmp/clone"
mkdir -p "$tree" "$tmp/shim"
# The tree as a fresh clone would have it: tracked and new files, nothing ignored.
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
   | xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' | tar -c --null -T - -f -) \
   | tar -x -C "$tree"
[ -f "$tree/Makefile" ] && [ ! -e "$tree/.cache" ] && [ ! -e "$tree/build" ] \
  || fail "could not lay out a fresh copy of the tree"

# Shims for every tool a package provides that a flag could be computed with.
for t in pkg-config cc gcc c99 clang g++ c++ ar ld python3 python pip pip3 mvn java kcat jq curl unzip cmake; do
  printf '#!/bin/sh\necho "%s $*" >> "%s/calls"\nexit 1\n' "$t" "$tmp" > "$tmp/shim/$t"
  chmod +x "$tmp/shim/$t"
done

targets=$( { make -C "$tree" -pRrq -f Makefile : 2>/dev/null || true; } \
          | sed -n 's/^\.PHONY: *//p' | tr ' ' '\n' | sort -u)
# README's make commands: lines of code blocks that start with make, and `make X`.
readme=$( { grep -oE '^ *make [a-z][a-z0-9-]*' "$ROOT/README.md";
            grep -oE '`make [a-z][a-z0-9-]*' "$ROOT/README.md"; } | awk '{ print $2 }' | sort -u)
checked=0
for t in $targets; do
  case " $NO_PACKAGES " in *" $t "*) continue ;; esac
  out="$tmp/$t.n"
  rm -f "$tmp/calls"
  PATH="$tmp/shim:$PATH" make -C "$tree" --no-print-directory -n "$t" > "$out" 2> "$tmp/$t.err" \
    || fail "make -n $t failed: $(head -3 "$tmp/$t.err")"
  [ -e "$tmp/calls" ] && fail "make -n $t ran package tools while parsing/expanding: $(head -3 "$tmp/calls")"
  # test-setup's recipe (this script, layers.sh, its summary line) needs no package and runs first in `make test`.
  first=$(awk 'NF && $0 !~ /^(bash tests\/build\/[a-z_]+\.sh|echo "setup: .*")$/ { print; exit }' "$out")
  [ "$first" = "bash scripts/install-deps.sh" ] \
    || fail "make -n $t: first command is '$first', not the install step"
  grep -q -- '-o build/' "$out" || grep -q 'scripts/' "$out" || fail "make -n $t printed no work"
  checked=$((checked + 1))
done
for t in $readme; do
  grep -qx -- "$t" <<<"$targets" || fail "README names 'make $t', which is not a phony target of the Makefile"
done
[ "$checked" -ge 10 ] || fail "only $checked targets checked"
# The default goal (plain `make`) too.
rm -f "$tmp/calls"
PATH="$tmp/shim:$PATH" make -C "$tree" --no-print-directory -n > "$tmp/default.n" 2>&1 || fail "make -n failed"
[ "$(head -1 "$tmp/default.n")" = "bash scripts/install-deps.sh" ] || fail "make -n: install step is not first"
[ -e "$tmp/calls" ] && fail "make -n ran package tools: $(head -3 "$tmp/calls")"

# 3. A recipe that reads a flag with no install step before it fails loudly.
if make -C "$tree" --no-print-directory --eval 'probe: ; @echo "[$(PKG_LIBS)]"' probe > "$tmp/probe" 2>&1; then
  fail "reading PKG_LIBS before the install step did not fail: $(cat "$tmp/probe")"
fi
grep -q 'before the install step' "$tmp/probe" || fail "unclear error: $(cat "$tmp/probe")"

echo "setup_order: $checked targets + default: install step first, no package tool at parse time"
