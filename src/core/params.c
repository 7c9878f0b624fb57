/*
 * params.c — the parameter store.  All values of a model live in one
 * contiguous buffer and all gradients in another (each parameter starts on
 * a 64-byte boundary), so an optimizer step, a checkpoint write, a NaN
 * check or an MPI allreduce is one loop over one buffer.
 */
#include "internal.h"

#include <math.h>

typedef struct param_info {
    char name[IB_NAME_MAX];
    int ndim;
    int64_t shape[IB_MAX_DIMS];
    int64_t numel;
    int64_t offset; /* in floats */
    ib_param_kind kind;
    bool frozen;
} param_info;

struct ib_params {
    uint64_t seed;
    param_info *info;
    int count, cap;
    float *values, *grads;
    int64_t total, capacity; /* floats used / allocated */
};

#define FLOATS_PER_LINE (IB_ALIGN / (int64_t)sizeof(float))

ib_params *ib_params_new(uint64_t seed)
{
    ib_params *p = calloc(1, sizeof *p);
    if (p)
        p->seed = seed;
    return p;
}

void ib_params_free(ib_params *p)
{
    if (!p)
        return;
    free(p->info);
    ib__aligned_free(p->values);
    ib__aligned_free(p->grads);
    free(p);
}

int ib_params_find(const ib_params *p, const char *name)
{
    for (int i = 0; p && i < p->count; i++)
        if (strcmp(p->info[i].name, name) == 0)
            return i;
    return -1;
}

static void fans(const param_info *pi, double *fan_in, double *fan_out)
{
    double receptive = 1;
    for (int d = 2; d < pi->ndim; d++)
        receptive *= (double)pi->shape[d];
    /* a scalar parameter has fans of 1 (PyTorch refuses; we stay finite) */
    *fan_in = pi->ndim >= 2 ? (double)pi->shape[1] * receptive : pi->ndim == 1 ? (double)pi->shape[0] : 1.0;
    *fan_out = pi->ndim >= 1 ? (double)pi->shape[0] * receptive : 1.0;
}

/* The truncated normal: a standard normal value beyond +-2 is drawn again,
 * element by element from the draws of steps 1, 2, ... of the same stream,
 * so the result depends only on (seed, name).  About 4.6 % of the values
 * are redrawn per round; after 64 rounds (never reached in practice) a
 * straggler is clamped rather than looping on. */
static void redraw_tails(uint64_t seed, uint64_t stream, float *v, int64_t n)
{
    int64_t out = 0;
    for (int64_t k = 0; k < n; k++)
        out += fabsf(v[k]) > 2.0f;
    float *t = out ? malloc((size_t)n * sizeof *t) : NULL;
    for (uint64_t step = 1; out > 0 && t && step <= 64; step++) {
        ib_rng_normal(seed, stream, step, t, n);
        out = 0;
        for (int64_t k = 0; k < n; k++)
            if (fabsf(v[k]) > 2.0f) {
                v[k] = t[k];
                out += fabsf(v[k]) > 2.0f;
            }
    }
    free(t);
    for (int64_t k = 0; k < n; k++) /* only if the memory ran out or 64 rounds did not do */
        v[k] = fminf(fmaxf(v[k], -2.0f), 2.0f);
}

