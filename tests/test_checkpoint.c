/*
 * test_checkpoint.c — safetensors checkpoints: bit-exact round trips of
 * parameters, optimizer state, EMA and metadata; the file layout checked by
 * a small independent reader; every kind of corrupt or foreign file refused
 * with a message naming the file and the problem, without changing the
 * model; atomic replacement when a write fails.
 *
 * With IBNET_KEEP_CHECKPOINT=PATH set, the program also writes a checkpoint
 * of a small MLP (with Adam state and EMA) to PATH, for
 * tests/ref/check_safetensors.py to read with PyTorch.
 */
#include "test.h"

#include "io/safetensors.h"

#include <cjson/cJSON.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ---- */

static const char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", ib_test_tmpdir(), name);
    return buf[k];
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    CHECK_MSG(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    CHECK(b && fread(b, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void write_all(const char *path, const void *bytes, size_t len)
{
    FILE *f = fopen(path, "wb");
    CHECK_MSG(f != NULL, "cannot create %s", path);
    CHECK(len == 0 || fwrite(bytes, 1, len, f) == len);
    fclose(f);
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* An MLP-like store: trainable weights, a buffer, a 0-d scalar. */
static ib_params *make_model(uint64_t seed)
{
    ib_params *p = ib_params_new(seed);
    ib_init kaiming = IB_INIT_PYTORCH_DEFAULT, normal = {IB_INIT_NORMAL, 0, 1};
    CHECK(ib_params_get(p, "fc1.weight", 2, (int64_t[]){5, 3}, kaiming, IB_PARAM_TRAINABLE) >= 0);
    CHECK(ib_params_get(p, "fc1.bias", 1, (int64_t[]){5}, normal, IB_PARAM_TRAINABLE) >= 0);
    CHECK(ib_params_get(p, "bn.running_mean", 1, (int64_t[]){5}, normal, IB_PARAM_BUFFER) >= 0);
    CHECK(ib_params_get(p, "fc2.weight", 2, (int64_t[]){2, 5}, kaiming, IB_PARAM_TRAINABLE) >= 0);
    CHECK(ib_params_get(p, "fc2.bias", 1, (int64_t[]){2}, normal, IB_PARAM_TRAINABLE) >= 0);
    CHECK(ib_params_get(p, "log_beta", 0, NULL, normal, IB_PARAM_TRAINABLE) >= 0);
    return p;
}

/* The store used against hand-made files: "a" (2, 3) and "b" (3). */
static ib_params *make_small(void)
{
    ib_params *p = ib_params_new(9);
    ib_init normal = {IB_INIT_NORMAL, 0, 1};
    CHECK(ib_params_get(p, "a", 2, (int64_t[]){2, 3}, normal, IB_PARAM_TRAINABLE) >= 0);
    CHECK(ib_params_get(p, "b", 1, (int64_t[]){3}, normal, IB_PARAM_TRAINABLE) >= 0);
    return p;
}

static float *snapshot(ib_params *p)
{
    int64_t n = ib_params_total(p);
    float *s = malloc((size_t)n * sizeof(float));
    memcpy(s, ib_params_values(p), (size_t)n * sizeof(float));
    return s;
}

static bool unchanged(ib_params *p, const float *snap)
{
    return memcmp(ib_params_values(p), snap, (size_t)ib_params_total(p) * sizeof(float)) == 0;
}

static void check_params_equal(ib_params *a, ib_params *b)
{
    CHECK_EQ_INT(ib_params_count(a), ib_params_count(b));
    for (int i = 0; i < ib_params_count(a); i++)
        CHECK_MSG(memcmp(ib_params_value(a, i), ib_params_value(b, i), (size_t)ib_params_numel(a, i) * sizeof(float)) == 0,
                  "parameter %s differs after the round trip", ib_params_name(a, i));
}

/* Random gradients from a fixed stream, so two models get the same. */
static void fill_grads(ib_params *p, uint64_t stream)
{
    ib_test_fill(ib_params_grads(p), ib_params_total(p), -1.0f, 1.0f, stream);
}

/* A safetensors file from a header text and data bytes (length prefix
 * little-endian, no padding: readers must not require it). */
static void write_st(const char *path, const char *json, const void *data, size_t data_len)
{
    size_t n = strlen(json);
    size_t total = 8 + n + data_len;
    unsigned char *b = calloc(total + 1, 1);
    for (int k = 0; k < 8; k++)
        b[k] = (unsigned char)((uint64_t)n >> (8 * k));
    memcpy(b + 8, json, n);
    if (data_len)
        memcpy(b + 8 + n, data, data_len);
    write_all(path, b, total);
    free(b);
}

/* Load must fail with status want, name the file, mention `needle`, and
 * leave the store as it was. */
static void expect_load_fails(const char *path, ib_params *p, ib_optim *opt, ib_ema *ema, ib_status want,
                              const char *needle)
{
    float *snap = snapshot(p);
    char *meta = (char *)"sentinel";
    ib_status s = ib_checkpoint_load(path, p, opt, ema, &meta);
    const char *msg = ib_last_error();
    CHECK_MSG(s == want, "load of %s: status %d (%s), want %d; message: %s", needle, (int)s, ib_strerror(s), (int)want,
              msg);
    CHECK_MSG(strstr(msg, path) != NULL, "message does not name the file: %s", msg);
    CHECK_MSG(strstr(msg, needle) != NULL, "message lacks \"%s\": %s", needle, msg);
    CHECK_MSG(meta == NULL, "metadata output not cleared on failure");
    CHECK_MSG(unchanged(p, snap), "a failed load (%s) changed the model", needle);
    free(snap);
}

/* ---- round trips ---- */

static void test_round_trip_params_and_metadata(void)
{
    const char *path = tmp_path("params.safetensors");
    ib_params *a = make_model(1), *b = make_model(2);
    /* quotes, backslashes, a control character and non-ASCII must survive */
    const char *meta_in = "{\"epoch\": 3, \"note\": \"a \\\"quoted\\\" \\\\ \\n caf\xc3\xa9\", \"beta\": 1e-3}";
    CHECK_OK(ib_checkpoint_save(path, a, NULL, NULL, meta_in));
    CHECK(memcmp(ib_params_value(a, 0), ib_params_value(b, 0), 4 * sizeof(float)) != 0);
    char *meta = NULL;
    CHECK_OK(ib_checkpoint_load(path, b, NULL, NULL, &meta));
    check_params_equal(a, b);
    CHECK(meta && strcmp(meta, meta_in) == 0);
    free(meta);
    char *meta2 = NULL;
    CHECK_OK(ib_checkpoint_read_metadata(path, &meta2));
    CHECK(meta2 && strcmp(meta2, meta_in) == 0);
    free(meta2);

    /* without caller metadata the output is NULL, and NULL out-pointers are fine */
    CHECK_OK(ib_checkpoint_save(path, a, NULL, NULL, NULL));
    meta = (char *)"sentinel";
    CHECK_OK(ib_checkpoint_load(path, b, NULL, NULL, &meta));
    CHECK(meta == NULL);
    CHECK_OK(ib_checkpoint_load(path, b, NULL, NULL, NULL));
    CHECK_OK(ib_checkpoint_read_metadata(path, &meta));
    CHECK(meta == NULL);

    /* metadata that is not a JSON object is refused before writing */
    CHECK(ib_checkpoint_save(path, a, NULL, NULL, "[1, 2]") == IB_ERR_ARG);
    CHECK(ib_checkpoint_save(path, a, NULL, NULL, "{\"a\": ") == IB_ERR_ARG);
    ib_params_free(a);
    ib_params_free(b);
}

static void check_optim_equal(ib_params *p, ib_optim *x, ib_optim *y)
{
    CHECK_EQ_INT(ib_optim_state_count(x), ib_optim_state_count(y));
    CHECK_EQ_INT(ib_optim_steps(x), ib_optim_steps(y));
    CHECK(ib_optim_lr(x) == ib_optim_lr(y));
    for (int k = 0; k < ib_optim_state_count(x); k++)
        for (int i = 0; i < ib_params_count(p); i++) {
            if (ib_params_kind(p, i) != IB_PARAM_TRAINABLE)
                continue;
            int64_t o = ib_params_offset(p, i);
            CHECK_MSG(memcmp(ib_optim_state(x, k) + o, ib_optim_state(y, k) + o,
                             (size_t)ib_params_numel(p, i) * sizeof(float)) == 0,
                      "optimizer state %s of %s differs", ib_optim_state_name(x, k), ib_params_name(p, i));
        }
}

/* One identical step on two trainings (a: oa, ea; b: ob, eb): equal weights
 * and equal EMA averages afterwards.  Leaves both EMAs swapped in when
 * `stay_swapped`. */
static void step_both_and_compare(ib_params *a, ib_optim *oa, ib_ema *ea, ib_params *b, ib_optim *ob, ib_ema *eb,
                                  uint64_t stream, bool stay_swapped)
{
    fill_grads(a, stream);
    fill_grads(b, stream);
    CHECK_OK(ib_optim_step(oa));
    CHECK_OK(ib_optim_step(ob));
    CHECK_OK(ib_ema_update(ea));
    CHECK_OK(ib_ema_update(eb));
    check_params_equal(a, b);
    CHECK_OK(ib_ema_swap(ea));
    CHECK_OK(ib_ema_swap(eb));
    check_params_equal(a, b);
    if (!stay_swapped) {
        CHECK_OK(ib_ema_swap(ea));
        CHECK_OK(ib_ema_swap(eb));
    }
}

static void round_trip_training_state(ib_optim_kind kind)
{
    const char *path = tmp_path("train.safetensors");
    ib_params *a = make_model(1), *b = make_model(2);
    ib_optim_config cfg = ib_optim_defaults(kind);
    if (kind == IB_OPTIM_SGD)
        cfg.momentum = 0.9f;
    ib_optim *oa = ib_optim_new(a, &cfg), *ob = ib_optim_new(b, &cfg);
    ib_ema *ea = ib_ema_new(a, 0.9f, true), *eb = ib_ema_new(b, 0.9f, true);
    CHECK(oa && ob && ea && eb);
    for (int t = 0; t < 3; t++) {
        fill_grads(a, 100 + (uint64_t)t);
        CHECK_OK(ib_optim_step(oa));
        CHECK_OK(ib_ema_update(ea));
    }
    ib_optim_set_lr(oa, 0.00123f); /* as a schedule would */
    CHECK_OK(ib_checkpoint_save(path, a, oa, ea, "{\"step\": 3}"));
    CHECK(ib_optim_steps(ob) == 0);
    CHECK_OK(ib_checkpoint_load(path, b, ob, eb, NULL));
    check_params_equal(a, b);
    check_optim_equal(a, oa, ob);
    CHECK_EQ_INT(ib_ema_updates(eb), 3);
    for (int i = 0; i < ib_params_count(a); i++) {
        if (ib_params_kind(a, i) != IB_PARAM_TRAINABLE)
            continue;
        int64_t o = ib_params_offset(a, i);
        CHECK_MSG(memcmp(ib_ema_shadow(ea) + o, ib_ema_shadow(eb) + o, (size_t)ib_params_numel(a, i) * sizeof(float)) == 0,
                  "EMA shadow of %s differs", ib_params_name(a, i));
    }
    /* Resuming is exact: one more identical step gives identical models. */
    step_both_and_compare(a, oa, ea, b, ob, eb, 200, true);
    /* a swapped EMA cannot be saved or loaded with the training state */
    CHECK(ib_checkpoint_save(path, a, oa, ea, NULL) == IB_ERR_STATE);
    CHECK(ib_checkpoint_load(path, b, ob, eb, NULL) == IB_ERR_STATE);
    CHECK_OK(ib_ema_swap(ea));
    CHECK_OK(ib_ema_swap(eb));

    /* A training checkpoint loads into a model without optimizer or EMA. */
    ib_params *c = make_model(3);
    CHECK_OK(ib_checkpoint_load(path, c, NULL, NULL, NULL));
    ib_params_free(c);

    /* A params-only checkpoint cannot restore an optimizer or EMA. */
    const char *bare = tmp_path("bare.safetensors");
    CHECK_OK(ib_checkpoint_save(bare, a, NULL, NULL, NULL));
    expect_load_fails(bare, b, ob, NULL, IB_ERR_MISMATCH, kind == IB_OPTIM_SGD ? "optim.momentum_buffer." : "optim.exp_avg.");
    expect_load_fails(bare, b, NULL, eb, IB_ERR_MISMATCH, "ema.fc1.weight");
    ib_optim_free(oa);
    ib_optim_free(ob);
    ib_ema_free(ea);
    ib_ema_free(eb);
    ib_params_free(a);
    ib_params_free(b);
}

static void test_round_trip_adam_and_ema(void) { round_trip_training_state(IB_OPTIM_ADAM); }
static void test_round_trip_sgd_momentum(void) { round_trip_training_state(IB_OPTIM_SGD); }

/* Replace the first `from` in a file by `to` (same length). */
static void patch_file(const char *path, const char *from, const char *to)
{
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    size_t len = strlen(from);
    char *at = NULL;
    for (size_t k = 0; !at && k + len <= n; k++)
        if (memcmp(buf + k, from, len) == 0)
            at = buf + k;
    CHECK_MSG(at != NULL, "%s not found in %s", from, path);
    if (at)
        memcpy(at, to, strlen(to));
    write_all(path, buf, n);
}

/* Layer-wise training freezes parameters for a while: their own Adam and
 * EMA counts lag the global ones, and a resumed run must get them back (its
 * bias corrections and debiasing use them). */
static void test_per_parameter_counts_survive(void)
{
    const char *path = tmp_path("layerwise.safetensors");
    ib_params *a = make_model(1), *b = make_model(2);
    ib_optim_config cfg = ib_optim_defaults(IB_OPTIM_ADAM);
    ib_optim *oa = ib_optim_new(a, &cfg), *ob = ib_optim_new(b, &cfg);
    ib_ema *ea = ib_ema_new(a, 0.9f, true), *eb = ib_ema_new(b, 0.9f, true);
    CHECK(oa && ob && ea && eb);
    for (int t = 0; t < 6; t++) {
        CHECK(ib_params_freeze(a, "fc2.", t == 3 || t == 4) >= 0);
        fill_grads(a, 300 + (uint64_t)t);
        CHECK_OK(ib_optim_step(oa));
        CHECK_OK(ib_ema_update(ea));
    }
    int w1 = ib_params_find(a, "fc1.weight"), w2 = ib_params_find(a, "fc2.weight");
    CHECK_EQ_INT(ib_optim_steps(oa), 6);
    CHECK_EQ_INT(ib_optim_param_steps(oa, w1), 6);
    CHECK_EQ_INT(ib_optim_param_steps(oa, w2), 4);
    CHECK_EQ_INT(ib_ema_param_updates(ea, w2), 4);
    CHECK_OK(ib_checkpoint_save(path, a, oa, ea, NULL));
    CHECK_OK(ib_checkpoint_load(path, b, ob, eb, NULL));
    for (int i = 0; i < ib_params_count(a); i++) {
        if (ib_params_kind(a, i) != IB_PARAM_TRAINABLE)
            continue; /* buffers have no update count that matters */
        CHECK_MSG(ib_optim_param_steps(ob, i) == ib_optim_param_steps(oa, i), "optimizer count of %s",
                  ib_params_name(a, i));
        CHECK_MSG(ib_ema_param_updates(eb, i) == ib_ema_param_updates(ea, i), "EMA count of %s", ib_params_name(a, i));
    }
    /* the next step is the same bits */
    step_both_and_compare(a, oa, ea, b, ob, eb, 400, false);
    /* the EMA's debiasing must match too */
    ib_ema *plain = ib_ema_new(b, 0.9f, false);
    expect_load_fails(path, b, NULL, plain, IB_ERR_MISMATCH, "zero_debias");
    ib_ema_free(plain);
    /* counts naming a parameter the model lacks: another model's file */
    patch_file(path, "\\\"fc2.weight\\\":4", "\\\"fc9.weight\\\":4"); /* escaped inside the header's JSON */
    expect_load_fails(path, b, ob, NULL, IB_ERR_MISMATCH, "fc9.weight");
    ib_optim_free(oa);
    ib_optim_free(ob);
    ib_ema_free(ea);
    ib_ema_free(eb);
    ib_params_free(a);
    ib_params_free(b);
}

static void test_optimizer_kind_must_match(void)
{
    const char *path = tmp_path("adamw.safetensors");
    ib_params *a = make_model(1);
    ib_optim_config cw = ib_optim_defaults(IB_OPTIM_ADAMW), cs = ib_optim_defaults(IB_OPTIM_SGD),
                    ca = ib_optim_defaults(IB_OPTIM_ADAM);
    cs.momentum = 0.5f;
    ib_optim *ow = ib_optim_new(a, &cw), *os = ib_optim_new(a, &cs), *oa = ib_optim_new(a, &ca);
    fill_grads(a, 7);
    CHECK_OK(ib_optim_step(ow));
    CHECK_OK(ib_checkpoint_save(path, a, ow, NULL, NULL));
    /* SGD lacks the Adam moments; Adam has the same names but another rule */
    expect_load_fails(path, a, os, NULL, IB_ERR_MISMATCH, "optim.momentum_buffer.");
    expect_load_fails(path, a, oa, NULL, IB_ERR_MISMATCH, "adamw");
    CHECK_EQ_INT(ib_optim_steps(oa), 0);
    ib_optim_free(ow);
    ib_optim_free(os);
    ib_optim_free(oa);
    ib_params_free(a);
}

/* ---- the layout, read without the library's reader ---- */

static void test_layout_matches_the_format(void)
{
    const char *path = tmp_path("layout.safetensors");
    ib_params *p = make_model(5);
    CHECK_OK(ib_checkpoint_save(path, p, NULL, NULL, "{\"k\": 1}"));
    size_t len;
    unsigned char *b = read_all(path, &len);
    CHECK(len >= 8);
    uint64_t n = 0;
    for (int k = 7; k >= 0; k--)
        n = n << 8 | b[k];
    CHECK(n > 0 && n <= len - 8);
    CHECK_EQ_INT((8 + n) % 8, 0); /* padded so the data is 8-byte aligned */
    char *json = malloc(n + 1);
    memcpy(json, b + 8, n);
    json[n] = 0;
    CHECK(json[0] == '{');
    cJSON *root = cJSON_Parse(json);
    CHECK(root != NULL);
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(meta, "format")));
    CHECK(strcmp(cJSON_GetObjectItemCaseSensitive(meta, "format")->valuestring, "pt") == 0);
    CHECK(strcmp(cJSON_GetObjectItemCaseSensitive(meta, "ibnet")->valuestring, "{\"k\": 1}") == 0);
    uint64_t data = len - 8 - n, covered = 0;
    CHECK_EQ_INT(cJSON_GetArraySize(root), ib_params_count(p) + 1);
    for (int i = 0; i < ib_params_count(p); i++) {
        cJSON *e = cJSON_GetObjectItemCaseSensitive(root, ib_params_name(p, i));
        CHECK_MSG(e != NULL, "no entry for %s", ib_params_name(p, i));
        CHECK(strcmp(cJSON_GetObjectItemCaseSensitive(e, "dtype")->valuestring, "F32") == 0);
        cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
        CHECK_EQ_INT(cJSON_GetArraySize(shape), ib_params_ndim(p, i));
        for (int d = 0; d < ib_params_ndim(p, i); d++)
            CHECK_EQ_INT(cJSON_GetArrayItem(shape, d)->valuedouble, ib_params_shape(p, i)[d]);
        cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        uint64_t b0 = (uint64_t)cJSON_GetArrayItem(off, 0)->valuedouble;
        uint64_t b1 = (uint64_t)cJSON_GetArrayItem(off, 1)->valuedouble;
        CHECK_EQ_INT(b1 - b0, ib_params_numel(p, i) * 4);
        CHECK(b1 <= data);
        covered += b1 - b0;
        /* the raw bytes are the float32 values, little-endian */
        const float *v = ib_params_value(p, i);
        for (int64_t j = 0; j < ib_params_numel(p, i); j++) {
            uint32_t bits;
            memcpy(&bits, &v[j], 4);
            const unsigned char *q = b + 8 + n + b0 + 4 * j;
            uint32_t got = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
            CHECK_MSG(got == bits, "%s[%lld] bytes differ", ib_params_name(p, i), (long long)j);
        }
    }
    CHECK_EQ_INT(covered, data); /* no holes, no trailing bytes */
    cJSON_Delete(root);
    free(json);
    free(b);
    ib_params_free(p);
}

/* ---- corrupt and foreign files ---- */

static void test_truncated_files_are_refused(void)
{
    const char *path = tmp_path("full.safetensors"), *cut = tmp_path("cut.safetensors");
    ib_params *p = make_model(1), *q = make_model(2);
    CHECK_OK(ib_checkpoint_save(path, p, NULL, NULL, "{\"x\": 1}"));
    size_t len;
    unsigned char *b = read_all(path, &len);
    float *snap = snapshot(q);
    for (size_t l = 0; l < len; l++) {
        write_all(cut, b, l);
        ib_status s = ib_checkpoint_load(cut, q, NULL, NULL, NULL);
        CHECK_MSG(s == IB_ERR_FORMAT, "truncated at %zu of %zu: status %d (%s)", l, len, (int)s, ib_last_error());
        CHECK_MSG(strstr(ib_last_error(), cut) != NULL, "truncated at %zu: message lacks the file: %s", l,
                  ib_last_error());
        char *m = NULL;
        CHECK(ib_checkpoint_read_metadata(cut, &m) == IB_ERR_FORMAT && m == NULL);
    }
    CHECK(unchanged(q, snap));
    /* an extra byte at the end is refused too (a hole in the data) */
    unsigned char *longer = malloc(len + 1);
    memcpy(longer, b, len);
    longer[len] = 0;
    write_all(cut, longer, len + 1);
    expect_load_fails(cut, q, NULL, NULL, IB_ERR_FORMAT, "trailing");
    free(longer);
    expect_load_fails(tmp_path("does-not-exist.safetensors"), q, NULL, NULL, IB_ERR_IO, "cannot open");
    free(snap);
    free(b);
    ib_params_free(p);
    ib_params_free(q);
}

typedef struct bad_case {
    const char *json;
    size_t data_len;
    ib_status want;
    const char *needle;
} bad_case;

static void test_corrupt_headers_are_refused(void)
{
    /* data for "a" (2, 3) at [0, 24) and "b" (3) at [24, 36) */
    float data[16];
    for (int k = 0; k < 16; k++)
        data[k] = (float)k + 0.5f;
#define A_OK "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}"
#define B_OK "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[24,36]}"
    static const bad_case cases[] = {
        {"{" A_OK "," B_OK "}", 36, IB_OK, ""},
        {"{\"__metadata__\":{\"format\":\"pt\"}," A_OK "," B_OK "}   ", 36, IB_OK, ""},
        {"{\"a\": {", 36, IB_ERR_FORMAT, "not valid JSON"},
        {"[1, 2]", 36, IB_ERR_FORMAT, "not a JSON object"},
        {"{" A_OK "," B_OK "}x", 36, IB_ERR_FORMAT, "after the JSON"},
        {"{" A_OK "," B_OK ",\"\xff\":1}", 36, IB_ERR_FORMAT, "UTF-8"},
        {"{" A_OK ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[24,40]}}", 36, IB_ERR_FORMAT, "go past the data"},
        {"{" A_OK ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[12,24]}}", 36, IB_ERR_FORMAT, "overlaps"},
        {"{" A_OK ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[28,40]}}", 40, IB_ERR_FORMAT, "belong to no tensor"},
        {"{" A_OK "," B_OK "}", 40, IB_ERR_FORMAT, "trailing"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[20,32]}}", 32, IB_ERR_FORMAT, "need 24"},
        {"{" A_OK ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[36,24]}}", 36, IB_ERR_FORMAT, "end before"},
        {"{" A_OK ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[24,36,36]}}", 36, IB_ERR_FORMAT, "two non-negative"},
        {"{" A_OK ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[24,\"36\"]}}", 36, IB_ERR_FORMAT, "two non-negative"},
        {"{" A_OK ",\"b\":{\"dtype\":\"F32\",\"shape\":[-3],\"data_offsets\":[24,36]}}", 36, IB_ERR_FORMAT, "non-negative integer"},
        {"{" A_OK ",\"b\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[24,36]}}", 36, IB_ERR_FORMAT, "non-negative integer"},
        {"{" A_OK ",\"b\":{\"dtype\":\"F32\",\"shape\":[1e15,1e15],\"data_offsets\":[24,36]}}", 36, IB_ERR_FORMAT, "more elements"},
        {"{" A_OK ",\"b\":{\"dtype\":\"F33\",\"shape\":[3],\"data_offsets\":[24,36]}}", 36, IB_ERR_FORMAT, "unknown dtype"},
        {"{" A_OK ",\"b\":{\"shape\":[3],\"data_offsets\":[24,36]}}", 36, IB_ERR_FORMAT, "no \"dtype\""},
        {"{" A_OK ",\"b\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[24,36]}}", 36, IB_ERR_FORMAT, "twice"},
        {"{" A_OK "," B_OK ",\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[36,36]}}", 36, IB_ERR_FORMAT, "appears twice"},
        {"{" A_OK "," B_OK ",\"c\\u0000x\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[36,36]}}", 36,
         IB_ERR_FORMAT, "u0000"},
        {"{" A_OK "," B_OK ",\"c\nx\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[36,36]}}", 36,
         IB_ERR_FORMAT, "control character"},
        {"{\"__metadata__\":{\"format\":1}," A_OK "," B_OK "}", 36, IB_ERR_FORMAT, "not a string"},
        {"{\"__metadata__\":[\"pt\"]," A_OK "," B_OK "}", 36, IB_ERR_FORMAT, "not a JSON object"},
        {"{\"__metadata__\":{},\"__metadata__\":{}," A_OK "," B_OK "}", 36, IB_ERR_FORMAT, "twice"},
        /* valid files that do not fit the model */
        {"{\"a\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[12,24]}}", 24, IB_ERR_MISMATCH, "dtype F16"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
         "\"b\":{\"dtype\":\"I64\",\"shape\":[3],\"data_offsets\":[24,48]}}", 48, IB_ERR_MISMATCH, "dtype I64"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[0,24]}," B_OK "}", 36, IB_ERR_MISMATCH, "shape (3, 2)"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[6],\"data_offsets\":[0,24]}," B_OK "}", 36, IB_ERR_MISMATCH, "shape (6)"},
        {"{" A_OK "}", 24, IB_ERR_MISMATCH, "no tensor \"b\""},
        {"{" A_OK "," B_OK ",\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[36,40]}}", 40, IB_ERR_MISMATCH,
         "tensor \"c\" that the model does not"},
        /* optimizer state of a parameter the model does not have */
        {"{" A_OK "," B_OK ",\"optim.exp_avg.z\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[36,40]}}", 40,
         IB_ERR_MISMATCH, "optim.exp_avg.z"},
    };
