/*
 * trainer.c — one experiment from data to checkpoints: check the
 * configuration, load the data (and the views the method makes of it),
 * build the graphs the method declares over one parameter store (nets.c),
 * run the epochs (loop.c) and record them in the run directory
 * (records.c, run_dir.c).  The trainer asks the method for its loss and
 * knows no objective by name.
 */
#include "train_internal.h"
#include "../io/atomic_file.h"

#include <math.h>
#include <sys/stat.h>

typedef ib__train_run run;

/* ---- data ---- */

/* View 2 of a two-view data set (twoview.c), cut as view 1 was (the
 * training limit, the validation examples held out): example i of both is
 * the same example, so one batch order keeps them aligned. */
static ib_status open_second_view(run *r, const ib_load_options *lo)
{
    const ib_train_config *c = &r->cfg;
    if (ib_dataset_spec_views(c->dataset) < 2)
        return IB_OK;
    ib_dataset *full = NULL, *part = NULL, *val = NULL;
    ib_status s = ib_dataset_open_view(c->dataset, "train", 1, c->data_dir[0] ? c->data_dir : NULL, lo, &full);
    if (s != IB_OK)
        return s;
    if (c->train_limit > 0 && c->train_limit < full->n) {
        s = ib_dataset_slice(full, 0, c->train_limit, &part);
        ib_dataset_free(full);
        if (s != IB_OK)
            return s;
        full = part;
    }
    if (c->val_size > 0) {
        s = ib_dataset_split_last(full, c->val_size, &part, &val);
        ib_dataset_free(full);
        if (s != IB_OK)
            return s;
        full = part;
        r->val2 = val; /* the best epoch is chosen on both views' validation accuracy */
    }
    r->view_data[1] = full;
    return IB_OK;
}

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
    s = open_second_view(r, &lo);
    if (s != IB_OK)
        return s;
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

/* View 2 of the test set, evaluated each epoch beside view 1: a two-view
 * set's own (cut to --test-limit as view 1), else the method's view of
 * the test set (make_view); none for a one-view method. */
static ib_status open_test_view2(run *r)
{
    const ib_train_config *c = &r->cfg;
    const ib_method *m = r->method;
    if (m->views < 2)
        return IB_OK;
    ib_status s;
    if (ib_dataset_spec_views(c->dataset) >= 2) {
        ib_load_options lo = {.skip_hash = c->skip_hash};
        s = ib_dataset_open_view(c->dataset, "test", 1, c->data_dir[0] ? c->data_dir : NULL, &lo, &r->test2);
        if (s == IB_OK && r->test2->n > r->test->n) { /* --test-limit */
            ib_dataset *part = NULL;
            s = ib_dataset_slice(r->test2, 0, r->test->n, &part);
            ib_dataset_free(r->test2);
            r->test2 = part;
        }
    } else if (m->make_view) {
        s = m->make_view(r->test, 1, c->seed, &r->test2);
        if (s == IB_OK && r->val) /* the held-out examples' view 2: the best epoch is chosen on both views */
            s = m->make_view(r->val, 1, c->seed, &r->val2);
        if (s == IB_OK && r->val && (!r->val2 || r->val2->n != r->val->n))
            return ib__error(IB_ERR_ARG, "method '%s': view 2 of the validation set must have its %lld examples",
                             m->name, (long long)r->val->n);
    } else {
        return IB_OK; /* view 2 is the training set itself: so is its test set */
    }
    if (s != IB_OK)
        return ib__error(s, "view 2 of the test set: %s", ib_last_error());
    const ib_dataset *t = r->test, *t2 = r->test2;
    if (!t2 || t2->n != t->n || t2->c != t->c || t2->h != t->h || t2->w != t->w)
        return ib__error(IB_ERR_ARG, "view 2 of the test set must have view 1's %lld examples of %dx%dx%d",
                         (long long)t->n, t->c, t->h, t->w);
    return IB_OK;
}

