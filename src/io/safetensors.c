/*
 * safetensors.c — the safetensors reader and writer (see safetensors.h).
 *
 * Validation follows the reference implementation: the data region must be
 * exactly covered by the tensors (no overlap, no hole, no trailing bytes),
 * because a file that passes here must also load in PyTorch and a file
 * PyTorch refuses must not pass here.  cJSON parses the header, so the
 * checks it does not do are done here: strict UTF-8, no NUL bytes, nothing
 * but spaces after the JSON, duplicate keys (cJSON keeps both).
 *
 * The writer builds the JSON text itself rather than through cJSON, whose
 * number printer switches to exponent notation above 1e15; safetensors
 * requires plain integers.
 */
#include "io/safetensors.h"

#include "core/internal.h"
#include "io/atomic_file.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <sys/stat.h>

static const struct {
    const char *name;
    size_t size;
} dtypes[IB__ST_N_DTYPES] = {
    [IB__ST_BOOL] = {"BOOL", 1}, [IB__ST_U8] = {"U8", 1},     [IB__ST_I8] = {"I8", 1},
    [IB__ST_F8_E5M2] = {"F8_E5M2", 1}, [IB__ST_F8_E4M3] = {"F8_E4M3", 1},
    [IB__ST_I16] = {"I16", 2},   [IB__ST_U16] = {"U16", 2},   [IB__ST_F16] = {"F16", 2},
    [IB__ST_BF16] = {"BF16", 2}, [IB__ST_I32] = {"I32", 4},   [IB__ST_U32] = {"U32", 4},
    [IB__ST_F32] = {"F32", 4},   [IB__ST_I64] = {"I64", 8},   [IB__ST_U64] = {"U64", 8},
    [IB__ST_F64] = {"F64", 8},
};

const char *ib__st_dtype_name(ib__st_dtype d) { return (unsigned)d < IB__ST_N_DTYPES ? dtypes[d].name : "?"; }
size_t ib__st_dtype_size(ib__st_dtype d) { return (unsigned)d < IB__ST_N_DTYPES ? dtypes[d].size : 0; }

/* Record "what: message" as the last error. */
__attribute__((format(printf, 3, 4))) static ib_status st_err(const char *what, ib_status s, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ib__error(s, "%s: %s", what ? what : "(safetensors)", msg);
}

static uint64_t load_le64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--)
        v = v << 8 | b[k];
    return v;
}

static bool host_is_little_endian(void)
{
    const uint32_t one = 1;
    unsigned char c;
    memcpy(&c, &one, 1);
    return c == 1;
}

static void swap32(void *buf, size_t n)
{
    unsigned char *b = buf;
    for (size_t i = 0; i < n; i++, b += 4) {
        unsigned char t0 = b[0], t1 = b[1];
        b[0] = b[3];
        b[1] = b[2];
        b[2] = t1;
        b[3] = t0;
    }
}

/* Offset of the first invalid UTF-8 sequence (overlong forms, surrogates
 * and code points above U+10FFFF are invalid), or len if all is valid. */
static size_t utf8_invalid_at(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t need;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            need = 1, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            need = 2, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            need = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return i;
        }
        if (len - i <= need)
            return i;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += need + 1;
    }
    return len;
}

/* What cJSON lets through inside strings but JSON (and the reference
 * reader) does not, or what it would decode differently: a raw control
 * character, and the \u0000 escape, which cJSON turns into a NUL that cuts
 * the C string short ("a\u0000b" would read as "a" here and as "a\0b"
 * elsewhere).  Returns the offset of the first one (and why), or len. */
static size_t bad_string_at(const char *text, size_t len, const char **why)
{
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (!in_string) {
            in_string = c == '"';
        } else if (c == '"') {
            in_string = false;
        } else if (c < 0x20) {
            *why = "a raw control character inside a string";
            return i;
        } else if (c == '\\' && i + 1 < len) {
            if (text[i + 1] == 'u' && i + 5 < len && memcmp(text + i + 2, "0000", 4) == 0) {
                *why = "a \\u0000 escape (a NUL inside a name or value)";
                return i;
            }
            i++; /* the escaped character */
        }
    }
    return len;
}

