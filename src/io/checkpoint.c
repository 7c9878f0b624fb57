/*
 * checkpoint.c — ib_checkpoint_save/load/read_metadata: a model's store,
 * optionally its optimizer state and EMA shadow, as one safetensors file
 * that PyTorch reads (tensor names are the store's PyTorch-style names).
 *
 * Loading is all-or-nothing: the whole file is validated and matched
 * against the model first, every tensor is then read into a staging buffer,
 * and only when all reads succeeded is anything copied into the store,
 * optimizer and EMA — so a truncated, corrupt or foreign file changes
 * nothing.  Any tensor in the file the model cannot place is an error: a
 * checkpoint of another model must not half-load.  The one exception is
 * optimizer ("optim.*") or EMA ("ema.*") state of this model's parameters
 * when the caller did not ask for it (evaluating a training checkpoint).
 * "ema.<buffer>" is a buffer's value of the averaged network (batch-norm
 * statistics recomputed for the EMA weights, ib_ema_keep_buffer): stored
 * as is, never debiased, present only for buffers the EMA owns.
 * ib_checkpoint_load_partial is the deliberate exception for starting a new
 * model from another's weights (--init-from): it takes what matches by name
 * and shape, reports the rest, and is still all-or-nothing and verified.
 *
 * Each tensor's bytes carry a CRC-32 in the metadata ("ibnet.crc32": a
 * JSON object {"name": "8 hex digits"}), checked as each tensor is read:
 * a flipped bit in a weight is "damaged checkpoint", not a loss that turns
 * inf epochs later.  zlib's crc32 is already linked for the data readers;
 * one pass over the bytes (docs/checkpoints.md gives the cost) is small
 * beside reading them, and callers in a hurry can skip it.
 */
#include "core/internal.h"
#include "io/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <zlib.h>

#define CRC_KEY "ibnet.crc32"

/* CRC-32 of n floats as stored in the file (little-endian). */
static uint32_t crc_f32(const float *x, int64_t n)
{
    const uint16_t one = 1;
    bool little = *(const unsigned char *)&one == 1;
    uLong c = crc32(0L, Z_NULL, 0);
    if (little) {
        const unsigned char *b = (const unsigned char *)x;
        for (int64_t left = n * 4; left > 0;) {
            uInt k = left > (1 << 30) ? (uInt)(1 << 30) : (uInt)left;
            c = crc32(c, b, k);
            b += k;
            left -= k;
        }
        return (uint32_t)c;
    }
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        unsigned char le[4] = {(unsigned char)u, (unsigned char)(u >> 8), (unsigned char)(u >> 16),
                               (unsigned char)(u >> 24)};
        c = crc32(c, le, 4);
    }
    return (uint32_t)c;
}

/* The "ibnet.crc32" object text for the n tensors about to be written. */
static char *crc_json(int n, const ib__st_out *t)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    for (int i = 0; ok && i < n; i++) {
        char hex[16];
        snprintf(hex, sizeof hex, "%08" PRIx32, crc_f32(t[i].data, ib__numel(t[i].ndim, t[i].shape)));
        ok = cJSON_AddStringToObject(o, t[i].name, hex) != NULL;
    }
    char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return text;
}

/* The stored checksum of tensor `name` from the parsed map: 1 and *crc
 * when present, 0 when the file has no map, -1 (error set) when the map is
 * damaged or lacks the tensor. */
static int stored_crc(const ib__st_file *f, const cJSON *map, const char *name, uint32_t *crc)
{
    if (!map)
        return 0;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(map, name);
    char *end = NULL;
    unsigned long x = cJSON_IsString(v) && strlen(v->valuestring) == 8 ? strtoul(v->valuestring, &end, 16) : 0;
    if (!end || *end) {
        ib__error(IB_ERR_FORMAT, "%s: damaged checkpoint: metadata \"" CRC_KEY "\" has no valid checksum for tensor "
                  "\"%.100s\"", f->what, name);
        return -1;
    }
    *crc = (uint32_t)x;
    return 1;
}

static const char *optim_kind_name(ib_optim_kind k)
{
    switch (k) {
    case IB_OPTIM_SGD: return "sgd";
    case IB_OPTIM_ADAM: return "adam";
    case IB_OPTIM_ADAMW: return "adamw";
    case IB_OPTIM_ADAMAX: return "adamax";
    }
    return "unknown";
}

/* "<a><b><c>" in a fresh allocation (NULL when out of memory). */
static char *join3(const char *a, const char *b, const char *c)
{
    size_t na = strlen(a), nb = strlen(b), nc = strlen(c);
    char *s = malloc(na + nb + nc + 1);
    if (s) {
        memcpy(s, a, na);
        memcpy(s + na, b, nb);
        memcpy(s + na + nb, c, nc + 1);
    }
    return s;
}

