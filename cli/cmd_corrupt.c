/*
 * cmd_corrupt.c — `ibnet corrupt`: write a corrupted copy of a test set to
 * disk, one per corruption and severity, in the data set's own format
 * (IDX for grey images such as MNIST, CIFAR binary for 32x32 colour), so
 * any reader of the original reads the corrupted one; and a PNG grid of
 * one example (rows: corruptions, columns: clean then severities) for a
 * person to look at.  Output layout: OUT/<corruption>/<severity>/.
 */
#include "args.h"
#include "ibnet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


/* mkdir -p */
static int make_dirs(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return -1;
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

static void be32(unsigned char *b, uint32_t v)
{
    b[0] = (unsigned char)(v >> 24);
    b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8);
    b[3] = (unsigned char)v;
}

static int write_all(const char *path, const void *head, size_t nh, const void *body, size_t nb)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fwrite(head, 1, nh, f) == nh && (nb == 0 || fwrite(body, 1, nb, f) == nb);
    ok &= fclose(f) == 0;
    return ok ? 0 : -1;
}

/* IDX: images magic 0x803 (n, rows, cols), labels 0x801 (n), uint8. */
static int write_idx(const char *dir, const char *prefix, const ib_dataset *d)
{
    char path[4200];
    unsigned char h[16];
    uint8_t *lab = malloc((size_t)(d->n ? d->n : 1));
    if (!lab)
        return -1;
    for (int64_t i = 0; i < d->n; i++)
        lab[i] = (uint8_t)d->labels[i];
    be32(h, 0x803);
    be32(h + 4, (uint32_t)d->n);
    be32(h + 8, (uint32_t)d->h);
    be32(h + 12, (uint32_t)d->w);
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte", dir, prefix);
    int rc = write_all(path, h, 16, d->images, (size_t)(d->n * d->h * d->w));
    be32(h, 0x801);
    be32(h + 4, (uint32_t)d->n);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", dir, prefix);
    rc |= write_all(path, h, 8, lab, (size_t)d->n);
    free(lab);
    return rc;
}

/* CIFAR-10 binary: per image one label byte then the R, G, B planes. */
static int write_cifar(const char *path, const ib_dataset *d)
{
    size_t sz = (size_t)d->c * d->h * d->w;
    uint8_t *buf = malloc((size_t)d->n * (sz + 1) + 1);
    if (!buf)
        return -1;
    for (int64_t i = 0; i < d->n; i++) {
        buf[i * (sz + 1)] = (uint8_t)d->labels[i];
        memcpy(buf + i * (sz + 1) + 1, d->images + i * sz, sz);
    }
    int rc = write_all(path, buf, (size_t)d->n * (sz + 1), NULL, 0);
    free(buf);
    return rc;
}

/* "1-5", "2", "1,3,5" -> mask of severities; 0 on a malformed list. */
static int parse_severities(const char *s)
{
    int mask = 0;
    while (*s) {
        char *end;
        long a = strtol(s, &end, 10), b = a;
        if (end == s)
            return 0;
        if (*end == '-') {
            const char *t = end + 1;
            b = strtol(t, &end, 10);
            if (end == t)
                return 0;
        }
        if (a < 1 || b > 5 || a > b)
            return 0;
        for (long k = a; k <= b; k++)
            mask |= 1 << k;
        if (*end == ',')
            end++;
        else if (*end)
            return 0;
        s = end;
    }
    return mask;
}

