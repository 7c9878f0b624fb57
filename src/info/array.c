/*
 * array.c — the numeric arrays the estimators read from files: the common
 * allocation (float for floating types, int64 for integer ones), the
 * choice of reader by file name, and NumPy's .npy format (a magic string,
 * a Python-literal header with dtype, order and shape, then the raw
 * values).  .npz and CSV are in npz.c and csv.c.  Only little-endian,
 * C-order float32/float64/int32/int64 are taken; anything else is refused
 * with a message that says what the file holds and what would be read.
 */
#include "info_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPY_MAX_BYTES ((size_t)1 << 36)

void ib_array_free(ib_array *a)
{
    if (!a)
        return;
    free(a->f);
    free(a->i);
    free(a);
}

ib_mi_var ib_array_var(const ib_array *a)
{
    ib_mi_var v = {0};
    if (a) {
        v.n = a->rows;
        v.d = a->cols;
        v.f = a->f;
        v.i = a->i;
    }
    return v;
}

/* A new array of the shape with its value buffer allocated; NULL when out
 * of memory (the count is checked by the caller). */
static ib_array *array_new(ib_array_dtype t, int ndim, const int64_t *shape, int64_t count)
{
    ib_array *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->dtype = t;
    a->ndim = ndim;
    a->rows = ndim > 0 ? shape[0] : 1;
    a->cols = 1;
    for (int k = 0; k < ndim; k++) {
        a->shape[k] = shape[k];
        if (k > 0)
            a->cols *= shape[k];
    }
    size_t m = count > 0 ? (size_t)count : 1;
    if (t == IB_ARRAY_F32 || t == IB_ARRAY_F64)
        a->f = malloc(m * sizeof(float));
    else
        a->i = malloc(m * sizeof(int64_t));
    if (!a->f && !a->i) {
        free(a);
        return NULL;
    }
    return a;
}

/* Skip spaces. */
static const char *ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* The value after key ('key' or "key") and its colon, or NULL. */
static const char *find_key(const char *h, const char *end, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = h; p + kl + 2 <= end; p++) {
        if ((*p == '\'' || *p == '"') && memcmp(p + 1, key, kl) == 0 && p[kl + 1] == *p) {
            const char *q = ws(p + kl + 2, end);
            if (q < end && *q == ':')
                return ws(q + 1, end);
        }
    }
    return NULL;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

