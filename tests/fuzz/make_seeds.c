/*
 * make_seeds.c — writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/) from
 * the library itself, so that every seed is a valid input the fuzzer can start mutating from:
 * each method's default parameters as a params string, aggregator states saved after two real
 * steps, optimizer states after two real steps, a small checkpoint written by the checkpoint
 * writer, benchmark params strings, and MTL step states (fuzz_step_config.h's steps after 0, 1
 * and 3 real steps). The golden, matrix and trainer-written checkpoint seeds
 * come from the real files and the CLI instead (see run_fuzz.sh's header). Not part of any
 * build; regenerate with:
 *   cc -std=c11 -Iinclude -Isrc/core -Isrc -Isrc/eval -o /tmp/make_seeds tests/fuzz/make_seeds.c \
 *      build/libmtgrad_nn.a build/libmtgrad.a -lopenblas -lz -lcjson -lm -fopenmp
 *   /tmp/make_seeds tests/fuzz/corpus /tmp
 */
#define _POSIX_C_SOURCE 200809L
#include "eval_internal.h"
#include "mtgrad.h"
#include "mtgrad_nn.h"
#include "fuzz_step_config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *root;

static void write_seed(const char *target, const char *name, const unsigned char *prefix,
                       size_t np, const void *body, size_t nb)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, target);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fwrite(prefix, 1, np, f);
    fwrite(body, 1, nb, f);
    fclose(f);
}

static void params_seeds(void)
{
    for (size_t mi = 0; mi < mtgrad_method_count(); mi++) {
        const mtgrad_method *m = mtgrad_method_at(mi);
        char text[2048] = "";
        size_t used = 0;
        for (size_t i = 0; i < mtgrad_method_param_count(m); i++) {
            const mtgrad_param_desc *p = mtgrad_method_param_at(m, i);
            char v[512];
            mtgrad_param_default_str(p, v, sizeof v);
            used += (size_t)snprintf(text + used, sizeof text - used, "%s%s=%s", i ? "," : "", p->name, v);
        }
        /* a set_param line after the newline: the first parameter again */
        const mtgrad_param_desc *p0 = mtgrad_method_param_at(m, 0);
        char v0[512];
        mtgrad_param_default_str(p0, v0, sizeof v0);
        used += (size_t)snprintf(text + used, sizeof text - used, "\n%s=%s", p0->name, v0);
        unsigned char pre[2] = {(unsigned char)mi, 2};
        char name[128];
        snprintf(name, sizeof name, "%s", mtgrad_method_name(m));
        write_seed("params", name, pre, 2, text, strlen(text));
    }
}

static void agg_state_seeds(void)
{
    for (size_t mi = 0; mi < mtgrad_method_count(); mi++) {
        const mtgrad_method *m = mtgrad_method_at(mi);
        int64_t k = 3;
        mtgrad_aggregator *a = NULL;
        if (mtgrad_aggregator_new(&a, mtgrad_method_name(m), k, "seed=3", NULL, 0) != MTGRAD_OK) continue;
        double G[12], losses[3] = {1.0, 1.5, 2.0}, dir[4];
        for (int i = 0; i < 12; i++) G[i] = cos(0.3 + 1.7 * i);
        for (int rep = 0; rep < 2; rep++) {
            (void)mtgrad_aggregate_f64(a, G, k, 4, 4, losses, dir, NULL);
            if (mtgrad_method_flags(m) & MTGRAD_NEEDS_LOSSES_AFTER) {
                for (int i = 0; i < 3; i++) losses[i] *= 0.9;
                (void)mtgrad_aggregator_update(a, losses, k);
            }
        }
        size_t len = 0;
        mtgrad_aggregator_save(a, NULL, &len);
        unsigned char *b = malloc(len);
        mtgrad_aggregator_save(a, b, &len);
        unsigned char pre[2] = {(unsigned char)mi, (unsigned char)(k - 1)};
        write_seed("agg_state", mtgrad_method_name(m), pre, 2, b, len);
        free(b);
        mtgrad_aggregator_free(a);
    }
}

static void optim_state_seeds(void)
{
    /* config bytes as fuzz_optim_state.c reads them: kind | momentum | wd | schedule */
    const unsigned char configs[][2] = {{0, 3}, {0 | 4, 3}, {1, 5}, {1 | 8 | 16, 5}, {2 | 32, 2}, {2 | 4 | 8, 15}};
    for (size_t ci = 0; ci < sizeof configs / sizeof configs[0]; ci++) {
        uint8_t b0 = configs[ci][0];
        int64_t n = 1 + configs[ci][1] % 16;
        mtgrad_optim_config c = mtgrad_optim_config_default((mtgrad_optim_kind)(b0 % 3));
        if (c.kind == MTGRAD_OPTIM_SGD && (b0 & 4)) c.momentum = 0.9;
        if (b0 & 8) c.weight_decay = 1e-2;
        if ((b0 >> 4) % 3 == 1) c.step_size = 1 + (b0 >> 6), c.gamma = 0.5;
        if ((b0 >> 4) % 3 == 2) c.n_milestones = 2, c.milestones[0] = 3, c.milestones[1] = 7, c.gamma = 0.1;
        mtgrad_optimizer *o = NULL;
        if (mtgrad_optimizer_new(&o, &c, n, NULL, 0) != MTGRAD_OK) exit(1);
        float p[16], g[16];
        for (int i = 0; i < 16; i++) p[i] = 0.1f * (float)i, g[i] = 0.3f - 0.05f * (float)i;
        mtgrad_optimizer_step(o, p, g);
        mtgrad_optimizer_step(o, p, g);
        mtgrad_optimizer_set_epoch(o, 4);
        size_t len = 0;
        mtgrad_optimizer_save(o, NULL, &len);
        unsigned char *b = malloc(len);
        mtgrad_optimizer_save(o, b, &len);
        unsigned char pre[2] = {b0, configs[ci][1]};
        char name[32];
        snprintf(name, sizeof name, "config%zu", ci);
        write_seed("optim_state", name, pre, 2, b, len);
        free(b);
        mtgrad_optimizer_free(o);
    }
}

