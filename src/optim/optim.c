/*
 * optim.c — SGD (momentum, dampening, Nesterov, L2 weight decay), Adam and
 * AdamW over a parameter store, with global gradient-norm clipping.
 *
 * The arithmetic follows PyTorch 1.13's single-tensor code (the CPU default)
 * operation by operation in float32, fusing the multiply-adds its AVX2
 * kernels fuse, so a run here reproduces a PyTorch run bit for bit (the
 * test checks 5-step trajectories).  Scalars PyTorch keeps as Python doubles
 * (1 - beta, bias corrections, lr / bias correction) are computed in double
 * from the decimal the caller meant (0.999f -> 0.999) and rounded to float
 * where PyTorch rounds them.
 *
 * State buffers are laid out like the store's value buffer so a checkpoint
 * writes each as one block.  The store may grow after the optimizer is made:
 * state is grown (zero-filled) at the next step, and each parameter keeps
 * its own update count, as PyTorch keeps `step` per parameter.
 *
 * A step is ONE parallel region over the store's contiguous buffers, cut
 * into segments of at most NORM_CHUNK floats of one parameter: the
 * squared norm of each segment (partial sums added in a fixed order, per
 * parameter and then over parameters, so the norm does not depend on the
 * thread count), a single thread's check (the NaN/Inf check, so nothing is
 * written before a bad gradient is found) and clipping factor, then the
 * fused update of each segment.  A region per parameter (two with the
 * norm) cost more than the arithmetic on small layers, and much more with
 * libgomp's spinning threads on a loaded machine.
 */
#include "core/internal.h"

#include <math.h>

#if defined(__AVX__) && defined(__FMA__)
#define ADAM_AVX 1
#include <immintrin.h>
#endif

/* Fixed chunk of the gradient-norm reduction: partial sums are taken per
 * chunk and added in order, so the norm does not depend on the thread count. */
#define NORM_CHUNK 16384

/* A piece of one parameter's slice of the store: [lo, hi) in floats. */
typedef struct segment {
    int64_t lo, hi;
    int param;
} segment;

/* The scalars of one parameter's update this step (they depend on its own
 * update count); see the loops below for their meaning. */
typedef struct param_step {
    float l2, decay, bc2_sqrt, neg_step; /* Adam/AdamW */
    bool first;                          /* SGD momentum: first update of this parameter */
} param_step;

struct ib_optim {
    ib_params *p;
    ib_optim_config cfg;
    /* The config's scalars as the decimals they stand for (see as_decimal). */
    double lr, momentum, dampening, wd, beta1, beta2, eps;
    int64_t steps;
    int n_state;
    float *state[2];
    int64_t state_len;    /* floats in each state buffer (= store total when synced) */
    int64_t *pstep;       /* per-parameter update counts */
    int n_known, pstep_cap;
    double *partial;      /* per-segment partial sums of the norm reduction */
    int64_t partial_cap;
    struct segment *seg;  /* this step's work list (see plan) */
    int64_t seg_cap;
    struct param_step *ps; /* per-parameter scalars of this step */
    int ps_cap;
    float grad_norm;      /* global norm of the last step's gradients, before clipping */
    ib_ema *ema;          /* ib__optim_set_ema: averaged in the update's pass */
    float *ema_shadow;    /* during a step with a fused EMA: its shadow, and the rate */
    float ema_rate;
    bool zero_grads;      /* ib__optim_set_zero_grads */
};


ib_optim_config ib_optim_defaults(ib_optim_kind kind)
{
    ib_optim_config c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.lr = kind == IB_OPTIM_SGD ? 0.01f : kind == IB_OPTIM_ADAMAX ? 2e-3f : 1e-3f;
    c.beta1 = 0.9f;
    c.beta2 = 0.999f;
    c.eps = 1e-8f;
    c.weight_decay = kind == IB_OPTIM_ADAMW ? 0.01f : 0.0f;
    return c;
}

