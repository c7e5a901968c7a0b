/* test_train.c — the evaluation protocol (Δm%, mean ± se, mean rank) on hand-computed cases,
 * and the trainer on a tiny MMoE: a run checkpointed after 1 epoch and resumed for 2 more ends
 * with the same bits as an uninterrupted 3-epoch run (parameters, curves); checkpoints that are
 * corrupt, truncated or written for another configuration are refused with E_STATE; the
 * single-task model; MSE metric == mean test loss; progress callbacks; config errors. The
 * checkpoint format itself: a round trip of every field, and every truncation and every
 * single-byte change of a file refused with E_STATE (never a crash or a partial load). */
#define _POSIX_C_SOURCE 200809L
#include "eval/eval_internal.h" /* the checkpoint format, tested directly below */
#include "harness.h"
#include "train_util.h"
#include "mtgrad_train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* --------------------------------------------------------------- Δm%, mean ± se, MR */

static void test_delta_m(void)
{
    double m[2] = {0.9, 0.2}, b[2] = {0.8, 0.25}, out = 0;
    int hb[2] = {1, 0};
    /* accuracy up 0.1 from 0.8: -12.5%; mse down 0.05 from 0.25: -20%; mean -16.25 */
    CHECK(mtgrad_delta_m(m, b, hb, 2, &out) == MTGRAD_OK, "delta_m");
    CHECK_CLOSE(out, -16.25, 1e-12, 1e-12);
    CHECK(mtgrad_delta_m(b, b, hb, 2, &out) == MTGRAD_OK && out == 0, "same as baseline: 0");
    double m1 = 1.1, b1 = 1.0;
    int lower = 0, higher = 1;
    CHECK(mtgrad_delta_m(&m1, &b1, &lower, 1, &out) == MTGRAD_OK, "K=1");
    CHECK_CLOSE(out, 10.0, 1e-12, 1e-12); /* mse 10% worse */
    CHECK(mtgrad_delta_m(&m1, &b1, &higher, 1, &out) == MTGRAD_OK, "K=1 acc");
    CHECK_CLOSE(out, -10.0, 1e-12, 1e-12); /* accuracy 10% better */
    /* four metrics, two of each kind: (+5 -5 +10 -20)/4 = -2.5 */
    double m4[4] = {0.95, 0.76, 0.55, 0.08}, b4[4] = {1.0, 0.8, 0.5, 0.1};
    int hb4[4] = {0, 0, 1, 1};
    /* mse 0.95 vs 1: -5; mse 0.76 vs 0.8: -5; acc 0.55 vs 0.5: -10; acc 0.08 vs 0.1: +20 */
    CHECK(mtgrad_delta_m(m4, b4, hb4, 4, &out) == MTGRAD_OK, "K=4");
    CHECK_CLOSE(out, 0.0, 1e-12, 1e-12);
    double zero[2] = {0, 1}, nanv[2] = {NAN, 1};
    CHECK(mtgrad_delta_m(m, zero, hb, 2, &out) == MTGRAD_E_INVAL, "baseline 0");
    CHECK(mtgrad_delta_m(nanv, b, hb, 2, &out) == MTGRAD_E_NONFINITE, "NaN");
    CHECK(mtgrad_delta_m(m, b, hb, 0, &out) == MTGRAD_E_SHAPE, "K = 0");
    CHECK(mtgrad_delta_m(NULL, b, hb, 2, &out) == MTGRAD_E_INVAL, "NULL");
}

static void test_mean_se(void)
{
    double x[4] = {1, 2, 3, 4}, mean, se;
    CHECK(mtgrad_mean_se(x, 4, &mean, &se) == MTGRAD_OK, "mean_se");
    CHECK_CLOSE(mean, 2.5, 0, 1e-15);
    /* sd = sqrt((2.25 + 0.25 + 0.25 + 2.25) / 3) = sqrt(5/3); se = sd / 2 */
    CHECK_CLOSE(se, sqrt(5.0 / 3.0) / 2.0, 1e-14, 0);
    double y[3] = {-4.5, -3.0, -4.8};
    CHECK(mtgrad_mean_se(y, 3, &mean, &se) == MTGRAD_OK, "mean_se 3");
    CHECK_CLOSE(mean, -4.1, 1e-14, 0);
    CHECK_CLOSE(se, sqrt((0.16 + 1.21 + 0.49) / 2.0) / sqrt(3.0), 1e-13, 0);
    CHECK(mtgrad_mean_se(x, 1, &mean, &se) == MTGRAD_OK && mean == 1 && se == 0, "n = 1");
    CHECK(mtgrad_mean_se(x, 0, &mean, &se) == MTGRAD_E_SHAPE, "n = 0");
    double bad[2] = {1, INFINITY};
    CHECK(mtgrad_mean_se(bad, 2, &mean, &se) == MTGRAD_E_NONFINITE, "Inf");
}

