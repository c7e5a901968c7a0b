/*
 * model.c — the model: layer-list parsing, the parameter arena, buffers, and the forward and
 * backward passes over the trunk and the k heads (the kernels are in layer_*.c, loss.c).
 *
 * Why it is built this way:
 * - One arena [trunk | head 0 | ... | head k-1], torch's state_dict order and layouts, so that a
 *   task's trunk gradient can be written straight into a row of the k x d matrix G, and weights
 *   can be exchanged with torch by copying tensors.
 * - Every buffer (activations, masks, gradient scratch, conv workspace) is allocated here for
 *   max_batch rows: forward and backward allocate nothing.
 * - The forward keeps each layer's input and what its backward needs (pool winners, dropout
 *   masks, dloss/doutput of every task), and backward never writes to them, so one forward
 *   serves k per-task backward passes (backward_task) or one weighted pass (backward_weighted,
 *   dZ = sum_i w_i dZ_i through the trunk once). backward_task is backward_head (dL_i/dZ, the
 *   MGDA-UB representation gradient) followed by backward_trunk, the same code, so the split
 *   calls give the same bits.
 * - Pass counters record what really ran, so tests and benchmarks can check a method's cost.
 */
#include "nn/nn_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest per-sample size, GEMM dimension or batch: keeps every product in range and every GEMM
 * dimension an int. */
#define MAX_DIM ((int64_t)1 << 30)
#define MAX_TOKEN 64

void mtgradi_blas_single_thread(void)
{
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
}

/* style.md's use_ref switch: the model runs the plain reference kernels of conv and linear
 * (for debugging, and for the tests that compare whole passes). Not thread-safe to flip while
 * a pass runs. */
static int nn_use_ref;
void mtgradi_nn_use_ref(int on) { nn_use_ref = on != 0; }


#define MFAIL(m, s, ...) mtgradi_errmsg((m)->err, sizeof (m)->err, s, __VA_ARGS__)

/* ------------------------------------------------------------------ allocation */

/* Zeroed memory recorded in m->blocks (freed by mtgrad_model_free); NULL when out of memory. */
static void *model_alloc(mtgrad_model *m, int64_t count, size_t size)
{
    if (m->n_blocks == m->cap_blocks) {
        size_t cap = m->cap_blocks ? 2 * m->cap_blocks : 32;
        void **b = mtgradi_realloc(m->blocks, cap * sizeof *b);
        if (!b) return NULL;
        m->blocks = b;
        m->cap_blocks = cap;
    }
    void *p = mtgradi_calloc(count > 0 ? (size_t)count : 1, size);
    if (p) m->blocks[m->n_blocks++] = p;
    return p;
}

void mtgrad_model_free(mtgrad_model *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n_blocks; i++) free(m->blocks[i]);
    free(m->blocks);
    free(m);
}

/* ------------------------------------------------------------------ parsing */

/* a * b for non-negative a, b, saturated at MAX_DIM + 1 (so every product below stays in range
 * and "too large" is one comparison). */
static int64_t smul(int64_t a, int64_t b)
{
    if (a == 0 || b == 0) return 0;
    if (a > MAX_DIM || b > MAX_DIM || a > (MAX_DIM + 1) / b) return MAX_DIM + 1;
    int64_t p = a * b;
    return p > MAX_DIM ? MAX_DIM + 1 : p;
}

static int64_t smul3(int64_t a, int64_t b, int64_t c) { return smul(smul(a, b), c); }

/* A positive (or, with allow_zero, non-negative) decimal integer no larger than MAX_DIM; -1 if
 * the field is anything else. */
static int64_t parse_int(const char *s, int allow_zero)
{
    int64_t v = 0;
    if (!*s) return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        v = v * 10 + (*s - '0');
        if (v > MAX_DIM) return -1;
    }
    return v > 0 || allow_zero ? v : -1;
}

/* Where a layer is, for messages: "trunk layer 2 'conv:0:3'". */
typedef struct where {
    const char *list; /* "trunk" or "head 3" */
    int64_t index;
    const char *token;
} where;

#define WFMT "%s layer %lld '%s'"
#define WARG(w) (w)->list, (long long)(w)->index, (w)->token

/* Kind and hyper-parameters of one layer from its fields (split at ':'). */
static mtgrad_status parse_layer(char **f, int nf, mtgradi_layer *L, const where *w, char *err,
                                 size_t errlen)
{
    static const struct {
        const char *name;
        mtgradi_layer_kind kind;
        int min_f, max_f;
        const char *usage;
    } kinds[] = {
        {"linear", MTGRADI_LAYER_LINEAR, 2, 2, "linear:OUT"},
        {"conv", MTGRADI_LAYER_CONV, 3, 5, "conv:OUT:K[:STRIDE[:PAD]]"},
        {"maxpool", MTGRADI_LAYER_MAXPOOL, 2, 3, "maxpool:K[:STRIDE]"},
        {"relu", MTGRADI_LAYER_RELU, 1, 1, "relu"},
        {"dropout", MTGRADI_LAYER_DROPOUT, 2, 2, "dropout:P"},
        {"dropout2d", MTGRADI_LAYER_DROPOUT2D, 2, 2, "dropout2d:P"},
        {"flatten", MTGRADI_LAYER_FLATTEN, 1, 1, "flatten"},
    };
    size_t t = 0, nk = sizeof kinds / sizeof kinds[0];
    while (t < nk && strcmp(kinds[t].name, f[0]) != 0) t++;
    if (t == nk)
        return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL,
                    WFMT ": unknown layer (linear, conv, maxpool, relu, dropout, dropout2d, "
                         "flatten)", WARG(w));
    if (nf < kinds[t].min_f || nf > kinds[t].max_f)
        return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL, WFMT ": expected %s", WARG(w), kinds[t].usage);
    L->kind = kinds[t].kind;
    int64_t v[4] = {0, 0, 0, 0};
    if (L->kind == MTGRADI_LAYER_DROPOUT || L->kind == MTGRADI_LAYER_DROPOUT2D) {
        char *end;
        L->p = strtod(f[1], &end);
        if (end == f[1] || *end || !(L->p >= 0 && L->p <= 1))
            return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL, WFMT ": P must be a number in [0, 1]", WARG(w));
        return MTGRAD_OK;
    }
    for (int i = 1; i < nf; i++) {
        v[i - 1] = parse_int(f[i], L->kind == MTGRADI_LAYER_CONV && i == 4);
        if (v[i - 1] < 0)
            return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL,
                        WFMT ": field %d ('%s') must be a %s integer no larger than %lld (%s)",
                        WARG(w), i + 1, f[i], i == 4 ? "non-negative" : "positive",
                        (long long)MAX_DIM, kinds[t].usage);
    }
    if (L->kind == MTGRADI_LAYER_LINEAR) {
        L->out_c = v[0];
    } else if (L->kind == MTGRADI_LAYER_CONV) {
        L->g.oc = v[0];
        L->g.k = v[1];
        L->g.stride = nf > 3 ? v[2] : 1;
        L->g.pad = nf > 4 ? v[3] : 0;
    } else if (L->kind == MTGRADI_LAYER_MAXPOOL) {
        L->g.k = v[0];
        L->g.stride = nf > 2 ? v[1] : v[0];
    }
    return MTGRAD_OK;
}

