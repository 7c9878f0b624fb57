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
#   attack: FGSM and PGD-40 (L-inf, FGSM: CE; PGD: margin + CE, EOT over the S = 12 samples
#           and the mean path for stochastic networks: the attack's defaults)
#           at eps 2/255, 4/255, 8/255 on the first LIMIT (FGSM) and PGD_LIMIT
#           (PGD, and FGSM again as kind fgsmp) test images, for
#           resnet20, resnet20-vibcells (BASE), and resnet20-vib, VUB and the
#           heads at beta 1e-3 (NETS, KINDS narrow the list).
# SLICES=K splits each PGD job into K parts of PGD_LIMIT/K images (part k
# attacks the first images of a copy of the test set rotated to start at
# image k PGD_LIMIT/K, in ROOT/slices/), merged into
# one report (counts summed); the parts are separate jobs, so K copies of
# the script attack one network at once.
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
SLICES=${SLICES:-1}
DATA=${DATA:-../shared/data}
THREADS=${THREADS:-1}
BETAS=${BETAS:-"1e-3 1e-2 1e-1"}
HEAD_BETAS=${HEAD_BETAS:-1e-3}
KINDS=${KINDS:-"fgsm fgsmp pgd"}
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
run_of() { case $1 in resnet20|resnet20-vibcells) echo "$base/$1-binning-s$SEED" ;; *) echo "$root/$1-s$SEED" ;; esac; }
slice() { # k, n: the test set rotated so that images k*n.. come first (full size, as the loader checks)
  local dir="$root/slices/$2-$1/cifar-10-batches-bin"
  [ -s "$dir/test_batch.bin" ] && return 0
  mkdir -p "$dir"
  zcat "$DATA/cifar-10-batches-bin/test_batch.bin.gz" > "$dir/all.tmp.$$"
  { tail -c +$(($1 * $2 * 3073 + 1)) "$dir/all.tmp.$$"; head -c $(($1 * $2 * 3073)) "$dir/all.tmp.$$"; } > "$dir/test_batch.bin.tmp.$$"
  rm "$dir/all.tmp.$$"
  mv "$dir/test_batch.bin.tmp.$$" "$dir/test_batch.bin"
}
attack() { # net, kind[, part k of SLICES]
  local net=$1 kind=$2 part=${3:-} run; run=$(run_of "$net")
  local out="$root/$net-s$SEED-$kind.json" data=()
  [ -s "$out" ] && return 0
  local extra=() limit=$LIMIT akind=$kind
  [ "$kind" = pgd ] && extra=(--steps 40) && limit=$PGD_LIMIT
  [ "$kind" = fgsmp ] && akind=fgsm && limit=$PGD_LIMIT # FGSM on PGD's images
  if [ -n "$part" ]; then
    limit=$((PGD_LIMIT / SLICES))
    out="$root/$net-s$SEED-$kind.part$part-of-$SLICES.json"
    [ -s "$out" ] && return 0
    slice "$part" "$limit"
    data=(--data "$root/slices/$limit-$part" --no-hash)
  fi
  finished "$run" || { echo "skip $out: $run has not finished $EPOCHS epochs" >&2; return 0; }
  lock "${out%.json}" || return 0
  /usr/bin/time -f "%e s wall %U s user" -o "${out%.json}.time" \
    $NICE "$IBNET" attack "$run/last.safetensors" --attack "$akind" "${extra[@]}" --eps 2/255,4/255,8/255 \
      "${data[@]}" --limit "$limit" --seed "$SEED" --threads "$THREADS" --json > "$out.tmp"
  mv "$out.tmp" "$out"
  unlock "${out%.json}"
}
merge() { # net, kind: the parts' reports as one (counts summed, times of the parts added up)
  local out="$root/$1-s$SEED-$2.json" parts=()
  [ -s "$out" ] && return 0
  for ((k = 0; k < SLICES; k++)); do
    parts+=("$root/$1-s$SEED-$2.part$k-of-$SLICES.json")
    [ -s "${parts[k]}" ] || return 0
  done
  python3 - "$out" "${parts[@]}" <<'PY'
import json, re, sys
out, parts = sys.argv[1], sys.argv[2:]
reps = [json.load(open(p)) for p in parts]
rows = []
for i, r0 in enumerate(reps[0]):
    rs = [rep[i] for rep in reps]
    n = sum(r["n"] for r in rs)
    clean = sum(r["clean_acc"] * r["n"] for r in rs)
    row = dict(r0, n=n, clean_acc=clean / n, seconds=sum(r["seconds"] for r in rs),
               dataset=r0["dataset"] + " (%d slices)" % len(rs))
    for k in ("robust_acc", "robust_acc_u8"):
        row[k] = sum(r[k] * r["n"] for r in rs) / n
    for k in ("fooled", "fooled_u8"):
        row[k] = sum(r[k] for r in rs)
    row["success_rate"] = row["fooled"] / clean if clean else 0.0
    row["success_rate_u8"] = row["fooled_u8"] / clean if clean else 0.0
    for k in ("mean_l2", "mean_linf"):
        row[k] = sum(r[k] * r["fooled"] for r in rs) / row["fooled"] if row["fooled"] else 0.0
    rows.append(row)
json.dump(rows, open(out + ".tmp", "w"), indent=1)
wall = user = 0.0
for p in parts:
    t = open(p[:-5] + ".time").read()
    wall += float(t.split()[0])
    user += float(re.search(r"([0-9.]+) s user", t).group(1))
open(out[:-5] + ".time", "w").write("%.2f s wall %.2f s user (%d parts)\n" % (wall, user, len(parts)))
PY
  mv "$out.tmp" "$out"
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
        if [ "$kind" = pgd ] && [ "$SLICES" -gt 1 ]; then
          for ((k = 0; k < SLICES; k++)); do jobs+=("attack $net $kind $k"); done
          jobs+=("merge $net $kind")
        else
          jobs+=("attack $net $kind")
        fi
      done
    done ;;
  esac
done
if [ -n "${REVERSE:-}" ]; then
  for ((i = ${#jobs[@]} - 1; i >= 0; i--)); do ${jobs[i]}; done
else
  for job in "${jobs[@]}"; do $job; done
fi