void ib__st_close(ib__st_file *f)
{
    if (!f)
        return;
    if (f->fp)
        fclose(f->fp);
    for (int i = 0; i < f->n_tensors; i++)
        free(f->tensors[i].name);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->tensors);
    free(f->by_name);
    free(f->meta_keys);
    free(f->meta_values);
    free(f->what);
    memset(f, 0, sizeof *f);
}

/* A JSON number that is a non-negative integer exactly representable as a
 * double (cJSON keeps only the double).  Integral values written with a
 * fraction or exponent ("2.0", "2e0") are accepted: the text is gone. */
static bool json_uint(const cJSON *item, uint64_t *out)
{
    if (!cJSON_IsNumber(item))
        return false;
    double v = item->valuedouble;
    if (!(v >= 0.0 && v <= 9007199254740992.0) || v != floor(v))
        return false;
    *out = (uint64_t)v;
    return true;
}

/* The sort comparators need the file; qsort has no context argument. */
static _Thread_local const ib__st_file *sort_file;

static int cmp_by_name(const void *a, const void *b)
{
    return strcmp(sort_file->tensors[*(const int *)a].name, sort_file->tensors[*(const int *)b].name);
}

static int cmp_by_offset(const void *a, const void *b)
{
    const ib__st_tensor *x = &sort_file->tensors[*(const int *)a], *y = &sort_file->tensors[*(const int *)b];
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

static int cmp_str_ptr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static ib_status parse_metadata(ib__st_file *f, const cJSON *meta)
{
    const char *w = f->what;
    if (!cJSON_IsObject(meta))
        return st_err(w, IB_ERR_FORMAT, "\"__metadata__\" is not a JSON object");
    int n = cJSON_GetArraySize(meta);
    f->meta_keys = calloc((size_t)n + 1, sizeof(char *));
    f->meta_values = calloc((size_t)n + 1, sizeof(char *));
    if (!f->meta_keys || !f->meta_values)
        return st_err(w, IB_ERR_NOMEM, "out of memory reading the metadata");
    for (const cJSON *m = meta->child; m; m = m->next) {
        if (!cJSON_IsString(m) || !m->valuestring)
            return st_err(w, IB_ERR_FORMAT, "metadata value of \"%.100s\" is not a string", m->string);
        int k = f->n_meta;
        f->meta_keys[k] = strdup(m->string);
        f->meta_values[k] = strdup(m->valuestring);
        if (!f->meta_keys[k] || !f->meta_values[k]) {
            free(f->meta_keys[k]);
            free(f->meta_values[k]);
            return st_err(w, IB_ERR_NOMEM, "out of memory reading the metadata");
        }
        f->n_meta++;
    }
    /* Duplicate keys: sort a copy of the key pointers. */
    char **keys = malloc(((size_t)f->n_meta + 1) * sizeof *keys);
    if (!keys)
        return st_err(w, IB_ERR_NOMEM, "out of memory reading the metadata");
    memcpy(keys, f->meta_keys, (size_t)f->n_meta * sizeof *keys);
    qsort(keys, (size_t)f->n_meta, sizeof *keys, cmp_str_ptr);
    for (int k = 1; k < f->n_meta; k++)
        if (strcmp(keys[k - 1], keys[k]) == 0) {
            ib_status s = st_err(w, IB_ERR_FORMAT, "metadata key \"%.100s\" appears twice", keys[k]);
            free(keys);
            return s;
        }
    free(keys);
    return IB_OK;
}

static ib_status parse_tensor(ib__st_file *f, const cJSON *e, uint64_t data_size, ib__st_tensor *t)
{
    const char *w = f->what;
    const char *name = e->string;
    if (!cJSON_IsObject(e))
        return st_err(w, IB_ERR_FORMAT, "entry of tensor \"%.100s\" is not a JSON object", name);
    const cJSON *dt = NULL, *shape = NULL, *offs = NULL;
    /* Walk the keys (not GetObjectItem) so that a repeated key is caught:
     * two readers must not pick different values.  Unknown keys are
     * ignored, as the reference reader does. */
    for (const cJSON *k = e->child; k; k = k->next) {
        const cJSON **slot = strcmp(k->string, "dtype") == 0 ? &dt
                             : strcmp(k->string, "shape") == 0 ? &shape
                             : strcmp(k->string, "data_offsets") == 0 ? &offs
                                                                      : NULL;
        if (!slot)
            continue;
        if (*slot)
            return st_err(w, IB_ERR_FORMAT, "tensor \"%.100s\": key \"%s\" appears twice", name, k->string);
        *slot = k;
    }
    if (!dt || !shape || !offs)
        return st_err(w, IB_ERR_FORMAT, "tensor \"%.100s\" has no \"%s\"", name,
                      !dt ? "dtype" : !shape ? "shape" : "data_offsets");
    if (!cJSON_IsString(dt) || !dt->valuestring)
        return st_err(w, IB_ERR_FORMAT, "tensor \"%.100s\": dtype is not a string", name);
    int d;
    for (d = 0; d < IB__ST_N_DTYPES; d++)
        if (strcmp(dt->valuestring, dtypes[d].name) == 0)
            break;
    if (d == IB__ST_N_DTYPES)
        return st_err(w, IB_ERR_FORMAT, "tensor \"%.100s\": unknown dtype \"%.40s\"", name, dt->valuestring);
    t->dtype = (ib__st_dtype)d;

    if (!cJSON_IsArray(shape))
        return st_err(w, IB_ERR_FORMAT, "tensor \"%.100s\": shape is not an array", name);
    int nd = cJSON_GetArraySize(shape);
    if (nd > IB__ST_MAX_DIMS)
        return st_err(w, IB_ERR_FORMAT, "tensor \"%.100s\": %d dimensions (at most %d supported)", name, nd,
                      IB__ST_MAX_DIMS);
    t->ndim = 0;
    /* numel stays bounded by the data size (or is 0), so numel * dtype
     * size cannot overflow once it has been checked against it. */
    uint64_t numel = 1;
    bool zero = false, too_big = false;
    for (const cJSON *x = shape->child; x; x = x->next) {
        uint64_t v;
        if (!json_uint(x, &v))
            return st_err(w, IB_ERR_FORMAT, "tensor \"%.100s\": dimension %d is not a non-negative integer", name,
                          t->ndim);
        t->shape[t->ndim++] = (int64_t)v;
        if (v == 0)
            zero = true;
        else if (!too_big && (__builtin_mul_overflow(numel, v, &numel) || numel > data_size))
            too_big = true;
    }
    if (zero)
        numel = 0;
    else if (too_big)
        return st_err(w, IB_ERR_FORMAT, "tensor \"%.100s\": shape has more elements than the file has bytes", name);
    t->numel = numel;

    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || !json_uint(offs->child, &t->begin) ||
        !json_uint(offs->child->next, &t->end))
        return st_err(w, IB_ERR_FORMAT, "tensor \"%.100s\": data_offsets is not two non-negative integers", name);
    if (t->begin > t->end)
        return st_err(w, IB_ERR_FORMAT, "tensor \"%.100s\": data_offsets [%" PRIu64 ", %" PRIu64 "] end before they begin",
                      name, t->begin, t->end);
    if (t->end > data_size)
        return st_err(w, IB_ERR_FORMAT,
                      "tensor \"%.100s\": data_offsets [%" PRIu64 ", %" PRIu64 "] go past the data (%" PRIu64 " bytes)",
                      name, t->begin, t->end, data_size);
    uint64_t bytes = numel * dtypes[d].size;
    if (t->end - t->begin != bytes)
        return st_err(w, IB_ERR_FORMAT,
                      "tensor \"%.100s\": data_offsets span %" PRIu64 " bytes but shape and dtype %s need %" PRIu64, name,
                      t->end - t->begin, dtypes[d].name, bytes);
    t->name = strdup(name);
    if (!t->name)
        return st_err(w, IB_ERR_NOMEM, "out of memory reading the header");
    return IB_OK;
}

