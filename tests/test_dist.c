/*
 * test_dist.c — the pieces of data-parallel training that need no MPI:
 * the split of a global batch over ranks (uneven sizes included), a
 * sharded batcher giving exactly the rows of the global batch, and the
 * graph's row offset making every random op draw, for a rank's rows, the
 * noise a single process draws for the same global rows, bit for bit.
 * (tests/test_mpi.c runs the same training over mpirun.)
 */
#include "test.h"
#include "core/internal.h"

#include <sys/stat.h>

static void test_shard_rows(void)
{
    for (int64_t count = 1; count <= 103; count += 17)
        for (int ranks = 1; ranks <= 5 && ranks <= count; ranks++) {
            int64_t next = 0;
            for (int r = 0; r < ranks; r++) {
                int64_t first, n;
                ib_shard_rows(count, r, ranks, &first, &n);
                CHECK_EQ_INT((int)first, (int)next); /* contiguous, in rank order */
                CHECK_EQ_INT((int)n, (int)(count / ranks + (r < count % ranks)));
                next = first + n;
            }
            CHECK_EQ_INT((int)next, (int)count);
        }
    int64_t first, n;
    ib_shard_rows(100, 0, 3, &first, &n);
    CHECK(first == 0 && n == 34);
    ib_shard_rows(100, 2, 3, &first, &n);
    CHECK(first == 67 && n == 33);
}

/* Batches over 3 ranks, glued together, are the single batcher's batches
 * (order, augmentation, labels, indices), with prefetch on and off. */
static void test_sharded_batcher(void)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/blobs", ib_test_tmpdir());
    mkdir(dir, 0777);
    ib_test_write_blobs(dir, "train", 97, 5, 1, 170.0f, 20.0f);
    char spec[700];
    snprintf(spec, sizeof spec, "idx:%s", dir);
    ib_dataset *d = NULL;
    ib_load_options lo = {.skip_hash = true};
    CHECK_OK(ib_dataset_open(spec, "train", NULL, &lo, &d));
    if (!d)
        return;
    for (int prefetch = 0; prefetch < 2; prefetch++) {
        ib_batcher_config bc = {.batch_size = 10, .seed = 3, .shuffle = true, .drop_last = true,
                                .crop_pad = 2, .hflip = true, .prefetch = prefetch};
        enum { R = 3, PER = 64 };
        ib_batcher *all = NULL, *part[R] = {0};
        CHECK_OK(ib_batcher_new(d, &bc, &all));
        for (int r = 0; r < R; r++) {
            CHECK_OK(ib_batcher_new(d, &bc, &part[r]));
            CHECK_OK(ib_batcher_shard(part[r], r, R));
        }
        CHECK(ib_batcher_shard(part[0], 0, 11) != IB_OK); /* more ranks than rows */
        float x[10 * PER], xr[10 * PER];
        int32_t y[10], yr[10];
        for (int epoch = 0; epoch < 2; epoch++) {
            ib_batcher_epoch(all, epoch);
            for (int r = 0; r < R; r++)
                ib_batcher_epoch(part[r], epoch);
            int64_t count;
            while (ib_batcher_next(all, x, y, &count)) {
                CHECK_EQ_INT((int)count, 10);
                const int64_t *idx = ib_batcher_indices(all);
                for (int r = 0; r < R; r++) {
                    int64_t first, n, got = 0;
                    ib_shard_rows(count, r, R, &first, &n);
                    CHECK(ib_batcher_next(part[r], xr, yr, &got));
                    CHECK_EQ_INT((int)got, (int)n);
                    CHECK(memcmp(xr, x + first * PER, (size_t)(n * PER) * sizeof(float)) == 0);
                    CHECK(memcmp(yr, y + first, (size_t)n * sizeof(int32_t)) == 0);
                    CHECK(memcmp(ib_batcher_indices(part[r]), idx + first, (size_t)n * sizeof(int64_t)) == 0);
                }
            }
        }
        ib_batcher_free(all);
        for (int r = 0; r < R; r++)
            ib_batcher_free(part[r]);
    }
    ib_dataset_free(d);
}

/* A graph of every random op over `rows` rows starting at global row
 * row0: the outputs of its forward at step 7 into out (4 blocks). */
