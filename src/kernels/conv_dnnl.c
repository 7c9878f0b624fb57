/*
 * conv_dnnl.c — convolution through oneDNN (Debian's libdnnl, the OpenMP
 * build, so it shares ibnet's libgomp pool), and the choice between it and
 * the im2col + sgemm path of src/ops/conv.c.
 *
 * Why oneDNN: its JIT kernels pick the CPU's widest vectors at run time
 * (AVX-512 where there is one, AVX2 otherwise) and work on blocked layouts
 * (nChw16c); on the ResNet-20 and LeNet shapes that is 2-5x the im2col
 * path at one thread, reorders from and to NCHW included (bench/dnnl_conv.c,
 * bench/README.md).  A caller's tensor is NCHW, or where the graph keeps
 * activations in the kernels' own blocked layout (src/core/layout.c:
 * gm->xb, gm->yb) nChw16c / nChw8c; each call reorders what is not in the
 * layout the primitive chose into it, and its outputs back.
 *
 * Layouts, as measured: oneDNN's own ("format any") for everything except
 * the forward (with AVX-512: of 32 input channels or more) and
 * backward-data passes of 1x1 convolutions, the
 * backward-data pass of layers with few input channels and, on CPUs
 * without AVX-512, the backward-weights pass of 1x1 and one-channel
 * layers, where the plain NCHW kernels beat the blocked ones plus their
 * reorders (see plain_layout).
 *
 * Plans: a pass of one shape at one thread count is a plan (its reorders,
 * the convolution, and their memory objects), created on first use and
 * kept for the life of the process in a list keyed by the shape, so a
 * training step after the first allocates nothing.  The blocked copies and
 * the scratchpads (user-managed) of a call live in a workspace the caller
 * passes (conv2d's planned per-op workspace in the graph arena, sized at
 * graph build time by ib__conv_dnnl_workspace, so that it shares memory
 * with activations that are dead at that step), or when it passes none or
 * too small a one, in one process-wide buffer grown on demand; calls are
 * serialised by one mutex, which is what lets them share that buffer.  A plan keys on omp_get_max_threads() because a
 * oneDNN primitive splits its work for the thread count it was created at.
 *
 * Determinism: a primitive splits and reduces its work the same way on
 * every call at a given thread count, so a run repeats bit for bit; other
 * thread counts (and other CPUs) agree to rounding.
 */
#include "conv_kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int conv_path = -1; /* ib__conv_path; -1 until the environment is read */

#ifdef IBNET_HAVE_DNNL

#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <pthread.h>

#include "../core/internal.h"

/* PASS_BWD_DATA adds into dx; PASS_BWD_DATA_SET overwrites it (dx's only
 * writer): the same primitive, without the sum, and without any copy when
 * the layouts agree. */
enum { PASS_FWD, PASS_BWD_DATA, PASS_BWD_WEIGHTS, PASS_BWD_DATA_SET };
enum { MAX_MEMS = 12, MAX_STEPS = 6, MAX_STEP_ARGS = 6, ALIGN = 64 };

typedef struct plan_key {
    int64_t batch, cout;
    ib__conv_geom gm;
    int pass, bias, nthr;
} plan_key;

/* A memory object is either the caller's buffer number `slot` (in the
 * order the pass's function takes them) or a region of the workspace. */
typedef struct plan_mem {
    dnnl_memory_t mem;
    int slot;   /* caller's buffer, or -1 */
    size_t off; /* workspace offset when slot < 0 */
    void *cur;  /* the handle last set */
} plan_mem;

/* A oneDNN primitive, or (prim NULL) dst += src over n floats, memories
 * add_from and add_to: oneDNN's reorder with a sum post-op between two
 * plain layouts is its generic, scalar one, several times slower. */
typedef struct plan_step {
    dnnl_primitive_t prim;
    int nargs;
    dnnl_exec_arg_t args[MAX_STEP_ARGS];
    int add_from, add_to;
    int64_t add_n;
} plan_step;