int ib_cmd_corrupt(int argc, char **argv)
{
    const char *dataset = "mnist", *data_dir = NULL, *out_dir = NULL, *types = "benchmark", *sev_list = "1-5";
    const char *grid = NULL, *split = "test";
    int64_t seed = 0, limit = 0, grid_index = 0, grid_scale = 2;
    bool no_hash = false;
    arg_spec specs[] = {
        {"--dataset", ARG_STRING, &dataset, "NAME", "the data set (a known set, idx:DIR or folder:ROOT)", NULL, false},
        {"--data", ARG_STRING, &data_dir, "DIR", "where to look first (else IBNET_DATA, ./data, ../shared/data)", NULL,
         false},
        {"--split", ARG_STRING, &split, "SPLIT", "which split to corrupt", "train|test", false},
        {"--out", ARG_STRING, &out_dir, "DIR", "output folder: DIR/<corruption>/<severity>/ (needed unless only --grid)",
         NULL, false},
        {"--types", ARG_STRING, &types, "LIST",
         "comma-separated corruptions, 'benchmark' (the 14 of CIFAR-10-C without frost) or 'all' (+ speckle_noise, "
         "gaussian_blur, saturate)",
         NULL, false},
        {"--severities", ARG_STRING, &sev_list, "LIST", "severities: 1-5, 3, 1,3,5", NULL, false},
        {"--seed", ARG_INT, &seed, "S", "keys every random draw (image i uses (S, corruption, i))", NULL, false},
        {"--limit", ARG_INT, &limit, "N", "corrupt only the first N images (0: all)", NULL, false},
        {"--grid", ARG_STRING, &grid, "FILE.png", "a PNG of one example: rows corruptions, columns clean + severities",
         NULL, false},
        {"--grid-index", ARG_INT, &grid_index, "I", "which example the grid shows", NULL, false},
        {"--grid-scale", ARG_INT, &grid_scale, "K", "enlarge grid tiles K times", NULL, false},
        {"--no-hash", ARG_FLAG, &no_hash, NULL, "skip the sha256 check of the source files", NULL, false},
    };
    arg_parser p = {"corrupt", "ibnet corrupt --dataset mnist|cifar10 --out DIR [options]",
                    "Writes corrupted copies of a data set (Hendrycks & Dietterich 2019, CIFAR-10-C parameters; see "
                    "docs/corruptions.md) in the data set's own format: grey images as IDX "
                    "(<split-prefix>-images-idx3-ubyte, -labels-idx1-ubyte; read back with --dataset idx:DIR), "
                    "32x32 colour as CIFAR-10 binary (test_batch.bin or data_batch_1.bin; read back with --dataset idx:DIR too).",
                    specs, (int)(sizeof specs / sizeof specs[0]), 0, 0, NULL};
    int n_pos = 0;
    int rc = args_parse(&p, argc, argv, NULL, &n_pos);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (!out_dir && !grid) {
        fprintf(stderr, "ibnet corrupt: nothing to do: give --out DIR and/or --grid FILE.png\n");
        return 2;
    }
    /* DIR/<corruption>/<severity>/<file> is built in 4096 bytes: refuse a
     * DIR that would be cut (a cut path writes somewhere else) */
    if (out_dir && strlen(out_dir) > 3900) {
        fprintf(stderr, "ibnet corrupt: --out: the path is %zu bytes long; at most 3900 are supported\n",
                strlen(out_dir));
        return 2;
    }
    int sev_mask = parse_severities(sev_list);
    if (!sev_mask) {
        fprintf(stderr, "ibnet corrupt: --severities '%s': expected values in 1..5 such as 1-5, 3 or 1,3,5\n", sev_list);
        return 2;
    }
    ib_corruption list[IB_CORRUPT_COUNT];
    int n_types = 0;
    if (strcmp(types, "benchmark") == 0 || strcmp(types, "all") == 0) {
        int upto = strcmp(types, "all") == 0 ? IB_CORRUPT_COUNT : IB_CORRUPT_BENCHMARK;
        for (int t = 0; t < upto; t++)
            list[n_types++] = (ib_corruption)t;
    } else {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", types);
        for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
            if (n_types == IB_CORRUPT_COUNT) {
                fprintf(stderr, "ibnet corrupt: --types lists more than %d corruptions\n", IB_CORRUPT_COUNT);
                return 2;
            }
            if (ib_corruption_parse(tok, &list[n_types]) != IB_OK) {
                fprintf(stderr, "ibnet corrupt: %s\n", ib_last_error());
                return 2;
            }
            n_types++;
        }
        if (n_types == 0) {
            fprintf(stderr, "ibnet corrupt: --types is empty\n");
            return 2;
        }
    }
    if (limit < 0 || grid_index < 0 || grid_scale < 1 || grid_scale > 16) {
        fprintf(stderr, "ibnet corrupt: --limit and --grid-index must be >= 0, --grid-scale in 1..16\n");
        return 2;
    }

    ib_load_options opt = {.skip_hash = no_hash};
    ib_dataset *full = NULL;
    if (ib_dataset_open(dataset, split, data_dir, &opt, &full) != IB_OK) {
        fprintf(stderr, "ibnet corrupt: %s\n", ib_last_error());
        return 1;
    }
    ib_dataset *src = full;
    if (limit > 0 && limit < full->n) {
        if (ib_dataset_slice(full, 0, limit, &src) != IB_OK) {
            fprintf(stderr, "ibnet corrupt: %s\n", ib_last_error());
            ib_dataset_free(full);
            return 1;
        }
    }
    bool idx_format = src->c == 1 && src->classes <= 256;
    bool cifar_format = src->c == 3 && src->h == 32 && src->w == 32 && src->classes <= 256;
    if (out_dir && !idx_format && !cifar_format) {
        fprintf(stderr, "ibnet corrupt: %s is %dx%dx%d with %d classes: only grey images (IDX) and 32x32 colour "
                        "(CIFAR binary) can be written; use --grid alone to look at it\n",
                src->name, src->c, src->h, src->w, src->classes);
        rc = 2;
        goto done;
    }
    if (grid && grid_index >= src->n) {
        fprintf(stderr, "ibnet corrupt: --grid-index %lld but the data set has %lld images\n", (long long)grid_index,
                (long long)src->n);
        rc = 2;
        goto done;
    }
    int n_sev = 0;
    for (int s = 1; s <= 5; s++)
        n_sev += (sev_mask >> s) & 1;

    if (out_dir) {
        for (int t = 0; t < n_types && rc == 0; t++)
            for (int s = 1; s <= 5 && rc == 0; s++) {
                if (!((sev_mask >> s) & 1))
                    continue;
                double t0 = ib_seconds();
                char dir[4096];
                snprintf(dir, sizeof dir, "%s/%s/%d", out_dir, ib_corruption_name(list[t]), s);
                if (make_dirs(dir) != 0) {
                    fprintf(stderr, "ibnet corrupt: cannot create %s: %s\n", dir, strerror(errno));
                    rc = 1;
                    break;
                }
                ib_dataset *d = NULL;
                if (ib_dataset_corrupt(src, list[t], s, (uint64_t)seed, &d) != IB_OK) {
                    fprintf(stderr, "ibnet corrupt: %s\n", ib_last_error());
                    rc = 1;
                    break;
                }
                int wr;
                char file[4200];
                if (idx_format) {
                    wr = write_idx(dir, strcmp(split, "train") == 0 ? "train" : "t10k", d);
                    snprintf(file, sizeof file, "%s/%s-*-ubyte", dir, strcmp(split, "train") == 0 ? "train" : "t10k");
                } else {
                    snprintf(file, sizeof file, "%s/%s", dir,
                             strcmp(split, "train") == 0 ? "data_batch_1.bin" : "test_batch.bin");
                    wr = write_cifar(file, d);
                }
                ib_dataset_free(d);
                if (wr != 0) {
                    fprintf(stderr, "ibnet corrupt: cannot write %s: %s\n", file, strerror(errno));
                    rc = 1;
                    break;
                }
                printf("%-18s severity %d: %lld images -> %s (%.1f s)\n", ib_corruption_name(list[t]), s,
                       (long long)src->n, file, ib_seconds() - t0);
            }
    }

    if (grid && rc == 0) {
        size_t sz = (size_t)src->c * src->h * src->w;
        int cols = 1 + n_sev;
        uint8_t *tiles = malloc(sz * (size_t)(n_types * cols));
        if (!tiles) {
            fprintf(stderr, "ibnet corrupt: no memory for the grid\n");
            rc = 1;
            goto done;
        }
        const uint8_t *clean = src->images + (size_t)grid_index * sz;
        for (int t = 0; t < n_types && rc == 0; t++) {
            int col = 0;
            memcpy(tiles + (size_t)(t * cols + col++) * sz, clean, sz);
            for (int s = 1; s <= 5; s++) {
                if (!((sev_mask >> s) & 1))
                    continue;
                uint8_t *tile = tiles + (size_t)(t * cols + col++) * sz;
                memcpy(tile, clean, sz);
                /* index = grid_index: the tile equals that image in the written set */
                if (ib_corrupt_image(tile, src->c, src->h, src->w, list[t], s, (uint64_t)seed, (uint64_t)grid_index) !=
                    IB_OK) {
                    fprintf(stderr, "ibnet corrupt: %s\n", ib_last_error());
                    rc = 1;
                    break;
                }
            }
        }
        int gc = src->c <= 4 ? src->c : 3;
        if (rc == 0 && src->c > 4) {
            /* PNG holds at most 4 channels: show the first 3 */
            for (int i = 0; i < n_types * cols; i++)
                memmove(tiles + (size_t)i * 3 * src->h * src->w, tiles + (size_t)i * sz, (size_t)3 * src->h * src->w);
        }
        if (rc == 0 && ib_png_write_grid(grid, tiles, n_types * cols, gc, src->h, src->w, cols, 2,
                                         (int)grid_scale, 255) != IB_OK) {
            fprintf(stderr, "ibnet corrupt: %s\n", ib_last_error());
            rc = 1;
        }
        if (rc == 0)
            printf("grid: %s (%d rows: %s ... %s; columns: clean, then severities %s)\n", grid, n_types,
                   ib_corruption_name(list[0]), ib_corruption_name(list[n_types - 1]), sev_list);
        free(tiles);
    }
done:
    if (src != full)
        ib_dataset_free(src);
    ib_dataset_free(full);
    return rc;
}
