/*
 * cmd_attack.c — `ibnet attack CHECKPOINT`: adversarial robustness of a
 * trained network (FGSM, PGD, Carlini–Wagner L2; docs/attacks.md).  The
 * checkpoint is opened as a network whose graph gets the attack head
 * before it is compiled; the attack itself is one library call
 * (ib_attack_run), in pixel units, fair to stochastic networks.  The
 * report per eps: clean and robust accuracy, success rate, the size of the
 * successful perturbations; the same as JSON (--json).  --out saves the
 * adversarial images, rounded to bytes, in the data set's own format (IDX
 * for grey images, CIFAR binary for 32x32 colour, as `ibnet corrupt`), so
 * `ibnet eval --dataset idx:DIR` re-checks them; --grid draws clean,
 * perturbation and adversarial images side by side.
 *
 * Every flag is checked before the checkpoint is read: a user error exits
 * 2 before any work.
 */
#include "args.h"
#include "commands.h"
#include "ibnet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_GRID_ROWS = 64 };

/* "0.1,0.2,8/255" -> eps[]; a fraction a/b is allowed so CIFAR's 8/255 is
 * written as people write it.  Returns the count, -1 on a malformed list. */
static int parse_eps(const char *s, float *eps, int max)
{
    int n = 0;
    while (*s) {
        char *end;
        double v = strtod(s, &end);
        if (end == s)
            return -1;
        if (*end == '/') {
            const char *t = end + 1;
            double d = strtod(t, &end);
            if (end == t || !(d > 0))
                return -1;
            v /= d;
        }
        if (n == max || !isfinite(v) || (*end && *end != ','))
            return -1;
        eps[n++] = (float)v;
        s = *end ? end + 1 : end;
        if (*s == 0 && end[0] == ',')
            return -1; /* a trailing comma */
    }
    return n;
}

/* Out of memory while saving: said here, since the library's last error
 * belongs to the last library call. */
static ib_status out_of_memory(const char *what)
{
    fprintf(stderr, "ibnet attack: out of memory for %s\n", what);
    return IB_ERR_NOMEM;
}

/* The folder of one row under --out: eps_0.1, or unbounded for CW. */
static void row_dir(char *buf, size_t len, const char *out, float eps)
{
    if (isinf(eps))
        snprintf(buf, len, "%s/unbounded", out);
    else
        snprintf(buf, len, "%s/eps_%g", out, (double)eps);
}

static void put_be32(unsigned char *b, uint32_t v)
{
    b[0] = (unsigned char)(v >> 24);
    b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8);
    b[3] = (unsigned char)v;
}

/* One file written atomically: a header, then a body. */
static ib_status write_file(const char *path, const void *head, size_t nh, const void *body, size_t nb)
{
    unsigned char *all = malloc(nh + nb ? nh + nb : 1);
    if (!all) {
        fprintf(stderr, "ibnet attack: out of memory writing %s\n", path);
        return IB_ERR_NOMEM;
    }
    memcpy(all, head, nh);
    if (nb)
        memcpy(all + nh, body, nb);
    ib_status s = ib_file_write_atomic(path, all, nh + nb);
    free(all);
    return s;
}

/* The adversarial images of one row with the true labels, in the data
 * set's format: IDX (t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte) for
 * grey images, CIFAR-10 binary (test_batch.bin) for 32x32 colour.  The
 * name of what was written goes to file. */
static ib_status save_row(const char *dir, const ib_dataset *d, const uint8_t *imgs, char *file, size_t flen)
{
    ib_status s = ib_mkdirs(dir);
    if (s != IB_OK)
        return s;
    size_t D = (size_t)d->c * d->h * d->w, n = (size_t)d->n;
    char path[4200];
    if (d->c == 1) {
        unsigned char h[16];
        uint8_t *lab = malloc(n ? n : 1);
        if (!lab)
            return out_of_memory("the adversarial images");
        for (size_t i = 0; i < n; i++)
            lab[i] = (uint8_t)d->labels[i];
        put_be32(h, 0x803);
        put_be32(h + 4, (uint32_t)n);
        put_be32(h + 8, (uint32_t)d->h);
        put_be32(h + 12, (uint32_t)d->w);
        snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", dir);
        s = write_file(path, h, 16, imgs, n * D);
        if (s == IB_OK) {
            put_be32(h, 0x801);
            put_be32(h + 4, (uint32_t)n);
            snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte", dir);
            s = write_file(path, h, 8, lab, n);
        }
        free(lab);
        snprintf(file, flen, "%s/t10k-*-ubyte", dir);
        return s;
    }
    uint8_t *buf = malloc(n * (D + 1) + 1);
    if (!buf)
        return out_of_memory("the adversarial images");
    for (size_t i = 0; i < n; i++) {
        buf[i * (D + 1)] = (uint8_t)d->labels[i];
        memcpy(buf + i * (D + 1) + 1, imgs + i * D, D);
    }
    snprintf(path, sizeof path, "%s/test_batch.bin", dir);
    s = write_file(path, buf, n * (D + 1), NULL, 0);
    free(buf);
    snprintf(file, flen, "%s", path);
    return s;
}

