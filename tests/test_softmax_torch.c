/*
 * test_softmax_torch.c — the softmax family against PyTorch 1.13
 * (tests/fixtures/softmax_ops.txt, written by tests/ref/make_softmax_ref.py):
 * log_softmax, softmax, F.cross_entropy with label smoothing 0, 0.1 and
 * 0.3 (loss and d loss/d logits) and the entropy of a softmax with the
 * gradient of a weighted sum of entropies.  The logits include rows of
 * +-50 and +-1000, where an unshifted exp overflows float32.
 *
 * Tolerances: the references are float64 rounded to float32; ours are float32
 * outputs of double-accumulated rows, so agreement is to a few float32 ulps:
 * rtol 1e-5 (about 80 ulps, room for the float32 rounding of x - lse and of
 * exp on values up to 2000) plus atol 1e-6 for elements that are 0 up to
 * rounding (probabilities of 1e-22 next to a dominant logit, gradients of
 * elements whose softmax and target nearly cancel).
 */
#include "test.h"

#define RTOL 1e-5
#define ATOL 1e-6

typedef struct ref_graph {
    ib_params *p;
    ib_graph *g;
    ib_node *x, *labels, *w;
    ib_node *log_softmax, *softmax, *ce[3], *entropy, *entropy_loss;
} ref_graph;

static const float smoothing[3] = {0.0f, 0.1f, 0.3f};

static void build(ref_graph *r, ib_fixture *f, int64_t N, int64_t C)
{
    r->p = ib_params_new(1);
    r->g = ib_graph_new(r->p);
    ib_graph *g = r->g;
    r->x = ib_node_set_requires_grad(ib_input(g, "x", 2, (int64_t[]){N, C}), true);
    r->labels = ib_input_labels(g, "labels", N);
    r->w = ib_input(g, "w", 1, &N);
    r->log_softmax = ib_log_softmax(g, r->x);
    r->softmax = ib_softmax(g, r->x);
    for (int k = 0; k < 3; k++)
        r->ce[k] = ib_cross_entropy(g, r->x, r->labels, smoothing[k]);
    r->entropy = ib_softmax_entropy(g, r->x);
    r->entropy_loss = ib_sum(g, ib_mul(g, r->entropy, r->w), IB_ALL);
    CHECK_MSG(ib_graph_status(g) == IB_OK, "build: %s", ib_graph_error(g));
    CHECK_OK(ib_graph_compile(g));
    memcpy(ib_node_data(r->x), ib_fixture_get(f, "x", NULL), (size_t)(N * C) * sizeof(float));
    memcpy(ib_node_data(r->w), ib_fixture_get(f, "w", NULL), (size_t)N * sizeof(float));
    const float *lab = ib_fixture_get(f, "labels", NULL);
    for (int64_t i = 0; i < N; i++)
        ib_node_labels(r->labels)[i] = (int32_t)lab[i];
    CHECK_OK(ib_graph_forward(g));
}

static void test_softmax_matches_torch(void)
{
    ib_fixture *f = ib_fixture_load("softmax_ops.txt");
    int64_t NC = 0, N = 0;
    ib_fixture_get(f, "x", &NC);
    ib_fixture_get(f, "labels", &N);
    ref_graph r;
    build(&r, f, N, NC / N);
    ib_test_compare("log_softmax", ib_node_data(r.log_softmax), ib_fixture_get(f, "log_softmax", NULL), NC, RTOL, ATOL);
    ib_test_compare("softmax", ib_node_data(r.softmax), ib_fixture_get(f, "softmax", NULL), NC, RTOL, ATOL);
    for (int64_t k = 0; k < NC; k++)
        CHECK(isfinite(ib_node_data(r.log_softmax)[k]) && isfinite(ib_node_data(r.softmax)[k]));
    ib_test_compare("entropy", ib_node_data(r.entropy), ib_fixture_get(f, "entropy", NULL), N, RTOL, ATOL);
    CHECK_OK(ib_graph_backward(r.g, r.entropy_loss));
    ib_test_compare("entropy_grad", ib_node_grad(r.x), ib_fixture_get(f, "entropy_grad", NULL), NC, RTOL, ATOL);
    ib_graph_free(r.g);
    ib_params_free(r.p);
    ib_fixture_free(f);
}

static void test_cross_entropy_matches_torch(void)
{
    ib_fixture *f = ib_fixture_load("softmax_ops.txt");
    int64_t NC = 0, N = 0;
    ib_fixture_get(f, "x", &NC);
    ib_fixture_get(f, "labels", &N);
    ref_graph r;
    build(&r, f, N, NC / N);
    const char *tags[3] = {"ce0", "ce1", "ce3"};
    for (int k = 0; k < 3; k++) {
        char name[64];
        snprintf(name, sizeof name, "%s_loss", tags[k]);
        ib_test_compare(name, ib_node_data(r.ce[k]), ib_fixture_get(f, name, NULL), 1, RTOL, 0);
        CHECK_OK(ib_graph_backward(r.g, r.ce[k]));
        snprintf(name, sizeof name, "%s_grad", tags[k]);
        ib_test_compare(name, ib_node_grad(r.x), ib_fixture_get(f, name, NULL), NC, RTOL, ATOL);
    }
    ib_graph_free(r.g);
    ib_params_free(r.p);
    ib_fixture_free(f);
}

int main(void)
{
    IB_RUN(test_softmax_matches_torch);
    IB_RUN(test_cross_entropy_matches_torch);
    return ib_test_summary();
}