#undef A_OK
#undef B_OK
    const char *path = tmp_path("crafted.safetensors");
    ib_params *p = make_small();
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        write_st(path, cases[c].json, data, cases[c].data_len);
        if (cases[c].want == IB_OK) {
            CHECK_MSG(ib_checkpoint_load(path, p, NULL, NULL, NULL) == IB_OK, "case %zu: %s", c, ib_last_error());
            CHECK(ib_params_value(p, 1)[2] == 8.5f);
        } else {
            expect_load_fails(path, p, NULL, NULL, cases[c].want, cases[c].needle);
        }
    }

    /* the 8-byte length itself */
    unsigned char raw[64] = {0};
    write_all(path, raw, 16); /* length 0 */
    expect_load_fails(path, p, NULL, NULL, IB_ERR_FORMAT, "header length is 0");
    raw[0] = 0xE8, raw[1] = 0x03; /* 1000 > 64 - 8 */
    memcpy(raw + 8, "{}", 2);
    write_all(path, raw, 64);
    expect_load_fails(path, p, NULL, NULL, IB_ERR_FORMAT, "larger than the file");
    memset(raw, 0xFF, 8); /* 2^64 - 1: must not be added to anything */
    write_all(path, raw, 64);
    expect_load_fails(path, p, NULL, NULL, IB_ERR_FORMAT, "larger than the file");
    write_all(path, raw, 5);
    expect_load_fails(path, p, NULL, NULL, IB_ERR_FORMAT, "too short");
    /* a NUL inside the header */
    write_st(path, "{}", NULL, 0);
    size_t len;
    unsigned char *b = read_all(path, &len);
    b[9] = 0;
    write_all(path, b, len);
    expect_load_fails(path, p, NULL, NULL, IB_ERR_FORMAT, "NUL");
    free(b);
    ib_params_free(p);
}

