/*
 * cifar.c — the CIFAR-10 / CIFAR-100 "binary version": headerless files
 * of fixed-size records (label byte(s), then 1024 red, 1024 green and
 * 1024 blue pixels of a 32x32 image).  With no header, the file size is
 * the only check of integrity, so a file must hold a whole number of
 * records; a gzip stream is read in record-sized chunks and must end on a
 * record boundary.  Class names come from batches.meta.txt (CIFAR-10) or
 * fine_label_names.txt (CIFAR-100) beside the first file, when present.
 */
#include "data/dataset_internal.h"

#include <ctype.h>

#define CIFAR_PIX 3072

typedef struct acc {
    uint8_t *img;
    int32_t *lab;
    int64_t n, cap;
} acc;

static bool acc_reserve(acc *a, int64_t need)
{
    if (need <= a->cap)
        return true;
    int64_t cap = a->cap ? a->cap : 64;
    while (cap < need)
        cap *= 2;
    uint8_t *img = realloc(a->img, (size_t)cap * CIFAR_PIX);
    if (!img)
        return false;
    a->img = img;
    int32_t *lab = realloc(a->lab, (size_t)cap * sizeof *lab);
    if (!lab)
        return false;
    a->lab = lab;
    a->cap = cap;
    return true;
}

static ib_status read_file(const char *path, int label_bytes, int classes, char *hex, acc *a)
{
    const int64_t rec = label_bytes + CIFAR_PIX;
    ib__rd r;
    ib__sha256 sha;
    ib_status s = ib__rd_open(&r, path);
    if (s != IB_OK)
        return s;
    if (hex) {
        ib__sha256_init(&sha);
        r.sha = &sha;
    }
    if (!r.compressed && r.file_size % rec != 0) {
        s = ib__error(IB_ERR_FORMAT, "%s: size %lld bytes is not a whole number of %lld-byte records (%d label byte%s + 3072 pixels)",
                      path, (long long)r.file_size, (long long)rec, label_bytes, label_bytes > 1 ? "s" : "");
        goto done;
    }
    if (!r.compressed && !acc_reserve(a, a->n + r.file_size / rec)) {
        s = ib__error(IB_ERR_NOMEM, "%s: out of memory for %lld records", path, (long long)(r.file_size / rec));
        goto done;
    }
    enum { CHUNK = 32 }; /* records per read: ~100 KB */
    uint8_t *buf = malloc((size_t)(CHUNK * rec));
    if (!buf) {
        s = ib__error(IB_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    int64_t first = a->n;
    for (;;) {
        int64_t got = ib__rd_read_some(&r, buf, (size_t)(CHUNK * rec));
        if (got < 0) {
            s = IB_ERR_FORMAT;
            break;
        }
        int64_t k = got / rec;
        if (got % rec != 0) {
            s = ib__error(IB_ERR_FORMAT, "%s: truncated: the %s ends %lld bytes into record %lld (records are %lld bytes)",
                          path, r.compressed ? "decompressed stream" : "file", (long long)(got % rec),
                          (long long)(a->n - first + k), (long long)rec);
            break;
        }
        if (k == 0)
            break;
        if (!acc_reserve(a, a->n + k)) {
            s = ib__error(IB_ERR_NOMEM, "%s: out of memory after %lld records", path, (long long)(a->n - first));
            break;
        }
        for (int64_t j = 0; j < k; j++) {
            const uint8_t *p = buf + j * rec;
            int label = p[label_bytes - 1]; /* CIFAR-100: coarse, then fine */
            if (label >= classes) {
                s = ib__error(IB_ERR_FORMAT, "%s: label %d of record %lld is outside the %d classes [0, %d)", path, label,
                              (long long)(a->n - first + j), classes, classes);
                break;
            }
            a->lab[a->n + j] = label;
            memcpy(a->img + (a->n + j) * CIFAR_PIX, p + label_bytes, CIFAR_PIX);
        }
        if (s != IB_OK)
            break;
        a->n += k;
        if (got < CHUNK * rec)
            break;
    }
    free(buf);
    if (s == IB_OK && a->n == first)
        s = ib__error(IB_ERR_FORMAT, "%s: holds no records (empty file)", path);
    if (s == IB_OK && hex)
        ib__sha256_final_hex(&sha, hex);
done:
    ib__rd_close(&r);
    return s;
}

/* Names, one per line, from a small text file beside the data; silently
 * none when the file is absent or does not list exactly `classes` names
 * (names are a convenience, the data is already verified). */
static void load_names(ib_dataset *d, const char *first_path, int label_bytes)
{
    char path[4096];
    const char *slash = strrchr(first_path, '/');
    int dirlen = slash ? (int)(slash - first_path) : 1;
    const char *dir = slash ? first_path : ".";
    snprintf(path, sizeof path, "%.*s/%s", dirlen, dir, label_bytes == 1 ? "batches.meta.txt" : "fine_label_names.txt");
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char **names = calloc((size_t)d->classes, sizeof *names);
    int got = 0;
    char line[256];
    bool ok = names != NULL;
    while (ok && fgets(line, sizeof line, f)) {
        size_t len = strlen(line);
        while (len && isspace((unsigned char)line[len - 1]))
            line[--len] = '\0';
        if (!len)
            continue;
        if (got >= d->classes) {
            ok = false;
            break;
        }
        names[got++] = strdup(line);
    }
    fclose(f);
    if (ok && got == d->classes)
        ib_dataset_set_class_names(d, (const char *const *)names, got);
    if (names)
        for (int k = 0; k < got; k++)
            free(names[k]);
    free(names);
}

ib_status ib__load_cifar(const char *const *paths, int n_paths, int label_bytes, int classes, char (*hex)[65],
                         ib_dataset **out)
{
    if (out)
        *out = NULL;
    if (!paths || n_paths <= 0 || !out || (label_bytes != 1 && label_bytes != 2) || classes <= 0 || classes > 256)
        return ib__error(IB_ERR_ARG, "ib_dataset_load_cifar: need paths, an output, 1 or 2 label bytes and 1..256 "
                                     "classes (got %d paths, %d label bytes, %d classes)",
                         n_paths, label_bytes, classes);
    for (int k = 0; k < n_paths; k++)
        if (!paths[k])
            return ib__error(IB_ERR_ARG, "ib_dataset_load_cifar: path %d is NULL", k);
    acc a = {0};
    for (int k = 0; k < n_paths; k++) {
        ib_status s = read_file(paths[k], label_bytes, classes, hex ? hex[k] : NULL, &a);
        if (s != IB_OK) {
            free(a.img);
            free(a.lab);
            return s;
        }
    }
    const char *name = label_bytes == 1 ? (classes == 10 ? "cifar10" : "cifar") : "cifar100";
    ib_dataset *d = ib__dataset_wrap(name, a.n, 3, 32, 32, classes, a.img, a.lab);
    if (!d)
        return IB_ERR_NOMEM;
    load_names(d, paths[0], label_bytes);
    *out = d;
    return IB_OK;
}

ib_status ib_dataset_load_cifar(const char *const *paths, int n_paths, int label_bytes, int classes,
                                ib_dataset **out)
{
    return ib__load_cifar(paths, n_paths, label_bytes, classes, NULL, out);
}
