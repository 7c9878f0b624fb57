#!/usr/bin/env bash
# Per-cell information of resnet20-vibcells against resnet20 on CIFAR-10
# (docs/results.md, "Per-cell information"), the CIFAR twin of
# info_cells_mnist.sh at a small budget: both networks trained with the
# cifar-resnet recipe (SGD, cosine, crop + flip) on the first TRAIN_LIMIT
# training images for EPOCHS epochs; after every epoch --track-info measures
# I(X;T) and I(T;Y) by binning (30 bins over the data range) of each stage's
# last block, the cells, the pooled features and the logits, on the first
# TEST_LIMIT test images (those the trainer evaluates, so the cells' rates,
# test_kl in metrics.jsonl, are on the same data); beta 1e-5 for the cells
# (the README's resnet20-vibcells setting; plain resnet20 ignores it).  Then KDE (sigma^2 in
# KDE_S2) of the same layers on the final weights into RUN/kde-final.jsonl.
# The loop is info_cells.sh (DATASET=cifar); the settings are its variables.
#   EPOCHS=3 TRAIN_LIMIT=10000 bash scripts/experiments/info_cells_cifar.sh [train|kde]...
exec env DATASET=cifar bash "$(dirname "$0")/info_cells.sh" "$@"
