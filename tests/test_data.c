/*
 * test_data.c — readers (IDX, CIFAR, PNG folders) on small files written
 * here, every bad-input case, SHA-256, the known data sets when the shared
 * data is present, batching (order, coverage, drop_last, normalisation,
 * augmentation, prefetch), label noise and subsets.
 */
#include "test.h"
#include "data/dataset_internal.h"

#include <errno.h>
#include <png.h>
#include <sys/stat.h>
#include <zlib.h>

/* ------------------------------------------------------------ helpers */

static const char *tmp(const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", ib_test_tmpdir(), name);
    return buf;
}

static void write_bytes(const char *path, const void *data, size_t n, bool gz)
{
    if (gz) {
        gzFile f = gzopen(path, "wb");
        CHECK_MSG(f != NULL, "cannot write %s", path);
        if (n)
            CHECK_EQ_INT(gzwrite(f, data, (unsigned)n), (long long)n);
        CHECK_EQ_INT(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        CHECK_MSG(f != NULL, "cannot write %s", path);
        CHECK_EQ_INT(fwrite(data, 1, n, f), (long long)n);
        fclose(f);
    }
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* An IDX images file of n images h x w with pixel (i, p) = (7 i + p) mod 256,
 * and a labels file; `declared` overrides the header counts (-1 = n). */
static size_t idx_images(uint8_t *buf, uint32_t magic, int n, int declared, int h, int w)
{
    put32(buf, magic);
    put32(buf + 4, (uint32_t)(declared < 0 ? n : declared));
    put32(buf + 8, (uint32_t)h);
    put32(buf + 12, (uint32_t)w);
    for (int i = 0; i < n; i++)
        for (int p = 0; p < h * w; p++)
            buf[16 + i * h * w + p] = (uint8_t)((7 * i + p) % 256);
    return 16 + (size_t)n * h * w;
}

static size_t idx_labels(uint8_t *buf, int n, int declared, const uint8_t *labels)
{
    put32(buf, 0x801);
    put32(buf + 4, (uint32_t)(declared < 0 ? n : declared));
    memcpy(buf + 8, labels, (size_t)n);
    return 8 + (size_t)n;
}

/* Expect a failure of class `want` whose message names `path` and says `word`. */
static void expect_error(ib_status got, ib_status want, const char *path, const char *word)
{
    CHECK_MSG(got == want, "expected status %d (%s), got %d; message: %s", (int)want, ib_strerror(want), (int)got,
              ib_last_error());
    CHECK_MSG(strstr(ib_last_error(), path) != NULL, "message does not name %s: %s", path, ib_last_error());
    CHECK_MSG(strstr(ib_last_error(), word) != NULL, "message does not say '%s': %s", word, ib_last_error());
}

/* ------------------------------------------------------------ SHA-256 */

static void test_sha256_fips_vectors(void)
{
    char hex[65];
    ib_sha256_hex("abc", 3, hex);
    CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
    ib_sha256_hex("", 0, hex);
    CHECK(strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    ib_sha256_hex(two, strlen(two), hex);
    CHECK(strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0);
    /* one million 'a', fed in uneven pieces so every buffering path runs */
    static char a[1000000];
    memset(a, 'a', sizeof a);
    ib__sha256 s;
    ib__sha256_init(&s);
    size_t at = 0, step = 1;
    while (at < sizeof a) {
        size_t k = step < sizeof a - at ? step : sizeof a - at;
        ib__sha256_update(&s, a + at, k);
        at += k;
        step = step * 3 % 1000 + 1;
    }
    ib__sha256_final_hex(&s, hex);
    CHECK(strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0);
}

/* ------------------------------------------------------------ IDX */

static void test_idx_plain_and_gz(void)
{
    enum { N = 6, H = 3, W = 4 };
    uint8_t img[16 + N * H * W], lab[8 + N];
    const uint8_t labels[N] = {3, 0, 9, 1, 1, 4};
    size_t ni = idx_images(img, 0x803, N, -1, H, W);
    size_t nl = idx_labels(lab, N, -1, labels);
    char ip[512], lp[512];
    for (int gz = 0; gz < 2; gz++) {
        tmp(gz ? "a-images.gz" : "a-images", ip, sizeof ip);
        tmp(gz ? "a-labels.gz" : "a-labels", lp, sizeof lp);
        write_bytes(ip, img, ni, gz);
        write_bytes(lp, lab, nl, gz);
        ib_dataset *d = NULL;
        CHECK_OK(ib_dataset_load_idx(ip, lp, 10, &d));
        CHECK_EQ_INT(d->n, N);
        CHECK_EQ_INT(d->c, 1);
        CHECK_EQ_INT(d->h, H);
        CHECK_EQ_INT(d->w, W);
        CHECK_EQ_INT(d->classes, 10);
        CHECK(d->clean_labels == NULL);
        CHECK(memcmp(d->images, img + 16, N * H * W) == 0);
        for (int i = 0; i < N; i++)
            CHECK_EQ_INT(d->labels[i], labels[i]);
        ib_dataset_free(d);
        /* classes = 0: inferred from the largest label */
        CHECK_OK(ib_dataset_load_idx(ip, lp, 0, &d));
        CHECK_EQ_INT(d->classes, 10);
        ib_dataset_free(d);
        /* the hash of what was read equals the hash of the content written */
        char hex[2][65], want[65];
        CHECK_OK(ib__load_idx(ip, lp, 10, hex, &d));
        ib_sha256_hex(img, ni, want);
        CHECK(strcmp(hex[0], want) == 0);
        ib_sha256_hex(lab, nl, want);
        CHECK(strcmp(hex[1], want) == 0);
        ib_dataset_free(d);
    }
}

static void test_idx_bad_inputs(void)
{
    enum { N = 4, H = 5, W = 5 };
    static uint8_t img[16 + N * H * W + 64];
    uint8_t lab[8 + N + 8];
    const uint8_t labels[N] = {1, 2, 3, 4};
    char ip[512], lp[512];
    ib_dataset *d = (ib_dataset *)1;
    tmp("b-labels", lp, sizeof lp);
    write_bytes(lp, lab, idx_labels(lab, N, -1, labels), false);

    for (int gz = 0; gz < 2; gz++) {
        tmp(gz ? "b-images.gz" : "b-images", ip, sizeof ip);
        /* truncated: the last image is cut short */
        size_t ni = idx_images(img, 0x803, N, -1, H, W);
        write_bytes(ip, img, ni - 7, gz);
        expect_error(ib_dataset_load_idx(ip, lp, 10, &d), IB_ERR_FORMAT, ip, "truncated");
        CHECK(d == NULL);
        /* truncated inside the header */
        write_bytes(ip, img, 10, gz);
        expect_error(ib_dataset_load_idx(ip, lp, 10, &d), IB_ERR_FORMAT, ip, "truncated");
        /* wrong magic: a labels file given as images, and a non-IDX file */
        write_bytes(ip, lab, 8 + N, gz);
        expect_error(ib_dataset_load_idx(ip, lp, 10, &d), IB_ERR_FORMAT, ip, "magic");
        idx_images(img, 0x12345678, N, -1, H, W);
        write_bytes(ip, img, ni, gz);
        expect_error(ib_dataset_load_idx(ip, lp, 10, &d), IB_ERR_FORMAT, ip, "magic");
        /* float data is not images of bytes */
        idx_images(img, 0x0D03, N, -1, H, W);
        write_bytes(ip, img, ni, gz);
        expect_error(ib_dataset_load_idx(ip, lp, 10, &d), IB_ERR_FORMAT, ip, "not supported");
        /* a header claiming 2^31 images: refused from the file size, no 50 GB allocation */
        idx_images(img, 0x803, N, 0x7FFFFFFF, H, W);
        write_bytes(ip, img, ni, gz);
        expect_error(ib_dataset_load_idx(ip, lp, 10, &d), IB_ERR_FORMAT, ip, "declares");
        /* a count smaller than the data: trailing bytes */
        idx_images(img, 0x803, N, N - 1, H, W);
        write_bytes(ip, img, ni, gz);
        expect_error(ib_dataset_load_idx(ip, lp, 10, &d), IB_ERR_FORMAT, ip, "unexpected bytes");
        /* a plausible count just above the data (within what gzip could hold): truncated */
        idx_images(img, 0x803, N, N + 1, H, W);
        write_bytes(ip, img, ni, gz);
        ib_status s = ib_dataset_load_idx(ip, lp, 10, &d);
        CHECK(s == IB_ERR_FORMAT);
        CHECK(strstr(ib_last_error(), ip) && (strstr(ib_last_error(), "truncated") || strstr(ib_last_error(), "declares")));
        /* zero-sized images */
        idx_images(img, 0x803, N, -1, 0, W);
        write_bytes(ip, img, 16, gz);
        expect_error(ib_dataset_load_idx(ip, lp, 10, &d), IB_ERR_FORMAT, ip, "plausible");
    }
    /* the image and label counts disagree */
    tmp("b-images", ip, sizeof ip);
    write_bytes(ip, img, idx_images(img, 0x803, N - 1, -1, H, W), false);
    expect_error(ib_dataset_load_idx(ip, lp, 10, &d), IB_ERR_FORMAT, lp, "labels for the 3 images");
    /* a label outside the class range */
    write_bytes(ip, img, idx_images(img, 0x803, N, -1, H, W), false);
    const uint8_t bad[N] = {1, 2, 12, 4};
    write_bytes(lp, lab, idx_labels(lab, N, -1, bad), false);
    expect_error(ib_dataset_load_idx(ip, lp, 10, &d), IB_ERR_FORMAT, lp, "label 12 of example 2");
    /* a missing file */
    tmp("no-such-file", lp, sizeof lp);
    expect_error(ib_dataset_load_idx(ip, lp, 10, &d), IB_ERR_IO, lp, "cannot open");
    /* a damaged gzip stream: bytes flipped in the middle of the deflate data */
    tmp("b-corrupt.gz", ip, sizeof ip);
    write_bytes(ip, img, idx_images(img, 0x803, N, -1, H, W), true);
    FILE *f = fopen(ip, "r+b");
    CHECK(f != NULL);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size / 2, SEEK_SET);
    uint8_t junk[8] = {0xFF, 0x00, 0xAA, 0x55, 0xFF, 0x00, 0xAA, 0x55};
    fwrite(junk, 1, 8, f);
    fclose(f);
    tmp("b-labels", lp, sizeof lp);
    write_bytes(lp, lab, idx_labels(lab, N, -1, labels), false);
    ib_status s = ib_dataset_load_idx(ip, lp, 10, &d);
    CHECK_MSG(s == IB_ERR_FORMAT, "damaged gzip: status %d: %s", (int)s, ib_last_error());
    CHECK(strstr(ib_last_error(), ip) != NULL);
}

/* ------------------------------------------------------------ CIFAR */

static void cifar_record(uint8_t *r, int label_bytes, int coarse, int fine, int seed)
{
    if (label_bytes == 2)
        *r++ = (uint8_t)coarse;
    *r++ = (uint8_t)fine;
    for (int p = 0; p < 3072; p++)
        r[p] = (uint8_t)((seed * 31 + p * 7) % 256);
}

static void test_cifar_plain_and_gz(void)
{
    static uint8_t buf[5 * 3074];
    char p1[512], p2[512], meta[512];
    const char *names = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
    write_bytes(tmp("batches.meta.txt", meta, sizeof meta), names, strlen(names), false);
    for (int gz = 0; gz < 2; gz++) {
        for (int k = 0; k < 3; k++)
            cifar_record(buf + k * 3073, 1, 0, (k * 3 + 2) % 10, k);
        write_bytes(tmp(gz ? "c1.bin.gz" : "c1.bin", p1, sizeof p1), buf, 3 * 3073, gz);
        for (int k = 0; k < 2; k++)
            cifar_record(buf + k * 3073, 1, 0, 9 - k, 10 + k);
        write_bytes(tmp(gz ? "c2.bin.gz" : "c2.bin", p2, sizeof p2), buf, 2 * 3073, gz);
        const char *paths[2] = {p1, p2};
        ib_dataset *d = NULL;
        CHECK_OK(ib_dataset_load_cifar(paths, 2, 1, 10, &d));
        CHECK_EQ_INT(d->n, 5);
        CHECK_EQ_INT(d->c, 3);
        CHECK_EQ_INT(d->h, 32);
        CHECK_EQ_INT(d->w, 32);
        const int want[5] = {2, 5, 8, 9, 8};
        const int seeds[5] = {0, 1, 2, 10, 11};
        for (int i = 0; i < 5; i++) {
            CHECK_EQ_INT(d->labels[i], want[i]);
            /* R, G, B planes copied in file order */
            for (int p = 0; p < 3072; p += 331)
                CHECK_EQ_INT(d->images[i * 3072 + p], (seeds[i] * 31 + p * 7) % 256);
        }
        CHECK(d->class_names != NULL);
        CHECK(strcmp(d->class_names[0], "airplane") == 0 && strcmp(d->class_names[9], "truck") == 0);
        ib_dataset_free(d);
    }
    /* CIFAR-100: coarse then fine label byte; the fine one is used */
    for (int k = 0; k < 2; k++)
        cifar_record(buf + k * 3074, 2, 7 + k, 90 + k, k);
    write_bytes(tmp("c100.bin", p1, sizeof p1), buf, 2 * 3074, false);
    const char *one[1] = {p1};
    ib_dataset *d = NULL;
    CHECK_OK(ib_dataset_load_cifar(one, 1, 2, 100, &d));
    CHECK_EQ_INT(d->n, 2);
    CHECK_EQ_INT(d->labels[0], 90);
    CHECK_EQ_INT(d->labels[1], 91);
    CHECK_EQ_INT(d->classes, 100);
    CHECK_EQ_INT(d->images[3071], (0 * 31 + 3071 * 7) % 256);
    ib_dataset_free(d);
}

/* "idx:DIR" with colour images: CIFAR-10 binary batches of any length
 * (what `ibnet attack --out` writes for CIFAR-10), test_batch.bin for the
 * test split and the data_batch_K.bin that exist for the training split;
 * a directory with neither IDX nor CIFAR files still names an IDX file. */
static void test_idx_dir_reads_cifar_batches(void)
{
    static uint8_t buf[4 * 3073];
    char dir[512], path[600];
    tmp("cifar-dir", dir, sizeof dir);
    mkdir(dir, 0777);
    for (int k = 0; k < 4; k++)
        cifar_record(buf + k * 3073, 1, 0, k + 3, 20 + k);
    snprintf(path, sizeof path, "%s/test_batch.bin", dir);
    write_bytes(path, buf, 4 * 3073, false);
    snprintf(path, sizeof path, "%s/data_batch_1.bin", dir);
    write_bytes(path, buf, 1 * 3073, false);
    snprintf(path, sizeof path, "%s/data_batch_3.bin", dir);
    write_bytes(path, buf + 3073, 2 * 3073, false);
    char spec[600];
    snprintf(spec, sizeof spec, "idx:%s", dir);
    ib_dataset *d = NULL;
    CHECK_OK(ib_dataset_open(spec, "test", NULL, NULL, &d));
    CHECK_EQ_INT(d->n, 4);
    CHECK_EQ_INT(d->c, 3);
    CHECK_EQ_INT(d->h, 32);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(d->labels[i], i + 3);
        CHECK_EQ_INT(d->images[i * 3072 + 100], ((20 + i) * 31 + 100 * 7) % 256);
    }
    ib_dataset_free(d);
    d = NULL;
    CHECK_OK(ib_dataset_open(spec, "train", NULL, NULL, &d));
    CHECK_EQ_INT(d->n, 3); /* batch 1 (one record), batch 3 (two) */
    CHECK_EQ_INT(d->labels[0], 3);
    CHECK_EQ_INT(d->labels[2], 5);
    ib_dataset_free(d);
    d = NULL;
    tmp("empty-dir", dir, sizeof dir);
    mkdir(dir, 0777);
    snprintf(spec, sizeof spec, "idx:%s", dir);
    CHECK(ib_dataset_open(spec, "test", NULL, NULL, &d) != IB_OK);
    CHECK_MSG(strstr(ib_last_error(), "t10k-") != NULL, "error: %s", ib_last_error());
}

static void test_cifar_bad_inputs(void)
{
    static uint8_t buf[3 * 3073];
    char p[512];
    for (int k = 0; k < 3; k++)
        cifar_record(buf + k * 3073, 1, 0, k, k);
    ib_dataset *d = (ib_dataset *)1;
    const char *paths[1] = {p};
    /* plain: size not a whole number of records */
    write_bytes(tmp("bad.bin", p, sizeof p), buf, 2 * 3073 + 100, false);
    expect_error(ib_dataset_load_cifar(paths, 1, 1, 10, &d), IB_ERR_FORMAT, p, "whole number of");
    CHECK(d == NULL);
    /* gzip: the stream ends in the middle of record 2 */
    write_bytes(tmp("bad.bin.gz", p, sizeof p), buf, 2 * 3073 + 100, true);
    expect_error(ib_dataset_load_cifar(paths, 1, 1, 10, &d), IB_ERR_FORMAT, p, "into record 2");
    /* a label outside the classes */
    buf[3073] = 10;
    write_bytes(tmp("bad2.bin", p, sizeof p), buf, 3 * 3073, false);
    expect_error(ib_dataset_load_cifar(paths, 1, 1, 10, &d), IB_ERR_FORMAT, p, "label 10 of record 1");
    /* empty and missing files */
    write_bytes(tmp("empty.bin", p, sizeof p), buf, 0, false);
    expect_error(ib_dataset_load_cifar(paths, 1, 1, 10, &d), IB_ERR_FORMAT, p, "no records");
    tmp("missing.bin", p, sizeof p);
    expect_error(ib_dataset_load_cifar(paths, 1, 1, 10, &d), IB_ERR_IO, p, "cannot open");
    CHECK(ib_dataset_load_cifar(paths, 1, 3, 10, &d) == IB_ERR_ARG);
}

/* ------------------------------------------------------------ PNG folders */

static void write_png(const char *path, int w, int h, int channels, const uint8_t *hwc)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)w;
    im.height = (png_uint_32)h;
    im.format = channels == 3 ? PNG_FORMAT_RGB : channels == 4 ? PNG_FORMAT_RGBA : PNG_FORMAT_GRAY;
    CHECK_MSG(png_image_write_to_file(&im, path, 0, hwc, 0, NULL), "cannot write %s: %s", path, im.message);
}

