/* test_bench.c — data sets and benchmarks (src/data): the IDX reader on small gzip files written
 * here (valid, wrong magic, truncated, corrupt, implausible sizes, missing); Fashion-MNIST
 * loading through MTGRAD_FASHION_DIR (a fake directory of tiny files with known contents, bad
 * files, a missing directory); multifashion composites checked pixel by pixel against a second,
 * independent placement (search over partners and offsets), labels, determinism and prefixes;
 * mmoe statistics (the generating vectors recovered by least squares have cosine p, label
 * correlation, noise variance); fashion-k labels and class balance; the registry and parameter
 * errors. Uses the real Fashion-MNIST files too when they are installed. */
#define _POSIX_C_SOURCE 200809L
#include "data/data_internal.h"
#include "harness.h"
#include "mtgrad_nn.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char tmpdir[256];
static char err[1024];

/* ------------------------------------------------------------------ writing IDX files */

/* Writes an IDX file (gzip'd) with the given magic and dims, then the first `keep` data bytes
 * (keep < 0: all). Returns 0 on success. */
static int write_idx(const char *path, uint32_t magic, const uint32_t *dims, int ndims,
                     const uint8_t *data, long keep)
{
    gzFile f = gzopen(path, "wb");
    if (!f) return -1;
    unsigned char h[4];
    uint32_t words[4];
    words[0] = magic;
    for (int i = 0; i < ndims; i++) words[i + 1] = dims[i];
    long total = 1;
    for (int i = 0; i < ndims; i++) total *= (long)dims[i];
    for (int i = 0; i <= ndims; i++) {
        h[0] = (unsigned char)(words[i] >> 24);
        h[1] = (unsigned char)(words[i] >> 16);
        h[2] = (unsigned char)(words[i] >> 8);
        h[3] = (unsigned char)words[i];
        gzwrite(f, h, 4);
    }
    long n = keep < 0 ? total : keep;
    if (n > 0 && data) gzwrite(f, data, (unsigned)n);
    return gzclose(f) == Z_OK ? 0 : -1;
}

static void path_in(char *buf, size_t len, const char *dir, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
}

