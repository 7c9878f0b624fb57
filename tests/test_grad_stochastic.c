/*
 * test_grad_stochastic.c — the stochastic layers (Gaussian sample,
 * straight-through Bernoulli, Gumbel-sigmoid) and the divergences
 * (Gaussian KLs and log-density, Bernoulli KL, categorical KL and JS,
 * cosine similarity): finite-difference gradient checks w.r.t. every float
 * input, values against double-precision formulas, the properties of each
 * divergence, noise statistics, reproducibility and shape errors.
 *
 * Gradient-check tolerances: ib_graph_gradcheck reports the error relative
 * to the largest gradient element.  With central differences of step h the
 * truncation error is h^2 f'''/6 and the float32 rounding of the loss is
 * ~1e-7 |loss| / h; the steps below keep both near 1e-4 of the largest
 * gradient, and a wrong sign or a missing term gives errors of order 1.
 */
#include "test.h"

#include <float.h>

static ib_graph *graph(ib_params **p)
{
    *p = ib_params_new(1);
    return ib_graph_new(*p);
}

static void done(ib_graph *g, ib_params *p)
{
    ib_graph_free(g);
    ib_params_free(p);
}

static ib_node *input(ib_graph *g, const char *name, int ndim, const int64_t *shape)
{
    return ib_node_set_requires_grad(ib_input(g, name, ndim, shape), true);
}

static void fill(ib_node *n, float lo, float hi, uint64_t stream)
{
    ib_test_fill(ib_node_data(n), ib_node_numel(n), lo, hi, stream);
}

/* Normalised log-probabilities of random logits, rows of c, in double. */
static void fill_logprobs(ib_node *n, float spread, uint64_t stream)
{
    int64_t c = ib_node_dim(n, -1), rows = ib_node_numel(n) / c;
    float *x = ib_node_data(n);
    ib_test_fill(x, rows * c, -spread, spread, stream);
    for (int64_t i = 0; i < rows; i++) {
        double m = -INFINITY, s = 0;
        for (int64_t j = 0; j < c; j++)
            m = fmax(m, x[i * c + j]);
        for (int64_t j = 0; j < c; j++)
            s += exp(x[i * c + j] - m);
        double lse = m + log(s);
        for (int64_t j = 0; j < c; j++)
            x[i * c + j] = (float)(x[i * c + j] - lse);
    }
}

/* ib_test_gradcheck, printing each error when IBNET_VERBOSE is set (to see
 * the margin a tolerance leaves). */
static void gradcheck(ib_graph *g, ib_node *loss, int n, ib_node **wrt, float h, double tol)
{
    if (getenv("IBNET_VERBOSE"))
        for (int k = 0; k < n; k++) {
            double err = 0;
            CHECK_OK(ib_graph_gradcheck(g, loss, wrt[k], h, &err, NULL));
            printf("    gradcheck %-12s h %.0e error %.2e (tol %.0e)\n", ib_node_name(wrt[k]), (double)h, err, tol);
        }
    ib_test_gradcheck(g, loss, n, wrt, h, tol);
}

static ib_node *sum2(ib_graph *g, ib_node *a, ib_node *b) { return ib_add(g, a, b); }

/* ---------------------------------------------------------------- Gaussian */

static void test_grad_gaussian_sample_given_eps(void)
{
    ib_params *p;
    ib_graph *g = graph(&p);
    int64_t s[2] = {3, 5};
    ib_node *mu = input(g, "mu", 2, s), *sigma = input(g, "sigma", 2, s), *eps = input(g, "eps", 2, s);
    ib_node *z = ib_gaussian_sample(g, mu, sigma, eps);
    /* z^2 makes d/dsigma depend on sigma too, not only on eps */
    ib_node *loss = sum2(g, ib_test_weighted_sum(g, z), ib_test_weighted_sum(g, ib_square(g, z)));
    ib_test_compile_fill(g);
    fill(sigma, 0.3f, 1.5f, 11);
    CHECK_OK(ib_graph_forward(g));
    const float *m = ib_node_data(mu), *sg = ib_node_data(sigma), *e = ib_node_data(eps), *zv = ib_node_data(z);
    for (int k = 0; k < 15; k++)
        CHECK(zv[k] == m[k] + sg[k] * e[k]);
    /* a given eps is used even on the mean path: the caller owns it */
    ib_graph_set_sampling(g, false);
    CHECK_OK(ib_graph_forward(g));
    for (int k = 0; k < 15; k++)
        CHECK(zv[k] == m[k] + sg[k] * e[k]);
    ib_graph_set_sampling(g, true);
    gradcheck(g, loss, 3, (ib_node *[]){mu, sigma, eps}, 1e-2f, 1e-4);
    done(g, p);
}