static void set_scalars(ib_optim *o)
{
    o->lr = ib__as_decimal(o->cfg.lr);
    o->momentum = ib__as_decimal(o->cfg.momentum);
    o->dampening = ib__as_decimal(o->cfg.dampening);
    o->wd = ib__as_decimal(o->cfg.weight_decay);
    o->beta1 = ib__as_decimal(o->cfg.beta1);
    o->beta2 = ib__as_decimal(o->cfg.beta2);
    o->eps = ib__as_decimal(o->cfg.eps);
}

static bool valid_config(const ib_optim_config *c)
{
    const char *why = NULL;
    if (c->kind != IB_OPTIM_SGD && c->kind != IB_OPTIM_ADAM && c->kind != IB_OPTIM_ADAMW &&
        c->kind != IB_OPTIM_ADAMAX)
        why = "unknown kind";
    else if (!(c->lr >= 0.0f) || !isfinite(c->lr))
        why = "lr must be finite and >= 0";
    else if (!(c->weight_decay >= 0.0f) || !isfinite(c->weight_decay))
        why = "weight_decay must be finite and >= 0";
    else if (!(c->clip_grad_norm >= 0.0f) || !isfinite(c->clip_grad_norm))
        why = "clip_grad_norm must be finite and >= 0 (0 = off)";
    else if (c->kind == IB_OPTIM_SGD) {
        if (!(c->momentum >= 0.0f && c->momentum < INFINITY))
            why = "momentum must be finite and >= 0";
        else if (!(c->dampening >= 0.0f && c->dampening <= 1.0f))
            why = "dampening must be in [0, 1]";
        else if (c->nesterov && (c->momentum <= 0.0f || c->dampening != 0.0f))
            why = "nesterov needs momentum > 0 and zero dampening";
    } else {
        if (!(c->beta1 >= 0.0f && c->beta1 < 1.0f) || !(c->beta2 >= 0.0f && c->beta2 < 1.0f))
            why = "betas must be in [0, 1)";
        else if (!(c->eps >= 0.0f) || !isfinite(c->eps))
            why = "eps must be finite and >= 0";
    }
    if (why)
        ib__error(IB_ERR_ARG, "ib_optim_new: %s", why);
    return why == NULL;
}

/* Grow the state buffers and per-parameter counts to the store's size
 * (new parameters start with zero state and no updates). */
static ib_status sync(ib_optim *o)
{
    int64_t total = ib_params_total(o->p);
    if (total == o->state_len && ib_params_count(o->p) == o->n_known)
        return IB_OK;
    if (total > o->state_len) {
        for (int k = 0; k < o->n_state; k++) {
            float *s = ib__aligned_alloc((size_t)total * sizeof(float));
            if (!s)
                return ib__error(IB_ERR_NOMEM, "optimizer: cannot allocate state of %lld floats", (long long)total);
            if (o->state_len)
                memcpy(s, o->state[k], (size_t)o->state_len * sizeof(float));
            memset(s + o->state_len, 0, (size_t)(total - o->state_len) * sizeof(float));
            ib__aligned_free(o->state[k]);
            o->state[k] = s;
        }
        o->state_len = total;
    }
    int count = ib_params_count(o->p);
    if (count > o->pstep_cap) {
        int64_t *ps = realloc(o->pstep, (size_t)count * sizeof *ps);
        if (!ps)
            return ib__error(IB_ERR_NOMEM, "optimizer: out of memory");
        o->pstep = ps;
        o->pstep_cap = count;
    }
    for (int i = o->n_known; i < count; i++)
        o->pstep[i] = 0;
    o->n_known = count;
    return IB_OK;
}