typedef struct plan {
    plan_key key;
    bool failed; /* oneDNN could not build it: the caller falls back */
    int n_mems, n_pre, n_post;
    plan_mem mems[MAX_MEMS];
    plan_step pre[MAX_STEPS], conv, post[MAX_STEPS];
    size_t ws_used;  /* bytes of blocked copies */
    size_t scratch;  /* bytes of the largest scratchpad of its steps */
    struct plan *next;
} plan;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static dnnl_engine_t engine;
static dnnl_stream_t stream;
static plan *plans;
static void *ws;
static size_t ws_bytes;

static size_t align_up(size_t b) { return (b + ALIGN - 1) / ALIGN * ALIGN; }

static int mem_add(plan *p, const dnnl_memory_desc_t *md, int slot)
{
    if (p->n_mems == MAX_MEMS)
        return -1;
    plan_mem *m = &p->mems[p->n_mems];
    if (dnnl_memory_create(&m->mem, md, engine, DNNL_MEMORY_NONE) != dnnl_success)
        return -1;
    m->slot = slot;
    m->cur = NULL;
    if (slot < 0) {
        m->off = p->ws_used;
        p->ws_used += align_up(dnnl_memory_desc_get_size(md));
    }
    return p->n_mems++;
}

/* The step's scratchpad: a memory at the scratch region (placed after the
 * blocked copies once they are all known). */
static bool step_scratch(plan *p, plan_step *s, const_dnnl_primitive_desc_t pd)
{
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t b = md ? dnnl_memory_desc_get_size(md) : 0;
    if (b == 0)
        return true;
    if (p->n_mems == MAX_MEMS || dnnl_memory_create(&p->mems[p->n_mems].mem, md, engine, DNNL_MEMORY_NONE))
        return false;
    p->mems[p->n_mems].slot = -2; /* the scratch region */
    p->mems[p->n_mems].cur = NULL;
    s->args[s->nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, p->mems[p->n_mems].mem};
    p->n_mems++;
    if (b > p->scratch)
        p->scratch = b;
    return true;
}

static dnnl_primitive_attr_t attr_new(bool accumulate)
{
    dnnl_primitive_attr_t a;
    if (dnnl_primitive_attr_create(&a) != dnnl_success)
        return NULL;
    dnnl_primitive_attr_set_scratchpad_mode(a, dnnl_scratchpad_mode_user);
    if (accumulate) {
        dnnl_post_ops_t po;
        dnnl_post_ops_create(&po);
        dnnl_post_ops_append_sum(po, 1.0f);
        dnnl_primitive_attr_set_post_ops(a, po);
        dnnl_post_ops_destroy(po);
    }
    return a;
}

/* A reorder step from memory `from` to memory `to` (dst += src when
 * accumulating). */
static bool reorder_add(plan *p, plan_step *s, int from, int to, bool accumulate)
{
    const dnnl_memory_desc_t *fmd, *tmd;
    dnnl_memory_get_memory_desc(p->mems[from].mem, &fmd);
    dnnl_memory_get_memory_desc(p->mems[to].mem, &tmd);
    dnnl_primitive_attr_t a = attr_new(accumulate);
    dnnl_primitive_desc_t pd;
    bool ok = a && dnnl_reorder_primitive_desc_create(&pd, fmd, engine, tmd, engine, a) == dnnl_success;
    dnnl_primitive_attr_destroy(a);
    if (!ok)
        return false;
    ok = dnnl_primitive_create(&s->prim, pd) == dnnl_success;
    s->nargs = 0;
    s->args[s->nargs++] = (dnnl_exec_arg_t){DNNL_ARG_FROM, p->mems[from].mem};
    s->args[s->nargs++] = (dnnl_exec_arg_t){DNNL_ARG_TO, p->mems[to].mem};
    ok = ok && step_scratch(p, s, pd);
    dnnl_primitive_desc_destroy(pd);
    return ok;
}

