/*
 * cairo_api.c — loads libcairo.so.2 at the first chart (see cairo_api.h).
 * RTLD_LOCAL: cairo's symbols stay out of the process's global namespace;
 * the library stays loaded until exit, as a linked one would.
 */
#ifdef IBNET_HAVE_CAIRO
#include "cairo_api.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ib__cairo_api api;
static const ib__cairo_api *loaded;
static char failure[256];
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* IBNET_CAIRO_LIBRARY: another file to load (a cairo outside the loader's
 * path; the tests name a missing one). */
static void load(void)
{
    const char *name = getenv("IBNET_CAIRO_LIBRARY");
    if (!name || !*name)
        name = "libcairo.so.2";
    void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *e = dlerror();
        snprintf(failure, sizeof failure, "%s", e ? e : name);
        return;
    }
    /* dlsym gives a void *; the conversion to a function pointer is what
     * POSIX specifies for it (memcpy keeps ISO C's pedantic mode quiet). */
#define IB__CAIRO_LOAD(f)                                                                                              \
    {                                                                                                                  \
        void *sym = dlsym(lib, "cairo_" #f);                                                                           \
        if (!sym) {                                                                                                    \
            snprintf(failure, sizeof failure, "%s has no cairo_%s", name, #f);                                    \
            dlclose(lib);                                                                                              \
            return;                                                                                                    \
        }                                                                                                              \
        memcpy(&api.f, &sym, sizeof sym);                                                                              \
    }
    IB__CAIRO_FUNCTIONS(IB__CAIRO_LOAD)
#undef IB__CAIRO_LOAD
    loaded = &api;
}

const ib__cairo_api *ib__cairo(const char **why)
{
    pthread_once(&once, load);
    if (!loaded && why)
        *why = failure;
    return loaded;
}

#else
typedef int ib__cairo_api_absent; /* built without cairo: nothing to load (ISO C wants a declaration) */
#endif