static void make_dir(const char *path)
{
    CHECK_MSG(mkdir(path, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", path, strerror(errno));
}

static void test_pngdir_reader(void)
{
    char root[512], p[700];
    tmp("pngs", root, sizeof root);
    make_dir(root);
    /* classes listed out of order on purpose: labels follow the sorted names */
    snprintf(p, sizeof p, "%s/zebra", root);
    make_dir(p);
    snprintf(p, sizeof p, "%s/apple", root);
    make_dir(p);
    snprintf(p, sizeof p, "%s/.hidden", root);
    make_dir(p);
    uint8_t px[4 * 3 * 3];
    for (int k = 0; k < 3; k++) {
        for (int j = 0; j < 4 * 3 * 3; j++)
            px[j] = (uint8_t)(40 * k + j);
        snprintf(p, sizeof p, "%s/%s/img%d.png", root, k < 2 ? "zebra" : "apple", 2 - k);
        write_png(p, 4, 3, 3, px);
    }
    snprintf(p, sizeof p, "%s/apple/notes.txt", root);
    write_bytes(p, "x", 1, false);
    ib_dataset *d = NULL;
    CHECK_OK(ib_dataset_load_pngdir(root, &d));
    CHECK_EQ_INT(d->n, 3);
    CHECK_EQ_INT(d->c, 3);
    CHECK_EQ_INT(d->h, 3);
    CHECK_EQ_INT(d->w, 4);
    CHECK_EQ_INT(d->classes, 2);
    CHECK(strcmp(d->class_names[0], "apple") == 0 && strcmp(d->class_names[1], "zebra") == 0);
    CHECK(strcmp(d->name, "pngs") == 0);
    /* order: apple/img0 (k=2), zebra/img1 (k=1), zebra/img2 (k=0) */
    const int ks[3] = {2, 1, 0}, labs[3] = {0, 1, 1};
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(d->labels[i], labs[i]);
        /* planar CHW from interleaved HWC: channel c of pixel q is hwc[3q + c] */
        for (int c = 0; c < 3; c++)
            for (int q = 0; q < 12; q++)
                CHECK_EQ_INT(d->images[i * 36 + c * 12 + q], 40 * ks[i] + 3 * q + c);
    }
    ib_dataset_free(d);

    /* grey images give one channel */
    char groot[512];
    tmp("grey", groot, sizeof groot);
    make_dir(groot);
    snprintf(p, sizeof p, "%s/0", groot);
    make_dir(p);
    snprintf(p, sizeof p, "%s/0/a.png", groot);
    write_png(p, 4, 3, 1, px);
    CHECK_OK(ib_dataset_load_pngdir(groot, &d));
    CHECK_EQ_INT(d->c, 1);
    CHECK(memcmp(d->images, px, 12) == 0);
    ib_dataset_free(d);
}

static void test_pngdir_bad_inputs(void)
{
    char root[512], p[700];
    uint8_t px[8 * 8 * 3] = {0};
    ib_dataset *d = (ib_dataset *)1;
    /* not a PNG */
    tmp("png-bad1", root, sizeof root);
    make_dir(root);
    snprintf(p, sizeof p, "%s/cls", root);
    make_dir(p);
    snprintf(p, sizeof p, "%s/cls/a.png", root);
    write_png(p, 4, 4, 3, px);
    snprintf(p, sizeof p, "%s/cls/b.png", root);
    write_bytes(p, "this is not a png file at all", 29, false);
    expect_error(ib_dataset_load_pngdir(root, &d), IB_ERR_FORMAT, p, "not a decodable PNG");
    CHECK(d == NULL);
    /* a truncated PNG: header fine, data cut */
    FILE *f = fopen(p, "wb");
    CHECK(f != NULL);
    fclose(f);
    {
        char full[700];
        snprintf(full, sizeof full, "%s/cls/a.png", root);
        FILE *in = fopen(full, "rb");
        CHECK(in != NULL);
        uint8_t b[4096];
        size_t n = fread(b, 1, sizeof b, in);
        fclose(in);
        write_bytes(p, b, n - 20, false);
    }
    expect_error(ib_dataset_load_pngdir(root, &d), IB_ERR_FORMAT, p, "not a decodable PNG");
    /* a size mismatch */
    write_png(p, 5, 4, 3, px);
    expect_error(ib_dataset_load_pngdir(root, &d), IB_ERR_FORMAT, p, "same size");
    /* a channel mismatch */
    write_png(p, 4, 4, 1, px);
    expect_error(ib_dataset_load_pngdir(root, &d), IB_ERR_FORMAT, p, "same size and channels");
    /* no class folders, no images, no folder */
    tmp("png-empty", root, sizeof root);
    make_dir(root);
    expect_error(ib_dataset_load_pngdir(root, &d), IB_ERR_FORMAT, root, "no class folders");
    snprintf(p, sizeof p, "%s/cls", root);
    make_dir(p);
    expect_error(ib_dataset_load_pngdir(root, &d), IB_ERR_FORMAT, root, "no .png files");
    tmp("png-none", root, sizeof root);
    expect_error(ib_dataset_load_pngdir(root, &d), IB_ERR_IO, root, "cannot open");
}

/* ------------------------------------------------------------ known sets */

static void test_registry_errors(void)
{
    ib_dataset *d = (ib_dataset *)1;
    CHECK(ib_dataset_load("imagenet", "train", NULL, NULL, &d) == IB_ERR_ARG);
    CHECK(strstr(ib_last_error(), "mnist") != NULL); /* lists the known ones */
    CHECK(d == NULL);
    CHECK(ib_dataset_load("mnist", "valid", NULL, NULL, &d) == IB_ERR_ARG);
    char dir[512];
    tmp("empty-data", dir, sizeof dir);
    make_dir(dir);
    expect_error(ib_dataset_load("cifar10", "test", dir, NULL, &d), IB_ERR_IO, dir, "not found");
    /* a folder holding files of the right names but the wrong content:
     * the count check names the folder and the expected count */
    char sub[600], ip[700], lp[700];
    snprintf(sub, sizeof sub, "%s/mnist", dir);
    make_dir(sub);
    uint8_t img[16 + 3 * 28 * 28], lab[16];
    const uint8_t labels[3] = {1, 2, 3};
    snprintf(ip, sizeof ip, "%s/t10k-images-idx3-ubyte.gz", sub);
    snprintf(lp, sizeof lp, "%s/t10k-labels-idx1-ubyte.gz", sub);
    write_bytes(ip, img, idx_images(img, 0x803, 3, -1, 28, 28), true);
    write_bytes(lp, lab, idx_labels(lab, 3, -1, labels), true);
    char found[1024];
    CHECK_OK(ib_dataset_find_dir("mnist", dir, found, sizeof found));
    CHECK(strcmp(found, sub) == 0);
    expect_error(ib_dataset_load("mnist", "test", dir, NULL, &d), IB_ERR_FORMAT, sub, "has 10000");
    /* plain files of the wrong size are refused before reading */
    snprintf(ip, sizeof ip, "%s/t10k-images-idx3-ubyte", sub);
    write_bytes(ip, img, 100, false);
    expect_error(ib_dataset_load("mnist", "test", dir, NULL, &d), IB_ERR_FORMAT, ip, "has 7840016");
    /* the train split is missing */
    expect_error(ib_dataset_load("mnist", "train", dir, NULL, &d), IB_ERR_IO, "train-images-idx3-ubyte", "missing");
    for (int i = 0; ib_dataset_known(i); i++)
        CHECK(ib_dataset_known(i)[0] != '\0');
    CHECK(ib_dataset_known(4) == NULL);
}

/* The shared data folder, if this machine has it: IBNET_DATA, else
 * shared/data beside the source tree, else ../shared/data. */
static const char *shared_data(void)
{
    static char buf[1024];
    const char *src = getenv("IBNET_SOURCE_DIR");
    char cand[3][1024];
    snprintf(cand[0], sizeof cand[0], "%s", getenv("IBNET_DATA") ? getenv("IBNET_DATA") : "");
    snprintf(cand[1], sizeof cand[1], "%s/../shared/data", src ? src : ".");
    snprintf(cand[2], sizeof cand[2], "../shared/data");
    for (int k = 0; k < 3; k++) {
        char probe[1100];
        struct stat st;
        int len = snprintf(probe, sizeof probe, "%s/mnist/t10k-labels-idx1-ubyte.gz", cand[k]);
        if (cand[k][0] && len < (int)sizeof probe && stat(probe, &st) == 0) {
            memcpy(buf, cand[k], sizeof buf);
            return buf;
        }
    }
    return NULL;
}

static void check_hist(const ib_dataset *d, const int64_t *want)
{
    int64_t h[10];
    ib_dataset_histogram(d, h);
    for (int k = 0; k < 10; k++)
        CHECK_MSG(h[k] == want[k], "%s: class %d has %lld examples, README says %lld", d->name, k, (long long)h[k],
                  (long long)want[k]);
}

static void test_shared_mnist(void)
{
    const char *dir = shared_data();
    ib_dataset *d = NULL;
    /* sha256 verified (the default); both files of each split */
    CHECK_OK(ib_dataset_load("mnist", "train", dir, NULL, &d));
    CHECK_EQ_INT(d->n, 60000);
    CHECK(d->c == 1 && d->h == 28 && d->w == 28 && d->classes == 10);
    const int64_t tr[10] = {5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949};
    check_hist(d, tr);
    const int first_tr[8] = {5, 0, 4, 1, 9, 2, 1, 3};
    for (int i = 0; i < 8; i++)
        CHECK_EQ_INT(d->labels[i], first_tr[i]);
    CHECK(strcmp(d->name, "mnist") == 0);
    ib_dataset_free(d);
    ib_load_options fast = {.skip_hash = true};
    CHECK_OK(ib_dataset_load("mnist", "test", dir, &fast, &d));
    CHECK_EQ_INT(d->n, 10000);
    const int64_t te[10] = {980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009};
    check_hist(d, te);
    const int first_te[8] = {7, 2, 1, 0, 4, 1, 4, 9};
    for (int i = 0; i < 8; i++)
        CHECK_EQ_INT(d->labels[i], first_te[i]);
    ib_dataset_free(d);
}

static void test_shared_cifar10(void)
{
    const char *dir = shared_data();
    ib_dataset *d = NULL;
    CHECK_OK(ib_dataset_load("cifar10", "test", dir, NULL, &d)); /* with sha256 */
    CHECK_EQ_INT(d->n, 10000);
    CHECK(d->c == 3 && d->h == 32 && d->w == 32);
    const int64_t te[10] = {1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000};
    check_hist(d, te);
    CHECK(d->class_names && strcmp(d->class_names[3], "cat") == 0);
    ib_dataset_free(d);
}

/* ------------------------------------------------------------ batches */

/* n examples of c x h x w; pixel values encode the example index. */
static ib_dataset *toy(int64_t n, int c, int h, int w, int classes)
{
    ib_dataset *d = ib_dataset_new("toy", n, c, h, w, classes);
    CHECK(d != NULL);
    int64_t per = (int64_t)c * h * w;
    for (int64_t i = 0; i < n; i++) {
        d->labels[i] = (int32_t)(i % classes);
        for (int64_t p = 0; p < per; p++)
            d->images[i * per + p] = (uint8_t)((i * 13 + p * 5) % 256);
    }
    return d;
}

/* The indices of every batch of one epoch, concatenated; returns count. */
static int64_t epoch_order(ib_batcher *b, int64_t epoch, int64_t *order, int64_t per, int64_t bs, int64_t *batches)
{
    float *x = malloc((size_t)(bs * per) * sizeof *x);
    int32_t *y = malloc((size_t)bs * sizeof *y);
    int64_t total = 0, cnt = 0, nb = 0;
    ib_batcher_epoch(b, epoch);
    while (ib_batcher_next(b, x, y, &cnt)) {
        memcpy(order + total, ib_batcher_indices(b), (size_t)cnt * sizeof *order);
        total += cnt;
        nb++;
    }
    CHECK(!ib_batcher_next(b, x, y, &cnt)); /* stays at the end */
    CHECK_EQ_INT(cnt, 0);
    free(x);
    free(y);
    if (batches)
        *batches = nb;
    return total;
}

static void test_batch_order_and_coverage(void)
{
    enum { N = 103, BS = 10 };
    ib_dataset *d = toy(N, 1, 2, 2, 10);
    ib_batcher_config cfg = {.batch_size = BS, .seed = 5, .shuffle = true};
    ib_batcher *a, *b, *c;
    CHECK_OK(ib_batcher_new(d, &cfg, &a));
    CHECK_OK(ib_batcher_new(d, &cfg, &b));
    cfg.seed = 6;
    CHECK_OK(ib_batcher_new(d, &cfg, &c));
    int64_t oa[N], ob[N], oc[N], oa1[N], nb;
    CHECK_EQ_INT(epoch_order(a, 0, oa, 4, BS, &nb), N);
    CHECK_EQ_INT(nb, 11); /* 10 full + the partial batch of 3 */
    CHECK_EQ_INT(ib_batcher_batches_per_epoch(a), 11);
    CHECK_EQ_INT(epoch_order(b, 0, ob, 4, BS, NULL), N);
    CHECK_EQ_INT(epoch_order(c, 0, oc, 4, BS, NULL), N);
    CHECK_EQ_INT(epoch_order(a, 1, oa1, 4, BS, NULL), N);
    CHECK(memcmp(oa, ob, sizeof oa) == 0);  /* same seed, same order */
    CHECK(memcmp(oa, oc, sizeof oa) != 0);  /* another seed */
    CHECK(memcmp(oa, oa1, sizeof oa) != 0); /* another epoch */
    /* every example exactly once per epoch, and the order is shuffled */
    int seen[N] = {0}, in_place = 0;
    for (int i = 0; i < N; i++) {
        seen[oa[i]]++;
        in_place += oa[i] == i;
    }
    for (int i = 0; i < N; i++)
        CHECK_EQ_INT(seen[i], 1);
    CHECK(in_place < 10);
    /* replaying epoch 0 after epoch 1 gives epoch 0 again */
    CHECK_EQ_INT(epoch_order(a, 0, ob, 4, BS, NULL), N);
    CHECK(memcmp(oa, ob, sizeof oa) == 0);
    ib_batcher_free(a);
    ib_batcher_free(b);
    ib_batcher_free(c);

    /* drop_last: 10 batches of 10, 100 distinct examples */
    cfg.drop_last = true;
    CHECK_OK(ib_batcher_new(d, &cfg, &a));
    CHECK_EQ_INT(epoch_order(a, 0, oa, 4, BS, &nb), 100);
    CHECK_EQ_INT(nb, 10);
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < 100; i++)
        CHECK_EQ_INT(seen[oa[i]]++, 0);
    ib_batcher_free(a);
    /* no shuffle: the data-set order; labels and pixels follow the indices */
    cfg = (ib_batcher_config){.batch_size = BS};
    CHECK_OK(ib_batcher_new(d, &cfg, &a));
    float x[BS * 4];
    int32_t y[BS];
    int64_t cnt;
    ib_batcher_epoch(a, 3);
    for (int j = 0; j < 11; j++) {
        CHECK(ib_batcher_next(a, x, y, &cnt));
        CHECK_EQ_INT(cnt, j < 10 ? BS : 3);
        for (int k = 0; k < cnt; k++) {
            int i = j * BS + k;
            CHECK_EQ_INT(ib_batcher_indices(a)[k], i);
            CHECK_EQ_INT(y[k], i % 10);
            CHECK(x[k * 4 + 2] == (float)((i * 13 + 10) % 256) / 255.0f);
        }
    }
    CHECK(!ib_batcher_next(a, x, y, &cnt));
    CHECK(ib_batcher_wait_seconds(a) >= 0.0);
    ib_batcher_free(a);
    /* bad configurations */
    cfg.batch_size = 0;
    CHECK(ib_batcher_new(d, &cfg, &a) == IB_ERR_ARG);
    cfg.batch_size = 4;
    cfg.crop_pad = 2;
    CHECK(ib_batcher_new(d, &cfg, &a) == IB_ERR_ARG); /* pad >= 2x2 image side */
    ib_dataset_free(d);
}

