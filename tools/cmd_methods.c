/* cmd_methods.c — `mtgrad methods [--json|--markdown]`: every registered method with what it
 * needs, its parameters (from the library's own descriptions) and a one-line summary, then the
 * optimizers (with the memory each keeps: AdaTask's per-task moments are the cost to know
 * before choosing it) and the training-step options that reshape a step beyond the method.
 * --markdown prints the table kept in README.md between <!-- methods:begin/end --> (methods
 * only, so that the README stays one generated table). */
#define _GNU_SOURCE /* getopt_long */
#include "cli.h"
#include "mtgrad.h"
#include "mtgrad_nn.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char mtgrad_usage_methods[] =
    "usage: mtgrad methods [--json | --markdown]\n"
    "  Lists every method: what it needs (gram, jacobian, losses, random, stateful,\n"
    "  losses-after, feedback), whether it has task weights, its parameters with defaults and\n"
    "  ranges; then the optimizers with the memory they keep, and the step options\n"
    "  (--task-sample, --grad-space).\n"
    "  --json       one object: \"methods\", \"optimizers\" and \"step_options\" arrays\n"
    "  --markdown   the table of README.md (method | needs | parameters (defaults) | what it does)\n";

/* Flag words, in the order they are printed. */
static const struct {
    unsigned bit;
    const char *word;
    int need; /* listed in the "needs" column of the markdown table */
} flag_words[] = {
    {MTGRAD_NEEDS_GRAM, "gram", 1},
    {MTGRAD_NEEDS_JACOBIAN, "jacobian", 1},
    {MTGRAD_NEEDS_LOSSES, "losses", 1},
    {MTGRAD_NEEDS_RANDOM, "random", 1},
    {MTGRAD_STATEFUL, "stateful", 1},
    {MTGRAD_NEEDS_LOSSES_AFTER, "losses-after", 1},
    {MTGRAD_HAS_WEIGHTS, "weights", 1},
    {MTGRAD_PROMISE_NONCONFLICT, "nonconflict", 0},
    {MTGRAD_PROMISE_PERMUTATION, "permutation", 0},
    {MTGRAD_HEADS_WEIGHTED, "heads-weighted", 0},
    {MTGRAD_NEEDS_FEEDBACK, "feedback", 1},
    {MTGRAD_CROSS_GRAM, "cross-gram", 0}, /* an ability (double sampling), not a need */
};
#define N_FLAG_WORDS (sizeof flag_words / sizeof flag_words[0])

static const char *type_name(mtgrad_param_type t)
{
    switch (t) {
    case MTGRAD_PARAM_REAL: return "real";
    case MTGRAD_PARAM_INT: return "int";
    case MTGRAD_PARAM_BOOL: return "bool";
    case MTGRAD_PARAM_CHOICE: return "choice";
    case MTGRAD_PARAM_REALS: return "reals";
    }
    return "?";
}

static int has_range(const mtgrad_param_desc *p)
{
    return p->type == MTGRAD_PARAM_REAL || p->type == MTGRAD_PARAM_INT ||
           p->type == MTGRAD_PARAM_REALS;
}

static void range_str(const mtgrad_param_desc *p, char *buf, size_t len)
{
    snprintf(buf, len, "%c%.17g, %.17g%c", (p->flags & MTGRAD_PARAM_LO_OPEN) ? '(' : '[', p->lo,
             p->hi, (p->flags & MTGRAD_PARAM_HI_OPEN) ? ')' : ']');
}

/* The default as text (the library prints the shortest exact form). */
static void default_str(const mtgrad_param_desc *p, char *buf, size_t len)
{
    mtgrad_param_default_str(p, buf, len);
}

static void flags_str(unsigned flags, int needs_only, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_FLAG_WORDS; i++) {
        if (!(flags & flag_words[i].bit) || (needs_only && !flag_words[i].need)) continue;
        int w = snprintf(buf + n, len - n, "%s%s", n ? ", " : "", flag_words[i].word);
        if (w < 0 || (size_t)w >= len - n) return;
        n += (size_t)w;
    }
}

/* ------------------------------------------------------------------ optimizers */

