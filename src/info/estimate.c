/*
 * estimate.c — the one entry point of the estimators: options by name
 * ("binning:30", "kde:0.1", "infonce", ...), the checks every method needs
 * (sample count, equal rows, finite values, valid settings) done once with
 * a message that names the problem, the dispatch to binning.c, kde.c and
 * critic.c, the sensitivity sweep, and the JSON form of a result.
 */
#include "info_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const method_names[] = {"binning", "kde", "kde-lower", "infonce", "nwj", "mine", "variational", "decoder"};

const char *ib_mi_method_name(ib_mi_method m)
{
    return (unsigned)m < sizeof method_names / sizeof method_names[0] ? method_names[m] : "?";
}

const char *ib_mi_kind_name(ib_mi_kind k)
{
    return k == IB_MI_LOWER ? "lower" : k == IB_MI_UPPER ? "upper" : "estimate";
}

ib_mi_options ib_mi_defaults(ib_mi_method m)
{
    if (m == IB_MI_DECODER) /* 16 channels, 4 gated 3x3 layers after the 7x7 one, 1000 steps of 32 images */
        return (ib_mi_options){.method = m, .seeds = 1, .steps = 1000, .batch = 32, .hidden = 16, .embed = 4,
                               .lr = 1e-3, .test_share = 0.5, .ema_rate = 0.01};
    return (ib_mi_options){
        .method = m,
        .bins = 30,
        .sigma2 = 0.1,
        .seed = 0,
        .seeds = m == IB_MI_MINE ? 3 : 1,
        .steps = 1500,
        .batch = 128,
        .hidden = 64,
        .embed = 32,
        .lr = 5e-4,
        .test_share = 0.5,
        .ema_rate = 0.01,
    };
}

/* A whole-string number, else false. */
static bool num(const char *s, double *v)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return *end == '\0' && errno == 0 && isfinite(*v);
}

static ib_status check_options(const ib_mi_options *o)
{
    switch (o->method) {
    case IB_MI_BINNING:
        if (o->width > 0) {
            if (!isfinite(o->width))
                return ib__error(IB_ERR_ARG, "binning: the bin width must be finite and > 0 (got %g)", o->width);
            return IB_OK;
        }
        if (o->width < 0 || isnan(o->width))
            return ib__error(IB_ERR_ARG, "binning: the bin width must be > 0 (got %g)", o->width);
        if (o->bins < 2)
            return ib__error(IB_ERR_ARG, "binning: the bin count must be at least 2 (got %d)", o->bins);
        if (o->fixed_range && !(isfinite(o->lo) && isfinite(o->hi) && o->lo < o->hi))
            return ib__error(IB_ERR_ARG, "binning: the range [%g, %g] must be finite with lo < hi", o->lo, o->hi);
        return IB_OK;
    case IB_MI_KDE:
    case IB_MI_KDE_LOWER:
        if (!(o->sigma2 > 0) || !isfinite(o->sigma2))
            return ib__error(IB_ERR_ARG, "%s: the noise variance sigma^2 must be > 0 (got %g)",
                             ib_mi_method_name(o->method), o->sigma2);
        return IB_OK;
    case IB_MI_INFONCE:
    case IB_MI_NWJ:
    case IB_MI_MINE:
        if (o->steps < 1 || o->batch < 2 || o->hidden < 1 || o->embed < 1 || o->seeds < 1 || !(o->lr > 0) ||
            !(o->test_share > 0 && o->test_share < 1) || !(o->ema_rate > 0 && o->ema_rate <= 1))
            return ib__error(IB_ERR_ARG,
                             "%s: bad critic settings (steps %d >= 1, batch %d >= 2, hidden %d >= 1, embed %d >= 1, "
                             "seeds %d >= 1, lr %g > 0, test share %g in (0, 1), EMA rate %g in (0, 1] are needed)",
                             ib_mi_method_name(o->method), o->steps, o->batch, o->hidden, o->embed, o->seeds, o->lr,
                             o->test_share, o->ema_rate);
        return IB_OK;
    case IB_MI_VARIATIONAL:
        return IB_OK;
    case IB_MI_DECODER:
        if (o->steps < 0 || o->batch < 1 || o->hidden < 1 || o->hidden > 1024 || o->embed < 0 || o->embed > 64 ||
            !(o->lr > 0) || !(o->test_share > 0 && o->test_share < 1))
            return ib__error(IB_ERR_ARG,
                             "decoder: bad settings (channels %d in 1..1024, layers %d in 0..64, steps %d >= 0, "
                             "batch %d >= 1, lr %g > 0, test share %g in (0, 1) are needed)",
                             o->hidden, o->embed, o->steps, o->batch, o->lr, o->test_share);
        return IB_OK;
    }
    return ib__error(IB_ERR_ARG, "unknown estimator %d", (int)o->method);
}