ib_optim *ib_optim_new(ib_params *p, const ib_optim_config *cfg)
{
    if (!p || !cfg) {
        ib__error(IB_ERR_ARG, "ib_optim_new: NULL %s", p ? "config" : "parameter store");
        return NULL;
    }
    if (!valid_config(cfg))
        return NULL;
    ib_optim *o = calloc(1, sizeof *o);
    if (!o) {
        ib__error(IB_ERR_NOMEM, "ib_optim_new: out of memory");
        return NULL;
    }
    o->p = p;
    o->cfg = *cfg;
    if (cfg->kind != IB_OPTIM_SGD) {
        o->cfg.momentum = o->cfg.dampening = 0.0f;
        o->cfg.nesterov = false;
    }
    set_scalars(o);
    o->n_state = cfg->kind == IB_OPTIM_SGD ? (cfg->momentum != 0.0f ? 1 : 0) : 2;
    if (sync(o) != IB_OK) {
        ib_optim_free(o);
        return NULL;
    }
    return o;
}

void ib_optim_free(ib_optim *o)
{
    if (!o)
        return;
    for (int k = 0; k < 2; k++)
        ib__aligned_free(o->state[k]);
    free(o->pstep);
    free(o->partial);
    free(o->seg);
    free(o->ps);
    free(o);
}

static bool updated(const ib_params *p, int i)
{
    return ib_params_kind(p, i) == IB_PARAM_TRAINABLE && !ib_params_frozen(p, i);
}

/* The work list of a step: every parameter an update touches, cut at
 * NORM_CHUNK from its start (the chunks the norm has always been summed
 * in, so the norm keeps its bits).  Rebuilt each step (a freeze may change
 * between steps); it costs one entry per 16k floats and allocates only
 * when the store has grown.  Returns the number of segments, or -1
 * without memory. */
static int64_t plan(ib_optim *o, int64_t *floats)
{
    ib_params *p = o->p;
    int count = ib_params_count(p);
    int64_t need = 0; /* sized for every parameter, so that unfreezing one allocates nothing */
    *floats = 0;
    for (int i = 0; i < count; i++)
        need += (ib_params_numel(p, i) + NORM_CHUNK - 1) / NORM_CHUNK;
    if (need > o->seg_cap || need > o->partial_cap) {
        segment *sg = realloc(o->seg, (size_t)(need ? need : 1) * sizeof *sg);
        if (sg)
            o->seg = sg;
        double *pa = sg ? realloc(o->partial, (size_t)(need ? need : 1) * sizeof *pa) : NULL;
        if (!sg || !pa)
            return -1;
        o->partial = pa;
        o->seg_cap = o->partial_cap = need;
    }
    if (count > o->ps_cap) {
        param_step *ps = realloc(o->ps, (size_t)count * sizeof *ps);
        if (!ps)
            return -1;
        o->ps = ps;
        o->ps_cap = count;
    }
    int64_t k = 0;
    for (int i = 0; i < count; i++) {
        if (!updated(p, i))
            continue;
        int64_t off = ib_params_offset(p, i), n = ib_params_numel(p, i);
        for (int64_t lo = 0; lo < n; lo += NORM_CHUNK)
            o->seg[k++] = (segment){off + lo, off + (lo + NORM_CHUNK < n ? lo + NORM_CHUNK : n), i};
        *floats += n;
    }
    return k;
}

static double sum_squares(const float *g, int64_t lo, int64_t hi)
{
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t k = lo; k < hi; k++)
        s += (double)g[k] * (double)g[k];
    return s;
}

/* The total from the segments' partial sums: per parameter in order, then
 * over parameters in order.  On a non-finite sum, the first parameter
 * whose own sum is non-finite (squares of finite floats summed in double
 * cannot overflow, so it holds a non-finite element). */
static double total_of(const ib_optim *o, int64_t nseg, int *bad_param)
{
    double total = 0, s = 0;
    *bad_param = -1;
    for (int64_t k = 0; k < nseg; k++) {
        s += o->partial[k];
        if (k + 1 == nseg || o->seg[k + 1].param != o->seg[k].param) {
            if (!isfinite(s) && *bad_param < 0)
                *bad_param = o->seg[k].param;
            total += s;
            s = 0;
        }
    }
    return total;
}