/* Output shape, parameter counts and geometry of L for input (c, h, w). */
static mtgrad_status layer_shape(mtgradi_layer *L, int64_t c, int64_t h, int64_t w,
                                 const where *wh, char *err, size_t errlen)
{
    L->in_c = c, L->in_h = h, L->in_w = w;
    L->out_c = L->kind == MTGRADI_LAYER_LINEAR ? L->out_c : c;
    L->out_h = h, L->out_w = w;
    switch (L->kind) {
    case MTGRADI_LAYER_LINEAR:
        L->out_h = L->out_w = 1;
        L->n_w = smul(L->out_c, c * h * w);
        L->n_b = L->out_c;
        break;
    case MTGRADI_LAYER_CONV:
    case MTGRADI_LAYER_MAXPOOL: {
        mtgradi_conv_geom *g = &L->g;
        g->c = c, g->h = h, g->w = w;
        if (L->kind == MTGRADI_LAYER_MAXPOOL) g->oc = c;
        if (h + 2 * g->pad < g->k || w + 2 * g->pad < g->k)
            return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL,
                        WFMT ": kernel %lld is larger than its input %lld x %lld%s", WARG(wh),
                        (long long)g->k, (long long)(h + 2 * g->pad), (long long)(w + 2 * g->pad),
                        g->pad ? " (padded)" : "");
        g->oh = (h + 2 * g->pad - g->k) / g->stride + 1;
        g->ow = (w + 2 * g->pad - g->k) / g->stride + 1;
        L->out_c = g->oc, L->out_h = g->oh, L->out_w = g->ow;
        if (L->kind == MTGRADI_LAYER_CONV) {
            L->n_b = g->oc;
            L->n_w = smul3(g->oc, c, smul(g->k, g->k));
            if (smul3(smul(c, g->k), g->k, smul(g->oh, g->ow)) > MAX_DIM)
                return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL, WFMT ": im2col columns too large",
                            WARG(wh));
        }
        break;
    }
    case MTGRADI_LAYER_FLATTEN:
        L->out_c = c * h * w;
        L->out_h = L->out_w = 1;
        break;
    default: break;
    }
    if (smul3(L->out_c, L->out_h, L->out_w) > MAX_DIM || L->n_w > MAX_DIM)
        return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL, WFMT ": layer too large", WARG(wh));
    return MTGRAD_OK;
}

/* Split `list` at commas into st's layers; shapes flow from (c, h, w). */
static mtgrad_status parse_stack(mtgrad_model *m, mtgradi_stack *st, const char *list,
                                 const char *name, int64_t c, int64_t h, int64_t w, char *err,
                                 size_t errlen)
{
    st->in_size = c * h * w;
    st->n_layers = 0;
    if (!*list) {
        st->out_size = st->in_size;
        return MTGRAD_OK;
    }
    int64_t count = 1;
    for (const char *p = list; *p; p++) count += *p == ',';
    st->layer = model_alloc(m, count, sizeof *st->layer);
    if (!st->layer) return mtgradi_errmsg(err, errlen, MTGRAD_E_NOMEM, "out of memory");
    const char *p = list;
    for (int64_t i = 0; i < count; i++) {
        size_t len = strcspn(p, ",");
        char tok[MAX_TOKEN], copy[MAX_TOKEN];
        where wh = {name, i, tok};
        if (len >= MAX_TOKEN) {
            snprintf(tok, sizeof tok, "%.20s...", p);
            return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL, WFMT ": too long", WARG(&wh));
        }
        memcpy(tok, p, len);
        tok[len] = '\0';
        memcpy(copy, tok, len + 1);
        p += len + (p[len] == ',');
        if (!len) return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL, "%s layer %lld is empty", name, (long long)i);
        char *f[6];
        int nf = 0;
        for (char *q = copy; nf < 6;) {
            f[nf++] = q;
            q = strchr(q, ':');
            if (!q) break;
            *q++ = '\0';
        }
        mtgradi_layer *L = &st->layer[i];
        L->index = i;
        mtgrad_status s = parse_layer(f, nf, L, &wh, err, errlen);
        if (s == MTGRAD_OK) s = layer_shape(L, c, h, w, &wh, err, errlen);
        if (s != MTGRAD_OK) return s;
        c = L->out_c, h = L->out_h, w = L->out_w;
        st->n_layers++;
    }
    st->out_size = c * h * w;
    return MTGRAD_OK;
}

