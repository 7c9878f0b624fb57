/*
 * layers.c — layers as short compositions of ops, with PyTorch's parameter
 * names and default initialisation, so ibnet checkpoints load into the
 * equivalent torch.nn modules and the other way round.
 */
#include "../core/internal.h"

#include <math.h>

void ib_graph_set_init_style(ib_graph *g, ib_init_style style)
{
    if (g && style >= IB_INIT_STYLE_PYTORCH && style <= IB_INIT_STYLE_KAIMING)
        g->init_style = (int)style;
}

ib_init_style ib_graph_init_style(const ib_graph *g)
{
    return g ? (ib_init_style)g->init_style : IB_INIT_STYLE_PYTORCH;
}

/* The weight and bias initialisers of a linear or conv layer under g's style;
 * fan_in = in * k * k as in PyTorch. */
static void layer_inits(const ib_graph *g, int64_t fan_in, ib_init *w, ib_init *b)
{
    float bound = 1.0f / sqrtf((float)fan_in);
    switch (g->init_style) {
    case IB_INIT_STYLE_GLOROT:
        *w = (ib_init){IB_INIT_XAVIER_UNIFORM, 1.0f, 0.0f};
        *b = (ib_init){IB_INIT_ZEROS, 0, 0};
        break;
    case IB_INIT_STYLE_KAIMING:
        *w = (ib_init){IB_INIT_KAIMING_NORMAL, 0.0f, 0.0f};
        *b = (ib_init){IB_INIT_ZEROS, 0, 0};
        break;
    default:
        *w = IB_INIT_PYTORCH_DEFAULT;
        *b = (ib_init){IB_INIT_UNIFORM, -bound, bound};
        break;
    }
}

static void join(char *buf, size_t len, const char *prefix, const char *leaf)
{
    snprintf(buf, len, "%s.%s", prefix, leaf);
}

ib_node *ib_nn_linear(ib_graph *g, ib_node *x, const char *name, int64_t out, bool bias)
{
    if (!ib__inputs_ok(g, 1, &x))
        return NULL;
    if (x->ndim != 2)
        return ib__fail(g, IB_ERR_SHAPE, "linear layer '%s': input '%s' must be 2-D (N, features), it is %d-D", name,
                        x->name, x->ndim);
    char pname[IB_NAME_MAX];
    int64_t in = x->shape[1];
    ib_init wi, bi;
    layer_inits(g, in, &wi, &bi);
    join(pname, sizeof pname, name, "weight");
    ib_node *w = ib_param(g, pname, 2, (int64_t[]){out, in}, wi);
    ib_node *b = NULL;
    if (bias) {
        join(pname, sizeof pname, name, "bias");
        b = ib_param(g, pname, 1, &out, bi);
    }
    return ib_node_set_name(ib_linear(g, x, w, b), name);
}

ib_node *ib_nn_conv2d(ib_graph *g, ib_node *x, const char *name, int64_t out_ch, int k, int stride, int pad,
                      bool bias)
{
    if (!ib__inputs_ok(g, 1, &x))
        return NULL;
    if (x->ndim != 4)
        return ib__fail(g, IB_ERR_SHAPE, "conv layer '%s': input '%s' must be 4-D (N, C, H, W), it is %d-D", name,
                        x->name, x->ndim);
    char pname[IB_NAME_MAX];
    int64_t in = x->shape[1];
    ib_init wi, bi;
    layer_inits(g, in * k * k, &wi, &bi);
    join(pname, sizeof pname, name, "weight");
    ib_node *w = ib_param(g, pname, 4, (int64_t[]){out_ch, in, k, k}, wi);
    ib_node *b = NULL;
    if (bias) {
        join(pname, sizeof pname, name, "bias");
        b = ib_param(g, pname, 1, &out_ch, bi);
    }
    return ib_node_set_name(ib_conv2d(g, x, w, b, stride, pad), name);
}

