/*
 * attack.c — FGSM and PGD (L-inf and L2), and the bookkeeping every attack
 * shares: names and config checks, the judging of candidate images, the
 * choice of the worst point per example, the rounding to 8-bit pixels and
 * the per-eps report.  Carlini–Wagner's search is in attack_cw.c, the
 * S-sample loss and its pixel gradient in attack_grad.c; docs/attacks.md
 * describes the attacks and the rules that keep them fair.
 *
 * Why the bookkeeping is shaped so:
 *  - An attack is only as good as the worst point it finds.  Per example
 *    the candidates are the clean image, the best iterate of every loss,
 *    restart and path (EOT and mean path), and the point chosen for the
 *    next smaller eps (it lies in this ball too).  The best iterate is
 *    kept, not the last, so more steps or restarts never weaken the result.
 *  - Candidates are judged by the model's S-sample prediction with its own
 *    noise (a seed the attack never draws with), the same noise for every
 *    candidate of a batch, so the attacker cannot win on a lucky draw.
 *  - Random starts and the noise of every step are keyed by what they are
 *    (example, restart, step), never by how many came before.
 */
#include "attack_internal.h"

#include <math.h>

static const char *const kind_names[] = {"fgsm", "pgd", "cw"};
static const char *const norm_names[] = {"linf", "l2"};
static const char *const loss_names[] = {"ce", "margin", "both"};

static ib_status parse_name(const char *what, const char *const *names, int n, const char *s, int *out)
{
    for (int k = 0; s && k < n; k++)
        if (strcmp(s, names[k]) == 0) {
            *out = k;
            return IB_OK;
        }
    char list[128] = "";
    for (int k = 0; k < n; k++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k ? ", " : "", names[k]);
    return ib__error(IB_ERR_ARG, "unknown %s '%s' (known: %s)", what, s ? s : "(null)", list);
}

const char *ib_attack_kind_name(ib_attack_kind k) { return (unsigned)k < 3 ? kind_names[k] : NULL; }
const char *ib_attack_norm_name(ib_attack_norm n) { return (unsigned)n < 2 ? norm_names[n] : NULL; }
const char *ib_attack_loss_name(ib_attack_loss l) { return (unsigned)l < 3 ? loss_names[l] : NULL; }

ib_status ib_attack_kind_parse(const char *s, ib_attack_kind *out)
{
    int k = 0;
    ib_status st = parse_name("attack", kind_names, 3, s, &k);
    if (st == IB_OK && out)
        *out = (ib_attack_kind)k;
    return st;
}

ib_status ib_attack_norm_parse(const char *s, ib_attack_norm *out)
{
    int k = 0;
    ib_status st = parse_name("attack norm", norm_names, 2, s, &k);
    if (st == IB_OK && out)
        *out = (ib_attack_norm)k;
    return st;
}

ib_status ib_attack_loss_parse(const char *s, ib_attack_loss *out)
{
    int k = 0;
    ib_status st = parse_name("attack loss", loss_names, 3, s, &k);
    if (st == IB_OK && out)
        *out = (ib_attack_loss)k;
    return st;
}

ib_attack_config ib_attack_config_default(ib_attack_kind kind)
{
    ib_attack_config c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.norm = kind == IB_ATTACK_CW ? IB_ATTACK_L2 : IB_ATTACK_LINF;
    c.loss = kind == IB_ATTACK_PGD ? IB_ATTACK_LOSS_BOTH : IB_ATTACK_LOSS_CE;
    if (kind != IB_ATTACK_CW) {
        c.n_eps = 3;
        c.eps[0] = 0.1f, c.eps[1] = 0.2f, c.eps[2] = 0.3f;
    }
    c.steps = kind == IB_ATTACK_CW ? 1000 : kind == IB_ATTACK_PGD ? 40 : 1;
    c.step_size = kind == IB_ATTACK_CW ? 0.01f : 0.0f;
    c.restarts = 1;
    c.random_start = true;
    c.eot_samples = 12;
    c.mean_path = true;
    c.cw_search_steps = 9;
    c.cw_c0 = 1e-2f;
    c.cw_kappa = 0.0f;
    return c;
}