static void initialise(ib_params *p, int idx, ib_init init)
{
    param_info *pi = &p->info[idx];
    float *v = p->values + pi->offset;
    int64_t n = pi->numel;
    uint64_t stream = ib_rng_stream_of(pi->name);
    double fan_in, fan_out;
    fans(pi, &fan_in, &fan_out);
    double lo = 0, hi = 0, mean = 0, std = 0;
    bool uniform = true;
    switch (init.kind) {
    case IB_INIT_ZEROS: lo = hi = 0; break;
    case IB_INIT_ONES: lo = hi = 1; break;
    case IB_INIT_CONSTANT: lo = hi = init.a; break;
    case IB_INIT_UNIFORM: lo = init.a; hi = init.b; break;
    case IB_INIT_NORMAL:
    case IB_INIT_TRUNC_NORMAL: uniform = false; mean = init.a; std = init.b; break;
    case IB_INIT_KAIMING_UNIFORM: {
        double gain = sqrt(2.0 / (1.0 + (double)init.a * init.a));
        hi = gain * sqrt(3.0 / fan_in);
        lo = -hi;
        break;
    }
    case IB_INIT_KAIMING_NORMAL: {
        double gain = sqrt(2.0 / (1.0 + (double)init.a * init.a));
        uniform = false;
        std = gain / sqrt(fan_in);
        break;
    }
    case IB_INIT_XAVIER_UNIFORM: {
        double gain = init.a == 0 ? 1.0 : init.a;
        hi = gain * sqrt(6.0 / (fan_in + fan_out));
        lo = -hi;
        break;
    }
    case IB_INIT_XAVIER_NORMAL: {
        double gain = init.a == 0 ? 1.0 : init.a;
        uniform = false;
        std = gain * sqrt(2.0 / (fan_in + fan_out));
        break;
    }
    }
    if (uniform) {
        if (lo == hi) {
            for (int64_t k = 0; k < n; k++)
                v[k] = (float)lo;
            return;
        }
        ib_rng_uniform(p->seed, stream, 0, v, n);
        for (int64_t k = 0; k < n; k++)
            v[k] = (float)(lo + (hi - lo) * v[k]);
    } else {
        ib_rng_normal(p->seed, stream, 0, v, n);
        if (init.kind == IB_INIT_TRUNC_NORMAL)
            redraw_tails(p->seed, stream, v, n);
        for (int64_t k = 0; k < n; k++)
            v[k] = (float)(mean + std * v[k]);
    }
}

static ib_status grow(ib_params *p, int64_t need)
{
    if (need <= p->capacity)
        return IB_OK;
    int64_t cap = p->capacity ? p->capacity : 4096;
    while (cap < need)
        cap *= 2;
    float *v = ib__aligned_alloc((size_t)cap * sizeof(float));
    float *g = ib__aligned_alloc((size_t)cap * sizeof(float));
    if (!v || !g) {
        ib__aligned_free(v);
        ib__aligned_free(g);
        return ib__error(IB_ERR_NOMEM, "parameter store: cannot allocate %lld floats", (long long)cap);
    }
    /* Only [0, total) is copied; what lies beyond is zeroed as parameters
     * are appended, so the spare capacity is never touched (never made
     * resident: LeNet's store would otherwise hold 3.5 MiB of zeros). */
    if (p->total) {
        memcpy(v, p->values, (size_t)p->total * sizeof(float));
        memcpy(g, p->grads, (size_t)p->total * sizeof(float));
    }
    ib__aligned_free(p->values);
    ib__aligned_free(p->grads);
    p->values = v;
    p->grads = g;
    p->capacity = cap;
    return IB_OK;
}

int ib_params_get(ib_params *p, const char *name, int ndim, const int64_t *shape, ib_init init,
                  ib_param_kind kind)
{
    if (!p || !name || !*name || ndim < 0 || ndim > IB_MAX_DIMS || (ndim > 0 && !shape))
        return ib__error(IB_ERR_ARG, "ib_params_get: bad argument for parameter '%s'", name ? name : "(null)");
    if (strlen(name) >= IB_NAME_MAX)
        return ib__error(IB_ERR_ARG, "parameter name '%s' is longer than %d characters", name, IB_NAME_MAX - 1);
    for (int d = 0; d < ndim; d++)
        if (shape[d] <= 0)
            return ib__error(IB_ERR_ARG, "parameter '%s': dimension %d is %lld", name, d, (long long)shape[d]);
    int found = ib_params_find(p, name);
    if (found >= 0) {
        param_info *pi = &p->info[found];
        bool same = pi->ndim == ndim;
        for (int d = 0; same && d < ndim; d++)
            same = pi->shape[d] == shape[d];
        if (!same)
            return ib__error(IB_ERR_SHAPE, "parameter '%s' exists with another shape", name);
        return found;
    }
    if (p->count == p->cap) {
        int cap = p->cap ? p->cap * 2 : 32;
        param_info *info = realloc(p->info, (size_t)cap * sizeof *info);
        if (!info)
            return ib__error(IB_ERR_NOMEM, "parameter store: out of memory");
        p->info = info;
        p->cap = cap;
    }
    int64_t numel = ib__numel(ndim, shape);
    int64_t offset = (p->total + FLOATS_PER_LINE - 1) / FLOATS_PER_LINE * FLOATS_PER_LINE;
    ib_status s = grow(p, offset + numel);
    if (s != IB_OK)
        return s;
    param_info *pi = &p->info[p->count];
    memset(pi, 0, sizeof *pi);
    snprintf(pi->name, sizeof pi->name, "%s", name);
    pi->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        pi->shape[d] = shape[d];
    pi->numel = numel;
    pi->offset = offset;
    pi->kind = kind;
    /* Padding between parameters stays zero in both buffers. */
    memset(p->values + p->total, 0, (size_t)(offset + numel - p->total) * sizeof(float));
    memset(p->grads + p->total, 0, (size_t)(offset + numel - p->total) * sizeof(float));
    p->total = offset + numel;
    p->count++;
    initialise(p, p->count - 1, init);
    return p->count - 1;
}

