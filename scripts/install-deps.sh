#!/usr/bin/env bash
# Install the Debian packages eeinfer builds, tests and benchmarks with, if
# missing. Idempotent and quiet when everything is there (make runs it on
# every invocation, before anything compiles); uses sudo only when not root.
# Only Debian's own packages: no compiler, flag or tool is assumed present.
set -euo pipefail
PKGS=(
  build-essential pkg-config                      # cc, ar, make; package flags
  librdkafka-dev libjansson-dev libopenblas-dev libsodium-dev
  libmicrohttpd-dev libinih-dev uuid-dev          # the product's libraries
  libstb-dev                                      # image decoding and resizing (core/engine/ee_image)
  libfaiss-dev                                    # vector search (static, C++ only: core/engine/ee_vindex_faiss.cpp)
  check libsubunit-dev                            # unit and model test tiers
  clang libclang-rt-14-dev                        # libFuzzer targets (make fuzz, test-fuzz)
  python3 python3-venv                            # test oracles, bench peers
  curl ca-certificates unzip jq kcat              # model fetch, demo, Kafka tests
  procps iproute2                                 # ps/pkill, ss (scripts/kafka.sh)
  maven openjdk-17-jre-headless                   # Kafka 3.9 from Maven Central
  cmake                                           # builds llama.cpp (make bench, check-llamacpp)
  fortunes                                        # text corpus of make security-report
)
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${PKGS[@]}" 2>/dev/null \
            | awk '$NF == "installed" { print $1 }' | sed 's/:.*//') || true
missing=()
for p in "${PKGS[@]}"; do
  grep -qxF "$p" <<<"$installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
