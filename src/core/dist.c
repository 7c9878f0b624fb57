/*
 * dist.c — the one file that speaks MPI.  Everything else asks it for the
 * rank, the number of ranks and a few collectives (sums of float and
 * double vectors, a broadcast); a build without MPI (IBNET_HAVE_MPI unset)
 * compiles the same functions as a job of one rank, so no other file has
 * an #ifdef.
 *
 * MPI is joined only when a launcher started the process (mpirun, srun:
 * they set the variables in launched_ranks), so a plain `ibnet train`
 * of an MPI build neither pays for MPI_Init nor depends on a working
 * MPI installation.  Thread level FUNNELED: OpenMP workers and the
 * batcher's prefetch thread never call MPI; the main thread does.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>

#ifdef IBNET_HAVE_MPI
#include <mpi.h>
#include <pthread.h>
#include <signal.h>
#endif

static int d_rank = 0, d_size = 1;
static bool d_data_parallel = true;
#ifdef IBNET_HAVE_MPI
static bool d_joined = false; /* ib_dist_init called MPI_Init_thread */
#endif

/* Ranks the launcher says it started (0: no launcher).  Open MPI's
 * mpirun, PMIx launchers (srun --mpi=pmix) and MPICH's hydra. */
static int launched_ranks(void)
{
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS"};
    for (size_t k = 0; k < sizeof vars / sizeof vars[0]; k++) {
        const char *v = getenv(vars[k]);
        if (v && *v)
            return atoi(v);
    }
    /* PMIx sets PMIX_RANK without a size for every launched process */
    return getenv("PMIX_RANK") ? 1 : 0;
}

#ifdef IBNET_HAVE_MPI

ib_status ib_dist_init(int *argc, char ***argv)
{
    if (d_joined || launched_ranks() == 0)
        return IB_OK;
    int provided = 0, inited = 0, rc = MPI_SUCCESS;
    MPI_Initialized(&inited);
    if (!inited) {
        /* The threads MPI starts inherit this mask: with SIGINT and SIGTERM
         * blocked there, a stop signal reaches the main thread or the
         * thread the command set up for it (cli/signals.c) instead of
         * killing the process from an MPI thread. */
        sigset_t stop, old;
        sigemptyset(&stop);
        sigaddset(&stop, SIGINT);
        sigaddset(&stop, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &stop, &old);
        rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (rc != MPI_SUCCESS)
        return ib__error(IB_ERR_IO, "MPI_Init_thread failed");
    if (!inited && provided < MPI_THREAD_FUNNELED) {
        MPI_Finalize();
        return ib__error(IB_ERR_IO, "the MPI library gives thread level %d, below MPI_THREAD_FUNNELED", provided);
    }
    d_joined = !inited; /* a caller that initialised MPI itself finalises it too */
    MPI_Comm_rank(MPI_COMM_WORLD, &d_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d_size);
    /* errors end the job (the default); the trainer checks its own state */
    return IB_OK;
}

void ib_dist_finalize(void)
{
    if (d_joined) {
        MPI_Finalize();
        d_joined = false;
    }
    d_rank = 0;
    d_size = 1;
}

void ib_dist_abort(int code)
{
    int inited = 0;
    MPI_Initialized(&inited);
    if (inited && d_size > 1) {
        fflush(stdout);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, code);
    }
    exit(code);
}

const char *ib_dist_library(void)
{
    static char name[MPI_MAX_LIBRARY_VERSION_STRING];
    if (!name[0]) {
        int len = 0;
        MPI_Get_library_version(name, &len);
        /* the first line up to its first comma: "Open MPI v4.1.4" */
        for (int k = 0; k < len && name[k]; k++)
            if (name[k] == ',' || name[k] == '\n') {
                name[k] = 0;
                break;
            }
    }
    return name;
}