static ib_status non_finite_error(ib_params *p, int i)
{
    const float *g = ib_params_grads(p) + ib_params_offset(p, i);
    int64_t n = ib_params_numel(p, i), k = 0;
    while (k < n && isfinite(g[k]))
        k++;
    return ib__error(IB_ERR_NUMERIC, "ib_optim_step: gradient of parameter '%s' is %s at element %lld; no update done",
                     ib_params_name(p, i), k < n && isnan(g[k]) ? "NaN" : "infinite", (long long)k);
}

/* ---- the update loops: one fused pass per segment ----
 * Every expression mirrors PyTorch's CPU kernels, which fuse a multiply-add
 * where the op has a scalar factor (checked bit for bit against torch):
 *   add(x, alpha=a) is fma(a, x, self), addcmul(t1, t2, value=v) is
 *   fma(v*t1, t2, self), addcdiv(t1, t2, value=v) is self + (v*t1)/t2.
 * fmaf is one instruction where the build has FMA (the default flags).
 * With clipping the gradient is scaled by coef as it is read and written
 * back.  The loops are branch-free so they vectorise: a zero weight decay
 * adds 0*w and AdamW's factor is 1 for Adam, both exact for finite w.
 * The SGD loops are spelled twice, with and without the write-back. */
#define IB_SIMD_LOOP _Pragma("omp simd")

#define SGD_PLAIN_LOOP(CLIP)                                                                                           \
    IB_SIMD_LOOP for (int64_t k = lo; k < hi; k++)                                                                     \
    {                                                                                                                  \
        float d = g[k];                                                                                                \
        if (CLIP)                                                                                                      \
            g[k] = d = d * coef;                                                                                       \
        d = fmaf(wd, w[k], d);                                                                                         \
        w[k] = fmaf(neg_lr, d, w[k]);                                                                                  \
    }

static void sgd_plain(float *restrict w, float *restrict g, int64_t lo, int64_t hi, float coef, bool clip,
                      float wd, float neg_lr)
{
    if (clip)
        SGD_PLAIN_LOOP(1)
    else
        SGD_PLAIN_LOOP(0)
}

/* Branch-free so every case vectorises (GCC unswitches the selects and then
 * vectorises only some of the copies):
 *  - PyTorch's first step copies d into the buffer: there mom = 0 and
 *    one_minus_damp = 1, and fma(1, d, buf*0) = d exactly;
 *  - Nesterov uses fma(mom, b, d); plain momentum uses b = fma(1, b, d*0). */
#define SGD_MOMENTUM_LOOP(CLIP)                                                                                        \
    IB_SIMD_LOOP for (int64_t k = lo; k < hi; k++)                                                                     \
    {                                                                                                                  \
        float d = g[k];                                                                                                \
        if (CLIP)                                                                                                      \
            g[k] = d = d * coef;                                                                                       \
        d = fmaf(wd, w[k], d);                                                                                         \
        float b = fmaf(one_minus_damp, d, buf[k] * mom);                                                               \
        buf[k] = b;                                                                                                    \
        d = fmaf(out_b, b, d * out_d);                                                                                 \
        w[k] = fmaf(neg_lr, d, w[k]);                                                                                  \
    }

static void sgd_momentum(float *restrict w, float *restrict g, float *restrict buf, int64_t lo, int64_t hi,
                         float coef, bool clip, float wd, float momentum, float dampening_complement, bool first,
                         bool nesterov, float neg_lr)
{
    const float mom = first ? 0.0f : momentum, one_minus_damp = first ? 1.0f : dampening_complement;
    const float out_b = nesterov ? momentum : 1.0f, out_d = nesterov ? 1.0f : 0.0f;
    if (clip)
        SGD_MOMENTUM_LOOP(1)
    else
        SGD_MOMENTUM_LOOP(0)
}

