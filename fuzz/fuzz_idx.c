/*
 * fuzz_idx.c — libFuzzer target for the IDX reader (ib_dataset_load_idx).
 * Any bytes must give a data set or one error; never a crash, leak, huge
 * allocation or out-of-bounds read.
 *
 * Input layout: byte 0 = mode (bit 0: gzip the images file, bit 1: gzip
 * the labels file, bits 2-5: classes, 0 = inferred); bytes 1-2 = length
 * of the images part (little-endian, clipped); then the images file, then
 * the labels file.  The harness gzips (with valid CRCs) so the gzip paths
 * see well-formed streams whose content is still arbitrary.
 * Properties checked on success: counts and shape agree with the bytes,
 * every label is inside the class range, the pixels are the file's.
 */
#include "ibnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "fuzz_harness.h"

static char img_path[256], lab_path[256];

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!img_path[0]) {
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(img_path, sizeof img_path, "%s/fuzz_idx.%ld.img", dir, (long)getpid());
        snprintf(lab_path, sizeof lab_path, "%s/fuzz_idx.%ld.lab", dir, (long)getpid());
    }
    if (size < 3)
        return 0;
    int mode = data[0];
    size_t k = (size_t)data[1] | (size_t)data[2] << 8;
    data += 3;
    size -= 3;
    if (k > size)
        k = size;
    int classes = (mode >> 2) & 15;
    fuzz_write_file(img_path, data, k, mode & 1);
    fuzz_write_file(lab_path, data + k, size - k, mode & 2);
    ib_dataset *d = (ib_dataset *)1;
    ib_status s = ib_dataset_load_idx(img_path, lab_path, classes, &d);
    if (s != IB_OK) {
        REQUIRE(d == NULL);
        REQUIRE(ib_last_error()[0] != '\0');
        return 0;
    }
    /* A part that is itself a gzip stream is decompressed by zlib: its
     * content is not the input bytes, so only the generic checks apply. */
    int self_gz = (!(mode & 1) && k >= 2 && data[0] == 0x1f && data[1] == 0x8b) ||
                  (!(mode & 2) && size - k >= 2 && data[k] == 0x1f && data[k + 1] == 0x8b);
    if (self_gz) {
        REQUIRE(ib_dataset_check(d) == IB_OK);
        ib_dataset_free(d);
        return 0;
    }
    /* accepted: header and content must agree exactly */
    REQUIRE(k >= 16 && size - k >= 8);
    REQUIRE(d->n == be32(data + 4) && d->n == be32(data + k + 4));
    REQUIRE(d->c == 1 && d->h == (int)be32(data + 8) && d->w == (int)be32(data + 12));
    REQUIRE(k == 16 + (size_t)(d->n * d->h * d->w));
    REQUIRE(size - k == 8 + (size_t)d->n);
    REQUIRE(memcmp(d->images, data + 16, k - 16) == 0);
    REQUIRE(d->classes >= 1 && (classes == 0 || d->classes == classes));
    REQUIRE(ib_dataset_check(d) == IB_OK);
    for (int64_t i = 0; i < d->n; i++)
        REQUIRE(d->labels[i] == data[k + 8 + i]);
    ib_dataset_free(d);
    return 0;
}
