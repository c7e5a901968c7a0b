/* status.c — version, status strings, error recording, small shared helpers. */
#include "internal.h"

#include <stdarg.h>

#include <stdio.h>

int mtgrad_version_number(void) { return MTGRAD_VERSION_NUMBER; }

const char *mtgrad_version_string(void) { return MTGRAD_VERSION_STRING; }

const char *mtgrad_status_str(mtgrad_status s)
{
    switch (s) {
    case MTGRAD_OK: return "ok";
    case MTGRAD_E_NOMEM: return "out of memory";
    case MTGRAD_E_INVAL: return "invalid argument";
    case MTGRAD_E_SHAPE: return "bad shape";
    case MTGRAD_E_NONFINITE: return "non-finite value (NaN or Inf)";
    case MTGRAD_E_MAXITER: return "solver reached its iteration limit";
    case MTGRAD_E_NOPROGRESS: return "solver made no progress";
    case MTGRAD_E_UNSUPPORTED: return "not supported by this method";
    case MTGRAD_E_IO: return "input/output error";
    case MTGRAD_E_STATE: return "invalid or mismatched saved state";
    }
    return "unknown status";
}

mtgrad_status mtgradi_fail(mtgrad_aggregator *a, mtgrad_status s, const char *fmt, ...)
{
    if (a) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(a->err, sizeof a->err, fmt, ap);
        va_end(ap);
    }
    return s;
}

double mtgradi_clip_coef(double max_norm, double norm)
{
    if (!(max_norm > 0)) return 1.0;
    double coef = max_norm / (norm + 1e-6);
    return coef < 1.0 ? coef : 1.0;
}

static void vmsg(char *err, size_t errlen, const char *fmt, va_list ap)
{
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
}

mtgrad_status mtgradi_errmsg(char *err, size_t errlen, mtgrad_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(err, errlen, fmt, ap);
    va_end(ap);
    return s;
}

void mtgradi_msg(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(err, errlen, fmt, ap);
    va_end(ap);
}
