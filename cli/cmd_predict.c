/*
 * cmd_predict.c — `ibnet predict CHECKPOINT IMAGE.png...`: classify image
 * files with a trained network.  Each image is scaled as the training data
 * was (recorded in the checkpoint) and the class probabilities are the mean
 * of the softmax over S samples of the network's bottlenecks (the Deep VIB
 * "avg" prediction), or the deterministic output for a plain network.
 */
#include "args.h"
#include "ibnet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ib_cmd_predict(int argc, char **argv)
{
    int64_t samples = 0, top = 3, threads = 0;
    bool json = false, no_ema = false, no_verify = false;
    arg_spec specs[] = {
        {"--samples", ARG_INT, &samples, "S", "samples averaged (default: the training run's)", NULL, 0},
        {"--top", ARG_INT, &top, "K", "classes shown per image", NULL, 0},
        {"--no-ema", ARG_FLAG, &no_ema, NULL, "use the raw weights even if the file holds an EMA average", NULL, 0},
        {"--no-verify", ARG_FLAG, &no_verify, NULL, "skip the checksums of the checkpoint's tensors", NULL, 0},
        {"--threads", ARG_INT, &threads, "N", "threads", NULL, 0},
        {"--json", ARG_FLAG, &json, NULL, "one JSON object per image", NULL, 0},
    };
    arg_parser p = {"predict", "ibnet predict CHECKPOINT IMAGE.png [IMAGE.png...] [options]",
                    "Classify PNG images (grey for 1-channel models, colour for 3-channel ones, of the model's size).",
                    specs, (int)(sizeof specs / sizeof specs[0]), 2, 4096, "CHECKPOINT and IMAGE"};
    char **pos = malloc((size_t)argc * sizeof *pos + sizeof *pos);
    int n_pos = 0;
    int rc = args_parse(&p, argc, argv, pos, &n_pos);
    if (rc) {
        free(pos);
        return rc == 1 ? 0 : 2;
    }
    if (samples < 0 || samples > 1000 || top < 1) {
        fprintf(stderr, "ibnet predict: --samples must be in 0..1000 and --top >= 1\n");
        free(pos);
        return 2;
    }
    if (threads > 0)
        ib_set_threads((int)threads);
    int n_img = n_pos - 1;
    ib_net_options no = ib_net_options_default();
    no.weights = no_ema ? IB_NET_WEIGHTS_RAW : IB_NET_WEIGHTS_DEFAULT;
    no.skip_checksums = no_verify;
    ib_net *n = NULL;
    if (ib_net_open(pos[0], &no, &n) != IB_OK) {
        fprintf(stderr, "ibnet predict: %s\n", ib_last_error());
        free(pos);
        return 2;
    }
    ib_graph *g = ib_net_graph(n);
    const ib_checkpoint_meta *meta = ib_net_meta(n);
    int mc, mh, mw, classes = ib_model_classes(ib_net_model(n));
    ib_model_input_shape(ib_net_model(n), &mc, &mh, &mw);
    /* Read every image first: a bad file is a user error before any work. */
    ib_dataset *d = ib_dataset_new("images", n_img, mc, mh, mw, classes);
    rc = d ? 0 : 1;
    for (int i = 0; i < n_img && !rc; i++) {
        uint8_t *img = NULL;
        int c, h, w;
        /* the header first: a huge image of the wrong size is refused before it is decoded */
        ib_status st = ib_image_png_info(pos[i + 1], &c, &h, &w);
        if (st == IB_OK && c == mc && h == mh && w == mw)
            st = ib_image_read_png(pos[i + 1], &img, &c, &h, &w);
        if (st != IB_OK) {
            fprintf(stderr, "ibnet predict: %s\n", ib_last_error());
            rc = 2;
        } else if (c != mc || h != mh || w != mw) {
            fprintf(stderr, "ibnet predict: %s is %dx%d with %d channel(s); the model takes %dx%d with %d\n",
                    pos[i + 1], w, h, c, mw, mh, mc);
            rc = 2;
        } else {
            memcpy(d->images + (int64_t)i * mc * mh * mw, img, (size_t)mc * mh * mw);
        }
        free(img);
    }
    ib_batcher *b = NULL;
    ib_batcher_config bc = *ib_net_batcher_config(n);
    bc.batch_size = 1;
    if (!rc && ib_batcher_new(d, &bc, &b) != IB_OK) {
        fprintf(stderr, "ibnet predict: %s\n", ib_last_error());
        rc = 1;
    }
    int S = samples ? (int)samples : ib_net_eval_samples(n);
    ib_node *first = ib_graph_first_random(g);
    double *prob = calloc((size_t)classes, sizeof *prob);
    int32_t label;
    int64_t count;
    if (!rc)
        ib_batcher_epoch(b, 0);
    for (int i = 0; !rc && i < n_img && ib_batcher_next(b, ib_node_data(ib_net_input(n)), &label, &count); i++) {
        memset(prob, 0, (size_t)classes * sizeof *prob);
        ib_graph_set_sampling(g, first != NULL);
        ib_graph_set_seed(g, 0xE7A1u);
        int passes = first ? S : 1;
        for (int k = 0; k < passes; k++) {
            ib_graph_set_step(g, (uint64_t)k);
            if (k == 0)
                ib_graph_forward(g);
            else
                ib_graph_forward_from(g, first);
            const float *l = ib_node_data(ib_net_logits(n));
            double mx = l[0], sum = 0;
            for (int c = 1; c < classes; c++)
                mx = fmax(mx, l[c]);
            for (int c = 0; c < classes; c++)
                sum += exp(l[c] - mx);
            for (int c = 0; c < classes; c++)
                prob[c] += exp(l[c] - mx) / sum / passes;
        }
        if (json)
            printf("{\"image\": \"%s\", \"probabilities\": [", pos[i + 1]);
        else
            printf("%s:", pos[i + 1]);
        if (json) {
            for (int c = 0; c < classes; c++)
                printf("%s%.6f", c ? ", " : "", prob[c]);
            printf("]");
        }
        /* the top K by repeated selection (K is small) */
        bool *used = calloc((size_t)classes, 1);
        for (int k = 0; k < top && k < classes; k++) {
            int best = -1;
            for (int c = 0; c < classes; c++)
                if (!used[c] && (best < 0 || prob[c] > prob[best]))
                    best = c;
            used[best] = true;
            if (json) {
                if (k == 0)
                    printf(", \"class\": %d%s%s%s", best, meta->n_class_names > best ? ", \"name\": \"" : "",
                           meta->n_class_names > best ? meta->class_names[best] : "", meta->n_class_names > best ? "\"" : "");
            } else if (meta->n_class_names > best) {
                printf("  %s (%d) %.1f%%", meta->class_names[best], best, 100 * prob[best]);
            } else {
                printf("  %d %.1f%%", best, 100 * prob[best]);
            }
        }
        free(used);
        printf(json ? "}\n" : "\n");
    }
    free(prob);
    ib_batcher_free(b);
    ib_dataset_free(d);
    ib_net_close(n);
    free(pos);
    return rc;
}
