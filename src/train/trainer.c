/*
 * trainer.c — one experiment from data to checkpoints: load and verify the
 * data, build the training and evaluation graphs of the model over one
 * parameter store, and run epochs of (forward, backward, optimizer, EMA),
 * evaluating, logging and checkpointing after each.
 *
 * Reproducibility: the batch order and augmentation are keyed by
 * (seed, epoch), the bottleneck noise by (seed, node, global step), the
 * evaluation noise by a fixed seed; the checkpoint holds the weights,
 * optimizer and EMA state and the step.  So a run resumed from its last
 * checkpoint reaches exactly the weights of an uninterrupted run with the
 * same thread count.
 */
#include "../core/internal.h"
#include "../io/atomic_file.h"
#include "run_lock.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <sys/stat.h>
#include <time.h>


typedef struct net {
    ib_graph *g;
    ib_node *x, *y;
    ib_model_out mo;
    ib_loss loss;
    ib_node *kl_examples[IB_MAX_BOTTLENECKS]; /* per-example KL (eval) */
} net;

typedef struct run {
    ib_train_config cfg;
    const ib_train_callbacks *cb;
    ib_dataset *train, *val, *test;
    ib_model *model;
    ib_params *params;
    net tr, ev;
    ib_optim *opt;
    ib_ema *ema;
    ib_batcher *batcher;
    ib_batcher_config bcfg;
    int64_t start_epoch, step;
    int64_t epochs_done; /* epochs saved in last.safetensors */
    int64_t skip_batches; /* batches of the first epoch already trained (resume) */
    int64_t batches_done; /* batches of the current epoch trained */
    int64_t partial_batches; /* recorded in the checkpoint being written */
    int64_t first_step; /* step at the start of this invocation (max_steps counts from it) */
    double best_acc;
    int64_t best_epoch;
    /* The test evaluation of the last evaluated epoch and the step it was
     * made at: the summary reuses it when no step has been taken since. */
    ib_eval_result last_test;
    int64_t last_test_step; /* -1: none */
    ib__run_lock lock; /* held while this run may write into cfg.out_dir */
    char path[2048];
} run;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static const char *run_file(run *r, const char *name)
{
    snprintf(r->path, sizeof r->path, "%s/%s", r->cfg.out_dir, name);
    return r->path;
}

static ib_status mkdirs(const char *dir)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return ib__error(IB_ERR_IO, "cannot create directory %s: %s", buf, strerror(errno));
            *p = '/';
        }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return ib__error(IB_ERR_IO, "cannot create directory %s: %s", buf, strerror(errno));
    return IB_OK;
}

static ib_status write_text(const char *path, const char *text)
{
    ib__atomic_file af;
    ib_status s = ib__atomic_open(&af, path);
    if (s != IB_OK)
        return s;
    if (fputs(text, af.f) == EOF) {
        ib__atomic_abort(&af);
        return ib__error(IB_ERR_IO, "cannot write %s", path);
    }
    return ib__atomic_commit(&af);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *t = n >= 0 && n < (1L << 26) ? malloc((size_t)n + 1) : NULL;
    if (t && fread(t, 1, (size_t)n, f) != (size_t)n) {
        free(t);
        t = NULL;
    }
    if (t)
        t[n] = 0;
    fclose(f);
    return t;
}

/* ---- data ---- */