typedef struct adam_args {
    float *restrict w, *restrict g, *restrict m, *restrict v;
    float coef, l2, decay, b1, omb1, b2, omb2, bc2_sqrt, eps, neg_step;
    bool clip, wide; /* wide: take the AVX-512 path (ib__cpu_avx512) */
} adam_args;

#ifdef ADAM_AVX
/* The AVX-512 form of the loop below, 16 lanes: the same operations per
 * element in the same order, so its results equal the AVX2 path's bit for
 * bit (test_optim).  Compiled for AVX-512F alone, called only where the CPU
 * has it; returns the first element it left to the narrower loops. */
__attribute__((target("avx512f"))) static int64_t adam_range_avx512(const adam_args *a, int64_t lo, int64_t hi)
{
    float *restrict w = a->w, *restrict g = a->g, *restrict m = a->m, *restrict v = a->v;
    const __m512 coef = _mm512_set1_ps(a->coef), l2 = _mm512_set1_ps(a->l2), decay = _mm512_set1_ps(a->decay);
    const __m512 b1 = _mm512_set1_ps(a->b1), omb1 = _mm512_set1_ps(a->omb1);
    const __m512 b2 = _mm512_set1_ps(a->b2), omb2 = _mm512_set1_ps(a->omb2);
    const __m512 bc2 = _mm512_set1_ps(a->bc2_sqrt), eps = _mm512_set1_ps(a->eps), ns = _mm512_set1_ps(a->neg_step);
    int64_t k = lo;
    for (; k + 16 <= hi; k += 16) {
        __m512 d = _mm512_loadu_ps(g + k);
        if (a->clip) {
            d = _mm512_mul_ps(d, coef);
            _mm512_storeu_ps(g + k, d);
        }
        __m512 x = _mm512_loadu_ps(w + k);
        d = _mm512_fmadd_ps(l2, x, d);
        x = _mm512_mul_ps(x, decay);
        __m512 mk = _mm512_fmadd_ps(omb1, d, _mm512_mul_ps(_mm512_loadu_ps(m + k), b1));
        __m512 vk = _mm512_fmadd_ps(_mm512_mul_ps(omb2, d), d, _mm512_mul_ps(_mm512_loadu_ps(v + k), b2));
        _mm512_storeu_ps(m + k, mk);
        _mm512_storeu_ps(v + k, vk);
        __m512 denom = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vk), bc2), eps);
        _mm512_storeu_ps(w + k, _mm512_add_ps(x, _mm512_div_ps(_mm512_mul_ps(ns, mk), denom)));
    }
    return k;
}
#endif

/* GCC will not vectorise sqrtf under the default -fmath-errno (and no
 * function attribute lifts that), so the AVX path is written with
 * intrinsics: the same float32 operations in the same order as the scalar
 * loop, which handles the tail and other CPUs. */

static void adam_range(const adam_args *a, int64_t lo, int64_t hi)
{
    float *restrict w = a->w, *restrict g = a->g, *restrict m = a->m, *restrict v = a->v;
    int64_t k = lo;
#ifdef ADAM_AVX
    if (a->wide)
        k = adam_range_avx512(a, lo, hi);
    const __m256 coef = _mm256_set1_ps(a->coef), l2 = _mm256_set1_ps(a->l2), decay = _mm256_set1_ps(a->decay);
    const __m256 b1 = _mm256_set1_ps(a->b1), omb1 = _mm256_set1_ps(a->omb1);
    const __m256 b2 = _mm256_set1_ps(a->b2), omb2 = _mm256_set1_ps(a->omb2);
    const __m256 bc2 = _mm256_set1_ps(a->bc2_sqrt), eps = _mm256_set1_ps(a->eps), ns = _mm256_set1_ps(a->neg_step);
    for (; k + 8 <= hi; k += 8) {
        __m256 d = _mm256_loadu_ps(g + k);
        if (a->clip) {
            d = _mm256_mul_ps(d, coef);
            _mm256_storeu_ps(g + k, d);
        }
        __m256 x = _mm256_loadu_ps(w + k);
        d = _mm256_fmadd_ps(l2, x, d);
        x = _mm256_mul_ps(x, decay);
        __m256 mk = _mm256_fmadd_ps(omb1, d, _mm256_mul_ps(_mm256_loadu_ps(m + k), b1));
        __m256 vk = _mm256_fmadd_ps(_mm256_mul_ps(omb2, d), d, _mm256_mul_ps(_mm256_loadu_ps(v + k), b2));
        _mm256_storeu_ps(m + k, mk);
        _mm256_storeu_ps(v + k, vk);
        __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vk), bc2), eps);
        _mm256_storeu_ps(w + k, _mm256_add_ps(x, _mm256_div_ps(_mm256_mul_ps(ns, mk), denom)));
    }
