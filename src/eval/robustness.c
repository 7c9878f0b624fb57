/*
 * robustness.c — the arithmetic of the common-corruption benchmark
 * (Hendrycks & Dietterich 2019): corruption errors normalised by a
 * baseline model's, their mean (mCE) and the relative version that
 * measures only the drop from clean accuracy; and which checkpoints may
 * serve as each other's baseline.  `ibnet robustness` evaluates the cells;
 * this file only turns error rates into the benchmark's figures, so the
 * figures can be checked by hand (tests/test_robustness.c).
 */
#include "core/internal.h"

#include <math.h>

ib_status ib_mce(int n_types, int n_sev, const double *err, double clean, const double *base_err, double base_clean,
                 double *ce, double *rel_ce, double *mce, double *rel_mce)
{
    if (n_types < 1 || n_sev < 1 || !err || !base_err)
        return ib__error(IB_ERR_ARG, "ib_mce: need n_types >= 1, n_sev >= 1 and both error tables");
    double sum_ce = 0, sum_rel = 0;
    for (int t = 0; t < n_types; t++) {
        double e = 0, b = 0, re = 0, rb = 0;
        for (int s = 0; s < n_sev; s++) {
            e += err[t * n_sev + s];
            b += base_err[t * n_sev + s];
            re += err[t * n_sev + s] - clean;
            rb += base_err[t * n_sev + s] - base_clean;
        }
        /* a baseline whose corrupted errors equal its clean one gives a
         * difference of rounding noise (1e-17), not a drop: undefined */
        bool rb_zero = fabs(rb) <= 1e-12 * (fabs(b) + n_sev * fabs(base_clean));
        double c = b != 0 ? e / b : NAN, r = rb_zero ? NAN : re / rb;
        if (ce)
            ce[t] = c;
        if (rel_ce)
            rel_ce[t] = r;
        sum_ce += c;
        sum_rel += r;
    }
    if (mce)
        *mce = sum_ce / n_types;
    if (rel_mce)
        *rel_mce = sum_rel / n_types;
    return IB_OK;
}

void ib_model_family(const char *name, char *buf, size_t len)
{
    if (!buf || !len)
        return;
    if (!name)
        name = "";
    if (strncmp(name, "vib-", 4) == 0)
        name += 4;
    size_t n = strlen(name);
    static const char *const suffixes[] = {"-vibcells", "-vib"};
    for (size_t k = 0; k < sizeof suffixes / sizeof suffixes[0]; k++) {
        size_t m = strlen(suffixes[k]);
        if (n > m && strcmp(name + n - m, suffixes[k]) == 0) {
            n -= m;
            break;
        }
    }
    snprintf(buf, len, "%.*s", (int)n, name);
}

ib_status ib_robustness_check_baseline(const ib_net *model, const ib_net *baseline)
{
    if (!model || !baseline)
        return ib__error(IB_ERR_ARG, "ib_robustness_check_baseline: NULL network");
    const ib_checkpoint_meta *a = ib_net_meta(model), *b = ib_net_meta(baseline);
    if (strcmp(a->dataset, b->dataset) != 0)
        return ib__error(IB_ERR_MISMATCH, "the baseline was trained on %s, the model on %s: an mCE compares models "
                         "of one data set", b->dataset, a->dataset);
    const ib_model *ma = ib_net_model(model), *mb = ib_net_model(baseline);
    int ca, ha, wa, cb, hb, wb;
    ib_model_input_shape(ma, &ca, &ha, &wa);
    ib_model_input_shape(mb, &cb, &hb, &wb);
    if (ca != cb || ha != hb || wa != wb || ib_model_classes(ma) != ib_model_classes(mb))
        return ib__error(IB_ERR_MISMATCH, "the baseline takes %dx%dx%d inputs in %d classes, the model %dx%dx%d in %d",
                         cb, hb, wb, ib_model_classes(mb), ca, ha, wa, ib_model_classes(ma));
    char fa[128], fb[128];
    ib_model_family(ib_model_name(ma), fa, sizeof fa);
    ib_model_family(ib_model_name(mb), fb, sizeof fb);
    if (strcmp(fa, fb) != 0)
        return ib__error(IB_ERR_MISMATCH, "the baseline is a %s (%s), the model a %s (%s): the baseline must be the "
                         "plain model of the same architecture", fb, ib_model_name(mb), fa, ib_model_name(ma));
    return IB_OK;
}
