/*
 * fuzz_config.c — libFuzzer target for the training configuration reader
 * (src/train/config.c: config.json of a run, `ibnet train --config`):
 * arbitrary bytes give IB_OK or IB_ERR_FORMAT with a "config: " message,
 * never a crash, a leak or undefined behaviour (an integer too large for
 * its field is an error, not a wrapped value).  A configuration that reads
 * writes back to a text that reads to the same text again, and checking it
 * (ib_train_config_check) answers without crashing.
 * Seeds: fuzz/corpus/config/.
 */
#include "ibnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 20))
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    ib_train_config c = ib_train_config_default();
    ib_status st = ib_train_config_from_json(text, &c);
    if (st == IB_OK) {
        char *out = ib_train_config_to_json(&c);
        ib_train_config again = ib_train_config_default();
        if (!out || ib_train_config_from_json(out, &again) != IB_OK) {
            fprintf(stderr, "written configuration does not read: %s\n%s", ib_last_error(), out ? out : "(null)");
            abort();
        }
        char *out2 = ib_train_config_to_json(&again);
        if (!out2 || strcmp(out, out2) != 0) {
            fprintf(stderr, "configuration does not round-trip:\n%s\n---\n%s", out, out2 ? out2 : "(null)");
            abort();
        }
        (void)ib_train_config_check(&again);
        free(out);
        free(out2);
    } else if (st == IB_ERR_FORMAT) {
        if (strncmp(ib_last_error(), "config", 6) != 0) {
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
