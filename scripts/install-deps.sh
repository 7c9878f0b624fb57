#!/usr/bin/env bash
# Installs ibnet's build and test dependencies from Debian's archive.
# Each is explained in the README's "Dependencies" section.
set -euo pipefail
pkgs=(build-essential cmake clang libclang-rt-14-dev libomp-dev
      libopenblas-openmp-dev libdnnl-dev libcjson-dev librandom123-dev zlib1g-dev libpng-dev libjpeg-dev
      libzip-dev libcairo2-dev libopenmpi-dev openmpi-bin python3-numpy python3-pytest)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "dependencies: ok"