static ib_status load_data(run *r)
{
    const ib_train_config *c = &r->cfg;
    ib_load_options lo = {.skip_hash = c->skip_hash};
    const char *dir = c->data_dir[0] ? c->data_dir : NULL;
    ib_dataset *full = NULL;
    ib_status s = ib_dataset_open(c->dataset, "train", dir, &lo, &full);
    if (s != IB_OK)
        return s;
    if (c->train_limit > 0 && c->train_limit < full->n) {
        ib_dataset *part = NULL;
        s = ib_dataset_slice(full, 0, c->train_limit, &part);
        ib_dataset_free(full);
        if (s != IB_OK)
            return s;
        full = part;
    }
    if (c->val_size > 0) {
        if (c->val_size >= full->n) {
            ib_dataset_free(full);
            return ib__error(IB_ERR_ARG, "validation size %lld leaves no training data (%lld examples)",
                             (long long)c->val_size, (long long)full->n);
        }
        s = ib_dataset_split_last(full, c->val_size, &r->train, &r->val);
        ib_dataset_free(full);
        if (s != IB_OK)
            return s;
    } else {
        r->train = full;
    }
    if (c->label_noise && c->noise_rate > 0) {
        s = ib_label_noise_apply(r->train, c->noise_kind, c->noise_rate, c->seed ^ 0x401537u, NULL);
        if (s != IB_OK)
            return s;
    }
    s = ib_dataset_open(c->dataset, "test", dir, &lo, &r->test);
    if (s != IB_OK)
        return s;
    if (c->test_limit > 0 && c->test_limit < r->test->n) {
        ib_dataset *part = NULL;
        s = ib_dataset_slice(r->test, 0, c->test_limit, &part);
        ib_dataset_free(r->test);
        r->test = part;
        if (s != IB_OK)
            return s;
    }
    return IB_OK;
}

/* ---- graphs ---- */

static ib_status build_net(run *r, net *n, int64_t batch, bool training)
{
    int c, h, w;
    ib_model_input_shape(r->model, &c, &h, &w);
    n->g = ib_graph_new(r->params);
    if (!n->g)
        return ib_last_error()[0] ? IB_ERR_NOMEM : IB_ERR_NOMEM;
    ib_graph_set_seed(n->g, training ? r->cfg.seed : r->cfg.seed ^ IB_EVAL_SEED_SALT);
    n->x = ib_input(n->g, "x", 4, (int64_t[]){batch, c, h, w});
    n->y = ib_input_labels(n->g, "y", batch);
    ib_status s = ib_model_build(r->model, n->g, n->x, NULL, &n->mo);
    if (s != IB_OK)
        return s;
    if (training) {
        /* A beta written in the model description applies to its
         * bottleneck unless the configuration lists betas explicitly. */
        ib_objective o = r->cfg.objective;
        bool any = false;
        for (int l = 0; l < n->mo.n_bottlenecks; l++)
            any |= n->mo.bn_beta[l] >= 0;
        if (o.n_betas == 0 && any) {
            for (int l = 0; l < n->mo.n_bottlenecks; l++)
                o.betas[l] = n->mo.bn_beta[l] >= 0 ? n->mo.bn_beta[l]
                                                   : ib_objective_beta(&r->cfg.objective, l, n->mo.n_bottlenecks);
            o.n_betas = n->mo.n_bottlenecks;
        }
        s = ib_objective_build(n->g, n->mo.logits, n->y, n->mo.n_bottlenecks, n->mo.bn, &o, &n->loss);
        if (s != IB_OK)
            return ib__error(s, "%s", ib_graph_error(n->g));
    }
    for (int l = 0; l < n->mo.n_bottlenecks; l++)
        n->kl_examples[l] = n->mo.bn[l].kl;
    /* The evaluation graph never runs backward and is read only at its
     * outputs (logits, per-example KL): its activations can share memory. */
    if (!training)
        ib_graph_set_forward_only(n->g, true);
    else { /* one backward per forward, and only values under 3-D (losses, logits, KL) are read after it */
        ib_graph_set_reuse_values(n->g, true);
        ib_graph_set_recompute(n->g, true); /* same bits, less memory: see ib_graph_set_recompute */
    }
    s = ib_graph_compile(n->g);
    if (s != IB_OK)
        return s;
    ib_graph_set_training(n->g, training);
    return IB_OK;
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

static ib_status save_checkpoint(run *r, const char *name, int64_t epoch, bool with_state)
{
    char *meta = checkpoint_metadata(r, epoch);
    ib_status s = ib_checkpoint_save(run_file(r, name), r->params, with_state ? r->opt : NULL,
                                     with_state ? r->ema : NULL, meta);
    free(meta);
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

static char *report_json(const ib_epoch_report *rep)
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

/* Append a line to metrics.jsonl and flush it to disk. */
static ib_status append_metrics(run *r, const char *line)
{
    const char *p = run_file(r, "metrics.jsonl");
    FILE *f = fopen(p, "a");
    if (!f)
        return ib__error(IB_ERR_IO, "cannot open %s: %s", p, strerror(errno));
    bool ok = fprintf(f, "%s\n", line) > 0 && fflush(f) == 0;
    ok = fclose(f) == 0 && ok;
    return ok ? IB_OK : ib__error(IB_ERR_IO, "cannot write %s", p);
}

/* On resume, keep only the metrics of epochs <= epoch (a crash may have
 * logged an epoch whose checkpoint was never written). */
static ib_status truncate_metrics(run *r, int64_t epoch)
{
    char *text = read_text(run_file(r, "metrics.jsonl"));
    if (!text)
        return IB_OK;
    size_t cap = strlen(text) + 1, used = 0;
    char *keep = malloc(cap);
    if (!keep) {
        free(text);
        return ib__error(IB_ERR_NOMEM, "out of memory");
    }
    keep[0] = 0; /* no line kept (an empty file, a torn only line): an empty file */
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "epoch");
        if (cJSON_IsNumber(e) && e->valuedouble <= (double)epoch)
            used += (size_t)snprintf(keep + used, cap - used, "%s\n", line);
        cJSON_Delete(o);
    }
    ib_status s = write_text(run_file(r, "metrics.jsonl"), keep);
    free(keep);
    free(text);
    return s;
}

