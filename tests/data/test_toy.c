/* test_toy.c — the CAGrad toy (src/data/toy.c): losses against a second, independently written
 * formula; gradients against central finite differences away from the kinks and against
 * autograd's rules at them; the landmarks (minimum of the mean loss, single-task minima, the
 * Pareto curve where the two gradients are opposite); the runner's Adam (first step in closed
 * form), trajectories, determinism, errors; and the qualitative facts of the papers: Adam on the
 * mean loss gets stuck from some CAGrad starts, MGDA and CAGrad (c = 0.5) reach the Pareto set
 * from all of them, CAGrad with c = 0 follows the mean. */
#include "harness.h"
#include "mtgrad_nn.h"

#include <math.h>
#include <string.h>

#define LOWER 0.000005

/* The toy written directly from benchmarks.md §3, losses only (setting 0). */
static void losses_direct(double x1, double x2, double out[2])
{
    double a1 = fabs(0.5 * (-x1 - 7) - tanh(-x2)), a2 = fabs(0.5 * (-x1 + 3) + tanh(-x2) + 2);
    double f1 = log(a1 > LOWER ? a1 : LOWER) + 6, f2 = log(a2 > LOWER ? a2 : LOWER) + 6;
    double g1 = (pow(-x1 + 7, 2) + 0.1 * pow(-x2 - 8, 2)) / 10 - 20;
    double g2 = (pow(-x1 - 7, 2) + 0.1 * pow(-x2 - 8, 2)) / 10 - 20;
    double c1 = fmax(tanh(0.5 * x2), 0), c2 = fmax(tanh(-0.5 * x2), 0);
    out[0] = c1 * f1 + c2 * g1;
    out[1] = c1 * f2 + c2 * g2;
}

/* Distance to the nearest kink: θ2 = 0 (the clamps of c1, c2) and u1 = 0, u2 = 0 (abs/log). */
static double kink_distance(double x1, double x2)
{
    double u1 = 0.5 * (-x1 - 7) - tanh(-x2), u2 = 0.5 * (-x1 + 3) + tanh(-x2) + 2;
    return fmin(fabs(x2), fmin(fabs(u1), fabs(u2)));
}

static void test_losses_and_gradients(void)
{
    int checked = 0;
    for (int setting = 0; setting <= 1; setting++) {
        double s1 = setting ? 0.1 : 1.0;
        for (double x1 = -10; x1 <= 10.01; x1 += 0.73) {
            for (double x2 = -10; x2 <= 10.01; x2 += 0.61) {
                double th[2] = {x1, x2}, L[2], G[4], ref[2];
                mtgrad_toy_eval(th, setting, L, G);
                losses_direct(x1, x2, ref);
                CHECK_CLOSE(L[0], s1 * ref[0], 1e-13, 1e-13);
                CHECK_CLOSE(L[1], ref[1], 1e-13, 1e-13);
                if (kink_distance(x1, x2) < 0.05) continue;
                for (int j = 0; j < 2; j++) {
                    double h = 1e-6, p[2] = {x1, x2}, m[2] = {x1, x2}, Lp[2], Lm[2];
                    p[j] += h;
                    m[j] -= h;
                    mtgrad_toy_eval(p, setting, Lp, NULL);
                    mtgrad_toy_eval(m, setting, Lm, NULL);
                    for (int i = 0; i < 2; i++) {
                        double fd = (Lp[i] - Lm[i]) / (2 * h);
                        CHECK(harness_close(G[i * 2 + j], fd, 1e-6, 1e-6),
                              "setting %d dL%d/dθ%d at (%g, %g): %.12g vs fd %.12g", setting,
                              i + 1, j + 1, x1, x2, G[i * 2 + j], fd);
                    }
                }
                checked++;
            }
        }
    }
    CHECK(checked > 1000, "finite differences at %d points", checked);
}