static bool trainable(const ib_params *p, int i) { return ib_params_kind(p, i) == IB_PARAM_TRAINABLE; }

static ib_status check_json_object(const char *path, const char *text)
{
    cJSON *j = cJSON_Parse(text);
    bool ok = j && cJSON_IsObject(j);
    cJSON_Delete(j);
    return ok ? IB_OK
              : ib__error(IB_ERR_ARG, "%s: the metadata given to ib_checkpoint_save is not a JSON object: %.80s", path,
                          text);
}

/* The shortest decimal that reads back as x ("0.9", not "0.899999976"),
 * so the metadata says what the user wrote. */
static void fmt_float(char *buf, size_t len, float x)
{
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(buf, len, "%.*g", digits, (double)x);
        if (strtof(buf, NULL) == x)
            return;
    }
}

/* The optimizer configuration as a JSON object text (for people and
 * scripts reading the file; loading restores only steps and lr). */
static char *optim_config_json(const ib_optim_config *c)
{
    char lr[32], mom[32], damp[32], wd[32], b1[32], b2[32], eps[32], clip[32], buf[512];
    fmt_float(lr, sizeof lr, c->lr);
    fmt_float(mom, sizeof mom, c->momentum);
    fmt_float(damp, sizeof damp, c->dampening);
    fmt_float(wd, sizeof wd, c->weight_decay);
    fmt_float(b1, sizeof b1, c->beta1);
    fmt_float(b2, sizeof b2, c->beta2);
    fmt_float(eps, sizeof eps, c->eps);
    fmt_float(clip, sizeof clip, c->clip_grad_norm);
    snprintf(buf, sizeof buf,
             "{\"kind\":\"%s\",\"lr\":%s,\"momentum\":%s,\"dampening\":%s,\"nesterov\":%s,"
             "\"weight_decay\":%s,\"beta1\":%s,\"beta2\":%s,\"eps\":%s,\"clip_grad_norm\":%s}",
             optim_kind_name(c->kind), lr, mom, damp, c->nesterov ? "true" : "false", wd, b1, b2, eps, clip);
    return strdup(buf);
}

/* Per-parameter update counts that differ from the global one (a
 * parameter frozen for a while, or added to the store later: layer-wise
 * training) as a JSON object text {"name": count, ...}; *out = NULL when
 * every trainable parameter has the global count.  Exactly one of opt and
 * ema is given. */
static ib_status own_counts_json(const ib_params *p, const ib_optim *opt, const ib_ema *ema, int64_t global, char **out)
{
    *out = NULL;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return ib__error(IB_ERR_NOMEM, "checkpoint: out of memory");
    bool any = false;
    for (int i = 0; i < ib_params_count(p); i++) {
        if (!trainable(p, i))
            continue;
        int64_t t = opt ? ib_optim_param_steps(opt, i) : ib_ema_param_updates(ema, i);
        if (t == global)
            continue;
        any = true;
        if (!cJSON_AddNumberToObject(o, ib_params_name(p, i), (double)t)) {
            cJSON_Delete(o);
            return ib__error(IB_ERR_NOMEM, "checkpoint: out of memory");
        }
    }
    if (any) {
        *out = cJSON_PrintUnformatted(o);
        if (!*out) {
            cJSON_Delete(o);
            return ib__error(IB_ERR_NOMEM, "checkpoint: out of memory");
        }
    }
    cJSON_Delete(o);
    return IB_OK;
}

/* Read the metadata own_counts_json wrote (key `key`, may be absent) into
 * counts[np] (-1 = the global count).  Every name must be a trainable
 * parameter of p and every count a whole number >= 0. */
static ib_status read_own_counts(const ib__st_file *f, const char *key, const ib_params *p, int64_t *counts)
{
    int np = ib_params_count(p);
    for (int i = 0; i < np; i++)
        counts[i] = -1;
    const char *text = ib__st_meta(f, key);
    if (!text)
        return IB_OK;
    cJSON *o = cJSON_Parse(text);
    ib_status s = IB_OK;
    if (!cJSON_IsObject(o))
        s = ib__error(IB_ERR_FORMAT, "%s: metadata \"%s\" is not a JSON object", f->what, key);
    const cJSON *e;
    cJSON_ArrayForEach(e, o)
    {
        if (s != IB_OK)
            break;
        int i = ib_params_find(p, e->string);
        double v = cJSON_IsNumber(e) ? e->valuedouble : -1;
        if (i < 0 || !trainable(p, i))
            s = ib__error(IB_ERR_MISMATCH, "%s: metadata \"%s\" names \"%.100s\", not a trainable parameter of the model",
                          f->what, key, e->string);
        else if (!(v >= 0 && v <= 9007199254740992.0 && v == floor(v)))
            s = ib__error(IB_ERR_FORMAT, "%s: metadata \"%s\": the count of \"%.100s\" is not a whole number >= 0",
                          f->what, key, e->string);
        else
            counts[i] = (int64_t)v;
    }
    cJSON_Delete(o);
    return s;
}

