/*
 * evaluate.c — accuracy and likelihood of a stochastic network on a data
 * set, the three ways the Deep VIB paper reports them: one sample, the
 * average of the softmax probabilities over S samples, and the mean path.
 */
#include "../core/internal.h"
#include "calibration_internal.h"

#include <math.h>

void ib_eval_result_free(ib_eval_result *r)
{
    if (r) {
        free(r->confusion);
        r->confusion = NULL;
    }
}

/* Row-wise softmax of logits (rows, classes) into p, in double for the NLL. */
static void softmax_rows(const float *logits, int64_t rows, int classes, double *p)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *l = logits + r * classes;
        double m = l[0], s = 0;
        for (int c = 1; c < classes; c++)
            m = fmax(m, l[c]);
        for (int c = 0; c < classes; c++) {
            p[r * classes + c] = exp((double)l[c] - m);
            s += p[r * classes + c];
        }
        for (int c = 0; c < classes; c++)
            p[r * classes + c] /= s;
    }
}

static int argmax_row(const double *p, int classes)
{
    int best = 0;
    for (int c = 1; c < classes; c++)
        if (p[c] > p[best])
            best = c;
    return best;
}

/* Sums of one rank's batches, in one vector of doubles so one allreduce
 * adds them over the ranks: every count is an integer below 2^53, so its
 * sum in double is exact; the NLL, entropy, Brier and confidence sums are
 * added in another grouping (per rank, then over the ranks) than one
 * process adds them, which moves them by rounding only (about n * 1e-16
 * relative).  Layout: 3 correct counts, 3 likelihood sums, the KL sums,
 * the two calibration accumulators (n, brier, entropy, count, correct,
 * conf), then the confusion matrix. */
static void reduce_shards(int64_t correct[3], double sums[3], double *kl_sum, int n_kl, ib__calib_acc *cal,
                          int64_t *n, int64_t *confusion, int classes, double *v)
{
    const int B = IB_CALIBRATION_BINS;
    int k = 0;
    v[k++] = (double)*n;
    for (int i = 0; i < 3; i++)
        v[k++] = (double)correct[i];
    for (int i = 0; i < 3; i++)
        v[k++] = sums[i];
    for (int l = 0; l < n_kl; l++)
        v[k++] = kl_sum[l];
    for (int c = 0; c < 2; c++) {
        v[k++] = (double)cal[c].n;
        v[k++] = cal[c].brier;
        v[k++] = cal[c].entropy;
        for (int b = 0; b < B; b++) {
            v[k++] = (double)cal[c].count[b];
            v[k++] = (double)cal[c].correct[b];
            v[k++] = cal[c].conf[b];
        }
    }
    for (int64_t e = 0; e < (int64_t)classes * classes; e++)
        v[k++] = (double)confusion[e];
    ib__dist_sum_f64(v, k);
    k = 0;
    *n = (int64_t)v[k++];
    for (int i = 0; i < 3; i++)
        correct[i] = (int64_t)v[k++];
    for (int i = 0; i < 3; i++)
        sums[i] = v[k++];
    for (int l = 0; l < n_kl; l++)
        kl_sum[l] = v[k++];
    for (int c = 0; c < 2; c++) {
        cal[c].n = (int64_t)v[k++];
        cal[c].brier = v[k++];
        cal[c].entropy = v[k++];
        for (int b = 0; b < B; b++) {
            cal[c].count[b] = (int64_t)v[k++];
            cal[c].correct[b] = (int64_t)v[k++];
            cal[c].conf[b] = v[k++];
        }
    }
    for (int64_t e = 0; e < (int64_t)classes * classes; e++)
        confusion[e] = (int64_t)v[k++];
}

ib_status ib_evaluate(ib_graph *g, ib_node *x, ib_node *logits, int n_kl, ib_node *const *kl, const ib_dataset *d,
                      const ib_batcher_config *bc, int samples, uint64_t seed, ib_eval_result *out)
{
    return ib_evaluate_shard(g, x, logits, n_kl, kl, d, bc, samples, seed, 0, 1, out);
}