/* ------------------------------------------------------------------ construction */

/* Arena offsets of every layer and the named tensor table. */
static mtgrad_status lay_out_arena(mtgrad_model *m)
{
    int64_t off = 0, n_tensors = 0;
    for (int64_t s = 0; s <= m->k; s++) {
        mtgradi_stack *st = &m->stack[s];
        st->off = off;
        for (int64_t i = 0; i < st->n_layers; i++) {
            mtgradi_layer *L = &st->layer[i];
            if (!L->n_w) continue;
            L->w_off = off;
            L->b_off = off + L->n_w;
            off += L->n_w + L->n_b;
            n_tensors += 2;
        }
        st->size = off - st->off;
    }
    m->n_params = off;
    m->n_tensors = n_tensors;
    m->params = model_alloc(m, off, sizeof *m->params);
    m->tensor = model_alloc(m, n_tensors, sizeof *m->tensor);
    if (!m->params || !m->tensor) return MTGRAD_E_NOMEM;
    mtgradi_tensor *t = m->tensor;
    for (int64_t s = 0; s <= m->k; s++) {
        char list[32];
        if (s == 0)
            snprintf(list, sizeof list, "trunk");
        else
            snprintf(list, sizeof list, "head%lld", (long long)(s - 1));
        for (int64_t i = 0; i < m->stack[s].n_layers; i++) {
            const mtgradi_layer *L = &m->stack[s].layer[i];
            if (!L->n_w) continue;
            snprintf(t->name, sizeof t->name, "%s.%lld.weight", list, (long long)L->index);
            t->off = L->w_off, t->numel = L->n_w;
            t++;
            snprintf(t->name, sizeof t->name, "%s.%lld.bias", list, (long long)L->index);
            t->off = L->b_off, t->numel = L->n_b;
            t++;
        }
    }
    return MTGRAD_OK;
}

/* Activation buffers of one stack whose input is `x`; `shared`: x is read by others too (the
 * trunk's output, read by every head), so no layer may write into it. */
static mtgrad_status alloc_stack(mtgrad_model *m, mtgradi_stack *st, float *x, int shared)
{
    const int64_t nb = m->max_batch;
    st->x = x;
    for (int64_t i = 0; i < st->n_layers; i++) {
        mtgradi_layer *L = &st->layer[i];
        const int64_t out = L->out_c * L->out_h * L->out_w;
        const int64_t in = L->in_c * L->in_h * L->in_w;
        L->x = x;
        if (in > m->max_act) m->max_act = in;
        if (out > m->max_act) m->max_act = out;
        int can_alias = L->kind == MTGRADI_LAYER_RELU || L->kind == MTGRADI_LAYER_DROPOUT ||
                        L->kind == MTGRADI_LAYER_DROPOUT2D;
        L->in_place = L->kind == MTGRADI_LAYER_FLATTEN || (can_alias && !shared);
        if (L->in_place) {
            L->y = x;
        } else {
            L->y = model_alloc(m, nb * out, sizeof(float));
            if (!L->y) return MTGRAD_E_NOMEM;
            shared = 0;
        }
        if (L->kind == MTGRADI_LAYER_CONV) {
            L->pw = model_alloc(m, MTGRADI_NN_GROUPS * L->n_w, sizeof *L->pw);
            L->pb = model_alloc(m, MTGRADI_NN_GROUPS * L->n_b, sizeof *L->pb);
            if (!L->pw || !L->pb) return MTGRAD_E_NOMEM;
        }
        if (L->kind == MTGRADI_LAYER_MAXPOOL) {
            L->argmax = model_alloc(m, nb * out, sizeof *L->argmax);
            if (!L->argmax) return MTGRAD_E_NOMEM;
        }
        if (L->kind == MTGRADI_LAYER_DROPOUT || L->kind == MTGRADI_LAYER_DROPOUT2D) {
            L->mask = model_alloc(m, nb * (L->kind == MTGRADI_LAYER_DROPOUT ? out : L->out_c),
                                  sizeof *L->mask);
            if (!L->mask) return MTGRAD_E_NOMEM;
        }
        x = L->y;
    }
    st->y = x;
    return MTGRAD_OK;
}

static mtgrad_status alloc_buffers(mtgrad_model *m)
{
    const int64_t nb = m->max_batch;
    mtgradi_stack *trunk = &m->stack[0];
    m->xbuf = model_alloc(m, nb * trunk->in_size, sizeof(float));
    if (!m->xbuf) return MTGRAD_E_NOMEM;
    m->max_act = trunk->in_size;
    if (alloc_stack(m, trunk, m->xbuf, 0) != MTGRAD_OK) return MTGRAD_E_NOMEM;
    for (int64_t i = 0; i < m->k; i++) {
        mtgradi_stack *h = &m->stack[1 + i];
        if (alloc_stack(m, h, trunk->y, 1) != MTGRAD_OK) return MTGRAD_E_NOMEM;
        m->dout[i] = model_alloc(m, nb * h->out_size, sizeof(float));
        if (!m->dout[i]) return MTGRAD_E_NOMEM;
        if (h->out_size > m->max_act) m->max_act = h->out_size;
    }
    m->dz = model_alloc(m, nb * trunk->out_size, sizeof(float));
    m->dz_tmp = model_alloc(m, nb * trunk->out_size, sizeof(float));
    m->gbuf[0] = model_alloc(m, nb * m->max_act, sizeof(float));
    m->gbuf[1] = model_alloc(m, nb * m->max_act, sizeof(float));
    if (!m->dz || !m->dz_tmp || !m->gbuf[0] || !m->gbuf[1]) return MTGRAD_E_NOMEM;
    /* per-group scratch of the per-sample pipeline, sized for the most demanding layer */
    size_t cols = 1;
    for (int64_t s = 0; s <= m->k; s++)
        for (int64_t i = 0; i < m->stack[s].n_layers; i++) {
            const mtgradi_layer *L = &m->stack[s].layer[i];
            if (L->kind != MTGRADI_LAYER_CONV) continue;
            size_t c, w, b;
            mtgradi_conv2d_work_need(&L->g, &c, &w, &b);
            cols = c > cols ? c : cols;
            cols = w + b > cols ? w + b : cols; /* the use_ref path's per-sample dW, db */
        }
    m->cols_stride = cols;
    m->grp_cols = model_alloc(m, (int64_t)cols * MTGRADI_NN_GROUPS, sizeof(float));
    m->grp_ga = model_alloc(m, m->max_act * MTGRADI_NN_GROUPS, sizeof(float));
    m->grp_gb = model_alloc(m, m->max_act * MTGRADI_NN_GROUPS, sizeof(float));
    if (!m->grp_cols || !m->grp_ga || !m->grp_gb) return MTGRAD_E_NOMEM;
    return MTGRAD_OK;
}

