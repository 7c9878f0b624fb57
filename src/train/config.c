/*
 * config.c — the training configuration: defaults (the Deep VIB recipe),
 * validation, and a JSON form (config.json of every run, and the source of
 * truth when a run is resumed).  The JSON mapping is one table of fields,
 * so adding a setting is one line and unknown keys are always rejected.
 */
#include "train_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>

ib_train_config ib_train_config_default(void)
{
    ib_train_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.model, sizeof c.model, "vib-mlp");
    snprintf(c.dataset, sizeof c.dataset, "mnist");
    snprintf(c.out_dir, sizeof c.out_dir, "runs/latest");
    c.epochs = 10; /* the paper trains 200: --epochs 200 */
    c.batch_size = 100;
    c.eval_batch_size = 500;
    c.seed = 1;
    c.optim = ib_optim_defaults(IB_OPTIM_ADAM);
    c.optim.lr = 1e-4f;
    c.optim.beta1 = 0.5f;
    c.optim.momentum = 0.9f; /* used only if the optimizer becomes SGD, as the CLI's default */
    c.schedule = (ib_schedule){.kind = IB_SCHED_STEP, .lr = 1e-4f, .gamma = 0.97f, .every = 2};
    c.ema_decay = 0.999f;
    c.ema_zero_debias = true;
    c.objective = ib_objective_default();
    c.objective.beta = 1e-3f;
    snprintf(c.method, sizeof c.method, "vib");
    c.eval_samples = 12;
    c.norm = IB_NORM_SYMMETRIC;
    c.noise_kind = IB_NOISE_SYMMETRIC;
    c.eval_every = 1;
    return c;
}

/* ---- recipes: the training set-ups of the papers, by name ---- */

static void recipe_deep_vib(ib_train_config *c)
{
    c->epochs = 200; /* Alemi et al. 2017: the defaults run 10 of them */
}

/* The CIFAR ResNet recipe of results.md: SGD with Nesterov momentum, cosine
 * decay after a 1-epoch warm-up, weight decay, crop + flip, per-channel
 * standardisation, He-normal init, no EMA. */
static void recipe_cifar_resnet(ib_train_config *c)
{
    snprintf(c->model, sizeof c->model, "resnet20");
    snprintf(c->dataset, sizeof c->dataset, "cifar10");
    c->epochs = 50;
    c->batch_size = 128;
    float beta1 = c->optim.beta1; /* unused by SGD, kept as the CLI keeps it */
    c->optim = ib_optim_defaults(IB_OPTIM_SGD);
    c->optim.beta1 = beta1;
    c->optim.momentum = 0.9f;
    c->optim.nesterov = true;
    c->optim.weight_decay = 5e-4f;
    c->schedule.kind = IB_SCHED_COSINE;
    c->schedule.lr = 0.1f;
    c->schedule.warmup = 1;
    c->schedule.total = (double)c->epochs;
    c->optim.lr = c->schedule.lr;
    c->augment = true;
    c->norm = IB_NORM_STANDARDIZE;
    c->init = 1 + IB_INIT_STYLE_KAIMING;
    c->ema_decay = 0;
}

/* The cellVIB MNIST comparison of results.md: LeNet with a cell after each
 * conv block, beta 1e-5 growing linearly with depth, Adam at 1e-3, inputs in
 * [0, 1], no EMA (add --label-noise 0.6 for the noisy-label setting). */
static void recipe_cellvib_mnist(ib_train_config *c)
{
    snprintf(c->model, sizeof c->model, "lenet-vibcells");
    c->epochs = 8;
    c->batch_size = 64;
    c->optim.beta1 = 0.9f; /* the defaults' Adam, with PyTorch's beta1 */
    c->schedule.kind = IB_SCHED_CONSTANT;
    c->schedule.lr = 1e-3f;
    c->optim.lr = c->schedule.lr;
    c->objective.beta = 1e-5f;
    c->objective.schedule = IB_BETA_LINEAR;
    c->norm = IB_NORM_UNIT;
    c->ema_decay = 0;
}

