/*
 * loop.c — the epochs of a run: each step fills every view's input from
 * its batcher (all in one order), runs forward, backward, the optimizer
 * and the EMA, and adds up the method's named terms; each epoch ends with
 * the evaluation (EMA weights when on), the checkpoints and a line of
 * metrics.jsonl.
 *
 * Reproducibility: the batch order and augmentation are keyed by
 * (seed, epoch), the bottleneck noise by (seed, node, global step), the
 * evaluation noise by a fixed seed; so a run resumed from its last
 * checkpoint, even one written inside an epoch, reaches exactly the
 * weights of an uninterrupted run with the same thread count.
 */
#include "train_internal.h"

#include <math.h>

typedef ib__train_run run;

ib_status ib__run_evaluate(run *r, const ib_dataset *d, ib_eval_result *out)
{
    /* several ranks: each evaluates its share of the batches and all get
     * the sums (a collective: every rank of the run calls this) */
    return ib_evaluate_shard(r->ev.g, r->ev.x, r->ev.mo.logits, r->ev.n_kl, r->ev.kl_examples, d,
                              ib_batcher_get_config(r->batcher), r->cfg.eval_samples, r->cfg.seed ^ IB_EVAL_SEED_SALT,
                              r->dp_rank, r->dp_size, out);
}

ib_status ib__run_evaluate_view2(run *r, const ib_dataset *d, ib_eval_result *out)
{
    const ib__net *n = r->ev2.g ? &r->ev2 : &r->ev;
    return ib_evaluate(n->g, n->x, n->mo.logits, n->n_kl, n->kl_examples, d, ib_batcher_get_config(r->batcher),
                       r->cfg.eval_samples, r->cfg.seed ^ IB_EVAL_SEED_SALT, out);
}

/* Model selection: a two-view run is judged on both views, the mean of
 * their 12-sample accuracies on the selection set (validation if held out,
 * else test), so a checkpoint that helps one view by hurting the other is
 * not preferred; one view: its accuracy, as before. */
double ib__run_selection_score(const ib_eval_result *v1, const ib_eval_result *v2)
{
    return v2 ? 0.5 * (v1->acc_avg + v2->acc_avg) : v1->acc_avg;
}

static void views_epoch(run *r, int64_t epoch)
{
    for (int v = 1; v < r->tr.n_views; v++)
        ib_batcher_epoch(r->view_batcher[v], epoch);
}

/* The next batch of every view; false at the end of the epoch, or with
 * r->views_out_of_step set when a view's batch is not view 1's examples. */
bool ib__run_next_batch(run *r, int64_t *count)
{
    ib__net *n = &r->tr;
    int64_t c1 = 0, cv = 0;
    if (!ib_batcher_next(r->batcher, n->x->value, ib_node_labels(n->y), &c1))
        return false;
    if (count)
        *count = c1;
    /* Same data-set size, seed and batch size: batch j of every view holds
     * the same examples in the same order.  Checked on every batch (a
     * copy of at most a batch of indices and labels): the same example
     * indices, and the same labels unless label noise changed view 1's
     * (a mismatch would train each view towards the other's class). */
    const int32_t *y1 = ib_node_labels(n->y);
    for (int v = 1; v < n->n_views; v++) {
        if (!ib_batcher_next(r->view_batcher[v], n->views[v]->value, r->view_labels, &cv))
            cv = -1;
        bool same = cv == c1 && memcmp(ib_batcher_indices(r->batcher), ib_batcher_indices(r->view_batcher[v]),
                                       sizeof(int64_t) * (size_t)c1) == 0;
        if (same && !(r->cfg.label_noise && r->cfg.noise_rate > 0))
            same = memcmp(y1, r->view_labels, sizeof(int32_t) * (size_t)c1) == 0;
        if (!same) {
            r->views_out_of_step = v + 1;
            return false;
        }
    }
    return true;
}

static ib_status views_check(const run *r, int64_t epoch, int64_t done)
{
    if (!r->views_out_of_step)
        return IB_OK;
    return ib__error(IB_ERR_ARG, "epoch %lld, batch %lld: view %d's batch holds other examples or labels than "
                                      "view 1's (the views are out of step)",
                     (long long)epoch, (long long)done + 1, r->views_out_of_step);
}

/* IB_ERR_NUMERIC for a loss that went bad at this step: what was seen, and
 * what the run directory holds now (nothing of this step is saved). */
