/*
 * batcher.c — mini-batches for training and evaluation: a shuffle per
 * epoch, uint8 -> float conversion under an explicit input convention,
 * CIFAR-style augmentation (random crop from a zero-padded image, random
 * horizontal flip) and a background thread that prepares the next batch
 * while the current one trains.
 *
 * Every random choice is keyed, never drawn from a running generator: the
 * order of epoch e is a Fisher-Yates shuffle keyed by (seed, e), the
 * augmentation of example i in epoch e is keyed by (seed, e, i).  Batch j
 * is therefore a pure function of (seed, e, j), which is what lets the
 * prefetch thread compute it ahead of time and give exactly what the
 * synchronous path gives.
 *
 * Conversion goes through a 256-entry table per channel, so the inner
 * loop is one load and one store per pixel (the benchmark needs
 * >= 20,000 CIFAR images/s on one thread).
 */
#include "data/dataset_internal.h"

#include <math.h>
#include <pthread.h>
#include <time.h>

typedef struct slot {
    float *x;      /* (batch, c, h, w) */
    int32_t *y;    /* (batch) */
    int64_t *idx;  /* (batch) */
    int64_t count, batch;
    bool ready;
} slot;

struct ib_batcher {
    const ib_dataset *d;
    ib_batcher_config cfg;
    int64_t per;           /* c*h*w */
    int64_t nb;            /* batches per epoch */
    int64_t *perm;         /* (n) order of the current epoch */
    float lut[4][256];     /* pixel value -> input, per channel */
    uint64_t shuffle_stream, aug_stream;
    int64_t epoch;
    bool started;
    int64_t next_consume;  /* batch the consumer gets next */
    int64_t *last_idx;     /* (batch) indices of the batch last returned */
    int64_t last_count;
    double wait_s;
    /* prefetch: one producer thread, two slots */
    bool threaded;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv_prod, cv_cons;
    slot slots[2];
    int64_t next_produce;
    uint64_t gen;          /* bumped by each epoch start: stale work is dropped */
    bool busy, quit;
    int rank, ranks;       /* ib_batcher_shard: the rows of each batch this rank takes */
};

const char *ib_input_norm_name(ib_input_norm n)
{
    switch (n) {
    case IB_NORM_UNIT: return "unit";
    case IB_NORM_SYMMETRIC: return "symmetric";
    case IB_NORM_STANDARDIZE: return "standardize";
    }
    return "unknown";
}

ib_status ib_input_norm_parse(const char *s, ib_input_norm *out)
{
    static const ib_input_norm all[] = {IB_NORM_UNIT, IB_NORM_SYMMETRIC, IB_NORM_STANDARDIZE};
    for (int k = 0; s && k < 3; k++)
        if (strcmp(s, ib_input_norm_name(all[k])) == 0) {
            *out = all[k];
            return IB_OK;
        }
    return ib__error(IB_ERR_ARG, "unknown input normalisation '%s' (unit, symmetric or standardize)", s ? s : "(null)");
}

static double norm_value(const ib_batcher_config *cfg, int c, int v)
{
    double p = v / 255.0;
    switch (cfg->norm) {
    case IB_NORM_UNIT: return p;
    case IB_NORM_SYMMETRIC: return 2.0 * p - 1.0;
    case IB_NORM_STANDARDIZE: return (p - cfg->mean[c]) / cfg->std[c];
    }
    return p;
}

void ib_batcher_input_range(const ib_batcher_config *cfg, int c, float *lo, float *hi)
{
    int k = c < 0 ? 0 : c > 3 ? 3 : c;
    *lo = (float)norm_value(cfg, k, 0);
    *hi = (float)norm_value(cfg, k, 255);
}

