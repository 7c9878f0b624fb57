/*
 * run_lock.h — one run per run directory.  Two `ibnet train` writing into
 * the same directory would interleave metrics.jsonl and overwrite each
 * other's checkpoints, so a run holds an exclusive flock on DIR/.lock for
 * as long as it may write there.  The kernel drops the lock when its
 * holder exits or is killed, so a lock file left by a dead process is no
 * obstacle; the PID written into the file only names the holder in the
 * message another run gets.
 */
#ifndef IB_RUN_LOCK_H
#define IB_RUN_LOCK_H

#include "ibnet.h"

#include <stdbool.h>

#define IB_RUN_LOCK_FILE ".lock"

typedef struct ib__run_lock {
    int fd; /* the open lock file while held; -1 (or 0 in a zeroed struct, see held) */
    bool held;
} ib__run_lock;

/* Take the lock of the existing directory dir without waiting.  IB_OK and
 * lock->held; IB_ERR_STATE with a message naming the PID that holds it if
 * another process does; IB_ERR_IO if the lock file cannot be created. */
ib_status ib__run_lock_acquire(const char *dir, ib__run_lock *lock);
/* Drop the lock (the file stays: removing it would race with a process
 * that has just opened it).  Safe on a lock not held. */
void ib__run_lock_release(ib__run_lock *lock);

#endif /* IB_RUN_LOCK_H */
