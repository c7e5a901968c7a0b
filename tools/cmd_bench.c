/* cmd_bench.c — `mtgrad bench`: kernel and method timings against floors measured in the same run.
 *
 * Timings drift between runs and machines (2 shared cores), so everything is reported as a ratio
 * to something measured in this process (docs: shared/spec/performance.md):
 *   - the read bandwidth BW(t): the faster of two streaming reads (one stream; 8 interleaved
 *     streams) of a buffer larger than the L3 with t threads, 32-byte loads where the CPU has them;
 *   - the f64 compute peak P(t): OpenBLAS dgemm on square matrices with t threads, fastest call
 *     (the Gram accumulates in double, so its arithmetic floor is double-precision FMA);
 *   - floor(k, d, t) = max(4·k·d bytes / BW(t), k·(k+1)·d flops / P(t)): one pass over G, or the
 *     Gram's arithmetic, whichever is larger (the bandwidth floor; the compute floor at large k);
 *     a method that computes no Gram is held to the bandwidth floor alone;
 *   - cblas_ssyrk on the same matrix with t OpenBLAS threads (×OpenBLAS = its time / ours).
 * For each k, d and thread count, every method runs through mtgrad_aggregate_f32 (one warm-up
 * call, then --reps timed calls, the methods taking turns call by call; medians): the end-to-end
 * time, and from mtgrad_aggregator_times the Gram, solve (the method's k x k work) and combine
 * phases. The Gram and combine rows are mgda's phases (no clipping pass). Built on the public
 * header only (tools/ rule); the timing code and the streaming-read kernel are the tool's own. */
#define _GNU_SOURCE /* getopt_long, clock_gettime */
#include "bench_train.h"
#include "timing.h"
#include "cli.h"
#include "mtgrad.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__has_include)
#if __has_include(<cblas.h>)
#include <cblas.h>
#define BENCH_HAVE_CBLAS 1
#endif
#endif
#ifdef _OPENMP
#include <omp.h>
#endif
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>
#define BENCH_X86 1
#endif

const char mtgrad_usage_bench[] =
    "usage: mtgrad bench [-k LIST] [-d LIST] [-t LIST] [-m LIST] [-r N] [--quick] [--json]\n"
    "  Times the Gram and combine kernels, each method's k x k solve and its end-to-end\n"
    "  aggregation (mtgrad_aggregate_f32) on random k x d float32 matrices, against floors\n"
    "  measured in the same run: read bandwidth (fastest streaming read larger than L3; where G\n"
    "  is 32 MiB or more, re-measured by a read before every timed call) and the f64 dgemm\n"
    "  peak (that term only for methods that compute a Gram); and against OpenBLAS cblas_ssyrk\n"
    "  on the same matrix. Medians of N timed runs after one warm-up.\n"
    "  -k, --tasks LIST    task counts (default 2,3,10,40)\n"
    "  -d, --dims LIST     parameter counts, e.g. 1e5,1e6 (default 1e5,1e6,1e7)\n"
    "  -t, --threads LIST  thread counts (default 1,2)\n"
    "  -m, --methods LIST  methods timed end to end (default 'all'; 'none': kernels only)\n"
    "  -r, --reps N        timed repetitions, at least 5 (default 5)\n"
    "  -q, --quick         a short run: -k 2,10 -d 1e6 (unless given)\n"
    "      --no-blas       skip OpenBLAS: no xOpenBLAS, and the floor is the bandwidth floor\n"
    "  -j, --json          one JSON object on stdout instead of the table\n"
    "  Columns: ms (median), GB/s = 4·k·d bytes of G / time, xfloor = time / floor,\n"
    "  xOpenBLAS = ssyrk time / our Gram time, solve_us = the method's own k x k work.\n"
    "usage: mtgrad bench --train [OPTIONS]   (see 'mtgrad bench --train --help')\n"
    "  Time per training step of every method against k on fashion-k and mmoe: ms, x LS,\n"
    "  forward and backward passes per step, phase split.\n";

#define MAX_LIST 16
#define BW_BYTES ((size_t)512 << 20) /* 512 MiB: 16x the 32 MiB L3 of the project's machines */

typedef struct bench_opts {
    int64_t ks[MAX_LIST], ds[MAX_LIST];
    int threads[MAX_LIST];
    int nk, nd, nt, reps, json, blas;
    const char *methods; /* NULL = all */
} bench_opts;

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "mtgrad bench: out of memory (%zu bytes)\n---> HINT: smaller -k/-d\n", n);
        exit(1);
    }
    return p;
}

/* ------------------------------------------------------------------ options */

/* "a,b,c" of positive numbers (1e6 notation allowed) into out; returns the count or -1. */
static int parse_list(const char *s, int64_t *out, int max)
{
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        double x = strtod(p, &end);
        if (end == p || !(x >= 1) || x > 1e12 || x != floor(x) || n == max) return -1;
        out[n++] = (int64_t)x;
        p = end;
        if (*p == ',')
            p++;
        else if (*p)
            return -1;
    }
    return n;
}

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "mtgrad bench: %s%s\n%s", msg, arg, mtgrad_usage_bench);
    return 2;
}

