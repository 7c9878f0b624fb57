/*
 * test_ema_bn.c — batch-norm statistics recomputed for the EMA weights
 * (src/train/ema_bn.c, --ema-bn-batches): the EMA's buffers and swaps, the
 * statistics against batch statistics computed here, the training network
 * left alone, the evaluation of a checkpoint against the run's figures,
 * and the same bits for the same seed, resumed or not.
 */
#include "test.h"
#include "core/internal.h"

#include <cjson/cJSON.h>
#include <math.h>

static char data_dir[1024];

/* Batch norms before the bottleneck: their inputs do not depend on the
 * bottleneck's noise, so this test can recompute the batch statistics of
 * the first two.  The residual block has the fused batch norm + ReLU op. */
static const char model_text[] = "model emabn\ninput 1 8 8\nclasses 4\n\n"
                                 "conv 6 k=3 pad=1 name=conv1\nbatchnorm name=bn1\nrelu\nmaxpool k=2\n"
                                 "conv 8 k=3 pad=1 name=conv2\nbatchnorm name=bn2\nrelu\nbasicblock 8 name=block\n"
                                 "globalavgpool\nflatten\nvib 4 shift=-5 name=vib\nlinear 4 name=fc\n";
static char model_path[1024];

#define BATCH 50
#define K_BATCHES 3
#define EPOCHS 2

static ib_train_config config(const char *run, int64_t bn_batches)
{
    ib_train_config c = ib_test_train_config(model_path, data_dir, run);
    c.epochs = EPOCHS;
    c.batch_size = BATCH;
    c.eval_batch_size = 100;
    c.optim.lr = 3e-3f;
    c.eval_samples = 4;
    c.ema_decay = 0.9f;
    c.ema_bn_batches = bn_batches;
    c.seed = 3;
    return c;
}

static void train(const ib_train_config *c)
{
    ib_set_threads(1);
    CHECK_OK(ib_train(c, NULL));
    ib_set_threads(2);
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    CHECK_MSG(cJSON_IsNumber(v), "no number \"%s\"", key);
    return v->valuedouble;
}

/* FNV-1a 64 of the tensor section of dir/file. */
static uint64_t tensor_hash(const char *dir, const char *file)
{
    char path[1400];
    snprintf(path, sizeof path, "%.1200s/%s", dir, file);
    return ib_test_tensor_hash(path);
}

/* metrics.jsonl without its wall-clock fields (and, evaluated_only, without
 * the training means, which after a resume cover the batches trained since),
 * as one text. */
static char *metrics_text(const char *dir, bool evaluated_only)
{
    char path[1400];
    snprintf(path, sizeof path, "%.1200s/metrics.jsonl", dir);
    FILE *f = fopen(path, "rb");
    CHECK_MSG(f != NULL, "cannot open %s", path);
    size_t cap = 1 << 16, len = 0;
    char *out = calloc(cap, 1), line[1 << 14];
    while (fgets(line, sizeof line, f)) {
        cJSON *o = cJSON_Parse(line);
        CHECK(o != NULL);
        cJSON_DeleteItemFromObject(o, "seconds");
        cJSON_DeleteItemFromObject(o, "samples_per_s");
        cJSON_DeleteItemFromObject(o, "data_wait_s");
        const char *means[] = {"train_batches", "train_loss", "train_ce", "train_kl", "train_terms"};
        for (int k = 0; evaluated_only && k < 5; k++)
            cJSON_DeleteItemFromObject(o, means[k]);
        char *t = cJSON_PrintUnformatted(o);
        len += (size_t)snprintf(out + len, cap - len, "%s\n", t);
        free(t);
        cJSON_Delete(o);
    }
    fclose(f);
    return out;
}

/* The model's store and a training-mode graph of BATCH rows on it. */
typedef struct net {
    ib_model *m;
    ib_params *p;
    ib_graph *g;
    ib_node *x;
} net;

static void net_open(net *n)
{
    CHECK_OK(ib_model_load(model_path, &n->m));
    n->p = ib_params_new(0);
    n->g = ib_graph_new(n->p);
    n->x = ib_input(n->g, "x", 4, (int64_t[]){BATCH, 1, 8, 8});
    ib_model_out mo;
    CHECK_OK(ib_model_build(n->m, n->g, n->x, NULL, &mo));
    ib_graph_set_training(n->g, true);
    ib__graph_set_layout_block(n->g, 0); /* plain NCHW: the test reads the batch norms' inputs */
    CHECK_OK(ib_graph_compile(n->g));
}

static void net_close(net *n)
{
    ib_graph_free(n->g);
    ib_params_free(n->p);
    ib_model_free(n->m);
}

