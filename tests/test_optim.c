/*
 * test_optim.c — optimizers, gradient clipping, learning-rate schedules and
 * the weight EMA against PyTorch 1.13 (tests/fixtures/optim.txt, written by
 * tests/ref/make_optim_ref.py) and against hand computations.
 *
 * The optimizer fixtures store the gradients each PyTorch step used, so the
 * C optimizer is fed the very same gradients and only the update rule is
 * compared.
 */
#include "core/internal.h"
#include "test.h"

/* The C code repeats PyTorch's float32 operations in the same order, fusing
 * the multiply-adds PyTorch's kernels fuse, and reproduces its trajectories
 * bit for bit; with clipping the norm (summed in double here, in float32 by
 * torch) can differ by 1 ulp, which moves later values by up to 2 ulp.
 * So 2 ulp relative, and 1e-9 absolute for values near zero.  A wrong bias
 * correction, dampening or decay moves values by >= 1e-4 relative. */
#define RTOL 2.5e-7
#define ATOL 1e-9

static ib_fixture *fx;

static ib_fixture *fixture(void)
{
    if (!fx)
        fx = ib_fixture_load("optim.txt");
    return fx;
}

static const float *get(const char *fmt, const char *name, int t)
{
    char key[128];
    snprintf(key, sizeof key, fmt, name, t);
    return ib_fixture_get(fixture(), key, NULL);
}

/* Store: W (3,4) and b (3) from the fixture's initial values, plus (extras)
 * a frozen trainable parameter and a buffer that must never move. */
typedef struct problem {
    ib_params *p;
    int w, b, frozen, buffer;
} problem;

static problem make_problem(bool extras)
{
    problem pr = {0};
    pr.p = ib_params_new(5);
    pr.w = ib_params_get(pr.p, "W", 2, (int64_t[]){3, 4}, (ib_init){IB_INIT_ZEROS, 0, 0}, IB_PARAM_TRAINABLE);
    pr.frozen = pr.buffer = -1;
    if (extras) {
        pr.frozen = ib_params_get(pr.p, "enc.frozen", 1, (int64_t[]){5}, (ib_init){IB_INIT_UNIFORM, -1, 1},
                                  IB_PARAM_TRAINABLE);
        CHECK_EQ_INT(ib_params_freeze(pr.p, "enc.", true), 1);
    }
    pr.b = ib_params_get(pr.p, "b", 1, (int64_t[]){3}, (ib_init){IB_INIT_ZEROS, 0, 0}, IB_PARAM_TRAINABLE);
    if (extras)
        pr.buffer = ib_params_get(pr.p, "bn.running_mean", 1, (int64_t[]){4}, (ib_init){IB_INIT_UNIFORM, -1, 1},
                                  IB_PARAM_BUFFER);
    memcpy(ib_params_value(pr.p, pr.w), ib_fixture_get(fixture(), "W0", NULL), 12 * sizeof(float));
    memcpy(ib_params_value(pr.p, pr.b), ib_fixture_get(fixture(), "b0", NULL), 3 * sizeof(float));
    return pr;
}

static void set_grads(problem *pr, const char *name, int t)
{
    ib_params_zero_grad(pr->p);
    memcpy(ib_params_grad(pr->p, pr->w), get("%s.gW.%d", name, t), 12 * sizeof(float));
    memcpy(ib_params_grad(pr->p, pr->b), get("%s.gb.%d", name, t), 3 * sizeof(float));
    /* Gradients on parameters that must not move: they would if used. */
    for (int i = 0; i < ib_params_count(pr->p); i++)
        if (i != pr->w && i != pr->b)
            for (int64_t k = 0; k < ib_params_numel(pr->p, i); k++)
                ib_params_grad(pr->p, i)[k] = 0.5f + (float)k;
}

static void compare_params(problem *pr, const char *name, int t)
{
    char what[128];
    snprintf(what, sizeof what, "%s W after step %d", name, t);
    ib_test_compare(what, ib_params_value(pr->p, pr->w), get("%s.W.%d", name, t), 12, RTOL, ATOL);
    snprintf(what, sizeof what, "%s b after step %d", name, t);
    ib_test_compare(what, ib_params_value(pr->p, pr->b), get("%s.b.%d", name, t), 3, RTOL, ATOL);
}

/* Runs the 5 fixture steps of `name` and checks parameters, clipped
 * gradients, final state and the untouched extras. */
static void run_config(const char *name, ib_optim_config cfg)
{
    problem pr = make_problem(true);
    float frozen0[5], buffer0[4];
    memcpy(frozen0, ib_params_value(pr.p, pr.frozen), sizeof frozen0);
    memcpy(buffer0, ib_params_value(pr.p, pr.buffer), sizeof buffer0);
    ib_optim *o = ib_optim_new(pr.p, &cfg);
    CHECK_MSG(o != NULL, "ib_optim_new: %s", ib_last_error());
    for (int t = 1; t <= 5; t++) {
        set_grads(&pr, name, t);
        CHECK_OK(ib_optim_step(o));
        compare_params(&pr, name, t);
        if (cfg.clip_grad_norm > 0) {
            /* the step leaves the clipped gradients in the store, as torch */
            char what[64];
            snprintf(what, sizeof what, "%s clipped grad W step %d", name, t);
            ib_test_compare(what, ib_params_grad(pr.p, pr.w), get("%s.cW.%d", name, t), 12, RTOL, ATOL);
            ib_test_compare(what, ib_params_grad(pr.p, pr.b), get("%s.cb.%d", name, t), 3, RTOL, ATOL);
            CHECK_CLOSE(ib_optim_grad_norm(o), get("%s.norm.%d", name, t)[0], RTOL, 0);
        }
    }
    CHECK_EQ_INT(ib_optim_steps(o), 5);
    for (int k = 0; k < ib_optim_state_count(o); k++) {
        const char *sname = ib_optim_state_name(o, k);
        char key[128];
        float *st = ib_optim_state(o, k);
        CHECK(st != NULL);
        snprintf(key, sizeof key, "%s.%s.W", name, sname);
        ib_test_compare(key, st + ib_params_offset(pr.p, pr.w), ib_fixture_get(fixture(), key, NULL), 12, RTOL, ATOL);
        snprintf(key, sizeof key, "%s.%s.b", name, sname);
        ib_test_compare(key, st + ib_params_offset(pr.p, pr.b), ib_fixture_get(fixture(), key, NULL), 3, RTOL, ATOL);
        /* state of parameters that are never updated stays zero */
        for (int64_t j = 0; j < 5; j++)
            CHECK(st[ib_params_offset(pr.p, pr.frozen) + j] == 0.0f);
    }
    CHECK(memcmp(frozen0, ib_params_value(pr.p, pr.frozen), sizeof frozen0) == 0);
    CHECK(memcmp(buffer0, ib_params_value(pr.p, pr.buffer), sizeof buffer0) == 0);
    ib_optim_free(o);
    ib_params_free(pr.p);
}

