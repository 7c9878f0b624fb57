/*
 * chart.c — line and point charts drawn with cairo, written as PNG or SVG:
 * the pictures of `ibnet plot` (the information plane, training curves, a
 * sweep) and of any report that wants the same figures.  A chart holds
 * copies of its series; drawing happens only in ib_chart_save, so a build
 * without cairo still builds charts and says, when one is to be saved,
 * that it cannot draw (IB_ERR_UNSUPPORTED).
 *
 * Points may carry a shade in [0, 1] (the epoch of an information-plane
 * point): the point is filled from a dark-blue-to-yellow scale and a
 * colour bar shows what the shade means; the line through them keeps the
 * series' own colour, so each layer stays one recognisable curve.
 */
#include "../core/internal.h"

#include <math.h>
#include <strings.h>

#ifdef IBNET_HAVE_CAIRO
#include "cairo_api.h"
#endif

typedef struct series {
    char name[64];
    int style;
    int64_t n;
    double *x, *y, *shade; /* shade NULL: none */
} series;

struct ib_chart {
    char title[160], x_label[96], y_label[96];
    bool log_x;
    int n;
    series s[IB_CHART_MAX_SERIES];
    bool has_shade;
    char shade_label[64];
    double shade_lo, shade_hi;
};

ib_chart *ib_chart_new(const char *title, const char *x_label, const char *y_label)
{
    ib_chart *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    snprintf(c->title, sizeof c->title, "%s", title ? title : "");
    snprintf(c->x_label, sizeof c->x_label, "%s", x_label ? x_label : "");
    snprintf(c->y_label, sizeof c->y_label, "%s", y_label ? y_label : "");
    return c;
}

void ib_chart_free(ib_chart *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n; i++) {
        free(c->s[i].x);
        free(c->s[i].y);
        free(c->s[i].shade);
    }
    free(c);
}

void ib_chart_log_x(ib_chart *c, bool on)
{
    if (c)
        c->log_x = on;
}

void ib_chart_shade_label(ib_chart *c, const char *label, double lo, double hi)
{
    if (!c)
        return;
    snprintf(c->shade_label, sizeof c->shade_label, "%s", label ? label : "");
    c->shade_lo = lo;
    c->shade_hi = hi;
}

ib_status ib_chart_add(ib_chart *c, const char *name, const double *x, const double *y, const double *shade,
                       int64_t n, int style)
{
    if (!c || !x || !y || n < 0 || !(style & (IB_CHART_LINES | IB_CHART_POINTS)))
        return ib__error(IB_ERR_ARG, "ib_chart_add: bad argument");
    if (c->n == IB_CHART_MAX_SERIES)
        return ib__error(IB_ERR_ARG, "a chart holds at most %d series", IB_CHART_MAX_SERIES);
    series *s = &c->s[c->n];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name ? name : "");
    s->style = style;
    s->n = n;
    size_t bytes = (size_t)(n > 0 ? n : 1) * sizeof(double);
    s->x = malloc(bytes);
    s->y = malloc(bytes);
    s->shade = shade ? malloc(bytes) : NULL;
    if (!s->x || !s->y || (shade && !s->shade)) {
        free(s->x);
        free(s->y);
        free(s->shade);
        return ib__error(IB_ERR_NOMEM, "chart: out of memory");
    }
    memcpy(s->x, x, (size_t)n * sizeof(double));
    memcpy(s->y, y, (size_t)n * sizeof(double));
    if (shade) {
        memcpy(s->shade, shade, (size_t)n * sizeof(double));
        c->has_shade = true;
    }
    c->n++;
    return IB_OK;
}

#ifdef IBNET_HAVE_CAIRO

/* cairo's functions (cairo_api.h), loaded once; ib_chart_save checks that
 * they are there before it draws. */
#define CZ (ib__cairo(NULL))

bool ib_chart_available(void) { return ib__cairo(NULL) != NULL; }

const char *ib_chart_unavailable_reason(void)
{
    static char why[320];
    const char *e = NULL;
    if (ib__cairo(&e))
        return NULL;
    snprintf(why, sizeof why, "cairo cannot be loaded (%s; install libcairo2)", e);
    return why;
}

/* Ten distinct series colours (the common "category10" set). */
static const double palette[10][3] = {
    {0.12, 0.47, 0.71}, {1.00, 0.50, 0.05}, {0.17, 0.63, 0.17}, {0.84, 0.15, 0.16}, {0.58, 0.40, 0.74},
    {0.55, 0.34, 0.29}, {0.89, 0.47, 0.76}, {0.50, 0.50, 0.50}, {0.74, 0.74, 0.13}, {0.09, 0.75, 0.81},
};