/* The general reader lists every dtype; only F32 converts. */
static void test_reader_lists_other_dtypes(void)
{
    const char *path = tmp_path("mixed.safetensors");
    unsigned char data[2 * 3 + 8 * 2 + 1 + 4];
    for (size_t k = 0; k < sizeof data; k++)
        data[k] = (unsigned char)k;
    write_st(path,
             "{\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]},"
             "\"i\":{\"dtype\":\"I64\",\"shape\":[2,1],\"data_offsets\":[6,22]},"
             "\"m\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[22,23]},"
             "\"e\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[23,23]},"
             "\"f\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[23,27]}}",
             data, sizeof data);
    ib__st_file f;
    CHECK_OK(ib__st_open(path, &f));
    CHECK_EQ_INT(f.n_tensors, 5);
    int h = ib__st_find(&f, "h"), i = ib__st_find(&f, "i"), m = ib__st_find(&f, "m"), e = ib__st_find(&f, "e");
    int s = ib__st_find(&f, "f");
    CHECK(h >= 0 && i >= 0 && m >= 0 && e >= 0 && s >= 0 && ib__st_find(&f, "zz") == -1);
    CHECK(f.tensors[h].dtype == IB__ST_F16 && f.tensors[i].dtype == IB__ST_I64 && f.tensors[m].dtype == IB__ST_BOOL);
    CHECK_EQ_INT(f.tensors[i].ndim, 2);
    CHECK_EQ_INT(f.tensors[i].shape[0], 2);
    CHECK_EQ_INT(f.tensors[e].numel, 0);
    CHECK_EQ_INT(f.tensors[s].ndim, 0);
    CHECK_EQ_INT(f.tensors[s].numel, 1);
    unsigned char raw[16];
    CHECK_OK(ib__st_read_raw(&f, i, raw));
    CHECK(memcmp(raw, data + 6, 16) == 0);
    float x[3];
    CHECK(ib__st_read_f32(&f, h, x) == IB_ERR_FORMAT);
    CHECK(strstr(ib_last_error(), "F16") != NULL);
    CHECK_OK(ib__st_read_f32(&f, s, x));
    CHECK(memcmp(x, data + 23, 4) == 0);
    ib__st_close(&f);

    /* the same bytes parse from memory */
    size_t len;
    unsigned char *b = read_all(path, &len);
    CHECK_OK(ib__st_parse_memory("mem", b, len, &f));
    CHECK_EQ_INT(f.n_tensors, 5);
    CHECK_OK(ib__st_read_raw(&f, ib__st_find(&f, "i"), raw));
    CHECK(memcmp(raw, data + 6, 16) == 0);
    ib__st_close(&f);
    CHECK(ib__st_parse_memory("mem", b, len - 1, &f) == IB_ERR_FORMAT);
    CHECK(strncmp(ib_last_error(), "mem: ", 5) == 0);
    free(b);
}

