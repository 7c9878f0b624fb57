/*
 * test.h — the tests' registry and typed asserts.  Each tests/test_*.c is
 * one executable: it lists its cases in main() with IB_RUN and returns
 * ib_test_summary().  A failing assert prints both values and the place,
 * and the case stops; the other cases still run.
 */
#ifndef IB_TEST_H
#define IB_TEST_H

#include "ibnet.h"

#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern jmp_buf ib_test_jmp;
extern int ib_test_failed_case;

void ib_test_run(const char *name, void (*fn)(void));
int ib_test_summary(void);
void ib_test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define IB_RUN(fn) ib_test_run(#fn, fn)

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond))                                                                                                   \
            ib_test_fail(__FILE__, __LINE__, "CHECK(%s) failed", #cond);                                               \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                                           \
    do {                                                                                                               \
        if (!(cond))                                                                                                   \
            ib_test_fail(__FILE__, __LINE__, __VA_ARGS__);                                                             \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                                             \
    do {                                                                                                               \
        long long a_ = (long long)(a), b_ = (long long)(b);                                                            \
        if (a_ != b_)                                                                                                  \
            ib_test_fail(__FILE__, __LINE__, "%s == %s failed: %lld vs %lld", #a, #b, a_, b_);                         \
    } while (0)

#define CHECK_OK(expr)                                                                                                 \
    do {                                                                                                               \
        ib_status s_ = (expr);                                                                                         \
        if (s_ != IB_OK)                                                                                               \
            ib_test_fail(__FILE__, __LINE__, "%s returned %d (%s): %s", #expr, (int)s_, ib_strerror(s_),             \
                         ib_last_error());                                                                             \
    } while (0)

/* |a - b| <= tol */
#define CHECK_NEAR(a, b, tol)                                                                                          \
    do {                                                                                                               \
        double a_ = (double)(a), b_ = (double)(b), t_ = (double)(tol);                                                 \
        if (!(fabs(a_ - b_) <= t_))                                                                                    \
            ib_test_fail(__FILE__, __LINE__, "%s ~ %s failed: %.9g vs %.9g (diff %.3g > %.3g)", #a, #b, a_, b_,       \
                         fabs(a_ - b_), t_);                                                                           \
    } while (0)

/* |a - b| <= rtol * max(|a|, |b|) + atol */
#define CHECK_CLOSE(a, b, rtol, atol)                                                                                  \
    do {                                                                                                               \
        double a_ = (double)(a), b_ = (double)(b);                                                                     \
        double lim_ = (double)(rtol) * fmax(fabs(a_), fabs(b_)) + (double)(atol);                                      \
        if (!(fabs(a_ - b_) <= lim_))                                                                                  \
            ib_test_fail(__FILE__, __LINE__, "%s ~ %s failed: %.9g vs %.9g (diff %.3g > %.3g)", #a, #b, a_, b_,       \
                         fabs(a_ - b_), lim_);                                                                         \
    } while (0)

/* ---- helpers shared by the tests ---- */
/* Fill with uniform values in [lo, hi) from a fixed stream. */
void ib_test_fill(float *x, int64_t n, float lo, float hi, uint64_t stream);
/* Gradient check of loss w.r.t. each node in wrt[]: fails the case if the
 * error exceeds tol (relative to the largest gradient element). */
void ib_test_gradcheck(ib_graph *g, ib_node *loss, int n_wrt, ib_node **wrt, float eps, double tol);
/* The op list's coverage (tests/test_op_list.c): ib_test_gradcheck records
 * every op whose backward it has verified (the op nodes on a gradient path
 * from a checked input to the loss, less the nodes ib_test_weighted_sum
 * adds); a test that checks an op without a gradient, or with a
 * straight-through one, against exact values calls ib_test_exact_checked
 * on its node once those asserts have passed.  With IBNET_OP_COVERAGE=FILE
 * in the environment, ib_test_summary appends the records to FILE, one
 * "fd NAME" or "exact NAME" a line. */
void ib_test_exact_checked(const ib_node *n);
/* loss = sum(y * R) with R a random input of y's shape (filled by
 * ib_test_compile_fill), so every output element carries its own weight
 * and a transposed index shows up. */
ib_node *ib_test_weighted_sum(ib_graph *g, ib_node *y);
/* Compile g, then fill every float input with U(-1, 1) (a fixed stream per
 * node) and every label input with 0; tests overwrite what they need. */
void ib_test_compile_fill(ib_graph *g);
/* Path of a file under the source tree (IBNET_SOURCE_DIR or "."). */
const char *ib_test_path(const char *rel, char *buf, size_t len);
/* A fresh temporary directory for this test (removed by the OS, not us). */
const char *ib_test_tmpdir(void);
/* ---- the ibnet command, run as a user would ---- */
/* What ib_test_run_cli does with the command's output.  Every field may
 * stay zero: what has no buffer is thrown away. */
typedef struct ib_test_cli {
    const char *env;  /* arguments of env(1) put before the command ("VAR=value", "-u VAR"), or NULL */
    const char *cwd;  /* the directory to run in, or NULL: the test's own */
    char *out;        /* all of stdout, NUL-terminated (cut at out_len - 1 bytes), or NULL */
    size_t out_len;
    bool out_err;     /* out gets stderr too, interleaved as a terminal shows them (2>&1) */
    char *err;        /* stderr: its first line, or all of it with all_err, or NULL */
    size_t err_len;
    bool all_err;
} ib_test_cli;
/* Run `$IBNET_BUILD_DIR/ibnet ARGS` (build/ibnet without the variable)
 * through the shell (ARGS is shell text: a test quotes what needs it).
 * Returns the exit code, or -1 when the command did not exit (a signal). */
int ib_test_run_cli(const char *args, const ib_test_cli *how);
/* Write text to TMPDIR/NAME (a model description, a config) and return
 * its path in path; fails the case if it cannot. */
const char *ib_test_write_text(const char *name, const char *text, char *path, size_t len);
/* The weights of DIR/last.safetensors, loaded into MODEL (a built-in name or
 * a file) built for (1, c, h, w) inputs, and into its "view2" copy too when
 * view2: a new array of *n floats in the store's order (free it). */
float *ib_test_checkpoint_weights(const char *dir, const char *model, int c, int h, int w, bool view2, int64_t *n);
/* FNV-1a 64 of the tensor bytes of a safetensors file (after its header:
 * weights, optimizer and EMA state, not the metadata); 0 if it cannot be
 * opened (a failed check). */
uint64_t ib_test_tensor_hash(const char *path);

/* An MNIST-format (IDX) split DIR/PREFIX-images-idx3-ubyte and
 * DIR/PREFIX-labels-idx1-ubyte of n h x w images: pixels(ctx, i, img)
 * fills the h*w bytes of example i (zeroed before the call) and returns
 * its label (0..255).  Fails the case if the files cannot be written. */
typedef int (*ib_test_idx_pixels)(void *ctx, int64_t i, uint8_t *img);
void ib_test_write_idx(const char *dir, const char *prefix, int64_t n, int h, int w, ib_test_idx_pixels pixels,
                       void *ctx);
/* A small 4-class image set as MNIST-style IDX files DIR/PREFIX-images-idx3-ubyte and
 * DIR/PREFIX-labels-idx1-ubyte: n 8x8 images, class k a bright 3x3 blob in quadrant k
 * (pixel `on`) on a background `off`, plus uniform noise of 80 levels, all keyed by
 * (seed, stream, row).  The training tests' shared data (seed/on/off vary per test). */
void ib_test_write_blobs(const char *dir, const char *prefix, int n, uint64_t seed, uint64_t stream, float on,
                         float off);
/* The small Deep VIB network on the blobs that several trainer tests
 * train (fc1 of WIDTH units). */
#define IB_TEST_TINY_VIB(WIDTH)                                                                                        \
    "model tiny-vib\ninput 1 8 8\nclasses 4\n\nflatten\nlinear " #WIDTH " name=fc1\nrelu\n"                              \
    "linear 16 name=fc2\nvib 8 shift=-5 name=vib\nlinear 4 name=decoder\n"
/* DIR/FILE (a run's summary.json, config.json) parsed; fails the case if
 * it cannot be read or is not JSON.  cJSON_Delete it. */
struct cJSON *ib_test_read_json(const char *dir, const char *file);
/* The usual blob data set: TMPDIR/NAME (made) with a train split of n_train
 * images (stream 1) and a t10k split of n_test (stream 2); its path in dir. */
const char *ib_test_blob_dir(const char *name, int n_train, int n_test, uint64_t seed, float on, float off, char *dir,
                             size_t len);
/* The weights of RUN_DIR/last.safetensors of a run of MODEL (a model of
 * the blobs' 1x8x8 input): the load takes the Adam state and EMA shadow
 * too, so a checkpoint without them fails the case.  ib_params_free them. */
ib_params *ib_test_run_weights(const char *model, const char *run_dir);
/* The default training settings with the model file, the data set
 * (idx:DATA_DIR) and the run directory TMPDIR/RUN set. */
ib_train_config ib_test_train_config(const char *model, const char *data_dir, const char *run);

/* ---- PyTorch reference fixtures (tests/fixtures/NAME.txt, written by
 * tests/ref/fixture.py): blocks of "tensor NAME NDIM D0 D1 ..." followed by
 * the values as text (%.9g, enough to round-trip float32). ---- */
typedef struct ib_fixture ib_fixture;
/* Loads tests/fixtures/<file>; fails the case if missing or malformed. */
ib_fixture *ib_fixture_load(const char *file);
void ib_fixture_free(ib_fixture *f);
/* The values of a named tensor; fails the case if absent.  *numel may be NULL. */
const float *ib_fixture_get(ib_fixture *f, const char *name, int64_t *numel);
/* Compare n values elementwise: |a - b| <= rtol * max(|a|, |b|) + atol. */
void ib_test_compare(const char *what, const float *got, const float *want, int64_t n, double rtol, double atol);

#endif