/* The shade scale: dark blue through teal and green to yellow. */
static void shade_rgb(double t, double rgb[3])
{
    static const double stops[5][3] = {
        {0.27, 0.00, 0.33}, {0.23, 0.32, 0.55}, {0.13, 0.57, 0.55}, {0.37, 0.79, 0.38}, {0.99, 0.91, 0.14}};
    t = !(t >= 0) ? 0 : t > 1 ? 1 : t;
    double p = t * 4;
    int k = p >= 4 ? 3 : (int)p;
    double f = p - k;
    for (int i = 0; i < 3; i++)
        rgb[i] = stops[k][i] + f * (stops[k + 1][i] - stops[k][i]);
}

typedef struct frame {
    double x0, x1, y0, y1;        /* data range */
    double left, right, top, bottom; /* plot area in pixels */
    bool log_x;
} frame;

static double fx(const frame *f, double x)
{
    double a = f->log_x ? log10(x) : x, lo = f->log_x ? log10(f->x0) : f->x0, hi = f->log_x ? log10(f->x1) : f->x1;
    return f->left + (a - lo) / (hi - lo) * (f->right - f->left);
}

static double fy(const frame *f, double y) { return f->bottom - (y - f->y0) / (f->y1 - f->y0) * (f->bottom - f->top); }

static bool usable(const frame *f, double x, double y)
{
    return isfinite(x) && isfinite(y) && (!f->log_x || x > 0);
}

