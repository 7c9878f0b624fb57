/*
 * config.c — the training configuration: defaults (the Deep VIB recipe),
 * validation, and a JSON form (config.json of every run, and the source of
 * truth when a run is resumed).  The JSON mapping is one table of fields,
 * so adding a setting is one line and unknown keys are always rejected.
 */
#include "provenance.h"
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
    c.schedule = (ib_schedule){.kind = IB_SCHED_STEP, .gamma = 0.97f, .every = 2};
    c.ema_decay = 0.999f;
    c.ema_zero_debias = true;
    c.ema_bn_batches = 20;
    c.objective = ib_objective_default();
    c.objective.beta = 1e-3f;
    snprintf(c.method, sizeof c.method, "vib");
    c.eval_samples = 12;
    c.norm = IB_NORM_SYMMETRIC;
    c.noise_kind = IB_NOISE_SYMMETRIC;
    c.eval_every = 1;
    c.divergence_check = true;
    c.track_every = 1;
    c.track_limit = 1000;
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
    c->optim.lr = 0.1f;
    c->schedule.warmup = 1;
    c->schedule.total = (double)c->epochs;
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
    c->optim.lr = 1e-3f;
    c->objective.beta = 1e-5f;
    c->objective.schedule = IB_BETA_LINEAR;
    c->norm = IB_NORM_UNIT;
    c->ema_decay = 0;
}

/* VUB on MNIST (docs/vub.md): the deep-vib set-up with the capped entropy
 * bonus at lambda 1.  The cap follows the paper's ImageNet rule, 0.85 of the
 * largest entropy ln C (5.8972 = 0.85 ln 1000): 0.85 ln 10 for 10 classes.
 * The cap sweep in docs/vub.md found that caps of 0.5 to 1.5 bind and raise
 * the training CE without raising accuracy. */
static void recipe_vub_mnist(ib_train_config *c)
{
    recipe_deep_vib(c);
    snprintf(c->method, sizeof c->method, "vub");
    c->objective.entropy_weight = 1.0f;
    c->objective.entropy_cap = 1.9572f; /* 0.85 ln 10 */
}

/* The IMB / PIB reference script's set-up (docs/imb.md): 784-512-512-10
 * Bernoulli, 32 particles per layer in training and at test, gamma =
 * (1, 0.8, 1), beta = (1e-4, 1e-4), batch 16, Adamax at 0.01, gradient
 * norm clipped at 5, 1,000 training images held out for early stopping
 * with patience 20.  One evaluation draw (--eval-samples 1) is the
 * published protocol: the mean over one draw of every layer's particles. */
static void recipe_imb_mnist(ib_train_config *c)
{
    snprintf(c->model, sizeof c->model, "imb-mlp");
    snprintf(c->method, sizeof c->method, "imb");
    c->objective.beta = 0.0f; /* the betas below are every layer's */
    c->objective.n_gammas = 3;
    c->objective.gammas[0] = 1.0f, c->objective.gammas[1] = 0.8f, c->objective.gammas[2] = 1.0f;
    c->objective.n_betas = 2;
    c->objective.betas[0] = c->objective.betas[1] = 1e-4f;
    c->epochs = 200;
    c->batch_size = 16;
    c->eval_batch_size = 50; /* 51,200 paths per evaluation batch */
    c->optim.kind = IB_OPTIM_ADAMAX;
    c->optim.weight_decay = 0;
    c->optim.lr = 0.01f;
    c->optim.beta1 = 0.9f;
    c->optim.clip_grad_norm = 5.0f;
    c->schedule.kind = IB_SCHED_CONSTANT;
    c->val_size = 1000;
    c->patience = 20;
    c->eval_samples = 1;
    c->norm = IB_NORM_UNIT;
    c->ema_decay = 0;
}

/* VSD on CIFAR-10 (docs/vsd.md): the CIFAR ResNet recipe on resnet20 with
 * a vsdhead, the reference code's label smoothing 0.1 and VSD weight 2, and
 * a small beta on the head's Gaussian z. */
static void recipe_vsd_cifar10(ib_train_config *c)
{
    recipe_cifar_resnet(c);
    snprintf(c->model, sizeof c->model, "resnet20-vsd");
    snprintf(c->method, sizeof c->method, "vsd");
    c->objective.label_smoothing = 0.1f;
    c->objective.vsd_weight = 2.0f;
    c->objective.beta = 1e-4f;
}

