/*
 * test_init.c — the parameter initialisers: bounds and variances of the
 * PyTorch default (kaiming_uniform_ with a = sqrt(5)), Kaiming and Xavier
 * for Linear (out, in) and Conv (Cout, Cin, kh, kw) shapes, with fan_in /
 * fan_out as torch.nn.init._calculate_fan_in_and_fan_out computes them
 * (fan_in = in * kh * kw, fan_out = out * kh * kw), and the keying of the
 * draws by (seed, name).
 *
 * Statistical checks use samples of >= 18k values, with tolerances of about
 * five standard errors, so a correct initialiser fails with negligible
 * probability while a wrong fan (off by a factor >= 2 in the variance, or
 * sqrt(2) in the bound) fails every time.  The draws are deterministic, so
 * a pass is a pass forever.
 */
#include "test.h"

typedef struct stats {
    double mean, var, maxabs, frac_within; /* frac_within: share with |x - mean| <= sqrt(var) */
    int64_t n;
} stats;

static stats stats_of(const float *v, int64_t n)
{
    stats s = {0};
    s.n = n;
    for (int64_t k = 0; k < n; k++)
        s.mean += v[k];
    s.mean /= (double)n;
    for (int64_t k = 0; k < n; k++) {
        double d = v[k] - s.mean;
        s.var += d * d;
        if (fabs(v[k]) > s.maxabs)
            s.maxabs = fabs(v[k]);
    }
    s.var /= (double)(n - 1);
    double sd = sqrt(s.var);
    int64_t within = 0;
    for (int64_t k = 0; k < n; k++)
        within += fabs(v[k] - s.mean) <= sd;
    s.frac_within = (double)within / (double)n;
    return s;
}

static const float *make(ib_params *p, const char *name, int ndim, const int64_t *shape, ib_init init, int64_t *n)
{
    int i = ib_params_get(p, name, ndim, shape, init, IB_PARAM_TRAINABLE);
    CHECK_MSG(i >= 0, "ib_params_get(%s): %s", name, ib_last_error());
    *n = ib_params_numel(p, i);
    return ib_params_value(p, i);
}

/* U(-bound, bound): every value inside, the extremes reached, variance
 * bound^2/3 (relative standard error of the sample variance of a uniform:
 * sqrt(0.8/n)), mean 0 (standard error bound/sqrt(3n)). */
static void check_uniform(const float *v, int64_t n, double bound)
{
    stats s = stats_of(v, n);
    CHECK_MSG(s.maxabs <= bound * (1 + 1e-7), "max |x| %.9g exceeds the bound %.9g", s.maxabs, bound);
    CHECK_MSG(s.maxabs >= bound * (1 - 20.0 / (double)n), "max |x| %.9g never comes near the bound %.9g", s.maxabs,
              bound);
    double se_var = sqrt(0.8 / (double)n);
    CHECK_MSG(fabs(s.var / (bound * bound / 3) - 1) <= 5 * se_var, "variance %.6g, want %.6g", s.var,
              bound * bound / 3);
    CHECK_MSG(fabs(s.mean) <= 5 * bound / sqrt(3.0 * (double)n), "mean %.3g is not 0", s.mean);
}

/* N(mean, std^2): sample variance (relative standard error sqrt(2/n)), mean
 * (standard error std/sqrt(n)), and the share within one std, 0.6827
 * (standard error sqrt(0.68*0.32/n)), which tells a normal from a uniform
 * of the same variance (0.577). */
static void check_normal(const float *v, int64_t n, double mean, double std)
{
    stats s = stats_of(v, n);
    CHECK_MSG(fabs(s.var / (std * std) - 1) <= 5 * sqrt(2.0 / (double)n), "variance %.6g, want %.6g", s.var,
              std * std);
    CHECK_MSG(fabs(s.mean - mean) <= 5 * std / sqrt((double)n), "mean %.6g, want %.6g", s.mean, mean);
    CHECK_MSG(fabs(s.frac_within - 0.682689) <= 5 * sqrt(0.2166 / (double)n), "share within 1 std %.4f, want 0.6827",
              s.frac_within);
}

static void test_pytorch_default_linear(void)
{
    ib_params *p = ib_params_new(11);
    int64_t n;
    /* nn.Linear(784, 300): weight (300, 784), bound 1/sqrt(fan_in = 784) */
    const float *v = make(p, "fc.weight", 2, (int64_t[]){300, 784}, IB_INIT_PYTORCH_DEFAULT, &n);
    check_uniform(v, n, 1.0 / sqrt(784.0));
    /* a wide layer: fan_in is the second dim, not the first */
    v = make(p, "fc2.weight", 2, (int64_t[]){40, 1000}, IB_INIT_PYTORCH_DEFAULT, &n);
    check_uniform(v, n, 1.0 / sqrt(1000.0));
    ib_params_free(p);
}

