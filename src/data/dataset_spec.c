/*
 * dataset_spec.c — what a user may name as a data set on the command line:
 * a known set ("mnist", "cifar10"...), verified; "idx:DIR", an IDX
 * pair in DIR named like MNIST's files (a Fashion-MNIST-like set of your
 * own), or CIFAR-10 binary batches there (colour images saved by ibnet); "folder:ROOT", an image folder ROOT/<split>/<class>/NAME.png; or
 * "rotated-mnist:K", Rotated MNIST with domain K held out (rotated_mnist.c).
 */
#include "../core/internal.h"
#include "dataset_internal.h"

#include <sys/stat.h>

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* DIR/NAME, or DIR/NAME.gz if only that exists. */
static void pick(char *buf, size_t len, const char *dir, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
    if (!exists(buf))
        snprintf(buf, len, "%s/%s.gz", dir, name);
}

/* DIR in CIFAR-10's binary format (what `ibnet attack --out` and `ibnet
 * corrupt` write for colour images): test_batch.bin, or data_batch_1..5.bin
 * for the training split, whichever exist, with any number of records.
 * False (nothing done) when there is none, so the caller reports the
 * missing IDX files; else true, with the load's status in *s. */
static bool open_cifar_dir(const char *dir, bool train, ib_dataset **out, ib_status *s)
{
    char paths[5][1024];
    const char *list[5];
    int n = 0;
    if (!train) {
        snprintf(paths[0], sizeof paths[0], "%s/test_batch.bin", dir);
        if (exists(paths[0]))
            list[n++] = paths[0];
    } else
        for (int k = 1; k <= 5; k++) {
            snprintf(paths[n], sizeof paths[n], "%s/data_batch_%d.bin", dir, k);
            if (exists(paths[n])) {
                list[n] = paths[n];
                n++;
            }
        }
    if (n == 0)
        return false;
    *s = ib_dataset_load_cifar(list, n, 1, 10, out);
    if (*s == IB_OK)
        snprintf((*out)->name, sizeof (*out)->name, "%s", "idx");
    return true;
}

ib_status ib_dataset_open(const char *spec, const char *split, const char *data_dir, const ib_load_options *opt,
                          ib_dataset **out)
{
    *out = NULL;
    if (!spec || !split)
        return ib__error(IB_ERR_ARG, "ib_dataset_open: NULL argument");
    bool train = strcmp(split, "train") == 0;
    if (!train && strcmp(split, "test") != 0)
        return ib__error(IB_ERR_ARG, "unknown split '%s' (train or test)", split);
    char a[1024], b[1024];
    if (strncmp(spec, "idx:", 4) == 0) {
        pick(a, sizeof a, spec + 4, train ? "train-images-idx3-ubyte" : "t10k-images-idx3-ubyte");
        ib_status cs;
        if (!exists(a) && open_cifar_dir(spec + 4, train, out, &cs)) /* colour: CIFAR-10 binary batches */
            return cs;
        pick(b, sizeof b, spec + 4, train ? "train-labels-idx1-ubyte" : "t10k-labels-idx1-ubyte");
        ib_status s = ib_dataset_load_idx(a, b, 0, out);
        if (s == IB_OK)
            snprintf((*out)->name, sizeof (*out)->name, "%s", "idx");
        return s;
    }
    if (ib_dataset_spec_views(spec) > 1) /* a two-view set: its view 1 (twoview.c) */
        return ib_dataset_open_view(spec, split, 0, data_dir, opt, out);
    if (strncmp(spec, "folder:", 7) == 0) {
        snprintf(a, sizeof a, "%s/%s", spec + 7, split);
        return ib_dataset_load_pngdir(a, out);
    }
    if (strncmp(spec, "rotated-mnist:", 14) == 0)
        return ib__rotated_mnist_open(spec, train, data_dir, opt, out);
    return ib_dataset_load(spec, split, data_dir, opt, out);
}
