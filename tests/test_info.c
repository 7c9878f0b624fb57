/*
 * test_info.c — the mutual-information estimators against known truth:
 * hand-computed binning and KDE values on tiny inputs, a discrete channel,
 * correlated Gaussians (I = -d/2 ln(1 - rho^2)), a multivariate Student-t
 * and Gaussians under invertible per-coordinate maps (the MI is unchanged),
 * as in the "Beyond Normal" benchmark (Czyz et al. 2023).  Each estimator
 * is held to a stated tolerance, or to the right side of the truth for a
 * bound; the tolerances are the ones docs/information.md gives.  Then the
 * readers (.npy bytes, a .npz written by numpy.savez, CSV) and `ibnet mi`'s
 * exit codes on bad input.  One thread: the critics' networks are small,
 * and the whole file runs in about 20 s of one core.
 */
#include "test.h"


#define LN2 0.69314718055994531

/* ---------- data ---------- */

/* n rows of d pairs: a = z1, b = rho z1 + sqrt(1 - rho^2) z2. */
static void gaussian_pairs(int64_t n, int d, double rho, uint64_t seed, float *a, float *b)
{
    float *z = malloc((size_t)(2 * n * d) * sizeof *z);
    ib_rng_normal(seed, 11, 0, z, 2 * n * d);
    for (int64_t k = 0; k < n * d; k++) {
        a[k] = z[2 * k];
        b[k] = (float)(rho * z[2 * k] + sqrt(1 - rho * rho) * z[2 * k + 1]);
    }
    free(z);
}

static double gaussian_mi(int d, double rho)
{
    return -0.5 * d * log(1 - rho * rho);
}

/* digamma by recurrence to x >= 10, then the asymptotic series (error < 1e-14). */
static double digamma(double x)
{
    double r = 0;
    while (x < 10) {
        r -= 1 / x;
        x += 1;
    }
    double f = 1 / (x * x);
    return r + log(x) - 0.5 / x - f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f / 132))));
}

/* f(x) = ln Gamma(x/2) - (x/2) psi(x/2) */
static double tf(double x)
{
    return lgamma(x / 2) - x / 2 * digamma(x / 2);
}

/* MI of a multivariate Student-t (dof nu) with m + k dims beyond its
 * Gaussian part (Arellano-Valle et al. 2013; Czyz et al. 2023). */
static double student_extra(double nu, int m, int k)
{
    return tf(nu) + tf(nu + m + k) - tf(nu + m) - tf(nu + k);
}

/* Gaussian pairs divided by sqrt(W / nu), W ~ chi^2_nu shared by a row. */
static void student_pairs(int64_t n, int d, double rho, int nu, uint64_t seed, float *a, float *b)
{
    gaussian_pairs(n, d, rho, seed, a, b);
    float *g = malloc((size_t)(n * nu) * sizeof *g);
    ib_rng_normal(seed, 12, 0, g, n * nu);
    for (int64_t i = 0; i < n; i++) {
        double w = 0;
        for (int k = 0; k < nu; k++)
            w += (double)g[i * nu + k] * g[i * nu + k];
        double s = sqrt(nu / w);
        for (int k = 0; k < d; k++) {
            a[i * d + k] = (float)(a[i * d + k] * s);
            b[i * d + k] = (float)(b[i * d + k] * s);
        }
    }
    free(g);
}

static ib_mi_result est(const ib_mi_var *a, const ib_mi_var *b, const char *spec, int steps)
{
    ib_mi_options o;
    ib_mi_result r = {0};
    ib_status s = ib_mi_parse(spec, &o);
    CHECK_OK(s);
    if (steps > 0)
        o.steps = steps;
    CHECK_OK(ib_mi_estimate(a, b, &o, &r));
    printf("    %-16s %s = %8.4f nats (%s, n %lld)\n", r.estimator, r.quantity, r.nats, ib_mi_kind_name(r.kind),
           (long long)r.n);
    return r;
}

/* A lower bound: below the truth (with the held-out sample's slack) and
 * no further below than tol. */
static void check_lower(const ib_mi_result *r, double truth, double slack, double tol)
{
    CHECK_EQ_INT(r->kind, IB_MI_LOWER);
    CHECK_MSG(r->nats <= truth + slack, "%s: %.4f above the truth %.4f + %.2f", r->estimator, r->nats, truth, slack);
    CHECK_MSG(r->nats >= truth - tol, "%s: %.4f more than %.2f below the truth %.4f", r->estimator, r->nats, tol,
              truth);
}

/* ---------- hand-computed ---------- */

