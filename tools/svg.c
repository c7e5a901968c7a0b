/*
 * svg.c — the SVG writer of svg.h. Plain text output, two decimals per pixel coordinate (more
 * is invisible and only bloats the files), every caller string escaped. Write errors are
 * latched in the handle and reported once by svg_close so that plotting code need not check
 * each call.
 */
#include "svg.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct svg {
    FILE *f;
    int owned;  /* svg_close closes f */
    int failed; /* a write failed */
};

/* Pixel coordinates are clamped to a range any viewer accepts, so a wild data point cannot
 * produce a 1e300 in the file. */
#define SVG_PX_LIMIT 1e6
#define SVG_PI 3.14159265358979323846

static void out(svg *s, const char *fmt, ...)
{
    if (!s || s->failed) return;
    va_list ap;
    va_start(ap, fmt);
    if (vfprintf(s->f, fmt, ap) < 0) s->failed = 1;
    va_end(ap);
}

/* Writes the bytes of text, escaped for XML text and attribute values. Bytes that are not
 * valid UTF-8 and control characters other than tab/newline would make the file ill-formed:
 * they become '?'. */
int svg_escape(FILE *f, const char *text)
{
    if (!f) return -1;
    if (!text) return 0;
    const unsigned char *p = (const unsigned char *)text;
    while (*p) {
        unsigned char c = *p;
        int rc = 0;
        if (c == '&') rc = fputs("&amp;", f);
        else if (c == '<') rc = fputs("&lt;", f);
        else if (c == '>') rc = fputs("&gt;", f);
        else if (c == '"') rc = fputs("&quot;", f);
        else if (c == '\'') rc = fputs("&apos;", f);
        else if (c < 0x20 && c != '\t' && c != '\n') rc = fputc('?', f);
        else if (c < 0x80) rc = fputc(c, f);
        else {
            /* a multi-byte UTF-8 sequence: copy it whole if well-formed */
            size_t len = (c >= 0xF0 && c <= 0xF4) ? 4 : (c >= 0xE0) ? 3 : (c >= 0xC2) ? 2 : 0;
            if (c > 0xF4) len = 0;
            size_t i = 1;
            while (len && i < len && (p[i] & 0xC0) == 0x80) i++;
            if (len == 0 || i < len) {
                rc = fputc('?', f);
                p++;
                if (rc == EOF) return -1;
                continue;
            }
            if (fwrite(p, 1, len, f) != len) return -1;
            p += len;
            continue;
        }
        if (rc == EOF) return -1;
        p++;
    }
    return 0;
}

static void out_escaped(svg *s, const char *text)
{
    if (!s || s->failed) return;
    if (svg_escape(s->f, text) != 0) s->failed = 1;
}

/* An attribute name="value" (escaped), preceded by a space. */
static void attr(svg *s, const char *name, const char *value)
{
    out(s, " %s=\"", name);
    out_escaped(s, value);
    out(s, "\"");
}

static double clamp_px(double v)
{
    if (!(v == v)) return 0;
    if (v > SVG_PX_LIMIT) return SVG_PX_LIMIT;
    if (v < -SVG_PX_LIMIT) return -SVG_PX_LIMIT;
    return v;
}

