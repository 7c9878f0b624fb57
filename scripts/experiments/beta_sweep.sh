#!/usr/bin/env bash
# Deep VIB on MNIST over a sweep of beta (Alemi et al. 2017, figure 1):
# the paper's recipe for every beta, EPOCHS epochs each (the paper: 200),
# through `ibnet sweep` (docs/mpi.md): one run directory per beta,
# root/beta=B; restartable (a finished beta is skipped, an interrupted one
# continues); MPIRUN="mpirun -np 4" spreads the betas over 4 ranks.
#   EPOCHS=200 THREADS=2 bash scripts/experiments/beta_sweep.sh
#   python3 scripts/experiments/collect.py runs/beta-sweep-e200    (table + plot)
set -euo pipefail
cd "$(dirname "$0")/../.."
EPOCHS=${EPOCHS:-200}
THREADS=${THREADS:-2}
SEED=${SEED:-1}
BETAS=${BETAS:-"0 1e-8 1e-6 1e-4 1e-3 1e-2 1e-1 1"}
EVAL_EVERY=${EVAL_EVERY:-$(( EPOCHS >= 20 ? 10 : EPOCHS ))}
IBNET=${IBNET:-build/ibnet}
MPIRUN=${MPIRUN:-}
root="runs/beta-sweep-e${EPOCHS}"
# shellcheck disable=SC2086 # MPIRUN is a command line
$MPIRUN "$IBNET" sweep --out "$root" --set epochs="$EPOCHS" --set seed="$SEED" --set eval_every="$EVAL_EVERY" \
  --grid beta="$(echo $BETAS | tr ' ' ',')" --threads "$THREADS"