/* A tick step of 1, 2 or 5 times a power of ten giving about `want` ticks. */
static double nice_step(double span, int want)
{
    double raw = span / want, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

/* Whether [lo, hi] is wide enough to be divided into ticks: values that
 * differ only in their last bits (an estimate at its ceiling, the same up
 * to rounding in every epoch) are one value, else the tick step falls
 * below the spacing of doubles and a tick loop would never advance. */
static bool spread(double lo, double hi)
{
    return hi - lo > 1e-9 * fmax(fabs(lo), fabs(hi));
}

static void range_of(const ib_chart *c, frame *f)
{
    f->x0 = f->y0 = INFINITY;
    f->x1 = f->y1 = -INFINITY;
    f->log_x = c->log_x;
    for (int i = 0; i < c->n; i++)
        for (int64_t k = 0; k < c->s[i].n; k++) {
            double x = c->s[i].x[k], y = c->s[i].y[k];
            if (!usable(f, x, y))
                continue;
            f->x0 = fmin(f->x0, x);
            f->x1 = fmax(f->x1, x);
            f->y0 = fmin(f->y0, y);
            f->y1 = fmax(f->y1, y);
        }
    if (!isfinite(f->x0)) { /* nothing to draw: an empty frame */
        f->x0 = f->log_x ? 1 : 0;
        f->x1 = f->log_x ? 10 : 1;
        f->y0 = 0;
        f->y1 = 1;
    }
    if (f->log_x) {
        if (f->x1 <= f->x0 * 1.0001) {
            f->x0 /= 2;
            f->x1 *= 2;
        }
        double span = log10(f->x1 / f->x0) * 0.04;
        f->x0 /= pow(10, span);
        f->x1 *= pow(10, span);
    } else {
        double pad = spread(f->x0, f->x1) ? (f->x1 - f->x0) * 0.04 : fmax(fabs(f->x0) * 0.1, 0.5);
        f->x0 -= pad;
        f->x1 += pad;
    }
    double pad = spread(f->y0, f->y1) ? (f->y1 - f->y0) * 0.06 : fmax(fabs(f->y0) * 0.1, 0.5);
    f->y0 -= pad;
    f->y1 += pad;
}

static void text_at(cairo_t *cr, const char *s, double x, double y, double ax, double ay)
{
    cairo_text_extents_t e;
    CZ->text_extents(cr, s, &e);
    CZ->move_to(cr, x - ax * e.width - e.x_bearing, y - ay * e.height - e.y_bearing);
    CZ->show_text(cr, s);
}

static void tick_label(double v, double step, char *out, size_t len)
{
    if (fabs(v) < step * 1e-6)
        v = 0;
    int digits = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (fabs(v) >= 1e5 || (v != 0 && fabs(v) < 1e-4))
        snprintf(out, len, "%.2g", v);
    else
        snprintf(out, len, "%.*f", digits, v);
}

static void draw_axes(cairo_t *cr, const ib_chart *c, const frame *f, double w, double h)
{
    CZ->set_source_rgb(cr, 1, 1, 1);
    CZ->paint(cr);
    CZ->select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    CZ->set_font_size(cr, 11);
    CZ->set_line_width(cr, 1);
    /* x ticks and grid */
    if (f->log_x) {
        for (double e = floor(log10(f->x0)); e <= ceil(log10(f->x1)); e++) {
            double v = pow(10, e);
            if (v < f->x0 || v > f->x1)
                continue;
            double px = fx(f, v);
            CZ->set_source_rgb(cr, 0.9, 0.9, 0.9);
            CZ->move_to(cr, px, f->top);
            CZ->line_to(cr, px, f->bottom);
            CZ->stroke(cr);
            char lab[32];
            snprintf(lab, sizeof lab, "1e%d", (int)e);
            CZ->set_source_rgb(cr, 0.2, 0.2, 0.2);
            text_at(cr, lab, px, f->bottom + 6, 0.5, 0);
        }
    } else {
        double step = nice_step(f->x1 - f->x0, 6), first = ceil(f->x0 / step) * step;
        /* counted, not accumulated: a bounded number of ticks whatever the rounding */
        for (int k = 0; k < 100 && first + k * step <= f->x1; k++) {
            double v = first + k * step;
            double px = fx(f, v);
            CZ->set_source_rgb(cr, 0.9, 0.9, 0.9);
            CZ->move_to(cr, px, f->top);
            CZ->line_to(cr, px, f->bottom);
            CZ->stroke(cr);
            char lab[32];
            tick_label(v, step, lab, sizeof lab);
            CZ->set_source_rgb(cr, 0.2, 0.2, 0.2);
            text_at(cr, lab, px, f->bottom + 6, 0.5, 0);
        }
    }
    double step = nice_step(f->y1 - f->y0, 6), first = ceil(f->y0 / step) * step;
    for (int k = 0; k < 100 && first + k * step <= f->y1; k++) {
        double v = first + k * step;
        double py = fy(f, v);
        CZ->set_source_rgb(cr, 0.9, 0.9, 0.9);
        CZ->move_to(cr, f->left, py);
        CZ->line_to(cr, f->right, py);
        CZ->stroke(cr);
        char lab[32];
        tick_label(v, step, lab, sizeof lab);
        CZ->set_source_rgb(cr, 0.2, 0.2, 0.2);
        text_at(cr, lab, f->left - 6, py, 1, 0.5);
    }
    CZ->set_source_rgb(cr, 0.2, 0.2, 0.2);
    CZ->rectangle(cr, f->left, f->top, f->right - f->left, f->bottom - f->top);
    CZ->stroke(cr);
    CZ->set_font_size(cr, 12);
    text_at(cr, c->x_label, (f->left + f->right) / 2, h - 8, 0.5, 1);
    CZ->save(cr);
    CZ->translate(cr, 14, (f->top + f->bottom) / 2);
    CZ->rotate(cr, -M_PI / 2);
    text_at(cr, c->y_label, 0, 0, 0.5, 0);
    CZ->restore(cr);
    CZ->set_font_size(cr, 14);
    text_at(cr, c->title, w / 2, 10, 0.5, 0);
}

static void draw_series(cairo_t *cr, const ib_chart *c, const frame *f)
{
    CZ->save(cr);
    CZ->rectangle(cr, f->left, f->top, f->right - f->left, f->bottom - f->top);
    CZ->clip(cr);
    for (int i = 0; i < c->n; i++) {
        const series *s = &c->s[i];
        const double *col = palette[i % 10];
        if (s->style & IB_CHART_LINES) {
            CZ->set_source_rgb(cr, col[0], col[1], col[2]);
            CZ->set_line_width(cr, 1.6);
            bool pen = false;
            for (int64_t k = 0; k < s->n; k++) {
                if (!usable(f, s->x[k], s->y[k])) {
                    pen = false; /* a gap, not a line through it */
                    continue;
                }
                if (pen)
                    CZ->line_to(cr, fx(f, s->x[k]), fy(f, s->y[k]));
                else
                    CZ->move_to(cr, fx(f, s->x[k]), fy(f, s->y[k]));
                pen = true;
            }
            CZ->stroke(cr);
        }
        if (s->style & IB_CHART_POINTS) {
            CZ->set_line_width(cr, 1);
            for (int64_t k = 0; k < s->n; k++) {
                if (!usable(f, s->x[k], s->y[k]))
                    continue;
                double rgb[3] = {col[0], col[1], col[2]};
                if (s->shade)
                    shade_rgb(s->shade[k], rgb);
                CZ->arc(cr, fx(f, s->x[k]), fy(f, s->y[k]), 3.6, 0, 2 * M_PI);
                CZ->set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
                CZ->fill_preserve(cr);
                CZ->set_source_rgb(cr, col[0] * 0.6, col[1] * 0.6, col[2] * 0.6);
                CZ->stroke(cr);
            }
        }
    }
    CZ->restore(cr);
}

static void draw_legend(cairo_t *cr, const ib_chart *c, const frame *f, double w)
{
    CZ->set_font_size(cr, 11);
    double x = f->right + 14, y = f->top + 4;
    for (int i = 0; i < c->n; i++, y += 17) {
        const double *col = palette[i % 10];
        CZ->set_source_rgb(cr, col[0], col[1], col[2]);
        CZ->set_line_width(cr, 2.5);
        CZ->move_to(cr, x, y + 6);
        CZ->line_to(cr, x + 18, y + 6);
        CZ->stroke(cr);
        CZ->set_source_rgb(cr, 0.15, 0.15, 0.15);
        text_at(cr, c->s[i].name, x + 24, y + 6, 0, 0.5);
    }
    if (!c->has_shade)
        return;
    /* the colour bar of the shade */
    double bx = f->right + 14, by = y + 26, bh = fmin(160, f->bottom - by - 10);
    if (bh < 30 || bx + 16 > w)
        return;
    for (int k = 0; k < 64; k++) {
        double rgb[3];
        shade_rgb(1 - k / 63.0, rgb);
        CZ->set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
        CZ->rectangle(cr, bx, by + bh * k / 64.0, 14, bh / 64.0 + 0.6);
        CZ->fill(cr);
    }
    CZ->set_source_rgb(cr, 0.15, 0.15, 0.15);
    text_at(cr, c->shade_label, bx, by - 8, 0, 1);
    char lab[32];
    snprintf(lab, sizeof lab, "%g", c->shade_hi);
    text_at(cr, lab, bx + 20, by, 0, 0.5);
    snprintf(lab, sizeof lab, "%g", c->shade_lo);
    text_at(cr, lab, bx + 20, by + bh, 0, 0.5);
}

static void draw(cairo_t *cr, const ib_chart *c, double w, double h)
{
    frame f;
    range_of(c, &f);
    f.left = 70;
    /* room for the legend: 160 px, more for longer series names (up to
     * half the picture) so that no name is cut at the edge */
    double names = 0;
    CZ->set_font_size(cr, 11);
    for (int i = 0; i < c->n; i++) {
        cairo_text_extents_t e;
        CZ->text_extents(cr, c->s[i].name, &e);
        names = fmax(names, e.x_advance);
    }
    f.right = w - fmin(fmax(160, names + 14 + 24 + 10), w / 2);
    f.top = 36;
    f.bottom = h - 46;
    draw_axes(cr, c, &f, w, h);
    draw_series(cr, c, &f);
    draw_legend(cr, c, &f, w);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

ib_status ib_chart_save(const ib_chart *c, const char *path, int width, int height)
{
    if (!c || !path)
        return ib__error(IB_ERR_ARG, "ib_chart_save: bad argument");
    if (width < 320 || height < 240 || width > 8000 || height > 8000)
        return ib__error(IB_ERR_ARG, "chart size %dx%d: width and height must be in 320..8000 and 240..8000", width,
                         height);
    bool svg = ends_with(path, ".svg");
    if (!svg && !ends_with(path, ".png"))
        return ib__error(IB_ERR_ARG, "%s: a chart is written as .png or .svg", path);
    if (!CZ)
        return ib__error(IB_ERR_UNSUPPORTED, "cannot draw %s: %s", path, ib_chart_unavailable_reason());
    cairo_surface_t *sf = svg ? CZ->svg_surface_create(path, width, height)
                              : CZ->image_surface_create(CAIRO_FORMAT_ARGB32, width, height);
    if (CZ->surface_status(sf) != CAIRO_STATUS_SUCCESS) {
        ib_status s = ib__error(IB_ERR_IO, "cannot write %s: %s", path, CZ->status_to_string(CZ->surface_status(sf)));
        CZ->surface_destroy(sf);
        return s;
    }
    cairo_t *cr = CZ->create(sf);
    draw(cr, c, width, height);
    cairo_status_t st = CZ->status(cr);
    CZ->destroy(cr);
    if (st == CAIRO_STATUS_SUCCESS && !svg)
        st = CZ->surface_write_to_png(sf, path);
    CZ->surface_finish(sf); /* writes the SVG */
    if (st == CAIRO_STATUS_SUCCESS)
        st = CZ->surface_status(sf);
    CZ->surface_destroy(sf);
    return st == CAIRO_STATUS_SUCCESS ? IB_OK
                                      : ib__error(IB_ERR_IO, "cannot write %s: %s", path, CZ->status_to_string(st));
}

#else

bool ib_chart_available(void) { return false; }

const char *ib_chart_unavailable_reason(void)
{
    return "this ibnet was built without cairo (install libcairo2-dev and rebuild)";
}

ib_status ib_chart_save(const ib_chart *c, const char *path, int width, int height)
{
    (void)c;
    (void)width;
    (void)height;
    return ib__error(IB_ERR_UNSUPPORTED, "cannot draw %s: %s", path ? path : "a chart", ib_chart_unavailable_reason());
}

#endif
