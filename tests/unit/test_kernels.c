/* Kernels against their plain references: Gram and combine (f32/f64, strided, odd sizes), every
 * ISA path (scalar, AVX2, AVX-512 where the CPU has them) bit for bit against the portable path,
 * thread-count independence, the canonical summation order of the Gram against an independent
 * re-implementation, the vec.h helpers, the public wrappers' statuses, and the fast k x k
 * solvers (factor-updating active-set QP and NNLS, QL eigensolver) against their reference
 * versions. */
#include "harness.h"
#include "internal.h"
#include "nnls.h"
#include "qp.h"
#include "vec.h"

#include <stdlib.h>
#include <string.h>

static const mtgradi_isa isas[] = {MTGRADI_ISA_SCALAR, MTGRADI_ISA_AVX2, MTGRADI_ISA_AVX512};
#define N_ISAS 3

static float *random_f32(mtgradi_rng *r, int64_t n)
{
    float *x = malloc((size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++) x[i] = (float)mtgradi_rng_normal(r);
    return x;
}

/* |M - Mr| <= rtol * sqrt(Mr_ii Mr_jj) entry by entry: relative to the Cauchy–Schwarz scale of
 * each entry (an off-diagonal can be ~0 while its terms are not). */
static void check_gram_rel(const double *M, const double *Mr, int64_t k, double rtol,
                           const char *what)
{
    double worst = 0;
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) {
            double scale = sqrt(Mr[i * k + i] * Mr[j * k + j]);
            double e = fabs(M[i * k + j] - Mr[i * k + j]) / (scale > 0 ? scale : 1);
            if (!(e <= worst)) worst = e;
        }
    CHECK(worst <= rtol, "%s: relative error %.3g > %.3g (k=%lld)", what, worst, rtol,
          (long long)k);
}

/* The canonical order written out independently (vec.h, gram.c): ranges of 64-aligned starts,
 * blocks of block_cols(k) columns, 8 lanes per block, the lane tree, block then range order. */
static int64_t canon_block_cols(int64_t k)
{
    int64_t b = (int64_t)65536 / k / 64 * 64;
    return b < 256 ? 256 : b > 16384 ? 16384 : b;
}

static double canon_entry(const float *G, int64_t d, int64_t ld, int64_t k, int64_t i, int64_t j)
{
    double total = 0;
    for (int s = 0; s < MTGRADI_GRAM_SPLITS; s++) {
        int64_t c0 = (d / 64) * s / MTGRADI_GRAM_SPLITS * 64;
        int64_t c1 =
            s + 1 == MTGRADI_GRAM_SPLITS ? d : (d / 64) * (s + 1) / MTGRADI_GRAM_SPLITS * 64;
        double range = 0;
        for (int64_t b = c0; b < c1; b += canon_block_cols(k)) {
            int64_t e = b + canon_block_cols(k) < c1 ? b + canon_block_cols(k) : c1;
            double l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            for (int64_t c = b; c < e; c++)
                l[(c - b) % 8] += (double)G[i * ld + c] * (double)G[j * ld + c];
            range += ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
        }
        total += range;
    }
    return total;
}