/* torch's defaults: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), layer by layer. */
static void init_params(mtgrad_model *m, uint64_t seed)
{
    mtgradi_rng r;
    mtgradi_rng_seed(&r, seed);
    for (int64_t s = 0; s <= m->k; s++)
        for (int64_t i = 0; i < m->stack[s].n_layers; i++) {
            const mtgradi_layer *L = &m->stack[s].layer[i];
            if (!L->n_w) continue;
            int64_t fan_in = L->n_w / (L->kind == MTGRADI_LAYER_CONV ? L->g.oc : L->out_c);
            double bound = 1.0 / sqrt((double)fan_in);
            mtgradi_init_uniform(&r, m->params + L->w_off, L->n_w, bound);
            mtgradi_init_uniform(&r, m->params + L->b_off, L->n_b, bound);
        }
    /* the dropout stream: another seed, so that it never overlaps the init stream */
    mtgradi_rng_seed(&m->drop_rng, seed ^ 0x6a09e667f3bcc909ULL);
}

static mtgrad_status check_spec(const mtgrad_model_spec *spec, char *err, size_t errlen)
{
    if (spec->k < 1 || spec->k > MTGRAD_NN_MAX_TASKS)
        return mtgradi_errmsg(err, errlen, MTGRAD_E_SHAPE, "k = %lld tasks; must be in [1, %d]",
                    (long long)spec->k, MTGRAD_NN_MAX_TASKS);
    if (spec->max_batch < 1 || spec->max_batch > MAX_DIM)
        return mtgradi_errmsg(err, errlen, MTGRAD_E_SHAPE, "max_batch = %lld; must be in [1, %lld]",
                    (long long)spec->max_batch, (long long)MAX_DIM);
    if (spec->in_c < 1 || spec->in_h < 1 || spec->in_w < 1 ||
        smul3(spec->in_c, spec->in_h, spec->in_w) > MAX_DIM)
        return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL, "input shape %lld x %lld x %lld is not valid",
                    (long long)spec->in_c, (long long)spec->in_h, (long long)spec->in_w);
    if (!spec->trunk) return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL, "spec->trunk is NULL");
    if (!*spec->trunk) return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL, "the trunk has no layers");
    for (int64_t i = 0; i < spec->k; i++) {
        if (!spec->heads[i])
            return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL, "head %lld's layer list is NULL (use \"\")",
                        (long long)i);
        if (spec->losses[i] != MTGRAD_LOSS_CE && spec->losses[i] != MTGRAD_LOSS_MSE &&
            spec->losses[i] != MTGRAD_LOSS_BCE)
            return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL, "head %lld: unknown loss kind %d",
                        (long long)i, (int)spec->losses[i]);
    }
    return MTGRAD_OK;
}

static mtgrad_status build(mtgrad_model *m, const mtgrad_model_spec *spec, char *err,
                           size_t errlen)
{
    mtgradi_stack *trunk = &m->stack[0];
    mtgrad_status s = parse_stack(m, trunk, spec->trunk, "trunk", spec->in_c, spec->in_h,
                                  spec->in_w, err, errlen);
    if (s != MTGRAD_OK) return s;
    const mtgradi_layer *last = &trunk->layer[trunk->n_layers - 1];
    for (int64_t i = 0; i < m->k; i++) {
        char name[32];
        snprintf(name, sizeof name, "head %lld", (long long)i);
        s = parse_stack(m, &m->stack[1 + i], spec->heads[i], name, last->out_c, last->out_h,
                        last->out_w, err, errlen);
        if (s != MTGRAD_OK) return s;
        int64_t width = m->stack[1 + i].out_size;
        if (m->loss[i] != MTGRAD_LOSS_CE && width != 1)
            return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL,
                        "head %lld has %lld outputs; its %s loss needs exactly 1", (long long)i,
                        (long long)width, m->loss[i] == MTGRAD_LOSS_MSE ? "MSE" : "BCE");
    }
    if (lay_out_arena(m) != MTGRAD_OK || alloc_buffers(m) != MTGRAD_OK)
        return mtgradi_errmsg(err, errlen, MTGRAD_E_NOMEM, "out of memory for the model's buffers");
    return MTGRAD_OK;
}

