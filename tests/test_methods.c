/*
 * test_methods.c — the method interface (src/ib/): named loss terms, the
 * registry, VUB's objective against an independent double-precision
 * computation and by finite differences (below the cap, above it, and
 * uncapped as SVIB), VUB through the trainer with its terms in
 * metrics.jsonl, and a toy two-view method of the test's own (two views of
 * the blob images through one shared backbone) that the trainer builds
 * and trains.
 */
#include "test.h"

#include <cjson/cJSON.h>
#include <sys/stat.h>

#define N 5
#define K 4 /* classes */
#define Z 3 /* bottleneck size */

/* ---- VUB's loss on a fixed batch ---- */

typedef struct vub_graph {
    ib_params *p;
    ib_graph *g;
    ib_node *logits, *h, *eps, *y;
    ib_bottleneck bn;
    ib_loss loss;
} vub_graph;

/* logits (N, K) and a Deep VIB bottleneck on h (N, 2Z) with its noise
 * given, so the KL is a real encoder's; labels fixed. */
static void vub_build(vub_graph *v, const ib_objective *o)
{
    v->p = ib_params_new(1);
    v->g = ib_graph_new(v->p);
    v->logits = ib_node_set_requires_grad(ib_input(v->g, "logits", 2, (int64_t[]){N, K}), true);
    v->h = ib_node_set_requires_grad(ib_input(v->g, "h", 2, (int64_t[]){N, 2 * Z}), true);
    v->eps = ib_input(v->g, "eps", 2, (int64_t[]){N, Z});
    v->y = ib_input_labels(v->g, "y", N);
    v->bn = ib_nn_vib(v->g, v->h, Z, 0.0f, v->eps);
    CHECK_OK(ib_objective_build(v->g, v->logits, v->y, 1, &v->bn, o, &v->loss));
    ib_test_compile_fill(v->g);
    /* logits of moderate spread: an entropy around 1 nat of the ln 4 = 1.386 possible */
    ib_test_fill(ib_node_data(v->logits), N * K, -1.5f, 1.5f, 11);
    ib_test_fill(ib_node_data(v->h), N * 2 * Z, -1.0f, 1.0f, 12);
    ib_test_fill(ib_node_data(v->eps), N * Z, -1.0f, 1.0f, 13);
    const int32_t labels[N] = {0, 3, 1, 2, 3};
    memcpy(ib_node_labels(v->y), labels, sizeof labels);
}

static void vub_free(vub_graph *v)
{
    ib_graph_free(v->g);
    ib_params_free(v->p);
}

static double softplus_d(double x) { return x > 20 ? x : log1p(exp(x)); }

/* CE, KL and H of the batch in double precision, from the inputs alone. */
static void reference(vub_graph *v, double *ce, double *kl, double *H)
{
    const float *lg = ib_node_data(v->logits), *h = ib_node_data(v->h);
    const int32_t *y = ib_node_labels(v->y);
    *ce = *kl = *H = 0;
    for (int i = 0; i < N; i++) {
        double m = lg[i * K];
        for (int k = 1; k < K; k++)
            m = fmax(m, lg[i * K + k]);
        double s = 0;
        for (int k = 0; k < K; k++)
            s += exp(lg[i * K + k] - m);
        double lse = m + log(s), ent = 0;
        for (int k = 0; k < K; k++) {
            double lp = lg[i * K + k] - lse;
            ent -= exp(lp) * lp;
        }
        *ce += lse - lg[i * K + y[i]];
        *H += ent;
        for (int j = 0; j < Z; j++) {
            double mu = h[i * 2 * Z + j], sg = softplus_d(h[i * 2 * Z + Z + j]);
            *kl += 0.5 * (mu * mu + sg * sg - 1.0) - log(sg);
        }
    }
    *ce /= N;
    *kl /= N;
    *H /= N;
}

static double term_value(const ib_loss *l, const char *name)
{
    const ib_loss_term *t = ib_loss_term_find(l, name);
    CHECK_MSG(t != NULL, "no term '%s'", name);
    return t ? ib_node_scalar(t->node) : NAN;
}