static void test_idx_reader(void)
{
    char p[512];
    uint8_t img[3 * 4 * 5];
    for (int i = 0; i < 60; i++) img[i] = (uint8_t)(i * 7 + 1);
    uint32_t dims[3] = {3, 4, 5};
    path_in(p, sizeof p, tmpdir, "ok-images.gz");
    CHECK(write_idx(p, 2051, dims, 3, img, -1) == 0, "write");
    int64_t d[3] = {0, 0, 0};
    uint8_t *data = NULL;
    mtgrad_status s = mtgradi_idx_read(p, MTGRADI_IDX_IMAGES, 0, d, &data, err, sizeof err);
    CHECK(s == MTGRAD_OK, "valid file: %s", err);
    CHECK(d[0] == 3 && d[1] == 4 && d[2] == 5, "dims %lld %lld %lld", (long long)d[0],
          (long long)d[1], (long long)d[2]);
    CHECK(data && memcmp(data, img, 60) == 0, "data bytes");
    free(data);

    s = mtgradi_idx_read(p, MTGRADI_IDX_IMAGES, 2, d, &data, err, sizeof err);
    CHECK(s == MTGRAD_OK && d[0] == 2 && data && memcmp(data, img, 40) == 0, "first 2 items");
    free(data);
    s = mtgradi_idx_read(p, MTGRADI_IDX_IMAGES, 99, d, &data, err, sizeof err);
    CHECK(s == MTGRAD_OK && d[0] == 3, "max_items above n reads n");
    free(data);

    uint8_t lab[7] = {0, 1, 2, 3, 9, 8, 7};
    uint32_t ld[1] = {7};
    path_in(p, sizeof p, tmpdir, "ok-labels.gz");
    write_idx(p, 2049, ld, 1, lab, -1);
    s = mtgradi_idx_read(p, MTGRADI_IDX_LABELS, 0, d, &data, err, sizeof err);
    CHECK(s == MTGRAD_OK && d[0] == 7 && data && memcmp(data, lab, 7) == 0, "labels: %s", err);
    free(data);

    /* wrong magic: a label file read as images */
    s = mtgradi_idx_read(p, MTGRADI_IDX_IMAGES, 0, d, &data, err, sizeof err);
    CHECK(s == MTGRAD_E_IO && strstr(err, "magic") && data == NULL, "wrong magic: %s", err);

    /* truncated data */
    path_in(p, sizeof p, tmpdir, "short.gz");
    write_idx(p, 2051, dims, 3, img, 50);
    s = mtgradi_idx_read(p, MTGRADI_IDX_IMAGES, 0, d, &data, err, sizeof err);
    CHECK(s == MTGRAD_E_IO && strstr(err, "truncated") && strstr(err, "50 of 60"),
          "truncated: %s", err);
    /* truncated header */
    path_in(p, sizeof p, tmpdir, "short-header.gz");
    gzFile g = gzopen(p, "wb");
    gzwrite(g, "\0\0\x08\x03\0\0", 6);
    gzclose(g);
    s = mtgradi_idx_read(p, MTGRADI_IDX_IMAGES, 0, d, &data, err, sizeof err);
    CHECK(s == MTGRAD_E_IO && strstr(err, "truncated"), "truncated header: %s", err);
    /* a size of 0 in the header */
    uint32_t zero[3] = {3, 0, 5};
    path_in(p, sizeof p, tmpdir, "zero.gz");
    write_idx(p, 2051, zero, 3, img, 0);
    s = mtgradi_idx_read(p, MTGRADI_IDX_IMAGES, 0, d, &data, err, sizeof err);
    CHECK(s == MTGRAD_E_IO && strstr(err, "implausible"), "zero size: %s", err);
    /* absurd item count */
    uint32_t huge[3] = {0x7fffffffu, 28, 28};
    path_in(p, sizeof p, tmpdir, "huge.gz");
    write_idx(p, 2051, huge, 3, img, 60);
    s = mtgradi_idx_read(p, MTGRADI_IDX_IMAGES, 0, d, &data, err, sizeof err);
    CHECK(s == MTGRAD_E_IO && strstr(err, "implausible"), "huge count: %s", err);

    /* corrupt compressed stream: flip bytes in the middle of a gzip file */
    uint8_t big[4000];
    for (unsigned i = 0; i < 4000; i++) big[i] = (uint8_t)((i * 2654435761u) >> 13);
    uint32_t bd[3] = {10, 20, 20};
    path_in(p, sizeof p, tmpdir, "corrupt.gz");
    write_idx(p, 2051, bd, 3, big, -1);
    FILE *f = fopen(p, "r+b");
    if (f) {
        fseek(f, 0, SEEK_END);
        long len = ftell(f);
        for (long off = len / 3; off < len / 3 + 40 && off < len - 8; off++) {
            fseek(f, off, SEEK_SET);
            fputc(0x5a, f);
        }
        fclose(f);
    }
    s = mtgradi_idx_read(p, MTGRADI_IDX_IMAGES, 0, d, &data, err, sizeof err);
    CHECK(s == MTGRAD_E_IO && data == NULL, "corrupt gzip: %s", err);

    /* missing file */
    path_in(p, sizeof p, tmpdir, "nope.gz");
    s = mtgradi_idx_read(p, MTGRADI_IDX_IMAGES, 0, d, &data, err, sizeof err);
    CHECK(s == MTGRAD_E_IO && strstr(err, "nope.gz"), "missing: %s", err);
    s = mtgradi_idx_read(NULL, MTGRADI_IDX_IMAGES, 0, d, &data, err, sizeof err);
    CHECK(s == MTGRAD_E_INVAL, "NULL path");
}

/* ------------------------------------------------------------------ a fake Fashion-MNIST */

#define FAKE_TRAIN 30
#define FAKE_TEST 12
static uint8_t fake_img[2][FAKE_TRAIN * 784];
static uint8_t fake_lab[2][FAKE_TRAIN];
static char fake_dir[300];

/* Images of random bytes 1..255 (every pixel non-zero, so a wrong placement is caught at once),
 * labels cycling with a stride so that every class occurs. */
static void make_fake_fashion(void)
{
    snprintf(fake_dir, sizeof fake_dir, "%s/fake", tmpdir);
    if (mkdir(fake_dir, 0700) != 0) return;
    uint32_t state = 12345;
    for (int split = 0; split < 2; split++) {
        int n = split == 0 ? FAKE_TRAIN : FAKE_TEST;
        for (int i = 0; i < n * 784; i++) {
            state = state * 1664525u + 1013904223u;
            fake_img[split][i] = (uint8_t)(1 + (state >> 24) % 255);
        }
        for (int i = 0; i < n; i++) fake_lab[split][i] = (uint8_t)((i * 3 + split) % 10);
        char p[512];
        uint32_t dims[3] = {(uint32_t)n, 28, 28}, ld[1] = {(uint32_t)n};
        snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte.gz", fake_dir, split ? "t10k" : "train");
        write_idx(p, 2051, dims, 3, fake_img[split], -1);
        snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte.gz", fake_dir, split ? "t10k" : "train");
        write_idx(p, 2049, ld, 1, fake_lab[split], -1);
    }
}

static void use_fashion_dir(const char *dir) { setenv("MTGRAD_FASHION_DIR", dir, 1); }

