#!/usr/bin/env bash
# CIFAR-10 with a ResNet-20 (plain, resnet20-vib or resnet20-vibcells):
# SGD with Nesterov momentum 0.9, lr 0.1 with a 1-epoch warm-up and cosine
# decay to 0 over EPOCHS, weight decay 5e-4, batch 128, random crop + flip,
# per-channel standardisation, He-normal initialisation, no EMA.  Resumable:
# rerun the same command to continue from the last checkpoint.
#   EPOCHS=50 THREADS=1 bash scripts/experiments/cifar_resnet.sh resnet20
#   BETA=1e-4 bash scripts/experiments/cifar_resnet.sh resnet20-vibcells
set -euo pipefail
cd "$(dirname "$0")/../.."
model=${1:?usage: cifar_resnet.sh resnet20|resnet20-vib|resnet20-vibcells}
EPOCHS=${EPOCHS:-50}
THREADS=${THREADS:-1}
SEED=${SEED:-1}
BETA=${BETA:-1e-4}
IBNET=${IBNET:-build/ibnet}
out="runs/cifar10-$model-e$EPOCHS-s$SEED"
# an interrupted run writes a summary too: done means every epoch is done
if [ -f "$out/summary.json" ] && [ "$(python3 -c "import json;print(json.load(open('$out/summary.json'))['epochs_done'])")" = "$EPOCHS" ]; then
  echo "$out: done"; exit 0
fi
if [ -f "$out/last.safetensors" ]; then exec "$IBNET" train --resume "$out" --threads "$THREADS" --quiet; fi
rm -rf "$out"
exec "$IBNET" train --model "$model" --dataset cifar10 --epochs "$EPOCHS" --batch-size 128 \
  --optimizer sgd --lr 0.1 --momentum 0.9 --nesterov --weight-decay 5e-4 --schedule cosine --warmup 1 \
  --augment --input-norm standardize --init kaiming --ema 0 --beta "$BETA" --seed "$SEED" \
  --threads "$THREADS" --eval-every 1 --quiet --out "$out"