static ib_status loss_failure(run *r, int64_t epoch, int64_t batch, ib__loss_verdict v)
{
    char what[256], kept[1400];
    ib__loss_watch_explain(&r->watch, v, what, sizeof what);
    if (r->saved)
        snprintf(kept, sizeof kept,
                 "%s/last.safetensors keeps epoch %lld (step %lld) and is not overwritten; the run cannot go on "
                 "with these settings: try a smaller learning rate or beta in a new run",
                 r->cfg.out_dir, (long long)r->saved_epoch, (long long)r->saved_step);
    else
        snprintf(kept, sizeof kept,
                 "no checkpoint was saved yet, so nothing is kept; try a smaller learning "
                 "rate or beta in a new run (another --out, or remove %s)",
                 r->cfg.out_dir);
    return ib__error(IB_ERR_NUMERIC, "%s at epoch %lld, step %lld (batch %lld of the epoch); %s%s", what,
                     (long long)epoch, (long long)r->step, (long long)batch, kept,
                     v == IB__LOSS_NONFINITE ? "" : " (--no-divergence-check / divergence_check false lets it go on)");
}

static ib_status train_epoch(run *r, int64_t epoch, ib_epoch_report *rep)
{
    const ib_train_config *c = &r->cfg;
    ib__net *n = &r->tr;
    const ib_loss *L = &n->loss;
    int64_t batches = ib_batcher_batches_per_epoch(r->batcher);
    double t0 = ib__now_s(), wait0 = ib_batcher_wait_seconds(r->batcher);
    double loss_sum = 0, ce_sum = 0, kl_sum[IB_MAX_BOTTLENECKS] = {0}, term_sum[IB_MAX_TERMS] = {0};
    int64_t noisy_seen = 0, noisy_fit = 0, done = 0, count = 0;
    int classes = (int)n->mo.logits->shape[1];
    ib_batcher_epoch(r->batcher, epoch - 1);
    views_epoch(r, epoch - 1);
    /* A run stopped mid-epoch resumes after the batches it had trained: the
     * order is keyed by (seed, epoch), so skipping them is exact. */
    for (; done < r->skip_batches && ib__run_next_batch(r, &count); done++)
        ;
    if (views_check(r, epoch, done) != IB_OK)
        return IB_ERR_ARG;
    int64_t skipped = done;
    r->skip_batches = 0;
    while (ib__run_next_batch(r, &count)) {
        double e_frac = (double)(epoch - 1) + (double)done / (double)batches;
        float lr = ib_schedule_lr(&c->schedule, c->optim.lr, e_frac);
        ib_optim_set_lr(r->opt, lr);
        ib_graph_set_step(n->g, (uint64_t)r->step);
        ib_graph_forward(n->g);
        float loss = ib_node_scalar(L->total);
        /* the step's figures: this rank's, or on several ranks the global
         * batch's (each rank's mean weighted by its share), with the stop
         * flag agreed in the same reduction */
        double fig[3 + IB_MAX_BOTTLENECKS + IB_MAX_TERMS];
        int nf = 0;
        fig[nf++] = loss;
        fig[nf++] = L->ce ? ib_node_scalar(L->ce) : 0;
        for (int l = 0; l < L->n_kl; l++)
            fig[nf++] = ib_node_scalar(L->kl[l]);
        for (int t = 0; t < L->n_terms; t++)
            fig[nf++] = ib_node_scalar(L->terms[t].node);
        if (r->dp_size > 1) {
            double w = (double)r->local_batch / (double)c->batch_size;
            for (int k = 0; k < nf; k++)
                fig[k] *= w;
            fig[nf] = r->cb && r->cb->stop && *r->cb->stop ? 1.0 : 0.0;
            ib__dist_sum_f64(fig, nf + 1);
            if (fig[nf] > 0) { /* asked on some rank: every rank's caller learns it stopped */
                r->stop = true;
                if (r->cb && r->cb->stop)
                    *r->cb->stop = 1;
            }
            loss = (float)fig[0];
        }
        /* checked before the step: a diverged loss never reaches the weights
         * that a checkpoint would save */
        ib__loss_verdict v = ib__loss_watch_step(&r->watch, loss);
        if (v == IB__LOSS_NONFINITE || (v != IB__LOSS_OK && c->divergence_check))
            return loss_failure(r, epoch, done + 1, v);
        if (!r->grads_zero) /* the first step (after that the optimizer's pass zeroes them) */
            ib_params_zero_grad(r->params);
        r->grads_zero = false;
        ib_graph_backward(n->g, L->total);
        ib__dp_reduce_grads(r);
        ib_status s = ib_optim_step(r->opt);
        if (s != IB_OK)
            return ib__error(s, "epoch %lld, step %lld: %s", (long long)epoch, (long long)r->step, ib_last_error());
        r->grads_zero = true;
        r->step++;
        done++;
        r->batches_done = done;
        loss_sum += loss;
        ce_sum += L->ce ? (r->dp_size > 1 ? fig[1] : ib_node_scalar(L->ce)) : NAN;
        double kl_total = 0;
        for (int l = 0; l < L->n_kl; l++) {
            double kl = r->dp_size > 1 ? fig[2 + l] : ib_node_scalar(L->kl[l]);
            kl_sum[l] += kl;
            kl_total += kl;
        }
        for (int t = 0; t < L->n_terms; t++)
            term_sum[t] += r->dp_size > 1 ? fig[2 + L->n_kl + t] : ib_node_scalar(L->terms[t].node);
        if (r->train->clean_labels) {
            const int64_t *idx = ib_batcher_indices(r->batcher);
            const int32_t *y = ib_node_labels(n->y);
            for (int64_t i = 0; i < count; i++) {
                if (r->train->clean_labels[idx[i]] == y[i])
                    continue;
                const float *lg = n->mo.logits->value + i * classes;
                int best = 0;
                for (int k = 1; k < classes; k++)
                    if (lg[k] > lg[best])
                        best = k;
                noisy_seen++;
                noisy_fit += best == y[i];
            }
        }
        if (r->cb && r->cb->progress) {
            double el = ib__now_s() - t0;
            int64_t trained = done - skipped;
            ib_train_progress p = {epoch, c->epochs, done, batches, (double)(trained * c->batch_size) / el,
                                   el / (double)trained * (double)(batches - done), loss_sum / trained,
                                   ce_sum / trained, kl_total, L->n_terms, {0}, {0}};
            for (int t = 0; t < L->n_terms; t++) {
                p.term_name[t] = L->terms[t].name;
                p.term[t] = term_sum[t] / (double)trained;
            }
            r->cb->progress(r->cb->ctx, &p);
        }
        if (r->dp_size <= 1 && r->cb && r->cb->stop && *r->cb->stop) /* several ranks: agreed above */
            r->stop = true;
        if ((c->max_steps > 0 && r->step - r->first_step >= c->max_steps) || r->stop)
            break;
    }
    if (views_check(r, epoch, done) != IB_OK)
        return IB_ERR_ARG;
    if (r->dp_size > 1) { /* the noisy-label counts of every rank's rows */
        double counts[2] = {(double)noisy_seen, (double)noisy_fit};
        ib__dist_sum_f64(counts, 2);
        noisy_seen = (int64_t)counts[0];
        noisy_fit = (int64_t)counts[1];
    }
    double el = ib__now_s() - t0;
    int64_t trained = done - skipped;
    r->batches_done = done;
    rep->epoch = epoch;
    rep->epochs = c->epochs;
    rep->step = r->step;
    rep->lr = ib_optim_lr(r->opt);
    rep->samples_per_s = trained ? (double)(trained * c->batch_size) / el : 0;
    rep->data_wait_s = ib_batcher_wait_seconds(r->batcher) - wait0;
    rep->train_batches = trained;
    rep->loss = trained ? loss_sum / trained : NAN;
    rep->ce = trained ? ce_sum / trained : NAN;
    rep->n_kl = L->n_kl;
    for (int l = 0; l < rep->n_kl; l++) {
        rep->kl[l] = trained ? kl_sum[l] / trained : NAN;
        rep->beta[l] = L->beta[l];
    }
    rep->n_terms = L->n_terms;
    for (int t = 0; t < L->n_terms; t++) {
        snprintf(rep->term_name[t], sizeof rep->term_name[t], "%s", L->terms[t].name);
        rep->term[t] = trained ? term_sum[t] / trained : NAN;
    }
    rep->noisy_fit = noisy_seen ? (double)noisy_fit / (double)noisy_seen : -1;
    return IB_OK;
}