/* Bind argument `arg` of the convolution (its layout from query `q` of pd)
 * to the caller's buffer `slot`, whose layout is `user`: directly when the
 * layouts agree, else through a blocked copy and a reorder.  Outputs that
 * accumulate always go through a copy, then dst += copy. */
static bool bind(plan *p, const_dnnl_primitive_desc_t pd, dnnl_query_t q, int arg, const dnnl_memory_desc_t *user,
                 int slot, bool output, bool accumulate)
{
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, q, 0);
    int u = mem_add(p, user, slot);
    if (!md || u < 0)
        return false;
    int use = u;
    bool same = dnnl_memory_desc_equal(md, user);
    if (accumulate || !same) {
        use = mem_add(p, md, -1);
        if (use < 0)
            return false;
        if (output && same) {
            if (p->n_post == MAX_STEPS)
                return false;
            plan_step *s = &p->post[p->n_post++];
            s->add_from = use, s->add_to = u;
            s->add_n = (int64_t)(dnnl_memory_desc_get_size(md) / sizeof(float));
        } else if (output) {
            if (p->n_post == MAX_STEPS || !reorder_add(p, &p->post[p->n_post++], use, u, accumulate))
                return false;
        } else if (p->n_pre == MAX_STEPS || !reorder_add(p, &p->pre[p->n_pre++], u, use, false)) {
            return false;
        }
    }
    p->conv.args[p->conv.nargs++] = (dnnl_exec_arg_t){arg, p->mems[use].mem};
    return true;
}

/* The bias is a plain vector in every layout. */
static bool bind_bias(plan *p, const dnnl_memory_desc_t *ub)
{
    int u = mem_add(p, ub, 2);
    if (u < 0)
        return false;
    p->conv.args[p->conv.nargs++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, p->mems[u].mem};
    return true;
}

/* Plain NCHW where the measurements say its kernels beat the blocked ones
 * with their reorders (see the file comment). */
static bool plain_layout(const plan_key *k)
{
    bool one_by_one = k->gm.kh == 1 && k->gm.kw == 1;
    bool avx512 = ib__dnnl_avx512();
    /* Forward of a 1x1 convolution: the plain (GEMM) kernel, except on
     * AVX-512 with few input channels, where it ran at 40 GFLOP/s against
     * the blocked 1x1 kernel's 100 with both reorders and 320 without
     * (16 -> 16 channels at 32x32, batch 128, 2 threads; 32 -> 32 and more
     * were level: bench/dnnl_conv.c). */
    if (k->pass == PASS_FWD)
        return one_by_one && !(avx512 && k->gm.cin < 32);
    if (k->pass == PASS_BWD_DATA || k->pass == PASS_BWD_DATA_SET)
        return one_by_one || k->gm.cin < 8;
    /* Backward-weights: blocked is 1.3-10x faster with AVX-512; with AVX2
     * only, the blocked kernel is 3x slower for one input channel (LeNet's
     * first layer) and slightly slower for 1x1. */
    return !avx512 && (one_by_one || k->gm.cin == 1);
}

/* The oneDNN tag of a caller's activation layout (src/core/layout.c). */
static dnnl_format_tag_t layout_tag(int block)
{
    return block == 0 ? dnnl_nchw : block == 8 ? dnnl_aBcd8b : block == 16 ? dnnl_aBcd16b : dnnl_format_tag_undef;
}