mtgrad_status mtgrad_model_new(mtgrad_model **out, const mtgrad_model_spec *spec, uint64_t seed,
                               char *err, size_t errlen)
{
    if (!out) return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL, "out is NULL");
    *out = NULL;
    if (!spec) return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL, "spec is NULL");
    mtgrad_status s = check_spec(spec, err, errlen);
    if (s != MTGRAD_OK) return s;
    mtgrad_model *m = mtgradi_calloc(1, sizeof *m);
    if (!m) return mtgradi_errmsg(err, errlen, MTGRAD_E_NOMEM, "out of memory");
    m->in_c = spec->in_c, m->in_h = spec->in_h, m->in_w = spec->in_w;
    m->k = spec->k;
    m->max_batch = spec->max_batch;
    for (int64_t i = 0; i < m->k; i++) m->loss[i] = spec->losses[i];
    s = build(m, spec, err, errlen);
    if (s != MTGRAD_OK) {
        mtgrad_model_free(m);
        return s;
    }
    init_params(m, seed);
    *out = m;
    return MTGRAD_OK;
}

/* ------------------------------------------------------------------ accessors */

static int bad_task(const mtgrad_model *m, int64_t task) { return !m || task < 0 || task >= m->k; }

int64_t mtgrad_model_k(const mtgrad_model *m) { return m ? m->k : 0; }
int64_t mtgrad_model_max_batch(const mtgrad_model *m) { return m ? m->max_batch : 0; }
int64_t mtgrad_model_input_size(const mtgrad_model *m) { return m ? m->stack[0].in_size : 0; }

int64_t mtgrad_model_output_width(const mtgrad_model *m, int64_t task)
{
    return bad_task(m, task) ? 0 : m->stack[1 + task].out_size;
}

mtgrad_loss_kind mtgrad_model_loss(const mtgrad_model *m, int64_t task)
{
    return bad_task(m, task) ? MTGRAD_LOSS_CE : m->loss[task];
}

int64_t mtgrad_model_num_params(const mtgrad_model *m) { return m ? m->n_params : 0; }
int64_t mtgrad_model_num_shared(const mtgrad_model *m) { return m ? m->stack[0].size : 0; }

int64_t mtgrad_model_head_offset(const mtgrad_model *m, int64_t task)
{
    return bad_task(m, task) ? -1 : m->stack[1 + task].off;
}

int64_t mtgrad_model_head_size(const mtgrad_model *m, int64_t task)
{
    return bad_task(m, task) ? 0 : m->stack[1 + task].size;
}

float *mtgrad_model_params(mtgrad_model *m) { return m ? m->params : NULL; }

int64_t mtgrad_model_tensor_count(const mtgrad_model *m) { return m ? m->n_tensors : 0; }

mtgrad_status mtgrad_model_tensor(const mtgrad_model *m, int64_t index, const char **name,
                                  int64_t *offset, int64_t *numel)
{
    if (!m || !name || !offset || !numel || index < 0 || index >= m->n_tensors)
        return MTGRAD_E_INVAL;
    *name = m->tensor[index].name;
    *offset = m->tensor[index].off;
    *numel = m->tensor[index].numel;
    return MTGRAD_OK;
}

void mtgrad_model_get_rng(const mtgrad_model *m, uint64_t state[4])
{
    if (m && state) memcpy(state, m->drop_rng.s, sizeof m->drop_rng.s);
}

void mtgrad_model_set_rng(mtgrad_model *m, const uint64_t state[4])
{
    if (m && state) memcpy(m->drop_rng.s, state, sizeof m->drop_rng.s);
}

const float *mtgrad_model_output(const mtgrad_model *m, int64_t task, int64_t *width)
{
    if (bad_task(m, task)) return NULL;
    if (width) *width = m->stack[1 + task].out_size;
    return m->stack[1 + task].y;
}

const char *mtgrad_model_error(const mtgrad_model *m) { return m ? m->err : "model is NULL"; }

/* ------------------------------------------------------------------ forward */

/*
 * Execution: a stack is a sequence of segments. A linear layer is one batch-wide sgemm; a maximal
 * run of the other layers (conv, maxpool, relu, dropout, flatten) works sample by sample: each
 * sample goes through the whole run while its activations are in cache, and the samples are
 * split into fixed groups (mtgradi_nn_group_range) that run in parallel. The conv layers of a run
 * accumulate partial weight gradients per group, added in group order afterwards, so no result
 * depends on the number of threads.
 */

static int64_t in_size(const mtgradi_layer *L) { return L->in_c * L->in_h * L->in_w; }
static int64_t out_size(const mtgradi_layer *L) { return L->out_c * L->out_h * L->out_w; }

/* One layer of a run on sample s. */
static void layer_forward_one(mtgrad_model *m, const mtgradi_layer *L, int64_t s, int train,
                              float *cols)
{
    const float *P = m->params;
    const int64_t in = in_size(L), out = out_size(L);
    const float *x = L->x + s * in;
    float *y = L->y + s * out;
    switch (L->kind) {
    case MTGRADI_LAYER_CONV:
        if (nn_use_ref)
            mtgradi_conv2d_forward_ref(&L->g, 1, x, P + L->w_off, P + L->b_off, y);
        else
            mtgradi_conv2d_forward_one(&L->g, x, P + L->w_off, P + L->b_off, y, cols);
        break;
    case MTGRADI_LAYER_MAXPOOL: mtgradi_maxpool_forward_one(&L->g, x, y, L->argmax + s * out); break;
    case MTGRADI_LAYER_RELU: mtgradi_relu_forward(out, x, y); break;
    case MTGRADI_LAYER_DROPOUT:
    case MTGRADI_LAYER_DROPOUT2D:
        if (!train || L->p == 0) { /* the identity */
            if (y != x) memcpy(y, x, (size_t)out * sizeof *y);
        } else if (L->kind == MTGRADI_LAYER_DROPOUT) {
            mtgradi_dropout_apply(out, 1, L->mask + s * out, x, y);
        } else {
            mtgradi_dropout_apply(L->out_c, L->out_h * L->out_w, L->mask + s * L->out_c, x, y);
        }
        break;
    case MTGRADI_LAYER_FLATTEN:
    case MTGRADI_LAYER_LINEAR: break;
    }
}

