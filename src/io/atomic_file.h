/*
 * atomic_file.h — replace a file all at once or not at all.  A writer that
 * is killed, runs out of disk or fails half-way must never leave a torn
 * checkpoint or results file where a good one used to be: bytes go to
 * PATH.tmp.<pid>, which is flushed, fsync'ed and renamed over PATH (rename
 * is atomic within a directory), then the directory is fsync'ed so the
 * rename itself survives a power cut.  Any failure removes the temporary.
 */
#ifndef IB_ATOMIC_FILE_H
#define IB_ATOMIC_FILE_H

#include "ibnet.h"

#include <stdio.h>

typedef struct ib__atomic_file {
    FILE *f;    /* write here between open and commit/abort */
    char *path; /* the final name */
    char *tmp;  /* PATH.tmp.<pid> */
} ib__atomic_file;

/* Create the temporary beside path.  On failure nothing is left behind and
 * af needs no cleanup. */
ib_status ib__atomic_open(ib__atomic_file *af, const char *path);
/* Flush, fsync, close and rename over the final path; then fsync the
 * directory.  On any failure the temporary is removed, the old file at path
 * (if any) is untouched and a message naming the file is recorded.  af is
 * released either way. */
ib_status ib__atomic_commit(ib__atomic_file *af);
/* Give up: close and remove the temporary; the old file stays.  Safe on a
 * zeroed or already released af. */
void ib__atomic_abort(ib__atomic_file *af);

/* Remove the temporaries PATH.tmp.<pid> in dir (not below it) whose writer
 * is dead (kill(pid, 0) fails with ESRCH): what a writer killed mid-write
 * (SIGKILL, a second Ctrl-C, a power cut) leaves behind.  A temporary of a
 * live process, or of a PID since reused, stays.  Call it where no other
 * writer of this program can be at work in dir (the trainer holds the run
 * lock).  *removed (may be NULL) counts the files removed.  IB_ERR_IO if dir
 * cannot be read; a file that cannot be removed is skipped. */
ib_status ib__atomic_remove_stale(const char *dir, int *removed);

#endif /* IB_ATOMIC_FILE_H */