static ib_optim_config sgd_cfg(float lr, float momentum, float dampening, bool nesterov, float wd)
{
    ib_optim_config c = ib_optim_defaults(IB_OPTIM_SGD);
    c.lr = lr;
    c.momentum = momentum;
    c.dampening = dampening;
    c.nesterov = nesterov;
    c.weight_decay = wd;
    return c;
}

static ib_optim_config adam_cfg(ib_optim_kind kind, float lr, float b1, float b2, float wd)
{
    ib_optim_config c = ib_optim_defaults(kind);
    c.lr = lr;
    c.beta1 = b1;
    c.beta2 = b2;
    c.weight_decay = wd;
    return c;
}

static void test_sgd_matches_torch(void)
{
    run_config("sgd", sgd_cfg(0.02f, 0, 0, false, 0));
    run_config("sgd_mom", sgd_cfg(0.02f, 0.9f, 0, false, 1e-2f));
    run_config("sgd_nest", sgd_cfg(0.02f, 0.9f, 0, true, 1e-2f));
    run_config("sgd_damp", sgd_cfg(0.02f, 0.9f, 0.5f, false, 1e-2f));
}

static void test_adam_matches_torch(void)
{
    run_config("adam_vib", adam_cfg(IB_OPTIM_ADAM, 0.01f, 0.5f, 0.999f, 0)); /* Deep VIB's betas */
    run_config("adam_wd", adam_cfg(IB_OPTIM_ADAM, 0.01f, 0.9f, 0.999f, 0.1f));
}

static void test_adamw_matches_torch(void)
{
    run_config("adamw", adam_cfg(IB_OPTIM_ADAMW, 0.01f, 0.9f, 0.999f, 0.05f));
}

/* torch.optim.Adamax (the IMB reference script's optimizer at lr 0.01,
 * gradient-norm clip 5) */
static void test_adamax_matches_torch(void)
{
    CHECK(ib_optim_defaults(IB_OPTIM_ADAMAX).lr == 2e-3f); /* PyTorch's default */
    run_config("adamax", adam_cfg(IB_OPTIM_ADAMAX, 0.01f, 0.9f, 0.999f, 0));
    run_config("adamax_wd", adam_cfg(IB_OPTIM_ADAMAX, 0.02f, 0.5f, 0.99f, 0.1f));
    ib_optim_config c = adam_cfg(IB_OPTIM_ADAMAX, 0.01f, 0.9f, 0.999f, 0);
    c.clip_grad_norm = 5.0f;
    run_config("adamax_clip", c);
}

static void test_clipping_matches_torch(void)
{
    ib_optim_config c = sgd_cfg(0.02f, 0.9f, 0, false, 0);
    c.clip_grad_norm = 1.0f;
    run_config("sgd_clip", c);
    c = adam_cfg(IB_OPTIM_ADAM, 0.01f, 0.9f, 0.999f, 0);
    c.clip_grad_norm = 2.0f;
    run_config("adam_clip", c);

    /* the stand-alone call, on trainable unfrozen gradients only */
    problem pr = make_problem(true);
    set_grads(&pr, "sgd_clip", 1);
    float frozen_grad[5];
    memcpy(frozen_grad, ib_params_grad(pr.p, pr.frozen), sizeof frozen_grad);
    float norm = 0;
    CHECK_OK(ib_optim_clip_grad_norm(pr.p, 1.0f, &norm));
    CHECK_CLOSE(norm, get("%s.norm.%d", "sgd_clip", 1)[0], RTOL, 0);
    ib_test_compare("clipped W", ib_params_grad(pr.p, pr.w), get("%s.cW.%d", "sgd_clip", 1), 12, RTOL, ATOL);
    ib_test_compare("clipped b", ib_params_grad(pr.p, pr.b), get("%s.cb.%d", "sgd_clip", 1), 3, RTOL, ATOL);
    CHECK(memcmp(frozen_grad, ib_params_grad(pr.p, pr.frozen), sizeof frozen_grad) == 0);
    /* below the limit nothing changes, bit for bit */
    set_grads(&pr, "sgd_clip", 1);
    CHECK_OK(ib_optim_clip_grad_norm(pr.p, 100.0f, NULL));
    CHECK(memcmp(ib_params_grad(pr.p, pr.w), get("%s.gW.%d", "sgd_clip", 1), 12 * sizeof(float)) == 0);
    CHECK(ib_optim_clip_grad_norm(pr.p, 0.0f, NULL) == IB_ERR_ARG);
    ib_params_free(pr.p);
}

/* b joins the store after two steps: it gets zero state and its own step
 * count (first bias correction at its step 1), as a PyTorch param group
 * added later. */
