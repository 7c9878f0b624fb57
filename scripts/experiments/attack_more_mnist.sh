#!/usr/bin/env bash
# The MNIST attack comparison of docs/results.md ("MNIST adversarial
# table"), at a budget a shared two-core machine allows, as a list of jobs
# run in priority order (each kept when its report exists, so the script
# resumes; the order: rows missing entirely first, then more images):
#  - train: lenet (the plain baseline), lenet-vibcells (cellVIB) and
#    lenet-vibcells with --objective vub (lambda 1, cap 0.85 ln 10), the
#    cellvib-mnist recipe for EPOCHS epochs on the first TRAIN_LIMIT
#    training images;
#  - CW-L2 (Adam lr 0.1, 100 steps per c, 5 binary-search steps: CW_ARGS)
#    at the L2 radii CW_EPS (28 = sqrt(784), the largest L2 an MNIST image
#    allows: unbounded), untargeted and targeted, on the first CW_LIMIT
#    test images for deterministic networks and CW_LIMIT_STOCH for
#    stochastic ones (each CW step there is 12 noise samples, the mean path
#    and the judged prediction), for the seed-1 networks of vub_mnist.sh
#    (read from VUB_ROOT, never written: reports go to OUT) and the lenets;
#  - FGSM and PGD-40 at eps 0.1, 0.2, 0.3 (EOT over 12 samples plus the
#    mean path for the stochastic networks): PGD on the first
#    PGD_LIMIT_MLP_STOCH (200) images for Deep VIB at beta 1e-2 and 1e-1
#    and the lenet, LIMIT (1000) for FGSM and the lenet's PGD,
#    PGD_LIMIT_CELLS (100) for lenet-vibcells' PGD; the earlier small-N
#    rows (LIMIT_STOCH, PGD_LIMIT, PGD_LIMIT_STOCH);
#  - last, PGD-40 on the first PGD1000_LIMIT images for the stochastic
#    beta = 1e-3 MLPs (earlier rows used 200).
# Every process runs at nice NICE, one thread; each report's wall and CPU
# time is written beside it (.time). Two copies may run side by side.
#   VUB_ROOT=/path/to/runs/vub-mnist-e3 bash scripts/experiments/attack_more_mnist.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
SEED=${SEED:-1}
THREADS=${THREADS:-1}
EPOCHS=${EPOCHS:-2}
TRAIN_LIMIT=${TRAIN_LIMIT:-10000}
LIMIT=${LIMIT:-1000}
LIMIT_STOCH=${LIMIT_STOCH:-200}
PGD_LIMIT=${PGD_LIMIT:-100}
PGD_LIMIT_STOCH=${PGD_LIMIT_STOCH:-20}
PGD1000_LIMIT=${PGD1000_LIMIT:-1000}
PGD_LIMIT_MLP_STOCH=${PGD_LIMIT_MLP_STOCH:-200}
PGD_LIMIT_CELLS=${PGD_LIMIT_CELLS:-100}
CW_LIMIT=${CW_LIMIT:-100}
CW_LIMIT_STOCH=${CW_LIMIT_STOCH:-20}
CW_ARGS=${CW_ARGS:---steps 100 --step-size 0.1 --search-steps 5}
CW_EPS=${CW_EPS:-1,1.5,2,28}
IBNET=${IBNET:-build/ibnet}
NICE=${NICE:-15}
VUB_ROOT=${VUB_ROOT:-runs/vub-mnist-e3}
OUT=${OUT:-runs/attack-more-mnist}
LENET_ROOT=${LENET_ROOT:-runs/attack-lenet-mnist-e$EPOCHS-n$TRAIN_LIMIT}
mkdir -p "$OUT" "$LENET_ROOT"
s=$SEED
# A job takes a lock (a directory beside its report), so that two copies
# of this script started side by side share the queue (each one process
# at a time); a job whose checkpoint is not trained yet is skipped, left
# to the copy that trains it. After an interrupted run: rm -r "$OUT"/*.lock
# "$LENET_ROOT"/*.lock.
LOCK=
trap '[ -z "$LOCK" ] || rm -rf "$LOCK"' EXIT
lock() { mkdir "$1" 2>/dev/null && LOCK=$1; }
unlock() { rm -rf "$LOCK"; LOCK=; }
attack() { # out.json checkpoint args...
  local out=$1 ckpt=$2
  shift 2
  [ -s "$out" ] && return 0
  [ -s "$ckpt" ] || return 0
  lock "${out%.json}.lock" || return 0
  echo "$(date -u +%T) $out" >&2
  /usr/bin/time -f "%e s wall, %U s user, %S s sys" -o "${out%.json}.time" \
    nice -n "$NICE" "$IBNET" attack "$ckpt" "$@" --seed "$SEED" --threads "$THREADS" --json > "$out.tmp"
  mv "$out.tmp" "$out"
  unlock
}
cw() { # prefix checkpoint limit [--targeted]
  local t=${4:+-targeted}
  attack "$1-cw$3$t.json" "$2" --attack cw ${4:-} $CW_ARGS --eps "$CW_EPS" --limit "$3"
}
fgsm() { attack "$1-fgsm$3.json" "$2" --attack fgsm --eps 0.1,0.2,0.3 --limit "$3"; }
pgd() { attack "$1-pgd$3.json" "$2" --attack pgd --steps 40 --eps 0.1,0.2,0.3 --limit "$3"; }
train() { # name model extra...
  local run="$LENET_ROOT/$1" model=$2
  shift 2
  [ -s "$run/summary.json" ] && return 0
  lock "$run.lock" || return 0
  rm -rf "$run"
  echo "$(date -u +%T) train $run" >&2
  /usr/bin/time -f "%e s wall, %U s user, %S s sys" -o "$run.train_time" \
    nice -n "$NICE" "$IBNET" train --recipe cellvib-mnist --model "$model" --epochs "$EPOCHS" \
    --train-limit "$TRAIN_LIMIT" --threads "$THREADS" --seed "$SEED" --out "$run" "$@" > "$run.log" 2>&1
  unlock
}
mlp() { echo "$OUT/$1-s$s" "$VUB_ROOT/$1-s$s/last.safetensors"; }
len() { echo "$LENET_ROOT/$1-s$s" "$LENET_ROOT/$1-s$s/last.safetensors"; }

