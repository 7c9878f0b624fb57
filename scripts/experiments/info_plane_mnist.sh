#!/usr/bin/env bash
# The information plane of a small tanh MLP on MNIST (docs/results.md,
# "Information plane"): trained with Adam (lr 1e-3, no EMA) on the first
# TRAIN_LIMIT training images, I(X;T) and I(T;Y) of each tanh layer and the
# logits by binning (30 bins over the data range) on the first TRACK_LIMIT
# of those images after every epoch (--track-info), then the plane and the
# training curves as PNG.  Short budget on two shared cores.
#   EPOCHS=100 bash scripts/experiments/info_plane_mnist.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
EPOCHS=${EPOCHS:-100}
SEED=${SEED:-1}
TRAIN_LIMIT=${TRAIN_LIMIT:-10000}
TRACK_LIMIT=${TRACK_LIMIT:-2000}
THREADS=${THREADS:-1}
IBNET=${IBNET:-build/ibnet}
run=${RUN:-runs/info-plane-tanh-e$EPOCHS-s$SEED}
if [ ! -s "$run/summary.json" ]; then
  rm -rf "$run"
  /usr/bin/time -f "%e s wall" --out "$run.train_time" \
    "$IBNET" train --model scripts/experiments/tanh-mlp.ibm --epochs "$EPOCHS" --seed "$SEED" --threads "$THREADS" \
      --train-limit "$TRAIN_LIMIT" --lr 1e-3 --adam-beta1 0.9 --schedule constant --ema 0 --eval-samples 1 \
      --track-info binning:30 --track-layers t1,t2,t3,t4,out --track-split train --track-limit "$TRACK_LIMIT" \
      --out "$run" --quiet
fi
"$IBNET" plot plane "$run" --out "$run/plane.png,$run/plane.svg" --title "tanh MLP on MNIST, binning:30"
"$IBNET" plot curves "$run" --keys train_ce,test_nll_avg,test_error_avg --out "$run/curves.png"
