/*
 * idx.c — the IDX format of MNIST and Fashion-MNIST (LeCun's format:
 * big-endian uint32 magic 0x0000TTDD, TT = data type, DD = number of
 * dimensions, then DD uint32 sizes, then the data).  Only unsigned-byte
 * images (n, rows, cols) and labels (n) are accepted: that is what every
 * image data set in this format stores.
 */
#include "data/dataset_internal.h"

static const char *type_name(int t)
{
    switch (t) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    }
    return "unknown";
}

/* Check the magic of an IDX file: unsigned bytes with `dims` dimensions. */
static ib_status check_magic(const char *path, const uint8_t *hdr, int dims, const char *kind)
{
    if (hdr[0] != 0 || hdr[1] != 0)
        return ib__error(IB_ERR_FORMAT, "%s: wrong magic number 0x%08X: not an IDX file (an IDX %s file starts with 0x%08X)",
                         path, ib__be32(hdr), kind, 0x800u | (unsigned)dims);
    if (hdr[2] != 0x08)
        return ib__error(IB_ERR_FORMAT, "%s: IDX data type 0x%02X (%s) is not supported: %s must be unsigned bytes (0x08)",
                         path, hdr[2], type_name(hdr[2]), kind);
    if (hdr[3] != dims)
        return ib__error(IB_ERR_FORMAT, "%s: wrong magic number 0x%08X: %d dimensions, an IDX %s file has %d (magic 0x%08X)",
                         path, ib__be32(hdr), hdr[3], kind, dims, 0x800u | (unsigned)dims);
    return IB_OK;
}

static ib_status read_images(const char *path, char *hex, int64_t *n, int *h, int *w, uint8_t **pix)
{
    ib__rd r;
    ib__sha256 sha;
    ib_status s = ib__rd_open(&r, path);
    if (s != IB_OK)
        return s;
    if (hex) {
        ib__sha256_init(&sha);
        r.sha = &sha;
    }
    uint8_t hdr[16];
    if ((s = ib__rd_read(&r, hdr, 4, "magic number")) != IB_OK || (s = check_magic(path, hdr, 3, "images")) != IB_OK ||
        (s = ib__rd_read(&r, hdr + 4, 12, "header")) != IB_OK)
        goto done;
    uint32_t cnt = ib__be32(hdr + 4), rows = ib__be32(hdr + 8), cols = ib__be32(hdr + 12);
    if (rows == 0 || cols == 0 || rows > 65535 || cols > 65535) {
        s = ib__error(IB_ERR_FORMAT, "%s: image size %ux%u is not plausible (1..65535 each)", path, rows, cols);
        goto done;
    }
    int64_t need = (int64_t)cnt * rows * cols;
    int64_t room = ib__rd_max_content(&r) - 16;
    if (need > room) {
        s = ib__error(IB_ERR_FORMAT, "%s: the header declares %u images of %ux%u (%lld bytes) but the file %s %lld bytes: truncated, or a wrong count",
                      path, cnt, rows, cols, (long long)need, r.compressed ? "can decompress to at most" : "holds only",
                      (long long)(room > 0 ? room : 0));
        goto done;
    }
    if ((s = ib__rd_read_alloc(&r, (size_t)need, "pixels", pix)) != IB_OK)
        goto done;
    if ((s = ib__rd_expect_eof(&r, "declared images")) != IB_OK) {
        free(*pix);
        *pix = NULL;
        goto done;
    }
    *n = cnt;
    *h = (int)rows;
    *w = (int)cols;
    if (hex)
        ib__sha256_final_hex(&sha, hex);
done:
    ib__rd_close(&r);
    return s;
}

static ib_status read_labels(const char *path, char *hex, int64_t *n, uint8_t **lab)
{
    ib__rd r;
    ib__sha256 sha;
    ib_status s = ib__rd_open(&r, path);
    if (s != IB_OK)
        return s;
    if (hex) {
        ib__sha256_init(&sha);
        r.sha = &sha;
    }
    uint8_t hdr[8];
    if ((s = ib__rd_read(&r, hdr, 4, "magic number")) != IB_OK || (s = check_magic(path, hdr, 1, "labels")) != IB_OK ||
        (s = ib__rd_read(&r, hdr + 4, 4, "header")) != IB_OK)
        goto done;
    uint32_t cnt = ib__be32(hdr + 4);
    int64_t room = ib__rd_max_content(&r) - 8;
    if ((int64_t)cnt > room) {
        s = ib__error(IB_ERR_FORMAT, "%s: the header declares %u labels but the file %s %lld bytes: truncated, or a wrong count", path, cnt,
                      r.compressed ? "can decompress to at most" : "holds only", (long long)(room > 0 ? room : 0));
        goto done;
    }
    if ((s = ib__rd_read_alloc(&r, cnt, "labels", lab)) != IB_OK)
        goto done;
    if ((s = ib__rd_expect_eof(&r, "declared labels")) != IB_OK) {
        free(*lab);
        *lab = NULL;
        goto done;
    }
    *n = cnt;
    if (hex)
        ib__sha256_final_hex(&sha, hex);
done:
    ib__rd_close(&r);
    return s;
}

ib_status ib__load_idx(const char *images_path, const char *labels_path, int classes, char (*hex)[65],
                       ib_dataset **out)
{
    if (out)
        *out = NULL;
    if (!images_path || !labels_path || !out || classes < 0 || classes > 65536)
        return ib__error(IB_ERR_ARG, "ib_dataset_load_idx: NULL path or output, or bad class count %d", classes);
    int64_t n = 0, nl = 0;
    int h = 0, w = 0;
    uint8_t *pix = NULL, *lab8 = NULL;
    /* Labels first: small, and a mismatch there is cheaper to find. */
    ib_status s = read_labels(labels_path, hex ? hex[1] : NULL, &nl, &lab8);
    if (s != IB_OK)
        return s;
    s = read_images(images_path, hex ? hex[0] : NULL, &n, &h, &w, &pix);
    if (s != IB_OK) {
        free(lab8);
        return s;
    }
    if (n != nl) {
        free(pix);
        free(lab8);
        return ib__error(IB_ERR_FORMAT, "%s: %lld labels for the %lld images of %s", labels_path, (long long)nl,
                         (long long)n, images_path);
    }
    int maxl = -1;
    for (int64_t i = 0; i < n; i++)
        if (lab8[i] > maxl)
            maxl = lab8[i];
    if (classes > 0 && maxl >= classes) {
        int64_t at = 0;
        while (lab8[at] < classes)
            at++;
        s = ib__error(IB_ERR_FORMAT, "%s: label %d of example %lld is outside the %d classes [0, %d)", labels_path,
                      lab8[at], (long long)at, classes, classes);
        free(pix);
        free(lab8);
        return s;
    }
    int32_t *lab = malloc((size_t)(n ? n : 1) * sizeof *lab);
    if (!lab) {
        free(pix);
        free(lab8);
        return ib__error(IB_ERR_NOMEM, "%s: out of memory", labels_path);
    }
    for (int64_t i = 0; i < n; i++)
        lab[i] = lab8[i];
    free(lab8);
    ib_dataset *d = ib__dataset_wrap(ib__basename(images_path), n, 1, h, w, classes > 0 ? classes : (maxl + 1 > 0 ? maxl + 1 : 1),
                                     pix, lab);
    if (!d)
        return IB_ERR_NOMEM;
    *out = d;
    return IB_OK;
}

ib_status ib_dataset_load_idx(const char *images_path, const char *labels_path, int classes, ib_dataset **out)
{
    return ib__load_idx(images_path, labels_path, classes, NULL, out);
}
