/* params.c — parameter descriptions, "name=value,..." parsing, defaults as text.
 * Each method describes its parameters once (a mtgrad_param_desc table); everything that prints,
 * parses or checks a parameter goes through this file. */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const mtgrad_param_desc common_params[MTGRADI_N_COMMON] = {
    {"seed", MTGRAD_PARAM_INT, 0, 0, 9007199254740992.0, NULL, MTGRAD_PARAM_COMMON,
     "seed of the aggregator's random generator (methods that draw)"},
    {"threads", MTGRAD_PARAM_INT, 1, 1, 256, NULL, MTGRAD_PARAM_COMMON,
     "threads for the Gram and combine kernels (results do not depend on it)"},
};

size_t mtgrad_method_param_count(const mtgrad_method *m)
{
    return m ? m->n_params + MTGRADI_N_COMMON : 0;
}

const mtgrad_param_desc *mtgrad_method_param_at(const mtgrad_method *m, size_t i)
{
    if (!m) return NULL;
    if (i < m->n_params) return &m->params[i];
    if (i < m->n_params + MTGRADI_N_COMMON) return &common_params[i - m->n_params];
    return NULL;
}

static int param_index(const mtgrad_method *m, const char *name, size_t len)
{
    size_t n = mtgrad_method_param_count(m);
    for (size_t i = 0; i < n; i++) {
        const char *pn = mtgrad_method_param_at(m, i)->name;
        if (strlen(pn) == len && strncmp(pn, name, len) == 0) return (int)i;
    }
    return -1;
}

/* i-th '|'-separated choice of a CHOICE parameter, as (pointer, length). */
static int choice_at(const char *choices, int idx, const char **start, size_t *len)
{
    const char *p = choices;
    for (int i = 0; p && *p; i++) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (i == idx) {
            *start = p;
            *len = l;
            return 1;
        }
        p = bar ? bar + 1 : NULL;
    }
    return 0;
}

/* The fewest significant digits that read back to exactly v ("0.025", not "0.025000000000000001"). */
static int format_shortest(double v, char *buf, size_t len)
{
    char t[40];
    if (v == floor(v) && fabs(v) < 1e15) return snprintf(buf, len, "%.0f", v); /* 250, not 2.5e+02 */
    for (int prec = 1; prec < 17; prec++) {
        snprintf(t, sizeof t, "%.*g", prec, v);
        if (strtod(t, NULL) == v) return snprintf(buf, len, "%s", t);
    }
    return snprintf(buf, len, "%.17g", v);
}

static int in_range(const mtgrad_param_desc *p, double v)
{
    if (p->flags & MTGRAD_PARAM_LO_OPEN ? !(v > p->lo) : !(v >= p->lo)) return 0;
    if (p->flags & MTGRAD_PARAM_HI_OPEN ? !(v < p->hi) : !(v <= p->hi)) return 0;
    return 1;
}

static void range_text(const mtgrad_param_desc *p, char *buf, size_t len)
{
    snprintf(buf, len, "%c%.17g, %.17g%c", (p->flags & MTGRAD_PARAM_LO_OPEN) ? '(' : '[', p->lo,
             p->hi, (p->flags & MTGRAD_PARAM_HI_OPEN) ? ')' : ']');
}

/* Parse a whole string as one finite double (leading/trailing blanks allowed). */
static int parse_real(const char *s, size_t len, double *out)
{
    char buf[64];
    while (len && isspace((unsigned char)*s)) s++, len--;
    while (len && isspace((unsigned char)s[len - 1])) len--;
    if (len == 0 || len >= sizeof buf) return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (*end != '\0' || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

static int parse_bool(const char *s, size_t len, double *out)
{
    static const char *yes[] = {"1", "true", "yes", "on"}, *no[] = {"0", "false", "no", "off"};
    for (int i = 0; i < 4; i++) {
        if (strlen(yes[i]) == len && strncmp(s, yes[i], len) == 0) return *out = 1, 1;
        if (strlen(no[i]) == len && strncmp(s, no[i], len) == 0) return *out = 0, 1;
    }
    return 0;
}

/* Count and parse the numbers of a REALS value ("a:b:c" or "a b c"). vals may be NULL. */
static long parse_reals(const char *s, size_t len, double *vals)
{
    long n = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && (s[i] == ':' || s[i] == ' ')) i++;
        if (i >= len) break;
        size_t j = i;
        while (j < len && s[j] != ':' && s[j] != ' ') j++;
        double v;
        if (!parse_real(s + i, j - i, &v)) return -1;
        if (vals) vals[n] = v;
        n++;
        i = j;
    }
    return n;
}

