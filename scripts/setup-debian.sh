#!/usr/bin/env bash
# Installs what a fresh Debian 12 needs to build and test hw1. Idempotent: does nothing when all is installed.
set -euo pipefail

packages=(build-essential cmake ninja-build ccache libeigen3-dev libxtensor-dev nlohmann-json3-dev libminizip-dev
  libboost-test-dev libopenblas0-openmp openmpi-bin libopenmpi-dev libpng-dev libjpeg-dev libcairo2-dev pkg-config python3-torch python3-torchvision python3-numpy)

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed$' || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "setup-debian: all ${#packages[@]} packages already installed"
  exit 0
fi

sudo=()
if ((EUID != 0)); then
  command -v sudo >/dev/null || { echo "setup-debian: run as root or install sudo; missing: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "setup-debian: installing ${missing[*]}"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
