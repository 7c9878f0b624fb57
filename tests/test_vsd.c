/*
 * test_vsd.c — variational distillation (docs/vsd.md): the model scope
 * that gives a second copy of a model its own parameters; the `vsdhead`
 * composite layer against its PyTorch twin (tests/ref/make_vsd_ref.py:
 * names, outputs, gradients); the distillation KL (0 for equal logits,
 * the double-precision KL of the softmaxes, no gradient to the teacher,
 * finite differences on the student side); the VSD, VCD and VML terms on
 * fixed logits (VCD pairs each student with the OTHER view's teacher, VML
 * is symmetric); aligned batches of two views across epochs; and the
 * methods through the trainer (above chance, shared vs separate
 * backbones, a two-view resume equal to an uninterrupted run, bad input).
 */
#include "test.h"

#include <cjson/cJSON.h>
#include <sys/stat.h>

static ib_model *parse(const char *text)
{
    ib_model *m = NULL;
    ib_status s = ib_model_parse(text, "t.ibm", &m);
    CHECK_MSG(s == IB_OK, "parse: %s", ib_last_error());
    return m;
}

/* ---- the model scope ---- */

static void test_scope_shared_and_separate(void)
{
    ib_model *m = parse("model s\ninput 1 2 3\nclasses 3\n\nflatten\nlinear 4 name=fc\nbatchnorm name=bn\nrelu\n"
                        "linear 3 name=out\n");
    ib_params *p = ib_params_new(0);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_input(g, "x", 4, (int64_t[]){2, 1, 2, 3});
    ib_node *x2 = ib_input(g, "x2", 4, (int64_t[]){2, 1, 2, 3});
    ib_model_out a, b, c;
    CHECK_OK(ib_model_build(m, g, x, NULL, &a));
    int one = ib_params_count(p);
    CHECK_EQ_INT(one, 8); /* fc.weight, fc.bias, bn.weight, .bias, .running_mean, .running_var, out.weight, .bias */
    CHECK_OK(ib_model_build(m, g, x2, NULL, &b)); /* shared: get-or-create by name */
    CHECK_EQ_INT(ib_params_count(p), one);
    CHECK_OK(ib_model_build_scoped(m, g, "view2", x2, NULL, &c)); /* separate */
    CHECK_EQ_INT(ib_params_count(p), 2 * one);
    for (int i = 0; i < one; i++) {
        char want[160];
        snprintf(want, sizeof want, "view2.%s", ib_params_name(p, i));
        CHECK_MSG(strcmp(ib_params_name(p, one + i), want) == 0, "scoped name %s, want %s", ib_params_name(p, one + i),
                  want);
    }
    CHECK_OK(ib_model_build_scoped(m, g, "", x2, NULL, &c)); /* "" is no scope */
    CHECK_EQ_INT(ib_params_count(p), 2 * one);
    CHECK_EQ_INT(ib_model_build_scoped(m, g, "a..b", x2, NULL, &c), IB_ERR_ARG);
    ib_graph_free(g);
    ib_params_free(p);
    ib_model_free(m);
}

/* ---- vsdhead against its PyTorch twin ---- */

#define TN 8 /* batch of the fixture */
#define TC 5 /* classes */
#define TK 6 /* zdim */

static ib_fixture *fx;

static void compare(const char *what, const float *got, const char *name, int64_t n)
{
    int64_t m = 0;
    const float *want = ib_fixture_get(fx, name, &m);
    CHECK_MSG(m == n, "%s: fixture has %lld values, ibnet %lld", what, (long long)m, (long long)n);
    double scale = 0;
    for (int64_t k = 0; k < n && k < m; k++)
        scale = fmax(scale, fabs(want[k]));
    ib_test_compare(what, got, want, n < m ? n : m, 1e-4, 1e-6 * scale + 1e-7);
}

static void set_input(ib_node *x, const char *name)
{
    int64_t n = 0;
    const float *v = ib_fixture_get(fx, name, &n);
    CHECK_EQ_INT(n, ib_node_numel(x));
    memcpy(ib_node_data(x), v, (size_t)n * sizeof(float));
}

static const char *head_text = "model vt\ninput 1 3 4\nclasses 5\n\nflatten\nvsdhead 5 zdim=6 hidden=16,8 p=0 name=head\n";

