/*
 * test_stochastic_torch.c — the stochastic layer and divergences against
 * PyTorch (tests/fixtures/stochastic_ops.txt from
 * tests/ref/make_stochastic_ref.py): a VIB layer with a given eps, the
 * Gaussian log-density and KL (with a prior shared by the batch), the
 * Bernoulli KL, categorical KL and JS from log-probabilities, and the
 * cosine-similarity matrix.  Values and the gradient of a weighted sum of
 * the outputs w.r.t. every input.
 *
 * Tolerance: the references are float64 results rounded once to float32,
 * so what is measured is our float32 error: a few ulp per term, summed over
 * rows of 10-16 terms.  Everything also passes at 3e-6 relative + 3e-7
 * absolute; 1e-4 + 1e-5 leaves room for other compilers and libm, and is
 * still far below any formula error (a wrong term or sign is off by O(0.1)).
 */
#include "test.h"

#define RTOL 1e-4
#define ATOL 1e-5

static ib_fixture *fx; /* loaded by the first case, inside it, so a missing file fails a case */

static ib_fixture *fixture(void)
{
    if (!fx)
        fx = ib_fixture_load("stochastic_ops.txt");
    return fx;
}

/* An input that wants its gradient; its values come from the fixture
 * tensor "<case>.<name>" (load_inputs, after compile). */
static ib_node *in_from(ib_graph *g, const char *name, int ndim, const int64_t *shape)
{
    return ib_node_set_requires_grad(ib_input(g, name, ndim, shape), true);
}

static void load_inputs(const char *cs, int n, ib_node **nodes)
{
    for (int k = 0; k < n; k++) {
        char full[160];
        snprintf(full, sizeof full, "%s.%s", cs, ib_node_name(nodes[k]));
        int64_t numel;
        const float *v = ib_fixture_get(fixture(), full, &numel);
        CHECK_EQ_INT(numel, ib_node_numel(nodes[k]));
        memcpy(ib_node_data(nodes[k]), v, (size_t)numel * sizeof(float));
    }
}

static void expect(const char *name, ib_node *n, bool grad)
{
    int64_t numel;
    const float *want = ib_fixture_get(fixture(), name, &numel);
    CHECK_EQ_INT(numel, ib_node_numel(n));
    ib_test_compare(name, grad ? ib_node_grad(n) : ib_node_data(n), want, numel, RTOL, ATOL);
}

static void expect_grads(const char *cs, int n, ib_node **nodes)
{
    for (int k = 0; k < n; k++) {
        char full[160];
        snprintf(full, sizeof full, "%s.grad.%s", cs, ib_node_name(nodes[k]));
        expect(full, nodes[k], true);
    }
}

/* loss = sum(y * w) */
static ib_node *weighted(ib_graph *g, ib_node *y, ib_node *w) { return ib_sum(g, ib_mul(g, y, w), IB_ALL); }

static void compile(ib_graph *g)
{
    CHECK_MSG(ib_graph_status(g) == IB_OK, "build failed: %s", ib_graph_error(g));
    CHECK_OK(ib_graph_compile(g));
}

