/*
 * test_imb.c — IMB / PIB: the bernoulli layer kind with particles, the
 * model's stochastic-layer list and path logits, and the imb objective.
 * The loss terms are recomputed here in double precision from the path
 * logits and the layers' probabilities, the gradient is checked by finite
 * differences through Gumbel-sigmoid layers and against the
 * straight-through formula, and a tiny Bernoulli network trains through
 * the trainer.
 */
#include "test.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ibnet.h"

/* 4 inputs (a 1x2x2 image), two Bernoulli layers (3 and 2 particles), 3 classes. */
static const char *two_layers(const char *grad)
{
    static char text[512];
    snprintf(text, sizeof text,
             "model imb-tiny\ninput 1 2 2\nclasses 3\nflatten\n"
             "bernoulli 5 particles=3 %s name=b1\nbernoulli 4 particles=2 %s name=b2\nlinear 3 name=out\n",
             grad, grad);
    return text;
}

typedef struct tiny {
    ib_model *m;
    ib_params *p;
    ib_graph *g;
    ib_node *x, *y;
    ib_model_out mo;
    ib_loss loss;
} tiny;

enum { N = 2 };

static void tiny_build(tiny *t, const char *text, const ib_objective *o, uint64_t seed)
{
    memset(t, 0, sizeof *t);
    CHECK_OK(ib_model_parse(text, "tiny", &t->m));
    t->p = ib_params_new(seed);
    t->g = ib_graph_new(t->p);
    t->x = ib_node_set_requires_grad(ib_input(t->g, "x", 4, (int64_t[]){N, 1, 2, 2}), true);
    t->y = ib_input_labels(t->g, "y", N);
    CHECK_OK(ib_model_build(t->m, t->g, t->x, NULL, &t->mo));
    for (int l = 0; l < t->mo.n_stochastic; l++) {
        char a[80];
        snprintf(a, sizeof a, "%s.p", t->mo.st[l].name);
        ib_node_keep(ib_graph_find(t->g, a));
        ib_node_keep(t->mo.st[l].h);
        ib_node_keep(t->mo.st[l].kl);
    }
    ib_node_keep(t->mo.path_logits);
    ib_node_keep(t->mo.logits);
    const ib_method *imb = ib_method_find("imb");
    CHECK(imb != NULL);
    ib_method_inputs in = {.g = t->g, .n_views = 1, .x = {t->x}, .y = t->y, .n_nets = 1, .objective = o};
    in.out[0] = t->mo;
    CHECK_OK(imb->build(&in, &t->loss));
    CHECK_OK(ib_graph_compile(t->g));
    ib_test_fill(ib_node_data(t->x), N * 4, -2.0f, 2.0f, 11);
    int32_t *y = ib_node_labels(t->y);
    y[0] = 2;
    y[1] = 0;
}

static void tiny_free(tiny *t)
{
    ib_graph_free(t->g);
    ib_params_free(t->p);
    ib_model_free(t->m);
}

static double term(const ib_loss *l, const char *name)
{
    const ib_loss_term *t = ib_loss_term_find(l, name);
    CHECK_MSG(t != NULL, "no term '%s'", name);
    return t ? ib_node_scalar(t->node) : NAN;
}

/* log p(y | path) of every path, in double, from the path logits. */
static void path_logp(const tiny *t, double *lp)
{
    const float *z = ib_node_data(t->mo.path_logits);
    int64_t P = t->mo.paths, C = 3;
    const int32_t *y = ib_node_labels(t->y);
    for (int64_t r = 0; r < N * P; r++) {
        double m = -INFINITY, s = 0;
        for (int c = 0; c < C; c++)
            m = fmax(m, z[r * C + c]);
        for (int c = 0; c < C; c++)
            s += exp(z[r * C + c] - m);
        lp[r] = z[r * C + y[r / P]] - m - log(s);
    }
}

/* -E[log mean over the paths below layer l of p(y|path)], the paths of
 * each upstream particle being consecutive. */
static double relevance(const double *lp, int64_t rows, int64_t down)
{
    double total = 0;
    for (int64_t u = 0; u < rows / down; u++) {
        double mean = 0;
        for (int64_t d = 0; d < down; d++)
            mean += exp(lp[u * down + d]) / (double)down;
        total -= log(mean);
    }
    return total / (double)(rows / down);
}

static double sigmoid_d(double a) { return 1.0 / (1.0 + exp(-a)); }