static int parse_opts(int argc, char **argv, bench_opts *o)
{
    static const struct option opts[] = {
        {"tasks", required_argument, NULL, 'k'},   {"dims", required_argument, NULL, 'd'},
        {"threads", required_argument, NULL, 't'}, {"methods", required_argument, NULL, 'm'},
        {"reps", required_argument, NULL, 'r'},    {"quick", no_argument, NULL, 'q'},
        {"json", no_argument, NULL, 'j'},          {"no-blas", no_argument, NULL, 'B'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    int64_t tmp[MAX_LIST];
    int quick = 0, ch, n;
    memset(o, 0, sizeof *o);
    o->reps = 5;
    o->blas = 1;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "k:d:t:m:r:qjh", opts, NULL)) != -1) {
        switch (ch) {
        case 'k':
            if ((o->nk = parse_list(optarg, o->ks, MAX_LIST)) <= 0)
                return usage_error("bad -k list: ", optarg);
            break;
        case 'd':
            if ((o->nd = parse_list(optarg, o->ds, MAX_LIST)) <= 0)
                return usage_error("bad -d list: ", optarg);
            break;
        case 't':
            if ((n = parse_list(optarg, tmp, MAX_LIST)) <= 0)
                return usage_error("bad -t list: ", optarg);
            for (o->nt = 0; o->nt < n; o->nt++) {
                if (tmp[o->nt] > 256) return usage_error("at most 256 threads: ", optarg);
                o->threads[o->nt] = (int)tmp[o->nt];
            }
            break;
        case 'm': o->methods = optarg; break;
        case 'r':
            if (parse_list(optarg, tmp, 1) != 1 || tmp[0] < 5 || tmp[0] > 10000)
                return usage_error("-r needs a count of at least 5: ", optarg);
            o->reps = (int)tmp[0];
            break;
        case 'q': quick = 1; break;
        case 'j': o->json = 1; break;
        case 'B': o->blas = 0; break;
        case 'h': fputs(mtgrad_usage_bench, stdout); return 1;
        default: fputs(mtgrad_usage_bench, stderr); return 2;
        }
    }
    if (optind != argc) return usage_error("unexpected argument: ", argv[optind]);
    if (!o->nk) {
        const int64_t def[4] = {2, 3, 10, 40}, q[2] = {2, 10};
        o->nk = quick ? 2 : 4;
        memcpy(o->ks, quick ? q : def, (size_t)o->nk * sizeof *o->ks);
    }
    if (!o->nd) {
        const int64_t def[3] = {100000, 1000000, 10000000};
        o->nd = quick ? 1 : 3;
        memcpy(o->ds, quick ? def + 1 : def, (size_t)o->nd * sizeof *o->ds);
    }
    if (!o->nt) o->nt = 2, o->threads[0] = 1, o->threads[1] = 2;
    if (o->methods && strcmp(o->methods, "all") == 0) o->methods = NULL;
    if (o->methods && strcmp(o->methods, "none") != 0) { /* validate the names now */
        char *copy = xmalloc(strlen(o->methods) + 1), *save = NULL;
        strcpy(copy, o->methods);
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
            if (!mtgrad_method_by_name(tok)) {
                int rc = usage_error("unknown method: ", tok);
                free(copy);
                return rc;
            }
        free(copy);
    }
    return 0;
}