/* VCD + VML on two-view Noisy MNIST (docs/vsd.md): a small CNN with a
 * vsdhead on each view (one backbone shared by both: `ibnet eval` reads
 * it; --separate-views gives one per view), Adam at 1e-3, inputs in
 * [0, 1], label smoothing 0.1, the reference's weights 2 (VSD, VCD) and 1
 * for VML, no EMA. */
static void recipe_vcd_noisy_mnist(ib_train_config *c)
{
    snprintf(c->model, sizeof c->model, "cnn-vsd");
    snprintf(c->dataset, sizeof c->dataset, "noisy-mnist-2view");
    snprintf(c->method, sizeof c->method, "vcd+vml");
    c->epochs = 10;
    c->batch_size = 64;
    c->optim.beta1 = 0.9f;
    c->schedule.kind = IB_SCHED_CONSTANT;
    c->optim.lr = 1e-3f;
    c->objective.beta = 1e-4f;
    c->objective.label_smoothing = 0.1f;
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
    {"vub-mnist", recipe_vub_mnist},
    {"imb-mnist", recipe_imb_mnist},
    {"vsd-cifar10", recipe_vsd_cifar10},
    {"vcd-noisy-mnist", recipe_vcd_noisy_mnist},
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
    char known[256] = "";
    for (size_t i = 0, at = 0; i < sizeof recipes / sizeof recipes[0] && at < sizeof known; i++)
        at += (size_t)snprintf(known + at, sizeof known - at, "%s%s", i ? ", " : "", recipes[i].name);
    return ib__error(IB_ERR_ARG, "unknown recipe '%s' (known: %s)", name ? name : "(null)", known);
}

typedef enum { F_STR, F_I64, F_U64, F_F32, F_F64, F_BOOL, F_INT, F_ENUM, F_F32_LIST, F_F64_LIST } field_type;

/* One setting: where it lives, its config.json key, and how `ibnet train`
 * offers it.  The first five members are all a setting needs: a line that
 * names only them ({"key", F_STR, C(f), SZ(f), NULL}) is still a flag,
 * "--key" with '-' for '_', and shows its key as help. */
typedef struct field {
    const char *key;
    field_type type;
    size_t offset;
    size_t size;              /* strings: capacity; lists: the most values */
    const char *const *names; /* enums: names by value, NULL-terminated */
    const char *flag;         /* NULL: derived from the key; NO_FLAG: not a flag */
    const char *metavar;      /* NULL: by type ("N", "X", "NAME", "TEXT") */
    const char *help;         /* one line of --help */
    const char *shown;        /* the default as --help shows it; NULL: the default
                                 configuration's value ("" and false show none) */
    size_t count_offset;      /* lists: where the number of values lives (an int) */
    bool flag_clears;         /* booleans: the flag sets false (--no-ema-debias) */
} field;

#define NO_FLAG ""

static const char *const optim_names[] = {"sgd", "adam", "adamw", "adamax", NULL};
static const char *const sched_names[] = {"constant", "step", "exponential", "multistep", "cosine", NULL};
static const char *const beta_sched_names[] = {"equal", "linear", "geometric", NULL};
static const char *const norm_names[] = {"unit", "symmetric", "standardize", NULL};
static const char *const init_names[] = {"model", "pytorch", "glorot", "kaiming", NULL};
static const char *const noise_names[] = {"symmetric", "pair", "pair-cifar10", "pair-next", NULL};
static const char *const split_names[] = {"test", "train", NULL};

