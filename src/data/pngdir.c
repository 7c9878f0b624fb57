/*
 * pngdir.c — a user's own image data set as a folder of PNGs,
 * ROOT/<class>/<file>.png (the torchvision ImageFolder layout).  Classes
 * are the sorted subfolder names (byte order, so the label of a class
 * never depends on the locale); files are read in sorted order.  libpng's
 * simplified API decodes every PNG kind to 8-bit grey or RGB; the size of
 * each image is checked against its file before the pixels are decoded.
 */
#include "data/dataset_internal.h"

#include <dirent.h>
#include <errno.h>
#include <png.h>
#include <strings.h>
#include <sys/stat.h>

typedef struct strlist {
    char **s;
    int n, cap;
} strlist;

static bool sl_push(strlist *l, const char *s)
{
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 16;
        char **ns = realloc(l->s, (size_t)cap * sizeof *ns);
        if (!ns)
            return false;
        l->s = ns;
        l->cap = cap;
    }
    char *c = strdup(s);
    if (!c)
        return false;
    l->s[l->n++] = c;
    return true;
}

static void sl_free(strlist *l)
{
    for (int k = 0; k < l->n; k++)
        free(l->s[k]);
    free(l->s);
    l->s = NULL;
    l->n = l->cap = 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool is_png_name(const char *s)
{
    size_t n = strlen(s);
    return n > 4 && strcasecmp(s + n - 4, ".png") == 0;
}

/* Entries of dir (no dot-files): sub-folders when want_dirs, else regular
 * files ending in .png; sorted. */
static ib_status list_dir(const char *dir, bool want_dirs, strlist *out)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return ib__error(IB_ERR_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    struct dirent *e;
    char path[4096];
    ib_status s = IB_OK;
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.')
            continue;
        if (!want_dirs && !is_png_name(e->d_name))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0)
            continue;
        if (want_dirs ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
            continue;
        if (!sl_push(out, e->d_name)) {
            s = ib__error(IB_ERR_NOMEM, "%s: out of memory listing the folder", dir);
            break;
        }
    }
    closedir(dp);
    if (s == IB_OK && out->n > 1)
        qsort(out->s, (size_t)out->n, sizeof *out->s, cmp_str);
    return s;
}

/* Read a whole (small) file: PNGs are decoded from memory so the file size
 * bounds what the header may claim. */