/* Shapes, the particle-average logits and every term against double precision. */
static void test_terms_against_double(void)
{
    ib_objective o = ib_objective_default();
    o.n_gammas = 3;
    o.gammas[0] = 1.0f, o.gammas[1] = 0.5f, o.gammas[2] = 0.25f;
    o.n_betas = 2;
    o.betas[0] = 0.1f, o.betas[1] = 0.2f;
    tiny t;
    tiny_build(&t, two_layers("grad=st"), &o, 5);
    CHECK_EQ_INT(t.mo.n_stochastic, 2);
    CHECK_EQ_INT(t.mo.n_bottlenecks, 0);
    CHECK_EQ_INT(t.mo.paths, 6);
    CHECK_EQ_INT(ib_model_paths(t.m), 6);
    CHECK_EQ_INT(ib_model_stochastic_count(t.m), 2);
    CHECK(strcmp(t.mo.st[0].kind, "bernoulli") == 0 && strcmp(t.mo.st[1].name, "b2") == 0);
    CHECK_EQ_INT(t.mo.st[0].particles, 3);
    CHECK_EQ_INT(t.mo.st[0].upstream, 1);
    CHECK_EQ_INT(t.mo.st[1].upstream, 3);
    CHECK_EQ_INT(ib_node_dim(t.mo.path_logits, 0), N * 6);
    CHECK_EQ_INT(ib_node_dim(t.mo.logits, 0), N);
    CHECK_EQ_INT(ib_node_dim(t.mo.logits, 1), 3);
    CHECK_EQ_INT(ib_node_dim(t.mo.st[0].kl, 0), N);
    CHECK_EQ_INT(ib_node_dim(t.mo.st[1].kl, 0), N * 3);
    CHECK_EQ_INT(ib_node_dim(t.mo.st[1].h, 0), N * 6);
    CHECK_OK(ib_graph_forward(t.g));

    double lp[N * 6];
    path_logp(&t, lp);
    /* logits: log of the mean probability over each example's paths */
    const float *zl = ib_node_data(t.mo.logits), *zp = ib_node_data(t.mo.path_logits);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < 3; c++) {
            double mean = 0;
            for (int k = 0; k < 6; k++) {
                const float *r = zp + (n * 6 + k) * 3;
                double m = fmax(fmax(r[0], r[1]), r[2]);
                mean += exp(r[c] - m) / (exp(r[0] - m) + exp(r[1] - m) + exp(r[2] - m)) / 6;
            }
            CHECK_CLOSE(zl[n * 3 + c], log(mean), 1e-5, 1e-6);
        }
    /* gamma_0: -log of the mean over all 6 paths; gamma_2: the per-path CE */
    double rel0 = relevance(lp, N * 6, 6), rel1 = relevance(lp, N * 6, 2), rel2 = relevance(lp, N * 6, 1);
    CHECK_CLOSE(term(&t.loss, "rel0"), rel0, 1e-5, 1e-6);
    CHECK_CLOSE(term(&t.loss, "rel1"), rel1, 1e-5, 1e-6);
    CHECK_CLOSE(term(&t.loss, "rel2"), rel2, 1e-5, 1e-6);
    CHECK(rel0 <= rel1 + 1e-12 && rel1 <= rel2 + 1e-12); /* Jensen: fewer paths averaged, larger */
    double ce = 0;
    for (int r = 0; r < N * 6; r++)
        ce -= lp[r] / (N * 6);
    CHECK_CLOSE(rel2, ce, 1e-12, 0);

    /* KL of each layer to its learned prior sigmoid(w), per incoming row */
    double kl[2];
    for (int l = 0; l < 2; l++) {
        char a[80];
        snprintf(a, sizeof a, "%s.p", t.mo.st[l].name);
        const float *p = ib_node_data(ib_graph_find(t.g, a));
        snprintf(a, sizeof a, "%s.prior", t.mo.st[l].name);
        const float *w = ib_node_data(ib_graph_find(t.g, a));
        int64_t rows = N * t.mo.st[l].upstream, width = l == 0 ? 5 : 4;
        kl[l] = 0;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t u = 0; u < width; u++) {
                double pp = p[r * width + u], q = sigmoid_d(w[u]);
                kl[l] += (pp * log(pp / q) + (1 - pp) * log((1 - pp) / (1 - q))) / (double)rows;
            }
        CHECK(fabs(w[0]) <= 1.0f); /* truncated normal N(0, 0.5^2) at 2 sd */
    }
    CHECK_CLOSE(term(&t.loss, "kl1"), kl[0], 1e-5, 1e-6);
    CHECK_CLOSE(term(&t.loss, "kl2"), kl[1], 1e-5, 1e-6);
    CHECK_CLOSE(ib_node_scalar(t.loss.total), rel0 + 0.5 * rel1 + 0.25 * rel2 + 0.1 * kl[0] + 0.2 * kl[1], 1e-5,
                1e-6);
    CHECK(t.loss.ce == ib_loss_term_find(&t.loss, "rel0")->node);
    tiny_free(&t);
}

/* Defaults gamma = (1, 0, 0), beta = 0: only rel0 is optimised (the MLE);
 * with one particle per layer every relevance term is the per-path CE. */