/* Layers [i, j) of st (no linear among them) on n samples. */
static void run_forward(mtgrad_model *m, const mtgradi_stack *st, int64_t i, int64_t j, int64_t n,
                        int train)
{
    /* masks first, serially, layer by layer in sample-major order: the same draws whatever the
     * number of threads */
    for (int64_t l = i; train && l < j; l++) {
        const mtgradi_layer *L = &st->layer[l];
        if ((L->kind == MTGRADI_LAYER_DROPOUT || L->kind == MTGRADI_LAYER_DROPOUT2D) && L->p > 0)
            mtgradi_dropout_mask(&m->drop_rng, n,
                                 L->kind == MTGRADI_LAYER_DROPOUT ? out_size(L) : L->out_c, L->p,
                                 L->mask);
    }
    const int64_t ng = mtgradi_nn_groups(n);
    mtgradi_blas_single_thread();
    MTGRADI_OMP(omp parallel for schedule(static) num_threads(mtgrad_nn_threads()))
    for (int64_t gi = 0; gi < ng; gi++) {
        int64_t s0, s1;
        mtgradi_nn_group_range(n, gi, &s0, &s1);
        float *cols = m->grp_cols + (size_t)gi * m->cols_stride;
        for (int64_t s = s0; s < s1; s++)
            for (int64_t l = i; l < j; l++) layer_forward_one(m, &st->layer[l], s, train, cols);
    }
}

static void stack_forward(mtgrad_model *m, const mtgradi_stack *st, int64_t n, int train)
{
    for (int64_t i = 0; i < st->n_layers;) {
        const mtgradi_layer *L = &st->layer[i];
        if (L->kind == MTGRADI_LAYER_LINEAR) {
            (nn_use_ref ? mtgradi_linear_forward_ref : mtgradi_linear_forward)(
                n, in_size(L), out_size(L), L->x, m->params + L->w_off, m->params + L->b_off, L->y);
            i++;
            continue;
        }
        int64_t j = i;
        while (j < st->n_layers && st->layer[j].kind != MTGRADI_LAYER_LINEAR) j++;
        run_forward(m, st, i, j, n, train);
        i = j;
    }
}

/* Loss, dloss/doutput (train) and the finiteness of head i's output. */
static mtgrad_status task_losses(mtgrad_model *m, int64_t i, const float *targets, int64_t n,
                                 int train, double *loss)
{
    const mtgradi_stack *h = &m->stack[1 + i];
    *loss = NAN;
    if (targets) {
        mtgrad_status s = mtgradi_loss(m->loss[i], i, n, h->out_size, h->y, targets + i * n, loss,
                                       train ? m->dout[i] : NULL, m->err, sizeof m->err);
        if (s != MTGRAD_OK) return s;
    }
    for (int64_t j = 0; j < n * h->out_size; j++)
        if (!isfinite(h->y[j]))
            return MFAIL(m, MTGRAD_E_NONFINITE, "head %lld: output %lld of sample %lld is %g",
                         (long long)i, (long long)(j % h->out_size),
                         (long long)(j / h->out_size), (double)h->y[j]);
    return MTGRAD_OK;
}

mtgrad_status mtgrad_model_forward(mtgrad_model *m, const float *x, const float *targets,
                                   int64_t n, int train, double *losses)
{
    if (!m) return MTGRAD_E_INVAL;
    m->have_train = 0;
    if (!x) return MFAIL(m, MTGRAD_E_INVAL, "x is NULL");
    if (n < 1 || n > m->max_batch)
        return MFAIL(m, MTGRAD_E_SHAPE, "n = %lld samples; must be in [1, max_batch = %lld]",
                     (long long)n, (long long)m->max_batch);
    memcpy(m->xbuf, x, (size_t)(n * m->stack[0].in_size) * sizeof *x);
    m->n = n;
    for (int64_t s = 0; s <= m->k; s++) stack_forward(m, &m->stack[s], n, train);
    for (int64_t i = 0; i < m->k; i++) {
        double loss;
        mtgrad_status s = task_losses(m, i, targets, n, train, &loss);
        if (s != MTGRAD_OK) return s;
        if (losses) losses[i] = loss;
    }
    m->have_train = train && targets;
    m->passes.forwards++;
    return MTGRAD_OK;
}

/* ------------------------------------------------------------------ backward */

/* mtgradi_conv2d_backward_one with the reference kernel: the sample's dW, db go through the
 * group's scratch (sized for it) into the partials. */
static void conv_backward_one_ref(mtgrad_model *m, const mtgradi_layer *L, int64_t s, int64_t gi,
                                  int first, int params, const float *dy, float *dx, float *tmp)
{
    const float *x = L->x + s * in_size(L), *W = m->params + L->w_off;
    if (dx) mtgradi_conv2d_backward_ref(&L->g, 1, x, W, dy, NULL, NULL, dx);
    if (!params) return;
    float *pw = L->pw + gi * L->n_w;
    double *pb = L->pb + gi * L->n_b;
    mtgradi_conv2d_backward_ref(&L->g, 1, x, W, dy, tmp, tmp + L->n_w, NULL);
    for (int64_t j = 0; j < L->n_w; j++) pw[j] = first ? tmp[j] : pw[j] + tmp[j];
    for (int64_t o = 0; o < L->n_b; o++) pb[o] = first ? tmp[L->n_w + o] : pb[o] + tmp[L->n_w + o];
}

/* One layer of a run on sample s: dy (this sample's) to dx (NULL: not needed); a conv layer adds
 * its parameter gradient into group gi's partials when `params`. */