static void test_normalisation_conventions(void)
{
    ib_dataset *d = ib_dataset_new("ramp", 256, 2, 1, 1, 2);
    CHECK(d != NULL);
    for (int i = 0; i < 256; i++) {
        d->images[2 * i] = (uint8_t)i;
        d->images[2 * i + 1] = (uint8_t)(255 - i / 2);
    }
    float x[512];
    int32_t y[256];
    ib_batcher *b;
    /* unit and symmetric: exact float formulas of p/255 */
    const ib_input_norm kinds[2] = {IB_NORM_UNIT, IB_NORM_SYMMETRIC};
    for (int k = 0; k < 2; k++) {
        ib_batcher_config cfg = {.batch_size = 256, .norm = kinds[k]};
        CHECK_OK(ib_batcher_new(d, &cfg, &b));
        ib_batcher_epoch(b, 0);
        CHECK(ib_batcher_next(b, x, y, NULL));
        for (int i = 0; i < 256; i++) {
            double p = i / 255.0;
            double want = k == 0 ? p : 2 * p - 1;
            CHECK(x[2 * i] == (float)want); /* the table holds the correctly rounded value */
        }
        float lo, hi;
        ib_batcher_input_range(ib_batcher_get_config(b), 0, &lo, &hi);
        CHECK(lo == (k == 0 ? 0.0f : -1.0f) && hi == 1.0f);
        ib_batcher_free(b);
    }
    /* standardize with statistics computed from the data: each channel of
     * the whole set has mean 0 and (population) std 1 afterwards */
    ib_batcher_config cfg = {.batch_size = 256, .norm = IB_NORM_STANDARDIZE};
    CHECK_OK(ib_batcher_new(d, &cfg, &b));
    ib_batcher_epoch(b, 0);
    CHECK(ib_batcher_next(b, x, y, NULL));
    for (int c = 0; c < 2; c++) {
        double m = 0, v = 0;
        for (int i = 0; i < 256; i++)
            m += x[2 * i + c];
        m /= 256;
        for (int i = 0; i < 256; i++)
            v += (x[2 * i + c] - m) * (x[2 * i + c] - m);
        v /= 256;
        /* float32 values of size ~2 summed 256 times: error well below 1e-5 */
        CHECK_NEAR(m, 0.0, 1e-5);
        CHECK_NEAR(v, 1.0, 1e-5);
    }
    const ib_batcher_config *got = ib_batcher_get_config(b);
    CHECK_NEAR(got->mean[0], 0.5, 1e-6); /* mean of 0..255 / 255 */
    ib_batcher_free(b);
    /* given statistics (CIFAR-10's usual ones) */
    cfg = (ib_batcher_config){.batch_size = 256, .norm = IB_NORM_STANDARDIZE, .mean = {0.4914f, 0.4822f},
                              .std = {0.2470f, 0.2435f}};
    CHECK_OK(ib_batcher_new(d, &cfg, &b));
    ib_batcher_epoch(b, 0);
    CHECK(ib_batcher_next(b, x, y, NULL));
    CHECK_NEAR(x[2 * 200], (200 / 255.0 - 0.4914f) / 0.2470f, 1e-6);
    CHECK_NEAR(x[2 * 200 + 1], ((255 - 100) / 255.0 - 0.4822f) / 0.2435f, 1e-6);
    float lo, hi;
    ib_batcher_input_range(ib_batcher_get_config(b), 1, &lo, &hi);
    CHECK_NEAR(lo, -0.4822 / 0.2435, 1e-6);
    CHECK_NEAR(hi, (1 - 0.4822) / 0.2435, 1e-6);
    ib_batcher_free(b);
    cfg.std[1] = -1;
    CHECK(ib_batcher_new(d, &cfg, &b) == IB_ERR_ARG);
    ib_input_norm n;
    CHECK_OK(ib_input_norm_parse("symmetric", &n));
    CHECK(n == IB_NORM_SYMMETRIC);
    CHECK(ib_input_norm_parse("bogus", &n) == IB_ERR_ARG);
    ib_dataset_free(d);
}

