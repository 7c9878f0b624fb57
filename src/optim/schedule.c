/*
 * schedule.c — learning-rate schedules as pure functions of the fractional
 * epoch, so a resumed run, a per-step schedule and a per-epoch schedule all
 * agree without any scheduler state to save.
 *
 * Powers and cosines are taken in double from the decimals the caller meant
 * (0.97f -> 0.97), so the result is PyTorch's StepLR / MultiStepLR /
 * CosineAnnealingLR value rounded once to float.
 *
 * A schedule holds no learning rate: the base rate is the optimizer's
 * (ib_optim_config.lr, as a PyTorch scheduler reads its optimizer's), passed
 * in, so the rate lives in one place and cannot disagree with itself.
 */
#include "core/internal.h"

#include <math.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif


float ib_schedule_lr(const ib_schedule *s, float base_lr, double epoch)
{
    if (!s)
        return 0.0f;
    if (!(epoch > 0.0)) /* negative or NaN: the start */
        epoch = 0.0;
    double lr = ib__as_decimal(base_lr), gamma = ib__as_decimal(s->gamma), v = lr;
    switch (s->kind) {
    case IB_SCHED_CONSTANT: break;
    case IB_SCHED_STEP:
        if (s->every > 0)
            v = lr * pow(gamma, floor(epoch / s->every));
        break;
    case IB_SCHED_EXPONENTIAL:
        if (s->every > 0)
            v = lr * pow(gamma, epoch / s->every);
        break;
    case IB_SCHED_MULTISTEP: {
        int passed = 0;
        for (int k = 0; k < s->n_milestones && k < 8; k++)
            passed += s->milestones[k] <= epoch;
        v = lr * pow(gamma, passed);
        break;
    }
    case IB_SCHED_COSINE: {
        double min_lr = ib__as_decimal(s->min_lr);
        double t = s->total > 0 ? fmin(epoch / s->total, 1.0) : 1.0;
        v = min_lr + (lr - min_lr) * (1.0 + cos(M_PI * t)) / 2.0;
        break;
    }
    }
    if (s->warmup > 0 && epoch < s->warmup)
        v *= epoch / s->warmup;
    return (float)v;
}
