/* test_checkpoint_io.c — checkpoints under failure (issue 8.3), beside test_train.c's format
 * tests: a write that fails (the file-size limit hit half-way through the file, or a full disk)
 * returns E_IO with a message naming the file and the system's reason, and leaves the previous
 * checkpoint byte for byte intact, loadable, and resumable to the same bits as an uninterrupted
 * run; no temporary file is left behind. A refused checkpoint says why: bad magic, an unknown
 * version (even one with a valid CRC, as a future format would have), another byte order, a
 * CRC mismatch.
 *
 * The failures are real ones of the real write path, not a hook in the library: RLIMIT_FSIZE
 * (POSIX) makes write() fail with EFBIG once the file reaches the limit (SIGXFSZ ignored), and a
 * temporary-file name that is a symlink to /dev/full (Linux, skipped where it does not exist)
 * makes it fail with ENOSPC. The limit is lowered only around the write under test. */
#define _POSIX_C_SOURCE 200809L
#include "eval/eval_internal.h"
#include "harness.h"
#include "train_util.h"
#include "mtgrad_train.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char tmpdir[256];

/* ---------------------------------------------------------------- files */

static void path_of(char *out, size_t n, const char *file)
{
    snprintf(out, n, "%s/%s", tmpdir, file);
}

/* The whole of a file in a malloc'd buffer (NULL if it cannot be read). */
static unsigned char *slurp(const char *file, size_t *len)
{
    char p[512];
    path_of(p, sizeof p, file);
    FILE *f = fopen(p, "rb");
    *len = 0;
    if (!f) return NULL;
    size_t cap = 1 << 16;
    unsigned char *b = malloc(cap);
    for (;;) {
        if (!b) break;
        *len += fread(b + *len, 1, cap - *len, f);
        if (*len < cap) break;
        unsigned char *q = realloc(b, cap *= 2);
        if (!q) free(b);
        b = q;
    }
    fclose(f);
    return b;
}

static void spit(const char *file, const unsigned char *b, size_t len)
{
    char p[512];
    path_of(p, sizeof p, file);
    FILE *f = fopen(p, "wb");
    CHECK(f && fwrite(b, 1, len, f) == len, "write %s", p);
    if (f) fclose(f);
}

static int exists(const char *file)
{
    char p[512];
    path_of(p, sizeof p, file);
    return access(p, F_OK) == 0;
}

static void rm(const char *file)
{
    char p[512];
    path_of(p, sizeof p, file);
    remove(p);
}

/* ---------------------------------------------------------------- injected failures */

static struct rlimit saved_limit;
static void (*saved_xfsz)(int);

/* From now on a file cannot grow past `bytes`: write() fails with EFBIG instead of SIGXFSZ. */
static int limit_file_size(rlim_t bytes)
{
    if (getrlimit(RLIMIT_FSIZE, &saved_limit) != 0) return 0;
    struct rlimit lim = saved_limit;
    if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < bytes) return 0;
    lim.rlim_cur = bytes;
    saved_xfsz = signal(SIGXFSZ, SIG_IGN);
    return setrlimit(RLIMIT_FSIZE, &lim) == 0;
}

static void unlimit_file_size(void)
{
    setrlimit(RLIMIT_FSIZE, &saved_limit);
    signal(SIGXFSZ, saved_xfsz);
}

/* ---------------------------------------------------------------- the format level */

static mtgradi_ckpt sample(float *params, double *curves, unsigned char *opt, unsigned char *agg,
                           char *config, int64_t epoch)
{
    mtgradi_ckpt c = {config, epoch, 1, 4096, 17, 0, 3, {1, 2, 3, 4}, opt, 7, agg, 3, params,
                      curves, NULL, 0};
    return c;
}