static void test_gram(mtgradi_rng *r, int64_t k, int64_t d, int64_t ld)
{
    float *G = random_f32(r, k * ld);
    double *Gd = malloc((size_t)(k * ld) * sizeof *Gd);
    for (int64_t i = 0; i < k * ld; i++) Gd[i] = (double)G[i] * 1.5;
    size_t kk = (size_t)(k * k) * sizeof(double);
    double *M = malloc(kk), *Mr = malloc(kk), *M2 = malloc(kk);
    double *part = malloc(mtgradi_gram_work_size(k) * sizeof *part);
    mtgradi_mat m32 = {G, NULL, k, d, ld}, m64 = {NULL, Gd, k, d, ld};

    mtgradi_gram_ref(&m32, Mr);
    mtgradi_gram_isa(&m32, M, part, 1, MTGRADI_ISA_SCALAR);
    check_gram_rel(M, Mr, k, 1e-12, "f32 gram vs ref");
    int canon_ok = 1; /* the portable path is the canonical order itself */
    for (int64_t i = 0; i < k && canon_ok; i++)
        for (int64_t j = i; j < k; j++)
            if (M[i * k + j] != canon_entry(G, d, ld, k, i, j) || M[j * k + i] != M[i * k + j])
                canon_ok = 0;
    CHECK(canon_ok, "scalar gram follows the canonical order bit for bit (k=%lld d=%lld)",
          (long long)k, (long long)d);
    for (int t = 0; t < N_ISAS; t++)
        for (int th = 1; th <= 3; th++) {
            mtgradi_gram_isa(&m32, M2, part, th, isas[t]);
            CHECK(memcmp(M, M2, kk) == 0,
                  "gram isa %d threads %d differs from scalar 1 thread (k=%lld d=%lld ld=%lld)",
                  (int)isas[t], th, (long long)k, (long long)d, (long long)ld);
        }
    mtgradi_gram(&m32, M2, part, 2);
    CHECK(memcmp(M, M2, kk) == 0, "mtgradi_gram (best isa) == scalar");

    mtgradi_gram_ref(&m64, Mr);
    mtgradi_gram(&m64, M, part, 1);
    check_gram_rel(M, Mr, k, 1e-12, "f64 gram vs ref");
    mtgradi_gram(&m64, M2, part, 2);
    CHECK(memcmp(M, M2, kk) == 0, "f64 gram differs between 1 and 2 threads (k=%lld d=%lld)",
          (long long)k, (long long)d);

    CHECK(mtgrad_gram_f32(G, k, d, ld, M2) == MTGRAD_OK, "public gram");
    mtgradi_gram_ref(&m32, Mr);
    check_gram_rel(M2, Mr, k, 1e-12, "public f32 gram vs ref");
    free(G), free(Gd), free(M), free(Mr), free(M2), free(part);
}

/* Non-finite input reaches M through every path. */
static void test_gram_nonfinite(mtgradi_rng *r)
{
    int64_t k = 5, d = 1000;
    float *G = random_f32(r, k * d);
    double M[25], part[MTGRADI_GRAM_SPLITS * 15];
    mtgradi_mat m = {G, NULL, k, d, d};
    G[3 * d + 777] = NAN;
    for (int t = 0; t < N_ISAS; t++) {
        mtgradi_gram_isa(&m, M, part, 2, isas[t]);
        CHECK(isnan(M[3 * k + 3]) && isnan(M[0 * k + 3]) && !isnan(M[0]), "NaN row 3 (isa %d)",
              (int)isas[t]);
    }
    free(G);
}

static void test_combine(mtgradi_rng *r, int64_t k, int64_t d, int64_t ld)
{
    float *G = random_f32(r, k * ld);
    double *Gd = malloc((size_t)(k * ld) * sizeof *Gd);
    for (int64_t i = 0; i < k * ld; i++) Gd[i] = (double)G[i];
    double *w = malloc((size_t)k * sizeof *w);
    for (int64_t i = 0; i < k; i++) w[i] = mtgradi_rng_normal(r);
    float *o1 = malloc((size_t)d * sizeof *o1), *o2 = malloc((size_t)d * sizeof *o2);
    double *p1 = malloc((size_t)d * sizeof *p1), *p2 = malloc((size_t)d * sizeof *p2);
    mtgradi_mat m = {G, NULL, k, d, ld}, md = {NULL, Gd, k, d, ld};
    mtgradi_out a = {o1, NULL, d}, b = {o2, NULL, d}, ad = {NULL, p1, d}, bd = {NULL, p2, d};
    mtgradi_combine_ref(&m, w, &b);
    for (int t = 0; t < N_ISAS; t++)
        for (int th = 1; th <= 3; th++) {
            memset(o1, 0xff, (size_t)d * sizeof *o1);
            CHECK(mtgradi_combine_isa(&m, w, &a, th, isas[t]) == 1, "finite");
            CHECK(memcmp(o1, o2, (size_t)d * sizeof *o1) == 0,
                  "combine == ref bit for bit (isa %d, %d threads, k=%lld d=%lld ld=%lld)",
                  (int)isas[t], th, (long long)k, (long long)d, (long long)ld);
        }
    mtgradi_combine_ref(&md, w, &bd);
    CHECK(mtgradi_combine(&md, w, &ad, 2) == 1, "finite f64");
    CHECK(memcmp(p1, p2, (size_t)d * sizeof *p1) == 0,
          "f64 combine == ref bit for bit (k=%lld d=%lld)", (long long)k, (long long)d);
    G[(k - 1) * ld + d - 1] =
        NAN; /* the very last element: in the leftover columns of every path */
    for (int t = 0; t < N_ISAS; t++)
        CHECK(mtgradi_combine_isa(&m, w, &a, 2, isas[t]) == 0, "NaN detected (isa %d)",
              (int)isas[t]);
    G[(k - 1) * ld + d - 1] = 1;
    G[d / 2] = INFINITY; /* inside the vector part when d is large enough */
    for (int t = 0; t < N_ISAS; t++)
        CHECK(mtgradi_combine_isa(&m, w, &a, 1, isas[t]) == 0, "Inf detected (isa %d)",
              (int)isas[t]);
    G[d / 2] = 3e38f; /* finite input whose sum overflows float: the output is not finite */
    w[0] = 1e10;
    for (int t = 0; t < N_ISAS; t++)
        CHECK(mtgradi_combine_isa(&m, w, &a, 1, isas[t]) == 0, "overflow detected (isa %d)",
              (int)isas[t]);
    free(G), free(Gd), free(w), free(o1), free(o2), free(p1), free(p2);
}