static ib_status check_layout(ib__st_file *f, uint64_t data_size)
{
    const char *w = f->what;
    int n = f->n_tensors;
    f->by_name = malloc(((size_t)n + 1) * sizeof(int));
    int *order = malloc(((size_t)n + 1) * sizeof(int));
    if (!f->by_name || !order) {
        free(order);
        return st_err(w, IB_ERR_NOMEM, "out of memory reading the header");
    }
    for (int i = 0; i < n; i++)
        f->by_name[i] = order[i] = i;
    sort_file = f;
    qsort(f->by_name, (size_t)n, sizeof(int), cmp_by_name);
    qsort(order, (size_t)n, sizeof(int), cmp_by_offset);
    sort_file = NULL;
    ib_status s = IB_OK;
    for (int k = 1; k < n && s == IB_OK; k++)
        if (strcmp(f->tensors[f->by_name[k - 1]].name, f->tensors[f->by_name[k]].name) == 0)
            s = st_err(w, IB_ERR_FORMAT, "tensor \"%.100s\" appears twice", f->tensors[f->by_name[k]].name);
    uint64_t at = 0;
    for (int k = 0; k < n && s == IB_OK; k++) {
        const ib__st_tensor *t = &f->tensors[order[k]];
        if (t->begin < at)
            s = st_err(w, IB_ERR_FORMAT, "tensor \"%.100s\" (bytes %" PRIu64 "..%" PRIu64 ") overlaps tensor \"%.100s\"",
                       t->name, t->begin, t->end, f->tensors[order[k - 1]].name);
        else if (t->begin > at)
            s = st_err(w, IB_ERR_FORMAT, "bytes %" PRIu64 "..%" PRIu64 " of the data belong to no tensor", at, t->begin);
        at = t->end;
    }
    if (s == IB_OK && at != data_size)
        s = st_err(w, IB_ERR_FORMAT,
                   "the tensors cover %" PRIu64 " of the %" PRIu64 " data bytes (truncated, or trailing bytes)", at,
                   data_size);
    free(order);
    return s;
}

