#!/usr/bin/env bash
# The rest of the IMB / PIB comparison (docs/results.md, "IMB / PIB on
# MNIST" and "IMB / PIB: Gaussian particles on CIFAR-10") at the short
# budget of its first table: 3 epochs on the first TRAIN_LIMIT training
# images (the last 1,000 of them held out), one thread per run, niced.
# Stages, each skipping what already has its summary/report (resumable):
#  - base:   mlp and vib-mlp with the IMB recipe's optimizer, batch, clip
#            and data, seeds in BASE_SEEDS (~15 s CPU each);
#  - s1:     IMB, MLE, mlp and vib-mlp of seed 1 again (the first table's
#            commands; its checkpoints were not kept), for the attacks;
#  - attack: FGSM and PGD-40 (L-inf, eps 0.1,0.2,0.3) on the first LIMIT
#            test images against the seed-1 networks; stochastic ones with
#            EOT over EOT draws of every layer's particles (IMB, MLE) or
#            EOT_VIB Gaussian samples (vib-mlp), plus the mean path;
#  - cifar:  resnet20-vibcells with 2 Gaussian particles per cell
#            (resnet20-vibcells-p2.ibm) with the cifar-resnet recipe on the
#            first CIFAR_LIMIT training images for 3 epochs, beta 1e-5 (as
#            the plain/cells runs of info_cells_cifar.sh), seed 1; and,
#            when CIFAR_LIMIT is not 10000, the particles=1 cells beside it;
#  - seeds:  IMB and MLE of the seeds in SEEDS (~210 s CPU each).
#   bash scripts/experiments/imb_more.sh [base|s1|attack|cifar|seeds]...
set -euo pipefail
cd "$(dirname "$0")/../.."
TRAIN_LIMIT=${TRAIN_LIMIT:-6000}
EPOCHS=${EPOCHS:-3}
BASE_SEEDS=${BASE_SEEDS:-2 3}
SEEDS=${SEEDS:-2 3}
LIMIT=${LIMIT:-100}
EOT=${EOT:-2}
EOT_VIB=${EOT_VIB:-12}
CIFAR_LIMIT=${CIFAR_LIMIT:-10000}
IBNET=${IBNET:-build/ibnet}
export IBNET_DATA=${IBNET_DATA:-../shared/data}
root=${ROOT:-runs/imb-mnist-e$EPOCHS}
croot=${CROOT:-runs/imb-cifar-e3-n$CIFAR_LIMIT}
stages=${*:-base s1 attack cifar seeds}
mkdir -p "$root" "$croot"

timed() { # run-dir command...: run unless RUN/summary.json exists; wall and CPU time beside it
  local run=$1
  shift
  [ -s "$run/summary.json" ] && return 0
  rm -rf "$run"
  echo "$(date -u +%T) $run" >&2
  /usr/bin/time -f "%e s wall %U s user %S s sys" -o "$run.time" nice -n 15 "$@" --out "$run" --quiet
}
imb() { # name seed extra-args...
  local name=$1 seed=$2
  shift 2
  timed "$root/$name-s$seed" "$IBNET" train --recipe imb-mnist "$@" --epochs "$EPOCHS" \
    --train-limit "$TRAIN_LIMIT" --threads 1 --seed "$seed"
}
base() { # model seed
  timed "$root/$1-s$2" "$IBNET" train --model "$1" --batch-size 16 --optimizer adamax --lr 0.01 \
    --adam-beta1 0.9 --clip-grad-norm 5 --schedule constant --val-size 1000 --input-norm unit \
    --ema 0 --epochs "$EPOCHS" --train-limit "$TRAIN_LIMIT" --threads 1 --seed "$2"
}
attack() { # report.json checkpoint args...
  local out=$1 ckpt=$2
  shift 2
  [ -s "$out" ] && return 0
  echo "$(date -u +%T) $out" >&2
  /usr/bin/time -f "%e s wall %U s user %S s sys" -o "${out%.json}.time" \
    nice -n 15 "$IBNET" attack "$ckpt" "$@" --eps 0.1,0.2,0.3 --limit "$LIMIT" --seed 1 \
      --threads 1 --json > "$out.tmp"
  mv "$out.tmp" "$out"
}
for stage in $stages; do
  case $stage in
  base)
    for s in $BASE_SEEDS; do for m in mlp vib-mlp; do base $m $s; done; done ;;
  s1)
    imb imb 1
    imb mle 1 --gammas 1,0,0 --betas 0,0
    base mlp 1
    base vib-mlp 1 ;;
  attack)
    a=$root/attack-n$LIMIT
    mkdir -p "$a"
    for m in mlp vib-mlp imb mle; do
      eot=()
      case $m in imb|mle) eot=(--eot "$EOT") ;; vib-mlp) eot=(--eot "$EOT_VIB") ;; esac
      attack "$a/$m-fgsm.json" "$root/$m-s1/last.safetensors" --attack fgsm "${eot[@]}"
      attack "$a/$m-pgd40.json" "$root/$m-s1/last.safetensors" --attack pgd --steps 40 "${eot[@]}"
    done ;;
  cifar)
    models=(scripts/experiments/resnet20-vibcells-p2.ibm)
    [ "$CIFAR_LIMIT" = 10000 ] || models+=(resnet20-vibcells resnet20)
    for m in "${models[@]}"; do
      n=$(basename "$m" .ibm)
      "$IBNET" train --model "$m" --recipe cifar-resnet --dry-run > /dev/null 2> "$croot/$n.dry-run.txt" || true
      timed "$croot/$n-s1" "$IBNET" train --recipe cifar-resnet --model "$m" --epochs 3 --seed 1 \
        --beta 1e-5 --threads 1 --train-limit "$CIFAR_LIMIT" --test-limit 1000
    done ;;
  seeds)
    for s in $SEEDS; do
      imb imb "$s"
      imb mle "$s" --gammas 1,0,0 --betas 0,0
    done ;;
  *) echo "unknown stage $stage" >&2; exit 2 ;;
  esac
done
