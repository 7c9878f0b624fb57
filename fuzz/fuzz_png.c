/*
 * fuzz_png.c — libFuzzer target for the PNG-folder reader
 * (ib_dataset_load_pngdir): the decode path of every image, header size
 * checks before allocation, and the same-size rule across images.
 *
 * Input layout: byte 0 = mode (bit 0: two images, split at bytes 1-2);
 * bytes 1-2 = split point; then the PNG file(s), written as
 * ROOT/a/0.png and ROOT/b/1.png.  Properties on success: one example per
 * file, labels follow the sorted class folders, 1 or 3 channels.
 */
#include "ibnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_harness.h"

static char root[256], f1[300], f2[300];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char sub[300];
    if (!root[0]) {
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(root, sizeof root, "%s/fuzz_png.%ld", dir, (long)getpid());
        mkdir(root, 0755);
        snprintf(sub, sizeof sub, "%s/a", root);
        mkdir(sub, 0755);
        snprintf(sub, sizeof sub, "%s/b", root);
        mkdir(sub, 0755);
        snprintf(f1, sizeof f1, "%s/a/0.png", root);
        snprintf(f2, sizeof f2, "%s/b/1.png", root);
    }
    if (size < 3)
        return 0;
    int two = data[0] & 1;
    size_t k = (size_t)data[1] | (size_t)data[2] << 8;
    data += 3;
    size -= 3;
    if (!two || k > size)
        k = size;
    fuzz_write_file(f1, data, k, 0);
    if (two)
        fuzz_write_file(f2, data + k, size - k, 0);
    else
        unlink(f2);
    ib_dataset *d = (ib_dataset *)1;
    ib_status s = ib_dataset_load_pngdir(root, &d);
    if (s != IB_OK) {
        REQUIRE(d == NULL);
        REQUIRE(ib_last_error()[0] != '\0');
        return 0;
    }
    REQUIRE(d->n == (two ? 2 : 1));
    REQUIRE(d->classes == 2 && d->labels[0] == 0 && (!two || d->labels[1] == 1));
    REQUIRE(d->c == 1 || d->c == 3);
    REQUIRE(d->h >= 1 && d->w >= 1);
    REQUIRE(strcmp(d->class_names[0], "a") == 0 && strcmp(d->class_names[1], "b") == 0);
    /* touch every pixel so ASan checks the buffer is as large as claimed */
    unsigned sum = 0;
    for (int64_t i = 0; i < d->n * d->c * d->h * d->w; i++)
        sum += d->images[i];
    (void)sum;
    ib_dataset_free(d);
    return 0;
}