int ib_params_count(const ib_params *p) { return p ? p->count : 0; }
const char *ib_params_name(const ib_params *p, int i) { return p->info[i].name; }
int ib_params_ndim(const ib_params *p, int i) { return p->info[i].ndim; }
const int64_t *ib_params_shape(const ib_params *p, int i) { return p->info[i].shape; }
int64_t ib_params_numel(const ib_params *p, int i) { return p->info[i].numel; }
ib_param_kind ib_params_kind(const ib_params *p, int i) { return p->info[i].kind; }
float *ib_params_value(ib_params *p, int i) { return p->values + p->info[i].offset; }
float *ib_params_grad(ib_params *p, int i) { return p->grads + p->info[i].offset; }
int64_t ib_params_offset(const ib_params *p, int i) { return p->info[i].offset; }
float *ib_params_values(ib_params *p) { return p->values; }
float *ib_params_grads(ib_params *p) { return p->grads; }
int64_t ib_params_total(const ib_params *p) { return p->total; }
float *ib__params_value_ptr(ib_params *p, int i) { return ib_params_value(p, i); }
float *ib__params_grad_ptr(ib_params *p, int i) { return ib_params_grad(p, i); }

int64_t ib_params_trainable_total(const ib_params *p)
{
    int64_t t = 0;
    for (int i = 0; i < p->count; i++)
        if (p->info[i].kind == IB_PARAM_TRAINABLE)
            t += p->info[i].numel;
    return t;
}

void ib_params_zero_grad(ib_params *p)
{
    if (p && p->total)
        memset(p->grads, 0, (size_t)p->total * sizeof(float));
}

int ib_params_freeze(ib_params *p, const char *prefix, bool frozen)
{
    int matched = 0;
    if (!p)
        return 0;
    if (!prefix)
        prefix = "";
    size_t len = strlen(prefix);
    for (int i = 0; i < p->count; i++)
        if (strncmp(p->info[i].name, prefix, len) == 0) {
            p->info[i].frozen = frozen;
            matched++;
        }
    return matched;
}

bool ib_params_frozen(const ib_params *p, int i) { return p->info[i].frozen || p->info[i].kind == IB_PARAM_BUFFER; }

ib_status ib_params_copy_values(ib_params *dst, const ib_params *src)
{
    if (dst->count != src->count)
        return ib__error(IB_ERR_MISMATCH, "parameter stores differ: %d vs %d parameters", dst->count, src->count);
    for (int i = 0; i < src->count; i++) {
        const param_info *a = &src->info[i], *b = &dst->info[i];
        if (strcmp(a->name, b->name) != 0 || a->numel != b->numel)
            return ib__error(IB_ERR_MISMATCH, "parameter %d differs: '%s' vs '%s'", i, a->name, b->name);
    }
    memcpy(dst->values, src->values, (size_t)src->total * sizeof(float));
    return IB_OK;
}

ib_status ib_params_check_finite(const ib_params *p)
{
    for (int i = 0; i < p->count; i++) {
        const param_info *pi = &p->info[i];
        const float *v = p->values + pi->offset, *g = p->grads + pi->offset;
        for (int64_t k = 0; k < pi->numel; k++) {
            if (!isfinite(v[k]))
                return ib__error(IB_ERR_NUMERIC, "parameter '%s' has a non-finite value at element %lld", pi->name, (long long)k);
            if (!isfinite(g[k]))
                return ib__error(IB_ERR_NUMERIC, "parameter '%s' has a non-finite gradient at element %lld", pi->name, (long long)k);
        }
    }
    return IB_OK;
}