static void test_grad_gaussian_sample_internal_noise(void)
{
    ib_params *p;
    ib_graph *g = graph(&p);
    int64_t s[2] = {4, 6};
    ib_node *mu = input(g, "mu", 2, s), *sigma = input(g, "sigma", 2, s);
    ib_node *z = ib_gaussian_sample(g, mu, sigma, NULL);
    ib_node *loss = sum2(g, ib_test_weighted_sum(g, z), ib_test_weighted_sum(g, ib_square(g, z)));
    ib_test_compile_fill(g);
    fill(sigma, 0.3f, 1.5f, 12);
    /* gradcheck pins the step, so every evaluation sees the same noise */
    gradcheck(g, loss, 2, (ib_node *[]){mu, sigma}, 1e-2f, 1e-4);

    /* the noise really is there and changes with the step */
    float z1[24], z2[24];
    ib_graph_set_step(g, 3);
    CHECK_OK(ib_graph_forward(g));
    memcpy(z1, ib_node_data(z), sizeof z1);
    CHECK_EQ_INT(ib_graph_step(g), 4);
    CHECK_OK(ib_graph_forward(g));
    memcpy(z2, ib_node_data(z), sizeof z2);
    CHECK(memcmp(z1, z2, sizeof z1) != 0);
    int differs = 0;
    for (int k = 0; k < 24; k++)
        differs += z1[k] != ib_node_data(mu)[k];
    CHECK_EQ_INT(differs, 24);

    /* mean path: z = mu exactly and no gradient reaches sigma */
    ib_graph_set_sampling(g, false);
    CHECK_OK(ib_graph_forward(g));
    CHECK(memcmp(ib_node_data(z), ib_node_data(mu), sizeof z1) == 0);
    CHECK_OK(ib_graph_backward(g, loss));
    for (int k = 0; k < 24; k++)
        CHECK(ib_node_grad(sigma)[k] == 0.0f);
    gradcheck(g, loss, 1, (ib_node *[]){mu}, 1e-2f, 1e-4);
    done(g, p);
}

/* mean 0 and variance 1 over 10^5 draws (standard errors 0.0032 and 0.0045:
 * the tolerances are about 6 of them); same (seed, step) -> same noise,
 * whatever the thread count. */
static void test_gaussian_noise_statistics_and_reproducibility(void)
{
    ib_params *p;
    ib_graph *g = graph(&p);
    int64_t s[2] = {1000, 100};
    ib_node *mu = ib_input(g, "mu", 2, s), *sigma = ib_input(g, "sigma", 2, s);
    ib_node *z = ib_gaussian_sample(g, mu, sigma, NULL);
    ib_test_compile_fill(g);
    int64_t n = 100000;
    memset(ib_node_data(mu), 0, (size_t)n * sizeof(float));
    for (int64_t k = 0; k < n; k++)
        ib_node_data(sigma)[k] = 1.0f;
    ib_graph_set_seed(g, 99);
    ib_graph_set_step(g, 7);
    CHECK_OK(ib_graph_forward(g));
    const float *zv = ib_node_data(z);
    double m = 0, v = 0;
    for (int64_t k = 0; k < n; k++)
        m += zv[k];
    m /= (double)n;
    for (int64_t k = 0; k < n; k++)
        v += (zv[k] - m) * (zv[k] - m);
    v /= (double)(n - 1);
    CHECK_NEAR(m, 0.0, 0.02);
    CHECK_NEAR(v, 1.0, 0.03);

    float *first = malloc((size_t)n * sizeof(float));
    memcpy(first, zv, (size_t)n * sizeof(float));
    int threads = ib_get_threads();
    ib_set_threads(1);
    ib_graph_set_step(g, 7);
    CHECK_OK(ib_graph_forward(g));
    ib_set_threads(threads);
    int same = memcmp(first, zv, (size_t)n * sizeof(float)) == 0;
    ib_graph_set_step(g, 8);
    CHECK_OK(ib_graph_forward(g));
    int other_step = memcmp(first, zv, (size_t)n * sizeof(float)) != 0;
    ib_graph_set_seed(g, 100);
    ib_graph_set_step(g, 7);
    CHECK_OK(ib_graph_forward(g));
    int other_seed = memcmp(first, zv, (size_t)n * sizeof(float)) != 0;
    free(first);
    CHECK(same);
    CHECK(other_step);
    CHECK(other_seed);
    done(g, p);
}

