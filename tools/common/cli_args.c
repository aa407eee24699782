#include "cli_args.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

cli_flag *cli_get(cli_flag *flags, size_t n_flags, const char *name) {
    for (size_t i = 0; i < n_flags; i++)
        if (strcmp(flags[i].name, name) == 0) return &flags[i];
    return NULL;
}

bool cli_wants_help(int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return true;
    return false;
}

void cli_flags_free(cli_flag *flags, size_t n_flags) {
    for (size_t i = 0; i < n_flags; i++) {
        free(flags[i].values);
        flags[i].values = NULL;
        flags[i].n_values = 0;
    }
}

static int add_value(cli_flag *f, const char *v, int argc, ee_err *err) {
    if (!f->values) {
        /* at most one value per argument: no reallocation needed */
        f->values = calloc((size_t)argc, sizeof *f->values);
        if (!f->values) return ee_err_set(err, "out of memory");
    }
    f->values[f->n_values++] = v;
    return 0;
}

int cli_parse(int argc, char **argv, cli_flag *flags, size_t n_flags, ee_err *err) {
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *eq = strchr(a, '=');
        char name[64];
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        if (strncmp(a, "--", 2) != 0 || len >= sizeof name)
            return ee_err_set(err, "unexpected argument '%s' (flags start with --)", a);
        memcpy(name, a, len);
        name[len] = 0;
        cli_flag *f = cli_get(flags, n_flags, name);
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

int cli_int(const char *flag, const char *s, long min, long max, long *out, ee_err *err) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end)
        return ee_err_set(err, "%s: '%s' is not an integer", flag, s);
    if (v < min || v > max)
        return ee_err_set(err, "%s: %ld is out of range [%ld, %ld]", flag, v, min, max);
    *out = v;
    return 0;
}

int cli_u64(const char *flag, const char *s, uint64_t *out, ee_err *err) {
    char *end;
    errno = 0;
    if (s[0] == '-') return ee_err_set(err, "%s: '%s' must not be negative", flag, s);
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end)
        return ee_err_set(err, "%s: '%s' is not a non-negative integer", flag, s);
    *out = v;
    return 0;
}

int cli_float(const char *flag, const char *s, double min, double max, double *out,
              ee_err *err) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v))
        return ee_err_set(err, "%s: '%s' is not a number", flag, s);
    if (v < min || v > max)
        return ee_err_set(err, "%s: %g is out of range [%g, %g]", flag, v, min, max);
    *out = v;
    return 0;
}

int cli_token_list(const char *flag, const char *s, int32_t n_vocab, int32_t **ids,
                   size_t *n, ee_err *err) {
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    int32_t *v = malloc(cap * sizeof *v);
    if (!v) return ee_err_set(err, "out of memory");
    size_t k = 0;
    const char *p = s;
    for (;;) {
        char *end;
        errno = 0;
        while (*p == ' ') p++;
        long x = strtol(p, &end, 10);
        if (errno || end == p) {
            free(v);
            return ee_err_set(err, "%s: item %zu of '%s' is not a token id", flag, k, s);
        }
        if (x < 0 || x >= n_vocab) {
            free(v);
            return ee_err_set(err, "%s: token id %ld (item %zu) is out of range [0, %d)",
                              flag, x, k, n_vocab);
        }
        v[k++] = (int32_t)x;
        p = end;
        while (*p == ' ') p++;
        if (*p == 0) break;
        if (*p != ',') {
            free(v);
            return ee_err_set(err, "%s: unexpected '%c' in token list", flag, *p);
        }
        p++;
    }
    *ids = v;
    *n = k;
    return 0;
}
