#!/usr/bin/env bash
# The rest of the IMB / PIB comparison (docs/results.md, "IMB / PIB on
# MNIST" and "IMB / PIB: Gaussian particles on CIFAR-10") at the short
# budget of its first table: 3 epochs on the first TRAIN_LIMIT training
# images (the last 1,000 of them held out), one thread per run, niced.
# Jobs, each skipping what already has its summary/report (resumable), in
# the order given (several lanes may run at once on disjoint jobs):
#  - base:        mlp and vib-mlp with the IMB recipe's optimizer, batch,
#                 clip and data, seeds BASE_SEEDS (~15 s CPU each);
#  - s1:MODEL:    MODEL (imb, mle, mlp, vib-mlp) of seed 1 again (the first
#                 table's commands; its checkpoints were not kept);
#  - attack:MODEL: FGSM and PGD-40 (L-inf, eps 0.1,0.2,0.3, loss ce) on the
#                 first LIMIT test images against MODEL of seed 1;
#                 stochastic ones with EOT over EOT draws of every layer's
#                 particles (imb, mle) or EOT_VIB Gaussian samples
#                 (vib-mlp), plus the attack through the mean path;
#  - cifar:       resnet20-vibcells with 2 Gaussian particles per cell
#                 (resnet20-vibcells-p2.ibm), the cifar-resnet recipe on
#                 the first CIFAR_LIMIT training images for 3 epochs, beta
#                 1e-5 (as info_cells_cifar.sh's plain and cells runs), seed
#                 1, tested on the first 1,000 test images; when CIFAR_LIMIT
#                 is not 10000, the particles=1 cells and resnet20 beside it
#                 (cifar:MODEL: one of them, MODEL a name or .ibm file);
#  - seeds:       IMB and MLE of the seeds SEEDS (~210 s CPU each);
#  - seed:imb:S, seed:mle:S: one of them (to run them side by side).
#   bash scripts/experiments/imb_more.sh base s1:imb attack:imb cifar ...
set -euo pipefail
cd "$(dirname "$0")/../.."
TRAIN_LIMIT=${TRAIN_LIMIT:-6000}
EPOCHS=${EPOCHS:-3}
BASE_SEEDS=${BASE_SEEDS:-2 3}
SEEDS=${SEEDS:-2 3}
LIMIT=${LIMIT:-100}
EOT=${EOT:-1}
EOT_VIB=${EOT_VIB:-12}
S1_ARGS=${S1_ARGS:-} # e.g. --test-limit 100: the seed-1 networks retrained for the attacks alone
EVAL_EVERY=${EVAL_EVERY:-1} # IMB/MLE: 3 evaluates only after the last epoch (the same weights: evaluation keeps the training noise)
CIFAR_LIMIT=${CIFAR_LIMIT:-10000}
CIFAR_EVAL_EVERY=${CIFAR_EVAL_EVERY:-1} # 3: test only after the last epoch
CIFAR_SEED=${CIFAR_SEED:-1}
IBNET=${IBNET:-build/ibnet}
export IBNET_DATA=${IBNET_DATA:-../shared/data}
root=${ROOT:-runs/imb-mnist-e$EPOCHS}
croot=${CROOT:-runs/imb-cifar-e3-n$CIFAR_LIMIT}
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
  timed "$root/$name-s$seed" "$IBNET" train --recipe imb-mnist "$@" --epochs "$EPOCHS" --eval-every "$EVAL_EVERY" \
    --train-limit "$TRAIN_LIMIT" --threads 1 --seed "$seed"
}
base() { # model seed
  timed "$root/$1-s$2" "$IBNET" train --model "$1" --batch-size 16 --optimizer adamax --lr 0.01 \
    --adam-beta1 0.9 --clip-grad-norm 5 --schedule constant --val-size 1000 --input-norm unit \
    --ema 0 --epochs "$EPOCHS" --train-limit "$TRAIN_LIMIT" --threads 1 --seed "$2"
}
train1() { # model of seed 1
  case $1 in
  imb) imb imb 1 $S1_ARGS ;;
  mle) imb mle 1 --gammas 1,0,0 --betas 0,0 $S1_ARGS ;;
  mlp|vib-mlp) base "$1" 1 ;;
  *) echo "unknown model $1" >&2; exit 2 ;;
  esac
}
attack() { # report.json checkpoint args...
  local out=$1 ckpt=$2
  shift 2
  [ -s "$out" ] && return 0
  echo "$(date -u +%T) $out" >&2
  /usr/bin/time -f "%e s wall %U s user %S s sys" -o "${out%.json}.time" \
    nice -n 15 "$IBNET" attack "$ckpt" "$@" --limit "$LIMIT" --seed 1 \
      --threads 1 --json > "$out.tmp"
  mv "$out.tmp" "$out"
}
for job in "$@"; do
  case $job in
  base)
    for s in $BASE_SEEDS; do for m in mlp vib-mlp; do base $m $s; done; done ;;
  s1:*) train1 "${job#s1:}" ;;
  attack:*)
    # attack:MODEL: FGSM and PGD at every eps in one process;
    # attack:MODEL:pgd:EPS one eps of PGD alone (to run the radii side by
    # side; it then lacks the candidate kept from the next smaller eps)
    IFS=: read -r _ m what e <<< "$job"
    a=$root/attack-n$LIMIT
    mkdir -p "$a"
    eot=()
    case $m in imb|mle) eot=(--eot "$EOT") ;; vib-mlp) eot=(--eot "$EOT_VIB") ;; esac
    ck=$root/$m-s1/last.safetensors
    if [ -z "$what" ]; then
      attack "$a/$m-fgsm.json" "$ck" --attack fgsm --eps 0.1,0.2,0.3 "${eot[@]}"
      attack "$a/$m-pgd40.json" "$ck" --attack pgd --steps 40 --loss ce --eps 0.1,0.2,0.3 "${eot[@]}"
    elif [ "$what" = fgsm ]; then
      attack "$a/$m-fgsm.json" "$ck" --attack fgsm --eps 0.1,0.2,0.3 "${eot[@]}"
    else
      attack "$a/$m-pgd40-eps$e.json" "$ck" --attack pgd --steps 40 --loss ce --eps "$e" "${eot[@]}"
    fi ;;
  cifar|cifar:*)
    # cifar: the particle run, and at CIFAR_LIMIT other than 10000 its
    # one-path twins too; cifar:MODEL one of them (to run side by side)
    if [ "$job" = cifar ]; then
      models=(scripts/experiments/resnet20-vibcells-p2.ibm)
      [ "$CIFAR_LIMIT" = 10000 ] || models+=(resnet20-vibcells resnet20)
    else
      models=("${job#cifar:}")
    fi
    for m in "${models[@]}"; do
      n=$(basename "$m" .ibm)
      "$IBNET" train --model "$m" --recipe cifar-resnet --dry-run > /dev/null 2> "$croot/$n.dry-run.txt" || true
      timed "$croot/$n-s$CIFAR_SEED" "$IBNET" train --recipe cifar-resnet --model "$m" --epochs 3 --seed "$CIFAR_SEED" \
        --beta 1e-5 --threads 1 --train-limit "$CIFAR_LIMIT" --test-limit 1000 --eval-every "$CIFAR_EVAL_EVERY"
    done ;;
  seed:imb:*) imb imb "${job##*:}" ;;
  seed:mle:*) imb mle "${job##*:}" --gammas 1,0,0 --betas 0,0 ;;
  seeds)
    for s in $SEEDS; do
      imb imb "$s"
      imb mle "$s" --gammas 1,0,0 --betas 0,0
    done ;;
  *) echo "unknown job $job" >&2; exit 2 ;;
  esac
done
