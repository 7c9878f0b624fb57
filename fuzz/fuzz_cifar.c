/*
 * fuzz_cifar.c — libFuzzer target for the CIFAR binary reader
 * (ib_dataset_load_cifar): headerless fixed-size records, so the hard
 * cases are sizes (partial records, empty files, record counts across
 * several files) and label bytes.
 *
 * Input layout: byte 0 = mode (bit 0: gzip, bit 1: CIFAR-100 layout with
 * two label bytes, bit 2: split into two files at bytes 1-2); bytes 1-2
 * = split point (little-endian, clipped); byte 3 = classes (1..256);
 * then the file content.  Properties on success: the record count equals
 * the bytes over the record size, labels are the fine label bytes and in
 * range, the pixels are the records' pixels.
 */
#include "ibnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "fuzz_harness.h"

static char p1[256], p2[256];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!p1[0]) {
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(p1, sizeof p1, "%s/fuzz_cifar.%ld.a.bin", dir, (long)getpid());
        snprintf(p2, sizeof p2, "%s/fuzz_cifar.%ld.b.bin", dir, (long)getpid());
    }
    if (size < 4)
        return 0;
    int mode = data[0];
    size_t k = (size_t)data[1] | (size_t)data[2] << 8;
    int classes = data[3] ? data[3] : 256;
    data += 4;
    size -= 4;
    int label_bytes = (mode & 2) ? 2 : 1;
    int two = (mode & 4) != 0;
    if (!two || k > size)
        k = size;
    fuzz_write_file(p1, data, k, mode & 1);
    if (two)
        fuzz_write_file(p2, data + k, size - k, mode & 1);
    const char *paths[2] = {p1, p2};
    ib_dataset *d = (ib_dataset *)1;
    ib_status s = ib_dataset_load_cifar(paths, two ? 2 : 1, label_bytes, classes, &d);
    if (s != IB_OK) {
        REQUIRE(d == NULL);
        REQUIRE(ib_last_error()[0] != '\0');
        return 0;
    }
    /* A part that is itself a gzip stream is decompressed by zlib: its
     * content is not the input bytes, so only the generic checks apply. */
    int self_gz = !(mode & 1) && ((k >= 2 && data[0] == 0x1f && data[1] == 0x8b) ||
                                  (two && size - k >= 2 && data[k] == 0x1f && data[k + 1] == 0x8b));
    if (self_gz) {
        REQUIRE(ib_dataset_check(d) == IB_OK);
        ib_dataset_free(d);
        return 0;
    }
    size_t rec = (size_t)label_bytes + 3072;
    REQUIRE(k % rec == 0 && (size - k) % rec == 0 && k > 0);
    REQUIRE((size_t)d->n * rec == size);
    REQUIRE(d->c == 3 && d->h == 32 && d->w == 32 && d->classes == classes);
    for (int64_t i = 0; i < d->n; i++) {
        const uint8_t *r = data + (size_t)i * rec;
        REQUIRE(d->labels[i] == r[label_bytes - 1] && d->labels[i] < classes);
        REQUIRE(memcmp(d->images + i * 3072, r + label_bytes, 3072) == 0);
    }
    ib_dataset_free(d);
    return 0;
}