/* The store's float values of parameter `name`. */
static const float *value_of(ib_params *p, const char *name)
{
    int i = ib_params_find(p, name);
    CHECK_MSG(i >= 0, "no parameter %s", name);
    return ib_params_value(p, i);
}

/* The EMA's buffers: a swap keeps them aside and restores them, a kept
 * value is put in by every later swap, and a checkpoint carries it. */
static void test_ema_buffers(void)
{
    ib_params *p = ib_params_new(0);
    ib_graph *g = ib_graph_new(p);
    ib_node *w = ib_param(g, "w", 1, (int64_t[]){3}, (ib_init){IB_INIT_ONES, 0, 0});
    ib_node *b = ib_buffer(g, "b", 1, (int64_t[]){3}, (ib_init){IB_INIT_ZEROS, 0, 0});
    CHECK(w && b);
    int wi = ib_params_find(p, "w"), bi = ib_params_find(p, "b");
    ib_ema *e = ib_ema_new(p, 0.5f, true);
    CHECK(e != NULL);
    ib_params_value(p, wi)[0] = 3.0f;
    CHECK_OK(ib_ema_update(e));
    CHECK(ib_ema_keep_buffer(e, bi) == IB_ERR_STATE); /* not swapped */
    CHECK_OK(ib_ema_swap(e));
    CHECK(ib_ema_keep_buffer(e, wi) == IB_ERR_ARG); /* not a buffer */
    float *bv = ib_params_value(p, bi);
    bv[0] = 7.0f; /* written while swapped: the averaged network's */
    CHECK(!ib_ema_has_buffer(e, bi));
    CHECK_OK(ib_ema_keep_buffer(e, bi));
    CHECK(ib_ema_has_buffer(e, bi));
    CHECK_OK(ib_ema_swap(e));
    CHECK(bv[0] == 0.0f); /* the training network's back */
    CHECK_OK(ib_ema_swap(e));
    CHECK(bv[0] == 7.0f);
    CHECK_OK(ib_ema_swap(e));
    char path[1200];
    snprintf(path, sizeof path, "%s/emabuf.safetensors", ib_test_tmpdir());
    CHECK_OK(ib_checkpoint_save(path, p, NULL, e, NULL));
    /* back into a new EMA: the buffer's value and that it is owned */
    ib_ema *e2 = ib_ema_new(p, 0.5f, true);
    CHECK_OK(ib_checkpoint_load(path, p, NULL, e2, NULL));
    CHECK(ib_ema_has_buffer(e2, bi));
    CHECK_OK(ib_ema_swap(e2));
    CHECK(bv[0] == 7.0f && ib_params_value(p, wi)[0] == 3.0f);
    CHECK_OK(ib_ema_swap(e2));
    /* without an EMA the file loads too (its EMA state is not asked for) */
    CHECK_OK(ib_checkpoint_load(path, p, NULL, NULL, NULL));
    CHECK(bv[0] == 0.0f);
    /* the partial loader with use_ema takes the buffer's value as is */
    ib_checkpoint_partial_options po = {.use_ema = true};
    CHECK_OK(ib_checkpoint_load_partial(path, p, &po, NULL));
    CHECK(bv[0] == 7.0f && ib_params_value(p, wi)[0] == 3.0f);
    ib_ema_free(e2);
    ib_ema_free(e);
    ib_graph_free(g);
    ib_params_free(p);
}

/* The EMA's statistics in last.safetensors are the mean over the first
 * K_BATCHES batches of the last epoch's order of the batch means and
 * unbiased variances of the EMA network, computed here from the inputs of
 * its batch norms. */
