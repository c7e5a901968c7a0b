/*
 * bench_multifashion.c — MultiFashion, Pareto-MTL style (Lin et al. 2019; benchmarks.md §5.2):
 * two Fashion-MNIST items on a 36 x 36 canvas, task "left" = the class of the top-left item,
 * task "right" = the class of the bottom-right one. The original generator was never published;
 * this is the deterministic reading of benchmarks.md:
 *
 *   composites 2i and 2i+1 use source image i of the split (so each image appears twice):
 *   in 2i it is the top-left item, in 2i+1 the bottom-right one; its partner is drawn uniformly
 *   from the split until the classes differ; the top-left item's corner is at (r, c), the
 *   bottom-right item's at (4 + r', 4 + c'), r, c, r', c' uniform in {0..4}; where they
 *   overlap the pixel is the max of the two; intensities / 255.
 *
 * Draws per composite, in order: partner (repeated until its class differs), r, c, r', c' —
 * from one generator stream per split, so the first n composites of a split do not depend on
 * how many are made (a subset is a prefix) and the test set does not depend on ntrain.
 * Train composites come from the 60000 train images (up to 120000), test composites from the
 * 10000 t10k images (up to 20000).
 */
#include "data_internal.h"
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define SIDE 36
#define SHIFT 4 /* each item moves up to 4 px */

enum { P_NTRAIN, P_NTEST, N_PARAMS };

static const mtgradi_bparam params[N_PARAMS] = {
    {"ntrain", MTGRADI_BP_INT, 120000, 1, 120000, NULL, "training composites (a prefix)"},
    {"ntest", MTGRADI_BP_INT, 20000, 1, 20000, NULL, "test composites (a prefix)"},
};

static const char help[] =
    "ntrain=120000 training composites, two per Fashion-MNIST train image (a subset is a prefix)\n"
    "ntest=20000   test composites, two per t10k image (a subset is a prefix)\n"
    "data: /usr/share/datasets/fashion-mnist (package dataset-fashion-mnist; MTGRAD_FASHION_DIR)\n"
    "model: trunk conv:10:9,relu,maxpool:2,conv:20:5,relu,maxpool:2,flatten,linear:50,relu;\n"
    "       heads linear:10; CE per task, metric accuracy\n"
    "recipe: Adam lr 1e-3, weight_decay 0.01, batch 256, 10 epochs (Pareto-MTL trains 100;\n"
    "        10 fit a 2-core budget)\n";

/* Pixel-wise max of a 28 x 28 image into the canvas at (row, col). */
static void place(float *canvas, const uint8_t *img, int64_t row, int64_t col)
{
    for (int64_t y = 0; y < MTGRADI_FASHION_SIDE; y++) {
        float *dst = canvas + (row + y) * SIDE + col;
        const uint8_t *src = img + y * MTGRADI_FASHION_SIDE;
        for (int64_t x = 0; x < MTGRADI_FASHION_SIDE; x++) {
            float v = (float)src[x] / 255.0f;
            if (v > dst[x]) dst[x] = v;
        }
    }
}

static void compose(const mtgradi_fashion *src, uint64_t stream_seed, mtgrad_dataset *ds)
{
    mtgradi_rng r;
    mtgradi_rng_seed(&r, stream_seed);
    int64_t n = ds->n;
    for (int64_t j = 0; j < n; j++) {
        int64_t i = j / 2, partner;
        do {
            partner = mtgradi_rng_below(&r, src->n);
        } while (src->labels[partner] == src->labels[i]);
        int64_t left = j % 2 == 0 ? i : partner, right = j % 2 == 0 ? partner : i;
        int64_t r1 = mtgradi_rng_below(&r, SHIFT + 1), c1 = mtgradi_rng_below(&r, SHIFT + 1);
        int64_t r2 = mtgradi_rng_below(&r, SHIFT + 1), c2 = mtgradi_rng_below(&r, SHIFT + 1);
        float *canvas = ds->x + j * SIDE * SIDE;
        memset(canvas, 0, SIDE * SIDE * sizeof *canvas);
        place(canvas, src->images + left * MTGRADI_FASHION_PIXELS, r1, c1);
        place(canvas, src->images + right * MTGRADI_FASHION_PIXELS, SHIFT + r2, SHIFT + c2);
        ds->y[j] = (float)src->labels[left];
        ds->y[n + j] = (float)src->labels[right];
    }
}

static mtgrad_status load_split(mtgrad_dataset *ds, int train, int64_t n, uint64_t seed,
                                char *err, size_t errlen)
{
    mtgradi_fashion src;
    mtgrad_status s = mtgradi_fashion_load(&src, train, 0, err, errlen);
    if (s != MTGRAD_OK) return s;
    if (2 * src.n < n) {
        mtgradi_msg(err, errlen, "multifashion: %lld %s composites asked, the split has %lld images",
                (long long)n, train ? "train" : "test", (long long)src.n);
        mtgradi_fashion_free(&src);
        return MTGRAD_E_INVAL;
    }
    s = mtgradi_dataset_alloc(ds, n, 2, 1, SIDE, SIDE);
    if (s == MTGRAD_OK) compose(&src, mtgradi_data_stream_seed(seed, train ? 1 : 2), ds);
    else mtgradi_msg(err, errlen, "multifashion: out of memory");
    mtgradi_fashion_free(&src);
    return s;
}

static mtgrad_status load(mtgrad_bench *b, const double *v, uint64_t seed, char *err,
                          size_t errlen)
{
    b->k = 2;
    b->recipe.epochs = 10;
    b->recipe.batch = 256;
    b->recipe.optim = mtgrad_optim_config_default(MTGRAD_OPTIM_ADAM);
    b->recipe.optim.weight_decay = 0.01;
    mtgradi_bench_set_model(b, 1, SIDE, SIDE,
                            "conv:10:9,relu,maxpool:2,conv:20:5,relu,maxpool:2,flatten,linear:50,relu",
                            "linear:10", MTGRAD_LOSS_CE);
    snprintf(b->task_names[0], MTGRADI_TASK_NAME, "left");
    snprintf(b->task_names[1], MTGRADI_TASK_NAME, "right");
    b->metrics[0] = b->metrics[1] = MTGRAD_METRIC_ACCURACY;
    mtgrad_status s = load_split(&b->train, 1, (int64_t)v[P_NTRAIN], seed, err, errlen);
    if (s == MTGRAD_OK) s = load_split(&b->test, 0, (int64_t)v[P_NTEST], seed, err, errlen);
    return s;
}

const mtgradi_bench_type mtgradi_bench_multifashion = {
    "multifashion",
    "MultiFashion 36x36 (Pareto-MTL style): classify the top-left and the bottom-right item; "
    "10 epochs (a 2-core budget; the paper trains 100)",
    help,
    params,
    N_PARAMS,
    load,
};