/* A zero-weighted -0 product must give +0 like the reference (s starts at +0). */
static void test_combine_signed_zero(void)
{
    float G[2 * 40];
    double w[2] = {-1.0, 0.0};
    float o1[40], o2[40];
    for (int i = 0; i < 80; i++) G[i] = 0.0f;
    mtgradi_mat m = {G, NULL, 2, 40, 40};
    mtgradi_out a = {o1, NULL, 40}, b = {o2, NULL, 40};
    mtgradi_combine_ref(&m, w, &b);
    for (int t = 0; t < N_ISAS; t++) {
        mtgradi_combine_isa(&m, w, &a, 1, isas[t]);
        CHECK(memcmp(o1, o2, sizeof o1) == 0, "signed zeros as the reference (isa %d)",
              (int)isas[t]);
    }
}

static void test_vec(mtgradi_rng *r)
{
    for (int64_t n = 0; n < 40; n += 3) {
        float *x = random_f32(r, n + 1), *y = random_f32(r, n + 1), *z = random_f32(r, n + 1);
        double dd = 0, l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        float df = 0;
        for (int64_t i = 0; i < n; i++) {
            l[i % 8] += (double)x[i] * (double)y[i];
            dd += (double)x[i] * (double)y[i];
            df += x[i] * y[i];
        }
        CHECK(mtgrad_vec_dot_f32_f64acc(x, y, n) == mtgradi_lanes_sum(l),
              "dot_f32_f64acc order (n=%lld)", (long long)n);
        CHECK_CLOSE(mtgrad_vec_dot_f32_f64acc(x, y, n), dd, 1e-14, 1e-14);
        CHECK_CLOSE(mtgrad_vec_dot_f32(x, y, n), df, 1e-5, 1e-5 * (double)n);
        float *yc = malloc((size_t)(n + 1) * sizeof *yc);
        memcpy(yc, y, (size_t)(n + 1) * sizeof *yc);
        mtgrad_vec_axpy_f32(n, 0.5f, x, yc);
        int ok = 1;
        for (int64_t i = 0; i < n; i++)
            ok &= fabsf(yc[i] - (y[i] + 0.5f * x[i])) <= 1e-6f * (1 + fabsf(yc[i]));
        ok &= yc[n] == y[n]; /* nothing written past n */
        CHECK(ok, "axpy (n=%lld)", (long long)n);
        memcpy(yc, z, (size_t)(n + 1) * sizeof *yc);
        mtgrad_vec_scale_f32(n, -2.0f, yc);
        ok = 1;
        for (int64_t i = 0; i < n; i++) ok &= yc[i] == -2.0f * z[i];
        ok &= yc[n] == z[n];
        CHECK(ok, "scale (n=%lld)", (long long)n);
        free(x), free(y), free(z), free(yc);
    }
    CHECK(mtgradi_isa_clamp(MTGRADI_ISA_AVX512) == mtgradi_isa_best(), "clamp to the best");
    CHECK(mtgradi_isa_clamp(MTGRADI_ISA_SCALAR) == MTGRADI_ISA_SCALAR, "scalar always");
}