static void test_grad_kl_std_normal(void)
{
    ib_params *p;
    ib_graph *g = graph(&p);
    int64_t s[3] = {4, 3, 2}; /* 3-D: the sum runs over every dim but the first */
    ib_node *mu = input(g, "mu", 3, s), *sigma = input(g, "sigma", 3, s);
    ib_node *kl = ib_kl_std_normal(g, mu, sigma);
    ib_node *loss = ib_test_weighted_sum(g, kl);
    ib_test_compile_fill(g);
    CHECK_EQ_INT(ib_node_ndim(kl), 1);
    CHECK_EQ_INT(ib_node_dim(kl, 0), 4);
    fill(sigma, 0.3f, 1.5f, 13);
    CHECK_OK(ib_graph_forward(g));
    const float *m = ib_node_data(mu), *sg = ib_node_data(sigma);
    for (int i = 0; i < 4; i++) {
        double want = 0;
        for (int j = 0; j < 6; j++) {
            double a = m[i * 6 + j], b = sg[i * 6 + j];
            want += 0.5 * (a * a + b * b - 1 - 2 * log(b));
        }
        CHECK(ib_node_data(kl)[i] >= 0.0f);
        CHECK_CLOSE(ib_node_data(kl)[i], want, 1e-6, 1e-6);
    }
    /* 1/sigma terms: h = 3e-3 balances truncation (h^2/sigma^4) and rounding */
    gradcheck(g, loss, 2, (ib_node *[]){mu, sigma}, 3e-3f, 3e-4);
    done(g, p);

    /* rows of 37: four full 8-lane blocks and a padded tail; sigma over
     * four decades (the vector log's range), one element exactly 1 */
    g = graph(&p);
    int64_t s2[2] = {3, 37};
    mu = input(g, "mu", 2, s2);
    sigma = input(g, "sigma", 2, s2);
    kl = ib_kl_std_normal(g, mu, sigma);
    ib_test_compile_fill(g);
    float *sv = ib_node_data(sigma);
    for (int k = 0; k < 3 * 37; k++)
        sv[k] = (float)pow(10.0, -2.0 + 4.0 * (double)((k * 7) % 111) / 110.0);
    sv[40] = 1.0f;
    CHECK_OK(ib_graph_forward(g));
    m = ib_node_data(mu);
    for (int i = 0; i < 3; i++) {
        double want = 0, mag = 0;
        for (int j = 0; j < 37; j++) {
            double a = m[i * 37 + j], b = sv[i * 37 + j], t = a * a + b * b - 1 - 2 * log(b);
            want += 0.5 * t;
            mag += 0.5 * (a * a + b * b + 1 + 2 * fabs(log(b)));
        }
        /* each float term is off by a few ulp of its largest part */
        CHECK_CLOSE(ib_node_data(kl)[i], want, 0, 4e-7 * mag);
    }
    done(g, p);
}

/* A VIB layer's sigma = softplus(rho - 5) with rho far below 0 (a
 * ResNet-20 VIB cell reached rho - 5 = -90.8 at step 12 of a CIFAR run):
 * softplus is floored at FLT_MIN, so the KL and its gradient stay finite.
 * Unfloored, sigma = 3.7e-40 (subnormal) made 1/sigma, and so the
 * gradient of rho, -inf (the run stopped on a NaN weight gradient), and
 * sigma = 0 below -103.3 made the KL +inf.  PyTorch (float32, softplus
 * then 0.5 (mu^2 + sigma^2 - 1 - 2 log sigma), times c = 1e-5/128) gives
 * the gradient -c = -7.8125e-08 at -80 and -90.79 (it divides by sigma
 * instead of multiplying by 1/sigma) and KL inf, gradient NaN at -105;
 * here the gradient is -c, the limit of -c d/dt log softplus(t), all the
 * way down, and the KL of a floored element is -1/2 - log FLT_MIN. */
static void test_vib_sigma_floor(void)
{
    ib_params *p;
    ib_graph *g = graph(&p);
    const float t[6] = {-80.0f, -87.0f, -88.0f, -90.79f, -105.0f, -1000.0f};
    const float c = 1e-5f / 128.0f;
    ib_node *rho = input(g, "rho", 2, (int64_t[]){1, 6}), *mu = ib_input(g, "mu", 2, (int64_t[]){1, 6});
    ib_node *sigma = ib_node_keep(ib_softplus(g, rho, -5.0f));
    ib_node *kl = ib_node_keep(ib_kl_std_normal(g, mu, sigma));
    ib_node *loss = ib_node_keep(ib_scale(g, ib_sum(g, kl, IB_ALL), c));
    ib_test_compile_fill(g);
    for (int k = 0; k < 6; k++) {
        ib_node_data(rho)[k] = t[k] + 5.0f;
        ib_node_data(mu)[k] = 0.0f;
    }
    CHECK_OK(ib_graph_forward(g));
    CHECK_OK(ib_graph_backward(g, loss));
    const float *sv = ib_node_data(sigma), *dr = ib_node_grad(rho);
    CHECK_CLOSE(sv[0], 1.8048513e-35, 1e-6, 0); /* above the floor: PyTorch's value */
    CHECK_CLOSE(sv[1], exp(-87.0), 1e-6, 0);
    for (int k = 2; k < 6; k++)
        CHECK(sv[k] == FLT_MIN);
    CHECK(isfinite(ib_node_data(loss)[0]));
    double want_kl = 0.5 * (-2.0 - 2.0 * (-80.0 - 87.0)) + 4 * (-0.5 - log((double)FLT_MIN));
    CHECK_CLOSE(ib_node_data(kl)[0], want_kl, 1e-6, 0);
    for (int k = 0; k < 6; k++) {
        CHECK(isfinite(dr[k]));
        CHECK_CLOSE(dr[k], -c, 1e-5, 0);
    }
    done(g, p);

    /* the floor keeps NaN (a NaN input must still stop a run) */
    g = graph(&p);
    rho = input(g, "rho", 2, (int64_t[]){1, 3});
    sigma = ib_node_keep(ib_softplus(g, rho, 0.0f));
    ib_test_compile_fill(g);
    ib_node_data(rho)[0] = NAN;
    ib_node_data(rho)[1] = -200.0f;
    ib_node_data(rho)[2] = 0.0f;
    CHECK_OK(ib_graph_forward(g));
    CHECK(isnan(ib_node_data(sigma)[0]));
    CHECK(ib_node_data(sigma)[1] == FLT_MIN);
    CHECK_CLOSE(ib_node_data(sigma)[2], log(2.0), 1e-6, 0);
    done(g, p);
}

