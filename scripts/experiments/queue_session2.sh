#!/usr/bin/env bash
# The experiments of the second working session, as run: two queues on one
# thread each (the machine has two cores).  Resumable: rerun to continue.
#   bash scripts/experiments/queue_session2.sh cellvib   # cellVIB on MNIST, stage 1 then stage 2
#   bash scripts/experiments/queue_session2.sh cifar     # ResNet-20 on CIFAR-10, 50 epochs
set -euo pipefail
cd "$(dirname "$0")/../.."
case "${1:?cellvib|cifar}" in
cellvib)
  EPOCHS=8 THREADS=1 bash scripts/experiments/cellvib_mnist.sh stage1
  read -r b s < <(/usr/bin/python3 scripts/experiments/collect_cellvib.py runs/cellvib-mnist-e8-n0.6 --best)
  echo "queue: cells' best on seed 1: beta $b, schedule $s" >&2
  CELL_BETA=$b CELL_SCHED=$s EPOCHS=8 THREADS=1 bash scripts/experiments/cellvib_mnist.sh stage2
  ;;
cifar)
  bash scripts/experiments/cifar_resnet.sh resnet20
  ;;
esac