static void test_defaults_and_one_particle(void)
{
    ib_objective o = ib_objective_default(); /* beta 0 */
    tiny t;
    tiny_build(&t, two_layers("grad=st"), &o, 6);
    CHECK_OK(ib_graph_forward(t.g));
    CHECK(ib_node_scalar(t.loss.total) == (float)term(&t.loss, "rel0"));
    CHECK(ib_loss_term_find(&t.loss, "rel1")->weight == 0.0f);
    CHECK(ib_loss_term_find(&t.loss, "kl2")->weight == 0.0f);
    tiny_free(&t);

    const char *one = "model one\ninput 1 2 2\nclasses 3\nflatten\nbernoulli 5 name=b1\nbernoulli 4 name=b2\nlinear 3\n";
    o.n_gammas = 3;
    o.gammas[0] = o.gammas[1] = o.gammas[2] = 1.0f;
    tiny_build(&t, one, &o, 7);
    CHECK_EQ_INT(t.mo.paths, 1);
    CHECK(t.mo.logits == t.mo.path_logits); /* no particles: the logits themselves */
    CHECK_OK(ib_graph_forward(t.g));
    double lp[N];
    path_logp(&t, lp);
    double ce = -(lp[0] + lp[1]) / N;
    CHECK_CLOSE(term(&t.loss, "rel0"), ce, 1e-5, 1e-6);
    CHECK_CLOSE(term(&t.loss, "rel1"), ce, 1e-5, 1e-6);
    CHECK_CLOSE(term(&t.loss, "rel2"), ce, 1e-5, 1e-6);
    tiny_free(&t);
}

/* Finite differences through Gumbel-sigmoid layers: the noise is held fixed
 * by the gradient check (one step), so the loss is smooth in everything. */
static void test_gradcheck_gumbel(void)
{
    ib_objective o = ib_objective_default();
    o.n_gammas = 3;
    o.gammas[0] = 1.0f, o.gammas[1] = 0.8f, o.gammas[2] = 1.0f;
    o.n_betas = 2;
    o.betas[0] = 0.3f, o.betas[1] = 0.2f;
    tiny t;
    tiny_build(&t, two_layers("grad=gumbel temp=0.7"), &o, 8);
    ib_node *wrt[] = {t.x, ib_graph_find(t.g, "b1.weight"), ib_graph_find(t.g, "b1.prior"),
                      ib_graph_find(t.g, "b2.weight"), ib_graph_find(t.g, "b2.prior"), ib_graph_find(t.g, "out.weight")};
    for (int k = 0; k < 6; k++)
        CHECK(wrt[k] != NULL);
    ib_test_gradcheck(t.g, t.loss.total, 6, wrt, 1e-2f, 5e-3);
    tiny_free(&t);
}

/* Gaussian particles (vib particles=M, IMB's Gaussian variant): the KL once
 * per incoming row, M samples per row; finite differences through it all. */
static void test_gaussian_particles(void)
{
    const char *text = "model g\ninput 1 2 2\nclasses 3\nflatten\nlinear 8 name=enc\nvib 4 particles=3 name=vib\n"
                       "bernoulli 5 particles=2 grad=gumbel temp=0.5 name=b\nlinear 3 name=out\n";
    ib_objective o = ib_objective_default();
    o.n_gammas = 3;
    o.gammas[0] = 1.0f, o.gammas[1] = 0.5f, o.gammas[2] = 0.3f;
    o.n_betas = 2;
    o.betas[0] = 0.1f, o.betas[1] = 0.05f;
    tiny t;
    tiny_build(&t, text, &o, 12);
    CHECK_EQ_INT(t.mo.n_stochastic, 2);
    CHECK_EQ_INT(t.mo.n_bottlenecks, 1);
    CHECK(strcmp(t.mo.st[0].kind, "vib") == 0 && t.mo.st[0].bn == 0 && t.mo.st[1].bn == -1);
    CHECK_EQ_INT(t.mo.paths, 6);
    CHECK_EQ_INT(ib_node_dim(t.mo.bn[0].kl, 0), N);     /* per example */
    CHECK_EQ_INT(ib_node_dim(t.mo.bn[0].z, 0), N * 3);  /* per particle */
    CHECK(t.mo.st[0].h == t.mo.bn[0].z);
    CHECK_OK(ib_graph_forward(t.g));
    const float *z = ib_node_data(t.mo.bn[0].z);
    CHECK(memcmp(z, z + 4, 4 * sizeof(float)) != 0); /* particles draw their own noise */
    ib_node *wrt[] = {t.x, ib_graph_find(t.g, "enc.weight"), ib_graph_find(t.g, "b.weight"), ib_graph_find(t.g, "out.weight")};
    ib_test_gradcheck(t.g, t.loss.total, 4, wrt, 1e-2f, 5e-3);
    tiny_free(&t);
    /* particles=1 is the default and is left out of the canonical text */
    ib_model *m = NULL;
    CHECK_OK(ib_model_parse("model v\ninput 1 2 2\nclasses 3\nflatten\nlinear 8\nvib 4 particles=1\nlinear 3\n", "v", &m));
    CHECK_MSG(strstr(ib_model_text(m), "vib 4 shift=-5\n") != NULL, "%s", ib_model_text(m));
    ib_model_free(m);
}

