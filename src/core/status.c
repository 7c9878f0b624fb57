/*
 * status.c — status codes, the per-thread last-error message and the assert
 * hook.  A library call never takes the process down on bad input: it
 * returns a status and leaves a message here saying what and where.
 */
#include "internal.h"

static _Thread_local char last_error[1024];

const char *ib_strerror(ib_status s)
{
    switch (s) {
    case IB_OK: return "ok";
    case IB_ERR_ARG: return "invalid argument";
    case IB_ERR_SHAPE: return "shape mismatch";
    case IB_ERR_NOMEM: return "out of memory";
    case IB_ERR_IO: return "input/output error";
    case IB_ERR_FORMAT: return "corrupt or unrecognised file";
    case IB_ERR_MISMATCH: return "file does not match the model";
    case IB_ERR_STATE: return "call made in the wrong state";
    case IB_ERR_NUMERIC: return "non-finite number";
    case IB_ERR_UNSUPPORTED: return "unsupported";
    }
    return "unknown status";
}

const char *ib_last_error(void) { return last_error; }

ib_status ib__error(ib_status s, const char *fmt, ...)
{
    /* Formatted apart first: callers pass ib_last_error() to add context
     * to the message it holds, and vsnprintf may not read its output. */
    char buf[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    memcpy(last_error, buf, sizeof buf);
    return s;
}

static void default_assert_hook(const char *file, int line, const char *expr)
{
    fprintf(stderr, "ibnet: internal error at %s:%d: %s\n", file, line, expr);
    abort();
}

static ib_assert_hook assert_hook = default_assert_hook;

void ib_set_assert_hook(ib_assert_hook hook) { assert_hook = hook ? hook : default_assert_hook; }

void ib__assert_fail(const char *file, int line, const char *expr) { assert_hook(file, line, expr); }

const char *ib_version(void) { return IBNET_VERSION_STRING; }