static int method_selected(const bench_opts *o, const char *name)
{
    if (!o->methods) return 1;
    size_t n = strlen(name);
    for (const char *p = o->methods; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ floors */

/* The read-bandwidth floor has to be the fastest read this machine can do, or every xfloor below
 * flatters us: a scalar 64-bit loop reached 15-20 GB/s on one core where 32-byte loads reach 25
 * (and the Gram, which reads k streams, read faster than the "floor"). So the read uses 32-byte
 * loads into four independent sums when the CPU has AVX2, and two access patterns are timed —
 * one sequential stream, and STREAMS interleaved streams (as the Gram and the combine read k
 * rows) — and the faster one is the floor. */
#define STREAMS 8
#define STRIPE 4096 /* 64-bit words per stripe: 32 KiB */

#ifdef BENCH_X86
__attribute__((target("avx2"))) static uint64_t stripe_sum_avx2(const uint64_t *p)
{
    __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i < STRIPE; i += 16) {
        s0 = _mm256_add_epi64(s0, _mm256_loadu_si256((const __m256i *)(p + i)));
        s1 = _mm256_add_epi64(s1, _mm256_loadu_si256((const __m256i *)(p + i + 4)));
        s2 = _mm256_add_epi64(s2, _mm256_loadu_si256((const __m256i *)(p + i + 8)));
        s3 = _mm256_add_epi64(s3, _mm256_loadu_si256((const __m256i *)(p + i + 12)));
    }
    __m256i s = _mm256_add_epi64(_mm256_add_epi64(s0, s1), _mm256_add_epi64(s2, s3));
    uint64_t out[4];
    _mm256_storeu_si256((__m256i *)out, s);
    return out[0] + out[1] + out[2] + out[3];
}
static int have_avx2(void) { return __builtin_cpu_supports("avx2"); }
#else
static uint64_t stripe_sum_avx2(const uint64_t *p) { (void)p; return 0; }
static int have_avx2(void) { return 0; }
#endif

/* 8 chains so one core can issue loads at its full rate without SIMD. */
static uint64_t stripe_sum_scalar(const uint64_t *p)
{
    uint64_t s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (size_t i = 0; i < STRIPE; i += 8)
        for (int j = 0; j < 8; j++) s[j] += p[i + (size_t)j];
    return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

/* Sum of a buffer of n 64-bit words, read once by t threads in `streams` interleaved streams
 * (the buffer cut into `streams` regions; step c reads stripe c of each region). The sum only
 * keeps the compiler from dropping the reads. */
static uint64_t stream_read(const uint64_t *buf, size_t n, int t, int streams, int simd)
{
    uint64_t total = 0;
    size_t region = n / (size_t)streams, steps = region / STRIPE;
    (void)t;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) reduction(+ : total) num_threads(t)
#endif
    for (size_t c = 0; c < steps; c++)
        for (int s = 0; s < streams; s++) {
            const uint64_t *p = buf + (size_t)s * region + c * STRIPE;
            total += simd ? stripe_sum_avx2(p) : stripe_sum_scalar(p);
        }
    return total;
}

/* Bytes one probe read covers (a whole number of stripes per stream). */
static double probe_bytes(int streams)
{
    size_t n = BW_BYTES / sizeof(uint64_t);
    return (double)(n / (size_t)streams / STRIPE * STRIPE * (size_t)streams * sizeof(uint64_t));
}

/* Median GB/s of reps reads with t threads and the given number of streams. */
static double read_rate(const uint64_t *buf, int t, int streams, int reps)
{
    size_t n = BW_BYTES / sizeof(uint64_t);
    int simd = have_avx2();
    double *times = xmalloc((size_t)reps * sizeof *times);
    uint64_t sink = stream_read(buf, n, t, streams, simd); /* warm-up */
    for (int r = 0; r < reps; r++) {
        double t0 = mtgrad_tool_now();
        sink += stream_read(buf, n, t, streams, simd);
        times[r] = mtgrad_tool_now() - t0;
    }
    double med = mtgrad_tool_median(times, reps);
    if (sink == 42) fputc(' ', stderr); /* keep the sum alive */
    free(times);
    return probe_bytes(streams) / med / 1e9;
}

/* The read probe: the 512 MiB buffer kept for the whole run, so that the bandwidth floor can also
 * be re-measured between the timed calls (the machines are shared: their memory bandwidth drifts
 * by up to 2x within a minute, and a floor measured once at the start made xfloor drift with it). */
typedef struct read_probe {
    uint64_t *buf;
    int streams[MAX_LIST]; /* per thread count of the run: the faster pattern, 1 or STREAMS */
} read_probe;

static void probe_init(read_probe *p)
{
    size_t n = BW_BYTES / sizeof(uint64_t);
    p->buf = xmalloc(BW_BYTES);
    for (size_t i = 0; i < n; i++) p->buf[i] = i * 0x9e3779b97f4a7c15ULL; /* touch every page */
}

/* Read bandwidth in GB/s with t threads: the faster of one stream and STREAMS streams (which one
 * is kept in *streams). */
static double read_bandwidth(const read_probe *p, int t, int reps, int *streams)
{
    double one = read_rate(p->buf, t, 1, reps), many = read_rate(p->buf, t, STREAMS, reps);
    *streams = one > many ? 1 : STREAMS;
    return one > many ? one : many;
}

/* One timed read of the probe buffer with t threads in its best pattern: seconds. */
static double probe_read_once(const read_probe *p, int t, int streams)
{
    size_t n = BW_BYTES / sizeof(uint64_t);
    double t0 = mtgrad_tool_now();
    uint64_t sink = stream_read(p->buf, n, t, streams, have_avx2());
    double dt = mtgrad_tool_now() - t0;
    if (sink == 42) fputc(' ', stderr); /* keep the sum alive */
    return dt;
}

#ifdef BENCH_HAVE_CBLAS
static void blas_threads(int t)
{
#ifdef OPENBLAS_VERSION
    openblas_set_num_threads(t);
#else
    (void)t;
#endif
}

/* dgemm (double = 1) or sgemm GFLOP/s on n x n matrices with t threads: the fastest of reps.
 * A peak is what the machine can do, and another tenant can only slow a call down: with the
 * median, a second core busy for the ~0.2 s of this measurement once halved the 2-thread peak,
 * doubled the compute floor, and showed the Gram at 0.75x "floor". */
static double gemm_peak(int t, int reps, int dbl)
{
    const int n = 1024;
    size_t nn = (size_t)n * (size_t)n;
    double *A = dbl ? xmalloc(3 * nn * sizeof *A) : NULL;
    float *As = dbl ? NULL : xmalloc(3 * nn * sizeof *As);
    for (size_t i = 0; i < 3 * nn; i++) {
        double v = (double)(i % 97) / 97.0 - 0.5;
        if (dbl)
            A[i] = v;
        else
            As[i] = (float)v;
    }
    double *times = xmalloc((size_t)reps * sizeof *times);
    blas_threads(t);
    for (int r = -1; r < reps; r++) {
        double t0 = mtgrad_tool_now();
        if (dbl)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, A, n, A + nn, n,
                        0.0, A + 2 * nn, n);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, As, n, As + nn, n,
                        0.0f, As + 2 * nn, n);
        if (r >= 0) times[r] = mtgrad_tool_now() - t0;
    }
    double best = INFINITY;
    for (int r = 0; r < reps; r++) best = fmin(best, times[r]);
    free(A);
    free(As);
    free(times);
    return 2.0 * n * n * (double)n / best / 1e9;
}