/* Reference: pad by P with zeros, crop at (top, left), then flip. */
static void ref_augment(const uint8_t *src, int C, int H, int W, int P, int top, int left, bool flip, uint8_t *out)
{
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int xx = flip ? W - 1 - x : x;
                int sy = top + y - P, sx = left + xx - P;
                out[(c * H + y) * W + x] = (sy >= 0 && sy < H && sx >= 0 && sx < W) ? src[(c * H + sy) * W + sx] : 0;
            }
}

static void test_augmentation_crop_flip(void)
{
    enum { C = 2, H = 5, W = 6, P = 2, N = 4 };
    ib_dataset *d = ib_dataset_new("tiny", N, C, H, W, 2);
    CHECK(d != NULL);
    for (int i = 0; i < N * C * H * W; i++)
        d->images[i] = (uint8_t)(1 + i % 250); /* never 0: padding is visible */
    ib_batcher_config cfg = {.batch_size = N, .seed = 9, .shuffle = true, .crop_pad = P, .hflip = true};
    ib_batcher *b;
    CHECK_OK(ib_batcher_new(d, &cfg, &b));
    float x[N * C * H * W];
    int32_t y[N];
    uint8_t ref[C * H * W];
    int used[2 * P + 1][2 * P + 1][2] = {{{0}}};
    for (int e = 0; e < 60; e++) {
        ib_batcher_epoch(b, e);
        CHECK(ib_batcher_next(b, x, y, NULL));
        for (int k = 0; k < N; k++) {
            int64_t i = ib_batcher_indices(b)[k];
            const float *o = x + k * C * H * W;
            for (int j = 0; j < C * H * W; j++)
                CHECK(o[j] >= 0.0f && o[j] <= 1.0f);
            /* the output must be exactly one pad-crop-flip of the image */
            int matches = 0;
            for (int top = 0; top <= 2 * P; top++)
                for (int left = 0; left <= 2 * P; left++)
                    for (int f = 0; f < 2; f++) {
                        ref_augment(d->images + i * C * H * W, C, H, W, P, top, left, f, ref);
                        bool same = true;
                        for (int j = 0; same && j < C * H * W; j++)
                            same = o[j] == (float)ref[j] / 255.0f;
                        if (same) {
                            matches++;
                            used[top][left][f]++;
                        }
                    }
            CHECK_MSG(matches == 1, "example %lld epoch %d matches %d augmentations", (long long)i, e, matches);
        }
    }
    /* 240 draws over 50 outcomes: each should turn up (P(miss one) < 50 * (49/50)^240 ~ 0.4%;
     * the draws are fixed by the seed, so this is deterministic) */
    int distinct = 0;
    for (int t = 0; t <= 2 * P; t++)
        for (int l = 0; l <= 2 * P; l++)
            for (int f = 0; f < 2; f++)
                distinct += used[t][l][f] > 0;
    CHECK_EQ_INT(distinct, (2 * P + 1) * (2 * P + 1) * 2);
    ib_batcher_free(b);

    /* a known image, flip only: out = mirror of the input or the input */
    ib_dataset *k = ib_dataset_new("row", 1, 1, 1, 4, 1);
    const uint8_t row[4] = {10, 20, 30, 40};
    memcpy(k->images, row, 4);
    cfg = (ib_batcher_config){.batch_size = 1, .hflip = true, .seed = 1};
    CHECK_OK(ib_batcher_new(k, &cfg, &b));
    int flips = 0;
    for (int e = 0; e < 40; e++) {
        ib_batcher_epoch(b, e);
        CHECK(ib_batcher_next(b, x, y, NULL));
        bool same = x[0] == 10 / 255.0f && x[3] == 40 / 255.0f;
        bool mirrored = x[0] == 40 / 255.0f && x[1] == 30 / 255.0f && x[2] == 20 / 255.0f && x[3] == 10 / 255.0f;
        CHECK(same != mirrored);
        flips += mirrored;
    }
    CHECK(flips > 5 && flips < 35); /* about half of 40 */
    ib_batcher_free(b);
    ib_dataset_free(k);
    ib_dataset_free(d);
}

