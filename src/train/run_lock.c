/*
 * run_lock.c — see run_lock.h.  flock (not fcntl locks) because an fcntl
 * lock is lost when any descriptor of the file in the process is closed,
 * and a flock lock belongs to the one open file description we keep.
 */
#include "train/run_lock.h"

#include "core/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

/* The PID the holder wrote, or 0 if none is there yet (it writes it just
 * after taking the lock). */
static long holder_pid(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    char *end;
    long pid = strtol(buf, &end, 10);
    return end != buf && pid > 0 ? pid : 0;
}

ib_status ib__run_lock_acquire(const char *dir, ib__run_lock *lock)
{
    lock->fd = -1;
    lock->held = false;
    size_t n = strlen(dir) + sizeof "/" IB_RUN_LOCK_FILE;
    char *path = malloc(n);
    if (!path)
        return ib__error(IB_ERR_NOMEM, "out of memory");
    snprintf(path, n, "%s/%s", dir, IB_RUN_LOCK_FILE);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
        ib_status s = ib__error(IB_ERR_IO, "cannot create the lock file %s: %s", path, strerror(errno));
        free(path);
        return s;
    }
    int r;
    while ((r = flock(fd, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR)
        ;
    if (r != 0) {
        int err = errno;
        ib_status s;
        if (err == EWOULDBLOCK) {
            long pid = holder_pid(fd);
            char who[48] = "another process";
            if (pid > 0)
                snprintf(who, sizeof who, "process %ld", pid);
            s = ib__error(IB_ERR_STATE,
                          "%s is in use: %s holds its lock (%s) and may be training there; wait for it to end or "
                          "choose another --out",
                          dir, who, path);
        } else {
            s = ib__error(IB_ERR_IO, "cannot lock %s: %s", path, strerror(err));
        }
        close(fd);
        free(path);
        return s;
    }
    /* Name this process for the message another run gets. */
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        /* informational only: the lock itself is held */
    }
    free(path);
    lock->fd = fd;
    lock->held = true;
    return IB_OK;
}

void ib__run_lock_release(ib__run_lock *lock)
{
    if (!lock || !lock->held)
        return;
    close(lock->fd); /* drops the flock */
    lock->fd = -1;
    lock->held = false;
}
