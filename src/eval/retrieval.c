/*
 * retrieval.c — embedding and retrieval in the Re-ID style (docs/vsd.md):
 * the mean mu of a network's last Gaussian bottleneck as the embedding of
 * an image, and queries ranked against a gallery by cosine similarity,
 * scored by rank-1, rank-5 and mean average precision with the class as
 * the identity.  Cross-view retrieval of two-view data (view-1 queries,
 * view-2 gallery) asks whether z keeps what the views share.
 */
#include "../core/internal.h"

#include <math.h>

ib_status ib_net_embed(ib_net *net, const ib_dataset *d, int64_t limit, ib_activations *out)
{
    if (!out)
        return ib__error(IB_ERR_ARG, "ib_net_embed: no output");
    memset(out, 0, sizeof *out);
    const ib_model_out *mo = ib_net_outputs(net);
    if (!mo || !d)
        return ib__error(IB_ERR_ARG, "ib_net_embed: a network and a data set are needed");
    if (mo->n_bottlenecks < 1 || !mo->bn[mo->n_bottlenecks - 1].mu)
        return ib__error(IB_ERR_ARG, "retrieval embeds an image as the mean of a Gaussian bottleneck; this model has "
                         "none");
    const char *name = ib_node_name(mo->bn[mo->n_bottlenecks - 1].mu);
    return ib_net_activations(net, d, &name, 1, limit, true, out);
}

typedef struct scored {
    double s;
    int64_t i;
} scored;

/* Most similar first; ties by gallery index, so the ranking is reproducible. */
static int by_score(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    if (x->s != y->s)
        return x->s > y->s ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static double *unit_rows(const float *v, int64_t n, int64_t dim)
{
    double *u = malloc(sizeof(double) * (size_t)(n * dim > 0 ? n * dim : 1));
    for (int64_t i = 0; u && i < n; i++) {
        double norm = 0;
        for (int64_t k = 0; k < dim; k++)
            norm += (double)v[i * dim + k] * v[i * dim + k];
        norm = sqrt(norm);
        norm = norm > 1e-12 ? norm : 1e-12;
        for (int64_t k = 0; k < dim; k++)
            u[i * dim + k] = v[i * dim + k] / norm;
    }
    return u;
}

ib_status ib_retrieval_eval(const float *q, const int64_t *qid, int64_t nq, const float *g, const int64_t *gid,
                            int64_t ng, int64_t dim, bool exclude_same_index, ib_retrieval *out)
{
    if (!out)
        return ib__error(IB_ERR_ARG, "ib_retrieval_eval: no output");
    memset(out, 0, sizeof *out);
    if (!q || !qid || !g || !gid || nq < 1 || ng < 1 || dim < 1)
        return ib__error(IB_ERR_ARG, "ib_retrieval_eval: queries, a gallery and their identities are needed");
    double *uq = unit_rows(q, nq, dim), *ug = unit_rows(g, ng, dim);
    int64_t *valid = calloc((size_t)nq, sizeof *valid);
    double *r1 = calloc((size_t)nq, sizeof *r1), *r5 = calloc((size_t)nq, sizeof *r5), *ap = calloc((size_t)nq, sizeof *ap);
    ib_status st = uq && ug && valid && r1 && r5 && ap ? IB_OK : IB_ERR_NOMEM;
    if (st == IB_OK) {
#pragma omp parallel
        {
            scored *s = malloc(sizeof *s * (size_t)ng);
#pragma omp for schedule(dynamic, 16)
            for (int64_t i = 0; i < nq; i++) {
                if (!s) {
#pragma omp critical
                    st = IB_ERR_NOMEM;
                    continue;
                }
                int64_t m = 0, relevant = 0;
                for (int64_t j = 0; j < ng; j++) {
                    if (exclude_same_index && j == i)
                        continue;
                    double dot = 0;
                    for (int64_t k = 0; k < dim; k++)
                        dot += uq[i * dim + k] * ug[j * dim + k];
                    s[m++] = (scored){dot, j};
                    relevant += gid[j] == qid[i];
                }
                if (!relevant) /* a query without a match says nothing: left out */
                    continue;
                qsort(s, (size_t)m, sizeof *s, by_score);
                int64_t hits = 0;
                double sum = 0;
                for (int64_t r = 0; r < m && hits < relevant; r++)
                    if (gid[s[r].i] == qid[i]) {
                        if (hits == 0) {
                            r1[i] = r < 1;
                            r5[i] = r < 5;
                        }
                        hits++;
                        sum += (double)hits / (double)(r + 1); /* precision at this hit */
                    }
                ap[i] = sum / (double)relevant;
                valid[i] = 1;
            }
            free(s);
        }
    }
    if (st == IB_OK) {
        for (int64_t i = 0; i < nq; i++)
            if (valid[i]) {
                out->queries++;
                out->rank1 += r1[i];
                out->rank5 += r5[i];
                out->map += ap[i];
            }
        out->gallery = ng;
        if (out->queries) {
            out->rank1 /= (double)out->queries;
            out->rank5 /= (double)out->queries;
            out->map /= (double)out->queries;
        }
    }
    free(uq);
    free(ug);
    free(valid);
    free(r1);
    free(r5);
    free(ap);
    if (st != IB_OK)
        return ib__error(st, "retrieval: out of memory");
    if (!out->queries)
        return ib__error(IB_ERR_ARG, "retrieval: no query has a match of its identity in the gallery");
    return IB_OK;
}