static void test_writer_refuses_bad_names(void)
{
    const char *path = tmp_path("names.safetensors");
    float v[2] = {1, 2};
    int64_t shape[1] = {2};
    ib__st_out t[2] = {{"x", 1, shape, v}, {"x", 1, shape, v}};
    CHECK(ib__st_write(path, 2, t, 0, NULL, NULL) == IB_ERR_ARG);
    CHECK(strstr(ib_last_error(), "twice") != NULL);
    t[1].name = "__metadata__";
    CHECK(ib__st_write(path, 2, t, 0, NULL, NULL) == IB_ERR_ARG);
    t[1].name = "bad\xc3";
    CHECK(ib__st_write(path, 2, t, 0, NULL, NULL) == IB_ERR_ARG);
    const char *k[2] = {"a", "a"}, *val[2] = {"1", "2"};
    t[1].name = "y\"q\\";
    CHECK(ib__st_write(path, 2, t, 2, k, val) == IB_ERR_ARG);
    CHECK(!file_exists(path));
    /* names needing escapes survive */
    k[1] = "b\n";
    CHECK_OK(ib__st_write(path, 2, t, 2, k, val));
    ib__st_file f;
    CHECK_OK(ib__st_open(path, &f));
    CHECK(ib__st_find(&f, "y\"q\\") >= 0);
    CHECK(ib__st_meta(&f, "b\n") && strcmp(ib__st_meta(&f, "b\n"), "2") == 0);
    ib__st_close(&f);
}