static void test_statistics_are_the_batch_means(void)
{
    ib_train_config c = config("emabn-stats", K_BATCHES);
    train(&c);
    net n;
    net_open(&n);
    char path[1400];
    snprintf(path, sizeof path, "%.1200s/last.safetensors", c.out_dir);
    ib_ema *e = ib_ema_new(n.p, c.ema_decay, c.ema_zero_debias);
    CHECK_OK(ib_checkpoint_load(path, n.p, NULL, e, NULL));
    const char *names[4] = {"bn1.running_mean", "bn1.running_var", "bn2.running_mean", "bn2.running_var"};
    float raw[4][8], got[4][8];
    for (int b = 0; b < 4; b++) {
        int i = ib_params_find(n.p, names[b]);
        CHECK_MSG(i >= 0 && ib_ema_has_buffer(e, i), "%s: not the EMA's", names[b]);
        memcpy(raw[b], value_of(n.p, names[b]), sizeof(float) * (size_t)ib_params_numel(n.p, i));
    }
    CHECK_OK(ib_ema_swap(e)); /* the EMA weights and their statistics */
    for (int b = 0; b < 4; b++)
        memcpy(got[b], value_of(n.p, names[b]), sizeof(float) * (size_t)ib_params_numel(n.p, ib_params_find(n.p, names[b])));
    CHECK_MSG(got[0][0] != raw[0][0], "the EMA's statistics equal the training network's");
    /* every batch norm's, the fused batch norm + ReLU of the block too */
    int n_buffers = 0;
    for (int i = 0; i < ib_params_count(n.p); i++)
        if (ib_params_kind(n.p, i) == IB_PARAM_BUFFER) {
            n_buffers++;
            CHECK_MSG(ib_ema_has_buffer(e, i), "%s: not recomputed", ib_params_name(n.p, i));
        }
    CHECK_EQ_INT(n_buffers, 8);

    ib_dataset *d = NULL;
    CHECK_OK(ib_dataset_open(c.dataset, "train", NULL, NULL, &d));
    ib_batcher_config bc = {.batch_size = BATCH, .seed = c.seed, .shuffle = true, .drop_last = true, .norm = c.norm};
    ib_batcher *bt = NULL;
    CHECK_OK(ib_batcher_new(d, &bc, &bt));
    ib_batcher_epoch(bt, EPOCHS - 1);
    ib_node *bn[2] = {NULL, NULL};
    for (int k = 0, j = 0; k < n.g->n_nodes && j < 2; k++)
        if (n.g->nodes[k]->op && !strcmp(n.g->nodes[k]->op->name, "batchnorm"))
            bn[j++] = n.g->nodes[k];
    CHECK(bn[0] && bn[1]);
    double want[4][8] = {{0}};
    int32_t labels[BATCH];
    for (int k = 0; k < K_BATCHES; k++) {
        int64_t count = 0;
        CHECK(ib_batcher_next(bt, n.x->value, labels, &count) && count == BATCH);
        ib_graph_forward(n.g);
        for (int j = 0; j < 2; j++) {
            const ib_node *in = bn[j]->in[0];
            int64_t ch = in->shape[1], cells = in->shape[2] * in->shape[3], m = BATCH * cells;
            for (int64_t c2 = 0; c2 < ch; c2++) {
                double s = 0, v = 0;
                for (int64_t i = 0; i < BATCH; i++)
                    for (int64_t q = 0; q < cells; q++)
                        s += in->value[(i * ch + c2) * cells + q];
                double mu = s / (double)m;
                for (int64_t i = 0; i < BATCH; i++)
                    for (int64_t q = 0; q < cells; q++) {
                        double dv = in->value[(i * ch + c2) * cells + q] - mu;
                        v += dv * dv;
                    }
                want[2 * j][c2] += mu / K_BATCHES;
                want[2 * j + 1][c2] += v / (double)(m - 1) / K_BATCHES;
            }
        }
    }
    for (int b = 0; b < 4; b++) {
        int64_t ch = b < 2 ? 6 : 8;
        for (int64_t c2 = 0; c2 < ch; c2++)
            CHECK_MSG(fabs(got[b][c2] - want[b][c2]) <= 1e-5 * fabs(want[b][c2]) + 1e-6, "%s[%lld]: %.9g, want %.9g",
                      names[b], (long long)c2, (double)got[b][c2], want[b][c2]);
    }
    ib_batcher_free(bt);
    ib_dataset_free(d);
    ib_ema_free(e);
    net_close(&n);
}

/* The recomputation leaves the training alone: the same raw weights,
 * statistics, optimizer state and training figures as a run without it
 * (--ema-bn-batches 0), which still evaluates the last statistics. */
static void test_training_network_untouched(void)
{
    ib_train_config on = config("emabn-on", K_BATCHES), off = config("emabn-off", 0);
    train(&on);
    train(&off);
    net a, b;
    net_open(&a);
    net_open(&b);
    char pa[1400], pb[1400];
    snprintf(pa, sizeof pa, "%.1200s/last.safetensors", on.out_dir);
    snprintf(pb, sizeof pb, "%.1200s/last.safetensors", off.out_dir);
    CHECK_OK(ib_checkpoint_load(pa, a.p, NULL, NULL, NULL)); /* the raw tensors */
    CHECK_OK(ib_checkpoint_load(pb, b.p, NULL, NULL, NULL));
    CHECK_EQ_INT(ib_params_total(a.p), ib_params_total(b.p));
    CHECK(memcmp(ib_params_values(a.p), ib_params_values(b.p), sizeof(float) * (size_t)ib_params_total(a.p)) == 0);
    cJSON *sa = ib_test_read_json(on.out_dir, "summary.json"), *sb = ib_test_read_json(off.out_dir, "summary.json");
    char *ma = metrics_text(on.out_dir, false), *mb = metrics_text(off.out_dir, false);
    /* training figures equal, evaluated ones not (other statistics) */
    for (const char *l = ma, *m = mb; l && m && *l; l = strchr(l, '\n') + 1, m = strchr(m, '\n') + 1) {
        cJSON *x = cJSON_Parse(l), *y = cJSON_Parse(m);
        CHECK(num(x, "train_loss") == num(y, "train_loss") && num(x, "step") == num(y, "step"));
        cJSON_Delete(x);
        cJSON_Delete(y);
    }
    CHECK(num(sa, "test_nll_avg") != num(sb, "test_nll_avg"));
    free(ma);
    free(mb);
    cJSON_Delete(sa);
    cJSON_Delete(sb);
    net_close(&a);
    net_close(&b);
}