static ib_status set_what(ib__st_file *f, const char *what)
{
    memset(f, 0, sizeof *f);
    f->what = strdup(what ? what : "(safetensors)");
    return f->what ? IB_OK : ib__error(IB_ERR_NOMEM, "out of memory");
}

static ib_status parse_header_into(ib__st_file *f, const char *json, size_t json_len, uint64_t data_size)
{
    const char *w = f->what;
    if (json_len == 0)
        return st_err(w, IB_ERR_FORMAT, "header length is 0 (not a safetensors file)");
    if (json_len > IB__ST_MAX_HEADER)
        return st_err(w, IB_ERR_FORMAT, "header of %zu bytes is larger than the limit of %llu", json_len,
                      (unsigned long long)IB__ST_MAX_HEADER);
    const unsigned char *u = (const unsigned char *)json;
    const void *nul = memchr(json, 0, json_len);
    if (nul)
        return st_err(w, IB_ERR_FORMAT, "header has a NUL byte at offset %zu", (size_t)((const char *)nul - json));
    size_t bad = utf8_invalid_at(u, json_len);
    if (bad != json_len)
        return st_err(w, IB_ERR_FORMAT, "header is not valid UTF-8 (at byte %zu)", bad);
    const char *why = NULL;
    size_t bad_at = bad_string_at(json, json_len, &why);
    if (bad_at != json_len)
        return st_err(w, IB_ERR_FORMAT, "header has %s at byte %zu", why, bad_at);
    char *text = malloc(json_len + 1);
    if (!text)
        return st_err(w, IB_ERR_NOMEM, "out of memory for a header of %zu bytes", json_len);
    memcpy(text, json, json_len);
    text[json_len] = 0;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 0);
    ib_status s = IB_OK;
    if (!root) {
        size_t at = end && end >= text && end <= text + json_len ? (size_t)(end - text) : 0;
        s = st_err(w, IB_ERR_FORMAT, "header is not valid JSON (near byte %zu of %zu)", at, json_len);
        goto out;
    }
    for (const char *c = end; *c; c++)
        if (*c != ' ' && *c != '\t' && *c != '\n' && *c != '\r') {
            s = st_err(w, IB_ERR_FORMAT, "header has text after the JSON object (byte %zu)", (size_t)(c - text));
            goto out;
        }
    if (!cJSON_IsObject(root)) {
        s = st_err(w, IB_ERR_FORMAT, "header is not a JSON object");
        goto out;
    }
    int n = cJSON_GetArraySize(root);
    f->tensors = calloc((size_t)n + 1, sizeof *f->tensors);
    if (!f->tensors) {
        s = st_err(w, IB_ERR_NOMEM, "out of memory reading the header");
        goto out;
    }
    bool have_meta = false;
    for (const cJSON *e = root->child; e && s == IB_OK; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (have_meta)
                s = st_err(w, IB_ERR_FORMAT, "\"__metadata__\" appears twice");
            else
                s = parse_metadata(f, e);
            have_meta = true;
            continue;
        }
        s = parse_tensor(f, e, data_size, &f->tensors[f->n_tensors]);
        if (s == IB_OK)
            f->n_tensors++;
    }
    if (s == IB_OK)
        s = check_layout(f, data_size);
