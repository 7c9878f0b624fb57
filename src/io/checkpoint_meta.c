/*
 * checkpoint_meta.c — the training checkpoint's metadata (the JSON object
 * under the safetensors key "ibnet"): written by the trainer, read back by
 * a resume and by ib_net_open.  One writer and one reader, so the two
 * cannot drift apart, and one place that decides what a damaged or foreign
 * block is.
 *
 * The reader trusts nothing: a hand-edited or damaged file must give a
 * message, never a wrapped count or a division by zero.  Missing or
 * out-of-range optional numbers fall back to the defaults the trainer
 * uses; the counts a resume needs are reported through counts_valid so
 * that the caller, which knows the epoch's batch count, decides.
 */
#include "core/internal.h"

#include <cjson/cJSON.h>
#include <math.h>

/* A whole number in [lo, hi] (hand-edited or damaged files must not wrap
 * into nonsense counts). */
static bool count_in(const cJSON *v, double lo, double hi, int64_t *out)
{
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi) ||
        v->valuedouble != floor(v->valuedouble))
        return false;
    *out = (int64_t)v->valuedouble;
    return true;
}

static cJSON *add_floats(cJSON *o, const char *key, const float *v, int n)
{
    cJSON *a = cJSON_AddArrayToObject(o, key);
    for (int k = 0; a && k < n; k++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(v[k]));
    return a;
}

char *ib_checkpoint_meta_to_json(const ib_checkpoint_meta *m)
{
    if (!m)
        return NULL;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "meta_version", IB_CHECKPOINT_META_VERSION);
    cJSON_AddNumberToObject(o, "epoch", (double)m->epoch);
    cJSON_AddNumberToObject(o, "step", (double)m->step);
    cJSON_AddNumberToObject(o, "epoch_batches_done", (double)m->epoch_batches_done);
    char seed[32]; /* a string: a double cannot hold every 64-bit seed */
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)m->seed);
    cJSON_AddStringToObject(o, "seed", seed);
    cJSON_AddNumberToObject(o, "threads", m->threads);
    cJSON_AddNumberToObject(o, "best_epoch", (double)m->best_epoch);
    cJSON_AddNumberToObject(o, "best_accuracy", m->best_accuracy);
    if (m->loss_reference > 0 && m->loss_lowest > 0) {
        cJSON_AddNumberToObject(o, "loss_reference", m->loss_reference);
        cJSON_AddNumberToObject(o, "loss_lowest", m->loss_lowest);
    }
    cJSON_AddStringToObject(o, "model", m->model ? m->model : "");
    cJSON_AddStringToObject(o, "model_text", m->model_text ? m->model_text : "");
    cJSON_AddStringToObject(o, "dataset", m->dataset ? m->dataset : "");
    cJSON_AddNumberToObject(o, "classes", m->classes);
    cJSON_AddStringToObject(o, "input_norm", ib_input_norm_name(m->input_norm));
    int ch = m->channels < 0 ? 0 : m->channels > 4 ? 4 : m->channels;
    add_floats(o, "input_mean", m->input_mean, ch);
    add_floats(o, "input_std", m->input_std, ch);
    add_floats(o, "input_min", m->input_min, ch);
    add_floats(o, "input_max", m->input_max, ch);
    if (m->class_names) {
        cJSON *names = cJSON_AddArrayToObject(o, "class_names");
        for (int k = 0; names && k < m->n_class_names; k++)
            cJSON_AddItemToArray(names, cJSON_CreateString(m->class_names[k] ? m->class_names[k] : ""));
    }
    if (m->config_json)
        cJSON_AddItemToObject(o, "config", cJSON_Parse(m->config_json));
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

void ib_checkpoint_meta_free(ib_checkpoint_meta *m)
{
    if (!m)
        return;
    free((char *)m->model);
    free((char *)m->model_text);
    free((char *)m->dataset);
    free((char *)m->config_json);
    for (int k = 0; m->class_names && k < m->n_class_names; k++)
        free((char *)m->class_names[k]);
    free((char **)m->class_names);
    memset(m, 0, sizeof *m);
}

static const char *string_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool dup_into(const char **dst, const char *src)
{
    *dst = src ? strdup(src) : NULL;
    return !src || *dst;
}

/* Per-channel numbers: finite and of a sane size, else `fallback` (and
 * *bad set). */
