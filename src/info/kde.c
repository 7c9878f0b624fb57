/*
 * kde.c — the KDE estimators of Kolchinsky & Tracey as used by Saxe et al.
 * (code artemyk/ibsgd).  T is taken as h(X) + N(0, sigma^2 I): its density
 * is a mixture of n Gaussians centred on the samples, whose entropy has
 * an upper bound (pairwise KL) and a lower bound (Bhattacharyya):
 *   H_upper(T) = d/2 + (d/2) ln(2 pi sigma^2) - L(1/(2 sigma^2))
 *   H_lower(T) = d/2 + (d/2) ln(2 pi sigma^2) - L(1/(8 sigma^2))
 *   L(c) = (1/n) sum_i [ logsumexp_j(-c ||h_i - h_j||^2) - ln n ]
 * and H(T|X) = (d/2)(ln(2 pi sigma^2) + 1), so I(X;T) = -L(c) for either
 * form, between 0 and ln n.  I(T;Y) = H(T) - sum_y p(y) H(T|Y=y) with each
 * class's samples; the constants cancel.  Two continuous variables give
 * H(A) + H(B) - H(A,B) of the noised variables, the constants cancel again.
 * Everything is O(n^2 d); rows are spread over the threads, each row's sum
 * is its own, so the result does not depend on the thread count.
 */
#include "info_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* L(c) over the m rows idx[] (NULL: rows 0..m-1) of x (row stride d). */
static double mean_lse(const float *x, int64_t d, const int64_t *idx, int64_t m, double c, double *row_buf)
{
#pragma omp parallel for schedule(static) if (m * m * d > 1 << 18)
    for (int64_t i = 0; i < m; i++) {
        const float *xi = x + (idx ? idx[i] : i) * d;
        /* the largest term is j = i (distance 0, exponent 0) */
        double s = 0;
        for (int64_t j = 0; j < m; j++) {
            const float *xj = x + (idx ? idx[j] : j) * d;
            double dist = 0;
            for (int64_t k = 0; k < d; k++) {
                double t = (double)xi[k] - (double)xj[k];
                dist += t * t;
            }
            s += exp(-c * dist);
        }
        row_buf[i] = log(s);
    }
    double tot = 0;
    for (int64_t i = 0; i < m; i++)
        tot += row_buf[i];
    return tot / (double)m - log((double)m);
}

ib_status ib__mi_kde(const ib_mi_var *a, const ib_mi_var *b, const ib_mi_options *o, ib_mi_result *out)
{
    if (!a->f && b && b->f) { /* the continuous variable plays T */
        const ib_mi_var *t = a;
        a = b;
        b = t;
    }
    if (!a->f)
        return ib__error(IB_ERR_ARG, "%s: KDE needs a continuous variable (both are discrete: use binning)",
                         ib_mi_method_name(o->method));
    bool upper = o->method == IB_MI_KDE;
    double c = 1.0 / ((upper ? 2.0 : 8.0) * o->sigma2);
    int64_t n = a->n;
    double *buf = malloc((size_t)n * sizeof *buf);
    int64_t *ids = NULL, *idx = NULL;
    float *joint = NULL;
    ib_status st = IB_OK;
    if (!buf)
        goto nomem;
    double la = mean_lse(a->f, a->d, NULL, n, c, buf);
    out->n = n;
    out->sigma2 = o->sigma2;
    if (!b) {
        out->nats = -la;
        out->kind = upper ? IB_MI_UPPER : IB_MI_LOWER;
    } else if (b->i) {
        ids = malloc((size_t)n * sizeof *ids);
        idx = malloc((size_t)n * sizeof *idx);
        if (!ids || !idx)
            goto nomem;
        int64_t k = ib__info_row_ids(b->i, n, b->d, ids);
        if (k < 0)
            goto nomem;
        /* group the rows by class: idx holds class 0's rows, then class 1's ... */
        int64_t *start = calloc((size_t)k + 1, sizeof *start);
        if (!start)
            goto nomem;
        for (int64_t i = 0; i < n; i++)
            start[ids[i] + 1]++;
        for (int64_t s = 0; s < k; s++)
            start[s + 1] += start[s];
        int64_t *fill = malloc((size_t)k * sizeof *fill);
        if (!fill) {
            free(start);
            goto nomem;
        }
        memcpy(fill, start, (size_t)k * sizeof *fill);
        for (int64_t i = 0; i < n; i++)
            idx[fill[ids[i]]++] = i;
        double cond = 0;
        for (int64_t s = 0; s < k; s++) {
            int64_t m = start[s + 1] - start[s];
            cond += (double)m / (double)n * mean_lse(a->f, a->d, idx + start[s], m, c, buf);
        }
        free(fill);
        free(start);
        out->nats = cond - la; /* H(T) - sum_y p(y) H(T|y) */
        out->kind = IB_MI_ESTIMATE;
    } else {
        int64_t d = a->d + b->d;
        joint = malloc((size_t)(n * d) * sizeof *joint);
        if (!joint)
            goto nomem;
        for (int64_t i = 0; i < n; i++) {
            memcpy(joint + i * d, a->f + i * a->d, (size_t)a->d * sizeof *joint);
            memcpy(joint + i * d + a->d, b->f + i * b->d, (size_t)b->d * sizeof *joint);
        }
        double lb = mean_lse(b->f, b->d, NULL, n, c, buf);
        double lab = mean_lse(joint, d, NULL, n, c, buf);
        out->nats = lab - la - lb; /* H(A) + H(B) - H(A,B) */
        out->kind = IB_MI_ESTIMATE;
    }
    goto done;
nomem:
    st = ib__error(IB_ERR_NOMEM, "kde: out of memory for %lld rows", (long long)n);
done:
    free(buf);
    free(ids);
    free(idx);
    free(joint);
    return st;
}
