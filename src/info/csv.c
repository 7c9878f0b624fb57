/*
 * csv.c — arrays from comma-separated text: one row per line, an optional
 * header line of names, '#' comment lines and blank lines skipped.  A file
 * whose every value is an integer literal is discrete (labels, symbols);
 * anything else is continuous.  Every row must have the same number of
 * fields, and a field that is not a number is an error naming its line.
 */
#include "info_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CSV_MAX_BYTES ((size_t)1 << 34)

/* The field [s, e) trimmed into a NUL-terminated copy in buf; false when
 * longer than the buffer. */
static bool field(const char *s, const char *e, char *buf, size_t len)
{
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        e--;
    if ((size_t)(e - s) >= len)
        return false;
    memcpy(buf, s, (size_t)(e - s));
    buf[e - s] = 0;
    return true;
}

static bool is_int(const char *s, int64_t *v)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (!*p)
        return false;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            return false;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || *end)
        return false;
    *v = x;
    return true;
}

static bool is_num(const char *s, double *v)
{
    if (!*s)
        return false;
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return *end == 0 && errno != ERANGE;
}

ib_status ib_array_read_csv(const char *path, ib_array **out)
{
    if (!out || !path)
        return ib__error(IB_ERR_ARG, "ib_array_read_csv: NULL argument");
    *out = NULL;
    size_t len;
    char *text = ib__read_file(path, CSV_MAX_BYTES, &len);
    if (!text)
        return ib__error(IB_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    ib_status st = IB_OK;
    double *dv = NULL;
    int64_t *iv = NULL;
    size_t cap = 0, count = 0;
    int64_t rows = 0, cols = -1, line_no = 0;
    bool all_int = true;
    const char *p = text, *end = text + len;
    char buf[128];
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        line_no++;
        const char *s = p;
        p = nl ? nl + 1 : end;
        if (memchr(s, '\0', (size_t)(le - s))) {
            st = ib__error(IB_ERR_FORMAT, "%s:%lld: a NUL byte: not a text file", path, (long long)line_no);
            goto done;
        }
        const char *t = s;
        while (t < le && (*t == ' ' || *t == '\t' || *t == '\r'))
            t++;
        if (t == le || *t == '#')
            continue;
        /* fields of this line */
        int64_t nf = 0;
        bool header = false;
        size_t count0 = count; /* a header line's numbers are dropped again */
        for (const char *f = s;;) {
            const char *c = memchr(f, ',', (size_t)(le - f));
            const char *fe = c ? c : le;
            double d;
            int64_t iv1 = 0;
            bool ok = field(f, fe, buf, sizeof buf);
            bool isn = ok && is_num(buf, &d);
            if (!isn) {
                if (rows == 0 && cols < 0) {
                    header = true; /* the first line may name the columns */
                    count = count0;
                } else {
                    st = ib__error(IB_ERR_FORMAT, "%s:%lld: field %lld ('%.40s') is not a number", path,
                                   (long long)line_no, (long long)nf + 1, ok ? buf : "(too long)");
                    goto done;
                }
            } else if (!header) {
                bool isi = is_int(buf, &iv1);
                all_int &= isi;
                if (count == cap) {
                    size_t want = cap ? cap * 2 : 1024;
                    double *d2 = realloc(dv, want * sizeof *d2);
                    if (d2)
                        dv = d2;
                    int64_t *i2 = d2 ? realloc(iv, want * sizeof *i2) : NULL;
                    if (i2)
                        iv = i2;
                    if (!d2 || !i2) {
                        st = ib__error(IB_ERR_NOMEM, "%s: out of memory at line %lld", path, (long long)line_no);
                        goto done;
                    }
                    cap = want;
                }
                dv[count] = d;
                iv[count] = isi ? iv1 : 0;
                count++;
            }
            nf++;
            if (!c)
                break;
            f = c + 1;
        }
        if (cols >= 0 && nf != cols) {
            st = ib__error(IB_ERR_FORMAT, "%s:%lld: %lld fields, the rows before have %lld", path, (long long)line_no,
                           (long long)nf, (long long)cols);
            goto done;
        }
        cols = nf;
        if (!header)
            rows++;
    }
    if (rows == 0) {
        st = ib__error(IB_ERR_FORMAT, "%s: no rows of numbers", path);
        goto done;
    }
    int64_t shape[2] = {rows, cols};
    ib_array *a = ib__array_new(all_int ? IB_ARRAY_I64 : IB_ARRAY_F64, 2, shape, (int64_t)count);
    if (!a) {
        st = ib__error(IB_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    for (size_t k = 0; k < count; k++) {
        if (all_int)
            a->i[k] = iv[k];
        else
            a->f[k] = ib__to_float(dv[k]);
    }
    *out = a;
done:
    free(text);
    free(dv);
    free(iv);
    return st;
}
