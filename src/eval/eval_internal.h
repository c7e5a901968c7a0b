/* eval_internal.h — what the trainer's files share (src/eval): messages, the test-set
 * evaluation, and the checkpoint format. Not installed; symbols are mtgradi_eval_* / _ckpt_*. */
#ifndef MTGRAD_EVAL_INTERNAL_H
#define MTGRAD_EVAL_INTERNAL_H

#include "mtgrad_train.h"
#include "internal.h" /* mtgradi_msg */

#include <stddef.h>
#include <stdint.h>


/* Mean loss and metric per model task on the first `limit` samples (0 = all) of ds, in eval
 * mode, batches of the model's max_batch. Model task i reads benchmark task task0 + i.
 * xbuf: max_batch x input_size floats, ybuf: k x max_batch floats (scratch). */
mtgrad_status mtgradi_eval_evaluate(mtgrad_model *m, const mtgrad_dataset *ds, int64_t task0,
                                    int64_t limit, float *xbuf, float *ybuf, double *loss_out,
                                    double *metric_out, char *err, size_t errlen);

/* The extra batches of a step that reads more than one (SDMGrad's double sampling): `count`
 * batches of n distinct training-set indices each (uniform without replacement from [0,
 * ntrain), 1 <= n <= ntrain), batch b at idx[b*n, (b+1)*n), from a generator seeded from
 * (seed, epoch, step) alone. pool: ntrain indices, the identity on entry and again on return;
 * picks: n scratch. */
void mtgradi_eval_extra_batches(uint64_t seed, int64_t epoch, int64_t step, int64_t ntrain,
                                int64_t n, int count, int64_t *pool, int64_t *picks,
                                int64_t *idx);

/* The layout version this build writes and reads (2: the MTL step's own state after the
 * aggregator's; version 1 files are refused with E_STATE). */
#define MTGRADI_CKPT_VERSION 2u

/* A checkpoint in memory. Layout on disk (native byte order, marked; version 2):
 *   "MTGRDCKP" | u32 version | u32 0x01020304 | u64 FNV-1a of config | u32 len | config bytes |
 *   i64 epoch, k, n_params, steps, solver_warnings, curve_cols | u64 rng[4] |
 *   u64 len | optimizer state | u64 len | aggregator state | u64 len | step state |
 *   f32 params[n_params] | f64 curves[epoch * curve_cols] | u32 CRC32 (zlib) of all the bytes
 *   before it. */
typedef struct mtgradi_ckpt {
    char *config;          /* canonical "key=value\n..." text of the run's configuration */
    int64_t epoch;         /* epochs completed */
    int64_t k, n_params, steps, solver_warnings, curve_cols;
    uint64_t rng[4];       /* the model's dropout generator */
    unsigned char *optim;  /* mtgrad_optimizer_save bytes */
    size_t optim_len;
    unsigned char *agg;    /* mtgrad_aggregator_save bytes */
    size_t agg_len;
    float *params;         /* n_params */
    double *curves;        /* epoch x curve_cols */
    unsigned char *step;   /* mtgrad_mtl_step_save bytes (last: positional initialisers of
                              the fields above stay valid) */
    size_t step_len;
} mtgradi_ckpt;

/* Write atomically to DIR/checkpoint.bin (DIR/checkpoint.bin.tmp, fsync, rename, fsync DIR).
 * Returns OK, E_IO (message names the path and the errno text), E_NOMEM. */
mtgrad_status mtgradi_ckpt_write(const char *dir, const mtgradi_ckpt *c, char *err,
                                 size_t errlen);
/* Read and verify DIR/checkpoint.bin; on OK the buffers in *c are owned by the caller
 * (mtgradi_ckpt_free). *missing = 1 and E_IO when the file does not exist. E_STATE if it is
 * not a checkpoint of this version, is truncated or fails its CRC. */
mtgrad_status mtgradi_ckpt_read(const char *dir, mtgradi_ckpt *c, int *missing, char *err,
                                size_t errlen);
void mtgradi_ckpt_free(mtgradi_ckpt *c);
/* The parser behind mtgradi_ckpt_read, on the file's bytes (path only names the file in
 * messages); exposed for the fuzz target. Same statuses; *c must be zeroed beforehand and is
 * freed with mtgradi_ckpt_free whatever the status. */
mtgrad_status mtgradi_ckpt_parse(const unsigned char *p, size_t len, mtgradi_ckpt *c,
                                 const char *path, char *err, size_t errlen);

/* FNV-1a 64 of a string (the configuration's fingerprint). */
uint64_t mtgradi_ckpt_hash(const char *s);

#endif
