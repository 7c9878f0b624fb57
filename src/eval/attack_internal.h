/*
 * attack_internal.h — what the attack files share: the S-sample loss and
 * gradient evaluation (attack_grad.c), the projection onto the eps ball
 * and the pixel box, and Carlini–Wagner's per-batch search (attack_cw.c).
 */
#ifndef IB_ATTACK_INTERNAL_H
#define IB_ATTACK_INTERNAL_H

#include "../core/internal.h"

/* One evaluation of the attacker's loss at pixels p (B, D), the public
 * ib_attack_loss_grad plus the prediction pred (B, argmax of the averaged
 * log-probabilities, first maximum; may be NULL). */
ib_status ib__attack_eval(const ib_attack_head *h, const ib_pixel_norm *pn, const float *p, const int32_t *labels,
                          ib_attack_loss loss, bool targeted, int samples, bool mean_path, uint64_t seed,
                          uint64_t step0, double *loss_out, double *margin_out, int32_t *pred, float *grad);

/* IB_OK when h is a compiled head and pn fits its input; else the error
 * (who names the caller in the message). */
ib_status ib__attack_check_head(const ib_attack_head *h, const ib_pixel_norm *pn, const char *who);

/* Project p (d pixels) into the ball of radius eps around p0 and into
 * [0, 1], so that in double |p - p0| <= eps holds exactly (every element
 * for L-inf, the sum of squares for L2). */
void ib__attack_project(float *p, const float *p0, int64_t d, float eps, ib_attack_norm norm);

/* Pixel L2 and L-inf distances, in double. */
double ib__attack_l2(const float *a, const float *b, int64_t d);
double ib__attack_linf(const float *a, const float *b, int64_t d);

/* A step key from a few counters, so that the noise of an attack step is
 * fixed by (seed, what the step is) and not by how many steps came before:
 * more steps or restarts only add steps.  Multiples of 4096 (room for
 * the passes of one evaluation). */
uint64_t ib__attack_step_key(uint64_t seed, uint64_t a, uint64_t b, uint64_t c, uint64_t d);

/* The prediction an attack is judged on: the S-sample average with noise
 * of its own (seed, step0), the same for every candidate of a batch. */
typedef struct ib__attack_judge {
    uint64_t seed, step0;
    int samples;
} ib__attack_judge;

/* Carlini–Wagner L2 on one batch (attack_cw.c): for every row b < rows,
 * the adversarial image of smallest L2 found that makes the averaged
 * prediction (attack noise) reach margin >= max(kappa, tiny) into best
 * (B, D), its distance into l2[b] (INFINITY when none was found).
 * labels: the classes the margin is taken against (targets if targeted).
 * judge: for a stochastic network, a candidate counts (and tells the
 * search over c it succeeded) only if the judged prediction reaches that
 * margin too; NULL for a deterministic one, whose attack margin is the
 * judge's. */
ib_status ib__attack_cw_batch(const ib_attack_head *h, const ib_pixel_norm *pn, const ib_attack_config *cfg,
                              const float *p0, const int32_t *labels, int64_t rows, bool mean_path, int samples,
                              uint64_t batch_key, const ib__attack_judge *judge, float *best, double *l2);

#endif
