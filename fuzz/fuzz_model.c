/*
 * fuzz_model.c — libFuzzer target for the model description parser
 * (src/nn/model.c): arbitrary bytes must give IB_OK or IB_ERR_FORMAT with a
 * "source:LINE: " message, never a crash, a leak or undefined behaviour.
 * When a description parses, its canonical text must parse to an equal
 * model and be a fixed point: the property checkpoints rely on.
 * Seeds: fuzz/corpus/model/ (the built-in models and a few broken ones).
 */
#include "ibnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