/* Example i of the data set into dst (c, h, w), augmented for epoch e. */
static void write_example(const ib_batcher *b, int64_t i, float *dst)
{
    const ib_dataset *d = b->d;
    const int C = d->c, H = d->h, W = d->w;
    const uint8_t *src = d->images + i * b->per;
    const int P = b->cfg.crop_pad;
    int dx = 0, dy = 0;
    bool flip = false;
    if (P > 0 || b->cfg.hflip) {
        uint64_t r = ib_rng_u64(b->cfg.seed, b->aug_stream, (uint64_t)b->epoch, (uint64_t)i);
        if (P > 0) {
            /* top-left corner of the crop in the padded image, in [0, 2P] */
            dx = (int)((r & 0xFFFFF) % (uint64_t)(2 * P + 1)) - P;
            dy = (int)(((r >> 20) & 0xFFFFF) % (uint64_t)(2 * P + 1)) - P;
        }
        flip = b->cfg.hflip && ((r >> 63) & 1);
    }
    if (dx == 0 && dy == 0 && !flip) {
        for (int c = 0; c < C; c++) {
            const float *lut = b->lut[c < 4 ? c : 3];
            const uint8_t *s = src + (int64_t)c * H * W;
            float *o = dst + (int64_t)c * H * W;
            for (int64_t p = 0; p < (int64_t)H * W; p++)
                o[p] = lut[s[p]];
        }
        return;
    }
    /* out(y, x) = padded(y + dy, x' + dx), x' = flip ? W-1-x : x: the crop
     * first, then the flip of the crop (torchvision's order). */
    int lo, hi;
    if (!flip) {
        lo = dx < 0 ? -dx : 0;
        hi = dx > 0 ? W - dx : W;
    } else {
        lo = dx > 0 ? dx : 0;
        hi = dx < 0 ? W + dx : W;
    }
    if (lo > W)
        lo = W;
    if (hi < lo)
        hi = lo;
    for (int c = 0; c < C; c++) {
        const float *lut = b->lut[c < 4 ? c : 3];
        const float zero = lut[0];
        for (int y = 0; y < H; y++) {
            float *o = dst + ((int64_t)c * H + y) * W;
            int sy = y + dy;
            if (sy < 0 || sy >= H) {
                for (int x = 0; x < W; x++)
                    o[x] = zero;
                continue;
            }
            const uint8_t *s = src + ((int64_t)c * H + sy) * W;
            for (int x = 0; x < lo; x++)
                o[x] = zero;
            if (!flip)
                for (int x = lo; x < hi; x++)
                    o[x] = lut[s[x + dx]];
            else
                for (int x = lo; x < hi; x++)
                    o[x] = lut[s[W - 1 - x + dx]];
            for (int x = hi; x < W; x++)
                o[x] = zero;
        }
    }
}

/* Batch j of the current epoch; returns the number of examples. */
static int64_t produce(const ib_batcher *b, int64_t j, float *x, int32_t *y, int64_t *idx)
{
    int64_t bs = b->cfg.batch_size;
    int64_t start = j * bs;
    int64_t count = b->d->n - start < bs ? b->d->n - start : bs;
    if (b->ranks > 1) { /* this rank's rows of the global batch */
        int64_t first, n;
        ib_shard_rows(count, b->rank, b->ranks, &first, &n);
        start += first;
        count = n;
    }
    for (int64_t k = 0; k < count; k++) {
        int64_t i = b->perm[start + k];
        idx[k] = i;
        y[k] = b->d->labels[i];
        write_example(b, i, x + k * b->per);
    }
    return count;
}

static void *producer(void *arg)
{
    ib_batcher *b = arg;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->quit && !(b->started && b->next_produce < b->nb && !b->slots[b->next_produce % 2].ready))
            pthread_cond_wait(&b->cv_prod, &b->mu);
        if (b->quit)
            break;
        int64_t j = b->next_produce++;
        slot *s = &b->slots[j % 2];
        uint64_t gen = b->gen;
        b->busy = true;
        pthread_mutex_unlock(&b->mu);
        int64_t count = produce(b, j, s->x, s->y, s->idx);
        pthread_mutex_lock(&b->mu);
        b->busy = false;
        if (gen == b->gen) {
            s->count = count;
            s->batch = j;
            s->ready = true;
        }
        pthread_cond_broadcast(&b->cv_cons);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

