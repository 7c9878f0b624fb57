/*
 * train_internal.h — what the files of the trainer share: the state of one
 * run (ib__train_run), the run directory, and the functions each file
 * gives the others.
 *   trainer.c  set-up and the public entry points (ib_train, ib_train_resume)
 *   nets.c     the training and evaluation graphs: what the method declares
 *   loop.c     the epochs: steps, evaluation, the per-epoch report
 *   run_dir.c  the run directory: paths, atomic writes, metrics.jsonl lines
 *   records.c  what the run records: metrics lines, summary.json,
 *              checkpoint metadata, and reading it back on resume
 */
#ifndef IB_TRAIN_INTERNAL_H
#define IB_TRAIN_INTERNAL_H

#include "../core/internal.h"
#include "loss_watch.h"
#include "run_lock.h"

/* The run directory: a folder and the files in it. */
typedef struct ib__run_dir {
    char dir[1024];
    char path[2048]; /* the last path ib__run_dir_file made */
} ib__run_dir;

void ib__run_dir_init(ib__run_dir *d, const char *dir);
/* dir/name, valid until the next call on d. */
const char *ib__run_dir_file(ib__run_dir *d, const char *name);
/* mkdir -p the directory. */
ib_status ib__run_dir_create(ib__run_dir *d);
/* Replace dir/name by text atomically. */
ib_status ib__run_dir_write(ib__run_dir *d, const char *name, const char *text);
/* dir/name as a malloc'd text, or NULL when it cannot be read. */
char *ib__run_dir_read(ib__run_dir *d, const char *name);
/* Append a line to dir/name and flush it to disk. */
ib_status ib__run_dir_append_line(ib__run_dir *d, const char *name, const char *line);
/* Keep only the lines of a JSON-lines file whose "epoch" is <= epoch. */
ib_status ib__run_dir_truncate_jsonl(ib__run_dir *d, const char *name, int64_t epoch);

/* One graph of the run: the training graph holds every network the method
 * declared and its loss; the evaluation graph holds the run's model alone. */
typedef struct ib__net {
    ib_graph *g;
    ib_node *x, *y;                           /* view 0 (N, C, H, W) and its labels (N) */
    ib_model_out mo;                          /* the run's model on view 0 */
    ib_loss loss;                             /* training graph only */
    ib_node *kl_examples[IB_MAX_BOTTLENECKS]; /* per-example KL (eval): ib_model_out_kl */
    int n_kl;
    int n_views;
    ib_node *views[IB_MAX_VIEWS];             /* views[0] == x */
} ib__net;

typedef struct ib__tracker ib__tracker; /* track_info.c */

typedef struct ib__train_run {
    ib_train_config cfg;
    const ib_train_callbacks *cb;
    const ib_method *method;
    ib__run_dir dir;
    ib_dataset *train, *val, *test;
    /* View 2 of the test set (a two-view set's own, or the method's
     * make_view of the test set): evaluated each epoch beside view 1,
     * through ev2 (view 2's own network with --separate-views) or ev.
     * NULL for one-view runs.  val2: view 2 of the validation examples
     * (a two-view set with --val-size), NULL otherwise. */
    ib_dataset *test2, *val2;
    ib_model *model;
    ib_model *net_models[IB_MAX_NETS];   /* models of the method's other networks (NULL: the run's) */
    ib_params *params;
    ib__net tr, ev, ev2; /* ev2.g: view 2's evaluation graph, NULL when it is ev's (shared) */
    ib_method_inputs inputs;             /* what the method was given (training graph) */
    ib_optim *opt;
    bool grads_zero; /* the last step zeroed the gradients (ib__optim_set_zero_grads): no ib_params_zero_grad */
    ib_ema *ema;
    ib_batcher *batcher;
    ib_batcher_config bcfg;
    ib_dataset *view_data[IB_MAX_VIEWS]; /* views >= 1 that the method made (NULL: the training set) */
    ib_batcher *view_batcher[IB_MAX_VIEWS]; /* views >= 1, batched in view 0's order */
    int32_t *view_labels;                /* scratch for the labels of views >= 1 */
    int views_out_of_step;               /* the view whose batch was not view 1's (loop.c), 0: none */
    int64_t start_epoch, step;
    int64_t epochs_done; /* epochs saved in last.safetensors */
    int64_t skip_batches; /* batches of the first epoch already trained (resume) */
    int64_t batches_done; /* batches of the current epoch trained */
    int64_t partial_batches; /* recorded in the checkpoint being written */
    int64_t first_step; /* step at the start of this invocation (max_steps counts from it) */
    double best_acc;
    int64_t best_epoch;
    int64_t early_stop_epoch; /* > 0: the epoch after which patience ended the run */
    /* The test evaluation of the last evaluated epoch and the step it was
     * made at: the summary reuses it when no step has been taken since. */
    ib_eval_result last_test, last_test2;
    int64_t last_test_step; /* -1: none */
    ib__run_lock lock; /* held while this run may write into cfg.out_dir */
    ib__loss_watch watch; /* divergence of the training loss (not checkpointed) */
    /* last.safetensors as this run last wrote or read it: the state a failure keeps */
    bool saved;           /* false: the directory holds no last.safetensors */
    int64_t saved_epoch, saved_step;
    ib__tracker *track; /* --track-info: NULL when off */
    /* Data parallelism (dist.c; docs/mpi.md): rank dp_rank of dp_size holds
     * local_batch rows of each global batch, from row row0.  Only rank 0
     * writes into the run directory and calls the callbacks; the others see
     * quiet_cb (the stop flag alone).  stop: the stop agreed by all ranks. */
    int dp_rank, dp_size;
    int64_t local_batch, row0;
    ib_train_callbacks quiet_cb;
    bool stop;
    int64_t ema_bn_step; /* the step whose EMA weights the EMA's batch-norm statistics are of; -1: none */
} ib__train_run;