static void test_pytorch_default_conv(void)
{
    ib_params *p = ib_params_new(12);
    int64_t n;
    /* nn.Conv2d(32, 64, 3): weight (64, 32, 3, 3), fan_in = 32*9 = 288 */
    const float *v = make(p, "conv.weight", 4, (int64_t[]){64, 32, 3, 3}, IB_INIT_PYTORCH_DEFAULT, &n);
    CHECK_EQ_INT(n, 18432);
    check_uniform(v, n, 1.0 / sqrt(288.0));
    /* non-square kernel: fan_in = 16*5*3 = 240 */
    v = make(p, "conv2.weight", 4, (int64_t[]){128, 16, 5, 3}, IB_INIT_PYTORCH_DEFAULT, &n);
    check_uniform(v, n, 1.0 / sqrt(240.0));
    ib_params_free(p);
}

static void test_kaiming(void)
{
    ib_params *p = ib_params_new(13);
    int64_t n;
    /* kaiming_uniform_(a=0): bound = sqrt(2) * sqrt(3 / fan_in) */
    const float *v = make(p, "ku", 2, (int64_t[]){256, 128}, (ib_init){IB_INIT_KAIMING_UNIFORM, 0, 0}, &n);
    check_uniform(v, n, sqrt(6.0 / 128));
    v = make(p, "ku.conv", 4, (int64_t[]){32, 16, 5, 5}, (ib_init){IB_INIT_KAIMING_UNIFORM, 0, 0}, &n);
    check_uniform(v, n, sqrt(6.0 / 400));
    /* leaky-relu slope 0.2: gain sqrt(2 / 1.04) */
    v = make(p, "ku.leaky", 2, (int64_t[]){100, 300}, (ib_init){IB_INIT_KAIMING_UNIFORM, 0.2f, 0}, &n);
    check_uniform(v, n, sqrt(2.0 / (1 + 0.2 * 0.2)) * sqrt(3.0 / 300));
    /* kaiming_normal_(a=0): std = sqrt(2 / fan_in) */
    v = make(p, "kn", 2, (int64_t[]){256, 128}, (ib_init){IB_INIT_KAIMING_NORMAL, 0, 0}, &n);
    check_normal(v, n, 0, sqrt(2.0 / 128));
    v = make(p, "kn.conv", 4, (int64_t[]){32, 16, 5, 5}, (ib_init){IB_INIT_KAIMING_NORMAL, 0, 0}, &n);
    check_normal(v, n, 0, sqrt(2.0 / 400));
    ib_params_free(p);
}

static void test_xavier(void)
{
    ib_params *p = ib_params_new(14);
    int64_t n;
    /* xavier_uniform_: bound = gain * sqrt(6 / (fan_in + fan_out)); gain 0 means 1 */
    const float *v = make(p, "xu", 2, (int64_t[]){200, 50}, (ib_init){IB_INIT_XAVIER_UNIFORM, 0, 0}, &n);
    check_uniform(v, n, sqrt(6.0 / 250));
    v = make(p, "xu.gain", 2, (int64_t[]){200, 50}, (ib_init){IB_INIT_XAVIER_UNIFORM, 2.0f, 0}, &n);
    check_uniform(v, n, 2 * sqrt(6.0 / 250));
    /* conv: fan_in = 8*9 = 72, fan_out = 16*9 = 144 */
    v = make(p, "xu.conv", 4, (int64_t[]){16, 8, 3, 3}, (ib_init){IB_INIT_XAVIER_UNIFORM, 0, 0}, &n);
    check_uniform(v, n, sqrt(6.0 / 216));
    v = make(p, "xu.conv.big", 4, (int64_t[]){64, 32, 3, 3}, (ib_init){IB_INIT_XAVIER_UNIFORM, 0, 0}, &n);
    check_uniform(v, n, sqrt(6.0 / (288 + 576)));
    /* xavier_normal_: std = gain * sqrt(2 / (fan_in + fan_out)) */
    v = make(p, "xn", 2, (int64_t[]){100, 400}, (ib_init){IB_INIT_XAVIER_NORMAL, 0, 0}, &n);
    check_normal(v, n, 0, sqrt(2.0 / 500));
    v = make(p, "xn.conv", 4, (int64_t[]){64, 32, 3, 3}, (ib_init){IB_INIT_XAVIER_NORMAL, 1.5f, 0}, &n);
    check_normal(v, n, 0, 1.5 * sqrt(2.0 / (288 + 576)));
    ib_params_free(p);
}