#define MAX_OPTIM_KINDS 64 /* kinds are probed by number until the library has no name */

/* Floats of state one parameter keeps in the optimizer's family (AdaTask: per task on the
 * shared parameters); -1 for a kind this tool does not know. SGD keeps its momentum buffer. */
static int optim_moments(mtgrad_optim_kind kind)
{
    switch (kind) {
    case MTGRAD_OPTIM_SGD: return 1;
    case MTGRAD_OPTIM_ADAM: return 2;
    case MTGRAD_OPTIM_ADAMW: return 2;
    case MTGRAD_OPTIM_RMSPROP: return 1;
    case MTGRAD_OPTIM_ADAGRAD: return 1;
    case MTGRAD_OPTIM_ADATASK_ADAM: return 2;
    case MTGRAD_OPTIM_ADATASK_RMSPROP: return 1;
    case MTGRAD_OPTIM_ADATASK_ADAGRAD: return 1;
    }
    return -1;
}

static void optim_memory_str(mtgrad_optim_kind kind, char *buf, size_t len)
{
    int m = optim_moments(kind);
    if (m < 0)
        snprintf(buf, len, "(memory not described)");
    else if (mtgrad_optim_kind_per_task(kind))
        snprintf(buf, len, "%s·d floats for the d shared parameters + %d per "
                           "task-specific parameter", m == 1 ? "k" : "2k", m);
    else
        snprintf(buf, len, "%d float%s per parameter%s", m, m == 1 ? "" : "s",
                 kind == MTGRAD_OPTIM_SGD ? " with momentum (0 without)" : "");
}

/* Indented like a method's parameter lines: a line that starts in column 0 names a method
 * (tests/scripts/test_readme.sh and other readers take the first word of such lines). */
static const char step_options_text[] =
    "  step options (mtgrad train / compare):\n"
    "    --task-sample os:N   SDMGrad-OS: each task kept with probability N/k (redrawn until\n"
    "                         one is); only the kept tasks backpropagate through the trunk\n"
    "    --task-sample fast:K CAGrad-fastK: K-1 random tasks plus the mean of the others'\n"
    "                         losses as one pseudo-task (K trunk backwards); both for methods\n"
    "                         that need the Gram matrix or the Jacobian\n"
    "    --grad-space rep     MGDA-UB: the Gram matrix of the gradients at the shared\n"
    "                         representation (k head backwards, one trunk backward);\n"
    "                         Gram-only methods with weights\n";

static void print_optimizers_text(void)
{
    printf("\n  optimizers (--optimizer NAME; the recipe's lr, schedule and weight decay):\n");
    for (int i = 0; i < MAX_OPTIM_KINDS; i++) {
        const char *name = mtgrad_optim_kind_name((mtgrad_optim_kind)i);
        if (!name) break;
        char mem[160];
        optim_memory_str((mtgrad_optim_kind)i, mem, sizeof mem);
        printf("    %-16s %s\n", name, mem);
    }
    printf("\n%s", step_options_text);
}

static cJSON *optimizers_json(void)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; arr && i < MAX_OPTIM_KINDS; i++) {
        mtgrad_optim_kind kind = (mtgrad_optim_kind)i;
        const char *name = mtgrad_optim_kind_name(kind);
        if (!name) break;
        char mem[160];
        optim_memory_str(kind, mem, sizeof mem);
        cJSON *o = cJSON_CreateObject();
        mtgrad_json_push(arr, o);
        cJSON_AddStringToObject(o, "name", name);
        cJSON_AddBoolToObject(o, "per_task", mtgrad_optim_kind_per_task(kind) != 0);
        /* per_task: each shared parameter keeps floats_per_param floats per task */
        if (optim_moments(kind) >= 0)
            cJSON_AddNumberToObject(o, "floats_per_param", optim_moments(kind));
        else
            cJSON_AddNullToObject(o, "floats_per_param");
        cJSON_AddStringToObject(o, "memory", mem);
    }
    return arr;
}

