#!/usr/bin/env bash
# The README's first command: install the dependencies, build ibnet, and
# run the main job — Deep VIB on MNIST (a few minutes on 2 cores), printing
# the test accuracy.  Extra arguments go to `ibnet train`, e.g.
#   bash scripts/run.sh --epochs 200 --out runs/vib-paper
# MNIST is looked for in --data DIR, $IBNET_DATA, ./data and ../shared/data;
# if it is in none of them it is downloaded into ./data and verified
# (scripts/fetch-data.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > build.log
cmake --build build -j"$(nproc)" --target ibnet >> build.log 2>&1 || { tail -50 build.log; exit 1; }
if [ -z "${IBNET_DATA:-}" ] && [ ! -d data ] && [ -d ../shared/data ]; then
  export IBNET_DATA="$(cd ../shared/data && pwd)"
fi
data_arg=false
for a in "$@"; do case "$a" in --data|--data=*|--dataset|--dataset=*) data_arg=true ;; esac; done
if ! $data_arg && ! ./build/ibnet data verify mnist --no-hash > /dev/null 2>&1; then
  echo "run.sh: MNIST not found locally; downloading it into ./data" >&2
  bash scripts/fetch-data.sh mnist data
fi
out="runs/deep-vib-mnist-$(date +%Y%m%d-%H%M%S)"
exec ./build/ibnet train --out "$out" "$@"
