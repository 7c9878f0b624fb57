/*
 * calibration_internal.h — the running sums behind ib_calibration, so
 * ib_evaluate can add a batch at a time without keeping every probability.
 */
#ifndef IB_CALIBRATION_INTERNAL_H
#define IB_CALIBRATION_INTERNAL_H

#include "ibnet.h"

typedef struct ib__calib_acc {
    int64_t n;
    double brier, entropy;
    int64_t count[IB_CALIBRATION_BINS], correct[IB_CALIBRATION_BINS];
    double conf[IB_CALIBRATION_BINS]; /* sums of confidences */
} ib__calib_acc;

/* Add one row of probabilities p (classes) with label y (in range). */
void ib__calib_add(ib__calib_acc *a, const double *p, int classes, int y);
/* The figures of everything added (all zero when nothing was). */
void ib__calib_finish(const ib__calib_acc *a, ib_calibration *out);

#endif