static void test_fashion_loader(void)
{
    use_fashion_dir(fake_dir);
    mtgradi_fashion f;
    mtgrad_status s = mtgradi_fashion_load(&f, 1, 0, err, sizeof err);
    CHECK(s == MTGRAD_OK && f.n == FAKE_TRAIN, "fake train split: %s", err);
    if (s == MTGRAD_OK) {
        CHECK(memcmp(f.images, fake_img[0], FAKE_TRAIN * 784) == 0, "fake images");
        CHECK(memcmp(f.labels, fake_lab[0], FAKE_TRAIN) == 0, "fake labels");
        mtgradi_fashion_free(&f);
    }
    s = mtgradi_fashion_load(&f, 0, 5, err, sizeof err);
    CHECK(s == MTGRAD_OK && f.n == 5, "first 5 of t10k");
    mtgradi_fashion_free(&f);

    /* a missing directory: E_IO that names the Debian package */
    use_fashion_dir("/nonexistent/mtgrad-fashion");
    s = mtgradi_fashion_load(&f, 1, 0, err, sizeof err);
    CHECK(s == MTGRAD_E_IO && strstr(err, "install the Debian package dataset-fashion-mnist"),
          "missing data: %s", err);
    mtgrad_bench *b = NULL;
    s = mtgrad_bench_load(&b, "multifashion", "ntrain=10,ntest=10", 1, err, sizeof err);
    CHECK(s == MTGRAD_E_IO && b == NULL && strstr(err, "dataset-fashion-mnist"),
          "multifashion without data: %s", err);
    s = mtgrad_bench_load(&b, "fashion-k", NULL, 1, err, sizeof err);
    CHECK(s == MTGRAD_E_IO && b == NULL, "fashion-k without data: %s", err);

    /* bad files in a directory: a label 10, a count mismatch, 27 x 27 images */
    char dir[400], p[512];
    snprintf(dir, sizeof dir, "%s/bad", tmpdir);
    mkdir(dir, 0700);
    use_fashion_dir(dir);
    uint32_t dims[3] = {4, 28, 28}, ld[1] = {4};
    uint8_t lab[4] = {1, 2, 10, 3};
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", dir);
    write_idx(p, 2051, dims, 3, fake_img[0], -1);
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte.gz", dir);
    write_idx(p, 2049, ld, 1, lab, -1);
    s = mtgradi_fashion_load(&f, 1, 0, err, sizeof err);
    CHECK(s == MTGRAD_E_IO && strstr(err, "label 10"), "label out of range: %s", err);
    ld[0] = 3;
    write_idx(p, 2049, ld, 1, (const uint8_t *)"\1\2\3", -1);
    s = mtgradi_fashion_load(&f, 1, 0, err, sizeof err);
    CHECK(s == MTGRAD_E_IO && strstr(err, "3 labels for 4 images"), "count mismatch: %s", err);
    uint32_t small[3] = {4, 27, 27};
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", dir);
    write_idx(p, 2051, small, 3, fake_img[0], -1);
    s = mtgradi_fashion_load(&f, 1, 0, err, sizeof err);
    CHECK(s == MTGRAD_E_IO && strstr(err, "27 x 27"), "wrong image size: %s", err);
    use_fashion_dir(fake_dir);
}

/* ------------------------------------------------------------------ multifashion */

/* The 36 x 36 composite of image a at (ra, ca) and image b at (rb, cb), pixel max, / 255:
 * written pixel-major (for every canvas pixel, look up which items cover it). */
static int composite_matches(const float *x, const uint8_t *a, int ra, int ca, const uint8_t *b,
                             int rb, int cb)
{
    for (int y = 0; y < 36; y++) {
        for (int xx = 0; xx < 36; xx++) {
            int va = 0, vb = 0;
            if (y >= ra && y < ra + 28 && xx >= ca && xx < ca + 28) va = a[(y - ra) * 28 + xx - ca];
            if (y >= rb && y < rb + 28 && xx >= cb && xx < cb + 28) vb = b[(y - rb) * 28 + xx - cb];
            int v = va > vb ? va : vb;
            if (x[y * 36 + xx] != (float)v / 255.0f) return 0;
        }
    }
    return 1;
}

/* Finds a partner and offsets that reproduce composite j (source image j/2 in either role). */
static int explain_composite(const float *x, int split, int src, int *left, int *right)
{
    int n = split == 0 ? FAKE_TRAIN : FAKE_TEST;
    for (int role = 0; role < 2; role++) {
        for (int p = 0; p < n; p++) {
            int l = role == 0 ? src : p, r = role == 0 ? p : src;
            for (int ra = 0; ra <= 4; ra++)
                for (int ca = 0; ca <= 4; ca++)
                    for (int rb = 4; rb <= 8; rb++)
                        for (int cb = 4; cb <= 8; cb++)
                            if (composite_matches(x, fake_img[split] + l * 784, ra, ca,
                                                  fake_img[split] + r * 784, rb, cb)) {
                                *left = l;
                                *right = r;
                                return 1;
                            }
        }
    }
    return 0;
}