#define C(f) offsetof(ib_train_config, f)
#define SZ(f) sizeof(((ib_train_config *)0)->f)
/* key, field, flag, metavar, help for each type */
#define STRF(k, f, fl, mv, h) {k, F_STR, C(f), SZ(f), NULL, fl, mv, h, NULL, 0, false}
#define NUM(k, t, f, fl, mv, h) {k, t, C(f), 0, NULL, fl, mv, h, NULL, 0, false}
#define ENUMF(k, f, names, fl, mv, h) {k, F_ENUM, C(f), 0, names, fl, mv, h, NULL, 0, false}
#define BOOLF(k, f, fl, h) {k, F_BOOL, C(f), 0, NULL, fl, NULL, h, NULL, 0, false}
#define LIST(k, t, f, n, fl, mv, h) {k, t, C(f), sizeof(((ib_train_config *)0)->f) / sizeof(((ib_train_config *)0)->f[0]), NULL, fl, mv, h, NULL, C(n), false}
/* the old short form of a string setting: a flag named after its key */
#define STR(k, f) {k, F_STR, C(f), SZ(f), NULL}
static const field fields[] = {
    STRF("model", model, "--model", "NAME|FILE", "built-in model or description file (see 'ibnet models')"),
    STRF("init_from", init_from, "--init-from", "CHECKPOINT",
         "start from every tensor of CHECKPOINT whose name and shape match (EMA weights when it has them)"),
    STRF("freeze", freeze, "--freeze", "PREFIX,..",
         "keep the parameters whose names start with a PREFIX fixed (frozen batch norms keep running statistics)"),
    STRF("vib_cells_after", vib_cells_after, "--vib-cells-after", "L1,L2,..",
         "add a VIB cell after each named layer or group (layer1,layer2.1; GROUP.* = after each layer in GROUP)"),
    ENUMF("init", init, init_names, "--init", "STYLE",
          "initialise linear/conv layers as the model file says, or as PyTorch, Glorot (TF, Deep VIB's code) or He"),
    STRF("dataset", dataset, "--dataset", "NAME", "mnist, fashion-mnist, cifar10, cifar100, idx:DIR, folder:ROOT or rotated-mnist:K (domain K held out)"),
    STRF("data_dir", data_dir, "--data", "DIR", "where the data set lives (else IBNET_DATA, ./data, ../shared/data)"),
    {"out_dir", F_STR, C(out_dir), SZ(out_dir), NULL, "--out", "DIR",
     "run directory (default runs/<model>-<dataset>-s<seed>-<hash of the settings>, -2, -3... if taken)", "", 0, false},
    NUM("epochs", F_I64, epochs, "--epochs", "N", "training epochs (the Deep VIB paper: 200)"),
    NUM("batch_size", F_I64, batch_size, "--batch-size", "N", "training batch size"),
    NUM("eval_batch_size", F_I64, eval_batch_size, "--eval-batch-size", "N", "evaluation batch size"),
    NUM("seed", F_U64, seed, "--seed", "N", "seed of every random choice"),
    ENUMF("optimizer", optim.kind, optim_names, "--optimizer", "NAME",
          "optimizer (sets the weight decay to its default: adamw 0.01, else 0)"),
    NUM("lr", F_F32, optim.lr, "--lr", "X", "learning rate (the base rate the schedule scales)"),
    NUM("momentum", F_F32, optim.momentum, "--momentum", "X", "SGD momentum"),
    NUM("dampening", F_F32, optim.dampening, NO_FLAG, NULL, NULL),
    BOOLF("nesterov", optim.nesterov, "--nesterov", "SGD with Nesterov momentum"),
    NUM("weight_decay", F_F32, optim.weight_decay, "--weight-decay", "X", "weight decay (decoupled for adamw)"),
    NUM("adam_beta1", F_F32, optim.beta1, "--adam-beta1", "X", "Adam beta1 (Deep VIB: 0.5)"),
    NUM("adam_beta2", F_F32, optim.beta2, "--adam-beta2", "X", "Adam beta2"),
    NUM("adam_eps", F_F32, optim.eps, NO_FLAG, NULL, NULL),
    NUM("clip_grad_norm", F_F32, optim.clip_grad_norm, "--clip-grad-norm", "X", "clip the global gradient norm (0 = off)"),
    ENUMF("schedule", schedule.kind, sched_names, "--schedule", "NAME", "learning-rate schedule"),
    NUM("lr_gamma", F_F32, schedule.gamma, "--lr-gamma", "X", "decay factor of step/exponential/multistep"),
    NUM("lr_min", F_F32, schedule.min_lr, "--lr-min", "X", "final learning rate of cosine"),
    NUM("lr_every", F_F64, schedule.every, "--lr-every", "EPOCHS", "decay period of step/exponential"),
    LIST("lr_milestones", F_F64_LIST, schedule.milestones, schedule.n_milestones, "--lr-milestones", "E1,E2",
         "epochs of multistep decay"),
    NUM("lr_total", F_F64, schedule.total, NO_FLAG, NULL, NULL),
    NUM("lr_warmup", F_F64, schedule.warmup, "--warmup", "EPOCHS", "linear warm-up"),
    NUM("ema_decay", F_F32, ema_decay, "--ema", "DECAY", "EMA of the weights used for evaluation (0 = off)"),
    {"ema_zero_debias", F_BOOL, C(ema_zero_debias), 0, NULL, "--no-ema-debias", NULL, "EMA without zero-debiasing",
     NULL, 0, true},
    NUM("ema_bn_batches", F_I64, ema_bn_batches, "--ema-bn-batches", "N",
        "recompute the batch-norm statistics of the EMA weights over N training batches before each use (0 = off)"),
    STRF("objective", method, "--objective", "NAME",
         "method (docs/methods.md): Deep VIB (cellVIB with --vib-cells-after), VUB, IMB or variational distillation"),
    NUM("beta", F_F32, objective.beta, "--beta", "X", "compression weight beta of the KL terms"),
    LIST("betas", F_F32_LIST, objective.betas, objective.n_betas, "--betas", "B1,B2,..",
         "explicit beta per bottleneck, in depth order"),
    LIST("gammas", F_F32_LIST, objective.gammas, objective.n_gammas, "--gammas", "G0,G1,..",
         "imb: relevance weight of layer l = 0 (input) .. L, L + 1 values (default 1,0,..,0: the MLE)"),
    ENUMF("beta_schedule", objective.schedule, beta_sched_names, "--beta-schedule", "NAME", "beta over cells by depth"),
    NUM("beta_ratio", F_F32, objective.ratio, "--beta-ratio", "X", "ratio of the geometric beta schedule"),
    BOOLF("kl_mean_per_element", objective.kl_mean_per_element, "--kl-per-element",
          "average each KL over its elements instead of summing"),
    NUM("label_smoothing", F_F32, objective.label_smoothing, "--label-smoothing", "X",
        "label smoothing of the cross-entropy"),
    NUM("entropy_weight", F_F32, objective.entropy_weight, "--entropy-weight", "X",
        "VUB/SVIB entropy bonus weight (VUB: 1)"),
    NUM("entropy_cap", F_F32, objective.entropy_cap, "--entropy-cap", "X", "VUB's cap H_max of the entropy bonus (0 = none)"),
    NUM("vsd_weight", F_F32, objective.vsd_weight, "--vsd-weight", "X",
        "weight of VSD's KL(p(y|v) || p(y|z)) (vsd, vcd, vml; 0 = logged only)"),
    NUM("vcd_weight", F_F32, objective.vcd_weight, "--vcd-weight", "X", "weight of the two-view VCD term (vcd)"),
    NUM("vml_weight", F_F32, objective.vml_weight, "--vml-weight", "X", "weight of the two-view VML term (vml)"),
    BOOLF("separate_views", separate_views, "--separate-views",
          "two-view objectives: one backbone per view (view 2's parameters named view2.*) instead of a shared one"),
    NUM("eval_samples", F_INT, eval_samples, "--eval-samples", "S", "samples averaged at evaluation"),
    NUM("val_size", F_I64, val_size, "--val-size", "N", "hold out the last N training examples for model selection"),
    NUM("patience", F_I64, patience, "--patience", "N",
        "stop N epochs after the best validation accuracy (early stopping; needs --val-size)"),
    ENUMF("input_norm", norm, norm_names, "--input-norm", "NAME", "input scaling"),
    BOOLF("augment", augment, "--augment", "random crop (pad 4) and horizontal flip"),
    BOOLF("label_noise", label_noise, NO_FLAG, NULL),
    ENUMF("noise_kind", noise_kind, noise_names, "--noise-kind", "KIND", "label noise"),
    NUM("noise_rate", F_F32, noise_rate, "--label-noise", "RATE", "corrupt this fraction of training labels"),
    BOOLF("skip_hash", skip_hash, "--no-hash", "skip the sha256 check of the data files"),
    NUM("train_limit", F_I64, train_limit, "--train-limit", "N", "use only the first N training examples"),
    NUM("test_limit", F_I64, test_limit, "--test-limit", "N", "evaluate on the first N test examples"),
    NUM("max_steps", F_I64, max_steps, "--max-steps", "N", "stop after N optimizer steps"),
    NUM("eval_every", F_I64, eval_every, "--eval-every", "N", "evaluate every N epochs"),
    {"divergence_check", F_BOOL, C(divergence_check), 0, NULL, "--no-divergence-check", NULL,
     "go on when the loss grows 1000-fold while finite (stopped with exit 1 by default)", NULL, 0, true},
    STRF("track_info", track_info, "--track-info", "EST",
         "record I(X;T) and I(T;Y) of layers in info.jsonl each --track-every epochs (binning:30, kde:0.1, ...)"),
    STRF("track_layers", track_layers, "--track-layers", "L1,L2,..", "layers --track-info measures (default: every "
         "top-level layer)"),
    NUM("track_every", F_I64, track_every, "--track-every", "N", "--track-info every N epochs (and at the last)"),
    NUM("track_limit", F_I64, track_limit, "--track-limit", "N", "--track-info on the first N examples of the split"),
    ENUMF("track_split", track_split, split_names, "--track-split", "NAME", "--track-info on the test or train split"),
    STRF("save_epochs", save_epochs, "--save-epochs", "E1,E2,..",
         "also write epoch-N.safetensors (weights) at the end of these epochs; 0 = the initial weights"),
    BOOLF("sync_batchnorm", sync_batchnorm, "--sync-batchnorm",
          "over MPI ranks: batch-norm statistics of the global batch, not each rank's rows"),
};
#undef STR
#undef LIST
#undef BOOLF
#undef ENUMF
#undef NUM
#undef STRF
#undef SZ
#undef C
#define N_FIELDS ((int)(sizeof fields / sizeof fields[0]))