ib_status ib_checkpoint_save(const char *path, ib_params *p, ib_optim *opt, ib_ema *ema, const char *metadata_json)
{
    if (!path || !*path || !p)
        return ib__error(IB_ERR_ARG, "ib_checkpoint_save: %s", !p ? "no parameter store" : "no path");
    if (ema && ib_ema_swapped(ema))
        return ib__error(IB_ERR_STATE, "%s: the EMA is swapped in (the store holds the averages); swap it back "
                         "before saving a training checkpoint, or pass no EMA to save the averaged weights", path);
    if (metadata_json) {
        ib_status s = check_json_object(path, metadata_json);
        if (s != IB_OK)
            return s;
    }
    int np = ib_params_count(p), nt = 0;
    for (int i = 0; i < np; i++)
        nt += trainable(p, i);
    int ns = opt ? ib_optim_state_count(opt) : 0;
    int cap = np + ns * nt + (ema ? np : 0);
    ib__st_out *out = calloc((size_t)cap + 1, sizeof *out);
    char **owned = calloc((size_t)cap + 1, sizeof *owned); /* composite names */
    char *cfg = NULL, *opt_counts = NULL, *ema_counts = NULL, *crcs = NULL;
    ib_status s = IB_OK;
    int n = 0;
    if (!out || !owned) {
        s = ib__error(IB_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    for (int i = 0; i < np; i++)
        out[n++] = (ib__st_out){ib_params_name(p, i), ib_params_ndim(p, i), ib_params_shape(p, i), ib_params_value(p, i)};
    for (int k = 0; k < ns && s == IB_OK; k++) {
        const char *sname = ib_optim_state_name(opt, k);
        float *state = ib_optim_state(opt, k);
        if (!sname || !state) {
            s = ib__error(IB_ERR_STATE, "%s: optimizer state buffer %d is not available", path, k);
            break;
        }
        for (int i = 0; i < np && s == IB_OK; i++) {
            if (!trainable(p, i))
                continue;
            char *prefix = join3("optim.", sname, ".");
            owned[n] = prefix ? join3(prefix, ib_params_name(p, i), "") : NULL;
            free(prefix);
            if (!owned[n])
                s = ib__error(IB_ERR_NOMEM, "%s: out of memory", path);
            else
                out[n] = (ib__st_out){owned[n], ib_params_ndim(p, i), ib_params_shape(p, i), state + ib_params_offset(p, i)};
            n++;
        }
    }
    if (ema && s == IB_OK) {
        float *shadow = ib_ema_shadow(ema);
        if (!shadow)
            s = ib__error(IB_ERR_STATE, "%s: the EMA has no shadow buffer", path);
        for (int i = 0; i < np && s == IB_OK; i++) {
            if (!trainable(p, i) && !ib_ema_has_buffer(ema, i))
                continue;
            owned[n] = join3("ema.", ib_params_name(p, i), "");
            if (!owned[n])
                s = ib__error(IB_ERR_NOMEM, "%s: out of memory", path);
            else
                out[n] = (ib__st_out){owned[n], ib_params_ndim(p, i), ib_params_shape(p, i), shadow + ib_params_offset(p, i)};
            n++;
        }
    }
    if (s != IB_OK)
        goto done;

    const char *keys[16], *vals[16];
    char steps[32], lr[32], updates[32], decay[32];
    int nm = 0;
    keys[nm] = "format", vals[nm++] = "pt";
    keys[nm] = "ibnet_version", vals[nm++] = IBNET_VERSION_STRING;
    if (metadata_json)
        keys[nm] = "ibnet", vals[nm++] = metadata_json;
    if (opt) {
        const ib_optim_config *c = ib_optim_get_config(opt);
        cfg = c ? optim_config_json(c) : NULL;
        if (!cfg) {
            s = ib__error(c ? IB_ERR_NOMEM : IB_ERR_STATE, "%s: cannot describe the optimizer", path);
            goto done;
        }
        snprintf(steps, sizeof steps, "%" PRId64, ib_optim_steps(opt));
        fmt_float(lr, sizeof lr, ib_optim_lr(opt));
        keys[nm] = "optim.kind", vals[nm++] = optim_kind_name(c->kind);
        keys[nm] = "optim.config", vals[nm++] = cfg;
        keys[nm] = "optim.steps", vals[nm++] = steps;
        keys[nm] = "optim.lr", vals[nm++] = lr;
        s = own_counts_json(p, opt, NULL, ib_optim_steps(opt), &opt_counts);
        if (s != IB_OK)
            goto done;
        if (opt_counts)
            keys[nm] = "optim.param_steps", vals[nm++] = opt_counts;
    }
    if (ema) {
        snprintf(updates, sizeof updates, "%" PRId64, ib_ema_updates(ema));
        fmt_float(decay, sizeof decay, ib_ema_decay(ema));
        keys[nm] = "ema.updates", vals[nm++] = updates;
        keys[nm] = "ema.decay", vals[nm++] = decay;
        keys[nm] = "ema.zero_debias", vals[nm++] = ib_ema_zero_debias(ema) ? "true" : "false";
        s = own_counts_json(p, NULL, ema, ib_ema_updates(ema), &ema_counts);
        if (s != IB_OK)
            goto done;
        if (ema_counts)
            keys[nm] = "ema.param_updates", vals[nm++] = ema_counts;
    }
    crcs = crc_json(n, out);
    if (!crcs) {
        s = ib__error(IB_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    keys[nm] = CRC_KEY, vals[nm++] = crcs;
    s = ib__st_write(path, n, out, nm, keys, vals);
done:
    free(crcs);
    for (int k = 0; owned && k < cap; k++)
        free(owned[k]);
    free(owned);
    free(out);
    free(cfg);
    free(opt_counts);
    free(ema_counts);
    return s;
}

/* ---- loading ---- */

typedef struct job {
    int idx;    /* tensor in the file */
    float *dst; /* where it goes once everything is read */
    int64_t numel;
} job;

/* Read every job's tensor into one staging buffer (*stage, malloc'd, the
 * caller frees it) and, when verify is set and the file has checksums,
 * check each against its CRC-32: a load changes nothing until all of it
 * has been read and found intact. */
static ib_status stage_jobs(ib__st_file *f, const char *path, const job *jobs, int n_jobs, bool verify,
                            float **stage)
{
    int64_t total = 0;
    for (int j = 0; j < n_jobs; j++)
        total += jobs[j].numel;
    *stage = malloc((size_t)total * sizeof(float) + 1);
    if (!*stage)
        return ib__error(IB_ERR_NOMEM, "%s: out of memory staging %lld floats", path, (long long)total);
    cJSON *crc_map = NULL;
    if (verify && ib__st_meta(f, CRC_KEY)) {
        crc_map = cJSON_Parse(ib__st_meta(f, CRC_KEY));
        if (!cJSON_IsObject(crc_map)) {
            cJSON_Delete(crc_map);
            return ib__error(IB_ERR_FORMAT, "%s: damaged checkpoint: metadata \"" CRC_KEY "\" is not a JSON object",
                             path);
        }
    }
    ib_status s = IB_OK;
    int64_t at = 0;
    for (int j = 0; j < n_jobs && s == IB_OK; j++) {
        s = ib__st_read_f32(f, jobs[j].idx, *stage + at);
        uint32_t want = 0;
        const char *name = f->tensors[jobs[j].idx].name;
        int has = s == IB_OK ? stored_crc(f, crc_map, name, &want) : 0;
        if (has < 0) {
            s = IB_ERR_FORMAT;
        } else if (has > 0) {
            uint32_t got = crc_f32(*stage + at, jobs[j].numel);
            if (got != want)
                s = ib__error(IB_ERR_FORMAT,
                              "%s: damaged checkpoint: tensor \"%.100s\" does not match its checksum (crc32 %08" PRIx32
                              ", stored %08" PRIx32 "); the file was changed after it was written",
                              path, name, got, want);
        }
        at += jobs[j].numel;
    }
    cJSON_Delete(crc_map);
    return s;
}

static const char *shape_str(int ndim, const int64_t *shape, char *buf, size_t len)
{
    size_t at = (size_t)snprintf(buf, len, "(");
    for (int d = 0; d < ndim && at < len; d++)
        at += (size_t)snprintf(buf + at, len - at, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (at < len)
        snprintf(buf + at, len - at, ")");
    return buf;
}

/* Match one tensor the model needs: present, F32, same shape. */
static ib_status plan(ib__st_file *f, const char *name, int ndim, const int64_t *shape, float *dst, job *jobs, int *n_jobs,
                      bool *used, const char *what)
{
    int idx = ib__st_find(f, name);
    if (idx < 0)
        return ib__error(IB_ERR_MISMATCH, "%s: checkpoint has no tensor \"%s\" (%s the model needs)", f->what, name, what);
    const ib__st_tensor *t = &f->tensors[idx];
    if (t->dtype != IB__ST_F32)
        return ib__error(IB_ERR_MISMATCH, "%s: tensor \"%s\" has dtype %s; ibnet loads only F32", f->what, name,
                         ib__st_dtype_name(t->dtype));
    bool same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++)
        same = t->shape[d] == shape[d];
    if (!same) {
        char a[128], b[128];
        return ib__error(IB_ERR_MISMATCH, "%s: tensor \"%s\" has shape %s in the checkpoint but %s in the model", f->what,
                         name, shape_str(t->ndim, t->shape, a, sizeof a), shape_str(ndim, shape, b, sizeof b));
    }
    used[idx] = true;
    jobs[(*n_jobs)++] = (job){idx, dst, ib__numel(ndim, shape)};
    return IB_OK;
}

/* True if name is optimizer or EMA state of a trainable parameter of p, or
 * the EMA's value of a buffer (state the caller did not ask to restore, so
 * not an error). */
static bool state_of_model(const ib_params *p, const char *name, bool skip_optim, bool skip_ema)
{
    const char *param = NULL;
    if (skip_optim && strncmp(name, "optim.", 6) == 0) {
        const char *dot = strchr(name + 6, '.');
        param = dot && dot > name + 6 ? dot + 1 : NULL;
    } else if (skip_ema && strncmp(name, "ema.", 4) == 0) {
        param = name + 4;
    }
    int i = param ? ib_params_find(p, param) : -1;
    return i >= 0 && (trainable(p, i) || (skip_ema && param == name + 4));
}

static bool parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < 0)
        return false;
    *out = v;
    return true;
}

static bool parse_float(const char *s, float *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return false;
    *out = (float)v;
    return true;
}

ib_status ib_checkpoint_load(const char *path, ib_params *p, ib_optim *opt, ib_ema *ema, char **metadata_json)
{
    return ib_checkpoint_load_opts(path, p, opt, ema, metadata_json, NULL);
}

ib_status ib_checkpoint_load_opts(const char *path, ib_params *p, ib_optim *opt, ib_ema *ema, char **metadata_json,
                                  const ib_checkpoint_load_options *o)
{
    bool verify = !(o && o->skip_checksums);
    if (metadata_json)
        *metadata_json = NULL;
    if (!path || !p)
        return ib__error(IB_ERR_ARG, "ib_checkpoint_load: %s", !p ? "no parameter store" : "no path");
    if (ema && ib_ema_swapped(ema))
        return ib__error(IB_ERR_STATE, "%s: the EMA is swapped in; swap it back before loading into it", path);
    ib__st_file f;
    ib_status s = ib__st_open(path, &f);
    if (s != IB_OK)
        return s;
    int np = ib_params_count(p), nt = 0;
    for (int i = 0; i < np; i++)
        nt += trainable(p, i);
    int ns = opt ? ib_optim_state_count(opt) : 0;
    int cap = np + ns * nt + (ema ? np : 0);
    job *jobs = calloc((size_t)cap + 1, sizeof *jobs);
    bool *used = calloc((size_t)f.n_tensors + 1, sizeof *used);
    int64_t *own_steps = malloc(((size_t)np + 1) * sizeof *own_steps);   /* per parameter, -1 = global */
    int64_t *own_updates = malloc(((size_t)np + 1) * sizeof *own_updates);
    bool *ema_buf = calloc((size_t)np + 1, sizeof *ema_buf); /* buffers whose EMA value the file holds */
    float *stage = NULL;
    char *meta_copy = NULL;
    int n_jobs = 0;
    int64_t opt_steps = 0, ema_updates = 0;
    float opt_lr = 0;
    bool have_lr = false;
    if (!jobs || !used || !own_steps || !own_updates || !ema_buf) {
        s = ib__error(IB_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    for (int i = 0; i < np && s == IB_OK; i++)
        s = plan(&f, ib_params_name(p, i), ib_params_ndim(p, i), ib_params_shape(p, i), ib_params_value(p, i), jobs,
                 &n_jobs, used, trainable(p, i) ? "a parameter" : "a buffer");
    for (int k = 0; k < ns && s == IB_OK; k++) {
        const char *sname = ib_optim_state_name(opt, k);
        float *state = ib_optim_state(opt, k);
        if (!sname || !state) {
            s = ib__error(IB_ERR_STATE, "%s: optimizer state buffer %d is not available", path, k);
            break;
        }
        char *prefix = join3("optim.", sname, ".");
        if (!prefix)
            s = ib__error(IB_ERR_NOMEM, "%s: out of memory", path);
        for (int i = 0; i < np && s == IB_OK; i++) {
            if (!trainable(p, i))
                continue;
            char *name = join3(prefix, ib_params_name(p, i), "");
            if (!name) {
                s = ib__error(IB_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            s = plan(&f, name, ib_params_ndim(p, i), ib_params_shape(p, i), state + ib_params_offset(p, i), jobs,
                     &n_jobs, used, "optimizer state");
            free(name);
        }
        free(prefix);
    }
    if (opt && s == IB_OK) {
        const char *kind = ib__st_meta(&f, "optim.kind");
        const ib_optim_config *c = ib_optim_get_config(opt);
        if (kind && c && strcmp(kind, optim_kind_name(c->kind)) != 0)
            s = ib__error(IB_ERR_MISMATCH, "%s: checkpoint holds %s optimizer state, the optimizer given is %s", path,
                          kind, optim_kind_name(c->kind));
        else if (!parse_i64(ib__st_meta(&f, "optim.steps"), &opt_steps))
            s = ib__error(IB_ERR_MISMATCH, "%s: checkpoint has no valid optimizer step count (metadata \"optim.steps\")",
                          path);
        else if (ib__st_meta(&f, "optim.lr")) {
            have_lr = parse_float(ib__st_meta(&f, "optim.lr"), &opt_lr);
            if (!have_lr)
                s = ib__error(IB_ERR_FORMAT, "%s: metadata \"optim.lr\" is not a number", path);
        }
        if (s == IB_OK)
            s = read_own_counts(&f, "optim.param_steps", p, own_steps);
    }
    if (ema && s == IB_OK) {
        float *shadow = ib_ema_shadow(ema);
        if (!shadow)
            s = ib__error(IB_ERR_STATE, "%s: the EMA has no shadow buffer", path);
        for (int i = 0; i < np && s == IB_OK; i++) {
            char *name = join3("ema.", ib_params_name(p, i), "");
            if (!name) {
                s = ib__error(IB_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            /* a buffer's value is there only when the EMA owned one */
            if (!trainable(p, i) && !(ema_buf[i] = ib__st_find(&f, name) >= 0)) {
                free(name);
                continue;
            }
            s = plan(&f, name, ib_params_ndim(p, i), ib_params_shape(p, i), shadow + ib_params_offset(p, i), jobs,
                     &n_jobs, used, "EMA state");
            free(name);
        }
        if (s == IB_OK && !parse_i64(ib__st_meta(&f, "ema.updates"), &ema_updates))
            s = ib__error(IB_ERR_MISMATCH, "%s: checkpoint has no valid EMA update count (metadata \"ema.updates\")", path);
        /* The shadow only means the same weights under the same decay (the
         * debiasing divides by 1 - decay^t). */
        float saved_decay = 0;
        if (s == IB_OK && ib__st_meta(&f, "ema.decay") &&
            (!parse_float(ib__st_meta(&f, "ema.decay"), &saved_decay) || saved_decay != ib_ema_decay(ema)))
            s = ib__error(IB_ERR_MISMATCH, "%s: the checkpoint's EMA has decay %s, the EMA given has %g", path,
                          ib__st_meta(&f, "ema.decay"), (double)ib_ema_decay(ema));
        const char *debias = ib__st_meta(&f, "ema.zero_debias");
        if (s == IB_OK && debias && strcmp(debias, ib_ema_zero_debias(ema) ? "true" : "false") != 0)
            s = ib__error(IB_ERR_MISMATCH, "%s: the checkpoint's EMA has zero_debias %s, the EMA given %s", path, debias,
                          ib_ema_zero_debias(ema) ? "debiases" : "does not debias");
        if (s == IB_OK)
            s = read_own_counts(&f, "ema.param_updates", p, own_updates);
    }
    for (int k = 0; k < f.n_tensors && s == IB_OK; k++)
        if (!used[k] && !state_of_model(p, f.tensors[k].name, !opt, !ema))
            s = ib__error(IB_ERR_MISMATCH, "%s: checkpoint has tensor \"%.100s\" that the model does not", path,
                          f.tensors[k].name);
    if (s != IB_OK)
        goto done;

    /* Read and verify everything before changing anything. */
    s = stage_jobs(&f, path, jobs, n_jobs, verify, &stage);
    const char *meta = ib__st_meta(&f, "ibnet");
    if (s == IB_OK && meta && metadata_json) {
        meta_copy = strdup(meta);
        if (!meta_copy)
            s = ib__error(IB_ERR_NOMEM, "%s: out of memory", path);
    }
    if (s != IB_OK)
        goto done;

    int64_t at = 0;
    for (int j = 0; j < n_jobs; j++) {
        if (jobs[j].numel)
            memcpy(jobs[j].dst, stage + at, (size_t)jobs[j].numel * sizeof(float));
        at += jobs[j].numel;
    }
    if (opt) {
        ib_optim_set_steps(opt, opt_steps);
        if (have_lr)
            ib_optim_set_lr(opt, opt_lr);
        for (int i = 0; i < np; i++)
            if (own_steps[i] >= 0)
                ib_optim_set_param_steps(opt, i, own_steps[i]);
    }
    if (ema) {
        ib_ema_set_updates(ema, ema_updates);
        for (int i = 0; i < np; i++) {
            if (own_updates[i] >= 0)
                ib_ema_set_param_updates(ema, i, own_updates[i]);
            if (!trainable(p, i))
                ib_ema_set_has_buffer(ema, i, ema_buf[i]);
        }
    }
    if (metadata_json) {
        *metadata_json = meta_copy;
        meta_copy = NULL;
    }
done:
    free(meta_copy);
    free(stage);
    free(used);
    free(jobs);
    free(own_steps);
    free(own_updates);
    free(ema_buf);
    ib__st_close(&f);
    return s;
}

ib_status ib_checkpoint_read_metadata(const char *path, char **metadata_json)
{
    if (!path || !metadata_json)
        return ib__error(IB_ERR_ARG, "ib_checkpoint_read_metadata: %s", !path ? "no path" : "no output pointer");
    *metadata_json = NULL;
    ib__st_file f;
    ib_status s = ib__st_open(path, &f);
    if (s != IB_OK)
        return s;
    const char *meta = ib__st_meta(&f, "ibnet");
    if (meta) {
        *metadata_json = strdup(meta);
        if (!*metadata_json)
            s = ib__error(IB_ERR_NOMEM, "%s: out of memory", path);
    }
    ib__st_close(&f);
    return s;
}

/* ---- partial loading (--init-from) ---- */

/* The file's EMA debiasing for parameter `name`: *div = the divisor of the
 * stored shadow (1 without zero_debias), 0 when the parameter has no
 * average yet (take the raw value).  Counts of parameters of other models
 * may be in "ema.param_updates"; only `name`'s is read. */
static ib_status ema_divisor(const ib__st_file *f, const cJSON *own, const char *name, float *div)
{
    *div = 1.0f;
    const char *debias = ib__st_meta(f, "ema.zero_debias");
    if (!debias || strcmp(debias, "true") != 0)
        return IB_OK;
    float decay = 0;
    int64_t t = 0;
    if (!parse_float(ib__st_meta(f, "ema.decay"), &decay) || !(decay > 0 && decay < 1))
        return ib__error(IB_ERR_FORMAT, "%s: metadata \"ema.decay\" is missing or not a number in (0, 1)", f->what);
    if (!parse_i64(ib__st_meta(f, "ema.updates"), &t))
        return ib__error(IB_ERR_FORMAT, "%s: metadata \"ema.updates\" is missing or not a count", f->what);
    const cJSON *c = own ? cJSON_GetObjectItemCaseSensitive(own, name) : NULL;
    if (c) {
        double v = cJSON_IsNumber(c) ? c->valuedouble : -1;
        if (!(v >= 0 && v <= 9007199254740992.0 && v == floor(v)))
            return ib__error(IB_ERR_FORMAT, "%s: metadata \"ema.param_updates\": the count of \"%.100s\" is not a "
                             "whole number >= 0", f->what, name);
        t = (int64_t)v;
    }
    /* As ib_ema_swap: the factor formed in double, rounded once to float. */
    *div = t == 0 ? 0.0f : (float)(1.0 - pow((double)decay, (double)t));
    return IB_OK;
}

/* A tensor of the file that a parameter of shape (ndim, shape) may take:
 * IB_OK when it is F32 of that shape, else IB_ERR_MISMATCH naming it. */
static ib_status check_takes(const ib__st_file *f, int idx, int ndim, const int64_t *shape)
{
    const ib__st_tensor *t = &f->tensors[idx];
    if (t->dtype != IB__ST_F32)
        return ib__error(IB_ERR_MISMATCH, "%s: tensor \"%.100s\" has dtype %s; ibnet loads only F32", f->what, t->name,
                         ib__st_dtype_name(t->dtype));
    bool same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++)
        same = t->shape[d] == shape[d];
    if (!same) {
        char a[128], b[128];
        return ib__error(IB_ERR_MISMATCH, "%s: tensor \"%.100s\" has shape %s in the checkpoint but %s in the model",
                         f->what, t->name, shape_str(t->ndim, t->shape, a, sizeof a), shape_str(ndim, shape, b, sizeof b));
    }
    return IB_OK;
}

void ib_checkpoint_partial_free(ib_checkpoint_partial *r)
{
    if (!r)
        return;
    free(r->source);
    memset(r, 0, sizeof *r);
}

ib_status ib_checkpoint_load_partial(const char *path, ib_params *p, const ib_checkpoint_partial_options *o,
                                     ib_checkpoint_partial *result)
{
    bool verify = !(o && o->skip_checksums), use_ema = o && o->use_ema;
    if (result)
        memset(result, 0, sizeof *result);
    if (!path || !p)
        return ib__error(IB_ERR_ARG, "ib_checkpoint_load_partial: %s", !p ? "no parameter store" : "no path");
    ib__st_file f;
    ib_status s = ib__st_open(path, &f);
    if (s != IB_OK)
        return s;
    int np = ib_params_count(p);
    job *jobs = calloc((size_t)np + 1, sizeof *jobs);
    float *divs = calloc((size_t)np + 1, sizeof *divs); /* per job: EMA divisor, 1 for raw values */
    ib_checkpoint_source *src = calloc((size_t)np + 1, sizeof *src);
    bool *used = calloc((size_t)f.n_tensors + 1, sizeof *used);
    cJSON *own = NULL;
    float *stage = NULL;
    int n_jobs = 0, n_ema = 0;
    if (!jobs || !divs || !src || !used) {
        s = ib__error(IB_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if (use_ema && ib__st_meta(&f, "ema.param_updates")) {
        own = cJSON_Parse(ib__st_meta(&f, "ema.param_updates"));
        if (!cJSON_IsObject(own)) {
            s = ib__error(IB_ERR_FORMAT, "%s: metadata \"ema.param_updates\" is not a JSON object", path);
            goto done;
        }
    }
    for (int i = 0; i < np && s == IB_OK; i++) {
        const char *name = ib_params_name(p, i);
        int ndim = ib_params_ndim(p, i), idx = ib__st_find(&f, name);
        const int64_t *shape = ib_params_shape(p, i);
        if (idx < 0)
            continue; /* kept */
        s = check_takes(&f, idx, ndim, shape);
        if (s != IB_OK)
            break;
        used[idx] = true;
        int take = idx;
        float div = 1.0f;
        src[i] = IB_CKPT_LOADED;
        if (use_ema) { /* a buffer: the EMA's own value, when the file has one (never debiased) */
            char *ename = join3("ema.", name, "");
            if (!ename) {
                s = ib__error(IB_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            int e = ib__st_find(&f, ename);
            free(ename);
            if (e >= 0) {
                s = check_takes(&f, e, ndim, shape);
                if (s == IB_OK && trainable(p, i))
                    s = ema_divisor(&f, own, name, &div);
                if (s != IB_OK)
                    break;
                if (div != 0.0f) {
                    take = e;
                    src[i] = IB_CKPT_LOADED_EMA;
                    n_ema++;
                } else {
                    div = 1.0f; /* no average yet: the raw value, as ib_ema_swap */
                }
            }
        }
        divs[n_jobs] = div;
        jobs[n_jobs++] = (job){take, ib_params_value(p, i), ib_params_numel(p, i)};
    }
    if (s == IB_OK && n_jobs == 0)
        s = ib__error(IB_ERR_MISMATCH, "%s: no tensor of the checkpoint has the name of a parameter of the model", path);
    if (s != IB_OK)
        goto done;

    s = stage_jobs(&f, path, jobs, n_jobs, verify, &stage);
    if (s != IB_OK)
        goto done;

    int64_t at = 0;
    for (int j = 0; j < n_jobs; j++) {
        float *dst = jobs[j].dst;
        const float *x = stage + at;
        if (divs[j] != 1.0f) {
            for (int64_t k = 0; k < jobs[j].numel; k++)
                dst[k] = x[k] / divs[j];
        } else if (jobs[j].numel) {
            memcpy(dst, x, (size_t)jobs[j].numel * sizeof(float));
        }
        at += jobs[j].numel;
    }
    if (result) {
        result->n_params = np;
        result->source = src;
        src = NULL;
        result->n_loaded = n_jobs;
        result->n_loaded_ema = n_ema;
        result->n_kept = np - n_jobs;
        for (int k = 0; k < f.n_tensors; k++) {
            const char *name = f.tensors[k].name;
            if (!used[k] && strncmp(name, "optim.", 6) != 0 && strncmp(name, "ema.", 4) != 0)
                result->n_unused++;
        }
    }
done:
    cJSON_Delete(own);
    free(stage);
    free(used);
    free(src);
    free(divs);
    free(jobs);
    ib__st_close(&f);
    return s;
}