static const struct {
    const char *name;
    void (*apply)(ib_train_config *c);
} recipes[] = {
    {"deep-vib", recipe_deep_vib},
    {"cifar-resnet", recipe_cifar_resnet},
    {"cellvib-mnist", recipe_cellvib_mnist},
};

const char *ib_train_recipe_name(int i)
{
    return i >= 0 && i < (int)(sizeof recipes / sizeof recipes[0]) ? recipes[i].name : NULL;
}

ib_status ib_train_config_recipe(const char *name, ib_train_config *c)
{
    if (!c)
        return ib__error(IB_ERR_ARG, "ib_train_config_recipe: config is NULL");
    for (size_t i = 0; name && i < sizeof recipes / sizeof recipes[0]; i++)
        if (!strcmp(name, recipes[i].name)) {
            *c = ib_train_config_default();
            recipes[i].apply(c);
            return IB_OK;
        }
    return ib__error(IB_ERR_ARG, "unknown recipe '%s' (known: deep-vib, cifar-resnet, cellvib-mnist)",
                     name ? name : "(null)");
}

typedef enum { F_STR, F_I64, F_U64, F_F32, F_F64, F_BOOL, F_INT, F_ENUM } field_type;

typedef struct field {
    const char *key;
    field_type type;
    size_t offset;
    size_t size;              /* strings: capacity */
    const char *const *names; /* enums: names by value, NULL-terminated */
} field;

static const char *const optim_names[] = {"sgd", "adam", "adamw", NULL};
static const char *const sched_names[] = {"constant", "step", "exponential", "multistep", "cosine", NULL};
static const char *const beta_sched_names[] = {"equal", "linear", "geometric", NULL};
static const char *const norm_names[] = {"unit", "symmetric", "standardize", NULL};
static const char *const init_names[] = {"model", "pytorch", "glorot", "kaiming", NULL};
static const char *const noise_names[] = {"symmetric", "pair", "pair-cifar10", "pair-next", NULL};

#define C(f) offsetof(ib_train_config, f)
#define STR(k, f) {k, F_STR, C(f), sizeof(((ib_train_config *)0)->f), NULL}
static const field fields[] = {
    STR("model", model),
    STR("vib_cells_after", vib_cells_after),
    {"init", F_ENUM, C(init), 0, init_names},
    STR("dataset", dataset),
    STR("data_dir", data_dir),
    STR("out_dir", out_dir),
    {"epochs", F_I64, C(epochs), 0, NULL},
    {"batch_size", F_I64, C(batch_size), 0, NULL},
    {"eval_batch_size", F_I64, C(eval_batch_size), 0, NULL},
    {"seed", F_U64, C(seed), 0, NULL},
    {"optimizer", F_ENUM, C(optim.kind), 0, optim_names},
    {"momentum", F_F32, C(optim.momentum), 0, NULL},
    {"dampening", F_F32, C(optim.dampening), 0, NULL},
    {"nesterov", F_BOOL, C(optim.nesterov), 0, NULL},
    {"weight_decay", F_F32, C(optim.weight_decay), 0, NULL},
    {"adam_beta1", F_F32, C(optim.beta1), 0, NULL},
    {"adam_beta2", F_F32, C(optim.beta2), 0, NULL},
    {"adam_eps", F_F32, C(optim.eps), 0, NULL},
    {"clip_grad_norm", F_F32, C(optim.clip_grad_norm), 0, NULL},
    {"schedule", F_ENUM, C(schedule.kind), 0, sched_names},
    {"lr", F_F32, C(schedule.lr), 0, NULL},
    {"lr_gamma", F_F32, C(schedule.gamma), 0, NULL},
    {"lr_min", F_F32, C(schedule.min_lr), 0, NULL},
    {"lr_every", F_F64, C(schedule.every), 0, NULL},
    {"lr_total", F_F64, C(schedule.total), 0, NULL},
    {"lr_warmup", F_F64, C(schedule.warmup), 0, NULL},
    {"ema_decay", F_F32, C(ema_decay), 0, NULL},
    {"ema_zero_debias", F_BOOL, C(ema_zero_debias), 0, NULL},
    STR("objective", method),
    {"beta", F_F32, C(objective.beta), 0, NULL},
    {"beta_schedule", F_ENUM, C(objective.schedule), 0, beta_sched_names},
    {"beta_ratio", F_F32, C(objective.ratio), 0, NULL},
    {"kl_mean_per_element", F_BOOL, C(objective.kl_mean_per_element), 0, NULL},
    {"label_smoothing", F_F32, C(objective.label_smoothing), 0, NULL},
    {"entropy_weight", F_F32, C(objective.entropy_weight), 0, NULL},
    {"entropy_cap", F_F32, C(objective.entropy_cap), 0, NULL},
    {"eval_samples", F_INT, C(eval_samples), 0, NULL},
    {"val_size", F_I64, C(val_size), 0, NULL},
    {"input_norm", F_ENUM, C(norm), 0, norm_names},
    {"augment", F_BOOL, C(augment), 0, NULL},
    {"label_noise", F_BOOL, C(label_noise), 0, NULL},
    {"noise_kind", F_ENUM, C(noise_kind), 0, noise_names},
    {"noise_rate", F_F32, C(noise_rate), 0, NULL},
    {"skip_hash", F_BOOL, C(skip_hash), 0, NULL},
    {"train_limit", F_I64, C(train_limit), 0, NULL},
    {"test_limit", F_I64, C(test_limit), 0, NULL},
    {"max_steps", F_I64, C(max_steps), 0, NULL},
    {"eval_every", F_I64, C(eval_every), 0, NULL},
};
#undef STR
#undef C
#define N_FIELDS ((int)(sizeof fields / sizeof fields[0]))