static void test_param_added_later(void)
{
    ib_params *p = ib_params_new(5);
    int w = ib_params_get(p, "W", 2, (int64_t[]){3, 4}, (ib_init){IB_INIT_ZEROS, 0, 0}, IB_PARAM_TRAINABLE);
    memcpy(ib_params_value(p, w), ib_fixture_get(fixture(), "W0", NULL), 12 * sizeof(float));
    ib_optim_config cfg = adam_cfg(IB_OPTIM_ADAM, 0.01f, 0.5f, 0.999f, 0);
    ib_optim *o = ib_optim_new(p, &cfg);
    int b = -1;
    for (int t = 1; t <= 5; t++) {
        if (t == 3) {
            b = ib_params_get(p, "b", 1, (int64_t[]){3}, (ib_init){IB_INIT_ZEROS, 0, 0}, IB_PARAM_TRAINABLE);
            memcpy(ib_params_value(p, b), ib_fixture_get(fixture(), "b0", NULL), 3 * sizeof(float));
        }
        memcpy(ib_params_grad(p, w), get("%s.gW.%d", "adam_late", t), 12 * sizeof(float));
        if (b >= 0)
            memcpy(ib_params_grad(p, b), get("%s.gb.%d", "adam_late", t), 3 * sizeof(float));
        CHECK_OK(ib_optim_step(o));
        ib_test_compare("late W", ib_params_value(p, w), get("%s.W.%d", "adam_late", t), 12, RTOL, ATOL);
        if (b >= 0)
            ib_test_compare("late b", ib_params_value(p, b), get("%s.b.%d", "adam_late", t), 3, RTOL, ATOL);
    }
    /* the state buffers cover the grown store */
    float *m = ib_optim_state(o, 0);
    CHECK(m != NULL);
    CHECK(m[ib_params_offset(p, b)] != 0.0f);
    ib_optim_free(o);
    ib_params_free(p);
}

/* Restoring a run: copy the state buffers into a fresh optimizer, set its
 * step count, and the trajectory continues as if never interrupted. */
static void test_resume_from_state(void)
{
    const char *name = "adam_vib";
    ib_optim_config cfg = adam_cfg(IB_OPTIM_ADAM, 0.01f, 0.5f, 0.999f, 0);
    problem pr = make_problem(false);
    ib_optim *o = ib_optim_new(pr.p, &cfg);
    for (int t = 1; t <= 3; t++) {
        set_grads(&pr, name, t);
        CHECK_OK(ib_optim_step(o));
    }
    ib_optim *r = ib_optim_new(pr.p, &cfg);
    int64_t total = ib_params_total(pr.p);
    for (int k = 0; k < 2; k++)
        memcpy(ib_optim_state(r, k), ib_optim_state(o, k), (size_t)total * sizeof(float));
    ib_optim_set_steps(r, ib_optim_steps(o));
    ib_optim_free(o);
    for (int t = 4; t <= 5; t++) {
        set_grads(&pr, name, t);
        CHECK_OK(ib_optim_step(r));
        compare_params(&pr, name, t);
    }
    CHECK_EQ_INT(ib_optim_steps(r), 5);
    ib_optim_free(r);
    ib_params_free(pr.p);

    /* SGD: without set_steps the first step would copy the gradient into the
     * buffer and lose the restored momentum */
    name = "sgd_mom";
    cfg = sgd_cfg(0.02f, 0.9f, 0, false, 1e-2f);
    pr = make_problem(false);
    o = ib_optim_new(pr.p, &cfg);
    for (int t = 1; t <= 2; t++) {
        set_grads(&pr, name, t);
        CHECK_OK(ib_optim_step(o));
    }
    r = ib_optim_new(pr.p, &cfg);
    memcpy(ib_optim_state(r, 0), ib_optim_state(o, 0), (size_t)ib_params_total(pr.p) * sizeof(float));
    ib_optim_set_steps(r, 2);
    ib_optim_free(o);
    for (int t = 3; t <= 5; t++) {
        set_grads(&pr, name, t);
        CHECK_OK(ib_optim_step(r));
        compare_params(&pr, name, t);
    }
    ib_optim_free(r);
    ib_params_free(pr.p);
}

static void test_non_finite_gradient(void)
{
    ib_optim_config cfgs[3] = {sgd_cfg(0.02f, 0.9f, 0, false, 0), adam_cfg(IB_OPTIM_ADAM, 0.01f, 0.5f, 0.999f, 0),
                               adam_cfg(IB_OPTIM_ADAMW, 0.01f, 0.9f, 0.999f, 0.05f)};
    for (int c = 0; c < 3; c++) {
        cfgs[c].clip_grad_norm = 1.0f; /* clipping must not touch the grads either */
        problem pr = make_problem(true);
        ib_optim *o = ib_optim_new(pr.p, &cfgs[c]);
        set_grads(&pr, "adam_vib", 1);
        CHECK_OK(ib_optim_step(o));
        int64_t total = ib_params_total(pr.p);
        size_t bytes = (size_t)total * sizeof(float);
        float *v0 = malloc(bytes), *g0 = malloc(bytes), *s0 = malloc(bytes);
        for (int bad = 0; bad < 2; bad++) {
            set_grads(&pr, "adam_vib", 2);
            ib_params_grad(pr.p, pr.b)[2] = bad ? INFINITY : NAN;
            memcpy(v0, ib_params_values(pr.p), bytes);
            memcpy(g0, ib_params_grads(pr.p), bytes);
            memcpy(s0, ib_optim_state(o, 0), bytes);
            CHECK_EQ_INT(ib_optim_step(o), IB_ERR_NUMERIC);
            CHECK_MSG(strstr(ib_last_error(), "'b'") != NULL, "message does not name the parameter: %s",
                      ib_last_error());
            CHECK(memcmp(v0, ib_params_values(pr.p), bytes) == 0);
            CHECK(memcmp(g0, ib_params_grads(pr.p), bytes) == 0);
            CHECK(memcmp(s0, ib_optim_state(o, 0), bytes) == 0);
            CHECK_EQ_INT(ib_optim_steps(o), 1);
        }
        /* a NaN in a parameter no one updates is not the optimizer's concern */
        set_grads(&pr, "adam_vib", 2);
        ib_params_grad(pr.p, pr.frozen)[0] = NAN;
        CHECK_OK(ib_optim_step(o));
        CHECK_EQ_INT(ib_optim_steps(o), 2);
        free(v0);
        free(g0);
        free(s0);
        ib_optim_free(o);
        ib_params_free(pr.p);
    }
}

