/*
 * split.c — new data sets made from parts of others: an index subset, a
 * contiguous slice, the train/validation split (the last k examples, as
 * the Deep VIB and cellVIB papers hold out the end of the training set),
 * and concatenation.  Each copies the pixels so every result is an
 * independent ib_dataset with one owner.
 */
#include "data/dataset_internal.h"

static ib_dataset *empty_like(const ib_dataset *d, int64_t n)
{
    ib_dataset *o = ib_dataset_new(d->name, n, d->c, d->h, d->w, d->classes);
    if (!o)
        return NULL;
    if (d->clean_labels) {
        o->clean_labels = calloc((size_t)(n ? n : 1), sizeof *o->clean_labels);
        if (!o->clean_labels) {
            ib_dataset_free(o);
            ib__error(IB_ERR_NOMEM, "data set %s: out of memory", d->name);
            return NULL;
        }
    }
    if (d->class_names && ib_dataset_set_class_names(o, (const char *const *)d->class_names, d->classes) != IB_OK) {
        ib_dataset_free(o);
        return NULL;
    }
    return o;
}

ib_status ib_dataset_subset(const ib_dataset *d, const int64_t *index, int64_t n, ib_dataset **out)
{
    if (out)
        *out = NULL;
    if (!d || !out || n < 0 || (n > 0 && !index))
        return ib__error(IB_ERR_ARG, "ib_dataset_subset: NULL argument or negative count");
    for (int64_t i = 0; i < n; i++)
        if (index[i] < 0 || index[i] >= d->n)
            return ib__error(IB_ERR_ARG, "ib_dataset_subset: index[%lld] = %lld is outside data set %s of %lld examples",
                             (long long)i, (long long)index[i], d->name, (long long)d->n);
    ib_dataset *o = empty_like(d, n);
    if (!o)
        return IB_ERR_NOMEM;
    size_t per = (size_t)d->c * d->h * d->w;
    for (int64_t i = 0; i < n; i++) {
        memcpy(o->images + i * per, d->images + index[i] * per, per);
        o->labels[i] = d->labels[index[i]];
        if (d->clean_labels)
            o->clean_labels[i] = d->clean_labels[index[i]];
    }
    *out = o;
    return IB_OK;
}

ib_status ib_dataset_slice(const ib_dataset *d, int64_t start, int64_t len, ib_dataset **out)
{
    if (out)
        *out = NULL;
    if (!d || !out || start < 0 || len < 0 || start > d->n || len > d->n - start)
        return ib__error(IB_ERR_ARG, "ib_dataset_slice: [%lld, %lld) is outside data set %s of %lld examples",
                         (long long)start, (long long)(start + len), d ? d->name : "(null)", d ? (long long)d->n : 0LL);
    ib_dataset *o = empty_like(d, len);
    if (!o)
        return IB_ERR_NOMEM;
    size_t per = (size_t)d->c * d->h * d->w;
    memcpy(o->images, d->images + start * per, (size_t)len * per);
    memcpy(o->labels, d->labels + start, (size_t)len * sizeof *o->labels);
    if (d->clean_labels)
        memcpy(o->clean_labels, d->clean_labels + start, (size_t)len * sizeof *o->labels);
    *out = o;
    return IB_OK;
}

ib_status ib_dataset_split_last(const ib_dataset *d, int64_t k, ib_dataset **train, ib_dataset **val)
{
    if (train)
        *train = NULL;
    if (val)
        *val = NULL;
    if (!d || !train || !val || k < 0 || k > d->n)
        return ib__error(IB_ERR_ARG, "ib_dataset_split_last: cannot hold out %lld of the %lld examples of %s",
                         (long long)k, d ? (long long)d->n : 0LL, d ? d->name : "(null)");
    ib_status s = ib_dataset_slice(d, 0, d->n - k, train);
    if (s != IB_OK)
        return s;
    s = ib_dataset_slice(d, d->n - k, k, val);
    if (s != IB_OK) {
        ib_dataset_free(*train);
        *train = NULL;
    }
    return s;
}

ib_status ib_dataset_concat(const ib_dataset *a, const ib_dataset *b, ib_dataset **out)
{
    if (out)
        *out = NULL;
    if (!a || !b || !out)
        return ib__error(IB_ERR_ARG, "ib_dataset_concat: NULL argument");
    if (a->c != b->c || a->h != b->h || a->w != b->w)
        return ib__error(IB_ERR_SHAPE, "ib_dataset_concat: %s images are %dx%dx%d, %s images %dx%dx%d", a->name, a->c,
                         a->h, a->w, b->name, b->c, b->h, b->w);
    if (a->n > INT64_MAX / 2 || b->n > INT64_MAX / 2)
        return ib__error(IB_ERR_ARG, "ib_dataset_concat: too many examples");
    int classes = a->classes > b->classes ? a->classes : b->classes;
    ib_dataset *o = ib_dataset_new(a->name, a->n + b->n, a->c, a->h, a->w, classes);
    if (!o)
        return IB_ERR_NOMEM;
    size_t per = (size_t)a->c * a->h * a->w;
    memcpy(o->images, a->images, (size_t)a->n * per);
    memcpy(o->images + a->n * per, b->images, (size_t)b->n * per);
    memcpy(o->labels, a->labels, (size_t)a->n * sizeof *o->labels);
    memcpy(o->labels + a->n, b->labels, (size_t)b->n * sizeof *o->labels);
    if (a->clean_labels || b->clean_labels) {
        o->clean_labels = malloc((size_t)(o->n ? o->n : 1) * sizeof *o->clean_labels);
        if (!o->clean_labels) {
            ib_dataset_free(o);
            return ib__error(IB_ERR_NOMEM, "ib_dataset_concat: out of memory");
        }
        memcpy(o->clean_labels, a->clean_labels ? a->clean_labels : a->labels, (size_t)a->n * sizeof *o->labels);
        memcpy(o->clean_labels + a->n, b->clean_labels ? b->clean_labels : b->labels, (size_t)b->n * sizeof *o->labels);
    }
    /* Names only when both agree: a concat of unrelated sets has none. */
    bool same = a->class_names && b->class_names && a->classes == b->classes;
    for (int k = 0; same && k < a->classes; k++)
        same = strcmp(a->class_names[k], b->class_names[k]) == 0;
    if (same && ib_dataset_set_class_names(o, (const char *const *)a->class_names, a->classes) != IB_OK) {
        ib_dataset_free(o);
        return IB_ERR_NOMEM;
    }
    *out = o;
    return IB_OK;
}
