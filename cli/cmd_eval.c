/*
 * cmd_eval.c — `ibnet eval CHECKPOINT`: accuracy and NLL of a trained
 * network on a data set (by default the test split of the set it was
 * trained on), the three ways Deep VIB reports them (one sample, the mean
 * of S samples' probabilities, the mean path), per-class accuracy and the
 * confusion matrix; optionally on a corrupted copy of the data, and
 * optionally over several draws of the noise (--repeats: the spread of the
 * sampled accuracies; NLL, calibration, per-class figures and confusion matrix
 * are the first draw's).  --retrieval adds Re-ID-style retrieval by the mean of
 * the last bottleneck: view-1 queries against the view-2 gallery of a
 * two-view set, or the set against itself (docs/vsd.md).  Under mpirun the
 * batches are split over the ranks and the figures summed (docs/mpi.md).
 */
#include "args.h"
#include "json_number.h"
#include "ibnet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The sampled accuracies of a stochastic network vary with the noise drawn
 * (on MNIST by ~0.05 points between draws of 12 samples), so a figure worth
 * comparing is a mean over several draws: --repeats. */
enum { MAX_REPEATS = 1000 };

typedef struct spread {
    double mean, sd, min, max;
} spread;

static spread spread_of(const double *v, int n)
{
    spread s = {0, 0, v[0], v[0]};
    for (int i = 0; i < n; i++) {
        s.mean += v[i] / n;
        s.min = fmin(s.min, v[i]);
        s.max = fmax(s.max, v[i]);
    }
    for (int i = 0; i < n && n > 1; i++)
        s.sd += (v[i] - s.mean) * (v[i] - s.mean) / (n - 1);
    s.sd = sqrt(s.sd);
    return s;
}

/* The calibration figures of one prediction as JSON members: ECE, Brier,
 * entropy and the reliability bins (count, mean confidence, accuracy). */
static void print_calibration_json(const char *prefix, const ib_calibration *c)
{
    char key[64];
    snprintf(key, sizeof key, "%sece", prefix);
    ib_cli_json_member(stdout, key, "%.6f", c->ece);
    snprintf(key, sizeof key, "%sbrier", prefix);
    ib_cli_json_member(stdout, key, "%.6f", c->brier);
    snprintf(key, sizeof key, "%sentropy", prefix);
    ib_cli_json_member(stdout, key, "%.6f", c->entropy);
    printf(", \"%sreliability\": [", prefix);
    for (int b = 0; b < IB_CALIBRATION_BINS; b++) {
        printf("%s{\"lo\": %.6f, \"hi\": %.6f, \"count\": %lld", b ? ", " : "", (double)b / IB_CALIBRATION_BINS,
               (double)(b + 1) / IB_CALIBRATION_BINS, (long long)c->bin_count[b]);
        ib_cli_json_member(stdout, "conf", "%.6f", c->bin_conf[b]);
        ib_cli_json_member(stdout, "acc", "%.6f", c->bin_acc[b]);
        printf("}");
    }
    printf("]");
}

static void print_spread_json(const char *name, spread s)
{
    printf(", \"%s\": {\"mean\": ", name);
    ib_cli_json_number(stdout, "%.6f", s.mean);
    ib_cli_json_member(stdout, "sd", "%.6f", s.sd);
    ib_cli_json_member(stdout, "min", "%.6f", s.min);
    ib_cli_json_member(stdout, "max", "%.6f", s.max);
    printf("}");
}

/* Retrieval: embeddings (mu of the last bottleneck) of the queries d and of
 * the gallery (view 2 of a two-view set, else d itself without self-matches). */
