/*
 * twoview.c — the two-view data sets of variational cross-distillation
 * (docs/vsd.md) by name, so `--dataset noisy-mnist-2view` and
 * `--dataset cifar10-2view` open like any set:
 *   noisy-mnist-2view  view 1 a rotated MNIST digit, view 2 another digit
 *                      of its class under uniform noise
 *                      (ib_noisy_mnist_two_view);
 *   cifar10-2view      view 1 the CIFAR-10 colour image, view 2 its
 *                      greyscale copy in three equal channels plus
 *                      Gaussian noise (ib_color_grey_two_view).
 * Example i of both views has the same label, so batches drawn in one
 * order stay aligned.  The random draws are keyed by a fixed seed per
 * split: the sets are the same in every run, as a benchmark's should be.
 */
#include "core/internal.h"
#include "data/corrupt_internal.h"

#include <math.h>

#define CIFAR_GREY_NOISE 0.1f /* std of view 2's noise on the [0, 1] pixel scale */

static const struct {
    const char *spec, *base;
} sets[] = {
    {"noisy-mnist-2view", "mnist"},
    {"cifar10-2view", "cifar10"},
};
#define N_SETS ((int)(sizeof sets / sizeof sets[0]))

static int find(const char *spec)
{
    for (int i = 0; spec && i < N_SETS; i++)
        if (strcmp(sets[i].spec, spec) == 0)
            return i;
    return -1;
}

int ib_dataset_spec_views(const char *spec) { return find(spec) >= 0 ? 2 : 1; }

ib_status ib_color_grey_two_view(const ib_dataset *src, float noise_std, uint64_t seed, ib_dataset **view1,
                                 ib_dataset **view2)
{
    if (!view1 || !view2)
        return ib__error(IB_ERR_ARG, "ib_color_grey_two_view: view1 and view2 must not be NULL");
    *view1 = *view2 = NULL;
    if (!src || src->c != 3)
        return ib__error(IB_ERR_ARG, "ib_color_grey_two_view: needs a colour (3-channel) data set");
    if (!(noise_std >= 0.0f) || !isfinite(noise_std))
        return ib__error(IB_ERR_ARG, "ib_color_grey_two_view: noise std %g must be >= 0", (double)noise_std);
    int64_t n = src->n, plane = (int64_t)src->h * src->w, sz = 3 * plane;
    ib_dataset *v1 = ib__dataset_like(src, n, NULL), *v2 = ib__dataset_like(src, n, NULL);
    float *u = malloc(sizeof(float) * (size_t)(plane ? plane : 1));
    if (!v1 || !v2 || !u) {
        ib_dataset_free(v1);
        ib_dataset_free(v2);
        free(u);
        return ib__error(IB_ERR_NOMEM, "ib_color_grey_two_view: out of memory");
    }
    snprintf(v1->name, sizeof v1->name, "%.50s-colour", src->name);
    snprintf(v2->name, sizeof v2->name, "%.50s-grey", src->name);
    memcpy(v1->images, src->images, (size_t)(n * sz));
    memcpy(v1->labels, src->labels, sizeof(int32_t) * (size_t)n);
    memcpy(v2->labels, src->labels, sizeof(int32_t) * (size_t)n);
    uint64_t stream = ib_rng_stream_of("color-grey/noise");
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *p = src->images + i * sz;
        uint8_t *q = v2->images + i * sz;
        ib_rng_normal(seed, stream, (uint64_t)i, u, plane);
        for (int64_t t = 0; t < plane; t++) {
            /* ITU-R BT.601 luma, as PIL's convert("L") */
            float grey = (0.299f * p[t] + 0.587f * p[plane + t] + 0.114f * p[2 * plane + t]) * (1.0f / 255.0f);
            float v = grey + noise_std * u[t];
            v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
            q[t] = q[plane + t] = q[2 * plane + t] = (uint8_t)lrintf(v * 255.0f);
        }
    }
    free(u);
    *view1 = v1;
    *view2 = v2;
    return IB_OK;
}

ib_status ib_dataset_open_view(const char *spec, const char *split, int view, const char *data_dir,
                               const ib_load_options *opt, ib_dataset **out)
{
    if (!out)
        return ib__error(IB_ERR_ARG, "ib_dataset_open_view: out is NULL");
    *out = NULL;
    int k = find(spec);
    if (k < 0) {
        if (view != 0)
            return ib__error(IB_ERR_ARG, "data set '%s' has one view, not %d", spec ? spec : "(null)", view + 1);
        return ib_dataset_open(spec, split, data_dir, opt, out);
    }
    if (view < 0 || view > 1)
        return ib__error(IB_ERR_ARG, "data set '%s' has two views, not %d", spec, view + 1);
    if (!split || (strcmp(split, "train") && strcmp(split, "test")))
        return ib__error(IB_ERR_ARG, "unknown split '%s' (train or test)", split ? split : "(null)");
    ib_dataset *base = NULL, *v[2] = {NULL, NULL};
    ib_status s = ib_dataset_load(sets[k].base, split, data_dir, opt, &base);
    if (s != IB_OK)
        return s;
    uint64_t seed = strcmp(split, "train") == 0 ? 0x2f1e0001u : 0x2f1e0002u;
    if (k == 0)
        s = ib_noisy_mnist_two_view(base, seed, &v[0], &v[1], NULL);
    else
        s = ib_color_grey_two_view(base, CIFAR_GREY_NOISE, seed, &v[0], &v[1]);
    ib_dataset_free(base);
    if (s != IB_OK)
        return s;
    ib_dataset_free(v[1 - view]);
    *out = v[view];
    return IB_OK;
}