static void test_kinks(void)
{
    /* θ = (0, 0): c1 = c2 = 0 but both clamps pass their gradient (tanh = 0 >= 0), so
     * dL1/dθ2 = 0.5 f1 - 0.5 g1 with f1 = log 3.5 + 6, g1 = (49 + 6.4)/10 - 20. */
    double th[2] = {0, 0}, L[2], G[4];
    mtgrad_toy_eval(th, 0, L, G);
    double f1 = log(3.5) + 6, g1 = 55.4 / 10 - 20, f2 = log(3.5) + 6, g2 = g1;
    CHECK(L[0] == 0 && L[1] == 0, "losses 0 at the origin");
    CHECK(G[0] == 0 && G[2] == 0, "no θ1 gradient at the origin");
    CHECK_CLOSE(G[1], 0.5 * f1 - 0.5 * g1, 1e-14, 0);
    CHECK_CLOSE(G[3], 0.5 * f2 - 0.5 * g2, 1e-14, 0);

    /* On the log singularity of f1 (|u1| < LOWER) the clamp passes no gradient: only c1' f1
     * with f1 = log(LOWER) + 6 is left in dL1/dθ2, and dL1/dθ1 = 0. */
    double x2 = 1.0, x1 = 2 * tanh(x2) - 7; /* u1 = -0.5 x1 - 3.5 + tanh(x2) = 0 */
    double t[2] = {x1, x2};
    mtgrad_toy_eval(t, 0, L, G);
    double c1 = tanh(0.5), dc1 = 0.5 * (1 - c1 * c1);
    CHECK_CLOSE(L[0], c1 * (log(LOWER) + 6), 1e-12, 0);
    CHECK(G[0] == 0, "no gradient through the clamp: %g", G[0]);
    CHECK_CLOSE(G[1], dc1 * (log(LOWER) + 6), 1e-12, 0);

    /* just above LOWER the gradient flows again: |u1| = 1e-5, df1/du1 = sign(u1)/|u1| */
    double u = 1e-5;
    t[0] = 2 * (tanh(x2) - u) - 7; /* u1 = u */
    mtgrad_toy_eval(t, 0, L, G);
    CHECK_CLOSE(G[0], c1 * (-0.5) * (1 / u), 1e-6, 0);

    /* invalid input: NaNs, no crash */
    mtgrad_toy_eval(th, 7, L, G);
    CHECK(isnan(L[0]) && isnan(G[3]), "unknown setting gives NaN");
    mtgrad_toy_eval(NULL, 0, L, G);
    mtgrad_toy_eval(th, 0, NULL, G);
}