/* ------------------------------------------------------------------ k x k solvers vs reference */

static double qp_value(const double *H, const double *c, int64_t k, const double *w)
{
    return 0.5 * mtgradi_quad(H, k, w) + (c ? mtgradi_dot(c, w, k) : 0);
}

/* H = G Gᵀ for G (k x d) with a shared component (conflicts and agreements), rows scaled. */
static void make_problem(mtgradi_rng *r, int64_t k, int64_t d, double spread, double *H)
{
    double *G = malloc((size_t)(k * d) * sizeof *G);
    for (int64_t j = 0; j < d; j++) {
        double common = mtgradi_rng_normal(r);
        for (int64_t i = 0; i < k; i++)
            G[i * d + j] = (i % 3 == 2 ? -0.4 : 0.4) * common + mtgradi_rng_normal(r);
    }
    for (int64_t i = 0; i < k; i++) {
        double sc = pow(spread, (double)i / (double)(k > 1 ? k - 1 : 1));
        for (int64_t j = 0; j < d; j++) G[i * d + j] *= sc;
    }
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) H[i * k + j] = mtgradi_dot(G + i * d, G + j * d, d);
    free(G);
}

static void test_qp_fast_vs_ref(mtgradi_rng *r)
{
    const int64_t ks[] = {2, 3, 5, 10, 20, 40};
    for (size_t a = 0; a < sizeof ks / sizeof ks[0]; a++)
        for (int variant = 0; variant < 6; variant++) {
            int64_t k = ks[a];
            int64_t d = variant < 3 ? k + 7 : (k + 1) / 2; /* full rank, then k > d */
            int linear = variant % 3 == 1, spread = variant % 3 == 2;
            double *H = malloc((size_t)(k * k) * sizeof *H), *c = malloc((size_t)k * sizeof *c);
            double *w = malloc((size_t)k * sizeof *w), *wr = malloc((size_t)k * sizeof *wr);
            double *w0 = malloc((size_t)k * sizeof *w0), *ww = malloc((size_t)k * sizeof *ww);
            double *g = malloc((size_t)k * sizeof *g);
            double *work = malloc(mtgradi_qp_simplex_work_size(k) * sizeof *work);
            make_problem(r, k, d, spread ? 1e3 : 1.0, H);
            for (int64_t i = 0; i < k; i++) c[i] = linear ? 3 * mtgradi_rng_normal(r) : 0;
            const double *cc = linear ? c : NULL;
            mtgrad_status s = mtgradi_qp_simplex(H, cc, k, w, NULL, work);
            mtgrad_status sr = mtgradi_qp_simplex_ref(H, cc, k, wr, NULL, work);
            CHECK(s == sr, "qp k=%lld variant %d: status %d, reference %d", (long long)k, variant,
                  (int)s, (int)sr);
            double hmax = 0, cmax = 0, sum = 0, wmin = 0;
            for (int64_t i = 0; i < k * k; i++) hmax = fmax(hmax, fabs(H[i]));
            for (int64_t i = 0; i < k; i++)
                cmax = fmax(cmax, fabs(c[i])), sum += w[i], wmin = fmin(wmin, w[i]);
            CHECK(fabs(sum - 1) <= 1e-14 && wmin >= 0, "qp k=%lld: w on the simplex", (long long)k);
            double f = qp_value(H, cc, k, w), fr = qp_value(H, cc, k, wr);
            CHECK(fabs(f - fr) <= 1e-12 * (hmax + cmax),
                  "qp k=%lld variant %d: value %.17g, reference %.17g", (long long)k, variant, f,
                  fr);
            mtgradi_matvec(H, k, w, g);
            for (int64_t i = 0; i < k; i++) g[i] += c[i];
            CHECK(mtgradi_qp_kkt_residual(w, g, k, hmax + cmax) <= 1e-10,
                  "qp k=%lld variant %d: KKT", (long long)k, variant);
            if (d > k) /* strictly convex: a unique optimum, whatever the start */
                CHECK_ARRAY_CLOSE(w, wr, k, 0, 1e-9);
            double s0 = 0; /* warm start from a random interior point */
            for (int64_t i = 0; i < k; i++) w0[i] = mtgradi_rng_uniform(r) + 0.01, s0 += w0[i];
            for (int64_t i = 0; i < k; i++) w0[i] /= s0;
            s = mtgradi_qp_simplex_from(H, cc, k, w0, ww, NULL, work);
            CHECK(s == MTGRAD_OK, "qp_from k=%lld: status %d", (long long)k, (int)s);
            CHECK(fabs(qp_value(H, cc, k, ww) - fr) <= 1e-12 * (hmax + cmax),
                  "qp_from k=%lld: value", (long long)k);
            if (d > k) CHECK_ARRAY_CLOSE(ww, wr, k, 0, 1e-9);
            free(H), free(c), free(w), free(wr), free(w0), free(ww), free(g), free(work);
        }
}