static double kl_gauss_ref(double m1, double s1, double m2, double s2)
{
    return log(s2 / s1) + (s1 * s1 + (m1 - m2) * (m1 - m2)) / (2 * s2 * s2) - 0.5;
}

static void test_grad_kl_gaussians(void)
{
    ib_params *p;
    ib_graph *g = graph(&p);
    int64_t s[2] = {3, 5}, s1[2] = {1, 5};
    ib_node *m1 = input(g, "m1", 2, s), *v1 = input(g, "s1", 2, s);
    ib_node *m2 = input(g, "m2", 2, s), *v2 = input(g, "s2", 2, s);
    ib_node *pm = input(g, "prior_mu", 2, s1), *ps = input(g, "prior_sigma", 2, s1);
    ib_node *kl = ib_kl_gaussians(g, m1, v1, m2, v2);
    ib_node *klp = ib_kl_gaussians(g, m1, v1, pm, ps); /* a learned prior shared by the batch */
    ib_node *self = ib_kl_gaussians(g, m1, v1, m1, v1);
    ib_node *loss = sum2(g, ib_test_weighted_sum(g, kl), ib_test_weighted_sum(g, klp));
    ib_test_compile_fill(g);
    fill(v1, 0.3f, 1.5f, 14);
    fill(v2, 0.3f, 1.5f, 15);
    fill(ps, 0.3f, 1.5f, 16);
    CHECK_OK(ib_graph_forward(g));
    const float *a = ib_node_data(m1), *b = ib_node_data(v1), *c = ib_node_data(m2), *d = ib_node_data(v2);
    for (int i = 0; i < 3; i++) {
        double want = 0, wantp = 0;
        for (int j = 0; j < 5; j++) {
            int k = i * 5 + j;
            want += kl_gauss_ref(a[k], b[k], c[k], d[k]);
            wantp += kl_gauss_ref(a[k], b[k], ib_node_data(pm)[j], ib_node_data(ps)[j]);
        }
        CHECK_CLOSE(ib_node_data(kl)[i], want, 1e-6, 2e-6);
        CHECK_CLOSE(ib_node_data(klp)[i], wantp, 1e-6, 2e-6);
        CHECK(ib_node_data(kl)[i] >= 0.0f && ib_node_data(klp)[i] >= 0.0f);
        /* log(s/s) and (s^2 + 0)/(2 s^2) - 1/2 are exact in float */
        CHECK(ib_node_data(self)[i] == 0.0f);
    }
    /* 1/s2^3 terms: h = 3e-3 as for kl_std_normal.  The prior's gradient sums
     * over the batch; the float32 rounding of the loss then reaches 3.0e-4
     * with clang's FMA contraction (1.4e-4 with gcc): tolerance 5e-4. */
    gradcheck(g, loss, 6, (ib_node *[]){m1, v1, m2, v2, pm, ps}, 3e-3f, 5e-4);
    done(g, p);
}

static void test_grad_gaussian_log_density(void)
{
    ib_params *p;
    ib_graph *g = graph(&p);
    int64_t s[2] = {4, 3}, s1[2] = {1, 3};
    ib_node *x = input(g, "x", 2, s), *mu = input(g, "mu", 2, s), *sigma = input(g, "sigma", 2, s);
    ib_node *pm = input(g, "prior_mu", 2, s1), *ps = input(g, "prior_sigma", 2, s1);
    ib_node *ld = ib_gaussian_log_density(g, x, mu, sigma);
    ib_node *ldp = ib_gaussian_log_density(g, x, pm, ps);
    ib_node *loss = sum2(g, ib_test_weighted_sum(g, ld), ib_test_weighted_sum(g, ldp));
    ib_test_compile_fill(g);
    fill(sigma, 0.3f, 1.5f, 17);
    fill(ps, 0.3f, 1.5f, 18);
    CHECK_OK(ib_graph_forward(g));
    for (int i = 0; i < 4; i++) {
        double want = 0, wantp = 0;
        for (int j = 0; j < 3; j++) {
            int k = i * 3 + j;
            double xv = ib_node_data(x)[k], m = ib_node_data(mu)[k], sg = ib_node_data(sigma)[k];
            double pmv = ib_node_data(pm)[j], psv = ib_node_data(ps)[j];
            want += -0.5 * log(2 * M_PI) - log(sg) - (xv - m) * (xv - m) / (2 * sg * sg);
            wantp += -0.5 * log(2 * M_PI) - log(psv) - (xv - pmv) * (xv - pmv) / (2 * psv * psv);
        }
        CHECK_CLOSE(ib_node_data(ld)[i], want, 1e-6, 2e-6);
        CHECK_CLOSE(ib_node_data(ldp)[i], wantp, 1e-6, 2e-6);
    }
    gradcheck(g, loss, 5, (ib_node *[]){x, mu, sigma, pm, ps}, 3e-3f, 3e-4);
    done(g, p);
}

/* ---------------------------------------------------------------- Bernoulli */

/* Four probability levels, 25000 draws each: the frequency of 1 has a
 * standard error of at most 0.0032, the tolerance is 6 of them. */
