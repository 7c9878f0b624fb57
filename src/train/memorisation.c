/*
 * memorisation.c — how much of the label noise a finished run has learnt,
 * measured properly: in eval mode (no augmentation, batch-norm running
 * statistics, the evaluated weights: the EMA ones if on) on the whole
 * training set, not on the training passes the per-epoch `noisy_fit` of
 * metrics.jsonl comes from (noise, dropout and augmentation on, weights
 * changing during the epoch).  For the examples whose label the noise
 * changed: the share predicted as their noisy label (memorised) and as
 * their clean label (still right); for the others, the share predicted as
 * their label.  Predictions are the run's evaluation ones: the S-sample
 * average (and the mean path beside it).
 */
#include "train_internal.h"

#include <cjson/cJSON.h>

typedef ib__train_run run;

/* The examples of r->train whose noisy label differs (noisy) or not. */
static ib_status pick(const ib_dataset *t, bool noisy, ib_dataset **out)
{
    int64_t *idx = malloc((size_t)(t->n ? t->n : 1) * sizeof *idx), k = 0;
    if (!idx)
        return ib__error(IB_ERR_NOMEM, "memorisation: out of memory");
    for (int64_t i = 0; i < t->n; i++)
        if ((t->labels[i] != t->clean_labels[i]) == noisy)
            idx[k++] = i;
    ib_status s = ib_dataset_subset(t, idx, k, out);
    free(idx);
    return s;
}

static void add_share(cJSON *o, const char *key, const ib_eval_result *e, bool mean_path)
{
    cJSON_AddNumberToObject(o, key, mean_path ? e->acc_mean : e->acc_avg);
}

ib_status ib__run_memorisation(run *r, cJSON *summary)
{
    const ib_dataset *t = r->train;
    if (!t || !t->clean_labels)
        return IB_OK;
    ib_dataset *noisy = NULL, *clean = NULL;
    ib_eval_result as_noisy = {0}, as_clean = {0}, rest = {0};
    ib_status s = pick(t, true, &noisy);
    if (s == IB_OK)
        s = pick(t, false, &clean);
    if (s == IB_OK)
        s = ib__run_ema_in(r);
    bool swapped = s == IB_OK;
    /* accuracy against the labels a set carries is the share predicted as them */
    if (s == IB_OK && noisy->n)
        s = ib__run_evaluate(r, noisy, &as_noisy);
    if (s == IB_OK && noisy->n) {
        memcpy(noisy->labels, noisy->clean_labels, (size_t)noisy->n * sizeof *noisy->labels);
        s = ib__run_evaluate(r, noisy, &as_clean);
    }
    if (s == IB_OK && clean->n)
        s = ib__run_evaluate(r, clean, &rest);
    if (swapped)
        ib__run_ema_out(r);
    if (s == IB_OK && summary) { /* NULL: a rank > 0, which only took part in the evaluations */
        cJSON *m = cJSON_AddObjectToObject(summary, "memorisation");
        cJSON_AddStringToObject(m, "measured_on", "the whole training set in eval mode after the last epoch");
        cJSON_AddNumberToObject(m, "samples", r->cfg.eval_samples);
        cJSON_AddNumberToObject(m, "noisy_examples", (double)noisy->n);
        cJSON_AddNumberToObject(m, "clean_examples", (double)clean->n);
        if (noisy->n) {
            add_share(m, "noisy_predicted_as_noisy_label", &as_noisy, false);
            add_share(m, "noisy_predicted_as_clean_label", &as_clean, false);
            add_share(m, "noisy_predicted_as_noisy_label_mean_path", &as_noisy, true);
            add_share(m, "noisy_predicted_as_clean_label_mean_path", &as_clean, true);
        }
        if (clean->n)
            add_share(m, "clean_predicted_as_label", &rest, false);
    }
    ib_eval_result_free(&as_noisy);
    ib_eval_result_free(&as_clean);
    ib_eval_result_free(&rest);
    ib_dataset_free(noisy);
    ib_dataset_free(clean);
    return s;
}