static void test_vsdhead_matches_torch(void)
{
    fx = ib_fixture_load("vsd.txt");
    ib_model *m = parse(head_text);
    /* the listing names and shapes every tensor as the PyTorch module does */
    ib_model_layer_info li;
    CHECK_OK(ib_model_layer(m, 1, &li));
    CHECK(strcmp(li.kind, "vsdhead") == 0 && li.bottleneck);
    int64_t want_params = 0;
    for (int j = 0; j < li.n_tensors; j++) {
        ib_model_tensor t;
        CHECK_OK(ib_model_layer_tensor(m, 1, j, &t));
        if (!t.trainable)
            continue;
        int64_t n = 0, numel = 1;
        ib_fixture_get(fx, t.name, &n);
        for (int d = 0; d < t.ndim; d++)
            numel *= t.shape[d];
        CHECK_MSG(n == numel, "%s: %lld values in the fixture, %lld listed", t.name, (long long)n, (long long)numel);
        want_params += numel;
    }
    CHECK_EQ_INT(ib_model_param_count(m), want_params);
    CHECK_EQ_INT(want_params, 5 * 12 + 5 + 16 * 12 + 16 + 32 + 8 * 16 + 8 + 16 + 12 * 8 + 12 + 3 * 6 + 3 + 6 + 5 * 3 + 5);
    int64_t bs[3];
    CHECK_EQ_INT(ib_model_bottleneck_shape(m, 0, bs), 1);
    CHECK_EQ_INT(bs[0], TK);

    ib_params *p = ib_params_new(0);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_input(g, "x", 4, (int64_t[]){TN, 1, 3, 4});
    ib_node *eps = ib_input(g, "eps", 2, (int64_t[]){TN, TK});
    ib_node *y = ib_input_labels(g, "y", TN);
    ib_model_out mo;
    CHECK_OK(ib_model_build(m, g, x, &eps, &mo));
    CHECK(mo.teacher_logits != NULL && mo.n_bottlenecks == 1);
    ib_node *loss = ib_add(g, ib_add(g, ib_cross_entropy(g, mo.teacher_logits, y, 0.0f), ib_cross_entropy(g, mo.logits, y, 0.0f)),
                           ib_scale(g, ib_distill_kl(g, mo.teacher_logits, mo.logits), 2.0f));
    ib_node *vsd = ib_distill_kl(g, mo.teacher_logits, mo.logits);
    CHECK_OK(ib_graph_compile(g));
    ib_graph_set_training(g, true);
    ib_graph_set_sampling(g, true);
    /* every trainable parameter of the store is one of the fixture's */
    for (int i = 0; i < ib_params_count(p); i++) {
        if (ib_params_kind(p, i) != IB_PARAM_TRAINABLE)
            continue;
        int64_t n = 0;
        const float *v = ib_fixture_get(fx, ib_params_name(p, i), &n);
        CHECK_EQ_INT(n, ib_params_numel(p, i));
        if (n == ib_params_numel(p, i))
            memcpy(ib_params_value(p, i), v, (size_t)n * sizeof(float));
    }
    set_input(x, "x");
    set_input(eps, "eps");
    int64_t ny = 0;
    const float *yv = ib_fixture_get(fx, "y", &ny);
    for (int64_t k = 0; k < ny && k < TN; k++)
        ib_node_labels(y)[k] = (int32_t)yv[k];
    CHECK_OK(ib_graph_forward(g));
    ib_params_zero_grad(p);
    CHECK_OK(ib_graph_backward(g, loss));
    compare("teacher logits", ib_node_data(mo.teacher_logits), "teacher", TN * TC);
    compare("student logits", ib_node_data(mo.logits), "student", TN * TC);
    compare("mu", ib_node_data(mo.bn[0].mu), "mu", TN * TK);
    compare("sigma", ib_node_data(mo.bn[0].sigma), "sigma", TN * TK);
    compare("kl", ib_node_data(mo.bn[0].kl), "kl", TN);
    compare("vsd", ib_node_data(vsd), "vsd", 1);
    compare("loss", ib_node_data(loss), "loss", 1);
    for (int i = 0; i < ib_params_count(p); i++) {
        if (ib_params_kind(p, i) != IB_PARAM_TRAINABLE)
            continue;
        char key[256];
        snprintf(key, sizeof key, "grad.%s", ib_params_name(p, i));
        compare(key, ib_params_grad(p, i), key, ib_params_numel(p, i));
    }
    ib_graph_free(g);
    ib_params_free(p);
    ib_model_free(m);
    ib_fixture_free(fx);
}

/* The head's forms: deterministic (z = the encoder's K outputs, KL 0), a
 * linear student, and the errors of the format. */
static void test_vsdhead_forms_and_errors(void)
{
    ib_model *m = parse("model d\ninput 1 3 4\nclasses 5\n\nflatten\n"
                        "vsdhead 5 zdim=4 hidden=7 deterministic=true student=linear name=h\n");
    CHECK_EQ_INT(ib_model_param_count(m), 5 * 12 + 5 + 7 * 12 + 7 + 14 + 4 * 7 + 4 + 5 * 4 + 5);
    ib_params *p = ib_params_new(0);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_input(g, "x", 4, (int64_t[]){3, 1, 3, 4});
    ib_model_out mo;
    CHECK_OK(ib_model_build(m, g, x, NULL, &mo));
    CHECK(ib_params_find(p, "h.student.fc.weight") >= 0 && ib_params_find(p, "h.encoder.fc1.weight") >= 0 &&
          ib_params_find(p, "h.encoder.fc2.weight") < 0);
    CHECK_OK(ib_graph_compile(g));
    ib_test_fill(ib_node_data(x), 36, -1, 1, 5);
    CHECK_OK(ib_graph_forward(g));
    for (int i = 0; i < 3; i++)
        CHECK(ib_node_data(mo.bn[0].kl)[i] == 0.0f);
    ib_graph_free(g);
    ib_params_free(p);
    /* the canonical text keeps every option */
    const char *text = ib_model_text(m);
    CHECK_MSG(text && strstr(text, "zdim=4 hidden=7 deterministic=true student=linear") != NULL, "%s", text);
    ib_model_free(m);

    ib_model *bad = NULL;
    CHECK_EQ_INT(ib_model_parse("model b\ninput 1 3 4\nclasses 5\n\nflatten\nvsdhead 5 zdim=6 name=h\nrelu\n", "b", &bad),
                 IB_ERR_FORMAT);
    CHECK(strstr(ib_last_error(), "must be the model's last layer") != NULL);
    CHECK_EQ_INT(ib_model_parse("model b\ninput 1 3 4\nclasses 5\n\nflatten\nvsdhead 5 hidden=10,,3\n", "b", &bad),
                 IB_ERR_FORMAT);
    CHECK_EQ_INT(ib_model_parse("model b\ninput 1 3 4\nclasses 5\n\nflatten\nvsdhead 5 hidden=1,2,3,4\n", "b", &bad),
                 IB_ERR_FORMAT);
    CHECK_EQ_INT(ib_model_parse("model b\ninput 1 3 4\nclasses 5\n\nvsdhead 5\n", "b", &bad), IB_ERR_FORMAT);
}

/* ---- the distillation KL ---- */

#define N 6
#define C 4

static double kl_ref(const float *t, const float *s, int n)
{
    double total = 0;
    for (int i = 0; i < n; i++) {
        double mt = -INFINITY, ms = -INFINITY, zt = 0, zs = 0;
        for (int c = 0; c < C; c++) {
            mt = fmax(mt, t[i * C + c]);
            ms = fmax(ms, s[i * C + c]);
        }
        for (int c = 0; c < C; c++) {
            zt += exp(t[i * C + c] - mt);
            zs += exp(s[i * C + c] - ms);
        }
        for (int c = 0; c < C; c++) {
            double pt = exp(t[i * C + c] - mt) / zt, ps = exp(s[i * C + c] - ms) / zs;
            total += pt * (log(pt) - log(ps));
        }
    }
    return total / n;
}

