/*
 * report.h — what `mtgrad train` and `mtgrad compare` share: the JSON report of a training run
 * (schema in docs/report.md), writing JSON files, creating output directories, strict number
 * parsing, and the terminal progress display.
 */
#ifndef MTGRAD_TOOLS_REPORT_H
#define MTGRAD_TOOLS_REPORT_H

#include "mtgrad_train.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MTGRAD_REPORT_SCHEMA "mtgrad.train/1"
#define MTGRAD_COMPARE_SCHEMA "mtgrad.compare/1"

/* The report of one run: config, tasks, final metrics, curves, time breakdown, memory.
 * bench_name: the loaded benchmark's name. NULL when out of memory. */
cJSON *mtgrad_report_train(const mtgrad_train_config *c, const char *bench_name,
                           const mtgrad_train_result *r);
/* The optimizer configuration as an object (kind, lr, ...). */
cJSON *mtgrad_report_optim(const mtgrad_optim_config *o);
/* Forward and trunk-backward passes per training step of this process (NaN if none ran). */
void mtgrad_report_passes_per_step(const mtgrad_train_result *r, double *fwd, double *bwd);
/* Mean over the completed epochs of the per-epoch step times of phase p (seconds/epoch). */
double mtgrad_report_epoch_time(const mtgrad_train_result *r, int phase);

/* Writes cJSON_Print(o) and a newline to path (through a temporary file and a rename).
 * 0, or -1 with a message in err. */
int mtgrad_report_write_json(const char *path, const cJSON *o, char *err, size_t errlen);
/* mkdir -p; 0, or -1 with a message. */
int mtgrad_report_mkdir(const char *dir, char *err, size_t errlen);
/* dir + "/" + name into out; -1 if it does not fit. */
int mtgrad_report_path(char *out, size_t len, const char *dir, const char *name);

/* Strict parsing of a whole string: 0 on success, -1 if not a number in range. */
int mtgrad_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out);
int mtgrad_parse_u64(const char *s, uint64_t *out);

/* The final summary of a run: one row per task (final and best test metric, last test and
 * train loss), the time per epoch by phase, memory. */
void mtgrad_report_print_summary(FILE *f, const char *method, const mtgrad_train_result *r);

/* Progress display for mtgrad_train_config.progress: on a terminal a bar redrawn in place
 * with '\r' (epoch, step, losses, ETA); otherwise a plain line per epoch and one at most every
 * `period` seconds in between. prefix is written before each line (may be ""). */
typedef struct mtgrad_progress_state {
    FILE *f;
    int tty;
    double period, last;
    const char *prefix;
    int drawn; /* a bar is on screen (needs a newline before other output) */
} mtgrad_progress_state;

void mtgrad_progress_init(mtgrad_progress_state *p, FILE *f, const char *prefix);
void mtgrad_progress_cb(const mtgrad_train_progress *pr, void *user);
/* Ends the bar's line if one is drawn. */
void mtgrad_progress_done(mtgrad_progress_state *p);

#endif
