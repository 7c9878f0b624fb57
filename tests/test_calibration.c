/*
 * test_calibration.c — ECE, Brier score and predictive entropy
 * (ib_calibration_compute, the sums ib_evaluate uses) on synthetic
 * predictors whose answers are known:
 * - perfectly calibrated: the label agrees with the prediction with
 *   probability equal to the confidence, so ECE is only sampling noise;
 *   with 200000 examples in 8 occupied bins that noise is ~0.003, and the
 *   test allows 0.01;
 * - constant confidence c: one bin, ECE = |c - accuracy| exactly;
 * - Brier and entropy of small rows worked by hand;
 * - the bins: edges (b/15, (b+1)/15], counts summing to n;
 * - bad arguments are IB_ERR_ARG.
 */
#include "test.h"

#include <math.h>

static double u01(uint64_t stream, uint64_t i)
{
    return (double)(ib_rng_u64(7, stream, 0, i) >> 11) / 9007199254740992.0;
}

static void test_perfectly_calibrated_is_near_zero(void)
{
    enum { N = 200000 };
    double *p = malloc(sizeof(double) * 2 * N);
    int32_t *y = malloc(sizeof(int32_t) * N);
    CHECK(p && y);
    for (int64_t i = 0; i < N; i++) {
        double q = 0.5 + 0.5 * u01(1, (uint64_t)i); /* confidence in [0.5, 1) */
        int pred = u01(2, (uint64_t)i) < 0.5;       /* predicted class 0 or 1 */
        p[2 * i + pred] = q;
        p[2 * i + 1 - pred] = 1 - q;
        y[i] = u01(3, (uint64_t)i) < q ? pred : 1 - pred; /* right with probability q */
    }
    ib_calibration c;
    CHECK_OK(ib_calibration_compute(p, y, N, 2, &c));
    CHECK_MSG(c.ece < 0.01, "ECE of a calibrated predictor %g", c.ece);
    /* expected Brier of a calibrated binary predictor: E[2 q (1 - q)] over
     * q ~ U[0.5, 1] = 1/3 */
    CHECK_NEAR(c.brier, 1.0 / 3.0, 0.01);
    int64_t total = 0;
    for (int b = 0; b < IB_CALIBRATION_BINS; b++)
        total += c.bin_count[b];
    CHECK_EQ_INT(total, N);
    CHECK_EQ_INT(c.bin_count[0], 0); /* no confidence below 0.5 */
    free(p);
    free(y);
}

static void test_constant_confidence_gives_gap(void)
{
    /* 10 classes, confidence 0.8 on class 0 every row, the rest spread
     * evenly; the label is 0 on 37 of 100 rows: ECE = |0.8 - 0.37| */
    enum { N = 100, C = 10 };
    double p[N * C];
    int32_t y[N];
    for (int i = 0; i < N; i++) {
        for (int c = 0; c < C; c++)
            p[i * C + c] = c == 0 ? 0.8 : 0.2 / (C - 1);
        y[i] = i < 37 ? 0 : 1 + i % (C - 1);
    }
    ib_calibration c;
    CHECK_OK(ib_calibration_compute(p, y, N, C, &c));
    CHECK_NEAR(c.ece, 0.8 - 0.37, 1e-12);
    int bin = (int)ceil(0.8 * IB_CALIBRATION_BINS) - 1; /* 0.8 lies in (11/15, 12/15] */
    CHECK_EQ_INT(bin, 11);
    CHECK_EQ_INT(c.bin_count[bin], N);
    CHECK_NEAR(c.bin_conf[bin], 0.8, 1e-12);
    CHECK_NEAR(c.bin_acc[bin], 0.37, 1e-12);
    /* constant confidence above the accuracy and below it */
    for (int i = 0; i < N; i++)
        y[i] = i < 95 ? 0 : 1;
    CHECK_OK(ib_calibration_compute(p, y, N, C, &c));
    CHECK_NEAR(c.ece, 0.95 - 0.8, 1e-12);
}

static void test_brier_and_entropy_by_hand(void)
{
    /* row 1: (0.7, 0.2, 0.1), label 0: Brier 0.3^2 + 0.2^2 + 0.1^2 = 0.14;
     * row 2: (0.5, 0.5, 0), label 2: 0.25 + 0.25 + 1 = 1.5 */
    double p[6] = {0.7, 0.2, 0.1, 0.5, 0.5, 0.0};
    int32_t y[2] = {0, 2};
    ib_calibration c;
    CHECK_OK(ib_calibration_compute(p, y, 2, 3, &c));
    CHECK_NEAR(c.brier, (0.14 + 1.5) / 2, 1e-12);
    double h1 = -(0.7 * log(0.7) + 0.2 * log(0.2) + 0.1 * log(0.1)), h2 = log(2.0); /* 0 ln 0 = 0 */
    CHECK_NEAR(c.entropy, (h1 + h2) / 2, 1e-12);
    /* ECE: row 1 (conf 0.7, right) in bin 10, row 2 (conf 0.5, class 0 on
     * the tie, wrong) in bin 7: (|1 - 0.7| + |0 - 0.5|) / 2 */
    CHECK_NEAR(c.ece, (0.3 + 0.5) / 2, 1e-12);
    CHECK_EQ_INT(c.bin_count[10], 1);
    CHECK_EQ_INT(c.bin_count[7], 1);
    /* a one-hot right prediction: all zero */
    double q[3] = {0, 1, 0};
    int32_t yq = 1;
    CHECK_OK(ib_calibration_compute(q, &yq, 1, 3, &c));
    CHECK_NEAR(c.brier, 0, 0);
    CHECK_NEAR(c.entropy, 0, 0);
    CHECK_NEAR(c.ece, 0, 0);
    CHECK_EQ_INT(c.bin_count[IB_CALIBRATION_BINS - 1], 1); /* confidence 1 is in the last bin */
}

static void test_bad_arguments(void)
{
    double p[2] = {0.5, 0.5};
    int32_t y = 2;
    ib_calibration c;
    CHECK_EQ_INT(ib_calibration_compute(p, &y, 1, 2, &c), IB_ERR_ARG);
    CHECK_EQ_INT(ib_calibration_compute(NULL, &y, 1, 2, &c), IB_ERR_ARG);
    CHECK_EQ_INT(ib_calibration_compute(p, &y, 1, 0, &c), IB_ERR_ARG);
    CHECK_OK(ib_calibration_compute(NULL, NULL, 0, 2, &c)); /* nothing: all zero */
    CHECK_NEAR(c.ece, 0, 0);
}

int main(void)
{
    IB_RUN(test_perfectly_calibrated_is_near_zero);
    IB_RUN(test_constant_confidence_gives_gap);
    IB_RUN(test_brier_and_entropy_by_hand);
    IB_RUN(test_bad_arguments);
    return ib_test_summary();
}