static void test_multifashion_fake(void)
{
    use_fashion_dir(fake_dir);
    mtgrad_bench *b = NULL;
    mtgrad_status s = mtgrad_bench_load(&b, "multifashion", "ntrain=60,ntest=24", 7, err,
                                        sizeof err);
    CHECK(s == MTGRAD_OK, "multifashion on the fake data: %s", err);
    if (s != MTGRAD_OK) return;
    const mtgrad_dataset *tr = mtgrad_bench_train(b), *te = mtgrad_bench_test(b);
    CHECK(tr->n == 60 && tr->k == 2 && tr->in_c == 1 && tr->in_h == 36 && tr->in_w == 36,
          "train shape");
    CHECK(te->n == 24 && te->k == 2, "test shape");
    int explained = 0, left_role = 0;
    for (int split = 0; split < 2; split++) {
        const mtgrad_dataset *ds = split ? te : tr;
        for (int64_t j = 0; j < ds->n; j++) {
            int l = -1, r = -1;
            int ok = explain_composite(ds->x + j * 1296, split, (int)(j / 2), &l, &r);
            CHECK(ok, "composite %lld of split %d is the max of two placed images", (long long)j,
                  split);
            if (!ok) continue;
            explained++;
            left_role += l == j / 2;
            CHECK(ds->y[j] == fake_lab[split][l] && ds->y[ds->n + j] == fake_lab[split][r],
                  "labels of composite %lld are the classes of its items", (long long)j);
            CHECK(fake_lab[split][l] != fake_lab[split][r], "classes differ in %lld",
                  (long long)j);
        }
    }
    CHECK(explained == 84, "%d of 84 composites explained", explained);
    CHECK(left_role == 42, "each image is the left item once and the right item once: %d",
          left_role);

    /* determinism: same seed same bits; subset = prefix; test set independent of ntrain */
    mtgrad_bench *b2 = NULL, *b3 = NULL, *b4 = NULL;
    mtgrad_bench_load(&b2, "multifashion", "ntrain=60,ntest=24", 7, err, sizeof err);
    mtgrad_bench_load(&b3, "multifashion", "ntrain=20,ntest=24", 7, err, sizeof err);
    mtgrad_bench_load(&b4, "multifashion", "ntrain=60,ntest=24", 8, err, sizeof err);
    if (b2 && b3 && b4) {
        const mtgrad_dataset *t2 = mtgrad_bench_train(b2), *t3 = mtgrad_bench_train(b3);
        CHECK(memcmp(t2->x, tr->x, 60 * 1296 * sizeof(float)) == 0 &&
                  memcmp(t2->y, tr->y, 120 * sizeof(float)) == 0,
              "same seed, same bits");
        CHECK(memcmp(t3->x, tr->x, 20 * 1296 * sizeof(float)) == 0, "a subset is a prefix");
        CHECK(memcmp(t3->y, tr->y, 20 * sizeof(float)) == 0 &&
                  memcmp(t3->y + 20, tr->y + 60, 20 * sizeof(float)) == 0,
              "prefix labels");
        CHECK(memcmp(mtgrad_bench_test(b3)->x, te->x, 24 * 1296 * sizeof(float)) == 0,
              "test set does not depend on ntrain");
        CHECK(memcmp(mtgrad_bench_train(b4)->x, tr->x, 60 * 1296 * sizeof(float)) != 0,
              "another seed, another set");
    } else {
        CHECK(0, "reload: %s", err);
    }
    mtgrad_bench_free(b2);
    mtgrad_bench_free(b3);
    mtgrad_bench_free(b4);

    mtgrad_model_spec m = mtgrad_bench_model(b);
    mtgrad_recipe rc = mtgrad_bench_recipe(b);
    CHECK(m.k == 2 && m.in_h == 36 && m.losses[0] == MTGRAD_LOSS_CE &&
              strcmp(m.heads[1], "linear:10") == 0 && m.max_batch == rc.batch,
          "model spec");
    CHECK(strstr(m.trunk, "conv:10:9") == m.trunk, "Pareto-MTL LeNet trunk");
    CHECK(rc.batch == 256 && rc.epochs == 10 && rc.optim.kind == MTGRAD_OPTIM_ADAM &&
              rc.optim.lr == 1e-3 && rc.optim.weight_decay == 0.01,
          "recipe");
    CHECK(strcmp(mtgrad_bench_task_name(b, 0), "left") == 0 &&
              strcmp(mtgrad_bench_task_name(b, 1), "right") == 0 &&
              mtgrad_bench_task_name(b, 2) == NULL,
          "task names");
    CHECK(mtgrad_bench_metric(b, 1) == MTGRAD_METRIC_ACCURACY, "metric");
    CHECK(strcmp(mtgrad_bench_loaded_name(b), "multifashion") == 0, "loaded name");
    mtgrad_bench_free(b);

    s = mtgrad_bench_load(&b, "multifashion", "ntrain=61", 7, err, sizeof err);
    CHECK(s == MTGRAD_E_INVAL && strstr(err, "61"), "more composites than the split allows: %s",
          err);
}