enum { K = 37 }; /* not a multiple of the generator's 32-element groups */
static void random_ops(int64_t rows, int64_t row0, float *out)
{
    ib_params *p = ib_params_new(1);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_input(g, "x", 2, (int64_t[]){rows, K});
    ib_node *s = ib_input(g, "s", 2, (int64_t[]){rows, K});
    ib_node *pr = ib_input(g, "p", 2, (int64_t[]){rows, K});
    ib_node *outs[4] = {ib_gaussian_sample(g, x, s, NULL), ib_dropout(g, x, 0.5f), ib_bernoulli_st(g, pr),
                        ib_gumbel_sigmoid(g, x, 0.7f)};
    CHECK_OK(ib_graph_compile(g));
    ib_graph_set_seed(g, 11);
    ib_graph_set_step(g, 7);
    ib_graph_set_row_offset(g, row0);
    CHECK(ib_graph_row_offset(g) == row0);
    for (int64_t i = 0; i < rows * K; i++) { /* the inputs of global row row0 + i / K */
        int64_t gi = row0 * K + i;
        x->value[i] = (float)(gi % 13) * 0.1f - 0.6f;
        s->value[i] = 0.5f + (float)(gi % 7) * 0.1f;
        pr->value[i] = (float)(gi % 11) / 11.0f;
    }
    CHECK_OK(ib_graph_forward(g));
    for (int k = 0; k < 4; k++)
        memcpy(out + (int64_t)k * 100 * K + row0 * K, outs[k]->value, (size_t)(rows * K) * sizeof(float));
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_row_offset_noise(void)
{
    static float whole[4 * 100 * K], parts[4 * 100 * K];
    random_ops(100, 0, whole);
    for (int ranks = 2; ranks <= 3; ranks++) {
        memset(parts, 0, sizeof parts);
        for (int r = 0; r < ranks; r++) {
            int64_t first, n;
            ib_shard_rows(100, r, ranks, &first, &n);
            random_ops(n, first, parts);
        }
        CHECK_MSG(memcmp(whole, parts, sizeof whole) == 0, "%d ranks: noise differs from one process", ranks);
    }
}

/* Synchronised batch norm on one rank (the global batch is the rank's
 * batch) is the ordinary batch norm, bit for bit, forward and backward;
 * its gradient also passes the finite-difference check. */
static void bn_run(bool sync, float *y_out, float *dx_out, float *dg_out, int64_t numel, int64_t ch)
{
    ib_params *p = ib_params_new(5);
    ib_graph *g = ib_graph_new(p);
    const int64_t shape[4] = {4, 3, 2, 5};
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 4, shape), true);
    ib_node *gamma = ib_param(g, "bn.weight", 1, &ch, (ib_init){IB_INIT_UNIFORM, -1.0f, 1.0f});
    ib_node *beta = ib_param(g, "bn.bias", 1, &ch, (ib_init){IB_INIT_UNIFORM, -1.0f, 1.0f});
    ib_node *rm = ib_buffer(g, "bn.running_mean", 1, &ch, (ib_init){IB_INIT_UNIFORM, -1.0f, 1.0f});
    ib_node *rv = ib_buffer(g, "bn.running_var", 1, &ch, (ib_init){IB_INIT_UNIFORM, 0.5f, 1.5f});
    ib_node *y = ib_batchnorm(g, x, gamma, beta, rm, rv, 0.1f, 1e-5f);
    ib_node *loss = ib_test_weighted_sum(g, y);
    ib_test_compile_fill(g);
    if (sync)
        ib_graph_set_sync_batchnorm(g, 4);
    CHECK_OK(ib_graph_forward(g));
    memcpy(y_out, y->value, (size_t)numel * sizeof(float));
    ib_params_zero_grad(p);
    CHECK_OK(ib_graph_backward(g, loss));
    memcpy(dx_out, x->grad, (size_t)numel * sizeof(float));
    memcpy(dg_out, gamma->grad, (size_t)ch * sizeof(float));
    if (sync)
        ib_test_gradcheck(g, loss, 3, (ib_node *[]){x, gamma, beta}, 3e-3f, 5e-4);
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_sync_batchnorm_one_rank(void)
{
    enum { N = 4 * 3 * 2 * 5, C = 3 };
    float y0[N], y1[N], dx0[N], dx1[N], dg0[C], dg1[C];
    bn_run(false, y0, dx0, dg0, N, C);
    bn_run(true, y1, dx1, dg1, N, C);
    CHECK(memcmp(y0, y1, sizeof y0) == 0);
    CHECK(memcmp(dx0, dx1, sizeof dx0) == 0);
    CHECK(memcmp(dg0, dg1, sizeof dg0) == 0);
}

/* A build without MPI started by a launcher with 2 ranks (as mpirun's
 * environment says) refuses with a message and exit code 2, instead of
 * running two unrelated copies into one directory. */
static void test_build_without_mpi_refuses_launcher(void)
{
    char out[4096];
    ib_test_cli to_out = {.out = out, .out_len = sizeof out, .out_err = true};
    CHECK_EQ_INT(ib_test_run_cli("--version", &to_out), 0);
    if (strncmp(out, "MPI: no", 7) != 0 && !strstr(out, "\nMPI: no")) {
        printf("  (this build has MPI: test_mpi covers it)\n");
        return;
    }
    to_out.env = "OMPI_COMM_WORLD_SIZE=2";
    CHECK_EQ_INT(ib_test_run_cli("train --dry-run", &to_out), 2);
    CHECK_MSG(strstr(out, "built without MPI") != NULL, "%s", out);
}

int main(void)
{
    ib_set_threads(2);
    IB_RUN(test_shard_rows);
    IB_RUN(test_sharded_batcher);
    IB_RUN(test_row_offset_noise);
    IB_RUN(test_sync_batchnorm_one_rank);
    IB_RUN(test_build_without_mpi_refuses_launcher);
    return ib_test_summary();
}