/* ---- the loop ---- */

static ib_status evaluate(run *r, const ib_dataset *d, ib_eval_result *out)
{
    return ib_evaluate(r->ev.g, r->ev.x, r->ev.mo.logits, r->ev.mo.n_bottlenecks, r->ev.kl_examples, d,
                       ib_batcher_get_config(r->batcher), r->cfg.eval_samples, r->cfg.seed ^ IB_EVAL_SEED_SALT, out);
}

static ib_status train_epoch(run *r, int64_t epoch, ib_epoch_report *rep)
{
    const ib_train_config *c = &r->cfg;
    net *n = &r->tr;
    int64_t batches = ib_batcher_batches_per_epoch(r->batcher);
    double t0 = now_s(), wait0 = ib_batcher_wait_seconds(r->batcher);
    double loss_sum = 0, ce_sum = 0, kl_sum[IB_MAX_BOTTLENECKS] = {0};
    int64_t noisy_seen = 0, noisy_fit = 0, done = 0, count = 0;
    int classes = (int)n->mo.logits->shape[1];
    ib_batcher_epoch(r->batcher, epoch - 1);
    /* A run stopped mid-epoch resumes after the batches it had trained: the
     * order is keyed by (seed, epoch), so skipping them is exact. */
    for (; done < r->skip_batches && ib_batcher_next(r->batcher, n->x->value, ib_node_labels(n->y), &count); done++)
        ;
    int64_t skipped = done;
    r->skip_batches = 0;
    while (ib_batcher_next(r->batcher, n->x->value, ib_node_labels(n->y), &count)) {
        double e_frac = (double)(epoch - 1) + (double)done / (double)batches;
        float lr = ib_schedule_lr(&c->schedule, c->optim.lr, e_frac);
        ib_optim_set_lr(r->opt, lr);
        ib_graph_set_step(n->g, (uint64_t)r->step);
        ib_graph_forward(n->g);
        float loss = ib_node_scalar(n->loss.total);
        if (!isfinite(loss))
            return ib__error(IB_ERR_NUMERIC,
                             "the loss became %g at epoch %lld, step %lld (batch %lld of the epoch); "
                             "last.safetensors keeps the last good epoch — try a smaller learning rate or beta",
                             (double)loss, (long long)epoch, (long long)r->step, (long long)done + 1);
        ib_params_zero_grad(r->params);
        ib_graph_backward(n->g, n->loss.total);
        ib_status s = ib_optim_step(r->opt);
        if (s != IB_OK)
            return ib__error(s, "epoch %lld, step %lld: %s", (long long)epoch, (long long)r->step, ib_last_error());
        if (r->ema)
            ib_ema_update(r->ema);
        r->step++;
        done++;
        r->batches_done = done;
        loss_sum += loss;
        ce_sum += ib_node_scalar(n->loss.ce);
        double kl_total = 0;
        for (int l = 0; l < n->loss.n_kl; l++) {
            kl_sum[l] += ib_node_scalar(n->loss.kl[l]);
            kl_total += ib_node_scalar(n->loss.kl[l]);
        }
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
            double el = now_s() - t0;
            int64_t trained = done - skipped;
            ib_train_progress p = {epoch, c->epochs, done, batches, (double)(trained * c->batch_size) / el,
                                   el / (double)trained * (double)(batches - done), loss_sum / trained,
                                   ce_sum / trained, kl_total};
            r->cb->progress(r->cb->ctx, &p);
        }
        if ((c->max_steps > 0 && r->step - r->first_step >= c->max_steps) || (r->cb && r->cb->stop && *r->cb->stop))
            break;
    }
    double el = now_s() - t0;
    int64_t trained = done - skipped;
    r->batches_done = done;
    rep->epoch = epoch;
    rep->epochs = c->epochs;
    rep->step = r->step;
    rep->lr = ib_optim_lr(r->opt);
    rep->samples_per_s = trained ? (double)(trained * c->batch_size) / el : 0;
    rep->data_wait_s = ib_batcher_wait_seconds(r->batcher) - wait0;
    rep->loss = trained ? loss_sum / trained : NAN;
    rep->ce = trained ? ce_sum / trained : NAN;
    rep->n_kl = n->loss.n_kl;
    for (int l = 0; l < rep->n_kl; l++) {
        rep->kl[l] = trained ? kl_sum[l] / trained : NAN;
        rep->beta[l] = n->loss.beta[l];
    }
    rep->noisy_fit = noisy_seen ? (double)noisy_fit / (double)noisy_seen : -1;
    return IB_OK;
}

