#!/usr/bin/env bash
# Per-cell information of lenet-vibcells against lenet on MNIST
# (docs/results.md, "Per-cell information"): both networks trained with the
# cellvib-mnist recipe (Adam 1e-3, batch 64, inputs in [0, 1], no EMA,
# beta 1e-5 growing linearly with depth over the cells) on the first
# TRAIN_LIMIT training images for EPOCHS epochs.  After every epoch
# --track-info measures I(X;T) and I(T;Y) of the pooled conv blocks, the
# cells, fc1's ReLU and the logits by binning (30 bins over the data range)
# on the first TEST_LIMIT test images: the images the trainer evaluates, so
# the cells' rates (test_kl in metrics.jsonl, the variational upper bound on
# I(X;Z) of each cell) are on the same data.  Then (stage kde) KDE of the
# same layers on the final weights, at each sigma^2 of KDE_S2, into
# RUN/kde-final.jsonl: O(n^2 d) in the naive loop of src/info/kde.c, too
# slow on this shared machine to track every layer every epoch.  Stage
# kdetrack trains both networks again with KDE (sigma^2 = TRACK_S2) tracked
# every epoch on the pooled blocks and the cells only (RUN = MODEL-kdeS2):
# the training is deterministic, so these runs train as the binning ones.
# The loop is info_cells.sh (DATASET=mnist); the settings are its variables.
#   EPOCHS=4 TRAIN_LIMIT=5000 bash scripts/experiments/info_cells_mnist.sh [train|kde|kdetrack|plot]...
exec env DATASET=mnist bash "$(dirname "$0")/info_cells.sh" "$@"
