/*
 * signals.c — see signals.h.  The stop request is two writes (which
 * signal, then the trainer's flag); everything that prints or saves runs
 * later on the main thread, outside any handler.
 */
#include "signals.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile int *stop_flag;
static volatile sig_atomic_t stop_sig, stop_count;

static void say(const char *s)
{
    /* write(2) is async-signal-safe; a short or failed write only loses a notice */
    ssize_t r = write(STDERR_FILENO, s, strlen(s));
    (void)r;
}

/* Called on the watcher thread or in a handler (both signals masked while
 * it runs), so stop_count needs no atomics. */
static void request_stop(int sig)
{
    if (stop_count++ > 0) {
        say(sig == SIGTERM ? "\nibnet: second stop signal (SIGTERM): exiting now; the last saved checkpoint is kept\n"
                           : "\nibnet: second stop signal (SIGINT): exiting now; the last saved checkpoint is kept\n");
        _exit(128 + sig);
    }
    stop_sig = sig;
    *stop_flag = 1;
    say(sig == SIGTERM ? "\nibnet: SIGTERM: stopping after this step and saving the run (send again to exit at once)\n"
                       : "\nibnet: SIGINT: stopping after this step and saving the run (Ctrl-C again to exit at once)\n");
}

static void on_signal(int sig)
{
    int saved = errno;
    request_stop(sig);
    errno = saved;
}

static void *watch(void *arg)
{
    const sigset_t *set = arg;
    for (;;) {
        int sig = 0;
        if (sigwait(set, &sig) == 0 && (sig == SIGINT || sig == SIGTERM))
            request_stop(sig);
    }
    return NULL;
}

static int install_handlers(const sigset_t *set)
{
    /* The alternate stack is per thread: this one is the main thread's,
     * where the kernel delivers a process signal when it can. */
    static char *alt;
    size_t size = 1 << 16;
    if (size < (size_t)SIGSTKSZ)
        size = (size_t)SIGSTKSZ;
    if (!alt && !(alt = malloc(size)))
        return -1;
    stack_t ss = {.ss_sp = alt, .ss_size = size, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0)
        return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_mask = *set; /* one stop request at a time */
    sa.sa_flags = SA_ONSTACK | SA_RESTART;
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0)
        return -1;
    return pthread_sigmask(SIG_UNBLOCK, set, NULL) == 0 ? 0 : -1;
}

int ib_cli_stop_signals_install(volatile int *flag)
{
    static sigset_t set; /* read by the watcher thread for the life of the process */
    stop_flag = flag;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    const char *mode = getenv("IBNET_STOP_SIGNALS");
    if (!(mode && strcmp(mode, "handler") == 0) && pthread_sigmask(SIG_BLOCK, &set, NULL) == 0) {
        pthread_attr_t attr;
        pthread_t t;
        int ok = pthread_attr_init(&attr) == 0;
        if (ok) {
            pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
            ok = pthread_create(&t, &attr, watch, &set) == 0;
            pthread_attr_destroy(&attr);
        }
        if (ok)
            return 0;
    }
    return install_handlers(&set);
}

int ib_cli_stop_signal(void) { return stop_sig; }

const char *ib_cli_stop_signal_name(void)
{
    return stop_sig == SIGINT ? "SIGINT" : stop_sig == SIGTERM ? "SIGTERM" : "a signal";
}
