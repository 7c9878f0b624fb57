/*
 * npz.c — arrays of a NumPy .npz, a zip archive of .npy members
 * (numpy.savez stores them, savez_compressed deflates them; both write
 * zip64 headers).  The zip container is read by libzip (Debian's
 * libzip-dev), which checks the CRCs; the member is read in growing
 * chunks, so memory follows the data actually decompressed, not a size
 * the archive claims.  A build without libzip says so.
 */
#include "info_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef IBNET_HAVE_LIBZIP
#include <zip.h>

#define NPZ_MAX_MEMBER ((size_t)1 << 36)

/* "x.npy, y.npy" (at most len bytes) of the members. */
static void list_members(zip_t *z, char *buf, size_t len)
{
    buf[0] = 0;
    zip_int64_t n = zip_get_num_entries(z, 0);
    size_t used = 0;
    for (zip_int64_t k = 0; k < n && used + 8 < len; k++) {
        const char *nm = zip_get_name(z, (zip_uint64_t)k, 0);
        if (!nm)
            continue;
        int w = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", nm);
        if (w < 0 || (size_t)w >= len - used) {
            snprintf(buf + (len > 4 ? len - 4 : 0), 4, "...");
            break;
        }
        used += (size_t)w;
    }
    if (!buf[0])
        snprintf(buf, len, "none");
}

ib_status ib_array_read_npz(const char *path, const char *name, ib_array **out)
{
    if (!out || !path || !name)
        return ib__error(IB_ERR_ARG, "ib_array_read_npz: NULL argument");
    *out = NULL;
    int code = 0;
    zip_t *z = zip_open(path, ZIP_RDONLY, &code);
    if (!z) {
        zip_error_t e;
        zip_error_init_with_code(&e, code);
        ib_status st = ib__error(code == ZIP_ER_NOENT || code == ZIP_ER_OPEN || code == ZIP_ER_READ ? IB_ERR_IO
                                                                                                     : IB_ERR_FORMAT,
                                 "%s: cannot open as a .npz (zip) archive: %s", path, zip_error_strerror(&e));
        zip_error_fini(&e);
        return st;
    }
    char member[512], what[1024];
    snprintf(member, sizeof member, "%s.npy", name);
    snprintf(what, sizeof what, "%s:%s", path, name);
    ib_status st = IB_OK;
    char *buf = NULL;
    zip_file_t *f = NULL;
    zip_int64_t idx = zip_name_locate(z, member, 0);
    if (idx < 0) {
        char names[512];
        list_members(z, names, sizeof names);
        st = ib__error(IB_ERR_ARG, "%s: no array '%s' in the archive (members: %s)", path, name, names);
        goto done;
    }
    f = zip_fopen_index(z, (zip_uint64_t)idx, 0);
    if (!f) {
        st = ib__error(IB_ERR_FORMAT, "%s: cannot read member %s: %s", path, member, zip_strerror(z));
        goto done;
    }
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            size_t want = cap ? cap * 2 : 65536;
            if (want > NPZ_MAX_MEMBER + 1)
                want = NPZ_MAX_MEMBER + 1;
            if (want <= n) {
                st = ib__error(IB_ERR_FORMAT, "%s: member %s is larger than %zu bytes", path, member, NPZ_MAX_MEMBER);
                goto done;
            }
            char *bigger = realloc(buf, want);
            if (!bigger) {
                st = ib__error(IB_ERR_NOMEM, "%s: out of memory reading member %s", path, member);
                goto done;
            }
            buf = bigger;
            cap = want;
        }
        zip_int64_t got = zip_fread(f, buf + n, cap - n);
        if (got < 0) {
            st = ib__error(IB_ERR_FORMAT, "%s: member %s is damaged: %s", path, member, zip_file_strerror(f));
            goto done;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    st = ib_array_parse_npy(buf, n, what, out);
done:
    if (f)
        zip_fclose(f);
    zip_discard(z);
    free(buf);
    return st;
}

#else

ib_status ib_array_read_npz(const char *path, const char *name, ib_array **out)
{
    (void)name;
    if (out)
        *out = NULL;
    return ib__error(IB_ERR_UNSUPPORTED,
                     "%s: this ibnet was built without libzip, which .npz files need (install libzip-dev and "
                     "rebuild, or save the arrays with numpy.save as .npy)",
                     path ? path : "npz");
}

#endif