ib_status ib_attack_config_check(const ib_attack_config *c)
{
    if (!c)
        return ib__error(IB_ERR_ARG, "attack: NULL config");
    if ((unsigned)c->kind > IB_ATTACK_CW)
        return ib__error(IB_ERR_ARG, "attack: unknown attack kind %d (fgsm, pgd or cw)", (int)c->kind);
    if ((unsigned)c->norm > IB_ATTACK_L2)
        return ib__error(IB_ERR_ARG, "attack: unknown norm %d (linf or l2)", (int)c->norm);
    if ((unsigned)c->loss > IB_ATTACK_LOSS_BOTH)
        return ib__error(IB_ERR_ARG, "attack: unknown loss %d (ce, margin or both)", (int)c->loss);
    if (c->kind == IB_ATTACK_CW && c->norm != IB_ATTACK_L2)
        return ib__error(IB_ERR_ARG, "attack: Carlini-Wagner is an L2 attack; it has no L-inf form (use --norm l2)");
    if (c->n_eps < 0 || c->n_eps > IB_ATTACK_MAX_EPS || (c->kind != IB_ATTACK_CW && c->n_eps < 1))
        return ib__error(IB_ERR_ARG, "attack: %d eps values (1 to %d needed%s)", c->n_eps, IB_ATTACK_MAX_EPS,
                         c->kind == IB_ATTACK_CW ? "; CW takes 0 for one unbounded row" : "");
    for (int k = 0; k < c->n_eps; k++) {
        float e = c->eps[k];
        bool ok = e >= 0.0f && (isfinite(e) || (c->kind == IB_ATTACK_CW && isinf(e)));
        if (!ok)
            return ib__error(IB_ERR_ARG, "attack: eps %g is not a radius (eps >= 0, in pixel units of [0, 1])",
                             (double)e);
    }
    if (c->steps < 1)
        return ib__error(IB_ERR_ARG, "attack: steps = %d (at least 1)", c->steps);
    if (c->restarts < 1)
        return ib__error(IB_ERR_ARG, "attack: restarts = %d (at least 1)", c->restarts);
    if (c->eot_samples < 1)
        return ib__error(IB_ERR_ARG, "attack: eot_samples = %d (at least 1)", c->eot_samples);
    if (!(c->step_size >= 0.0f) || !isfinite(c->step_size))
        return ib__error(IB_ERR_ARG, "attack: step size %g (>= 0; 0 picks the default)", (double)c->step_size);
    if (c->kind == IB_ATTACK_CW) {
        if (c->cw_search_steps < 1)
            return ib__error(IB_ERR_ARG, "attack: cw_search_steps = %d (at least 1)", c->cw_search_steps);
        if (!(c->cw_c0 > 0.0f) || !isfinite(c->cw_c0))
            return ib__error(IB_ERR_ARG, "attack: cw_c0 = %g (must be > 0)", (double)c->cw_c0);
        if (!(c->cw_kappa >= 0.0f) || !isfinite(c->cw_kappa))
            return ib__error(IB_ERR_ARG, "attack: cw_kappa = %g (must be >= 0)", (double)c->cw_kappa);
    }
    return IB_OK;
}

void ib_attack_result_free(ib_attack_result *r)
{
    if (!r)
        return;
    free(r->clean_pred);
    free(r->targets);
    for (int k = 0; k < IB_ATTACK_MAX_EPS; k++) {
        free(r->rows[k].pred);
        free(r->rows[k].images);
        free(r->rows[k].images_u8);
    }
    memset(r, 0, sizeof *r);
}

/* ---- the run ---- */
typedef struct actx {
    const ib_attack_head *h;
    const ib_pixel_norm *pn;
    const ib_attack_config *cfg;
    int64_t B, D;
    int k;
    bool stochastic;
    int samples;          /* of the S-sample prediction and of EOT */
    uint64_t atk_seed, judge_seed;
    float *grad;          /* (B, D) */
    double *m;            /* (B) */
} actx;

/* Judge the candidate images p (B, D) with the judging noise of batch bi:
 * margin (> 0: fooled) and prediction per row. */
static ib_status judge(actx *a, const float *p, const int32_t *alab, uint64_t bi, double *margin, int32_t *pred)
{
    uint64_t step0 = ib__attack_step_key(a->judge_seed, bi, 0, 0, 0);
    return ib__attack_eval(a->h, a->pn, p, alab, IB_ATTACK_LOSS_MARGIN, a->cfg->targeted, a->samples, false,
                           a->judge_seed, step0, NULL, margin, pred, NULL);
}