static void test_bernoulli_st(void)
{
    ib_params *p;
    ib_graph *g = graph(&p);
    int64_t s[2] = {250, 400};
    ib_node *pr = input(g, "p", 2, s);
    ib_node *h = ib_bernoulli_st(g, pr);
    ib_node *loss = ib_test_weighted_sum(g, ib_square(g, h));
    ib_test_compile_fill(g);
    const float level[4] = {0.05f, 0.3f, 0.7f, 0.95f};
    int64_t n = 100000;
    float *pv = ib_node_data(pr), *hv = ib_node_data(h);
    for (int64_t k = 0; k < n; k++)
        pv[k] = level[k % 4];
    CHECK_OK(ib_graph_forward(g));
    double ones[4] = {0};
    for (int64_t k = 0; k < n; k++) {
        CHECK(hv[k] == 0.0f || hv[k] == 1.0f);
        ones[k % 4] += hv[k];
    }
    for (int l = 0; l < 4; l++)
        CHECK_NEAR(ones[l] / (n / 4), level[l], 0.02);

    /* backward is exactly the identity: dp = dL/dh = 2 h R */
    CHECK_OK(ib_graph_backward(g, loss));
    const float *r = ib_node_data(ib_graph_find(g, "R"));
    for (int64_t k = 0; k < n; k++)
        CHECK(ib_node_grad(pr)[k] == 2.0f * hv[k] * r[k]);

    /* reproducible: the same step gives the same draw */
    float *first = malloc((size_t)n * sizeof(float));
    memcpy(first, hv, (size_t)n * sizeof(float));
    ib_graph_set_step(g, 0);
    CHECK_OK(ib_graph_forward(g));
    int same = memcmp(first, hv, (size_t)n * sizeof(float)) == 0;
    CHECK_OK(ib_graph_forward(g));
    int differs = memcmp(first, hv, (size_t)n * sizeof(float)) != 0;
    free(first);
    CHECK(same);
    CHECK(differs);

    /* mean path: h = p */
    ib_graph_set_sampling(g, false);
    CHECK_OK(ib_graph_forward(g));
    CHECK(memcmp(hv, pv, (size_t)n * sizeof(float)) == 0);
    ib_test_exact_checked(h);
    done(g, p);
}

static void test_grad_gumbel_sigmoid(void)
{
    ib_params *p;
    ib_graph *g = graph(&p);
    int64_t s[2] = {4, 6};
    ib_node *x = input(g, "logits", 2, s);
    ib_node *y = ib_gumbel_sigmoid(g, x, 0.7f);
    ib_node *loss = ib_test_weighted_sum(g, y);
    ib_test_compile_fill(g);
    fill(x, -3.0f, 3.0f, 19);
    CHECK_OK(ib_graph_forward(g));
    for (int k = 0; k < 24; k++)
        CHECK(ib_node_data(y)[k] > 0.0f && ib_node_data(y)[k] < 1.0f);
    /* noisy path, step pinned: the stored noise is the same in every evaluation */
    gradcheck(g, loss, 1, (ib_node *[]){x}, 1e-2f, 1e-4);
    ib_graph_set_sampling(g, false);
    CHECK_OK(ib_graph_forward(g));
    for (int k = 0; k < 24; k++)
        CHECK_NEAR(ib_node_data(y)[k], 1.0 / (1.0 + exp(-ib_node_data(x)[k] / 0.7)), 1e-7);
    gradcheck(g, loss, 1, (ib_node *[]){x}, 1e-2f, 1e-4);
    done(g, p);
}

/* y > 1/2 exactly when logits + logistic noise > 0, which has probability
 * sigmoid(logits) at any temperature (standard error <= 0.0032, tol 6x). */
static void test_gumbel_sigmoid_is_a_relaxed_bernoulli(void)
{
    ib_params *p;
    ib_graph *g = graph(&p);
    int64_t s[2] = {250, 400};
    ib_node *x = ib_input(g, "logits", 2, s);
    ib_node *y = ib_gumbel_sigmoid(g, x, 0.5f);
    ib_test_compile_fill(g);
    const float level[4] = {-2.0f, -0.5f, 0.0f, 1.5f};
    int64_t n = 100000;
    for (int64_t k = 0; k < n; k++)
        ib_node_data(x)[k] = level[k % 4];
    CHECK_OK(ib_graph_forward(g));
    double above[4] = {0};
    for (int64_t k = 0; k < n; k++)
        above[k % 4] += ib_node_data(y)[k] > 0.5f;
    for (int l = 0; l < 4; l++)
        CHECK_NEAR(above[l] / (n / 4), 1.0 / (1.0 + exp(-level[l])), 0.02);
    done(g, p);
}

/* ---------------------------------------------------------------- divergences */

static double kl_bern_ref(double p, double q)
{
    return p * log(p / q) + (1 - p) * log((1 - p) / (1 - q));
}

