/*
 * ema.c — exponential moving average of the trainable weights (Polyak
 * averaging), as TensorFlow's ExponentialMovingAverage computes it: the
 * shadow moves by shadow -= (shadow - value) * (1 - decay) in float32, and
 * with zero_debias it starts at 0 and is read as shadow / (1 - decay^t).
 *
 * The shadow is laid out like the store's value buffer (one checkpoint
 * write).  Swapping keeps the training values aside in a second buffer
 * instead of recomputing them, so swapping back is bit-exact.  Each
 * parameter has its own update count: parameters added to the store later
 * start their average when they are first seen.
 *
 * An update is one parallel region over the whole store (pieces of at most
 * EMA_CHUNK floats of one averaged parameter), not one per parameter.
 *
 * Buffers (batch-norm running statistics) are not averaged: statistics of
 * the training network do not belong to the averaged weights.  The averaged
 * network may instead own a value of a buffer (ib_ema_keep_buffer: the
 * trainer's statistics recomputed for the averaged weights), kept in the
 * shadow at the buffer's offset and put into the store by a swap.  A swap
 * keeps every buffer aside and swapping back restores it, so whatever is
 * written into the store's buffers while swapped never reaches the
 * training network.
 */
#include "core/internal.h"

#include <math.h>

struct ib_ema {
    ib_params *p;
    float decay;
    bool zero_debias, swapped;
    int n_swapped;          /* parameters swapped out by the last swap */
    int64_t updates;
    float *shadow, *backup; /* backup: the training values while swapped */
    int64_t len;            /* floats in shadow (and backup once allocated) */
    int64_t *pcount;        /* per-parameter update counts */
    bool *own_buf;          /* per parameter: a buffer whose value the averaged network owns (in shadow) */
    int n_known, pcount_cap;
    int64_t (*piece)[2];    /* this update's work list: [lo, hi) in floats */
    int64_t piece_cap;
};

#define EMA_CHUNK 16384

static bool averaged(const ib_params *p, int i)
{
    return ib_params_kind(p, i) == IB_PARAM_TRAINABLE && !ib_params_frozen(p, i);
}

/* Grow the shadow to the store's size; a new parameter's shadow starts at
 * 0 (zero_debias) or at its current value. */
static ib_status sync(ib_ema *e)
{
    ib_params *p = e->p;
    int64_t total = ib_params_total(p);
    if (total > e->len) {
        float *s = ib__aligned_alloc((size_t)total * sizeof(float));
        float *b = e->backup ? ib__aligned_alloc((size_t)total * sizeof(float)) : NULL;
        if (!s || (e->backup && !b)) {
            ib__aligned_free(s);
            ib__aligned_free(b);
            return ib__error(IB_ERR_NOMEM, "EMA: cannot allocate %lld floats", (long long)total);
        }
        if (e->len)
            memcpy(s, e->shadow, (size_t)e->len * sizeof(float));
        memset(s + e->len, 0, (size_t)(total - e->len) * sizeof(float));
        if (b) {
            memcpy(b, e->backup, (size_t)e->len * sizeof(float));
            memset(b + e->len, 0, (size_t)(total - e->len) * sizeof(float));
        }
        ib__aligned_free(e->shadow);
        ib__aligned_free(e->backup);
        e->shadow = s;
        e->backup = b;
        e->len = total;
    }
    int count = ib_params_count(p);
    if (count > e->pcount_cap) {
        int64_t *pc = realloc(e->pcount, (size_t)count * sizeof *pc);
        if (pc)
            e->pcount = pc;
        bool *ob = pc ? realloc(e->own_buf, (size_t)count * sizeof *ob) : NULL;
        if (!pc || !ob)
            return ib__error(IB_ERR_NOMEM, "EMA: out of memory");
        e->own_buf = ob;
        e->pcount_cap = count;
    }
    for (int i = e->n_known; i < count; i++) {
        e->pcount[i] = 0;
        e->own_buf[i] = false;
        if (!e->zero_debias && ib_params_kind(p, i) == IB_PARAM_TRAINABLE)
            memcpy(e->shadow + ib_params_offset(p, i), ib_params_value(p, i),
                   (size_t)ib_params_numel(p, i) * sizeof(float));
    }
    e->n_known = count;
    return IB_OK;
}

