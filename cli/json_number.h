/*
 * json_number.h — numbers in the JSON that commands print by hand.  JSON
 * has no inf or NaN, and printf's "inf" makes the whole line unreadable to
 * a parser; a diverged loss or an infinite KL is printed as null instead,
 * as cJSON writes it in the files (summary.json, metrics.jsonl).
 */
#ifndef IB_CLI_JSON_NUMBER_H
#define IB_CLI_JSON_NUMBER_H

#include <stdio.h>

/* `, "key": v` with v printed by fmt (e.g. "%.6f"), null when not finite. */
void ib_cli_json_member(FILE *f, const char *key, const char *fmt, double v);
/* v alone, by fmt, or null. */
void ib_cli_json_number(FILE *f, const char *fmt, double v);

#endif