static ib_status retrieval(const char *path, const ib_net_options *base, const char *spec, const char *split,
                           const char *data, const ib_load_options *lo, const ib_dataset *d, ib_retrieval *out,
                           bool *cross)
{
    ib_net_options no = *base;
    no.defer_compile = true;
    no.samples = 0;
    no.scope = NULL;
    ib_net *n = NULL, *n2 = NULL;
    ib_status s = ib_net_open(path, &no, &n);
    ib_dataset *gal = NULL;
    *cross = ib_dataset_spec_views(spec) > 1;
    if (s == IB_OK && *cross) {
        s = ib_dataset_open_view(spec, split, 1, data, lo, &gal);
        if (s == IB_OK && gal->n > d->n) { /* the --limit of the queries */
            ib_dataset *part = NULL;
            s = ib_dataset_slice(gal, 0, d->n, &part);
            ib_dataset_free(gal);
            gal = part;
        }
    }
    ib_activations q = {0}, g = {0};
    if (s == IB_OK)
        s = ib_net_embed(n, d, 0, &q);
    if (s == IB_OK && gal) {
        /* view 2 through its own network when the run had one per view
         * (--separate-views), else through the shared one */
        no.scope = "view2";
        if (ib_net_open(path, &no, &n2) == IB_OK)
            s = ib_net_embed(n2, gal, 0, &g);
        else
            s = ib_net_activations(n, gal, (const char *const *)q.nodes, 1, 0, true, &g);
    }
    if (s == IB_OK) {
        const ib_activations *ga = gal ? &g : &q;
        s = ib_retrieval_eval(q.values[0], q.labels, q.n, ga->values[0], ga->labels, ga->n, q.dims[0], !gal, out);
    }
    ib_activations_free(&q);
    ib_activations_free(&g);
    ib_dataset_free(gal);
    ib_net_close(n);
    ib_net_close(n2);
    return s;
}