/* Median seconds of cblas_ssyrk (upper triangle of G Gᵀ, f32) with t threads. */
static double time_ssyrk(const float *G, int64_t k, int64_t d, int t, int reps)
{
    float *C = xmalloc((size_t)(k * k) * sizeof *C);
    double *times = xmalloc((size_t)reps * sizeof *times);
    blas_threads(t);
    for (int r = -1; r < reps; r++) {
        double t0 = mtgrad_tool_now();
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)k, (int)d, 1.0f, G, (int)d, 0.0f,
                    C, (int)k);
        if (r >= 0) times[r] = mtgrad_tool_now() - t0;
    }
    double med = mtgrad_tool_median(times, reps);
    free(C);
    free(times);
    return med;
}
#endif

/* ------------------------------------------------------------------ the matrix */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Rows = ±0.4·(a shared signal) + task noise of scale 1..4: gradients that partly agree and
 * partly conflict, so the solvers do real work (iid rows at large d are nearly orthogonal).
 * Column by column: one splitmix64 draw for the signal, one per pair of rows for the noise (bits
 * 40..63 for even rows, 8..31 for odd ones), float arithmetic only — bench/peer_torch.py
 * rebuilds the same matrix bit for bit with NumPy. */
static void fill_G(float *G, int64_t k, int64_t d, uint64_t seed)
{
    uint64_t s = seed;
    for (int64_t c = 0; c < d; c++) {
        uint64_t r = rng_next(&s);
        float common = (float)(r >> 40) / 16777216.0f - 0.5f;
        for (int64_t i = 0; i < k; i++) {
            if (i % 2 == 0) r = rng_next(&s);
            float noise = (float)((r >> (i % 2 ? 8 : 40)) & 0xffffff) / 16777216.0f - 0.5f;
            G[i * d + c] = (i % 3 == 2 ? -0.4f : 0.4f) * common + noise * (float)(1 + i % 4);
        }
    }
}

/* ------------------------------------------------------------------ one configuration */

typedef struct method_result {
    const char *name;
    double e2e_ms, gram_ms, solve_us, combine_ms;
    double bw_floor_ms; /* from the probe reads interleaved with this method's calls; NaN if none */
    int gram;           /* computes M = G Gᵀ: the compute floor applies to it */
    mtgrad_status status;
} method_result;

typedef struct config_result {
    int64_t k, d;
    int threads;
    double floor_ms, bw_floor_ms, compute_floor_ms, gram_ms, combine_ms, ssyrk_ms;
    double trace; /* trace of G Gᵀ: lets a peer script check it timed the same matrix */
    int n_methods, interleaved; /* interleaved: per-method floors from probe reads between calls */
    int nomem; /* a call ran out of memory: the row lacks results, the run must not pass (exit 1) */
    method_result *m;
} config_result;

/* One method being timed: its aggregator and the samples of its calls. */
typedef struct method_timer {
    mtgrad_aggregator *a;
    unsigned flags;
    double *e2e, *reads, *ph[3];
    int done; /* failed or not started: no more calls */
    method_result r;
} method_timer;

static void timer_open(method_timer *mt, const mtgrad_method *me, int64_t k, int t, int reps)
{
    char params[32], err[256];
    memset(mt, 0, sizeof *mt);
    mt->flags = mtgrad_method_flags(me);
    mt->r = (method_result){mtgrad_method_name(me), NAN, NAN, NAN, NAN, NAN,
                            (mt->flags & MTGRAD_NEEDS_GRAM) != 0, MTGRAD_OK};
    snprintf(params, sizeof params, "threads=%d", t);
    mt->r.status = mtgrad_aggregator_new(&mt->a, mt->r.name, k, params, err, sizeof err);
    if (mt->r.status != MTGRAD_OK) {
        fprintf(stderr, "mtgrad bench: %s: %s\n", mt->r.name, err);
        mt->done = 1;
        return;
    }
    mt->e2e = xmalloc((size_t)reps * sizeof *mt->e2e);
    mt->reads = xmalloc((size_t)reps * sizeof *mt->reads);
    for (int i = 0; i < 3; i++) mt->ph[i] = xmalloc((size_t)reps * sizeof *mt->ph[i]);
}