/* ------------------------------------------------------------------ fashion-k */

static void test_fashion_k_fake(void)
{
    use_fashion_dir(fake_dir);
    mtgrad_bench *b = NULL;
    mtgrad_status s = mtgrad_bench_load(&b, "fashion-k", "k=4,grouping=ovr,ntrain=30,ntest=12",
                                        0, err, sizeof err);
    CHECK(s == MTGRAD_OK, "fashion-k ovr: %s", err);
    if (s == MTGRAD_OK) {
        const mtgrad_dataset *tr = mtgrad_bench_train(b);
        CHECK(tr->n == 30 && tr->k == 4 && tr->in_h == 28, "shape");
        for (int j = 0; j < 30 * 784; j++)
            if (tr->x[j] != (float)fake_img[0][j] / 255.0f) {
                CHECK(0, "pixel %d", j);
                break;
            }
        int bad = 0;
        for (int t = 0; t < 4; t++)
            for (int j = 0; j < 30; j++) bad += tr->y[t * 30 + j] != (fake_lab[0][j] == t);
        CHECK(bad == 0, "one-vs-rest labels: %d wrong", bad);
        CHECK(strcmp(mtgrad_bench_task_name(b, 0), "t-shirt") == 0, "task names");
        mtgrad_model_spec m = mtgrad_bench_model(b);
        CHECK(m.k == 4 && m.losses[3] == MTGRAD_LOSS_BCE && strcmp(m.heads[0], "linear:1") == 0,
              "model");
        mtgrad_bench_free(b);
    }
    /* groups for k = 3: {0,1,2} {3,4,5} {6,7,8,9}; for k = 4: {0,1} {2,3,4} {5,6} {7,8,9} */
    static const int g3[10] = {0, 0, 0, 1, 1, 1, 2, 2, 2, 2};
    static const int g4[10] = {0, 0, 1, 1, 1, 2, 2, 3, 3, 3};
    for (int kk = 3; kk <= 4; kk++) {
        char prm[64];
        snprintf(prm, sizeof prm, "k=%d,grouping=groups,ntrain=30,ntest=12", kk);
        s = mtgrad_bench_load(&b, "fashion-k", prm, 0, err, sizeof err);
        CHECK(s == MTGRAD_OK, "groups: %s", err);
        if (s != MTGRAD_OK) continue;
        const mtgrad_dataset *te = mtgrad_bench_test(b);
        int bad = 0;
        for (int t = 0; t < kk; t++)
            for (int j = 0; j < 12; j++) {
                int g = kk == 3 ? g3[fake_lab[1][j]] : g4[fake_lab[1][j]];
                bad += te->y[t * 12 + j] != (g == t);
            }
        CHECK(bad == 0, "k=%d group labels: %d wrong", kk, bad);
        if (kk == 3) CHECK(strcmp(mtgrad_bench_task_name(b, 2), "shirt..boot") == 0, "name %s",
                           mtgrad_bench_task_name(b, 2));
        mtgrad_bench_free(b);
    }
    s = mtgrad_bench_load(&b, "fashion-k", "ntrain=31", 0, err, sizeof err);
    CHECK(s == MTGRAD_E_INVAL, "more images than the file has: %s", err);
}

/* ------------------------------------------------------------------ the real data */

static int real_data_present(void)
{
    FILE *f = fopen("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", "rb");
    if (f) fclose(f);
    return f != NULL;
}