static void test_landmarks(void)
{
    double L[2], G[4], Lsum[2];
    /* minimum of the mean loss at (0, -8.3552): both partials of L1 + L2 vanish (θ2 to the
     * rounding of the landmark) */
    double m[2] = {0, -8.3552};
    mtgrad_toy_eval(m, 0, L, G);
    CHECK(fabs(G[0] + G[2]) < 1e-12, "d(L1+L2)/dθ1 = %g", G[0] + G[2]);
    CHECK(fabs(G[1] + G[3]) < 1e-5, "d(L1+L2)/dθ2 = %g", G[1] + G[3]);
    /* and it is a minimum: every neighbour has a larger mean loss */
    for (int a = 0; a < 8; a++) {
        double ang = a * 0.785398, n[2] = {0.05 * cos(ang), -8.3552 + 0.05 * sin(ang)};
        mtgrad_toy_eval(n, 0, Lsum, NULL);
        CHECK(Lsum[0] + Lsum[1] > L[0] + L[1], "neighbour %d of the L0 minimum", a);
    }
    /* below θ2 = 0 the c1 terms vanish: L_i = c2 g_i */
    double ref[2];
    losses_direct(0, -8.3552, ref);
    double c2 = tanh(0.5 * 8.3552), g = (49 + 0.1 * 0.3552 * 0.3552) / 10 - 20;
    CHECK_CLOSE(ref[0], c2 * g, 1e-14, 1e-14);

    /* task 1's minimum at (7, p(7)) with p(7) = -8.4345 (not -8.3552: the drawn segment is the
     * papers' approximation of the curve) */
    double p7 = mtgrad_toy_pareto_theta2(7);
    CHECK_CLOSE(p7, -8.4345, 0, 5e-5);
    double t1[2] = {7, p7};
    mtgrad_toy_eval(t1, 0, L, G);
    CHECK(fabs(G[0]) < 1e-12 && fabs(G[1]) < 1e-10, "∇L1 at (7, p(7)) = (%g, %g)", G[0], G[1]);
    double t1b[2] = {7, -8.3552};
    mtgrad_toy_eval(t1b, 0, L, G);
    CHECK(fabs(G[1]) > 1e-4, "∇L1 at (7, -8.3552) is not zero: %g", G[1]);
    double t2[2] = {-7, mtgrad_toy_pareto_theta2(-7)};
    mtgrad_toy_eval(t2, 0, L, G);
    CHECK(fabs(G[2]) < 1e-12 && fabs(G[3]) < 1e-10, "∇L2 at (-7, p(-7)) = (%g, %g)", G[2], G[3]);
    CHECK_CLOSE(mtgrad_toy_pareto_theta2(0), -8.3552, 0, 2e-4);

    /* on the curve the two gradients are opposite (Pareto-stationary), in both settings */
    for (int setting = 0; setting <= 1; setting++) {
        for (double x1 = -6.5; x1 <= 6.5; x1 += 0.5) {
            double t[2] = {x1, mtgrad_toy_pareto_theta2(x1)};
            mtgrad_toy_eval(t, setting, L, G);
            double cross = G[0] * G[3] - G[1] * G[2], dot = G[0] * G[2] + G[1] * G[3];
            double n1 = hypot(G[0], G[1]), n2 = hypot(G[2], G[3]);
            CHECK(fabs(cross) <= 1e-9 * n1 * n2 && dot < 0,
                  "gradients opposite at θ1 = %g: cross %g, dot %g", x1, cross, dot);
        }
    }
    CHECK(mtgrad_toy_pareto_theta2(9) == p7, "θ1 clamped to [-7, 7]");
    CHECK(isnan(mtgrad_toy_pareto_theta2(NAN)), "NaN in, NaN out");

    double yes1[2] = {0, -8.3552}, yes2[2] = {7, -8.4345}, yes3[2] = {-7.04, -8.40};
    double no1[2] = {7, -8.3552}, no2[2] = {7.1, -8.4345}, no3[2] = {0, -8.2}, no4[2] = {NAN, 0};
    CHECK(mtgrad_toy_reached(yes1) && mtgrad_toy_reached(yes2) && mtgrad_toy_reached(yes3),
          "points on the Pareto set count");
    CHECK(!mtgrad_toy_reached(no1) && !mtgrad_toy_reached(no2) && !mtgrad_toy_reached(no3) &&
              !mtgrad_toy_reached(no4) && !mtgrad_toy_reached(NULL),
          "points off the Pareto set do not");
}

static void test_starts_and_lengths(void)
{
    double s[5][2];
    CHECK(mtgrad_toy_starts(0, s) == 5, "5 CAGrad starts");
    CHECK(s[0][0] == -8.5 && s[0][1] == 7.5 && s[1][1] == 5 && s[4][0] == 10 && s[4][1] == -8,
          "CAGrad starts");
    CHECK(mtgrad_toy_starts(1, s) == 5, "5 Nash-MTL starts");
    CHECK(s[3][0] == -7.5 && s[3][1] == -0.5 && s[4][0] == 9 && s[4][1] == -1, "Nash starts");
    CHECK(mtgrad_toy_starts(2, s) == 0 && mtgrad_toy_starts(0, NULL) == 0, "bad setting");
    CHECK(mtgrad_toy_traj_len(10, 3) == 5, "0 3 6 9 10");
    CHECK(mtgrad_toy_traj_len(9, 3) == 4, "0 3 6 9");
    CHECK(mtgrad_toy_traj_len(0, 1) == 1, "start only");
    CHECK(mtgrad_toy_traj_len(5, 0) == 0 && mtgrad_toy_traj_len(-1, 1) == 0, "invalid");
    CHECK(mtgrad_toy_default_steps(0) == 100000 && mtgrad_toy_default_steps(1) == 50000 &&
              mtgrad_toy_default_steps(3) == -1,
          "default steps");
}