/* Freezing mid-run stops updates and the parameter's step count, as a
 * PyTorch parameter whose .grad is None. */
static void test_freeze_mid_run(void)
{
    problem pr = make_problem(false);
    ib_optim_config cfg = adam_cfg(IB_OPTIM_ADAM, 0.01f, 0.5f, 0.999f, 0);
    ib_optim *o = ib_optim_new(pr.p, &cfg);
    set_grads(&pr, "adam_vib", 1);
    CHECK_OK(ib_optim_step(o));
    ib_params_freeze(pr.p, "W", true);
    float w1[12];
    memcpy(w1, ib_params_value(pr.p, pr.w), sizeof w1);
    set_grads(&pr, "adam_vib", 2);
    CHECK_OK(ib_optim_step(o));
    CHECK(memcmp(w1, ib_params_value(pr.p, pr.w), sizeof w1) == 0);
    /* b moved on as in the reference (it is not coupled to W here: the
     * gradients are fed from the fixture) */
    ib_test_compare("b", ib_params_value(pr.p, pr.b), get("%s.b.%d", "adam_vib", 2), 3, RTOL, ATOL);
    ib_optim_free(o);
    ib_params_free(pr.p);
}

static void test_config_and_defaults(void)
{
    ib_optim_config a = ib_optim_defaults(IB_OPTIM_ADAM), w = ib_optim_defaults(IB_OPTIM_ADAMW),
                    s = ib_optim_defaults(IB_OPTIM_SGD);
    CHECK(a.lr == 1e-3f && a.beta1 == 0.9f && a.beta2 == 0.999f && a.eps == 1e-8f && a.weight_decay == 0.0f);
    CHECK(w.weight_decay == 0.01f && w.lr == 1e-3f);
    CHECK(s.lr == 0.01f && s.momentum == 0.0f && !s.nesterov && s.clip_grad_norm == 0.0f);
    ib_params *p = ib_params_new(1);
    ib_params_get(p, "x", 1, (int64_t[]){4}, (ib_init){IB_INIT_ZEROS, 0, 0}, IB_PARAM_TRAINABLE);
    ib_optim_config bad = s;
    bad.nesterov = true; /* nesterov needs momentum */
    CHECK(ib_optim_new(p, &bad) == NULL);
    CHECK(strstr(ib_last_error(), "nesterov") != NULL);
    bad = a;
    bad.beta2 = 1.0f;
    CHECK(ib_optim_new(p, &bad) == NULL);
    bad = a;
    bad.lr = -1.0f;
    CHECK(ib_optim_new(p, &bad) == NULL);
    CHECK(ib_optim_new(NULL, &a) == NULL);

    ib_optim *o = ib_optim_new(p, &s);
    CHECK_EQ_INT(ib_optim_state_count(o), 0); /* plain SGD keeps no state */
    CHECK(ib_optim_state(o, 0) == NULL);
    ib_optim_set_lr(o, 0.5f);
    CHECK(ib_optim_lr(o) == 0.5f && ib_optim_get_config(o)->lr == 0.5f);
    ib_optim_free(o);
    o = ib_optim_new(p, &a);
    CHECK_EQ_INT(ib_optim_state_count(o), 2);
    CHECK(strcmp(ib_optim_state_name(o, 0), "exp_avg") == 0);
    CHECK(strcmp(ib_optim_state_name(o, 1), "exp_avg_sq") == 0);
    CHECK(ib_optim_state_name(o, 2) == NULL);
    ib_optim_free(o);
    s.momentum = 0.9f;
    o = ib_optim_new(p, &s);
    CHECK_EQ_INT(ib_optim_state_count(o), 1);
    CHECK(strcmp(ib_optim_state_name(o, 0), "momentum_buffer") == 0);
    ib_optim_free(o);
    ib_params_free(p);
}

/* A large parameter takes the parallel, vectorised path; it must give the
 * same numbers as the scalar path, element for element.  The scalar side is
 * a store of 64 parameters of 7 elements (too short for a vector), each
 * element mirroring one element of the big parameter, picked at scattered
 * lane positions and in the tail. */
static void test_large_param_same_as_small(void)
{
    enum { NS = 64, LEN = 7 };
    const int64_t n = 100003; /* > IB_PAR_MIN, not a multiple of 8 */
    int64_t pick[NS * LEN];
    for (int j = 0; j < NS * LEN; j++)
        pick[j] = j < 3 ? n - 1 - j : (int64_t)(((uint64_t)j * 2654435761u) % (uint64_t)n);
    ib_optim_kind kinds[3] = {IB_OPTIM_SGD, IB_OPTIM_ADAM, IB_OPTIM_ADAMW};
    for (int c = 0; c < 3; c++) {
        ib_params *big = ib_params_new(1), *small = ib_params_new(1);
        int ib = ib_params_get(big, "x", 1, &n, (ib_init){IB_INIT_UNIFORM, -1, 1}, IB_PARAM_TRAINABLE);
        int is[NS];
        for (int i = 0; i < NS; i++) {
            char name[16];
            snprintf(name, sizeof name, "x%d", i);
            is[i] = ib_params_get(small, name, 1, (int64_t[]){LEN}, (ib_init){IB_INIT_ZEROS, 0, 0},
                                  IB_PARAM_TRAINABLE);
        }
        ib_optim_config cfg = ib_optim_defaults(kinds[c]);
        cfg.momentum = kinds[c] == IB_OPTIM_SGD ? 0.9f : 0.0f;
        cfg.weight_decay = 0.01f;
        ib_optim *ob = ib_optim_new(big, &cfg), *os = ib_optim_new(small, &cfg);
        for (int t = 0; t < 3; t++) {
            ib_test_fill(ib_params_grad(big, ib), n, -1, 1, 100 + (uint64_t)t);
            for (int j = 0; j < NS * LEN; j++) {
                if (t == 0)
                    ib_params_value(small, is[j / LEN])[j % LEN] = ib_params_value(big, ib)[pick[j]];
                ib_params_grad(small, is[j / LEN])[j % LEN] = ib_params_grad(big, ib)[pick[j]];
            }
            CHECK_OK(ib_optim_step(ob));
            CHECK_OK(ib_optim_step(os));
            for (int j = 0; j < NS * LEN; j++)
                CHECK_MSG(ib_params_value(small, is[j / LEN])[j % LEN] == ib_params_value(big, ib)[pick[j]],
                          "kind %d step %d element %lld: scalar %.9g, vector %.9g", c, t, (long long)pick[j],
                          ib_params_value(small, is[j / LEN])[j % LEN], ib_params_value(big, ib)[pick[j]]);
        }
        ib_optim_free(ob);
        ib_optim_free(os);
        ib_params_free(big);
        ib_params_free(small);
    }
}

