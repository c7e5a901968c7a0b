/*
 * nn_internal.h — what the engine's model files share: the layer kernels (each fast one with a
 * plain `_ref` twin that the tests compare it with), the losses, the initialiser and the model
 * struct. Never installed.
 *
 * Layout conventions (the same everywhere, so kernels need no layout flags):
 *   activations are n x size row-major, each sample in torch's (c, h, w) order (NCHW);
 *   parameters are in torch's layouts (Linear W out x in, Conv2d W out x in x K x K).
 * Determinism: every kernel's result depends on its inputs and shapes only, never on the number
 * of threads. OpenBLAS always runs single-threaded (its own threading changes its K blocking and
 * so the bits); parallel work is split into MTGRADI_NN_GROUPS fixed sample groups whose partial
 * weight gradients are added in group order.
 */
#ifndef MTGRAD_NN_INTERNAL_H
#define MTGRAD_NN_INTERNAL_H

#include "internal.h"
#include "mtgrad_nn.h"

#include <stddef.h>
#include <stdint.h>

/* OpenMP pragmas that vanish (without an unknown-pragma warning) in OPENMP=0 builds. */
#ifdef _OPENMP
#define MTGRADI_OMP(x) _Pragma(#x)
#else
#define MTGRADI_OMP(x)
#endif

/* Samples are split into at most this many fixed groups (the most threads the engine uses). */
#define MTGRADI_NN_GROUPS 16

static inline int64_t mtgradi_nn_groups(int64_t n)
{
    return n < MTGRADI_NN_GROUPS ? n : MTGRADI_NN_GROUPS;
}

/* Samples [s0, s1) of group gi when n samples are split into mtgradi_nn_groups(n) groups. */
static inline void mtgradi_nn_group_range(int64_t n, int64_t gi, int64_t *s0, int64_t *s1)
{
    *s0 = gi * n / mtgradi_nn_groups(n);
    *s1 = (gi + 1) * n / mtgradi_nn_groups(n);
}

/* Make OpenBLAS single-threaded (see above); cheap when it already is. */
void mtgradi_blas_single_thread(void);

/* on != 0: models run the _ref kernels of conv and linear (debugging; tests). */
void mtgradi_nn_use_ref(int on);

/* ------------------------------------------------------------------ convolution and pooling */

/* Geometry of a 2-D convolution or max pooling for one sample (pooling: oc = c, pad = 0). */
typedef struct mtgradi_conv_geom {
    int64_t c, h, w;         /* input */
    int64_t oc, k, stride, pad;
    int64_t oh, ow;          /* output: (h + 2 pad - k) / stride + 1 */
} mtgradi_conv_geom;

/* Scratch of the fast convolution, per group: im2col columns, partial dW and partial db. */
typedef struct mtgradi_conv_work {
    float *cols;   /* MTGRADI_NN_GROUPS * cols_floats */
    float *pw;     /* MTGRADI_NN_GROUPS * pw_floats */
    double *pb;    /* MTGRADI_NN_GROUPS * pb_doubles */
    size_t cols_floats, pw_floats, pb_doubles; /* per group, at least mtgradi_conv2d_work_need */
} mtgradi_conv_work;

/* Per-group sizes this geometry needs. */
void mtgradi_conv2d_work_need(const mtgradi_conv_geom *g, size_t *cols_floats, size_t *pw_floats,
                              size_t *pb_doubles);

/* One sample: y (oc x oh x ow) = conv(x (c x h x w), W (oc x c x k x k)) + b, im2col + sgemm;
 * cols: cols_floats of scratch. */
void mtgradi_conv2d_forward_one(const mtgradi_conv_geom *g, const float *x, const float *W,
                                const float *b, float *y, float *cols);
/* One sample's backward: pw (oc*c*k*k) and pb (oc) get (accumulate != 0) or are set to this
 * sample's dW and db (pw NULL: skip); dx (c*h*w; NULL: skip) is overwritten. */
void mtgradi_conv2d_backward_one(const mtgradi_conv_geom *g, const float *x, const float *W,
                                 const float *dy, float *pw, double *pb, int accumulate,
                                 float *dx, float *cols);
/* dW = sum of the ng partials pw (stride pw_stride floats), db likewise, in group order. */
void mtgradi_conv2d_reduce(const mtgradi_conv_geom *g, int64_t ng, const float *pw,
                           size_t pw_stride, const double *pb, size_t pb_stride, float *dW,
                           float *db);

