/*
 * loss_watch.h — tells a diverging run from a training one, from the loss
 * of each step alone.  A NaN or infinite loss is plain; the harder case is
 * a loss that stays finite while the weights blow up (Adam at lr 1e3
 * reaches a loss of 2e32 at chance accuracy and would otherwise overwrite
 * last.safetensors with it).
 *
 * The rules, with the default thresholds (ib__loss_watch_defaults):
 *   reference  R = the largest |loss| of the first warmup_steps (20) steps,
 *                  at least 1 (a loss starting near 0 makes no scale)
 *   smoothed   S = exponential average of the loss, weight 0.1 per step
 *                  (about the last 10 steps: one odd batch does not count)
 *   diverged when, after the first warmup_steps steps,
 *     S > max_ratio (1e3) * R                 far above where it started, or
 *     S > max_growth (1e3) * max(m, floor)    grown by three orders of magnitude
 *                  from the smallest smoothed loss m reached so far, with
 *                  floor = floor_ratio (1e-2) * R, so a loss that fell near 0
 *                  may still rise to 10 R before it counts.
 * A cross-entropy over K classes starts near log K; these bounds lie far
 * beyond anything a run that still learns shows, so a false alarm costs
 * nothing in practice, and a caller can turn the watch off.
 *
 * Pure: no I/O, no globals; the state is this struct.  The trainer keeps
 * R and m in each checkpoint's metadata and gives them back on resume
 * (ib__loss_watch_restore), so a resumed run is judged against its start
 * and not against its own first, perhaps already diverged, steps.
 */
#ifndef IB_LOSS_WATCH_H
#define IB_LOSS_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ib__loss_watch_config {
    int64_t warmup_steps; /* steps that make the reference; no verdict but NONFINITE before */
    double smoothing;     /* weight of a new step in the smoothed loss, in (0, 1] */
    double max_ratio;     /* bound on S / R */
    double max_growth;    /* bound on S / max(m, floor) */
    double floor_ratio;   /* floor = floor_ratio * R */
} ib__loss_watch_config;

typedef enum ib__loss_verdict {
    IB__LOSS_OK = 0,
    IB__LOSS_NONFINITE, /* NaN or +-Inf */
    IB__LOSS_ABOVE_START, /* S > max_ratio * R */
    IB__LOSS_GREW         /* S > max_growth * max(m, floor) */
} ib__loss_verdict;

typedef struct ib__loss_watch {
    ib__loss_watch_config cfg;
    int64_t steps;   /* losses seen */
    double ref;      /* R so far */
    double smooth;   /* S */
    double min_smooth; /* m (valid once steps >= warmup_steps) */
    double last;     /* the last loss given */
    bool restart_smooth; /* restored: the next loss starts S again */
} ib__loss_watch;

ib__loss_watch_config ib__loss_watch_defaults(void);
/* cfg NULL: the defaults. */
void ib__loss_watch_init(ib__loss_watch *w, const ib__loss_watch_config *cfg);
/* Continue a watch past its warm-up from a recorded reference R and lowest
 * smoothed loss m (both > 0): S starts again at the next loss. */
void ib__loss_watch_restore(ib__loss_watch *w, double ref, double lowest);
/* R and m to record, or false while still in the warm-up. */
bool ib__loss_watch_state(const ib__loss_watch *w, double *ref, double *lowest);
/* Feed one step's loss; the verdict on the run so far.  Once a verdict is
 * not IB__LOSS_OK the caller should stop (the state keeps going). */
ib__loss_verdict ib__loss_watch_step(ib__loss_watch *w, double loss);
/* One sentence on a verdict, for an error message: what was seen against
 * which bound ("the loss, averaged over the last ~10 steps, is 2.1e+32:
 * more than 1000 times its start (2.3)"). */
void ib__loss_watch_explain(const ib__loss_watch *w, ib__loss_verdict v, char *buf, size_t len);

#endif /* IB_LOSS_WATCH_H */