/* A step is one parallel region over the whole store: with several
 * parameters (one frozen, one a buffer, sizes across the 16k-float
 * segments) and clipping, every thread count gives the same bits, for
 * the weights, the state, the clipped gradients and the norm; so does the
 * EMA update. */
static void test_step_same_bits_any_thread_count(void)
{
    const int64_t sizes[5] = {70001, 7, 16384, 33, 40000};
    int saved = ib_get_threads();
    for (int kind = 0; kind < 3; kind++) {
        float *ref = NULL;
        size_t bytes = 0;
        for (int th = 1; th <= 3; th++) {
            ib_set_threads(th);
            ib_params *p = ib_params_new(3);
            for (int i = 0; i < 5; i++) {
                char nm[8];
                snprintf(nm, sizeof nm, "p%d", i);
                ib_params_get(p, nm, 1, &sizes[i], (ib_init){IB_INIT_UNIFORM, -1, 1},
                              i == 3 ? IB_PARAM_BUFFER : IB_PARAM_TRAINABLE);
            }
            ib_params_freeze(p, "p1", true);
            ib_optim_config c = ib_optim_defaults((ib_optim_kind)kind);
            c.momentum = kind == IB_OPTIM_SGD ? 0.9f : 0.0f;
            c.weight_decay = 0.01f;
            c.clip_grad_norm = 50.0f; /* below the norm (~160): clipping on */
            ib_optim *o = ib_optim_new(p, &c);
            ib_ema *e = ib_ema_new(p, 0.9f, true);
            int64_t total = ib_params_total(p);
            bytes = (size_t)total * sizeof(float);
            for (int t = 0; t < 3; t++) {
                ib_test_fill(ib_params_grads(p), total, -1, 1, 50 + (uint64_t)t);
                CHECK_OK(ib_optim_step(o));
                CHECK_OK(ib_ema_update(e));
            }
            float *now = malloc(4 * bytes + sizeof(float));
            memcpy(now, ib_params_values(p), bytes);
            memcpy((char *)now + bytes, ib_params_grads(p), bytes);
            memcpy((char *)now + 2 * bytes, ib_optim_state(o, 0), bytes);
            memcpy((char *)now + 3 * bytes, ib_ema_shadow(e), bytes);
            float norm = ib_optim_grad_norm(o);
            memcpy((char *)now + 4 * bytes, &norm, sizeof norm);
            CHECK(norm > 50.0f);
            if (!ref)
                ref = now;
            else {
                CHECK_MSG(memcmp(ref, now, 4 * bytes + sizeof(float)) == 0, "kind %d: %d threads differ from 1",
                          kind, th);
                free(now);
            }
            ib_ema_free(e);
            ib_optim_free(o);
            ib_params_free(p);
        }
        free(ref);
    }
    ib_set_threads(saved);
}

/* Adam's AVX-512 path (taken where the CPU has AVX-512F) does the AVX2
 * path's operations per element in the same order: three steps of Adam and
 * AdamW with clipping and weight decay give the same weights, moments and
 * clipped gradients bit for bit with the AVX2 path forced.  Sizes leave
 * tails of every length class (7, 33, 70001 floats).  On a CPU without
 * AVX-512 both runs take the AVX2 path and the test says so. */
static float *adam_three_steps(ib_optim_kind kind, size_t *bytes)
{
    const int64_t sizes[4] = {70001, 7, 16384, 33};
    ib_params *p = ib_params_new(5);
    for (int i = 0; i < 4; i++) {
        char nm[8];
        snprintf(nm, sizeof nm, "p%d", i);
        ib_params_get(p, nm, 1, &sizes[i], (ib_init){IB_INIT_UNIFORM, -1, 1}, IB_PARAM_TRAINABLE);
    }
    ib_optim_config c = ib_optim_defaults(kind);
    c.weight_decay = 0.01f;
    c.clip_grad_norm = 50.0f;
    ib_optim *o = ib_optim_new(p, &c);
    int64_t total = ib_params_total(p);
    *bytes = (size_t)total * sizeof(float);
    for (int t = 0; t < 3; t++) {
        ib_test_fill(ib_params_grads(p), total, -1, 1, 70 + (uint64_t)t);
        CHECK_OK(ib_optim_step(o));
    }
    float *out = malloc(4 * *bytes);
    memcpy(out, ib_params_values(p), *bytes);
    memcpy((char *)out + *bytes, ib_params_grads(p), *bytes);
    memcpy((char *)out + 2 * *bytes, ib_optim_state(o, 0), *bytes);
    memcpy((char *)out + 3 * *bytes, ib_optim_state(o, 1), *bytes);
    ib_optim_free(o);
    ib_params_free(p);
    return out;
}

