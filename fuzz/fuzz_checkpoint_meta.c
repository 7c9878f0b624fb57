/*
 * fuzz_checkpoint_meta.c — libFuzzer target for the training checkpoint's
 * metadata reader (ib_checkpoint_meta_parse), the text a resume and
 * ib_net_open trust.  Any byte string must give either metadata or a
 * status with a message; never a crash, a leak or an out-of-bounds read.
 *
 * Properties beyond "no crash":
 *  - a refusal leaves the output empty (nothing to free, no stale pointer);
 *  - accepted metadata has usable numbers: a positive evaluation S, an EMA
 *    decay in [0, 1), positive deviations under standardisation, counts
 *    that are non-negative and ordered when counts_valid;
 *  - what the writer makes of it parses back to the same fields.
 * Seeds: fuzz/corpus/checkpoint_meta.
 */
#include "core/internal.h"

#include "fuzz_harness.h"

static void check_same(const ib_checkpoint_meta *a, const ib_checkpoint_meta *b)
{
    REQUIRE(b->version == IB_CHECKPOINT_META_VERSION);
    /* invalid counts are written as what was read (0 for a missing one), so only valid ones must survive */
    if (a->counts_valid)
        REQUIRE(b->counts_valid && a->epoch == b->epoch && a->step == b->step && a->epoch_batches_done == b->epoch_batches_done &&
                a->best_epoch == b->best_epoch);
    REQUIRE(a->input_norm == b->input_norm && a->n_class_names == b->n_class_names);
    REQUIRE(!strcmp(a->model_text, b->model_text) && !strcmp(a->dataset, b->dataset) && !strcmp(a->model, b->model));
    for (int k = 0; k < a->n_class_names; k++)
        REQUIRE(!strcmp(a->class_names[k], b->class_names[k]));
    REQUIRE(a->eval_samples == b->eval_samples && a->seed == b->seed && a->ema_decay == b->ema_decay &&
            a->ema_zero_debias == b->ema_zero_debias);
    for (int c = 0; c < a->channels; c++)
        REQUIRE(a->input_mean[c] == b->input_mean[c] && a->input_std[c] == b->input_std[c]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    REQUIRE(text);
    memcpy(text, data, size);
    text[size] = 0; /* the reader takes C strings: the safetensors layer guarantees one */
    ib_checkpoint_meta m;
    ib_status s = ib_checkpoint_meta_parse(text, "fuzz", &m);
    free(text);
    if (s != IB_OK) {
        REQUIRE(m.model_text == NULL && m.class_names == NULL && m.config_json == NULL);
        REQUIRE(ib_last_error()[0] != 0);
        return 0;
    }
    REQUIRE(m.model_text && m.dataset && m.model);
    REQUIRE(m.eval_samples >= 1 && m.eval_samples <= 1000);
    REQUIRE(m.ema_decay >= 0 && m.ema_decay < 1);
    REQUIRE(m.channels >= 0 && m.channels <= 4);
    if (m.input_norm == IB_NORM_STANDARDIZE)
        for (int c = 0; c < m.channels; c++)
            REQUIRE(m.input_std[c] > 0);
    if (m.counts_valid)
        REQUIRE(m.epoch >= 0 && m.step >= 0 && m.epoch_batches_done >= 0 && m.best_epoch <= m.epoch);
    /* strings with a NUL inside cannot round-trip through C strings */
    char *again = ib_checkpoint_meta_to_json(&m);
    REQUIRE(again);
    ib_checkpoint_meta r;
    REQUIRE(ib_checkpoint_meta_parse(again, "fuzz", &r) == IB_OK);
    check_same(&m, &r);
    free(again);
    ib_checkpoint_meta_free(&r);
    ib_checkpoint_meta_free(&m);
    return 0;
}