static ib_node *nn_batchnorm(ib_graph *g, ib_node *x, const char *name, bool relu)
{
    if (!ib__inputs_ok(g, 1, &x))
        return NULL;
    if (x->ndim != 2 && x->ndim != 4)
        return ib__fail(g, IB_ERR_SHAPE, "batch norm '%s': input '%s' must be (N, C) or (N, C, H, W)", name, x->name);
    int64_t c = x->shape[1];
    char pname[IB_NAME_MAX];
    join(pname, sizeof pname, name, "weight");
    ib_node *gamma = ib_param(g, pname, 1, &c, (ib_init){IB_INIT_ONES, 0, 0});
    join(pname, sizeof pname, name, "bias");
    ib_node *beta = ib_param(g, pname, 1, &c, (ib_init){IB_INIT_ZEROS, 0, 0});
    join(pname, sizeof pname, name, "running_mean");
    ib_node *rm = ib_buffer(g, pname, 1, &c, (ib_init){IB_INIT_ZEROS, 0, 0});
    join(pname, sizeof pname, name, "running_var");
    ib_node *rv = ib_buffer(g, pname, 1, &c, (ib_init){IB_INIT_ONES, 0, 0});
    ib_node *y = relu ? ib_batchnorm_relu(g, x, gamma, beta, rm, rv, 0.1f, 1e-5f)
                      : ib_batchnorm(g, x, gamma, beta, rm, rv, 0.1f, 1e-5f);
    return ib_node_set_name(y, name);
}

ib_node *ib_nn_batchnorm(ib_graph *g, ib_node *x, const char *name) { return nn_batchnorm(g, x, name, false); }
ib_node *ib_nn_batchnorm_relu(ib_graph *g, ib_node *x, const char *name) { return nn_batchnorm(g, x, name, true); }

ib_bottleneck ib_nn_vib(ib_graph *g, ib_node *h, int64_t k, float sigma_shift, ib_node *eps)
{
    ib_bottleneck b = {0};
    if (!ib__inputs_ok(g, 1, &h))
        return b;
    if (h->ndim != 2 || h->shape[1] != 2 * k) {
        ib__fail(g, IB_ERR_SHAPE, "VIB bottleneck: encoder output '%s' must be (N, 2K) = (N, %lld)", h->name,
                 (long long)(2 * k));
        return b;
    }
    b.mu = ib_node_set_name(ib_slice(g, h, 1, 0, k), "vib.mu");
    b.sigma = ib_node_set_name(ib_softplus(g, ib_slice(g, h, 1, k, k), sigma_shift), "vib.sigma");
    b.z = ib_node_set_name(ib_gaussian_sample(g, b.mu, b.sigma, eps), "vib.z");
    b.kl = ib_node_set_name(ib_kl_std_normal(g, b.mu, b.sigma), "vib.kl");
    return b;
}

ib_bottleneck ib_nn_vib_cell(ib_graph *g, ib_node *h, const char *name, int k, float sigma_shift, ib_node *eps)
{
    ib_bottleneck b = {0};
    if (!ib__inputs_ok(g, 1, &h))
        return b;
    if (h->ndim != 4) {
        ib__fail(g, IB_ERR_SHAPE, "VIB cell '%s': input '%s' must be a feature map (N, C, H, W)", name, h->name);
        return b;
    }
    char lname[IB_NAME_MAX], nname[IB_NAME_MAX];
    int64_t c = h->shape[1];
    join(lname, sizeof lname, name, "mu");
    b.mu = ib_nn_conv2d(g, h, lname, c, k, 1, k / 2, true);
    join(lname, sizeof lname, name, "rho");
    b.sigma = ib_softplus(g, ib_nn_conv2d(g, h, lname, c, k, 1, k / 2, true), sigma_shift);
    b.z = ib_gaussian_sample(g, b.mu, b.sigma, eps);
    b.kl = ib_kl_std_normal(g, b.mu, b.sigma);
    join(nname, sizeof nname, name, "sigma");
    ib_node_set_name(b.sigma, nname);
    join(nname, sizeof nname, name, "z");
    ib_node_set_name(b.z, nname);
    join(nname, sizeof nname, name, "kl");
    ib_node_set_name(b.kl, nname);
    return b;
}
