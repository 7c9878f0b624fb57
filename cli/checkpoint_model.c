/*
 * checkpoint_model.c — see checkpoint_model.h.
 */
#include "checkpoint_model.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ib_status fail(ckpt_net *n, ib_status s)
{
    if (s != IB_OK)
        snprintf(n->err, sizeof n->err, "%s", ib_last_error());
    return s;
}

ib_status ckpt_net_open(ckpt_net *n, const char *path, int64_t batch, bool want_ema)
{
    memset(n, 0, sizeof *n);
    char *meta = NULL;
    ib_status s = ib_checkpoint_read_metadata(path, &meta);
    if (s != IB_OK)
        return fail(n, s);
    cJSON *m = cJSON_Parse(meta ? meta : "");
    free(meta);
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(m, "model_text");
    const cJSON *ds = cJSON_GetObjectItemCaseSensitive(m, "dataset");
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(m, "input_norm");
    const cJSON *mean = cJSON_GetObjectItemCaseSensitive(m, "input_mean");
    const cJSON *std = cJSON_GetObjectItemCaseSensitive(m, "input_std");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(m, "config");
    if (!cJSON_IsString(text) || !cJSON_IsString(ds) || !cJSON_IsString(norm)) {
        cJSON_Delete(m);
        snprintf(n->err, sizeof n->err, "%s is not an ibnet training checkpoint (no model description in its metadata)",
                 path);
        return IB_ERR_FORMAT;
    }
    snprintf(n->dataset, sizeof n->dataset, "%s", ds->valuestring);
    n->norm.batch_size = batch;
    s = ib_input_norm_parse(norm->valuestring, &n->norm.norm);
    /* the per-channel statistics of a standardising run: finite means, positive deviations */
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, mean) if (k < 4 && cJSON_IsNumber(e) && fabs(e->valuedouble) <= 1e6) n->norm.mean[k++] =
        (float)e->valuedouble;
    k = 0;
    bool bad_std = false;
    cJSON_ArrayForEach(e, std) if (k < 4)
    {
        bad_std |= !(cJSON_IsNumber(e) && e->valuedouble > 1e-12 && e->valuedouble <= 1e6);
        n->norm.std[k++] = bad_std ? 1.0f : (float)e->valuedouble; /* never a 0 to divide by */
    }
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(m, "class_names");
    cJSON_ArrayForEach(e, names) if (n->n_names < 100 && cJSON_IsString(e))
        snprintf(n->names[n->n_names++], sizeof n->names[0], "%s", e->valuestring);
    const cJSON *es = cJSON_GetObjectItemCaseSensitive(cfg, "eval_samples");
    /* out-of-range numbers (a damaged file) fall back to the defaults */
    n->eval_samples = cJSON_IsNumber(es) && es->valuedouble >= 1 && es->valuedouble <= 1000 ? (int)es->valuedouble : 12;
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(cfg, "seed");
    uint64_t run_seed = cJSON_IsString(seed) ? strtoull(seed->valuestring, NULL, 10)
                        : cJSON_IsNumber(seed) && seed->valuedouble >= 0 && seed->valuedouble <= 9007199254740992.0
                            ? (uint64_t)seed->valuedouble
                            : 1;
    n->eval_seed = run_seed ^ IB_EVAL_SEED_SALT;
    /* the EMA's decay and debiasing decide how its shadow becomes weights */
    const cJSON *ed = cJSON_GetObjectItemCaseSensitive(cfg, "ema_decay");
    const cJSON *ez = cJSON_GetObjectItemCaseSensitive(cfg, "ema_zero_debias");
    float ema_decay = cJSON_IsNumber(ed) && ed->valuedouble >= 0 && ed->valuedouble < 1 ? (float)ed->valuedouble : 0.0f;
    bool ema_debias = !cJSON_IsBool(ez) || cJSON_IsTrue(ez);
    if (s == IB_OK)
        s = ib_model_parse(text->valuestring, path, &n->model);
    cJSON_Delete(m);
    if (s == IB_OK && bad_std && n->norm.norm == IB_NORM_STANDARDIZE) { /* other scalings store no statistics */
        snprintf(n->err, sizeof n->err, "%s: the input normalisation in its metadata is damaged (input_std must be "
                 "positive numbers)", path);
        return IB_ERR_FORMAT;
    }
    if (s != IB_OK)
        return fail(n, s);
    int c, h, w;
    ib_model_input_shape(n->model, &c, &h, &w);
    n->params = ib_params_new(0);
    n->g = ib_graph_new(n->params);
    n->x = ib_input(n->g, "x", 4, (int64_t[]){batch, c, h, w});
    s = ib_model_build(n->model, n->g, n->x, NULL, &n->out);
    if (s == IB_OK) /* eval and predict only run forward: activations share memory */
        s = ib_graph_set_forward_only(n->g, true);
    if (s == IB_OK)
        s = ib_graph_compile(n->g);
    if (s != IB_OK)
        return fail(n, s);
    for (int l = 0; l < n->out.n_bottlenecks; l++)
        n->kl[l] = n->out.bn[l].kl;
    ib_graph_set_training(n->g, false);
    if (want_ema && ema_decay > 0) {
        ib_ema *ema = ib_ema_new(n->params, ema_decay, ema_debias);
        if (ema && ib_checkpoint_load(path, n->params, NULL, ema, NULL) == IB_OK) {
            ib_ema_swap(ema); /* the averaged weights into the store */
            n->used_ema = true;
            ib_ema_free(ema);
            return IB_OK;
        }
        ib_ema_free(ema);
    }
    return fail(n, ib_checkpoint_load(path, n->params, NULL, NULL, NULL));
}

void ckpt_net_close(ckpt_net *n)
{
    ib_graph_free(n->g);
    ib_params_free(n->params);
    ib_model_free(n->model);
    memset(n, 0, sizeof *n);
}
