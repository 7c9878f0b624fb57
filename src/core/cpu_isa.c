/*
 * cpu_isa.c — which vector units ibnet's own kernels use, decided once at
 * run time.  The build targets AVX2+FMA so that one binary runs on any
 * x86-64 CPU of the last decade; a kernel that has an AVX-512 path takes
 * it only where the CPU reports AVX-512 F, DQ, BW and VL (every AVX-512
 * CPU since Skylake-X; the vector math of simd_vec.h uses DQ's float
 * logic and mask moves, so F alone, as on Xeon Phi, does not count).  The
 * AVX-512 paths do the same float32 operations per element in the same
 * order as the AVX2 ones, so the choice changes speed, never results
 * (tests/test_optim.c and tests/test_vmath_avx512.c compare the two bit for
 * bit).  IBNET_ISA=avx2 forces the AVX2 paths: to measure the difference,
 * and for CPUs whose clock drops when 512-bit units run.
 */
#include "core/internal.h"

#include <stdlib.h>
#include <string.h>

/* -1 unknown, 0 AVX2 paths, 1 AVX-512 paths */
static int isa_wide = -1;

static bool cpu_has_avx512(void)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#else
    return false;
#endif
}

static int detect(void)
{
    const char *env = getenv("IBNET_ISA");
    if (env && strcmp(env, "avx2") == 0)
        return 0;
    return cpu_has_avx512() ? 1 : 0;
}

bool ib__cpu_avx512(void)
{
    int v = __atomic_load_n(&isa_wide, __ATOMIC_RELAXED);
    if (v < 0) { /* a race only stores the same answer twice */
        v = detect();
        __atomic_store_n(&isa_wide, v, __ATOMIC_RELAXED);
    }
    return v == 1;
}

bool ib__cpu_has_avx512(void) { return cpu_has_avx512(); }

void ib__cpu_force_avx2(bool on)
{
    __atomic_store_n(&isa_wide, on ? 0 : detect(), __ATOMIC_RELAXED);
}
