/*
 * dataset.c — the in-memory data set (ib_dataset): making, copying,
 * checking and freeing it, and the checked reader every parser uses.
 * The reader lives here so that truncation, trailing bytes and absurd
 * header sizes are detected, and reported, in exactly one way.
 */
#include "data/dataset_internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sys/stat.h>

/* ---------------------------------------------------------------- reader */

ib_status ib__rd_open(ib__rd *r, const char *path)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    struct stat st;
    if (stat(path, &st) != 0)
        return ib__error(IB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return ib__error(IB_ERR_IO, "%s: not a regular file", path);
    r->file_size = (int64_t)st.st_size;
    r->gz = gzopen(path, "rb");
    if (!r->gz)
        return ib__error(IB_ERR_IO, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
    gzbuffer(r->gz, 1 << 17);
    /* Called before any read, gzdirect looks at the magic bytes. */
    r->compressed = gzdirect(r->gz) == 0;
    return IB_OK;
}

void ib__rd_close(ib__rd *r)
{
    if (r->gz)
        gzclose(r->gz);
    r->gz = NULL;
}

int64_t ib__rd_max_content(const ib__rd *r)
{
    if (!r->compressed)
        return r->file_size;
    /* deflate never expands better than 1032:1; multi-member streams
     * obey the same bound on their sum. */
    if (r->file_size > INT64_MAX / 1100)
        return INT64_MAX;
    return r->file_size * 1032 + 4096;
}

int64_t ib__rd_read_some(ib__rd *r, void *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        size_t chunk = n - done;
        if (chunk > (1u << 30))
            chunk = 1u << 30;
        int got = gzread(r->gz, (char *)buf + done, (unsigned)chunk);
        if (got < 0) {
            int zerr = 0;
            const char *msg = gzerror(r->gz, &zerr);
            ib__error(IB_ERR_FORMAT, "%s: corrupt %s at content byte %lld: %s", r->path,
                      r->compressed ? "gzip stream" : "file", (long long)(r->pos + (int64_t)done),
                      msg && *msg ? msg : "read error");
            return -1;
        }
        if (got == 0)
            break;
        if (r->sha)
            ib__sha256_update(r->sha, (char *)buf + done, (size_t)got);
        done += (size_t)got;
    }
    r->pos += (int64_t)done;
    return (int64_t)done;
}

ib_status ib__rd_read(ib__rd *r, void *buf, size_t n, const char *what)
{
    int64_t start = r->pos;
    int64_t got = ib__rd_read_some(r, buf, n);
    if (got < 0)
        return IB_ERR_FORMAT;
    if ((size_t)got < n)
        return ib__error(IB_ERR_FORMAT, "%s: truncated: the %s needs %zu bytes at content offset %lld but the %s ends after %lld",
                         r->path, what, n, (long long)start, r->compressed ? "decompressed stream" : "file",
                         (long long)got);
    return IB_OK;
}

ib_status ib__rd_read_alloc(ib__rd *r, size_t n, const char *what, uint8_t **out)
{
    *out = NULL;
    if ((int64_t)n > ib__rd_max_content(r) - r->pos || (int64_t)n > IB__DATA_MAX_BYTES)
        return ib__error(IB_ERR_FORMAT, "%s: the header declares %zu bytes of %s, more than the %lld-byte %sfile can hold",
                         r->path, n, what, (long long)r->file_size, r->compressed ? "compressed " : "");
    /* A plain file's size was checked above, so n bytes are there; a gzip
     * stream's length is unknown until read: grow with the data (start at
     * 1 MiB, double, never beyond n). */
    size_t first = r->compressed ? ((size_t)1 << 20) : n;
    size_t cap = n < first ? n : first;
    uint8_t *buf = malloc(cap ? cap : 1);
    if (!buf)
        return ib__error(IB_ERR_NOMEM, "%s: out of memory reading the %s (%zu bytes)", r->path, what, cap);
    size_t have = 0;
    int64_t start = r->pos;
    for (;;) {
        int64_t got = ib__rd_read_some(r, buf + have, cap - have);
        if (got < 0) {
            free(buf);
            return IB_ERR_FORMAT;
        }
        have += (size_t)got;
        if (have == n)
            break;
        if (have < cap) {
            free(buf);
            return ib__error(IB_ERR_FORMAT, "%s: truncated: the %s needs %zu bytes at content offset %lld but the %s ends after %zu",
                             r->path, what, n, (long long)start, r->compressed ? "decompressed stream" : "file", have);
        }
        size_t ncap = cap > n / 2 ? n : cap * 2;
        uint8_t *nb = realloc(buf, ncap);
        if (!nb) {
            free(buf);
            return ib__error(IB_ERR_NOMEM, "%s: out of memory reading the %s (%zu bytes)", r->path, what, ncap);
        }
        buf = nb;
        cap = ncap;
    }
    *out = buf;
    return IB_OK;
}