static void test_runner_basics(void)
{
    char err[256];
    double st[2] = {1.5, 2.5}, L[2], G[4], fin[2];
    int reached = -1;
    /* first Adam step: m^ = d, v^ = d^2, so θ -= lr d / (|d| + eps) */
    mtgrad_toy_eval(st, 0, L, G);
    double d0 = 0.5 * (G[0] + G[2]), d1 = 0.5 * (G[1] + G[3]);
    mtgrad_status s = mtgrad_toy_run("mean", NULL, 0, st, 1, 0.01, NULL, 0, fin, &reached, err,
                                     sizeof err);
    CHECK(s == MTGRAD_OK, "one step: %s", err);
    CHECK_CLOSE(fin[0], 1.5 - 0.01 * d0 / (fabs(d0) + 1e-8), 1e-15, 1e-15);
    CHECK_CLOSE(fin[1], 2.5 - 0.01 * d1 / (fabs(d1) + 1e-8), 1e-15, 1e-15);
    CHECK(reached == 0, "not on the Pareto set after one step");

    /* trajectory: start first, final last, stride respected; bitwise reproducible */
    enum { STEPS = 1000, STRIDE = 300 };
    double traj[2 * 6], traj2[2 * 6], fin2[2];
    CHECK(mtgrad_toy_traj_len(STEPS, STRIDE) == 5, "traj len");
    s = mtgrad_toy_run("pcgrad", NULL, 1, st, STEPS, 0, traj, STRIDE, fin, NULL, err, sizeof err);
    CHECK(s == MTGRAD_OK, "pcgrad run: %s", err);
    CHECK(traj[0] == 1.5 && traj[1] == 2.5, "trajectory starts at the start");
    CHECK(traj[8] == fin[0] && traj[9] == fin[1], "trajectory ends at the final point");
    double part[2];
    mtgrad_toy_run("pcgrad", NULL, 1, st, 600, 0, NULL, 0, part, NULL, err, sizeof err);
    CHECK(traj[4] == part[0] && traj[5] == part[1], "point 2 is θ after 600 steps");
    mtgrad_toy_run("pcgrad", NULL, 1, st, STEPS, 0, traj2, STRIDE, fin2, NULL, err, sizeof err);
    CHECK(memcmp(traj, traj2, sizeof(double) * 10) == 0, "same arguments, same bits");

    /* CAGrad with c = 0 is the mean gradient (Adam is invariant to the direction's scale) */
    double fa[2], fb[2];
    mtgrad_toy_run("cagrad", "c=0", 0, st, 2000, 0, NULL, 0, fa, NULL, err, sizeof err);
    mtgrad_toy_run("mean", NULL, 0, st, 2000, 0, NULL, 0, fb, NULL, err, sizeof err);
    CHECK_CLOSE(fa[0], fb[0], 0, 1e-6);
    CHECK_CLOSE(fa[1], fb[1], 0, 1e-6);

    /* loss-reading methods get positive (shifted) losses; FAMO gets its update */
    const char *lossy[] = {"famo", "si_ls", "dwa", "rlw"};
    for (int i = 0; i < 4; i++) {
        double z[2] = {0, 0};
        s = mtgrad_toy_run(lossy[i], NULL, 1, z, 500, 0, NULL, 0, fin, NULL, err, sizeof err);
        CHECK(s == MTGRAD_OK && isfinite(fin[0]) && isfinite(fin[1]), "%s: %s", lossy[i], err);
    }

    /* errors */
    s = mtgrad_toy_run("no-such-method", NULL, 0, st, 10, 0, NULL, 0, fin, NULL, err, sizeof err);
    CHECK(s == MTGRAD_E_INVAL && strstr(err, "no-such-method") != NULL, "unknown method: %s", err);
    s = mtgrad_toy_run("cagrad", "c=-3", 0, st, 10, 0, NULL, 0, fin, NULL, err, sizeof err);
    CHECK(s == MTGRAD_E_INVAL, "bad param: %s", err);
    s = mtgrad_toy_run("mean", NULL, 2, st, 10, 0, NULL, 0, fin, NULL, err, sizeof err);
    CHECK(s == MTGRAD_E_INVAL && strstr(err, "setting") != NULL, "bad setting: %s", err);
    s = mtgrad_toy_run("mean", NULL, 0, NULL, 10, 0, NULL, 0, fin, NULL, err, sizeof err);
    CHECK(s == MTGRAD_E_INVAL, "NULL start");
    double bad[2] = {NAN, 0};
    s = mtgrad_toy_run("mean", NULL, 0, bad, 10, 0, NULL, 0, fin, NULL, err, sizeof err);
    CHECK(s == MTGRAD_E_INVAL, "NaN start");
    s = mtgrad_toy_run("mean", NULL, 0, st, 10, 0, traj, 0, fin, NULL, err, sizeof err);
    CHECK(s == MTGRAD_E_INVAL && strstr(err, "stride") != NULL, "stride 0: %s", err);
    s = mtgrad_toy_run("mean", NULL, 0, st, 10, 0, NULL, 0, NULL, NULL, NULL, 0);
    CHECK(s == MTGRAD_OK, "all outputs optional");
}