static void test_distill_kl(void)
{
    ib_params *p = ib_params_new(0);
    ib_graph *g = ib_graph_new(p);
    ib_node *t = ib_node_set_requires_grad(ib_input(g, "t", 2, (int64_t[]){N, C}), true);
    ib_node *s = ib_node_set_requires_grad(ib_input(g, "s", 2, (int64_t[]){N, C}), true);
    ib_node *kl = ib_distill_kl(g, t, s);
    CHECK_OK(ib_graph_compile(g));
    ib_test_fill(ib_node_data(t), N * C, -2, 2, 31);
    ib_test_fill(ib_node_data(s), N * C, -2, 2, 32);
    CHECK_OK(ib_graph_forward(g));
    double want = kl_ref(ib_node_data(t), ib_node_data(s), N);
    CHECK_CLOSE(ib_node_data(kl)[0], want, 1e-5, 1e-7);
    CHECK(want > 0.05); /* a real difference, so the comparison says something */
    /* no gradient reaches the teacher; the student's matches finite differences */
    CHECK_OK(ib_graph_backward(g, kl));
    for (int k = 0; k < N * C; k++)
        CHECK(ib_node_grad(t)[k] == 0.0f);
    ib_test_gradcheck(g, kl, 1, &s, 1e-2f, 2e-3);
    /* student = teacher: exactly 0 */
    memcpy(ib_node_data(s), ib_node_data(t), sizeof(float) * N * C);
    CHECK_OK(ib_graph_forward(g));
    CHECK(fabs(ib_node_data(kl)[0]) < 1e-7);
    ib_graph_free(g);
    ib_params_free(p);
}

/* The VSD term through the whole head: the gradient of KL(p(y|v) || p(y|z))
 * with respect to the teacher's parameters (which only v's prediction
 * depends on) is exactly 0, the encoder's and student's are not. */
static void test_vsd_term_spares_the_teacher(void)
{
    ib_model *m = parse(head_text);
    ib_params *p = ib_params_new(0);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_input(g, "x", 4, (int64_t[]){TN, 1, 3, 4});
    ib_model_out mo;
    CHECK_OK(ib_model_build(m, g, x, NULL, &mo));
    ib_node *vsd = ib_distill_kl(g, mo.teacher_logits, mo.logits);
    CHECK_OK(ib_graph_compile(g));
    ib_graph_set_training(g, true);
    ib_test_fill(ib_node_data(x), TN * 12, -1, 1, 41);
    CHECK_OK(ib_graph_forward(g));
    ib_params_zero_grad(p);
    CHECK_OK(ib_graph_backward(g, vsd));
    for (int i = 0; i < ib_params_count(p); i++) {
        if (ib_params_kind(p, i) != IB_PARAM_TRAINABLE)
            continue;
        double norm = 0;
        for (int64_t k = 0; k < ib_params_numel(p, i); k++)
            norm += fabs(ib_params_grad(p, i)[k]);
        bool teacher = strncmp(ib_params_name(p, i), "head.teacher.", 13) == 0;
        CHECK_MSG(teacher ? norm == 0 : norm > 0, "%s: |grad| %g", ib_params_name(p, i), norm);
    }
    ib_graph_free(g);
    ib_params_free(p);
    ib_model_free(m);
}

/* ---- the methods' terms on fixed logits ---- */

typedef struct fixed {
    ib_params *p;
    ib_graph *g;
    ib_node *t[2], *s[2], *y;
    ib_loss loss;
} fixed;

/* Teacher and student logits of two views as inputs, the method's terms
 * built on them (views swapped when swap). */
static void fixed_build(fixed *f, const char *method, bool swap)
{
    memset(f, 0, sizeof *f);
    f->p = ib_params_new(0);
    f->g = ib_graph_new(f->p);
    ib_method_inputs in = {0};
    in.g = f->g;
    for (int v = 0; v < 2; v++) {
        char a[8];
        snprintf(a, sizeof a, "t%d", v + 1);
        f->t[v] = ib_node_set_requires_grad(ib_input(f->g, a, 2, (int64_t[]){N, C}), true);
        snprintf(a, sizeof a, "s%d", v + 1);
        f->s[v] = ib_node_set_requires_grad(ib_input(f->g, a, 2, (int64_t[]){N, C}), true);
    }
    f->y = ib_input_labels(f->g, "y", N);
    const ib_method *m = ib_method_find(method);
    CHECK(m != NULL);
    in.n_views = m ? m->views : 1;
    in.n_nets = in.n_views;
    for (int k = 0; k < in.n_nets; k++) {
        int v = swap ? 1 - k : k;
        in.out[k].logits = f->s[v];
        in.out[k].teacher_logits = f->t[v];
    }
    in.y = f->y;
    ib_objective o = ib_objective_default();
    in.objective = &o;
    if (m)
        CHECK_OK(m->build(&in, &f->loss));
    CHECK_OK(ib_graph_compile(f->g));
    for (int v = 0; v < 2; v++) {
        ib_test_fill(ib_node_data(f->t[v]), N * C, -2, 2, 50 + v);
        ib_test_fill(ib_node_data(f->s[v]), N * C, -2, 2, 60 + v);
    }
    const int32_t labels[N] = {0, 3, 1, 2, 3, 1};
    memcpy(ib_node_labels(f->y), labels, sizeof labels);
    CHECK_OK(ib_graph_forward(f->g));
}

static void fixed_free(fixed *f)
{
    ib_graph_free(f->g);
    ib_params_free(f->p);
}

static double term(const fixed *f, const char *name)
{
    const ib_loss_term *t = ib_loss_term_find(&f->loss, name);
    CHECK_MSG(t != NULL, "no term %s", name);
    return t ? ib_node_data(t->node)[0] : NAN;
}