static void test_prefetch_matches_sync(void)
{
    enum { N = 77, BS = 8, C = 3, H = 8, W = 8 };
    ib_dataset *d = toy(N, C, H, W, 10);
    ib_batcher_config cfg = {.batch_size = BS, .seed = 3, .shuffle = true, .crop_pad = 2, .hflip = true,
                             .norm = IB_NORM_SYMMETRIC};
    ib_batcher *s, *p;
    CHECK_OK(ib_batcher_new(d, &cfg, &s));
    cfg.prefetch = true;
    CHECK_OK(ib_batcher_new(d, &cfg, &p));
    static float xs[BS * C * H * W], xp[BS * C * H * W];
    int32_t ys[BS], yp[BS];
    for (int e = 0; e < 4; e++) {
        ib_batcher_epoch(s, e);
        ib_batcher_epoch(p, e);
        int64_t cs, cp;
        int j = 0;
        for (;;) {
            /* epoch 2 is abandoned after 3 batches, to test restarting */
            bool more_s = e == 2 && j == 3 ? false : ib_batcher_next(s, xs, ys, &cs);
            bool more_p = e == 2 && j == 3 ? false : ib_batcher_next(p, xp, yp, &cp);
            CHECK(more_s == more_p);
            if (!more_s)
                break;
            CHECK_EQ_INT(cs, cp);
            CHECK(memcmp(xs, xp, (size_t)cs * C * H * W * sizeof(float)) == 0);
            CHECK(memcmp(ys, yp, (size_t)cs * sizeof(int32_t)) == 0);
            CHECK(memcmp(ib_batcher_indices(s), ib_batcher_indices(p), (size_t)cs * sizeof(int64_t)) == 0);
            j++;
        }
        CHECK_EQ_INT(j, e == 2 ? 3 : 10);
    }
    CHECK(ib_batcher_wait_seconds(p) >= 0.0);
    ib_batcher_free(s);
    ib_batcher_free(p);
    /* freeing mid-epoch with the producer running ahead is clean */
    CHECK_OK(ib_batcher_new(d, &cfg, &p));
    ib_batcher_epoch(p, 0);
    CHECK(ib_batcher_next(p, xp, yp, NULL));
    ib_batcher_free(p);
    ib_dataset_free(d);
}