/* Rows of the grid: one example each; columns: the clean image, then per
 * eps the perturbation (mid-grey = none, scaled to the largest change of
 * that image so small ones show) and the adversarial image. */
static ib_status write_grid(const char *path, const ib_dataset *d, const ib_attack_result *r, int rows, int scale)
{
    int c = d->c <= 4 ? d->c : 3; /* PNG holds at most 4 channels: show the first 3 */
    size_t HW = (size_t)d->h * d->w, D = (size_t)d->c * HW, T = (size_t)c * HW;
    int cols = 1 + 2 * r->n_rows;
    uint8_t *tiles = malloc((size_t)rows * cols * T);
    if (!tiles)
        return out_of_memory("the grid");
    for (int i = 0; i < rows; i++) {
        const uint8_t *clean = d->images + (size_t)i * D;
        uint8_t *t = tiles + (size_t)i * cols * T;
        memcpy(t, clean, T);
        for (int k = 0; k < r->n_rows; k++) {
            const uint8_t *adv = r->rows[k].images_u8 + (size_t)i * D;
            int big = 0;
            for (size_t j = 0; j < T; j++)
                big = abs(adv[j] - clean[j]) > big ? abs(adv[j] - clean[j]) : big;
            uint8_t *pert = t + (size_t)(1 + 2 * k) * T;
            for (size_t j = 0; j < T; j++)
                pert[j] = (uint8_t)(128 + (big ? (int)lround(127.0 * (adv[j] - clean[j]) / big) : 0));
            memcpy(t + (size_t)(2 + 2 * k) * T, adv, T);
        }
    }
    ib_status s = ib_png_write_grid(path, tiles, rows * cols, c, d->h, d->w, cols, 2, scale, 255);
    free(tiles);
    return s;
}

/* A JSON string: quotes, backslashes and control bytes escaped (paths are
 * the user's). */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void json_eps(FILE *f, float eps)
{
    if (isinf(eps))
        fprintf(f, "null");
    else {
        /* the shortest decimal that reads back as the float: 0.1, not 0.100000001 */
        char buf[32];
        for (int prec = 1; prec <= 9; prec++) {
            snprintf(buf, sizeof buf, "%.*g", prec, (double)eps);
            if ((float)strtod(buf, NULL) == eps)
                break;
        }
        fputs(buf, f);
    }
}