/* One call (rep < 0: the warm-up, not recorded), preceded by a probe read when there is a probe. */
static void timer_call(method_timer *mt, int rep, const float *G, int64_t k, int64_t d, int t,
                       float *dir, double *losses, const read_probe *probe, int streams)
{
    if (mt->done) return;
    double read_s = probe ? probe_read_once(probe, t, streams) : NAN;
    double t0 = mtgrad_tool_now();
    mt->r.status = mtgrad_aggregate_f32(mt->a, G, k, d, d,
                                        (mt->flags & MTGRAD_NEEDS_LOSSES) ? losses : NULL, dir, NULL);
    double t1 = mtgrad_tool_now();
    if (mt->r.status != MTGRAD_OK && mt->r.status != MTGRAD_E_MAXITER &&
        mt->r.status != MTGRAD_E_NOPROGRESS) {
        fprintf(stderr, "mtgrad bench: %s k=%lld d=%lld: %s\n", mt->r.name, (long long)k,
                (long long)d, mtgrad_aggregator_error(mt->a));
        mt->done = 1;
        return;
    }
    if (mt->flags & MTGRAD_NEEDS_LOSSES_AFTER) (void)mtgrad_aggregator_update(mt->a, losses, k);
    if (rep < 0) return;
    double tm[3];
    mtgrad_aggregator_times(mt->a, tm);
    mt->e2e[rep] = t1 - t0;
    mt->reads[rep] = read_s;
    for (int i = 0; i < 3; i++) mt->ph[i][rep] = tm[i];
}

/* Medians of a timer that made all its calls (with a probe, the method's bandwidth floor is 4kd
 * bytes at the median rate of the reads before its calls); frees the timer. */
static method_result timer_close(method_timer *mt, int64_t k, int64_t d, int reps,
                                 const read_probe *probe, int streams)
{
    method_result r = mt->r;
    if (!mt->done) {
        if (probe)
            r.bw_floor_ms = 1e3 * 4.0 * (double)k * (double)d /
                            (probe_bytes(streams) / mtgrad_tool_median(mt->reads, reps));
        r.e2e_ms = 1e3 * mtgrad_tool_median(mt->e2e, reps);
        r.gram_ms = 1e3 * mtgrad_tool_median(mt->ph[0], reps);
        r.solve_us = 1e6 * mtgrad_tool_median(mt->ph[1], reps);
        r.combine_ms = 1e3 * mtgrad_tool_median(mt->ph[2], reps);
    }
    mtgrad_aggregator_free(mt->a);
    free(mt->e2e);
    free(mt->reads);
    for (int i = 0; i < 3; i++) free(mt->ph[i]);
    return r;
}

/* Time methods end to end, round robin: one warm-up call of each, then repetition r of every
 * method before repetition r + 1 of any. On a shared machine a burst of another tenant's traffic
 * then lands on one or two repetitions of several methods, which the medians drop, rather than
 * on every repetition of whichever method was running (as it did when each method's calls ran
 * back to back: single rows 1.5x their neighbours). With a probe, each call is preceded by one
 * read of the probe buffer: the floor of the same moments as the calls. */
static void time_methods(const mtgrad_method **mes, int n, method_result *out, const float *G,
                         int64_t k, int64_t d, int t, int reps, float *dir, double *losses,
                         const read_probe *probe, int streams)
{
    method_timer *mt = xmalloc((size_t)n * sizeof *mt);
    for (int i = 0; i < n; i++) timer_open(&mt[i], mes[i], k, t, reps);
    for (int rep = -1; rep < reps; rep++)
        for (int i = 0; i < n; i++) timer_call(&mt[i], rep, G, k, d, t, dir, losses, probe, streams);
    for (int i = 0; i < n; i++) out[i] = timer_close(&mt[i], k, d, reps, probe, streams);
    free(mt);
}

/* G at least this large (bytes: the 32 MiB L3 of the project's machines) is not cache-resident:
 * its floors are measured between the calls, and the probe read evicts it, as a fresh G would be
 * in training. (At 64 MiB, k = 10 and d = 1e6 — 40 MB — kept up to a third of G in L3 from one
 * timed call to the next and showed 0.7x "floor".) A G that fits is timed warm, without probes. */
#define INTERLEAVE_BYTES ((size_t)32 << 20)

/* A method's floor: its own bandwidth floor (or the configuration's), or the Gram's compute floor
 * where the method computes a Gram. A method that only combines (the loss-based ones, mean, sum)
 * or reads G once in its own way (graddrop) has no k(k+1)d flops: its floor is the read alone. */