static int enum_value(const field *f, const ib_train_config *c)
{
    return *(const int *)(const void *)((const char *)c + f->offset);
}

static int list_count(const field *f, const ib_train_config *c)
{
    return *(const int *)(const void *)((const char *)c + f->count_offset);
}

static double list_value(const field *f, const ib_train_config *c, int k)
{
    const char *at = (const char *)c + f->offset;
    return f->type == F_F32_LIST ? (double)((const float *)(const void *)at)[k] : ((const double *)(const void *)at)[k];
}

static void list_put(const field *f, ib_train_config *c, int k, double v)
{
    char *at = (char *)c + f->offset;
    if (f->type == F_F32_LIST)
        ((float *)(void *)at)[k] = (float)v;
    else
        ((double *)(void *)at)[k] = v;
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
        case F_F32_LIST:
        case F_F64_LIST: {
            cJSON *a = cJSON_AddArrayToObject(o, f->key);
            for (int k = 0; k < list_count(f, c); k++)
                cJSON_AddItemToArray(a, cJSON_CreateNumber(list_value(f, c, k)));
            break;
        }
        }
    }
    /* where the run came from: not a setting (the reader skips it) */
    cJSON_AddItemToObject(o, IB__PROVENANCE_KEY, ib__provenance_json());
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
    case F_F32_LIST:
    case F_F64_LIST: {
        if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > (int)f->size)
            return ib__error(IB_ERR_FORMAT, "config: '%s' must be an array of at most %d numbers", f->key, (int)f->size);
        int k = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, v)
        {
            if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble) || fabs(e->valuedouble) > FLT_MAX)
                return ib__error(IB_ERR_FORMAT, "config: '%s' must hold finite single-precision numbers", f->key);
            list_put(f, c, k++, e->valuedouble);
        }
        *(int *)(void *)((char *)c + f->count_offset) = k;
        return IB_OK;
    }
    }
    return IB_ERR_FORMAT;
}

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
        if (strcmp(key, IB__PROVENANCE_KEY) == 0) {
            /* a record of where the run came from, not a setting: it is
             * written anew with every config.json and never read back */
            if (!cJSON_IsObject(item))
                s = ib__error(IB_ERR_FORMAT, "config: '%s' must be an object", key);
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
    return s;
}