static void test_failed_write_format(void)
{
    static float params[4096], params2[4096];
    double curves[2 * 3] = {1, 2, 3, 4, 5, 6};
    unsigned char opt[7] = {1, 2, 3, 4, 5, 6, 7}, agg[3] = {9, 8, 7};
    char config[] = "bench=x\nmethod=y\n";
    for (int i = 0; i < 4096; i++) params[i] = (float)i, params2[i] = (float)-i;
    mtgradi_ckpt c1 = sample(params, curves, opt, agg, config, 1);
    mtgradi_ckpt c2 = sample(params2, curves, opt, agg, config, 2);
    char err[512] = "";
    CHECK(mtgradi_ckpt_write(tmpdir, &c1, err, sizeof err) == MTGRAD_OK, "write: %s", err);
    size_t len1;
    unsigned char *old = slurp(MTGRAD_CHECKPOINT_FILE, &len1);
    CHECK(old && len1 > 16384, "first checkpoint written (%zu bytes)", len1);

    /* the new checkpoint dies half-way through its bytes */
    err[0] = 0;
    if (limit_file_size(8192)) {
        mtgrad_status st = mtgradi_ckpt_write(tmpdir, &c2, err, sizeof err);
        unlimit_file_size();
        CHECK(st == MTGRAD_E_IO, "write over the size limit: %s", mtgrad_status_str(st));
        CHECK(strstr(err, MTGRAD_CHECKPOINT_FILE ".tmp") && strstr(err, strerror(EFBIG)),
              "message names the file and the reason: '%s'", err);
    } else {
        CHECK(0, "cannot lower RLIMIT_FSIZE");
    }
    size_t len;
    unsigned char *now = slurp(MTGRAD_CHECKPOINT_FILE, &len);
    CHECK(now && len == len1 && memcmp(now, old, len) == 0, "previous checkpoint intact");
    free(now);
    CHECK(!exists(MTGRAD_CHECKPOINT_FILE ".tmp"), "no temporary file left");
    mtgradi_ckpt r;
    int missing = 0;
    CHECK(mtgradi_ckpt_read(tmpdir, &r, &missing, err, sizeof err) == MTGRAD_OK && r.epoch == 1 &&
          memcmp(r.params, params, sizeof params) == 0, "previous checkpoint loads: %s", err);
    mtgradi_ckpt_free(&r);

    /* a full disk */
    char tmp[512];
    path_of(tmp, sizeof tmp, MTGRAD_CHECKPOINT_FILE ".tmp");
    if (access("/dev/full", W_OK) == 0 && symlink("/dev/full", tmp) == 0) {
        err[0] = 0;
        CHECK(mtgradi_ckpt_write(tmpdir, &c2, err, sizeof err) == MTGRAD_E_IO, "full disk: E_IO");
        CHECK(strstr(err, strerror(ENOSPC)) != NULL, "message says the disk is full: '%s'", err);
        now = slurp(MTGRAD_CHECKPOINT_FILE, &len);
        CHECK(now && len == len1 && memcmp(now, old, len) == 0, "previous checkpoint intact");
        free(now);
        CHECK(!exists(MTGRAD_CHECKPOINT_FILE ".tmp"), "temporary name removed");
    } else {
        printf("note: /dev/full not usable, full-disk case skipped\n");
    }
    rm(MTGRAD_CHECKPOINT_FILE ".tmp");

    /* and the next write that can succeed does */
    CHECK(mtgradi_ckpt_write(tmpdir, &c2, err, sizeof err) == MTGRAD_OK, "write after: %s", err);
    CHECK(mtgradi_ckpt_read(tmpdir, &r, &missing, err, sizeof err) == MTGRAD_OK && r.epoch == 2 &&
          memcmp(r.params, params2, sizeof params2) == 0, "new checkpoint loads: %s", err);
    mtgradi_ckpt_free(&r);
    free(old);
    rm(MTGRAD_CHECKPOINT_FILE);
}

/* ---------------------------------------------------------------- refusal messages */

/* Writes b with the u32 at `at` set to v (and the CRC recomputed if `fix_crc`), reads it back and
 * checks E_STATE with `want` in the message. */
static void refused(unsigned char *b, size_t len, size_t at, uint32_t v, int fix_crc,
                    const char *want, const char *what)
{
    unsigned char *c = malloc(len);
    if (!c) return;
    memcpy(c, b, len);
    memcpy(c + at, &v, 4);
    if (fix_crc) {
        uint32_t crc = (uint32_t)crc32_z(0L, c, len - 4);
        memcpy(c + len - 4, &crc, 4);
    }
    spit(MTGRAD_CHECKPOINT_FILE, c, len);
    free(c);
    mtgradi_ckpt r;
    int missing = 0;
    char err[512] = "";
    CHECK(mtgradi_ckpt_read(tmpdir, &r, &missing, err, sizeof err) == MTGRAD_E_STATE &&
          strstr(err, want) && strstr(err, MTGRAD_CHECKPOINT_FILE), "%s: '%s'", what, err);
}

static void test_refusal_messages(void)
{
    static float params[64];
    double curves[3] = {1, 2, 3};
    unsigned char opt[7] = {0}, agg[3] = {0};
    char config[] = "bench=x\n";
    mtgradi_ckpt c = sample(params, curves, opt, agg, config, 1);
    c.n_params = 64;
    char err[512] = "";
    CHECK(mtgradi_ckpt_write(tmpdir, &c, err, sizeof err) == MTGRAD_OK, "write: %s", err);
    size_t len;
    unsigned char *b = slurp(MTGRAD_CHECKPOINT_FILE, &len);
    CHECK(b && len > 64, "checkpoint read back");
    if (!b) return;
    uint32_t magic0;
    memcpy(&magic0, b, 4);
    refused(b, len, 0, magic0 ^ 0x20u, 0, "bad magic", "magic");
    refused(b, len, 8, MTGRADI_CKPT_VERSION + 1, 0, "version", "next version");
    refused(b, len, 8, MTGRADI_CKPT_VERSION + 1, 1, "version", "next version with a valid CRC");
    refused(b, len, 8, 1, 1, "version 1", "version 1 (before the step state) with a valid CRC");
    refused(b, len, 8, 0, 1, "version", "version 0 with a valid CRC");
    refused(b, len, 12, 0x04030201u, 1, "byte order", "other byte order");
    refused(b, len, len / 2, 0xdeadbeefu, 0, "CRC32", "damaged body");
    refused(b, len, len - 4, 0, 0, "CRC32", "damaged CRC");
    free(b);
    rm(MTGRAD_CHECKPOINT_FILE);
}