ib_status ib_mi_parse(const char *spec, ib_mi_options *out)
{
    if (!spec || !out)
        return ib__error(IB_ERR_ARG, "ib_mi_parse: NULL argument");
    const char *colon = strchr(spec, ':');
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    const char *rest = colon ? colon + 1 : NULL;
    int m = -1;
    for (int k = 0; k < (int)(sizeof method_names / sizeof method_names[0]); k++)
        if (strlen(method_names[k]) == len && strncmp(spec, method_names[k], len) == 0)
            m = k;
    if (m < 0)
        return ib__error(IB_ERR_ARG,
                         "unknown estimator '%s' (binning:BINS, binning:BINS:LO:HI, binning:width=W, kde:SIGMA2, "
                         "kde-lower:SIGMA2, infonce, nwj, mine, variational or decoder[:CHANNELS[:LAYERS[:LEVELS]]])",
                         spec);
    ib_mi_options o = ib_mi_defaults((ib_mi_method)m);
    if (m == IB_MI_BINNING && rest) {
        double v;
        if (strncmp(rest, "width=", 6) == 0) {
            if (!num(rest + 6, &v) || !(v > 0))
                return ib__error(IB_ERR_ARG, "estimator '%s': the bin width must be a number > 0", spec);
            o.width = v;
        } else {
            char buf[128];
            snprintf(buf, sizeof buf, "%s", rest);
            char *lo = strchr(buf, ':'), *hi = NULL;
            if (lo) {
                *lo++ = '\0';
                hi = strchr(lo, ':');
                if (!hi)
                    return ib__error(IB_ERR_ARG, "estimator '%s': a fixed range is binning:BINS:LO:HI", spec);
                *hi++ = '\0';
            }
            if (!num(buf, &v) || v != floor(v) || v > 1e8)
                return ib__error(IB_ERR_ARG, "estimator '%s': the bin count '%s' is not a whole number", spec, buf);
            if (v < 2)
                return ib__error(IB_ERR_ARG, "estimator '%s': the bin count must be at least 2 (got %g)", spec, v);
            o.bins = (int)v;
            if (lo) {
                if (!num(lo, &o.lo) || !num(hi, &o.hi) || !(o.lo < o.hi))
                    return ib__error(IB_ERR_ARG, "estimator '%s': the range needs numbers LO < HI", spec);
                o.fixed_range = true;
            }
        }
    } else if ((m == IB_MI_KDE || m == IB_MI_KDE_LOWER) && rest) {
        if (!num(rest, &o.sigma2))
            return ib__error(IB_ERR_ARG, "estimator '%s': the noise variance sigma^2 '%s' is not a number", spec, rest);
        if (!(o.sigma2 > 0))
            return ib__error(IB_ERR_ARG, "estimator '%s': the noise variance sigma^2 must be > 0 (got %g)", spec,
                             o.sigma2);
    } else if (m == IB_MI_DECODER && rest) { /* decoder:CHANNELS[:LAYERS[:LEVELS]] */
        double f, l = o.embed, lv = 2;
        char buf[64];
        snprintf(buf, sizeof buf, "%s", rest);
        char *sep = strchr(buf, ':'), *sep2 = NULL;
        if (sep)
            *sep++ = '\0';
        if (sep && (sep2 = strchr(sep, ':')))
            *sep2++ = '\0';
        if (!num(buf, &f) || f != floor(f) || f < 1 || f > 1024 || (sep && (!num(sep, &l) || l != floor(l) ||
                                                                            l < 0 || l > 64)) ||
            (sep2 && (!num(sep2, &lv) || (lv != 2 && lv != 256))))
            return ib__error(IB_ERR_ARG, "estimator '%s': decoder:CHANNELS[:LAYERS[:LEVELS]] takes channels in "
                                         "1..1024, layers in 0..64 and levels 2 (binarised) or 256 (grey levels)",
                             spec);
        o.hidden = (int)f;
        o.embed = (int)l;
        o.bins = (int)lv;
    } else if (rest) {
        return ib__error(IB_ERR_ARG, "estimator '%s': %s takes no ':' setting", spec, method_names[m]);
    }
    ib_status st = check_options(&o);
    if (st == IB_OK)
        *out = o;
    return st;
}