static void test_mean_rank(void)
{
    /* metric 0 higher-better: 0.9 (tie, ranks 1.5), 0.8 (3); metric 1 lower-better: 0.1 (1),
     * 0.2 (2), 0.3 (3) */
    double v[6] = {0.9, 0.3, 0.8, 0.1, 0.9, 0.2}, mr[3];
    int hb[2] = {1, 0};
    CHECK(mtgrad_mean_rank(v, 3, 2, hb, mr) == MTGRAD_OK, "mean_rank");
    CHECK_CLOSE(mr[0], 2.25, 0, 1e-15);
    CHECK_CLOSE(mr[1], 2.0, 0, 1e-15);
    CHECK_CLOSE(mr[2], 1.75, 0, 1e-15);
    CHECK(mtgrad_mean_rank(v, 1, 2, hb, mr) == MTGRAD_OK && mr[0] == 1, "one method: rank 1");
    CHECK(mtgrad_mean_rank(v, 0, 2, hb, mr) == MTGRAD_E_SHAPE, "no methods");
    CHECK(mtgrad_metric_higher_better(MTGRAD_METRIC_ACCURACY) == 1 &&
          mtgrad_metric_higher_better(MTGRAD_METRIC_MSE) == 0, "metric directions");
}

/* --------------------------------------------------------------- checkpoint format */

static char tmpdir[256];

static void test_checkpoint_format(void)
{
    float params[5] = {1.5f, -2, 0, 3.25f, 1e-30f};
    double curves[2 * 3] = {1, 2, 3, 4, 5, 6};
    unsigned char opt[7] = {1, 2, 3, 4, 5, 6, 7}, agg[3] = {9, 8, 7};
    char config[] = "bench=x\nmethod=y\n";
    mtgradi_ckpt c = {config, 2, 1, 5, 17, 3, 3, {11, 22, 33, 44}, opt, 7, agg, 3, params, curves, NULL, 0};
    char err[512] = "";
    CHECK(mtgradi_ckpt_write(tmpdir, &c, err, sizeof err) == MTGRAD_OK, "write: %s", err);
    mtgradi_ckpt r;
    int missing = 1;
    CHECK(mtgradi_ckpt_read(tmpdir, &r, &missing, err, sizeof err) == MTGRAD_OK && !missing,
          "read: %s", err);
    CHECK(strcmp(r.config, config) == 0 && r.epoch == 2 && r.k == 1 && r.n_params == 5 &&
          r.steps == 17 && r.solver_warnings == 3 && r.curve_cols == 3, "header fields");
    CHECK(r.rng[0] == 11 && r.rng[3] == 44, "rng");
    CHECK(r.optim_len == 7 && memcmp(r.optim, opt, 7) == 0 && r.agg_len == 3 &&
          memcmp(r.agg, agg, 3) == 0, "states");
    CHECK(memcmp(r.params, params, sizeof params) == 0 &&
          memcmp(r.curves, curves, sizeof curves) == 0, "params and curves");
    mtgradi_ckpt_free(&r);

    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, MTGRAD_CHECKPOINT_FILE);
    FILE *f = fopen(path, "rb");
    unsigned char buf[1024];
    size_t len = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    CHECK(len > 100 && len < sizeof buf, "checkpoint size %zu", len);
    int bad_trunc = 0, bad_flip = 0;
    for (size_t n = 0; n < len; n++) { /* every proper prefix */
        f = fopen(path, "wb");
        fwrite(buf, 1, n, f);
        fclose(f);
        if (mtgradi_ckpt_read(tmpdir, &r, &missing, err, sizeof err) != MTGRAD_E_STATE) bad_trunc++;
    }
    for (size_t i = 0; i < len; i++) { /* every single-byte change */
        buf[i] ^= 0x41;
        f = fopen(path, "wb");
        fwrite(buf, 1, len, f);
        fclose(f);
        buf[i] ^= 0x41;
        if (mtgradi_ckpt_read(tmpdir, &r, &missing, err, sizeof err) != MTGRAD_E_STATE) bad_flip++;
    }
    CHECK(bad_trunc == 0, "%d truncations not refused", bad_trunc);
    CHECK(bad_flip == 0, "%d byte changes not refused", bad_flip);
    remove(path);
    CHECK(mtgradi_ckpt_read(tmpdir, &r, &missing, err, sizeof err) == MTGRAD_E_IO && missing,
          "missing file");
}