out:
    cJSON_Delete(root);
    free(text);
    return s;
}

ib_status ib__st_parse_header(const char *what, const char *json, size_t json_len, uint64_t data_size,
                              ib__st_file *f)
{
    if (!f)
        return ib__error(IB_ERR_ARG, "ib__st_parse_header: NULL file");
    ib_status s = set_what(f, what);
    if (s == IB_OK && !json)
        s = st_err(what, IB_ERR_ARG, "no header given");
    if (s == IB_OK)
        s = parse_header_into(f, json, json_len, data_size);
    if (s == IB_OK) {
        f->header_len = json_len;
        f->data_start = 8 + (uint64_t)json_len;
        f->data_size = data_size;
    } else {
        ib__st_close(f);
    }
    return s;
}

/* The checks on the 8-byte length that come before reading the header. */
static ib_status check_header_len(const char *w, uint64_t n, uint64_t total)
{
    if (total < 8)
        return st_err(w, IB_ERR_FORMAT, "file of %" PRIu64 " bytes is too short for a safetensors header", total);
    if (n == 0)
        return st_err(w, IB_ERR_FORMAT, "header length is 0 (not a safetensors file)");
    if (n > total - 8)
        return st_err(w, IB_ERR_FORMAT, "header length %" PRIu64 " is larger than the file (%" PRIu64 " bytes)", n,
                      total);
    if (n > IB__ST_MAX_HEADER)
        return st_err(w, IB_ERR_FORMAT, "header length %" PRIu64 " is larger than the limit of %llu", n,
                      (unsigned long long)IB__ST_MAX_HEADER);
    return IB_OK;
}

