#!/usr/bin/env bash
# The beta sweep's variational bounds beside the other estimators of the
# same bottleneck (docs/results.md, "Beta sweep: the bounds beside the
# estimators"): Deep VIB (vib-mlp, the deep-vib recipe but LR and a short
# budget) at each beta of BETAS through `ibnet sweep`, on the first
# TRAIN_LIMIT training images for EPOCHS epochs, evaluated on the first
# TEST_LIMIT test images (0: all 10,000; summary.json then holds the
# variational bounds of the whole test set as test_ixz_upper_bits and
# test_izy_lower_bits); then, for the bottleneck `vib` of each run's final
# (EMA) weights, on the first EST_LIMIT test images:
#   - the variational bounds (ibnet info --estimator variational),
#   - binning over 10..100 bins and KDE over sigma^2 1e-3..1 of the mean
#     path mu (ibnet info --sweep),
# and on the first NCE_LIMIT test images (the critic trains on half of them
# and is evaluated on the other half; on 1,000 training rows it overfits
# and its held-out values go far below 0):
#   - InfoNCE between the input and one draw of z = mu + sigma * eps
#     (--sample), and between that z and the labels: lower bounds on the
#     bottleneck's own I(X;Z) and I(Z;Y), capped at ln(held-out rows).
# Each run's values go to RUN/info-final.jsonl; the sweep's information
# plane (rate against decoder bound, coloured by beta) to PLANE.
#   EPOCHS=30 TRAIN_LIMIT=10000 bash scripts/experiments/info_vib_sweep.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
EPOCHS=${EPOCHS:-30}
SEED=${SEED:-1}
LR=${LR:-1e-3}
TRAIN_LIMIT=${TRAIN_LIMIT:-10000}
TEST_LIMIT=${TEST_LIMIT:-0}
EST_LIMIT=${EST_LIMIT:-2000}
NCE_LIMIT=${NCE_LIMIT:-10000}
BETAS=${BETAS:-"1e-4 1e-3 1e-2 1e-1 3e-1 1"}
THREADS=${THREADS:-1}
IBNET=${IBNET:-build/ibnet}
root=${ROOT:-runs/info-vib-sweep-e$EPOCHS-n$TRAIN_LIMIT}
PLANE=${PLANE:-$root/plane.png}
/usr/bin/time -f "%e s wall" --append --out "$root.train_time" \
  nice -n 10 "$IBNET" sweep --recipe deep-vib --out "$root" --set epochs="$EPOCHS" --set seed="$SEED" --set lr="$LR" \
    --set train_limit="$TRAIN_LIMIT" --set test_limit="$TEST_LIMIT" --grid beta="$(echo $BETAS | tr ' ' ',')" \
    --threads "$THREADS" --quiet
for run in "$root"/beta=*; do
  [ -s "$run/info-final.jsonl" ] && continue
  ck="$run/last.safetensors"
  common=(--layers vib --threads "$THREADS" --json)
  start=$(date +%s.%N)
  {
    nice -n 10 "$IBNET" info "$ck" "${common[@]}" --limit "$EST_LIMIT" --estimator variational
    nice -n 10 "$IBNET" info "$ck" "${common[@]}" --limit "$EST_LIMIT" --estimator binning:30 --sweep
    nice -n 10 "$IBNET" info "$ck" "${common[@]}" --limit "$EST_LIMIT" --estimator kde:0.1 --sweep
    nice -n 10 "$IBNET" info "$ck" "${common[@]}" --limit "$NCE_LIMIT" --estimator infonce --sample --seed 1
  } > "$run/info-final.jsonl.tmp"
  mv "$run/info-final.jsonl.tmp" "$run/info-final.jsonl"
  echo "$run: estimators $(echo "$(date +%s.%N) - $start" | bc) s wall" >> "$root.info_time"
done
"$IBNET" plot sweep "$root"/beta=* --x test_ixz_upper_bits --y test_izy_lower_bits --shade beta \
  --title "Deep VIB on MNIST: rate against decoder bound, $EPOCHS epochs of $TRAIN_LIMIT images" --out "$PLANE"