/* ---- the settings as the command line sees them ---- */

static void flag_name(const field *f, char *out, size_t len)
{
    if (f->flag) {
        snprintf(out, len, "%s", f->flag);
        return;
    }
    /* a setting given only its key: "--" + the key with '-' for '_' */
    snprintf(out, len, "--%s", f->key);
    for (char *p = out; *p; p++)
        if (*p == '_')
            *p = '-';
}

/* The shortest decimal text that reads back to the same float/double. */
static void fmt_number(double v, bool single, char *out, size_t len)
{
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(out, len, "%.*g", digits, v);
        double back = strtod(out, NULL);
        if (single ? (float)back == (float)v : back == v)
            return;
    }
}

/* A value as text, in the form ib_train_config_set reads. */
static void format_value(const field *f, const ib_train_config *c, char *out, size_t len)
{
    const char *at = (const char *)c + f->offset;
    out[0] = 0;
    switch (f->type) {
    case F_STR: snprintf(out, len, "%s", at); break;
    case F_I64: snprintf(out, len, "%lld", (long long)*(const int64_t *)(const void *)at); break;
    case F_U64: snprintf(out, len, "%llu", (unsigned long long)*(const uint64_t *)(const void *)at); break;
    case F_INT: snprintf(out, len, "%d", *(const int *)(const void *)at); break;
    case F_F32: fmt_number((double)*(const float *)(const void *)at, true, out, len); break;
    case F_F64: fmt_number(*(const double *)(const void *)at, false, out, len); break;
    case F_BOOL: snprintf(out, len, "%s", *(const bool *)(const void *)at ? "true" : "false"); break;
    case F_ENUM: snprintf(out, len, "%s", f->names[enum_value(f, c)]); break;
    case F_F32_LIST:
    case F_F64_LIST:
        for (int k = 0; k < list_count(f, c); k++) {
            char num[40];
            fmt_number(list_value(f, c, k), f->type == F_F32_LIST, num, sizeof num);
            size_t n = strlen(out);
            snprintf(out + n, len - n, "%s%s", k ? "," : "", num);
        }
        break;
    }
}

