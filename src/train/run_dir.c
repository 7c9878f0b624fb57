/*
 * run_dir.c — the run directory as a small type: the paths of its files,
 * atomic replacement of a file (config.json, summary.json), appending a
 * line to metrics.jsonl with a flush, and cutting metrics.jsonl back to
 * the epochs a resumed checkpoint holds.  What goes into the files is
 * records.c's business.
 */
#include "train_internal.h"
#include "../io/atomic_file.h"

#include <cjson/cJSON.h>
#include <errno.h>

void ib__run_dir_init(ib__run_dir *d, const char *dir)
{
    memset(d, 0, sizeof *d);
    snprintf(d->dir, sizeof d->dir, "%s", dir);
}

const char *ib__run_dir_file(ib__run_dir *d, const char *name)
{
    snprintf(d->path, sizeof d->path, "%s/%s", d->dir, name);
    return d->path;
}

/* Only the writing rank (rank 0 of a data-parallel run) changes the
 * directory; the others' writes succeed without doing anything. */
ib_status ib__run_dir_create(ib__run_dir *d) { return ib__dp_writer() ? ib__mkdirs(d->dir) : IB_OK; }

ib_status ib__run_dir_write(ib__run_dir *d, const char *name, const char *text)
{
    if (!ib__dp_writer())
        return IB_OK;
    const char *path = ib__run_dir_file(d, name);
    ib__atomic_file af;
    ib_status s = ib__atomic_open(&af, path);
    if (s != IB_OK)
        return s;
    if (fputs(text, af.f) == EOF) {
        ib__atomic_abort(&af);
        return ib__error(IB_ERR_IO, "cannot write %s", path);
    }
    return ib__atomic_commit(&af);
}

char *ib__run_dir_read(ib__run_dir *d, const char *name)
{
    return ib__read_file(ib__run_dir_file(d, name), (size_t)1 << 26, NULL);
}

ib_status ib__run_dir_append_line(ib__run_dir *d, const char *name, const char *line)
{
    if (!ib__dp_writer())
        return IB_OK;
    const char *p = ib__run_dir_file(d, name);
    FILE *f = fopen(p, "a");
    if (!f)
        return ib__error(IB_ERR_IO, "cannot open %s: %s", p, strerror(errno));
    bool ok = fprintf(f, "%s\n", line) > 0 && fflush(f) == 0;
    ok = fclose(f) == 0 && ok;
    return ok ? IB_OK : ib__error(IB_ERR_IO, "cannot write %s", p);
}

/* On resume, keep only the lines of epochs <= epoch (a crash may have
 * logged an epoch whose checkpoint was never written). */
ib_status ib__run_dir_truncate_jsonl(ib__run_dir *d, const char *name, int64_t epoch)
{
    if (!ib__dp_writer())
        return IB_OK;
    char *text = ib__run_dir_read(d, name);
    if (!text)
        return IB_OK;
    size_t cap = strlen(text) + 1, used = 0;
    char *keep = malloc(cap);
    if (!keep) {
        free(text);
        return ib__error(IB_ERR_NOMEM, "out of memory");
    }
    keep[0] = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "epoch");
        if (cJSON_IsNumber(e) && e->valuedouble <= (double)epoch)
            used += (size_t)snprintf(keep + used, cap - used, "%s\n", line);
        cJSON_Delete(o);
    }
    ib_status s = ib__run_dir_write(d, name, keep);
    free(keep);
    free(text);
    return s;
}