# The jobs, in the order of docs/results.md's "MNIST adversarial table":
# first the rows that were missing entirely, then more images.
# 1. CW at beta 1e-2 and 1e-1; the LeNet-VIB-cells network and its targeted CW
for n in vib-b1e-2 vib-b1e-1; do
  cw $(mlp $n) "$CW_LIMIT_STOCH"; cw $(mlp $n) "$CW_LIMIT_STOCH" --targeted
done
# 2. PGD-40 on the first PGD_LIMIT_STOCH (20) images of every MLP, as the
#    LeNets have it: one N for all six networks
for n in vib-b1e-2 vib-b1e-1 mlp vib-b1e-3; do pgd $(mlp $n) "$PGD_LIMIT_STOCH"; done
train "lenet-vibcells-s$s" lenet-vibcells
cw $(len lenet-vibcells) "$CW_LIMIT_STOCH"; cw $(len lenet-vibcells) "$CW_LIMIT_STOCH" --targeted
# 3. PGD-40 on more images: PGD_LIMIT (100) for the MLPs (the plain lenet
#    has it), then beta 1e-2 and 1e-1 on as many as beta 1e-3 had (200)
for n in mlp vib-b1e-2 vib-b1e-1 vib-b1e-3; do pgd $(mlp $n) "$PGD_LIMIT"; done
for n in vib-b1e-2 vib-b1e-1; do pgd $(mlp $n) "$PGD_LIMIT_MLP_STOCH"; done
# 4. more images: FGSM on all LIMIT for the cells, PGD for the plain lenet
train "lenet-s$s" lenet
fgsm $(len lenet-vibcells) "$LIMIT"; fgsm $(len lenet) "$LIMIT"
pgd $(len lenet) "$PGD_LIMIT_MLP_STOCH"; pgd $(len lenet) "$LIMIT"
pgd $(len lenet-vibcells) "$PGD_LIMIT_CELLS"
# 5. the earlier tiny-budget rows (kept when their reports exist)
cw $(mlp mlp) "$CW_LIMIT"; cw $(mlp mlp) "$CW_LIMIT" --targeted
cw $(mlp mlp) "$CW_LIMIT_STOCH"; cw $(mlp mlp) "$CW_LIMIT_STOCH" --targeted
cw $(mlp vib-b1e-3) "$CW_LIMIT_STOCH"; cw $(mlp vib-b1e-3) "$CW_LIMIT_STOCH" --targeted
cw $(mlp vub-b1e-3) "$CW_LIMIT_STOCH"; cw $(mlp vub-b1e-3) "$CW_LIMIT_STOCH" --targeted
fgsm $(len lenet) "$LIMIT_STOCH"; pgd $(len lenet) "$PGD_LIMIT"; pgd $(len lenet) "$PGD_LIMIT_STOCH"
cw $(len lenet) "$CW_LIMIT"; cw $(len lenet) "$CW_LIMIT" --targeted
cw $(len lenet) "$CW_LIMIT_STOCH"; cw $(len lenet) "$CW_LIMIT_STOCH" --targeted
fgsm $(len lenet-vibcells) "$LIMIT_STOCH"; pgd $(len lenet-vibcells) "$PGD_LIMIT_STOCH"
# 6. VUB on the cells, and the rest, as time allows
train "lenet-vibcells-vub-s$s" lenet-vibcells --objective vub --entropy-weight 1 --entropy-cap 1.9572
fgsm $(len lenet-vibcells-vub) "$LIMIT_STOCH"; pgd $(len lenet-vibcells-vub) "$PGD_LIMIT_STOCH"
cw $(len lenet-vibcells-vub) "$CW_LIMIT_STOCH"; cw $(len lenet-vibcells-vub) "$CW_LIMIT_STOCH" --targeted
for n in vub-b1e-2 vub-b1e-1; do
  cw $(mlp $n) "$CW_LIMIT_STOCH"; cw $(mlp $n) "$CW_LIMIT_STOCH" --targeted
done
for n in vib-b1e-3 vub-b1e-3; do pgd $(mlp $n) "$PGD1000_LIMIT"; done