static void layer_backward_one(mtgrad_model *m, const mtgradi_layer *L, int64_t s, int64_t gi,
                               int first, int params, const float *dy, float *dx, float *cols)
{
    const int64_t in = in_size(L), out = out_size(L);
    switch (L->kind) {
    case MTGRADI_LAYER_CONV:
        if (nn_use_ref)
            conv_backward_one_ref(m, L, s, gi, first, params, dy, dx, cols);
        else
            mtgradi_conv2d_backward_one(&L->g, L->x + s * in, m->params + L->w_off, dy,
                                        params ? L->pw + gi * L->n_w : NULL, L->pb + gi * L->n_b,
                                        !first, dx, cols);
        break;
    case MTGRADI_LAYER_MAXPOOL: mtgradi_maxpool_backward_one(&L->g, L->argmax + s * out, dy, dx); break;
    case MTGRADI_LAYER_RELU: mtgradi_relu_backward(out, L->y + s * out, dy, dx); break;
    case MTGRADI_LAYER_DROPOUT:
    case MTGRADI_LAYER_DROPOUT2D:
        if (L->p == 0)
            memcpy(dx, dy, (size_t)out * sizeof *dx);
        else if (L->kind == MTGRADI_LAYER_DROPOUT)
            mtgradi_dropout_apply(out, 1, L->mask + s * out, dy, dx);
        else
            mtgradi_dropout_apply(L->out_c, L->out_h * L->out_w, L->mask + s * L->out_c, dy, dx);
        break;
    case MTGRADI_LAYER_FLATTEN: memcpy(dx, dy, (size_t)out * sizeof *dx); break;
    case MTGRADI_LAYER_LINEAR: break;
    }
}

/* Backward of layers [i, j) of st (no linear among them): dy is the whole batch's gradient at
 * layer j-1's output, dx (NULL: not needed) receives the gradient at layer i's input, pg (NULL:
 * skip) the stack's parameter gradients. */
static void run_backward(mtgrad_model *m, const mtgradi_stack *st, int64_t i, int64_t j,
                         const float *dy, float *dx, float *pg)
{
    const int64_t n = m->n, ng = mtgradi_nn_groups(n);
    const int64_t run_in = in_size(&st->layer[i]), run_out = out_size(&st->layer[j - 1]);
    /* the lowest layer whose backward is needed: i if dx is wanted, else the first conv */
    int64_t stop = j;
    if (dx)
        stop = i;
    else if (pg)
        for (int64_t l = j - 1; l >= i; l--)
            if (st->layer[l].kind == MTGRADI_LAYER_CONV) stop = l;
    if (stop == j) return;
    mtgradi_blas_single_thread();
    MTGRADI_OMP(omp parallel for schedule(static) num_threads(mtgrad_nn_threads()))
    for (int64_t gi = 0; gi < ng; gi++) {
        int64_t s0, s1;
        mtgradi_nn_group_range(n, gi, &s0, &s1);
        float *cols = m->grp_cols + (size_t)gi * m->cols_stride;
        float *a = m->grp_ga + gi * m->max_act, *b = m->grp_gb + gi * m->max_act;
        for (int64_t s = s0; s < s1; s++) {
            const float *cur = dy + s * run_out;
            for (int64_t l = j - 1; l >= stop; l--) {
                const mtgradi_layer *L = &st->layer[l];
                if (L->kind == MTGRADI_LAYER_FLATTEN && l > i) continue; /* same data */
                float *next = l > stop ? (cur == a ? b : a) : l == i && dx ? dx + s * run_in : NULL;
                if (next || L->kind == MTGRADI_LAYER_CONV)
                    layer_backward_one(m, L, s, gi, s == s0, pg != NULL, cur, next, cols);
                cur = next;
            }
        }
    }
    for (int64_t l = stop; pg && l < j; l++) {
        const mtgradi_layer *L = &st->layer[l];
        if (L->kind == MTGRADI_LAYER_CONV)
            mtgradi_conv2d_reduce(&L->g, ng, L->pw, (size_t)L->n_w, L->pb, (size_t)L->n_b,
                                  pg + (L->w_off - st->off), pg + (L->b_off - st->off));
    }
}

/* Backpropagate dy (n x out_size; read only) through a stack: parameter gradients into pg (the
 * stack's slice; NULL: skip), the input gradient into dx (NULL: not needed). Between segments
 * the gradient ping-pongs between m->gbuf[0] and [1] (dy may be one of them). */
static void stack_backward(mtgrad_model *m, const mtgradi_stack *st, const float *dy, float *pg,
                           float *dx)
{
    const int64_t n = m->n;
    const float *cur = dy;
    for (int64_t j = st->n_layers; j > 0;) {
        int64_t i = j - 1;
        if (st->layer[i].kind != MTGRADI_LAYER_LINEAR)
            while (i > 0 && st->layer[i - 1].kind != MTGRADI_LAYER_LINEAR) i--;
        float *next = i == 0 ? dx : cur == m->gbuf[0] ? m->gbuf[1] : m->gbuf[0];
        const mtgradi_layer *L = &st->layer[i];
        if (L->kind == MTGRADI_LAYER_LINEAR) {
            float *dW = pg ? pg + (L->w_off - st->off) : NULL;
            float *db = pg ? pg + (L->b_off - st->off) : NULL;
            (nn_use_ref ? mtgradi_linear_backward_ref : mtgradi_linear_backward)(
                n, in_size(L), out_size(L), L->x, m->params + L->w_off, cur, dW, db, next);
        } else {
            run_backward(m, st, i, j, cur, next, pg);
        }
        cur = next;
        j = i;
    }
    if (st->n_layers == 0 && dx) memcpy(dx, dy, (size_t)(n * st->in_size) * sizeof *dx);
}

