/*
 * attack_grad.c — the one gradient every attack takes: the attacker's loss
 * of the S-sample average and its gradient with respect to the PIXELS.
 *
 * The loss is formed outside the graph, in double, from the logits of the
 * samples: la_c = log (1/S) sum_s softmax(logits_s)_c (log of the averaged
 * probabilities, the prediction Deep VIB reports), and the loss is CE or
 * the margin on la.  Its gradient with respect to every sample's logits
 * is then pushed through the graph by one backward per pass from the head
 * loss = sum(logits * w), w = dL/dlogits: the vector-Jacobian product.  So
 * the expectation over the noise (EOT) is exact for the S samples drawn,
 * whether they come from one graph of S copies (ib_repeat) or from S
 * passes with the noise of each pass fixed by its step.  The pixels map
 * to the model's input through the normalisation x = (p - mean_c)/std_c,
 * so dL/dp = dL/dx / std_c.
 */
#include "attack_internal.h"

#include <math.h>

ib_status ib_attack_head_build(ib_graph *g, ib_node *x, ib_node *logits, ib_attack_head *out)
{
    if (!g || !x || !logits || !out)
        return ib__error(IB_ERR_ARG, "ib_attack_head_build: NULL argument");
    memset(out, 0, sizeof *out);
    if (g->compiled)
        return ib__error(IB_ERR_STATE, "ib_attack_head_build: the graph is already compiled (build the head first)");
    if (g->forward_only)
        return ib__error(IB_ERR_STATE, "ib_attack_head_build: the graph is forward-only; an attack needs gradients");
    if (x->kind != IB__INPUT || x->dtype != IB_F32 || x->ndim < 2)
        return ib__error(IB_ERR_ARG, "ib_attack_head_build: '%s' is not a float input with a batch dimension",
                         x->name);
    if (logits->ndim != 2 || logits->dtype != IB_F32 || logits->shape[0] % x->shape[0] != 0)
        return ib__error(IB_ERR_SHAPE,
                         "ib_attack_head_build: the logits '%s' must be (B*m, classes) for the input's batch %lld",
                         logits->name, (long long)x->shape[0]);
    ib_node *w = ib_input(g, "attack.dlogits", 2, logits->shape);
    ib_node *loss = ib_node_set_name(ib_sum(g, ib_mul(g, logits, w), IB_ALL), "attack.loss");
    if (!loss)
        return ib_graph_status(g) != IB_OK ? ib_graph_status(g)
                                           : ib__error(IB_ERR_ARG, "ib_attack_head_build: could not build the head");
    ib_node_set_requires_grad(x, true);
    *out = (ib_attack_head){.g = g, .x = x, .logits = logits, .w = w, .loss = loss};
    return IB_OK;
}

ib_status ib_pixel_norm_from(const ib_batcher_config *bc, int channels, ib_pixel_norm *out)
{
    if (!bc || !out || channels < 1)
        return ib__error(IB_ERR_ARG, "ib_pixel_norm_from: bad argument");
    memset(out, 0, sizeof *out);
    out->channels = channels;
    if (bc->norm == IB_NORM_STANDARDIZE && channels > 4)
        return ib__error(IB_ERR_ARG, "ib_pixel_norm_from: standardisation has at most 4 channels (%d given)",
                         channels);
    for (int c = 0; c < 4; c++) {
        switch (bc->norm) {
        case IB_NORM_UNIT: out->mean[c] = 0.0f, out->std[c] = 1.0f; break;
        case IB_NORM_SYMMETRIC: out->mean[c] = 0.5f, out->std[c] = 0.5f; break;
        case IB_NORM_STANDARDIZE:
            if (c < channels && !(bc->std[c] > 0.0f && isfinite(bc->std[c]) && isfinite(bc->mean[c])))
                return ib__error(IB_ERR_ARG,
                                 "ib_pixel_norm_from: channel %d has std %g: an attack needs the training "
                                 "statistics the model was trained with (std > 0)",
                                 c, (double)bc->std[c]);
            out->mean[c] = c < channels ? bc->mean[c] : 0.0f;
            out->std[c] = c < channels ? bc->std[c] : 1.0f;
            break;
        default: return ib__error(IB_ERR_ARG, "ib_pixel_norm_from: unknown normalisation %d", (int)bc->norm);
        }
    }
    return IB_OK;
}