ib_ema *ib_ema_new(ib_params *p, float decay, bool zero_debias)
{
    if (!p || !(decay >= 0.0f && decay < 1.0f)) {
        ib__error(IB_ERR_ARG, "ib_ema_new: need a parameter store and a decay in [0, 1)");
        return NULL;
    }
    ib_ema *e = calloc(1, sizeof *e);
    if (!e) {
        ib__error(IB_ERR_NOMEM, "ib_ema_new: out of memory");
        return NULL;
    }
    e->p = p;
    e->decay = decay;
    e->zero_debias = zero_debias;
    if (sync(e) != IB_OK) {
        ib_ema_free(e);
        return NULL;
    }
    return e;
}

void ib_ema_free(ib_ema *e)
{
    if (!e)
        return;
    ib__aligned_free(e->shadow);
    ib__aligned_free(e->backup);
    free(e->pcount);
    free(e->own_buf);
    free(e->piece);
    free(e);
}

ib_status ib_ema_update(ib_ema *e)
{
    if (!e)
        return ib__error(IB_ERR_ARG, "ib_ema_update: NULL EMA");
    if (e->swapped)
        return ib__error(IB_ERR_STATE, "ib_ema_update: the store holds the averages; swap back first");
    ib_status s = sync(e);
    if (s != IB_OK)
        return s;
    ib_params *p = e->p;
    int count = ib_params_count(p);
    int64_t need = 0, floats = 0;
    for (int i = 0; i < count; i++)
        if (averaged(p, i))
            need += (ib_params_numel(p, i) + EMA_CHUNK - 1) / EMA_CHUNK;
    if (need > e->piece_cap) {
        int64_t(*pc)[2] = realloc(e->piece, (size_t)need * sizeof *pc);
        if (!pc)
            return ib__error(IB_ERR_NOMEM, "ib_ema_update: out of memory");
        e->piece = pc;
        e->piece_cap = need;
    }
    int64_t np = 0;
    for (int i = 0; i < count; i++) {
        if (!averaged(p, i))
            continue;
        int64_t off = ib_params_offset(p, i), n = ib_params_numel(p, i);
        for (int64_t lo = 0; lo < n; lo += EMA_CHUNK) {
            e->piece[np][0] = off + lo;
            e->piece[np][1] = off + (lo + EMA_CHUNK < n ? lo + EMA_CHUNK : n);
            np++;
        }
        floats += n;
        e->pcount[i]++;
    }
    const float *v = ib_params_values(p);
    float *sh = e->shadow;
    /* 1 - decay is exact in float32 for decay in [0.5, 1) (Sterbenz). */
    float rate = 1.0f - e->decay;
#pragma omp parallel for schedule(static) if (floats >= IB_PAR_MIN)
    for (int64_t q = 0; q < np; q++) {
        int64_t lo = e->piece[q][0], hi = e->piece[q][1];
#pragma omp simd
        for (int64_t k = lo; k < hi; k++)
            sh[k] = ib__ema_step(sh[k], v[k], rate);
    }
    e->updates++;
    return IB_OK;
}

float *ib__ema_fused_begin(ib_ema *e, float *rate)
{
    if (!e || e->swapped || sync(e) != IB_OK)
        return NULL;
    *rate = 1.0f - e->decay; /* as ib_ema_update */
    return e->shadow;
}

void ib__ema_fused_end(ib_ema *e)
{
    for (int i = 0; i < ib_params_count(e->p); i++)
        if (averaged(e->p, i))
            e->pcount[i]++;
    e->updates++;
}

