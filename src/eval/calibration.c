/*
 * calibration.c — how far a predictor's confidence is from its accuracy:
 * expected calibration error over 15 equal-width confidence bins (with the
 * bins themselves, the reliability diagram), Brier score and mean
 * predictive entropy.  Sums in double and kept per bin, so a data set can
 * be added a batch at a time (ib_evaluate) or all at once
 * (ib_calibration_compute); both give the same figures.
 */
#include "core/internal.h"
#include "eval/calibration_internal.h"

#include <math.h>

void ib__calib_add(ib__calib_acc *a, const double *p, int classes, int y)
{
    int pred = 0;
    double brier = 0, ent = 0;
    for (int c = 0; c < classes; c++) {
        if (p[c] > p[pred])
            pred = c;
        double d = p[c] - (c == y ? 1.0 : 0.0);
        brier += d * d;
        if (p[c] > 0)
            ent -= p[c] * log(p[c]);
    }
    double conf = p[pred];
    /* bin b holds (b/B, (b+1)/B]: ceil(conf * B) - 1, clamped so 0 and
     * rounding above 1 stay inside */
    int b = (int)ceil(conf * IB_CALIBRATION_BINS) - 1;
    b = b < 0 ? 0 : b >= IB_CALIBRATION_BINS ? IB_CALIBRATION_BINS - 1 : b;
    a->n++;
    a->brier += brier;
    a->entropy += ent;
    a->count[b]++;
    a->correct[b] += pred == y;
    a->conf[b] += conf;
}

void ib__calib_finish(const ib__calib_acc *a, ib_calibration *out)
{
    memset(out, 0, sizeof *out);
    if (a->n == 0)
        return;
    double n = (double)a->n;
    out->brier = a->brier / n;
    out->entropy = a->entropy / n;
    for (int b = 0; b < IB_CALIBRATION_BINS; b++) {
        out->bin_count[b] = a->count[b];
        if (!a->count[b])
            continue;
        double k = (double)a->count[b];
        out->bin_conf[b] = a->conf[b] / k;
        out->bin_acc[b] = (double)a->correct[b] / k;
        out->ece += k / n * fabs(out->bin_acc[b] - out->bin_conf[b]);
    }
}

ib_status ib_calibration_compute(const double *p, const int32_t *y, int64_t n, int classes, ib_calibration *out)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!out || n < 0 || classes < 1 || (n > 0 && (!p || !y)))
        return ib__error(IB_ERR_ARG, "ib_calibration_compute: NULL argument, n < 0 or classes < 1");
    for (int64_t i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= classes)
            return ib__error(IB_ERR_ARG, "ib_calibration_compute: label %d of row %lld is outside 0..%d", (int)y[i],
                             (long long)i, classes - 1);
    ib__calib_acc a = {0};
    for (int64_t i = 0; i < n; i++)
        ib__calib_add(&a, p + i * classes, classes, y[i]);
    ib__calib_finish(&a, out);
    return IB_OK;
}