static ib_status slurp(const char *path, uint8_t **data, size_t *len)
{
    *data = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return ib__error(IB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0 || (int64_t)st.st_size > ((int64_t)1 << 31)) {
        fclose(f);
        return ib__error(IB_ERR_FORMAT, "%s: not a plausible PNG file (size)", path);
    }
    size_t n = (size_t)st.st_size;
    uint8_t *b = malloc(n ? n : 1);
    if (!b) {
        fclose(f);
        return ib__error(IB_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t got = fread(b, 1, n, f);
    fclose(f);
    if (got != n) {
        free(b);
        return ib__error(IB_ERR_IO, "%s: read %zu of %zu bytes", path, got, n);
    }
    *data = b;
    *len = n;
    return IB_OK;
}

/* Decode one PNG.  With *c == 0 (the first image) the size and channels
 * are set from it; afterwards each image must match.  dst NULL: only
 * check the header (the first image, before the data set is allocated). */
static ib_status decode(const char *path, int *c, int *h, int *w, uint8_t *dst)
{
    uint8_t *data;
    size_t len = 0;
    ib_status s = slurp(path, &data, &len);
    if (s != IB_OK)
        return s;
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&im, data, len)) {
        s = ib__error(IB_ERR_FORMAT, "%s: not a decodable PNG: %s", path, im.message[0] ? im.message : "bad header");
        goto out;
    }
    int ch = (im.format & PNG_FORMAT_FLAG_COLOR) ? 3 : 1;
    if (im.width == 0 || im.height == 0 || im.width > 65535 || im.height > 65535) {
        s = ib__error(IB_ERR_FORMAT, "%s: PNG size %ux%u is not supported (1..65535 each)", path, im.width, im.height);
        goto out;
    }
    /* deflate cannot expand more than 1032:1, so pixels beyond that ratio
     * of the file size cannot be in it: refuse before allocating. */
    uint64_t px = (uint64_t)im.width * im.height * (uint64_t)ch;
    if (px > (uint64_t)len * 1032 + 65536) {
        s = ib__error(IB_ERR_FORMAT, "%s: PNG header claims %ux%u pixels, more than the %zu-byte file can hold", path,
                      im.width, im.height, len);
        goto out;
    }
    if (*c == 0) {
        *c = ch;
        *h = (int)im.height;
        *w = (int)im.width;
    } else if (ch != *c || (int)im.height != *h || (int)im.width != *w) {
        s = ib__error(IB_ERR_FORMAT, "%s: image is %ux%u with %d channel%s but the first image is %dx%d with %d: all "
                                     "images of a folder data set must have the same size and channels",
                      path, im.width, im.height, ch, ch > 1 ? "s" : "", *w, *h, *c);
        goto out;
    }
    if (!dst)
        goto out;
    im.format = ch == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    uint8_t *hwc = calloc((size_t)px, 1); /* zero: alpha composites onto black */
    if (!hwc) {
        s = ib__error(IB_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    if (!png_image_finish_read(&im, NULL, hwc, 0, NULL)) {
        s = ib__error(IB_ERR_FORMAT, "%s: not a decodable PNG: %s", path, im.message[0] ? im.message : "decode error");
        free(hwc);
        goto out;
    }
    /* interleaved HWC -> planar CHW */
    int64_t plane = (int64_t)*h * *w;
    for (int64_t p = 0; p < plane; p++)
        for (int k = 0; k < ch; k++)
            dst[k * plane + p] = hwc[p * ch + k];
    free(hwc);
out:
    png_image_free(&im);
    free(data);
    return s;
}

ib_status ib_image_png_info(const char *path, int *c, int *h, int *w)
{
    if (!path || !c || !h || !w)
        return ib__error(IB_ERR_ARG, "ib_image_png_info: NULL argument");
    *c = *h = *w = 0;
    return decode(path, c, h, w, NULL);
}

ib_status ib_image_read_png(const char *path, uint8_t **out, int *c, int *h, int *w)
{
    if (!path || !out || !c || !h || !w)
        return ib__error(IB_ERR_ARG, "ib_image_read_png: NULL argument");
    *out = NULL;
    *c = *h = *w = 0;
    ib_status s = decode(path, c, h, w, NULL);
    if (s != IB_OK)
        return s;
    uint8_t *img = malloc((size_t)*c * (size_t)*h * (size_t)*w);
    if (!img)
        return ib__error(IB_ERR_NOMEM, "%s: out of memory", path);
    s = decode(path, c, h, w, img);
    if (s != IB_OK) {
        free(img);
        return s;
    }
    *out = img;
    return IB_OK;
}

ib_status ib_dataset_load_pngdir(const char *root, ib_dataset **out)
{
    if (out)
        *out = NULL;
    if (!root || !out)
        return ib__error(IB_ERR_ARG, "ib_dataset_load_pngdir: NULL root or output");
    strlist classes = {0}, files = {0};
    int32_t *file_class = NULL;
    ib_dataset *d = NULL;
    ib_status s = list_dir(root, true, &classes);
    if (s != IB_OK)
        goto fail;
    if (classes.n == 0) {
        s = ib__error(IB_ERR_FORMAT, "%s: no class folders (expected ROOT/<class>/<image>.png)", root);
        goto fail;
    }
    char path[4096];
    int cap = 0;
    for (int k = 0; k < classes.n; k++) {
        snprintf(path, sizeof path, "%s/%s", root, classes.s[k]);
        int before = files.n;
        strlist here = {0};
        if ((s = list_dir(path, false, &here)) != IB_OK) {
            sl_free(&here);
            goto fail;
        }
        for (int j = 0; j < here.n; j++) {
            snprintf(path, sizeof path, "%s/%s/%s", root, classes.s[k], here.s[j]);
            if (!sl_push(&files, path)) {
                sl_free(&here);
                s = ib__error(IB_ERR_NOMEM, "%s: out of memory listing files", root);
                goto fail;
            }
        }
        sl_free(&here);
        if (files.n > cap) {
            cap = files.cap;
            int32_t *fc = realloc(file_class, (size_t)cap * sizeof *fc);
            if (!fc) {
                s = ib__error(IB_ERR_NOMEM, "%s: out of memory listing files", root);
                goto fail;
            }
            file_class = fc;
        }
        for (int j = before; j < files.n; j++)
            file_class[j] = k;
    }
    if (files.n == 0) {
        s = ib__error(IB_ERR_FORMAT, "%s: no .png files in its %d class folders", root, classes.n);
        goto fail;
    }
    int c = 0, h = 0, w = 0;
    if ((s = decode(files.s[0], &c, &h, &w, NULL)) != IB_OK)
        goto fail;
    d = ib_dataset_new(ib__basename(root), files.n, c, h, w, classes.n);
    if (!d) {
        s = IB_ERR_NOMEM;
        goto fail;
    }
    int64_t per = (int64_t)c * h * w;
    for (int i = 0; i < files.n; i++) {
        if ((s = decode(files.s[i], &c, &h, &w, d->images + i * per)) != IB_OK)
            goto fail;
        d->labels[i] = file_class[i];
    }
    if ((s = ib_dataset_set_class_names(d, (const char *const *)classes.s, classes.n)) != IB_OK)
        goto fail;
    sl_free(&classes);
    sl_free(&files);
    free(file_class);
    *out = d;
    return IB_OK;
fail:
    ib_dataset_free(d);
    sl_free(&classes);
    sl_free(&files);
    free(file_class);
    return s;
}