/* Shared checks of the backward calls: model state after a train forward with targets. */
static mtgrad_status check_backward(mtgrad_model *m)
{
    if (!m->have_train)
        return MFAIL(m, MTGRAD_E_STATE,
                     "backward needs a successful train-mode forward with targets first");
    return MTGRAD_OK;
}

/* Head `task`'s backward: its parameter gradients into grad's head slice (grad NULL: skip) and
 * the gradient at Z into dz, unless the head is empty: then dZ is dout itself and the returned
 * pointer is dout (no copy). Returns where dL_task/dZ is. */
static const float *head_backward(mtgrad_model *m, int64_t task, float *dz, float *grad)
{
    const mtgradi_stack *h = &m->stack[1 + task];
    m->passes.head_backwards[task]++;
    if (!h->n_layers) return m->dout[task];
    stack_backward(m, h, m->dout[task], grad ? grad + h->off : NULL, dz);
    return dz;
}

static void trunk_backward(mtgrad_model *m, const float *dz, float *trunk_grad)
{
    m->passes.trunk_backwards++;
    stack_backward(m, &m->stack[0], dz, trunk_grad, NULL);
}

/* The checks of a one-task backward: a valid task, its output buffer, a train forward before. */
static mtgrad_status check_task_backward(mtgrad_model *m, int64_t task, const float *out,
                                         const char *out_name)
{
    if (bad_task(m, task))
        return MFAIL(m, MTGRAD_E_INVAL, "task %lld is not in [0, %lld)", (long long)task,
                     (long long)m->k);
    if (!out) return MFAIL(m, MTGRAD_E_INVAL, "%s is NULL", out_name);
    return check_backward(m);
}

mtgrad_status mtgrad_model_backward_task(mtgrad_model *m, int64_t task, float *trunk_grad,
                                         float *grad)
{
    if (!m) return MTGRAD_E_INVAL;
    mtgrad_status s = check_task_backward(m, task, trunk_grad, "trunk_grad");
    if (s != MTGRAD_OK) return s;
    trunk_backward(m, head_backward(m, task, m->dz, grad), trunk_grad);
    return MTGRAD_OK;
}

int64_t mtgrad_model_rep_size(const mtgrad_model *m) { return m ? m->stack[0].out_size : 0; }

mtgrad_status mtgrad_model_backward_head(mtgrad_model *m, int64_t task, float *rep_grad,
                                         float *grad)
{
    if (!m) return MTGRAD_E_INVAL;
    mtgrad_status s = check_task_backward(m, task, rep_grad, "rep_grad");
    if (s != MTGRAD_OK) return s;
    const float *dz = head_backward(m, task, rep_grad, grad);
    if (dz != rep_grad)
        memcpy(rep_grad, dz, (size_t)(m->n * m->stack[0].out_size) * sizeof *rep_grad);
    return MTGRAD_OK;
}

mtgrad_status mtgrad_model_backward_trunk(mtgrad_model *m, const float *rep_grad,
                                          float *trunk_grad)
{
    if (!m) return MTGRAD_E_INVAL;
    if (!rep_grad) return MFAIL(m, MTGRAD_E_INVAL, "rep_grad is NULL");
    if (!trunk_grad) return MFAIL(m, MTGRAD_E_INVAL, "trunk_grad is NULL");
    mtgrad_status s = check_backward(m);
    if (s != MTGRAD_OK) return s;
    trunk_backward(m, rep_grad, trunk_grad);
    return MTGRAD_OK;
}

void mtgrad_model_passes(const mtgrad_model *m, mtgrad_pass_counts *c)
{
    if (!c) return;
    if (m)
        *c = m->passes;
    else
        memset(c, 0, sizeof *c);
}

void mtgrad_model_reset_passes(mtgrad_model *m)
{
    if (m) memset(&m->passes, 0, sizeof m->passes);
}

mtgrad_status mtgrad_model_backward_weighted(mtgrad_model *m, const double *w, float *grad)
{
    if (!m) return MTGRAD_E_INVAL;
    if (!grad) return MFAIL(m, MTGRAD_E_INVAL, "grad is NULL");
    for (int64_t i = 0; w && i < m->k; i++)
        if (!isfinite(w[i]))
            return MFAIL(m, MTGRAD_E_INVAL, "weight %lld is %g", (long long)i, w[i]);
    mtgrad_status st = check_backward(m);
    if (st != MTGRAD_OK) return st;
    const int64_t n = m->n, zlen = n * m->stack[0].out_size;
    int have = 0; /* m->dz holds the sum of the tasks done so far */
    for (int64_t i = 0; i < m->k; i++) {
        const mtgradi_stack *h = &m->stack[1 + i];
        double wi = w ? w[i] : 1.0;
        if (wi == 0) { /* contributes nothing: skip its backward */
            memset(grad + h->off, 0, (size_t)h->size * sizeof *grad);
            continue;
        }
        /* scale dloss/doutput, so that the head's gradient comes out as w_i dL_i/d(head) */
        float *sd = m->gbuf[0];
        for (int64_t j = 0; j < n * h->out_size; j++) sd[j] = (float)(wi * m->dout[i][j]);
        float *target = have ? m->dz_tmp : m->dz;
        m->passes.head_backwards[i]++;
        if (h->n_layers)
            stack_backward(m, h, sd, grad + h->off, target);
        else
            memcpy(target, sd, (size_t)zlen * sizeof *target);
        if (have)
            for (int64_t j = 0; j < zlen; j++) m->dz[j] += m->dz_tmp[j];
        have = 1;
    }
    if (!have) memset(m->dz, 0, (size_t)zlen * sizeof *m->dz);
    trunk_backward(m, m->dz, grad);
    return MTGRAD_OK;
}
