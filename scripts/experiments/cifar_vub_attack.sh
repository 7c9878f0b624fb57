#!/usr/bin/env bash
# VUB and adversarial robustness on CIFAR-10 at a short budget (docs/results.md,
# "CIFAR-10: VUB and adversarial robustness (short budget)").  Every run uses
# the budget of info_cells_cifar.sh, whose resnet20 and resnet20-vibcells runs
# (BASE) are reused as they are: the cifar-resnet recipe (SGD, nesterov, lr
# 0.1, cosine with one warm-up epoch, crop + flip, standardised inputs) cut to
# EPOCHS epochs of the first TRAIN_LIMIT training images, evaluated on the
# first TEST_LIMIT test images, seed SEED.
#   train:  resnet20-vib with the vib and the vub objective (lambda 1, cap
#           0.85 ln 10, docs/vub.md) at beta 1e-3, 1e-2, 1e-1; the stochastic
#           head resnet20-vubhead on BASE's frozen plain resnet20 with both
#           objectives at HEAD_BETAS.
#   attack: FGSM and PGD-40 (L-inf, margin + CE, EOT over the S = 12 samples
#           and the mean path for stochastic networks: the attack's defaults)
#           at eps 2/255, 4/255, 8/255 on the first LIMIT test images, for
#           resnet20, resnet20-vibcells (BASE), resnet20-vib and VUB at beta
#           1e-3 and the heads at beta 1e-3.
# Rerunnable: a run whose summary.json records all EPOCHS epochs and an
# attack whose JSON exists are kept; an unfinished run resumes.
#   bash scripts/experiments/cifar_vub_attack.sh [train|attack]...
set -euo pipefail
cd "$(dirname "$0")/../.."
EPOCHS=${EPOCHS:-3}
SEED=${SEED:-1}
TRAIN_LIMIT=${TRAIN_LIMIT:-10000}
TEST_LIMIT=${TEST_LIMIT:-1000}
LIMIT=${LIMIT:-100}
THREADS=${THREADS:-1}
BETAS=${BETAS:-"1e-3 1e-2 1e-1"}
HEAD_BETAS=${HEAD_BETAS:-1e-3}
IBNET=${IBNET:-build/ibnet}
NICE=${NICE:-"nice -n 15"}
root=${ROOT:-runs/cifar-vub-e$EPOCHS-n$TRAIN_LIMIT}
base=${BASE:-runs/info-cells-cifar-e$EPOCHS-n$TRAIN_LIMIT}
vub=(--objective vub --entropy-weight 1 --entropy-cap 1.9572) # 0.85 ln 10
stages=${*:-train attack}
mkdir -p "$root"
train() { # name, flags...
  local run="$root/$1"; shift
  if [ -s "$run/summary.json" ] && grep -q "\"epochs_done\":[[:space:]]*$EPOCHS\b" "$run/summary.json"; then return; fi
  if [ -s "$run/config.json" ]; then
    $NICE "$IBNET" train --resume "$run" --quiet
  else
    rm -rf "$run"
    /usr/bin/time -f "%e s wall %U s user" -o "$run.train_time" \
      $NICE "$IBNET" train --recipe cifar-resnet "$@" --epochs "$EPOCHS" --seed "$SEED" --threads "$THREADS" \
        --train-limit "$TRAIN_LIMIT" --test-limit "$TEST_LIMIT" --out "$run" --quiet
  fi
}
attack() { # checkpoint, name, kind, extra...
  local ckpt=$1 out="$root/$2-$3.json" kind=$3; shift 3
  [ -s "$out" ] && return 0
  local sum; sum="$(dirname "$ckpt")/summary.json"
  if ! { [ -s "$sum" ] && grep -q "\"epochs_done\":[[:space:]]*$EPOCHS\b" "$sum"; }; then
    echo "skip $out: $(dirname "$ckpt") has not finished $EPOCHS epochs" >&2; return 0
  fi
  /usr/bin/time -f "%e s wall %U s user" -o "${out%.json}.time" \
    $NICE "$IBNET" attack "$ckpt" --attack "$kind" "$@" --eps 2/255,4/255,8/255 --limit "$LIMIT" \
      --seed "$SEED" --threads "$THREADS" --json > "$out.tmp"
  mv "$out.tmp" "$out"
}
for stage in $stages; do
  case $stage in
  train)
    backbone="$base/resnet20-binning-s$SEED/last.safetensors"
    for beta in $BETAS; do
      train "vib-b$beta-s$SEED" --model resnet20-vib --beta "$beta"
      train "vub-b$beta-s$SEED" --model resnet20-vib "${vub[@]}" --beta "$beta"
      case " $HEAD_BETAS " in *" $beta "*)
        [ -s "$backbone" ] || { echo "no $backbone: run info_cells_cifar.sh train first" >&2; exit 1; }
        train "head-vib-b$beta-s$SEED" --model resnet20-vubhead --beta "$beta" \
          --init-from "$backbone" --freeze conv1.,bn1.,layer
        train "head-vub-b$beta-s$SEED" --model resnet20-vubhead "${vub[@]}" --beta "$beta" \
          --init-from "$backbone" --freeze conv1.,bn1.,layer ;;
      esac
    done ;;
  attack)
    for kind in fgsm pgd; do
      extra=()
      [ $kind = pgd ] && extra=(--steps 40)
      attack "$base/resnet20-binning-s$SEED/last.safetensors" "resnet20-s$SEED" $kind "${extra[@]}"
      attack "$root/vib-b1e-3-s$SEED/last.safetensors" "vib-b1e-3-s$SEED" $kind "${extra[@]}"
      attack "$base/resnet20-vibcells-binning-s$SEED/last.safetensors" "resnet20-vibcells-s$SEED" $kind "${extra[@]}"
      attack "$root/vub-b1e-3-s$SEED/last.safetensors" "vub-b1e-3-s$SEED" $kind "${extra[@]}"
      attack "$root/head-vib-b1e-3-s$SEED/last.safetensors" "head-vib-b1e-3-s$SEED" $kind "${extra[@]}"
      attack "$root/head-vub-b1e-3-s$SEED/last.safetensors" "head-vub-b1e-3-s$SEED" $kind "${extra[@]}"
    done ;;
  esac
done
