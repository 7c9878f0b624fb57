/*
 * records.c — what a run writes down and reads back: the per-epoch line of
 * metrics.jsonl (every figure of ib_epoch_report, the method's named terms
 * under "train_terms"), summary.json, the metadata stored in each
 * checkpoint (progress, model text, input normalisation, configuration;
 * src/io/checkpoint_meta.c writes and reads the format) and, on resume,
 * the counters read back from last.safetensors.
 */
#include "train_internal.h"

#include "../info/info_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <sys/stat.h>

typedef ib__train_run run;

static const char *run_file(run *r, const char *name) { return ib__run_dir_file(&r->dir, name); }

/* metrics.jsonl and info.jsonl (--track-info) keep the epochs of the checkpoint */
static ib_status truncate_metrics(run *r, int64_t epoch)
{
    ib_status s = ib__run_dir_truncate_jsonl(&r->dir, "metrics.jsonl", epoch);
    return s == IB_OK ? ib__run_dir_truncate_jsonl(&r->dir, "info.jsonl", epoch) : s;
}

/* ---- checkpoints ---- */

static char *checkpoint_metadata(run *r, int64_t epoch)
{
    const ib_batcher_config *bc = ib_batcher_get_config(r->batcher);
    ib_checkpoint_meta m = {.epoch = epoch,
                            .step = r->step,
                            .epoch_batches_done = r->partial_batches,
                            .seed = r->cfg.seed,
                            .threads = ib_get_threads(),
                            .best_epoch = r->best_epoch,
                            .best_accuracy = r->best_acc,
                            .model = r->cfg.model,
                            .model_text = ib_model_text(r->model),
                            .dataset = r->cfg.dataset,
                            .classes = ib_model_classes(r->model),
                            .input_norm = bc->norm,
                            .channels = r->train->c < 4 ? r->train->c : 4,
                            .n_class_names = r->train->class_names ? r->train->classes : 0,
                            .class_names = (const char *const *)r->train->class_names};
    ib__loss_watch_state(&r->watch, &m.loss_reference, &m.loss_lowest);
    for (int ch = 0; ch < m.channels; ch++) {
        m.input_mean[ch] = bc->mean[ch];
        m.input_std[ch] = bc->std[ch];
        ib_batcher_input_range(bc, ch, &m.input_min[ch], &m.input_max[ch]);
    }
    char *cfg = ib_train_config_to_json(&r->cfg);
    m.config_json = cfg;
    char *text = ib_checkpoint_meta_to_json(&m);
    free(cfg);
    return text;
}

ib_status ib__run_save_checkpoint(run *r, const char *name, int64_t epoch, bool with_state)
{
    /* last.safetensors: the EMA's batch-norm statistics for the weights it
     * holds (every rank: the recomputation is a collective on several) */
    if (with_state) {
        ib_status s = ib__run_ema_bn_refresh(r);
        if (s != IB_OK)
            return s;
    }
    char *meta = ib__dp_writer() ? checkpoint_metadata(r, epoch) : NULL;
    ib_status s = !ib__dp_writer() ? IB_OK /* rank 0 writes the one checkpoint (nothing in it is per rank) */
                                   : ib_checkpoint_save(run_file(r, name), r->params, with_state ? r->opt : NULL,
                                                        with_state ? r->ema : NULL, meta);
    free(meta);
    if (s == IB_OK && with_state) {
        r->saved = true;
        r->saved_epoch = epoch;
        r->saved_step = r->step;
    }
    return s;
}

/* The resume half of the set-up: the weights, optimizer and EMA state of
 * last.safetensors and the counters of its metadata (checkpoint_meta.c
 * checks their ranges).  A run that failed before its first checkpoint
 * (a NaN, a full disk, a stop in its first epoch before anything was
 * saved) has config.json and no last.safetensors: it starts again from
 * step 0, as the first attempt did, instead of being a dead end. */
ib_status ib__run_load_resume_state(run *r)
{
    struct stat st;
    if (stat(run_file(r, "last.safetensors"), &st) != 0 && errno == ENOENT) {
        r->start_epoch = r->step = r->skip_batches = r->best_epoch = 0;
        r->best_acc = -1;
        r->epochs_done = 0;
        r->first_step = 0;
        return truncate_metrics(r, 0);
    }
    char *meta = NULL;
    ib_status s = ib_checkpoint_load(run_file(r, "last.safetensors"), r->params, r->opt, r->ema, &meta);
    if (s != IB_OK)
        return s;
    ib_checkpoint_meta m;
    s = ib_checkpoint_meta_parse(meta, run_file(r, "last.safetensors"), &m);
    free(meta);
    if (s != IB_OK)
        return s;
    int64_t batches = ib_batcher_batches_per_epoch(r->batcher);
    bool ok = m.counts_valid && m.epoch_batches_done <= batches - 1;
    r->start_epoch = m.epoch;
    r->step = m.step;
    r->skip_batches = m.epoch_batches_done;
    r->best_epoch = m.best_epoch;
    r->best_acc = m.best_accuracy;
    ib__loss_watch_restore(&r->watch, m.loss_reference, m.loss_lowest);
    ib_checkpoint_meta_free(&m);
    if (!ok)
        return ib__error(IB_ERR_FORMAT,
                         "%s: the checkpoint's epoch/step metadata is missing or out of range (whole numbers; "
                         "batches done within an epoch 0..%lld, best epoch at most the epoch)",
                         run_file(r, "last.safetensors"), (long long)(batches - 1));
    r->epochs_done = r->start_epoch;
    r->first_step = r->step;
    r->saved = true;
    r->saved_epoch = r->start_epoch;
    r->saved_step = r->step;
    return truncate_metrics(r, r->start_epoch);
}

/* ---- metrics ---- */

static void add_eval(cJSON *o, const char *prefix, const ib_eval_result *e)
{
    char key[64];
#define ADD(name, v)                                                                                                   \
    do {                                                                                                               \
        snprintf(key, sizeof key, "%s_%s", prefix, name);                                                              \
        cJSON_AddNumberToObject(o, key, v);                                                                            \
    } while (0)
    ADD("acc_1shot", e->acc_1shot);
    ADD("acc_avg", e->acc_avg);
    ADD("acc_mean", e->acc_mean);
    ADD("nll_avg", e->nll_avg);
    ADD("nll_mean", e->nll_mean);
    ADD("ce_samples", e->ce_samples);
    ADD("error_avg", 1.0 - e->acc_avg);
#undef ADD
}

char *ib__run_metrics_line(const ib_epoch_report *rep, int ranks, const ib_eval_result *test2,
                           const ib_eval_result *val2, double score)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "epoch", (double)rep->epoch);
    cJSON_AddNumberToObject(o, "step", (double)rep->step);
    cJSON_AddNumberToObject(o, "seconds", rep->seconds);
    cJSON_AddNumberToObject(o, "samples_per_s", rep->samples_per_s);
    cJSON_AddNumberToObject(o, "ranks", ranks);
    cJSON_AddNumberToObject(o, "data_wait_s", rep->data_wait_s);
    cJSON_AddNumberToObject(o, "lr", rep->lr);
    cJSON_AddNumberToObject(o, "train_batches", (double)rep->train_batches);
    cJSON_AddNumberToObject(o, "train_loss", rep->loss);
    cJSON_AddNumberToObject(o, "train_ce", rep->ce);
    cJSON *kl = cJSON_AddArrayToObject(o, "train_kl"), *beta = cJSON_AddArrayToObject(o, "beta");
    for (int l = 0; l < rep->n_kl; l++) {
        cJSON_AddItemToArray(kl, cJSON_CreateNumber(rep->kl[l]));
        cJSON_AddItemToArray(beta, cJSON_CreateNumber(rep->beta[l]));
    }
    /* the method's terms by name: what a new method logs without a new key */
    cJSON *terms = cJSON_AddObjectToObject(o, "train_terms");
    for (int t = 0; t < rep->n_terms; t++)
        cJSON_AddNumberToObject(terms, rep->term_name[t], rep->term[t]);
    if (rep->noisy_fit >= 0)
        cJSON_AddNumberToObject(o, "noisy_fit", rep->noisy_fit);
    if (rep->evaluated) {
        if (rep->has_val)
            add_eval(o, "val", &rep->val);
        add_eval(o, "test", &rep->test);
        cJSON *tkl = cJSON_AddArrayToObject(o, "test_kl");
        for (int l = 0; l < rep->test.n_kl; l++)
            cJSON_AddItemToArray(tkl, cJSON_CreateNumber(rep->test.kl[l]));
        if (test2) { /* two views: view 2 of the test set through view 2's network */
            add_eval(o, "test_view2", test2);
            tkl = cJSON_AddArrayToObject(o, "test_view2_kl");
            for (int l = 0; l < test2->n_kl; l++)
                cJSON_AddItemToArray(tkl, cJSON_CreateNumber(test2->kl[l]));
            if (val2)
                add_eval(o, "val_view2", val2);
            /* the best epoch's criterion: the mean of the two views' accuracy */
            cJSON_AddNumberToObject(o, "selection_score", score);
        }
    }
    char *t = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return t;
}

/* ---- summary ---- */

static ib_status summary_figures(run *r, cJSON *o);

ib_status ib__run_write_summary(run *r)
{
    if (!ib__dp_writer()) /* the evaluations are collectives: take part, rank 0 writes */
        return summary_figures(r, NULL);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", r->cfg.model);
    cJSON_AddStringToObject(o, "dataset", r->cfg.dataset);
    cJSON_AddNumberToObject(o, "epochs_done", (double)r->epochs_done);
    cJSON_AddNumberToObject(o, "steps", (double)r->step);
    cJSON_AddNumberToObject(o, "best_epoch", (double)r->best_epoch);
    cJSON_AddNumberToObject(o, "best_accuracy", r->best_acc);
    /* without a validation split the best epoch was picked on the test set:
     * an oracle, not a result (docs/robustness.md) */
    cJSON_AddStringToObject(o, "best_selected_on", r->val ? "validation" : "test (oracle)");
    /* a two-view run: best_accuracy is the mean of the views' accuracies */
    cJSON_AddStringToObject(o, "best_selected_by", r->test2 ? "mean of view 1 and view 2 acc_avg" : "acc_avg");
    if (r->cfg.patience > 0) { /* early stopping: whether it ended the run, and when */
        cJSON_AddNumberToObject(o, "patience", (double)r->cfg.patience);
        cJSON_AddBoolToObject(o, "early_stopped", r->early_stop_epoch > 0);
        if (r->early_stop_epoch > 0)
            cJSON_AddNumberToObject(o, "early_stop_epoch", (double)r->early_stop_epoch);
    }
    cJSON_AddNumberToObject(o, "parameters", (double)ib_params_trainable_total(r->params));
    /* the job that finished the run (a resume may change both; config.json's
     * provenance holds the job that started it) */
    cJSON_AddNumberToObject(o, "ranks", r->dp_size);
    cJSON_AddNumberToObject(o, "threads_per_rank", ib_get_threads());
    ib_status s = summary_figures(r, o);
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    if (s == IB_OK)
        s = ib__run_dir_write(&r->dir, "summary.json", text);
    free(text);
    return s;
}

/* The summary's evaluated figures into o (NULL on ranks > 0, which only
 * take part in the sharded evaluations). */
static ib_status summary_figures(run *r, cJSON *o)
{
    /* final figures: the last epoch's evaluation, with the EMA weights if on
     * (evaluated again only when steps were taken after it: a stop inside an
     * epoch); the evaluation is deterministic, so both give the same figures */
    ib_eval_result e, e2 = {0};
    ib_status s = IB_OK;
    if (r->last_test_step == r->step) {
        e = r->last_test;
        e2 = r->last_test2;
        memset(&r->last_test, 0, sizeof r->last_test);
        memset(&r->last_test2, 0, sizeof r->last_test2);
        r->last_test_step = -1;
    } else {
        s = ib__run_ema_in(r);
        if (s == IB_OK) {
            s = ib__run_evaluate(r, r->test, &e);
            if (s == IB_OK && r->test2)
                s = ib__run_evaluate_view2(r, r->test2, &e2);
            ib__run_ema_out(r);
        }
    }
    if (s == IB_OK && o) {
        add_eval(o, "test", &e);
        cJSON *kl = cJSON_AddArrayToObject(o, "test_kl_nats");
        for (int l = 0; l < e.n_kl; l++)
            cJSON_AddItemToArray(kl, cJSON_CreateNumber(e.kl[l]));
        if (e.n_kl > 0) {
            /* the bottlenecks' variational bounds in bits, as ibnet info
             * --estimator variational gives them: each rate bounds its own
             * I(X;Z_l) from above, and H(Y) - E[-ln q(y|z)] (H(Y) the test
             * labels' entropy) bounds I(Z;Y) from below for every Z_l */
            double hy = ib__label_entropy(r->test->labels, r->test->n, r->test->classes);
            cJSON *up = cJSON_AddArrayToObject(o, "test_ixz_upper_bits");
            for (int l = 0; l < e.n_kl; l++)
                cJSON_AddItemToArray(up, cJSON_CreateNumber(e.kl[l] / log(2.0)));
            cJSON_AddNumberToObject(o, "test_label_entropy_nats", hy);
            cJSON_AddNumberToObject(o, "test_izy_lower_bits", (hy - e.ce_samples) / log(2.0));
        }
        if (r->test2) { /* two views: view 2 through view 2's network */
            add_eval(o, "test_view2", &e2);
            kl = cJSON_AddArrayToObject(o, "test_view2_kl_nats");
            for (int l = 0; l < e2.n_kl; l++)
                cJSON_AddItemToArray(kl, cJSON_CreateNumber(e2.kl[l]));
        }
    }
    ib_eval_result_free(&e2);
    if (s == IB_OK)
        ib_eval_result_free(&e);
    if (s == IB_OK)
        s = ib__run_memorisation(r, o);
    return s;
}
