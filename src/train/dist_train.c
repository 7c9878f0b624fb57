/*
 * dist_train.c — what a run does differently on several ranks
 * (docs/mpi.md).  Each rank holds its rows of every global batch of B rows
 * (ib_shard_rows: B / N each, one more for the first B mod N ranks),
 * draws the noise of those global rows (the training graph's row offset),
 * and after backward the gradient buffer — one contiguous block,
 * ib_params_grads — is summed over the ranks in one allreduce, each rank's
 * weighted by its share n_r / B of the batch (its loss is a mean over its
 * n_r rows).  Every rank then holds the gradient of the global mean loss,
 * and the optimizer step, clipping and EMA are the same computation on
 * every rank.  On one rank nothing here changes a bit of the run.
 */
#include "train_internal.h"

#include <math.h>

typedef ib__train_run run;

bool ib__dp_writer(void) { return ib__dist_dp_rank() == 0; }

void ib__dp_begin(run *r, const ib_train_callbacks *cb)
{
    r->dp_rank = ib__dist_dp_rank();
    r->dp_size = ib__dist_dp_size();
    r->cb = cb;
    if (r->dp_rank != 0) { /* rank 0 alone reports; every rank obeys a stop */
        memset(&r->quiet_cb, 0, sizeof r->quiet_cb);
        r->quiet_cb.stop = cb ? cb->stop : NULL;
        r->cb = &r->quiet_cb;
    }
    if (r->dp_size > 1) /* one configuration: rank 0's (a struct of values, no pointers) */
        ib__dist_bcast(&r->cfg, (int64_t)sizeof r->cfg, 0);
}

ib_status ib__dp_shard(run *r)
{
    if (r->dp_size <= 1)
        return IB_OK;
    ib_status s = ib_batcher_shard(r->batcher, r->dp_rank, r->dp_size);
    for (int v = 1; s == IB_OK && v < r->tr.n_views; v++)
        s = ib_batcher_shard(r->view_batcher[v], r->dp_rank, r->dp_size);
    if (s != IB_OK)
        return ib__error(IB_ERR_ARG, "batch size %lld over %d ranks: every rank needs at least one row",
                         (long long)r->cfg.batch_size, r->dp_size);
    ib_graph_set_row_offset(r->tr.g, r->row0);
    if (r->cfg.sync_batchnorm)
        ib_graph_set_sync_batchnorm(r->tr.g, r->cfg.batch_size);
    return IB_OK;
}

void ib__dp_reduce_grads(run *r)
{
    if (r->dp_size <= 1)
        return;
    float *g = ib_params_grads(r->params);
    int64_t n = ib_params_total(r->params);
    const float w = (float)((double)r->local_batch / (double)r->cfg.batch_size);
#pragma omp parallel for simd schedule(static) if (n > IB_PAR_MIN)
    for (int64_t k = 0; k < n; k++)
        g[k] *= w;
    ib__dist_sum_f32(g, n);
}

void ib__dp_sync_buffers(run *r)
{
    if (r->dp_size <= 1 || r->cfg.sync_batchnorm) /* synchronised: already the same on every rank */
        return;
    ib_params *p = r->params;
    for (int i = 0; i < ib_params_count(p); i++) {
        if (ib_params_kind(p, i) != IB_PARAM_BUFFER)
            continue;
        float *v = ib_params_value(p, i);
        int64_t n = ib_params_numel(p, i);
        ib__dist_sum_f32(v, n);
        for (int64_t k = 0; k < n; k++)
            v[k] /= (float)r->dp_size;
    }
}

bool ib__dp_stop_agreed(run *r)
{
    double asked = r->cb && r->cb->stop && *r->cb->stop ? 1.0 : 0.0;
    if (r->dp_size > 1)
        ib__dist_sum_f64(&asked, 1);
    if (asked > 0) {
        r->stop = true;
        if (r->dp_size > 1 && r->cb && r->cb->stop) /* asked on some rank: every rank's caller learns it */
            *r->cb->stop = 1;
    }
    return r->stop;
}