static void test_binning_tiny(void)
{
    /* 2 bins over the data range [0.1, 0.95]: {0, 0, 1, 1} */
    float t1[] = {0.1f, 0.2f, 0.9f, 0.95f};
    int64_t y1[] = {0, 0, 1, 1};
    ib_mi_var T = {4, 1, t1, NULL}, Y = {4, 1, NULL, y1};
    ib_mi_result r = est(&T, NULL, "binning:2", 0);
    CHECK_NEAR(r.nats, LN2, 1e-12);
    CHECK_NEAR(r.bits, 1.0, 1e-12);
    CHECK_EQ_INT(r.states, 2);
    r = est(&T, &Y, "binning:2", 0);
    CHECK_NEAR(r.nats, LN2, 1e-12);
    /* 4 bins over [0, 5] (width 1.25): {0,0,1,2,3,3} (5 is in the last bin);
     * H(T) = 2/3 ln 3 + 1/3 ln 6, H(T|Y) = ln 3, I = 1/3 ln 2 */
    float t2[] = {0, 1, 2, 3, 4, 5};
    int64_t y2[] = {0, 1, 0, 1, 0, 1};
    ib_mi_var T2 = {6, 1, t2, NULL}, Y2 = {6, 1, NULL, y2};
    r = est(&T2, NULL, "binning:4", 0);
    CHECK_NEAR(r.nats, 2.0 / 3 * log(3) + log(6) / 3, 1e-12);
    CHECK_NEAR(r.width, 1.25, 1e-12);
    r = est(&T2, &Y2, "binning:4", 0);
    CHECK_NEAR(r.nats, LN2 / 3, 1e-12);
    /* a fixed range [-1, 1] saturates -2 and 3: bins {0, 1, 1, 1} */
    float t3[] = {-2, 0.5f, 3, 0.2f};
    ib_mi_var T3 = {4, 1, t3, NULL};
    r = est(&T3, NULL, "binning:2:-1:1", 0);
    CHECK_NEAR(r.saturated, 0.5, 1e-12);
    CHECK_NEAR(r.nats, -(0.25 * log(0.25) + 0.75 * log(0.75)), 1e-12);
    /* width 0.5 anchored at 0: {0, 0, 1, -1} */
    float t4[] = {0.1f, 0.4f, 0.6f, -0.1f};
    ib_mi_var T4 = {4, 1, t4, NULL};
    r = est(&T4, NULL, "binning:width=0.5", 0);
    CHECK_NEAR(r.nats, 1.5 * LN2, 1e-12);
    CHECK_EQ_INT(r.bins, 0);
    /* rows of two columns are one state each: (0,0) twice, (0,1), (1,1) */
    float t5[] = {0, 0, 0, 1, 0, 0, 1, 1};
    ib_mi_var T5 = {4, 2, t5, NULL};
    r = est(&T5, NULL, "binning:2", 0);
    CHECK_NEAR(r.nats, 1.5 * LN2, 1e-12);
    CHECK_EQ_INT(r.states, 3);
}

static void test_kde_tiny(void)
{
    /* T = {0, 1}, sigma^2 = 0.5: D = 1, upper exponent -D/(2 s2) = -1,
     * lower -D/(8 s2) = -1/4; I(X;T) = ln 2 - ln(1 + e^-c) */
    float t[] = {0, 1};
    int64_t y[] = {0, 1};
    ib_mi_var T = {2, 1, t, NULL}, Y = {2, 1, NULL, y};
    ib_mi_result r = est(&T, NULL, "kde:0.5", 0);
    CHECK_EQ_INT(r.kind, IB_MI_UPPER);
    CHECK_NEAR(r.nats, LN2 - log(1 + exp(-1.0)), 1e-12);
    CHECK_NEAR(r.sigma2, 0.5, 0);
    r = est(&T, NULL, "kde-lower:0.5", 0);
    CHECK_EQ_INT(r.kind, IB_MI_LOWER);
    CHECK_NEAR(r.nats, LN2 - log(1 + exp(-0.25)), 1e-12);
    /* I(T;Y): each class one point (its L is 0), so I = -L(all) */
    r = est(&T, &Y, "kde:0.5", 0);
    CHECK_EQ_INT(r.kind, IB_MI_ESTIMATE);
    CHECK_NEAR(r.nats, LN2 - log(1 + exp(-1.0)), 1e-12);
    /* two continuous: L(A,B) - L(A) - L(B), B = {0, 2}: distances 4 and 5 */
    float b[] = {0, 2};
    ib_mi_var B = {2, 1, b, NULL};
    r = est(&T, &B, "kde:0.5", 0);
    double la = log(1 + exp(-1.0)) - LN2, lb = log(1 + exp(-4.0)) - LN2, lab = log(1 + exp(-5.0)) - LN2;
    CHECK_NEAR(r.nats, lab - la - lb, 1e-12);
    /* the bounds bracket: lower <= upper, both in [0, ln n] */
    float t3[] = {0, 0.3f, 1, 2.5f, 2.6f};
    ib_mi_var T3 = {5, 1, t3, NULL};
    ib_mi_result up = est(&T3, NULL, "kde:0.1", 0), lo = est(&T3, NULL, "kde-lower:0.1", 0);
    CHECK(lo.nats <= up.nats);
    CHECK(lo.nats >= 0 && up.nats <= log(5) + 1e-12);
}

