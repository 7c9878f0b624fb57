/*
 * allreduce.c — the one collective of a data-parallel step: the sum of a
 * gradient buffer over the ranks (ib__dist_sum_f32, MPI_Allreduce), timed
 * for the gradient sizes of the built-in workloads.  Run under mpirun:
 *   mpirun -np 2 build/bench_allreduce
 * Prints one line per size (rank 0): floats, MB, best seconds per call,
 * GB/s of the buffer.  Without a launcher it times the one-rank no-op.
 */
#include "core/internal.h"
#include "timing.h"

static float *buf;
static int64_t n_now;
static void once(void *arg)
{
    (void)arg;
    ib__dist_sum_f32(buf, n_now);
}

int main(int argc, char **argv)
{
    if (ib_dist_init(&argc, &argv) != IB_OK) {
        fprintf(stderr, "bench_allreduce: %s\n", ib_last_error());
        return 2;
    }
    /* vib-mlp 2,380,810; resnet20 269,722 parameters; and a few between */
    static const int64_t sizes[] = {1000, 269722, 1000000, 2380810};
    buf = malloc(2380810 * sizeof *buf);
    for (int64_t k = 0; k < 2380810; k++)
        buf[k] = 1e-3f;
    if (ib_dist_rank() == 0)
        printf("ranks %d, %s\n", ib_dist_size(), ib_dist_library() ? ib_dist_library() : "no MPI");
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        n_now = sizes[i];
        double t = time_best(once, NULL, 2, 10, 5);
        if (ib_dist_rank() == 0)
            printf("%9lld floats %7.2f MB  %9.6f s  %6.2f GB/s\n", (long long)n_now, 4e-6 * (double)n_now, t,
                   4e-9 * (double)n_now / t);
    }
    free(buf);
    ib_dist_finalize();
    return 0;
}
