#include "prod_args.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

prod_flag *prod_get(prod_flag *flags, size_t n_flags, const char *name) {
    for (size_t i = 0; i < n_flags; i++)
        if (strcmp(flags[i].name, name) == 0) return &flags[i];
    return NULL;
}

bool prod_wants_help(int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return true;
    return false;
}

void prod_flags_free(prod_flag *flags, size_t n_flags) {
    for (size_t i = 0; i < n_flags; i++) {
        free(flags[i].values);
        flags[i].values = NULL;
        flags[i].n_values = 0;
    }
}

static int add_value(prod_flag *f, const char *v, int argc, ee_err *err) {
    if (!f->values) {
        /* at most one value per argument: no reallocation needed */
        f->values = calloc((size_t)argc, sizeof *f->values);
        if (!f->values) return ee_err_set(err, "out of memory");
    }
    f->values[f->n_values++] = v;
    return 0;
}

int prod_parse(int argc, char **argv, prod_flag *flags, size_t n_flags, ee_err *err) {
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *eq = strchr(a, '=');
        char name[64];
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        if (strncmp(a, "--", 2) != 0 || len >= sizeof name)
            return ee_err_set(err, "unexpected argument '%s' (flags start with --)", a);
        memcpy(name, a, len);
        name[len] = 0;
        prod_flag *f = prod_get(flags, n_flags, name);
        if (!f) return ee_err_set(err, "unknown flag '%s' (see --help)", name);
        if (f->present && !f->repeat) return ee_err_set(err, "flag '%s' given twice", name);
        f->present = true;
        if (f->has_value) {
            if (eq) {
                f->value = eq + 1;
            } else {
                if (i + 1 >= argc) return ee_err_set(err, "flag '%s' needs a value", name);
                f->value = argv[++i];
            }
            if (f->repeat && add_value(f, f->value, argc, err)) return -1;
        } else if (eq) {
            return ee_err_set(err, "flag '%s' takes no value", name);
        }
    }
    return 0;
}

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
