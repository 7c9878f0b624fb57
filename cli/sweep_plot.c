/*
 * sweep_plot.c — the plot `ibnet sweep` draws at its end (OUT/sweep.png):
 * a figure of each finished run's summary.json against the grid's first
 * numeric axis, one line per combination of the other axes (a beta sweep
 * over three seeds: test error against beta, one line per seed), through
 * the library's charts (ib_chart_*).  A build without cairo says so and
 * the sweep goes on: the tables are the result, the plot a view of them.
 */
#include "commands.h"
#include "ibnet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int by_x(const void *a, const void *b)
{
    const ib_cli_sweep_point *u = a, *v = b;
    return (u->x > v->x) - (u->x < v->x);
}

int ib_cli_sweep_plot(const char *path, const char *x_key, const char *y_key, ib_cli_sweep_point *p, int n,
                      char *const *series_names, int n_series)
{
    if (!ib_chart_available()) {
        printf("ibnet sweep: no plot: %s; the tables are written\n", ib_chart_unavailable_reason());
        return 0;
    }
    if (n == 0) {
        printf("ibnet sweep: no plot: no finished run has a number '%s' in summary.json\n", y_key);
        return 0;
    }
    char title[256];
    snprintf(title, sizeof title, "sweep: %s against %s", y_key, x_key);
    ib_chart *c = ib_chart_new(title, x_key, y_key);
    double *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
    if (!c || !x || !y) {
        ib_chart_free(c);
        free(x);
        free(y);
        fprintf(stderr, "ibnet sweep: out of memory for the plot\n");
        return 1;
    }
    qsort(p, (size_t)n, sizeof *p, by_x); /* stable enough: each series is then read in x order */
    bool positive = true;
    double lo = INFINITY, hi = -INFINITY;
    int rc = 0, drawn = 0;
    for (int s = 0; s < n_series && rc == 0; s++) {
        int m = 0;
        for (int i = 0; i < n; i++)
            if (p[i].series == s) {
                x[m] = p[i].x;
                y[m++] = p[i].y;
                positive = positive && p[i].x > 0;
                lo = fmin(lo, p[i].x);
                hi = fmax(hi, p[i].x);
            }
        if (m == 0)
            continue;
        if (drawn == IB_CHART_MAX_SERIES) {
            printf("ibnet sweep: the plot shows the first %d lines of %d\n", IB_CHART_MAX_SERIES, n_series);
            break;
        }
        if (ib_chart_add(c, series_names[s], x, y, NULL, m, IB_CHART_LINES | IB_CHART_POINTS) != IB_OK) {
            fprintf(stderr, "ibnet sweep: plot: %s\n", ib_last_error());
            rc = 1;
        }
        drawn++;
    }
    /* a sweep over decades (beta 1e-8 .. 1) reads on a log axis */
    if (rc == 0 && positive && hi >= 100 * lo)
        ib_chart_log_x(c, true);
    if (rc == 0 && ib_chart_save(c, path, 900, 600) != IB_OK) {
        fprintf(stderr, "ibnet sweep: cannot write the plot %s: %s\n", path, ib_last_error());
        rc = 1;
    }
    if (rc == 0)
        printf("ibnet sweep: plot of %s against %s in %s\n", y_key, x_key, path);
    ib_chart_free(c);
    free(x);
    free(y);
    return rc;
}