/* The papers' qualitative picture, CAGrad setting, 100000 Adam steps at lr 1e-3. */
static void test_paper_facts(void)
{
    double starts[5][2], fin[3][5][2];
    char err[256];
    int reached[3][5];
    const char *methods[] = {"mean", "mgda", "cagrad"};
    const char *params[] = {NULL, NULL, "c=0.5"};
    mtgrad_toy_starts(0, starts);
    for (int m = 0; m < 3; m++) {
        for (int i = 0; i < 5; i++) {
            mtgrad_status s = mtgrad_toy_run(methods[m], params[m], 0, starts[i], 0, 0, NULL, 0,
                                             fin[m][i], &reached[m][i], err, sizeof err);
            CHECK(s == MTGRAD_OK, "%s: %s", methods[m], err);
        }
    }
    int stuck = 0;
    for (int i = 0; i < 5; i++) {
        stuck += !reached[0][i];
        /* the ones that get stuck sit in a log valley of f1 or f2 (θ2 > 0) */
        if (!reached[0][i])
            CHECK(fin[0][i][1] > 0, "stuck point (%g, %g) is in the upper region", fin[0][i][0],
                  fin[0][i][1]);
    }
    /* CAGrad's paper reports 2 of 5 for plain GD on the mean; Adam on the mean (as its toy.py
     * runs it, in float32 and here in double) is stuck from (-8.5, 7.5), (-8.5, 5) and (9, 9) */
    CHECK(stuck >= 2, "mean stuck from %d of 5 starts", stuck);
    CHECK(!reached[0][0], "mean stuck from (-8.5, 7.5): ends at (%g, %g)", fin[0][0][0],
          fin[0][0][1]);
    CHECK(!reached[0][3], "mean stuck from (9, 9): ends at (%g, %g)", fin[0][3][0], fin[0][3][1]);
    CHECK(reached[0][2] && fabs(fin[0][2][0]) < 0.01,
          "mean from (0, 0) reaches the L0 minimum (%g, %g)", fin[0][2][0], fin[0][2][1]);
    for (int m = 1; m < 3; m++)
        for (int i = 0; i < 5; i++)
            CHECK(reached[m][i], "%s from (%g, %g) ends at (%g, %g)", methods[m], starts[i][0],
                  starts[i][1], fin[m][i][0], fin[m][i][1]);
    /* CAGrad (c = 0.5) converges to the minimum of the mean loss on the Pareto set */
    CHECK(fabs(fin[2][3][0]) < 0.05, "cagrad from (9, 9) ends near θ1 = 0: %g", fin[2][3][0]);
}

int main(void)
{
    test_losses_and_gradients();
    test_kinks();
    test_landmarks();
    test_starts_and_lengths();
    test_runner_basics();
    test_paper_facts();
    return harness_report();
}