static double method_floor(const config_result *c, const method_result *m)
{
    return m->gram ? fmax(m->bw_floor_ms, c->compute_floor_ms) : m->bw_floor_ms;
}

static config_result run_config(const bench_opts *o, const float *G, int64_t k, int64_t d, int t,
                                double bw, double peak, const read_probe *probe, int streams)
{
    config_result c = {k, d, t, 0, 0, 0, NAN, NAN, NAN, NAN, 0, 0, 0, NULL};
    c.interleaved = 4.0 * (double)k * (double)d >= (double)INTERLEAVE_BYTES;
    const read_probe *pr = c.interleaved ? probe : NULL;
    c.bw_floor_ms = 1e3 * 4.0 * (double)k * (double)d / (bw * 1e9);
    c.compute_floor_ms =
        peak > 0 ? 1e3 * (double)k * (double)(k + 1) * (double)d / (peak * 1e9) : 0;
    c.floor_ms = fmax(c.bw_floor_ms, c.compute_floor_ms);
    float *dir = xmalloc((size_t)d * sizeof *dir);
    double *losses = xmalloc((size_t)k * sizeof *losses);
    for (int64_t i = 0; i < k; i++) losses[i] = 1.0 + 0.25 * (double)i;
    /* entry 0 is for the kernels: mgda's Gram and combine phases (no clipping pass in its
     * combine); then the methods asked for, all timed round robin */
    size_t nm = mtgrad_method_count();
    const mtgrad_method **mes = xmalloc((nm + 1) * sizeof *mes);
    method_result *res = xmalloc((nm + 1) * sizeof *res);
    int n = 0;
    mes[n++] = mtgrad_method_by_name("mgda");
    if (!o->methods || strcmp(o->methods, "none") != 0)
        for (size_t i = 0; i < nm; i++)
            if (method_selected(o, mtgrad_method_name(mtgrad_method_at(i))))
                mes[n++] = mtgrad_method_at(i);
    time_methods(mes, n, res, G, k, d, t, o->reps, dir, losses, pr, streams);
    c.gram_ms = res[0].gram_ms;
    c.combine_ms = res[0].combine_ms;
    if (c.interleaved) {
        c.bw_floor_ms = res[0].bw_floor_ms;
        c.floor_ms = fmax(c.bw_floor_ms, c.compute_floor_ms);
    }
    c.m = xmalloc(nm * sizeof *c.m);
    for (int i = 0; i < n; i++) {
        c.nomem |= res[i].status == MTGRAD_E_NOMEM;
        if (i == 0) continue;
        if (!c.interleaved) res[i].bw_floor_ms = c.bw_floor_ms;
        c.m[c.n_methods++] = res[i];
    }
    free(mes);
    free(res);
#ifdef BENCH_HAVE_CBLAS
    if (o->blas && k * d <= INT32_MAX && d <= INT32_MAX)
        c.ssyrk_ms = 1e3 * time_ssyrk(G, k, d, t, o->reps);
#endif
    free(dir);
    free(losses);
    return c;
}

/* ------------------------------------------------------------------ output */

static double gbs(int64_t k, int64_t d, double ms)
{
    return 4.0 * (double)k * (double)d / (ms * 1e6);
}

static void print_row(const config_result *c, const char *what, double solve_us, double ms,
                      double floor_ms, double xblas, const char *note)
{
    char su[32] = "-", xb[32] = "-";
    if (solve_us == solve_us) snprintf(su, sizeof su, "%.1f", solve_us);
    if (xblas == xblas) snprintf(xb, sizeof xb, "%.2f", xblas);
    printf("%4lld %8.0e %3d  %-14s %10s %9.3f %7.1f %7.2f %9s %s\n", (long long)c->k, (double)c->d,
           c->threads, what, su, ms, gbs(c->k, c->d, ms), ms / floor_ms, xb, note);
}

