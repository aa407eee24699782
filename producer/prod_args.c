#include "prod_args.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int prod_int(const char *flag, const char *s, long long min, long long max, long long *out,
             ee_err *err) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    /* one message for "not a number" and "out of range": it states the
     * accepted range either way */
    if (errno || end == s || *end || v < min || v > max)
        return ee_err_set(err, "%s: '%s' is not an integer in %lld..%lld", flag, s, min, max);
    *out = v;
    return 0;
}

int prod_float(const char *flag, const char *s, double min, double max, double *out,
               ee_err *err) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < min || v > max)
        return ee_err_set(err, "%s: '%s' is not a number in %g..%g", flag, s, min, max);
    *out = v;
    return 0;
}