ib_status ib_array_parse_npy(const void *data, size_t len, const char *what, ib_array **out)
{
    if (!out)
        return ib__error(IB_ERR_ARG, "ib_array_parse_npy: NULL out");
    *out = NULL;
    if (!what)
        what = "npy";
    const uint8_t *d = data;
    if (!d || len < 10 || memcmp(d, "\x93NUMPY", 6) != 0)
        return ib__error(IB_ERR_FORMAT, "%s: not a NumPy .npy file (it must start with \\x93NUMPY)", what);
    int major = d[6];
    size_t hlen, off;
    if (major == 1) {
        hlen = (size_t)d[8] | (size_t)d[9] << 8;
        off = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12)
            return ib__error(IB_ERR_FORMAT, "%s: truncated .npy header", what);
        hlen = le32(d + 8);
        off = 12;
    } else {
        return ib__error(IB_ERR_FORMAT, "%s: .npy format version %d.%d is not supported (1, 2 and 3 are)", what, major,
                         d[7]);
    }
    if (hlen > len - off)
        return ib__error(IB_ERR_FORMAT, "%s: the .npy header (%zu bytes) runs past the end of the file (%zu bytes)",
                         what, hlen, len);
    const char *h = (const char *)d + off, *end = h + hlen;
    /* dtype */
    const char *p = find_key(h, end, "descr");
    if (!p || p >= end || (*p != '\'' && *p != '"'))
        return ib__error(IB_ERR_FORMAT, "%s: the .npy header has no 'descr' string (a structured dtype?)", what);
    const char *q = memchr(p + 1, *p, (size_t)(end - p - 1));
    if (!q)
        return ib__error(IB_ERR_FORMAT, "%s: unterminated 'descr' in the .npy header", what);
    char descr[32];
    size_t dl = (size_t)(q - p - 1);
    snprintf(descr, sizeof descr, "%.*s", (int)(dl < sizeof descr - 1 ? dl : sizeof descr - 1), p + 1);
    ib_array_dtype t;
    size_t item;
    if (strcmp(descr, "<f4") == 0)
        t = IB_ARRAY_F32, item = 4;
    else if (strcmp(descr, "<f8") == 0)
        t = IB_ARRAY_F64, item = 8;
    else if (strcmp(descr, "<i4") == 0)
        t = IB_ARRAY_I32, item = 4;
    else if (strcmp(descr, "<i8") == 0)
        t = IB_ARRAY_I64, item = 8;
    else if (dl == 3 && descr[0] == '>' && strchr("fi", descr[1]))
        return ib__error(IB_ERR_FORMAT, "%s: dtype '%s' is big-endian: save it little-endian (x.astype('<%s'))", what,
                         descr, descr + 1);
    else
        return ib__error(IB_ERR_FORMAT,
                         "%s: dtype '%s' is not supported: float32 ('<f4'), float64 ('<f8'), int32 ('<i4') or int64 "
                         "('<i8') are read (convert with x.astype(...))",
                         what, descr);
    /* order */
    p = find_key(h, end, "fortran_order");
    if (!p)
        return ib__error(IB_ERR_FORMAT, "%s: the .npy header has no 'fortran_order'", what);
    if (end - p >= 4 && memcmp(p, "True", 4) == 0)
        return ib__error(IB_ERR_FORMAT, "%s: the array is in Fortran order: save np.ascontiguousarray(x)", what);
    if (!(end - p >= 5 && memcmp(p, "False", 5) == 0))
        return ib__error(IB_ERR_FORMAT, "%s: 'fortran_order' must be True or False", what);
    /* shape */
    p = find_key(h, end, "shape");
    if (!p || p >= end || *p != '(')
        return ib__error(IB_ERR_FORMAT, "%s: the .npy header has no 'shape' tuple", what);
    int64_t shape[8];
    int ndim = 0;
    int64_t count = 1;
    p = ws(p + 1, end);
    while (p < end && *p != ')') {
        if (ndim == 8)
            return ib__error(IB_ERR_FORMAT, "%s: more than 8 dimensions", what);
        int64_t v = 0;
        const char *s0 = p;
        while (p < end && *p >= '0' && *p <= '9') {
            if (v > (INT64_MAX - 9) / 10)
                return ib__error(IB_ERR_FORMAT, "%s: a dimension of the shape is too large", what);
            v = v * 10 + (*p++ - '0');
        }
        if (p == s0)
            return ib__error(IB_ERR_FORMAT, "%s: the shape must be a tuple of whole numbers", what);
        if (v > 0 && count > INT64_MAX / 8 / v)
            return ib__error(IB_ERR_FORMAT, "%s: the shape's element count is too large", what);
        count *= v;
        shape[ndim++] = v;
        p = ws(p, end);
        if (p < end && *p == ',')
            p = ws(p + 1, end);
        else if (p < end && *p != ')')
            return ib__error(IB_ERR_FORMAT, "%s: the shape must be a tuple of whole numbers", what);
    }
    if (p >= end)
        return ib__error(IB_ERR_FORMAT, "%s: unterminated 'shape' tuple", what);
    size_t body = len - off - hlen;
    if ((uint64_t)count * item != body)
        return ib__error(IB_ERR_FORMAT, "%s: shape with %lld values of %zu bytes needs %llu bytes of data, the file has %zu",
                         what, (long long)count, item, (unsigned long long)count * item, body);
    ib_array *a = array_new(t, ndim, shape, count);
    if (!a)
        return ib__error(IB_ERR_NOMEM, "%s: out of memory for %lld values", what, (long long)count);
    const uint8_t *v = d + off + hlen;
    for (int64_t k = 0; k < count; k++, v += item) {
        switch (t) {
        case IB_ARRAY_F32: {
            float x;
            memcpy(&x, v, 4);
            a->f[k] = x;
            break;
        }
        case IB_ARRAY_F64: {
            double x;
            memcpy(&x, v, 8);
            a->f[k] = ib__to_float(x);
            break;
        }
        case IB_ARRAY_I32: {
            int32_t x;
            memcpy(&x, v, 4);
            a->i[k] = x;
            break;
        }
        case IB_ARRAY_I64:
            memcpy(&a->i[k], v, 8);
            break;
        }
    }
    *out = a;
    return IB_OK;
}

ib_status ib_array_read_npy(const char *path, ib_array **out)
{
    if (!out || !path)
        return ib__error(IB_ERR_ARG, "ib_array_read_npy: NULL argument");
    *out = NULL;
    size_t len;
    char *buf = ib__read_file(path, NPY_MAX_BYTES, &len);
    if (!buf)
        return ib__error(IB_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    ib_status st = ib_array_parse_npy(buf, len, path, out);
    free(buf);
    return st;
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && strncmp(s + n - k, suffix, k) == 0;
}

ib_status ib_array_read(const char *path, ib_array **out)
{
    if (!out || !path)
        return ib__error(IB_ERR_ARG, "ib_array_read: NULL argument");
    *out = NULL;
    size_t n = strlen(path);
    const char *z = strstr(path, ".npz:");
    if (z) {
        char file[4096];
        if ((size_t)(z - path) + 4 >= sizeof file)
            return ib__error(IB_ERR_ARG, "%s: path too long", path);
        snprintf(file, sizeof file, "%.*s", (int)(z - path + 4), path);
        return ib_array_read_npz(file, z + 5, out);
    }
    if (ends_with(path, n, ".npz"))
        return ib__error(IB_ERR_ARG, "%s: name the array of the .npz: %s:NAME (e.g. %s:x)", path, path, path);
    if (ends_with(path, n, ".npy"))
        return ib_array_read_npy(path, out);
    if (ends_with(path, n, ".csv") || ends_with(path, n, ".txt"))
        return ib_array_read_csv(path, out);
    return ib__error(IB_ERR_ARG, "%s: unknown kind of file (.npy, .npz:NAME, .csv or .txt are read)", path);
}

/* For npz.c and csv.c. */
ib_array *ib__array_new(ib_array_dtype t, int ndim, const int64_t *shape, int64_t count)
{
    return array_new(t, ndim, shape, count);
}
