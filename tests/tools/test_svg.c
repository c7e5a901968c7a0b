/* test_svg.c — the SVG writer (tools/svg.c): well-formed output (balanced tags, quoted
 * attributes, only known entities), escaping, the data -> pixel mapping (checked against the
 * closed form), tick choice, polylines broken at non-finite points, contours that lie on the
 * level set of known fields (plane, circle, saddle), heat-map cell count, write errors. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"
#include "svg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Everything written to f so far, as a NUL-terminated string (caller frees). */
static char *slurp(FILE *f)
{
    long n = ftell(f);
    if (n < 0) return NULL;
    char *buf = malloc((size_t)n + 1);
    if (!buf) return NULL;
    rewind(f);
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = '\0';
    return buf;
}

/* A small XML well-formedness check for what the writer emits: every tag is closed in order,
 * attribute values are double-quoted, '&' only starts one of the five entities, no '<' in text.
 * Returns 1 if well-formed; the root must be <svg>. */
static int well_formed(const char *s, char *why, size_t whylen)
{
    char stack[64][32];
    int depth = 0, seen_root = 0;
    const char *p = s;
    static const char *const ent[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
    while (*p) {
        if (*p == '&') {
            int ok = 0;
            for (int i = 0; i < 5; i++)
                if (strncmp(p, ent[i], strlen(ent[i])) == 0) ok = 1;
            if (!ok) return snprintf(why, whylen, "bare & at %ld", (long)(p - s)), 0;
            p++;
            continue;
        }
        if (*p != '<') {
            if (*p == '>') return snprintf(why, whylen, "bare > at %ld", (long)(p - s)), 0;
            p++;
            continue;
        }
        if (p[1] == '?') { /* declaration */
            const char *e = strstr(p, "?>");
            if (!e) return snprintf(why, whylen, "unterminated <?"), 0;
            p = e + 2;
            continue;
        }
        int closing = p[1] == '/';
        const char *q = p + 1 + closing;
        char name[32];
        size_t n = 0;
        while (*q && *q != ' ' && *q != '>' && *q != '/' && *q != '\n' && n < sizeof name - 1)
            name[n++] = *q++;
        name[n] = '\0';
        if (n == 0) return snprintf(why, whylen, "empty tag name at %ld", (long)(p - s)), 0;
        int in_quote = 0;
        while (*q && (in_quote || (*q != '>'))) {
            if (*q == '"') in_quote = !in_quote;
            else if (*q == '<') return snprintf(why, whylen, "'<' inside tag %s", name), 0;
            else if (in_quote && *q == '&') {
                int ok = 0;
                for (int i = 0; i < 5; i++)
                    if (strncmp(q, ent[i], strlen(ent[i])) == 0) ok = 1;
                if (!ok) return snprintf(why, whylen, "bare & in attribute of %s", name), 0;
            } else if (!in_quote && *q == '=' && q[1] != '"')
                return snprintf(why, whylen, "unquoted attribute in %s", name), 0;
            q++;
        }
        if (!*q) return snprintf(why, whylen, "unterminated tag %s", name), 0;
        int self = q[-1] == '/';
        if (closing) {
            if (depth == 0 || strcmp(stack[depth - 1], name) != 0)
                return snprintf(why, whylen, "</%s> does not close the open tag", name), 0;
            depth--;
        } else if (!self) {
            if (depth == 0) {
                if (seen_root || strcmp(name, "svg") != 0)
                    return snprintf(why, whylen, "root is <%s>, or two roots", name), 0;
                seen_root = 1;
            }
            if (depth == 64) return snprintf(why, whylen, "too deep"), 0;
            strcpy(stack[depth++], name);
        }
        p = q + 1;
    }
    if (depth != 0) return snprintf(why, whylen, "%d tags left open", depth), 0;
    if (!seen_root) return snprintf(why, whylen, "no <svg> root"), 0;
    return 1;
}

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

static void test_well_formed_and_escaping(void)
{
    FILE *f = tmpfile();
    CHECK(f != NULL, "tmpfile");
    if (!f) return;
    svg *s = svg_open_stream(f, 640, 480);
    CHECK(s != NULL, "open_stream");
    svg_viewport v = svg_viewport_make(60, 20, 500, 400, -1, 1, 1e-3, 10);
    v.log_y = 1;
    svg_axes(s, &v, "x <axis> & \"label\"", "loss 'log'");
    double x[] = {-1, -0.5, 0, 0.5, 1}, y[] = {5, 1, 0.1, 0.01, 0.002};
    svg_polyline(s, &v, x, y, 5, svg_color(0), 1.5);
    svg_marker(s, &v, 0, 1, SVG_STAR, 10, svg_color(1));
    svg_marker(s, &v, 0.2, 1, SVG_CROSS, 10, svg_color(2));
    svg_marker(s, &v, 0.3, 1, SVG_TRIANGLE, 10, svg_color(3));
    svg_marker(s, &v, 0.4, 1, SVG_SQUARE, 10, svg_color(4));
    svg_rect(s, &v, -0.2, 1e-3, 0.2, 0.5, svg_color(5), "black");
    svg_line(s, &v, -1, 1, 1, 1, "#000000", 1, 3);
    svg_def_begin(s, "land&1", 0.5);
    svg_rect_px(s, 0, 0, 10, 10, "#ff0000", NULL, 0);
    svg_def_end(s);
    svg_use(s, "land&1", 30, 40);
    svg_text(s, 10, 10, "a<b & \"c\" 'd'> \xe2\x9c\x93 bad\xff\x01!", 12, SVG_START, "red", 1);
    const char *labels[] = {"mean & <sum>", "mgda"};
    const char *colors[] = {svg_color(0), svg_color(1)};
    int markers[] = {-1, SVG_CIRCLE};
    svg_legend(s, 400, 30, labels, colors, markers, 2);
    char err[128];
    CHECK(svg_close(s, err, sizeof err) == 0, "close: %s", err);
    char *txt = slurp(f);
    fclose(f);
    CHECK(txt != NULL, "read back");
    if (!txt) return;
    char why[128] = "";
    CHECK(well_formed(txt, why, sizeof why), "not well-formed: %s", why);
    CHECK(strstr(txt, "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt; \xe2\x9c\x93 bad?" "?!") != NULL,
          "text escaped, UTF-8 kept, invalid byte and control replaced");
    CHECK(strstr(txt, "x &lt;axis&gt; &amp; &quot;label&quot;") != NULL, "axis label escaped");
    CHECK(strstr(txt, "mean &amp; &lt;sum&gt;") != NULL, "legend label escaped");
    CHECK(count(txt, "<svg") == 1 && count(txt, "</svg>") == 1, "one root");
    CHECK(count(txt, "<polyline") == 1, "one polyline");
    CHECK(strstr(txt, "<defs><g id=\"land&amp;1\" opacity=\"0.50\">") != NULL, "def with id");
    CHECK(strstr(txt, "href=\"#land&amp;1\" xlink:href=\"#land&amp;1\" x=\"30.00\" "
                      "y=\"40.00\"") != NULL,
          "use of the def");
    free(txt);
}

static void test_mapping(void)
{
    svg_viewport v = svg_viewport_make(50, 20, 400, 300, 0, 10, -1, 1);
    CHECK_CLOSE(svg_px(&v, 0), 50, 0, 1e-12);
    CHECK_CLOSE(svg_px(&v, 10), 450, 0, 1e-12);
    CHECK_CLOSE(svg_px(&v, 2.5), 150, 0, 1e-12);
    CHECK_CLOSE(svg_py(&v, -1), 320, 0, 1e-12); /* y up: the bottom edge */
    CHECK_CLOSE(svg_py(&v, 1), 20, 0, 1e-12);
    CHECK_CLOSE(svg_py(&v, 0), 170, 0, 1e-12);
    svg_viewport l = svg_viewport_make(0, 0, 100, 100, 1, 1000, 1e-2, 1e2);
    l.log_x = l.log_y = 1;
    CHECK_CLOSE(svg_px(&l, 10), 100.0 / 3, 1e-12, 1e-12);
    CHECK_CLOSE(svg_py(&l, 1), 50, 1e-12, 1e-12);
    CHECK(isnan(svg_px(&l, -1)), "log axis: no pixel for x <= 0");
    svg_viewport d = svg_viewport_make(0, 0, 100, 100, 3, 3, 2, 2);
    CHECK_CLOSE(svg_px(&d, 3), 50, 0, 1e-12);
    CHECK_CLOSE(svg_py(&d, 2), 50, 0, 1e-12);

    /* the points written for a polyline are the closed-form pixels, 2 decimals */
    FILE *f = tmpfile();
    if (!f) return;
    svg *s = svg_open_stream(f, 500, 400);
    double x[] = {0, 1, 2, 3, 4, 5}, y[] = {-1, 0.5, NAN, 0.25, 1, 0};
    svg_polyline(s, &v, x, y, 6, "#000000", 1);
    svg_close(s, NULL, 0);
    char *txt = slurp(f);
    fclose(f);
    if (!txt) return;
    CHECK(count(txt, "<polyline") == 2, "a NaN breaks the line: %d polylines",
          count(txt, "<polyline"));
    /* read every "x,y" pair of every points="..." attribute, in order */
    double got[16][2];
    int seen = 0;
    for (const char *p = strstr(txt, "points=\""); p; p = strstr(p, "points=\"")) {
        p += 8;
        while (*p != '"' && seen < 16) {
            char *e;
            got[seen][0] = strtod(p, &e);
            if (*e != ',') break;
            got[seen][1] = strtod(e + 1, &e);
            seen++;
            p = e;
            while (*p == ' ') p++;
        }
    }
    int k = 0;
    for (int i = 0; i < 6 && k < seen; i++) {
        if (isnan(y[i])) continue;
        double ex = 50 + x[i] / 10 * 400, ey = 20 + 300 - (y[i] + 1) / 2 * 300;
        CHECK_CLOSE(got[k][0], ex, 0, 0.006);
        CHECK_CLOSE(got[k][1], ey, 0, 0.006);
        k++;
    }
    CHECK(seen == 5, "found %d of 5 points", seen);
    free(txt);
}

static void test_ticks(void)
{
    double t[16];
    size_t n = svg_ticks(0, 1, 0, t, 8);
    CHECK(n == 6, "ticks of [0,1]: %zu", n);
    for (size_t i = 0; i < n; i++) CHECK_CLOSE(t[i], 0.2 * (double)i, 0, 1e-12);
    n = svg_ticks(-8.7, 9.3, 0, t, 8);
    CHECK(n >= 4 && n <= 8, "ticks of [-8.7, 9.3]: %zu", n);
    for (size_t i = 0; i < n; i++) {
        CHECK(t[i] >= -8.7 && t[i] <= 9.3, "tick %g inside", t[i]);
        if (i > 0) CHECK_CLOSE(t[i] - t[i - 1], t[1] - t[0], 1e-9, 0);
    }
    if (n >= 2) {
        double step = t[1] - t[0], e = pow(10, floor(log10(step))), m = step / e;
        CHECK(fabs(m - 1) < 1e-9 || fabs(m - 2) < 1e-9 || fabs(m - 2.5) < 1e-9 ||
                  fabs(m - 5) < 1e-9,
              "step %g is 1, 2, 2.5 or 5 times a power of ten", step);
        CHECK(t[0] - step < -8.7 && t[n - 1] + step > 9.3, "ticks cover the range");
    }
    n = svg_ticks(1e-3, 1e2, 1, t, 8);
    CHECK(n == 6, "decades 1e-3..1e2: %zu", n);
    for (size_t i = 0; i < n; i++) CHECK_CLOSE(t[i], pow(10, -3.0 + (double)i), 1e-12, 0);
    n = svg_ticks(1e-8, 1e8, 1, t, 8);
    CHECK(n <= 8 && n >= 4, "many decades thinned: %zu", n);
    n = svg_ticks(2, 2, 0, t, 8);
    CHECK(n == 1 && t[0] == 2, "degenerate range");
    CHECK(svg_ticks(NAN, 1, 0, t, 8) == 0, "NaN range: no ticks");
}

/* Parses every "M x,y L x,y" segment end point of the first <path d=...> and calls back. */
static int path_points(const char *txt, double *xs, double *ys, int max)
{
    const char *p = strstr(txt, "<path d=\"");
    if (!p) return 0;
    p += 9;
    int n = 0;
    while (*p == 'M' || *p == 'L') {
        char *e;
        double x = strtod(p + 1, &e);
        if (*e != ',') break;
        double y = strtod(e + 1, &e);
        if (n < max) {
            xs[n] = x;
            ys[n] = y;
        }
        n++;
        p = e;
    }
    return n;
}

/* The contour of z on a grid over [-1,1]^2 at `level`, as data points read back from the file. */
static int contour_points(double (*fn)(double, double), double level, size_t nx, double *xs,
                          double *ys, int max)
{
    double *z = malloc(nx * nx * sizeof *z);
    if (!z) return 0;
    for (size_t j = 0; j < nx; j++)
        for (size_t i = 0; i < nx; i++)
            z[j * nx + i] = fn(-1 + 2.0 * (double)i / (double)(nx - 1),
                               -1 + 2.0 * (double)j / (double)(nx - 1));
    svg_grid g = {z, nx, nx, -1, 1, -1, 1};
    svg_viewport v = svg_viewport_make(0, 0, 1000, 1000, -1, 1, -1, 1);
    FILE *f = tmpfile();
    int n = 0;
    if (f) {
        svg *s = svg_open_stream(f, 1000, 1000);
        svg_contour(s, &v, &g, level, "#000000", 1);
        svg_close(s, NULL, 0);
        char *txt = slurp(f);
        fclose(f);
        if (txt) {
            n = path_points(txt, xs, ys, max);
            for (int i = 0; i < n && i < max; i++) { /* pixel -> data */
                xs[i] = -1 + xs[i] / 500;
                ys[i] = 1 - ys[i] / 500;
            }
            free(txt);
        }
    }
    free(z);
    return n;
}

static double plane(double x, double y) { return x + 0 * y; }
static double bowl(double x, double y) { return x * x + y * y; }
static double saddle(double x, double y) { return x * y; }

static void test_contour(void)
{
    enum { MAXP = 4000 };
    static double xs[MAXP], ys[MAXP];
    int n = contour_points(plane, 0.3, 21, xs, ys, MAXP);
    CHECK(n == 40, "plane: one segment per crossed cell row: %d points", n);
    for (int i = 0; i < n && i < MAXP; i++) CHECK_CLOSE(xs[i], 0.3, 0, 0.002);

    n = contour_points(bowl, 0.49, 41, xs, ys, MAXP);
    CHECK(n > 20 && n <= MAXP, "circle: %d points", n);
    double worst = 0;
    for (int i = 0; i < n && i < MAXP; i++)
        worst = fmax(worst, fabs(sqrt(xs[i] * xs[i] + ys[i] * ys[i]) - 0.7));
    CHECK(worst < 0.01, "circle points within %g of radius 0.7", worst);
    double ang = 0; /* the points go all the way round */
    for (int i = 0; i < n && i < MAXP; i++) ang = fmax(ang, atan2(ys[i], xs[i]));
    CHECK(ang > 3.0, "circle covers all angles");

    /* level 0.25 of x*y: the hyperbola branches; linear interpolation is exact on edges
     * where one coordinate is fixed, so every point satisfies x*y = 0.25 exactly */
    n = contour_points(saddle, 0.25, 21, xs, ys, MAXP);
    CHECK(n > 10, "saddle: %d points", n);
    for (int i = 0; i < n && i < MAXP; i++) CHECK_CLOSE(xs[i] * ys[i], 0.25, 0, 0.004);

    n = contour_points(bowl, 5.0, 11, xs, ys, MAXP);
    CHECK(n == 0, "a level outside the field draws nothing: %d", n);
}

static void test_heatmap_and_colormap(void)
{
    double z[12];
    for (int i = 0; i < 12; i++) z[i] = i;
    z[5] = NAN;
    svg_grid g = {z, 4, 3, 0, 3, 0, 2};
    svg_viewport v = svg_viewport_make(0, 0, 300, 200, 0, 3, 0, 2);
    FILE *f = tmpfile();
    if (!f) return;
    svg *s = svg_open_stream(f, 300, 200);
    svg_heatmap(s, &v, &g, 0, 11);
    CHECK(svg_close(s, NULL, 0) == 0, "close");
    char *txt = slurp(f);
    fclose(f);
    if (!txt) return;
    char why[128] = "";
    CHECK(well_formed(txt, why, sizeof why), "heatmap not well-formed: %s", why);
    CHECK(count(txt, "<rect") == 1 + 11, "background + 11 finite cells: %d",
          count(txt, "<rect"));
    free(txt);
    char c[8];
    svg_colormap(0, c);
    CHECK(strcmp(c, "#440154") == 0, "colormap(0) = %s", c);
    svg_colormap(1, c);
    CHECK(strcmp(c, "#fde725") == 0, "colormap(1) = %s", c);
    svg_colormap(NAN, c);
    CHECK(strcmp(c, "#440154") == 0, "colormap(NaN) clamps: %s", c);
    svg_colormap(2, c);
    CHECK(strcmp(c, "#fde725") == 0, "colormap(2) clamps: %s", c);
}

static void test_errors(void)
{
    char err[256] = "";
    svg *s = svg_open("/nonexistent-dir-mtgrad/x.svg", 100, 100, err, sizeof err);
    CHECK(s == NULL && strstr(err, "cannot write") != NULL, "bad path: %s", err);
    CHECK(svg_open_stream(NULL, 10, 10) == NULL, "NULL stream");
    CHECK(svg_close(NULL, NULL, 0) == -1, "close NULL");
    FILE *full = fopen("/dev/full", "w");
    if (full) {
        setvbuf(full, NULL, _IONBF, 0);
        svg *w = svg_open_stream(full, 10, 10);
        svg_text(w, 1, 1, "x", 10, SVG_START, NULL, 0);
        err[0] = '\0';
        CHECK(svg_close(w, err, sizeof err) == -1, "write error reported");
        CHECK(strstr(err, "write error") != NULL, "message: %s", err);
        fclose(full);
    }
    CHECK(strcmp(svg_color(0), svg_color(SVG_PALETTE_SIZE)) == 0, "palette wraps");
}

int main(void)
{
    test_well_formed_and_escaping();
    test_mapping();
    test_ticks();
    test_contour();
    test_heatmap_and_colormap();
    test_errors();
    return harness_report();
}
