/*
 * dataset_internal.h — helpers shared by the data readers (src/data/):
 * a checked file reader over zlib (plain or gzip alike) that hashes what
 * it reads, SHA-256, and data-set assembly.  Not installed.
 *
 * Why one reader: every parser must fail the same way on the same kinds
 * of damage (truncation, trailing bytes, sizes no file could hold), with
 * one message naming the file; doing that once here keeps the parsers
 * short and the fuzz targets honest.
 */
#ifndef IB_DATASET_INTERNAL_H
#define IB_DATASET_INTERNAL_H

#include "core/internal.h"

#include <zlib.h>

/* ---- SHA-256 (sha256.c) ---- */
typedef struct ib__sha256 {
    uint32_t h[8];
    uint64_t bytes;
    uint8_t buf[64];
    size_t fill;
} ib__sha256;

void ib__sha256_init(ib__sha256 *s);
void ib__sha256_update(ib__sha256 *s, const void *data, size_t n);
void ib__sha256_final(ib__sha256 *s, uint8_t digest[32]);
void ib__sha256_final_hex(ib__sha256 *s, char hex[65]);

/* ---- checked reading (dataset.c) ---- */
typedef struct ib__rd {
    gzFile gz;
    const char *path;   /* not owned; used in messages */
    int64_t file_size;  /* bytes on disk */
    bool compressed;    /* a gzip stream (else zlib reads the file as is) */
    int64_t pos;        /* content bytes consumed so far */
    ib__sha256 *sha;    /* when not NULL, every byte read is hashed */
} ib__rd;

/* IB_ERR_IO naming the path if it cannot be opened. */
ib_status ib__rd_open(ib__rd *r, const char *path);
void ib__rd_close(ib__rd *r);
/* Exactly n bytes, or IB_ERR_FORMAT "truncated" saying what was being
 * read ("header", "labels"...), where, and how much was missing. */
ib_status ib__rd_read(ib__rd *r, void *buf, size_t n, const char *what);
/* Up to n bytes; the count read (0 at the end) or -1 with the error set. */
int64_t ib__rd_read_some(ib__rd *r, void *buf, size_t n);
/* Exactly n bytes into a new malloc'd buffer that grows with the data
 * actually read (a header claiming 100 GB on a small file costs at most
 * twice what the file holds before the truncation error). */
ib_status ib__rd_read_alloc(ib__rd *r, size_t n, const char *what, uint8_t **out);
/* IB_ERR_FORMAT if any content remains (a count smaller than the file). */
ib_status ib__rd_expect_eof(ib__rd *r, const char *what);
/* The most content bytes the file could hold: its size when plain,
 * 1032x (deflate's largest ratio) plus slack when compressed. */
int64_t ib__rd_max_content(const ib__rd *r);

/* ---- data sets (dataset.c) ---- */
/* Wrap owned buffers (images (n,c,h,w), labels (n)) into a new data set;
 * frees them and returns NULL on no memory. */
ib_dataset *ib__dataset_wrap(const char *name, int64_t n, int c, int h, int w, int classes, uint8_t *images,
                             int32_t *labels);
/* Largest number of bytes we agree to hold in one data set (64 GiB):
 * past it a header is taken to be lying. */
#define IB__DATA_MAX_BYTES ((int64_t)1 << 36)
/* The readers, hashing as they read: when hex is not NULL, hex[k]
 * receives the sha256 of file k's decompressed content (idx: images then
 * labels; cifar: each path in order). */
ib_status ib__load_idx(const char *images_path, const char *labels_path, int classes, char (*hex)[65],
                       ib_dataset **out);
ib_status ib__load_cifar(const char *const *paths, int n_paths, int label_bytes, int classes, char (*hex)[65],
                         ib_dataset **out);
/* The last path component, for data-set names. */
const char *ib__basename(const char *path);
/* "rotated-mnist:K" of ib_dataset_open (src/data/rotated_mnist.c). */
ib_status ib__rotated_mnist_open(const char *spec, bool train, const char *data_dir, const ib_load_options *opt,
                                 ib_dataset **out);

#endif
