/*
 * rotated_mnist.c — `--dataset rotated-mnist:K`: Rotated MNIST
 * leave-one-domain-out as one named data set, so `ibnet train` and
 * `ibnet eval` take it like any other.  As DomainBed, the domains are cut
 * from all 70000 MNIST images (the training and test files together),
 * shuffled once and dealt into six disjoint domains rotated by 0, 15, ...,
 * 75 degrees; split "train" is the five domains other than K, "test" is
 * domain K.  The training domains are interleaved rather than
 * concatenated: the trainer's validation split takes the last examples,
 * which after a concatenation would all come from one domain.
 */
#include "data/dataset_internal.h"

#include <stdio.h>
#include <stdlib.h>

ib_status ib_rotated_mnist_split(const ib_dataset *src, const float *angles, int held_out, uint64_t seed, bool train,
                                 ib_dataset **out)
{
    if (out)
        *out = NULL;
    if (!src || !out)
        return ib__error(IB_ERR_ARG, "ib_rotated_mnist_split: NULL argument");
    if (held_out < 0 || held_out >= IB_ROTATED_MNIST_DOMAINS)
        return ib__error(IB_ERR_ARG, "rotated-mnist:K takes K in 0..%d (the held-out domain), not %d",
                         IB_ROTATED_MNIST_DOMAINS - 1, held_out);
    enum { D = IB_ROTATED_MNIST_DOMAINS };
    ib_dataset *dom[D];
    ib_status s = ib_rotated_mnist_domains(src, angles, D, true, seed, dom);
    if (s != IB_OK)
        return s;
    char name[64];
    snprintf(name, sizeof name, "rotated-mnist:%d", held_out);
    ib_dataset *o = NULL;
    if (!train) {
        o = dom[held_out];
        dom[held_out] = NULL;
        snprintf(o->name, sizeof o->name, "%s", name);
    } else {
        int64_t total = 0;
        for (int k = 0; k < D; k++)
            total += k == held_out ? 0 : dom[k]->n;
        o = ib_dataset_new(name, total, src->c, src->h, src->w, src->classes);
        if (o && src->class_names &&
            ib_dataset_set_class_names(o, (const char *const *)src->class_names, src->classes) != IB_OK) {
            ib_dataset_free(o);
            o = NULL;
        }
        if (!o) {
            s = ib__error(IB_ERR_NOMEM, "rotated-mnist: out of memory");
        } else {
            /* round robin over the training domains: t-th example of each in turn */
            size_t per = (size_t)src->c * src->h * src->w;
            int64_t at = 0;
            for (int64_t t = 0; at < total; t++)
                for (int k = 0; k < D; k++) {
                    if (k == held_out || t >= dom[k]->n)
                        continue;
                    memcpy(o->images + at * (int64_t)per, dom[k]->images + t * (int64_t)per, per);
                    o->labels[at++] = dom[k]->labels[t];
                }
        }
    }
    for (int k = 0; k < D; k++)
        ib_dataset_free(dom[k]);
    if (s == IB_OK)
        *out = o;
    return s;
}

/* "rotated-mnist:K" (K one digit 0..5): MNIST's two files joined, then
 * ib_rotated_mnist_split with the fixed domain key. */
ib_status ib__rotated_mnist_open(const char *spec, bool train, const char *data_dir, const ib_load_options *opt,
                                 ib_dataset **out)
{
    const char *k = spec + strlen("rotated-mnist:");
    if (!(k[0] >= '0' && k[0] <= '9') || k[1])
        return ib__error(IB_ERR_ARG, "'%s': rotated-mnist:K takes K in 0..%d (the held-out domain: 0, 15, 30, 45, "
                         "60 or 75 degrees)", spec, IB_ROTATED_MNIST_DOMAINS - 1);
    int held_out = k[0] - '0';
    if (held_out >= IB_ROTATED_MNIST_DOMAINS)
        return ib__error(IB_ERR_ARG, "'%s': rotated-mnist:K takes K in 0..%d (the held-out domain: 0, 15, 30, 45, "
                         "60 or 75 degrees)", spec, IB_ROTATED_MNIST_DOMAINS - 1);
    ib_dataset *a = NULL, *b = NULL, *all = NULL;
    ib_status s = ib_dataset_load("mnist", "train", data_dir, opt, &a);
    if (s == IB_OK)
        s = ib_dataset_load("mnist", "test", data_dir, opt, &b);
    if (s == IB_OK)
        s = ib_dataset_concat(a, b, &all);
    ib_dataset_free(a);
    ib_dataset_free(b);
    if (s == IB_OK)
        s = ib_rotated_mnist_split(all, NULL, held_out, IB_ROTATED_MNIST_SEED, train, out);
    ib_dataset_free(all);
    return s;
}
