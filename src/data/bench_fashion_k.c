/*
 * bench_fashion_k.c — Fashion-MNIST as k binary tasks (benchmarks.md §8, tier 1 item 7): the
 * place to stress methods whose cost grows with k (MGDA, PCGrad, CAGrad, Nash-MTL) against the
 * O(1) ones (FAMO), on real images, with no construction step.
 *
 *   grouping=ovr     task i = "the item is class i" (one-vs-rest), i = 0..k-1; classes k..9
 *                    are negatives for every task. Each task is 10% positive.
 *   grouping=groups  the 10 classes split into k contiguous groups, group g = classes
 *                    [floor(10g/k), floor(10(g+1)/k)); task g = "the item is in group g".
 *                    Every item is positive for exactly one task.
 * Every task: one logit, BCE with logits, metric accuracy. The sets are the first ntrain train
 * and ntest t10k images, intensities / 255; nothing is random (the data seed is unused).
 */
#include "data_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { P_K, P_GROUPING, P_NTRAIN, P_NTEST, N_PARAMS };
enum { GROUPING_OVR = 0, GROUPING_GROUPS = 1 };

static const mtgradi_bparam params[N_PARAMS] = {
    {"k", MTGRADI_BP_INT, 5, 2, 10, NULL, "number of tasks"},
    {"grouping", MTGRADI_BP_CHOICE, GROUPING_OVR, 0, 0, "ovr|groups", "how classes become tasks"},
    {"ntrain", MTGRADI_BP_INT, 60000, 1, 60000, NULL, "training images (the first ones)"},
    {"ntest", MTGRADI_BP_INT, 10000, 1, 10000, NULL, "test images (the first ones)"},
};

static const char help[] =
    "k=5            number of binary tasks (2..10)\n"
    "grouping=ovr   ovr: task i = class i vs the rest; groups: the 10 classes in k contiguous\n"
    "               groups, task g = the item is in group g\n"
    "ntrain=60000   training images (the first ntrain of the train split)\n"
    "ntest=10000    test images (the first ntest of t10k)\n"
    "data: /usr/share/datasets/fashion-mnist (package dataset-fashion-mnist; MTGRAD_FASHION_DIR)\n"
    "model: trunk conv:8:5,relu,maxpool:2,conv:16:5,relu,maxpool:2,flatten,linear:64,relu;\n"
    "       heads linear:1; BCE per task, metric accuracy\n"
    "recipe: Adam lr 1e-3, batch 256, 3 epochs\n";

static const char *const class_names[10] = {"t-shirt", "trouser", "pullover", "dress", "coat",
                                            "sandal",  "shirt",   "sneaker",  "bag",   "boot"};

/* Group of a class when the 10 classes are split into k contiguous groups. */
static int64_t group_of(int64_t cls, int64_t k)
{
    int64_t g = 0;
    while (g + 1 < k && cls >= (10 * (g + 1)) / k) g++;
    return g;
}

static int task_positive(int grouping, int64_t task, int64_t cls, int64_t k)
{
    return grouping == GROUPING_OVR ? cls == task : group_of(cls, k) == task;
}

static mtgrad_status load_split(mtgrad_dataset *ds, int train, int64_t n, int64_t k,
                                int grouping, char *err, size_t errlen)
{
    mtgradi_fashion src;
    mtgrad_status s = mtgradi_fashion_load(&src, train, n, err, errlen);
    if (s != MTGRAD_OK) return s;
    if (src.n < n) {
        mtgradi_msg(err, errlen, "fashion-k: %lld %s images asked, the split has %lld",
                (long long)n, train ? "train" : "test", (long long)src.n);
        mtgradi_fashion_free(&src);
        return MTGRAD_E_INVAL;
    }
    s = mtgradi_dataset_alloc(ds, n, k, 1, MTGRADI_FASHION_SIDE, MTGRADI_FASHION_SIDE);
    if (s != MTGRAD_OK) {
        mtgradi_msg(err, errlen, "fashion-k: out of memory");
        mtgradi_fashion_free(&src);
        return s;
    }
    for (int64_t j = 0; j < n * MTGRADI_FASHION_PIXELS; j++)
        ds->x[j] = (float)src.images[j] / 255.0f;
    for (int64_t t = 0; t < k; t++)
        for (int64_t j = 0; j < n; j++)
            ds->y[t * n + j] = (float)task_positive(grouping, t, src.labels[j], k);
    mtgradi_fashion_free(&src);
    return MTGRAD_OK;
}

static void name_tasks(mtgrad_bench *b, int grouping)
{
    for (int64_t t = 0; t < b->k; t++) {
        if (grouping == GROUPING_OVR) {
            snprintf(b->task_names[t], MTGRADI_TASK_NAME, "%s", class_names[t]);
        } else {
            int64_t first = (10 * t) / b->k, last = (10 * (t + 1)) / b->k - 1;
            if (first == last)
                snprintf(b->task_names[t], MTGRADI_TASK_NAME, "%s", class_names[first]);
            else
                snprintf(b->task_names[t], MTGRADI_TASK_NAME, "%s..%s", class_names[first],
                         class_names[last]);
        }
        b->metrics[t] = MTGRAD_METRIC_ACCURACY;
    }
}

static mtgrad_status load(mtgrad_bench *b, const double *v, uint64_t seed, char *err,
                          size_t errlen)
{
    (void)seed;
    int grouping = (int)v[P_GROUPING];
    b->k = (int64_t)v[P_K];
    b->recipe.epochs = 3;
    b->recipe.batch = 256;
    b->recipe.optim = mtgrad_optim_config_default(MTGRAD_OPTIM_ADAM);
    mtgradi_bench_set_model(
        b, 1, MTGRADI_FASHION_SIDE, MTGRADI_FASHION_SIDE,
        "conv:8:5,relu,maxpool:2,conv:16:5,relu,maxpool:2,flatten,linear:64,relu", "linear:1",
        MTGRAD_LOSS_BCE);
    name_tasks(b, grouping);
    mtgrad_status s = load_split(&b->train, 1, (int64_t)v[P_NTRAIN], b->k, grouping, err, errlen);
    if (s == MTGRAD_OK)
        s = load_split(&b->test, 0, (int64_t)v[P_NTEST], b->k, grouping, err, errlen);
    return s;
}

const mtgradi_bench_type mtgradi_bench_fashion_k = {
    "fashion-k",
    "Fashion-MNIST 28x28 as k binary tasks (one-vs-rest or class groups), k = 2..10",
    help,
    params,
    N_PARAMS,
    load,
};