static bool plan_build(plan *p)
{
    const plan_key *k = &p->key;
    const ib__conv_geom *gm = &k->gm;
    dnnl_dims_t xd = {k->batch, gm->cin, gm->h, gm->w}, wd = {k->cout, gm->cin, gm->kh, gm->kw}, bd = {k->cout},
                yd = {k->batch, k->cout, gm->ho, gm->wo};
    dnnl_dims_t st = {gm->stride, gm->stride}, pl = {gm->pad, gm->pad};
    /* oneDNN's right padding is whatever makes the output size come out
     * (it may be less than pad, even negative, when the stride skips the
     * last rows). */
    dnnl_dims_t pr = {(gm->ho - 1) * gm->stride + gm->kh - gm->h - gm->pad,
                      (gm->wo - 1) * gm->stride + gm->kw - gm->w - gm->pad};
    dnnl_memory_desc_t ux, uw, ub, uy, cx, cw, cy;
    /* The kernels do not depend on the caller's layouts (only the reorders
     * do), so a blocked graph computes the same bits as a plain one. */
    bool plain = plain_layout(k);
    dnnl_format_tag_t ta = plain ? dnnl_nchw : dnnl_format_tag_any, tw = plain ? dnnl_oihw : dnnl_format_tag_any;
    dnnl_format_tag_t tx = layout_tag(gm->xb), ty = layout_tag(gm->yb);
    if (tx == dnnl_format_tag_undef || ty == dnnl_format_tag_undef)
        return false;
    if (dnnl_memory_desc_init_by_tag(&ux, 4, xd, dnnl_f32, tx) ||   //
        dnnl_memory_desc_init_by_tag(&uw, 4, wd, dnnl_f32, dnnl_oihw) || //
        dnnl_memory_desc_init_by_tag(&ub, 1, bd, dnnl_f32, dnnl_x) ||    //
        dnnl_memory_desc_init_by_tag(&uy, 4, yd, dnnl_f32, ty) ||   //
        dnnl_memory_desc_init_by_tag(&cx, 4, xd, dnnl_f32, ta) ||        //
        dnnl_memory_desc_init_by_tag(&cw, 4, wd, dnnl_f32, tw) ||        //
        dnnl_memory_desc_init_by_tag(&cy, 4, yd, dnnl_f32, ta))
        return false;

    dnnl_primitive_attr_t attr = attr_new(false);
    if (!attr)
        return false;
    /* The backward passes take the forward's descriptor as a hint. */
    dnnl_convolution_desc_t fd, bd_;
    dnnl_primitive_desc_t fpd = NULL, pd = NULL;
    bool ok = dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &cx, &cw,
                                                 k->bias ? &ub : NULL, &cy, st, pl, pr) == dnnl_success &&
              dnnl_primitive_desc_create(&fpd, &fd, attr, engine, NULL) == dnnl_success;
    if (ok && k->pass == PASS_FWD) {
        pd = fpd, fpd = NULL;
    } else if (ok && (k->pass == PASS_BWD_DATA || k->pass == PASS_BWD_DATA_SET)) {
        ok = dnnl_convolution_backward_data_desc_init(&bd_, dnnl_convolution_direct, &cx, &cw, &cy, st, pl, pr) ==
                 dnnl_success &&
             dnnl_primitive_desc_create(&pd, &bd_, attr, engine, fpd) == dnnl_success;
    } else if (ok) {
        ok = dnnl_convolution_backward_weights_desc_init(&bd_, dnnl_convolution_direct, &cx, &cw, NULL, &cy, st, pl,
                                                         pr) == dnnl_success &&
             dnnl_primitive_desc_create(&pd, &bd_, attr, engine, fpd) == dnnl_success;
    }
    dnnl_primitive_attr_destroy(attr);
    if (fpd)
        dnnl_primitive_desc_destroy(fpd);
    if (!ok)
        return false;

    ok = dnnl_primitive_create(&p->conv.prim, pd) == dnnl_success;
    switch (k->pass) {
    case PASS_FWD: /* slots: x, w, b, y */
        ok = ok && bind(p, pd, dnnl_query_src_md, DNNL_ARG_SRC, &ux, 0, false, false) &&
             bind(p, pd, dnnl_query_weights_md, DNNL_ARG_WEIGHTS, &uw, 1, false, false) &&
             (!k->bias || bind_bias(p, &ub)) &&
             bind(p, pd, dnnl_query_dst_md, DNNL_ARG_DST, &uy, 3, true, false);
        break;
    case PASS_BWD_DATA: /* slots: w, dy, dx (accumulated, or overwritten) */
    case PASS_BWD_DATA_SET:
        ok = ok && bind(p, pd, dnnl_query_weights_md, DNNL_ARG_WEIGHTS, &uw, 0, false, false) &&
             bind(p, pd, dnnl_query_diff_dst_md, DNNL_ARG_DIFF_DST, &uy, 1, false, false) &&
             bind(p, pd, dnnl_query_diff_src_md, DNNL_ARG_DIFF_SRC, &ux, 2, true, k->pass == PASS_BWD_DATA);
        break;
    default: /* slots: x, dy, dw (overwritten) */
        ok = ok && bind(p, pd, dnnl_query_src_md, DNNL_ARG_SRC, &ux, 0, false, false) &&
             bind(p, pd, dnnl_query_diff_dst_md, DNNL_ARG_DIFF_DST, &uy, 1, false, false) &&
             bind(p, pd, dnnl_query_diff_weights_md, DNNL_ARG_DIFF_WEIGHTS, &uw, 2, true, false);
        break;
    }
    ok = ok && step_scratch(p, &p->conv, pd);
    dnnl_primitive_desc_destroy(pd);
    return ok;
}

