/*
 * domains.c — Rotated MNIST as DomainBed builds it: six domains of the
 * same digits rotated by 0, 15, ..., 75 degrees (bilinear, zero fill), by
 * default on disjoint shares of the examples, and the leave-one-domain-out
 * training set.  It stands in for PACS, which is not available here.
 */
#include "core/internal.h"
#include "data/corrupt_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const float domainbed_angles[IB_ROTATED_MNIST_DOMAINS] = {0, 15, 30, 45, 60, 75};

float ib_rotated_mnist_angle(int d)
{
    if (d < 0 || d >= IB_ROTATED_MNIST_DOMAINS)
        return NAN;
    return domainbed_angles[d];
}

ib_status ib_rotated_mnist_domains(const ib_dataset *src, const float *angles, int n_domains, bool disjoint,
                                   uint64_t seed, ib_dataset **domains)
{
    if (!domains || n_domains <= 0)
        return ib__error(IB_ERR_ARG, "ib_rotated_mnist_domains: need an output array and n_domains > 0");
    for (int k = 0; k < n_domains; k++)
        domains[k] = NULL;
    if (!src)
        return ib__error(IB_ERR_ARG, "ib_rotated_mnist_domains: src is NULL");
    if (!angles && n_domains > IB_ROTATED_MNIST_DOMAINS)
        return ib__error(IB_ERR_ARG, "ib_rotated_mnist_domains: %d domains but DomainBed defines %d angles", n_domains,
                         IB_ROTATED_MNIST_DOMAINS);
    if (!angles)
        angles = domainbed_angles;
    if (disjoint && src->n < n_domains)
        return ib__error(IB_ERR_ARG, "ib_rotated_mnist_domains: %lld examples cannot fill %d disjoint domains",
                         (long long)src->n, n_domains);
    int64_t n = src->n, sz = (int64_t)src->c * src->h * src->w;
    int64_t *order = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    if (!order)
        return ib__error(IB_ERR_NOMEM, "ib_rotated_mnist_domains: no memory for the order");
    for (int64_t i = 0; i < n; i++)
        order[i] = i;
    if (disjoint) { /* Fisher-Yates keyed by seed, then domain k takes order[k::n_domains] */
        uint64_t stream = ib_rng_stream_of("rotated-mnist/order");
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)(ib_rng_u64(seed, stream, 0, (uint64_t)i) % (uint64_t)(i + 1));
            int64_t t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
    }
    ib_status st = IB_OK;
    for (int k = 0; k < n_domains && st == IB_OK; k++) {
        int64_t cnt = disjoint ? (n - k + n_domains - 1) / n_domains : n;
        char name[64];
        snprintf(name, sizeof name, "%.40s-rot%g", src->name, (double)angles[k]);
        ib_dataset *d = ib__dataset_like(src, cnt, name);
        if (!d) {
            st = IB_ERR_NOMEM;
            break;
        }
        domains[k] = d;
#pragma omp parallel for schedule(dynamic, 64)
        for (int64_t t = 0; t < cnt; t++) {
            int64_t i = disjoint ? order[k + t * n_domains] : t;
            d->labels[t] = src->labels[i];
            ib_status si = ib_image_rotate(src->images + i * sz, d->images + t * sz, src->c, src->h, src->w, angles[k]);
            if (si != IB_OK) {
#pragma omp critical
                st = si;
            }
        }
    }
    free(order);
    if (st != IB_OK)
        for (int k = 0; k < n_domains; k++) {
            ib_dataset_free(domains[k]);
            domains[k] = NULL;
        }
    return st;
}

ib_status ib_domains_leave_one_out(ib_dataset *const *domains, int n_domains, int held_out, ib_dataset **train)
{
    if (!train)
        return ib__error(IB_ERR_ARG, "ib_domains_leave_one_out: train is NULL");
    *train = NULL;
    if (!domains || n_domains < 2 || held_out < 0 || held_out >= n_domains)
        return ib__error(IB_ERR_ARG, "ib_domains_leave_one_out: need >= 2 domains and 0 <= held_out < %d", n_domains);
    const ib_dataset *first = domains[held_out == 0 ? 1 : 0];
    int64_t total = 0;
    int classes = 0;
    for (int k = 0; k < n_domains; k++) {
        const ib_dataset *d = domains[k];
        if (!d)
            return ib__error(IB_ERR_ARG, "ib_domains_leave_one_out: domain %d is NULL", k);
        if (k == held_out)
            continue;
        if (d->c != first->c || d->h != first->h || d->w != first->w)
            return ib__error(IB_ERR_SHAPE, "ib_domains_leave_one_out: domain %d (%s) is %dx%dx%d, domain of %s is %dx%dx%d",
                             k, d->name, d->c, d->h, d->w, first->name, first->c, first->h, first->w);
        total += d->n;
        classes = d->classes > classes ? d->classes : classes;
    }
    char name[64];
    snprintf(name, sizeof name, "domains-without-%.40s", domains[held_out]->name);
    ib_dataset *out = ib_dataset_new(name, total, first->c, first->h, first->w, classes);
    if (!out)
        return IB_ERR_NOMEM;
    if (first->class_names && first->classes == classes &&
        ib_dataset_set_class_names(out, (const char *const *)first->class_names, classes) != IB_OK) {
        ib_dataset_free(out);
        return IB_ERR_NOMEM;
    }
    int64_t sz = (int64_t)first->c * first->h * first->w, at = 0;
    for (int k = 0; k < n_domains; k++) {
        if (k == held_out)
            continue;
        memcpy(out->images + at * sz, domains[k]->images, (size_t)(domains[k]->n * sz));
        memcpy(out->labels + at, domains[k]->labels, sizeof(int32_t) * (size_t)domains[k]->n);
        at += domains[k]->n;
    }
    *train = out;
    return IB_OK;
}
