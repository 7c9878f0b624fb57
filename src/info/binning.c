/*
 * binning.c — the binning estimator of Shwartz-Ziv & Tishby: each value of
 * a continuous variable falls into one of `bins` equal bins (over the
 * data's range or a fixed one) or into a bin of fixed width; each distinct
 * row of bin indices is one state, and the entropies are plug-in
 * frequencies.  T deterministic in distinct inputs gives I(X;T) = H(T);
 * with a second variable, I(A;B) = H(A) + H(B) - H(A,B), which for labels
 * is H(T) - sum_y p(y) H(T|Y=y).  A fixed range saturates whatever lies
 * outside it into the edge bins (ReLU activations on [-1, 1], the trap
 * users fall into), so the share of such values is counted and reported.
 */
#include "info_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct bin_rule {
    int bins;
    double lo, hi, width;
    int64_t saturated; /* values outside [lo, hi] of a fixed range */
} bin_rule;

/* A bin index as an integer: a fixed width far below the values' scale
 * can give quotients beyond int64, which share the extreme index. */
static int64_t clamp_code(double q)
{
    return q >= 9.0e18 ? INT64_C(9000000000000000000) : q <= -9.0e18 ? -INT64_C(9000000000000000000) : (int64_t)q;
}

/* Bin indices of every value of v (n*d) into codes; fills the rule's range. */
static void bin_values(const ib_mi_var *v, const ib_mi_options *o, bin_rule *r, int64_t *codes)
{
    int64_t m = v->n * v->d;
    const float *x = v->f;
    r->saturated = 0;
    if (o->width > 0) {
        r->bins = 0;
        r->width = o->width;
        double lo = INFINITY, hi = -INFINITY;
        for (int64_t k = 0; k < m; k++) {
            codes[k] = clamp_code(floor((double)x[k] / o->width));
            lo = fmin(lo, (double)x[k]);
            hi = fmax(hi, (double)x[k]);
        }
        r->lo = lo;
        r->hi = hi;
        return;
    }
    r->bins = o->bins;
    if (o->fixed_range) {
        r->lo = o->lo;
        r->hi = o->hi;
    } else {
        r->lo = INFINITY;
        r->hi = -INFINITY;
        for (int64_t k = 0; k < m; k++) {
            r->lo = fmin(r->lo, (double)x[k]);
            r->hi = fmax(r->hi, (double)x[k]);
        }
    }
    /* halves: hi - lo of values near +-DBL_MAX would overflow to Inf */
    double half_span = r->hi / 2 - r->lo / 2;
    r->width = half_span / o->bins * 2;
    for (int64_t k = 0; k < m; k++) {
        double t = (double)x[k];
        int64_t b;
        if (t < r->lo || t > r->hi) {
            r->saturated++;
            b = t < r->lo ? 0 : o->bins - 1;
        } else if (half_span <= 0) {
            b = 0; /* every value equal: one bin */
        } else {
            b = clamp_code(floor((t / 2 - r->lo / 2) / half_span * o->bins));
            if (b >= o->bins) /* t == hi belongs to the last bin */
                b = o->bins - 1;
        }
        codes[k] = b;
    }
}

/* Symbols of the rows of v (binned when continuous); returns the count K,
 * -1 when out of memory. */
static int64_t symbols(const ib_mi_var *v, const ib_mi_options *o, bin_rule *r, int64_t *ids)
{
    if (v->i)
        return ib__info_row_ids(v->i, v->n, v->d, ids);
    int64_t *codes = malloc((size_t)(v->n * v->d) * sizeof *codes);
    if (!codes)
        return -1;
    bin_values(v, o, r, codes);
    int64_t k = ib__info_row_ids(codes, v->n, v->d, ids);
    free(codes);
    return k;
}

ib_status ib__mi_binning(const ib_mi_var *a, const ib_mi_var *b, const ib_mi_options *o, ib_mi_result *out)
{
    int64_t n = a->n;
    int64_t *ia = malloc((size_t)n * sizeof *ia);
    int64_t *ib = b ? malloc((size_t)n * sizeof *ib) : NULL;
    int64_t *iab = b ? malloc((size_t)n * sizeof *iab) : NULL;
    ib_status st = IB_OK;
    if (!ia || (b && (!ib || !iab))) {
        st = ib__error(IB_ERR_NOMEM, "binning: out of memory for %lld rows", (long long)n);
        goto done;
    }
    bin_rule ra = {0}, rb = {0};
    int64_t ka = symbols(a, o, &ra, ia);
    int64_t kb = b ? symbols(b, o, &rb, ib) : 0;
    int64_t kab = b && ka >= 0 && kb >= 0 ? ib__info_pair_ids(ia, ib, n, iab) : 0;
    if (ka < 0 || kb < 0 || kab < 0) {
        st = ib__error(IB_ERR_NOMEM, "binning: out of memory for %lld rows", (long long)n);
        goto done;
    }
    double ha = ib__info_entropy(ia, n, ka);
    double v = ha;
    if (b)
        v = ha + ib__info_entropy(ib, n, kb) - ib__info_entropy(iab, n, kab);
    out->nats = v;
    out->kind = IB_MI_ESTIMATE;
    out->n = n;
    out->states = ka;
    if (a->f) {
        out->bins = ra.bins;
        out->lo = ra.lo;
        out->hi = ra.hi;
        out->width = ra.width;
    } else if (b && b->f) {
        out->bins = rb.bins;
        out->lo = rb.lo;
        out->hi = rb.hi;
        out->width = rb.width;
    } else {
        out->bins = o->width > 0 ? 0 : o->bins;
        out->width = o->width;
    }
    int64_t cont = (a->f ? a->n * a->d : 0) + (b && b->f ? b->n * b->d : 0);
    out->saturated = cont ? (double)(ra.saturated + rb.saturated) / (double)cont : 0.0;
done:
    free(ia);
    free(ib);
    free(iab);
    return st;
}