static int enum_value(const field *f, const ib_train_config *c)
{
    return *(const int *)(const void *)((const char *)c + f->offset);
}

int ib_train_config_enum(const char *key, const char *name)
{
    for (int i = 0; key && name && i < N_FIELDS; i++)
        if (fields[i].type == F_ENUM && strcmp(fields[i].key, key) == 0)
            for (int k = 0; fields[i].names[k]; k++)
                if (strcmp(fields[i].names[k], name) == 0)
                    return k;
    return -1;
}

char *ib_train_config_to_json(const ib_train_config *c)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    for (int i = 0; i < N_FIELDS; i++) {
        const field *f = &fields[i];
        const char *at = (const char *)c + f->offset;
        switch (f->type) {
        case F_STR: cJSON_AddStringToObject(o, f->key, at); break;
        case F_I64: cJSON_AddNumberToObject(o, f->key, (double)*(const int64_t *)(const void *)at); break;
        case F_U64: {
            /* seeds may exceed 2^53: keep them exact as strings of digits */
            char buf[32];
            snprintf(buf, sizeof buf, "%llu", (unsigned long long)*(const uint64_t *)(const void *)at);
            cJSON_AddStringToObject(o, f->key, buf);
            break;
        }
        case F_F32: cJSON_AddNumberToObject(o, f->key, (double)*(const float *)(const void *)at); break;
        case F_F64: cJSON_AddNumberToObject(o, f->key, *(const double *)(const void *)at); break;
        case F_BOOL: cJSON_AddBoolToObject(o, f->key, *(const bool *)(const void *)at); break;
        case F_INT: cJSON_AddNumberToObject(o, f->key, *(const int *)(const void *)at); break;
        case F_ENUM: {
            int v = enum_value(f, c);
            cJSON_AddStringToObject(o, f->key, f->names[v]);
            break;
        }
        }
    }
    cJSON *betas = cJSON_AddArrayToObject(o, "betas");
    for (int l = 0; l < c->objective.n_betas; l++)
        cJSON_AddItemToArray(betas, cJSON_CreateNumber(c->objective.betas[l]));
    cJSON *ms = cJSON_AddArrayToObject(o, "lr_milestones");
    for (int l = 0; l < c->schedule.n_milestones; l++)
        cJSON_AddItemToArray(ms, cJSON_CreateNumber(c->schedule.milestones[l]));
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    return text;
}