/* lambda and cap for the three regimes; H of the batch is about 1.1 nats */
static void vub_case(float cap, const char *regime)
{
    ib_objective o = ib_objective_default();
    o.beta = 0.3f;
    o.entropy_weight = 0.7f;
    o.entropy_cap = cap;
    vub_graph v;
    vub_build(&v, &o);
    CHECK_OK(ib_graph_forward(v.g));
    double ce, kl, H;
    reference(&v, &ce, &kl, &H);
    double bonus = cap > 0 ? fmin(H, cap) : H;
    double want = ce + 0.3 * kl - 0.7 * bonus;
    /* float32 sums of a few O(1) numbers: 1e-6 relative is the rounding */
    CHECK_CLOSE(ib_node_scalar(v.loss.total), want, 2e-6, 1e-6);
    CHECK_CLOSE(term_value(&v.loss, "ce"), ce, 2e-6, 1e-7);
    CHECK_CLOSE(term_value(&v.loss, "kl1"), kl, 2e-6, 1e-7);
    CHECK_CLOSE(term_value(&v.loss, "entropy"), H, 2e-6, 1e-7);
    CHECK_MSG(H > 0.5 && H < 1.386, "%s: batch entropy %g outside the range the cases assume", regime, H);
    /* the terms and their weights sum to the total */
    double sum = 0;
    for (int t = 0; t < v.loss.n_terms; t++)
        sum += v.loss.terms[t].weight * ib_node_scalar(v.loss.terms[t].node);
    CHECK_CLOSE(sum, ib_node_scalar(v.loss.total), 2e-6, 1e-6);
    if (cap > 0) {
        CHECK_CLOSE(term_value(&v.loss, "entropy_capped"), bonus, 2e-6, 1e-7);
        CHECK(ib_loss_term_find(&v.loss, "entropy")->weight == 0.0f);
        CHECK(ib_loss_term_find(&v.loss, "entropy_capped")->weight == -0.7f);
    } else {
        CHECK(ib_loss_term_find(&v.loss, "entropy_capped") == NULL);
        CHECK(ib_loss_term_find(&v.loss, "entropy")->weight == -0.7f);
    }
    /* softmax, softplus and the KL are smooth (the cap sits far from H):
     * central differences with eps 1e-2 agree to ~1e-3, as for the other
     * smooth losses of the suite */
    ib_test_gradcheck(v.g, v.loss.total, 2, (ib_node *[]){v.logits, v.h}, 1e-2f, 3e-3);
    vub_free(&v);
}

static void test_vub_below_cap(void) { vub_case(3.0f, "below the cap"); }  /* H < cap: bonus = H */
static void test_vub_above_cap(void) { vub_case(0.25f, "above the cap"); } /* H > cap: bonus = cap */
static void test_svib_uncapped(void) { vub_case(0.0f, "uncapped"); }      /* cap <= 0: bonus = H */

/* Without the bonus (Deep VIB) the entropy is logged with weight 0: its
 * value is the batch's H and the total is CE + beta KL alone. */
static void test_vib_logs_entropy(void)
{
    ib_objective o = ib_objective_default();
    o.beta = 0.3f;
    vub_graph v;
    vub_build(&v, &o);
    CHECK_OK(ib_graph_forward(v.g));
    double ce, kl, H;
    reference(&v, &ce, &kl, &H);
    CHECK_CLOSE(term_value(&v.loss, "entropy"), H, 2e-6, 1e-7);
    CHECK(ib_loss_term_find(&v.loss, "entropy")->weight == 0.0f);
    CHECK(ib_loss_term_find(&v.loss, "entropy_capped") == NULL);
    CHECK_CLOSE(ib_node_scalar(v.loss.total), ce + 0.3 * kl, 2e-6, 1e-6);
    vub_free(&v);
}

/* Above the cap the bonus has exactly zero gradient: the gradient of the
 * total w.r.t. the logits is the CE's alone, bit for bit. */
static void test_vub_gradient_zero_above_cap(void)
{
    ib_objective o = ib_objective_default();
    o.beta = 0.3f;
    vub_graph plain, capped;
    vub_build(&plain, &o);
    o.entropy_weight = 0.7f;
    o.entropy_cap = 0.25f;
    vub_build(&capped, &o);
    vub_graph *both[2] = {&plain, &capped};
    for (int k = 0; k < 2; k++) {
        CHECK_OK(ib_graph_forward(both[k]->g));
        CHECK_OK(ib_graph_backward(both[k]->g, both[k]->loss.total));
    }
    const float *a = ib_node_grad(plain.logits), *b = ib_node_grad(capped.logits);
    for (int i = 0; i < N * K; i++)
        CHECK_MSG(a[i] == b[i], "logit %d: gradient %.9g without the bonus, %.9g above the cap", i, a[i], b[i]);
    vub_free(&plain);
    vub_free(&capped);
}