static void print_table(const config_result *cs, int n, const double *bw, const double *peak,
                        const double *speak, const bench_opts *o)
{
    printf("read bandwidth (%zu MiB streaming read):", BW_BYTES >> 20);
    for (int i = 0; i < o->nt; i++)
        printf("  %d thread%s %.1f GB/s", o->threads[i], o->threads[i] > 1 ? "s" : "", bw[i]);
    if (peak[0] == peak[0]) {
        printf("\nf64 dgemm peak (compute floor):");
        for (int i = 0; i < o->nt; i++) printf("  %dt %.1f GFLOP/s", o->threads[i], peak[i]);
        printf("   [f32 sgemm:");
        for (int i = 0; i < o->nt; i++) printf(" %dt %.1f", o->threads[i], speak[i]);
        printf("]\n");
    } else {
        printf("\nno dgemm peak (--no-blas or no OpenBLAS): no compute floor\n");
    }
    printf("floor = max(4kd bytes / bandwidth, k(k+1)d flops / f64 peak) at the same thread "
           "count\n(methods without a Gram: the bandwidth term alone); where 4kd >= %zu MiB the\n"
           "bandwidth is re-measured by a %zu MiB read before every timed call (each row against\n"
           "the reads between its own calls); a smaller G stays in cache between the calls and\n"
           "may read faster than the floor\n\n",
           (size_t)INTERLEAVE_BYTES >> 20, BW_BYTES >> 20);
    printf("%4s %8s %3s  %-14s %10s %9s %7s %7s %9s\n", "k", "d", "thr", "what", "solve_us", "ms",
           "GB/s", "xfloor", "xOpenBLAS");
    for (int i = 0; i < n; i++) {
        const config_result *c = &cs[i];
        char note[64];
        snprintf(note, sizeof note, "(floor %.3f ms: %s)", c->floor_ms,
                 c->compute_floor_ms > c->bw_floor_ms ? "compute" : "bandwidth");
        print_row(c, "gram", NAN, c->gram_ms, c->floor_ms, c->ssyrk_ms / c->gram_ms, note);
        if (c->ssyrk_ms == c->ssyrk_ms)
            print_row(c, "ssyrk(OpenBLAS)", NAN, c->ssyrk_ms, c->floor_ms, NAN, "");
        print_row(c, "combine", NAN, c->combine_ms, c->bw_floor_ms, NAN, "(xfloor: bandwidth)");
        for (int j = 0; j < c->n_methods; j++) {
            const method_result *m = &c->m[j];
            print_row(c, m->name, m->solve_us, m->e2e_ms, method_floor(c, m), NAN,
                      m->status == MTGRAD_OK ? "" : mtgrad_status_str(m->status));
        }
    }
    /* thread scaling: same k, d at the first and every other thread count */
    if (o->nt > 1) {
        printf("\n%4s %8s  %-10s %s\n", "k", "d", "what", "speed-up vs the first thread count");
        for (int i = 0; i < n; i++) {
            if (cs[i].threads != o->threads[0]) continue;
            for (int j = 0; j < n; j++) {
                if (j == i || cs[j].k != cs[i].k || cs[j].d != cs[i].d) continue;
                printf("%4lld %8.0e  gram       %dt/%dt %.2fx   combine %.2fx\n",
                       (long long)cs[i].k, (double)cs[i].d, cs[j].threads, cs[i].threads,
                       cs[i].gram_ms / cs[j].gram_ms, cs[i].combine_ms / cs[j].combine_ms);
            }
        }
    }
}

static cJSON *num_or_null(double x) { return x == x ? cJSON_CreateNumber(x) : cJSON_CreateNull(); }

static int print_json(const config_result *cs, int n, const double *bw, const double *peak,
                      const double *speak, const bench_opts *o)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", mtgrad_version_string());
    cJSON_AddNumberToObject(root, "reps", o->reps);
    cJSON_AddStringToObject(
        root, "floor_rule",
        "max(4*k*d bytes / read bandwidth, k*(k+1)*d flops / f64 dgemm peak), same threads; "
        "methods without a Gram (gram: false): the bandwidth term alone");
    cJSON *floors = cJSON_AddArrayToObject(root, "floors");
    for (int i = 0; i < o->nt; i++) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddNumberToObject(f, "threads", o->threads[i]);
        cJSON_AddNumberToObject(f, "read_gbs", bw[i]);
        mtgrad_json_add(f, "dgemm_gflops", num_or_null(peak[i]));
        mtgrad_json_add(f, "sgemm_gflops", num_or_null(speak[i]));
        mtgrad_json_push(floors, f);
    }
    cJSON *res = cJSON_AddArrayToObject(root, "results");
    for (int i = 0; i < n; i++) {
        const config_result *c = &cs[i];
        cJSON *r = cJSON_CreateObject(), *ms = cJSON_CreateObject();
        cJSON_AddNumberToObject(r, "k", (double)c->k);
        cJSON_AddNumberToObject(r, "d", (double)c->d);
        cJSON_AddNumberToObject(r, "threads", c->threads);
        cJSON_AddNumberToObject(r, "floor_ms", c->floor_ms);
        cJSON_AddBoolToObject(r, "floor_interleaved", c->interleaved);
        cJSON_AddNumberToObject(r, "bandwidth_floor_ms", c->bw_floor_ms);
        cJSON_AddNumberToObject(r, "compute_floor_ms", c->compute_floor_ms);
        mtgrad_json_add(r, "gram_ms", num_or_null(c->gram_ms));
        mtgrad_json_add(r, "gram_xfloor", num_or_null(c->gram_ms / c->floor_ms));
        mtgrad_json_add(r, "combine_ms", num_or_null(c->combine_ms));
        mtgrad_json_add(r, "combine_xfloor", num_or_null(c->combine_ms / c->bw_floor_ms));
        mtgrad_json_add(r, "ssyrk_ms", num_or_null(c->ssyrk_ms));
        mtgrad_json_add(r, "x_openblas", num_or_null(c->ssyrk_ms / c->gram_ms));
        mtgrad_json_add(r, "gram_trace", num_or_null(c->trace));
        for (int j = 0; j < c->n_methods; j++) {
            const method_result *m = &c->m[j];
            cJSON *mo = cJSON_CreateObject();
            mtgrad_json_add(mo, "e2e_ms", num_or_null(m->e2e_ms));
            mtgrad_json_add(mo, "floor_ms", num_or_null(method_floor(c, m)));
            mtgrad_json_add(mo, "bandwidth_floor_ms", num_or_null(m->bw_floor_ms));
            cJSON_AddBoolToObject(mo, "gram", m->gram);
            mtgrad_json_add(mo, "xfloor", num_or_null(m->e2e_ms / method_floor(c, m)));
            mtgrad_json_add(mo, "gram_ms", num_or_null(m->gram_ms));
            mtgrad_json_add(mo, "solve_us", num_or_null(m->solve_us));
            mtgrad_json_add(mo, "combine_ms", num_or_null(m->combine_ms));
            cJSON_AddStringToObject(mo, "status", mtgrad_status_str(m->status));
            mtgrad_json_add(ms, m->name, mo);
        }
        mtgrad_json_add(r, "methods", ms);
        mtgrad_json_push(res, r);
    }
    char *s = mtgrad_json_print(root);
    cJSON_Delete(root);
    if (!s) {
        fprintf(stderr, "mtgrad bench: out of memory\n");
        return 1;
    }
    puts(s);
    cJSON_free(s);
    return 0;
}