/* dist_train.c: the data-parallel parts of a run */
/* rank, size and the callbacks a rank uses; a copy of rank 0's
 * configuration on every rank (a default out_dir made per rank may differ) */
void ib__dp_begin(ib__train_run *r, const ib_train_callbacks *cb);
/* the local batch and the shard of each batcher, after the batchers exist */
ib_status ib__dp_shard(ib__train_run *r);
/* weighted sum of every rank's gradients into every rank (after backward) */
void ib__dp_reduce_grads(ib__train_run *r);
/* running statistics (parameter buffers) averaged over the ranks, so
 * evaluation and checkpoints do not depend on the rank */
void ib__dp_sync_buffers(ib__train_run *r);
/* whether a stop was asked for on any rank (a collective on > 1 rank) */
bool ib__dp_stop_agreed(ib__train_run *r);
/* true on the rank that writes the run directory */
bool ib__dp_writer(void);

/* config.c: ib_train_config_check with m the method to run (NULL: the
 * registry's method named by c->method). */
ib_status ib__train_config_check(const ib_train_config *c, const ib_method *m);
/* nets.c */
ib_status ib__run_build_nets(ib__train_run *r);
/* loop.c */
ib_status ib__run_epochs(ib__train_run *r);
/* the next training batch of every view into the training graph; false at
 * the epoch's end or when the views are out of step */
bool ib__run_next_batch(ib__train_run *r, int64_t *count);
/* ema_bn.c: the EMA weights into the store (nothing without an EMA), with
 * batch-norm statistics recomputed for them when --ema-bn-batches is on and
 * the model has batch norm (once per step); out: the training values back.
 * On failure ema_in leaves the training values in place. */
ib_status ib__run_ema_in(ib__train_run *r);
void ib__run_ema_out(ib__train_run *r);
/* whether the EMA's batch-norm statistics are recomputed in this run */
bool ib__run_ema_bn_on(const ib__train_run *r);
/* the EMA's batch-norm statistics made current for this step (before
 * last.safetensors is written) */
ib_status ib__run_ema_bn_refresh(ib__train_run *r);
ib_status ib__run_evaluate(ib__train_run *r, const ib_dataset *d, ib_eval_result *out);
/* view 2 of a set (r->test2 or r->val2) through view 2's network */
ib_status ib__run_evaluate_view2(ib__train_run *r, const ib_dataset *d, ib_eval_result *out);
/* the score the best epoch is chosen on: view 1's accuracy, or in a run
 * that evaluates two views the mean of both views' (docs/vsd.md) */
double ib__run_selection_score(const ib_eval_result *v1, const ib_eval_result *v2);
/* records.c */
ib_status ib__run_save_checkpoint(ib__train_run *r, const char *name, int64_t epoch, bool with_state);
/* --save-epochs (snapshots.c): the list's check, and epoch-N.safetensors when epoch is listed. */
ib_status ib__save_epochs_check(const char *list, int64_t epochs);
bool ib__save_epoch_listed(const char *list, int64_t epoch);
ib_status ib__save_epoch_snapshot(ib__train_run *r, int64_t epoch);
/* One line of metrics.jsonl; ranks: the processes that trained this epoch (a
 * resume may change it) */
char *ib__run_metrics_line(const ib_epoch_report *rep, int ranks, const ib_eval_result *test2,
                           const ib_eval_result *val2, double score);
ib_status ib__run_write_summary(ib__train_run *r);
/* memorisation.c: the "memorisation" object of summary.json (label noise only) */
struct cJSON;
ib_status ib__run_memorisation(ib__train_run *r, struct cJSON *summary);
/* Load last.safetensors into the run and restore its counters (resume). */
ib_status ib__run_load_resume_state(ib__train_run *r);
/* track_info.c: --track-info.  check: the estimator name; open: the
 * graph and data (nothing when off); due: whether the epoch is tracked;
 * epoch: the line of info.jsonl (malloc'd) for the weights now. */
ib_status ib__track_check(const ib_train_config *c);
ib_status ib__track_open(ib__train_run *r);
bool ib__track_due(const ib__train_run *r, int64_t epoch);
ib_status ib__track_epoch(ib__train_run *r, int64_t epoch, char **line);
void ib__track_free(ib__tracker *t);

#endif
