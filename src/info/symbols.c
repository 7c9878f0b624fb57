/*
 * symbols.c — discrete rows as symbols and their plug-in entropy.  Binning
 * turns every row of activations into a tuple of bin indices; two rows are
 * the same state exactly when their tuples are equal, so the rows are
 * sorted (lexicographically) and numbered by distinct tuple.  Sorting
 * keeps it O(n log n) with no hash collisions to worry about.
 */
#include "info_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct row_ref {
    const int64_t *row;
    int64_t d, index;
} row_ref;

static int row_cmp(const void *pa, const void *pb)
{
    const row_ref *a = pa, *b = pb;
    for (int64_t k = 0; k < a->d; k++)
        if (a->row[k] != b->row[k])
            return a->row[k] < b->row[k] ? -1 : 1;
    /* equal rows: by index, so the order (and the numbering) is total */
    return a->index < b->index ? -1 : a->index > b->index;
}

int64_t ib__info_row_ids(const int64_t *rows, int64_t n, int64_t d, int64_t *ids)
{
    row_ref *r = malloc((size_t)n * sizeof *r);
    if (!r)
        return -1;
    for (int64_t i = 0; i < n; i++)
        r[i] = (row_ref){rows + i * d, d, i};
    qsort(r, (size_t)n, sizeof *r, row_cmp);
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        if (i > 0 && memcmp(r[i].row, r[i - 1].row, (size_t)d * sizeof(int64_t)) != 0)
            k++;
        ids[r[i].index] = k;
    }
    free(r);
    return n > 0 ? k + 1 : 0;
}

double ib__info_entropy(const int64_t *ids, int64_t n, int64_t k)
{
    int64_t *c = calloc((size_t)(k > 0 ? k : 1), sizeof *c);
    if (!c)
        return NAN;
    for (int64_t i = 0; i < n; i++)
        c[ids[i]]++;
    double h = 0, dn = (double)n;
    for (int64_t s = 0; s < k; s++)
        if (c[s] > 0)
            h -= ((double)c[s] / dn) * log((double)c[s] / dn);
    free(c);
    return h;
}

double ib__label_entropy(const int32_t *y, int64_t n, int classes)
{
    int64_t *c = calloc((size_t)(classes > 0 ? classes : 1), sizeof *c);
    if (!c || n <= 0) {
        free(c);
        return NAN;
    }
    for (int64_t i = 0; i < n; i++)
        if (y[i] >= 0 && y[i] < classes)
            c[y[i]]++;
    double h = 0, dn = (double)n;
    for (int k = 0; k < classes; k++)
        if (c[k] > 0)
            h -= ((double)c[k] / dn) * log((double)c[k] / dn);
    free(c);
    return h;
}

int64_t ib__info_pair_ids(const int64_t *a, const int64_t *b, int64_t n, int64_t *ids)
{
    int64_t *pair = malloc((size_t)n * 2 * sizeof *pair);
    if (!pair)
        return -1;
    for (int64_t i = 0; i < n; i++) {
        pair[2 * i] = a[i];
        pair[2 * i + 1] = b[i];
    }
    int64_t k = ib__info_row_ids(pair, n, 2, ids);
    free(pair);
    return k;
}
