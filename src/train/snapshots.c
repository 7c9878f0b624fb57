/*
 * snapshots.c — `--save-epochs 0,1,2,5,...`: the weights at the end of the
 * listed epochs, each in its own epoch-N.safetensors in the run directory
 * (0 = the initial weights, before the first step), for measuring a layer
 * over training after the fact (the decoder estimate of I(X;H) trains for
 * minutes per layer and snapshot, too long to run inside training).
 *
 * The list is checked with the rest of the configuration, so a bad one
 * stops the run before anything is loaded or written.  A snapshot holds
 * the weights being trained (not an EMA average) and no optimizer state;
 * it is written, atomically, before the epoch's last.safetensors, so a run
 * that dies between the two redoes the epoch on resume and writes the same
 * snapshot again.  A resume never removes snapshots.
 */
#include "train_internal.h"

#include <errno.h>
#include <stdlib.h>

/* The next entry of the list at *p (advanced past it and its comma): 1 and
 * *out, 0 at the end, -1 when it is not a number of digits. */
static int next_entry(const char **p, int64_t *out)
{
    const char *s = *p;
    if (!*s)
        return 0;
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno || (*end && *end != ','))
        return -1;
    *out = v;
    *p = *end ? end + 1 : end;
    return **p || !*end ? 1 : -1; /* "1," (a trailing comma) is refused */
}

ib_status ib__save_epochs_check(const char *list, int64_t epochs)
{
    if (!list[0])
        return IB_OK;
    const char *p = list;
    int64_t seen[256];
    int n = 0, r;
    int64_t e;
    while ((r = next_entry(&p, &e)) == 1) {
        if (e > epochs)
            return ib__error(IB_ERR_ARG, "--save-epochs: epoch %lld is beyond --epochs %lld", (long long)e,
                             (long long)epochs);
        for (int k = 0; k < n; k++)
            if (seen[k] == e)
                return ib__error(IB_ERR_ARG, "--save-epochs: epoch %lld is listed twice", (long long)e);
        if (n < (int)(sizeof seen / sizeof seen[0]))
            seen[n++] = e;
    }
    if (r < 0)
        return ib__error(IB_ERR_ARG, "--save-epochs: '%s' is not a comma-separated list of epochs 0, 1, 2, ... "
                                     "(0 = the initial weights; no signs, spaces or empty entries)",
                         list);
    return IB_OK;
}

bool ib__save_epoch_listed(const char *list, int64_t epoch)
{
    const char *p = list;
    int64_t e;
    while (next_entry(&p, &e) == 1)
        if (e == epoch)
            return true;
    return false;
}

ib_status ib__save_epoch_snapshot(ib__train_run *r, int64_t epoch)
{
    if (!ib__save_epoch_listed(r->cfg.save_epochs, epoch))
        return IB_OK;
    char name[48];
    snprintf(name, sizeof name, "epoch-%lld.safetensors", (long long)epoch);
    return ib__run_save_checkpoint(r, name, epoch, false);
}