/* ------------------------------------------------------------ label noise */

static void test_label_noise_symmetric(void)
{
    enum { N = 20000 };
    ib_dataset *d = toy(N, 1, 1, 1, 10);
    int32_t orig[N];
    memcpy(orig, d->labels, sizeof orig);
    double rate;
    CHECK_OK(ib_label_noise_apply(d, IB_NOISE_SYMMETRIC, 0.4, 11, &rate));
    CHECK(d->clean_labels != NULL);
    CHECK(memcmp(d->clean_labels, orig, sizeof orig) == 0);
    /* binomial sd of the rate = sqrt(0.4*0.6/20000) = 0.0035: 0.015 is > 4 sd */
    CHECK_NEAR(rate, 0.4, 0.015);
    int64_t changed = 0, to[10] = {0}, from0 = 0;
    for (int i = 0; i < N; i++) {
        CHECK(d->labels[i] >= 0 && d->labels[i] < 10);
        changed += d->labels[i] != orig[i];
        if (orig[i] == 0 && d->labels[i] != 0) {
            to[d->labels[i]]++;
            from0++;
        }
    }
    CHECK_NEAR(rate, (double)changed / N, 1e-12); /* the reported rate is the real one */
    /* flips out of class 0 spread evenly over the 9 others (~89 each, sd ~9) */
    CHECK_EQ_INT(to[0], 0);
    for (int k = 1; k < 10; k++)
        CHECK_MSG(fabs((double)to[k] - from0 / 9.0) < 45, "class 0 -> %d: %lld of %lld", k, (long long)to[k],
                  (long long)from0);
    /* same seed, same noise; another seed, other noise; re-noise starts from clean */
    int32_t first[N];
    memcpy(first, d->labels, sizeof first);
    CHECK_OK(ib_label_noise_apply(d, IB_NOISE_SYMMETRIC, 0.4, 11, NULL));
    CHECK(memcmp(first, d->labels, sizeof first) == 0);
    CHECK_OK(ib_label_noise_apply(d, IB_NOISE_SYMMETRIC, 0.4, 12, NULL));
    CHECK(memcmp(first, d->labels, sizeof first) != 0);
    CHECK_OK(ib_label_noise_apply(d, IB_NOISE_SYMMETRIC, 0.0, 12, &rate));
    CHECK(rate == 0.0 && memcmp(orig, d->labels, sizeof orig) == 0);
    CHECK_OK(ib_label_noise_apply(d, IB_NOISE_SYMMETRIC, 1.0, 12, &rate));
    CHECK(rate == 1.0);
    /* clone and subset keep the clean labels */
    ib_dataset *c = ib_dataset_clone(d), *s = NULL;
    CHECK(c && c->clean_labels && memcmp(c->clean_labels, orig, sizeof orig) == 0);
    int64_t idx[3] = {5, 0, 19999};
    CHECK_OK(ib_dataset_subset(d, idx, 3, &s));
    CHECK(s->clean_labels[0] == orig[5] && s->clean_labels[2] == orig[19999] && s->labels[1] == d->labels[0]);
    ib_dataset_free(c);
    ib_dataset_free(s);
    /* bad arguments */
    CHECK(ib_label_noise_apply(d, IB_NOISE_SYMMETRIC, 1.5, 1, NULL) == IB_ERR_ARG);
    CHECK(ib_label_noise_apply(d, IB_NOISE_SYMMETRIC, NAN, 1, NULL) == IB_ERR_ARG);
    ib_dataset_free(d);
}