/* Straight-through: dL/dh from the path logits by hand, then
 * dL/dW1 = sum over rows of p(1-p) (sum over the particles of dL/dh) x^T. */
static void test_straight_through_formula(void)
{
    const char *text = "model st\ninput 1 2 2\nclasses 3\nflatten\nbernoulli 5 particles=4 name=b1\nlinear 3 name=out\n";
    ib_objective o = ib_objective_default(); /* rel0 alone */
    tiny t;
    tiny_build(&t, text, &o, 9);
    CHECK_OK(ib_graph_forward(t.g));
    ib_params_zero_grad(t.p);
    CHECK_OK(ib_graph_backward(t.g, t.loss.total));
    enum { M = 4, D = 5, C = 3, IN = 4 };
    const float *z = ib_node_data(t.mo.path_logits), *w2 = ib_node_data(ib_graph_find(t.g, "out.weight"));
    const float *p = ib_node_data(ib_graph_find(t.g, "b1.p")), *x = ib_node_data(t.x);
    const float *h = ib_node_data(t.mo.st[0].h), *dh = ib_node_grad(t.mo.st[0].h);
    const float *dw1 = ib_node_grad(ib_graph_find(t.g, "b1.weight"));
    const int32_t *y = ib_node_labels(t.y);
    for (int r = 0; r < N * M * D; r++)
        CHECK(h[r] == 0.0f || h[r] == 1.0f); /* sampled, not the mean */
    double want_dh[N * M][D], want_dw[D][IN];
    memset(want_dw, 0, sizeof want_dw);
    for (int n = 0; n < N; n++) {
        /* L = -(1/N) sum_n log((1/M) sum_m s_nm,y): dL/dz_nm = -(1/N) w_nm (onehot - s_nm), w = s_y / sum_m s_y */
        double s[M][C], sy = 0;
        for (int m = 0; m < M; m++) {
            const float *r = z + (n * M + m) * C;
            double mx = fmax(fmax(r[0], r[1]), r[2]), tot = 0;
            for (int c = 0; c < C; c++)
                tot += s[m][c] = exp(r[c] - mx);
            for (int c = 0; c < C; c++)
                s[m][c] /= tot;
            sy += s[m][y[n]];
        }
        double da[D] = {0};
        for (int m = 0; m < M; m++) {
            double dz[C];
            for (int c = 0; c < C; c++)
                dz[c] = -(1.0 / N) * (s[m][y[n]] / sy) * ((c == y[n]) - s[m][c]);
            for (int u = 0; u < D; u++) {
                want_dh[n * M + m][u] = 0;
                for (int c = 0; c < C; c++)
                    want_dh[n * M + m][u] += dz[c] * w2[c * D + u];
                da[u] += want_dh[n * M + m][u];
            }
        }
        for (int u = 0; u < D; u++) {
            double pu = p[n * D + u];
            for (int i = 0; i < IN; i++)
                want_dw[u][i] += pu * (1 - pu) * da[u] * x[n * IN + i];
        }
    }
    for (int r = 0; r < N * M; r++)
        for (int u = 0; u < D; u++)
            CHECK_CLOSE(dh[r * D + u], want_dh[r][u], 1e-4, 1e-6);
    for (int u = 0; u < D; u++)
        for (int i = 0; i < IN; i++)
            CHECK_CLOSE(dw1[u * IN + i], want_dw[u][i], 1e-4, 1e-6);
    /* beta 0: the KL is logged, not optimised, so the prior gets no gradient */
    const float *dq = ib_node_grad(ib_graph_find(t.g, "b1.prior"));
    for (int u = 0; u < D; u++)
        CHECK(dq[u] == 0.0f);
    tiny_free(&t);
}

/* Particles draw different noise; the same seed and step draw it again. */
static void test_particle_noise(void)
{
    ib_objective o = ib_objective_default();
    tiny t;
    tiny_build(&t, two_layers("grad=st"), &o, 10);
    ib_node *h = t.mo.st[0].h; /* (N * 3, 5) */
    int64_t numel = N * 3 * 5;
    float first[N * 3 * 5], again[N * 3 * 5];
    ib_graph_set_step(t.g, 42);
    CHECK_OK(ib_graph_forward(t.g));
    memcpy(first, ib_node_data(h), sizeof first);
    int differ = 0;
    for (int n = 0; n < N; n++)
        for (int m = 1; m < 3; m++)
            differ += memcmp(first + (n * 3) * 5, first + (n * 3 + m) * 5, 5 * sizeof(float)) != 0;
    CHECK_MSG(differ > 0, "the particles of an example drew the same units");
    ib_graph_set_step(t.g, 42);
    CHECK_OK(ib_graph_forward(t.g));
    CHECK(memcmp(first, ib_node_data(h), sizeof first) == 0);
    CHECK_OK(ib_graph_forward(t.g)); /* step 43 */
    memcpy(again, ib_node_data(h), sizeof again);
    CHECK(memcmp(first, again, (size_t)numel * sizeof(float)) != 0);
    /* the mean path: every particle its mean sigma(a), all paths alike */
    ib_graph_set_sampling(t.g, false);
    CHECK_OK(ib_graph_forward(t.g));
    const float *hm = ib_node_data(h), *p = ib_node_data(ib_graph_find(t.g, "b1.p"));
    for (int n = 0; n < N; n++)
        for (int m = 0; m < 3; m++)
            CHECK(memcmp(hm + (n * 3 + m) * 5, p + n * 5, 5 * sizeof(float)) == 0);
    tiny_free(&t);
}

