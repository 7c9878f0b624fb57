/*
 * gradcheck.c — finite-difference gradient checking as a library call, so
 * users can check their own compositions, not only our tests.
 */
#include "internal.h"

#include <math.h>

static double eval_loss(ib_graph *g, ib_node *loss, uint64_t step)
{
    g->step = step;
    ib_graph_forward(g);
    return (double)loss->value[0];
}

ib_status ib_graph_gradcheck(ib_graph *g, ib_node *loss, ib_node *wrt, float eps, double *max_err,
                             int64_t *where)
{
    if (!g || !loss || !wrt || !max_err || eps <= 0)
        return ib__error(IB_ERR_ARG, "ib_graph_gradcheck: bad argument");
    if (!g->compiled)
        return ib__error(IB_ERR_STATE, "ib_graph_gradcheck: the graph is not compiled");
    if (wrt->kind == IB__OP || wrt->dtype != IB_F32)
        return ib__error(IB_ERR_ARG, "ib_graph_gradcheck: '%s' is not a float input or parameter", wrt->name);
    uint64_t step = g->step;
    bool had_req = wrt->requires_grad;
    wrt->requires_grad = true;
    bool had_frozen = wrt->kind == IB__PARAM && ib_params_frozen(g->params, wrt->param_index);
    eval_loss(g, loss, step);
    ib_params_zero_grad(g->params);
    ib_status s = ib_graph_backward(g, loss);
    wrt->requires_grad = had_req;
    if (s != IB_OK)
        return s;
    if (had_frozen)
        return ib__error(IB_ERR_ARG, "ib_graph_gradcheck: parameter '%s' is frozen", wrt->name);
    int64_t n = wrt->numel;
    double *analytic = malloc((size_t)n * sizeof(double));
    double *numeric = malloc((size_t)n * sizeof(double));
    if (!analytic || !numeric) {
        free(analytic);
        free(numeric);
        return ib__error(IB_ERR_NOMEM, "ib_graph_gradcheck: out of memory");
    }
    for (int64_t k = 0; k < n; k++)
        analytic[k] = wrt->grad[k];
    double scale = 0;
    for (int64_t k = 0; k < n; k++) {
        float orig = wrt->value[k];
        wrt->value[k] = orig + eps;
        double lp = eval_loss(g, loss, step);
        wrt->value[k] = orig - eps;
        double lm = eval_loss(g, loss, step);
        wrt->value[k] = orig;
        /* Divide by the step actually taken in float32. */
        double h = (double)(orig + eps) - (double)(orig - eps);
        numeric[k] = (lp - lm) / h;
        if (fabs(numeric[k]) > scale)
            scale = fabs(numeric[k]);
    }
    eval_loss(g, loss, step);
    /* Errors are relative to the largest gradient element: float32 finite
     * differences cannot resolve elements far below it. */
    if (scale < 1e-6)
        scale = 1e-6;
    double worst = 0;
    int64_t at = 0;
    for (int64_t k = 0; k < n; k++) {
        double e = fabs(analytic[k] - numeric[k]) / scale;
        if (!(e <= worst)) { /* also catches NaN */
            worst = isnan(e) ? INFINITY : e;
            at = k;
        }
    }
    *max_err = worst;
    if (where)
        *where = at;
    free(analytic);
    free(numeric);
    g->step = step;
    return IB_OK;
}
