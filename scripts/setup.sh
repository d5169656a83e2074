#!/usr/bin/env bash
# Install whatever the build, the tests and the demo need and is missing (Debian 12).
# As root it runs apt-get; otherwise it prints the exact command to run and exits 1.
set -euo pipefail

pkgs=(build-essential cmake pkg-config libcurl4-openssl-dev libuv1-dev libjson-c-dev
      libyaml-dev libssl-dev libcmocka-dev libsystemd-dev libmicrohttpd-dev uthash-dev python3
      clang libclang-rt-14-dev valgrind openssl systemd curl man-db groff-base dpkg-dev
      etcd-server etcd-client)
# The Genesys SDK fidelity test needs Node.js and npm; use the machine's if present.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    pkgs+=(nodejs npm)
fi

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages: ${missing[*]}" >&2
    echo "setup: run as root: $cmd" >&2
    exit 1
fi
echo "setup: installing ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