static cJSON *step_option_json(const char *option, const char *values, const char *doc)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "option", option);
    cJSON *v = cJSON_AddArrayToObject(o, "values");
    for (const char *s = values; s;) {
        const char *bar = strchr(s, '|');
        size_t n = bar ? (size_t)(bar - s) : strlen(s);
        char word[64];
        snprintf(word, sizeof word, "%.*s", (int)n, s);
        mtgrad_json_push(v, cJSON_CreateString(word));
        s = bar ? bar + 1 : NULL;
    }
    cJSON_AddStringToObject(o, "doc", doc);
    return o;
}

static cJSON *step_options_json(void)
{
    cJSON *arr = cJSON_CreateArray();
    mtgrad_json_push(
        arr, step_option_json("--task-sample", "os:N|fast:K",
                              "os:N (SDMGrad-OS): each task kept with probability N/k, redrawn "
                              "until one is; fast:K (CAGrad-fastK): K-1 random tasks plus the "
                              "mean of the others as one pseudo-task. Only the sampled tasks "
                              "backpropagate through the trunk. Methods that need the Gram "
                              "matrix or the Jacobian."));
    mtgrad_json_push(
        arr, step_option_json("--grad-space", "param|rep",
                              "rep (MGDA-UB): the Gram matrix of the gradients at the shared "
                              "representation, one trunk backward per step; Gram-only methods "
                              "with weights. param (default): the shared parameters."));
    return arr;
}

/* ------------------------------------------------------------------ text */

static void print_text(void)
{
    for (size_t i = 0; i < mtgrad_method_count(); i++) {
        const mtgrad_method *m = mtgrad_method_at(i);
        char flags[256];
        flags_str(mtgrad_method_flags(m), 0, flags, sizeof flags);
        printf("%s — %s\n  flags: %s\n", mtgrad_method_name(m), mtgrad_method_summary(m),
               flags[0] ? flags : "(none)");
        for (size_t j = 0; j < mtgrad_method_param_count(m); j++) {
            const mtgrad_param_desc *p = mtgrad_method_param_at(m, j);
            char def[128], range[96] = "";
            default_str(p, def, sizeof def);
            if (has_range(p)) range_str(p, range, sizeof range);
            printf("  %-16s %-6s default %-10s %s%s — %s\n", p->name, type_name(p->type), def,
                   p->type == MTGRAD_PARAM_CHOICE ? p->choices : range,
                   (p->flags & MTGRAD_PARAM_COMMON) ? " (common)" : "", p->doc ? p->doc : "");
        }
    }
    print_optimizers_text();
}

/* ------------------------------------------------------------------ JSON */

static cJSON *param_json(const mtgrad_param_desc *p)
{
    cJSON *o = cJSON_CreateObject();
    char def[128];
    default_str(p, def, sizeof def);
    cJSON_AddStringToObject(o, "name", p->name);
    cJSON_AddStringToObject(o, "type", type_name(p->type));
    cJSON_AddStringToObject(o, "default", def);
    if (has_range(p)) {
        cJSON *r = cJSON_AddObjectToObject(o, "range");
        /* JSON has no infinity: an unbounded side is null */
        if (isfinite(p->lo)) cJSON_AddNumberToObject(r, "lo", p->lo);
        else cJSON_AddNullToObject(r, "lo");
        if (isfinite(p->hi)) cJSON_AddNumberToObject(r, "hi", p->hi);
        else cJSON_AddNullToObject(r, "hi");
        cJSON_AddBoolToObject(r, "lo_open", (p->flags & MTGRAD_PARAM_LO_OPEN) != 0);
        cJSON_AddBoolToObject(r, "hi_open", (p->flags & MTGRAD_PARAM_HI_OPEN) != 0);
    }
    if (p->type == MTGRAD_PARAM_CHOICE && p->choices) {
        cJSON *c = cJSON_AddArrayToObject(o, "choices");
        for (const char *s = p->choices; s;) {
            const char *bar = strchr(s, '|');
            size_t n = bar ? (size_t)(bar - s) : strlen(s);
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)n, s);
            mtgrad_json_push(c, cJSON_CreateString(name));
            s = bar ? bar + 1 : NULL;
        }
    }
    cJSON_AddBoolToObject(o, "common", (p->flags & MTGRAD_PARAM_COMMON) != 0);
    cJSON_AddStringToObject(o, "doc", p->doc ? p->doc : "");
    return o;
}