ib_status ib_batcher_new(const ib_dataset *d, const ib_batcher_config *cfg, ib_batcher **out)
{
    if (out)
        *out = NULL;
    if (!d || !cfg || !out)
        return ib__error(IB_ERR_ARG, "ib_batcher_new: NULL argument");
    ib_status s = ib_dataset_check(d);
    if (s != IB_OK)
        return s;
    if (cfg->batch_size <= 0)
        return ib__error(IB_ERR_ARG, "ib_batcher_new(%s): batch size %lld must be positive", d->name,
                         (long long)cfg->batch_size);
    if (cfg->crop_pad < 0 || cfg->crop_pad >= d->h || cfg->crop_pad >= d->w)
        return ib__error(IB_ERR_ARG, "ib_batcher_new(%s): crop padding %d must be in [0, %d) for %dx%d images", d->name,
                         cfg->crop_pad, d->h < d->w ? d->h : d->w, d->h, d->w);
    if ((unsigned)cfg->norm > IB_NORM_STANDARDIZE)
        return ib__error(IB_ERR_ARG, "ib_batcher_new(%s): unknown input normalisation %d", d->name, (int)cfg->norm);
    if (cfg->norm == IB_NORM_STANDARDIZE && d->c > 4)
        return ib__error(IB_ERR_ARG, "ib_batcher_new(%s): per-channel statistics are limited to 4 channels (%d)",
                         d->name, d->c);
    ib_batcher *b = calloc(1, sizeof *b);
    if (!b)
        return ib__error(IB_ERR_NOMEM, "ib_batcher_new: out of memory");
    b->d = d;
    b->cfg = *cfg;
    b->ranks = 1;
    if (cfg->norm == IB_NORM_STANDARDIZE) {
        if (cfg->std[0] == 0.0f) {
            double m[4], sd[4];
            ib_dataset_channel_stats(d, m, sd);
            for (int c = 0; c < d->c; c++) {
                b->cfg.mean[c] = (float)m[c];
                b->cfg.std[c] = sd[c] > 0 ? (float)sd[c] : 1.0f; /* a constant channel: only centre it */
            }
        }
        for (int c = 0; c < d->c; c++)
            if (!(b->cfg.std[c] > 0.0f) || !isfinite(b->cfg.mean[c])) {
                free(b);
                return ib__error(IB_ERR_ARG, "ib_batcher_new(%s): channel %d has mean %g, std %g (std must be > 0)",
                                 d->name, c, (double)cfg->mean[c], (double)cfg->std[c]);
            }
    }
    for (int c = 0; c < 4; c++)
        for (int v = 0; v < 256; v++)
            b->lut[c][v] = (float)norm_value(&b->cfg, c < d->c ? c : 0, v);
    b->per = (int64_t)d->c * d->h * d->w;
    b->nb = cfg->drop_last ? d->n / cfg->batch_size : (d->n + cfg->batch_size - 1) / cfg->batch_size;
    b->shuffle_stream = ib_rng_stream_of("data.shuffle");
    b->aug_stream = ib_rng_stream_of("data.augment");
    b->perm = malloc((size_t)(d->n ? d->n : 1) * sizeof *b->perm);
    b->last_idx = malloc((size_t)cfg->batch_size * sizeof *b->last_idx);
    bool ok = b->perm && b->last_idx;
    b->threaded = cfg->prefetch;
    for (int k = 0; ok && b->threaded && k < 2; k++) {
        b->slots[k].x = malloc((size_t)(cfg->batch_size * b->per) * sizeof(float));
        b->slots[k].y = malloc((size_t)cfg->batch_size * sizeof(int32_t));
        b->slots[k].idx = malloc((size_t)cfg->batch_size * sizeof(int64_t));
        ok = b->slots[k].x && b->slots[k].y && b->slots[k].idx;
    }
    if (ok && b->threaded) {
        pthread_mutex_init(&b->mu, NULL);
        pthread_cond_init(&b->cv_prod, NULL);
        pthread_cond_init(&b->cv_cons, NULL);
        if (pthread_create(&b->thread, NULL, producer, b) != 0) {
            pthread_mutex_destroy(&b->mu);
            pthread_cond_destroy(&b->cv_prod);
            pthread_cond_destroy(&b->cv_cons);
            b->threaded = false; /* still usable; fall back to the synchronous path */
        }
    }
    if (!ok) {
        b->threaded = false;
        ib_batcher_free(b);
        return ib__error(IB_ERR_NOMEM, "ib_batcher_new(%s): out of memory for batches of %lld", d->name,
                         (long long)cfg->batch_size);
    }
    *out = b;
    return IB_OK;
}

void ib_batcher_free(ib_batcher *b)
{
    if (!b)
        return;
    if (b->threaded) {
        pthread_mutex_lock(&b->mu);
        b->quit = true;
        pthread_cond_broadcast(&b->cv_prod);
        pthread_mutex_unlock(&b->mu);
        pthread_join(b->thread, NULL);
        pthread_mutex_destroy(&b->mu);
        pthread_cond_destroy(&b->cv_prod);
        pthread_cond_destroy(&b->cv_cons);
    }
    for (int k = 0; k < 2; k++) {
        free(b->slots[k].x);
        free(b->slots[k].y);
        free(b->slots[k].idx);
    }
    free(b->perm);
    free(b->last_idx);
    free(b);
}

