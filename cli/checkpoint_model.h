/*
 * checkpoint_model.h — open a training checkpoint as a ready-to-run
 * evaluation network: the model description, input normalisation and data
 * set recorded in its metadata, a graph of the requested batch size, and
 * the weights (the EMA average when the file holds one and it is wanted).
 * Shared by `ibnet eval` and `ibnet predict`.
 */
#ifndef IB_CLI_CHECKPOINT_MODEL_H
#define IB_CLI_CHECKPOINT_MODEL_H

#include "ibnet.h"

typedef struct ckpt_net {
    ib_model *model;
    ib_params *params;
    ib_graph *g;
    ib_node *x;
    ib_model_out out;
    ib_node *kl[IB_MAX_BOTTLENECKS];
    ib_batcher_config norm; /* input normalisation of the training run */
    char dataset[1024];
    int n_names;
    char names[100][32]; /* class names recorded at training, if any */
    int eval_samples;
    uint64_t eval_seed; /* the noise key the training run evaluated with */
    bool used_ema;
    char err[1024]; /* why open failed */
} ckpt_net;

/* Returns IB_OK, or a status with n->err saying what is wrong with the file. */
ib_status ckpt_net_open(ckpt_net *n, const char *path, int64_t batch, bool want_ema);
void ckpt_net_close(ckpt_net *n);

#endif
