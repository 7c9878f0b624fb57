/*
 * util.c — small helpers that several rooms of the library need: a
 * monotonic clock, whole-file reading, recursive directory creation, the
 * decimal a float stands for, and big-endian integers.  They live here
 * once so that a fix (a size limit, an error message) reaches every user.
 */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <sys/stat.h>
#include <time.h>

double ib__now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

char *ib__read_file(const char *path, size_t max_bytes, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *t = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            size_t want = cap ? cap * 2 : 8192;
            if (want > max_bytes + 1)
                want = max_bytes + 1;
            if (want <= n + 1) { /* the file is larger than max_bytes */
                free(t);
                fclose(f);
                errno = EFBIG;
                return NULL;
            }
            char *bigger = realloc(t, want);
            if (!bigger) {
                free(t);
                fclose(f);
                errno = ENOMEM;
                return NULL;
            }
            t = bigger;
            cap = want;
        }
        size_t got = fread(t + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0)
            break;
    }
    bool err = ferror(f);
    fclose(f);
    if (err) {
        free(t);
        errno = EIO;
        return NULL;
    }
    t[n] = 0;
    if (len)
        *len = n;
    return t;
}

ib_status ib__mkdirs(const char *dir)
{
    size_t n = strlen(dir);
    char *buf = malloc(n + 1);
    if (!buf)
        return ib__error(IB_ERR_NOMEM, "out of memory");
    memcpy(buf, dir, n + 1);
    ib_status s = IB_OK;
    for (char *p = buf + 1; *p && s == IB_OK; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                s = ib__error(IB_ERR_IO, "cannot create directory %s: %s", buf, strerror(errno));
            *p = '/';
        }
    if (s == IB_OK && mkdir(buf, 0777) != 0 && errno != EEXIST)
        s = ib__error(IB_ERR_IO, "cannot create directory %s: %s", buf, strerror(errno));
    free(buf);
    return s;
}

double ib__as_decimal(float x)
{
    if (!isfinite(x) || x == 0.0f)
        return x;
    char buf[40];
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, (double)x);
        double d = strtod(buf, NULL);
        if ((float)d == x)
            return d;
    }
    return x;
}

uint32_t ib__be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* ---- the public faces of the helpers above (include/ibnet.h) ---- */

double ib_seconds(void) { return ib__now_s(); }

ib_status ib_mkdirs(const char *dir)
{
    if (!dir || !dir[0])
        return ib__error(IB_ERR_ARG, "ib_mkdirs: empty path");
    return ib__mkdirs(dir);
}

char *ib_file_read(const char *path, size_t max_bytes, size_t *len)
{
    if (!path) {
        ib__error(IB_ERR_ARG, "ib_file_read: NULL path");
        return NULL;
    }
    char *t = ib__read_file(path, max_bytes, len);
    if (!t)
        ib__error(IB_ERR_IO, "cannot read %s: %s", path,
                  errno == EFBIG ? "larger than the limit for this file" : strerror(errno));
    return t;
}
