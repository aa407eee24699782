#!/usr/bin/env bash
# Install the Debian packages eeinfer builds and tests with, if missing.
# Idempotent; uses sudo only when not root.
set -euo pipefail
PKGS=(build-essential pkg-config librdkafka-dev libjansson-dev libopenblas-dev
      libsodium-dev check libsubunit-dev libmicrohttpd-dev libinih-dev uuid-dev kcat jq unzip
      python3 python3-venv curl ca-certificates
      maven openjdk-17-jre-headless)   # Kafka 3.9 from Maven Central for integration tests
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
