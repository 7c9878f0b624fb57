/* json_number.c — see json_number.h. */
#include "json_number.h"

#include <math.h>

void ib_cli_json_number(FILE *f, const char *fmt, double v)
{
    if (isfinite(v))
        fprintf(f, fmt, v);
    else
        fputs("null", f);
}

void ib_cli_json_member(FILE *f, const char *key, const char *fmt, double v)
{
    fprintf(f, ", \"%s\": ", key);
    ib_cli_json_number(f, fmt, v);
}