static void test_nnls_fast_vs_ref(mtgradi_rng *r)
{
    const int64_t ks[] = {2, 3, 7, 10, 25, 40};
    for (size_t a = 0; a < sizeof ks / sizeof ks[0]; a++)
        for (int rep = 0; rep < 3; rep++) {
            int64_t k = ks[a], d = rep == 2 ? (k + 1) / 2 : k + 5;
            double *M = malloc((size_t)(k * k) * sizeof *M),
                   *Q = malloc((size_t)(k * k) * sizeof *Q);
            double *u = malloc((size_t)k * sizeof *u), *v = malloc((size_t)k * sizeof *v);
            double *vr = malloc((size_t)k * sizeof *vr);
            double *work = malloc(mtgradi_cone_work_size(k) * sizeof *work);
            make_problem(r, k, d, rep == 1 ? 1e2 : 1.0, M);
            mtgradi_cone_gram(M, k, 1e-4, 1e-4, Q);
            for (int64_t t = 0; t<k; t += k> 10 ? 7 : 1) { /* UPGrad's problems: u = e_t / k */
                for (int64_t i = 0; i < k; i++) u[i] = i == t ? 1.0 / (double)k : 0;
                int rc = mtgradi_cone_project(Q, u, k, v, work);
                double *c = work, *x = work + k; /* the reference on the same NNLS */
                mtgradi_matvec(Q, k, u, vr);
                for (int64_t i = 0; i < k; i++) c[i] = vr[i];
                double *ws = malloc(mtgradi_nnls_work_size(k) * sizeof *ws);
                int rcr = mtgradi_nnls_gram_ref(Q, c, k, x, ws);
                for (int64_t i = 0; i < k; i++) vr[i] = x[i] + u[i];
                free(ws);
                CHECK(rc == rcr, "nnls k=%lld: rc %d, reference %d", (long long)k, rc, rcr);
                CHECK_ARRAY_CLOSE(v, vr, k, 1e-9, 1e-12);
            }
            free(M), free(Q), free(u), free(v), free(vr), free(work);
        }
}

/* QL eigensolver against cyclic Jacobi (the reference): the same spectrum, A V = V Λ, V
 * orthonormal, the same eigenvectors where eigenvalues are separated; ill-conditioned spectra
 * are handed to Jacobi itself (bit for bit). */