/* Bad descriptions and objectives: errors that name the layer or the flag. */
static void test_bad_input(void)
{
    static const char *const bad[] = {"particles=0", "grad=gumbel", "grad=gumbel temp=0", "grad=st temp=1",
                                      "prior=uniform", "particles=1025"};
    for (int i = 0; i < 6; i++) {
        char text[256];
        snprintf(text, sizeof text, "model b\ninput 1 2 2\nclasses 3\nflatten\nbernoulli 5 %s\nlinear 3\n", bad[i]);
        ib_model *m = NULL;
        CHECK_MSG(ib_model_parse(text, "bad", &m) == IB_ERR_FORMAT, "'%s' was accepted", bad[i]);
        CHECK_MSG(strstr(ib_last_error(), "bad:5: bernoulli") != NULL, "'%s': %s", bad[i], ib_last_error());
        ib_model_free(m);
    }
    /* the paths are bounded */
    ib_model *m = NULL;
    CHECK(ib_model_parse("model b\ninput 1 2 2\nclasses 3\nflatten\nbernoulli 5 particles=1024\n"
                         "bernoulli 5 particles=1024\nbernoulli 5 particles=2\nlinear 3\n",
                         "paths", &m) == IB_ERR_FORMAT);
    CHECK(strstr(ib_last_error(), "paths:7:") != NULL);
    /* gammas: L + 1 values, none negative; betas: L values */
    const ib_method *imb = ib_method_find("imb");
    ib_objective o = ib_objective_default();
    o.n_gammas = 2;
    o.gammas[0] = 1.0f, o.gammas[1] = -0.5f;
    CHECK(ib_method_validate(imb, &o) == IB_ERR_ARG);
    CHECK(strstr(ib_last_error(), "--gammas") != NULL);
    o.gammas[1] = 0.5f;
    CHECK_OK(ib_method_validate(imb, &o));
    ib_model *mm = NULL;
    CHECK_OK(ib_model_parse(two_layers("grad=st"), "tiny", &mm));
    ib_params *p = ib_params_new(1);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_input(g, "x", 4, (int64_t[]){N, 1, 2, 2});
    ib_method_inputs in = {.g = g, .n_views = 1, .x = {x}, .y = ib_input_labels(g, "y", N), .n_nets = 1,
                           .objective = &o};
    CHECK_OK(ib_model_build(mm, g, x, NULL, &in.out[0]));
    ib_loss loss = {0};
    CHECK(imb->build(&in, &loss) == IB_ERR_ARG); /* 2 gammas for 2 layers: 3 are needed */
    CHECK_MSG(strstr(ib_graph_error(g), "--gammas: 2 values given") != NULL, "%s", ib_graph_error(g));
    ib_graph_free(g);
    g = ib_graph_new(p);
    x = ib_input(g, "x", 4, (int64_t[]){N, 1, 2, 2});
    in = (ib_method_inputs){.g = g, .n_views = 1, .x = {x}, .y = ib_input_labels(g, "y", N), .n_nets = 1,
                            .objective = &o};
    CHECK_OK(ib_model_build(mm, g, x, NULL, &in.out[0]));
    o.n_gammas = 0;
    o.n_betas = 3;
    memset(&loss, 0, sizeof loss);
    CHECK(imb->build(&in, &loss) == IB_ERR_ARG);
    CHECK(strstr(ib_graph_error(g), "--betas") != NULL);
    ib_graph_free(g);
    ib_params_free(p);
    ib_model_free(mm);
}

/* --beta spreads one beta over the layers by the depth schedule, as for
 * the Gaussian bottlenecks; with --betas it is a conflict. */