#endif
    for (; k < hi; k++) {
        float d = g[k];
        if (a->clip)
            g[k] = d = d * a->coef;
        float x = w[k];
        d = fmaf(a->l2, x, d);
        x = x * a->decay;
        float mk = fmaf(a->omb1, d, m[k] * a->b1);
        float vk = fmaf(a->omb2 * d, d, v[k] * a->b2);
        m[k] = mk;
        v[k] = vk;
        float denom = sqrtf(vk) / a->bc2_sqrt + a->eps;
        w[k] = x + (a->neg_step * mk) / denom;
    }
}

/* Adamax as torch.optim.Adamax (single-tensor path) computes it: the first
 * moment by lerp (m + w (g - m) for w < 1/2, else g - (g - m)(1 - w)), the
 * infinity norm u = max(beta2 u, |g| + eps), then p -= (lr / bc1) m / u. */
static void adamax_range(const adam_args *a, int64_t lo, int64_t hi)
{
    float *restrict w = a->w, *restrict g = a->g, *restrict m = a->m, *restrict u = a->v;
    bool low = a->omb1 < 0.5f;
    for (int64_t k = lo; k < hi; k++) {
        float d = g[k];
        if (a->clip)
            g[k] = d = d * a->coef;
        d = fmaf(a->l2, w[k], d);
        float diff = d - m[k];
        float mk = low ? m[k] + a->omb1 * diff : d - diff * a->b1;
        float uk = fmaxf(u[k] * a->b2, fabsf(d) + a->eps);
        m[k] = mk;
        u[k] = uk;
        w[k] = w[k] + a->neg_step * (mk / uk);
    }
}

/* One segment's update with this step's scalars. */
static void update(const ib_optim *o, const segment *sg, float coef, bool clip)
{
    ib_params *p = o->p;
    float *w = ib_params_values(p), *g = ib_params_grads(p);
    const param_step *ps = &o->ps[sg->param];
    const ib_optim_config *c = &o->cfg;
    float neg_lr = (float)-o->lr;
    if (c->kind == IB_OPTIM_SGD) {
        if (o->n_state == 0)
            sgd_plain(w, g, sg->lo, sg->hi, coef, clip, (float)o->wd, neg_lr);
        else
            sgd_momentum(w, g, o->state[0], sg->lo, sg->hi, coef, clip, (float)o->wd, (float)o->momentum,
                         (float)(1.0 - o->dampening), ps->first, c->nesterov, neg_lr);
    } else {
        adam_args a = {
            .w = w, .g = g, .m = o->state[0], .v = o->state[1],
            .coef = coef, .clip = clip,
            .l2 = ps->l2, .decay = ps->decay,
            .b1 = (float)o->beta1, .omb1 = (float)(1.0 - o->beta1),
            .b2 = (float)o->beta2, .omb2 = (float)(1.0 - o->beta2),
            .bc2_sqrt = ps->bc2_sqrt, .eps = (float)o->eps, .neg_step = ps->neg_step,
            .wide = ib__cpu_avx512(),
        };
        if (c->kind == IB_OPTIM_ADAMAX)
            adamax_range(&a, sg->lo, sg->hi);
        else
            adam_range(&a, sg->lo, sg->hi);
    }
    if (o->ema_shadow) { /* the new weights are in cache: average them now (ib__optim_set_ema) */
        float *restrict sh = o->ema_shadow;
        const float *restrict v = w;
        float rate = o->ema_rate;
#pragma omp simd
        for (int64_t k = sg->lo; k < sg->hi; k++)
            sh[k] = ib__ema_step(sh[k], v[k], rate);
    }
    if (o->zero_grads) /* consumed: zero for the next backward while the lines are in cache */
        memset(g + sg->lo, 0, (size_t)(sg->hi - sg->lo) * sizeof(float));
}

