/*
 * atomic_file.c — see atomic_file.h.  POSIX only (open/fsync/rename); the
 * temporary lives in the same directory as the target because rename is
 * only atomic within one filesystem.
 */
#include "io/atomic_file.h"

#include "core/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

static void release(ib__atomic_file *af)
{
    free(af->path);
    free(af->tmp);
    af->path = af->tmp = NULL;
    af->f = NULL;
}

ib_status ib__atomic_open(ib__atomic_file *af, const char *path)
{
    if (!af)
        return ib__error(IB_ERR_ARG, "ib__atomic_open: NULL handle");
    memset(af, 0, sizeof *af);
    if (!path || !*path)
        return ib__error(IB_ERR_ARG, "cannot write a file with an empty name");
    size_t n = strlen(path);
    af->path = malloc(n + 1);
    af->tmp = malloc(n + 32);
    if (!af->path || !af->tmp) {
        release(af);
        return ib__error(IB_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(af->path, path, n + 1);
    snprintf(af->tmp, n + 32, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(af->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        ib_status s = ib__error(IB_ERR_IO, "%s: cannot create temporary file %s: %s", path, af->tmp, strerror(errno));
        release(af);
        return s;
    }
    af->f = fdopen(fd, "wb");
    if (!af->f) {
        ib_status s = ib__error(IB_ERR_IO, "%s: cannot open temporary file %s: %s", path, af->tmp, strerror(errno));
        close(fd);
        unlink(af->tmp);
        release(af);
        return s;
    }
    return IB_OK;
}

void ib__atomic_abort(ib__atomic_file *af)
{
    if (!af)
        return;
    if (af->f)
        fclose(af->f);
    if (af->tmp)
        unlink(af->tmp);
    release(af);
}

/* fsync the directory holding path, so the rename is durable. */
static ib_status sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash)
        dir = strdup(".");
    else if (slash == path)
        dir = strdup("/");
    else
        dir = strndup(path, (size_t)(slash - path));
    if (!dir)
        return ib__error(IB_ERR_NOMEM, "%s: out of memory", path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ib_status s = IB_OK;
    if (fd >= 0) {
        /* Some filesystems cannot fsync a directory (EINVAL); the rename
         * is then as durable as that filesystem allows. */
        if (fsync(fd) != 0 && errno != EINVAL && errno != ENOTSUP)
            s = ib__error(IB_ERR_IO, "%s: written, but fsync of directory %s failed: %s", path, dir,
                          strerror(errno));
        close(fd);
    }
    free(dir);
    return s;
}

ib_status ib__atomic_commit(ib__atomic_file *af)
{
    if (!af || !af->f)
        return ib__error(IB_ERR_ARG, "ib__atomic_commit: file not open");
    int err = 0;
    const char *step = NULL;
    if (ferror(af->f)) {
        err = EIO;
        step = "write";
    }
    if (!step && fflush(af->f) != 0) {
        err = errno;
        step = "write";
    }
    if (!step && fsync(fileno(af->f)) != 0) {
        err = errno;
        step = "fsync";
    }
    /* fclose can report a deferred write error too. */
    int closed = fclose(af->f);
    af->f = NULL;
    if (!step && closed != 0) {
        err = errno;
        step = "close";
    }
    if (!step && rename(af->tmp, af->path) != 0) {
        err = errno;
        step = "rename";
    }
    if (step) {
        ib_status s = ib__error(IB_ERR_IO, "%s: %s of temporary file %s failed: %s (the old file, if any, is unchanged)",
                                af->path, step, af->tmp, strerror(err));
        unlink(af->tmp);
        release(af);
        return s;
    }
    ib_status s = sync_dir(af->path);
    release(af);
    return s;
}

/* The writer's PID if name is "<something>.tmp.<digits>", else 0. */
static long temp_writer(const char *name)
{
    const char *t = strstr(name, ".tmp.");
    if (!t || t == name)
        return 0;
    for (const char *next; (next = strstr(t + 1, ".tmp.")) != NULL;)
        t = next; /* the last one: "a.tmp.1.tmp.2" is a temporary of "a.tmp.1" */
    const char *d = t + 5;
    if (!*d || strlen(d) > 10)
        return 0;
    long pid = 0;
    for (; *d; d++) {
        if (*d < '0' || *d > '9')
            return 0;
        pid = pid * 10 + (*d - '0');
    }
    return pid;
}

ib_status ib__atomic_remove_stale(const char *dir, int *removed)
{
    if (removed)
        *removed = 0;
    DIR *dp = opendir(dir);
    if (!dp)
        return ib__error(IB_ERR_IO, "cannot read directory %s: %s", dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        long pid = temp_writer(e->d_name);
        if (pid <= 0 || pid == (long)getpid() || pid > (long)INT32_MAX)
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue; /* alive, or another user's (EPERM): not ours to judge */
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        char *path = malloc(n);
        if (!path)
            break;
        snprintf(path, n, "%s/%s", dir, e->d_name);
        if (unlink(path) == 0 && removed)
            (*removed)++;
        free(path);
    }
    closedir(dp);
    return IB_OK;
}

ib_status ib_file_write_atomic(const char *path, const void *data, size_t n)
{
    if (!path || (!data && n))
        return ib__error(IB_ERR_ARG, "ib_file_write_atomic: NULL path or data");
    ib__atomic_file af;
    ib_status s = ib__atomic_open(&af, path);
    if (s != IB_OK)
        return s;
    if (n && fwrite(data, 1, n, af.f) != n) {
        ib__atomic_abort(&af);
        return ib__error(IB_ERR_IO, "cannot write %s", path);
    }
    return ib__atomic_commit(&af);
}
