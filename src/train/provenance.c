/*
 * provenance.c — the provenance block of config.json (see provenance.h).
 * The commit is `git describe` of the source tree when the library was
 * built (cmake/git_commit.cmake writes ib_commit.h at every build); a
 * build outside a git checkout records the version instead.
 */
#include "../core/internal.h"
#include "provenance.h"

#include <cblas.h>
#include <stdlib.h>

#include "ib_commit.h"

#ifdef IBNET_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

cJSON *ib__provenance_json(void)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "ibnet", ib_version());
    cJSON_AddStringToObject(o, "commit", IBNET_COMMIT[0] ? IBNET_COMMIT : ib_version());
    cJSON_AddNumberToObject(o, "threads", ib_get_threads()); /* of each rank */
    /* the data-parallel ranks of the job that wrote this (1: one process,
     * and every run of a sweep); a resume may use another count */
    cJSON_AddNumberToObject(o, "ranks", ib__dist_dp_size());
    const char *mpi = ib_dist_library();
    cJSON_AddStringToObject(o, "mpi", ib__dist_dp_size() > 1 && mpi ? mpi : "none");
    /* how idle threads waited (the ibnet CLI sets OMP_WAIT_POLICY itself
     * when other work shares the cores, and says why in IBNET_WAIT_DECIDED):
     * it changes the speed, never the numbers */
    const char *wait = getenv("OMP_WAIT_POLICY");
    cJSON_AddStringToObject(o, "omp_wait_policy", wait && *wait ? wait : "default");
    const char *why = getenv("IBNET_WAIT_DECIDED");
    if (why && *why)
        cJSON_AddStringToObject(o, "omp_wait_policy_reason", why);
    /* "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64":
     * the version and the kernel set it picked on this CPU */
    const char *blas = openblas_get_config();
    cJSON_AddStringToObject(o, "openblas", blas ? blas : "unknown");
#ifdef IBNET_HAVE_DNNL
    const dnnl_version_t *v = dnnl_version();
    char dnnl[64];
    snprintf(dnnl, sizeof dnnl, "%d.%d.%d", v->major, v->minor, v->patch);
    cJSON_AddStringToObject(o, "onednn", dnnl);
#else
    cJSON_AddStringToObject(o, "onednn", "none");
#endif
    cJSON_AddStringToObject(o, "cjson", cJSON_Version());
    return o;
}
