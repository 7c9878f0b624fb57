/*
 * info_decoder.c — `ibnet info --estimator decoder`: I(X;T) of a network's
 * layers through PixelCNN decoders (src/info/decoder.c).  The images are
 * the data set's own pixels (binarised at 128), not the normalised input
 * the network sees; each layer's activations (as ib_net_activations reads
 * them) condition one decoder, a feature map keeping its shape.  One
 * unconditional decoder serves every layer.  With --sample-grid PREFIX
 * each layer gets PREFIX-LAYER.png: per row a held-out image, then samples
 * of x drawn given that image's h.
 */
#include "commands.h"
#include "ibnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { GRID_ROWS = 4, GRID_SAMPLES = 4 };

static int grid(ib_decoder *m, const ib_decoder_data *d, const int64_t *held, int64_t n_held, uint64_t seed,
                const char *prefix, const char *layer, bool json)
{
    int rows = n_held < GRID_ROWS ? (int)n_held : GRID_ROWS, cols = 1 + GRID_SAMPLES;
    int64_t px = (int64_t)d->c * d->h * d->w;
    int64_t idx[GRID_ROWS * GRID_SAMPLES];
    for (int r = 0; r < rows; r++)
        for (int s = 0; s < GRID_SAMPLES; s++)
            idx[r * GRID_SAMPLES + s] = held[r];
    uint8_t *samples = malloc((size_t)(rows * GRID_SAMPLES * px)), *tiles = malloc((size_t)(rows * cols * px));
    if (!samples || !tiles) {
        free(samples);
        free(tiles);
        fprintf(stderr, "ibnet info: out of memory\n");
        return 1;
    }
    ib_status s = ib_decoder_sample(m, d, idx, rows * GRID_SAMPLES, seed, samples);
    if (s == IB_OK) {
        for (int r = 0; r < rows; r++) {
            uint8_t *t = tiles + (int64_t)r * cols * px;
            for (int64_t k = 0; k < px; k++) /* the real image, binarised as the decoder sees it */
                t[k] = d->images[held[r] * px + k] >= 128 ? 255 : 0;
            memcpy(t + px, samples + (int64_t)r * GRID_SAMPLES * px, (size_t)(GRID_SAMPLES * px));
        }
        char path[4096];
        snprintf(path, sizeof path, "%s-%s.png", prefix, layer);
        s = ib_png_write_grid(path, tiles, rows * cols, d->c, d->h, d->w, cols, 2, 2, 128);
        if (s == IB_OK) /* with --json, stdout holds only the JSON lines */
            fprintf(json ? stderr : stdout, "  samples given h: %s (rows: a held-out image, then %d samples)\n",
                    path, GRID_SAMPLES);
    }
    free(samples);
    free(tiles);
    if (s != IB_OK) {
        fprintf(stderr, "ibnet info: %s\n", ib_last_error());
        return s == IB_ERR_NOMEM ? 1 : 2;
    }
    return 0;
}

int ib_cli_info_decoder(ib_net *net, const ib_dataset *d, const ib_activations *a, const ib_mi_options *o,
                        const char *grid_prefix, bool json)
{
    int nl = a->n_layers;
    ib_decoder_data *dd = calloc((size_t)nl, sizeof *dd);
    ib_mi_result *r = calloc((size_t)nl, sizeof *r);
    ib_decoder **keep = calloc((size_t)nl, sizeof *keep);
    if (!dd || !r || !keep) {
        free(dd);
        free(r);
        free(keep);
        fprintf(stderr, "ibnet info: out of memory\n");
        return 1;
    }
    for (int k = 0; k < nl; k++) {
        ib_node *node = ib_graph_find(ib_net_graph(net), a->nodes[k]);
        dd[k] = (ib_decoder_data){.n = a->n, .c = d->c, .h = d->h, .w = d->w, .images = d->images,
                                  .cond = a->values[k]};
        if (node && ib_node_ndim(node) == 4) { /* a feature map keeps its shape */
            dd[k].cond_ndim = 3;
            for (int j = 0; j < 3; j++)
                dd[k].cond_shape[j] = ib_node_dim(node, j + 1);
        } else {
            dd[k].cond_ndim = 1;
            dd[k].cond_shape[0] = a->dims[k];
        }
    }
    int rc = 0;
    ib_status s = ib_decoder_mi(dd, nl, o, r, grid_prefix ? keep : NULL);
    if (s != IB_OK) {
        fprintf(stderr, "ibnet info: %s\n", ib_last_error());
        rc = s == IB_ERR_NOMEM || s == IB_ERR_NUMERIC ? 1 : 2;
    }
    int64_t *rows = NULL, n_train = 0;
    if (rc == 0 && grid_prefix) {
        rows = malloc((size_t)a->n * sizeof *rows);
        if (!rows || ib_decoder_split(a->n, o, rows, &n_train) != IB_OK) {
            fprintf(stderr, "ibnet info: out of memory\n");
            rc = 1;
        }
    }
    for (int k = 0; k < nl && rc == 0; k++) {
        snprintf(r[k].quantity, sizeof r[k].quantity, "I(X;T)");
        if (json) {
            char *j = ib_mi_result_json(&r[k]);
            if (!j) {
                fprintf(stderr, "ibnet info: out of memory\n");
                rc = 1;
                break;
            }
            printf("{\"layer\":\"%s\",\"dims\":%lld,%s\n", a->names[k], (long long)a->dims[k], j + 1);
            free(j);
        } else {
            printf("layer %s (%lld values per example%s)\n  ", a->names[k], (long long)a->dims[k],
                   dd[k].cond_ndim == 3 ? ", a feature map" : "");
            ib_cli_mi_print(&r[k]);
        }
        if (grid_prefix)
            rc = grid(keep[k], &dd[k], rows + n_train, a->n - n_train, o->seed, grid_prefix, a->names[k], json);
    }
    for (int k = 0; k < nl; k++)
        ib_decoder_free(keep[k]);
    free(rows);
    free(keep);
    free(dd);
    free(r);
    return rc;
}