int ib_cmd_eval(int argc, char **argv)
{
    const char *dataset = NULL, *data = NULL, *split = "test", *corruption = NULL;
    int64_t samples = 0, batch = 500, limit = 0, threads = 0, severity = 3, seed = 1;
    int64_t sample_seed = -1, repeats = 1, view = 1;
    bool no_ema = false, json = false, skip_hash = false, no_verify = false, want_retrieval = false;
    arg_spec specs[] = {
        {"--dataset", ARG_STRING, &dataset, "NAME", "data set: mnist, fashion-mnist, cifar10, cifar100, idx:DIR, "
         "folder:ROOT or rotated-mnist:K (default: the one the model was trained on)", NULL, 0},
        {"--data", ARG_STRING, &data, "DIR", "where the data set lives", NULL, 0},
        {"--split", ARG_STRING, &split, "SPLIT", "which split", "test|train", 0},
        {"--samples", ARG_INT, &samples, "S", "samples averaged (default: the training run's, 12)", NULL, 0},
        {"--batch-size", ARG_INT, &batch, "N", "evaluation batch size", NULL, 0},
        {"--limit", ARG_INT, &limit, "N", "evaluate the first N examples only", NULL, 0},
        {"--view", ARG_INT, &view, "V", "view V of a two-view set, through the network trained for it (its own "
         "with --separate-views, else the shared one)", "1|2", 0},
        {"--no-ema", ARG_FLAG, &no_ema, NULL, "use the raw weights even if the file holds an EMA average", NULL, 0},
        {"--corruption", ARG_STRING, &corruption, "TYPE", "evaluate on a corrupted copy (e.g. gaussian_noise)", NULL, 0},
        {"--severity", ARG_INT, &severity, "K", "corruption severity 1..5", NULL, 0},
        {"--seed", ARG_INT, &seed, "N", "seed of the corruption", NULL, 0},
        {"--sample-seed", ARG_INT, &sample_seed, "N", "seed of the sampled noise of the bottlenecks (default: the one the training run evaluated with)", NULL, 0},
        {"--repeats", ARG_INT, &repeats, "R", "evaluate R times, sample seeds N, N+1, ...: report mean, sd, min "
         "and max of the sampled accuracies", NULL, 0},
        {"--no-hash", ARG_FLAG, &skip_hash, NULL, "skip the sha256 check of the data files", NULL, 0},
        {"--no-verify", ARG_FLAG, &no_verify, NULL, "skip the checksums of the checkpoint's tensors", NULL, 0},
        {"--threads", ARG_INT, &threads, "N", "threads", NULL, 0},
        {"--json", ARG_FLAG, &json, NULL, "print the result as JSON", NULL, 0},
        {"--retrieval", ARG_FLAG, &want_retrieval, NULL, "also retrieval by the mean of the last bottleneck "
         "(cosine; rank-1, rank-5, mAP, class = identity): view-1 queries against the view-2 gallery of a "
         "two-view set, else the set against itself", NULL, 0},
    };
    arg_parser p = {"eval", "ibnet eval CHECKPOINT [options]",
                    "Evaluate a checkpoint written by 'ibnet train' (best.safetensors or last.safetensors).", specs,
                    (int)(sizeof specs / sizeof specs[0]), 1, 1, "CHECKPOINT"};
    char *pos[1];
    int n_pos = 0;
    int rc = args_parse(&p, argc, argv, pos, &n_pos);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (batch < 1 || samples < 0 || samples > 1000 || limit < 0 || severity < 1 || severity > 5 || repeats < 1 ||
        repeats > MAX_REPEATS || sample_seed < -1 || view < 1 || view > 2) {
        fprintf(stderr, "ibnet eval: --batch-size >= 1, --samples in 0..1000, --severity in 1..5, --repeats in "
                        "1..%d, --sample-seed >= 0, --view 1 or 2\n", MAX_REPEATS);
        return 2;
    }
    if (want_retrieval && view != 1) {
        fprintf(stderr, "ibnet eval: --retrieval takes view-1 queries and a view-2 gallery; leave out --view\n");
        return 2;
    }
    ib_corruption ctype = IB_CORRUPT_GAUSSIAN_NOISE;
    if (corruption && ib_corruption_parse(corruption, &ctype) != IB_OK) {
        fprintf(stderr, "ibnet eval: %s\n", ib_last_error());
        return 2;
    }
    if (threads > 0)
        ib_set_threads((int)threads);
    ib_net_options no = ib_net_options_default();
    no.batch_size = batch;
    no.weights = no_ema ? IB_NET_WEIGHTS_RAW : IB_NET_WEIGHTS_DEFAULT;
    no.skip_checksums = no_verify;
    ib_net *n = NULL;
    if (view == 2) { /* view 2's own network when the checkpoint has one */
        no.scope = "view2";
        if (ib_net_open(pos[0], &no, &n) != IB_OK)
            no.scope = NULL;
    }
    if (!n && ib_net_open(pos[0], &no, &n) != IB_OK) {
        fprintf(stderr, "ibnet eval: %s\n", ib_last_error());
        return 2;
    }
    const ib_model_out *mo = ib_net_outputs(n);
    ib_load_options lo = {.skip_hash = skip_hash};
    ib_dataset *d = NULL;
    ib_status s = ib_dataset_open_view(dataset ? dataset : ib_net_meta(n)->dataset, split, (int)view - 1, data, &lo, &d);
    if (s == IB_OK && limit > 0 && limit < d->n) {
        ib_dataset *part = NULL;
        s = ib_dataset_slice(d, 0, limit, &part);
        ib_dataset_free(d);
        d = part;
    }
    if (s == IB_OK && corruption) {
        ib_dataset *cd = NULL;
        s = ib_dataset_corrupt(d, ctype, (int)severity, (uint64_t)seed, &cd);
        ib_dataset_free(d);
        d = cd;
    }
    if (s != IB_OK) {
        fprintf(stderr, "ibnet eval: %s\n", ib_last_error());
        ib_net_close(n);
        return 2;
    }
    uint64_t seed0 = sample_seed >= 0 ? (uint64_t)sample_seed : ib_net_eval_seed(n);
    /* a deterministic network gives the same figures every time */
    if (!mo->n_stochastic) /* no Gaussian or Bernoulli layer */
        repeats = 1;
    ib_eval_result r = {0};
    /* the KL of every stochastic layer (Bernoulli ones too), by layer name */
    ib_node *kl[IB_MAX_BOTTLENECKS];
    const char *kl_name[IB_MAX_BOTTLENECKS];
    int n_kl = ib_model_out_kl(mo, kl, kl_name);
    bool bernoulli = false;
    for (int l = 0; l < mo->n_stochastic; l++)
        bernoulli |= mo->st[l].bn < 0;
    double *acc_avg = malloc((size_t)repeats * sizeof *acc_avg), *acc_one = malloc((size_t)repeats * sizeof *acc_one);
    s = acc_avg && acc_one ? IB_OK : IB_ERR_NOMEM;
    for (int64_t k = 0; k < repeats && s == IB_OK; k++) {
        ib_eval_result rk;
        /* under mpirun: each rank evaluates its share of the batches, rank 0 prints */
        s = ib_evaluate_shard(ib_net_graph(n), ib_net_input(n), ib_net_logits(n), n_kl, kl, d,
                              ib_net_batcher_config(n), samples ? (int)samples : ib_net_eval_samples(n),
                              seed0 + (uint64_t)k, ib_dist_rank(), ib_dist_size(), k ? &rk : &r);
        if (s != IB_OK)
            break;
        acc_avg[k] = k ? rk.acc_avg : r.acc_avg;
        acc_one[k] = k ? rk.acc_1shot : r.acc_1shot;
        if (k)
            ib_eval_result_free(&rk);
    }
    if (s != IB_OK) {
        fprintf(stderr, "ibnet eval: %s\n", s == IB_ERR_NOMEM ? "out of memory" : ib_last_error());
        ib_eval_result_free(&r);
        free(acc_avg);
        free(acc_one);
        ib_dataset_free(d);
        ib_net_close(n);
        return 2;
    }
    ib_retrieval ret = {0};
    bool cross = false;
    if (ib_dist_rank() > 0) { /* the figures are rank 0's to print (retrieval is not split: rank 0 computes it) */
        ib_eval_result_free(&r);
        free(acc_avg);
        free(acc_one);
        ib_dataset_free(d);
        ib_net_close(n);
        return 0;
    }
    if (want_retrieval &&
        (s = retrieval(pos[0], &no, dataset ? dataset : ib_net_meta(n)->dataset, split, data, &lo, d, &ret, &cross)) !=
            IB_OK) {
        fprintf(stderr, "ibnet eval: --retrieval: %s\n", ib_last_error());
        ib_eval_result_free(&r);
        free(acc_avg);
        free(acc_one);
        ib_dataset_free(d);
        ib_net_close(n);
        return 2;
    }
    spread avg = spread_of(acc_avg, (int)repeats), one = spread_of(acc_one, (int)repeats);
    free(acc_avg);
    free(acc_one);
    r.acc_avg = avg.mean;
    r.acc_1shot = one.mean;
    int C = r.classes;
    if (json) {
        printf("{\"checkpoint\": \"%s\", \"dataset\": \"%s\", \"split\": \"%s\", \"n\": %lld, \"ema\": %s", pos[0],
               d->name, split, (long long)r.n, ib_net_used_ema(n) ? "true" : "false");
        ib_cli_json_member(stdout, "acc_1shot", "%.6f", r.acc_1shot);
        ib_cli_json_member(stdout, "acc_avg", "%.6f", r.acc_avg);
        ib_cli_json_member(stdout, "acc_mean", "%.6f", r.acc_mean);
        ib_cli_json_member(stdout, "nll_avg", "%.6f", r.nll_avg);
        ib_cli_json_member(stdout, "nll_mean", "%.6f", r.nll_mean);
        ib_cli_json_member(stdout, "ce_samples", "%.6f", r.ce_samples);
        if (repeats > 1) {
            printf(", \"repeats\": %lld, \"sample_seed\": %llu", (long long)repeats, (unsigned long long)seed0);
            print_spread_json("acc_avg_spread", avg);
            print_spread_json("acc_1shot_spread", one);
        }
        print_calibration_json("", &r.calib);
        print_calibration_json("mean_path_", &r.calib_mean);
        printf(", \"kl_nats\": [");
        for (int l = 0; l < r.n_kl; l++) {
            printf("%s", l ? ", " : "");
            ib_cli_json_number(stdout, "%.6g", r.kl[l]);
        }
        printf("], \"confusion\": [");
        for (int a = 0; a < C; a++) {
            printf("%s[", a ? ", " : "");
            for (int b = 0; b < C; b++)
                printf("%s%lld", b ? ", " : "", (long long)r.confusion[a * C + b]);
            printf("]");
        }
        printf("]");
        if (want_retrieval)
            printf(", \"retrieval\": {\"gallery\": \"%s\", \"queries\": %lld, \"gallery_size\": %lld, "
                   "\"rank1\": %.6f, \"rank5\": %.6f, \"map\": %.6f}",
                   cross ? "view2" : "self", (long long)ret.queries, (long long)ret.gallery, ret.rank1, ret.rank5,
                   ret.map);
        printf("}\n");
    } else {
        printf("%s on %s/%s (%lld examples)%s\n", pos[0], d->name, split, (long long)r.n,
               ib_net_used_ema(n) ? ", EMA weights" : "");
        if (mo->n_stochastic) {
            printf("  accuracy: %d-sample average %.2f%%   1-shot %.2f%%   mean path %.2f%%\n",
                   samples ? (int)samples : ib_net_eval_samples(n), 100 * r.acc_avg, 100 * r.acc_1shot, 100 * r.acc_mean);
            if (repeats > 1)
                printf("  over %lld draws of the noise (sample seeds %llu..%llu): %d-sample average %.3f%% "
                       "(sd %.3f, %.2f-%.2f)   1-shot %.3f%% (sd %.3f, %.2f-%.2f)\n",
                       (long long)repeats, (unsigned long long)seed0, (unsigned long long)(seed0 + (uint64_t)repeats - 1),
                       samples ? (int)samples : ib_net_eval_samples(n), 100 * avg.mean, 100 * avg.sd, 100 * avg.min,
                       100 * avg.max, 100 * one.mean, 100 * one.sd, 100 * one.min, 100 * one.max);
            printf("  NLL (nats)%s: average %.4f   mean path %.4f\n", repeats > 1 ? " of the first draw" : "",
                   r.nll_avg, r.nll_mean);
            for (int l = 0; l < r.n_kl; l++)
                printf("  KL of %s %d (%s): %.3f nats = %.3f bits\n", bernoulli ? "stochastic layer" : "bottleneck",
                       l + 1, kl_name[l], r.kl[l], r.kl[l] / 0.6931471805599453);
        } else {
            printf("  accuracy %.2f%%   NLL %.4f nats\n", 100 * r.acc_avg, r.nll_avg);
        }
        printf("  calibration%s: ECE %.4f (%d bins)   Brier %.4f   predictive entropy %.4f nats\n",
               mo->n_bottlenecks || mo->n_stochastic ? " of the average" : "", r.calib.ece, IB_CALIBRATION_BINS,
               r.calib.brier, r.calib.entropy);
        printf("  per-class accuracy:");
        for (int a = 0; a < C; a++) {
            int64_t tot = 0;
            for (int b = 0; b < C; b++)
                tot += r.confusion[a * C + b];
            if (d->class_names && a < d->classes)
                printf(" %s", d->class_names[a]);
            else
                printf(" %d", a);
            printf(" %.1f%%", tot ? 100.0 * (double)r.confusion[a * C + a] / (double)tot : 0.0);
            printf(a + 1 < C ? "," : "\n");
        }
        printf("  confusion matrix (rows: true class, columns: predicted):\n");
        for (int a = 0; a < C; a++) {
            printf("   ");
            for (int b = 0; b < C; b++)
                printf(" %5lld", (long long)r.confusion[a * C + b]);
            printf("\n");
        }
        if (want_retrieval)
            printf("  retrieval (%s, mu of the last bottleneck, cosine): %lld queries, gallery %lld: rank-1 %.2f%%   "
                   "rank-5 %.2f%%   mAP %.2f%%\n",
                   cross ? "view-1 queries, view-2 gallery" : "the set against itself", (long long)ret.queries,
                   (long long)ret.gallery, 100 * ret.rank1, 100 * ret.rank5, 100 * ret.map);
    }
    ib_eval_result_free(&r);
    ib_dataset_free(d);
    ib_net_close(n);
    return 0;
}