ib_status ib__run_epochs(run *r)
{
    const ib_train_config *c = &r->cfg;
    ib_status s = IB_OK;
    if (c->patience > 0 && r->val && r->best_epoch > 0 && r->start_epoch - r->best_epoch >= c->patience) {
        r->early_stop_epoch = r->start_epoch; /* a resumed run that patience had already ended */
        return s;
    }
    /* --save-epochs 0: the initial weights, before the first step (a resume
     * from inside epoch 1 has taken steps already and keeps the file) */
    if (r->start_epoch == 0 && r->step == 0 && (s = ib__save_epoch_snapshot(r, 0)) != IB_OK)
        return s;
    for (int64_t epoch = r->start_epoch + 1; epoch <= c->epochs; epoch++) {
        double t0 = ib__now_s();
        ib_epoch_report rep;
        memset(&rep, 0, sizeof rep);
        ib_eval_result test2 = {0}, val2 = {0};
        double score = NAN;
        s = train_epoch(r, epoch, &rep);
        if (s != IB_OK)
            return s;
        bool stopped = (c->max_steps > 0 && r->step - r->first_step >= c->max_steps) || ib__dp_stop_agreed(r);
        ib__dp_sync_buffers(r); /* running statistics: one value on every rank, before anything is saved */
        if (stopped && r->batches_done < ib_batcher_batches_per_epoch(r->batcher)) {
            /* Stopped inside the epoch: save the state as "epoch - 1 done plus
             * batches_done batches" so a resume continues exactly here. */
            r->partial_batches = r->batches_done;
            s = ib__run_save_checkpoint(r, "last.safetensors", epoch - 1, true);
            r->partial_batches = 0;
            return s;
        }
        /* every rank evaluates its share of the batches (ib__run_evaluate);
         * rank 0 alone saves and reports */
        if (epoch % c->eval_every == 0 || epoch == c->epochs || stopped) {
            /* the EMA weights, with batch-norm statistics recomputed for them (ema_bn.c) */
            s = ib__run_ema_in(r);
            if (s != IB_OK)
                return s;
            if (r->val) {
                s = ib__run_evaluate(r, r->val, &rep.val);
                rep.has_val = true;
            }
            if (s == IB_OK)
                s = ib__run_evaluate(r, r->test, &rep.test);
            if (s == IB_OK && r->test2) /* view 2 beside view 1 */
                s = ib__run_evaluate_view2(r, r->test2, &test2);
            if (s == IB_OK && r->val && r->val2 && r->test2)
                s = ib__run_evaluate_view2(r, r->val2, &val2);
            ib__run_ema_out(r);
            if (s != IB_OK) {
                ib_eval_result_free(&test2);
                ib_eval_result_free(&val2);
                return s;
            }
            rep.evaluated = true;
            /* both views when the run has two (ib__run_selection_score) */
            score = r->val ? ib__run_selection_score(&rep.val, r->val2 && r->test2 ? &val2 : NULL)
                           : ib__run_selection_score(&rep.test, r->test2 ? &test2 : NULL);
            if (score > r->best_acc) {
                r->best_acc = score;
                r->best_epoch = epoch;
                /* the best checkpoint holds the weights evaluated: the EMA ones if any */
                s = ib__run_ema_in(r);
                if (s == IB_OK) {
                    s = ib__run_save_checkpoint(r, "best.safetensors", epoch, false);
                    ib__run_ema_out(r);
                }
                if (s != IB_OK) {
                    ib_eval_result_free(&test2);
                    ib_eval_result_free(&val2);
                    return s;
                }
            }
        }
        char *info = NULL; /* --track-info: the weights trained, before the checkpoint records the epoch */
        if (s == IB_OK && ib__dp_writer() && ib__track_due(r, epoch)) /* rank 0 alone, as the evaluation */
            s = ib__track_epoch(r, epoch, &info);
        if (s != IB_OK) {
            ib_eval_result_free(&test2);
            ib_eval_result_free(&val2);
            return s;
        }
        rep.seconds = ib__now_s() - t0;
        char *line = ib__run_metrics_line(&rep, r->dp_size, r->test2 && rep.evaluated ? &test2 : NULL,
                                          r->val2 && r->test2 && rep.has_val ? &val2 : NULL, score);
        ib_eval_result_free(&val2);
        s = ib__save_epoch_snapshot(r, epoch); /* before last: a crash between the two redoes the epoch */
        if (s == IB_OK)
            s = ib__run_save_checkpoint(r, "last.safetensors", epoch, true);
        if (s == IB_OK) {
            r->epochs_done = epoch;
            s = ib__run_dir_append_line(&r->dir, "metrics.jsonl", line);
        }
        if (s == IB_OK && info)
            s = ib__run_dir_append_line(&r->dir, "info.jsonl", info);
        free(line);
        free(info);
        if (s == IB_OK && r->cb && r->cb->epoch_end) /* an epoch whose checkpoint failed is not reported done */
            r->cb->epoch_end(r->cb->ctx, &rep);
        ib_eval_result_free(&rep.val);
        if (rep.evaluated) { /* kept for the summary */
            ib_eval_result_free(&r->last_test);
            ib_eval_result_free(&r->last_test2);
            r->last_test = rep.test;
            r->last_test2 = test2;
            r->last_test_step = r->step;
        } else {
            ib_eval_result_free(&rep.test);
            ib_eval_result_free(&test2);
        }
        /* A stop asked for during the evaluation ends the run here, at the
         * epoch's end, instead of one step into the next epoch. */
        if (ib__dp_stop_agreed(r))
            stopped = true;
        /* Early stopping: `patience` epochs past the best validation
         * accuracy (best.safetensors holds that epoch's weights). */
        if (s == IB_OK && c->patience > 0 && rep.has_val && epoch - r->best_epoch >= c->patience) {
            r->early_stop_epoch = epoch;
            return s;
        }
        if (s != IB_OK || stopped)
            return s;
    }
    return s;
}