static void test_adam_avx512_same_bits_as_avx2(void)
{
    if (!ib__cpu_has_avx512())
        printf("  no AVX-512 on this CPU: both runs take the AVX2 path\n");
    ib_optim_kind kinds[2] = {IB_OPTIM_ADAM, IB_OPTIM_ADAMW};
    for (int i = 0; i < 2; i++) {
        size_t bytes = 0;
        ib__cpu_force_avx2(false);
        float *wide = adam_three_steps(kinds[i], &bytes);
        ib__cpu_force_avx2(true);
        CHECK(!ib__cpu_avx512());
        float *narrow = adam_three_steps(kinds[i], &bytes);
        ib__cpu_force_avx2(false);
        CHECK_MSG(memcmp(wide, narrow, 4 * bytes) == 0, "kind %d: AVX-512 and AVX2 paths differ", (int)kinds[i]);
        free(wide);
        free(narrow);
    }
}

/* ---- schedules ---- */

static void test_schedules_match_torch(void)
{
    /* One rounding of a double to float on each side: equal, or 1 ulp apart. */
    const double r = 1.2e-7;
    ib_schedule st = {.kind = IB_SCHED_STEP, .gamma = 0.97f, .every = 2};
    const float *want = ib_fixture_get(fixture(), "sched.step", NULL);
    for (int e = 0; e < 12; e++)
        CHECK_CLOSE(ib_schedule_lr(&st, 1e-4f, e), want[e], r, 0);
    ib_schedule ms = {.kind = IB_SCHED_MULTISTEP, .gamma = 0.1f, .n_milestones = 2, .milestones = {3, 7}};
    want = ib_fixture_get(fixture(), "sched.multistep", NULL);
    for (int e = 0; e < 10; e++)
        CHECK_CLOSE(ib_schedule_lr(&ms, 0.1f, e), want[e], r, 0);
    ib_schedule co = {.kind = IB_SCHED_COSINE, .min_lr = 1e-3f, .total = 10};
    want = ib_fixture_get(fixture(), "sched.cosine", NULL);
    for (int e = 0; e < 11; e++)
        CHECK_CLOSE(ib_schedule_lr(&co, 0.1f, e), want[e], r, 0);
    ib_schedule ex = {.kind = IB_SCHED_EXPONENTIAL, .gamma = 0.9f, .every = 1};
    want = ib_fixture_get(fixture(), "sched.exponential", NULL);
    for (int e = 0; e < 10; e++)
        CHECK_CLOSE(ib_schedule_lr(&ex, 0.05f, e), want[e], r, 0);
}

static void test_schedules_by_hand(void)
{
    const double r = 1.2e-7;
    /* Deep VIB: 1e-4 * 0.97^floor(epoch / 2), by fractional epoch */
    ib_schedule vib = {.kind = IB_SCHED_STEP, .gamma = 0.97f, .every = 2};
    CHECK_CLOSE(ib_schedule_lr(&vib, 1e-4f, 0.0), 1e-4, r, 0);
    CHECK_CLOSE(ib_schedule_lr(&vib, 1e-4f, 1.999), 1e-4, r, 0);
    CHECK_CLOSE(ib_schedule_lr(&vib, 1e-4f, 2.0), 1e-4 * 0.97, r, 0);
    CHECK_CLOSE(ib_schedule_lr(&vib, 1e-4f, 5.5), 1e-4 * 0.97 * 0.97, r, 0);
    CHECK_CLOSE(ib_schedule_lr(&vib, 1e-4f, 199.0), 1e-4 * pow(0.97, 99), r, 0);
    CHECK_CLOSE(ib_schedule_lr(&vib, 1e-4f, -3.0), 1e-4, r, 0); /* before the start: the start */
    /* smooth exponential between steps */
    ib_schedule ex = {.kind = IB_SCHED_EXPONENTIAL, .gamma = 0.5f, .every = 4};
    CHECK_CLOSE(ib_schedule_lr(&ex, 0.1f, 2.0), 0.1 * sqrt(0.5), r, 0);
    CHECK_CLOSE(ib_schedule_lr(&ex, 0.1f, 6.0), 0.1 * pow(0.5, 1.5), r, 0);
    /* cosine: half-way, and held at min_lr after the end */
    ib_schedule co = {.kind = IB_SCHED_COSINE, .min_lr = 0.0f, .total = 8};
    CHECK_CLOSE(ib_schedule_lr(&co, 0.2f, 4.0), 0.1, r, 1e-12);
    CHECK_CLOSE(ib_schedule_lr(&co, 0.2f, 2.0), 0.1 * (1 + cos(M_PI / 4)), r, 0);
    CHECK(ib_schedule_lr(&co, 0.2f, 8.0) == 0.0f && ib_schedule_lr(&co, 0.2f, 12.0) == 0.0f);
    /* linear warm-up from 0 multiplies whatever the schedule gives */
    co.warmup = 2;
    CHECK(ib_schedule_lr(&co, 0.2f, 0.0) == 0.0f);
    CHECK_CLOSE(ib_schedule_lr(&co, 0.2f, 0.5), 0.25 * 0.1 * (1 + cos(M_PI * 0.5 / 8)), r, 0);
    CHECK_CLOSE(ib_schedule_lr(&co, 0.2f, 2.0), 0.1 * (1 + cos(M_PI / 4)), r, 0);
    ib_schedule c = {.kind = IB_SCHED_CONSTANT, .warmup = 1};
    CHECK_CLOSE(ib_schedule_lr(&c, 3e-4f, 0.25), 0.75e-4, r, 0);
    CHECK(ib_schedule_lr(&c, 3e-4f, 1.0) == 3e-4f && ib_schedule_lr(&c, 3e-4f, 100.0) == 3e-4f);
    ib_schedule ms = {.kind = IB_SCHED_MULTISTEP, .gamma = 0.5f, .n_milestones = 3,
                      .milestones = {1.5, 3, 3}};
    CHECK(ib_schedule_lr(&ms, 1.0f, 1.49) == 1.0f);
    CHECK(ib_schedule_lr(&ms, 1.0f, 1.5) == 0.5f);
    CHECK(ib_schedule_lr(&ms, 1.0f, 3.0) == 0.125f); /* a repeated milestone counts twice, as torch */
    CHECK(ib_schedule_lr(NULL, 1.0f, 1.0) == 0.0f);
}