static void make_order(ib_batcher *b)
{
    int64_t n = b->d->n;
    for (int64_t i = 0; i < n; i++)
        b->perm[i] = i;
    if (!b->cfg.shuffle)
        return;
    for (int64_t i = n - 1; i > 0; i--) {
        uint64_t r = ib_rng_u64(b->cfg.seed, b->shuffle_stream, (uint64_t)b->epoch, (uint64_t)i);
        /* uniform in [0, i] by a 64x64->128 multiply (bias < 2^-30 for any n here) */
        int64_t j = (int64_t)(((unsigned __int128)r * (uint64_t)(i + 1)) >> 64);
        int64_t t = b->perm[i];
        b->perm[i] = b->perm[j];
        b->perm[j] = t;
    }
}

void ib_shard_rows(int64_t count, int rank, int ranks, int64_t *first, int64_t *n)
{
    if (ranks < 1 || rank < 0 || rank >= ranks || count < 0) {
        *first = 0;
        *n = count > 0 ? count : 0;
        return;
    }
    int64_t q = count / ranks, extra = count % ranks;
    *first = (int64_t)rank * q + (rank < extra ? rank : extra);
    *n = q + (rank < extra ? 1 : 0);
}

ib_status ib_batcher_shard(ib_batcher *b, int rank, int ranks)
{
    if (!b)
        return ib__error(IB_ERR_ARG, "ib_batcher_shard: NULL batcher");
    if (ranks < 1 || rank < 0 || rank >= ranks || ranks > b->cfg.batch_size)
        return ib__error(IB_ERR_ARG, "ib_batcher_shard: rank %d of %d ranks over batches of %lld (each rank needs a row)",
                         rank, ranks, (long long)b->cfg.batch_size);
    if (b->threaded) { /* the producer reads rank/ranks: change them between its batches */
        pthread_mutex_lock(&b->mu);
        b->gen++;
        while (b->busy)
            pthread_cond_wait(&b->cv_cons, &b->mu);
        b->slots[0].ready = b->slots[1].ready = false;
        b->started = false;
    }
    b->rank = rank;
    b->ranks = ranks;
    b->started = false;
    if (b->threaded)
        pthread_mutex_unlock(&b->mu);
    return IB_OK;
}

void ib_batcher_epoch(ib_batcher *b, int64_t epoch)
{
    if (!b)
        return;
    if (b->threaded) {
        pthread_mutex_lock(&b->mu);
        b->gen++;
        while (b->busy) /* the producer reads perm: let it finish its batch */
            pthread_cond_wait(&b->cv_cons, &b->mu);
        b->slots[0].ready = b->slots[1].ready = false;
    }
    b->epoch = epoch;
    make_order(b);
    b->next_consume = 0;
    b->next_produce = 0;
    b->last_count = 0;
    b->started = true;
    if (b->threaded) {
        pthread_cond_broadcast(&b->cv_prod);
        pthread_mutex_unlock(&b->mu);
    }
}

bool ib_batcher_next(ib_batcher *b, float *x, int32_t *y, int64_t *count)
{
    if (count)
        *count = 0;
    if (!b || !x || !y || !b->started || b->next_consume >= b->nb)
        return false;
    int64_t j = b->next_consume;
    double t0 = ib__now_s();
    int64_t got;
    if (!b->threaded) {
        got = produce(b, j, x, y, b->last_idx);
        b->wait_s += ib__now_s() - t0;
    } else {
        slot *s = &b->slots[j % 2];
        pthread_mutex_lock(&b->mu);
        while (!(s->ready && s->batch == j))
            pthread_cond_wait(&b->cv_cons, &b->mu);
        pthread_mutex_unlock(&b->mu);
        b->wait_s += ib__now_s() - t0;
        /* The producer leaves a ready slot alone, so copying unlocked is safe. */
        got = s->count;
        memcpy(x, s->x, (size_t)(got * b->per) * sizeof *x);
        memcpy(y, s->y, (size_t)got * sizeof *y);
        memcpy(b->last_idx, s->idx, (size_t)got * sizeof *b->last_idx);
        pthread_mutex_lock(&b->mu);
        s->ready = false;
        pthread_cond_broadcast(&b->cv_prod);
        pthread_mutex_unlock(&b->mu);
    }
    b->next_consume++;
    b->last_count = got;
    if (count)
        *count = got;
    return true;
}

const int64_t *ib_batcher_indices(const ib_batcher *b) { return b ? b->last_idx : NULL; }
int64_t ib_batcher_batches_per_epoch(const ib_batcher *b) { return b ? b->nb : 0; }
const ib_batcher_config *ib_batcher_get_config(const ib_batcher *b) { return b ? &b->cfg : NULL; }
double ib_batcher_wait_seconds(const ib_batcher *b) { return b ? b->wait_s : 0.0; }