static void test_kde_bounds_bracket_truth(void)
{
    /* T = h(X) + N(0, s2) with X uniform over 6 points: I(X;T) = H(mixture)
     * - 1/2 ln(2 pi e s2), the mixture's entropy by quadrature in 1-D.  The
     * two KDE bounds must bracket it, at several sigma^2. */
    float h[] = {0, 0.3f, 1, 2.5f, 2.6f, 4};
    ib_mi_var T = {6, 1, h, NULL};
    double s2s[] = {0.01, 0.1, 0.5, 2.0};
    for (int k = 0; k < 4; k++) {
        double s2 = s2s[k], sd = sqrt(s2), step = sd * 1e-3, hm = 0;
        for (double t = -12 * sd; t < 4 + 12 * sd; t += step) {
            double p = 0;
            for (int i = 0; i < 6; i++)
                p += exp(-(t - h[i]) * (t - h[i]) / (2 * s2)) / sqrt(2 * M_PI * s2) / 6;
            if (p > 0)
                hm -= p * log(p) * step;
        }
        double truth = hm - 0.5 * log(2 * M_PI * M_E * s2);
        char spec[32];
        snprintf(spec, sizeof spec, "kde:%g", s2);
        ib_mi_result up = est(&T, NULL, spec, 0);
        snprintf(spec, sizeof spec, "kde-lower:%g", s2);
        ib_mi_result lo = est(&T, NULL, spec, 0);
        printf("    sigma^2 %g: lower %.4f <= truth %.4f <= upper %.4f\n", s2, lo.nats, truth, up.nats);
        CHECK_MSG(lo.nats <= truth + 1e-6 && truth <= up.nats + 1e-6, "sigma^2 %g: %.6f <= %.6f <= %.6f fails", s2,
                  lo.nats, truth, up.nats);
    }
}

/* ---------- discrete ---------- */

static void test_discrete_channel(void)
{
    /* A binary symmetric channel with exact frequencies: X uniform, Y = X
     * flipped for exactly 10% of each X: plug-in MI = ln 2 - H_b(0.1). */
    enum { N = 1000 };
    int64_t *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    for (int i = 0; i < N; i++) {
        x[i] = i % 2;
        y[i] = (i / 2) % 10 == 0 ? 1 - x[i] : x[i];
    }
    ib_mi_var X = {N, 1, NULL, x}, Y = {N, 1, NULL, y};
    double truth = LN2 + 0.1 * log(0.1) + 0.9 * log(0.9);
    ib_mi_result r = est(&X, &Y, "binning:2", 0);
    CHECK_NEAR(r.nats, truth, 1e-12);
    /* sampled: a 4-symbol channel that keeps the symbol with p = 0.7,
     * else one of the other 3 uniformly; I = ln 4 - H(0.7, 0.1, 0.1, 0.1) */
    enum { M = 20000 };
    int64_t *u = malloc(M * sizeof *u), *v = malloc(M * sizeof *v);
    for (int i = 0; i < M; i++) {
        u[i] = (int64_t)(ib_rng_u64(5, 1, 0, (uint64_t)i) % 4);
        double p = (double)(ib_rng_u64(5, 2, 0, (uint64_t)i) >> 11) / 9007199254740992.0;
        int64_t off = p < 0.7 ? 0 : 1 + (int64_t)(ib_rng_u64(5, 3, 0, (uint64_t)i) % 3);
        v[i] = (u[i] + off) % 4;
    }
    ib_mi_var U = {M, 1, NULL, u}, V = {M, 1, NULL, v};
    double t4 = log(4) + 0.7 * log(0.7) + 0.3 * log(0.1);
    r = est(&U, &V, "binning:2", 0);
    /* plug-in bias ~ (4-1)^2 / (2 M) = 2e-4; sampling sd ~ 0.005 */
    CHECK_NEAR(r.nats, t4, 0.02);
    free(x);
    free(y);
    free(u);
    free(v);
}