static void plan_free(plan *p)
{
    if (p->conv.prim)
        dnnl_primitive_destroy(p->conv.prim);
    for (int i = 0; i < p->n_pre; i++)
        if (p->pre[i].prim)
            dnnl_primitive_destroy(p->pre[i].prim);
    for (int i = 0; i < p->n_post; i++)
        if (p->post[i].prim)
            dnnl_primitive_destroy(p->post[i].prim);
    for (int i = 0; i < p->n_mems; i++)
        dnnl_memory_destroy(p->mems[i].mem);
    free(p);
}

/* The plan for k, most recently used first; a new one when there is none.
 * A process that meets many shapes (batch sizes) keeps the MAX_PLANS most
 * recently used. */
enum { MAX_PLANS = 256 };

static plan *plan_get(const plan_key *k)
{
    int count = 0;
    for (plan **at = &plans; *at; at = &(*at)->next, count++) {
        plan *p = *at;
        if (memcmp(&p->key, k, sizeof *k) == 0) {
            *at = p->next;
            p->next = plans;
            plans = p;
            return p;
        }
        if (count + 1 >= MAX_PLANS && p->next) { /* drop the least recently used */
            plan *old = p->next;
            p->next = old->next;
            plan_free(old);
        }
    }
    if (!engine && (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success ||
                    dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success)) {
        engine = NULL;
        return NULL;
    }
    plan *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->key = *k;
    p->failed = !plan_build(p);
    /* A failed plan is kept too, so it is not retried. */
    p->next = plans;
    plans = p;
    return p;
}

static void step_run(const plan *p, const plan_step *s, bool *ok)
{
    if (!*ok)
        return;
    if (s->prim) {
        *ok = dnnl_primitive_execute(s->prim, stream, s->nargs, s->args) == dnnl_success;
        return;
    }
    const float *src = p->mems[s->add_from].cur;
    float *dst = p->mems[s->add_to].cur;
#pragma omp parallel for simd schedule(static) if (s->add_n > IB_PAR_MIN)
    for (int64_t i = 0; i < s->add_n; i++)
        dst[i] += src[i];
}

static size_t plan_need(const plan *p) { return align_up(p->ws_used) + align_up(p->scratch); }

static plan_key key_of(int pass, const ib__conv_geom *gm, int64_t batch, int64_t cout, bool bias)
{
    plan_key k;
    memset(&k, 0, sizeof k); /* padding bytes too: the key is compared with memcmp */
    k.batch = batch;
    k.cout = cout;
    k.gm = *gm;
    k.pass = pass;
    k.bias = bias;
    k.nthr = omp_get_max_threads();
    return k;
}

