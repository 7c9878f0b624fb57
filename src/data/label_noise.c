/*
 * label_noise.c — synthetic label noise for the noisy-label experiments
 * (cellVIB).  Symmetric noise moves a label, with probability r, to one of
 * the other classes uniformly; pair noise moves it to a fixed "confusable"
 * class (CIFAR-10: truck->automobile, bird->airplane, deer->horse,
 * cat<->dog, the mapping of Patrini et al. 2017 used by the noisy-label
 * literature; otherwise c -> c+1 mod C).  The draw for example i is keyed
 * by (seed, i), so a subset or a reordering of the work gives the same
 * noise.  The clean labels stay beside the noisy ones so a run can report
 * how many of the flipped examples the model memorised.
 */
#include "data/dataset_internal.h"

int ib_label_noise_pair_target(const ib_dataset *d, ib_noise_kind kind, int c)
{
    if (!d || c < 0 || c >= d->classes)
        return c;
    if (kind == IB_NOISE_PAIR)
        kind = strncmp(d->name, "cifar10", 7) == 0 && strncmp(d->name, "cifar100", 8) != 0 ? IB_NOISE_PAIR_CIFAR10
                                                                                          : IB_NOISE_PAIR_NEXT;
    if (kind == IB_NOISE_PAIR_NEXT)
        return (c + 1) % d->classes;
    if (kind == IB_NOISE_PAIR_CIFAR10) {
        /* airplane0 automobile1 bird2 cat3 deer4 dog5 frog6 horse7 ship8 truck9 */
        static const int map[10] = {0, 1, 0, 5, 7, 3, 6, 7, 8, 1};
        return d->classes == 10 ? map[c] : c;
    }
    return c;
}

ib_status ib_label_noise_apply(ib_dataset *d, ib_noise_kind kind, double rate, uint64_t seed, double *actual_rate)
{
    if (actual_rate)
        *actual_rate = 0;
    if (!d)
        return ib__error(IB_ERR_ARG, "ib_label_noise_apply: NULL data set");
    if (!(rate >= 0.0 && rate <= 1.0))
        return ib__error(IB_ERR_ARG, "ib_label_noise_apply(%s): rate %g is outside [0, 1]", d->name, rate);
    if (d->classes < 2)
        return ib__error(IB_ERR_ARG, "ib_label_noise_apply(%s): label noise needs at least 2 classes (has %d)", d->name,
                         d->classes);
    if (kind < IB_NOISE_SYMMETRIC || kind > IB_NOISE_PAIR_NEXT)
        return ib__error(IB_ERR_ARG, "ib_label_noise_apply(%s): unknown noise kind %d", d->name, (int)kind);
    if (kind == IB_NOISE_PAIR_CIFAR10 && d->classes != 10)
        return ib__error(IB_ERR_ARG, "ib_label_noise_apply(%s): CIFAR-10 pair noise needs 10 classes (has %d)", d->name,
                         d->classes);
    ib_status s = ib_dataset_check(d);
    if (s != IB_OK)
        return s;
    if (!d->clean_labels) {
        d->clean_labels = malloc((size_t)(d->n ? d->n : 1) * sizeof *d->clean_labels);
        if (!d->clean_labels)
            return ib__error(IB_ERR_NOMEM, "ib_label_noise_apply(%s): out of memory", d->name);
        memcpy(d->clean_labels, d->labels, (size_t)d->n * sizeof *d->labels);
    }
    const uint64_t stream = ib_rng_stream_of("data.label_noise");
    /* A 53-bit uniform compared with the rate: exact for any double rate. */
    const double two53 = 9007199254740992.0;
    int64_t changed = 0;
    for (int64_t i = 0; i < d->n; i++) {
        int c = d->clean_labels[i];
        uint64_t r = ib_rng_u64(seed, stream, 0, (uint64_t)i);
        double u = (double)(r >> 11) / two53;
        int y = c;
        if (u < rate) {
            if (kind == IB_NOISE_SYMMETRIC) {
                /* One of the C-1 other classes: a second draw, reduced by
                 * a 64x64->128 multiply (bias below 2^-50). */
                uint64_t r2 = ib_rng_u64(seed, stream, 1, (uint64_t)i);
                int k = (int)(((unsigned __int128)r2 * (uint64_t)(d->classes - 1)) >> 64);
                y = (c + 1 + k) % d->classes;
            } else {
                y = ib_label_noise_pair_target(d, kind, c);
            }
        }
        d->labels[i] = y;
        changed += y != c;
    }
    if (actual_rate)
        *actual_rate = d->n ? (double)changed / (double)d->n : 0.0;
    return IB_OK;
}
