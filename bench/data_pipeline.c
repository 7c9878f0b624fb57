/*
 * data_pipeline.c — images per second the CIFAR-10 training pipeline
 * delivers on one thread: shuffle, random 32x32 crop from 4-pixel zero
 * padding, random horizontal flip, per-channel standardisation, batch 128.
 * Uses the real training set when it can be found (--data DIR, IBNET_DATA,
 * ./data, ../shared/data), else 50,000 synthetic images of the same shape.
 *
 *   ./build/bench_data_pipeline [DATA_DIR] [epochs]     (default: search, 3)
 *
 * Reported: the synchronous path (the work itself), and the prefetch path
 * with a consumer that does nothing (the copy out of the double buffer is
 * included), with how long the consumer waited.  Training consumes a few
 * thousand images/s at most on this machine; the target is >= 20,000.
 */
#include "ibnet.h"

#include <stdio.h>
#include <stdlib.h>

#include "timing.h"

int main(int argc, char **argv)
{
    const char *dir = argc > 1 && argv[1][0] ? argv[1] : NULL;
    int epochs = argc > 2 ? atoi(argv[2]) : 3;
    if (epochs < 1)
        epochs = 1;
    ib_dataset *d = NULL;
    ib_load_options opt = {.skip_hash = true};
    const char *source = "CIFAR-10 train";
    if (ib_dataset_load("cifar10", "train", dir, &opt, &d) != IB_OK) {
        fprintf(stderr, "(%s; using synthetic data)\n", ib_last_error());
        source = "synthetic 3x32x32";
        d = ib_dataset_new("synthetic", 50000, 3, 32, 32, 10);
        if (!d)
            return 1;
        float *u = malloc(sizeof(float) * 3072);
        for (int64_t i = 0; i < d->n; i++) {
            ib_rng_uniform(1, 2, (uint64_t)i, u, 3072);
            for (int p = 0; p < 3072; p++)
                d->images[i * 3072 + p] = (uint8_t)(u[p] * 256.0f);
            d->labels[i] = (int32_t)(i % 10);
        }
        free(u);
    }
    enum { B = 128 };
    float *x = malloc(sizeof(float) * B * 3072);
    int32_t y[B];
    printf("data: %s, %lld images; batch %d, crop pad 4, flip, standardize; %d epochs\n", source, (long long)d->n, B,
           epochs);
    for (int prefetch = 0; prefetch < 2; prefetch++) {
        ib_batcher_config cfg = {.batch_size = B, .seed = 1, .shuffle = true, .drop_last = true,
                                 .norm = IB_NORM_STANDARDIZE, .crop_pad = 4, .hflip = true, .prefetch = prefetch};
        ib_batcher *b;
        if (ib_batcher_new(d, &cfg, &b) != IB_OK) {
            fprintf(stderr, "%s\n", ib_last_error());
            return 1;
        }
        int64_t images = 0, count;
        double t0 = now();
        for (int e = 0; e < epochs; e++) {
            ib_batcher_epoch(b, e);
            while (ib_batcher_next(b, x, y, &count))
                images += count;
        }
        double dt = now() - t0;
        printf("%-28s %9.0f images/s  (%lld images in %.2f s; consumer waited %.2f s)\n",
               prefetch ? "prefetch thread, idle user:" : "one thread, synchronous:", (double)images / dt,
               (long long)images, dt, ib_batcher_wait_seconds(b));
        ib_batcher_free(b);
    }
    free(x);
    ib_dataset_free(d);
    return 0;
}
