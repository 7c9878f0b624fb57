/*
 * multiview.c — two-view Noisy MNIST (Wang, Arora, Livescu and Bilmes
 * 2015, "On Deep Multi-View Representation Learning"), the multi-view
 * benchmark VCD/VML train on: view 1 rotates each digit by a random angle,
 * view 2 shows another digit of the same class under heavy uniform noise,
 * so what the views share is the class and little else.
 */
#include "core/internal.h"
#include "data/corrupt_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ib_status ib_noisy_mnist_two_view(const ib_dataset *src, uint64_t seed, ib_dataset **view1, ib_dataset **view2,
                                  int64_t *partner)
{
    if (!view1 || !view2)
        return ib__error(IB_ERR_ARG, "ib_noisy_mnist_two_view: view1 and view2 must not be NULL");
    *view1 = *view2 = NULL;
    if (!src || src->classes <= 0)
        return ib__error(IB_ERR_ARG, "ib_noisy_mnist_two_view: src is NULL or has no classes");
    int64_t n = src->n, sz = (int64_t)src->c * src->h * src->w;
    int K = src->classes;
    /* Examples grouped by class: start[k] .. start[k+1] in byclass; rank[i]
     * is i's place in its class. */
    int64_t *start = calloc((size_t)K + 1, sizeof(int64_t));
    int64_t *byclass = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    int64_t *rank = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    int64_t *fill = calloc((size_t)K, sizeof(int64_t));
    ib_dataset *v1 = NULL, *v2 = NULL;
    ib_status st = IB_OK;
    if (!start || !byclass || !rank || !fill) {
        st = ib__error(IB_ERR_NOMEM, "ib_noisy_mnist_two_view: no memory for the class index");
        goto done;
    }
    for (int64_t i = 0; i < n; i++) {
        int32_t y = src->labels[i];
        if (y < 0 || y >= K) {
            st = ib__error(IB_ERR_FORMAT, "ib_noisy_mnist_two_view: %s example %lld has label %d outside [0, %d)",
                           src->name, (long long)i, (int)y, K);
            goto done;
        }
        start[y + 1]++;
    }
    for (int k = 0; k < K; k++) {
        if (start[k + 1] == 1) {
            st = ib__error(IB_ERR_ARG, "ib_noisy_mnist_two_view: class %d of %s has one example, so view 2 cannot show "
                                       "a different image of it", k, src->name);
            goto done;
        }
        start[k + 1] += start[k];
    }
    for (int64_t i = 0; i < n; i++) {
        int32_t y = src->labels[i];
        rank[i] = fill[y];
        byclass[start[y] + fill[y]++] = i;
    }
    v1 = ib__dataset_like(src, n, "noisy-mnist-view1");
    v2 = ib__dataset_like(src, n, "noisy-mnist-view2");
    if (!v1 || !v2) {
        st = IB_ERR_NOMEM;
        goto done;
    }
    memcpy(v1->labels, src->labels, sizeof(int32_t) * (size_t)n);
    memcpy(v2->labels, src->labels, sizeof(int32_t) * (size_t)n);
    uint64_t s_angle = ib_rng_stream_of("noisy-mnist/angle"), s_pair = ib_rng_stream_of("noisy-mnist/partner");
    uint64_t s_noise = ib_rng_stream_of("noisy-mnist/noise");
#pragma omp parallel
    {
        float *u = malloc(sizeof(float) * (size_t)sz);
#pragma omp for schedule(dynamic, 64)
        for (int64_t i = 0; i < n; i++) {
            if (!u) {
#pragma omp critical
                st = IB_ERR_NOMEM;
                continue;
            }
            double angle = -45.0 + 90.0 * ib__u01(seed, s_angle, 0, (uint64_t)i);
            ib_status si = ib_image_rotate(src->images + i * sz, v1->images + i * sz, src->c, src->h, src->w, (float)angle);
            if (si != IB_OK) {
#pragma omp critical
                st = si;
            }
            /* A uniform draw among the m - 1 other members of the class. */
            int32_t y = src->labels[i];
            int64_t m = start[y + 1] - start[y];
            int64_t r = (int64_t)(ib_rng_u64(seed, s_pair, 0, (uint64_t)i) % (uint64_t)(m - 1));
            int64_t j = byclass[start[y] + (r >= rank[i] ? r + 1 : r)];
            if (partner)
                partner[i] = j;
            ib_rng_uniform(seed, s_noise, (uint64_t)i, u, sz);
            const uint8_t *p = src->images + j * sz;
            uint8_t *q = v2->images + i * sz;
            for (int64_t t = 0; t < sz; t++) {
                float v = p[t] * (1.0f / 255.0f) + u[t];
                v = v > 1.0f ? 1.0f : v;
                q[t] = (uint8_t)roundf(v * 255.0f);
            }
        }
        free(u);
    }
done:
    free(start);
    free(byclass);
    free(rank);
    free(fill);
    if (st != IB_OK) {
        ib_dataset_free(v1);
        ib_dataset_free(v2);
        return st;
    }
    *view1 = v1;
    *view2 = v2;
    return IB_OK;
}