/* ---- atomic replacement ---- */

/* The public file helpers: an atomic whole-file write that round-trips
 * through ib_file_read, a size limit and a missing file named in the
 * error, nested directories made by ib_mkdirs. */
static void test_public_file_helpers(void)
{
    const char *dir = tmp_path("a/b/c");
    CHECK_OK(ib_mkdirs(dir));
    CHECK_OK(ib_mkdirs(dir)); /* existing: fine */
    char path[700];
    snprintf(path, sizeof path, "%s/r.json", dir);
    const char text[] = "{\"x\": 1}\n";
    CHECK_OK(ib_file_write_atomic(path, text, sizeof text - 1));
    CHECK_OK(ib_file_write_atomic(path, text, sizeof text - 1)); /* replaces */
    size_t n = 0;
    char *back = ib_file_read(path, 1 << 10, &n);
    CHECK(back && n == sizeof text - 1 && strcmp(back, text) == 0);
    free(back);
    CHECK(ib_file_read(path, 4, NULL) == NULL); /* above the limit */
    CHECK(strstr(ib_last_error(), path) != NULL);
    snprintf(path, sizeof path, "%s/none.json", dir);
    CHECK(ib_file_read(path, 1 << 10, NULL) == NULL);
    CHECK(strstr(ib_last_error(), "none.json") != NULL);
    snprintf(path, sizeof path, "%s/missing/x.json", dir);
    CHECK(ib_file_write_atomic(path, text, 3) == IB_ERR_IO);
    double t0 = ib_seconds(), t1 = ib_seconds();
    CHECK(t1 >= t0 && t0 > 0);
}

