/*
 * wait_policy.c — how ibnet's OpenMP threads wait, chosen before any work.
 *
 * libgomp's threads spin at every barrier by default.  On idle cores that is
 * the fastest way to wait (measured in bench/README.md: passive waiting
 * costs 3-18 % of a training step there, up to half on LeNet-VIB-cells with
 * its many small parallel regions).  When other processes share the cores,
 * a spinning thread burns the time slice its partner needs: measured on the
 * 2-core machine under a load of 12, a 2-thread VIB-MLP step ran at 620
 * samples/s spinning, 2,777 waiting passively and 3,050 on one thread.
 *
 * libgomp reads OMP_WAIT_POLICY once, when it is loaded, before main().  So
 * the choice is made here and applied by running the same program again with
 * the variable set (execv keeps the pid, the arguments and the environment).
 * The wait policy changes when threads sleep, never what they compute: the
 * results are the same bits (tests/test_wait_policy.c).
 *
 * IBNET_WAIT=auto (the default): passive when the 1-minute load average plus
 * the threads this run asks for exceeds the cores by more than half a core,
 * else libgomp's default.  IBNET_WAIT=active or passive forces it.  A user's
 * own OMP_WAIT_POLICY or GOMP_SPINCOUNT is always left alone, and so is a
 * process under an MPI launcher (ranks usually run one thread each).
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE
#endif
#include "commands.h"
#include "ibnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Set in the re-run process, so the choice is made once and can be shown. */
#define DECIDED_VAR "IBNET_WAIT_DECIDED"

/* The thread count the command line or IBNET_THREADS asks for; 0 = all cores. */
static long requested_threads(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            return strtol(argv[i + 1], NULL, 10);
        if (strncmp(argv[i], "--threads=", 10) == 0)
            return strtol(argv[i] + 10, NULL, 10);
    }
    const char *env = getenv("IBNET_THREADS");
    return env && *env ? strtol(env, NULL, 10) : 0;
}

static bool under_mpi(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK") || getenv("SLURM_STEP_ID");
}

int ib_cli_wait_policy(int argc, char **argv)
{
    const char *mode = getenv("IBNET_WAIT");
    if (!mode || !*mode)
        mode = "auto";
    if (strcmp(mode, "auto") != 0 && strcmp(mode, "active") != 0 && strcmp(mode, "passive") != 0) {
        fprintf(stderr, "ibnet: IBNET_WAIT='%s' is not one of auto, active, passive\n", mode);
        return 2;
    }
    if (getenv(DECIDED_VAR) || getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT") || under_mpi())
        return 0;
    if (strcmp(mode, "active") == 0)
        return 0;
    char why[96];
    if (strcmp(mode, "auto") == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        long threads = requested_threads(argc, argv);
        if (threads <= 0 || threads > cores)
            threads = cores;
        double load = 0;
        if (threads <= 1 || getloadavg(&load, 1) != 1 || load + (double)threads <= (double)cores + 0.5)
            return 0;
        snprintf(why, sizeof why, "auto: load %.2f with %ld threads on %ld cores", load, threads, cores);
    } else {
        snprintf(why, sizeof why, "IBNET_WAIT=passive");
    }
    setenv(DECIDED_VAR, why, 1);
    /* --version and --help only say what a run would get: not worth a second start */
    if (argc > 1 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version") || !strcmp(argv[1], "--help") ||
                     !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")))
        return 0;
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    execv("/proc/self/exe", argv);
    /* no /proc (or exec refused): go on with libgomp's default */
    unsetenv("OMP_WAIT_POLICY");
    unsetenv(DECIDED_VAR);
    return 0;
}

const char *ib_cli_wait_policy_text(void)
{
    const char *decided = getenv(DECIDED_VAR);
    const char *user = getenv("OMP_WAIT_POLICY");
    static char text[160];
    if (decided)
        snprintf(text, sizeof text, "passive (%s)", decided);
    else if (user)
        snprintf(text, sizeof text, "%s (OMP_WAIT_POLICY)", user);
    else if (getenv("GOMP_SPINCOUNT"))
        snprintf(text, sizeof text, "spin count %s (GOMP_SPINCOUNT)", getenv("GOMP_SPINCOUNT"));
    else
        snprintf(text, sizeof text, "active (libgomp's default spinning)");
    return text;
}