static ib_status run_epochs(run *r)
{
    const ib_train_config *c = &r->cfg;
    ib_status s = IB_OK;
    for (int64_t epoch = r->start_epoch + 1; epoch <= c->epochs; epoch++) {
        double t0 = now_s();
        ib_epoch_report rep;
        memset(&rep, 0, sizeof rep);
        s = train_epoch(r, epoch, &rep);
        if (s != IB_OK)
            return s;
        bool stopped = (c->max_steps > 0 && r->step - r->first_step >= c->max_steps) || (r->cb && r->cb->stop && *r->cb->stop);
        if (stopped && r->batches_done < ib_batcher_batches_per_epoch(r->batcher)) {
            /* Stopped inside the epoch: save the state as "epoch - 1 done plus
             * batches_done batches" so a resume continues exactly here. */
            r->partial_batches = r->batches_done;
            s = save_checkpoint(r, "last.safetensors", epoch - 1, true);
            r->partial_batches = 0;
            return s;
        }
        if (epoch % c->eval_every == 0 || epoch == c->epochs || stopped) {
            if (r->ema)
                ib_ema_swap(r->ema);
            if (r->val) {
                s = evaluate(r, r->val, &rep.val);
                rep.has_val = true;
            }
            if (s == IB_OK)
                s = evaluate(r, r->test, &rep.test);
            if (r->ema)
                ib_ema_swap(r->ema);
            if (s != IB_OK)
                return s;
            rep.evaluated = true;
            double acc = r->val ? rep.val.acc_avg : rep.test.acc_avg;
            if (acc > r->best_acc) {
                r->best_acc = acc;
                r->best_epoch = epoch;
                /* the best checkpoint holds the weights evaluated: the EMA ones if any */
                if (r->ema)
                    ib_ema_swap(r->ema);
                s = save_checkpoint(r, "best.safetensors", epoch, false);
                if (r->ema)
                    ib_ema_swap(r->ema);
                if (s != IB_OK)
                    return s;
            }
        }
        rep.seconds = now_s() - t0;
        char *line = report_json(&rep);
        s = save_checkpoint(r, "last.safetensors", epoch, true);
        if (s == IB_OK) {
            r->epochs_done = epoch;
            s = append_metrics(r, line);
        }
        free(line);
        if (r->cb && r->cb->epoch_end)
            r->cb->epoch_end(r->cb->ctx, &rep);
        ib_eval_result_free(&rep.val);
        if (rep.evaluated) { /* kept for the summary */
            ib_eval_result_free(&r->last_test);
            r->last_test = rep.test;
            r->last_test_step = r->step;
        } else {
            ib_eval_result_free(&rep.test);
        }
        /* A stop asked for during the evaluation ends the run here, at the
         * epoch's end, instead of one step into the next epoch. */
        if (r->cb && r->cb->stop && *r->cb->stop)
            stopped = true;
        if (s != IB_OK || stopped)
            return s;
    }
    return s;
}