ib_status ib__rd_expect_eof(ib__rd *r, const char *what)
{
    char extra[256];
    int64_t at = r->pos;
    int64_t more = 0;
    for (;;) {
        int64_t got = ib__rd_read_some(r, extra, sizeof extra);
        if (got < 0)
            return IB_ERR_FORMAT;
        if (got == 0)
            break;
        more += got;
        if (more > (1 << 20))
            break; /* enough to know; do not read a huge tail */
    }
    if (more > 0)
        return ib__error(IB_ERR_FORMAT, "%s: %s%lld unexpected bytes after the %s (content ends at offset %lld)", r->path,
                         more > (1 << 20) ? "more than " : "", (long long)more, what, (long long)at);
    return IB_OK;
}

const char *ib__basename(const char *path)
{
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    const char *end = path + len;
    const char *p = end;
    while (p > path && p[-1] != '/')
        p--;
    /* Return a pointer into path only when it is NUL-terminated at end. */
    if (*end == '\0')
        return p;
    static _Thread_local char buf[256];
    size_t k = (size_t)(end - p);
    if (k >= sizeof buf)
        k = sizeof buf - 1;
    memcpy(buf, p, k);
    buf[k] = '\0';
    return buf;
}

/* --------------------------------------------------------------- dataset */

static void set_name(ib_dataset *d, const char *name)
{
    snprintf(d->name, sizeof d->name, "%s", name ? name : "");
}

void ib_dataset_free(ib_dataset *d)
{
    if (!d)
        return;
    free(d->images);
    free(d->labels);
    free(d->clean_labels);
    if (d->class_names) {
        for (int k = 0; k < d->classes; k++)
            free(d->class_names[k]);
        free(d->class_names);
    }
    free(d);
}

static bool sizes_ok(const char *name, int64_t n, int c, int h, int w, int classes)
{
    if (n < 0 || c <= 0 || h <= 0 || w <= 0 || classes < 0) {
        ib__error(IB_ERR_ARG, "data set %s: bad size n=%lld c=%d h=%d w=%d classes=%d", name ? name : "",
                  (long long)n, c, h, w, classes);
        return false;
    }
    int64_t per = (int64_t)c * h * w;
    if (per > IB__DATA_MAX_BYTES || (n > 0 && per > IB__DATA_MAX_BYTES / n)) {
        ib__error(IB_ERR_ARG, "data set %s: %lld images of %dx%dx%d exceed the %lld-byte limit", name ? name : "",
                  (long long)n, c, h, w, (long long)IB__DATA_MAX_BYTES);
        return false;
    }
    return true;
}

ib_dataset *ib__dataset_wrap(const char *name, int64_t n, int c, int h, int w, int classes, uint8_t *images,
                             int32_t *labels)
{
    ib_dataset *d = calloc(1, sizeof *d);
    if (!d) {
        free(images);
        free(labels);
        ib__error(IB_ERR_NOMEM, "data set %s: out of memory", name ? name : "");
        return NULL;
    }
    set_name(d, name);
    d->n = n;
    d->c = c;
    d->h = h;
    d->w = w;
    d->classes = classes;
    d->images = images;
    d->labels = labels;
    return d;
}

ib_dataset *ib_dataset_new(const char *name, int64_t n, int c, int h, int w, int classes)
{
    if (!sizes_ok(name, n, c, h, w, classes))
        return NULL;
    size_t bytes = (size_t)(n * c * h * w);
    uint8_t *img = calloc(bytes ? bytes : 1, 1);
    int32_t *lab = calloc(n ? (size_t)n : 1, sizeof *lab);
    if (!img || !lab) {
        free(img);
        free(lab);
        ib__error(IB_ERR_NOMEM, "data set %s: out of memory for %zu bytes of images", name ? name : "", bytes);
        return NULL;
    }
    return ib__dataset_wrap(name, n, c, h, w, classes, img, lab);
}