static bool fooled(const ib_attack_config *cfg, int32_t pred, int32_t label, int32_t target)
{
    return cfg->targeted ? pred == target : pred != label;
}

/* A random start in the ball of radius eps, keyed by (example, loss, restart). */
static void random_start(const actx *a, float *p, const float *p0, int64_t example, int li, int r, float eps)
{
    int64_t d = a->D;
    uint64_t key = ((uint64_t)example << 24) | ((uint64_t)li << 16) | (uint64_t)r;
    uint64_t stream = ib_rng_stream_of("attack.start");
    if (a->cfg->norm == IB_ATTACK_LINF) {
        ib_rng_uniform(a->cfg->seed, stream, key, p, d);
        for (int64_t i = 0; i < d; i++)
            p[i] = p0[i] + eps * (2.0f * p[i] - 1.0f);
    } else {
        /* uniform in the ball: a normal direction, radius eps u^(1/d) */
        ib_rng_normal(a->cfg->seed, stream, key, p, d);
        float u;
        ib_rng_uniform(a->cfg->seed, stream ^ 1u, key, &u, 1);
        double n = 0;
        for (int64_t i = 0; i < d; i++)
            n += (double)p[i] * p[i];
        double sc = n > 0 ? (double)eps * pow((double)u, 1.0 / (double)d) / sqrt(n) : 0.0;
        for (int64_t i = 0; i < d; i++)
            p[i] = p0[i] + (float)(p[i] * sc);
    }
    ib__attack_project(p, p0, d, eps, a->cfg->norm);
}

/* One ascent step of size alpha along the gradient (its sign for L-inf,
 * its direction for L2), then back into the ball and the box. */
static void ascend(const actx *a, float *p, const float *p0, const float *g, float alpha, float eps)
{
    int64_t d = a->D;
    if (a->cfg->norm == IB_ATTACK_LINF) {
        for (int64_t i = 0; i < d; i++)
            p[i] += g[i] > 0 ? alpha : g[i] < 0 ? -alpha : 0.0f;
    } else {
        double n = 0;
        for (int64_t i = 0; i < d; i++)
            n += (double)g[i] * g[i];
        if (n > 0) {
            double sc = (double)alpha / sqrt(n);
            for (int64_t i = 0; i < d; i++)
                p[i] += (float)(g[i] * sc);
        }
    }
    ib__attack_project(p, p0, d, eps, a->cfg->norm);
}

/* FGSM or PGD at one eps through one path: best (B, D) gets per row the
 * iterate of the largest attack margin (attack noise), over the losses
 * and restarts.  cur is (B, D) scratch. */