/* ---- terms, registry, configuration ---- */

static void test_loss_terms_and_registry(void)
{
    ib_params *p = ib_params_new(1);
    ib_graph *g = ib_graph_new(p);
    ib_node *a = ib_input(g, "a", 1, (int64_t[]){1}), *v = ib_input(g, "v", 1, (int64_t[]){3});
    ib_loss l;
    memset(&l, 0, sizeof l);
    CHECK_OK(ib_loss_add_term(g, &l, "a", a, 2.0f));
    CHECK_EQ_INT(ib_loss_add_term(g, &l, "a", a, 1.0f), IB_ERR_ARG); /* twice */
    CHECK(strstr(ib_graph_error(g), "added twice") != NULL);
    ib_graph_free(g);
    g = ib_graph_new(p);
    memset(&l, 0, sizeof l);
    v = ib_input(g, "v", 1, (int64_t[]){3});
    CHECK_EQ_INT(ib_loss_add_term(g, &l, "v", v, 1.0f), IB_ERR_ARG); /* not a scalar */
    ib_graph_free(g);
    g = ib_graph_new(p);
    memset(&l, 0, sizeof l);
    a = ib_input(g, "a", 1, (int64_t[]){1});
    CHECK_EQ_INT(ib_loss_add_term(g, &l, "a\"b", a, 1.0f), IB_ERR_ARG); /* not a JSON-safe word */
    ib_graph_free(g);
    ib_params_free(p);

    CHECK(ib_method_find("vib") == ib_method_at(0));
    CHECK(ib_method_find("vub") != NULL);
    CHECK(ib_method_find("nope") == NULL);
    CHECK_MSG(strstr(ib_last_error(), "vib, vub") != NULL, "%s", ib_last_error());
    for (int i = 0; ib_method_at(i); i++)
        CHECK_OK(ib_method_validate(ib_method_at(i), NULL));
    /* VUB needs its lambda; the configuration names the objective */
    ib_train_config c = ib_train_config_default();
    CHECK(strcmp(c.method, "vib") == 0);
    snprintf(c.method, sizeof c.method, "vub");
    CHECK_EQ_INT(ib_train_config_check(&c), IB_ERR_ARG);
    CHECK(strstr(ib_last_error(), "entropy weight") != NULL);
    c.objective.entropy_weight = 1.0f;
    CHECK_OK(ib_train_config_check(&c));
    snprintf(c.method, sizeof c.method, "imb?");
    CHECK_EQ_INT(ib_train_config_check(&c), IB_ERR_ARG);
    CHECK(strstr(ib_last_error(), "unknown objective 'imb?'") != NULL);
    ib_train_config d;
    CHECK_OK(ib_train_config_from_json("{\"objective\": \"vub\", \"entropy_weight\": 1}", &d));
    CHECK(strcmp(d.method, "vub") == 0);
}

/* ---- through the trainer ---- */

static char data_dir[1024], model_path[1024];

static void setup_once(void)
{
    if (data_dir[0])
        return;
    ib_test_blob_dir("blobs", 1000, 400, 99, 170.0f, 20.0f, data_dir, sizeof data_dir);
    ib_test_write_text("tiny-vib.ibm", IB_TEST_TINY_VIB(64), model_path, sizeof model_path);
}

static ib_train_config small_config(const char *run)
{
    setup_once();
    ib_train_config c = ib_test_train_config(model_path, data_dir, run);
    c.epochs = 4;
    c.batch_size = 50;
    c.eval_batch_size = 100;
    c.optim.lr = 3e-3f;
    c.eval_samples = 4;
    c.ema_decay = 0.9f;
    return c;
}

/* The metrics.jsonl lines of a run (at most 16). */
static int read_metrics(const char *dir, cJSON **lines)
{
    char path[1200], buf[1 << 14];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    CHECK_MSG(f != NULL, "cannot open %s", path);
    int n = 0;
    while (f && n < 16 && fgets(buf, sizeof buf, f))
        lines[n++] = cJSON_Parse(buf);
    if (f)
        fclose(f);
    return n;
}