/* Header fields that fail the checks but whose CRC is right (so the parser gets past it):
 * refused with E_STATE, and without computing anything from them first (fuzz_checkpoint found
 * epoch * curve_cols overflowing int64 on such a header: UB, caught when run under UBSan). */
static void test_checkpoint_bad_header(void)
{
    float params[5] = {1, 2, 3, 4, 5};
    double curves[2 * 3] = {1, 2, 3, 4, 5, 6};
    unsigned char opt[7] = {1, 2, 3, 4, 5, 6, 7}, agg[3] = {9, 8, 7};
    char config[] = "bench=x\nmethod=y\n";
    mtgradi_ckpt c = {config, 2, 1, 5, 17, 3, 3, {11, 22, 33, 44}, opt, 7, agg, 3, params, curves, NULL, 0};
    char err[512] = "", path[512];
    CHECK(mtgradi_ckpt_write(tmpdir, &c, err, sizeof err) == MTGRAD_OK, "write: %s", err);
    snprintf(path, sizeof path, "%s/%s", tmpdir, MTGRAD_CHECKPOINT_FILE);
    FILE *f = fopen(path, "rb");
    unsigned char buf[1024];
    size_t len = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    remove(path);
    /* the layout in eval_internal.h: 28 bytes, the config text, then epoch, k, n_params, steps,
     * solver_warnings, curve_cols as i64 */
    const size_t hdr = 28 + strlen(config);
    static const struct {
        int field;
        int64_t value;
    } bad[] = {{0, (int64_t)1 << 35}, {5, (int64_t)1 << 62}, {0, -1}, {1, 0}, {2, -5},
               {2, INT64_MAX}, {3, INT64_MIN}, {4, -1}, {5, -1}, {0, INT64_MAX}};
    int wrong = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0] && len > hdr + 48; i++) {
        unsigned char b[1024];
        memcpy(b, buf, len);
        memcpy(b + hdr + 8 * (size_t)bad[i].field, &bad[i].value, 8);
        if (i == 0) memcpy(b + hdr + 8 * 5, &bad[1].value, 8); /* both huge: the fuzzer's input */
        uint32_t crc = (uint32_t)crc32(0L, b, (uInt)(len - 4));
        memcpy(b + len - 4, &crc, 4);
        mtgradi_ckpt r;
        memset(&r, 0, sizeof r);
        if (mtgradi_ckpt_parse(b, len, &r, "test", err, sizeof err) != MTGRAD_E_STATE) wrong++;
        mtgradi_ckpt_free(&r);
    }
    CHECK(len > hdr + 48 && wrong == 0, "%d implausible headers accepted", wrong);
}

/* --------------------------------------------------------------- the trainer */

static void path_in(char *out, size_t n, const char *sub, const char *file)
{
    snprintf(out, n, "%s/%s%s%s", tmpdir, sub, file ? "/" : "", file ? file : "");
}

static char *make_dir(const char *sub)
{
    static char p[4][512];
    static int i;
    char *out = p[i++ % 4];
    path_in(out, 512, sub, NULL);
    mkdir(out, 0755);
    struct stat st;
    CHECK(stat(out, &st) == 0 && S_ISDIR(st.st_mode), "mkdir %s", out);
    return out;
}

static void rm_dir(const char *sub)
{
    char p[512];
    path_in(p, sizeof p, sub, MTGRAD_CHECKPOINT_FILE);
    remove(p);
    path_in(p, sizeof p, sub, NULL);
    rmdir(p);
}

typedef struct counts {
    int steps, epochs;
} counts;

static void count_progress(const mtgrad_train_progress *p, void *user)
{
    counts *c = user;
    if (p->epoch_done) c->epochs++;
    else c->steps++;
}

static mtgrad_train_config base(const char *method, const char *params)
{
    mtgrad_train_config c = mtgrad_train_config_default();
    c.bench = "mmoe";
    c.bench_params = "ntrain=256,ntest=128";
    c.data_seed = 3;
    c.method = method;
    c.method_params = params;
    c.seed = 5;
    c.batch = 32;
    return c;
}

