/*
 * ema_bn.c — batch-norm statistics for the EMA weights (--ema-bn-batches).
 *
 * The EMA averages the trainable weights only; the running statistics of
 * the training network belong to its own last weights, and paired with the
 * averaged ones they can put a short run near chance (docs/checkpoints.md,
 * "The EMA and batch norm").  So before the averaged network is evaluated
 * or saved, its statistics are recomputed for it, as torch's update_bn
 * does: a forward pass in training mode (no backward, no step) of the EMA
 * weights over the first K batches of the epoch's training order, each
 * batch norm's running mean and (unbiased) variance set to the mean of its
 * K batch statistics.  The pass runs with every batch norm's momentum set
 * to 1, so that after each batch the running buffers hold exactly that
 * batch's statistics, summed here in double.
 *
 * The statistics are written into the store while the EMA is swapped in,
 * handed to the EMA (ib_ema_keep_buffer: later swaps put them in, and
 * last.safetensors stores them as ema.<buffer>), and the swap back
 * restores the training network's own, so training goes on with exactly
 * the bits it had.  The data are the trainer's batches in the seeded
 * order of the epoch in progress (augmentation keyed by seed and epoch),
 * the noise keyed by steps the training never uses: the same run gives the
 * same statistics, resumed or not.  A recomputation is kept for the step
 * it was made at (the evaluation and the checkpoints of one epoch share
 * it).  A model without batch norm, or --ema-bn-batches 0, changes nothing.
 *
 * Several ranks: every rank passes its rows of the same K batches (a
 * synchronised batch norm then takes global statistics), and the results
 * are averaged over the ranks as the training statistics are.
 */
#include "train_internal.h"

typedef ib__train_run run;

/* The forward passes' step keys: far above any step a run takes. */
#define EMA_BN_STEP_BASE (UINT64_C(1) << 62)

/* What this file reads of a batch-norm node (src/ops/norm.c): f[0] its
 * momentum, i[0] its channels, i[3] whether the last forward used batch
 * statistics, in[3] and in[4] its running buffers. */
typedef struct bn_slot {
    ib_node *node;
    double *sum; /* 2 C: running mean, then running variance */
    double momentum;
} bn_slot;

/* The ops of src/ops/norm.c that keep running statistics (one node layout:
 * a batch norm followed by a ReLU in one op has the same attributes). */
static bool is_batchnorm(const ib_node *n)
{
    return n->op && (strcmp(n->op->name, "batchnorm") == 0 || strcmp(n->op->name, "batchnorm_relu") == 0);
}

static int count_batchnorms(const ib_graph *g)
{
    int nb = 0;
    for (int k = 0; k < g->n_nodes; k++)
        nb += is_batchnorm(g->nodes[k]);
    return nb;
}

/* A batch norm's running mean (which 0) or variance (1): store buffers,
 * inputs 3 and 4 of the op (src/ops/norm.c). */
static ib_node *running(const bn_slot *b, int which) { return b->node->in[3 + which]; }