ib_status ib__st_parse_memory(const char *what, const void *bytes, size_t len, ib__st_file *f)
{
    if (!f)
        return ib__error(IB_ERR_ARG, "ib__st_parse_memory: NULL file");
    if (!bytes && len)
        return ib__error(IB_ERR_ARG, "ib__st_parse_memory: NULL bytes");
    const unsigned char *b = bytes;
    uint64_t n = len >= 8 ? load_le64(b) : 0;
    ib_status s = check_header_len(what, n, len);
    if (s != IB_OK) {
        memset(f, 0, sizeof *f);
        return s;
    }
    s = ib__st_parse_header(what, (const char *)b + 8, (size_t)n, len - 8 - n, f);
    if (s == IB_OK)
        f->mem = b + 8 + n;
    return s;
}

ib_status ib__st_open(const char *path, ib__st_file *f)
{
    if (!f)
        return ib__error(IB_ERR_ARG, "ib__st_open: NULL file");
    memset(f, 0, sizeof *f);
    if (!path)
        return ib__error(IB_ERR_ARG, "ib__st_open: NULL path");
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return ib__error(IB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        return ib__error(IB_ERR_IO, "%s: not a regular file", path);
    }
    uint64_t total = (uint64_t)st.st_size;
    unsigned char lenbuf[8];
    uint64_t n = 0;
    if (total >= 8) {
        if (fread(lenbuf, 1, 8, fp) != 8) {
            fclose(fp);
            return ib__error(IB_ERR_IO, "%s: cannot read the header length", path);
        }
        n = load_le64(lenbuf);
    }
    ib_status s = check_header_len(path, n, total);
    if (s != IB_OK) {
        fclose(fp);
        return s;
    }
    /* n is now at most the file size and the header limit. */
    char *json = malloc((size_t)n);
    if (!json) {
        fclose(fp);
        return ib__error(IB_ERR_NOMEM, "%s: out of memory for a header of %" PRIu64 " bytes", path, n);
    }
    if (fread(json, 1, (size_t)n, fp) != (size_t)n) {
        free(json);
        fclose(fp);
        return ib__error(IB_ERR_IO, "%s: cannot read the %" PRIu64 "-byte header", path, n);
    }
    s = ib__st_parse_header(path, json, (size_t)n, total - 8 - n, f);
    free(json);
    if (s != IB_OK) {
        fclose(fp);
        return s;
    }
    f->fp = fp;
    return IB_OK;
}