uint64_t ib__attack_step_key(uint64_t seed, uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
    uint64_t s = ib_rng_stream_of("attack.steps");
    uint64_t k = ib_rng_u64(seed, s, a, b);
    k = ib_rng_u64(k, s, c, d);
    return k & ~(uint64_t)4095;
}

ib_status ib__attack_check_head(const ib_attack_head *h, const ib_pixel_norm *pn, const char *who)
{
    if (!h || !h->g || !h->x || !h->logits || !h->w || !h->loss || !pn)
        return ib__error(IB_ERR_ARG, "%s: NULL argument", who);
    if (!h->g->compiled)
        return ib__error(IB_ERR_STATE, "%s: the graph is not compiled", who);
    int64_t per = h->x->numel / h->x->shape[0];
    if (pn->channels < 1 || pn->channels > 4 || per % pn->channels != 0)
        return ib__error(IB_ERR_ARG,
                         "%s: the normalisation has %d channels, the input '%s' has %lld values per example", who,
                         pn->channels, h->x->name, (long long)per);
    for (int c = 0; c < pn->channels; c++)
        if (!(pn->std[c] > 0.0f) || !isfinite(pn->std[c]) || !isfinite(pn->mean[c]))
            return ib__error(IB_ERR_ARG, "%s: channel %d of the normalisation has std %g", who, c,
                             (double)pn->std[c]);
    return IB_OK;
}

/* Per row: la (classes) from the samples' logits; returns the margin and
 * fills g (dL/dla) for the loss.  lab is the true class (untargeted) or
 * the target. */
static double row_loss(const double *la, int k, int lab, ib_attack_loss loss, bool targeted, double *gl,
                       double *loss_out)
{
    int other = -1;
    for (int c = 0; c < k; c++)
        if (c != lab && (other < 0 || la[c] > la[other]))
            other = c;
    double margin = targeted ? la[lab] - la[other] : la[other] - la[lab];
    for (int c = 0; c < k; c++)
        gl[c] = 0.0;
    double l;
    if (loss == IB_ATTACK_LOSS_CE) {
        l = targeted ? la[lab] : -la[lab];
        gl[lab] = targeted ? 1.0 : -1.0;
    } else {
        l = margin;
        gl[lab] = targeted ? 1.0 : -1.0;
        gl[other] = targeted ? -1.0 : 1.0;
    }
    if (loss_out)
        *loss_out = l;
    return margin;
}