static void canonical_name(const ib_mi_options *o, char *buf, size_t len)
{
    switch (o->method) {
    case IB_MI_BINNING:
        if (o->width > 0)
            snprintf(buf, len, "binning:width=%g", o->width);
        else if (o->fixed_range)
            snprintf(buf, len, "binning:%d:%g:%g", o->bins, o->lo, o->hi);
        else
            snprintf(buf, len, "binning:%d", o->bins);
        break;
    case IB_MI_KDE:
    case IB_MI_KDE_LOWER:
        snprintf(buf, len, "%s:%g", ib_mi_method_name(o->method), o->sigma2);
        break;
    case IB_MI_DECODER:
        if (o->bins == 256)
            snprintf(buf, len, "decoder:%d:%d:256", o->hidden, o->embed);
        else
            snprintf(buf, len, "decoder:%d:%d", o->hidden, o->embed);
        break;
    default:
        snprintf(buf, len, "%s", ib_mi_method_name(o->method));
    }
}

static ib_status check_var(const ib_mi_var *v, const char *which)
{
    if (!v)
        return ib__error(IB_ERR_ARG, "mutual information: variable %s is NULL", which);
    if ((v->f == NULL) == (v->i == NULL))
        return ib__error(IB_ERR_ARG, "mutual information: variable %s must have exactly one of float and integer values",
                         which);
    if (v->n < 2)
        return ib__error(IB_ERR_ARG, "mutual information: fewer than 2 samples in %s (n = %lld)", which,
                         (long long)v->n);
    if (v->d < 1)
        return ib__error(IB_ERR_ARG, "mutual information: variable %s has %lld columns (at least 1 is needed)", which,
                         (long long)v->d);
    if (v->f)
        for (int64_t k = 0; k < v->n * v->d; k++)
            if (!isfinite(v->f[k]))
                return ib__error(IB_ERR_ARG, "mutual information: variable %s has a non-finite value (%g) in row %lld, "
                                             "column %lld",
                                 which, (double)v->f[k], (long long)(k / v->d), (long long)(k % v->d));
    return IB_OK;
}

ib_status ib_mi_estimate(const ib_mi_var *a, const ib_mi_var *b, const ib_mi_options *opt, ib_mi_result *out)
{
    if (!opt || !out)
        return ib__error(IB_ERR_ARG, "ib_mi_estimate: NULL options or result");
    ib_status st = check_options(opt);
    if (st == IB_OK && opt->method == IB_MI_VARIATIONAL)
        st = ib__error(IB_ERR_ARG, "variational: the bounds of a Gaussian bottleneck come from the network, not from "
                                   "data (ibnet info CHECKPOINT --estimator variational)");
    if (st == IB_OK)
        st = check_var(a, b ? "A" : "T");
    if (st == IB_OK && b)
        st = check_var(b, "B");
    if (st != IB_OK)
        return st;
    ib_get_threads(); /* IBNET_THREADS applies to the KDE sums and the critics' GEMMs */
    if (b && b->n != a->n)
        return ib__error(IB_ERR_ARG, "mutual information: the rows differ: A has %lld rows, B has %lld",
                         (long long)a->n, (long long)b->n);
    ib_mi_result r = {0};
    canonical_name(opt, r.estimator, sizeof r.estimator);
    r.method = opt->method;
    snprintf(r.quantity, sizeof r.quantity, "%s", b ? "I(A;B)" : "I(X;T)");
    switch (opt->method) {
    case IB_MI_BINNING:
        st = ib__mi_binning(a, b, opt, &r);
        break;
    case IB_MI_KDE:
    case IB_MI_KDE_LOWER:
        st = ib__mi_kde(a, b, opt, &r);
        break;
    case IB_MI_DECODER:
        st = ib__mi_decoder(a, b, opt, &r);
        if (st == IB_OK)
            snprintf(r.quantity, sizeof r.quantity, "I(A;B)");
        break;
    default:
        r.seed = opt->seed;
        r.seeds = opt->seeds;
        r.steps = opt->steps;
        r.batch = opt->batch;
        r.hidden = opt->hidden;
        r.embed = opt->embed;
        st = ib__mi_critic(a, b, opt, &r);
    }
    if (st != IB_OK)
        return st;
    r.bits = r.nats / log(2.0);
    *out = r;
    return IB_OK;
}