static int print_json(void)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = root ? cJSON_AddArrayToObject(root, "methods") : NULL;
    if (!arr) {
        cJSON_Delete(root);
        fprintf(stderr, "mtgrad: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < mtgrad_method_count(); i++) {
        const mtgrad_method *m = mtgrad_method_at(i);
        cJSON *o = cJSON_CreateObject();
        mtgrad_json_push(arr, o);
        cJSON_AddStringToObject(o, "name", mtgrad_method_name(m));
        cJSON_AddStringToObject(o, "summary", mtgrad_method_summary(m));
        cJSON_AddStringToObject(o, "citation", mtgrad_method_citation(m));
        cJSON *fl = cJSON_AddArrayToObject(o, "flags");
        unsigned f = mtgrad_method_flags(m);
        for (size_t j = 0; j < N_FLAG_WORDS; j++)
            if (f & flag_words[j].bit)
                mtgrad_json_push(fl, cJSON_CreateString(flag_words[j].word));
        cJSON *ps = cJSON_AddArrayToObject(o, "params");
        for (size_t j = 0; j < mtgrad_method_param_count(m); j++)
            mtgrad_json_push(ps, param_json(mtgrad_method_param_at(m, j)));
    }
    mtgrad_json_add(root, "optimizers", optimizers_json());
    mtgrad_json_add(root, "step_options", step_options_json());
    char *s = mtgrad_json_print(root);
    cJSON_Delete(root);
    if (!s) {
        fprintf(stderr, "mtgrad: out of memory\n");
        return 1;
    }
    puts(s);
    cJSON_free(s);
    return 0;
}

/* ------------------------------------------------------------------ markdown */

/* Text in a table cell: '|' escaped, newlines flattened. */
static void md_cell(const char *s)
{
    for (; s && *s; s++) {
        if (*s == '|') fputs("\\|", stdout);
        else if (*s == '\n') putchar(' ');
        else putchar(*s);
    }
}

static void print_markdown(void)
{
    puts("| method | needs | parameters (defaults) | what it does |");
    puts("|---|---|---|---|");
    for (size_t i = 0; i < mtgrad_method_count(); i++) {
        const mtgrad_method *m = mtgrad_method_at(i);
        char needs[256];
        flags_str(mtgrad_method_flags(m), 1, needs, sizeof needs);
        printf("| `%s` | ", mtgrad_method_name(m));
        md_cell(needs[0] ? needs : "—");
        fputs(" | ", stdout);
        int any = 0;
        for (size_t j = 0; j < mtgrad_method_param_count(m); j++) {
            const mtgrad_param_desc *p = mtgrad_method_param_at(m, j);
            if (p->flags & MTGRAD_PARAM_COMMON) continue; /* seed, threads: every method */
            char def[128];
            default_str(p, def, sizeof def);
            fputs(any ? ", `" : "`", stdout);
            md_cell(p->name);
            if (def[0]) {
                putchar('=');
                md_cell(def);
                putchar('`');
            } else {
                fputs("` (empty)", stdout);
            }
            any = 1;
        }
        if (!any) fputs("—", stdout);
        fputs(" | ", stdout);
        md_cell(mtgrad_method_summary(m));
        puts(" |");
    }
}

int mtgrad_cmd_methods(int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"markdown", no_argument, NULL, 'M'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int mode = 0; /* 0 text, 1 json, 2 markdown */
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (ch == 'j' || ch == 'M') {
            int want = ch == 'j' ? 1 : 2;
            if (mode && mode != want) {
                fprintf(stderr, "mtgrad: methods: --json and --markdown exclude each other\n");
                return 2;
            }
            mode = want;
        } else if (ch == 'h') {
            fputs(mtgrad_usage_methods, stdout);
            return 0;
        } else {
            fputs(mtgrad_usage_methods, stderr);
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "mtgrad: methods: unexpected argument '%s'\n%s", argv[optind],
                mtgrad_usage_methods);
        return 2;
    }
    if (mode == 1) return print_json();
    if (mode == 2) print_markdown();
    else print_text();
    return 0;
}