static void test_vsd_method_terms(void)
{
    fixed f;
    fixed_build(&f, "vsd", false);
    CHECK_CLOSE(term(&f, "vsd"), kl_ref(ib_node_data(f.t[0]), ib_node_data(f.s[0]), N), 1e-5, 1e-7);
    CHECK_EQ_INT(f.loss.n_terms, 3); /* ce, ce_v, vsd (no bottleneck here) */
    CHECK(ib_loss_term_find(&f.loss, "ce") && ib_loss_term_find(&f.loss, "ce_v"));
    CHECK(ib_loss_term_find(&f.loss, "vsd")->weight == 2.0f);
    /* the student side of the whole loss (the teacher's gradient is its CE's alone, by design) */
    ib_test_gradcheck(f.g, f.loss.total, 1, &f.s[0], 1e-2f, 2e-3);
    fixed_free(&f);
}

static void test_vcd_uses_the_other_views_teacher(void)
{
    fixed f;
    fixed_build(&f, "vcd", false);
    const float *t1 = ib_node_data(f.t[0]), *t2 = ib_node_data(f.t[1]), *s1 = ib_node_data(f.s[0]),
                *s2 = ib_node_data(f.s[1]);
    double cross = 0.5 * kl_ref(t2, s1, N) + 0.5 * kl_ref(t1, s2, N);
    double same = 0.5 * kl_ref(t1, s1, N) + 0.5 * kl_ref(t2, s2, N);
    CHECK_CLOSE(term(&f, "vcd"), cross, 1e-5, 1e-7);
    CHECK_MSG(fabs(cross - same) > 0.05, "the fixture cannot tell the pairings apart (%g vs %g)", cross, same);
    CHECK_CLOSE(term(&f, "vsd"), kl_ref(t1, s1, N), 1e-5, 1e-7);
    CHECK_CLOSE(term(&f, "vsd_2"), kl_ref(t2, s2, N), 1e-5, 1e-7);
    /* the teachers get no gradient from VCD; the students' match finite differences */
    const ib_loss_term *v = ib_loss_term_find(&f.loss, "vcd");
    CHECK_OK(ib_graph_backward(f.g, v->node));
    for (int k = 0; k < N * C; k++)
        CHECK(ib_node_grad(f.t[0])[k] == 0.0f && ib_node_grad(f.t[1])[k] == 0.0f);
    ib_test_gradcheck(f.g, v->node, 2, (ib_node *[]){f.s[0], f.s[1]}, 1e-2f, 2e-3);
    fixed_free(&f);
}

static void test_vml_symmetric(void)
{
    fixed a, b;
    fixed_build(&a, "vcd+vml", false);
    fixed_build(&b, "vcd+vml", true);
    CHECK_CLOSE(term(&a, "vml"), term(&b, "vml"), 1e-6, 1e-8);
    CHECK_CLOSE(term(&a, "vcd"), term(&b, "vcd"), 1e-6, 1e-8);
    CHECK(term(&a, "vml") > 0 && term(&a, "vml") < log(2.0));
    const ib_loss_term *v = ib_loss_term_find(&a.loss, "vml");
    ib_test_gradcheck(a.g, v->node, 2, (ib_node *[]){a.s[0], a.s[1]}, 1e-2f, 2e-3);
    ib_test_gradcheck(a.g, a.loss.total, 2, (ib_node *[]){a.s[0], a.s[1]}, 1e-2f, 2e-3);
    fixed_free(&a);
    fixed_free(&b);
}

/* ---- two views: aligned batches, the data sets ---- */

static char data_dir[1024], model_path[1024];

static void setup_once(void)
{
    if (data_dir[0])
        return;
    ib_test_blob_dir("blobs", 800, 300, 91, 170.0f, 20.0f, data_dir, sizeof data_dir);
    ib_test_write_text("tiny-vsd.ibm",
                       "model tiny-vsd\ninput 1 8 8\nclasses 4\n\nflatten\nlinear 32 name=fc1\nrelu\n"
                       "vsdhead 4 zdim=8 hidden=32 name=head\n", model_path, sizeof model_path);
}

/* Another view of the same examples: the negative image. */
static ib_status negative_view(const ib_dataset *train, int v, uint64_t seed, ib_dataset **out)
{
    (void)seed, (void)v;
    *out = ib_dataset_clone(train);
    if (!*out)
        return IB_ERR_NOMEM;
    int64_t n = train->n * train->c * train->h * train->w;
    for (int64_t i = 0; i < n; i++)
        (*out)->images[i] = (uint8_t)(255 - train->images[i]);
    return IB_OK;
}

/* Two batchers with one seed and configuration over two views of equal
 * size (augmentation on) give the same examples in every batch of every
 * epoch, and a pair started at a later epoch (a resume) the same as an
 * uninterrupted pair. */