/* Set parameter idx of a from text; on error writes a->err and leaves a unchanged. */
static mtgrad_status set_value(mtgrad_aggregator *a, int idx, const char *val, size_t len)
{
    const mtgrad_param_desc *p = mtgrad_method_param_at(a->m, (size_t)idx);
    char range[96];
    range_text(p, range, sizeof range);
    double v = 0;
    switch (p->type) {
    case MTGRAD_PARAM_REAL:
        if (!parse_real(val, len, &v))
            return mtgradi_fail(a, MTGRAD_E_INVAL, "%s: parameter %s: '%.*s' is not a finite number",
                                a->m->name, p->name, (int)len, val);
        if (!in_range(p, v))
            return mtgradi_fail(a, MTGRAD_E_INVAL, "%s: parameter %s = %.17g is outside %s",
                                a->m->name, p->name, v, range);
        break;
    case MTGRAD_PARAM_INT:
        if (!parse_real(val, len, &v) || v != floor(v))
            return mtgradi_fail(a, MTGRAD_E_INVAL, "%s: parameter %s: '%.*s' is not an integer",
                                a->m->name, p->name, (int)len, val);
        if (!in_range(p, v))
            return mtgradi_fail(a, MTGRAD_E_INVAL, "%s: parameter %s = %.17g is outside %s",
                                a->m->name, p->name, v, range);
        break;
    case MTGRAD_PARAM_BOOL:
        if (!parse_bool(val, len, &v))
            return mtgradi_fail(a, MTGRAD_E_INVAL,
                                "%s: parameter %s: '%.*s' is not a boolean (1/0, true/false, yes/no, on/off)",
                                a->m->name, p->name, (int)len, val);
        break;
    case MTGRAD_PARAM_CHOICE: {
        const char *c;
        size_t cl;
        int found = -1;
        for (int i = 0; choice_at(p->choices, i, &c, &cl); i++)
            if (cl == len && strncmp(c, val, len) == 0) found = i;
        if (found < 0)
            return mtgradi_fail(a, MTGRAD_E_INVAL, "%s: parameter %s: '%.*s' is not one of %s",
                                a->m->name, p->name, (int)len, val, p->choices);
        v = found;
        break;
    }
    case MTGRAD_PARAM_REALS: {
        long n = parse_reals(val, len, NULL);
        if (n < 0)
            return mtgradi_fail(a, MTGRAD_E_INVAL,
                                "%s: parameter %s: '%.*s' is not a list of finite numbers (a:b:c)",
                                a->m->name, p->name, (int)len, val);
        double *list = NULL;
        if (n > 0) {
            list = mtgradi_malloc((size_t)n * sizeof *list);
            if (!list) return mtgradi_fail(a, MTGRAD_E_NOMEM, "out of memory");
            parse_reals(val, len, list);
            for (long i = 0; i < n; i++)
                if (!in_range(p, list[i])) {
                    double bad = list[i];
                    free(list);
                    return mtgradi_fail(a, MTGRAD_E_INVAL,
                                        "%s: parameter %s: element %ld = %.17g is outside %s",
                                        a->m->name, p->name, i, bad, range);
                }
        }
        free(a->plist[idx]);
        a->plist[idx] = list;
        a->plen[idx] = (size_t)n;
        return MTGRAD_OK;
    }
    }
    a->pv[idx] = v;
    return MTGRAD_OK;
}

mtgrad_status mtgradi_params_defaults(mtgrad_aggregator *a)
{
    size_t n = mtgrad_method_param_count(a->m);
    for (size_t i = 0; i < n; i++) {
        const mtgrad_param_desc *p = mtgrad_method_param_at(a->m, i);
        a->pset[i] = 0;
        if (p->type == MTGRAD_PARAM_REALS) {
            const char *t = p->choices ? p->choices : "";
            mtgrad_status s = set_value(a, (int)i, t, strlen(t));
            if (s != MTGRAD_OK) return s;
        } else {
            a->pv[i] = p->def;
        }
    }
    return MTGRAD_OK;
}

