/*
 * test_attack.c — the max reduction, and the sanity checks of the
 * adversarial attacks (docs/attacks.md): exact values and gradients of
 * ib_max; the pixel gradient through the normalisation and the EOT
 * gradient against finite differences, and one graph of S copies against
 * S passes; on a small undefended MLP trained here on synthetic blob
 * images, PGD drives robust accuracy near 0 where FGSM leaves more, PGD is
 * never weaker than FGSM, more steps and restarts are never weaker, robust
 * accuracy falls with eps, every image stays within eps and inside [0, 1];
 * CW finds small L2 perturbations, on a stochastic network too (judged on
 * its S-sample prediction); bad arguments are IB_ERR_ARG.
 */
#include "test.h"

#include "core/internal.h"

#define TOL 2e-3

/* ---- ib_max ---- */
static void test_max_values(void)
{
    ib_params *p = ib_params_new(1);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_input(g, "x", 2, (int64_t[]){3, 4});
    ib_node *rows = ib_max(g, x, 1), *cols = ib_max(g, x, 0), *all = ib_max(g, x, IB_ALL);
    ib_node *loss = ib_sum(g, rows, IB_ALL);
    ib_node_set_requires_grad(x, true);
    CHECK_OK(ib_graph_compile(g));
    /* row 0: a tie at 1 and 3 -> the first; row 1: all equal -> index 0;
     * row 2: the maximum last */
    const float v[12] = {0, 5, -1, 5, 2, 2, 2, 2, -3, -2, -1, 7};
    memcpy(ib_node_data(x), v, sizeof v);
    CHECK_OK(ib_graph_forward(g));
    CHECK_EQ_INT(ib_node_ndim(rows), 1);
    CHECK_EQ_INT(ib_node_dim(rows, 0), 3);
    CHECK_NEAR(ib_node_data(rows)[0], 5, 0);
    CHECK_NEAR(ib_node_data(rows)[1], 2, 0);
    CHECK_NEAR(ib_node_data(rows)[2], 7, 0);
    const float want_cols[4] = {2, 5, 2, 7};
    for (int j = 0; j < 4; j++)
        CHECK_NEAR(ib_node_data(cols)[j], want_cols[j], 0);
    CHECK_NEAR(ib_node_scalar(all), 7, 0);
    CHECK_OK(ib_graph_backward(g, loss));
    const float want_grad[12] = {0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1};
    for (int i = 0; i < 12; i++)
        CHECK_NEAR(ib_node_grad(x)[i], want_grad[i], 0);
    /* a NaN counts as the largest, as ib_argmax */
    ib_node_data(x)[6] = NAN;
    CHECK_OK(ib_graph_forward(g));
    CHECK(isnan(ib_node_data(rows)[1]));
    ib_graph_free(g);
    /* shape errors */
    g = ib_graph_new(p);
    x = ib_input(g, "x", 2, (int64_t[]){3, 4});
    CHECK(ib_max(g, x, 2) == NULL);
    CHECK_EQ_INT(ib_graph_status(g), IB_ERR_ARG);
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_max_gradcheck(void)
{
    ib_params *p = ib_params_new(2);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_input(g, "x", 3, (int64_t[]){3, 4, 5});
    ib_node *l1 = ib_test_weighted_sum(g, ib_max(g, x, 1));
    ib_node *l2 = ib_test_weighted_sum(g, ib_max(g, ib_max(g, x, -1), 0));
    ib_node *l3 = ib_scale(g, ib_max(g, x, IB_ALL), 1.5f);
    ib_test_compile_fill(g);
    /* distinct values at least 0.05 apart, so the +-1e-2 steps of the
     * finite differences never change which element is the maximum */
    float *xv = ib_node_data(x);
    for (int i = 0; i < 60; i++)
        xv[i] = 0.05f * (float)((i * 37) % 60) - 1.5f;
    ib_test_gradcheck(g, l1, 1, &x, 1e-2f, TOL);
    ib_test_gradcheck(g, l2, 1, &x, 1e-2f, TOL);
    ib_test_gradcheck(g, l3, 1, &x, 1e-2f, TOL);
    ib_graph_free(g);
    ib_params_free(p);
}

/* ---- synthetic data and a small MLP trained here ---- */
#define SIDE 8
#define CLASSES 4
#define BATCH 50

/* Two bright 3x3 blobs on noise, in two of the four quadrants of an 8x8
 * image; the class is the PAIR (Q0+Q3, Q1+Q2, Q0+Q1, Q2+Q3), so every
 * quadrant belongs to two classes and the network must learn
 * conjunctions, not one linear template per class.  Blob positions jitter
 * by a pixel. */
static ib_dataset *blobs(int64_t n, uint64_t stream)
{
    static const int pairs[CLASSES][2] = {{0, 3}, {1, 2}, {0, 1}, {2, 3}};
    ib_dataset *d = ib_dataset_new("blobs", n, 1, SIDE, SIDE, CLASSES);
    float u[SIDE * SIDE + 5];
    for (int64_t i = 0; i < n; i++) {
        ib_rng_uniform(7, stream, (uint64_t)i, u, SIDE * SIDE + 5);
        int k = (int)(u[SIDE * SIDE] * CLASSES) % CLASSES;
        bool on[SIDE * SIDE] = {false};
        for (int j = 0; j < 2; j++) {
            int qd = pairs[k][j];
            int r0 = (qd / 2) * 4 + (int)(u[SIDE * SIDE + 1 + 2 * j] * 2);
            int c0 = (qd % 2) * 4 + (int)(u[SIDE * SIDE + 2 + 2 * j] * 2);
            for (int r = r0; r < r0 + 3; r++)
                for (int c = c0; c < c0 + 3; c++)
                    on[r * SIDE + c] = true;
        }
        for (int q = 0; q < SIDE * SIDE; q++)
            d->images[i * SIDE * SIDE + q] = (uint8_t)(on[q] ? 255.0f - 60.0f * u[q] : u[q] < 0.7f ? 0.0f : 300.0f * (u[q] - 0.7f));
        d->labels[i] = k;
    }
    return d;
}

static void mlp(ib_graph *g, ib_node *x, ib_node **logits)
{
    ib_node *h = ib_relu(g, ib_nn_linear(g, ib_flatten(g, x), "fc1", 32, true));
    *logits = ib_nn_linear(g, h, "fc2", CLASSES, true);
}

typedef struct fixture {
    ib_params *p;
    ib_graph *g;
    ib_attack_head head;
    ib_pixel_norm pn;
    ib_dataset *test;
} fixture;

static fixture F;

/* Train the MLP with standardised inputs (so the attack must map pixels
 * through a normalisation that is not the identity). */
static void setup_mlp(void)
{
    if (F.g)
        return;
    ib_dataset *train = blobs(1000, 1);
    F.test = blobs(200, 2);
    F.p = ib_params_new(3);
    ib_batcher_config bc = {.batch_size = BATCH, .seed = 1, .shuffle = true, .norm = IB_NORM_STANDARDIZE};
    ib_batcher *bt = NULL;
    CHECK_OK(ib_batcher_new(train, &bc, &bt));
    bc = *ib_batcher_get_config(bt);
    ib_graph *tg = ib_graph_new(F.p);
    ib_node *x = ib_input(tg, "x", 4, (int64_t[]){BATCH, 1, SIDE, SIDE}), *logits;
    ib_node *y = ib_input_labels(tg, "y", BATCH);
    mlp(tg, x, &logits);
    ib_node *loss = ib_cross_entropy(tg, logits, y, 0.0f);
    CHECK_OK(ib_graph_compile(tg));
    ib_optim_config oc = ib_optim_defaults(IB_OPTIM_ADAM);
    oc.lr = 1e-2f;
    ib_optim *o = ib_optim_new(F.p, &oc);
    for (int e = 0; e < 15; e++) {
        ib_batcher_epoch(bt, e);
        while (ib_batcher_next(bt, ib_node_data(x), ib_node_labels(y), NULL)) {
            CHECK_OK(ib_graph_forward(tg));
            ib_params_zero_grad(F.p);
            CHECK_OK(ib_graph_backward(tg, loss));
            CHECK_OK(ib_optim_step(o));
        }
    }
    ib_optim_free(o);
    ib_graph_free(tg);
    ib_batcher_free(bt);
    ib_dataset_free(train);
    CHECK_OK(ib_pixel_norm_from(&bc, 1, &F.pn));
    CHECK(F.pn.std[0] > 0.1f && F.pn.std[0] < 0.5f);
    F.g = ib_graph_new(F.p);
    x = ib_input(F.g, "x", 4, (int64_t[]){BATCH, 1, SIDE, SIDE});
    mlp(F.g, x, &logits);
    CHECK_OK(ib_attack_head_build(F.g, x, logits, &F.head));
    CHECK_OK(ib_graph_compile(F.g));
}

static void teardown_mlp(void)
{
    ib_graph_free(F.g);
    ib_params_free(F.p);
    ib_dataset_free(F.test);
    memset(&F, 0, sizeof F);
}

static ib_attack_result run(ib_attack_config c)
{
    ib_attack_result r;
    CHECK_OK(ib_attack_run(&F.head, &F.pn, F.test, &c, &r));
    return r;
}

/* Every image of every row within eps of the clean image and inside [0, 1],
 * in double, exactly; the 8-bit images too. */
static void check_images(const ib_attack_result *r, ib_attack_norm norm)
{
    int64_t D = SIDE * SIDE;
    for (int k = 0; k < r->n_rows; k++) {
        const ib_attack_row *row = &r->rows[k];
        CHECK(row->images && row->images_u8);
        for (int64_t i = 0; i < r->n; i++) {
            double l2 = 0, l2u = 0, linf = 0, linfu = 0;
            for (int64_t j = 0; j < D; j++) {
                double p0 = (double)((float)F.test->images[i * D + j] / 255.0f), v = row->images[i * D + j];
                double vu = (double)((float)row->images_u8[i * D + j] / 255.0f);
                CHECK_MSG(v >= 0.0 && v <= 1.0, "pixel %g outside [0, 1]", v);
                l2 += (v - p0) * (v - p0);
                l2u += (vu - p0) * (vu - p0);
                linf = fmax(linf, fabs(v - p0));
                linfu = fmax(linfu, fabs(vu - p0));
            }
            double e = row->eps;
            if (norm == IB_ATTACK_LINF) {
                /* bytes in bytes: at most floor(255 eps) from the clean byte
                 * (eps = k/255 as a float allows k) */
                double kb = floor((double)e * 255.0 + 1e-5);
                CHECK_MSG(linf <= e && linfu * 255.0 <= kb + 1e-4, "eps %g: L-inf %.9g (bytes %.9g)", e, linf,
                          linfu * 255.0);
            } else {
                CHECK_MSG(sqrt(l2) <= e && sqrt(l2u) <= e, "eps %g: L2 %.9g (bytes %.9g)", e, sqrt(l2), sqrt(l2u));
            }
        }
    }
}

static void test_pgd_and_fgsm_linf(void)
{
    setup_mlp();
    const float eps[5] = {0.0f, 0.2f, 0.25f, 0.3f, 0.33f};
    ib_attack_config pc = ib_attack_config_default(IB_ATTACK_PGD), fc = ib_attack_config_default(IB_ATTACK_FGSM);
    pc.n_eps = fc.n_eps = 5;
    memcpy(pc.eps, eps, sizeof eps);
    memcpy(fc.eps, eps, sizeof eps);
    pc.keep_images = fc.keep_images = true;
    pc.seed = fc.seed = 11;
    ib_attack_result pr = run(pc), fr = run(fc);
    printf("  clean %.3f\n", pr.clean_acc);
    for (int k = 0; k < 5; k++)
        printf("  eps %.2f  PGD robust %.3f (bytes %.3f, success %.3f)  FGSM robust %.3f\n", (double)eps[k],
               pr.rows[k].robust_acc, pr.rows[k].robust_acc_u8, pr.rows[k].success_rate, fr.rows[k].robust_acc);
    CHECK_MSG(pr.clean_acc >= 0.95, "the MLP did not learn the blobs: clean accuracy %.3f", pr.clean_acc);
    CHECK_NEAR(pr.clean_acc, fr.clean_acc, 0);
    /* eps 0 changes nothing */
    CHECK_NEAR(pr.rows[0].robust_acc, pr.clean_acc, 0);
    CHECK_NEAR(fr.rows[0].robust_acc, fr.clean_acc, 0);
    for (int k = 0; k < 5; k++) {
        CHECK_MSG(pr.rows[k].robust_acc <= fr.rows[k].robust_acc, "eps %g: PGD %.3f weaker than FGSM %.3f",
                  (double)eps[k], pr.rows[k].robust_acc, fr.rows[k].robust_acc);
        if (k > 0) {
            CHECK(pr.rows[k].robust_acc <= pr.rows[k - 1].robust_acc);
            CHECK(fr.rows[k].robust_acc <= fr.rows[k - 1].robust_acc);
        }
        CHECK_NEAR(pr.rows[k].robust_acc + pr.rows[k].success_rate * pr.clean_acc, pr.clean_acc, 1e-9);
    }
    /* an undefended network falls to PGD at a large eps; FGSM leaves more */
    CHECK_MSG(pr.rows[4].robust_acc <= 0.01, "PGD at eps 0.33 leaves %.3f", pr.rows[4].robust_acc);
    CHECK_MSG(fr.rows[4].robust_acc > pr.rows[4].robust_acc, "FGSM %.3f, PGD %.3f at eps 0.33",
              fr.rows[4].robust_acc, pr.rows[4].robust_acc);
    CHECK_MSG(fr.rows[3].robust_acc >= pr.rows[3].robust_acc + 0.05, "FGSM %.3f, PGD %.3f at eps 0.3",
              fr.rows[3].robust_acc, pr.rows[3].robust_acc);
    /* rounding to bytes keeps nearly every success */
    CHECK(pr.rows[4].robust_acc_u8 <= 0.05);
    check_images(&pr, IB_ATTACK_LINF);
    check_images(&fr, IB_ATTACK_LINF);
    /* FGSM moves every pixel by eps unless the box stops it: eps in
     * pixels, eps / std in the model's input */
    int64_t D = SIDE * SIDE, full = 0, total = 0;
    double model_max = 0;
    for (int64_t i = 0; i < fr.n; i++)
        for (int64_t j = 0; j < D; j++) {
            float p0 = (float)F.test->images[i * D + j] / 255.0f, v = fr.rows[2].images[i * D + j];
            if (v == 0.0f || v == 1.0f || fr.rows[2].pred[i] == F.test->labels[i])
                continue;
            total++;
            full += fabs((double)v - p0) >= (double)eps[2] - 1e-6;
            model_max = fmax(model_max, fabs((double)(v - F.pn.mean[0]) / F.pn.std[0] -
                                              (double)(p0 - F.pn.mean[0]) / F.pn.std[0]));
        }
    CHECK(total > 0);
    CHECK_MSG(full >= total * 95 / 100, "%lld of %lld pixels moved by eps", (long long)full, (long long)total);
    CHECK_NEAR(model_max, eps[2] / F.pn.std[0], 1e-4);
    ib_attack_result_free(&pr);
    ib_attack_result_free(&fr);
}

/* CIFAR-10's radii sit on the byte grid (2/255, 4/255, 8/255): an image
 * k bytes from the clean one is within eps = k/255, although its float
 * pixels, each rounded on its own, can land an ulp beyond (float)(k/255).
 * The 8-bit images keep the whole k bytes: FGSM's byte images move every
 * pixel it moved by exactly k bytes, and rounding loses no success. */
static void test_bytes_on_the_grid(void)
{
    setup_mlp();
    const float eps[3] = {2.0f / 255.0f, 8.0f / 255.0f, 25.0f / 255.0f};
    ib_attack_config fc = ib_attack_config_default(IB_ATTACK_FGSM);
    fc.n_eps = 3;
    memcpy(fc.eps, eps, sizeof eps);
    fc.keep_images = true;
    fc.seed = 5;
    ib_attack_result fr = run(fc);
    int64_t D = SIDE * SIDE;
    for (int k = 0; k < 3; k++) {
        const ib_attack_row *row = &fr.rows[k];
        long kb = lrint(eps[k] * 255.0f);
        int64_t moved = 0, exact = 0;
        for (int64_t i = 0; i < fr.n; i++)
            for (int64_t j = 0; j < D; j++) {
                long b0 = F.test->images[i * D + j], q = row->images_u8[i * D + j];
                CHECK_MSG(labs(q - b0) <= kb, "eps %ld/255: byte %ld from %ld", kb, q, b0);
                float p0 = (float)b0 / 255.0f, v = row->images[i * D + j];
                if (fabs((double)v - p0) < (double)eps[k] - 1e-6)
                    continue; /* not moved (zero gradient) or stopped by the box */
                moved++;
                exact += labs(q - b0) == kb;
            }
        printf("  eps %ld/255: robust %.3f, bytes %.3f; %lld of %lld moved pixels moved %ld bytes\n", kb,
               row->robust_acc, row->robust_acc_u8, (long long)exact, (long long)moved, kb);
        CHECK(moved > 0);
        CHECK_MSG(exact == moved, "eps %ld/255: %lld of %lld pixels lost part of the step in bytes", kb,
                  (long long)(moved - exact), (long long)moved);
        CHECK_NEAR(row->robust_acc_u8, row->robust_acc, 1.5 / (double)fr.n);
    }
    check_images(&fr, IB_ATTACK_LINF);
    ib_attack_result_free(&fr);
}

static void test_more_steps_restarts_losses(void)
{
    setup_mlp();
    ib_attack_config c = ib_attack_config_default(IB_ATTACK_PGD);
    c.n_eps = 2;
    c.eps[0] = 0.25f, c.eps[1] = 0.3f;
    c.step_size = 0.03f; /* fixed, so the shorter run's iterates are a prefix of the longer's */
    c.seed = 5;
    c.steps = 2;
    ib_attack_result a = run(c);
    c.steps = 8;
    ib_attack_result b = run(c);
    c.restarts = 3;
    ib_attack_result r3 = run(c);
    c.restarts = 1;
    c.loss = IB_ATTACK_LOSS_CE;
    ib_attack_result ce = run(c);
    for (int k = 0; k < 2; k++) {
        printf("  eps %.2f  2 steps %.3f  8 steps %.3f  3 restarts %.3f  CE only %.3f\n", (double)c.eps[k],
               a.rows[k].robust_acc, b.rows[k].robust_acc, r3.rows[k].robust_acc, ce.rows[k].robust_acc);
        CHECK(b.rows[k].robust_acc <= a.rows[k].robust_acc);
        CHECK(r3.rows[k].robust_acc <= b.rows[k].robust_acc);
        CHECK(b.rows[k].robust_acc <= ce.rows[k].robust_acc);
    }
    /* the same seed gives the same result */
    c.loss = IB_ATTACK_LOSS_BOTH;
    ib_attack_result b2 = run(c);
    for (int k = 0; k < 2; k++)
        CHECK_NEAR(b2.rows[k].robust_acc, b.rows[k].robust_acc, 0);
    ib_attack_result_free(&a);
    ib_attack_result_free(&b);
    ib_attack_result_free(&b2);
    ib_attack_result_free(&r3);
    ib_attack_result_free(&ce);
}

static void test_l2_and_cw(void)
{
    setup_mlp();
    ib_attack_config c = ib_attack_config_default(IB_ATTACK_PGD);
    c.norm = IB_ATTACK_L2;
    c.n_eps = 3;
    c.eps[0] = 0.5f, c.eps[1] = 1.5f, c.eps[2] = 2.5f;
    c.steps = 20;
    c.keep_images = true;
    ib_attack_result pr = run(c);
    check_images(&pr, IB_ATTACK_L2);
    ib_attack_config w = ib_attack_config_default(IB_ATTACK_CW);
    w.n_eps = 3;
    memcpy(w.eps, c.eps, sizeof c.eps);
    w.eps[3] = INFINITY;
    w.n_eps = 4;
    w.steps = 200;
    w.step_size = 0.05f;
    w.cw_search_steps = 6;
    w.keep_images = true;
    ib_attack_result cr = run(w);
    for (int k = 0; k < 4; k++)
        printf("  eps %.2f  PGD-L2 robust %.3f  CW robust %.3f success %.3f mean L2 %.3f\n", (double)w.eps[k],
               k < 3 ? pr.rows[k].robust_acc : -1.0, cr.rows[k].robust_acc, cr.rows[k].success_rate,
               cr.rows[k].mean_l2);
    for (int k = 1; k < 3; k++)
        CHECK(pr.rows[k].robust_acc <= pr.rows[k - 1].robust_acc);
    /* CW, unbounded, fools nearly everything with small perturbations */
    CHECK(cr.rows[3].success_rate >= 0.95);
    CHECK(cr.rows[3].mean_l2 > 0.0 && cr.rows[3].mean_l2 < 3.0);
    for (int k = 1; k < 4; k++)
        CHECK(cr.rows[k].robust_acc <= cr.rows[k - 1].robust_acc);
    ib_attack_result crb = cr;
    crb.n_rows = 3; /* the unbounded row has no ball to check */
    check_images(&crb, IB_ATTACK_L2);
    for (int k = 0; k < 3; k++)
        CHECK(cr.rows[k].mean_l2 <= (double)w.eps[k]);
    /* targeted: the targets are other classes and success means reaching them */
    w.targeted = true;
    w.n_eps = 0;
    ib_attack_result tr = run(w);
    CHECK(tr.targets != NULL);
    int64_t hit = 0;
    for (int64_t i = 0; i < tr.n; i++) {
        CHECK(tr.targets[i] != F.test->labels[i]);
        hit += tr.rows[0].pred[i] == tr.targets[i];
    }
    CHECK_NEAR(tr.rows[0].success_rate, (double)hit / (double)tr.n, 1e-12);
    CHECK(tr.rows[0].success_rate >= 0.9);
    ib_attack_config ft = ib_attack_config_default(IB_ATTACK_FGSM);
    ft.targeted = true;
    ft.eps[2] = 0.4f;
    ib_attack_result fr = run(ft);
    CHECK(fr.rows[2].success_rate > 0.0);
    ib_attack_result_free(&pr);
    ib_attack_result_free(&cr);
    ib_attack_result_free(&tr);
    ib_attack_result_free(&fr);
}

/* dL/dp through the standardisation against central differences in pixels. */
static void test_pixel_gradient(void)
{
    setup_mlp();
    int64_t D = SIDE * SIDE;
    float *p = malloc((size_t)(BATCH * D) * sizeof(float)), *g = malloc((size_t)(BATCH * D) * sizeof(float));
    int32_t lab[BATCH];
    for (int64_t i = 0; i < BATCH * D; i++)
        p[i] = (float)F.test->images[i] / 255.0f;
    for (int b = 0; b < BATCH; b++)
        lab[b] = F.test->labels[b];
    double lo[BATCH], hi[BATCH], l0[BATCH];
    for (int li = 0; li < 2; li++) {
        ib_attack_loss loss = li ? IB_ATTACK_LOSS_MARGIN : IB_ATTACK_LOSS_CE;
        /* a wrong label keeps the cross-entropy off its flat, saturated part */
        for (int b = 0; b < BATCH; b++)
            lab[b] = li ? F.test->labels[b] : (F.test->labels[b] + 1) % CLASSES;
        CHECK_OK(ib_attack_loss_grad(&F.head, &F.pn, p, lab, loss, false, 1, false, 0, 0, l0, NULL, g));
        double worst = 0, scale = 0;
        for (int64_t j = 0; j < D; j += 3) {
            const float h = 1e-3f;
            int64_t e = 2 * D + j; /* example 2 */
            float keep = p[e];
            p[e] = keep + h;
            CHECK_OK(ib_attack_loss_grad(&F.head, &F.pn, p, lab, loss, false, 1, false, 0, 0, hi, NULL, NULL));
            p[e] = keep - h;
            CHECK_OK(ib_attack_loss_grad(&F.head, &F.pn, p, lab, loss, false, 1, false, 0, 0, lo, NULL, NULL));
            p[e] = keep;
            double num = (hi[2] - lo[2]) / ((double)(keep + h) - (double)(keep - h));
            worst = fmax(worst, fabs(num - g[e]));
            scale = fmax(scale, fabs(num));
        }
        CHECK(scale > 1e-3);
        CHECK_MSG(worst <= 1e-2 * scale, "loss %d: pixel gradient off by %.3g (largest %.3g)", li, worst, scale);
    }
    free(p);
    free(g);
}

/* The margin loss the attack forms outside the graph equals the same loss
 * built inside one with ib_max (max over the other classes), in value and
 * in pixel gradient. */
static void test_margin_matches_graph(void)
{
    setup_mlp();
    int64_t D = SIDE * SIDE;
    ib_graph *g = ib_graph_new(F.p);
    ib_node *x = ib_input(g, "x", 4, (int64_t[]){BATCH, 1, SIDE, SIDE}), *logits;
    ib_node *y = ib_input_labels(g, "y", BATCH);
    mlp(g, x, &logits);
    ib_node *ls = ib_log_softmax(g, logits);
    ib_node *others = ib_add(g, ls, ib_scale(g, ib_one_hot(g, y, CLASSES), -1e4f));
    ib_node *m = ib_node_keep(ib_sub(g, ib_max(g, others, 1), ib_gather(g, ls, y)));
    ib_node *loss = ib_sum(g, m, IB_ALL);
    ib_node_set_requires_grad(x, true);
    ib_graph_set_param_grads(g, false);
    CHECK_OK(ib_graph_compile(g));
    ib_graph_set_training(g, false);
    float *p = malloc((size_t)(BATCH * D) * sizeof(float)), *gp = malloc((size_t)(BATCH * D) * sizeof(float));
    int32_t lab[BATCH];
    for (int64_t i = 0; i < BATCH * D; i++) {
        /* half-way between two images, where the margin is small */
        p[i] = 0.5f * ((float)F.test->images[i] + (float)F.test->images[(i + D) % (BATCH * D)]) / 255.0f;
        ib_node_data(x)[i] = (p[i] - F.pn.mean[0]) / F.pn.std[0];
    }
    for (int b = 0; b < BATCH; b++)
        ib_node_labels(y)[b] = lab[b] = F.test->labels[b];
    CHECK_OK(ib_graph_forward(g));
    CHECK_OK(ib_graph_backward(g, loss));
    double mg[BATCH];
    CHECK_OK(ib_attack_loss_grad(&F.head, &F.pn, p, lab, IB_ATTACK_LOSS_MARGIN, false, 1, false, 0, 0, NULL, mg, gp));
    double scale = 0;
    for (int64_t i = 0; i < BATCH * D; i++)
        scale = fmax(scale, fabs(gp[i]));
    CHECK(scale > 1e-2);
    for (int b = 0; b < BATCH; b++)
        CHECK_CLOSE(mg[b], ib_node_data(m)[b], 1e-5, 1e-5);
    for (int64_t i = 0; i < BATCH * D; i++)
        CHECK_MSG(fabs(gp[i] - ib_node_grad(x)[i] / F.pn.std[0]) <= 1e-5 * scale, "pixel %lld: %.9g vs %.9g",
                  (long long)i, gp[i], ib_node_grad(x)[i] / F.pn.std[0]);
    free(p);
    free(gp);
    ib_graph_free(g);
}

/* A small stochastic network: Deep VIB bottleneck between two linears. */
static void vib_net(ib_graph *g, ib_node *x, ib_node *eps, ib_node **logits, ib_node **z)
{
    ib_node *h = ib_nn_linear(g, ib_flatten(g, x), "enc", 2 * 6, true);
    ib_bottleneck bn = ib_nn_vib(g, h, 6, 0.0f, eps);
    *z = bn.z;
    *logits = ib_nn_linear(g, bn.z, "dec", CLASSES, true);
}

/* The EOT gradient: S passes with keyed noise vs finite differences with
 * the noise held fixed, and vs one graph of S copies given the same noise. */
static void test_eot_gradient(void)
{
    enum { B = 3, S = 5, K = 6 };
    int64_t D = SIDE * SIDE;
    ib_params *p = ib_params_new(9);
    ib_graph *ga = ib_graph_new(p), *gb = ib_graph_new(p);
    ib_node *xa = ib_input(ga, "x", 4, (int64_t[]){B, 1, SIDE, SIDE}), *la, *za;
    vib_net(ga, xa, NULL, &la, &za);
    ib_attack_head ha, hb;
    CHECK_OK(ib_attack_head_build(ga, xa, la, &ha));
    CHECK_OK(ib_graph_compile(ga));
    ib_node *xb = ib_input(gb, "x", 4, (int64_t[]){B, 1, SIDE, SIDE}), *lb, *zb;
    ib_node *epsb = ib_input(gb, "eps", 2, (int64_t[]){B * S, K});
    vib_net(gb, ib_repeat(gb, xb, S), epsb, &lb, &zb);
    CHECK_OK(ib_attack_head_build(gb, xb, lb, &hb));
    CHECK_OK(ib_graph_compile(gb));
    CHECK(ib_graph_first_random(ga) != NULL);
    CHECK(ib_graph_first_random(gb) == NULL);
    ib_pixel_norm pn = {.channels = 1, .mean = {0.5f}, .std = {0.25f}};
    float px[B * SIDE * SIDE], ga_grad[B * SIDE * SIDE], gb_grad[B * SIDE * SIDE];
    ib_test_fill(px, B * D, 0.1f, 0.9f, 77);
    int32_t lab[B] = {0, 2, 3};
    const uint64_t seed = 21, step0 = 4096;
    /* graph B's noise: row b*S + s is what graph A's pass s drew for row b */
    float nz[B * K];
    for (int s = 0; s < S; s++) {
        ib_rng_normal(seed, ib__node_stream(za), step0 + (uint64_t)s, nz, B * K);
        for (int b = 0; b < B; b++)
            memcpy(ib_node_data(epsb) + (b * S + s) * K, nz + b * K, K * sizeof(float));
    }
    for (int li = 0; li < 2; li++) {
        ib_attack_loss loss = li ? IB_ATTACK_LOSS_MARGIN : IB_ATTACK_LOSS_CE;
        double l_a[B], l_b[B], m_a[B], m_b[B], hi[B], lo[B];
        CHECK_OK(ib_attack_loss_grad(&ha, &pn, px, lab, loss, false, S, false, seed, step0, l_a, m_a, ga_grad));
        CHECK_OK(ib_attack_loss_grad(&hb, &pn, px, lab, loss, false, S, false, seed, step0, l_b, m_b, gb_grad));
        double scale = 0;
        for (int b = 0; b < B; b++) {
            CHECK_CLOSE(l_a[b], l_b[b], 1e-5, 1e-6);
            CHECK_CLOSE(m_a[b], m_b[b], 1e-5, 1e-6);
        }
        for (int64_t e = 0; e < B * D; e++)
            scale = fmax(scale, fabs(ga_grad[e]));
        for (int64_t e = 0; e < B * D; e++)
            CHECK_MSG(fabs(ga_grad[e] - gb_grad[e]) <= 1e-5 * scale + 1e-7, "element %lld: S passes %.9g, one graph %.9g",
                      (long long)e, ga_grad[e], gb_grad[e]);
        /* finite differences of the S-sample loss, noise fixed by step0 */
        double worst = 0, nscale = 0;
        for (int64_t e = 1; e < B * D; e += 7) {
            const float h = 1e-3f;
            float keep = px[e];
            px[e] = keep + h;
            CHECK_OK(ib_attack_loss_grad(&ha, &pn, px, lab, loss, false, S, false, seed, step0, hi, NULL, NULL));
            px[e] = keep - h;
            CHECK_OK(ib_attack_loss_grad(&ha, &pn, px, lab, loss, false, S, false, seed, step0, lo, NULL, NULL));
            px[e] = keep;
            int b = (int)(e / D);
            double num = (hi[b] - lo[b]) / ((double)(keep + h) - (double)(keep - h));
            worst = fmax(worst, fabs(num - ga_grad[e]));
            nscale = fmax(nscale, fabs(num));
        }
        CHECK(nscale > 1e-4);
        CHECK_MSG(worst <= 1e-2 * nscale, "EOT gradient (loss %d) off by %.3g (largest %.3g)", li, worst, nscale);
    }
    /* The passes after the first redraw the noise from the first random op
     * (the encoder is not recomputed): the S-sample CE equals the one made
     * from S full forwards, pass s at step step0 + s, read out here. */
    {
        double l_a[B];
        CHECK_OK(ib_attack_loss_grad(&ha, &pn, px, lab, IB_ATTACK_LOSS_CE, false, S, false, seed, step0, l_a, NULL,
                                     ga_grad));
        float lg[S][B * CLASSES];
        for (int64_t e = 0; e < B * D; e++)
            ib_node_data(xa)[e] = (px[e] - pn.mean[0]) / pn.std[0];
        ib_graph_set_training(ga, false);
        ib_graph_set_sampling(ga, true);
        ib_graph_set_seed(ga, seed);
        for (int sp = 0; sp < S; sp++) {
            ib_graph_set_step(ga, step0 + (uint64_t)sp);
            CHECK_OK(ib_graph_forward(ga));
            memcpy(lg[sp], ib_node_data(la), sizeof lg[sp]);
        }
        CHECK(memcmp(lg[0], lg[1], sizeof lg[0]) != 0); /* the passes drew different noise */
        for (int b = 0; b < B; b++) {
            double sum = 0;
            for (int sp = 0; sp < S; sp++) {
                const float *l = lg[sp] + b * CLASSES;
                double mx = -INFINITY, z = 0;
                for (int c = 0; c < CLASSES; c++)
                    mx = fmax(mx, (double)l[c]);
                for (int c = 0; c < CLASSES; c++)
                    z += exp((double)l[c] - mx);
                sum += exp((double)l[lab[b]] - mx) / z;
            }
            CHECK_CLOSE(l_a[b], -log(sum / S), 1e-12, 1e-12);
        }
    }
    /* an attack on the stochastic network runs both paths and stays monotone */
    ib_dataset *d = blobs(6, 3);
    ib_attack_config c = ib_attack_config_default(IB_ATTACK_PGD);
    c.steps = 5;
    c.eot_samples = 4;
    ib_attack_result r;
    CHECK_OK(ib_attack_run(&ha, &pn, d, &c, &r));
    CHECK(r.stochastic);
    CHECK_EQ_INT(r.samples, 4);
    for (int k = 0; k < r.n_rows; k++)
        CHECK(r.rows[k].robust_acc <= (k ? r.rows[k - 1].robust_acc : r.clean_acc));
    ib_attack_result_free(&r);
    ib_dataset_free(d);
    ib_graph_free(ga);
    ib_graph_free(gb);
    ib_params_free(p);
}

/* EOT over particles (IMB): a network of Bernoulli layers with particles
 * draws its noise in eval mode, so the attack treats it as stochastic;
 * its logits are already the particle average, and each of the S passes
 * draws all particles again (S * P paths).  The S-sample gradient uses the
 * noise each pass drew (held by the pass's step): with Gumbel-sigmoid
 * layers the loss is smooth in the pixels for held noise, so the gradient
 * matches finite differences of the S-sample loss at the same seed and
 * step0; another step0 draws other noise and gives another gradient. */
static void test_eot_over_particles(void)
{
    enum { B = 3, S = 4 };
    int64_t D = SIDE * SIDE;
    static const char *const text[2] = {
        "model imb-attack\ninput 1 8 8\nclasses 4\nflatten\n"
        "bernoulli 12 particles=3 grad=gumbel temp=0.7 name=b1\nbernoulli 8 particles=2 grad=gumbel temp=0.7 name=b2\n"
        "linear 4 name=out\n",
        "model imb-attack-st\ninput 1 8 8\nclasses 4\nflatten\n"
        "bernoulli 12 particles=3 name=b1\nbernoulli 8 particles=2 name=b2\nlinear 4 name=out\n"};
    for (int form = 0; form < 2; form++) {
        ib_model *m = NULL;
        CHECK_OK(ib_model_parse(text[form], "imb", &m));
        ib_params *p = ib_params_new(5);
        ib_graph *g = ib_graph_new(p);
        ib_node *x = ib_input(g, "x", 4, (int64_t[]){B, 1, SIDE, SIDE});
        ib_model_out mo;
        CHECK_OK(ib_model_build(m, g, x, NULL, &mo));
        CHECK_EQ_INT(mo.paths, 6);
        CHECK_EQ_INT(ib_node_dim(mo.logits, 0), B); /* the particle average: one row per example */
        ib_attack_head h;
        CHECK_OK(ib_attack_head_build(g, x, mo.logits, &h));
        CHECK_OK(ib_graph_compile(g));
        CHECK(ib_graph_first_random(g) != NULL);
        ib_pixel_norm pn = {.channels = 1, .mean = {0.5f}, .std = {0.25f}};
        float px[B * SIDE * SIDE], g1[B * SIDE * SIDE], g2[B * SIDE * SIDE], g3[B * SIDE * SIDE];
        ib_test_fill(px, B * D, 0.1f, 0.9f, 78);
        int32_t lab[B] = {1, 0, 3};
        const uint64_t seed = 33, step0 = 8192;
        double l1[B], l2[B], hi[B], lo[B];
        CHECK_OK(ib_attack_loss_grad(&h, &pn, px, lab, IB_ATTACK_LOSS_CE, false, S, false, seed, step0, l1, NULL, g1));
        CHECK_OK(ib_attack_loss_grad(&h, &pn, px, lab, IB_ATTACK_LOSS_CE, false, S, false, seed, step0, l2, NULL, g2));
        CHECK(memcmp(g1, g2, sizeof g1) == 0 && memcmp(l1, l2, sizeof l1) == 0); /* the same noise again */
        CHECK_OK(ib_attack_loss_grad(&h, &pn, px, lab, IB_ATTACK_LOSS_CE, false, S, false, seed, step0 + 4096, l2,
                                     NULL, g3));
        CHECK_MSG(memcmp(g1, g3, sizeof g1) != 0 && memcmp(l1, l2, sizeof l1) != 0, "form %d: other noise, same "
                  "gradient", form);
        double scale = 0;
        for (int64_t e = 0; e < B * D; e++) {
            CHECK(isfinite(g1[e]));
            scale = fmax(scale, fabs(g1[e]));
        }
        CHECK_MSG(scale > 1e-6, "form %d: no gradient reaches the pixels", form);
        if (form == 0) { /* Gumbel-sigmoid: finite differences with the noise held */
            double worst = 0, nscale = 0;
            for (int64_t e = 2; e < B * D; e += 5) {
                const float step = 1e-3f;
                float keep = px[e];
                px[e] = keep + step;
                CHECK_OK(ib_attack_loss_grad(&h, &pn, px, lab, IB_ATTACK_LOSS_CE, false, S, false, seed, step0, hi,
                                             NULL, NULL));
                px[e] = keep - step;
                CHECK_OK(ib_attack_loss_grad(&h, &pn, px, lab, IB_ATTACK_LOSS_CE, false, S, false, seed, step0, lo,
                                             NULL, NULL));
                px[e] = keep;
                int b = (int)(e / D);
                double num = (hi[b] - lo[b]) / ((double)(keep + step) - (double)(keep - step));
                worst = fmax(worst, fabs(num - g1[e]));
                nscale = fmax(nscale, fabs(num));
            }
            CHECK(nscale > 1e-4);
            CHECK_MSG(worst <= 2e-2 * nscale, "EOT gradient over particles off by %.3g (largest %.3g)", worst, nscale);
        }
        /* the attack runs: stochastic, S samples, robust accuracy never above clean */
        ib_dataset *d = blobs(6, 3);
        ib_attack_config c = ib_attack_config_default(IB_ATTACK_PGD);
        c.steps = 3;
        c.eot_samples = S;
        ib_attack_result r;
        CHECK_OK(ib_attack_run(&h, &pn, d, &c, &r));
        CHECK(r.stochastic);
        CHECK_EQ_INT(r.samples, S);
        for (int k = 0; k < r.n_rows; k++)
            CHECK(r.rows[k].robust_acc <= r.clean_acc);
        ib_attack_result_free(&r);
        ib_dataset_free(d);
        ib_graph_free(g);
        ib_params_free(p);
        ib_model_free(m);
    }
}

/* CW on a stochastic network: a minimum-norm attack ends on the decision
 * boundary, where the S-sample prediction is a coin flip between noise
 * draws.  A candidate must therefore fool the prediction the attack is
 * judged on (the judge's noise), not only the attack's own draw, and the
 * search over c must hear of that: unbounded, CW then fools nearly every
 * example, untargeted and targeted, as it does a deterministic network. */
static void test_cw_stochastic(void)
{
    setup_mlp(); /* F.test */
    ib_dataset *train = blobs(1000, 1);
    ib_params *p = ib_params_new(5);
    ib_batcher_config bc = {.batch_size = BATCH, .seed = 1, .shuffle = true, .norm = IB_NORM_STANDARDIZE};
    ib_batcher *bt = NULL;
    CHECK_OK(ib_batcher_new(train, &bc, &bt));
    bc = *ib_batcher_get_config(bt);
    ib_graph *tg = ib_graph_new(p);
    ib_node *x = ib_input(tg, "x", 4, (int64_t[]){BATCH, 1, SIDE, SIDE}), *logits, *z;
    ib_node *y = ib_input_labels(tg, "y", BATCH);
    vib_net(tg, x, NULL, &logits, &z);
    ib_node *loss = ib_cross_entropy(tg, logits, y, 0.0f);
    CHECK_OK(ib_graph_compile(tg));
    ib_optim_config oc = ib_optim_defaults(IB_OPTIM_ADAM);
    oc.lr = 1e-2f;
    ib_optim *o = ib_optim_new(p, &oc);
    uint64_t step = 0;
    for (int e = 0; e < 15; e++) {
        ib_batcher_epoch(bt, e);
        while (ib_batcher_next(bt, ib_node_data(x), ib_node_labels(y), NULL)) {
            ib_graph_set_step(tg, step++);
            CHECK_OK(ib_graph_forward(tg));
            ib_params_zero_grad(p);
            CHECK_OK(ib_graph_backward(tg, loss));
            CHECK_OK(ib_optim_step(o));
        }
    }
    ib_optim_free(o);
    ib_graph_free(tg);
    ib_batcher_free(bt);
    ib_dataset_free(train);
    ib_pixel_norm pn;
    CHECK_OK(ib_pixel_norm_from(&bc, 1, &pn));
    ib_graph *g = ib_graph_new(p);
    x = ib_input(g, "x", 4, (int64_t[]){BATCH, 1, SIDE, SIDE});
    vib_net(g, x, NULL, &logits, &z);
    ib_attack_head h;
    CHECK_OK(ib_attack_head_build(g, x, logits, &h));
    CHECK_OK(ib_graph_compile(g));
    ib_attack_config w = ib_attack_config_default(IB_ATTACK_CW);
    w.n_eps = 0;
    w.steps = 100;
    w.step_size = 0.05f;
    w.cw_search_steps = 5;
    w.eot_samples = 8;
    for (int t = 0; t < 2; t++) {
        w.targeted = t == 1;
        ib_attack_result r;
        CHECK_OK(ib_attack_run(&h, &pn, F.test, &w, &r));
        CHECK(r.stochastic);
        printf("  stochastic CW %s: clean %.3f robust %.3f success %.3f mean L2 %.3f\n",
               t ? "targeted" : "untargeted", r.clean_acc, r.rows[0].robust_acc, r.rows[0].success_rate,
               r.rows[0].mean_l2);
        CHECK(r.clean_acc >= 0.9);
        CHECK_MSG(r.rows[0].success_rate >= 0.95, "unbounded CW fooled only %.3f of a stochastic network",
                  r.rows[0].success_rate);
        CHECK(r.rows[0].mean_l2 > 0.0 && r.rows[0].mean_l2 < 3.0);
        ib_attack_result_free(&r);
    }
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_bad_arguments(void)
{
    ib_attack_config c = ib_attack_config_default(IB_ATTACK_PGD);
    CHECK_OK(ib_attack_config_check(&c));
    c.eps[1] = -0.1f;
    CHECK_EQ_INT(ib_attack_config_check(&c), IB_ERR_ARG);
    c = ib_attack_config_default(IB_ATTACK_PGD);
    c.eps[0] = NAN;
    CHECK_EQ_INT(ib_attack_config_check(&c), IB_ERR_ARG);
    c = ib_attack_config_default(IB_ATTACK_PGD);
    c.steps = 0;
    CHECK_EQ_INT(ib_attack_config_check(&c), IB_ERR_ARG);
    c = ib_attack_config_default(IB_ATTACK_PGD);
    c.restarts = 0;
    CHECK_EQ_INT(ib_attack_config_check(&c), IB_ERR_ARG);
    c = ib_attack_config_default(IB_ATTACK_FGSM);
    c.n_eps = 0;
    CHECK_EQ_INT(ib_attack_config_check(&c), IB_ERR_ARG);
    c = ib_attack_config_default(IB_ATTACK_CW);
    CHECK_OK(ib_attack_config_check(&c));
    c.norm = IB_ATTACK_LINF;
    CHECK_EQ_INT(ib_attack_config_check(&c), IB_ERR_ARG);
    CHECK(strstr(ib_last_error(), "L2") != NULL);
    c = ib_attack_config_default(IB_ATTACK_CW);
    c.cw_c0 = 0;
    CHECK_EQ_INT(ib_attack_config_check(&c), IB_ERR_ARG);
    ib_attack_kind k;
    CHECK_EQ_INT(ib_attack_kind_parse("deepfool", &k), IB_ERR_ARG);
    CHECK(strstr(ib_last_error(), "fgsm, pgd, cw") != NULL);
    CHECK_OK(ib_attack_kind_parse("cw", &k));
    CHECK_EQ_INT(k, IB_ATTACK_CW);
    ib_attack_norm nm;
    CHECK_EQ_INT(ib_attack_norm_parse("l1", &nm), IB_ERR_ARG);
    ib_attack_loss ls;
    CHECK_OK(ib_attack_loss_parse("margin", &ls));
    CHECK_EQ_INT(ls, IB_ATTACK_LOSS_MARGIN);
    CHECK(strcmp(ib_attack_kind_name(IB_ATTACK_PGD), "pgd") == 0);
    CHECK(ib_attack_kind_name((ib_attack_kind)7) == NULL);
    /* the run refuses before any work; the result is left zeroed */
    setup_mlp();
    c = ib_attack_config_default(IB_ATTACK_PGD);
    c.steps = 0;
    ib_attack_result r;
    CHECK_EQ_INT(ib_attack_run(&F.head, &F.pn, F.test, &c, &r), IB_ERR_ARG);
    CHECK(r.n_rows == 0 && r.clean_pred == NULL);
    c = ib_attack_config_default(IB_ATTACK_PGD);
    c.targeted = true;
    int32_t *t = calloc((size_t)F.test->n, sizeof(int32_t));
    for (int64_t i = 0; i < F.test->n; i++)
        t[i] = F.test->labels[i];
    c.targets = t; /* a target equal to the label is no target */
    CHECK_EQ_INT(ib_attack_run(&F.head, &F.pn, F.test, &c, &r), IB_ERR_ARG);
    free(t);
    ib_pixel_norm bad = F.pn;
    bad.std[0] = 0;
    CHECK_EQ_INT(ib_attack_run(&F.head, &bad, F.test, &c, &r), IB_ERR_ARG);
    ib_batcher_config bc = {.batch_size = 1, .norm = IB_NORM_STANDARDIZE};
    CHECK_EQ_INT(ib_pixel_norm_from(&bc, 1, &bad), IB_ERR_ARG);
    bc.norm = IB_NORM_SYMMETRIC;
    CHECK_OK(ib_pixel_norm_from(&bc, 3, &bad));
    CHECK(bad.mean[2] == 0.5f && bad.std[2] == 0.5f);
    /* a compiled graph takes no head; a forward-only one can't attack */
    ib_attack_head h;
    CHECK_EQ_INT(ib_attack_head_build(F.g, F.head.x, F.head.logits, &h), IB_ERR_STATE);
}

int main(void)
{
    ib_set_threads(1);
    IB_RUN(test_max_values);
    IB_RUN(test_max_gradcheck);
    IB_RUN(test_pixel_gradient);
    IB_RUN(test_margin_matches_graph);
    IB_RUN(test_eot_gradient);
    IB_RUN(test_eot_over_particles);
    IB_RUN(test_pgd_and_fgsm_linf);
    IB_RUN(test_bytes_on_the_grid);
    IB_RUN(test_more_steps_restarts_losses);
    IB_RUN(test_l2_and_cw);
    IB_RUN(test_cw_stochastic);
    IB_RUN(test_bad_arguments);
    teardown_mlp();
    return ib_test_summary();
}