/* Views 2.. of the training set, each batched in view 1's order: the
 * method makes them (or they are the training set itself). */
static ib_status open_views(run *r)
{
    const ib_method *m = r->method;
    if (m->views < 2)
        return IB_OK;
    r->view_labels = malloc((size_t)r->cfg.batch_size * sizeof *r->view_labels);
    if (!r->view_labels)
        return ib__error(IB_ERR_NOMEM, "out of memory");
    for (int v = 1; v < m->views; v++) {
        const ib_dataset *d = r->view_data[v] ? r->view_data[v] : r->train; /* a two-view set's own view 2 */
        if (!r->view_data[v] && m->make_view) {
            ib_status s = m->make_view(r->train, v, r->cfg.seed, &r->view_data[v]);
            if (s != IB_OK)
                return ib__error(s, "method '%s', view %d: %s", m->name, v + 1, ib_last_error());
            d = r->view_data[v];
            if (!d || d->n != r->train->n || d->c != r->train->c || d->h != r->train->h || d->w != r->train->w)
                return ib__error(IB_ERR_ARG, "method '%s': view %d must have the training set's %lld examples of %dx%dx%d",
                                 m->name, v + 1, (long long)r->train->n, r->train->c, r->train->h, r->train->w);
        }
        /* one seed and one size: the same shuffle, so the views stay aligned */
        ib_status s = ib_batcher_new(d, &r->bcfg, &r->view_batcher[v]);
        if (s != IB_OK)
            return s;
    }
    return IB_OK;
}

static void run_free(run *r)
{
    ib_batcher_free(r->batcher);
    for (int v = 0; v < IB_MAX_VIEWS; v++) {
        ib_batcher_free(r->view_batcher[v]);
        ib_dataset_free(r->view_data[v]);
    }
    free(r->view_labels);
    ib_graph_free(r->tr.g);
    ib_graph_free(r->ev.g);
    ib_graph_free(r->ev2.g);
    ib__track_free(r->track);
    ib_optim_free(r->opt);
    ib_ema_free(r->ema);
    ib_params_free(r->params);
    ib_model_free(r->model);
    for (int k = 0; k < IB_MAX_NETS; k++)
        ib_model_free(r->net_models[k]);
    ib_dataset_free(r->train);
    ib_dataset_free(r->val);
    ib_dataset_free(r->test);
    ib_dataset_free(r->test2);
    ib_dataset_free(r->val2);
    ib_eval_result_free(&r->last_test);
    ib_eval_result_free(&r->last_test2);
}

/* --freeze (every run, so a resumed run stays frozen) and --init-from (a
 * new run only: a resume continues from its own checkpoint). */
static ib_status freeze_and_init(run *r, bool resume)
{
    const ib_train_config *c = &r->cfg;
    for (const char *p = c->freeze; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char prefix[1024];
        snprintf(prefix, sizeof prefix, "%.*s", (int)n, p);
        if (n == 0 || ib_params_freeze(r->params, prefix, true) <= 0)
            return ib__error(IB_ERR_ARG, "--freeze: the prefix '%s' matches no parameter of model '%s' (see ibnet models "
                             "--layers)", prefix, c->model);
        p = end ? end + 1 : p + n;
    }
    if (resume || !c->init_from[0])
        return IB_OK;
    ib_checkpoint_partial_options o = {.use_ema = true};
    ib_checkpoint_partial res;
    ib_status s = ib_checkpoint_load_partial(c->init_from, r->params, &o, &res);
    if (s != IB_OK)
        return ib__error(s, "--init-from %s: %s", c->init_from, ib_last_error());
    if (r->cb && r->cb->note) {
        char line[2048];
        int k = snprintf(line, sizeof line, "init-from %s: %d tensors loaded (%d EMA averages), %d kept their "
                         "initialisation", c->init_from, res.n_loaded, res.n_loaded_ema, res.n_kept);
        for (int i = 0, shown = 0; i < res.n_params && k > 0 && (size_t)k < sizeof line - 80; i++)
            if (res.source[i] == IB_CKPT_KEPT)
                k += snprintf(line + k, sizeof line - (size_t)k, "%s%s", shown++ ? ", " : ": ",
                              ib_params_name(r->params, i));
        r->cb->note(r->cb->ctx, line);
    }
    ib_checkpoint_partial_free(&res);
    return IB_OK;
}