ib_status ib__attack_eval(const ib_attack_head *h, const ib_pixel_norm *pn, const float *p, const int32_t *labels,
                          ib_attack_loss loss, bool targeted, int samples, bool mean_path, uint64_t seed,
                          uint64_t step0, double *loss_out, double *margin_out, int32_t *pred, float *grad)
{
    ib_status hs = ib__attack_check_head(h, pn, "ib_attack_loss_grad");
    if (hs != IB_OK)
        return hs;
    if (!p || !labels || samples < 1 || (loss != IB_ATTACK_LOSS_CE && loss != IB_ATTACK_LOSS_MARGIN))
        return ib__error(IB_ERR_ARG, "ib_attack_loss_grad: bad argument (pixels, labels, samples >= 1, loss ce or "
                                     "margin)");
    ib_graph *g = h->g;
    ib_node *x = h->x, *lg = h->logits;
    int64_t B = x->shape[0], D = x->numel / B, hw = D / pn->channels;
    int64_t m = lg->shape[0] / B;
    int k = (int)lg->shape[1];
    for (int64_t b = 0; b < B; b++)
        if (labels[b] < 0 || labels[b] >= k)
            return ib__error(IB_ERR_ARG, "ib_attack_loss_grad: label %d of row %lld is outside [0, %d)", labels[b],
                             (long long)b, k);
    bool stochastic = !mean_path && ib_graph_first_random(g) != NULL;
    int64_t passes = stochastic ? (samples + m - 1) / m : 1;
    int64_t stot = passes * m, per_pass = B * m * k;
    float *lbuf = malloc((size_t)(passes * per_pass) * sizeof(float));
    double *lq = malloc((size_t)(stot * k) * sizeof(double));
    double *la = malloc((size_t)k * 2 * sizeof(double));
    float *wbuf = grad ? malloc((size_t)(passes * per_pass) * sizeof(float)) : NULL;
    double *gx = grad ? calloc((size_t)(B * D), sizeof(double)) : NULL;
    ib_status s = IB_OK;
    if (!lbuf || !lq || !la || (grad && (!wbuf || !gx))) {
        s = ib__error(IB_ERR_NOMEM, "ib_attack_loss_grad: out of memory");
        goto done;
    }
    bool was_training = g->training, was_sampling = g->sampling, was_pg = g->param_grads;
    uint64_t old_seed = g->seed, old_step = g->step;
    g->training = false;
    g->sampling = stochastic;
    g->param_grads = false;
    g->seed = seed;
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < D; i++) {
            int c = (int)(i / hw);
            x->value[b * D + i] = (p[b * D + i] - pn->mean[c]) / pn->std[c];
        }
    memset(h->w->value, 0, (size_t)per_pass * sizeof(float));
    /* The passes differ only from the first random op on: after the first
     * full forward the others redraw the noise from there (the same bits as
     * a full forward with the same step), so a network whose noise sits in
     * its head (resnet20-vib) runs its backbone once per call, not 2S - 1
     * times.  Backward leaves the values alone unless the graph reuses its
     * memory, in which case every pass stays a full forward. */
    ib_node *redraw = stochastic && !g->reuse_values && !g->forward_only ? ib_graph_first_random(g) : NULL;
    for (int64_t q = 0; q < passes && s == IB_OK; q++) {
        g->step = step0 + (uint64_t)q;
        s = q > 0 && redraw ? ib_graph_forward_from(g, redraw) : ib_graph_forward(g);
        if (s == IB_OK)
            memcpy(lbuf + q * per_pass, lg->value, (size_t)per_pass * sizeof(float));
    }
    for (int64_t b = 0; b < B && s == IB_OK; b++) {
        /* log-softmax of every sample of row b, then la = log-mean-exp */
        for (int64_t q = 0; q < passes; q++)
            for (int64_t j = 0; j < m; j++) {
                const float *l = lbuf + q * per_pass + (b * m + j) * k;
                double *o = lq + (q * m + j) * k, mx = -INFINITY, sum = 0;
                for (int c = 0; c < k; c++)
                    mx = fmax(mx, (double)l[c]);
                for (int c = 0; c < k; c++)
                    sum += exp((double)l[c] - mx);
                for (int c = 0; c < k; c++)
                    o[c] = (double)l[c] - mx - log(sum);
            }
        for (int c = 0; c < k; c++) {
            double mx = -INFINITY, sum = 0;
            for (int64_t t = 0; t < stot; t++)
                mx = fmax(mx, lq[t * k + c]);
            for (int64_t t = 0; t < stot; t++)
                sum += exp(lq[t * k + c] - mx);
            la[c] = mx + log(sum / (double)stot);
        }
        double *gl = la + k, lo;
        double mg = row_loss(la, k, labels[b], loss, targeted, gl, &lo);
        if (loss_out)
            loss_out[b] = lo;
        if (margin_out)
            margin_out[b] = mg;
        if (pred) {
            int best = 0;
            for (int c = 1; c < k; c++)
                if (la[c] > la[best])
                    best = c;
            pred[b] = best;
        }
        if (!grad)
            continue;
        /* dL/dlogits_{t,c} = g_c w_{t,c} - q_{t,c} sum_c' g_c' w_{t,c'},
         * w_{t,c} = d la_c / d lq_{t,c} = exp(lq_{t,c} - la_c) / S */
        for (int64_t q = 0; q < passes; q++)
            for (int64_t j = 0; j < m; j++) {
                const double *o = lq + (q * m + j) * k;
                float *wo = wbuf + q * per_pass + (b * m + j) * k;
                double dot = 0;
                for (int c = 0; c < k; c++)
                    if (gl[c] != 0.0)
                        dot += gl[c] * exp(o[c] - la[c]) / (double)stot;
                for (int c = 0; c < k; c++) {
                    double wc = gl[c] != 0.0 ? gl[c] * exp(o[c] - la[c]) / (double)stot : 0.0;
                    wo[c] = (float)(wc - exp(o[c]) * dot);
                }
            }
    }
    if (grad && s == IB_OK) {
        /* the last pass's values are still in the graph: its backward first */
        for (int64_t q = passes - 1; q >= 0 && s == IB_OK; q--) {
            if (q != passes - 1) {
                g->step = step0 + (uint64_t)q;
                s = redraw ? ib_graph_forward_from(g, redraw) : ib_graph_forward(g);
                if (s != IB_OK)
                    break;
            }
            memcpy(h->w->value, wbuf + q * per_pass, (size_t)per_pass * sizeof(float));
            s = ib_graph_backward(g, h->loss);
            for (int64_t e = 0; s == IB_OK && e < B * D; e++)
                gx[e] += x->grad[e];
        }
        for (int64_t b = 0; b < B && s == IB_OK; b++)
            for (int64_t i = 0; i < D; i++)
                grad[b * D + i] = (float)(gx[b * D + i] / pn->std[i / hw]);
    }
    g->training = was_training;
    g->sampling = was_sampling;
    g->param_grads = was_pg;
    g->seed = old_seed;
    g->step = old_step;