static ib_status recompute(run *r)
{
    ib_graph *g = r->tr.g;
    int nb = count_batchnorms(g);
    int64_t per_epoch = ib_batcher_batches_per_epoch(r->batcher);
    int64_t k_max = r->cfg.ema_bn_batches < per_epoch ? r->cfg.ema_bn_batches : per_epoch;
    bn_slot *bs = calloc((size_t)nb + 1, sizeof *bs);
    if (!bs)
        return ib__error(IB_ERR_NOMEM, "EMA batch-norm statistics: out of memory");
    ib_status s = IB_OK;
    int j = 0;
    for (int k = 0; k < g->n_nodes && s == IB_OK; k++) {
        ib_node *n = g->nodes[k];
        if (!is_batchnorm(n))
            continue;
        bs[j].node = n;
        bs[j].momentum = n->f[0];
        bs[j].sum = calloc((size_t)(2 * n->i[0]) + 1, sizeof(double));
        if (!bs[j].sum)
            s = ib__error(IB_ERR_NOMEM, "EMA batch-norm statistics: out of memory");
        j++;
    }
    /* the statistics start again, as update_bn resets them */
    for (j = 0; j < nb && s == IB_OK; j++) {
        bs[j].node->f[0] = 1.0;
        ib_node *rm = running(&bs[j], 0), *rv = running(&bs[j], 1);
        for (int64_t c = 0; c < bs[j].node->i[0]; c++) {
            rm->value[c] = 0.0f;
            rv->value[c] = 1.0f;
        }
    }
    /* the epoch in progress (the one just finished at an epoch's end) */
    int64_t epoch = r->step > 0 ? (r->step - 1) / per_epoch : 0;
    ib_batcher_epoch(r->batcher, epoch);
    for (int v = 1; v < r->tr.n_views; v++)
        ib_batcher_epoch(r->view_batcher[v], epoch);
    uint64_t step0 = ib_graph_step(g);
    int64_t done = 0;
    for (; done < k_max && s == IB_OK; done++) {
        if (!ib__run_next_batch(r, NULL)) {
            s = ib__error(IB_ERR_ARG, "EMA batch-norm statistics: batch %lld of the training data could not be "
                                      "read (views out of step)", (long long)done + 1);
            break;
        }
        ib_graph_set_step(g, EMA_BN_STEP_BASE + (uint64_t)r->step * (uint64_t)k_max + (uint64_t)done);
        ib_graph_forward(g);
        /* With momentum 1 a batch norm that used batch statistics holds
         * them now; one that did not (gamma and beta frozen) keeps its
         * statistics and is restored below. */
        for (j = 0; j < nb; j++) {
            if (!bs[j].node->i[3])
                continue;
            int64_t ch = bs[j].node->i[0];
            const float *rm = running(&bs[j], 0)->value, *rv = running(&bs[j], 1)->value;
            for (int64_t c = 0; c < ch; c++) {
                bs[j].sum[c] += rm[c];
                bs[j].sum[ch + c] += rv[c];
            }
        }
    }
    ib_graph_set_step(g, step0);
    for (j = 0; j < nb; j++) {
        ib_node *n = bs[j].node;
        n->f[0] = bs[j].momentum;
        if (s != IB_OK || !n->i[3])
            continue;
        float *rm = running(&bs[j], 0)->value, *rv = running(&bs[j], 1)->value;
        for (int64_t c = 0; c < n->i[0]; c++) {
            rm[c] = (float)(bs[j].sum[c] / (double)done);
            rv[c] = (float)(bs[j].sum[n->i[0] + c] / (double)done);
        }
    }
    if (s == IB_OK)
        ib__dp_sync_buffers(r); /* several ranks: their statistics averaged, as the training's */
    for (j = 0; j < nb && s == IB_OK; j++) {
        ib_node *n = bs[j].node;
        if (!n->i[3])
            continue; /* a frozen batch norm: the training network's statistics are its own */
        s = ib_ema_keep_buffer(r->ema, running(&bs[j], 0)->param_index);
        if (s == IB_OK)
            s = ib_ema_keep_buffer(r->ema, running(&bs[j], 1)->param_index);
    }
    for (j = 0; j < nb; j++)
        free(bs[j].sum);
    free(bs);
    return s;
}

bool ib__run_ema_bn_on(const run *r)
{
    return r->ema && r->cfg.ema_bn_batches > 0 && count_batchnorms(r->tr.g) > 0;
}

ib_status ib__run_ema_in(run *r)
{
    if (!r->ema)
        return IB_OK;
    ib_status s = ib_ema_swap(r->ema);
    if (s != IB_OK || !ib__run_ema_bn_on(r) || r->ema_bn_step == r->step)
        return s;
    s = recompute(r);
    if (s == IB_OK)
        r->ema_bn_step = r->step;
    else
        ib_ema_swap(r->ema); /* the training values back: the caller does not swap after a failure */
    return s;
}

void ib__run_ema_out(run *r)
{
    if (r->ema)
        ib_ema_swap(r->ema);
}

ib_status ib__run_ema_bn_refresh(run *r)
{
    if (!ib__run_ema_bn_on(r) || r->ema_bn_step == r->step)
        return IB_OK;
    ib_status s = ib__run_ema_in(r);
    if (s == IB_OK)
        ib__run_ema_out(r);
    return s;
}