static double number(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    CHECK_MSG(cJSON_IsNumber(v), "no number '%s'", key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static double summary_acc(const char *dir)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/summary.json", dir);
    FILE *f = fopen(path, "rb");
    CHECK_MSG(f != NULL, "cannot open %s", path);
    char buf[1 << 14];
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = 0;
    if (f)
        fclose(f);
    cJSON *o = cJSON_Parse(buf);
    double acc = number(o, "test_acc_avg");
    cJSON_Delete(o);
    return acc;
}

/* VUB trains through the trainer; every term reaches metrics.jsonl by name,
 * the CE and KL terms equal the keys they always had, and the terms
 * recombine into the loss. */
static void test_vub_run_logs_terms(void)
{
    ib_train_config c = small_config("vub");
    snprintf(c.method, sizeof c.method, "vub");
    c.objective.entropy_weight = 1.0f;
    c.objective.entropy_cap = 0.5f;
    c.epochs = 3;
    CHECK_OK(ib_train(&c, NULL));
    cJSON *lines[16];
    int n = read_metrics(c.out_dir, lines);
    CHECK_EQ_INT(n, 3);
    for (int e = 0; e < n; e++) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(lines[e], "train_terms");
        CHECK(cJSON_IsObject(t));
        CHECK_EQ_INT(cJSON_GetArraySize(t), 4);
        CHECK(number(t, "ce") == number(lines[e], "train_ce"));
        CHECK(number(t, "kl1") == cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(lines[e], "train_kl"), 0)->valuedouble);
        double H = number(t, "entropy"), capped = number(t, "entropy_capped");
        CHECK(capped <= 0.5 + 1e-6 && capped <= H + 1e-6);
        double beta = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(lines[e], "beta"), 0)->valuedouble;
        /* the epoch mean of a sum is the sum of the epoch means, up to float rounding */
        CHECK_CLOSE(number(lines[e], "train_loss"), number(t, "ce") + beta * number(t, "kl1") - capped, 1e-5, 1e-6);
        cJSON_Delete(lines[e]);
    }
    double acc = summary_acc(c.out_dir);
    CHECK_MSG(acc > 0.9, "VUB test accuracy %.3f (chance 0.25)", acc);
}

/* ---- a toy two-view method of the test's own ----
 * View 2 is the negative of every image (255 - p): the same example seen
 * another way.  One backbone (the run's model, one set of parameters)
 * reads both views; the loss is the CE of each view plus an agreement
 * term pulling the two views' logits together.  A weight-0 term checks
 * that the views are aligned: under the symmetric input scaling the
 * negative of x is -x, so mean((x1 + x2)^2) is 0 only when batch j of
 * both views holds the same examples in the same order. */
static int views_made;

static ib_status negative_view(const ib_dataset *train, int v, uint64_t seed, ib_dataset **out)
{
    (void)seed;
    CHECK_EQ_INT(v, 1);
    views_made++;
    *out = ib_dataset_clone(train);
    if (!*out)
        return IB_ERR_NOMEM;
    int64_t n = train->n * train->c * train->h * train->w;
    for (int64_t i = 0; i < n; i++)
        (*out)->images[i] = (uint8_t)(255 - train->images[i]);
    return IB_OK;
}

static ib_status two_view_build(const ib_method_inputs *in, ib_loss *loss)
{
    ib_graph *g = in->g;
    CHECK_EQ_INT(in->n_views, 2);
    CHECK_EQ_INT(in->n_nets, 2);
    ib_node *l1 = in->out[0].logits, *l2 = in->out[1].logits;
    loss->ce = ib_cross_entropy(g, l1, in->y, 0.0f);
    ib_loss_add_term(g, loss, "ce", loss->ce, 1.0f);
    ib_loss_add_term(g, loss, "ce2", ib_cross_entropy(g, l2, in->y, 0.0f), 1.0f);
    ib_node *d = ib_sub(g, l1, l2);
    ib_loss_add_term(g, loss, "agree", ib_mean(g, ib_mul(g, d, d), IB_ALL), 0.1f);
    ib_node *s = ib_add(g, in->x[0], in->x[1]);
    ib_loss_add_term(g, loss, "misalign", ib_mean(g, ib_mul(g, s, s), IB_ALL), 0.0f);
    return ib_graph_status(g);
}