static void test_real_fashion(void)
{
    if (!real_data_present()) {
        printf("note: Fashion-MNIST is not installed; real-data checks skipped\n");
        return;
    }
    unsetenv("MTGRAD_FASHION_DIR");
    mtgrad_bench *b = NULL;
    /* Fashion-MNIST is balanced: 6000 train and 1000 test items per class */
    mtgrad_status s = mtgrad_bench_load(&b, "fashion-k", "k=10", 0, err, sizeof err);
    CHECK(s == MTGRAD_OK, "fashion-k k=10 on the real data: %s", err);
    if (s == MTGRAD_OK) {
        const mtgrad_dataset *tr = mtgrad_bench_train(b), *te = mtgrad_bench_test(b);
        CHECK(tr->n == 60000 && te->n == 10000, "sizes");
        for (int t = 0; t < 10; t++) {
            double pos = 0, tpos = 0;
            for (int64_t j = 0; j < tr->n; j++) pos += tr->y[t * tr->n + j];
            for (int64_t j = 0; j < te->n; j++) tpos += te->y[t * te->n + j];
            CHECK(pos == 6000 && tpos == 1000, "class %d: %g train, %g test positives", t, pos,
                  tpos);
        }
        float lo = 1, hi = 0;
        for (int64_t j = 0; j < tr->n * 784; j++) {
            lo = tr->x[j] < lo ? tr->x[j] : lo;
            hi = tr->x[j] > hi ? tr->x[j] : hi;
        }
        CHECK(lo == 0 && hi == 1, "pixels span [0, 1]: %g..%g", lo, hi);
        mtgrad_bench_free(b);
    }
    s = mtgrad_bench_load(&b, "multifashion", "ntrain=400,ntest=200", 3, err, sizeof err);
    CHECK(s == MTGRAD_OK, "multifashion on the real data: %s", err);
    if (s == MTGRAD_OK) {
        for (int split = 0; split < 2; split++) {
            const mtgrad_dataset *ds = split ? mtgrad_bench_test(b) : mtgrad_bench_train(b);
            int bad_label = 0, same = 0, bad_px = 0;
            for (int64_t j = 0; j < ds->n; j++) {
                float l = ds->y[j], r = ds->y[ds->n + j];
                bad_label += !(l >= 0 && l <= 9 && l == floorf(l) && r >= 0 && r <= 9);
                same += l == r;
            }
            for (int64_t j = 0; j < ds->n * 1296; j++) bad_px += !(ds->x[j] >= 0 && ds->x[j] <= 1);
            CHECK(bad_label == 0 && same == 0 && bad_px == 0,
                  "split %d: %d bad labels, %d equal classes, %d bad pixels", split, bad_label,
                  same, bad_px);
        }
        mtgrad_bench_free(b);
    }
}

/* ------------------------------------------------------------------ mmoe */

/* Least squares w = argmin |X w - y|^2 by the normal equations (Cholesky), d <= 16. */
static int least_squares(const float *x, const float *y, int64_t n, int d, double *w)
{
    double A[16 * 16] = {0}, b[16] = {0};
    for (int64_t s = 0; s < n; s++) {
        const float *xs = x + s * d;
        for (int i = 0; i < d; i++) {
            b[i] += (double)xs[i] * y[s];
            for (int j = 0; j < d; j++) A[i * d + j] += (double)xs[i] * xs[j];
        }
    }
    for (int j = 0; j < d; j++) { /* A = L L^T in place (lower triangle) */
        for (int k = 0; k < j; k++) A[j * d + j] -= A[j * d + k] * A[j * d + k];
        if (!(A[j * d + j] > 0)) return -1;
        A[j * d + j] = sqrt(A[j * d + j]);
        for (int i = j + 1; i < d; i++) {
            for (int k = 0; k < j; k++) A[i * d + j] -= A[i * d + k] * A[j * d + k];
            A[i * d + j] /= A[j * d + j];
        }
    }
    for (int i = 0; i < d; i++) { /* L z = b */
        for (int k = 0; k < i; k++) b[i] -= A[i * d + k] * b[k];
        b[i] /= A[i * d + i];
    }
    for (int i = d - 1; i >= 0; i--) { /* L^T w = z */
        for (int k = i + 1; k < d; k++) b[i] -= A[k * d + i] * b[k];
        b[i] /= A[i * d + i];
    }
    memcpy(w, b, (size_t)d * sizeof *w);
    return 0;
}

static double cosine(const double *a, const double *b, int d)
{
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < d; i++) {
        ab += a[i] * b[i];
        aa += a[i] * a[i];
        bb += b[i] * b[i];
    }
    return ab / sqrt(aa * bb);
}

static double correlation(const float *a, const float *b, int64_t n)
{
    double ma = 0, mb = 0;
    for (int64_t i = 0; i < n; i++) {
        ma += a[i];
        mb += b[i];
    }
    ma /= (double)n;
    mb /= (double)n;
    double ab = 0, aa = 0, bb = 0;
    for (int64_t i = 0; i < n; i++) {
        ab += (a[i] - ma) * (b[i] - mb);
        aa += (a[i] - ma) * (a[i] - ma);
        bb += (b[i] - mb) * (b[i] - mb);
    }
    return ab / sqrt(aa * bb);
}

