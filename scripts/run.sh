#!/usr/bin/env bash
# The README's first command: install the dependencies, build ibnet, and
# run the main job — Deep VIB on MNIST (a few minutes on 2 cores), printing
# the test accuracy.  Extra arguments go to `ibnet train`, e.g.
#   bash scripts/run.sh --epochs 200 --out runs/vib-paper
# MNIST is looked for in --data DIR, $IBNET_DATA, ./data and ../shared/data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > build.log
cmake --build build -j"$(nproc)" --target ibnet >> build.log 2>&1 || { tail -50 build.log; exit 1; }
if [ -z "${IBNET_DATA:-}" ] && [ ! -d data ] && [ -d ../shared/data ]; then
  export IBNET_DATA="$(cd ../shared/data && pwd)"
fi
out="runs/deep-vib-mnist-$(date +%Y%m%d-%H%M%S)"
exec ./build/ibnet train --out "$out" "$@"