static svg *start(FILE *f, int owned, double width, double height)
{
    svg *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->f = f;
    s->owned = owned;
    out(s, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out(s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" "
        "xmlns:xlink=\"http://www.w3.org/1999/xlink\" width=\"%.0f\" height=\"%.0f\" "
        "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\">\n",
        width, height, width, height);
    out(s, "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"white\"/>\n", width,
        height);
    return s;
}

svg *svg_open(const char *path, double width, double height, char *err, size_t errlen)
{
    if (!path || !(width > 0) || !(height > 0)) {
        if (err && errlen) snprintf(err, errlen, "svg: bad path or size");
        return NULL;
    }
    FILE *f = fopen(path, "w");
    if (!f) {
        if (err && errlen) snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return NULL;
    }
    svg *s = start(f, 1, width, height);
    if (!s) {
        fclose(f);
        if (err && errlen) snprintf(err, errlen, "svg: out of memory");
    }
    return s;
}

svg *svg_open_stream(FILE *f, double width, double height)
{
    if (!f || !(width > 0) || !(height > 0)) return NULL;
    return start(f, 0, width, height);
}

int svg_close(svg *s, char *err, size_t errlen)
{
    if (!s) return -1;
    out(s, "</svg>\n");
    int failed = s->failed || fflush(s->f) != 0 || ferror(s->f);
    if (s->owned && fclose(s->f) != 0) failed = 1;
    free(s);
    if (failed && err && errlen) snprintf(err, errlen, "svg: write error");
    return failed ? -1 : 0;
}

FILE *svg_stream(svg *s) { return s ? s->f : NULL; }

void svg_def_begin(svg *s, const char *id, double opacity)
{
    if (!s || !id) return;
    out(s, "<defs><g");
    attr(s, "id", id);
    if (opacity >= 0 && opacity < 1) out(s, " opacity=\"%.2f\"", opacity);
    out(s, ">\n");
}

void svg_def_end(svg *s) { out(s, "</g></defs>\n"); }

void svg_use(svg *s, const char *id, double dx, double dy)
{
    if (!s || !id) return;
    /* both spellings of the reference: SVG 2 readers take href, SVG 1.1 ones xlink:href */
    out(s, "<use");
    out(s, " href=\"#");
    out_escaped(s, id);
    out(s, "\" xlink:href=\"#");
    out_escaped(s, id);
    out(s, "\" x=\"%.2f\" y=\"%.2f\"/>\n", clamp_px(dx), clamp_px(dy));
}

const char *svg_color(size_t i)
{
    static const char *const palette[SVG_PALETTE_SIZE] = {
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
        "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
    return palette[i % SVG_PALETTE_SIZE];
}

/* ---------------------------------------------------------------- viewport and ticks */

svg_viewport svg_viewport_make(double px, double py, double pw, double ph, double x0, double x1,
                               double y0, double y1)
{
    svg_viewport v = {px, py, pw, ph, x0, x1, y0, y1, 0, 0};
    if (v.x0 == v.x1) {
        v.x0 -= 0.5;
        v.x1 += 0.5;
    }
    if (v.y0 == v.y1) {
        v.y0 -= 0.5;
        v.y1 += 0.5;
    }
    return v;
}

/* Position of a value along an axis as a fraction of [lo, hi]; NaN outside a log domain. */
static double axis_frac(double t, double lo, double hi, int log_axis)
{
    if (log_axis) {
        if (!(t > 0) || !(lo > 0) || !(hi > 0)) return NAN;
        if (lo == hi) return 0.5;
        return (log10(t) - log10(lo)) / (log10(hi) - log10(lo));
    }
    if (lo == hi) return 0.5;
    return (t - lo) / (hi - lo);
}

double svg_px(const svg_viewport *v, double x)
{
    return v->px + axis_frac(x, v->x0, v->x1, v->log_x) * v->pw;
}

double svg_py(const svg_viewport *v, double y)
{
    return v->py + v->ph - axis_frac(y, v->y0, v->y1, v->log_y) * v->ph;
}

static size_t linear_ticks(double lo, double hi, double *ticks, size_t max)
{
    if (!isfinite(lo) || !isfinite(hi) || max == 0) return 0;
    if (lo > hi) {
        double t = lo;
        lo = hi;
        hi = t;
    }
    if (lo == hi) {
        ticks[0] = lo;
        return 1;
    }
    double span = hi - lo;
    double base = pow(10.0, floor(log10(span / (double)max)));
    static const double mult[] = {1, 2, 2.5, 5, 10, 20, 25, 50, 100};
    for (size_t m = 0; m < sizeof mult / sizeof mult[0]; m++) {
        double step = base * mult[m];
        double first = ceil(lo / step - 1e-9), last = floor(hi / step + 1e-9);
        if (last - first + 1 > (double)max) continue;
        size_t n = 0;
        for (double i = first; i <= last && n < max; i += 1) {
            double t = i * step;
            if (fabs(t) < step * 1e-9) t = 0; /* print "0", not "-1.1e-17" */
            ticks[n++] = t;
        }
        return n;
    }
    ticks[0] = lo;
    ticks[1 < max ? 1 : 0] = hi;
    return max < 2 ? 1 : 2;
}

size_t svg_ticks(double lo, double hi, int log_axis, double *ticks, size_t max)
{
    if (!ticks || max == 0) return 0;
    if (!log_axis) return linear_ticks(lo, hi, ticks, max);
    if (!(lo > 0) || !(hi > 0) || !isfinite(lo) || !isfinite(hi)) return 0;
    if (lo > hi) {
        double t = lo;
        lo = hi;
        hi = t;
    }
    double e0 = ceil(log10(lo) - 1e-9), e1 = floor(log10(hi) + 1e-9);
    if (e1 - e0 < 1) return linear_ticks(lo, hi, ticks, max); /* less than two decades shown */
    double every = ceil((e1 - e0 + 1) / (double)max);
    size_t n = 0;
    for (double e = e0; e <= e1 && n < max; e += every) ticks[n++] = pow(10.0, e);
    return n;
}

void svg_axes(svg *s, const svg_viewport *v, const char *xlabel, const char *ylabel)
{
    if (!s || !v) return;
    double t[16];
    size_t n = svg_ticks(v->x0, v->x1, v->log_x, t, 8);
    char buf[64];
    out(s, "<g stroke=\"#e6e6e6\" stroke-width=\"1\">\n");
    for (size_t i = 0; i < n; i++) {
        double x = clamp_px(svg_px(v, t[i]));
        out(s, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", x, v->py, x,
            v->py + v->ph);
    }
    size_t m = svg_ticks(v->y0, v->y1, v->log_y, t + 8, 8);
    for (size_t i = 0; i < m; i++) {
        double y = clamp_px(svg_py(v, t[8 + i]));
        out(s, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", v->px, y,
            v->px + v->pw, y);
    }
    out(s, "</g>\n");
    svg_rect_px(s, v->px, v->py, v->pw, v->ph, "none", "#333333", 1);
    for (size_t i = 0; i < n; i++) {
        double x = clamp_px(svg_px(v, t[i]));
        out(s, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#333333\"/>\n", x,
            v->py + v->ph, x, v->py + v->ph + 4);
        snprintf(buf, sizeof buf, "%g", t[i]);
        svg_text(s, x, v->py + v->ph + 16, buf, 11, SVG_MIDDLE, NULL, 0);
    }
    for (size_t i = 0; i < m; i++) {
        double y = clamp_px(svg_py(v, t[8 + i]));
        out(s, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#333333\"/>\n",
            v->px - 4, y, v->px, y);
        snprintf(buf, sizeof buf, "%g", t[8 + i]);
        svg_text(s, v->px - 6, y + 4, buf, 11, SVG_END, NULL, 0);
    }
    if (xlabel) svg_text(s, v->px + v->pw / 2, v->py + v->ph + 34, xlabel, 12, SVG_MIDDLE, NULL, 0);
    if (ylabel) svg_text_vertical(s, v->px - 44, v->py + v->ph / 2, ylabel, 12, NULL);
}

/* ---------------------------------------------------------------- primitives */

static const char *anchor_word(svg_anchor a)
{
    return a == SVG_MIDDLE ? "middle" : a == SVG_END ? "end" : "start";
}

void svg_text(svg *s, double x, double y, const char *text, double size, svg_anchor anchor,
              const char *color, int bold)
{
    if (!s || !text) return;
    out(s, "<text x=\"%.2f\" y=\"%.2f\" font-size=\"%.1f\" text-anchor=\"%s\"", clamp_px(x),
        clamp_px(y), size, anchor_word(anchor));
    if (color) attr(s, "fill", color);
    if (bold) out(s, " font-weight=\"bold\"");
    out(s, ">");
    out_escaped(s, text);
    out(s, "</text>\n");
}

void svg_text_vertical(svg *s, double x, double y, const char *text, double size,
                       const char *color)
{
    if (!s || !text) return;
    x = clamp_px(x);
    y = clamp_px(y);
    out(s,
        "<text x=\"%.2f\" y=\"%.2f\" font-size=\"%.1f\" text-anchor=\"middle\" "
        "transform=\"rotate(-90 %.2f %.2f)\"",
        x, y, size, x, y);
    if (color) attr(s, "fill", color);
    out(s, ">");
    out_escaped(s, text);
    out(s, "</text>\n");
}

static void stroke_attrs(svg *s, const char *color, double width, double dash)
{
    attr(s, "stroke", color ? color : "black");
    out(s, " stroke-width=\"%.2f\"", width > 0 ? width : 1.0);
    if (dash > 0) out(s, " stroke-dasharray=\"%.1f %.1f\"", dash, dash);
}

void svg_line(svg *s, const svg_viewport *v, double xa, double ya, double xb, double yb,
              const char *color, double width, double dash)
{
    if (!s || !v) return;
    double pxa = svg_px(v, xa), pya = svg_py(v, ya), pxb = svg_px(v, xb), pyb = svg_py(v, yb);
    if (!isfinite(pxa) || !isfinite(pya) || !isfinite(pxb) || !isfinite(pyb)) return;
    out(s, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"", clamp_px(pxa), clamp_px(pya),
        clamp_px(pxb), clamp_px(pyb));
    stroke_attrs(s, color, width, dash);
    out(s, "/>\n");
}

/* Ends the current <polyline> run if one is open. */
static void end_run(svg *s, int *open, const char *color, double width)
{
    if (!*open) return;
    out(s, "\" fill=\"none\"");
    stroke_attrs(s, color, width, 0);
    out(s, " stroke-linejoin=\"round\"/>\n");
    *open = 0;
}

void svg_polyline(svg *s, const svg_viewport *v, const double *x, const double *y, size_t n,
                  const char *color, double width)
{
    if (!s || !v || !y) return;
    int open = 0;
    for (size_t i = 0; i < n; i++) {
        double px = svg_px(v, x ? x[i] : (double)i), py = svg_py(v, y[i]);
        if (!isfinite(px) || !isfinite(py)) {
            end_run(s, &open, color, width);
            continue;
        }
        if (!open) {
            out(s, "<polyline points=\"");
            open = 1;
        } else {
            out(s, " ");
        }
        out(s, "%.2f,%.2f", clamp_px(px), clamp_px(py));
    }
    end_run(s, &open, color, width);
}

static void marker_px(svg *s, double x, double y, svg_marker_shape shape, double size,
                      const char *color)
{
    double r = size / 2;
    const char *fill = color ? color : "black";
    switch (shape) {
    case SVG_SQUARE:
        out(s, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"", x - r, y - r, size,
            size);
        break;
    case SVG_TRIANGLE:
        out(s, "<polygon points=\"%.2f,%.2f %.2f,%.2f %.2f,%.2f\"", x, y - r, x + r, y + r,
            x - r, y + r);
        break;
    case SVG_CROSS:
        out(s, "<path d=\"M%.2f,%.2fL%.2f,%.2fM%.2f,%.2fL%.2f,%.2f\" fill=\"none\"", x - r,
            y - r, x + r, y + r, x - r, y + r, x + r, y - r);
        attr(s, "stroke", fill);
        out(s, " stroke-width=\"2\"/>\n");
        return;
    case SVG_STAR: {
        out(s, "<polygon points=\"");
        for (int i = 0; i < 10; i++) {
            double a = -SVG_PI / 2 + i * SVG_PI / 5, rr = (i % 2) ? r * 0.45 : r;
            out(s, "%s%.2f,%.2f", i ? " " : "", x + rr * cos(a), y + rr * sin(a));
        }
        out(s, "\"");
        break;
    }
    case SVG_CIRCLE:
    default:
        out(s, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%.2f\"", x, y, r);
        break;
    }
    attr(s, "fill", fill);
    out(s, " stroke=\"black\" stroke-width=\"0.6\"/>\n");
}

void svg_marker(svg *s, const svg_viewport *v, double x, double y, svg_marker_shape shape,
                double size, const char *color)
{
    if (!s || !v) return;
    double px = svg_px(v, x), py = svg_py(v, y);
    if (!isfinite(px) || !isfinite(py)) return;
    marker_px(s, clamp_px(px), clamp_px(py), shape, size, color);
}

void svg_rect_px(svg *s, double x, double y, double w, double h, const char *fill,
                 const char *stroke, double stroke_width)
{
    if (!s) return;
    if (w < 0) {
        x += w;
        w = -w;
    }
    if (h < 0) {
        y += h;
        h = -h;
    }
    out(s, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"", clamp_px(x),
        clamp_px(y), clamp_px(w), clamp_px(h));
    attr(s, "fill", fill ? fill : "none");
    if (stroke) {
        attr(s, "stroke", stroke);
        out(s, " stroke-width=\"%.2f\"", stroke_width > 0 ? stroke_width : 1.0);
    }
    out(s, "/>\n");
}

void svg_rect(svg *s, const svg_viewport *v, double xa, double ya, double xb, double yb,
              const char *fill, const char *stroke)
{
    if (!s || !v) return;
    double pxa = svg_px(v, xa), pya = svg_py(v, ya), pxb = svg_px(v, xb), pyb = svg_py(v, yb);
    if (!isfinite(pxa) || !isfinite(pya) || !isfinite(pxb) || !isfinite(pyb)) return;
    svg_rect_px(s, fmin(pxa, pxb), fmin(pya, pyb), fabs(pxb - pxa), fabs(pyb - pya), fill,
                stroke, 1);
}

void svg_legend(svg *s, double x, double y, const char *const *labels, const char *const *colors,
                const int *markers, size_t n)
{
    if (!s || !labels || n == 0) return;
    size_t longest = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = labels[i] ? strlen(labels[i]) : 0;
        if (len > longest) longest = len;
    }
    double row = 16, w = 36 + 6.5 * (double)longest, h = row * (double)n + 8;
    out(s, "<g>\n");
    out(s,
        "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"white\" "
        "fill-opacity=\"0.85\" stroke=\"#999999\"/>\n",
        x, y, w, h);
    for (size_t i = 0; i < n; i++) {
        double cy = y + 4 + row * ((double)i + 0.5);
        const char *c = colors ? colors[i] : svg_color(i);
        if (markers && markers[i] >= 0) {
            marker_px(s, x + 16, cy, (svg_marker_shape)markers[i], 8, c);
        } else {
            out(s, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"", x + 6, cy, x + 26, cy);
            stroke_attrs(s, c, 2, 0);
            out(s, "/>\n");
        }
        svg_text(s, x + 32, cy + 4, labels[i] ? labels[i] : "", 11, SVG_START, NULL, 0);
    }
    out(s, "</g>\n");
}

/* ---------------------------------------------------------------- fields on a grid */

void svg_colormap(double t, char buf[8])
{
    /* viridis sampled at 9 points, linearly interpolated */
    static const unsigned char stops[9][3] = {
        {68, 1, 84},    {71, 44, 122},  {59, 81, 139},  {44, 113, 142}, {33, 144, 141},
        {39, 173, 129}, {92, 200, 99},  {170, 220, 50}, {253, 231, 37}};
    if (!(t >= 0)) t = 0; /* NaN too */
    if (t > 1) t = 1;
    double pos = t * 8;
    int i = (int)floor(pos);
    if (i > 7) i = 7;
    double f = pos - i;
    int rgb[3];
    for (int c = 0; c < 3; c++)
        rgb[c] = (int)lround(stops[i][c] + f * (stops[i + 1][c] - stops[i][c]));
    snprintf(buf, 8, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
}

static int grid_ok(const svg_grid *g)
{
    return g && g->z && g->nx >= 2 && g->ny >= 2 && isfinite(g->x0) && isfinite(g->x1) &&
           isfinite(g->y0) && isfinite(g->y1);
}

static double grid_x(const svg_grid *g, double i)
{
    return g->x0 + i * (g->x1 - g->x0) / (double)(g->nx - 1);
}

static double grid_y(const svg_grid *g, double j)
{
    return g->y0 + j * (g->y1 - g->y0) / (double)(g->ny - 1);
}

void svg_heatmap(svg *s, const svg_viewport *v, const svg_grid *g, double zmin, double zmax)
{
    if (!s || !v || !grid_ok(g)) return;
    double span = zmax - zmin;
    char col[8];
    out(s, "<g shape-rendering=\"crispEdges\">\n");
    for (size_t j = 0; j < g->ny; j++) {
        /* each node's cell reaches half-way to its neighbours, clipped to the grid */
        double ya = grid_y(g, j == 0 ? 0 : (double)j - 0.5);
        double yb = grid_y(g, j + 1 == g->ny ? (double)j : (double)j + 0.5);
        for (size_t i = 0; i < g->nx; i++) {
            double z = g->z[j * g->nx + i];
            if (!isfinite(z)) continue;
            double xa = grid_x(g, i == 0 ? 0 : (double)i - 0.5);
            double xb = grid_x(g, i + 1 == g->nx ? (double)i : (double)i + 0.5);
            svg_colormap(span > 0 ? (z - zmin) / span : 0.5, col);
            double pxa = svg_px(v, xa), pxb = svg_px(v, xb);
            double pya = svg_py(v, ya), pyb = svg_py(v, yb);
            if (!isfinite(pxa) || !isfinite(pxb) || !isfinite(pya) || !isfinite(pyb)) continue;
            /* a hair of overlap hides the seams some renderers leave between cells */
            svg_rect_px(s, fmin(pxa, pxb), fmin(pya, pyb), fabs(pxb - pxa) + 0.3,
                        fabs(pyb - pya) + 0.3, col, NULL, 0);
        }
    }
    out(s, "</g>\n");
}

/* Point where z crosses level on the edge between nodes (ia, ja) and (ib, jb), in data units. */
static void edge_point(const svg_grid *g, size_t ia, size_t ja, size_t ib, size_t jb,
                       double level, double *x, double *y)
{
    double za = g->z[ja * g->nx + ia], zb = g->z[jb * g->nx + ib];
    double t = (level - za) / (zb - za); /* za != zb: one is >= level, the other below */
    *x = grid_x(g, (double)ia + t * ((double)ib - (double)ia));
    *y = grid_y(g, (double)ja + t * ((double)jb - (double)ja));
}

void svg_contour(svg *s, const svg_viewport *v, const svg_grid *g, double level,
                 const char *color, double width)
{
    if (!s || !v || !grid_ok(g) || !isfinite(level)) return;
    /* Edges of a cell: 0 bottom (c0-c1), 1 right (c1-c2), 2 top (c2-c3), 3 left (c3-c0), with
     * corners c0 = (i, j), c1 = (i+1, j), c2 = (i+1, j+1), c3 = (i, j+1). For each case (bit k
     * set when corner k is >= level) the segments as pairs of edges; -1 ends the list. The
     * saddles 5 and 10 are listed for "centre below"; "centre above" swaps them. */
    static const signed char seg[16][4] = {
        {-1, -1, -1, -1}, {3, 0, -1, -1}, {0, 1, -1, -1}, {3, 1, -1, -1},
        {1, 2, -1, -1},   {3, 0, 1, 2},   {0, 2, -1, -1}, {3, 2, -1, -1},
        {2, 3, -1, -1},   {0, 2, -1, -1}, {0, 1, 2, 3},   {1, 2, -1, -1},
        {1, 3, -1, -1},   {0, 1, -1, -1}, {3, 0, -1, -1}, {-1, -1, -1, -1}};
    static const signed char saddle_above[16][4] = {
        [5] = {0, 1, 2, 3}, [10] = {3, 0, 1, 2}};
    int started = 0;
    for (size_t j = 0; j + 1 < g->ny; j++) {
        for (size_t i = 0; i + 1 < g->nx; i++) {
            size_t ci[4] = {i, i + 1, i + 1, i}, cj[4] = {j, j, j + 1, j + 1};
            double z[4];
            int idx = 0, finite = 1;
            for (int c = 0; c < 4; c++) {
                z[c] = g->z[cj[c] * g->nx + ci[c]];
                if (!isfinite(z[c])) finite = 0;
                if (z[c] >= level) idx |= 1 << c;
            }
            if (!finite || idx == 0 || idx == 15) continue;
            const signed char *e = seg[idx];
            if ((idx == 5 || idx == 10) && (z[0] + z[1] + z[2] + z[3]) / 4 >= level)
                e = saddle_above[idx];
            for (int k = 0; k < 4 && e[k] >= 0; k += 2) {
                double px[2], py[2];
                for (int q = 0; q < 2; q++) {
                    int edge = e[k + q], a = edge, b = (edge + 1) % 4;
                    double x, y;
                    edge_point(g, ci[a], cj[a], ci[b], cj[b], level, &x, &y);
                    px[q] = svg_px(v, x);
                    py[q] = svg_py(v, y);
                }
                if (!isfinite(px[0]) || !isfinite(py[0]) || !isfinite(px[1]) || !isfinite(py[1]))
                    continue;
                if (!started) {
                    out(s, "<path d=\"");
                    started = 1;
                }
                out(s, "M%.2f,%.2fL%.2f,%.2f", clamp_px(px[0]), clamp_px(py[0]), clamp_px(px[1]),
                    clamp_px(py[1]));
            }
        }
    }
    if (started) {
        out(s, "\" fill=\"none\"");
        stroke_attrs(s, color, width, 0);
        out(s, "/>\n");
    }
}