done:
    free(lbuf);
    free(lq);
    free(la);
    free(wbuf);
    free(gx);
    return s;
}

ib_status ib_attack_loss_grad(const ib_attack_head *h, const ib_pixel_norm *pn, const float *p,
                              const int32_t *labels, ib_attack_loss loss, bool targeted, int samples, bool mean_path,
                              uint64_t seed, uint64_t step0, double *loss_out, double *margin_out, float *grad)
{
    return ib__attack_eval(h, pn, p, labels, loss, targeted, samples, mean_path, seed, step0, loss_out, margin_out,
                           NULL, grad);
}

void ib__attack_project(float *p, const float *p0, int64_t d, float eps, ib_attack_norm norm)
{
    if (norm == IB_ATTACK_LINF) {
        for (int64_t i = 0; i < d; i++) {
            float lo = fmaxf(0.0f, p0[i] - eps), hi = fminf(1.0f, p0[i] + eps);
            float v = fminf(fmaxf(p[i], lo), hi);
            if (isnan(v))
                v = p0[i];
            /* p0 -+ eps rounds in float: step toward p0 until the distance
             * holds in exact arithmetic (p0 itself always does) */
            while ((double)v - (double)p0[i] > (double)eps)
                v = nextafterf(v, p0[i]);
            while ((double)p0[i] - (double)v > (double)eps)
                v = nextafterf(v, p0[i]);
            p[i] = v;
        }
        return;
    }
    /* L2: into the ball, then into the box; clipping to a box that holds
     * p0 moves no element away from p0, so the ball still holds */
    for (int tries = 0;; tries++) {
        double n = ib__attack_l2(p, p0, d);
        if (n > (double)eps) {
            double sc = (double)eps / n * (tries ? 1.0 - 1e-6 * tries : 1.0);
            for (int64_t i = 0; i < d; i++)
                p[i] = p0[i] + (float)(((double)p[i] - (double)p0[i]) * sc);
        }
        for (int64_t i = 0; i < d; i++) {
            float v = fminf(fmaxf(p[i], 0.0f), 1.0f);
            p[i] = isnan(v) ? p0[i] : v;
        }
        if (ib__attack_l2(p, p0, d) <= (double)eps)
            return;
        if (tries >= 8) {
            memcpy(p, p0, (size_t)d * sizeof(float));
            return;
        }
    }
}

double ib__attack_l2(const float *a, const float *b, int64_t d)
{
    double s = 0;
    for (int64_t i = 0; i < d; i++) {
        double e = (double)a[i] - (double)b[i];
        s += e * e;
    }
    return sqrt(s);
}

double ib__attack_linf(const float *a, const float *b, int64_t d)
{
    double s = 0;
    for (int64_t i = 0; i < d; i++)
        s = fmax(s, fabs((double)a[i] - (double)b[i]));
    return s;
}
