/*
 * loss_watch.c — see loss_watch.h for the rules and their thresholds.
 */
#include "train/loss_watch.h"

#include <math.h>
#include <stdio.h>

ib__loss_watch_config ib__loss_watch_defaults(void)
{
    return (ib__loss_watch_config){
        .warmup_steps = 20, .smoothing = 0.1, .max_ratio = 1e3, .max_growth = 1e3, .floor_ratio = 1e-2};
}

void ib__loss_watch_init(ib__loss_watch *w, const ib__loss_watch_config *cfg)
{
    w->cfg = cfg ? *cfg : ib__loss_watch_defaults();
    if (!(w->cfg.smoothing > 0 && w->cfg.smoothing <= 1))
        w->cfg.smoothing = 1;
    if (w->cfg.warmup_steps < 1)
        w->cfg.warmup_steps = 1;
    w->steps = 0;
    w->ref = 1;
    w->smooth = 0;
    w->min_smooth = INFINITY;
    w->last = 0;
    w->restart_smooth = false;
}

void ib__loss_watch_restore(ib__loss_watch *w, double ref, double lowest)
{
    if (!(ref > 0 && lowest > 0 && isfinite(ref) && isfinite(lowest)))
        return;
    w->steps = w->cfg.warmup_steps;
    w->ref = fmax(1, ref);
    w->min_smooth = lowest;
    w->restart_smooth = true;
}

bool ib__loss_watch_state(const ib__loss_watch *w, double *ref, double *lowest)
{
    if (w->steps < w->cfg.warmup_steps || !(w->min_smooth > 0 && isfinite(w->min_smooth)))
        return false;
    *ref = w->ref;
    *lowest = w->min_smooth;
    return true;
}

static double growth_base(const ib__loss_watch *w)
{
    return fmax(w->min_smooth, w->cfg.floor_ratio * w->ref);
}

ib__loss_verdict ib__loss_watch_step(ib__loss_watch *w, double loss)
{
    w->last = loss;
    if (!isfinite(loss))
        return IB__LOSS_NONFINITE;
    w->smooth = w->steps == 0 || w->restart_smooth ? loss : w->smooth + w->cfg.smoothing * (loss - w->smooth);
    w->restart_smooth = false;
    w->steps++;
    if (w->steps <= w->cfg.warmup_steps) {
        w->ref = fmax(w->ref, fabs(loss));
        if (w->steps == w->cfg.warmup_steps)
            w->min_smooth = w->smooth;
        return IB__LOSS_OK;
    }
    /* The bounds are tested before m takes this step in: a loss that only
     * ever rises must not carry its own base up with it. */
    if (w->smooth > w->cfg.max_ratio * w->ref)
        return IB__LOSS_ABOVE_START;
    if (w->smooth > w->cfg.max_growth * growth_base(w))
        return IB__LOSS_GREW;
    w->min_smooth = fmin(w->min_smooth, w->smooth);
    return IB__LOSS_OK;
}

void ib__loss_watch_explain(const ib__loss_watch *w, ib__loss_verdict v, char *buf, size_t len)
{
    switch (v) {
    case IB__LOSS_NONFINITE:
        snprintf(buf, len, "the loss became %g", w->last);
        break;
    case IB__LOSS_ABOVE_START:
        snprintf(buf, len, "the loss, averaged over the last ~%.0f steps, is %.3g: more than %g times its start (%.3g)",
                 1 / w->cfg.smoothing, w->smooth, w->cfg.max_ratio, w->ref);
        break;
    case IB__LOSS_GREW:
        snprintf(buf, len,
                 "the loss, averaged over the last ~%.0f steps, is %.3g: more than %g times the lowest it reached (%.3g)",
                 1 / w->cfg.smoothing, w->smooth, w->cfg.max_growth, growth_base(w));
        break;
    default:
        snprintf(buf, len, "the loss is %.3g", w->last);
        break;
    }
}