/* The workspace of a call: the caller's if it is large enough, else the
 * process-wide one (nothing in it outlives a call). */
static char *workspace_for(const plan *p, void *own, size_t own_bytes)
{
    size_t need = plan_need(p);
    if (own && need <= own_bytes)
        return own;
    if (need > ws_bytes) {
        ib__aligned_free(ws);
        ws = ib__aligned_alloc(need);
        ws_bytes = ws ? need : 0;
    }
    return ws;
}

static bool run(int pass, const ib__conv_geom *gm, int64_t batch, int64_t cout, bool bias, void *const *user,
                void *own_ws, size_t own_bytes)
{
    plan_key k = key_of(pass, gm, batch, cout, bias);
    pthread_mutex_lock(&lock);
    plan *p = plan_get(&k);
    bool ok = p && !p->failed;
    char *base = ok ? workspace_for(p, own_ws, own_bytes) : NULL;
    ok = ok && base;
    if (ok) {
        char *scratch = base + align_up(p->ws_used);
        for (int i = 0; i < p->n_mems && ok; i++) {
            plan_mem *m = &p->mems[i];
            void *h = m->slot >= 0 ? user[m->slot] : m->slot == -1 ? base + m->off : scratch;
            if (h != m->cur) {
                ok = dnnl_memory_set_data_handle(m->mem, h) == dnnl_success;
                m->cur = h;
            }
        }
        for (int i = 0; i < p->n_pre; i++)
            step_run(p, &p->pre[i], &ok);
        step_run(p, &p->conv, &ok);
        for (int i = 0; i < p->n_post; i++)
            step_run(p, &p->post[i], &ok);
        ok = ok && dnnl_stream_wait(stream) == dnnl_success;
        if (!ok) /* a handle may be half set: make every one be set again */
            for (int i = 0; i < p->n_mems; i++)
                p->mems[i].cur = NULL;
    }
    pthread_mutex_unlock(&lock);
    return ok;
}

bool ib__conv_dnnl_workspace(const ib__conv_geom *gm, int64_t batch, int64_t cout, bool bias, bool backward,
                             size_t need[3])
{
    need[0] = need[1] = need[2] = 0;
    if (ib__conv_path() != IB_CONV_DNNL)
        return false;
    static const int passes[4] = {PASS_FWD, PASS_BWD_DATA, PASS_BWD_WEIGHTS, PASS_BWD_DATA_SET};
    static const int slot[4] = {0, 1, 2, 1}; /* both backward-data plans fit need[1] */
    bool ok = true;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < (backward ? 4 : 1) && ok; i++) {
        plan_key k = key_of(passes[i], gm, batch, cout, i == 0 && bias);
        plan *p = plan_get(&k);
        ok = p && !p->failed;
        size_t n = ok ? plan_need(p) : 0;
        if (n > need[slot[i]])
            need[slot[i]] = n;
    }
    pthread_mutex_unlock(&lock);
    return ok;
}

int ib__conv_dnnl_block(void)
{
    if (ib__conv_path() != IB_CONV_DNNL)
        return 0;
    /* What oneDNN's "any" format picks for these convolutions' activations. */
    if (ib__dnnl_avx512())
        return 16;
    return (dnnl_get_effective_cpu_isa() & dnnl_cpu_isa_avx2) == dnnl_cpu_isa_avx2 ? 8 : 0;
}

bool ib__conv_dnnl_forward(const ib__conv_geom *gm, int64_t batch, int64_t cout, const float *x, const float *w,
                           const float *b, float *y, void *ws, size_t ws_bytes)
{
    void *user[4] = {(void *)x, (void *)w, (void *)b, y};
    return ib__conv_path() == IB_CONV_DNNL && run(PASS_FWD, gm, batch, cout, b != NULL, user, ws, ws_bytes);
}