/* The step's single parallel region.  max_norm > 0: clip only (scale the
 * gradients when their norm exceeds max_norm; ib_optim_clip_grad_norm).
 * Otherwise a full step: the configured clipping, then the update. */
static ib_status run(ib_optim *o, float max_norm, double *norm_out)
{
    int64_t floats;
    int64_t nseg = plan(o, &floats);
    if (nseg < 0)
        return ib__error(IB_ERR_NOMEM, "optimizer: out of memory");
    bool clip_only = max_norm > 0.0f;
    float limit = clip_only ? max_norm : o->cfg.clip_grad_norm;
    if (!clip_only) {
        /* Per-parameter scalars from each one's own update count (only
         * committed once the step is known to go ahead). */
        for (int64_t k = 0; k < nseg; k++) {
            int i = o->seg[k].param;
            if (k > 0 && o->seg[k - 1].param == i)
                continue;
            int64_t t = o->pstep[i] + 1;
            param_step *ps = &o->ps[i];
            ps->first = t == 1;
            if (o->cfg.kind != IB_OPTIM_SGD) {
                bool decoupled = o->cfg.kind == IB_OPTIM_ADAMW;
                double bc1 = 1.0 - pow(o->beta1, (double)t), bc2 = 1.0 - pow(o->beta2, (double)t);
                ps->l2 = decoupled ? 0.0f : (float)o->wd;
                ps->decay = decoupled ? (float)(1.0 - o->lr * o->wd) : 1.0f;
                ps->bc2_sqrt = (float)sqrt(bc2);
                ps->neg_step = (float)-(o->lr / bc1);
            }
        }
    }
    const float *grads = ib_params_grads(o->p);
    double total = 0;
    int bad = -1;
    float coef = 1.0f;
    bool clip = false;
#pragma omp parallel if (floats >= IB_PAR_MIN)
    {
#pragma omp for schedule(static)
        for (int64_t k = 0; k < nseg; k++)
            o->partial[k] = sum_squares(grads, o->seg[k].lo, o->seg[k].hi);
#pragma omp single
        {
            total = total_of(o, nseg, &bad);
            /* torch.nn.utils.clip_grad_norm_: coef = max_norm / (norm +
             * 1e-6) in float32, applied when below 1. */
            if (bad < 0 && limit > 0.0f) {
                coef = limit / ((float)sqrt(total) + 1e-6f);
                clip = coef < 1.0f;
            }
        } /* the barrier: every thread sees bad, coef and clip */
        if (bad < 0 && !clip_only) {
#pragma omp for schedule(static)
            for (int64_t k = 0; k < nseg; k++)
                update(o, &o->seg[k], coef, clip);
        } else if (bad < 0 && clip) {
            float *g = ib_params_grads(o->p);
#pragma omp for schedule(static)
            for (int64_t k = 0; k < nseg; k++) {
#pragma omp simd
                for (int64_t j = o->seg[k].lo; j < o->seg[k].hi; j++)
                    g[j] = g[j] * coef;
            }
        }
    }
    if (bad >= 0)
        return non_finite_error(o->p, bad);
    *norm_out = sqrt(total);
    return IB_OK;
}