ib_status ib_evaluate_shard(ib_graph *g, ib_node *x, ib_node *logits, int n_kl, ib_node *const *kl,
                             const ib_dataset *d, const ib_batcher_config *bc, int samples, uint64_t seed, int rank,
                             int ranks, ib_eval_result *out)
{
    memset(out, 0, sizeof *out);
    if (!g || !x || !logits || !d || !bc || samples < 1 || n_kl < 0 || n_kl > IB_MAX_BOTTLENECKS || ranks < 1 ||
        rank < 0 || rank >= ranks)
        return ib__error(IB_ERR_ARG, "ib_evaluate: bad argument");
    if (ranks > 1 && ranks != ib_dist_size()) /* the sums are taken over the whole job */
        return ib__error(IB_ERR_ARG, "ib_evaluate_shard: %d ranks asked, the job has %d", ranks, ib_dist_size());
    if (!g->compiled)
        return ib__error(IB_ERR_STATE, "ib_evaluate: the graph is not compiled");
    int64_t batch = x->shape[0];
    int classes = (int)logits->shape[1];
    if (x->ndim != 4 || x->shape[1] != d->c || x->shape[2] != d->h || x->shape[3] != d->w)
        return ib__error(IB_ERR_SHAPE, "ib_evaluate: the input node does not fit %s images (%d, %d, %d)", d->name,
                         d->c, d->h, d->w);
    if (classes < d->classes)
        return ib__error(IB_ERR_SHAPE, "ib_evaluate: the model has %d classes, %s has %d", classes, d->name,
                         d->classes);
    ib_batcher_config cfg = *bc;
    cfg.batch_size = batch;
    cfg.shuffle = false;
    cfg.drop_last = false;
    cfg.crop_pad = 0;
    cfg.hflip = false;
    ib_batcher *b = NULL;
    ib_status s = ib_batcher_new(d, &cfg, &b);
    if (s != IB_OK)
        return s;
    int32_t *y = malloc((size_t)batch * sizeof *y);
    double *p_mean = malloc((size_t)(batch * classes) * sizeof(double));
    double *p_one = malloc((size_t)(batch * classes) * sizeof(double));
    double *p_avg = malloc((size_t)(batch * classes) * sizeof(double));
    double *p_tmp = malloc((size_t)(batch * classes) * sizeof(double));
    out->confusion = calloc((size_t)classes * (size_t)classes, sizeof(int64_t));
    if (!y || !p_mean || !p_one || !p_avg || !p_tmp || !out->confusion) {
        s = ib__error(IB_ERR_NOMEM, "ib_evaluate: out of memory");
        goto done;
    }
    bool was_training = g->training, was_sampling = g->sampling;
    uint64_t old_seed = g->seed, old_step = g->step;
    g->training = false;
    g->seed = seed;
    /* Sampled whenever the graph draws noise in eval mode: a Bernoulli
     * network (IMB) has no Gaussian KL node but is stochastic all the same;
     * with particles, logits is already the particle average and the mean
     * path is the deterministic twin (every sample its mean).  Dropout is
     * the identity in eval mode, so a network with dropout only is not. */
    bool stochastic = false;
    const ib_node *first_random = ib_graph_first_random(g);
    for (int i = first_random ? first_random->id : g->n_nodes; i < g->n_nodes && !stochastic; i++)
        stochastic = g->nodes[i]->random && strcmp(g->nodes[i]->op->name, "dropout") != 0;
    int64_t correct_one = 0, correct_avg = 0, correct_mean = 0, count, batches = 0;
    double nll_avg = 0, nll_mean = 0, ce_samples = 0, kl_sum[IB_MAX_BOTTLENECKS] = {0};
    ib__calib_acc cal_avg = {0}, cal_mean = {0};
    ib_batcher_epoch(b, 0);
    for (; ib_batcher_next(b, x->value, y, &count); batches++) {
        /* Several ranks: rank r takes batches r, r + N, ...  Whole batches
         * keep each one's rows, padding and noise key (g->step) those of
         * one process, so every batch's figures are the same bits; the
         * others' batches are read and dropped (reading is a copy, small
         * against the forward passes). */
        if (batches % ranks != rank)
            continue;
        if (count < batch)
            memset(x->value + count * d->c * d->h * d->w, 0,
                   (size_t)((batch - count) * d->c * d->h * d->w) * sizeof(float));
        g->sampling = false;
        ib_graph_forward(g);
        softmax_rows(logits->value, count, classes, p_mean);
        for (int l = 0; l < n_kl; l++) {
            /* a layer after others with particles has one KL row per
             * incoming path (N * upstream rows, each example's in a row):
             * an example's KL is the mean over its paths */
            int64_t up = kl[l]->numel == 1 ? 1 : kl[l]->shape[0] / batch;
            double sum = 0;
            int64_t rows = kl[l]->numel == 1 ? 1 : count * up;
            for (int64_t r = 0; r < rows; r++)
                sum += kl[l]->value[r];
            if (up > 1)
                sum /= (double)up;
            kl_sum[l] += kl[l]->numel == 1 ? sum * (double)count : sum;
        }
        if (stochastic) {
            g->sampling = true;
            memset(p_avg, 0, (size_t)(count * classes) * sizeof(double));
            /* nodes before the first random op do not change between
             * samples: recompute only from there */
            ib_node *first = ib_graph_first_random(g);
            for (int k = 0; k < samples; k++) {
                g->step = (uint64_t)batches * (uint64_t)samples + (uint64_t)k;
                if (first)
                    ib_graph_forward_from(g, first);
                else
                    ib_graph_forward(g);
                softmax_rows(logits->value, count, classes, k == 0 ? p_one : p_tmp);
                const double *src = k == 0 ? p_one : p_tmp;
                for (int64_t e = 0; e < count * classes; e++)
                    p_avg[e] += src[e] / samples;
                for (int64_t r = 0; r < count; r++)
                    ce_samples -= log(fmax(src[r * classes + y[r]], 1e-300)) / samples;
            }
        } else {
            memcpy(p_one, p_mean, (size_t)(count * classes) * sizeof(double));
            memcpy(p_avg, p_mean, (size_t)(count * classes) * sizeof(double));
            for (int64_t r = 0; r < count; r++)
                ce_samples -= log(fmax(p_mean[r * classes + y[r]], 1e-300));
        }
        for (int64_t r = 0; r < count; r++) {
            int t = y[r];
            const double *pa = p_avg + r * classes, *pm = p_mean + r * classes;
            int pred_avg = argmax_row(pa, classes);
            correct_avg += pred_avg == t;
            correct_one += argmax_row(p_one + r * classes, classes) == t;
            correct_mean += argmax_row(pm, classes) == t;
            nll_avg -= log(fmax(pa[t], 1e-300));
            nll_mean -= log(fmax(pm[t], 1e-300));
            out->confusion[(int64_t)t * classes + pred_avg]++;
            ib__calib_add(&cal_avg, pa, classes, t);
            ib__calib_add(&cal_mean, pm, classes, t);
        }
        out->n += count;
    }
    if (ranks > 1) {
        int64_t correct[3] = {correct_one, correct_avg, correct_mean};
        double sums[3] = {nll_avg, nll_mean, ce_samples};
        ib__calib_acc cal[2] = {cal_avg, cal_mean};
        double *v = malloc((size_t)(7 + n_kl + 2 * (3 + 3 * IB_CALIBRATION_BINS) + classes * classes) * sizeof *v);
        if (!v) { /* this rank fails; the command ends the job (ib_dist_abort), so no rank waits on it */
            s = ib__error(IB_ERR_NOMEM, "ib_evaluate: out of memory");
            g->training = was_training;
            g->sampling = was_sampling;
            g->seed = old_seed;
            g->step = old_step;
            goto done;
        }
        reduce_shards(correct, sums, kl_sum, n_kl, cal, &out->n, out->confusion, classes, v);
        free(v);
        correct_one = correct[0];
        correct_avg = correct[1];
        correct_mean = correct[2];
        nll_avg = sums[0];
        nll_mean = sums[1];
        ce_samples = sums[2];
        cal_avg = cal[0];
        cal_mean = cal[1];
    }
    g->training = was_training;
    g->sampling = was_sampling;
    g->seed = old_seed;
    g->step = old_step;
    out->classes = classes;
    ib__calib_finish(&cal_avg, &out->calib);
    ib__calib_finish(&cal_mean, &out->calib_mean);
    if (out->n > 0) {
        double n = (double)out->n;
        out->acc_1shot = (double)correct_one / n;
        out->acc_avg = (double)correct_avg / n;
        out->acc_mean = (double)correct_mean / n;
        out->nll_avg = nll_avg / n;
        out->nll_mean = nll_mean / n;
        out->ce_samples = ce_samples / n;
        for (int l = 0; l < n_kl; l++)
            out->kl[l] = kl_sum[l] / n;
    }
    out->n_kl = n_kl;
done:
    free(y);
    free(p_mean);
    free(p_one);
    free(p_avg);
    free(p_tmp);
    ib_batcher_free(b);
    if (s != IB_OK)
        ib_eval_result_free(out);
    return s;
}