static ib_status attack_ball(actx *a, bool mean_path, float eps, int ei, uint64_t bi, int64_t off, const float *p0,
                             const int32_t *alab, float *best, double *bestm, float *cur)
{
    const ib_attack_config *cfg = a->cfg;
    int64_t B = a->B, D = a->D;
    int samples = mean_path ? 1 : a->samples;
    ib_attack_loss losses[2];
    int n_loss = 0;
    if (cfg->loss != IB_ATTACK_LOSS_MARGIN)
        losses[n_loss++] = IB_ATTACK_LOSS_CE;
    if (cfg->loss != IB_ATTACK_LOSS_CE)
        losses[n_loss++] = IB_ATTACK_LOSS_MARGIN;
    memcpy(best, p0, (size_t)(B * D) * sizeof(float));
    for (int64_t b = 0; b < B; b++)
        bestm[b] = -INFINITY;
    uint64_t what = ((uint64_t)ei << 8) | ((uint64_t)mean_path << 4);
    ib_status s = IB_OK;
#define KEEP_BEST()                                                                                                    \
    for (int64_t b = 0; b < B; b++)                                                                                    \
        if (a->m[b] > bestm[b]) {                                                                                      \
            bestm[b] = a->m[b];                                                                                        \
            memcpy(best + b * D, cur + b * D, (size_t)D * sizeof(float));                                             \
        }
    for (int li = 0; li < n_loss && s == IB_OK; li++) {
        ib_attack_loss loss = losses[li];
        if (cfg->kind == IB_ATTACK_FGSM) {
            uint64_t st = ib__attack_step_key(a->atk_seed, bi, what | (uint64_t)li, 0, 0);
            s = ib__attack_eval(a->h, a->pn, p0, alab, loss, cfg->targeted, samples, mean_path, a->atk_seed, st,
                                NULL, NULL, NULL, a->grad);
            if (s != IB_OK)
                break;
            memcpy(cur, p0, (size_t)(B * D) * sizeof(float));
            for (int64_t b = 0; b < B; b++)
                ascend(a, cur + b * D, p0 + b * D, a->grad + b * D, eps, eps);
            st = ib__attack_step_key(a->atk_seed, bi, what | (uint64_t)li, 0, 1);
            s = ib__attack_eval(a->h, a->pn, cur, alab, loss, cfg->targeted, samples, mean_path, a->atk_seed, st,
                                NULL, a->m, NULL, NULL);
            if (s == IB_OK) {
                KEEP_BEST();
            }
            continue;
        }
        float alpha = cfg->step_size > 0 ? cfg->step_size : 2.5f * eps / (float)cfg->steps;
        for (int r = 0; r < cfg->restarts && s == IB_OK; r++) {
            for (int64_t b = 0; b < B; b++) {
                memcpy(cur + b * D, p0 + b * D, (size_t)D * sizeof(float));
                if (cfg->random_start)
                    random_start(a, cur + b * D, p0 + b * D, off + b, li, r, eps);
            }
            for (int t = 0; t <= cfg->steps; t++) {
                bool last = t == cfg->steps;
                uint64_t st = ib__attack_step_key(a->atk_seed, bi, what | (uint64_t)li, (uint64_t)r, (uint64_t)t);
                s = ib__attack_eval(a->h, a->pn, cur, alab, loss, cfg->targeted, samples, mean_path, a->atk_seed, st,
                                    NULL, a->m, NULL, last ? NULL : a->grad);
                if (s != IB_OK)
                    break;
                KEEP_BEST();
                if (!last)
                    for (int64_t b = 0; b < B; b++)
                        ascend(a, cur + b * D, p0 + b * D, a->grad + b * D, alpha, eps);
            }
        }
    }
#undef KEEP_BEST
    return s;
}

/* The bytes an L-inf ball of eps pixels allows around a byte: floor(255
 * eps), with a tolerance far below a byte so that eps = k/255, which is
 * not exact in float, allows its k bytes (CIFAR-10's 2/255, 4/255, 8/255). */
static long linf_bytes(float eps)
{
    return (long)floor((double)eps * 255.0 + 1e-5);
}

/* Round pixels to bytes, staying within eps of p0 (which is on the byte
 * grid).  L-inf: round to nearest, then clamp each byte to the ones the
 * ball allows, in bytes: comparing the float pixels would count b0 + k an
 * ulp outside eps = k/255 and cost the attack a byte.  L2: round to
 * nearest, and where that leaves the ball, truncate the perturbation toward
 * p0 instead (never farther than the float image). */