static void test_grad_kl_bernoulli(void)
{
    ib_params *p;
    ib_graph *g = graph(&p);
    int64_t s[3] = {3, 4, 2}, s1[3] = {1, 4, 2};
    ib_node *pp = input(g, "p", 3, s), *q = input(g, "q", 3, s), *prior = input(g, "prior", 3, s1);
    ib_node *kl = ib_kl_bernoulli(g, pp, q);
    ib_node *klp = ib_kl_bernoulli(g, pp, prior);
    ib_node *self = ib_kl_bernoulli(g, pp, pp);
    ib_node *loss = sum2(g, ib_test_weighted_sum(g, kl), ib_test_weighted_sum(g, klp));
    ib_test_compile_fill(g);
    fill(pp, 0.05f, 0.95f, 20);
    fill(q, 0.05f, 0.95f, 21);
    fill(prior, 0.05f, 0.95f, 22);
    CHECK_OK(ib_graph_forward(g));
    for (int i = 0; i < 3; i++) {
        double want = 0, wantp = 0;
        for (int j = 0; j < 8; j++) {
            want += kl_bern_ref(ib_node_data(pp)[i * 8 + j], ib_node_data(q)[i * 8 + j]);
            wantp += kl_bern_ref(ib_node_data(pp)[i * 8 + j], ib_node_data(prior)[j]);
        }
        CHECK_CLOSE(ib_node_data(kl)[i], want, 1e-6, 1e-6);
        CHECK_CLOSE(ib_node_data(klp)[i], wantp, 1e-6, 1e-6);
        CHECK(ib_node_data(kl)[i] > 0.0f && ib_node_data(klp)[i] > 0.0f);
        CHECK(ib_node_data(self)[i] == 0.0f);
    }
    /* 1/q and 1/(1-q) with q >= 0.05: a smaller step, h = 1e-3 */
    gradcheck(g, loss, 3, (ib_node *[]){pp, q, prior}, 1e-3f, 3e-4);
    done(g, p);
}

/* p, q at 0 and 1 give finite values and gradients (the clamp). */
static void test_kl_bernoulli_saturated_inputs_are_finite(void)
{
    ib_params *p;
    ib_graph *g = graph(&p);
    int64_t s[2] = {1, 4};
    ib_node *pp = input(g, "p", 2, s), *q = input(g, "q", 2, s);
    ib_node *kl = ib_kl_bernoulli(g, pp, q);
    ib_node *loss = ib_sum(g, kl, IB_ALL);
    ib_test_compile_fill(g);
    const float pv[4] = {0.0f, 1.0f, 0.0f, 0.5f}, qv[4] = {0.0f, 0.0f, 1.0f, 1.0f};
    memcpy(ib_node_data(pp), pv, sizeof pv);
    memcpy(ib_node_data(q), qv, sizeof qv);
    CHECK_OK(ib_graph_forward(g));
    CHECK_OK(ib_graph_backward(g, loss));
    float v = ib_node_scalar(kl);
    CHECK(isfinite(v) && v > 0.0f);
    /* KL(Bern(1) || Bern(1e-7)) = -log(1e-7) = 16.1: the clamp bounds each term */
    CHECK(v < 4 * 16.2f);
    for (int k = 0; k < 4; k++)
        CHECK(isfinite(ib_node_grad(pp)[k]) && isfinite(ib_node_grad(q)[k]));
    done(g, p);
}

static void test_grad_kl_js_categorical(void)
{
    ib_params *p;
    ib_graph *g = graph(&p);
    int64_t s[2] = {5, 7}, s1[2] = {1, 7};
    ib_node *lp = input(g, "lp", 2, s), *lq = input(g, "lq", 2, s), *lm = input(g, "marginal", 2, s1);
    ib_node *kl = ib_kl_categorical(g, lp, lq), *js = ib_js_categorical(g, lp, lq);
    ib_node *klm = ib_kl_categorical(g, lp, lm), *jsm = ib_js_categorical(g, lp, lm);
    ib_node *js_rev = ib_js_categorical(g, lq, lp);
    ib_node *kl_self = ib_kl_categorical(g, lp, lp), *js_self = ib_js_categorical(g, lp, lp);
    ib_node *loss = sum2(g, sum2(g, ib_test_weighted_sum(g, kl), ib_test_weighted_sum(g, js)),
                         sum2(g, ib_test_weighted_sum(g, klm), ib_test_weighted_sum(g, jsm)));
    ib_test_compile_fill(g);
    /* The log-probs are fed as free inputs: the check differentiates the
     * formulas as functions of (lp, lq), which is what a log_softmax in
     * front of these ops needs; perturbed rows are no longer normalised,
     * which the formulas do not assume. */
    fill_logprobs(lp, 2.0f, 23);
    fill_logprobs(lq, 2.0f, 24);
    fill_logprobs(lm, 2.0f, 25);
    CHECK_OK(ib_graph_forward(g));
    for (int i = 0; i < 5; i++) {
        double wkl = 0, wjs = 0;
        for (int j = 0; j < 7; j++) {
            double a = exp(ib_node_data(lp)[i * 7 + j]), b = exp(ib_node_data(lq)[i * 7 + j]), m = 0.5 * (a + b);
            wkl += a * log(a / b);
            wjs += 0.5 * (a * log(a / m) + b * log(b / m));
        }
        CHECK_CLOSE(ib_node_data(kl)[i], wkl, 1e-5, 1e-6);
        CHECK_CLOSE(ib_node_data(js)[i], wjs, 1e-5, 1e-7);
        CHECK(ib_node_data(kl)[i] > 0.0f && ib_node_data(klm)[i] > 0.0f);
        CHECK(ib_node_data(js)[i] > 0.0f && ib_node_data(js)[i] <= (float)M_LN2);
        CHECK(ib_node_data(jsm)[i] > 0.0f && ib_node_data(jsm)[i] <= (float)M_LN2);
        /* JS is symmetric up to the order of float terms */
        CHECK_CLOSE(ib_node_data(js_rev)[i], ib_node_data(js)[i], 1e-6, 1e-8);
        CHECK(ib_node_data(kl_self)[i] == 0.0f);
        CHECK(ib_node_data(js_self)[i] == 0.0f);
    }
    gradcheck(g, loss, 3, (ib_node *[]){lp, lq, lm}, 3e-3f, 3e-4);
    done(g, p);
}