static void test_label_noise_pair(void)
{
    enum { N = 20000 };
    ib_dataset *d = toy(N, 1, 1, 1, 10);
    snprintf(d->name, sizeof d->name, "cifar10");
    double rate;
    CHECK_OK(ib_label_noise_apply(d, IB_NOISE_PAIR, 0.3, 4, &rate));
    /* truck->automobile, bird->airplane, deer->horse, cat<->dog */
    const int map[10] = {0, 1, 0, 5, 7, 3, 6, 7, 8, 1};
    int64_t flipped_src = 0, src = 0;
    for (int i = 0; i < N; i++) {
        int c = d->clean_labels[i], y = d->labels[i];
        CHECK_MSG(y == c || y == map[c], "class %d became %d", c, y);
        if (map[c] != c) {
            src++;
            flipped_src += y != c;
        }
    }
    /* among the 5 source classes the rate is r; overall r/2 (sd 0.0046 and 0.003) */
    CHECK_NEAR((double)flipped_src / src, 0.3, 0.02);
    CHECK_NEAR(rate, 0.15, 0.015);
    for (int c = 0; c < 10; c++)
        CHECK_EQ_INT(ib_label_noise_pair_target(d, IB_NOISE_PAIR, c), map[c]);
    /* MNIST's pair noise: c -> c+1 mod 10 */
    snprintf(d->name, sizeof d->name, "mnist");
    CHECK_OK(ib_label_noise_apply(d, IB_NOISE_PAIR, 0.45, 4, &rate));
    CHECK_NEAR(rate, 0.45, 0.015);
    for (int i = 0; i < N; i++)
        CHECK(d->labels[i] == d->clean_labels[i] || d->labels[i] == (d->clean_labels[i] + 1) % 10);
    CHECK_EQ_INT(ib_label_noise_pair_target(d, IB_NOISE_PAIR, 9), 0);
    ib_dataset_free(d);
    /* CIFAR-10's map needs 10 classes */
    d = toy(10, 1, 1, 1, 5);
    CHECK(ib_label_noise_apply(d, IB_NOISE_PAIR_CIFAR10, 0.3, 1, NULL) == IB_ERR_ARG);
    ib_dataset_free(d);
}

