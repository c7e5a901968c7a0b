/*
 * data_internal.h — what the files of src/data share: the IDX reader, the Fashion-MNIST loader,
 * the benchmark object and the small "name=value,..." parameter parser every benchmark uses.
 * Never installed.
 */
#ifndef MTGRAD_DATA_INTERNAL_H
#define MTGRAD_DATA_INTERNAL_H

#include "mtgrad_nn.h"
#include "internal.h" /* mtgradi_msg, mtgradi_malloc */

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------ IDX files (idx.c) */

#define MTGRADI_IDX_IMAGES 2051 /* magic of a 3-D unsigned-byte file: n x rows x cols */
#define MTGRADI_IDX_LABELS 2049 /* magic of a 1-D unsigned-byte file: n */
#define MTGRADI_IDX_MAX_ITEMS 10000000 /* refuse absurd headers before allocating */

/* The directory of the Fashion-MNIST files: $MTGRAD_FASHION_DIR if set and not empty, else
 * /usr/share/datasets/fashion-mnist (Debian package dataset-fashion-mnist). */
const char *mtgradi_fashion_dir(void);

/*
 * Read a gzip'd (or plain: zlib reads both) IDX file of unsigned bytes with the given magic.
 * dims: 3 outputs for images (n, rows, cols), 1 for labels (n). *data (malloc'ed, caller frees)
 * holds the product of dims bytes. max_items > 0 reads only the first min(max_items, n) items
 * (dims[0] reports how many were read).
 * Returns OK, E_IO (missing file, bad magic, truncated data, read error: the message names the
 * file and what is wrong), E_NOMEM.
 */
mtgrad_status mtgradi_idx_read(const char *path, int magic, int64_t max_items, int64_t *dims,
                               uint8_t **data, char *err, size_t errlen);

/* One split of Fashion-MNIST: n images of 28 x 28 bytes and their labels 0..9. */
typedef struct mtgradi_fashion {
    int64_t n;
    uint8_t *images; /* n * 784 */
    uint8_t *labels; /* n */
} mtgradi_fashion;

#define MTGRADI_FASHION_SIDE 28
#define MTGRADI_FASHION_PIXELS (MTGRADI_FASHION_SIDE * MTGRADI_FASHION_SIDE)

/* Load the train (train != 0) or t10k split, at most max_items items (<= 0: all). Checks that
 * images are 28 x 28, that the label file matches in count and that labels are 0..9.
 * Missing files: E_IO whose message says to install the Debian package dataset-fashion-mnist
 * (or to set MTGRAD_FASHION_DIR). */
mtgrad_status mtgradi_fashion_load(mtgradi_fashion *out, int train, int64_t max_items, char *err,
                                   size_t errlen);
void mtgradi_fashion_free(mtgradi_fashion *f);

/* ------------------------------------------------------------------ benchmark parameters */

typedef enum mtgradi_bparam_type {
    MTGRADI_BP_INT = 0,
    MTGRADI_BP_REAL = 1,
    MTGRADI_BP_CHOICE = 2 /* value = index into choices "a|b|c" */
} mtgradi_bparam_type;

typedef struct mtgradi_bparam {
    const char *name;
    mtgradi_bparam_type type;
    double def, lo, hi; /* inclusive range for INT and REAL */
    const char *choices;
    const char *doc;
} mtgradi_bparam;

#define MTGRADI_BENCH_MAX_PARAMS 16

/*
 * Parse "name=value,..." (NULL or "" = all defaults) against a table of n parameters: v[i] gets
 * the value of table[i] (its default when not given). Unknown names, repeated names, values that
 * do not parse or are out of range give E_INVAL with a message naming the parameter and the
 * benchmark.
 */
mtgrad_status mtgradi_bparams_parse(const char *bench, const mtgradi_bparam *table, size_t n,
                                    const char *params, double *v, char *err, size_t errlen);

/* ------------------------------------------------------------------ benchmarks */

#define MTGRADI_TASK_NAME 48
#define MTGRADI_LAYERS 160

struct mtgrad_bench {
    const char *name;
    mtgrad_dataset train, test;
    mtgrad_recipe recipe;
    int64_t k;
    /* the model spec; the layer lists point into the buffers below */
    mtgrad_model_spec model;
    char trunk[MTGRADI_LAYERS];
    char heads[MTGRADI_LAYERS];
    char task_names[MTGRAD_NN_MAX_TASKS][MTGRADI_TASK_NAME];
    mtgrad_metric_kind metrics[MTGRAD_NN_MAX_TASKS];
};

typedef struct mtgradi_bench_type {
    const char *name;
    const char *summary;
    const char *help;
    const mtgradi_bparam *params;
    size_t n_params;
    /* Fill b (zeroed, name set) from the parsed parameter values; on failure leave whatever was
     * allocated in b (the caller frees it with mtgrad_bench_free). */
    mtgrad_status (*load)(mtgrad_bench *b, const double *v, uint64_t seed, char *err,
                          size_t errlen);
} mtgradi_bench_type;

extern const mtgradi_bench_type mtgradi_bench_mmoe;
extern const mtgradi_bench_type mtgradi_bench_multifashion;
extern const mtgradi_bench_type mtgradi_bench_fashion_k;

/* Allocate the x and y arrays of a dataset of n samples of shape (c, h, w) with k tasks.
 * E_NOMEM, or OK. */
mtgrad_status mtgradi_dataset_alloc(mtgrad_dataset *d, int64_t n, int64_t k, int64_t c,
                                    int64_t h, int64_t w);

/* Set the model spec of b: input shape, trunk, one head list for every task, the loss kind of
 * every task, max_batch = the recipe's batch (set the recipe first). */
void mtgradi_bench_set_model(mtgrad_bench *b, int64_t in_c, int64_t in_h, int64_t in_w,
                             const char *trunk, const char *head, mtgrad_loss_kind loss);

/* A generator seeded for one purpose of one benchmark (parameters, train set, test set), so
 * that the train set does not change with ntest and a smaller set is a prefix of a larger one. */
uint64_t mtgradi_data_stream_seed(uint64_t seed, uint64_t stream);

#endif