/* ---------- Gaussians ---------- */

static void test_gaussian_binning_kde(void)
{
    enum { N = 2000 };
    float *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    gaussian_pairs(N, 1, 0.5, 1, a, b);
    ib_mi_var A = {N, 1, a, NULL}, B = {N, 1, b, NULL};
    double truth = gaussian_mi(1, 0.5); /* 0.1438 */
    /* 10 equal bins over the data range: within 0.04 nats in one dimension */
    ib_mi_result r = est(&A, &B, "binning:10", 0);
    CHECK_NEAR(r.nats, truth, 0.04);
    /* more bins, more upward plug-in bias: the sweep rises */
    ib_mi_options o;
    CHECK_OK(ib_mi_parse("binning", &o));
    ib_mi_result sw[16];
    int count = 0;
    CHECK_OK(ib_mi_sweep(&A, &B, &o, sw, 16, &count));
    CHECK_EQ_INT(count, 10);
    CHECK_EQ_INT(sw[9].bins, 100);
    CHECK(sw[9].nats > sw[0].nats + 0.1);
    /* KDE of the noised pair at sigma^2 = 0.1: within 0.05 nats */
    r = est(&A, &B, "kde:0.1", 0);
    CHECK_NEAR(r.nats, truth, 0.05);
    CHECK_OK(ib_mi_parse("kde", &o));
    CHECK_OK(ib_mi_sweep(&A, &B, &o, sw, 16, &count));
    CHECK_EQ_INT(count, 7);
    CHECK_NEAR(sw[0].sigma2, 1e-3, 1e-15);
    CHECK_NEAR(sw[6].sigma2, 1.0, 1e-12);
    free(a);
    free(b);
}

static void test_gaussian_critics(void)
{
    enum { N = 2000, D = 5 };
    float *a = malloc(N * D * sizeof *a), *b = malloc(N * D * sizeof *b);
    /* one dimension, rho = 0.8: 0.511 nats */
    gaussian_pairs(N, 1, 0.8, 2, a, b);
    ib_mi_var A = {N, 1, a, NULL}, B = {N, 1, b, NULL};
    double truth = gaussian_mi(1, 0.8);
    ib_mi_result r = est(&A, &B, "infonce", 600);
    check_lower(&r, truth, 0.08, 0.12);
    CHECK_NEAR(r.cap_nats, log(1000), 1e-12);
    CHECK_EQ_INT(r.n, 1000);
    CHECK_EQ_INT(r.n_train, 1000);
    r = est(&A, &B, "nwj", 600);
    check_lower(&r, truth, 0.08, 0.12);
    /* MINE, 3 seeds: their spread is reported */
    r = est(&A, &B, "mine", 600);
    check_lower(&r, truth, 0.08, 0.12);
    CHECK_EQ_INT(r.seeds, 3);
    CHECK(r.spread_nats > 0 && r.spread_nats < 0.1);
    /* five pairs, rho = 0.75: 2.07 nats */
    gaussian_pairs(N, D, 0.75, 3, a, b);
    ib_mi_var A5 = {N, D, a, NULL}, B5 = {N, D, b, NULL};
    truth = gaussian_mi(D, 0.75);
    r = est(&A5, &B5, "infonce", 800);
    check_lower(&r, truth, 0.1, 0.35);
    r = est(&A5, &B5, "nwj", 800);
    check_lower(&r, truth, 0.1, 0.35);
    free(a);
    free(b);
}

static void test_infonce_cap(void)
{
    /* 15.5 nats of truth, 100 held-out rows: InfoNCE stays below ln 100 */
    enum { N = 200, D = 5 };
    float a[N * D], b[N * D];
    gaussian_pairs(N, D, 0.999, 4, a, b);
    ib_mi_var A = {N, D, a, NULL}, B = {N, D, b, NULL};
    ib_mi_result r = est(&A, &B, "infonce", 300);
    CHECK_NEAR(r.cap_nats, log(100), 1e-12);
    CHECK_MSG(r.nats <= r.cap_nats, "InfoNCE %.6f above its cap %.6f", r.nats, r.cap_nats);
    CHECK(r.nats > 0.5 * r.cap_nats); /* and it does get near it */
}

/* ---------- beyond normal ---------- */