static void test_aligned_batches(void)
{
    setup_once();
    char dir[1100];
    snprintf(dir, sizeof dir, "idx:%s", data_dir);
    ib_dataset *d1 = NULL, *d2 = NULL;
    CHECK_OK(ib_dataset_open(dir, "train", NULL, NULL, &d1));
    CHECK_OK(negative_view(d1, 1, 0, &d2));
    /* crop_pad 0: zero padding would be -1 in both views, not a negative */
    ib_batcher_config bc = {.batch_size = 64, .seed = 7, .shuffle = true, .norm = IB_NORM_SYMMETRIC, .hflip = true};
    ib_batcher *a1, *a2, *r1, *r2;
    CHECK_OK(ib_batcher_new(d1, &bc, &a1));
    CHECK_OK(ib_batcher_new(d2, &bc, &a2));
    CHECK_OK(ib_batcher_new(d1, &bc, &r1));
    CHECK_OK(ib_batcher_new(d2, &bc, &r2));
    int64_t sz = 64 * 64;
    float *x1 = malloc(sizeof(float) * (size_t)sz), *x2 = malloc(sizeof(float) * (size_t)sz);
    float *x3 = malloc(sizeof(float) * (size_t)sz);
    int32_t y1[64], y2[64], y3[64];
    int batches = 0;
    for (int64_t e = 0; e < 3; e++) {
        ib_batcher_epoch(a1, e);
        ib_batcher_epoch(a2, e);
        if (e == 2) { /* the "resumed" pair starts here */
            ib_batcher_epoch(r1, e);
            ib_batcher_epoch(r2, e);
        }
        int64_t c1, c2;
        while (ib_batcher_next(a1, x1, y1, &c1)) {
            CHECK(ib_batcher_next(a2, x2, y2, &c2));
            CHECK_EQ_INT(c1, c2);
            CHECK(memcmp(y1, y2, sizeof(int32_t) * (size_t)c1) == 0);
            CHECK(memcmp(ib_batcher_indices(a1), ib_batcher_indices(a2), sizeof(int64_t) * (size_t)c1) == 0);
            /* the same crop and flip: the negative view is exactly -x under the symmetric scaling */
            for (int64_t k = 0; k < c1 * 64; k += 97)
                CHECK_CLOSE(x1[k], -x2[k], 1e-5, 1e-5);
            if (e == 2) {
                CHECK(ib_batcher_next(r1, x3, y3, NULL));
                CHECK(memcmp(y1, y3, sizeof(int32_t) * (size_t)c1) == 0 && memcmp(x1, x3, sizeof(float) * (size_t)c1 * 64) == 0);
                CHECK(ib_batcher_next(r2, x3, y3, NULL));
                CHECK(memcmp(y2, y3, sizeof(int32_t) * (size_t)c1) == 0);
            }
            batches++;
        }
        CHECK(!ib_batcher_next(a2, x2, y2, NULL));
    }
    CHECK_EQ_INT(batches, 3 * 13);
    free(x1);
    free(x2);
    free(x3);
    ib_batcher_free(a1);
    ib_batcher_free(a2);
    ib_batcher_free(r1);
    ib_batcher_free(r2);
    ib_dataset_free(d1);
    ib_dataset_free(d2);
}

/* cifar10-2view's builder: view 1 the image, view 2 its luma in three
 * equal channels (noise 0: exactly the rounded luma), labels kept. */
static void test_color_grey_views(void)
{
    ib_dataset *d = ib_dataset_new("c", 3, 3, 2, 2, 2);
    for (int i = 0; i < 3 * 12; i++)
        d->images[i] = (uint8_t)(i * 7);
    for (int i = 0; i < 3; i++)
        d->labels[i] = i % 2;
    ib_dataset *v1, *v2;
    CHECK_OK(ib_color_grey_two_view(d, 0.0f, 1, &v1, &v2));
    CHECK(memcmp(v1->images, d->images, 36) == 0);
    for (int i = 0; i < 3; i++)
        for (int t = 0; t < 4; t++) {
            const uint8_t *p = d->images + i * 12;
            double luma = 0.299 * p[t] + 0.587 * p[4 + t] + 0.114 * p[8 + t];
            const uint8_t *q = v2->images + i * 12;
            CHECK(fabs(q[t] - luma) <= 0.51 && q[t] == q[4 + t] && q[t] == q[8 + t]);
            CHECK_EQ_INT(v2->labels[i], d->labels[i]);
        }
    ib_dataset_free(v1);
    ib_dataset_free(v2);
    CHECK_OK(ib_color_grey_two_view(d, 0.1f, 1, &v1, &v2));
    int differ = 0;
    for (int i = 0; i < 36; i += 12)
        differ += v2->images[i] != v2->images[i + 1];
    CHECK(memcmp(v2->images, v2->images + 4, 4) == 0);
    (void)differ;
    ib_dataset_free(v1);
    ib_dataset_free(v2);
    CHECK_EQ_INT(ib_color_grey_two_view(d, -1.0f, 1, &v1, &v2), IB_ERR_ARG);
    ib_dataset_free(d);
    CHECK_EQ_INT(ib_dataset_spec_views("noisy-mnist-2view"), 2);
    CHECK_EQ_INT(ib_dataset_spec_views("cifar10-2view"), 2);
    CHECK_EQ_INT(ib_dataset_spec_views("mnist"), 1);
    ib_dataset *o = NULL;
    CHECK_EQ_INT(ib_dataset_open_view("mnist", "train", 1, NULL, NULL, &o), IB_ERR_ARG);
    CHECK_EQ_INT(ib_dataset_open_view("noisy-mnist-2view", "train", 2, NULL, NULL, &o), IB_ERR_ARG);
}

/* ---- through the trainer ---- */

static ib_train_config small_config(const char *run, const char *method)
{
    setup_once();
    ib_train_config c = ib_test_train_config(model_path, data_dir, run);
    snprintf(c.method, sizeof c.method, "%s", method);
    c.epochs = 3;
    c.batch_size = 50;
    c.eval_batch_size = 100;
    c.optim.lr = 3e-3f;
    c.eval_samples = 4;
    c.ema_decay = 0;
    c.objective.beta = 0;
    return c;
}

static double summary_number(const char *dir, const char *key)
{
    char path[1200], buf[1 << 14];
    snprintf(path, sizeof path, "%s/summary.json", dir);
    FILE *f = fopen(path, "rb");
    CHECK_MSG(f != NULL, "cannot open %s", path);
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = 0;
    if (f)
        fclose(f);
    cJSON *o = cJSON_Parse(buf);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    double r = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    cJSON_Delete(o);
    return r;
}

/* The last line's train_terms has every name of want. */
static void check_terms(const char *dir, const char *const *want, int n_want)
{
    char path[1200], line[1 << 14], last[1 << 14] = "";
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    while (f && fgets(line, sizeof line, f))
        memcpy(last, line, sizeof last);
    if (f)
        fclose(f);
    cJSON *m = cJSON_Parse(last);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(m, "train_terms");
    CHECK_EQ_INT(cJSON_GetArraySize(t), n_want);
    for (int k = 0; k < n_want; k++)
        CHECK_MSG(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(t, want[k])), "no term %s", want[k]);
    cJSON_Delete(m);
}