/* Disjoint supports (log 0 = -inf): JS = ln 2, KL(P||P) = 0, gradients finite. */
static void test_js_disjoint_supports(void)
{
    ib_params *p;
    ib_graph *g = graph(&p);
    int64_t s[2] = {1, 3};
    ib_node *lp = input(g, "lp", 2, s), *lq = input(g, "lq", 2, s);
    ib_node *js = ib_js_categorical(g, lp, lq), *kl = ib_kl_categorical(g, lp, lp);
    ib_node *loss = ib_add(g, ib_sum(g, js, IB_ALL), ib_sum(g, kl, IB_ALL));
    ib_test_compile_fill(g);
    const float a[3] = {0.0f, -INFINITY, -INFINITY}, b[3] = {-INFINITY, logf(0.5f), logf(0.5f)};
    memcpy(ib_node_data(lp), a, sizeof a);
    memcpy(ib_node_data(lq), b, sizeof b);
    CHECK_OK(ib_graph_forward(g));
    CHECK_NEAR(ib_node_scalar(js), M_LN2, 1e-7);
    CHECK(ib_node_scalar(kl) == 0.0f);
    CHECK_OK(ib_graph_backward(g, loss));
    for (int k = 0; k < 3; k++)
        CHECK(isfinite(ib_node_grad(lp)[k]) && isfinite(ib_node_grad(lq)[k]));
    done(g, p);
}

static void test_grad_cosine_similarity(void)
{
    ib_params *p;
    ib_graph *g = graph(&p);
    ib_node *a = input(g, "a", 2, (int64_t[]){4, 6}), *b = input(g, "b", 2, (int64_t[]){5, 6});
    ib_node *sab = ib_cosine_similarity(g, a, b, 0.1f);
    ib_node *saa = ib_cosine_similarity(g, a, a, 0.1f); /* one node on both sides */
    ib_node *loss = sum2(g, ib_test_weighted_sum(g, sab), ib_test_weighted_sum(g, saa));
    ib_test_compile_fill(g);
    /* row 3 of a has norm 0.05 < eps = 0.1: it is divided by eps, and the
     * check's steps (3e-3 per element) do not carry it across the clamp */
    float *av = ib_node_data(a);
    for (int j = 0; j < 6; j++)
        av[18 + j] = (j % 2 ? 0.05f : -0.05f) / sqrtf(6.0f);
    CHECK_OK(ib_graph_forward(g));
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 5; j++) {
            double dot = 0, na = 0, nb = 0;
            for (int k = 0; k < 6; k++) {
                double x = av[i * 6 + k], y = ib_node_data(b)[j * 6 + k];
                dot += x * y;
                na += x * x;
                nb += y * y;
            }
            double want = dot / (fmax(sqrt(na), 0.1) * fmax(sqrt(nb), 0.1));
            CHECK_NEAR(ib_node_data(sab)[i * 5 + j], want, 1e-6);
        }
    for (int i = 0; i < 3; i++)
        CHECK_NEAR(ib_node_data(saa)[i * 4 + i], 1.0, 1e-6);
    CHECK_NEAR(ib_node_data(saa)[15], 0.25, 1e-6); /* |a_3|^2 / eps^2 */
    gradcheck(g, loss, 2, (ib_node *[]){a, b}, 3e-3f, 1e-4);
    done(g, p);
}

/* ---------------------------------------------------------------- engine rules */

/* The same result and gradients with 1 and 2 threads, on a size above the
 * parallel threshold, including the batch sum of a shared prior. */
static void test_divergences_do_not_depend_on_threads(void)
{
    ib_params *p;
    ib_graph *g = graph(&p);
    int64_t s[2] = {512, 128}, s1[2] = {1, 128};
    ib_node *pp = input(g, "p", 2, s), *prior = input(g, "prior", 2, s1);
    ib_node *a = input(g, "a", 2, s);
    ib_node *loss = sum2(g, ib_test_weighted_sum(g, ib_kl_bernoulli(g, pp, prior)),
                         ib_test_weighted_sum(g, ib_cosine_similarity(g, a, a, 1e-8f)));
    ib_test_compile_fill(g);
    fill(pp, 0.05f, 0.95f, 26);
    fill(prior, 0.05f, 0.95f, 27);
    int threads = ib_get_threads();
    float val[2], gp[2][128], gpp[2][64], ga[2][64];
    for (int t = 0; t < 2; t++) {
        ib_set_threads(t + 1);
        CHECK_OK(ib_graph_forward(g));
        CHECK_OK(ib_graph_backward(g, loss));
        val[t] = ib_node_scalar(loss);
        memcpy(gp[t], ib_node_grad(prior), sizeof gp[t]);
        memcpy(gpp[t], ib_node_grad(pp) + 5000, sizeof gpp[t]);
        memcpy(ga[t], ib_node_grad(a) + 7000, sizeof ga[t]);
    }
    ib_set_threads(threads);
    CHECK(val[0] == val[1]);
    CHECK(memcmp(gp[0], gp[1], sizeof gp[0]) == 0);
    CHECK(memcmp(gpp[0], gpp[1], sizeof gpp[0]) == 0);
    CHECK(memcmp(ga[0], ga[1], sizeof ga[0]) == 0);
    done(g, p);
}