static ib_status set_field(const field *f, const cJSON *v, ib_train_config *c)
{
    char *at = (char *)c + f->offset;
    switch (f->type) {
    case F_STR:
        if (!cJSON_IsString(v) || strlen(v->valuestring) >= f->size)
            return ib__error(IB_ERR_FORMAT, "config: '%s' must be a string shorter than %zu", f->key, f->size);
        snprintf(at, f->size, "%s", v->valuestring);
        return IB_OK;
    case F_U64: {
        char *end = NULL;
        if (cJSON_IsString(v)) {
            /* digits only (strtoull would take a sign or spaces), and no overflow */
            errno = 0;
            unsigned long long x = strtoull(v->valuestring, &end, 10);
            if (v->valuestring[0] >= '0' && v->valuestring[0] <= '9' && !*end && errno == 0) {
                *(uint64_t *)(void *)at = x;
                return IB_OK;
            }
        } else if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble == floor(v->valuedouble) &&
                   v->valuedouble <= 9007199254740992.0) { /* exact as a double; larger ones as strings */
            *(uint64_t *)(void *)at = (uint64_t)v->valuedouble;
            return IB_OK;
        }
        return ib__error(IB_ERR_FORMAT, "config: '%s' must be a non-negative integer (above 2^53: a string of digits, "
                         "at most 18446744073709551615)", f->key);
    }
    case F_I64:
    case F_INT:
        /* within the field's range: converting a larger double would be undefined */
        if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || fabs(v->valuedouble) > 9e15 ||
            (f->type == F_INT && fabs(v->valuedouble) > INT_MAX))
            return ib__error(IB_ERR_FORMAT, "config: '%s' must be an integer of at most %.0f in size", f->key,
                             f->type == F_INT ? (double)INT_MAX : 9e15);
        if (f->type == F_I64)
            *(int64_t *)(void *)at = (int64_t)v->valuedouble;
        else
            *(int *)(void *)at = (int)v->valuedouble;
        return IB_OK;
    case F_F32:
    case F_F64:
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || (f->type == F_F32 && fabs(v->valuedouble) > FLT_MAX))
            return ib__error(IB_ERR_FORMAT, "config: '%s' must be a finite number%s", f->key,
                             f->type == F_F32 ? " (single precision)" : "");
        if (f->type == F_F32)
            *(float *)(void *)at = (float)v->valuedouble;
        else
            *(double *)(void *)at = v->valuedouble;
        return IB_OK;
    case F_BOOL:
        if (!cJSON_IsBool(v))
            return ib__error(IB_ERR_FORMAT, "config: '%s' must be true or false", f->key);
        *(bool *)(void *)at = cJSON_IsTrue(v);
        return IB_OK;
    case F_ENUM:
        if (cJSON_IsString(v))
            for (int k = 0; f->names[k]; k++)
                if (strcmp(f->names[k], v->valuestring) == 0) {
                    *(int *)(void *)at = k;
                    return IB_OK;
                }
        return ib__error(IB_ERR_FORMAT, "config: '%s' must be one of the names %s, ...", f->key, f->names[0]);
    }
    return IB_ERR_FORMAT;
}

static ib_status number_list(const cJSON *v, const char *key, int max, int *n, void (*put)(void *, int, double),
                             void *dst)
{
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > max)
        return ib__error(IB_ERR_FORMAT, "config: '%s' must be an array of at most %d numbers", key, max);
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, v)
    {
        if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble) || fabs(e->valuedouble) > FLT_MAX)
            return ib__error(IB_ERR_FORMAT, "config: '%s' must hold finite single-precision numbers", key);
        put(dst, k++, e->valuedouble);
    }
    *n = k;
    return IB_OK;
}