static void test_vsd_trains(void)
{
    ib_train_config c = small_config("vsd", "vsd");
    CHECK_OK(ib_train(&c, NULL));
    check_terms(c.out_dir, (const char *[]){"ce", "kl1", "ce_v", "vsd"}, 4);
    double acc = summary_number(c.out_dir, "test_acc_avg");
    CHECK_MSG(acc > 0.8, "VSD test accuracy %.3f (chance 0.25)", acc);
}

/* Parameters of the checkpoint at path: how many tensors of it the run's
 * model built once does not take (the view2.* copy of separate views). */
static int unused_tensors(const char *dir)
{
    ib_model *m = NULL;
    CHECK_OK(ib_model_load(model_path, &m));
    ib_params *p = ib_params_new(0);
    ib_graph *g = ib_graph_new(p);
    ib_model_out mo;
    CHECK_OK(ib_model_build(m, g, ib_input(g, "x", 4, (int64_t[]){1, 1, 8, 8}), NULL, &mo));
    char path[1200];
    snprintf(path, sizeof path, "%s/last.safetensors", dir);
    ib_checkpoint_partial r;
    CHECK_OK(ib_checkpoint_load_partial(path, p, NULL, &r));
    int unused = r.n_unused;
    CHECK_EQ_INT(r.n_kept, 0);
    ib_checkpoint_partial_free(&r);
    ib_graph_free(g);
    ib_params_free(p);
    ib_model_free(m);
    return unused;
}

/* View 2 of the test set (here the method's negative of it) is evaluated
 * each epoch through view 2's network: metrics.jsonl and summary.json
 * carry test_view2_* beside test_*, and the summary's figures equal an
 * evaluation of last.safetensors on that view through the network
 * `ibnet eval --view 2` opens (its own with separate views). */
static void check_view2_figures(const ib_train_config *c, bool separate)
{
    /* above chance (a shared backbone learns the negative images more
     * slowly: 0.39 to 0.63 after 2 epochs, separate ones 0.83 to 0.85,
     * against 0.98 to 1.0 on view 1) */
    double acc2 = summary_number(c->out_dir, "test_view2_acc_avg");
    CHECK_MSG(acc2 > 0.3, "%s: view-2 test accuracy %.3f (chance 0.25)", c->out_dir, acc2);
    char path[1200], line[1 << 14];
    snprintf(path, sizeof path, "%s/metrics.jsonl", c->out_dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    int lines = 0;
    while (f && fgets(line, sizeof line, f)) {
        cJSON *m = cJSON_Parse(line);
        CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(m, "test_view2_acc_avg")));
        CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(m, "test_view2_nll_mean")));
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(m, "test_view2_kl")) == 1);
        cJSON_Delete(m);
        lines++;
    }
    if (f)
        fclose(f);
    CHECK_EQ_INT(lines, c->epochs);

    ib_net_options no = ib_net_options_default();
    no.batch_size = c->eval_batch_size;
    no.scope = separate ? "view2" : NULL;
    ib_net *net = NULL;
    snprintf(path, sizeof path, "%s/last.safetensors", c->out_dir);
    CHECK_OK(ib_net_open(path, &no, &net));
    ib_dataset *test = NULL, *neg = NULL;
    CHECK_OK(ib_dataset_open(c->dataset, "test", NULL, NULL, &test));
    CHECK_OK(negative_view(test, 1, c->seed, &neg));
    ib_node *kl[IB_MAX_BOTTLENECKS];
    int n_kl = ib_model_out_kl(ib_net_outputs(net), kl, NULL);
    ib_eval_result e;
    CHECK_OK(ib_evaluate(ib_net_graph(net), ib_net_input(net), ib_net_logits(net), n_kl, kl, neg,
                         ib_net_batcher_config(net), ib_net_eval_samples(net), ib_net_eval_seed(net), &e));
    CHECK_MSG(e.acc_avg == acc2 && e.nll_avg == summary_number(c->out_dir, "test_view2_nll_avg") &&
                  e.acc_mean == summary_number(c->out_dir, "test_view2_acc_mean"),
              "%s: view 2 evaluated again: acc %.6f (summary %.6f)", c->out_dir, e.acc_avg, acc2);
    /* view 1 differs: the figures are not view 1's written twice */
    CHECK(summary_number(c->out_dir, "test_nll_avg") != summary_number(c->out_dir, "test_view2_nll_avg"));
    ib_eval_result_free(&e);
    ib_dataset_free(neg);
    ib_dataset_free(test);
    ib_net_close(net);
}

static void test_two_view_methods_train(void)
{
    static const char *const methods[3] = {"vcd", "vml", "vcd+vml"};
    for (int k = 0; k < 3; k++)
        for (int sep = 0; sep < 2; sep++) {
            char run[64];
            snprintf(run, sizeof run, "%s-%s", methods[k], sep ? "separate" : "shared");
            ib_train_config c = small_config(run, methods[k]);
            c.separate_views = sep;
            c.epochs = 2;
            ib_method m = *ib_method_find(methods[k]);
            m.make_view = negative_view; /* the blobs have one view: the test makes the second */
            CHECK_OK(ib_train_with(&c, &m, NULL));
            double acc = summary_number(c.out_dir, "test_acc_avg");
            CHECK_MSG(acc > 0.8, "%s test accuracy %.3f (chance 0.25)", run, acc);
            /* shared: the checkpoint is the model once; separate: plus a view2.* copy of every tensor
             * (fc1 2; head: teacher 2, encoder fc1 2 + bn1 4 + out 2, student fc1 2 + bn1 4 + fc2 2 = 20) */
            CHECK_EQ_INT(unused_tensors(c.out_dir), sep ? 20 : 0);
            if (k == 2)
                check_terms(c.out_dir, (const char *[]){"ce", "kl1", "ce_2", "kl1_2", "ce_v", "vsd", "ce_v_2", "vsd_2", "vcd", "vml"}, 10);
            check_view2_figures(&c, sep);
        }
}

static volatile int stop_now;