/* ------------------------------------------------------------------ main */

int mtgrad_cmd_bench(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) /* the training-step bench has its own options */
        if (strcmp(argv[i], "--train") == 0) return mtgrad_cmd_bench_train(argc, argv);
    bench_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc) return rc == 1 ? 0 : rc;
    double bw[MAX_LIST], peak[MAX_LIST], speak[MAX_LIST];
    int floor_reps = o.reps < 9 ? o.reps : 9; /* the floors need no more: 512 MiB per read */
    read_probe probe;
    probe_init(&probe);
    for (int i = 0; i < o.nt; i++) {
        bw[i] = read_bandwidth(&probe, o.threads[i], floor_reps, &probe.streams[i]);
        peak[i] = speak[i] = NAN;
#ifdef BENCH_HAVE_CBLAS
        if (o.blas)
            peak[i] = gemm_peak(o.threads[i], floor_reps, 1),
            speak[i] = gemm_peak(o.threads[i], floor_reps, 0);
#endif
        if (!o.json && peak[i] == peak[i])
            fprintf(stderr, "mtgrad bench: %d thread(s): read %.1f GB/s, dgemm %.1f GFLOP/s\n",
                    o.threads[i], bw[i], peak[i]);
        else if (!o.json)
            fprintf(stderr, "mtgrad bench: %d thread(s): read %.1f GB/s\n", o.threads[i], bw[i]);
    }
    int64_t kmax = 0, dmax = 0;
    for (int i = 0; i < o.nk; i++) kmax = o.ks[i] > kmax ? o.ks[i] : kmax;
    for (int i = 0; i < o.nd; i++) dmax = o.ds[i] > dmax ? o.ds[i] : dmax;
    float *G = xmalloc((size_t)kmax * (size_t)dmax * sizeof *G);
    int n = 0, nomem = 0;
    config_result *cs = xmalloc((size_t)(o.nk * o.nd * o.nt) * sizeof *cs);
    for (int ki = 0; ki < o.nk; ki++)
        for (int di = 0; di < o.nd; di++) {
            int64_t k = o.ks[ki], d = o.ds[di];
            fill_G(G, k, d, 12345u + (uint64_t)k);
            double trace = NAN, *M = xmalloc((size_t)(k * k) * sizeof *M);
            mtgrad_status gs = mtgrad_gram_f32(G, k, d, d, M);
            if (gs == MTGRAD_OK) {
                trace = 0;
                for (int64_t i = 0; i < k; i++) trace += M[i * k + i];
            }
            nomem |= gs == MTGRAD_E_NOMEM;
            free(M);
            for (int ti = 0; ti < o.nt; ti++) {
                if (!o.json)
                    fprintf(stderr, "mtgrad bench: k=%lld d=%lld threads=%d\n", (long long)k,
                            (long long)d, o.threads[ti]);
                double pk = peak[ti] == peak[ti] ? peak[ti] : 0;
                cs[n] = run_config(&o, G, k, d, o.threads[ti], bw[ti], pk, &probe,
                                   probe.streams[ti]);
                nomem |= cs[n].nomem;
                cs[n++].trace = trace;
            }
        }
    free(G);
    free(probe.buf);
    rc = o.json ? print_json(cs, n, bw, peak, speak, &o)
                : (print_table(cs, n, bw, peak, speak, &o), 0);
    if (nomem) { /* the rows that lack a result say which; the run as a whole failed */
        fprintf(stderr, "mtgrad bench: out of memory: results incomplete\n");
        rc = 1;
    }
    for (int i = 0; i < n; i++) free(cs[i].m);
    free(cs);
    return rc;
}