static void round_u8(const float *p, const float *p0, int64_t d, float eps, ib_attack_norm norm, uint8_t *q,
                     float *qf)
{
    if (norm == IB_ATTACK_LINF) {
        long kb = linf_bytes(eps);
        for (int64_t i = 0; i < d; i++) {
            long b0 = lrintf(p0[i] * 255.0f), v = lrintf(p[i] * 255.0f);
            v = v < b0 - kb ? b0 - kb : v > b0 + kb ? b0 + kb : v;
            q[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            qf[i] = (float)q[i] / 255.0f;
        }
        return;
    }
    for (int64_t i = 0; i < d; i++) {
        long v = lrintf(p[i] * 255.0f);
        q[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        qf[i] = (float)q[i] / 255.0f;
    }
    bool out = norm == IB_ATTACK_LINF ? ib__attack_linf(qf, p0, d) > (double)eps
                                      : ib__attack_l2(qf, p0, d) > (double)eps;
    if (!out)
        return;
    for (int64_t i = 0; i < d; i++) {
        long b0 = lrintf(p0[i] * 255.0f);
        double delta = ((double)p[i] - (double)p0[i]) * 255.0;
        long v = b0 + (long)trunc(delta);
        while (fabs((double)v / 255.0 - (double)p0[i]) > fabs((double)p[i] - (double)p0[i]) && v != b0)
            v += v > b0 ? -1 : 1;
        q[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        qf[i] = (float)q[i] / 255.0f;
    }
}

typedef struct row_acc {
    int64_t correct, success, correct_u8, success_u8, nsucc;
    double l2, linf;
} row_acc;

ib_status ib_attack_run(const ib_attack_head *h, const ib_pixel_norm *pn, const ib_dataset *d,
                        const ib_attack_config *cfg, ib_attack_result *out)
{
    if (!out)
        return ib__error(IB_ERR_ARG, "ib_attack_run: NULL result");
    memset(out, 0, sizeof *out);
    if (!d || !cfg)
        return ib__error(IB_ERR_ARG, "ib_attack_run: NULL argument");
    ib_status s = ib_attack_config_check(cfg);
    if (s == IB_OK)
        s = ib__attack_check_head(h, pn, "ib_attack_run");
    if (s != IB_OK)
        return s;
    if (h->g->forward_only)
        return ib__error(IB_ERR_STATE, "ib_attack_run: the graph is forward-only");
    int64_t B = h->x->shape[0], D = h->x->numel / B;
    int k = (int)h->logits->shape[1];
    if ((int64_t)d->c * d->h * d->w != D || pn->channels != d->c)
        return ib__error(IB_ERR_SHAPE, "ib_attack_run: %s images (%d, %d, %d) do not fit the input '%s' (%lld values)"
                         " or the normalisation's %d channels",
                         d->name, d->c, d->h, d->w, h->x->name, (long long)D, pn->channels);
    if (k < 2 || d->classes > k)
        return ib__error(IB_ERR_SHAPE, "ib_attack_run: the model has %d classes, %s has %d", k, d->name, d->classes);
    for (int64_t i = 0; i < d->n; i++)
        if (d->labels[i] < 0 || d->labels[i] >= k)
            return ib__error(IB_ERR_ARG, "ib_attack_run: label %d of example %lld is outside [0, %d)", d->labels[i],
                             (long long)i, k);
    if (cfg->targeted && cfg->targets)
        for (int64_t i = 0; i < d->n; i++)
            if (cfg->targets[i] < 0 || cfg->targets[i] >= k || cfg->targets[i] == d->labels[i])
                return ib__error(IB_ERR_ARG,
                                 "ib_attack_run: target %d of example %lld is not another class in [0, %d)",
                                 cfg->targets[i], (long long)i, k);
    double t0 = ib__now_s();
    int64_t n = d->n;
    actx a = {.h = h, .pn = pn, .cfg = cfg, .B = B, .D = D, .k = k};
    a.stochastic = ib_graph_first_random(h->g) != NULL;
    a.samples = a.stochastic ? cfg->eot_samples : 1;
    a.atk_seed = cfg->seed ^ 0xA77AC4ull;
    a.judge_seed = cfg->seed ^ 0x7D6E5ull;
    int n_paths = a.stochastic && cfg->mean_path ? 2 : 1;
    int n_rows = cfg->n_eps > 0 ? cfg->n_eps : 1;
    out->n = n;
    out->classes = k;
    out->stochastic = a.stochastic;
    out->samples = a.samples;
    out->n_rows = n_rows;
    out->clean_pred = malloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
    if (cfg->targeted)
        out->targets = malloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
    bool nomem = !out->clean_pred || (cfg->targeted && !out->targets);
    for (int r = 0; r < n_rows; r++) {
        ib_attack_row *row = &out->rows[r];
        row->eps = cfg->n_eps > 0 ? cfg->eps[r] : INFINITY;
        row->pred = malloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
        nomem |= !row->pred;
        if (cfg->keep_images) {
            row->images = malloc((size_t)((n > 0 ? n : 1) * D) * sizeof(float));
            row->images_u8 = malloc((size_t)((n > 0 ? n : 1) * D));
            nomem |= !row->images || !row->images_u8;
        }
    }
    /* per batch buffers */
    size_t bd = (size_t)(B * D);
    float *p0 = malloc(bd * sizeof(float)), *cur = malloc(bd * sizeof(float));
    float *chosen = malloc(bd * sizeof(float)), *qf = malloc(bd * sizeof(float));
    float *best = malloc((size_t)n_paths * bd * sizeof(float));
    uint8_t *q8 = malloc(bd);
    a.grad = malloc(bd * sizeof(float));
    a.m = malloc((size_t)B * sizeof(double));
    double *bestm = malloc((size_t)B * sizeof(double)), *jm = malloc((size_t)B * sizeof(double));
    double *cm = malloc((size_t)B * sizeof(double)), *cw_l2 = malloc((size_t)n_paths * B * sizeof(double));
    int32_t *lab = malloc((size_t)B * sizeof(int32_t)), *tgt = malloc((size_t)B * sizeof(int32_t));
    int32_t *alab = malloc((size_t)B * sizeof(int32_t)), *jp = malloc((size_t)B * sizeof(int32_t));
    int32_t *cp = malloc((size_t)B * sizeof(int32_t)), *clean_p = malloc((size_t)B * sizeof(int32_t));
    int32_t *pjp = malloc((size_t)n_paths * B * sizeof(int32_t));
    bool *jsucc = malloc((size_t)n_paths * B * sizeof(bool));
    int order[IB_ATTACK_MAX_EPS];
    row_acc acc[IB_ATTACK_MAX_EPS];
    memset(acc, 0, sizeof acc);
    nomem |= !p0 || !cur || !chosen || !qf || !best || !q8 || !a.grad || !a.m || !bestm || !jm || !cm || !cw_l2 ||
             !lab || !tgt || !alab || !jp || !cp || !clean_p || !pjp || !jsucc;
    if (nomem) {
        s = ib__error(IB_ERR_NOMEM, "ib_attack_run: out of memory");
        goto done;
    }
    /* eps in ascending order, so the point chosen at one eps is a
     * candidate at the next */
    for (int r = 0; r < n_rows; r++) {
        int j = r;
        while (j > 0 && out->rows[order[j - 1]].eps > out->rows[r].eps) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = r;
    }
    int64_t clean_correct = 0;
    for (int64_t off = 0, bi = 0; off < n && s == IB_OK; off += B, bi++) {
        int64_t count = n - off < B ? n - off : B;
        for (int64_t b = 0; b < B; b++) {
            bool real = b < count;
            for (int64_t i = 0; i < D; i++)
                p0[b * D + i] = real ? (float)d->images[(off + b) * D + i] / 255.0f : 0.0f;
            lab[b] = real ? d->labels[off + b] : 0;
            tgt[b] = 1 % k;
            if (real && cfg->targeted) {
                if (cfg->targets)
                    tgt[b] = cfg->targets[off + b];
                else {
                    uint64_t u = ib_rng_u64(cfg->seed, ib_rng_stream_of("attack.target"), 0, (uint64_t)(off + b));
                    tgt[b] = (int32_t)((lab[b] + 1 + (int64_t)(u % (uint64_t)(k - 1))) % k);
                }
                out->targets[off + b] = tgt[b];
            }
            alab[b] = cfg->targeted ? tgt[b] : lab[b];
        }
        s = judge(&a, p0, alab, (uint64_t)bi, cm, clean_p);
        if (s != IB_OK)
            break;
        for (int64_t b = 0; b < count; b++) {
            out->clean_pred[off + b] = clean_p[b];
            clean_correct += clean_p[b] == lab[b];
        }
        /* chosen = the worst point so far per row: the clean image first */
        memcpy(chosen, p0, bd * sizeof(float));
        memcpy(cp, clean_p, (size_t)B * sizeof(int32_t));
        if (cfg->kind == IB_ATTACK_CW) {
            for (int path = 0; path < n_paths && s == IB_OK; path++) {
                ib__attack_judge jd = {a.judge_seed, ib__attack_step_key(a.judge_seed, (uint64_t)bi, 0, 0, 0), a.samples};
                s = ib__attack_cw_batch(h, pn, cfg, p0, alab, count, path == 1, path == 1 ? 1 : a.samples,
                                        ib__attack_step_key(a.atk_seed, (uint64_t)bi, 0xC0 | (uint64_t)path, 0, 0),
                                        a.stochastic ? &jd : NULL, best + path * bd, cw_l2 + path * B);
                if (s == IB_OK)
                    s = judge(&a, best + path * bd, alab, (uint64_t)bi, jm, pjp + path * B);
                for (int64_t b = 0; s == IB_OK && b < B; b++)
                    jsucc[path * B + b] = b < count && isfinite(cw_l2[path * B + b]) &&
                                          fooled(cfg, pjp[path * B + b], lab[b], tgt[b]);
            }
        }
        for (int oi = 0; oi < n_rows && s == IB_OK; oi++) {
            int ei = order[oi];
            float eps = out->rows[ei].eps;
            if (cfg->kind == IB_ATTACK_CW) {
                /* the smallest successful perturbation within eps */
                for (int64_t b = 0; b < count; b++) {
                    if (fooled(cfg, cp[b], lab[b], tgt[b]))
                        continue;
                    int pick = -1;
                    for (int path = 0; path < n_paths; path++)
                        if (jsucc[path * B + b] && cw_l2[path * B + b] <= (double)eps &&
                            (pick < 0 || cw_l2[path * B + b] < cw_l2[pick * B + b]))
                            pick = path;
                    if (pick >= 0) {
                        memcpy(chosen + b * D, best + pick * bd + b * D, (size_t)D * sizeof(float));
                        cp[b] = pjp[pick * B + b];
                    }
                }
            } else {
                for (int path = 0; path < n_paths && s == IB_OK; path++) {
                    s = attack_ball(&a, path == 1, eps, ei, (uint64_t)bi, off, p0, alab, best, bestm, cur);
                    if (s == IB_OK)
                        s = judge(&a, best, alab, (uint64_t)bi, jm, jp);
                    if (s != IB_OK)
                        break;
                    for (int64_t b = 0; b < count; b++) {
                        bool fn = fooled(cfg, jp[b], lab[b], tgt[b]), fo = fooled(cfg, cp[b], lab[b], tgt[b]);
                        if ((fn && !fo) || (fn == fo && jm[b] > cm[b])) {
                            memcpy(chosen + b * D, best + b * D, (size_t)D * sizeof(float));
                            cp[b] = jp[b];
                            cm[b] = jm[b];
                        }
                    }
                }
            }
            if (s != IB_OK)
                break;
            /* the report of this eps, and the images rounded to bytes */
            ib_attack_row *row = &out->rows[ei];
            for (int64_t b = 0; b < B; b++)
                round_u8(chosen + b * D, p0 + b * D, D, eps, cfg->norm, q8 + b * D, qf + b * D);
            s = judge(&a, qf, alab, (uint64_t)bi, jm, jp);
            if (s != IB_OK)
                break;
            row_acc *ac = &acc[ei];
            for (int64_t b = 0; b < count; b++) {
                bool clean_ok = clean_p[b] == lab[b];
                row->pred[off + b] = cp[b];
                ac->correct += cp[b] == lab[b];
                ac->correct_u8 += jp[b] == lab[b];
                bool succ = cfg->targeted ? cp[b] == tgt[b] : clean_ok && cp[b] != lab[b];
                bool succ8 = cfg->targeted ? jp[b] == tgt[b] : clean_ok && jp[b] != lab[b];
                ac->success += succ;
                ac->success_u8 += succ8;
                if (succ) {
                    ac->nsucc++;
                    ac->l2 += ib__attack_l2(chosen + b * D, p0 + b * D, D);
                    ac->linf += ib__attack_linf(chosen + b * D, p0 + b * D, D);
                }
                if (cfg->keep_images) {
                    memcpy(row->images + (off + b) * D, chosen + b * D, (size_t)D * sizeof(float));
                    memcpy(row->images_u8 + (off + b) * D, q8 + b * D, (size_t)D);
                }
            }
        }
    }
    if (s == IB_OK && n > 0) {
        out->clean_acc = (double)clean_correct / (double)n;
        double denom = cfg->targeted ? (double)n : (double)clean_correct;
        for (int r = 0; r < n_rows; r++) {
            ib_attack_row *row = &out->rows[r];
            row->robust_acc = (double)acc[r].correct / (double)n;
            row->robust_acc_u8 = (double)acc[r].correct_u8 / (double)n;
            row->success_rate = denom > 0 ? (double)acc[r].success / denom : 0.0;
            row->success_rate_u8 = denom > 0 ? (double)acc[r].success_u8 / denom : 0.0;
            row->mean_l2 = acc[r].nsucc ? acc[r].l2 / (double)acc[r].nsucc : 0.0;
            row->mean_linf = acc[r].nsucc ? acc[r].linf / (double)acc[r].nsucc : 0.0;
        }
    }
    out->seconds = ib__now_s() - t0;
done:
    free(p0);
    free(cur);
    free(chosen);
    free(qf);
    free(best);
    free(q8);
    free(a.grad);
    free(a.m);
    free(bestm);
    free(jm);
    free(cm);
    free(cw_l2);
    free(lab);
    free(tgt);
    free(alab);
    free(jp);
    free(cp);
    free(clean_p);
    free(pjp);
    free(jsucc);
    if (s != IB_OK)
        ib_attack_result_free(out);
    return s;
}