/* ---- EMA ---- */

static void test_ema_zero_debias(void)
{
    problem pr = make_problem(true);
    float frozen0[5], buffer0[4];
    memcpy(frozen0, ib_params_value(pr.p, pr.frozen), sizeof frozen0);
    memcpy(buffer0, ib_params_value(pr.p, pr.buffer), sizeof buffer0);
    const float d = 0.9f;
    ib_ema *e = ib_ema_new(pr.p, d, true);
    CHECK(e != NULL);
    CHECK(ib_ema_decay(e) == d);
    double shadow[15] = {0};
    float *w = ib_params_value(pr.p, pr.w), *b = ib_params_value(pr.p, pr.b);
    for (int t = 1; t <= 4; t++) {
        for (int k = 0; k < 12; k++)
            w[k] = (float)(0.3 * t + 0.01 * k);
        for (int k = 0; k < 3; k++)
            b[k] = (float)(-0.2 * t * t + k);
        CHECK_OK(ib_ema_update(e));
        for (int k = 0; k < 15; k++) {
            double v = k < 12 ? w[k] : b[k - 12];
            shadow[k] = (double)d * shadow[k] + (1 - (double)d) * v;
        }
    }
    CHECK_EQ_INT(ib_ema_updates(e), 4);
    /* raw shadow: float32 recurrence vs double, 4 steps of values <= 3:
     * a few float32 roundings, 1e-6 relative */
    const float *sh = ib_ema_shadow(e);
    for (int k = 0; k < 15; k++)
        CHECK_CLOSE(sh[ib_params_offset(pr.p, k < 12 ? pr.w : pr.b) + (k < 12 ? k : k - 12)], shadow[k], 1e-6, 1e-7);
    float w_train[12], b_train[3];
    memcpy(w_train, w, sizeof w_train);
    memcpy(b_train, b, sizeof b_train);
    CHECK_OK(ib_ema_swap(e));
    CHECK(ib_ema_swapped(e));
    double bias = 1 - pow(d, 4);
    for (int k = 0; k < 12; k++)
        CHECK_CLOSE(w[k], shadow[k] / bias, 1e-6, 1e-7);
    for (int k = 0; k < 3; k++)
        CHECK_CLOSE(b[k], shadow[12 + k] / bias, 1e-6, 1e-7);
    /* the debiased average of a constant is the constant: here, values that
     * were not constant are genuinely averaged (not just the last one) */
    CHECK(fabs(w[0] - w_train[0]) > 0.1);
    CHECK(memcmp(frozen0, ib_params_value(pr.p, pr.frozen), sizeof frozen0) == 0);
    CHECK(memcmp(buffer0, ib_params_value(pr.p, pr.buffer), sizeof buffer0) == 0);
    CHECK_EQ_INT(ib_ema_update(e), IB_ERR_STATE);
    CHECK_OK(ib_ema_swap(e));
    CHECK(!ib_ema_swapped(e));
    CHECK(memcmp(w_train, w, sizeof w_train) == 0);
    CHECK(memcmp(b_train, b, sizeof b_train) == 0);
    ib_ema_free(e);
    ib_params_free(pr.p);
}

static void test_ema_plain(void)
{
    problem pr = make_problem(false);
    float *w = ib_params_value(pr.p, pr.w);
    float w0[12];
    memcpy(w0, w, sizeof w0);
    const float d = 0.999f;
    ib_ema *e = ib_ema_new(pr.p, d, false);
    /* starts at the initial values: a swap before any update is the identity */
    CHECK_OK(ib_ema_swap(e));
    CHECK(memcmp(w0, w, sizeof w0) == 0);
    CHECK_OK(ib_ema_swap(e));
    double shadow[12];
    for (int k = 0; k < 12; k++)
        shadow[k] = w0[k];
    for (int t = 1; t <= 3; t++) {
        for (int k = 0; k < 12; k++)
            w[k] = w0[k] + 0.5f * (float)t;
        CHECK_OK(ib_ema_update(e));
        for (int k = 0; k < 12; k++)
            shadow[k] = shadow[k] - (shadow[k] - w[k]) * (1 - (double)d);
    }
    float w_train[12];
    memcpy(w_train, w, sizeof w_train);
    CHECK_OK(ib_ema_swap(e));
    for (int k = 0; k < 12; k++) /* no debiasing: the average stays near the start */
        CHECK_CLOSE(w[k], shadow[k], 1e-6, 1e-7);
    CHECK(fabs(w[0] - w0[0]) < 0.01);
    CHECK_OK(ib_ema_swap(e));
    CHECK(memcmp(w_train, w, sizeof w_train) == 0);
    CHECK(ib_ema_new(pr.p, 1.0f, false) == NULL);
    ib_ema_free(e);
    ib_params_free(pr.p);
}

/* A parameter created after the EMA is picked up at the next update with
 * its own count; debiasing then uses that count. */