/* The names of the registered methods (src/ib/method.c), NULL-terminated:
 * the choices of --objective. */
static const char *const *method_names(void)
{
    static const char *names[65];
    if (!names[0])
        for (int i = 0; i < 64 && ib_method_at(i); i++)
            names[i] = ib_method_at(i)->name;
    return names;
}

bool ib_train_config_field(int i, ib_config_field *out)
{
    if (!out || i < 0 || i >= N_FIELDS)
        return false;
    const field *f = &fields[i];
    static const ib_config_type types[] = {
        [F_STR] = IB_CONFIG_TEXT,       [F_I64] = IB_CONFIG_INT,   [F_U64] = IB_CONFIG_INT,
        [F_F32] = IB_CONFIG_NUMBER,     [F_F64] = IB_CONFIG_NUMBER, [F_BOOL] = IB_CONFIG_BOOL,
        [F_INT] = IB_CONFIG_INT,        [F_ENUM] = IB_CONFIG_CHOICE, [F_F32_LIST] = IB_CONFIG_LIST,
        [F_F64_LIST] = IB_CONFIG_LIST,
    };
    static const char *const metavars[] = {
        [IB_CONFIG_TEXT] = "TEXT", [IB_CONFIG_INT] = "N",      [IB_CONFIG_NUMBER] = "X",
        [IB_CONFIG_BOOL] = NULL,   [IB_CONFIG_CHOICE] = "NAME", [IB_CONFIG_LIST] = "X1,X2,..",
    };
    memset(out, 0, sizeof *out);
    out->key = f->key;
    out->type = types[f->type];
    flag_name(f, out->flag, sizeof out->flag);
    out->metavar = out->type == IB_CONFIG_BOOL ? NULL : f->metavar ? f->metavar : metavars[out->type];
    out->help = f->help ? f->help : f->key;
    out->choices = f->names;
    if (f->type == F_STR && f->offset == offsetof(ib_train_config, method)) /* the registry's methods: a new one is offered by itself */
        out->choices = method_names();
    out->flag_clears = f->flag_clears;
    if (f->shown) {
        snprintf(out->shown, sizeof out->shown, "%s", f->shown);
    } else if (f->type != F_BOOL) {
        ib_train_config d = ib_train_config_default();
        format_value(f, &d, out->shown, sizeof out->shown);
    }
    return true;
}

static const field *find_field(const char *name)
{
    char flag[64];
    for (int i = 0; name && i < N_FIELDS; i++) {
        flag_name(&fields[i], flag, sizeof flag);
        if (strcmp(fields[i].key, name) == 0 || (flag[0] && strcmp(flag, name) == 0))
            return &fields[i];
    }
    return NULL;
}

/* strtod that takes all of s and stays finite (in float range when single). */
static bool parse_number(const char *s, bool single, double *v)
{
    char *end = NULL;
    errno = 0;
    *v = strtod(s, &end);
    return *s && end && !*end && errno != ERANGE && isfinite(*v) && !(single && fabs(*v) > FLT_MAX);
}