/* y (n x oc*oh*ow) = conv(x (n x c*h*w), W (oc x c x k x k)) + b (oc), im2col + sgemm. */
void mtgradi_conv2d_forward(const mtgradi_conv_geom *g, int64_t n, const float *x, const float *W,
                            const float *b, float *y, const mtgradi_conv_work *work);
/* Gradients from dy: dW, db (overwritten; both NULL to skip) and dx (overwritten; NULL to skip). */
void mtgradi_conv2d_backward(const mtgradi_conv_geom *g, int64_t n, const float *x, const float *W,
                             const float *dy, float *dW, float *db, float *dx,
                             const mtgradi_conv_work *work);
/* Direct loops with double accumulation: the references of the two above. */
void mtgradi_conv2d_forward_ref(const mtgradi_conv_geom *g, int64_t n, const float *x,
                                const float *W, const float *b, float *y);
void mtgradi_conv2d_backward_ref(const mtgradi_conv_geom *g, int64_t n, const float *x,
                                 const float *W, const float *dy, float *dW, float *db, float *dx);

/* Max pooling (ties: the first maximum in window order wins; NaN wins, as in torch).
 * argmax: n x c*oh*ow, the winner's index within its input plane. */
void mtgradi_maxpool_forward_one(const mtgradi_conv_geom *g, const float *x, float *y,
                                 int32_t *argmax);
void mtgradi_maxpool_backward_one(const mtgradi_conv_geom *g, const int32_t *argmax,
                                  const float *dy, float *dx);
void mtgradi_maxpool_forward(const mtgradi_conv_geom *g, int64_t n, const float *x, float *y,
                             int32_t *argmax);
void mtgradi_maxpool_backward(const mtgradi_conv_geom *g, int64_t n, const int32_t *argmax,
                              const float *dy, float *dx);
/* Reference backward: finds each window's winner again from x. */
void mtgradi_maxpool_backward_ref(const mtgradi_conv_geom *g, int64_t n, const float *x,
                                  const float *dy, float *dx);

/* ------------------------------------------------------------------ linear */

/* y (n x out) = x (n x in) W^T + b, W out x in. */
void mtgradi_linear_forward(int64_t n, int64_t in, int64_t out, const float *x, const float *W,
                            const float *b, float *y);
/* dW, db (overwritten; both NULL to skip), dx (overwritten; NULL to skip). */
void mtgradi_linear_backward(int64_t n, int64_t in, int64_t out, const float *x, const float *W,
                             const float *dy, float *dW, float *db, float *dx);
void mtgradi_linear_forward_ref(int64_t n, int64_t in, int64_t out, const float *x,
                                const float *W, const float *b, float *y);
void mtgradi_linear_backward_ref(int64_t n, int64_t in, int64_t out, const float *x,
                                 const float *W, const float *dy, float *dW, float *db, float *dx);

/* ------------------------------------------------------------------ element-wise layers */

/* y = max(x, 0) (y may equal x; NaN passes through, as in torch). */
void mtgradi_relu_forward(int64_t len, const float *x, float *y);
/* dx = dy where y > 0, else 0 (torch's gradient: 0 at 0). dx may equal dy. */
void mtgradi_relu_backward(int64_t len, const float *y, const float *dy, float *dx);

/* Draw a dropout mask: n samples x units each, in that order (sample-major), one uniform per
 * unit; mask = 1/(1-p) where kept (probability 1-p), else 0. p = 1 drops everything. */
void mtgradi_dropout_mask(mtgradi_rng *r, int64_t n, int64_t units, double p, float *mask);
/* y[u*len + j] = x[u*len + j] * mask[u] for u < n_units, j < len (y may equal x). The backward
 * is the same call on dy. */
void mtgradi_dropout_apply(int64_t n_units, int64_t len, const float *mask, const float *x,
                           float *y);

/* ------------------------------------------------------------------ losses and init */

/*
 * Mean loss of one task over n samples: out is n x width, target n values (task-major row).
 * Writes *loss (double accumulation) and, if dout != NULL, dloss/dout (n x width).
 * Returns OK, E_INVAL (a bad target: CE class not an integer in [0, width), BCE target outside
 * [0, 1]), E_NONFINITE (non-finite loss). Messages name the task and sample.
 */