ib_status ib_ema_swap(ib_ema *e)
{
    if (!e)
        return ib__error(IB_ERR_ARG, "ib_ema_swap: NULL EMA");
    ib_params *p = e->p;
    if (e->swapped) {
        /* Parameters added while swapped were never swapped out.  Buffers
         * come back too: the training network's statistics. */
        float *values = ib_params_values(p);
        for (int i = 0; i < e->n_swapped; i++) {
            int64_t off = ib_params_offset(p, i);
            memcpy(values + off, e->backup + off, (size_t)ib_params_numel(p, i) * sizeof(float));
        }
        e->swapped = false;
        return IB_OK;
    }
    ib_status s = sync(e);
    if (s != IB_OK)
        return s;
    if (!e->backup) {
        e->backup = ib__aligned_alloc((size_t)e->len * sizeof(float));
        if (!e->backup)
            return ib__error(IB_ERR_NOMEM, "ib_ema_swap: cannot allocate %lld floats", (long long)e->len);
        memset(e->backup, 0, (size_t)e->len * sizeof(float));
    }
    float *values = ib_params_values(p);
    for (int i = 0; i < e->n_known; i++) {
        int64_t off = ib_params_offset(p, i), n = ib_params_numel(p, i);
        float *w = values + off, *b = e->backup + off;
        const float *sh = e->shadow + off;
        memcpy(b, w, (size_t)n * sizeof(float));
        if (ib_params_kind(p, i) != IB_PARAM_TRAINABLE) {
            if (e->own_buf[i]) /* the averaged network's own statistics */
                memcpy(w, sh, (size_t)n * sizeof(float));
            continue;
        }
        if (ib_params_frozen(p, i))
            continue; /* not averaged: keeps its value */
        if (e->zero_debias) {
            if (e->pcount[i] == 0)
                continue; /* no average yet */
            /* TF divides the float32 shadow by 1 - decay^t in float32;
             * the factor is formed in double and rounded once. */
            float bias = (float)(1.0 - pow((double)e->decay, (double)e->pcount[i]));
#pragma omp parallel for simd schedule(static) if (n >= IB_PAR_MIN)
            for (int64_t k = 0; k < n; k++)
                w[k] = sh[k] / bias;
        } else {
            memcpy(w, sh, (size_t)n * sizeof(float));
        }
    }
    e->n_swapped = e->n_known;
    e->swapped = true;
    return IB_OK;
}

bool ib_ema_swapped(const ib_ema *e) { return e && e->swapped; }

ib_status ib_ema_keep_buffer(ib_ema *e, int i)
{
    if (!e)
        return ib__error(IB_ERR_ARG, "ib_ema_keep_buffer: NULL EMA");
    if (!e->swapped)
        return ib__error(IB_ERR_STATE, "ib_ema_keep_buffer: the store holds the training values; swap first");
    if (i < 0 || i >= e->n_swapped || ib_params_kind(e->p, i) != IB_PARAM_BUFFER)
        return ib__error(IB_ERR_ARG, "ib_ema_keep_buffer: parameter %d is not a buffer swapped out", i);
    memcpy(e->shadow + ib_params_offset(e->p, i), ib_params_value(e->p, i),
           (size_t)ib_params_numel(e->p, i) * sizeof(float));
    e->own_buf[i] = true;
    return IB_OK;
}

bool ib_ema_has_buffer(const ib_ema *e, int i)
{
    return e && i >= 0 && i < e->n_known && e->own_buf[i];
}

void ib_ema_set_has_buffer(ib_ema *e, int i, bool has)
{
    if (!e || sync(e) != IB_OK || i < 0 || i >= e->n_known)
        return;
    e->own_buf[i] = has && ib_params_kind(e->p, i) == IB_PARAM_BUFFER;
}

float *ib_ema_shadow(ib_ema *e)
{
    if (!e || sync(e) != IB_OK)
        return NULL;
    return e->shadow;
}

int64_t ib_ema_updates(const ib_ema *e) { return e ? e->updates : 0; }

void ib_ema_set_updates(ib_ema *e, int64_t t)
{
    if (!e || t < 0 || sync(e) != IB_OK)
        return;
    e->updates = t;
    for (int i = 0; i < e->n_known; i++)
        e->pcount[i] = t;
}

float ib_ema_decay(const ib_ema *e) { return e ? e->decay : 0.0f; }

bool ib_ema_zero_debias(const ib_ema *e) { return e && e->zero_debias; }

int64_t ib_ema_param_updates(const ib_ema *e, int i)
{
    return e && i >= 0 && i < e->n_known ? e->pcount[i] : 0;
}

void ib_ema_set_param_updates(ib_ema *e, int i, int64_t t)
{
    if (!e || t < 0 || sync(e) != IB_OK || i < 0 || i >= e->n_known)
        return;
    e->pcount[i] = t;
}
