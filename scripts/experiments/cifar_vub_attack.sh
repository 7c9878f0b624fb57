#!/usr/bin/env bash
# VUB and adversarial robustness on CIFAR-10 at a short budget (docs/results.md,
# "CIFAR-10: VUB and adversarial robustness (short budget)").  Every run uses
# the budget of info_cells_cifar.sh, whose resnet20 and resnet20-vibcells runs
# (BASE) are reused as they are: the cifar-resnet recipe (SGD, nesterov, lr
# 0.1, cosine with one warm-up epoch, crop + flip, standardised inputs) cut to
# EPOCHS epochs of the first TRAIN_LIMIT training images, evaluated on the
# first TEST_LIMIT test images, seed SEED.
#   train:  resnet20-vib with the vib and the vub objective (lambda 1, cap
#           0.85 ln 10, docs/vub.md) at BETAS; the stochastic head
#           resnet20-vubhead on BASE's frozen plain resnet20 (--init-from,
#           --freeze) with both objectives at HEAD_BETAS.
#   attack: FGSM and PGD-40 (L-inf, margin + CE, EOT over the S = 12 samples
#           and the mean path for stochastic networks: the attack's defaults)
#           at eps 2/255, 4/255, 8/255 on the first LIMIT (FGSM) and PGD_LIMIT
#           (PGD) test images, for
#           resnet20, resnet20-vibcells (BASE), and resnet20-vib, VUB and the
#           heads at beta 1e-3 (NETS, KINDS narrow the list).
# Rerunnable and shareable: a run whose summary.json records all EPOCHS
# epochs and an attack whose JSON exists are kept, an unfinished run
# resumes; each job holds RUN.lock (a directory) while it runs, so several
# copies of the script (REVERSE=1 walks the list backwards) split the work.
# After an interrupted job remove its .lock.
#   bash scripts/experiments/cifar_vub_attack.sh [train|attack]...
set -euo pipefail
cd "$(dirname "$0")/../.."
EPOCHS=${EPOCHS:-3}
SEED=${SEED:-1}
TRAIN_LIMIT=${TRAIN_LIMIT:-10000}
TEST_LIMIT=${TEST_LIMIT:-1000}
LIMIT=${LIMIT:-100}
PGD_LIMIT=${PGD_LIMIT:-$LIMIT}
THREADS=${THREADS:-1}
BETAS=${BETAS:-"1e-3 1e-2 1e-1"}
HEAD_BETAS=${HEAD_BETAS:-1e-3}
KINDS=${KINDS:-"fgsm pgd"}
NETS=${NETS:-"resnet20 vib-b1e-3 resnet20-vibcells vub-b1e-3 head-vib-b1e-3 head-vub-b1e-3"}
IBNET=${IBNET:-build/ibnet}
NICE=${NICE:-"nice -n 15"}
root=${ROOT:-runs/cifar-vub-e$EPOCHS-n$TRAIN_LIMIT}
base=${BASE:-runs/info-cells-cifar-e$EPOCHS-n$TRAIN_LIMIT}
vub=(--objective vub --entropy-weight 1 --entropy-cap 1.9572) # 0.85 ln 10
stages=${*:-train attack}
mkdir -p "$root"
finished() { [ -s "$1/summary.json" ] && grep -q "\"epochs_done\":[[:space:]]*$EPOCHS\b" "$1/summary.json"; }
lock() { mkdir "$1.lock" 2>/dev/null; }
unlock() { rmdir "$1.lock"; }
train() { # name, flags...
  local run="$root/$1"; shift
  finished "$run" && return 0
  lock "$run" || return 0
  if [ -s "$run/config.json" ]; then
    $NICE "$IBNET" train --resume "$run" --quiet
  else
    rm -rf "$run"
    /usr/bin/time -f "%e s wall %U s user" -o "$run.train_time" \
      $NICE "$IBNET" train --recipe cifar-resnet "$@" --epochs "$EPOCHS" --seed "$SEED" --threads "$THREADS" \
        --train-limit "$TRAIN_LIMIT" --test-limit "$TEST_LIMIT" --out "$run" --quiet
  fi
  unlock "$run"
}
attack() { # net, kind
  local net=$1 kind=$2 run
  case $net in
    resnet20|resnet20-vibcells) run="$base/$net-binning-s$SEED" ;;
    *) run="$root/$net-s$SEED" ;;
  esac
  local out="$root/$net-s$SEED-$kind.json"
  [ -s "$out" ] && return 0
  finished "$run" || { echo "skip $out: $run has not finished $EPOCHS epochs" >&2; return 0; }
  lock "${out%.json}" || return 0
  local extra=() limit=$LIMIT
  [ "$kind" = pgd ] && extra=(--steps 40) && limit=$PGD_LIMIT
  /usr/bin/time -f "%e s wall %U s user" -o "${out%.json}.time" \
    $NICE "$IBNET" attack "$run/last.safetensors" --attack "$kind" "${extra[@]}" --eps 2/255,4/255,8/255 \
      --limit "$limit" --seed "$SEED" --threads "$THREADS" --json > "$out.tmp"
  mv "$out.tmp" "$out"
  unlock "${out%.json}"
}
jobs=()
for stage in $stages; do
  case $stage in
  train)
    backbone="$base/resnet20-binning-s$SEED"
    for beta in $BETAS; do
      jobs+=("train vib-b$beta-s$SEED --model resnet20-vib --beta $beta")
      jobs+=("train vub-b$beta-s$SEED --model resnet20-vib ${vub[*]} --beta $beta")
      case " $HEAD_BETAS " in *" $beta "*)
        finished "$backbone" || { echo "no finished $backbone: run info_cells_cifar.sh train first" >&2; exit 1; }
        for objective in vib vub; do
          flags="--model resnet20-vubhead"
          [ $objective = vub ] && flags="$flags ${vub[*]}"
          jobs+=("train head-$objective-b$beta-s$SEED $flags --beta $beta --init-from $backbone/last.safetensors --freeze conv1.,bn1.,layer")
        done ;;
      esac
    done ;;
  attack)
    for kind in $KINDS; do
      for net in $NETS; do
        jobs+=("attack $net $kind")
      done
    done ;;
  esac
done
if [ -n "${REVERSE:-}" ]; then
  for ((i = ${#jobs[@]} - 1; i >= 0; i--)); do ${jobs[i]}; done
else
  for job in "${jobs[@]}"; do $job; done
fi