int ib__st_find(const ib__st_file *f, const char *name)
{
    if (!f || !name)
        return -1;
    int lo = 0, hi = f->n_tensors - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(f->tensors[f->by_name[mid]].name, name);
        if (c == 0)
            return f->by_name[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

const char *ib__st_meta(const ib__st_file *f, const char *key)
{
    for (int k = 0; f && key && k < f->n_meta; k++)
        if (strcmp(f->meta_keys[k], key) == 0)
            return f->meta_values[k];
    return NULL;
}

ib_status ib__st_read_raw(ib__st_file *f, int i, void *dst)
{
    if (!f || i < 0 || i >= f->n_tensors)
        return ib__error(IB_ERR_ARG, "ib__st_read_raw: no tensor %d", i);
    const ib__st_tensor *t = &f->tensors[i];
    uint64_t bytes = t->end - t->begin;
    if (bytes == 0)
        return IB_OK;
    if (f->mem) {
        memcpy(dst, f->mem + t->begin, (size_t)bytes);
        return IB_OK;
    }
    if (!f->fp)
        return st_err(f->what, IB_ERR_STATE, "file is not open");
    if (fseeko(f->fp, (off_t)(f->data_start + t->begin), SEEK_SET) != 0 ||
        fread(dst, 1, (size_t)bytes, f->fp) != (size_t)bytes)
        return st_err(f->what, IB_ERR_IO, "cannot read the data of tensor \"%.100s\" (was the file changed?)", t->name);
    return IB_OK;
}

ib_status ib__st_read_f32(ib__st_file *f, int i, float *dst)
{
    if (!f || i < 0 || i >= f->n_tensors)
        return ib__error(IB_ERR_ARG, "ib__st_read_f32: no tensor %d", i);
    const ib__st_tensor *t = &f->tensors[i];
    if (t->dtype != IB__ST_F32)
        return st_err(f->what, IB_ERR_FORMAT, "tensor \"%.100s\" has dtype %s, not F32", t->name,
                      ib__st_dtype_name(t->dtype));
    ib_status s = ib__st_read_raw(f, i, dst);
    if (s == IB_OK && !host_is_little_endian())
        swap32(dst, (size_t)t->numel);
    return s;
}

/* ---- writing ---- */

typedef struct strbuf {
    char *p;
    size_t len, cap;
    bool oom;
} strbuf;

static void sb_put(strbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_puts(strbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_u64(strbuf *b, uint64_t v)
{
    char num[24];
    snprintf(num, sizeof num, "%" PRIu64, v);
    sb_puts(b, num);
}

/* A JSON string literal; s is valid UTF-8 (checked by the caller), which
 * JSON carries as is: only quotes, backslashes and controls are escaped. */
static void sb_json_string(strbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') {
            char esc[2] = {'\\', (char)*c};
            sb_put(b, esc, 2);
        } else if (*c < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", *c);
            sb_puts(b, esc);
        } else {
            sb_put(b, (const char *)c, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static ib_status check_text(const char *path, const char *kind, const char *s)
{
    if (!s)
        return st_err(path, IB_ERR_ARG, "a %s is NULL", kind);
    size_t n = strlen(s);
    if (utf8_invalid_at((const unsigned char *)s, n) != n)
        return st_err(path, IB_ERR_ARG, "%s \"%.100s\" is not valid UTF-8", kind, s);
    return IB_OK;
}

static bool has_duplicate(const char **names, int n, const char **dup)
{
    qsort(names, (size_t)n, sizeof *names, cmp_str_ptr);
    for (int k = 1; k < n; k++)
        if (strcmp(names[k - 1], names[k]) == 0) {
            *dup = names[k];
            return true;
        }
    return false;
}

/* Check the arguments and build the padded header text. */
static ib_status build_header(const char *path, int n, const ib__st_out *t, int n_meta, const char *const *keys,
                              const char *const *values, strbuf *b)
{
    const char **names = malloc(((size_t)(n > n_meta ? n : n_meta) + 1) * sizeof *names);
    if (!names)
        return st_err(path, IB_ERR_NOMEM, "out of memory");
    ib_status s = IB_OK;
    const char *dup;
    for (int i = 0; i < n && s == IB_OK; i++) {
        s = check_text(path, "tensor name", t[i].name);
        if (s == IB_OK && strcmp(t[i].name, "__metadata__") == 0)
            s = st_err(path, IB_ERR_ARG, "\"__metadata__\" cannot name a tensor");
        if (s == IB_OK && (t[i].ndim < 0 || t[i].ndim > IB__ST_MAX_DIMS || (t[i].ndim > 0 && !t[i].shape)))
            s = st_err(path, IB_ERR_ARG, "tensor \"%.100s\": bad number of dimensions %d", t[i].name, t[i].ndim);
        for (int d = 0; s == IB_OK && d < t[i].ndim; d++)
            if (t[i].shape[d] < 0)
                s = st_err(path, IB_ERR_ARG, "tensor \"%.100s\": negative dimension", t[i].name);
        if (s == IB_OK && !t[i].data && ib__numel(t[i].ndim, t[i].shape) > 0)
            s = st_err(path, IB_ERR_ARG, "tensor \"%.100s\": no data", t[i].name);
        if (s == IB_OK)
            names[i] = t[i].name;
    }
    if (s == IB_OK && has_duplicate(names, n, &dup))
        s = st_err(path, IB_ERR_ARG, "tensor name \"%.100s\" given twice", dup);
    for (int k = 0; k < n_meta && s == IB_OK; k++) {
        s = check_text(path, "metadata key", keys[k]);
        if (s == IB_OK)
            s = check_text(path, "metadata value", values[k]);
        names[k] = keys[k];
    }
    if (s == IB_OK && has_duplicate(names, n_meta, &dup))
        s = st_err(path, IB_ERR_ARG, "metadata key \"%.100s\" given twice", dup);
    free(names);
    if (s != IB_OK)
        return s;

    sb_puts(b, "{");
    bool first = true;
    if (n_meta > 0) {
        sb_puts(b, "\"__metadata__\":{");
        for (int k = 0; k < n_meta; k++) {
            if (k)
                sb_puts(b, ",");
            sb_json_string(b, keys[k]);
            sb_puts(b, ":");
            sb_json_string(b, values[k]);
        }
        sb_puts(b, "}");
        first = false;
    }
    uint64_t at = 0;
    for (int i = 0; i < n; i++) {
        if (!first)
            sb_puts(b, ",");
        first = false;
        sb_json_string(b, t[i].name);
        sb_puts(b, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t[i].ndim; d++) {
            if (d)
                sb_puts(b, ",");
            sb_u64(b, (uint64_t)t[i].shape[d]);
        }
        uint64_t bytes = (uint64_t)ib__numel(t[i].ndim, t[i].shape) * 4;
        sb_puts(b, "],\"data_offsets\":[");
        sb_u64(b, at);
        sb_puts(b, ",");
        sb_u64(b, at + bytes);
        sb_puts(b, "]}");
        at += bytes;
    }
    sb_puts(b, "}");
    /* Pad so the data starts 8-byte aligned, as the reference writer does. */
    while ((8 + b->len) % 8)
        sb_puts(b, " ");
    if (b->oom)
        return st_err(path, IB_ERR_NOMEM, "out of memory building the header");
    if (b->len > IB__ST_MAX_HEADER)
        return st_err(path, IB_ERR_ARG, "header of %zu bytes would exceed the limit readers accept", b->len);
    return IB_OK;
}

static bool write_floats(FILE *fp, const float *x, size_t n)
{
    if (host_is_little_endian())
        return fwrite(x, sizeof(float), n, fp) == n;
    float chunk[1024];
    for (size_t i = 0; i < n; i += 1024) {
        size_t m = n - i < 1024 ? n - i : 1024;
        memcpy(chunk, x + i, m * sizeof(float));
        swap32(chunk, m);
        if (fwrite(chunk, sizeof(float), m, fp) != m)
            return false;
    }
    return true;
}

ib_status ib__st_write(const char *path, int n, const ib__st_out *t, int n_meta, const char *const *keys,
                       const char *const *values)
{
    if (!path || n < 0 || (n > 0 && !t) || n_meta < 0 || (n_meta > 0 && (!keys || !values)))
        return ib__error(IB_ERR_ARG, "ib__st_write: bad argument (%s)", path ? path : "NULL path");
    strbuf b = {0};
    ib_status s = build_header(path, n, t, n_meta, keys, values, &b);
    if (s != IB_OK) {
        free(b.p);
        return s;
    }
    ib__atomic_file af;
    s = ib__atomic_open(&af, path);
    if (s != IB_OK) {
        free(b.p);
        return s;
    }
    unsigned char lenbuf[8];
    for (int k = 0; k < 8; k++)
        lenbuf[k] = (unsigned char)((uint64_t)b.len >> (8 * k));
    bool ok = fwrite(lenbuf, 1, 8, af.f) == 8 && fwrite(b.p, 1, b.len, af.f) == b.len;
    for (int i = 0; ok && i < n; i++)
        ok = write_floats(af.f, t[i].data, (size_t)ib__numel(t[i].ndim, t[i].shape));
    free(b.p);
    if (!ok) {
        s = ib__error(IB_ERR_IO, "%s: write failed: %s (the old file, if any, is unchanged)", path, strerror(errno));
        ib__atomic_abort(&af);
        return s;
    }
    return ib__atomic_commit(&af);
}
