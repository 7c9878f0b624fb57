/*
 * cairo_api.h — the cairo functions the charts draw with, reached through
 * a table that cairo_api.c fills from libcairo.so.2 with dlopen on the
 * first chart.  ibnet is not linked against cairo: the library and its
 * sixteen dependencies (X11, xcb, fontconfig, freetype, pixman...) then
 * cost nothing to a process that draws no chart (start-up, memory), and a
 * machine without them runs everything but `ibnet plot`.  cairo's headers
 * are still needed at build time, for the types and the table's signatures.
 */
#ifndef IB_CAIRO_API_H
#define IB_CAIRO_API_H

#include <cairo-svg.h>
#include <cairo.h>

#define IB__CAIRO_FUNCTIONS(X)                                                                                         \
    X(arc) X(clip) X(create) X(destroy) X(fill) X(fill_preserve) X(image_surface_create) X(line_to) X(move_to)     \
    X(paint) X(rectangle) X(restore) X(rotate) X(save) X(select_font_face) X(set_font_size) X(set_line_width)       \
    X(set_source_rgb) X(show_text) X(status) X(status_to_string) X(stroke) X(surface_destroy) X(surface_finish)     \
    X(surface_status) X(surface_write_to_png) X(svg_surface_create) X(text_extents) X(translate)

typedef struct ib__cairo_api {
#define IB__CAIRO_MEMBER(f) __typeof__(cairo_##f) *f;
    IB__CAIRO_FUNCTIONS(IB__CAIRO_MEMBER)
#undef IB__CAIRO_MEMBER
} ib__cairo_api;

/* The table, loaded once (thread-safe); NULL when libcairo.so.2 or one of
 * its functions cannot be found, with the loader's message in *why (may
 * be NULL). */
const ib__cairo_api *ib__cairo(const char **why);

#endif