static void test_eigh_vs_jacobi(mtgradi_rng *r)
{
    const int64_t ns[] = {1, 2, 3, 5, 10, 17, 40};
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
        for (int kind = 0; kind < 3; kind++) {
            int64_t n = ns[a], nn = n * n;
            double *B = malloc((size_t)nn * sizeof *B), *A = malloc((size_t)nn * sizeof *A);
            double *V = malloc((size_t)nn * sizeof *V), *Vj = malloc((size_t)nn * sizeof *Vj);
            double *lam = malloc((size_t)n * sizeof *lam), *lj = malloc((size_t)n * sizeof *lj);
            double *work = malloc((size_t)nn * sizeof *work);
            for (int64_t i = 0; i < nn; i++) B[i] = mtgradi_rng_normal(r);
            for (int64_t i = 0; i < n; i++) /* kind 0: SPD, 1: indefinite, 2: rank one (singular) */
                for (int64_t j = 0; j < n; j++) {
                    double s =
                        kind == 2 ? B[i] * B[j] : mtgradi_dot(B + i * n, B + j * n, n) / (double)n;
                    if (kind == 1) s = 0.5 * (B[i * n + j] + B[j * n + i]);
                    A[i * n + j] = s + (kind == 0 && i == j ? 1.0 : 0.0);
                }
            int rc = mtgradi_eigh(A, n, lam, V, work),
                rcj = mtgradi_eigh_jacobi(A, n, lj, Vj, work);
            CHECK(rc == 0 && rcj == 0, "eigh n=%lld kind %d: rc %d, jacobi %d", (long long)n, kind,
                  rc, rcj);
            double amax = 0, res = 0, orth = 0, lmin = INFINITY;
            for (int64_t i = 0; i < nn; i++) amax = fmax(amax, fabs(A[i]));
            for (int64_t i = 0; i < n; i++) lmin = fmin(lmin, fabs(lj[i]));
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < n; j++) {
                    double av = 0, vv = 0;
                    for (int64_t q = 0; q < n; q++)
                        av += A[i * n + q] * V[q * n + j], vv += V[q * n + i] * V[q * n + j];
                    res = fmax(res, fabs(av - V[i * n + j] * lam[j]));
                    orth = fmax(orth, fabs(vv - (i == j)));
                }
            CHECK(res <= 1e-12 * amax * (double)n && orth <= 1e-12 * (double)n,
                  "eigh n=%lld kind %d: residual %.3g, orthogonality %.3g", (long long)n, kind, res,
                  orth);
            CHECK_ARRAY_CLOSE(lam, lj, n, 0, 1e-13 * amax * (double)n);
            if (lmin < 1e-4 * fabs(lj[n - 1]) || lmin < 1e-4 * fabs(lj[0])) {
                /* handed to Jacobi, or first to the rank-deficient PSD path when that applies
                 * (test_linalg compares that path with Jacobi) */
                if (mtgradi_eigh_lowrank(A, n, lj, Vj, work) != 0)
                    (void)mtgradi_eigh_jacobi(A, n, lj, Vj, work);
                CHECK(memcmp(lam, lj, (size_t)n * sizeof *lam) == 0 &&
                          memcmp(V, Vj, (size_t)nn * sizeof *V) == 0,
                      "eigh n=%lld kind %d: ill-conditioned spectrum is the low-rank path's or "
                      "Jacobi's", (long long)n, kind);
            } else {
                for (int64_t j = 0; j < n;
                     j++) { /* separated eigenvalues: the same vectors up to sign */
                    double gap = INFINITY, dotv = 0;
                    for (int64_t i = 0; i < n; i++)
                        if (i != j) gap = fmin(gap, fabs(lj[i] - lj[j]));
                    if (!(gap > 1e-6 * amax)) continue;
                    for (int64_t q = 0; q < n; q++) dotv += V[q * n + j] * Vj[q * n + j];
                    CHECK(fabs(fabs(dotv) - 1) <= 1e-9,
                          "eigh n=%lld: eigenvector %lld differs (|dot| %.17g)", (long long)n,
                          (long long)j, fabs(dotv));
                }
            }
            free(B), free(A), free(V), free(Vj), free(lam), free(lj), free(work);
        }
}

/* Long outputs take the streaming-store path with a short unaligned head tile: misalign the
 * output by 0..7 floats and compare with the reference bit for bit. */
static void test_combine_streaming(mtgradi_rng *r)
{
    int64_t k = 2, d = ((int64_t)1 << 21) + 37;
    float *G = random_f32(r, k * d), *buf = malloc((size_t)(d + 8) * sizeof *buf);
    float *ref = malloc((size_t)d * sizeof *ref);
    double w[2] = {0.75, -1.25};
    mtgradi_mat m = {G, NULL, k, d, d};
    mtgradi_out b = {ref, NULL, d};
    mtgradi_combine_ref(&m, w, &b);
    for (int off = 0; off < 8; off += 3)
        for (int t = 0; t < N_ISAS; t++) {
            mtgradi_out a = {buf + off, NULL, d};
            CHECK(mtgradi_combine_isa(&m, w, &a, 2, isas[t]) == 1, "finite");
            CHECK(memcmp(buf + off, ref, (size_t)d * sizeof *ref) == 0,
                  "streaming combine == ref (offset %d, isa %d)", off, (int)isas[t]);
        }
    free(G), free(buf), free(ref);
}