static void test_ema_store_grows(void)
{
    ib_params *p = ib_params_new(3);
    int a = ib_params_get(p, "a", 1, (int64_t[]){2}, (ib_init){IB_INIT_CONSTANT, 1, 0}, IB_PARAM_TRAINABLE);
    ib_ema *e = ib_ema_new(p, 0.5f, true);
    CHECK_OK(ib_ema_update(e));
    CHECK_OK(ib_ema_update(e));
    int b = ib_params_get(p, "b", 1, (int64_t[]){100}, (ib_init){IB_INIT_CONSTANT, 4, 0}, IB_PARAM_TRAINABLE);
    CHECK_OK(ib_ema_update(e));
    float *sh = ib_ema_shadow(e);
    CHECK(sh != NULL);
    CHECK_CLOSE(sh[ib_params_offset(p, b)], 2.0, 0, 0); /* 0.5*0 + 0.5*4 */
    CHECK_OK(ib_ema_swap(e));
    /* constants average to themselves: a after 3 updates, b after 1 */
    CHECK_CLOSE(ib_params_value(p, a)[1], 1.0, 1e-7, 0);
    CHECK_CLOSE(ib_params_value(p, b)[99], 4.0, 1e-7, 0);
    CHECK_OK(ib_ema_swap(e));
    ib_ema_free(e);
    ib_params_free(p);
}

/* The trainer's EMA runs inside the optimizer's pass (ib__optim_set_ema),
 * and the step zeroes the gradients it consumed (ib__optim_set_zero_grads):
 * the same shadow bits and update counts as ib_ema_update after each step,
 * for SGD and Adam, with and without debiasing, over sizes across the
 * 16k-float segments, a parameter frozen for two steps, a step refused for
 * a non-finite gradient (no update of either) and two threads. */
static void test_ema_fused_same_bits(void)
{
    const int64_t sizes[4] = {70001, 7, 16384, 40000};
    int saved = ib_get_threads();
    ib_set_threads(2);
    ib_optim_kind kinds[2] = {IB_OPTIM_SGD, IB_OPTIM_ADAM};
    for (int c = 0; c < 4; c++) {
        ib_params *p[2];
        ib_optim *o[2];
        ib_ema *e[2];
        ib_optim_config cfg = ib_optim_defaults(kinds[c % 2]);
        cfg.momentum = c % 2 == 0 ? 0.9f : 0.0f;
        for (int s = 0; s < 2; s++) {
            p[s] = ib_params_new(5);
            for (int i = 0; i < 4; i++) {
                char name[8];
                snprintf(name, sizeof name, "p%d", i);
                ib_params_get(p[s], name, 1, &sizes[i], (ib_init){IB_INIT_UNIFORM, -1, 1}, IB_PARAM_TRAINABLE);
            }
            o[s] = ib_optim_new(p[s], &cfg);
            e[s] = ib_ema_new(p[s], 0.9f, c >= 2);
        }
        ib__optim_set_ema(o[0], e[0]);
        ib__optim_set_zero_grads(o[0], true); /* the trainer's other fusion: the gradients are refilled each step */
        for (int t = 0; t < 6; t++) {
            for (int s = 0; s < 2; s++) {
                ib_params_freeze(p[s], "p1", t == 2 || t == 3);
                for (int i = 0; i < 4; i++)
                    ib_test_fill(ib_params_grad(p[s], i), sizes[i], -1, 1, 40 + (uint64_t)(t * 4 + i));
                if (t == 4)
                    ib_params_grad(p[s], 3)[17] = NAN;
            }
            ib_status s0 = ib_optim_step(o[0]), s1 = ib_optim_step(o[1]);
            CHECK_EQ_INT(s0, s1);
            /* zeroed where the step consumed them (not p1 while frozen), kept after a refused step */
            for (int i = 0; i < 4; i++) {
                bool zero = s0 == IB_OK && !(i == 1 && (t == 2 || t == 3));
                const float *g0 = ib_params_grad(p[0], i), *g1 = ib_params_grad(p[1], i);
                int64_t bad = 0;
                for (int64_t k = 0; k < sizes[i]; k++)
                    bad += zero ? g0[k] != 0.0f : memcmp(&g0[k], &g1[k], sizeof(float)) != 0;
                CHECK_MSG(bad == 0, "step %d parameter %d: %lld gradients %s", t, i, (long long)bad,
                          zero ? "not zeroed" : "changed");
            }
            if (s1 == IB_OK)
                CHECK_OK(ib_ema_update(e[1]));
        }
        int64_t total = ib_params_total(p[0]);
        CHECK(memcmp(ib_ema_shadow(e[0]), ib_ema_shadow(e[1]), (size_t)total * sizeof(float)) == 0);
        CHECK(memcmp(ib_params_values(p[0]), ib_params_values(p[1]), (size_t)total * sizeof(float)) == 0);
        /* the counts: a swap debiases with them (c >= 2) */
        for (int s = 0; s < 2; s++)
            CHECK_OK(ib_ema_swap(e[s]));
        CHECK(memcmp(ib_params_values(p[0]), ib_params_values(p[1]), (size_t)total * sizeof(float)) == 0);
        for (int s = 0; s < 2; s++) {
            ib_optim_free(o[s]);
            ib_ema_free(e[s]);
            ib_params_free(p[s]);
        }
    }
    ib_set_threads(saved);
}

int main(void)
{
    IB_RUN(test_sgd_matches_torch);
    IB_RUN(test_adam_matches_torch);
    IB_RUN(test_adamw_matches_torch);
    IB_RUN(test_adamax_matches_torch);
    IB_RUN(test_clipping_matches_torch);
    IB_RUN(test_param_added_later);
    IB_RUN(test_resume_from_state);
    IB_RUN(test_non_finite_gradient);
    IB_RUN(test_step_same_bits_any_thread_count);
    IB_RUN(test_adam_avx512_same_bits_as_avx2);
    IB_RUN(test_freeze_mid_run);
    IB_RUN(test_config_and_defaults);
    IB_RUN(test_large_param_same_as_small);
    IB_RUN(test_schedules_match_torch);
    IB_RUN(test_schedules_by_hand);
    IB_RUN(test_ema_zero_debias);
    IB_RUN(test_ema_plain);
    IB_RUN(test_ema_store_grows);
    IB_RUN(test_ema_fused_same_bits);
    ib_fixture_free(fx);
    return ib_test_summary();
}
