/*
 * signals.h — how `ibnet train` stops on SIGINT (Ctrl-C) and SIGTERM
 * (timeout, schedulers, container stops): the first signal asks the
 * trainer to stop after the current step and write its checkpoint; a
 * second one ends the process at once (exit 128 + signal), leaving the
 * previous checkpoint in place.
 *
 * No signal handler ever runs on a thread that computes.  oneDNN's JIT
 * kernels use memory below the stack pointer, which a handler running on
 * that thread's stack overwrites (glibc then aborts with "corrupted size
 * vs. prev_size" inside dnnl_sgemm).  So the signals are blocked in the
 * calling thread before any other thread exists (every OpenMP, oneDNN or
 * prefetch thread created later inherits the block) and one small thread
 * takes them with sigwait.  If that thread cannot be created, handlers
 * are installed with sigaction on an alternate stack (sigaltstack,
 * SA_ONSTACK) instead; they only set flags and call write/_exit, which are
 * async-signal-safe.
 */
#ifndef IB_CLI_SIGNALS_H
#define IB_CLI_SIGNALS_H

/* Exit code of a run stopped by SIGINT or SIGTERM after it saved its
 * checkpoint: continue it with --resume. */
#define IB_CLI_EXIT_STOPPED 3

/* Install the stop signals; *flag is set to 1 by the first one.  Call once,
 * from the main thread, before any other thread is created.  IBNET_STOP_SIGNALS=handler
 * in the environment forces the sigaction fallback (for its tests).
 * Returns 0, or -1 if neither way could be set up (the signals then keep
 * their default action). */
int ib_cli_stop_signals_install(volatile int *flag);

/* The signal that asked for the stop (SIGINT or SIGTERM), or 0. */
int ib_cli_stop_signal(void);

/* Its name for messages: "SIGINT", "SIGTERM" or "a signal". */
const char *ib_cli_stop_signal_name(void);

#endif /* IB_CLI_SIGNALS_H */