static void test_public_statuses(void)
{
    float G[6] = {1, 2, 3, 4, 5, 6};
    double M[4], w[2] = {1, 1};
    float out[3];
    CHECK(mtgrad_gram_f32(NULL, 2, 3, 3, M) == MTGRAD_E_INVAL, "NULL G");
    CHECK(mtgrad_gram_f32(G, 2, 3, 3, NULL) == MTGRAD_E_INVAL, "NULL M");
    CHECK(mtgrad_gram_f32(G, 0, 3, 3, M) == MTGRAD_E_SHAPE, "k=0");
    CHECK(mtgrad_gram_f32(G, 2, 0, 3, M) == MTGRAD_E_SHAPE, "d=0");
    CHECK(mtgrad_gram_f32(G, 2, 3, 2, M) == MTGRAD_E_SHAPE, "ldg<d");
    CHECK(mtgrad_gram_f32(G, 2, 3, 3, M) == MTGRAD_OK, "ok");
    CHECK(M[0] == 14 && M[1] == 32 && M[2] == 32 && M[3] == 77, "values %g %g %g", M[0], M[1],
          M[3]);
    G[4] = INFINITY;
    CHECK(mtgrad_gram_f32(G, 2, 3, 3, M) == MTGRAD_E_NONFINITE, "Inf");
    CHECK(mtgrad_combine_f32(G, 2, 3, 3, w, out) == MTGRAD_E_NONFINITE, "Inf in combine");
    G[4] = 5;
    CHECK(mtgrad_combine_f32(G, 2, 3, 3, w, out) == MTGRAD_OK, "combine ok");
    CHECK(out[0] == 5 && out[1] == 7 && out[2] == 9, "combine values");
    w[1] = NAN;
    CHECK(mtgrad_combine_f32(G, 2, 3, 3, w, out) == MTGRAD_E_NONFINITE, "NaN weight");
    CHECK(mtgrad_combine_f32(G, 2, 3, 3, NULL, out) == MTGRAD_E_INVAL, "NULL w");
}

int main(void)
{
    mtgradi_rng r;
    mtgradi_rng_seed(&r, 42);
    /* odd d (leftover chunks), ld > d, d below one chunk, ranges of unequal block counts, every
     * tile shape of both SIMD paths (k mod 5 and k mod 2 all occur, on and off the diagonal) */
    int64_t shapes[][3] = {{1, 1, 1},         {2, 7, 9},          {3, 100, 100},  {4, 64, 64},
                           {5, 1000, 1003},   {6, 1025, 1030},    {7, 333, 340},  {9, 2049, 2049},
                           {10, 4099, 4099},  {11, 7, 8},         {17, 300, 301}, {40, 2000, 2001},
                           {8, 515, 517},     {13, 1111, 1111},   {2, 70001, 70007},
                           {3, 100000, 100000},
                           /* the combine: several tiles and a partial one, rows past one group
                            * (a carry), on the parallel path (k·d >= 2^18) */
                           {11, 24583, 24590}, {40, 9000, 9001}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        test_gram(&r, shapes[s][0], shapes[s][1], shapes[s][2]);
        test_combine(&r, shapes[s][0], shapes[s][1], shapes[s][2]);
    }
    test_gram_nonfinite(&r);
    test_combine_signed_zero();
    test_combine_streaming(&r);
    test_vec(&r);
    test_public_statuses();
    test_qp_fast_vs_ref(&r);
    test_nnls_fast_vs_ref(&r);
    test_eigh_vs_jacobi(&r);
    printf("kernels tested on isa %d (0 scalar, 1 avx2, 2 avx512)\n", (int)mtgradi_isa_best());
    return harness_report();
}