static void test_mmoe(void)
{
    mtgrad_bench *b = NULL;
    /* linear tasks: the vectors recovered by least squares have cosine p and norm c */
    const char *cases[] = {"p=0.3,k=2,d=8,m=0,ntrain=20000,ntest=10",
                           "p=-0.7,k=2,d=8,m=0,ntrain=20000,ntest=10",
                           "p=0.6,k=4,d=8,m=0,c=2,ntrain=20000,ntest=10"};
    const double ps[] = {0.3, -0.7, 0.6}, cs[] = {1, 1, 2};
    for (int c = 0; c < 3; c++) {
        mtgrad_status s = mtgrad_bench_load(&b, "mmoe", cases[c], 11, err, sizeof err);
        CHECK(s == MTGRAD_OK, "%s: %s", cases[c], err);
        if (s != MTGRAD_OK) continue;
        const mtgrad_dataset *tr = mtgrad_bench_train(b);
        int k = (int)tr->k;
        double w[4][16];
        for (int t = 0; t < k; t++) {
            CHECK(least_squares(tr->x, tr->y + t * tr->n, tr->n, 8, w[t]) == 0, "lsq");
            double nrm = 0;
            for (int i = 0; i < 8; i++) nrm += w[t][i] * w[t][i];
            CHECK_CLOSE(sqrt(nrm), cs[c], 0.005, 0);
        }
        for (int s1 = 0; s1 < k; s1++)
            for (int s2 = s1 + 1; s2 < k; s2++) {
                CHECK_CLOSE(cosine(w[s1], w[s2], 8), ps[c], 0, 0.005);
                /* label correlation = p c^2 / (c^2 + noise) in the linear case */
                CHECK_CLOSE(correlation(tr->y + s1 * tr->n, tr->y + s2 * tr->n, tr->n),
                            ps[c] * cs[c] * cs[c] / (cs[c] * cs[c] + 0.01), 0, 0.02);
            }
        mtgrad_bench_free(b);
    }

    /* noise: with c = 0 and m = 0 the labels are the noise alone */
    mtgrad_status s = mtgrad_bench_load(&b, "mmoe", "c=0,m=0,noise=0.04,ntrain=20000,ntest=10",
                                        5, err, sizeof err);
    CHECK(s == MTGRAD_OK, "noise only: %s", err);
    if (s == MTGRAD_OK) {
        const mtgrad_dataset *tr = mtgrad_bench_train(b);
        for (int t = 0; t < 2; t++) {
            double m = 0, v = 0;
            for (int64_t j = 0; j < tr->n; j++) m += tr->y[t * tr->n + j];
            m /= (double)tr->n;
            for (int64_t j = 0; j < tr->n; j++)
                v += (tr->y[t * tr->n + j] - m) * (tr->y[t * tr->n + j] - m);
            v /= (double)(tr->n - 1);
            CHECK_CLOSE(v, 0.04, 0.05, 0);
            CHECK(fabs(m) < 0.01, "noise mean %g", m);
        }
        CHECK(fabs(correlation(tr->y, tr->y + tr->n, tr->n)) < 0.03, "independent noise");
        mtgrad_bench_free(b);
    }

    /* with the sine terms the label correlation grows with p */
    double corr[3];
    const char *sp[] = {"p=0.1", "p=0.5", "p=0.95"};
    for (int i = 0; i < 3; i++) {
        char prm[96];
        snprintf(prm, sizeof prm, "%s,d=20,ntrain=20000,ntest=10", sp[i]);
        corr[i] = NAN;
        if (mtgrad_bench_load(&b, "mmoe", prm, 2, err, sizeof err) == MTGRAD_OK) {
            const mtgrad_dataset *tr = mtgrad_bench_train(b);
            corr[i] = correlation(tr->y, tr->y + tr->n, tr->n);
            mtgrad_bench_free(b);
        }
    }
    CHECK(corr[0] < corr[1] && corr[1] < corr[2], "label correlation %g < %g < %g", corr[0],
          corr[1], corr[2]);

    /* defaults, shapes, model, recipe; determinism and prefixes */
    s = mtgrad_bench_load(&b, "mmoe", "ntrain=300,ntest=50", 9, err, sizeof err);
    CHECK(s == MTGRAD_OK, "defaults: %s", err);
    if (s == MTGRAD_OK) {
        const mtgrad_dataset *tr = mtgrad_bench_train(b);
        CHECK(tr->n == 300 && tr->k == 2 && tr->in_c == 100 && tr->in_h == 1 && tr->in_w == 1,
              "shape");
        mtgrad_model_spec m = mtgrad_bench_model(b);
        mtgrad_recipe rc = mtgrad_bench_recipe(b);
        CHECK(strcmp(m.trunk, "linear:113,relu") == 0 &&
                  strcmp(m.heads[1], "linear:8,relu,linear:1") == 0 &&
                  m.losses[0] == MTGRAD_LOSS_MSE && m.in_c == 100 && m.max_batch == 128,
              "model");
        CHECK(rc.batch == 128 && rc.epochs == 20 && rc.optim.lr == 1e-3, "recipe");
        CHECK(mtgrad_bench_metric(b, 0) == MTGRAD_METRIC_MSE, "metric");
        CHECK(strcmp(mtgrad_bench_task_name(b, 1), "task2") == 0, "task name");
        mtgrad_bench *b2 = NULL, *b3 = NULL;
        mtgrad_bench_load(&b2, "mmoe", "ntrain=300,ntest=50", 9, err, sizeof err);
        mtgrad_bench_load(&b3, "mmoe", "ntrain=100,ntest=80", 9, err, sizeof err);
        if (b2 && b3) {
            CHECK(memcmp(mtgrad_bench_train(b2)->x, tr->x, 300 * 100 * sizeof(float)) == 0 &&
                      memcmp(mtgrad_bench_train(b2)->y, tr->y, 600 * sizeof(float)) == 0,
                  "same seed, same bits");
            CHECK(memcmp(mtgrad_bench_train(b3)->x, tr->x, 100 * 100 * sizeof(float)) == 0 &&
                      memcmp(mtgrad_bench_train(b3)->y + 100, tr->y + 300,
                             100 * sizeof(float)) == 0,
                  "a smaller train set is a prefix");
            CHECK(memcmp(mtgrad_bench_test(b3)->x, mtgrad_bench_test(b)->x,
                         50 * 100 * sizeof(float)) == 0,
                  "test set independent of ntrain");
        }
        mtgrad_bench_free(b2);
        mtgrad_bench_free(b3);
        mtgrad_bench_free(b);
    }

    /* parameter errors */
    struct {
        const char *params, *needle;
    } bad[] = {{"q=1", "unknown parameter 'q'"},    {"k=abc", "not a number"},
               {"k=2.5", "not an integer"},         {"p=2", "outside"},
               {"p=-0.5,k=3", "p = -0.5"},          {"k=5,d=5", "d = 5"},
               {"p=0.1,p=0.2", "given twice"},      {"ntrain", "not name=value"},
               {"ntest=", "missing"},               {"noise=nan", "not a number"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b = (mtgrad_bench *)&b; /* must be reset to NULL on failure */
        s = mtgrad_bench_load(&b, "mmoe", bad[i].params, 0, err, sizeof err);
        CHECK(s == MTGRAD_E_INVAL && b == NULL && strstr(err, bad[i].needle),
              "'%s': status %d, '%s'", bad[i].params, (int)s, err);
    }
}

/* ------------------------------------------------------------------ registry */

static void test_registry(void)
{
    CHECK(mtgrad_bench_count() == 3, "three benchmarks");
    const char *names[] = {"mmoe", "multifashion", "fashion-k"};
    for (size_t i = 0; i < 3; i++) {
        CHECK(strcmp(mtgrad_bench_name(i), names[i]) == 0, "name %zu", i);
        CHECK(mtgrad_bench_summary(i) && strlen(mtgrad_bench_summary(i)) > 10, "summary %zu", i);
    }
    CHECK(mtgrad_bench_name(3) == NULL && mtgrad_bench_help(3) == NULL, "out of range");
    /* every help lists its parameters as name=default */
    const char *expect[3][8] = {{"p=0.5", "k=2", "d=100", "m=10", "c=1", "ntrain=10000",
                                 "ntest=5000", "noise=0.01"},
                                {"ntrain=120000", "ntest=20000"},
                                {"k=5", "grouping=ovr", "ntrain=60000", "ntest=10000"}};
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < 8 && expect[i][j]; j++)
            CHECK(strstr(mtgrad_bench_help(i), expect[i][j]) != NULL, "help of %s lists %s",
                  names[i], expect[i][j]);
    mtgrad_bench *b = NULL;
    mtgrad_status s = mtgrad_bench_load(&b, "nyuv2", NULL, 0, err, sizeof err);
    CHECK(s == MTGRAD_E_INVAL && strstr(err, "nyuv2"), "unknown benchmark: %s", err);
    CHECK(mtgrad_bench_load(NULL, "mmoe", NULL, 0, err, sizeof err) == MTGRAD_E_INVAL, "NULL out");
    CHECK(mtgrad_bench_load(&b, NULL, NULL, 0, err, sizeof err) == MTGRAD_E_INVAL, "NULL name");
    s = mtgrad_bench_load(&b, "fashion-k", "grouping=tree", 0, err, sizeof err);
    CHECK(s == MTGRAD_E_INVAL && strstr(err, "ovr|groups"), "bad choice: %s", err);
    s = mtgrad_bench_load(&b, "fashion-k", "k=11", 0, err, sizeof err);
    CHECK(s == MTGRAD_E_INVAL && strstr(err, "k = 11"), "k too large: %s", err);
    mtgrad_bench_free(NULL);
    CHECK(mtgrad_bench_train(NULL) == NULL && mtgrad_bench_task_name(NULL, 0) == NULL,
          "NULL bench");
}

static void remove_tree(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/mtgrad_bench_XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_idx_reader();
    make_fake_fashion();
    test_fashion_loader();
    test_multifashion_fake();
    test_fashion_k_fake();
    test_mmoe();
    test_registry();
    test_real_fashion();
    remove_tree(tmpdir);
    return harness_report();
}
