/*
 * test_json_number.c — the numbers the commands print as JSON by hand
 * (ibnet eval --json, ibnet train --json): a non-finite value (an infinite
 * KL, a diverged loss) comes out as null, so the line still parses; finite
 * ones keep their format.
 */
#include "test.h"

#include "../cli/json_number.c"

#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

static char *printed(void (*emit)(FILE *))
{
    static char buf[256];
    FILE *f = tmpfile();
    emit(f);
    rewind(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static void line(FILE *f)
{
    fputs("{\"n\": 3", f);
    ib_cli_json_member(f, "acc", "%.6f", 0.5);
    ib_cli_json_member(f, "nll", "%.6f", INFINITY);
    ib_cli_json_member(f, "loss", "%.6g", NAN);
    fputs(", \"kl\": [", f);
    ib_cli_json_number(f, "%.6g", -INFINITY);
    fputs(", ", f);
    ib_cli_json_number(f, "%.6g", 2.25);
    fputs("]}", f);
}

static void test_non_finite_as_null(void)
{
    const char *s = printed(line);
    CHECK_MSG(!strcmp(s, "{\"n\": 3, \"acc\": 0.500000, \"nll\": null, \"loss\": null, \"kl\": [null, 2.25]}"), "got %s", s);
    cJSON *o = cJSON_Parse(s);
    CHECK(o != NULL);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(o, "nll")));
    CHECK(cJSON_GetObjectItem(o, "acc")->valuedouble == 0.5);
    cJSON_Delete(o);
}

int main(void)
{
    IB_RUN(test_non_finite_as_null);
    return ib_test_summary();
}
