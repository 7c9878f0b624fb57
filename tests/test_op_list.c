/*
 * test_op_list.c — every op is in the one list (src/ops/ops.def) and has a
 * check of its kind: a finite-difference gradient check for a
 * differentiable op, an exact-value check for one without a gradient or
 * with a straight-through one, in the test the list names.
 *
 * How coverage is seen, not only declared: each test executable named in
 * the list is run again with IBNET_OP_COVERAGE set, and its test library
 * writes down the ops it has really checked (ib_test_gradcheck records the
 * ops on the gradient path of each passed check; exact checks call
 * ib_test_exact_checked).  An op whose named test records no check of its
 * kind fails here, and so does an op of src/ops/ missing from the list.
 * test_an_unchecked_op_fails shows the first on a list with an extra op.
 */
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <sys/wait.h>

typedef enum { FD, EXACT } check_kind;
static const char *kind_word[] = {"fd", "exact"};

typedef struct op_entry {
    const char *name, *file;
    check_kind check;
    const char *test;
} op_entry;

static const op_entry op_list[] = {
#define IB_OP(name, file, check, test) {#name, #file, check, #test},
#include "ops/ops.def"
#undef IB_OP
};
static const int n_ops = (int)(sizeof op_list / sizeof op_list[0]);

/* What the tests recorded: "test kind op" triples. */
typedef struct coverage {
    int n, cap;
    char (*rows)[3][64];
} coverage;

static void coverage_add(coverage *c, const char *test, const char *kind, const char *op)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        c->rows = realloc(c->rows, (size_t)c->cap * sizeof *c->rows);
        CHECK(c->rows != NULL);
    }
    snprintf(c->rows[c->n][0], 64, "%s", test);
    snprintf(c->rows[c->n][1], 64, "%s", kind);
    snprintf(c->rows[c->n][2], 64, "%s", op);
    c->n++;
}

static bool coverage_has(const coverage *c, const char *test, const char *kind, const char *op)
{
    for (int k = 0; k < c->n; k++)
        if (!strcmp(c->rows[k][0], test) && !strcmp(c->rows[k][1], kind) && !strcmp(c->rows[k][2], op))
            return true;
    return false;
}

/* The ops of `list` whose named test recorded no check of the listed kind
 * (each printed when `say`); returns how many. */
static int ops_without_check(const op_entry *list, int n, const coverage *c, bool say)
{
    int missing = 0;
    for (int k = 0; k < n; k++)
        if (!coverage_has(c, list[k].test, kind_word[list[k].check], list[k].name)) {
            if (say)
                fprintf(stderr, "  op '%s' (src/ops/%s) has no %s check in tests/%s.c\n", list[k].name, list[k].file,
                        list[k].check == FD ? "finite-difference gradient" : "exact-value", list[k].test);
            missing++;
        }
    return missing;
}

/* Run every test the list names with IBNET_OP_COVERAGE and read back what
 * each recorded (once per process: the runs take a few seconds). */
static const coverage *recorded(void)
{
    static coverage c;
    static bool done;
    if (done)
        return &c;
    done = true;
    const char *build = getenv("IBNET_BUILD_DIR");
    CHECK_MSG(build != NULL, "IBNET_BUILD_DIR is not set (run through ctest)");
    char file[512], cmd[2048];
    snprintf(file, sizeof file, "%s/op-coverage.txt", ib_test_tmpdir());
    for (int k = 0; k < n_ops; k++) {
        bool seen = false;
        for (int j = 0; j < k; j++)
            seen |= strcmp(op_list[j].test, op_list[k].test) == 0;
        if (seen)
            continue;
        remove(file);
        snprintf(cmd, sizeof cmd, "IBNET_OP_COVERAGE='%s' '%s/%s' > /dev/null 2>&1", file, build, op_list[k].test);
        int rc = system(cmd);
        CHECK_MSG(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "%s failed (status %d): run it for details",
                  op_list[k].test, rc);
        FILE *f = fopen(file, "r");
        CHECK_MSG(f != NULL, "%s wrote no coverage to %s: %s", op_list[k].test, file, strerror(errno));
        char kind[64], op[64];
        while (fscanf(f, "%63s %63s", kind, op) == 2)
            coverage_add(&c, op_list[k].test, kind, op);
        fclose(f);
    }
    return &c;
}

static void test_every_listed_op_has_its_check(void)
{
    const coverage *c = recorded();
    CHECK_EQ_INT(ops_without_check(op_list, n_ops, c, true), 0);
}

/* The demonstration the list's promise rests on: an op added to the list
 * without a check, or listed with the other kind of check, is reported. */
static void test_an_unchecked_op_fails(void)
{
    const coverage *c = recorded();
    op_entry longer[128];
    CHECK(n_ops + 2 <= 128);
    memcpy(longer, op_list, (size_t)n_ops * sizeof *op_list);
    longer[n_ops] = (op_entry){"fake_op", "fake.c", FD, "test_core"};
    CHECK_EQ_INT(ops_without_check(longer, n_ops + 1, c, false), 1);
    /* relu is checked by finite differences, not by exact values */
    longer[n_ops] = (op_entry){"relu", "activation.c", EXACT, "test_core"};
    CHECK_EQ_INT(ops_without_check(longer, n_ops + 1, c, false), 1);
    /* and its check lives in test_core, not elsewhere */
    longer[n_ops] = (op_entry){"relu", "activation.c", FD, "test_grad_conv"};
    CHECK_EQ_INT(ops_without_check(longer, n_ops + 1, c, false), 1);
}

/* Every `.name = "..."` of an ib_op in src/ops/<file>.c is listed with that
 * file, and every listed op is defined once, in the file it names. */
static void test_every_op_is_listed(void)
{
    char dir[512], path[1024], line[1024];
    int found[256] = {0}, problems = 0, files = 0;
    CHECK(n_ops <= 256);
    DIR *d = opendir(ib_test_path("src/ops", dir, sizeof dir));
    CHECK_MSG(d != NULL, "cannot open %s", dir);
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 3 || strcmp(e->d_name + len - 2, ".c") != 0)
            continue;
        files++;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) {
            fprintf(stderr, "  cannot open %s\n", path);
            problems++;
            continue;
        }
        while (fgets(line, sizeof line, f)) {
            const char *at = strstr(line, ".name = \"");
            char name[64];
            if (!at || !strstr(line, "ib_op") || sscanf(at + 9, "%63[a-z0-9_]", name) != 1)
                continue;
            int k = 0;
            while (k < n_ops && strcmp(op_list[k].name, name) != 0)
                k++;
            if (k == n_ops) {
                fprintf(stderr, "  op '%s' of src/ops/%s is not in src/ops/ops.def\n", name, e->d_name);
                problems++;
            } else if (strcmp(op_list[k].file, e->d_name) != 0) {
                fprintf(stderr, "  op '%s' is defined in src/ops/%s, ops.def says %s\n", name, e->d_name,
                        op_list[k].file);
                problems++;
            } else {
                found[k]++;
            }
        }
        fclose(f);
    }
    closedir(d);
    for (int k = 0; k < n_ops; k++)
        if (found[k] != 1) {
            fprintf(stderr, "  ops.def lists '%s' in %s, which defines it %d times\n", op_list[k].name,
                    op_list[k].file, found[k]);
            problems++;
        }
    CHECK(files >= 10); /* the scan really read the op files */
    CHECK_EQ_INT(problems, 0);
}

int main(void)
{
    IB_RUN(test_every_op_is_listed);
    IB_RUN(test_every_listed_op_has_its_check);
    IB_RUN(test_an_unchecked_op_fails);
    return ib_test_summary();
}