static void put_beta(void *dst, int k, double v) { ((float *)dst)[k] = (float)v; }
static void put_milestone(void *dst, int k, double v) { ((double *)dst)[k] = v; }

ib_status ib_train_config_from_json(const char *json, ib_train_config *c)
{
    *c = ib_train_config_default();
    cJSON *o = cJSON_Parse(json);
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return ib__error(IB_ERR_FORMAT, "config: not a JSON object");
    }
    ib_status s = IB_OK;
    const cJSON *item;
    cJSON_ArrayForEach(item, o)
    {
        const char *key = item->string;
        if (strcmp(key, "betas") == 0) {
            s = number_list(item, key, IB_MAX_BOTTLENECKS, &c->objective.n_betas, put_beta, c->objective.betas);
        } else if (strcmp(key, "lr_milestones") == 0) {
            s = number_list(item, key, 8, &c->schedule.n_milestones, put_milestone, c->schedule.milestones);
        } else {
            int i = 0;
            while (i < N_FIELDS && strcmp(fields[i].key, key) != 0)
                i++;
            if (i == N_FIELDS)
                s = ib__error(IB_ERR_FORMAT, "config: unknown key '%s'", key);
            else
                s = set_field(&fields[i], item, c);
        }
        if (s != IB_OK)
            break;
    }
    cJSON_Delete(o);
    c->optim.lr = c->schedule.lr;
    return s;
}

ib_status ib_train_config_check(const ib_train_config *c) { return ib__train_config_check(c, NULL); }

ib_status ib__train_config_check(const ib_train_config *c, const ib_method *m)
{
#define REQUIRE(cond, ...)                                                                                             \
    do {                                                                                                               \
        if (!(cond))                                                                                                   \
            return ib__error(IB_ERR_ARG, __VA_ARGS__);                                                                 \
    } while (0)
    REQUIRE(c->model[0], "no model given");
    REQUIRE(c->dataset[0], "no data set given");
    REQUIRE(c->epochs >= 1, "epochs must be at least 1 (got %lld)", (long long)c->epochs);
    REQUIRE(c->batch_size >= 1, "batch size must be at least 1 (got %lld)", (long long)c->batch_size);
    REQUIRE(c->eval_batch_size >= 1, "evaluation batch size must be at least 1");
    REQUIRE(isfinite(c->schedule.lr) && c->schedule.lr > 0, "learning rate must be positive (got %g)",
            (double)c->schedule.lr);
    REQUIRE(isfinite(c->objective.beta) && c->objective.beta >= 0, "beta must be a number >= 0 (got %g)",
            (double)c->objective.beta);
    for (int l = 0; l < c->objective.n_betas; l++)
        REQUIRE(isfinite(c->objective.betas[l]) && c->objective.betas[l] >= 0,
                "beta of bottleneck %d must be >= 0 (got %g)", l + 1, (double)c->objective.betas[l]);
    REQUIRE(c->ema_decay >= 0 && c->ema_decay < 1, "EMA decay must be in [0, 1) (got %g)", (double)c->ema_decay);
    REQUIRE(c->eval_samples >= 1 && c->eval_samples <= 1000, "evaluation samples must be in 1..1000");
    REQUIRE(c->noise_rate >= 0 && c->noise_rate <= 1, "label noise rate must be in [0, 1]");
    REQUIRE(c->objective.label_smoothing >= 0 && c->objective.label_smoothing < 1, "label smoothing must be in [0, 1)");
    REQUIRE(c->val_size >= 0 && c->train_limit >= 0 && c->test_limit >= 0 && c->max_steps >= 0,
            "sizes and limits must not be negative");
    REQUIRE(c->eval_every >= 1, "eval_every must be at least 1");
    REQUIRE(c->out_dir[0], "no output directory given");
#undef REQUIRE
    /* the method and the settings it reads (a caller's own method is not in the registry) */
    if (!m && !(m = ib_method_find(c->method)))
        return IB_ERR_ARG;
    return ib_method_validate(m, &c->objective);
}