static void test_failed_writes_leave_old_file(void)
{
    char tmp[600];
    ib_params *p = make_model(1), *big = make_model(2);
    CHECK(ib_params_get(big, "extra", 2, (int64_t[]){64, 64}, (ib_init){IB_INIT_ONES, 0, 0}, IB_PARAM_TRAINABLE) >= 0);

    /* a directory that does not exist: nothing is created */
    const char *nodir = tmp_path("no-such-dir/ck.safetensors");
    CHECK(ib_checkpoint_save(nodir, p, NULL, NULL, NULL) == IB_ERR_IO);
    CHECK(strstr(ib_last_error(), nodir) != NULL);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", nodir, (long)getpid());
    CHECK(!file_exists(tmp));

    /* keep a good checkpoint, then fail to replace it in several ways */
    const char *path = tmp_path("keep.safetensors");
    CHECK_OK(ib_checkpoint_save(path, p, NULL, NULL, "{\"v\": 1}"));
    size_t len0;
    unsigned char *before = read_all(path, &len0);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());

    CHECK(ib_checkpoint_save(path, big, NULL, NULL, "not json") == IB_ERR_ARG);

    /* the file-size limit makes the write itself fail half-way */
    struct rlimit old;
    CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = old;
    lim.rlim_cur = 256;
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    ib_status s = ib_checkpoint_save(path, big, NULL, NULL, "{\"v\": 2}");
    CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
    signal(SIGXFSZ, prev);
    CHECK_MSG(s == IB_ERR_IO, "write past the size limit: status %d (%s)", (int)s, ib_last_error());
    CHECK(strstr(ib_last_error(), path) != NULL);
    CHECK(!file_exists(tmp));

    size_t len1;
    unsigned char *after = read_all(path, &len1);
    CHECK(len0 == len1 && memcmp(before, after, len0) == 0);
    ib_params *q = make_model(3);
    CHECK_OK(ib_checkpoint_load(path, q, NULL, NULL, NULL));
    check_params_equal(p, q);

    /* the target is a directory: the rename fails after a full write */
    const char *dir = tmp_path("a-directory");
    CHECK(mkdir(dir, 0777) == 0);
    CHECK(ib_checkpoint_save(dir, p, NULL, NULL, NULL) == IB_ERR_IO);
    CHECK(strstr(ib_last_error(), "rename") != NULL);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", dir, (long)getpid());
    CHECK(!file_exists(tmp));
    struct stat st;
    CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode));

    /* and a successful save replaces the file */
    CHECK_OK(ib_checkpoint_save(path, big, NULL, NULL, NULL));
    CHECK(!file_exists(tmp));
    expect_load_fails(path, q, NULL, NULL, IB_ERR_MISMATCH, "\"extra\"");
    free(before);
    free(after);
    ib_params_free(p);
    ib_params_free(q);
    ib_params_free(big);
}

/* IBNET_KEEP_CHECKPOINT=PATH: a small trained MLP for the Python check.
 * Prints each tensor's sum so the two readers can be compared. */
