/*
 * fuzz_array.c — libFuzzer target for the array readers of `ibnet mi`
 * (ib_array_parse_npy, ib_array_read_npz through libzip, ib_array_read_csv)
 * and the estimators on whatever they accept.  Any bytes must give an array
 * or one error; never a crash, leak, huge allocation or out-of-bounds read.
 *
 * Input layout: byte 0 = mode (low 2 bits: 0 .npy bytes, 1 .npy file,
 * 2 CSV file, 3 .npz file, member "x"); the rest is the file.
 * Properties checked on success: the shape's product is rows x cols,
 * exactly one value buffer is set, the dtype fits it, a .npy's values are
 * the input's bytes; binning (and KDE on small arrays) on the array either
 * gives a finite value with H(T) <= ln n or refuses non-finite values.
 */
#include "ibnet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_harness.h"

static char path[3][256];

static void check_array(const ib_array *a)
{
    REQUIRE(a != NULL);
    REQUIRE((a->f == NULL) != (a->i == NULL));
    REQUIRE((a->f != NULL) == (a->dtype == IB_ARRAY_F32 || a->dtype == IB_ARRAY_F64));
    REQUIRE(a->ndim >= 0 && a->ndim <= 8);
    int64_t prod = 1;
    for (int k = 0; k < a->ndim; k++) {
        REQUIRE(a->shape[k] >= 0);
        prod *= a->shape[k];
    }
    REQUIRE(a->rows * a->cols == prod);
    /* touch every value: an out-of-bounds read shows under ASan */
    volatile double sum = 0;
    for (int64_t k = 0; k < prod; k++)
        sum += a->f ? (double)a->f[k] : (double)a->i[k];
    (void)sum;
    if (a->rows < 2 || a->cols < 1 || prod > 4096)
        return;
    ib_mi_var v = ib_array_var(a);
    ib_mi_options o;
    ib_mi_result r;
    REQUIRE(ib_mi_parse("binning:10", &o) == IB_OK);
    ib_status s = ib_mi_estimate(&v, NULL, &o, &r);
    if (s == IB_OK) {
        REQUIRE(isfinite(r.nats) && r.nats >= -1e-12 && r.nats <= log((double)a->rows) + 1e-9);
        REQUIRE(r.states >= 1 && r.states <= a->rows);
    } else {
        REQUIRE(s == IB_ERR_ARG && a->f != NULL); /* only non-finite floats are refused */
    }
    if (a->f && a->rows <= 64) {
        REQUIRE(ib_mi_parse("kde:0.1", &o) == IB_OK);
        s = ib_mi_estimate(&v, NULL, &o, &r);
        if (s == IB_OK)
            REQUIRE(isfinite(r.nats) && r.nats >= -1e-9 && r.nats <= log((double)a->rows) + 1e-9);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0][0]) {
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        const char *ext[3] = {"npy", "csv", "npz"};
        for (int k = 0; k < 3; k++)
            snprintf(path[k], sizeof path[k], "%s/fuzz_array.%ld.%s", dir, (long)getpid(), ext[k]);
    }
    if (size < 1)
        return 0;
    int mode = data[0] & 3;
    data++;
    size--;
    ib_array *a = (ib_array *)1;
    ib_status s;
    if (mode == 0) {
        s = ib_array_parse_npy(data, size, "fuzz", &a);
    } else {
        const char *p = path[mode == 1 ? 0 : mode == 2 ? 1 : 2];
        fuzz_write_file(p, data, size, 0);
        s = mode == 1 ? ib_array_read_npy(p, &a) : mode == 2 ? ib_array_read_csv(p, &a) : ib_array_read_npz(p, "x", &a);
    }
    if (s != IB_OK) {
        REQUIRE(a == NULL);
        REQUIRE(ib_last_error()[0] != '\0');
        return 0;
    }
    check_array(a);
    if (mode <= 1) { /* a .npy's values are its last bytes, as read */
        size_t item = a->dtype == IB_ARRAY_F64 || a->dtype == IB_ARRAY_I64 ? 8 : 4;
        size_t n = (size_t)(a->rows * a->cols) * item;
        if (a->ndim == 0)
            n = item;
        REQUIRE(n <= size);
        const uint8_t *v = data + size - n;
        if (a->dtype == IB_ARRAY_I64)
            REQUIRE(n == 0 || memcmp(v, a->i, n) == 0);
        if (a->dtype == IB_ARRAY_F32)
            REQUIRE(n == 0 || memcmp(v, a->f, n) == 0);
    }
    ib_array_free(a);
    return 0;
}