void ib__dist_sum_f32(float *x, int64_t n)
{
    for (int64_t done = 0; d_size > 1 && done < n;) { /* MPI counts are int */
        int k = n - done > (1 << 30) ? 1 << 30 : (int)(n - done);
        MPI_Allreduce(MPI_IN_PLACE, x + done, k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        done += k;
    }
}

void ib__dist_sum_f64(double *x, int n)
{
    if (d_size > 1 && n > 0)
        MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

void ib__dist_bcast(void *buf, int64_t bytes, int root)
{
    for (int64_t done = 0; d_size > 1 && done < bytes;) {
        int k = bytes - done > (1 << 30) ? 1 << 30 : (int)(bytes - done);
        MPI_Bcast((char *)buf + done, k, MPI_BYTE, root, MPI_COMM_WORLD);
        done += k;
    }
}

void ib_dist_barrier(void)
{
    if (d_size > 1)
        MPI_Barrier(MPI_COMM_WORLD);
}

struct ib_dist_counter {
    MPI_Win win;
    int64_t *base; /* rank 0: the counter */
    int64_t local; /* one rank: no window */
};

ib_status ib_dist_counter_new(ib_dist_counter **out)
{
    ib_dist_counter *c = calloc(1, sizeof *c);
    if (!c)
        return ib__error(IB_ERR_NOMEM, "out of memory");
    if (d_size > 1) {
        MPI_Aint bytes = d_rank == 0 ? (MPI_Aint)sizeof(int64_t) : 0;
        if (MPI_Win_allocate(bytes, sizeof(int64_t), MPI_INFO_NULL, MPI_COMM_WORLD, &c->base, &c->win) !=
            MPI_SUCCESS) {
            free(c);
            return ib__error(IB_ERR_IO, "MPI_Win_allocate failed");
        }
        if (d_rank == 0) {
            MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, c->win);
            *c->base = 0;
            MPI_Win_unlock(0, c->win);
        }
        MPI_Barrier(MPI_COMM_WORLD); /* the counter is 0 before anyone takes a task */
    }
    *out = c;
    return IB_OK;
}

int64_t ib_dist_counter_next(ib_dist_counter *c)
{
    if (d_size <= 1)
        return c->local++;
    int64_t one = 1, got = 0;
    MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, c->win);
    MPI_Fetch_and_op(&one, &got, MPI_INT64_T, 0, 0, MPI_SUM, c->win);
    MPI_Win_unlock(0, c->win);
    return got;
}

void ib_dist_counter_free(ib_dist_counter *c)
{
    if (!c)
        return;
    if (d_size > 1)
        MPI_Win_free(&c->win);
    free(c);
}

#else /* built without MPI: one rank */

void ib_dist_barrier(void) {}

struct ib_dist_counter {
    int64_t local;
};

ib_status ib_dist_counter_new(ib_dist_counter **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? IB_OK : ib__error(IB_ERR_NOMEM, "out of memory");
}

int64_t ib_dist_counter_next(ib_dist_counter *c) { return c->local++; }
void ib_dist_counter_free(ib_dist_counter *c) { free(c); }

ib_status ib_dist_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    int n = launched_ranks();
    if (n > 1)
        return ib__error(IB_ERR_ARG,
                         "started by an MPI launcher with %d ranks, but this ibnet was built without MPI (CMake option "
                         "IBNET_MPI, which needs libopenmpi-dev at build time); rebuild with MPI or run without mpirun",
                         n);
    return IB_OK;
}

void ib_dist_finalize(void) {}
void ib_dist_abort(int code) { exit(code); }
const char *ib_dist_library(void) { return NULL; }
void ib__dist_sum_f32(float *x, int64_t n)
{
    (void)x;
    (void)n;
}
void ib__dist_sum_f64(double *x, int n)
{
    (void)x;
    (void)n;
}
void ib__dist_bcast(void *buf, int64_t bytes, int root)
{
    (void)buf;
    (void)bytes;
    (void)root;
}

#endif

int ib_dist_rank(void) { return d_rank; }
int ib_dist_size(void) { return d_size; }
void ib_dist_set_data_parallel(bool on) { d_data_parallel = on; }
int ib__dist_dp_rank(void) { return d_data_parallel ? d_rank : 0; }
int ib__dist_dp_size(void) { return d_data_parallel ? d_size : 1; }
