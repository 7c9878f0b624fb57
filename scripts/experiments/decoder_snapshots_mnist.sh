#!/usr/bin/env bash
# Decoder-based I(X;T) over training (docs/results.md, "Decoder-based
# I(X;T) over training"): MODEL (lenet, or resnet8-mnist) trained on the first TRAIN_LIMIT MNIST
# training images with --save-epochs SNAPS, then for each snapshot one
# `ibnet info --estimator decoder` on LAYERS over the first LIMIT test
# images (half train the decoders, half are held out).  One thread, a
# small budget on a shared machine; sample grids of the last snapshot.
#   bash scripts/experiments/decoder_snapshots_mnist.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${MODEL:-lenet}
EPOCHS=${EPOCHS:-6}
SEED=${SEED:-1}
TRAIN_LIMIT=${TRAIN_LIMIT:-5000}
SNAPS=${SNAPS:-0,1,2,4,6}
LAYERS=${LAYERS:-5,fc1}
EST=${EST:-decoder:8:1}
STEPS=${STEPS:-100}
LIMIT=${LIMIT:-1000}
IBNET=${IBNET:-build/ibnet}
TRAIN_ARGS=${TRAIN_ARGS:-}   # more train flags, e.g. "--lr 1e-3 --ema 0" for a batch-norm network
run=${RUN:-runs/decoder-snapshots-$MODEL-s$SEED}
export OMP_WAIT_POLICY=passive
if [ ! -s "$run/summary.json" ]; then
  rm -rf "$run"
  /usr/bin/time -f "%e s wall, %U s user" --out "$run.train_time" \
    "$IBNET" train --model "$MODEL" --epochs "$EPOCHS" --seed "$SEED" --threads 1 --train-limit "$TRAIN_LIMIT" \
      --save-epochs "$SNAPS" --out "$run" --quiet $TRAIN_ARGS
fi
last=${SNAPS##*,}
for e in ${SNAPS//,/ }; do
  [ -s "$run/info-e$e.jsonl" ] && continue
  grid=()
  [ "$e" = "$last" ] && grid=(--sample-grid "$run/grid-e$e")
  /usr/bin/time -f "%e s wall, %U s user" --out "$run/info-e$e.time" \
    "$IBNET" info "$run/epoch-$e.safetensors" --layers "$LAYERS" --estimator "$EST" --steps "$STEPS" \
      --limit "$LIMIT" --seed 1 --threads 1 --json "${grid[@]}" > "$run/info-e$e.jsonl.part"
  mv "$run/info-e$e.jsonl.part" "$run/info-e$e.jsonl"
done