/* `ibnet eval` of best.safetensors gives the run's best figure, of
 * last.safetensors (EMA weights and their statistics) its final one (the
 * run's evaluation batch size: the bottleneck's noise is drawn per batch). */
static void test_checkpoints_evaluate_as_reported(void)
{
    /* (the JSON prints 6 decimals) */
    ib_train_config c = config("emabn-eval", K_BATCHES);
    train(&c);
    cJSON *s = ib_test_read_json(c.out_dir, "summary.json");
    char args[2048], out[8192];
    ib_test_cli to_out = {.out = out, .out_len = sizeof out, .out_err = true};
    snprintf(args, sizeof args, "eval %s/best.safetensors --json --batch-size 100", c.out_dir);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_out), 0);
    cJSON *e = cJSON_Parse(out);
    CHECK_MSG(e != NULL, "eval printed: %s", out);
    CHECK_MSG(num(e, "acc_avg") == num(s, "best_accuracy"), "best.safetensors evaluates %.6f, the run reported %.6f",
              num(e, "acc_avg"), num(s, "best_accuracy"));
    cJSON_Delete(e);
    snprintf(args, sizeof args, "eval %s/last.safetensors --json --batch-size 100", c.out_dir);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_out), 0);
    e = cJSON_Parse(out);
    CHECK_MSG(e != NULL, "eval printed: %s", out);
    CHECK_MSG(num(e, "acc_avg") == num(s, "test_acc_avg") && fabs(num(e, "nll_avg") - num(s, "test_nll_avg")) < 1e-6,
              "last.safetensors evaluates %.6f (nll %.9g), the run reported %.6f (%.9g)", num(e, "acc_avg"),
              num(e, "nll_avg"), num(s, "test_acc_avg"), num(s, "test_nll_avg"));
    cJSON_Delete(e);
    cJSON_Delete(s);
}

/* Same seed, same bits; a run stopped inside an epoch and resumed ends
 * with the same checkpoint and figures as one that was not. */
static void test_same_seed_same_bits(void)
{
    ib_train_config a = config("emabn-a", K_BATCHES), b = config("emabn-b", K_BATCHES),
                    r = config("emabn-resumed", K_BATCHES);
    train(&a);
    train(&b);
    r.max_steps = 17; /* inside epoch 2 (12 batches an epoch) */
    train(&r);
    ib_set_threads(1);
    CHECK_OK(ib_train_resume(r.out_dir, 0, NULL));
    ib_set_threads(2);
    char *ma = metrics_text(a.out_dir, false), *mb = metrics_text(b.out_dir, false);
    CHECK(strcmp(ma, mb) == 0);
    free(ma);
    ma = metrics_text(a.out_dir, true);
    char *mr = metrics_text(r.out_dir, true);
    CHECK_MSG(strcmp(ma, mr) == 0, "resumed:\n%s\nuninterrupted:\n%s", mr, ma);
    const char *files[2] = {"last.safetensors", "best.safetensors"};
    for (int f = 0; f < 2; f++) {
        CHECK(tensor_hash(a.out_dir, files[f]) == tensor_hash(b.out_dir, files[f]));
        CHECK_MSG(tensor_hash(a.out_dir, files[f]) == tensor_hash(r.out_dir, files[f]), "%s differs after resume",
                  files[f]);
    }
    free(ma);
    free(mb);
    free(mr);
}

int main(void)
{
    ib_test_blob_dir("emabn-blobs", 600, 200, 5, 170.0f, 20.0f, data_dir, sizeof data_dir);
    ib_test_write_text("emabn.ibm", model_text, model_path, sizeof model_path);
    IB_RUN(test_ema_buffers);
    IB_RUN(test_statistics_are_the_batch_means);
    IB_RUN(test_training_network_untouched);
    IB_RUN(test_checkpoints_evaluate_as_reported);
    IB_RUN(test_same_seed_same_bits);
    return ib_test_summary();
}