/* Set one parameter and re-run the method's cross-check; restore everything on failure. */
static mtgrad_status set_checked(mtgrad_aggregator *a, int idx, const char *val, size_t len)
{
    double old_v = a->pv[idx];
    unsigned char old_set = a->pset[idx];
    size_t old_len = a->plen[idx];
    double *old_list = NULL;
    if (a->plist[idx] && old_len) {
        old_list = mtgradi_malloc(old_len * sizeof *old_list);
        if (!old_list) return mtgradi_fail(a, MTGRAD_E_NOMEM, "out of memory");
        memcpy(old_list, a->plist[idx], old_len * sizeof *old_list);
    }
    mtgrad_status s = set_value(a, idx, val, len);
    if (s == MTGRAD_OK) {
        a->pset[idx] = 1;
        if (a->m->check) s = a->m->check(a);
        if (s != MTGRAD_OK) {
            a->pv[idx] = old_v;
            a->pset[idx] = old_set;
            free(a->plist[idx]);
            a->plist[idx] = old_list;
            a->plen[idx] = old_len;
            old_list = NULL;
        }
    }
    free(old_list);
    return s;
}

mtgrad_status mtgradi_params_parse(mtgrad_aggregator *a, const char *s)
{
    if (!s) return MTGRAD_OK;
    const char *p = s;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *item = p;
        while (len && isspace((unsigned char)*item)) item++, len--;
        while (len && isspace((unsigned char)item[len - 1])) len--;
        if (len > 0) {
            const char *eq = memchr(item, '=', len);
            if (!eq)
                return mtgradi_fail(a, MTGRAD_E_INVAL, "%s: parameter '%.*s' has no '=value'",
                                    a->m->name, (int)len, item);
            size_t nl = (size_t)(eq - item);
            while (nl && isspace((unsigned char)item[nl - 1])) nl--;
            int idx = param_index(a->m, item, nl);
            if (idx < 0)
                return mtgradi_fail(a, MTGRAD_E_INVAL, "%s: unknown parameter '%.*s'", a->m->name,
                                    (int)nl, item);
            const char *val = eq + 1;
            size_t vl = len - (size_t)(val - item);
            while (vl && isspace((unsigned char)*val)) val++, vl--;
            mtgrad_status st = set_checked(a, idx, val, vl);
            if (st != MTGRAD_OK) return st;
        }
        if (!end) break;
        p = end + 1;
    }
    return MTGRAD_OK;
}

mtgrad_status mtgrad_aggregator_set_param(mtgrad_aggregator *a, const char *name,
                                          const char *value)
{
    if (!a) return MTGRAD_E_INVAL;
    if (!name || !value) return mtgradi_fail(a, MTGRAD_E_INVAL, "set_param: name and value must not be NULL");
    int idx = param_index(a->m, name, strlen(name));
    if (idx < 0)
        return mtgradi_fail(a, MTGRAD_E_INVAL, "%s: unknown parameter '%s'", a->m->name, name);
    return set_checked(a, idx, value, strlen(value));
}

static int format_reals(const double *v, size_t n, char *buf, size_t len)
{
    int total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t off = (size_t)total < len ? (size_t)total : len;
        int w = snprintf(buf ? buf + off : NULL, buf ? len - off : 0, "%s", i ? ":" : "");
        if (w < 0) return -1;
        total += w;
        off = (size_t)total < len ? (size_t)total : len;
        w = format_shortest(v[i], buf ? buf + off : NULL, buf ? len - off : 0);
        if (w < 0) return -1;
        total += w;
    }
    if (n == 0 && buf && len) buf[0] = '\0';
    return total;
}

static int format_value(const mtgrad_param_desc *p, double v, char *buf, size_t len)
{
    if (p->type == MTGRAD_PARAM_CHOICE) {
        const char *c;
        size_t cl;
        if (!choice_at(p->choices, (int)v, &c, &cl)) return -1;
        return snprintf(buf, len, "%.*s", (int)cl, c);
    }
    if (p->type == MTGRAD_PARAM_BOOL) return snprintf(buf, len, "%s", v != 0 ? "yes" : "no");
    return format_shortest(v, buf, len);
}

int mtgrad_param_default_str(const mtgrad_param_desc *p, char *buf, size_t len)
{
    if (!p) return -1;
    if (p->type == MTGRAD_PARAM_REALS) return snprintf(buf, len, "%s", p->choices ? p->choices : "");
    return format_value(p, p->def, buf, len);
}

int mtgrad_aggregator_get_param(const mtgrad_aggregator *a, const char *name, char *buf, size_t len)
{
    if (!a || !name) return -1;
    int idx = param_index(a->m, name, strlen(name));
    if (idx < 0) return -1;
    const mtgrad_param_desc *p = mtgrad_method_param_at(a->m, (size_t)idx);
    if (p->type == MTGRAD_PARAM_REALS) return format_reals(a->plist[idx], a->plen[idx], buf, len);
    return format_value(p, a->pv[idx], buf, len);
}
