/*
 * test_kernel_boundary.c — the layering between core, ops and kernels, as
 * src/kernels/kernels.h states it: no file of src/core/ includes anything
 * of src/kernels/ (the kernels build on core, not the other way round);
 * an op reaches the kernels only through the backend table, so the only
 * header of src/kernels/ a file of src/ops/ includes is kernels.h, and no
 * op uses vector intrinsics itself (those belong in a backend).  Read from
 * the source tree, so a new include or intrinsic fails here.
 */
#include "test.h"

#include <dirent.h>

/* Each line of the .c and .h files of src/<dir> containing `needle` and
 * for which allowed(line) is false, printed; returns how many. */
static int offending_lines(const char *dir, const char *needle, bool (*allowed)(const char *line), int *files)
{
    char root[512], path[1024], line[2048], rel[64];
    snprintf(rel, sizeof rel, "src/%s", dir);
    DIR *d = opendir(ib_test_path(rel, root, sizeof root));
    CHECK_MSG(d != NULL, "cannot open %s", root);
    int bad = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 3 || (strcmp(e->d_name + len - 2, ".c") != 0 && strcmp(e->d_name + len - 2, ".h") != 0))
            continue;
        snprintf(path, sizeof path, "%s/%s", root, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        (*files)++;
        for (int ln = 1; fgets(line, sizeof line, f); ln++)
            if (strstr(line, needle) && !(allowed && allowed(line))) {
                fprintf(stderr, "  src/%s/%s:%d: %s", dir, e->d_name, ln, line);
                bad++;
            }
        fclose(f);
    }
    closedir(d);
    return bad;
}

static bool is_comment(const char *line)
{
    while (*line == ' ')
        line++;
    return line[0] == '*' || (line[0] == '/' && (line[1] == '*' || line[1] == '/'));
}

static bool kernels_h_include(const char *line)
{
    return is_comment(line) || strstr(line, "#include \"../kernels/kernels.h\"") != NULL;
}

static void test_core_includes_nothing_of_kernels(void)
{
    int files = 0;
    CHECK_EQ_INT(offending_lines("core", "kernels/", is_comment, &files), 0);
    CHECK(files >= 5);
}

static void test_ops_reach_kernels_through_the_table(void)
{
    int files = 0, bad = 0;
    bad += offending_lines("ops", "kernels/", kernels_h_include, &files);
    bad += offending_lines("ops", "immintrin", NULL, &files);
    bad += offending_lines("ops", "_mm256_", NULL, &files);
    bad += offending_lines("ops", "_mm512_", NULL, &files);
    CHECK_EQ_INT(bad, 0);
    CHECK(files >= 40); /* four scans of the op files */
}

int main(void)
{
    IB_RUN(test_core_includes_nothing_of_kernels);
    IB_RUN(test_ops_reach_kernels_through_the_table);
    return ib_test_summary();
}