bool ib__conv_dnnl_backward_data(const ib__conv_geom *gm, int64_t batch, int64_t cout, const float *w,
                                 const float *dy, float *dx, bool accumulate, void *ws, size_t ws_bytes)
{
    void *user[3] = {(void *)w, (void *)dy, dx};
    return ib__conv_path() == IB_CONV_DNNL &&
           run(accumulate ? PASS_BWD_DATA : PASS_BWD_DATA_SET, gm, batch, cout, false, user, ws, ws_bytes);
}

bool ib__conv_dnnl_backward_weights(const ib__conv_geom *gm, int64_t batch, int64_t cout, const float *x,
                                    const float *dy, float *dw, void *ws, size_t ws_bytes)
{
    void *user[3] = {(void *)x, (void *)dy, dw};
    return ib__conv_path() == IB_CONV_DNNL && run(PASS_BWD_WEIGHTS, gm, batch, cout, false, user, ws, ws_bytes);
}

#else /* built without oneDNN: the im2col path only */

int ib__conv_dnnl_block(void) { return 0; }

bool ib__conv_dnnl_workspace(const ib__conv_geom *gm, int64_t batch, int64_t cout, bool bias, bool backward,
                             size_t need[3])
{
    (void)gm, (void)batch, (void)cout, (void)bias, (void)backward;
    need[0] = need[1] = need[2] = 0;
    return false;
}

bool ib__conv_dnnl_forward(const ib__conv_geom *gm, int64_t batch, int64_t cout, const float *x, const float *w,
                           const float *b, float *y, void *ws, size_t ws_bytes)
{
    (void)gm, (void)batch, (void)cout, (void)x, (void)w, (void)b, (void)y, (void)ws, (void)ws_bytes;
    return false;
}

bool ib__conv_dnnl_backward_data(const ib__conv_geom *gm, int64_t batch, int64_t cout, const float *w,
                                 const float *dy, float *dx, bool accumulate, void *ws, size_t ws_bytes)
{
    (void)gm, (void)batch, (void)cout, (void)w, (void)dy, (void)dx, (void)accumulate, (void)ws, (void)ws_bytes;
    return false;
}

bool ib__conv_dnnl_backward_weights(const ib__conv_geom *gm, int64_t batch, int64_t cout, const float *x,
                                    const float *dy, float *dw, void *ws, size_t ws_bytes)
{
    (void)gm, (void)batch, (void)cout, (void)x, (void)dy, (void)dw, (void)ws, (void)ws_bytes;
    return false;
}

#endif

bool ib__conv_dnnl_available(void)
{
#ifdef IBNET_HAVE_DNNL
    return true;
#else
    return false;
#endif
}

bool ib__dnnl_avx512(void)
{
#ifdef IBNET_HAVE_DNNL
    return (dnnl_get_effective_cpu_isa() & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core;
#else
    return false;
#endif
}

int ib__conv_path(void)
{
    int p = __atomic_load_n(&conv_path, __ATOMIC_RELAXED);
    if (p < 0) { /* IBNET_CONV=im2col|dnnl; oneDNN when built with it */
        const char *env = getenv("IBNET_CONV");
        p = ib__conv_dnnl_available() ? IB_CONV_DNNL : IB_CONV_IM2COL;
        if (env && strcmp(env, "im2col") == 0)
            p = IB_CONV_IM2COL;
        else if (env && *env && strcmp(env, "dnnl") != 0)
            fprintf(stderr, "ibnet: IBNET_CONV=%s is not im2col or dnnl; ignored\n", env);
        __atomic_store_n(&conv_path, p, __ATOMIC_RELAXED);
    }
    return p;
}

void ib__conv_set_path(int path)
{
    if (path == IB_CONV_DNNL && !ib__conv_dnnl_available())
        path = IB_CONV_IM2COL;
    __atomic_store_n(&conv_path, path, __ATOMIC_RELAXED);
}