static void test_beta_and_schedule(void)
{
    ib_objective o = ib_objective_default();
    o.beta = 0.3f;
    o.schedule = IB_BETA_EQUAL;
    tiny t;
    tiny_build(&t, two_layers("grad=st"), &o, 5);
    CHECK_EQ_INT(t.loss.n_kl, 2);
    CHECK(t.loss.beta[0] == 0.3f && t.loss.beta[1] == 0.3f);
    CHECK(ib_loss_term_find(&t.loss, "kl2")->weight == 0.3f);
    tiny_free(&t);
    o.schedule = IB_BETA_LINEAR; /* beta * l / L */
    tiny_build(&t, two_layers("grad=st"), &o, 5);
    CHECK(t.loss.beta[0] == 0.15f && t.loss.beta[1] == 0.3f);
    tiny_free(&t);
    o.schedule = IB_BETA_GEOMETRIC;
    o.ratio = 0.1f; /* beta * r^(L - l) */
    tiny_build(&t, two_layers("grad=st"), &o, 5);
    CHECK(fabsf(t.loss.beta[0] - 0.03f) < 1e-8f && t.loss.beta[1] == 0.3f);
    tiny_free(&t);
    /* the default: beta 0, every KL logged only */
    o = ib_objective_default();
    tiny_build(&t, two_layers("grad=st"), &o, 5);
    CHECK(t.loss.beta[0] == 0.0f && t.loss.beta[1] == 0.0f);
    tiny_free(&t);

    /* --betas, when given, are every layer's */
    o.beta = 1.0f;
    o.n_betas = 2;
    o.betas[0] = 1e-3f, o.betas[1] = 2e-3f;
    tiny_build(&t, two_layers("grad=st"), &o, 5);
    CHECK(t.loss.beta[0] == 1e-3f && t.loss.beta[1] == 2e-3f);
    tiny_free(&t);
    const ib_method *imb = ib_method_find("imb");
    o = ib_objective_default();
    o.beta = -1;
    CHECK(ib_method_validate(imb, &o) == IB_ERR_ARG);

    /* --objective imb starts from beta 0 (the MLE), not Deep VIB's default;
     * a --beta after it stays */
    ib_train_config c = ib_train_config_default();
    CHECK(c.objective.beta > 0);
    CHECK_OK(ib_train_config_set(&c, "--objective", "imb"));
    CHECK(c.objective.beta == 0.0f);
    CHECK_OK(ib_train_config_set(&c, "--beta", "0.25"));
    CHECK_OK(ib_train_config_set(&c, "--objective", "imb"));
    CHECK(c.objective.beta == 0.25f);

    /* both ways at once through the command: exit 2 before training, with the reason */
    static const char *const args[] = {"--betas 1e-3,1e-3 --beta 1e-2", "--betas 1e-3,1e-3 --beta-schedule equal",
                                       "--recipe imb-mnist --beta 1e-3", "--beta -1"};
    for (int k = 0; k < 4; k++) {
        char cmd[4096], err[2048];
        snprintf(cmd, sizeof cmd, "train --objective imb --model imb-mlp --dataset idx:%s/blobs-none "
                 "--out %s/imb-conflict %s", ib_test_tmpdir(), ib_test_tmpdir(), args[k]);
        int rc = ib_test_run_cli(cmd, &(ib_test_cli){.err = err, .err_len = sizeof err, .all_err = true});
        CHECK_MSG(rc == 2, "'%s': exit %d", args[k], rc);
        CHECK_MSG(strstr(err, k < 3 ? "use one or the other" : "beta must be") != NULL, "'%s': %s", args[k], err);
    }
}

/* A model description round-trips: the canonical text keeps every option. */
static void test_canonical_text(void)
{
    ib_model *a = NULL, *b = NULL;
    CHECK_OK(ib_model_parse(two_layers("grad=gumbel temp=0.5 prior=half"), "tiny", &a));
    const char *text = ib_model_text(a);
    CHECK(strstr(text, "bernoulli 5 particles=3 grad=gumbel temp=0.5 prior=half name=b1") != NULL);
    CHECK_OK(ib_model_parse(text, "canonical", &b));
    CHECK(ib_model_equal(a, b));
    /* prior=half has no parameter: weight and bias only */
    CHECK_EQ_INT(ib_model_param_count(a), (4 * 5 + 5) + (5 * 4 + 4) + (4 * 3 + 3));
    ib_model_free(a);
    ib_model_free(b);
    CHECK_OK(ib_model_parse(two_layers("grad=st"), "tiny", &a));
    CHECK_EQ_INT(ib_model_param_count(a), (4 * 5 + 5 + 5) + (5 * 4 + 4 + 4) + (4 * 3 + 3));
    char *sum = ib_model_summary(a);
    CHECK(sum && strstr(sum, "6 paths per example (3 x 2)") != NULL);
    free(sum);
    ib_model_free(a);
}

/* ---- through the trainer ---- */