static int keep_checkpoint(const char *path)
{
    ib_params *p = make_model(11);
    ib_optim_config cfg = ib_optim_defaults(IB_OPTIM_ADAM);
    ib_optim *o = ib_optim_new(p, &cfg);
    ib_ema *e = ib_ema_new(p, 0.99f, false);
    for (int t = 0; t < 2; t++) {
        fill_grads(p, 300 + (uint64_t)t);
        if (ib_optim_step(o) != IB_OK || ib_ema_update(e) != IB_OK)
            return 1;
    }
    ib_status s = ib_checkpoint_save(path, p, o, e, "{\"epoch\": 2, \"model\": \"mlp\"}");
    if (s != IB_OK) {
        fprintf(stderr, "%s\n", ib_last_error());
        return 1;
    }
    for (int i = 0; i < ib_params_count(p); i++) {
        double sum = 0;
        for (int64_t j = 0; j < ib_params_numel(p, i); j++)
            sum += ib_params_value(p, i)[j];
        printf("%-20s sum %.9g first %.9g\n", ib_params_name(p, i), sum, (double)ib_params_value(p, i)[0]);
    }
    ib_optim_free(o);
    ib_ema_free(e);
    ib_params_free(p);
    return 0;
}

/* ---- partial loading (--init-from) ---- */

/* Another model that shares the backbone of make_model: fc1 and the
 * buffer with the same shapes, a new head, none of fc2 / log_beta. */
static ib_params *make_headed(uint64_t seed, int64_t fc1_rows)
{
    ib_params *p = ib_params_new(seed);
    ib_init kaiming = IB_INIT_PYTORCH_DEFAULT, normal = {IB_INIT_NORMAL, 0, 1};
    CHECK(ib_params_get(p, "fc1.weight", 2, (int64_t[]){fc1_rows, 3}, kaiming, IB_PARAM_TRAINABLE) >= 0);
    CHECK(ib_params_get(p, "fc1.bias", 1, (int64_t[]){5}, normal, IB_PARAM_TRAINABLE) >= 0);
    CHECK(ib_params_get(p, "bn.running_mean", 1, (int64_t[]){5}, normal, IB_PARAM_BUFFER) >= 0);
    CHECK(ib_params_get(p, "head.weight", 2, (int64_t[]){4, 5}, kaiming, IB_PARAM_TRAINABLE) >= 0);
    CHECK(ib_params_get(p, "head.bias", 1, (int64_t[]){4}, normal, IB_PARAM_TRAINABLE) >= 0);
    return p;
}

static bool same_values(ib_params *a, const char *name_a, ib_params *b, const char *name_b)
{
    int i = ib_params_find(a, name_a), j = ib_params_find(b, name_b);
    CHECK(i >= 0 && j >= 0);
    return i >= 0 && j >= 0 && ib_params_numel(a, i) == ib_params_numel(b, j) &&
           memcmp(ib_params_value(a, i), ib_params_value(b, j), (size_t)ib_params_numel(a, i) * sizeof(float)) == 0;
}

static void test_partial_load_takes_exactly_the_matching_tensors(void)
{
    const char *path = tmp_path("backbone.safetensors");
    ib_params *a = make_model(1), *b = make_headed(2, 5), *fresh = make_headed(2, 5);
    CHECK_OK(ib_checkpoint_save(path, a, NULL, NULL, NULL));
    /* the full load refuses another model; the partial one takes what matches */
    expect_load_fails(path, b, NULL, NULL, IB_ERR_MISMATCH, "head.weight");
    ib_checkpoint_partial r;
    CHECK_OK(ib_checkpoint_load_partial(path, b, NULL, &r));
    CHECK_EQ_INT(r.n_params, 5);
    CHECK_EQ_INT(r.n_loaded, 3);
    CHECK_EQ_INT(r.n_loaded_ema, 0);
    CHECK_EQ_INT(r.n_kept, 2);
    CHECK_EQ_INT(r.n_unused, 3); /* fc2.weight, fc2.bias, log_beta */
    const char *loaded[] = {"fc1.weight", "fc1.bias", "bn.running_mean"};
    for (int k = 0; k < 3; k++) {
        int i = ib_params_find(b, loaded[k]);
        CHECK_MSG(r.source[i] == IB_CKPT_LOADED, "%s not reported loaded", loaded[k]);
        CHECK_MSG(same_values(a, loaded[k], b, loaded[k]), "%s not loaded bit-exactly", loaded[k]);
    }
    const char *kept[] = {"head.weight", "head.bias"};
    for (int k = 0; k < 2; k++) {
        int i = ib_params_find(b, kept[k]);
        CHECK_MSG(r.source[i] == IB_CKPT_KEPT, "%s not reported kept", kept[k]);
        CHECK_MSG(same_values(fresh, kept[k], b, kept[k]), "%s lost its initialisation", kept[k]);
    }
    ib_checkpoint_partial_free(&r);
    CHECK(r.source == NULL);
    /* a NULL result is allowed */
    CHECK_OK(ib_checkpoint_load_partial(path, fresh, NULL, NULL));
    CHECK(same_values(a, "fc1.weight", fresh, "fc1.weight"));
    ib_params_free(a);
    ib_params_free(b);
    ib_params_free(fresh);
}

/* A partial load that must fail: status want, a message naming the file
 * and `needle`, the store unchanged and the result empty. */
static void expect_partial_fails(const char *path, ib_params *p, const ib_checkpoint_partial_options *o,
                                 ib_status want, const char *needle)
{
    float *snap = snapshot(p);
    ib_checkpoint_partial r;
    ib_status s = ib_checkpoint_load_partial(path, p, o, &r);
    const char *msg = ib_last_error();
    CHECK_MSG(s == want, "partial load (%s): status %d, want %d; message: %s", needle, (int)s, (int)want, msg);
    CHECK_MSG(strstr(msg, path) != NULL, "message does not name the file: %s", msg);
    CHECK_MSG(strstr(msg, needle) != NULL, "message lacks \"%s\": %s", needle, msg);
    CHECK_MSG(unchanged(p, snap), "a failed partial load (%s) changed the model", needle);
    CHECK(r.source == NULL && r.n_loaded == 0);
    ib_checkpoint_partial_free(&r);
    free(snap);
}

