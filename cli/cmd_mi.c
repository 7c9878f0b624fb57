/*
 * cmd_mi.c — `ibnet mi`: mutual information between two arrays of any
 * origin (NumPy .npy/.npz, CSV), with the estimators of src/info/.  Each
 * value is printed with what it is (an upper bound, a lower bound or an
 * estimate), its sample size and the settings it depends on, because an
 * MI number without those is easy to misread; --sweep shows how much it
 * moves with the bin count or the noise variance.
 */
#include "args.h"
#include "commands.h"
#include "ibnet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Exit code of a library failure: bad input or settings are the user's (2),
 * memory or numeric trouble while running is a failure (1). */
static int code_of(ib_status s)
{
    return s == IB_ERR_NOMEM || s == IB_ERR_NUMERIC ? 1 : 2;
}

void ib_cli_mi_print(const ib_mi_result *r)
{
    printf("%-22s %s = %.6f nats = %.6f bits  %s", r->estimator, r->quantity, r->nats, r->bits,
           r->kind == IB_MI_UPPER ? "(upper bound)" : r->kind == IB_MI_LOWER ? "(lower bound)" : "(estimate)");
    if (r->method == IB_MI_INFONCE)
        printf(", never above log n = %.4f nats", r->cap_nats);
    if (r->seeds > 1)
        printf(", spread (sd over %d seeds) %.4f nats", r->seeds, r->spread_nats);
    printf(", n = %lld\n", (long long)r->n);
    switch (r->method) {
    case IB_MI_BINNING:
        if (r->bins > 0)
            printf("  %d bins over [%g, %g] (width %g), %lld states, %.2f%% of the values saturated\n", r->bins, r->lo,
                   r->hi, r->width, (long long)r->states, 100.0 * r->saturated);
        else
            printf("  bins of width %g (values in [%g, %g]), %lld states\n", r->width, r->lo, r->hi,
                   (long long)r->states);
        if (r->saturated > 0)
            printf("  warning: %.2f%% of the values lie outside the fixed range and were put into the edge bins\n",
                   100.0 * r->saturated);
        break;
    case IB_MI_KDE:
    case IB_MI_KDE_LOWER:
        printf("  noise variance sigma^2 = %g\n", r->sigma2);
        break;
    case IB_MI_VARIATIONAL:
        printf("  H(Y) = %.6f nats of the labels, E[-log q(y|z)] = %.6f nats over %d samples (seed %llu)\n",
               r->label_entropy, r->ce_nats, r->samples, (unsigned long long)r->seed);
        break;
    case IB_MI_DECODER:
        printf("  H(X) ~ %.4f nats (unconditional decoder), E[-log p(x|t)] = %.4f nats (>= H(X|T)), per image of "
               "%lld pixels; %.5f bits per pixel\n",
               r->label_entropy, r->ce_nats, (long long)r->states, r->bits / (double)(r->states > 0 ? r->states : 1));
        printf("  decoders: %d channels, %d gated layers after the first, %lld training images, %d steps of %d, "
               "seed %llu\n",
               r->hidden, r->embed, (long long)r->n_train, r->steps, r->batch, (unsigned long long)r->seed);
        break;
    default:
        printf("  critic: %lld training rows, %d steps of %d, %d hidden, %d outputs, seed %llu\n",
               (long long)r->n_train, r->steps, r->batch, r->hidden, r->embed, (unsigned long long)r->seed);
    }
}

static int emit(const ib_mi_result *r, bool json)
{
    if (!json) {
        ib_cli_mi_print(r);
        return 0;
    }
    char *j = ib_mi_result_json(r);
    if (!j) {
        fprintf(stderr, "ibnet mi: out of memory\n");
        return 1;
    }
    printf("%s\n", j);
    free(j);
    return 0;
}