static void test_student_t(void)
{
    /* the special functions first: psi(1) = -gamma, psi(1/2) = -gamma - 2 ln 2 */
    CHECK_NEAR(digamma(1.0), -0.57721566490153286, 1e-12);
    CHECK_NEAR(digamma(0.5), -0.57721566490153286 - 2 * LN2, 1e-12);
    enum { N = 2000, D = 2, NU = 3 };
    float *a = malloc(N * D * sizeof *a), *b = malloc(N * D * sizeof *b);
    student_pairs(N, D, 0.6, NU, 6, a, b);
    ib_mi_var A = {N, D, a, NULL}, B = {N, D, b, NULL};
    double extra = student_extra(NU, D, D);
    double truth = gaussian_mi(D, 0.6) + extra;
    printf("    Student-t nu=%d, 2+2 dims: %.4f nats (%.4f from the shared scale)\n", NU, truth, extra);
    CHECK(extra > 0.05); /* the shared scale adds dependence a Gaussian would not have */
    /* over 3 data draws x 2 seeds InfoNCE gave 0.34 ... 0.43: the tolerance
     * 0.3 leaves room for another CPU's rounding of the same run */
    ib_mi_result r = est(&A, &B, "infonce", 800);
    check_lower(&r, truth, 0.1, 0.3);
    /* NWJ's e^f on the held-out rows' heavy tails: far below (and reported
     * as it is, docs: the trap), never above */
    r = est(&A, &B, "nwj", 800);
    CHECK_EQ_INT(r.kind, IB_MI_LOWER);
    CHECK(r.nats <= truth + 0.1);
    free(a);
    free(b);
}

static void test_transformed_gaussians(void)
{
    enum { N = 2000, D = 2 };
    float *a = malloc(N * D * sizeof *a), *b = malloc(N * D * sizeof *b);
    double truth = gaussian_mi(D, 0.8); /* 1.02 nats, whatever invertible map each coordinate gets */
    /* asinh: within the Gaussian tolerance */
    gaussian_pairs(N, D, 0.8, 7, a, b);
    for (int k = 0; k < N * D; k++) {
        a[k] = asinhf(a[k]);
        b[k] = asinhf(b[k]);
    }
    ib_mi_var A = {N, D, a, NULL}, B = {N, D, b, NULL};
    ib_mi_result r = est(&A, &B, "infonce", 800);
    check_lower(&r, truth, 0.1, 0.2);
    /* cube: heavy tails the standardised critic learns slowly; the lower
     * bounds stay on the right side of the truth (docs: a known trap) */
    gaussian_pairs(N, D, 0.8, 7, a, b);
    for (int k = 0; k < N * D; k++) {
        a[k] = a[k] * a[k] * a[k];
        b[k] = b[k] * b[k] * b[k];
    }
    r = est(&A, &B, "infonce", 800);
    check_lower(&r, truth, 0.1, truth + 0.2);
    r = est(&A, &B, "nwj", 800);
    CHECK(r.nats <= truth + 0.1);
    free(a);
    free(b);
}

/* ---------- bad input ---------- */

static void test_bad_input(void)
{
    ib_mi_options o;
    const char *bad[] = {"binning:1", "binning:0", "binning:2.5", "binning:x", "binning:10:1:1", "binning:10:-1",
                         "binning:width=0", "binning:width=-1", "kde:0", "kde:-0.1", "kde:abc", "kde-lower:0",
                         "infonce:3", "mine2", "", "ksg"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        ib_status s = ib_mi_parse(bad[k], &o);
        CHECK_MSG(s == IB_ERR_ARG, "'%s' accepted", bad[k]);
        CHECK(strlen(ib_last_error()) > 10);
    }
    CHECK_OK(ib_mi_parse("binning:30", &o));
    CHECK(strstr((ib_mi_parse("binning:1", &o), ib_last_error()), "at least 2"));
    CHECK(strstr((ib_mi_parse("kde:0", &o), ib_last_error()), "sigma^2"));
    float a[4] = {0, 1, 2, 3}, b[3] = {0, 1, 2}, nan_[2] = {0, NAN};
    ib_mi_var A = {4, 1, a, NULL}, B = {3, 1, b, NULL}, one = {1, 1, a, NULL}, N = {2, 1, nan_, NULL};
    ib_mi_result r;
    CHECK_OK(ib_mi_parse("binning:10", &o));
    CHECK_EQ_INT(ib_mi_estimate(&A, &B, &o, &r), IB_ERR_ARG);
    CHECK(strstr(ib_last_error(), "rows differ"));
    CHECK_EQ_INT(ib_mi_estimate(&one, NULL, &o, &r), IB_ERR_ARG);
    CHECK(strstr(ib_last_error(), "fewer than 2 samples"));
    CHECK_EQ_INT(ib_mi_estimate(&N, NULL, &o, &r), IB_ERR_ARG);
    CHECK(strstr(ib_last_error(), "non-finite"));
    o.bins = 1; /* set directly, not parsed: still refused */
    CHECK_EQ_INT(ib_mi_estimate(&A, NULL, &o, &r), IB_ERR_ARG);
    CHECK_OK(ib_mi_parse("kde:0.1", &o));
    o.sigma2 = 0;
    CHECK_EQ_INT(ib_mi_estimate(&A, NULL, &o, &r), IB_ERR_ARG);
    int64_t d1[2] = {0, 1};
    ib_mi_var D1 = {2, 1, NULL, d1};
    CHECK_OK(ib_mi_parse("kde:0.1", &o));
    CHECK_EQ_INT(ib_mi_estimate(&D1, &D1, &o, &r), IB_ERR_ARG); /* KDE needs a continuous variable */
    CHECK_OK(ib_mi_parse("infonce", &o));
    CHECK_EQ_INT(ib_mi_estimate(&A, NULL, &o, &r), IB_ERR_ARG); /* a critic needs both */
    ib_mi_result sw[16];
    int count;
    CHECK_EQ_INT(ib_mi_sweep(&A, &A, &o, sw, 16, &count), IB_ERR_ARG);
}