int ib_cmd_attack(int argc, char **argv)
{
    const char *attack = NULL, *norm = NULL, *eps_list = NULL, *loss = NULL, *dataset = NULL, *data = NULL;
    const char *out_dir = NULL, *grid = NULL;
    int64_t steps = 0, restarts = 1, eot = 0, limit = 1000, seed = 1, batch = 100, threads = 0;
    int64_t search_steps = 9, grid_rows = 8, grid_scale = 2;
    double step_size = 0, kappa = 0;
    bool targeted = false, json = false, no_verify = false, no_ema = false, no_hash = false, no_mean_path = false;
    arg_spec specs[] = {
        {"--attack", ARG_STRING, &attack, "NAME", "the attack (required)", "fgsm|pgd|cw", 0},
        {"--norm", ARG_STRING, &norm, "NORM", "the ball (default: linf; cw: l2, its only norm)", "linf|l2", 0},
        {"--eps", ARG_STRING, &eps_list, "LIST", "radii in pixel units [0, 1], comma-separated; a/b allowed (8/255) "
         "(default: 0.1,0.2,0.3; cw: one unbounded row)", NULL, 0},
        {"--steps", ARG_INT, &steps, "K", "PGD iterations, or CW Adam iterations per c (default: 40; cw: 1000)", NULL, 0},
        {"--step-size", ARG_FLOAT, &step_size, "X", "PGD step in pixels, or CW's Adam learning rate (default: 2.5 "
         "eps / steps; cw: 0.01)", NULL, 0},
        {"--restarts", ARG_INT, &restarts, "R", "PGD random starts; the worst case per example is kept", NULL, 0},
        {"--targeted", ARG_FLAG, &targeted, NULL, "push each example to a random other class (keyed by the seed)",
         NULL, 0},
        {"--loss", ARG_STRING, &loss, "LOSS", "the loss FGSM and PGD ascend (default: fgsm ce, pgd both: the "
         "stronger per example)", "ce|margin|both", 0},
        {"--eot", ARG_INT, &eot, "S", "stochastic networks: samples averaged for the gradient and the prediction "
         "(default: the training run's, 12)", NULL, 0},
        {"--no-mean-path", ARG_FLAG, &no_mean_path, NULL, "stochastic networks: skip the attack through z = mu",
         NULL, 0},
        {"--kappa", ARG_FLOAT, &kappa, "K", "CW confidence: stop pushing at margin >= K", NULL, 0},
        {"--search-steps", ARG_INT, &search_steps, "N", "CW binary-search steps over c", NULL, 0},
        {"--limit", ARG_INT, &limit, "N", "attack the first N test images (0: all)", NULL, 0},
        {"--seed", ARG_INT, &seed, "N", "keys every random draw (starts, targets, noise)", NULL, 0},
        {"--dataset", ARG_STRING, &dataset, "SPEC", "data set: mnist, fashion-mnist, cifar10, idx:DIR, folder:ROOT "
         "(default: the one the model was trained on)", NULL, 0},
        {"--data", ARG_STRING, &data, "DIR", "where the data set lives", NULL, 0},
        {"--batch-size", ARG_INT, &batch, "N", "examples attacked at once (at most --limit)", NULL, 0},
        {"--out", ARG_STRING, &out_dir, "DIR", "save the adversarial images (8-bit) per eps in DIR/eps_<eps>/ "
         "(cw unbounded: DIR/unbounded/) in the data set's format, and the report as DIR/attack.json", NULL, 0},
        {"--grid", ARG_STRING, &grid, "FILE.png", "a PNG: rows examples, columns clean, then per eps the "
         "perturbation and the adversarial image", NULL, 0},
        {"--grid-rows", ARG_INT, &grid_rows, "N", "examples in the grid", NULL, 0},
        {"--grid-scale", ARG_INT, &grid_scale, "K", "enlarge grid tiles K times", NULL, 0},
        {"--no-ema", ARG_FLAG, &no_ema, NULL, "use the raw weights even if the file holds an EMA average", NULL, 0},
        {"--no-hash", ARG_FLAG, &no_hash, NULL, "skip the sha256 check of the data files", NULL, 0},
        {"--no-verify", ARG_FLAG, &no_verify, NULL, "skip the checksums of the checkpoint's tensors", NULL, 0},
        {"--threads", ARG_INT, &threads, "N", "threads", NULL, 0},
        {"--json", ARG_FLAG, &json, NULL, "print the report as JSON: a list of one object per eps", NULL, 0},
    };
    arg_parser p = {"attack", "ibnet attack CHECKPOINT --attack fgsm|pgd|cw [options]",
                    "Adversarial robustness of a checkpoint written by 'ibnet train' on the test split (see "
                    "docs/attacks.md). eps is in pixel units (0.1, 0.2, 0.3 for MNIST; 2/255, 4/255, 8/255 for "
                    "CIFAR-10), the same for every model. Stochastic networks are attacked through the gradient of "
                    "the S-sample average (EOT) and through the mean path, and judged on their S-sample "
                    "prediction; an example is robust only if no attack fooled it.",
                    specs, (int)(sizeof specs / sizeof specs[0]), 1, 1, "CHECKPOINT"};
    char *pos[1];
    int n_pos = 0;
    int rc = args_parse(&p, argc, argv, pos, &n_pos);
    if (rc)
        return rc == 1 ? 0 : 2;

    /* ---- every user error before any work ---- */
    if (!attack) {
        fprintf(stderr, "ibnet attack: --attack is required (fgsm, pgd or cw)\n");
        return 2;
    }
    ib_attack_kind kind;
    if (ib_attack_kind_parse(attack, &kind) != IB_OK) {
        fprintf(stderr, "ibnet attack: --attack: %s\n", ib_last_error());
        return 2;
    }
    ib_attack_config cfg = ib_attack_config_default(kind);
    if (norm && ib_attack_norm_parse(norm, &cfg.norm) != IB_OK) {
        fprintf(stderr, "ibnet attack: --norm: %s\n", ib_last_error());
        return 2;
    }
    if (loss && ib_attack_loss_parse(loss, &cfg.loss) != IB_OK) {
        fprintf(stderr, "ibnet attack: --loss: %s\n", ib_last_error());
        return 2;
    }
    if (eps_list) {
        cfg.n_eps = parse_eps(eps_list, cfg.eps, IB_ATTACK_MAX_EPS);
        if (cfg.n_eps <= 0) {
            fprintf(stderr, "ibnet attack: --eps '%s': expected 1..%d numbers such as 0.1,0.2,0.3 or 8/255\n",
                    eps_list, IB_ATTACK_MAX_EPS);
            return 2;
        }
    }
    if (args_seen(&p, "--steps") && (steps < 1 || steps > 1000000)) {
        fprintf(stderr, "ibnet attack: --steps must be in 1..1000000 (got %lld)\n", (long long)steps);
        return 2;
    }
    if (restarts < 1 || restarts > 10000 || (args_seen(&p, "--eot") && (eot < 1 || eot > 10000)) ||
        search_steps < 1 || search_steps > 100 || limit < 0 || batch < 1 || batch > 100000 || grid_rows < 1 ||
        grid_rows > MAX_GRID_ROWS || grid_scale < 1 || grid_scale > 16 || seed < 0) {
        fprintf(stderr, "ibnet attack: --restarts in 1..10000, --eot in 1..10000, --search-steps in 1..100, "
                        "--limit >= 0, --batch-size in 1..100000, --grid-rows in 1..%d, --grid-scale in 1..16, "
                        "--seed >= 0\n", MAX_GRID_ROWS);
        return 2;
    }
    /* A batch of padding rows costs as much as real ones: never attack more
     * rows at once than --limit asks for. */
    if (limit > 0 && batch > limit)
        batch = limit;
    if (out_dir && strlen(out_dir) > 3900) {
        fprintf(stderr, "ibnet attack: --out: the path is %zu bytes long; at most 3900 are supported\n",
                strlen(out_dir));
        return 2;
    }
    if (args_seen(&p, "--steps"))
        cfg.steps = (int)steps;
    if (args_seen(&p, "--step-size"))
        cfg.step_size = (float)step_size;
    cfg.restarts = (int)restarts;
    cfg.targeted = targeted;
    cfg.mean_path = !no_mean_path;
    cfg.cw_search_steps = (int)search_steps;
    cfg.cw_kappa = (float)kappa;
    cfg.seed = (uint64_t)seed;
    cfg.keep_images = out_dir || grid;
    if (eot)
        cfg.eot_samples = (int)eot;
    if (ib_attack_config_check(&cfg) != IB_OK) {
        fprintf(stderr, "ibnet attack: %s\n", ib_last_error());
        return 2;
    }
    if (threads > 0)
        ib_set_threads((int)threads);

    /* ---- the network: the attack head goes in before compiling ---- */
    ib_net_options no = ib_net_options_default();
    no.batch_size = batch;
    no.weights = no_ema ? IB_NET_WEIGHTS_RAW : IB_NET_WEIGHTS_DEFAULT;
    no.input = IB_NET_INPUT_NORMALIZED; /* the attack maps pixels through the recorded normalisation */
    no.input_grad = true;
    no.defer_compile = true;
    no.skip_checksums = no_verify;
    ib_net *n = NULL;
    if (ib_net_open(pos[0], &no, &n) != IB_OK) {
        fprintf(stderr, "ibnet attack: %s\n", ib_last_error());
        return 2;
    }
    ib_attack_head head;
    ib_status s = ib_attack_head_build(ib_net_graph(n), ib_net_input(n), ib_net_logits(n), &head);
    if (s == IB_OK)
        s = ib_net_compile(n);
    if (s != IB_OK) {
        fprintf(stderr, "ibnet attack: %s\n", ib_last_error());
        ib_net_close(n);
        return 1;
    }
    /* the network's own cross-entropy node reads labels: keep them valid */
    memset(ib_node_labels(ib_net_labels(n)), 0, (size_t)batch * sizeof(int32_t));
    if (!eot)
        cfg.eot_samples = ib_net_eval_samples(n) > 0 ? ib_net_eval_samples(n) : 12;
    int c, h, w;
    ib_model_input_shape(ib_net_model(n), &c, &h, &w);
    ib_pixel_norm pn;
    if (ib_pixel_norm_from(ib_net_batcher_config(n), c, &pn) != IB_OK) {
        fprintf(stderr, "ibnet attack: %s: %s\n", pos[0], ib_last_error());
        ib_net_close(n);
        return 2;
    }

    /* ---- the data ---- */
    ib_load_options lo = {.skip_hash = no_hash};
    ib_dataset *d = NULL;
    s = ib_dataset_open(dataset ? dataset : ib_net_meta(n)->dataset, "test", data, &lo, &d);
    if (s == IB_OK && limit > 0 && limit < d->n) {
        ib_dataset *part = NULL;
        s = ib_dataset_slice(d, 0, limit, &part);
        ib_dataset_free(d);
        d = part;
    }
    if (s != IB_OK) {
        fprintf(stderr, "ibnet attack: %s\n", ib_last_error());
        ib_net_close(n);
        return 2;
    }
    rc = 0;
    if (out_dir && !(d->c == 1 && d->classes <= 256) && !(d->c == 3 && d->h == 32 && d->w == 32 && d->classes <= 256)) {
        fprintf(stderr, "ibnet attack: %s is %dx%dx%d with %d classes: only grey images (IDX) and 32x32 colour "
                        "(CIFAR binary) can be saved with --out; use --grid to look at them\n",
                d->name, d->c, d->h, d->w, d->classes);
        rc = 2;
    }
    if (rc == 0 && grid && grid_rows > d->n)
        grid_rows = d->n;

    /* ---- the attack ---- */
    ib_attack_result r = {0};
    if (rc == 0 && (s = ib_attack_run(&head, &pn, d, &cfg, &r)) != IB_OK) {
        fprintf(stderr, "ibnet attack: %s\n", ib_last_error());
        rc = s == IB_ERR_ARG || s == IB_ERR_SHAPE ? 2 : 1;
    }
    int64_t denom = cfg.targeted ? r.n : llround(r.clean_acc * (double)r.n);
    char files[IB_ATTACK_MAX_EPS][4300];
    for (int k = 0; k < r.n_rows && rc == 0 && out_dir; k++) {
        char dir[4096];
        row_dir(dir, sizeof dir, out_dir, r.rows[k].eps);
        if (save_row(dir, d, r.rows[k].images_u8, files[k], sizeof files[k]) != IB_OK) {
            fprintf(stderr, "ibnet attack: %s\n", ib_last_error());
            rc = 1;
        }
    }
    if (rc == 0 && grid && write_grid(grid, d, &r, (int)grid_rows, (int)grid_scale) != IB_OK) {
        fprintf(stderr, "ibnet attack: %s\n", ib_last_error());
        rc = 1;
    }

    /* ---- the report ---- */
    char *report = NULL;
    size_t report_len = 0;
    FILE *jf = rc == 0 ? open_memstream(&report, &report_len) : NULL;
    if (rc == 0 && !jf) {
        fprintf(stderr, "ibnet attack: out of memory\n");
        rc = 1;
    }
    if (jf) {
        fprintf(jf, "[");
        for (int k = 0; k < r.n_rows; k++) {
            const ib_attack_row *row = &r.rows[k];
            fprintf(jf, "%s\n  {\"attack\": \"%s\", \"norm\": \"%s\", \"eps\": ", k ? "," : "",
                    ib_attack_kind_name(cfg.kind), ib_attack_norm_name(cfg.norm));
            json_eps(jf, row->eps);
            fprintf(jf, ", \"clean_acc\": %.6f, \"robust_acc\": %.6f, \"success_rate\": %.6f, \"mean_l2\": %.6f, "
                        "\"mean_linf\": %.6f, \"robust_acc_u8\": %.6f, \"success_rate_u8\": %.6f, \"fooled\": %lld, "
                        "\"fooled_u8\": %lld, \"n\": %lld, \"targeted\": %s, \"loss\": \"%s\", \"steps\": %d, "
                        "\"step_size\": %.9g, \"restarts\": %d, \"stochastic\": %s, \"samples\": %d, \"mean_path\": "
                        "%s, \"seed\": %llu, \"seconds\": %.3f",
                    r.clean_acc, row->robust_acc, row->success_rate, row->mean_l2, row->mean_linf, row->robust_acc_u8,
                    row->success_rate_u8, (long long)llround(row->success_rate * (double)denom),
                    (long long)llround(row->success_rate_u8 * (double)denom), (long long)r.n,
                    cfg.targeted ? "true" : "false",
                    cfg.kind == IB_ATTACK_CW ? "cw" : ib_attack_loss_name(cfg.loss), cfg.steps,
                    (double)cfg.step_size, cfg.restarts, r.stochastic ? "true" : "false", r.samples,
                    r.stochastic && cfg.mean_path ? "true" : "false", (unsigned long long)cfg.seed, r.seconds);
            fprintf(jf, ", \"checkpoint\": ");
            json_str(jf, pos[0]);
            fprintf(jf, ", \"dataset\": ");
            json_str(jf, d->name);
            if (out_dir) {
                char dir[4096];
                row_dir(dir, sizeof dir, out_dir, row->eps);
                fprintf(jf, ", \"images\": ");
                json_str(jf, dir);
            }
            fprintf(jf, "}");
        }
        fprintf(jf, "\n]\n");
        fclose(jf);
    }
    if (rc == 0 && out_dir) {
        char path[4200];
        snprintf(path, sizeof path, "%s/attack.json", out_dir);
        if (write_file(path, report, report_len, NULL, 0) != IB_OK) {
            fprintf(stderr, "ibnet attack: %s\n", ib_last_error());
            rc = 1;
        }
    }
    if (rc == 0 && json) {
        fputs(report, stdout);
    } else if (rc == 0) {
        printf("%s on %s/test (%lld examples)%s\n", pos[0], d->name, (long long)r.n,
               ib_net_used_ema(n) ? ", EMA weights" : "");
        printf("  attack: %s %s", ib_attack_kind_name(cfg.kind), ib_attack_norm_name(cfg.norm));
        if (cfg.kind != IB_ATTACK_CW)
            printf(", loss %s", ib_attack_loss_name(cfg.loss));
        if (cfg.kind != IB_ATTACK_FGSM)
            printf(", %d steps", cfg.steps);
        if (cfg.kind == IB_ATTACK_PGD)
            printf(", %d restart(s)", cfg.restarts);
        printf(", %s, seed %llu\n", cfg.targeted ? "targeted" : "untargeted", (unsigned long long)cfg.seed);
        if (r.stochastic)
            printf("  stochastic network: gradient of the %d-sample average (EOT)%s, judged on the %d-sample "
                   "prediction\n", cfg.eot_samples, cfg.mean_path ? " and through the mean path" : "", r.samples);
        printf("  clean accuracy %.2f%%\n", 100 * r.clean_acc);
        printf("  %-9s %9s %9s %8s %9s %10s %10s %10s\n", "eps", "robust", "success", "fooled", "mean L2",
               "mean Linf", "robust u8", "fooled u8");
        for (int k = 0; k < r.n_rows; k++) {
            const ib_attack_row *row = &r.rows[k];
            char e[32];
            if (isinf(row->eps))
                snprintf(e, sizeof e, "unbounded");
            else
                snprintf(e, sizeof e, "%g", (double)row->eps);
            printf("  %-9s %8.2f%% %8.2f%% %8lld %9.4f %10.4f %9.2f%% %10lld\n", e, 100 * row->robust_acc,
                   100 * row->success_rate, (long long)llround(row->success_rate * (double)denom), row->mean_l2,
                   row->mean_linf, 100 * row->robust_acc_u8, (long long)llround(row->success_rate_u8 * (double)denom));
        }
        printf("  (success: %s; u8: the images rounded to 8-bit pixels, as saved; fooled u8: how many of them "
               "fool the model after that rounding)\n",
               cfg.targeted ? "classified as the target, over all examples" : "fooled among the clean-correct");
        printf("  %.1f s\n", r.seconds);
        for (int k = 0; k < r.n_rows && out_dir; k++)
            printf("  saved: %s\n", files[k]);
        if (out_dir)
            printf("  report: %s/attack.json\n", out_dir);
        if (grid) {
            printf("  grid: %s (rows: the first %lld examples; columns: clean, then per eps the perturbation and "
                   "the adversarial image)\n", grid, (long long)grid_rows);
            for (int i = 0; i < grid_rows; i++) {
                printf("    row %d: label %d, clean prediction %d, adversarial", i + 1, d->labels[i], r.clean_pred[i]);
                for (int k = 0; k < r.n_rows; k++)
                    printf(" %d", r.rows[k].pred[i]);
                printf("\n");
            }
        }
    }
    free(report);
    ib_attack_result_free(&r);
    ib_dataset_free(d);
    ib_net_close(n);
    return rc;
}