int ib_cmd_mi(int argc, char **argv)
{
    const char *xpath = NULL, *ypath = NULL, *spec = "binning:30";
    int64_t seed = 0, seeds = 0, steps = 0;
    bool sweep = false, json = false;
    arg_spec specs[] = {
        {"--x", ARG_STRING, &xpath, "PATH", "first array: .npy, .csv/.txt or FILE.npz:NAME (rows are samples)", NULL,
         false},
        {"--y", ARG_STRING, &ypath, "PATH",
         "second array, same rows; without it I(X;T) from x alone (binning, kde) (default: none)", NULL, false},
        {"--estimator", ARG_STRING, &spec, "SPEC",
         "binning:BINS, binning:BINS:LO:HI, binning:width=W, kde:SIGMA2, kde-lower:SIGMA2, infonce, nwj, mine, "
         "decoder[:CHANNELS[:LAYERS[:LEVELS]]] (x: square one-channel images in [0, 1])", NULL,
         false},
        {"--seed", ARG_INT, &seed, "N", "seed of the critics' initialisation, batches and held-out split", NULL, false},
        {"--seeds", ARG_INT, &seeds, "N", "critics: independent critics, mean and spread reported (default: 1, 3 for mine)",
         NULL, false},
        {"--steps", ARG_INT, &steps, "N", "critics: training steps (default: 1500)", NULL, false},
        {"--sweep", ARG_FLAG, &sweep, NULL, "binning over 10..100 bins, kde over sigma^2 1e-3..1", NULL, false},
        {"--json", ARG_FLAG, &json, NULL, "one JSON object per line (estimator, nats, bits, kind, n, settings)", NULL,
         false},
    };
    arg_parser p = {"mi", "ibnet mi [FILE.npz] [--x A --y B] [options]",
                    "Mutual information I(X;Y) between the rows of two arrays: FILE.npz with arrays 'x' and 'y', or "
                    "--x and --y (.npy, .csv, FILE.npz:NAME).  Floating arrays are continuous, integer arrays "
                    "discrete (each distinct row one symbol).  Every value says whether it is an upper bound, a "
                    "lower bound or an estimate; biased estimators can give negative values, printed as they are.  "
                    "See docs/information.md.",
                    specs, (int)(sizeof specs / sizeof specs[0]), 0, 1, "FILE.npz"};
    char *pos[1];
    int n_pos = 0;
    int rc = args_parse(&p, argc, argv, pos, &n_pos);
    if (rc)
        return rc == 1 ? 0 : 2;
    char xbuf[4200], ybuf[4200];
    if (n_pos == 1) {
        if (xpath || ypath) {
            fprintf(stderr, "ibnet mi: give FILE.npz or --x/--y, not both\n");
            return 2;
        }
        snprintf(xbuf, sizeof xbuf, "%s:x", pos[0]);
        snprintf(ybuf, sizeof ybuf, "%s:y", pos[0]);
        size_t l = strlen(pos[0]);
        if (l < 4 || strcmp(pos[0] + l - 4, ".npz") != 0) {
            fprintf(stderr, "ibnet mi: %s: a positional file must be a .npz with arrays 'x' and 'y' (else use --x, --y)\n",
                    pos[0]);
            return 2;
        }
        xpath = xbuf;
        ypath = ybuf;
    } else if (!xpath) {
        fprintf(stderr, "ibnet mi: which data? give FILE.npz or --x A [--y B] (see 'ibnet mi --help')\n");
        return 2;
    }
    ib_mi_options o;
    if (ib_mi_parse(spec, &o) != IB_OK) {
        fprintf(stderr, "ibnet mi: %s\n", ib_last_error());
        return 2;
    }
    if (seed < 0 || seeds < 0 || steps < 0 || seeds > 1000 || steps > 100000000) {
        fprintf(stderr, "ibnet mi: --seed, --seeds and --steps must be >= 0 (seeds at most 1000)\n");
        return 2;
    }
    o.seed = (uint64_t)seed;
    if (seeds > 0)
        o.seeds = (int)seeds;
    if (steps > 0)
        o.steps = (int)steps;
    ib_array *x = NULL, *y = NULL;
    ib_status s = ib_array_read(xpath, &x);
    if (s == IB_OK && ypath)
        s = ib_array_read(ypath, &y);
    if (s != IB_OK) {
        fprintf(stderr, "ibnet mi: %s\n", ib_last_error());
        ib_array_free(x);
        return code_of(s);
    }
    ib_mi_var a = ib_array_var(x), b = ib_array_var(y);
    rc = 0;
    if (sweep) {
        ib_mi_result r[16];
        int count = 0;
        s = ib_mi_sweep(&a, y ? &b : NULL, &o, r, 16, &count);
        for (int k = 0; k < count && rc == 0; k++)
            rc = emit(&r[k], json);
    } else {
        ib_mi_result r;
        s = ib_mi_estimate(&a, y ? &b : NULL, &o, &r);
        if (s == IB_OK)
            rc = emit(&r, json);
    }
    if (s != IB_OK) {
        fprintf(stderr, "ibnet mi: %s\n", ib_last_error());
        rc = code_of(s);
    }
    ib_array_free(x);
    ib_array_free(y);
    return rc;
}