static ib_status write_summary(run *r)
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
        s = evaluate(r, r->test, &e);
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
        s = write_text(run_file(r, "summary.json"), text);
    free(text);
    return s;
}

static void run_free(run *r)
{
    ib_batcher_free(r->batcher);
    ib_graph_free(r->tr.g);
    ib_graph_free(r->ev.g);
    ib_optim_free(r->opt);
    ib_ema_free(r->ema);
    ib_params_free(r->params);
    ib_model_free(r->model);
    ib_dataset_free(r->train);
    ib_dataset_free(r->val);
    ib_dataset_free(r->test);
    ib_eval_result_free(&r->last_test);
}

/* Everything up to the first step; `resume` loads last.safetensors. */
static ib_status setup(run *r, bool resume)
{
    ib_train_config *c = &r->cfg;
    ib_status s = ib_train_config_check(c);
    if (s != IB_OK)
        return s;
    s = ib_model_load(c->model, &r->model);
    if (s == IB_OK && c->vib_cells_after[0]) {
        ib_model *with_cells = NULL;
        s = ib_model_add_cells(r->model, c->vib_cells_after, &with_cells);
        ib_model_free(r->model);
        r->model = with_cells;
    }
    if (s == IB_OK && c->init > 0)
        s = ib_model_set_init_style(r->model, (ib_init_style)(c->init - 1));
    if (s != IB_OK)
        return s;
    s = load_data(r);
    if (s != IB_OK)
        return s;
    int mc, mh, mw;
    ib_model_input_shape(r->model, &mc, &mh, &mw);
    if (mc != r->train->c || mh != r->train->h || mw != r->train->w)
        return ib__error(IB_ERR_ARG, "model '%s' takes %dx%dx%d inputs but %s images are %dx%dx%d", c->model, mc, mh,
                         mw, c->dataset, r->train->c, r->train->h, r->train->w);
    if (ib_model_classes(r->model) < r->train->classes)
        return ib__error(IB_ERR_ARG, "model '%s' has %d classes but %s has %d", c->model, ib_model_classes(r->model),
                         c->dataset, r->train->classes);
    r->params = ib_params_new(c->seed);
    if (!r->params)
        return ib__error(IB_ERR_NOMEM, "out of memory");
    s = build_net(r, &r->tr, c->batch_size, true);
    if (s == IB_OK)
        s = build_net(r, &r->ev, c->eval_batch_size, false);
    if (s != IB_OK)
        return s;
    r->opt = ib_optim_new(r->params, &c->optim);
    if (!r->opt)
        return IB_ERR_ARG;
    if (c->ema_decay > 0) {
        r->ema = ib_ema_new(r->params, c->ema_decay, c->ema_zero_debias);
        if (!r->ema)
            return IB_ERR_NOMEM;
    }
    r->bcfg = (ib_batcher_config){.batch_size = c->batch_size,
                                  .seed = c->seed,
                                  .shuffle = true,
                                  .drop_last = true,
                                  .norm = c->norm,
                                  .crop_pad = c->augment ? 4 : 0,
                                  .hflip = c->augment,
                                  .prefetch = true};
    s = ib_batcher_new(r->train, &r->bcfg, &r->batcher);
    if (s != IB_OK)
        return s;
    if (ib_batcher_batches_per_epoch(r->batcher) < 1)
        return ib__error(IB_ERR_ARG, "batch size %lld is larger than the %lld training examples",
                         (long long)c->batch_size, (long long)r->train->n);
    r->best_acc = -1;
    if (resume) {
        char *meta = NULL;
        s = ib_checkpoint_load(run_file(r, "last.safetensors"), r->params, r->opt, r->ema, &meta);
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
        ib_checkpoint_meta_free(&m);
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

/* Take the run directory's lock (see run_lock.h), then remove what killed
 * writers left there (no other run can be writing now). */
static ib_status lock_run_dir(run *r)
{
    ib_status s = ib__run_lock_acquire(r->cfg.out_dir, &r->lock);
    if (s == IB_OK)
        s = ib__atomic_remove_stale(r->cfg.out_dir, NULL);
    return s;
}

static ib_status refuse_existing_run(run *r)
{
    struct stat st;
    if (stat(run_file(r, "config.json"), &st) == 0)
        return ib__error(IB_ERR_ARG,
                         "%s already holds a run (config.json); continue it with --resume %s or choose another --out",
                         r->cfg.out_dir, r->cfg.out_dir);
    return IB_OK;
}

/* Set up (loading last.safetensors when resuming), write the configuration
 * of a new run once everything has been checked, train, and summarise. */
static ib_status run_all(run *r, bool resume, const char *config_json)
{
    ib_status s = setup(r, resume);
    if (s == IB_OK && config_json) /* a new run: its directory appears only once everything checked out */
        s = mkdirs(r->cfg.out_dir);
    if (s == IB_OK && config_json && !r->lock.held) { /* a new directory: another run may have made it too */
        s = lock_run_dir(r);
        if (s == IB_OK)
            s = refuse_existing_run(r);
    }
    if (s == IB_OK && config_json)
        s = write_text(run_file(r, "config.json"), config_json);
    if (s == IB_OK)
        s = run_epochs(r);
    if (s == IB_OK)
        s = write_summary(r);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", ib_last_error());
    run_free(r);
    ib__run_lock_release(&r->lock);
    if (s != IB_OK)
        ib__error(s, "%s", msg);
    return s;
}

ib_status ib_train(const ib_train_config *cfg, const ib_train_callbacks *cb)
{
    run r;
    memset(&r, 0, sizeof r);
    r.last_test_step = -1;
    r.cfg = *cfg;
    r.cb = cb;
    ib_status s = ib_train_config_check(cfg);
    if (s != IB_OK)
        return s;
    struct stat st;
    if (stat(cfg->out_dir, &st) == 0 && S_ISDIR(st.st_mode)) /* an existing directory: lock it before any work */
        s = lock_run_dir(&r);
    if (s == IB_OK)
        s = refuse_existing_run(&r);
    char *json = s == IB_OK ? ib_train_config_to_json(cfg) : NULL;
    if (s == IB_OK && !json)
        s = ib__error(IB_ERR_NOMEM, "out of memory");
    if (s != IB_OK) {
        ib__run_lock_release(&r.lock);
        return s;
    }
    s = run_all(&r, false, json);
    free(json);
    return s;
}

ib_status ib_train_resume(const char *dir, int64_t new_epochs, const ib_train_callbacks *cb)
{
    run r;
    memset(&r, 0, sizeof r);
    r.last_test_step = -1;
    char path[2048];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *json = read_text(path);
    if (!json)
        return ib__error(IB_ERR_IO, "cannot read %s: is %s a run directory?", path, dir);
    free(json);
    snprintf(r.cfg.out_dir, sizeof r.cfg.out_dir, "%s", dir);
    ib_status s = lock_run_dir(&r); /* before anything is read for good or written */
    if (s != IB_OK)
        return s;
    json = read_text(path);
    s = json ? ib_train_config_from_json(json, &r.cfg) : ib__error(IB_ERR_IO, "cannot read %s", path);
    free(json);
    if (s != IB_OK) {
        ib__run_lock_release(&r.lock);
        return ib__error(s, "%s: %s", path, ib_last_error());
    }
    snprintf(r.cfg.out_dir, sizeof r.cfg.out_dir, "%s", dir);
    if (new_epochs > 0) {
        r.cfg.epochs = new_epochs;
        char *text = ib_train_config_to_json(&r.cfg);
        s = write_text(path, text);
        free(text);
        if (s != IB_OK) {
            ib__run_lock_release(&r.lock);
            return s;
        }
    }
    r.cb = cb;
    return run_all(&r, true, NULL);
}