/* ---------- readers ---------- */

/* A .npy image: header dict + values. */
static size_t npy_bytes(uint8_t *buf, const char *dict, const void *data, size_t n)
{
    size_t hl = strlen(dict);
    size_t pad = 64 - (10 + hl + 1) % 64;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    size_t total = hl + pad + 1;
    buf[8] = (uint8_t)(total & 0xFF);
    buf[9] = (uint8_t)(total >> 8);
    memcpy(buf + 10, dict, hl);
    memset(buf + 10 + hl, ' ', pad);
    buf[10 + hl + pad] = '\n';
    memcpy(buf + 10 + total, data, n);
    return 10 + total + n;
}

static void test_npy(void)
{
    uint8_t buf[512];
    ib_array *x = NULL;
    float f[6] = {1, 2, 3, 4, 5, 6.5f};
    size_t n = npy_bytes(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f, sizeof f);
    CHECK_OK(ib_array_parse_npy(buf, n, "t", &x));
    CHECK_EQ_INT(x->rows, 2);
    CHECK_EQ_INT(x->cols, 3);
    CHECK_EQ_INT(x->dtype, IB_ARRAY_F32);
    CHECK(x->f && !x->i && x->f[5] == 6.5f);
    ib_array_free(x);
    double d[3] = {0.25, -1, 1e300};
    n = npy_bytes(buf, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", d, sizeof d);
    CHECK_OK(ib_array_parse_npy(buf, n, "t", &x));
    CHECK(x->rows == 3 && x->cols == 1 && x->f[0] == 0.25f && isinf(x->f[2]));
    ib_array_free(x);
    int32_t i4[4] = {7, -2, 0, 9};
    n = npy_bytes(buf, "{'descr': '<i4', 'fortran_order': False, 'shape': (4,), }", i4, sizeof i4);
    CHECK_OK(ib_array_parse_npy(buf, n, "t", &x));
    CHECK(x->i && !x->f && x->i[1] == -2 && x->dtype == IB_ARRAY_I32);
    ib_array_free(x);
    int64_t i8[2] = {INT64_MAX, -5};
    n = npy_bytes(buf, "{'descr': '<i8', 'fortran_order': False, 'shape': (1, 2), }", i8, sizeof i8);
    CHECK_OK(ib_array_parse_npy(buf, n, "t", &x));
    CHECK(x->i[0] == INT64_MAX && x->rows == 1 && x->cols == 2);
    ib_array_free(x);
    struct {
        const char *dict;
        size_t data;
        const char *msg;
    } bad[] = {
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8, "big-endian"},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 8, "Fortran"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }", 2, "not supported"},
        {"{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", 4, "not supported"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 8, "needs 12 bytes"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (a,), }", 8, "whole numbers"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8, "descr"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        n = npy_bytes(buf, bad[k].dict, f, bad[k].data);
        x = (ib_array *)1;
        CHECK_EQ_INT(ib_array_parse_npy(buf, n, "t", &x), IB_ERR_FORMAT);
        CHECK(x == NULL);
        CHECK_MSG(strstr(ib_last_error(), bad[k].msg), "case %zu: %s", k, ib_last_error());
    }
    CHECK_EQ_INT(ib_array_parse_npy("PK\x03\x04xxxxxx", 10, "t", &x), IB_ERR_FORMAT);
    CHECK(strstr(ib_last_error(), "not a NumPy"));
}