static double json_number(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    CHECK_MSG(cJSON_IsNumber(v), "no number '%s'", key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* A tiny Bernoulli network trains far above chance with the imb terms in
 * metrics.jsonl; its learned prior moves; the evaluation is sampled (the
 * particle average differs from the mean path) and reproducible. */
static void test_bernoulli_network_trains(void)
{
    char data_dir[1024], model_path[1024];
    ib_test_blob_dir("blobs", 1000, 400, 99, 170.0f, 20.0f, data_dir, sizeof data_dir);
    ib_test_write_text("tiny-imb.ibm",
                       "model tiny-imb\ninput 1 8 8\nclasses 4\nflatten\nbernoulli 32 particles=4 name=b1\n"
                       "bernoulli 16 particles=4 name=b2\nlinear 4 name=out\n", model_path, sizeof model_path);
    ib_train_config c = ib_test_train_config(model_path, data_dir, "imb-run");
    snprintf(c.method, sizeof c.method, "imb");
    c.epochs = 3;
    c.batch_size = 50;
    c.eval_batch_size = 100;
    c.optim.lr = 1e-2f;
    c.ema_decay = 0;
    c.eval_samples = 2;
    c.objective.n_gammas = 3;
    c.objective.gammas[0] = 1.0f, c.objective.gammas[1] = 0.8f, c.objective.gammas[2] = 1.0f;
    c.objective.n_betas = 2;
    c.objective.betas[0] = c.objective.betas[1] = 1e-2f;
    CHECK_OK(ib_train(&c, NULL));
    cJSON *s = ib_test_read_json(c.out_dir, "summary.json");
    double acc = json_number(s, "test_acc_avg");
    CHECK_MSG(acc > 0.8, "imb test accuracy %.3f (chance 0.25)", acc);
    const cJSON *skl = cJSON_GetObjectItemCaseSensitive(s, "test_kl_nats");
    CHECK(cJSON_IsArray(skl) && cJSON_GetArraySize(skl) == 2);
    cJSON_Delete(s);
    char path[1200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", c.out_dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    static char line[1 << 14];
    int lines = 0;
    while (f && fgets(line, sizeof line, f)) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "train_terms");
        CHECK(cJSON_IsObject(t) && cJSON_GetArraySize(t) == 5);
        CHECK(json_number(t, "rel0") == json_number(o, "train_ce"));
        CHECK(json_number(t, "rel0") <= json_number(t, "rel1") + 1e-6);
        CHECK(json_number(t, "kl1") > 0 && json_number(t, "kl2") > 0);
        /* the evaluator reports the Bernoulli layers' KL too */
        const cJSON *tk = cJSON_GetObjectItemCaseSensitive(o, "test_kl");
        CHECK_MSG(cJSON_IsArray(tk) && cJSON_GetArraySize(tk) == 2, "test_kl: not one KL per Bernoulli layer");
        for (int l = 0; l < cJSON_GetArraySize(tk); l++)
            CHECK(cJSON_GetArrayItem(tk, l)->valuedouble > 0);
        cJSON_Delete(o);
        lines++;
    }
    if (f)
        fclose(f);
    CHECK_EQ_INT(lines, 3);

    /* the prior moved from its initialisation (same seed, same name) */
    ib_params *trained = ib_params_new(c.seed), *fresh = ib_params_new(c.seed);
    snprintf(path, sizeof path, "%s/last.safetensors", c.out_dir);
    ib_model *m = NULL;
    CHECK_OK(ib_model_load(model_path, &m));
    ib_graph *g = ib_graph_new(trained), *g0 = ib_graph_new(fresh);
    ib_node *x = ib_input(g, "x", 4, (int64_t[]){100, 1, 8, 8});
    ib_model_out mo, mo0;
    CHECK_OK(ib_model_build(m, g, x, NULL, &mo));
    CHECK_OK(ib_model_build(m, g0, ib_input(g0, "x", 4, (int64_t[]){1, 1, 8, 8}), NULL, &mo0));
    CHECK_OK(ib_checkpoint_load(path, trained, NULL, NULL, NULL));
    int i = ib_params_find(trained, "b1.prior"), i0 = ib_params_find(fresh, "b1.prior");
    CHECK(i >= 0 && i0 >= 0);
    CHECK(memcmp(ib_params_value(trained, i), ib_params_value(fresh, i0), 32 * sizeof(float)) != 0);

    /* evaluation: sampled (particle average != mean path) and reproducible */
    ib_graph_set_forward_only(g, true);
    CHECK_OK(ib_graph_compile(g));
    ib_dataset *test = NULL;
    CHECK_OK(ib_dataset_open(c.dataset, "test", NULL, NULL, &test));
    ib_batcher_config bc = {.batch_size = 100, .norm = c.norm};
    ib_eval_result r1, r2;
    CHECK_OK(ib_evaluate(g, x, mo.logits, 0, NULL, test, &bc, 2, 77, &r1));
    CHECK_OK(ib_evaluate(g, x, mo.logits, 0, NULL, test, &bc, 2, 77, &r2));
    CHECK(r1.nll_avg == r2.nll_avg && r1.acc_1shot == r2.acc_1shot);
    CHECK_MSG(r1.nll_avg != r1.nll_mean, "the particle average equals the mean path: not sampled");
    CHECK(r1.acc_avg > 0.8 && r1.acc_mean > 0.5);
    ib_eval_result_free(&r1);
    ib_eval_result_free(&r2);

    /* the KL of each Bernoulli layer: b2 has 4 rows per example (b1's
     * particles), so an example's KL is the mean over them.  130 examples
     * in batches of 100 (one padded) against batches of 1 (4 rows each,
     * equal on the mean path) */
    ib_node *kl[IB_MAX_BOTTLENECKS];
    const char *kl_name[IB_MAX_BOTTLENECKS];
    CHECK_EQ_INT(ib_model_out_kl(&mo, kl, kl_name), 2);
    CHECK(strcmp(kl_name[0], "b1") == 0 && strcmp(kl_name[1], "b2") == 0);
    CHECK_EQ_INT(ib_node_dim(kl[1], 0), 100 * 4);
    ib_dataset *part = NULL;
    CHECK_OK(ib_dataset_slice(test, 0, 130, &part));
    CHECK_OK(ib_evaluate(g, x, mo.logits, 2, kl, part, &bc, 2, 77, &r1));
    ib_graph *g1 = ib_graph_new(trained);
    ib_node *x1 = ib_input(g1, "x", 4, (int64_t[]){1, 1, 8, 8});
    ib_model_out mo1;
    CHECK_OK(ib_model_build(m, g1, x1, NULL, &mo1));
    ib_node *kl1[IB_MAX_BOTTLENECKS];
    CHECK_EQ_INT(ib_model_out_kl(&mo1, kl1, NULL), 2);
    ib_graph_set_forward_only(g1, true);
    CHECK_OK(ib_graph_compile(g1));
    ib_batcher_config bc1 = {.batch_size = 1, .norm = c.norm};
    CHECK_OK(ib_evaluate(g1, x1, mo1.logits, 2, kl1, part, &bc1, 2, 77, &r2));
    CHECK_EQ_INT(r1.n_kl, 2);
    for (int l = 0; l < 2; l++)
        CHECK_MSG(r1.kl[l] > 0 && fabs(r1.kl[l] - r2.kl[l]) <= 1e-5 * r2.kl[l], "KL of layer %d: %.9g against %.9g",
                  l + 1, r1.kl[l], r2.kl[l]);
    ib_eval_result_free(&r1);
    ib_eval_result_free(&r2);
    ib_graph_free(g1);
    ib_dataset_free(part);
    ib_dataset_free(test);
    ib_graph_free(g);
    ib_graph_free(g0);
    ib_params_free(trained);
    ib_params_free(fresh);
    ib_model_free(m);
}

/* --patience: stops a run N epochs after its best validation accuracy,
 * recorded in summary.json; it needs a validation split. */
static void test_patience(void)
{
    char data_dir[1024];
    snprintf(data_dir, sizeof data_dir, "%s/blobs", ib_test_tmpdir()); /* written by the run above */
    ib_train_config c = ib_train_config_default();
    snprintf(c.model, sizeof c.model, "mlp");
    c.patience = 2;
    CHECK(ib_train_config_check(&c) == IB_ERR_ARG); /* no --val-size */
    CHECK(strstr(ib_last_error(), "--val-size") != NULL);
    char tiny[1024];
    snprintf(tiny, sizeof tiny, "%s/tiny-imb.ibm", ib_test_tmpdir());
    snprintf(c.model, sizeof c.model, "%s", tiny);
    snprintf(c.dataset, sizeof c.dataset, "idx:%.1000s", data_dir);
    snprintf(c.out_dir, sizeof c.out_dir, "%s/imb-patience", ib_test_tmpdir());
    snprintf(c.method, sizeof c.method, "imb");
    c.epochs = 30;
    c.batch_size = 50;
    c.eval_batch_size = 100;
    c.optim.lr = 1e-2f;
    c.ema_decay = 0;
    c.eval_samples = 1;
    c.val_size = 100;
    c.train_limit = 300;
    c.test_limit = 100;
    CHECK_OK(ib_train(&c, NULL));
    cJSON *s = ib_test_read_json(c.out_dir, "summary.json");
    CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "early_stopped")));
    double best = json_number(s, "best_epoch"), stop = json_number(s, "early_stop_epoch");
    CHECK_MSG(stop == best + 2, "stopped at %g, best %g", stop, best);
    CHECK(json_number(s, "epochs_done") == stop && stop < 30);
    CHECK(json_number(s, "patience") == 2);
    cJSON_Delete(s);
}

int main(void)
{
    IB_RUN(test_terms_against_double);
    IB_RUN(test_defaults_and_one_particle);
    IB_RUN(test_gradcheck_gumbel);
    IB_RUN(test_straight_through_formula);
    IB_RUN(test_gaussian_particles);
    IB_RUN(test_particle_noise);
    IB_RUN(test_bad_input);
    IB_RUN(test_canonical_text);
    IB_RUN(test_beta_and_schedule);
    IB_RUN(test_bernoulli_network_trains);
    IB_RUN(test_patience);
    return ib_test_summary();
}