static void test_partial_load_errors(void)
{
    const char *path = tmp_path("backbone2.safetensors");
    ib_params *a = make_model(1);
    CHECK_OK(ib_checkpoint_save(path, a, NULL, NULL, NULL));
    /* a matching name with another shape: an error naming it, nothing loaded
     * (fc1.bias and the buffer would match) */
    ib_params *wide = make_headed(2, 7);
    expect_partial_fails(path, wide, NULL, IB_ERR_MISMATCH, "\"fc1.weight\" has shape (5, 3) in the checkpoint but (7, 3)");
    /* nothing in common */
    ib_params *other = make_small();
    expect_partial_fails(path, other, NULL, IB_ERR_MISMATCH, "no tensor of the checkpoint");
    /* a missing file */
    const char *missing = tmp_path("no-such.safetensors");
    ib_checkpoint_partial r;
    CHECK(ib_checkpoint_load_partial(missing, other, NULL, &r) != IB_OK);
    CHECK(strstr(ib_last_error(), missing) != NULL);
    CHECK(ib_checkpoint_load_partial(NULL, other, NULL, &r) == IB_ERR_ARG);
    /* a flipped bit in a tensor the load takes: damaged, nothing changed;
     * skip_checksums loads it anyway */
    ib__st_file f;
    CHECK_OK(ib__st_open(path, &f));
    int k = ib__st_find(&f, "fc1.bias");
    CHECK(k >= 0);
    long at = (long)(f.data_start + f.tensors[k].begin + 1);
    ib__st_close(&f);
    size_t len;
    unsigned char *bytes = read_all(path, &len);
    bytes[at] ^= 0x10;
    write_all(path, bytes, len);
    free(bytes);
    ib_params *b = make_headed(3, 5);
    expect_partial_fails(path, b, NULL, IB_ERR_FORMAT, "\"fc1.bias\" does not match its checksum");
    ib_checkpoint_partial_options o = {.skip_checksums = true};
    CHECK_OK(ib_checkpoint_load_partial(path, b, &o, NULL));
    CHECK(same_values(a, "fc1.weight", b, "fc1.weight"));
    CHECK(!same_values(a, "fc1.bias", b, "fc1.bias"));
    ib_params_free(a);
    ib_params_free(b);
    ib_params_free(wide);
    ib_params_free(other);
}

/* With use_ema, a training checkpoint's averages are what the new model
 * starts from: the same values ib_ema_swap puts in the trained store
 * (debiased); buffers and parameters without an average take raw values. */
static void test_partial_load_uses_the_ema(void)
{
    const char *path = tmp_path("ema-backbone.safetensors");
    ib_params *a = make_model(1);
    ib_optim_config cfg = ib_optim_defaults(IB_OPTIM_ADAM);
    ib_optim *oa = ib_optim_new(a, &cfg);
    ib_ema *ea = ib_ema_new(a, 0.9f, true);
    CHECK(oa && ea);
    /* fc1.bias frozen from the start: it never gets an average */
    CHECK_EQ_INT(ib_params_freeze(a, "fc1.bias", true), 1);
    for (int t = 0; t < 3; t++) {
        fill_grads(a, 300 + (uint64_t)t);
        CHECK_OK(ib_optim_step(oa));
        CHECK_OK(ib_ema_update(ea));
    }
    CHECK_OK(ib_checkpoint_save(path, a, oa, ea, NULL));
    ib_params *raw = make_headed(2, 5), *avg = make_headed(2, 5);
    ib_checkpoint_partial r;
    CHECK_OK(ib_checkpoint_load_partial(path, raw, NULL, &r));
    CHECK_EQ_INT(r.n_loaded_ema, 0);
    ib_checkpoint_partial_free(&r);
    ib_checkpoint_partial_options o = {.use_ema = true};
    CHECK_OK(ib_checkpoint_load_partial(path, avg, &o, &r));
    CHECK_EQ_INT(r.n_loaded, 3);
    CHECK_EQ_INT(r.n_loaded_ema, 1);
    CHECK(r.source[ib_params_find(avg, "fc1.weight")] == IB_CKPT_LOADED_EMA);
    CHECK(r.source[ib_params_find(avg, "fc1.bias")] == IB_CKPT_LOADED);
    CHECK(r.source[ib_params_find(avg, "bn.running_mean")] == IB_CKPT_LOADED);
    ib_checkpoint_partial_free(&r);
    CHECK(same_values(a, "fc1.weight", raw, "fc1.weight"));
    CHECK(!same_values(a, "fc1.weight", avg, "fc1.weight"));
    CHECK_OK(ib_ema_swap(ea)); /* a now holds the averages */
    CHECK(same_values(a, "fc1.weight", avg, "fc1.weight"));
    CHECK(same_values(a, "fc1.bias", avg, "fc1.bias"));
    CHECK(same_values(a, "bn.running_mean", avg, "bn.running_mean"));
    CHECK_OK(ib_ema_swap(ea));
    /* a file without EMA tensors: use_ema falls back to the raw weights */
    const char *bare = tmp_path("bare-backbone.safetensors");
    CHECK_OK(ib_checkpoint_save(bare, a, NULL, NULL, NULL));
    ib_params *c = make_headed(4, 5);
    CHECK_OK(ib_checkpoint_load_partial(bare, c, &o, &r));
    CHECK_EQ_INT(r.n_loaded_ema, 0);
    CHECK(same_values(a, "fc1.weight", c, "fc1.weight"));
    ib_checkpoint_partial_free(&r);
    ib_optim_free(oa);
    ib_ema_free(ea);
    ib_params_free(a);
    ib_params_free(raw);
    ib_params_free(avg);
    ib_params_free(c);
}

int main(void)
{
    const char *keep = getenv("IBNET_KEEP_CHECKPOINT");
    if (keep && *keep)
        return keep_checkpoint(keep);
    IB_RUN(test_round_trip_params_and_metadata);
    IB_RUN(test_round_trip_adam_and_ema);
    IB_RUN(test_round_trip_sgd_momentum);
    IB_RUN(test_per_parameter_counts_survive);
    IB_RUN(test_optimizer_kind_must_match);
    IB_RUN(test_layout_matches_the_format);
    IB_RUN(test_truncated_files_are_refused);
    IB_RUN(test_corrupt_headers_are_refused);
    IB_RUN(test_reader_lists_other_dtypes);
    IB_RUN(test_writer_refuses_bad_names);
    IB_RUN(test_failed_writes_leave_old_file);
    IB_RUN(test_partial_load_takes_exactly_the_matching_tensors);
    IB_RUN(test_partial_load_errors);
    IB_RUN(test_partial_load_uses_the_ema);
    IB_RUN(test_public_file_helpers);
    return ib_test_summary();
}