static void expect_error(ib_node *(*build)(ib_graph *), ib_status want, const char *word)
{
    ib_params *p;
    ib_graph *g = graph(&p);
    CHECK(build(g) == NULL);
    CHECK_EQ_INT(ib_graph_status(g), want);
    CHECK_MSG(strstr(ib_graph_error(g), word) != NULL, "error '%s' does not name '%s'", ib_graph_error(g), word);
    done(g, p);
}

static ib_node *bad_sample(ib_graph *g)
{
    return ib_gaussian_sample(g, ib_input(g, "mu", 2, (int64_t[]){3, 4}), ib_input(g, "sigma", 2, (int64_t[]){3, 5}),
                              NULL);
}
static ib_node *bad_prior_first(ib_graph *g)
{ /* the first input fixes the batch: it cannot be the shared one */
    return ib_kl_std_normal(g, ib_input(g, "mu", 2, (int64_t[]){1, 4}), ib_input(g, "sigma", 2, (int64_t[]){3, 4}));
}
static ib_node *bad_kl_gauss(ib_graph *g)
{
    int64_t s[2] = {3, 4};
    return ib_kl_gaussians(g, ib_input(g, "m1", 2, s), ib_input(g, "s1", 2, s),
                           ib_input(g, "m2", 2, (int64_t[]){3, 2}), ib_input(g, "s2", 2, s));
}
static ib_node *bad_kl_bernoulli(ib_graph *g)
{
    return ib_kl_bernoulli(g, ib_input(g, "p", 2, (int64_t[]){3, 4}), ib_input(g, "q", 1, (int64_t[]){4}));
}
static ib_node *bad_categorical(ib_graph *g)
{
    return ib_kl_categorical(g, ib_input(g, "lp", 1, (int64_t[]){4}), ib_input(g, "lq", 1, (int64_t[]){4}));
}
static ib_node *bad_js(ib_graph *g)
{
    return ib_js_categorical(g, ib_input(g, "lp", 2, (int64_t[]){3, 4}), ib_input(g, "lq", 2, (int64_t[]){3, 5}));
}
static ib_node *bad_cosine(ib_graph *g)
{
    return ib_cosine_similarity(g, ib_input(g, "a", 2, (int64_t[]){3, 4}), ib_input(g, "b", 2, (int64_t[]){3, 5}),
                                1e-8f);
}
static ib_node *bad_cosine_eps(ib_graph *g)
{
    int64_t s[2] = {3, 4};
    return ib_cosine_similarity(g, ib_input(g, "a", 2, s), ib_input(g, "b", 2, s), 0.0f);
}
static ib_node *bad_temperature(ib_graph *g)
{
    return ib_gumbel_sigmoid(g, ib_input(g, "x", 2, (int64_t[]){3, 4}), 0.0f);
}

static void test_shape_errors(void)
{
    expect_error(bad_sample, IB_ERR_SHAPE, "gaussian_sample");
    expect_error(bad_prior_first, IB_ERR_SHAPE, "kl_std_normal");
    expect_error(bad_kl_gauss, IB_ERR_SHAPE, "'m2'");
    expect_error(bad_kl_bernoulli, IB_ERR_SHAPE, "leading dim of 1");
    expect_error(bad_categorical, IB_ERR_SHAPE, "(N, C)");
    expect_error(bad_js, IB_ERR_SHAPE, "js_categorical");
    expect_error(bad_cosine, IB_ERR_SHAPE, "cosine_similarity");
    expect_error(bad_cosine_eps, IB_ERR_ARG, "eps");
    expect_error(bad_temperature, IB_ERR_ARG, "temperature");
}

int main(void)
{
    IB_RUN(test_grad_gaussian_sample_given_eps);
    IB_RUN(test_grad_gaussian_sample_internal_noise);
    IB_RUN(test_gaussian_noise_statistics_and_reproducibility);
    IB_RUN(test_grad_kl_std_normal);
    IB_RUN(test_vib_sigma_floor);
    IB_RUN(test_grad_kl_gaussians);
    IB_RUN(test_grad_gaussian_log_density);
    IB_RUN(test_bernoulli_st);
    IB_RUN(test_grad_gumbel_sigmoid);
    IB_RUN(test_gumbel_sigmoid_is_a_relaxed_bernoulli);
    IB_RUN(test_grad_kl_bernoulli);
    IB_RUN(test_kl_bernoulli_saturated_inputs_are_finite);
    IB_RUN(test_grad_kl_js_categorical);
    IB_RUN(test_js_disjoint_supports);
    IB_RUN(test_grad_cosine_similarity);
    IB_RUN(test_divergences_do_not_depend_on_threads);
    IB_RUN(test_shape_errors);
    return ib_test_summary();
}