static void test_vib_layer(void)
{
    ib_params *p = ib_params_new(1);
    ib_graph *g = ib_graph_new(p);
    int64_t s[2] = {8, 16};
    ib_node *mu = in_from(g, "mu", 2, s), *rho = in_from(g, "rho", 2, s);
    ib_node *eps = in_from(g, "eps", 2, s), *wz = in_from(g, "wz", 2, s);
    ib_node *sigma = ib_softplus(g, rho, -5.0f);
    ib_node *z = ib_gaussian_sample(g, mu, sigma, eps);
    ib_node *kl = ib_kl_std_normal(g, mu, sigma);
    ib_node *loss = ib_add(g, weighted(g, z, wz), ib_scale(g, ib_mean(g, kl, 0), 0.5f));
    compile(g);
    ib_node *ins[] = {mu, rho, eps, wz};
    load_inputs("vib", 4, ins);
    CHECK_OK(ib_graph_forward(g));
    CHECK_OK(ib_graph_backward(g, loss));
    expect("vib.z", z, false);
    expect("vib.kl", kl, false);
    expect("vib.loss", loss, false);
    expect_grads("vib", 3, ins);
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_gaussian_log_density(void)
{
    ib_params *p = ib_params_new(1);
    ib_graph *g = ib_graph_new(p);
    int64_t s[2] = {8, 16}, s1[2] = {1, 16}, sn[1] = {8};
    ib_node *x = in_from(g, "x", 2, s), *mu = in_from(g, "mu", 2, s);
    ib_node *sg = in_from(g, "sigma", 2, s), *pm = in_from(g, "pmu", 2, s1);
    ib_node *ps = in_from(g, "psigma", 2, s1);
    ib_node *w1 = in_from(g, "w1", 1, sn), *w2 = in_from(g, "w2", 1, sn);
    ib_node *ld = ib_gaussian_log_density(g, x, mu, sg), *ldp = ib_gaussian_log_density(g, x, pm, ps);
    ib_node *loss = ib_add(g, weighted(g, ld, w1), weighted(g, ldp, w2));
    compile(g);
    ib_node *ins[] = {x, mu, sg, pm, ps, w1, w2};
    load_inputs("ld", 7, ins);
    CHECK_OK(ib_graph_forward(g));
    CHECK_OK(ib_graph_backward(g, loss));
    expect("ld.out", ld, false);
    expect("ld.outp", ldp, false);
    expect_grads("ld", 5, ins);
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_kl_gaussians(void)
{
    ib_params *p = ib_params_new(1);
    ib_graph *g = ib_graph_new(p);
    int64_t s[2] = {8, 16}, s1[2] = {1, 16}, sn[1] = {8};
    ib_node *m1 = in_from(g, "m1", 2, s), *v1 = in_from(g, "s1", 2, s);
    ib_node *m2 = in_from(g, "m2", 2, s), *v2 = in_from(g, "s2", 2, s);
    ib_node *pm = in_from(g, "pmu", 2, s1), *ps = in_from(g, "psigma", 2, s1);
    ib_node *w1 = in_from(g, "w1", 1, sn), *w2 = in_from(g, "w2", 1, sn);
    ib_node *kl = ib_kl_gaussians(g, m1, v1, m2, v2), *klp = ib_kl_gaussians(g, m1, v1, pm, ps);
    ib_node *loss = ib_add(g, weighted(g, kl, w1), weighted(g, klp, w2));
    compile(g);
    ib_node *ins[] = {m1, v1, m2, v2, pm, ps, w1, w2};
    load_inputs("klg", 8, ins);
    CHECK_OK(ib_graph_forward(g));
    CHECK_OK(ib_graph_backward(g, loss));
    expect("klg.out", kl, false);
    expect("klg.outp", klp, false);
    expect_grads("klg", 6, ins);
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_kl_bernoulli(void)
{
    ib_params *p = ib_params_new(1);
    ib_graph *g = ib_graph_new(p);
    int64_t s[2] = {8, 16}, s1[2] = {1, 16}, sn[1] = {8};
    ib_node *pp = in_from(g, "p", 2, s), *q = in_from(g, "q", 2, s);
    ib_node *pr = in_from(g, "prior", 2, s1);
    ib_node *w1 = in_from(g, "w1", 1, sn), *w2 = in_from(g, "w2", 1, sn);
    ib_node *kl = ib_kl_bernoulli(g, pp, q), *klp = ib_kl_bernoulli(g, pp, pr);
    ib_node *loss = ib_add(g, weighted(g, kl, w1), weighted(g, klp, w2));
    compile(g);
    ib_node *ins[] = {pp, q, pr, w1, w2};
    load_inputs("klb", 5, ins);
    CHECK_OK(ib_graph_forward(g));
    CHECK_OK(ib_graph_backward(g, loss));
    expect("klb.out", kl, false);
    expect("klb.outp", klp, false);
    expect_grads("klb", 3, ins);
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_categorical_kl_js(void)
{
    ib_params *p = ib_params_new(1);
    ib_graph *g = ib_graph_new(p);
    int64_t s[2] = {8, 10}, s1[2] = {1, 10}, sn[1] = {8};
    ib_node *lp = in_from(g, "lp", 2, s), *lq = in_from(g, "lq", 2, s);
    ib_node *lm = in_from(g, "lm", 2, s1);
    ib_node *w[4];
    for (int k = 0; k < 4; k++) {
        char name[8];
        snprintf(name, sizeof name, "w%d", k + 1);
        w[k] = in_from(g, name, 1, sn);
    }
    ib_node *kl = ib_kl_categorical(g, lp, lq), *klm = ib_kl_categorical(g, lp, lm);
    ib_node *js = ib_js_categorical(g, lp, lq), *jsm = ib_js_categorical(g, lp, lm);
    ib_node *loss = ib_add(g, ib_add(g, weighted(g, kl, w[0]), weighted(g, klm, w[1])),
                           ib_add(g, weighted(g, js, w[2]), weighted(g, jsm, w[3])));
    compile(g);
    ib_node *ins[] = {lp, lq, lm, w[0], w[1], w[2], w[3]};
    load_inputs("cat", 7, ins);
    CHECK_OK(ib_graph_forward(g));
    CHECK_OK(ib_graph_backward(g, loss));
    expect("cat.kl", kl, false);
    expect("cat.klm", klm, false);
    expect("cat.js", js, false);
    expect("cat.jsm", jsm, false);
    expect_grads("cat", 3, ins);
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_cosine_similarity(void)
{
    ib_params *p = ib_params_new(1);
    ib_graph *g = ib_graph_new(p);
    ib_node *a = in_from(g, "a", 2, (int64_t[]){6, 16}), *b = in_from(g, "b", 2, (int64_t[]){5, 16});
    ib_node *w = in_from(g, "w", 2, (int64_t[]){6, 5});
    ib_node *sim = ib_cosine_similarity(g, a, b, 0.1f);
    ib_node *loss = weighted(g, sim, w);
    compile(g);
    ib_node *ins[] = {a, b, w};
    load_inputs("cos", 3, ins);
    CHECK_OK(ib_graph_forward(g));
    CHECK_OK(ib_graph_backward(g, loss));
    expect("cos.out", sim, false);
    expect_grads("cos", 2, ins);
    ib_graph_free(g);
    ib_params_free(p);
}

int main(void)
{
    IB_RUN(test_vib_layer);
    IB_RUN(test_gaussian_log_density);
    IB_RUN(test_kl_gaussians);
    IB_RUN(test_kl_bernoulli);
    IB_RUN(test_categorical_kl_js);
    IB_RUN(test_cosine_similarity);
    ib_fixture_free(fx);
    return ib_test_summary();
}