static void stop_mid_epoch(void *ctx, const ib_train_progress *p)
{
    (void)ctx;
    if (p->epoch == 2 && p->batch == 7)
        stop_now = 1;
}

static void test_two_view_resume(void)
{
    ib_method m = *ib_method_find("vcd+vml");
    m.make_view = negative_view;
    ib_train_config a = small_config("straight2", "vcd+vml");
    a.separate_views = true;
    CHECK_OK(ib_train_with(&a, &m, NULL));
    ib_train_config b = small_config("resumed2", "vcd+vml");
    b.separate_views = true;
    stop_now = 0; /* stop inside epoch 2 (of 16 batches), then resume */
    ib_train_callbacks cb = {NULL, stop_mid_epoch, NULL, &stop_now, NULL};
    CHECK_OK(ib_train_with(&b, &m, &cb));
    CHECK_EQ_INT((int64_t)summary_number(b.out_dir, "steps"), 16 + 7);
    stop_now = 0;
    CHECK_OK(ib_train_resume_with(b.out_dir, 0, &m, NULL));
    int64_t na = 0, nb = 0;
    float *wa = ib_test_checkpoint_weights(a.out_dir, model_path, 1, 8, 8, true, &na),
          *wb = ib_test_checkpoint_weights(b.out_dir, model_path, 1, 8, 8, true, &nb);
    CHECK_EQ_INT(na, nb);
    int64_t first = -1;
    for (int64_t k = 0; k < na && first < 0; k++)
        if (wa[k] != wb[k])
            first = k;
    CHECK_MSG(first < 0, "the resumed two-view run's weights differ from scalar %lld of %lld", (long long)first,
              (long long)na);
    free(wa);
    free(wb);
}

/* ---- bad input: exit 2 before training ---- */