/* Everything up to the first step; `resume` loads last.safetensors. */
static ib_status setup(run *r, bool resume)
{
    ib_train_config *c = &r->cfg;
    ib_status s = ib__train_config_check(c, r->method);
    if (s != IB_OK)
        return s;
    if (!r->method)
        r->method = ib_method_find(c->method);
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
    if (r->dp_size > 1) {
        if (c->batch_size < r->dp_size)
            return ib__error(IB_ERR_ARG, "batch size %lld over %d ranks: every rank needs at least one row",
                             (long long)c->batch_size, r->dp_size);
        ib_shard_rows(c->batch_size, r->dp_rank, r->dp_size, &r->row0, &r->local_batch);
    }
    s = ib__run_build_nets(r);
    if (s != IB_OK)
        return s;
    s = freeze_and_init(r, resume);
    if (s != IB_OK)
        return s;
    r->opt = ib_optim_new(r->params, &c->optim);
    if (!r->opt)
        return IB_ERR_ARG;
    ib__optim_set_zero_grads(r->opt, true); /* the step zeroes what it consumed (loop.c) */
    if (c->ema_decay > 0) {
        r->ema = ib_ema_new(r->params, c->ema_decay, c->ema_zero_debias);
        if (!r->ema)
            return IB_ERR_NOMEM;
        ib__optim_set_ema(r->opt, r->ema); /* each step averages in its own pass */
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
    s = ib__track_open(r); /* feeds as the evaluation does: after the batcher */
    if (s == IB_OK)
        s = open_views(r);
    if (s == IB_OK)
        s = open_test_view2(r);
    if (s == IB_OK)
        s = ib__dp_shard(r);
    if (s != IB_OK)
        return s;
    r->best_acc = -1;
    ib__loss_watch_init(&r->watch, NULL);
    if (resume)
        s = ib__run_load_resume_state(r);
    return s;
}

/* Take the run directory's lock (see run_lock.h), then remove what killed
 * writers left there (no other run can be writing now). */
static ib_status lock_run_dir(run *r)
{
    if (!ib__dp_writer()) /* ranks > 0 of a data-parallel run write nothing */
        return IB_OK;
    ib_status s = ib__run_lock_acquire(r->cfg.out_dir, &r->lock);
    if (s == IB_OK)
        s = ib__atomic_remove_stale(r->cfg.out_dir, NULL);
    return s;
}

static ib_status refuse_existing_run(run *r)
{
    struct stat st;
    if (ib__dp_writer() && stat(ib__run_dir_file(&r->dir, "config.json"), &st) == 0)
        return ib__error(IB_ERR_ARG,
                         "%s already holds a run (config.json); continue it with --resume %s or choose another --out",
                         r->cfg.out_dir, r->cfg.out_dir);
    return IB_OK;
}

/* Set up (loading last.safetensors when resuming), write the configuration
 * of a new run once everything has been checked, train, and summarise. */
static ib_status run_all(run *r, bool resume, const char *config_json)
{
    ib__run_dir_init(&r->dir, r->cfg.out_dir);
    ib_status s = setup(r, resume);
    if (s == IB_OK && config_json) /* a new run: its directory appears only once everything checked out */
        s = ib__run_dir_create(&r->dir);
    if (s == IB_OK && config_json && !r->lock.held) { /* a new directory: another run may have made it too */
        s = lock_run_dir(r);
        if (s == IB_OK)
            s = refuse_existing_run(r);
    }
    if (s == IB_OK && config_json)
        s = ib__run_dir_write(&r->dir, "config.json", config_json);
    if (s == IB_OK)
        s = ib__run_epochs(r);
    if (s == IB_OK)
        s = ib__run_write_summary(r);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", ib_last_error());
    run_free(r);
    ib__run_lock_release(&r->lock);
    if (s != IB_OK)
        ib__error(s, "%s", msg);
    return s;
}

/* A caller's method must be the one the configuration names: config.json
 * records the name, and a resume is checked against it. */
static ib_status method_matches(const ib_train_config *cfg, const ib_method *m)
{
    if (m && (!m->name || strcmp(cfg->method, m->name) != 0))
        return ib__error(IB_ERR_ARG, "the configuration's objective is '%s' but the method given is '%s'",
                         cfg->method, m->name ? m->name : "(unnamed)");
    return IB_OK;
}

ib_status ib_train_with(const ib_train_config *cfg, const ib_method *m, const ib_train_callbacks *cb)
{
    if (!cfg)
        return ib__error(IB_ERR_ARG, "ib_train: config is NULL");
    run r;
    memset(&r, 0, sizeof r);
    r.last_test_step = -1;
    r.ema_bn_step = -1;
    r.cfg = *cfg;
    r.method = m;
    ib__dp_begin(&r, cb); /* several ranks: rank 0's configuration everywhere */
    cfg = &r.cfg;
    ib_status s = method_matches(cfg, m);
    if (s == IB_OK)
        s = ib__train_config_check(cfg, m);
    if (s != IB_OK)
        return s;
    ib__run_dir_init(&r.dir, cfg->out_dir);
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

ib_status ib_train(const ib_train_config *cfg, const ib_train_callbacks *cb) { return ib_train_with(cfg, NULL, cb); }

ib_status ib_train_resume_with(const char *dir, int64_t new_epochs, const ib_method *m, const ib_train_callbacks *cb)
{
    if (!dir)
        return ib__error(IB_ERR_ARG, "ib_train_resume: dir is NULL");
    run r;
    memset(&r, 0, sizeof r);
    r.last_test_step = -1;
    r.ema_bn_step = -1;
    ib__run_dir_init(&r.dir, dir);
    char path[sizeof r.dir.path];
    snprintf(path, sizeof path, "%s", ib__run_dir_file(&r.dir, "config.json"));
    char *json = ib__run_dir_read(&r.dir, "config.json");
    if (!json)
        return ib__error(IB_ERR_IO, "cannot read %s: is %s a run directory?", path, dir);
    free(json);
    snprintf(r.cfg.out_dir, sizeof r.cfg.out_dir, "%s", dir);
    ib_status s = lock_run_dir(&r); /* before anything is read for good or written */
    if (s != IB_OK)
        return s;
    json = ib__run_dir_read(&r.dir, "config.json");
    s = json ? ib_train_config_from_json(json, &r.cfg) : ib__error(IB_ERR_IO, "cannot read %s", path);
    free(json);
    if (s != IB_OK)
        s = ib__error(s, "%s: %s", path, ib_last_error());
    if (s == IB_OK)
        s = method_matches(&r.cfg, m);
    snprintf(r.cfg.out_dir, sizeof r.cfg.out_dir, "%s", dir);
    if (s == IB_OK && new_epochs > 0) {
        r.cfg.epochs = new_epochs;
        char *text = ib_train_config_to_json(&r.cfg);
        s = ib__run_dir_write(&r.dir, "config.json", text);
        free(text);
    }
    if (s != IB_OK) {
        ib__run_lock_release(&r.lock);
        return s;
    }
    r.method = m;
    ib__dp_begin(&r, cb);
    return run_all(&r, true, NULL);
}

ib_status ib_train_resume(const char *dir, int64_t new_epochs, const ib_train_callbacks *cb)
{
    return ib_train_resume_with(dir, new_epochs, NULL, cb);
}