ib_status ib_train_config_set(ib_train_config *c, const char *name, const char *text)
{
    const field *f = find_field(name);
    if (!c || !f || !text)
        return ib__error(IB_ERR_ARG, "unknown setting '%s'", name ? name : "(null)");
    char *at = (char *)c + f->offset;
    char *end = NULL;
    switch (f->type) {
    case F_STR:
        /* refused, never cut: a path cut short would write somewhere else */
        if (strlen(text) >= f->size)
            return ib__error(IB_ERR_ARG, "%s: the value is %zu bytes long, longer than the %zu this setting holds",
                             name, strlen(text), f->size - 1);
        /* --objective imb from another method: imb's default beta is 0 (the
         * maximum likelihood of the stochastic network, docs/imb.md), not
         * Deep VIB's 1e-3; a --beta set after this one stays */
        if (f->offset == offsetof(ib_train_config, method) && strcmp(text, "imb") == 0 && strcmp(at, "imb") != 0)
            c->objective.beta = 0.0f;
        snprintf(at, f->size, "%s", text);
        return IB_OK;
    case F_I64:
    case F_INT: {
        errno = 0;
        long long x = strtoll(text, &end, 10);
        if (!*text || *end)
            return ib__error(IB_ERR_ARG, "%s expects an integer, got '%s'", name, text);
        if (errno == ERANGE || (f->type == F_INT && (x > INT_MAX || x < INT_MIN)) || llabs(x) > 9000000000000000LL)
            return ib__error(IB_ERR_ARG, "%s: %s is out of range (at most %.0f in size)", name, text,
                             f->type == F_INT ? (double)INT_MAX : 9e15);
        if (f->type == F_I64)
            *(int64_t *)(void *)at = x;
        else
            *(int *)(void *)at = (int)x;
        return IB_OK;
    }
    case F_U64: {
        errno = 0;
        unsigned long long x = strtoull(text, &end, 10);
        if (!(text[0] >= '0' && text[0] <= '9') || *end || errno == ERANGE)
            return ib__error(IB_ERR_ARG, "%s expects a non-negative integer of at most 18446744073709551615, got '%s'",
                             name, text);
        *(uint64_t *)(void *)at = x;
        return IB_OK;
    }
    case F_F32:
    case F_F64: {
        double v;
        if (!parse_number(text, f->type == F_F32, &v))
            return ib__error(IB_ERR_ARG, "%s expects a finite number%s, got '%s'", name,
                             f->type == F_F32 ? " (single precision)" : "", text);
        if (f->type == F_F32)
            *(float *)(void *)at = (float)v;
        else
            *(double *)(void *)at = v;
        /* --label-noise RATE: a rate above 0 turns the noise on */
        if (f->offset == offsetof(ib_train_config, noise_rate))
            c->label_noise = v > 0;
        return IB_OK;
    }
    case F_BOOL:
        if (strcmp(text, "true") && strcmp(text, "false"))
            return ib__error(IB_ERR_ARG, "%s expects true or false, got '%s'", name, text);
        *(bool *)(void *)at = strcmp(text, "true") == 0;
        return IB_OK;
    case F_ENUM:
        for (int k = 0; f->names[k]; k++)
            if (strcmp(f->names[k], text) == 0) {
                int was = *(int *)(void *)at;
                *(int *)(void *)at = k;
                /* another optimizer: its own weight decay (AdamW's decoupled
                 * 0.01, else 0); a weight decay set after this one stays */
                if (f->offset == offsetof(ib_train_config, optim.kind) && k != was)
                    c->optim.weight_decay = ib_optim_defaults((ib_optim_kind)k).weight_decay;
                return IB_OK;
            }
        {
            char list[256] = "";
            for (int k = 0; f->names[k]; k++) {
                size_t n = strlen(list);
                snprintf(list + n, sizeof list - n, "%s%s", k ? "|" : "", f->names[k]);
            }
            return ib__error(IB_ERR_ARG, "%s must be one of %s, got '%s'", name, list, text);
        }
    case F_F32_LIST:
    case F_F64_LIST: {
        double v[64];
        int n = 0;
        for (const char *s = text; *s;) {
            char num[64];
            const char *comma = strchr(s, ',');
            size_t len = comma ? (size_t)(comma - s) : strlen(s);
            if (n >= (int)f->size || n >= (int)(sizeof v / sizeof v[0]) || len >= sizeof num)
                return ib__error(IB_ERR_ARG, "%s expects at most %d comma-separated numbers, got '%s'", name,
                                 (int)f->size, text);
            memcpy(num, s, len);
            num[len] = 0;
            if (!parse_number(num, true, &v[n]))
                return ib__error(IB_ERR_ARG, "%s expects comma-separated finite numbers, got '%s'", name, text);
            n++;
            s = comma ? comma + 1 : s + len;
            if (comma && !*s)
                return ib__error(IB_ERR_ARG, "%s expects comma-separated finite numbers, got '%s'", name, text);
        }
        for (int k = 0; k < n; k++)
            list_put(f, c, k, v[k]);
        *(int *)(void *)((char *)c + f->count_offset) = n;
        return IB_OK;
    }
    }
    return IB_ERR_ARG;
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
    REQUIRE(isfinite(c->optim.lr) && c->optim.lr > 0, "learning rate must be positive (got %g)",
            (double)c->optim.lr);
    REQUIRE(isfinite(c->objective.beta) && c->objective.beta >= 0, "beta must be a number >= 0 (got %g)",
            (double)c->objective.beta);
    for (int l = 0; l < c->objective.n_gammas; l++)
        REQUIRE(isfinite(c->objective.gammas[l]) && c->objective.gammas[l] >= 0,
                "--gammas: gamma of layer %d must be >= 0 (got %g)", l, (double)c->objective.gammas[l]);
    for (int l = 0; l < c->objective.n_betas; l++)
        REQUIRE(isfinite(c->objective.betas[l]) && c->objective.betas[l] >= 0,
                "beta of bottleneck %d must be >= 0 (got %g)", l + 1, (double)c->objective.betas[l]);
    REQUIRE(c->ema_decay >= 0 && c->ema_decay < 1, "EMA decay must be in [0, 1) (got %g)", (double)c->ema_decay);
    REQUIRE(c->ema_bn_batches >= 0, "--ema-bn-batches must be >= 0 (got %lld)", (long long)c->ema_bn_batches);
    REQUIRE(c->eval_samples >= 1 && c->eval_samples <= 1000, "evaluation samples must be in 1..1000");
    REQUIRE(c->noise_rate >= 0 && c->noise_rate <= 1, "label noise rate must be in [0, 1]");
    REQUIRE(c->objective.label_smoothing >= 0 && c->objective.label_smoothing < 1, "label smoothing must be in [0, 1)");
    REQUIRE(c->patience >= 0, "--patience must be >= 0 (got %lld)", (long long)c->patience);
    REQUIRE(c->patience == 0 || c->val_size > 0,
            "--patience stops on the validation split: give --val-size N too (never on the test set)");
    REQUIRE(c->val_size >= 0 && c->train_limit >= 0 && c->test_limit >= 0 && c->max_steps >= 0,
            "sizes and limits must not be negative");
    REQUIRE(c->eval_every >= 1, "eval_every must be at least 1");
    REQUIRE(c->out_dir[0], "no output directory given");
    REQUIRE(c->track_every >= 1, "track_every must be at least 1 (got %lld)", (long long)c->track_every);
    REQUIRE(c->track_limit >= 2, "track_limit must be at least 2 examples (got %lld)", (long long)c->track_limit);
#undef REQUIRE
    ib_status snap = ib__save_epochs_check(c->save_epochs, c->epochs);
    if (snap != IB_OK)
        return snap;
    if (c->track_info[0]) {
        ib_status s = ib__track_check(c);
        if (s != IB_OK)
            return s;
    }
    /* the method and the settings it reads (a caller's own method is not in the registry) */
    if (!m && !(m = ib_method_find(c->method)))
        return IB_ERR_ARG;
    /* a two-view data set feeds a two-view method, and only one (docs/vsd.md) */
    int dv = ib_dataset_spec_views(c->dataset);
    if (m->views >= 2 && dv < 2 && !m->make_view)
        return ib__error(IB_ERR_ARG, "the %s objective needs a two-view data set (noisy-mnist-2view, cifar10-2view), "
                         "not '%s'", m->name, c->dataset);
    if (dv >= 2 && m->views < 2)
        return ib__error(IB_ERR_ARG, "data set '%s' has two views: train it with a two-view objective (vcd, vml, "
                         "vcd+vml), not %s", c->dataset, m->name);
    if (c->separate_views && m->views < 2)
        return ib__error(IB_ERR_ARG, "--separate-views needs a two-view objective (vcd, vml, vcd+vml), not %s", m->name);
    return ib_method_validate(m, &c->objective);
}