static void test_bad_input_exits_2(void)
{
    setup_once();
    char args[8192], err[4096], bad_model[1100], plain_model[1100];
    ib_test_write_text("not-last.ibm",
                       "model nl\ninput 1 8 8\nclasses 4\n\nflatten\nvsdhead 4 zdim=8 name=head\nrelu\n",
                       bad_model, sizeof bad_model);
    ib_test_write_text("plain-vib.ibm",
                       "model pv\ninput 1 8 8\nclasses 4\n\nflatten\nlinear 16 name=fc\nvib 8 name=vib\n"
                       "linear 4 name=dec\n",
                       plain_model, sizeof plain_model);
    const char *out = ib_test_tmpdir();
    static const struct {
        const char *args, *says;
    } cases[] = {
        {"--objective vcd --dataset idx:%s", "needs a two-view data set"},
        {"--objective vml --dataset idx:%s", "needs a two-view data set"},
        {"--objective vsd --dataset noisy-mnist-2view", "has two views"},
        {"--objective vib --dataset cifar10-2view", "has two views"},
        {"--objective vsd --vsd-weight -1 --dataset idx:%s", "--vsd-weight must be"},
        {"--objective vcd --vcd-weight -0.5 --dataset noisy-mnist-2view", "--vcd-weight must be"},
        {"--objective vml --vml-weight -2 --dataset noisy-mnist-2view", "--vml-weight must be"},
        {"--objective vsd --separate-views --dataset idx:%s", "--separate-views needs"},
        {"--objective vsd --model-file-not-last", "must be the model's last layer"},
        {"--objective vsd --model-file-plain --epochs 1", "vsdhead"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char a[4096];
        if (strstr(cases[k].args, "--model-file-not-last"))
            snprintf(a, sizeof a, "--objective vsd --dataset idx:%s --model %s", data_dir, bad_model);
        else if (strstr(cases[k].args, "--model-file-plain"))
            snprintf(a, sizeof a, "--objective vsd --dataset idx:%s --model %s --epochs 1", data_dir, plain_model);
        else
            snprintf(a, sizeof a, cases[k].args, data_dir);
        bool dry = k + 2 < sizeof cases / sizeof cases[0]; /* the last two need the model read and built */
        snprintf(args, sizeof args, "train %s %s --out %s/bad%zu --train-limit 100 --test-limit 100", a,
                 dry ? "--dry-run" : "", out, k);
        int rc = ib_test_run_cli(args, &(ib_test_cli){.err = err, .err_len = sizeof err, .all_err = true});
        CHECK_MSG(rc == 2 && strstr(err, cases[k].says), "'%s' exited %d: %s", args, rc, err);
    }
}

/* ---- retrieval on a hand-computed fixture ----
 * Gallery g0 (1, .1) id 0, g1 (.9, .5) id 1, g2 (0, 1) id 1, g3 (-1, 0)
 * id 0, g4 (.2, 1) id 0, g5 (0, -1) id 1.  Rankings by cosine (ties by
 * index: g2 before g5 for q0):
 *   q0 (1, 0) id 0:  g0 g1 g4 g2 g5 g3 -> matches at 1, 3, 6:
 *                    AP = (1/1 + 2/3 + 3/6) / 3 = 0.72222, rank-1 hit
 *   q1 (0, 1) id 0:  g2 g4 g1 g0 g3 g5 -> matches at 2, 4, 5:
 *                    AP = (1/2 + 2/4 + 3/5) / 3 = 0.53333, rank-1 miss, rank-5 hit
 *   q2 (.5, -1) id 2: no match: left out
 *   q3 (0, -1) id 1: g5 g3 g0 g1 g4 g2 -> matches at 1, 4, 6:
 *                    AP = (1 + 2/4 + 3/6) / 3 = 0.66667, rank-1 hit
 * So 3 queries, rank-1 2/3, rank-5 1, mAP (0.72222 + 0.53333 + 0.66667) / 3 = 0.64074. */
static void test_retrieval_fixture(void)
{
    const float g[12] = {1, 0.1f, 0.9f, 0.5f, 0, 1, -1, 0, 0.2f, 1, 0, -1};
    const int64_t gid[6] = {0, 1, 1, 0, 0, 1};
    const float q[8] = {1, 0, 0, 1, 0.5f, -1, 0, -1};
    const int64_t qid[4] = {0, 0, 2, 1};
    ib_retrieval r;
    CHECK_OK(ib_retrieval_eval(q, qid, 4, g, gid, 6, 2, false, &r));
    CHECK_EQ_INT(r.queries, 3);
    CHECK_EQ_INT(r.gallery, 6);
    CHECK_CLOSE(r.rank1, 2.0 / 3.0, 1e-12, 1e-12);
    CHECK_CLOSE(r.rank5, 1.0, 1e-12, 1e-12);
    CHECK_CLOSE(r.map, (13.0 / 18.0 + 8.0 / 15.0 + 2.0 / 3.0) / 3.0, 1e-9, 1e-12);
    /* scale does not matter to a cosine */
    float q2[8];
    for (int k = 0; k < 8; k++)
        q2[k] = 3.5f * q[k];
    ib_retrieval r2;
    CHECK_OK(ib_retrieval_eval(q2, qid, 4, g, gid, 6, 2, false, &r2));
    CHECK(r2.map == r.map && r2.rank1 == r.rank1);
    /* a set searched against itself leaves each item out of its own ranking:
     * (1, 0) and (1, .1) find each other first; (0, 1) id 1 has no match left */
    const float s[6] = {1, 0, 1, 0.1f, 0, 1};
    const int64_t sid[3] = {0, 0, 1};
    CHECK_OK(ib_retrieval_eval(s, sid, 3, s, sid, 3, 2, true, &r));
    CHECK_EQ_INT(r.queries, 2);
    CHECK(r.rank1 == 1.0 && r.map == 1.0);
    CHECK_OK(ib_retrieval_eval(s, sid, 3, s, sid, 3, 2, false, &r));
    CHECK_EQ_INT(r.queries, 3);
    const int64_t none[3] = {5, 6, 7};
    CHECK_EQ_INT(ib_retrieval_eval(s, none, 3, s, sid, 3, 2, false, &r), IB_ERR_ARG);
}

/* ibnet eval on two-view checkpoints: a --separate-views checkpoint opens
 * (view 1's network, or view 2's under its scope), a shared one has no
 * view2 copy, and --retrieval prints its figures (the blobs have one view:
 * the test set against itself). Runs of test_two_view_methods_train. */
static void test_eval_two_view_checkpoints(void)
{
    char sep[1200], shared[1200], args[4096], err[4096];
    ib_test_cli to_err = {.err = err, .err_len = sizeof err, .all_err = true};
    snprintf(sep, sizeof sep, "%s/vcd+vml-separate/best.safetensors", ib_test_tmpdir());
    snprintf(shared, sizeof shared, "%s/vcd+vml-shared/best.safetensors", ib_test_tmpdir());
    ib_net_options o = ib_net_options_default();
    ib_net *n = NULL;
    CHECK_OK(ib_net_open(sep, &o, &n));
    ib_net_close(n);
    o.scope = "view2";
    CHECK_OK(ib_net_open(sep, &o, &n));
    CHECK(ib_params_find(ib_net_params(n), "view2.fc1.weight") >= 0);
    ib_net_close(n);
    CHECK_EQ_INT(ib_net_open(shared, &o, &n), IB_ERR_MISMATCH);
    CHECK(strstr(ib_last_error(), "--separate-views") != NULL);
    const char *const ckpts[2] = {sep, shared};
    for (int k = 0; k < 2; k++) {
        snprintf(args, sizeof args, "eval %s --retrieval --json --data %s --no-hash", ckpts[k], data_dir);
        const char *build = getenv("IBNET_BUILD_DIR");
        char cmd[8192], out[1 << 14];
        snprintf(cmd, sizeof cmd, "%s/ibnet %s", build ? build : "build", args);
        FILE *f = popen(cmd, "r");
        size_t got = f ? fread(out, 1, sizeof out - 1, f) : 0;
        out[got] = 0;
        int st = f ? pclose(f) : -1;
        CHECK_MSG(st == 0, "'%s' failed", args);
        cJSON *j = cJSON_Parse(out);
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "retrieval");
        CHECK_MSG(cJSON_IsObject(r), "no retrieval in %s", out);
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(r, "queries"), *r1 = cJSON_GetObjectItemCaseSensitive(r, "rank1");
        CHECK(cJSON_IsNumber(q) && q->valuedouble == 300);
        CHECK_MSG(cJSON_IsNumber(r1) && r1->valuedouble > 0.8, "rank-1 %g", cJSON_IsNumber(r1) ? r1->valuedouble : -1);
        cJSON_Delete(j);
    }
    /* a one-view set has no view 2 */
    snprintf(args, sizeof args, "eval %s --view 2", sep);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_err), 2);
    snprintf(args, sizeof args, "eval %s --view 2 --retrieval", sep);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_err), 2);
}

int main(void)
{
    ib_test_run("scope_shared_and_separate", test_scope_shared_and_separate);
    ib_test_run("vsdhead_matches_torch", test_vsdhead_matches_torch);
    ib_test_run("vsdhead_forms_and_errors", test_vsdhead_forms_and_errors);
    ib_test_run("distill_kl", test_distill_kl);
    ib_test_run("vsd_term_spares_the_teacher", test_vsd_term_spares_the_teacher);
    ib_test_run("vsd_method_terms", test_vsd_method_terms);
    ib_test_run("vcd_uses_the_other_views_teacher", test_vcd_uses_the_other_views_teacher);
    ib_test_run("vml_symmetric", test_vml_symmetric);
    ib_test_run("retrieval_fixture", test_retrieval_fixture);
    ib_test_run("aligned_batches", test_aligned_batches);
    ib_test_run("color_grey_views", test_color_grey_views);
    ib_test_run("vsd_trains", test_vsd_trains);
    ib_test_run("two_view_methods_train", test_two_view_methods_train);
    ib_test_run("two_view_resume", test_two_view_resume);
    ib_test_run("bad_input_exits_2", test_bad_input_exits_2);
    ib_test_run("eval_two_view_checkpoints", test_eval_two_view_checkpoints);
    return ib_test_summary();
}