mtgrad_status mtgradi_loss(mtgrad_loss_kind kind, int64_t task, int64_t n, int64_t width,
                           const float *out, const float *target, double *loss, float *dout,
                           char *err, size_t errlen);

/* p[0..len) ~ U(-bound, bound) from r, in order (torch's default init with bound 1/sqrt(fan_in)). */
void mtgradi_init_uniform(mtgradi_rng *r, float *p, int64_t len, double bound);

/* ------------------------------------------------------------------ model */

typedef enum mtgradi_layer_kind {
    MTGRADI_LAYER_LINEAR,
    MTGRADI_LAYER_CONV,
    MTGRADI_LAYER_MAXPOOL,
    MTGRADI_LAYER_RELU,
    MTGRADI_LAYER_DROPOUT,
    MTGRADI_LAYER_DROPOUT2D,
    MTGRADI_LAYER_FLATTEN
} mtgradi_layer_kind;

typedef struct mtgradi_layer {
    mtgradi_layer_kind kind;
    int64_t index;              /* position in its list (the tensor names' index) */
    int64_t in_c, in_h, in_w;   /* per-sample input shape */
    int64_t out_c, out_h, out_w;
    mtgradi_conv_geom g;        /* conv, maxpool */
    double p;                   /* dropout probability */
    int64_t w_off, n_w;         /* weight: offset in the arena and size (0: no parameters) */
    int64_t b_off, n_b;
    float *pw;                  /* conv: MTGRADI_NN_GROUPS partial dW (n_w each) */
    double *pb;                 /* conv: MTGRADI_NN_GROUPS partial db (out_c each) */
    /* In-place layers (relu, dropout, flatten) write into their input buffer: nothing reads an
     * activation except the next layer, and their backward needs only their output's sign
     * (relu; later in-place relu/dropout keep the sign or zero the gradient) or the mask. The
     * first layer of a head is never in place: every head reads the trunk's output. */
    int in_place;
    float *x, *y;               /* input and output activations, max_batch rows */
    float *mask;                /* dropout, dropout2d: one scale per element / channel */
    int32_t *argmax;            /* maxpool */
} mtgradi_layer;

/* The trunk or one head: its layers, its slice of the arena, its input and output buffers. */
typedef struct mtgradi_stack {
    mtgradi_layer *layer;
    int64_t n_layers;
    int64_t off, size;          /* parameters [off, off + size) of the arena */
    int64_t in_size, out_size;  /* per sample */
    float *x, *y;               /* y == x for an empty head */
} mtgradi_stack;

typedef struct mtgradi_tensor {
    char name[48];
    int64_t off, numel;
} mtgradi_tensor;

struct mtgrad_model {
    int64_t in_c, in_h, in_w, k, max_batch;
    mtgrad_loss_kind loss[MTGRAD_NN_MAX_TASKS];
    mtgradi_stack stack[1 + MTGRAD_NN_MAX_TASKS]; /* 0: trunk, 1 + i: head i */
    int64_t n_params;
    float *params;
    mtgradi_tensor *tensor;
    int64_t n_tensors;

    /* buffers, all allocated by mtgrad_model_new for max_batch rows */
    float *xbuf;                          /* the batch (the trunk's input) */
    float *dout[MTGRAD_NN_MAX_TASKS];     /* dL_i/d(output of head i), from the last forward */
    float *dz, *dz_tmp;                   /* gradient at the trunk's output */
    float *gbuf[2];                       /* ping-pong gradient buffers (whole batch) */
    int64_t max_act;                      /* largest per-sample activation of any layer */
    /* per sample group: im2col columns, and two per-sample gradient buffers */
    float *grp_cols, *grp_ga, *grp_gb;
    size_t cols_stride;                   /* floats per group in grp_cols */

    int64_t n;                            /* samples of the last forward */
    int have_train;                       /* 1 after a train forward with targets */
    mtgrad_pass_counts passes;            /* what forward/backward calls did (mtgrad_model_passes) */
    mtgradi_rng drop_rng;
    char err[256];

    void **blocks;                        /* every allocation, freed together */
    size_t n_blocks, cap_blocks;
};

#endif /* MTGRAD_NN_INTERNAL_H */
