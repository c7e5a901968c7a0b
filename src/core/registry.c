/* registry.c — the list of methods. Adding a method: one file src/core/method_<name>.c defining
 * `const mtgrad_method mtgradi_<name>`, its extern in internal.h, and one line here. */
#include "internal.h"

#include <string.h>

static const mtgrad_method *const registry[] = {
    &mtgradi_mean,     &mtgradi_sum,      &mtgradi_ls,          &mtgradi_si_ls,
    &mtgradi_rlw,      &mtgradi_dwa,      &mtgradi_famo,        &mtgradi_mgda,
    &mtgradi_cagrad,   &mtgradi_imgrad,   &mtgradi_conicgrad,   &mtgradi_sdmgrad,
    &mtgradi_nash_mtl, &mtgradi_fairgrad, &mtgradi_upgrad,      &mtgradi_dualproj,
    &mtgradi_imtl_g,   &mtgradi_aligned_mtl, &mtgradi_pcgrad,   &mtgradi_gradvac,
    &mtgradi_graddrop, &mtgradi_uw,       &mtgradi_gradnorm,    &mtgradi_marigold,
};

size_t mtgrad_method_count(void) { return sizeof registry / sizeof registry[0]; }

const mtgrad_method *mtgrad_method_at(size_t i)
{
    return i < mtgrad_method_count() ? registry[i] : NULL;
}

const mtgrad_method *mtgrad_method_by_name(const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; i < mtgrad_method_count(); i++)
        if (strcmp(registry[i]->name, name) == 0) return registry[i];
    return NULL;
}

const char *mtgrad_method_name(const mtgrad_method *m) { return m ? m->name : NULL; }
const char *mtgrad_method_summary(const mtgrad_method *m) { return m ? m->summary : NULL; }
const char *mtgrad_method_citation(const mtgrad_method *m) { return m ? m->citation : NULL; }
unsigned mtgrad_method_flags(const mtgrad_method *m) { return m ? m->flags : 0; }