static void test_npz_from_numpy(void)
{
    const char *files[] = {"tests/fixtures/mi_small.npz", "tests/fixtures/mi_small_compressed.npz"};
    for (int f = 0; f < 2; f++) {
        char path[1024];
        ib_test_path(files[f], path, sizeof path);
        ib_array *x = NULL, *y = NULL, *x64 = NULL, *y32 = NULL;
        ib_status s = ib_array_read_npz(path, "x", &x);
        if (s == IB_ERR_UNSUPPORTED) {
            printf("    (built without libzip: %s)\n", ib_last_error());
            return;
        }
        CHECK_OK(s);
        CHECK_OK(ib_array_read_npz(path, "y", &y));
        CHECK_OK(ib_array_read_npz(path, "x64", &x64));
        CHECK_OK(ib_array_read_npz(path, "y32", &y32));
        CHECK(x->rows == 6 && x->cols == 2 && x->dtype == IB_ARRAY_F32);
        for (int k = 0; k < 12; k++)
            CHECK_NEAR(x->f[k], k / 4.0, 0);
        int64_t yw[6] = {0, 1, 0, 1, 2, 2}, y32w[6] = {3, 3, 1, 1, 2, 2};
        for (int k = 0; k < 6; k++) {
            CHECK_EQ_INT(y->i[k], yw[k]);
            CHECK_EQ_INT(y32->i[k], y32w[k]);
            CHECK_NEAR(x64->f[k], 0.5 * k, 0);
        }
        CHECK(y->dtype == IB_ARRAY_I64 && y32->dtype == IB_ARRAY_I32 && x64->dtype == IB_ARRAY_F64);
        /* every x row distinct, y has 3 classes of 2: I(x; y) = H(y) = ln 3 */
        ib_mi_var A = ib_array_var(x), B = ib_array_var(y);
        ib_mi_result r = est(&A, &B, "binning:30", 0);
        CHECK_NEAR(r.nats, log(3), 1e-12);
        ib_array *z = (ib_array *)1;
        CHECK_EQ_INT(ib_array_read_npz(path, "z", &z), IB_ERR_ARG);
        CHECK(z == NULL && strstr(ib_last_error(), "x.npy, y.npy"));
        /* ib_array_read picks the reader from the name */
        char spec[1100];
        snprintf(spec, sizeof spec, "%s:y32", path);
        CHECK_OK(ib_array_read(spec, &z));
        CHECK_EQ_INT(z->i[0], 3);
        ib_array_free(z);
        ib_array_free(x);
        ib_array_free(y);
        ib_array_free(x64);
        ib_array_free(y32);
    }
    ib_array *z = (ib_array *)1;
    char path[1024];
    ib_test_path("tests/fixtures/golden_runs.json", path, sizeof path);
    CHECK_EQ_INT(ib_array_read_npz(path, "x", &z), IB_ERR_FORMAT); /* not a zip */
    CHECK(z == NULL);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs(text, f);
    fclose(f);
}

static void test_csv(void)
{
    char p[600];
    snprintf(p, sizeof p, "%s/a.csv", ib_test_tmpdir());
    ib_array *x = NULL;
    write_text(p, "# labels\nlabel, other\n1, 2\n-3,4\n\n5 ,6\n");
    CHECK_OK(ib_array_read_csv(p, &x));
    CHECK(x->dtype == IB_ARRAY_I64 && x->rows == 3 && x->cols == 2 && x->i[2] == -3 && x->i[5] == 6);
    ib_array_free(x);
    write_text(p, "0.5,1\n2,3e-1\r\n");
    CHECK_OK(ib_array_read(p, &x));
    CHECK(x->dtype == IB_ARRAY_F64 && x->rows == 2 && x->f[3] == 0.3f);
    ib_array_free(x);
    const char *bad[] = {"1,2\n3\n", "1,2\nx,3\n", "# nothing\n", "a,b\n"};
    for (int k = 0; k < 4; k++) {
        write_text(p, bad[k]);
        x = (ib_array *)1;
        CHECK_EQ_INT(ib_array_read_csv(p, &x), IB_ERR_FORMAT);
        CHECK(x == NULL);
    }
    write_text(p, "1,2\n3\n");
    ib_array_read_csv(p, &x);
    CHECK(strstr(ib_last_error(), ":2: 1 fields"));
    CHECK_EQ_INT(ib_array_read_csv("/nonexistent/q.csv", &x), IB_ERR_IO);
}