/* ---------------------------------------------------------------- the trainer */

static mtgrad_train_config config(int64_t epochs, int resume)
{
    mtgrad_train_config c = mtgrad_train_config_default();
    c.bench = "mmoe";
    c.bench_params = "ntrain=256,ntest=64";
    c.data_seed = 2;
    c.method = "famo"; /* stateful: the method's state must survive the failure too */
    c.seed = 7;
    c.batch = 32;
    c.epochs = epochs;
    c.out_dir = tmpdir;
    c.resume = resume;
    return c;
}

static void test_failed_write_trainer(void)
{
    char err[1024] = "";
    mtgrad_train_result *full = NULL, *r = NULL;
    mtgrad_train_config c = config(3, 0);
    CHECK(mtgrad_train_run(&c, &full, err, sizeof err) == MTGRAD_OK, "3 epochs: %s", err);
    rm(MTGRAD_CHECKPOINT_FILE);

    c = config(1, 0);
    CHECK(mtgrad_train_run(&c, &r, err, sizeof err) == MTGRAD_OK, "1 epoch: %s", err);
    mtgrad_train_result_free(r);
    r = NULL;
    size_t len1, len;
    unsigned char *old = slurp(MTGRAD_CHECKPOINT_FILE, &len1);
    CHECK(old != NULL, "checkpoint after epoch 1");

    /* epoch 2's checkpoint cannot be written: the run stops with E_IO, nothing half-done */
    c = config(3, 1);
    err[0] = 0;
    mtgrad_status st = MTGRAD_OK;
    if (limit_file_size(len1 / 2)) {
        st = mtgrad_train_run(&c, &r, err, sizeof err);
        unlimit_file_size();
    }
    CHECK(st == MTGRAD_E_IO && r == NULL, "run whose checkpoint fails: %s, want E_IO",
          mtgrad_status_str(st));
    CHECK(strstr(err, MTGRAD_CHECKPOINT_FILE) && strstr(err, strerror(EFBIG)),
          "message: '%s'", err);
    unsigned char *now = slurp(MTGRAD_CHECKPOINT_FILE, &len);
    CHECK(now && old && len == len1 && memcmp(now, old, len) == 0,
          "epoch 1's checkpoint intact after the failed write");
    free(now);
    CHECK(!exists(MTGRAD_CHECKPOINT_FILE ".tmp"), "no temporary file left");

    /* the same with a full disk */
    char tmp[512];
    path_of(tmp, sizeof tmp, MTGRAD_CHECKPOINT_FILE ".tmp");
    if (access("/dev/full", W_OK) == 0 && symlink("/dev/full", tmp) == 0) {
        err[0] = 0;
        st = mtgrad_train_run(&c, &r, err, sizeof err);
        CHECK(st == MTGRAD_E_IO && r == NULL && strstr(err, strerror(ENOSPC)),
              "full disk: %s: '%s'", mtgrad_status_str(st), err);
        now = slurp(MTGRAD_CHECKPOINT_FILE, &len);
        CHECK(now && old && len == len1 && memcmp(now, old, len) == 0,
              "epoch 1's checkpoint intact after a full disk");
        free(now);
    }
    rm(MTGRAD_CHECKPOINT_FILE ".tmp");

    /* and resuming from it once the disk is fine again ends where the uninterrupted run did */
    err[0] = 0;
    CHECK(mtgrad_train_run(&c, &r, err, sizeof err) == MTGRAD_OK, "resume: %s", err);
    CHECK(r && r->resumed_epoch == 1, "resumed after epoch 1");
    CHECK(same_train_result(full, r), "failed write + resume == uninterrupted run");
    mtgrad_train_result_free(r);
    mtgrad_train_result_free(full);
    free(old);

    /* a checkpoint directory that does not exist: E_IO naming it */
    c = config(1, 0);
    char missing_dir[512];
    path_of(missing_dir, sizeof missing_dir, "no/such/dir");
    c.out_dir = missing_dir;
    r = NULL;
    st = mtgrad_train_run(&c, &r, err, sizeof err);
    CHECK(st == MTGRAD_E_IO && r == NULL && strstr(err, "no/such/dir"),
          "missing directory: %s: '%s'", mtgrad_status_str(st), err);
    rm(MTGRAD_CHECKPOINT_FILE);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/mtgrad_ckio.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        CHECK(0, "mkdtemp");
        return harness_report();
    }
    test_failed_write_format();
    test_refusal_messages();
    test_failed_write_trainer();
    rmdir(tmpdir);
    return harness_report();
}