static const ib_method two_view = {
    .name = "two-view-toy",
    .summary = "CE of two views through one backbone + agreement of their logits",
    .needs = IB_METHOD_NEEDS_LABELS,
    .views = 2,
    .n_nets = 2,
    .nets = {{NULL, 0}, {NULL, 1}},
    .make_view = negative_view,
    .build = two_view_build,
};

static void test_two_view_method_trains(void)
{
    ib_train_config c = small_config("two-view");
    snprintf(c.method, sizeof c.method, "two-view-toy");
    c.norm = IB_NORM_SYMMETRIC;
    c.ema_decay = 0; /* the accuracy of the weights trained, not of an average */
    /* the registry does not know it: the caller's method is passed in */
    CHECK_EQ_INT(ib_train(&c, NULL), IB_ERR_ARG);
    views_made = 0;
    CHECK_OK(ib_train_with(&c, &two_view, NULL));
    CHECK_EQ_INT(views_made, 2); /* of the training set, and of the test set (evaluated as view 2) */
    /* one backbone: the checkpoint holds exactly the parameters of the
     * run's model built once (a tensor it cannot place is IB_ERR_MISMATCH) */
    ib_model *m = NULL;
    CHECK_OK(ib_model_load(model_path, &m));
    ib_params *p = ib_params_new(0);
    ib_graph *g = ib_graph_new(p);
    ib_model_out mo;
    CHECK_OK(ib_model_build(m, g, ib_input(g, "x", 4, (int64_t[]){1, 1, 8, 8}), NULL, &mo));
    char path[1200];
    snprintf(path, sizeof path, "%s/last.safetensors", c.out_dir);
    CHECK_OK(ib_checkpoint_load(path, p, NULL, NULL, NULL));
    ib_graph_free(g);
    ib_params_free(p);
    ib_model_free(m);
    cJSON *lines[16];
    int n = read_metrics(c.out_dir, lines);
    CHECK_EQ_INT(n, 4);
    double ce2_first = NAN, ce2_last = NAN, agree_first = NAN, agree_last = NAN;
    for (int e = 0; e < n; e++) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(lines[e], "train_terms");
        CHECK_EQ_INT(cJSON_GetArraySize(t), 4);
        CHECK(number(t, "ce") == number(lines[e], "train_ce"));
        CHECK_MSG(number(t, "misalign") < 1e-10, "epoch %d: the views are not aligned (mean (x1 + x2)^2 = %g)", e + 1,
                  number(t, "misalign"));
        CHECK_CLOSE(number(lines[e], "train_loss"), number(t, "ce") + number(t, "ce2") + 0.1 * number(t, "agree"),
                    1e-5, 1e-6);
        if (e == 0) {
            ce2_first = number(t, "ce2");
            agree_first = number(t, "agree");
        }
        ce2_last = number(t, "ce2");
        agree_last = number(t, "agree");
        cJSON_Delete(lines[e]);
    }
    /* the second view is learnt by the same backbone, and the views agree more */
    CHECK_MSG(ce2_last < 0.5 * ce2_first && ce2_last < 0.3, "view 2's CE %.3f -> %.3f", ce2_first, ce2_last);
    CHECK_MSG(agree_last < agree_first, "agreement %.4f -> %.4f", agree_first, agree_last);
    double acc = summary_acc(c.out_dir);
    CHECK_MSG(acc > 0.9, "two-view test accuracy %.3f (chance 0.25)", acc);
    /* a resume must be given the same method */
    CHECK_EQ_INT(ib_train_resume_with(c.out_dir, 5, ib_method_find("vib"), NULL), IB_ERR_ARG);
    CHECK_OK(ib_train_resume_with(c.out_dir, 5, &two_view, NULL));
}

int main(void)
{
    IB_RUN(test_vub_below_cap);
    IB_RUN(test_vub_above_cap);
    IB_RUN(test_svib_uncapped);
    IB_RUN(test_vib_logs_entropy);
    IB_RUN(test_vub_gradient_zero_above_cap);
    IB_RUN(test_loss_terms_and_registry);
    IB_RUN(test_vub_run_logs_terms);
    IB_RUN(test_two_view_method_trains);
    return ib_test_summary();
}