/* ---------- the command ---------- */

/* `ibnet mi ARGS` from the source tree (the fixtures' paths are relative
 * to it); stdout and stderr into out. */
static int run_cli(const char *args, char *out, size_t len)
{
    char cmd[2100];
    snprintf(cmd, sizeof cmd, "mi %s", args);
    const char *src = getenv("IBNET_SOURCE_DIR");
    return ib_test_run_cli(cmd, &(ib_test_cli){.cwd = src ? src : ".", .out = out, .out_len = len, .out_err = true});
}

static void test_cli_mi(void)
{
    char out[8192], p3[600], p4[600], p1[600], args[2000];
    CHECK_EQ_INT(run_cli("tests/fixtures/mi_small.npz --json", out, sizeof out), 0);
    CHECK_MSG(strstr(out, "\"estimator\":\"binning:30\"") && strstr(out, "\"kind\":\"estimate\"") &&
                  strstr(out, "\"n\":6") && strstr(out, "\"nats\":1.0986122886681") && strstr(out, "\"bits\":1.58496"),
              "%s", out);
    CHECK_EQ_INT(run_cli("--x tests/fixtures/mi_small.npz:x --estimator kde:0.1", out, sizeof out), 0);
    CHECK_MSG(strstr(out, "upper bound") && strstr(out, "sigma^2 = 0.1"), "%s", out);
    CHECK_EQ_INT(run_cli("--x tests/fixtures/mi_small.npz:x --estimator binning:2:0:1", out, sizeof out), 0);
    CHECK_MSG(strstr(out, "saturated") && strstr(out, "warning"), "%s", out);
    CHECK_EQ_INT(run_cli("tests/fixtures/mi_small.npz --sweep --json", out, sizeof out), 0);
    int lines = 0;
    for (char *c = out; *c; c++)
        lines += *c == '\n';
    CHECK_EQ_INT(lines, 10);
    /* user errors: exit 2 with the reason */
    CHECK_EQ_INT(run_cli("tests/fixtures/mi_small.npz --estimator binning:1", out, sizeof out), 2);
    CHECK_MSG(strstr(out, "bin count must be at least 2"), "%s", out);
    CHECK_EQ_INT(run_cli("tests/fixtures/mi_small.npz --estimator kde:0", out, sizeof out), 2);
    CHECK_MSG(strstr(out, "sigma^2"), "%s", out);
    snprintf(p3, sizeof p3, "%s/three.csv", ib_test_tmpdir());
    snprintf(p4, sizeof p4, "%s/four.csv", ib_test_tmpdir());
    snprintf(p1, sizeof p1, "%s/one.csv", ib_test_tmpdir());
    write_text(p3, "1\n2\n3\n");
    write_text(p4, "1.5\n2\n3\n4\n");
    write_text(p1, "0.5\n");
    snprintf(args, sizeof args, "--x %s --y %s", p3, p4);
    CHECK_EQ_INT(run_cli(args, out, sizeof out), 2);
    CHECK_MSG(strstr(out, "rows differ"), "%s", out);
    snprintf(args, sizeof args, "--x %s", p1);
    CHECK_EQ_INT(run_cli(args, out, sizeof out), 2);
    CHECK_MSG(strstr(out, "fewer than 2 samples"), "%s", out);
    CHECK_EQ_INT(run_cli("--x tests/fixtures/mi_small.npz:nope", out, sizeof out), 2);
    CHECK_EQ_INT(run_cli("--x /nonexistent.npy", out, sizeof out), 2);
    CHECK_EQ_INT(run_cli("tests/fixtures/mi_small.npz --estimator infonce --sweep", out, sizeof out), 2);
    CHECK_EQ_INT(run_cli("--estimator binning", out, sizeof out), 2);
}

int main(void)
{
    ib_set_threads(1);
    IB_RUN(test_binning_tiny);
    IB_RUN(test_kde_tiny);
    IB_RUN(test_kde_bounds_bracket_truth);
    IB_RUN(test_discrete_channel);
    IB_RUN(test_bad_input);
    IB_RUN(test_npy);
    IB_RUN(test_npz_from_numpy);
    IB_RUN(test_csv);
    IB_RUN(test_cli_mi);
    IB_RUN(test_gaussian_binning_kde);
    IB_RUN(test_infonce_cap);
    IB_RUN(test_gaussian_critics);
    IB_RUN(test_student_t);
    IB_RUN(test_transformed_gaussians);
    return ib_test_summary();
}