ib_status ib_optim_step(ib_optim *o)
{
    if (!o)
        return ib__error(IB_ERR_ARG, "ib_optim_step: NULL optimizer");
    ib_status s = sync(o);
    if (s != IB_OK)
        return s;
    double norm = 0;
    o->ema_shadow = o->ema ? ib__ema_fused_begin(o->ema, &o->ema_rate) : NULL;
    s = run(o, 0.0f, &norm);
    float *fused = o->ema_shadow;
    o->ema_shadow = NULL;
    if (s != IB_OK)
        return s; /* nothing updated, the EMA included */
    if (fused)
        ib__ema_fused_end(o->ema);
    else if (o->ema)
        ib_ema_update(o->ema); /* it reports its own state (a swapped EMA is not updated) */
    o->grad_norm = (float)norm;
    for (int i = 0; i < ib_params_count(o->p); i++)
        if (updated(o->p, i))
            o->pstep[i]++;
    o->steps++;
    return IB_OK;
}

ib_status ib_optim_clip_grad_norm(ib_params *p, float max_norm, float *total_norm)
{
    if (!p || !(max_norm > 0.0f) || !isfinite(max_norm))
        return ib__error(IB_ERR_ARG, "ib_optim_clip_grad_norm: need a store and a finite max_norm > 0");
    /* A throw-away optimizer view gives the same reduction as a step. */
    ib_optim o;
    memset(&o, 0, sizeof o);
    o.p = p;
    double norm = 0;
    ib_status s = run(&o, max_norm, &norm);
    if (s == IB_OK && total_norm)
        *total_norm = (float)norm;
    free(o.partial);
    free(o.seg);
    free(o.ps);
    return s;
}

float ib_optim_grad_norm(const ib_optim *o) { return o ? o->grad_norm : 0.0f; }

void ib__optim_set_ema(ib_optim *o, ib_ema *e)
{
    if (o)
        o->ema = e;
}

void ib__optim_set_zero_grads(ib_optim *o, bool on)
{
    if (o)
        o->zero_grads = on;
}

void ib_optim_set_lr(ib_optim *o, float lr)
{
    if (!o || !(lr >= 0.0f) || !isfinite(lr))
        return;
    o->cfg.lr = lr;
    o->lr = ib__as_decimal(lr);
}

float ib_optim_lr(const ib_optim *o) { return o ? o->cfg.lr : 0.0f; }
const ib_optim_config *ib_optim_get_config(const ib_optim *o) { return o ? &o->cfg : NULL; }
int64_t ib_optim_steps(const ib_optim *o) { return o ? o->steps : 0; }

void ib_optim_set_steps(ib_optim *o, int64_t steps)
{
    if (!o || steps < 0 || sync(o) != IB_OK)
        return;
    o->steps = steps;
    for (int i = 0; i < o->n_known; i++)
        o->pstep[i] = steps;
}

int64_t ib_optim_param_steps(const ib_optim *o, int i)
{
    return o && i >= 0 && i < o->n_known ? o->pstep[i] : 0;
}

void ib_optim_set_param_steps(ib_optim *o, int i, int64_t steps)
{
    if (!o || steps < 0 || sync(o) != IB_OK || i < 0 || i >= o->n_known)
        return;
    o->pstep[i] = steps;
}

int ib_optim_state_count(const ib_optim *o) { return o ? o->n_state : 0; }

const char *ib_optim_state_name(const ib_optim *o, int k)
{
    if (!o || k < 0 || k >= o->n_state)
        return NULL;
    if (o->cfg.kind == IB_OPTIM_SGD)
        return "momentum_buffer";
    return k == 0 ? "exp_avg" : o->cfg.kind == IB_OPTIM_ADAMAX ? "exp_inf" : "exp_avg_sq";
}

float *ib_optim_state(ib_optim *o, int k)
{
    if (!o || k < 0 || k >= o->n_state || sync(o) != IB_OK)
        return NULL;
    return o->state[k];
}