static int read_channels(const cJSON *arr, float *out, float fallback, bool positive, bool *bad)
{
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        if (k >= 4)
            break;
        /* checked as the float it becomes, so what is written back reads back */
        float v = cJSON_IsNumber(e) && fabs(e->valuedouble) <= 1e6 ? (float)e->valuedouble : NAN;
        bool ok = isfinite(v) && fabsf(v) <= 1e6f && (!positive || v > 1e-12f);
        if (!ok && bad)
            *bad = true;
        out[k++] = ok ? v : fallback;
    }
    return k;
}

ib_status ib_checkpoint_meta_parse(const char *json, const char *what, ib_checkpoint_meta *m)
{
    if (!m)
        return ib__error(IB_ERR_ARG, "ib_checkpoint_meta_parse: no output");
    memset(m, 0, sizeof *m);
    what = what ? what : "checkpoint";
    if (!json || !*json)
        return ib__error(IB_ERR_FORMAT, "%s is not an ibnet training checkpoint (its metadata has no \"ibnet\" entry)",
                         what);
    cJSON *o = cJSON_Parse(json);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return ib__error(IB_ERR_FORMAT, "%s: damaged checkpoint metadata (the \"ibnet\" entry is not a JSON object)",
                         what);
    }
    ib_status s = IB_OK;
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(o, "meta_version");
    int64_t version = 0;
    if (ver && !count_in(ver, 1, 1e9, &version))
        s = ib__error(IB_ERR_FORMAT, "%s: damaged checkpoint metadata (meta_version is not a whole number >= 1)", what);
    else if (version > IB_CHECKPOINT_META_VERSION)
        s = ib__error(IB_ERR_FORMAT,
                      "%s: checkpoint metadata version %lld; this ibnet (%s) reads versions up to %d: open it with a "
                      "newer ibnet",
                      what, (long long)version, IBNET_VERSION_STRING, IB_CHECKPOINT_META_VERSION);
    const char *text = string_of(o, "model_text"), *ds = string_of(o, "dataset"), *norm = string_of(o, "input_norm");
    if (s == IB_OK && (!text || !ds || !norm))
        s = ib__error(IB_ERR_FORMAT,
                      "%s is not an ibnet training checkpoint (no model description in its metadata)", what);
    if (s == IB_OK && ib_input_norm_parse(norm, &m->input_norm) != IB_OK)
        s = ib__error(IB_ERR_FORMAT, "%s: damaged checkpoint metadata: unknown input normalisation \"%.40s\"", what,
                      norm);
    if (s != IB_OK) {
        cJSON_Delete(o);
        memset(m, 0, sizeof *m);
        return s;
    }
    m->version = (int)version;

    /* the counts a resume needs */
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "epoch");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "step");
    const cJSON *pb = cJSON_GetObjectItemCaseSensitive(o, "epoch_batches_done");
    const cJSON *be = cJSON_GetObjectItemCaseSensitive(o, "best_epoch");
    const cJSON *ba = cJSON_GetObjectItemCaseSensitive(o, "best_accuracy");
    m->counts_valid = count_in(e, 0, 9e15, &m->epoch) && count_in(st, 0, 9e15, &m->step) &&
                      (!pb || count_in(pb, 0, 9e15, &m->epoch_batches_done)) &&
                      (!be || count_in(be, 0, (double)m->epoch, &m->best_epoch));
    m->best_accuracy = cJSON_IsNumber(ba) ? ba->valuedouble : -1;
    /* both or neither, finite and positive: else not recorded (the watch starts afresh) */
    const cJSON *lr = cJSON_GetObjectItemCaseSensitive(o, "loss_reference");
    const cJSON *ll = cJSON_GetObjectItemCaseSensitive(o, "loss_lowest");
    if (cJSON_IsNumber(lr) && cJSON_IsNumber(ll) && isfinite(lr->valuedouble) && isfinite(ll->valuedouble) &&
        lr->valuedouble > 0 && ll->valuedouble > 0) {
        m->loss_reference = lr->valuedouble;
        m->loss_lowest = ll->valuedouble;
    }
    int64_t v;
    m->threads = count_in(cJSON_GetObjectItemCaseSensitive(o, "threads"), 1, 1 << 20, &v) ? (int)v : 0;
    m->classes = count_in(cJSON_GetObjectItemCaseSensitive(o, "classes"), 1, 1 << 24, &v) ? (int)v : 0;

    /* the input normalisation: finite means, positive deviations (never a 0 to divide by) */
    bool bad_std = false;
    int nm = read_channels(cJSON_GetObjectItemCaseSensitive(o, "input_mean"), m->input_mean, 0.0f, false, NULL);
    int ns = read_channels(cJSON_GetObjectItemCaseSensitive(o, "input_std"), m->input_std, 1.0f, true, &bad_std);
    read_channels(cJSON_GetObjectItemCaseSensitive(o, "input_min"), m->input_min, 0.0f, false, NULL);
    read_channels(cJSON_GetObjectItemCaseSensitive(o, "input_max"), m->input_max, 1.0f, false, NULL);
    m->channels = nm > ns ? nm : ns;
    for (int c = ns; c < m->channels; c++)
        m->input_std[c] = 1.0f; /* a channel without a deviation: never a 0 to divide by */
    if (bad_std && m->input_norm == IB_NORM_STANDARDIZE) { /* other scalings store no statistics */
        cJSON_Delete(o);
        memset(m, 0, sizeof *m);
        return ib__error(IB_ERR_FORMAT, "%s: the input normalisation in its metadata is damaged (input_std must be "
                         "positive numbers)", what);
    }

    /* the configuration's settings evaluation needs; out-of-range numbers
     * (a damaged file) fall back to the defaults */
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(o, "config");
    const cJSON *es = cJSON_GetObjectItemCaseSensitive(cfg, "eval_samples");
    m->eval_samples = cJSON_IsNumber(es) && es->valuedouble >= 1 && es->valuedouble <= 1000 ? (int)es->valuedouble : 12;
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(cfg, "seed");
    if (!seed)
        seed = cJSON_GetObjectItemCaseSensitive(o, "seed");
    m->seed = cJSON_IsString(seed) ? strtoull(seed->valuestring, NULL, 10)
              : cJSON_IsNumber(seed) && seed->valuedouble >= 0 && seed->valuedouble <= 9007199254740992.0
                  ? (uint64_t)seed->valuedouble
                  : 1;
    const cJSON *ed = cJSON_GetObjectItemCaseSensitive(cfg, "ema_decay");
    const cJSON *ez = cJSON_GetObjectItemCaseSensitive(cfg, "ema_zero_debias");
    float decay = cJSON_IsNumber(ed) && fabs(ed->valuedouble) <= 1 ? (float)ed->valuedouble : 0.0f;
    m->ema_decay = decay >= 0.0f && decay < 1.0f ? decay : 0.0f;
    m->ema_zero_debias = !cJSON_IsBool(ez) || cJSON_IsTrue(ez);

    bool ok = dup_into(&m->model, string_of(o, "model") ? string_of(o, "model") : "") && dup_into(&m->model_text, text) &&
              dup_into(&m->dataset, ds);
    if (ok && cJSON_IsObject(cfg)) {
        m->config_json = cJSON_PrintUnformatted(cfg);
        ok = m->config_json != NULL;
    }
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(o, "class_names");
    int n_names = cJSON_IsArray(names) ? cJSON_GetArraySize(names) : 0;
    if (ok && n_names > 0 && n_names <= 1 << 20) {
        char **list = calloc((size_t)n_names, sizeof *list);
        ok = list != NULL;
        m->class_names = (const char *const *)list;
        cJSON_ArrayForEach(e, names)
        {
            if (!ok)
                break;
            list[m->n_class_names] = strdup(cJSON_IsString(e) ? e->valuestring : "");
            ok = list[m->n_class_names++] != NULL;
        }
    }
    cJSON_Delete(o);
    if (!ok) {
        ib_checkpoint_meta_free(m);
        return ib__error(IB_ERR_NOMEM, "%s: out of memory reading the checkpoint metadata", what);
    }
    return IB_OK;
}

ib_status ib_checkpoint_meta_read(const char *path, ib_checkpoint_meta *m)
{
    if (!m)
        return ib__error(IB_ERR_ARG, "ib_checkpoint_meta_read: no output");
    memset(m, 0, sizeof *m);
    char *text = NULL;
    ib_status s = ib_checkpoint_read_metadata(path, &text);
    if (s == IB_OK)
        s = ib_checkpoint_meta_parse(text, path, m);
    free(text);
    return s;
}