static void test_simple_inits(void)
{
    ib_params *p = ib_params_new(15);
    int64_t n;
    const float *v = make(p, "u", 1, (int64_t[]){40000}, (ib_init){IB_INIT_UNIFORM, 2.0f, 3.0f}, &n);
    stats s = stats_of(v, n);
    for (int64_t k = 0; k < n; k++)
        CHECK(v[k] >= 2.0f && v[k] <= 3.0f);
    CHECK_NEAR(s.mean, 2.5, 5 * sqrt(1.0 / 12 / (double)n));
    v = make(p, "g", 1, (int64_t[]){40000}, (ib_init){IB_INIT_NORMAL, -1.0f, 0.5f}, &n);
    check_normal(v, n, -1.0, 0.5);
    /* truncated at two standard deviations: every value inside, variance
     * b^2 (1 - 4 phi(2) / (2 Phi(2) - 1)) = 0.77374 b^2 */
    v = make(p, "tn", 1, (int64_t[]){40000}, (ib_init){IB_INIT_TRUNC_NORMAL, 0.0f, 0.5f}, &n);
    s = stats_of(v, n);
    for (int64_t k = 0; k < n; k++)
        CHECK(v[k] >= -1.0f && v[k] <= 1.0f);
    CHECK_NEAR(s.mean, 0.0, 5 * 0.44 / sqrt((double)n));
    CHECK_NEAR(s.var, 0.77374 * 0.25, 0.01);
    CHECK(s.maxabs > 0.99); /* the tails near the cut are there */
    v = make(p, "c", 2, (int64_t[]){3, 3}, (ib_init){IB_INIT_CONSTANT, 0.25f, 0}, &n);
    for (int64_t k = 0; k < n; k++)
        CHECK(v[k] == 0.25f);
    v = make(p, "one", 1, (int64_t[]){5}, (ib_init){IB_INIT_ONES, 0, 0}, &n);
    for (int64_t k = 0; k < n; k++)
        CHECK(v[k] == 1.0f);
    v = make(p, "zero", 1, (int64_t[]){5}, (ib_init){IB_INIT_ZEROS, 0, 0}, &n);
    for (int64_t k = 0; k < n; k++)
        CHECK(v[k] == 0.0f);
    ib_params_free(p);
}

/* Draws are keyed by (seed, name): the order of creation does not matter,
 * the seed and the name do. */
static void test_keyed_by_seed_and_name(void)
{
    const int64_t shape[2] = {30, 20};
    ib_params *a = ib_params_new(7), *b = ib_params_new(7), *c = ib_params_new(8);
    int a1 = ib_params_get(a, "l1.weight", 2, shape, IB_INIT_PYTORCH_DEFAULT, IB_PARAM_TRAINABLE);
    int a2 = ib_params_get(a, "l2.weight", 2, shape, IB_INIT_PYTORCH_DEFAULT, IB_PARAM_TRAINABLE);
    int b2 = ib_params_get(b, "l2.weight", 2, shape, IB_INIT_PYTORCH_DEFAULT, IB_PARAM_TRAINABLE);
    int b1 = ib_params_get(b, "l1.weight", 2, shape, IB_INIT_PYTORCH_DEFAULT, IB_PARAM_TRAINABLE);
    int c1 = ib_params_get(c, "l1.weight", 2, shape, IB_INIT_PYTORCH_DEFAULT, IB_PARAM_TRAINABLE);
    size_t bytes = 600 * sizeof(float);
    CHECK(memcmp(ib_params_value(a, a1), ib_params_value(b, b1), bytes) == 0);
    CHECK(memcmp(ib_params_value(a, a2), ib_params_value(b, b2), bytes) == 0);
    CHECK(memcmp(ib_params_value(a, a1), ib_params_value(a, a2), bytes) != 0);
    CHECK(memcmp(ib_params_value(a, a1), ib_params_value(c, c1), bytes) != 0);
    ib_params_free(a);
    ib_params_free(b);
    ib_params_free(c);
}

int main(void)
{
    IB_RUN(test_pytorch_default_linear);
    IB_RUN(test_pytorch_default_conv);
    IB_RUN(test_kaiming);
    IB_RUN(test_xavier);
    IB_RUN(test_simple_inits);
    IB_RUN(test_keyed_by_seed_and_name);
    return ib_test_summary();
}
