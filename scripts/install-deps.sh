#!/usr/bin/env bash
# Installs retort's build and test dependencies from Debian 12's packages.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
PKGS=(build-essential cmake pkg-config libcpp-httplib-dev nlohmann-json3-dev libsqlite3-dev sqlite3 libssl-dev
      catch2 libcli11-dev libre2-dev libzstd-dev zlib1g-dev zstd libvalijson-dev clang libclang-rt-14-dev python3
      chromium nodejs)  # chromium + nodejs: the dashboard's browser test (label browser)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