ib_status ib_dataset_set_class_names(ib_dataset *d, const char *const *names, int n)
{
    if (!d || !names || n != d->classes)
        return ib__error(IB_ERR_ARG, "ib_dataset_set_class_names: need %d names, got %d", d ? d->classes : 0, n);
    char **copy = calloc((size_t)(n ? n : 1), sizeof *copy);
    if (!copy)
        return ib__error(IB_ERR_NOMEM, "ib_dataset_set_class_names: out of memory");
    for (int k = 0; k < n; k++) {
        copy[k] = strdup(names[k] ? names[k] : "");
        if (!copy[k]) {
            for (int j = 0; j < k; j++)
                free(copy[j]);
            free(copy);
            return ib__error(IB_ERR_NOMEM, "ib_dataset_set_class_names: out of memory");
        }
    }
    if (d->class_names) {
        for (int k = 0; k < d->classes; k++)
            free(d->class_names[k]);
        free(d->class_names);
    }
    d->class_names = copy;
    return IB_OK;
}

ib_dataset *ib_dataset_clone(const ib_dataset *d)
{
    if (!d) {
        ib__error(IB_ERR_ARG, "ib_dataset_clone: NULL data set");
        return NULL;
    }
    ib_dataset *o = ib_dataset_new(d->name, d->n, d->c, d->h, d->w, d->classes);
    if (!o)
        return NULL;
    memcpy(o->images, d->images, (size_t)(d->n * d->c * d->h * d->w));
    memcpy(o->labels, d->labels, (size_t)d->n * sizeof *d->labels);
    if (d->clean_labels) {
        o->clean_labels = malloc((size_t)(d->n ? d->n : 1) * sizeof *d->labels);
        if (!o->clean_labels) {
            ib_dataset_free(o);
            ib__error(IB_ERR_NOMEM, "ib_dataset_clone: out of memory");
            return NULL;
        }
        memcpy(o->clean_labels, d->clean_labels, (size_t)d->n * sizeof *d->labels);
    }
    if (d->class_names && ib_dataset_set_class_names(o, (const char *const *)d->class_names, d->classes) != IB_OK) {
        ib_dataset_free(o);
        return NULL;
    }
    return o;
}

ib_status ib_dataset_check(const ib_dataset *d)
{
    if (!d)
        return ib__error(IB_ERR_ARG, "ib_dataset_check: NULL data set");
    if (!sizes_ok(d->name, d->n, d->c, d->h, d->w, d->classes))
        return IB_ERR_FORMAT;
    if (d->n > 0 && (!d->images || !d->labels))
        return ib__error(IB_ERR_FORMAT, "data set %s: missing images or labels", d->name);
    for (int pass = 0; pass < 2; pass++) {
        const int32_t *lab = pass ? d->clean_labels : d->labels;
        if (!lab)
            continue;
        for (int64_t i = 0; i < d->n; i++)
            if (lab[i] < 0 || lab[i] >= d->classes)
                return ib__error(IB_ERR_FORMAT, "data set %s: %slabel %d of example %lld is outside [0, %d)", d->name,
                                 pass ? "clean " : "", (int)lab[i], (long long)i, d->classes);
    }
    return IB_OK;
}

void ib_dataset_histogram(const ib_dataset *d, int64_t *counts)
{
    for (int k = 0; k < d->classes; k++)
        counts[k] = 0;
    for (int64_t i = 0; i < d->n; i++)
        if (d->labels[i] >= 0 && d->labels[i] < d->classes)
            counts[d->labels[i]]++;
}

void ib_dataset_channel_stats(const ib_dataset *d, double *mean, double *std)
{
    int64_t plane = (int64_t)d->h * d->w;
    for (int c = 0; c < d->c; c++) {
        /* Exact integer sums: 2^63 / 255^2 leaves room for 10^14 pixels. */
        uint64_t s = 0, s2 = 0;
        for (int64_t i = 0; i < d->n; i++) {
            const uint8_t *p = d->images + (i * d->c + c) * plane;
            uint32_t a = 0, a2 = 0; /* one plane: <= 255^2 * 2^16 fits for planes up to 65536 px */
            if (plane <= 65536) {
                for (int64_t k = 0; k < plane; k++) {
                    a += p[k];
                    a2 += (uint32_t)p[k] * p[k];
                }
                s += a;
                s2 += a2;
            } else {
                for (int64_t k = 0; k < plane; k++) {
                    s += p[k];
                    s2 += (uint64_t)p[k] * p[k];
                }
            }
        }
        double cnt = (double)d->n * (double)plane;
        if (cnt <= 0) {
            mean[c] = 0;
            std[c] = 0;
            continue;
        }
        double m = (double)s / cnt;
        double v = (double)s2 / cnt - m * m;
        mean[c] = m / 255.0;
        std[c] = sqrt(v > 0 ? v : 0) / 255.0;
    }
}