static mtgrad_train_result *train(const mtgrad_train_config *c, mtgrad_status want)
{
    mtgrad_train_result *r = NULL;
    char err[1024] = "";
    mtgrad_status st = mtgrad_train_run(c, &r, err, sizeof err);
    CHECK(st == want, "train %s: status %s, want %s: %s", c->method, mtgrad_status_str(st),
          mtgrad_status_str(want), err);
    if (want != MTGRAD_OK) CHECK(r == NULL && err[0], "failed run: no result, a message");
    return r;
}

static int same_bits(const mtgrad_train_result *a, const mtgrad_train_result *b)
{
    return same_train_result(a, b) &&
           memcmp(a->lr, b->lr, (size_t)a->epochs * sizeof(double)) == 0;
}

/* 3 epochs straight == 1 epoch, then resume for 2 (and == a run with no checkpoints). */
static void test_resume(const char *method, const char *params)
{
    mtgrad_train_config c = base(method, params);
    c.epochs = 3;
    counts cnt = {0, 0};
    c.progress = count_progress;
    c.progress_user = &cnt;
    mtgrad_train_result *plain = train(&c, MTGRAD_OK);
    CHECK(plain && cnt.steps == 3 * 8 && cnt.epochs == 3, "%s: %d step and %d epoch callbacks",
          method, cnt.steps, cnt.epochs);
    c.progress = NULL;
    c.out_dir = make_dir("full");
    mtgrad_train_result *full = train(&c, MTGRAD_OK);
    c.out_dir = make_dir("part");
    c.epochs = 1;
    mtgrad_train_result *one = train(&c, MTGRAD_OK);
    c.epochs = 3;
    c.resume = 1;
    mtgrad_train_result *rest = train(&c, MTGRAD_OK);
    CHECK(same_bits(plain, full), "%s: checkpointing changes nothing", method);
    CHECK(same_bits(full, rest), "%s: 1 epoch + resume for 2 != 3 epochs", method);
    CHECK(rest && rest->resumed_epoch == 1 && rest->epochs == 3, "%s: resumed after epoch 1",
          method);
    CHECK(one && one->epochs == 1 && same_bits(one, one), "one epoch");
    /* resuming a finished run trains nothing and reports the same */
    mtgrad_train_result *again = train(&c, MTGRAD_OK);
    CHECK(same_bits(full, again) && again->resumed_epoch == 3, "%s: resume of a finished run",
          method);
    char tmp[512];
    path_in(tmp, sizeof tmp, "part", MTGRAD_CHECKPOINT_FILE ".tmp");
    CHECK(access(tmp, F_OK) != 0, "no temporary file left behind");
    mtgrad_train_result_free(plain);
    mtgrad_train_result_free(full);
    mtgrad_train_result_free(one);
    mtgrad_train_result_free(rest);
    mtgrad_train_result_free(again);
    rm_dir("full");
    rm_dir("part");
}

/* Overwrites byte `at` (from the end if negative) of the checkpoint, or truncates it. */
static void damage(const char *sub, long at, int truncate_to)
{
    char p[512];
    path_in(p, sizeof p, sub, MTGRAD_CHECKPOINT_FILE);
    FILE *f = fopen(p, "r+b");
    CHECK(f != NULL, "open checkpoint");
    if (!f) return;
    if (truncate_to >= 0) {
        fclose(f);
        CHECK(truncate(p, truncate_to) == 0, "truncate");
        return;
    }
    fseek(f, at, at < 0 ? SEEK_END : SEEK_SET);
    int ch = fgetc(f);
    fseek(f, at, at < 0 ? SEEK_END : SEEK_SET);
    fputc(ch ^ 0x5A, f);
    fclose(f);
}

