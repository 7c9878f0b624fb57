#!/usr/bin/env bash
# Test accuracy of the CIFAR-10 ResNet-20 runs (plain, one Deep VIB layer,
# VIB cells; scripts/experiments/cifar_resnet.sh) on the clean test set and
# on the 14 corruptions of CIFAR-10-C at one severity (docs/corruptions.md),
# with each run's final weights.  Resumable: finished evaluations are kept.
#   SEVERITY=3 THREADS=2 bash scripts/experiments/cifar_robustness.sh
#   /usr/bin/python3 scripts/experiments/collect_robustness.py runs/cifar10-robustness-s3
set -euo pipefail
cd "$(dirname "$0")/../.."
SEVERITY=${SEVERITY:-3}
THREADS=${THREADS:-2}
IBNET=${IBNET:-build/ibnet}
RUNS=${RUNS:-"runs/cifar10-resnet20-e50-s1 runs/cifar10-resnet20-vib-e50-s1 runs/cifar10-resnet20-vibcells-e50-s1"}
CORRUPTIONS="gaussian_noise shot_noise impulse_noise defocus_blur glass_blur motion_blur zoom_blur snow fog
             brightness contrast elastic_transform pixelate jpeg_compression"
root="runs/cifar10-robustness-s$SEVERITY"
for run in $RUNS; do
  out="$root/$(basename "$run")"
  mkdir -p "$out"
  for c in clean $CORRUPTIONS; do
    [ -s "$out/$c.json" ] && continue
    if [ "$c" = clean ]; then
      "$IBNET" eval "$run/last.safetensors" --threads "$THREADS" --json > "$out/$c.json.tmp"
    else
      "$IBNET" eval "$run/last.safetensors" --threads "$THREADS" --json --corruption "$c" --severity "$SEVERITY" \
        > "$out/$c.json.tmp"
    fi
    mv "$out/$c.json.tmp" "$out/$c.json"
  done
done
