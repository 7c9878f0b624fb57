/*
 * fuzz_model.c — libFuzzer target for the model description parser
 * (src/nn/model.c): arbitrary bytes must give IB_OK or IB_ERR_FORMAT with a
 * "source:LINE: " message, never a crash, a leak or undefined behaviour.
 * When a description parses, its canonical text must parse to an equal
 * model and be a fixed point: the property checkpoints rely on. The layer
 * table must list it, and a VIB cell added after its first and its last
 * listed layer (ib_model_add_cells) gives a model with one more bottleneck,
 * or a clear IB_ERR_ARG / IB_ERR_FORMAT.
 * Seeds: fuzz/corpus/model/ (the built-in models and a few broken ones).
 */
#include "ibnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void try_cell_after(const ib_model *m, const char *name)
{
    ib_model *with = NULL;
    ib_status st = ib_model_add_cells(m, name, &with);
    if (st == IB_OK) {
        if (ib_model_bottleneck_count(with) != ib_model_bottleneck_count(m) + 1) {
            fprintf(stderr, "a cell after '%s' did not add one bottleneck:\n%s", name, ib_model_text(with));
            abort();
        }
        ib_model *again = NULL;
        if (ib_model_parse(ib_model_text(with), "cells", &again) != IB_OK || !ib_model_equal(with, again))
            abort();
        ib_model_free(again);
        ib_model_free(with);
    } else if (with || (st != IB_ERR_ARG && st != IB_ERR_FORMAT && st != IB_ERR_NOMEM)) {
        fprintf(stderr, "a cell after '%s': status %d: %s\n", name, (int)st, ib_last_error());
        abort();
    }
}

/* The layer table's rows start at its third line, the name first. */
static void check_cells(const ib_model *m)
{
    char *table = ib_model_summary(m);
    if (!table)
        abort();
    char first[128] = "", last[128] = "";
    const char *line = strchr(table, '\n');
    line = line ? strchr(line + 1, '\n') : NULL;
    while (line && line[1]) {
        line++;
        size_t len = strcspn(line, " \n");
        if (len == 0 || len >= sizeof last)
            abort();
        snprintf(last, sizeof last, "%.*s", (int)len, line);
        if (!first[0])
            snprintf(first, sizeof first, "%s", last);
        line = strchr(line, '\n');
    }
    free(table);
    if (!first[0])
        abort(); /* a parsed model has a layer */
    try_cell_after(m, first);
    try_cell_after(m, last);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (2u << 20))
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0; /* an embedded NUL simply ends the text */
    ib_model *m = NULL;
    ib_status st = ib_model_parse(text, "fuzz", &m);
    if (st == IB_OK) {
        ib_model *again = NULL;
        if (ib_model_parse(ib_model_text(m), "canonical", &again) != IB_OK) {
            fprintf(stderr, "canonical text does not parse: %s\n%s", ib_last_error(), ib_model_text(m));
            abort();
        }
        if (!ib_model_equal(m, again) || strcmp(ib_model_text(m), ib_model_text(again))) {
            fprintf(stderr, "canonical text does not round-trip:\n%s", ib_model_text(m));
            abort();
        }
        if (ib_model_param_count(m) != ib_model_param_count(again))
            abort();
        ib_model_free(again);
        check_cells(m);
        ib_model_free(m);
    } else if (st == IB_ERR_FORMAT) {
        if (strncmp(ib_last_error(), "fuzz", 4) != 0) {
            fprintf(stderr, "error without its source: %s\n", ib_last_error());
            abort();
        }
    } else if (st != IB_ERR_NOMEM) {
        fprintf(stderr, "unexpected status %d: %s\n", (int)st, ib_last_error());
        abort();
    }
    free(text);
    return 0;
}