/* ------------------------------------------------------------ subsets */

static void test_split_subset_concat(void)
{
    ib_dataset *d = toy(10, 1, 2, 3, 4), *tr = NULL, *va = NULL, *cat = NULL, *s = NULL;
    const char *names[4] = {"a", "b", "c", "d"};
    CHECK_OK(ib_dataset_set_class_names(d, names, 4));
    CHECK_OK(ib_dataset_split_last(d, 3, &tr, &va));
    CHECK_EQ_INT(tr->n, 7);
    CHECK_EQ_INT(va->n, 3);
    CHECK(memcmp(va->images, d->images + 7 * 6, 3 * 6) == 0);
    CHECK_EQ_INT(va->labels[0], d->labels[7]);
    CHECK(strcmp(va->class_names[3], "d") == 0);
    CHECK_OK(ib_dataset_concat(tr, va, &cat));
    CHECK_EQ_INT(cat->n, 10);
    CHECK(memcmp(cat->images, d->images, 60) == 0 && memcmp(cat->labels, d->labels, 40) == 0);
    CHECK(cat->class_names && strcmp(cat->class_names[1], "b") == 0);
    ib_dataset_free(tr);
    ib_dataset_free(va);
    CHECK(ib_dataset_split_last(d, 11, &tr, &va) == IB_ERR_ARG && tr == NULL);
    int64_t bad[1] = {10};
    CHECK(ib_dataset_subset(d, bad, 1, &s) == IB_ERR_ARG);
    CHECK(ib_dataset_slice(d, 8, 3, &s) == IB_ERR_ARG);
    CHECK_OK(ib_dataset_slice(d, 10, 0, &s));
    CHECK_EQ_INT(s->n, 0);
    ib_dataset_free(s);
    ib_dataset *other = toy(2, 1, 3, 2, 4);
    CHECK(ib_dataset_concat(d, other, &s) == IB_ERR_SHAPE);
    /* check catches a label out of range */
    d->labels[4] = 4;
    CHECK(ib_dataset_check(d) == IB_ERR_FORMAT);
    CHECK(strstr(ib_last_error(), "example 4") != NULL);
    ib_dataset_free(other);
    ib_dataset_free(cat);
    ib_dataset_free(d);
    CHECK(ib_dataset_new("x", -1, 1, 1, 1, 1) == NULL);
    CHECK(ib_dataset_new("x", (int64_t)1 << 40, 3, 1024, 1024, 1) == NULL); /* over the size limit, no allocation */
}

int main(void)
{
    IB_RUN(test_sha256_fips_vectors);
    IB_RUN(test_idx_plain_and_gz);
    IB_RUN(test_idx_bad_inputs);
    IB_RUN(test_cifar_plain_and_gz);
    IB_RUN(test_cifar_bad_inputs);
    IB_RUN(test_pngdir_reader);
    IB_RUN(test_pngdir_bad_inputs);
    IB_RUN(test_registry_errors);
    if (shared_data()) {
        IB_RUN(test_shared_mnist);
        IB_RUN(test_shared_cifar10);
    } else {
        printf("skip test_shared_mnist: skipped (no data)\nskip test_shared_cifar10: skipped (no data)\n");
    }
    IB_RUN(test_batch_order_and_coverage);
    IB_RUN(test_normalisation_conventions);
    IB_RUN(test_augmentation_crop_flip);
    IB_RUN(test_prefetch_matches_sync);
    IB_RUN(test_label_noise_symmetric);
    IB_RUN(test_label_noise_pair);
    IB_RUN(test_split_subset_concat);
    IB_RUN(test_idx_dir_reads_cifar_batches);
    return ib_test_summary();
}
