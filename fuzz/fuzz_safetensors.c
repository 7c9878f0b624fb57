/*
 * fuzz_safetensors.c — libFuzzer target for the safetensors reader and the
 * checkpoint loader.  Any byte string must give either a validated file or
 * a status with a message; never a crash, a leak or an out-of-bounds read.
 *
 * Beyond "no crash", it checks properties a wrong validator would break:
 *  - every tensor of an accepted file lies inside the input (reads are
 *    done and ASan watches them), names are found by lookup;
 *  - the file reader (ib__st_open) agrees with the memory parser;
 *  - an accepted all-F32 file rewritten by ib__st_write parses back to the
 *    same names, shapes and bytes;
 *  - ib_checkpoint_load into a fixed small store either succeeds or leaves
 *    the store unchanged.
 * Standalone build: clang -g -O1 -fsanitize=fuzzer,address,undefined
 * -I include -I src -fopenmp fuzz/fuzz_safetensors.c plus the .c files of
 * src/io, src/core and src/optim, -lcjson -lm.  Seeds: fuzz/corpus/safetensors.
 */
#include "core/internal.h"
#include "io/safetensors.h"

#include <unistd.h>

#include "fuzz_harness.h"

static char path_in[256], path_out[256];
static ib_params *store;

static void setup(void)
{
    snprintf(path_in, sizeof path_in, "/tmp/fuzz_safetensors.%ld.in", (long)getpid());
    snprintf(path_out, sizeof path_out, "/tmp/fuzz_safetensors.%ld.out", (long)getpid());
    store = ib_params_new(1);
    ib_init normal = {IB_INIT_NORMAL, 0, 1};
    ib_params_get(store, "a", 2, (int64_t[]){2, 3}, normal, IB_PARAM_TRAINABLE);
    ib_params_get(store, "b", 1, (int64_t[]){3}, normal, IB_PARAM_TRAINABLE);
}

static bool write_file(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    bool ok = fwrite(data, 1, size, f) == size;
    return fclose(f) == 0 && ok;
}

/* Rewrite an accepted all-F32 file and check it reads back the same. */
static void check_rewrite(ib__st_file *f)
{
    int n = f->n_tensors;
    ib__st_out *out = calloc((size_t)n + 1, sizeof *out);
    float **bufs = calloc((size_t)n + 1, sizeof *bufs);
    REQUIRE(out && bufs);
    for (int i = 0; i < n; i++) {
        const ib__st_tensor *t = &f->tensors[i];
        bufs[i] = malloc((size_t)t->numel * sizeof(float) + 1);
        REQUIRE(bufs[i] && ib__st_read_f32(f, i, bufs[i]) == IB_OK);
        out[i] = (ib__st_out){t->name, t->ndim, t->shape, bufs[i]};
    }
    ib_status s = ib__st_write(path_out, n, out, f->n_meta, (const char *const *)f->meta_keys,
                               (const char *const *)f->meta_values);
    /* Whatever the reader accepts (unique valid UTF-8 names, string
     * metadata) the writer must accept. */
    REQUIRE(s == IB_OK);
    {
        ib__st_file g;
        REQUIRE(ib__st_open(path_out, &g) == IB_OK);
        REQUIRE(g.n_tensors == n && g.n_meta == f->n_meta);
        for (int i = 0; i < n; i++) {
            int j = ib__st_find(&g, f->tensors[i].name);
            REQUIRE(j >= 0 && g.tensors[j].ndim == f->tensors[i].ndim && g.tensors[j].numel == f->tensors[i].numel);
            for (int d = 0; d < g.tensors[j].ndim; d++)
                REQUIRE(g.tensors[j].shape[d] == f->tensors[i].shape[d]);
            float *back = malloc((size_t)g.tensors[j].numel * sizeof(float) + 1);
            REQUIRE(back && ib__st_read_f32(&g, j, back) == IB_OK);
            REQUIRE(memcmp(back, bufs[i], (size_t)g.tensors[j].numel * sizeof(float)) == 0);
            free(back);
        }
        for (int k = 0; k < f->n_meta; k++) {
            const char *v = ib__st_meta(&g, f->meta_keys[k]);
            REQUIRE(v && strcmp(v, f->meta_values[k]) == 0);
        }
        ib__st_close(&g);
    }
    for (int i = 0; i < n; i++)
        free(bufs[i]);
    free(bufs);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!store)
        setup();
    ib__st_file f;
    ib_status s = ib__st_parse_memory("fuzz", data, size, &f);
    if (s != IB_OK) {
        REQUIRE(s == IB_ERR_FORMAT || s == IB_ERR_NOMEM);
        REQUIRE(strncmp(ib_last_error(), "fuzz: ", 6) == 0);
        return 0;
    }
    bool all_f32 = true;
    for (int i = 0; i < f.n_tensors; i++) {
        const ib__st_tensor *t = &f.tensors[i];
        REQUIRE(ib__st_find(&f, t->name) == i);
        REQUIRE(t->end - t->begin == t->numel * ib__st_dtype_size(t->dtype));
        void *buf = malloc((size_t)(t->end - t->begin) + 1);
        REQUIRE(buf && ib__st_read_raw(&f, i, buf) == IB_OK);
        free(buf);
        all_f32 &= t->dtype == IB__ST_F32;
    }
    if (all_f32) {
        check_rewrite(&f);
        unlink(path_out);
    }

    /* The file path must agree with the memory parser. */
    if (write_file(path_in, data, size)) {
        ib__st_file g;
        REQUIRE(ib__st_open(path_in, &g) == IB_OK);
        REQUIRE(g.n_tensors == f.n_tensors && g.n_meta == f.n_meta);
        ib__st_close(&g);
        float before[64];
        int64_t total = ib_params_total(store);
        REQUIRE(total <= 64);
        memcpy(before, ib_params_values(store), (size_t)total * sizeof(float));
        char *meta = NULL;
        if (ib_checkpoint_load(path_in, store, NULL, NULL, &meta) != IB_OK)
            REQUIRE(memcmp(before, ib_params_values(store), (size_t)total * sizeof(float)) == 0 && meta == NULL);
        free(meta);
        char *m2 = NULL;
        REQUIRE(ib_checkpoint_read_metadata(path_in, &m2) == IB_OK);
        free(m2);
        unlink(path_in);
    }
    ib__st_close(&f);
    return 0;
}
