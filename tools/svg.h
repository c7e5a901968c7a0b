/*
 * svg.h — a small SVG writer for the CLI's plots (training curves, Δm bars, the toy's
 * trajectories over its loss landscape). No dependency beyond stdio: the plots must be
 * viewable anywhere and diffable as text.
 *
 * Coordinates: the drawing is width x height pixels, origin at the top left, y down (SVG's own
 * convention). A viewport maps a data rectangle [x0, x1] x [y0, y1] onto a pixel rectangle with
 * y pointing up (optionally log10 on either axis); every plotting call that takes data
 * coordinates goes through one. Colours are CSS strings ("#1f77b4", "none"). Every text is
 * XML-escaped. Non-finite data points are skipped (a polyline is broken there).
 *
 * Errors: write failures are remembered and reported by svg_close (a plot is all or nothing).
 */
#ifndef MTGRAD_TOOLS_SVG_H
#define MTGRAD_TOOLS_SVG_H

#include <stddef.h>
#include <stdio.h>

typedef struct svg svg; /* opaque: the output stream and its error state */

/* A data -> pixel mapping. Fill with svg_viewport_make. */
typedef struct svg_viewport {
    double px, py, pw, ph;   /* pixel rectangle: left, top, width, height */
    double x0, x1, y0, y1;   /* data rectangle (x0 maps to the left edge, y0 to the bottom) */
    int log_x, log_y;        /* 1: the axis is log10 (its limits must be > 0) */
} svg_viewport;

typedef enum svg_anchor { SVG_START = 0, SVG_MIDDLE = 1, SVG_END = 2 } svg_anchor;

typedef enum svg_marker_shape {
    SVG_CIRCLE = 0,
    SVG_SQUARE = 1,
    SVG_TRIANGLE = 2,
    SVG_CROSS = 3,
    SVG_STAR = 4
} svg_marker_shape;

/* Open a file (path) or write to a caller's stream (not closed by svg_close), and write the
 * header and a white background. NULL on failure (message in err). */
svg *svg_open(const char *path, double width, double height, char *err, size_t errlen);
svg *svg_open_stream(FILE *f, double width, double height);
/* Write the closing tag and close the file. 0 on success, -1 if any write failed (message in
 * err). s NULL: returns -1. Frees s in every case. */
int svg_close(svg *s, char *err, size_t errlen);

/* The fixed palette (Tableau 10, colour-blind friendly): colour i mod 10. */
const char *svg_color(size_t i);
#define SVG_PALETTE_SIZE 10

/* Viewport with the given pixel rectangle and data limits. A degenerate range (x0 == x1) is
 * widened by ±0.5 (or ×/÷ 2 on a log axis) so that a single point still plots. */
svg_viewport svg_viewport_make(double px, double py, double pw, double ph, double x0, double x1,
                               double y0, double y1);
/* Data -> pixel. */
double svg_px(const svg_viewport *v, double x);
double svg_py(const svg_viewport *v, double y);

/* "Nice" tick positions covering [lo, hi] (steps of 1, 2, 2.5 or 5 times a power of ten; decades on
 * a log axis), at most max ticks. Returns the number written. */
size_t svg_ticks(double lo, double hi, int log_axis, double *ticks, size_t max);

/* A frame around the viewport, ticks with labels on the left and bottom edges, light grid
 * lines, and the axis labels (either may be NULL). */
void svg_axes(svg *s, const svg_viewport *v, const char *xlabel, const char *ylabel);

/* Text at pixel (x, y) (baseline), size in px, colour NULL = black; bold 0/1. */
void svg_text(svg *s, double x, double y, const char *text, double size, svg_anchor anchor,
              const char *color, int bold);
/* The same, rotated by -90 degrees about (x, y) (a vertical axis label). */
void svg_text_vertical(svg *s, double x, double y, const char *text, double size,
                       const char *color);

/* A line between two data points; dash 0 = solid, else the dash length in px. */
void svg_line(svg *s, const svg_viewport *v, double xa, double ya, double xb, double yb,
              const char *color, double width, double dash);
/* A polyline through n data points (x may be NULL: 0, 1, 2, ...). Non-finite points and
 * points outside a log axis's domain break the line. */
void svg_polyline(svg *s, const svg_viewport *v, const double *x, const double *y, size_t n,
                  const char *color, double width);
/* A marker of `size` px at a data point; fill colour (outline black, thin). */
void svg_marker(svg *s, const svg_viewport *v, double x, double y, svg_marker_shape shape,
                double size, const char *color);
/* A rectangle between two data corners (a bar: x0..x1, 0..h); fill, stroke may be NULL. */
void svg_rect(svg *s, const svg_viewport *v, double xa, double ya, double xb, double yb,
              const char *fill, const char *stroke);
/* A rectangle in pixels. */
void svg_rect_px(svg *s, double x, double y, double w, double h, const char *fill,
                 const char *stroke, double stroke_width);

/* A legend box with its top-left corner at pixel (x, y): one row per entry, a line swatch (or
 * a marker when markers != NULL, markers[i] < 0 meaning a line) and the label. */
void svg_legend(svg *s, double x, double y, const char *const *labels, const char *const *colors,
                const int *markers, size_t n);

/*
 * A scalar field z on a regular grid: z[j*nx + i] is the value at
 *   x_i = x0 + i (x1 - x0)/(nx - 1),  y_j = y0 + j (y1 - y0)/(ny - 1)   (nx, ny >= 2).
 * svg_heatmap fills each grid cell (centred on a node) with a colour of the sequential map
 * (viridis-like) by its value between zmin and zmax; svg_contour draws the iso-line z = level by
 * marching squares (linear interpolation on cell edges, the saddle case resolved by the cell's
 * mean). Non-finite values leave their cells/edges out.
 */
typedef struct svg_grid {
    const double *z;
    size_t nx, ny;
    double x0, x1, y0, y1;
} svg_grid;

void svg_heatmap(svg *s, const svg_viewport *v, const svg_grid *g, double zmin, double zmax);
void svg_contour(svg *s, const svg_viewport *v, const svg_grid *g, double level,
                 const char *color, double width);
/* The sequential colour map at t in [0, 1] (clamped) as "#rrggbb" into buf (8 bytes). */
void svg_colormap(double t, char buf[8]);

/* A reusable drawing (e.g. one loss landscape shown in many panels): what is drawn between
 * svg_def_begin and svg_def_end goes into <defs> under `id` with the given opacity (1 = opaque)
 * and is not shown; svg_use shows it shifted by (dx, dy) px. */
void svg_def_begin(svg *s, const char *id, double opacity);
void svg_def_end(svg *s);
void svg_use(svg *s, const char *id, double dx, double dy);

/* XML escaping of text (& < > " '), written to f. Returns 0 or -1 on a write error. */
int svg_escape(FILE *f, const char *text);

/* Raw access for callers that need an element this writer does not have (e.g. a <title>). */
FILE *svg_stream(svg *s);

#endif