ib_status ib_mi_sweep(const ib_mi_var *a, const ib_mi_var *b, const ib_mi_options *opt, ib_mi_result *out, int max,
                      int *count)
{
    if (!opt || !out || !count)
        return ib__error(IB_ERR_ARG, "ib_mi_sweep: NULL argument");
    *count = 0;
    bool kde = opt->method == IB_MI_KDE || opt->method == IB_MI_KDE_LOWER;
    if (opt->method != IB_MI_BINNING && !kde)
        return ib__error(IB_ERR_ARG, "--sweep is for binning (bins 10..100) and kde (sigma^2 1e-3..1), not %s",
                         ib_mi_method_name(opt->method));
    if (max < 10)
        return ib__error(IB_ERR_ARG, "ib_mi_sweep: room for %d results, 10 are needed", max);
    int steps = kde ? 7 : 10;
    for (int k = 0; k < steps; k++) {
        ib_mi_options o = *opt;
        if (kde) {
            o.sigma2 = pow(10.0, -3.0 + 0.5 * k);
        } else {
            o.bins = 10 * (k + 1);
            o.width = 0; /* the sweep is over the bin count, on the same range rule */
        }
        ib_status st = ib_mi_estimate(a, b, &o, &out[k]);
        if (st != IB_OK)
            return st;
        *count = k + 1;
    }
    return IB_OK;
}

/* JSON has no NaN or Inf: null then. */
static int jnum(char *buf, size_t len, double v)
{
    return isfinite(v) ? snprintf(buf, len, "%.17g", v) : snprintf(buf, len, "null");
}

char *ib_mi_result_json(const ib_mi_result *r)
{
    size_t cap = 2048;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    char a[40], b[40], c[40], d[40];
    jnum(a, sizeof a, r->nats);
    jnum(b, sizeof b, r->bits);
    int k = snprintf(s, cap, "{\"estimator\":\"%s\",\"method\":\"%s\",\"quantity\":\"%s\",\"nats\":%s,\"bits\":%s,"
                             "\"kind\":\"%s\",\"n\":%lld",
                     r->estimator, ib_mi_method_name(r->method), r->quantity, a, b, ib_mi_kind_name(r->kind),
                     (long long)r->n);
    switch (r->method) {
    case IB_MI_BINNING:
        jnum(a, sizeof a, r->lo);
        jnum(b, sizeof b, r->hi);
        jnum(c, sizeof c, r->width);
        jnum(d, sizeof d, r->saturated);
        k += snprintf(s + k, cap - (size_t)k, ",\"bins\":%d,\"lo\":%s,\"hi\":%s,\"width\":%s,\"saturated\":%s,"
                                              "\"states\":%lld",
                      r->bins, a, b, c, d, (long long)r->states);
        break;
    case IB_MI_KDE:
    case IB_MI_KDE_LOWER:
        jnum(a, sizeof a, r->sigma2);
        k += snprintf(s + k, cap - (size_t)k, ",\"sigma2\":%s", a);
        break;
    case IB_MI_VARIATIONAL:
        jnum(a, sizeof a, r->label_entropy);
        jnum(b, sizeof b, r->ce_nats);
        k += snprintf(s + k, cap - (size_t)k, ",\"samples\":%d,\"label_entropy\":%s,\"ce_nats\":%s,\"seed\":%llu",
                      r->samples, a, b, (unsigned long long)r->seed);
        break;
    case IB_MI_DECODER:
        jnum(a, sizeof a, r->label_entropy);
        jnum(b, sizeof b, r->ce_nats);
        jnum(c, sizeof c, r->states > 0 ? r->nats / (double)r->states / log(2.0) : NAN);
        k += snprintf(s + k, cap - (size_t)k,
                      ",\"h_x_nats\":%s,\"h_x_given_t_nats\":%s,\"bits_per_pixel\":%s,\"pixels\":%lld,"
                      "\"n_train\":%lld,\"seed\":%llu,\"steps\":%d,\"batch\":%d,\"channels\":%d,\"layers\":%d,"
                      "\"levels\":%d",
                      a, b, c, (long long)r->states, (long long)r->n_train, (unsigned long long)r->seed, r->steps,
                      r->batch, r->hidden, r->embed, r->bins == 256 ? 256 : 2);
        break;
    default:
        jnum(b, sizeof b, r->cap_nats);
        k += snprintf(s + k, cap - (size_t)k,
                      ",\"n_train\":%lld,\"seed\":%llu,\"seeds\":%d,\"spread_nats\":%s,\"steps\":%d,\"batch\":%d,"
                      "\"hidden\":%d,\"embed\":%d",
                      (long long)r->n_train, (unsigned long long)r->seed, r->seeds, a, r->steps, r->batch, r->hidden,
                      r->embed);
        if (r->method == IB_MI_INFONCE)
            k += snprintf(s + k, cap - (size_t)k, ",\"cap_nats\":%s", b);
    }
    snprintf(s + k, cap - (size_t)k, "}");
    return s;
}