static void test_bad_checkpoints(void)
{
    mtgrad_train_config c = base("pcgrad", NULL);
    c.epochs = 1;
    c.out_dir = make_dir("bad");
    mtgrad_train_result *r = train(&c, MTGRAD_OK);
    mtgrad_train_result_free(r);
    c.epochs = 2;
    c.resume = 1;
    long offsets[3] = {100, 400, -10};
    for (int i = 0; i < 3; i++) {
        damage("bad", offsets[i], -1);
        train(&c, MTGRAD_E_STATE); /* corrupt: CRC */
        damage("bad", offsets[i], -1); /* flips back */
    }
    mtgrad_train_config other = c;
    other.seed = 6;
    char err[1024] = "";
    mtgrad_train_result *o = NULL;
    CHECK(mtgrad_train_run(&other, &o, err, sizeof err) == MTGRAD_E_STATE && strstr(err, "seed"),
          "another seed: E_STATE naming the seed: %s", err);
    other = c;
    other.method = "cagrad";
    CHECK(mtgrad_train_run(&other, &o, err, sizeof err) == MTGRAD_E_STATE &&
          strstr(err, "method=pcgrad"), "another method: %s", err);
    other = c;
    other.method_params = "seed=77";
    train(&other, MTGRAD_E_STATE);
    other = c;
    other.bench_params = "ntrain=256,ntest=64";
    train(&other, MTGRAD_E_STATE);
    other = c;
    other.batch = 16;
    train(&other, MTGRAD_E_STATE);
    other = c;
    other.threads = 2; /* threads do not change results: not part of the configuration */
    r = train(&other, MTGRAD_OK);
    CHECK(r && r->resumed_epoch == 1, "resume with 2 threads");
    mtgrad_train_result_free(r);
    damage("bad", 0, 200);
    train(&c, MTGRAD_E_STATE); /* truncated */
    damage("bad", 0, 0);
    train(&c, MTGRAD_E_STATE); /* empty */
    char p[512];
    path_in(p, sizeof p, "bad", MTGRAD_CHECKPOINT_FILE);
    FILE *f = fopen(p, "wb");
    fputs("not a checkpoint at all, just some text long enough", f);
    fclose(f);
    train(&c, MTGRAD_E_STATE);
    remove(p); /* no checkpoint: resume starts afresh */
    r = train(&c, MTGRAD_OK);
    CHECK(r && r->resumed_epoch == 0 && r->epochs == 2, "resume without a checkpoint");
    mtgrad_train_result_free(r);
    rm_dir("bad");
}

static void test_stl_and_metrics(void)
{
    mtgrad_train_config c = base("ls", NULL);
    c.epochs = 2;
    c.stl_task = 1;
    mtgrad_train_result *r = train(&c, MTGRAD_OK);
    if (!r) return;
    CHECK(r->k == 1 && r->task0 == 1 && r->bench_k == 2, "stl model of task 1");
    CHECK(r->ntrain == 256 && r->ntest == 128 && r->steps == 16 && r->steps_per_epoch == 8,
          "sizes");
    CHECK(r->metric[0] == MTGRAD_METRIC_MSE, "mmoe metric is MSE");
    /* for an MSE task the metric is the mean squared error: the mean test loss */
    for (int64_t e = 0; e < r->epochs; e++)
        CHECK_CLOSE(r->test_metric[e], r->test_loss[e], 1e-5, 1e-7);
    CHECK(r->times[MTGRAD_TIME_TOTAL] > 0 && r->peak_rss_mb > 0, "times and memory recorded");
    mtgrad_train_result_free(r);
    c.limit_train = 100;
    c.stl_task = -1;
    c.epochs = 1;
    r = train(&c, MTGRAD_OK);
    CHECK(r && r->ntrain == 100 && r->steps == 4 && r->k == 2, "limit_train 100: 4 steps");
    mtgrad_train_result_free(r);
}

static void test_config_errors(void)
{
    mtgrad_train_config c = base("ls", NULL);
    c.epochs = 1;
    c.stl_task = 2;
    train(&c, MTGRAD_E_INVAL);
    c = base("ls", NULL);
    c.resume = 1;
    train(&c, MTGRAD_E_INVAL); /* resume without out_dir */
    c = base("nope", NULL);
    train(&c, MTGRAD_E_INVAL);
    c = base("ls", NULL);
    c.bench = "no-such-bench";
    train(&c, MTGRAD_E_INVAL);
    c = base("ls", NULL);
    c.epochs = -1;
    train(&c, MTGRAD_E_INVAL);
    mtgrad_train_result *r = NULL;
    CHECK(mtgrad_train_run(NULL, &r, NULL, 0) == MTGRAD_E_INVAL, "NULL config");
    mtgrad_train_result_free(NULL);
}

int main(void)
{
    test_delta_m();
    test_mean_se();
    test_mean_rank();
    snprintf(tmpdir, sizeof tmpdir, "%s/mtgrad_train.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        CHECK(0, "mkdtemp");
        return harness_report();
    }
    test_checkpoint_format();
    test_checkpoint_bad_header();
    test_resume("famo", NULL);
    test_resume("pcgrad", NULL);
    test_resume("dwa", NULL);
    test_resume("cagrad", "c=0.4");
    test_bad_checkpoints();
    test_stl_and_metrics();
    test_config_errors();
    rmdir(tmpdir);
    return harness_report();
}