static void checkpoint_seed(const char *tmpdir)
{
    mtgradi_ckpt c;
    memset(&c, 0, sizeof c);
    c.config = "bench=mmoe\nmethod=mean\n";
    c.epoch = 2;
    c.k = 2;
    c.n_params = 5;
    c.steps = 8;
    c.curve_cols = 3;
    c.rng[0] = 1;
    float params[5] = {0.5f, -1, 2, 0.25f, 3};
    double curves[6] = {1, 2, 3, 4, 5, 6};
    unsigned char optim[16] = "optimizer-state", agg[8] = "aggstat";
    c.params = params;
    c.curves = curves;
    c.optim = optim;
    c.optim_len = sizeof optim;
    c.agg = agg;
    c.agg_len = sizeof agg;
    char err[256];
    if (mtgradi_ckpt_write(tmpdir, &c, err, sizeof err) != MTGRAD_OK) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", tmpdir, MTGRAD_CHECKPOINT_FILE);
    FILE *f = fopen(path, "rb");
    unsigned char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    remove(path);
    write_seed("checkpoint", "synthetic", NULL, 0, buf, n);
}

static void bench_seeds(void)
{
    static const struct {
        unsigned char which;
        const char *name, *text;
    } s[] = {
        {0, "mmoe_small", "p=0.3,k=3,d=5,m=2,ntrain=4,ntest=3,noise=0.1,c=2"},
        {0, "mmoe_k2", "k=2, p=-0.5 ,d=2,ntrain=2,ntest=2,m=0"},
        {1, "multifashion", "ntrain=100,ntest=20"},
        {2, "fashion_k", "k=3,grouping=groups,ntrain=50,ntest=10"},
    };
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        write_seed("bench_params", s[i].name, &s[i].which, 1, s[i].text, strlen(s[i].text));
}

/* Byte 0 as fuzz_step_state.c reads it (configuration | k bit), then the state after `steps`
 * steps: every configuration with k = 3 after 0, 1 and 3 steps, and with k = 2 after 3. */
static void step_state_seed(unsigned ci, int k3, int steps)
{
    unsigned char b0 = (unsigned char)(ci | (k3 ? 16u : 0u));
    int64_t k;
    const step_config *c = step_config_of(b0, &k);
    mtgrad_model *m = step_model(k);
    mtgrad_mtl_step *s = m ? step_of(m, c) : NULL;
    if (!s || mtgrad_mtl_step_begin_epoch(s, 0) != MTGRAD_OK) {
        fprintf(stderr, "step_state: cannot make configuration %u\n", ci);
        exit(1);
    }
    for (int t = 0; t < steps; t++)
        if (step_once(s) != MTGRAD_OK) {
            fprintf(stderr, "step_state %u: %s\n", ci, mtgrad_mtl_step_error(s));
            exit(1);
        }
    size_t len = 0;
    mtgrad_mtl_step_save(s, NULL, &len);
    unsigned char *b = malloc(len);
    if (!b || mtgrad_mtl_step_save(s, b, &len) != MTGRAD_OK) exit(1);
    char name[128];
    snprintf(name, sizeof name, "%u_%s%s%s_k%lld_after%d", ci, c->method, c->sample ? "_" : "",
             c->sample ? c->sample : "", (long long)k, steps);
    for (char *q = name; *q; q++)
        if (*q == ':') *q = '-';
    write_seed("step_state", name, &b0, 1, b, len);
    free(b);
    mtgrad_mtl_step_free(s);
    mtgrad_model_free(m);
}

static void step_state_seeds(void)
{
    step_batches();
    for (unsigned ci = 0; ci < STEP_CONFIGS; ci++) {
        step_state_seed(ci, 1, 0);
        step_state_seed(ci, 1, 1);
        step_state_seed(ci, 1, 3);
        step_state_seed(ci, 0, 3);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: make_seeds CORPUS_DIR TMPDIR\n");
        return 2;
    }
    root = argv[1];
    mkdir(root, 0755);
    params_seeds();
    agg_state_seeds();
    optim_state_seeds();
    checkpoint_seed(argv[2]);
    bench_seeds();
    step_state_seeds();
    return 0;
}
