/*
 * info_internal.h — what the estimator files of src/info/ share: the
 * discrete coding of rows (each distinct row one symbol), plug-in entropy
 * of symbols, and the entry points of each method, called by estimate.c
 * after it has checked the arguments once for all.
 */
#ifndef IB_INFO_INTERNAL_H
#define IB_INFO_INTERNAL_H

#include "core/internal.h"

#include <math.h>

/* Symbols 0..K-1 for the n rows of d int64 values: equal rows get equal
 * symbols.  ids (n) filled; returns K, or -1 when out of memory. */
int64_t ib__info_row_ids(const int64_t *rows, int64_t n, int64_t d, int64_t *ids);
/* Plug-in entropy in nats of n symbols in [0, k): -sum_s (c_s/n) ln(c_s/n). */
double ib__info_entropy(const int64_t *ids, int64_t n, int64_t k);
/* Plug-in entropy in nats of n class labels in [0, classes) (labels
 * outside are skipped, as rows of no class): H(Y) of the variational
 * decoder bound, the evaluated labels' own entropy, not ln(classes).  NAN
 * when n <= 0 or out of memory. */
double ib__label_entropy(const int32_t *y, int64_t n, int classes);
/* Symbols of the pairs (a_i, b_i): ids (n) filled; returns the number of
 * distinct pairs, -1 when out of memory. */
int64_t ib__info_pair_ids(const int64_t *a, const int64_t *b, int64_t n, int64_t *ids);

/* Each method fills out (value, kind and its settings); the arguments are
 * already checked (n >= 2, same n, finite, settings valid). */
ib_status ib__mi_binning(const ib_mi_var *a, const ib_mi_var *b, const ib_mi_options *o, ib_mi_result *out);
ib_status ib__mi_kde(const ib_mi_var *a, const ib_mi_var *b, const ib_mi_options *o, ib_mi_result *out);
ib_status ib__mi_critic(const ib_mi_var *a, const ib_mi_var *b, const ib_mi_options *o, ib_mi_result *out);
/* The decoder's logits (n, c, h, w) of rows[0..n), n <= 100, for the
 * tests (causality, the NLL as a sum of per-pixel terms). */
ib_status ib__decoder_logits(ib_decoder *m, const ib_decoder_data *d, const int64_t *rows, int64_t n, float *out);
ib_status ib__mi_decoder(const ib_mi_var *a, const ib_mi_var *b, const ib_mi_options *o, ib_mi_result *out);

/* A new array (the readers): value buffer for `count` values; NULL when
 * out of memory. */
ib_array *ib__array_new(ib_array_dtype t, int ndim, const int64_t *shape, int64_t count);

/* A double as float; beyond float's range +-Inf (which the estimators
 * refuse by name) rather than the undefined conversion. */
static inline float ib__to_float(double x)
{
    return x > 3.4028234663852886e38 ? INFINITY : x < -3.4028234663852886e38 ? -INFINITY : (float)x;
}

#endif
