#!/usr/bin/env bash
# Installs the Debian packages megafs builds on, if any is missing. Idempotent.
set -euo pipefail
packages=(libprotobuf-c-dev libzstd-dev libopenblas-dev libpng-dev zlib1g-dev libturbojpeg0-dev pkg-config)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi
