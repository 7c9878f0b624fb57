/*
 * records.c — what a run writes down and reads back: the per-epoch line of
 * metrics.jsonl (every figure of ib_epoch_report, the method's named terms
 * under "train_terms"), summary.json, the metadata stored in each
 * checkpoint (progress, model text, input normalisation, configuration)
 * and, on resume, the counters read back from last.safetensors.
 */
#include "train_internal.h"

#include <cjson/cJSON.h>
#include <math.h>

typedef ib__train_run run;

static const char *run_file(run *r, const char *name) { return ib__run_dir_file(&r->dir, name); }

static ib_status truncate_metrics(run *r, int64_t epoch)
{
    return ib__run_dir_truncate_jsonl(&r->dir, "metrics.jsonl", epoch);
}

/* ---- checkpoints ---- */

static char *checkpoint_metadata(run *r, int64_t epoch)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "epoch", (double)epoch);
    cJSON_AddNumberToObject(o, "step", (double)r->step);
    cJSON_AddNumberToObject(o, "epoch_batches_done", (double)r->partial_batches);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)r->cfg.seed);
    cJSON_AddStringToObject(o, "seed", seed);
    cJSON_AddNumberToObject(o, "threads", ib_get_threads());
    cJSON_AddNumberToObject(o, "best_epoch", (double)r->best_epoch);
    cJSON_AddNumberToObject(o, "best_accuracy", r->best_acc);
    cJSON_AddStringToObject(o, "model", r->cfg.model);
    cJSON_AddStringToObject(o, "model_text", ib_model_text(r->model));
    cJSON_AddStringToObject(o, "dataset", r->cfg.dataset);
    cJSON_AddNumberToObject(o, "classes", ib_model_classes(r->model));
    const ib_batcher_config *bc = ib_batcher_get_config(r->batcher);
    cJSON_AddStringToObject(o, "input_norm", ib_input_norm_name(bc->norm));
    cJSON *mean = cJSON_AddArrayToObject(o, "input_mean"), *std = cJSON_AddArrayToObject(o, "input_std");
    cJSON *lo = cJSON_AddArrayToObject(o, "input_min"), *hi = cJSON_AddArrayToObject(o, "input_max");
    for (int ch = 0; ch < r->train->c; ch++) {
        float a, b;
        ib_batcher_input_range(bc, ch, &a, &b);
        cJSON_AddItemToArray(mean, cJSON_CreateNumber(bc->mean[ch]));
        cJSON_AddItemToArray(std, cJSON_CreateNumber(bc->std[ch]));
        cJSON_AddItemToArray(lo, cJSON_CreateNumber(a));
        cJSON_AddItemToArray(hi, cJSON_CreateNumber(b));
    }
    if (r->train->class_names) {
        cJSON *names = cJSON_AddArrayToObject(o, "class_names");
        for (int k = 0; k < r->train->classes; k++)
            cJSON_AddItemToArray(names, cJSON_CreateString(r->train->class_names[k] ? r->train->class_names[k] : ""));
    }
    char *cfg = ib_train_config_to_json(&r->cfg);
    cJSON_AddItemToObject(o, "config", cJSON_Parse(cfg));
    free(cfg);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

ib_status ib__run_save_checkpoint(run *r, const char *name, int64_t epoch, bool with_state)
{
    char *meta = checkpoint_metadata(r, epoch);
    ib_status s = ib_checkpoint_save(run_file(r, name), r->params, with_state ? r->opt : NULL,
                                     with_state ? r->ema : NULL, meta);
    free(meta);
    return s;
}

/* A whole number in [lo, hi] from checkpoint metadata (hand-edited or
 * damaged files must not wrap into nonsense counts). */
static bool count_in(const cJSON *v, double lo, double hi, int64_t *out)
{
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi) ||
        v->valuedouble != floor(v->valuedouble))
        return false;
    *out = (int64_t)v->valuedouble;
    return true;
}

/* The resume half of the set-up: the weights, optimizer and EMA state of
 * last.safetensors and the counters of its metadata. */
ib_status ib__run_load_resume_state(run *r)
{
    ib_status s;
    {
        char *meta = NULL;
        s = ib_checkpoint_load(run_file(r, "last.safetensors"), r->params, r->opt, r->ema, &meta);
        if (s != IB_OK)
            return s;
        cJSON *m = cJSON_Parse(meta ? meta : "");
        free(meta);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(m, "epoch");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(m, "step");
        const cJSON *be = cJSON_GetObjectItemCaseSensitive(m, "best_epoch");
        const cJSON *ba = cJSON_GetObjectItemCaseSensitive(m, "best_accuracy");
        const cJSON *pb = cJSON_GetObjectItemCaseSensitive(m, "epoch_batches_done");
        int64_t batches = ib_batcher_batches_per_epoch(r->batcher);
        r->skip_batches = 0;
        r->best_epoch = 0;
        bool ok = count_in(e, 0, 9e15, &r->start_epoch) && count_in(st, 0, 9e15, &r->step) &&
                  (!pb || count_in(pb, 0, (double)(batches - 1), &r->skip_batches)) &&
                  (!be || count_in(be, 0, (double)r->start_epoch, &r->best_epoch));
        r->best_acc = cJSON_IsNumber(ba) ? ba->valuedouble : -1;
        cJSON_Delete(m);
        if (!ok)
            return ib__error(IB_ERR_FORMAT,
                             "%s: the checkpoint's epoch/step metadata is missing or out of range (whole numbers; "
                             "batches done within an epoch 0..%lld, best epoch at most the epoch)",
                             run_file(r, "last.safetensors"), (long long)(batches - 1));
        r->epochs_done = r->start_epoch;
        r->first_step = r->step;
        s = truncate_metrics(r, r->start_epoch);
    }
    return s;
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

char *ib__run_metrics_line(const ib_epoch_report *rep)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "epoch", (double)rep->epoch);
    cJSON_AddNumberToObject(o, "step", (double)rep->step);
    cJSON_AddNumberToObject(o, "seconds", rep->seconds);
    cJSON_AddNumberToObject(o, "samples_per_s", rep->samples_per_s);
    cJSON_AddNumberToObject(o, "data_wait_s", rep->data_wait_s);
    cJSON_AddNumberToObject(o, "lr", rep->lr);
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
    }
    char *t = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return t;
}

/* ---- summary ---- */

ib_status ib__run_write_summary(run *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", r->cfg.model);
    cJSON_AddStringToObject(o, "dataset", r->cfg.dataset);
    cJSON_AddNumberToObject(o, "epochs_done", (double)r->epochs_done);
    cJSON_AddNumberToObject(o, "steps", (double)r->step);
    cJSON_AddNumberToObject(o, "best_epoch", (double)r->best_epoch);
    cJSON_AddNumberToObject(o, "best_accuracy", r->best_acc);
    cJSON_AddNumberToObject(o, "parameters", (double)ib_params_trainable_total(r->params));
    /* final figures: the last epoch's evaluation, with the EMA weights if on
     * (evaluated again only when steps were taken after it: a stop inside an
     * epoch); the evaluation is deterministic, so both give the same figures */
    ib_eval_result e;
    ib_status s = IB_OK;
    if (r->last_test_step == r->step) {
        e = r->last_test;
        memset(&r->last_test, 0, sizeof r->last_test);
        r->last_test_step = -1;
    } else {
        if (r->ema)
            ib_ema_swap(r->ema);
        s = ib__run_evaluate(r, r->test, &e);
        if (r->ema)
            ib_ema_swap(r->ema);
    }
    if (s == IB_OK) {
        add_eval(o, "test", &e);
        cJSON *kl = cJSON_AddArrayToObject(o, "test_kl_nats");
        for (int l = 0; l < e.n_kl; l++)
            cJSON_AddItemToArray(kl, cJSON_CreateNumber(e.kl[l]));
        ib_eval_result_free(&e);
    }
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    if (s == IB_OK)
        s = ib__run_dir_write(&r->dir, "summary.json", text);
    free(text);
    return s;
}
