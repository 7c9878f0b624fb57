/*
 * safetensors.h — a general reader and writer of safetensors files
 * (https://github.com/huggingface/safetensors), the format checkpoints use
 * so that PyTorch loads them directly.
 *
 * Layout: an 8-byte little-endian header length N; N bytes of UTF-8 JSON
 * mapping each tensor name to {"dtype", "shape", "data_offsets": [begin,
 * end)} (offsets relative to the first byte after the header) plus an
 * optional "__metadata__" string->string map; then the data, little-endian,
 * C order, every byte belonging to exactly one tensor.
 *
 * The reader trusts nothing: the header length is checked against the file
 * size before anything is allocated, the JSON and every entry are
 * validated (dtype, shape, offsets in range, sizes matching the shape, no
 * overlap, no hole, unique names), and each failure is a status with a
 * message naming the file and the problem.  It lists tensors of any dtype;
 * only the F32 accessor converts.
 */
#ifndef IB_SAFETENSORS_H
#define IB_SAFETENSORS_H

#include "ibnet.h"

#include <stdio.h>

/* Headers above this are refused before being read (the reference
 * implementation's limit). */
#define IB__ST_MAX_HEADER 100000000ull
/* More dimensions than any real tensor has; refused rather than allocated. */
#define IB__ST_MAX_DIMS 16

typedef enum ib__st_dtype {
    IB__ST_BOOL, IB__ST_U8, IB__ST_I8, IB__ST_F8_E5M2, IB__ST_F8_E4M3,
    IB__ST_I16, IB__ST_U16, IB__ST_F16, IB__ST_BF16,
    IB__ST_I32, IB__ST_U32, IB__ST_F32,
    IB__ST_I64, IB__ST_U64, IB__ST_F64,
    IB__ST_N_DTYPES
} ib__st_dtype;

const char *ib__st_dtype_name(ib__st_dtype d);
size_t ib__st_dtype_size(ib__st_dtype d);

typedef struct ib__st_tensor {
    char *name;
    ib__st_dtype dtype;
    int ndim;
    int64_t shape[IB__ST_MAX_DIMS];
    uint64_t numel;
    uint64_t begin, end; /* bytes, relative to the data region, end exclusive */
} ib__st_tensor;

typedef struct ib__st_file {
    char *what;            /* file name (or caller's label) for messages */
    FILE *fp;              /* open file (ib__st_open), else NULL */
    const unsigned char *mem; /* the data region (ib__st_parse_memory), else NULL */
    uint64_t header_len;   /* N */
    uint64_t data_start;   /* 8 + N: where the data region starts in the file */
    uint64_t data_size;    /* bytes of the data region (= file size - 8 - N) */
    int n_tensors;
    ib__st_tensor *tensors; /* in header order */
    int *by_name;           /* indices into tensors, sorted by name (for lookup) */
    int n_meta;
    char **meta_keys, **meta_values;
} ib__st_file;

/* Open and validate a file: reads only the 8-byte length and the header
 * (bounded by the file size); the data is read on demand.  On failure *f
 * is left empty (ib__st_close is still safe). */
ib_status ib__st_open(const char *path, ib__st_file *f);
/* Validate an in-memory image of a whole file (the fuzzer's entry point).
 * bytes must outlive f: tensor reads copy from it.  what names the source
 * in messages. */
ib_status ib__st_parse_memory(const char *what, const void *bytes, size_t len, ib__st_file *f);
/* Validate a header already read: json (json_len bytes, not necessarily
 * NUL-terminated) describing a data region of data_size bytes. */
ib_status ib__st_parse_header(const char *what, const char *json, size_t json_len, uint64_t data_size,
                              ib__st_file *f);
void ib__st_close(ib__st_file *f);

/* Index of a tensor by name, or -1. */
int ib__st_find(const ib__st_file *f, const char *name);
/* A metadata value, or NULL. */
const char *ib__st_meta(const ib__st_file *f, const char *key);
/* The raw bytes of tensor i (end - begin of them, as stored). */
ib_status ib__st_read_raw(ib__st_file *f, int i, void *dst);
/* Tensor i as host floats; IB_ERR_FORMAT unless its dtype is F32. */
ib_status ib__st_read_f32(ib__st_file *f, int i, float *dst);

/* ---- writing ---- */
typedef struct ib__st_out {
    const char *name;
    int ndim;
    const int64_t *shape; /* ndim values (may be NULL when ndim is 0) */
    const float *data;    /* prod(shape) host floats */
} ib__st_out;

/* Write n F32 tensors (data in the given order) and the metadata map
 * (n_meta key/value pairs, may be 0) atomically to path.  Names must be
 * unique and not "__metadata__". */
ib_status ib__st_write(const char *path, int n, const ib__st_out *t, int n_meta, const char *const *keys,
                       const char *const *values);

#endif /* IB_SAFETENSORS_H */
