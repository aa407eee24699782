#include "prod_lines.h"

#include "ee_buf.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int prod_lines_add(prod_lines *l, const char *s, ee_err *err) {
    if (ee_array_reserve(&l->v, &l->cap, l->n + 1, sizeof *l->v, err)) return -1;
    if (!(l->v[l->n] = strdup(s))) return ee_err_set(err, "out of memory");
    l->n++;
    return 0;
}

static int blank(const char *s) {
    return s[strspn(s, " \t")] == 0;
}

int prod_lines_read(prod_lines *l, const char *path, ee_err *err) {
    const bool std_in = strcmp(path, "-") == 0;
    FILE *f = std_in ? stdin : fopen(path, "r");
    if (!f) return ee_err_set(err, "--prompts-file %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t len;
    int rc = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (memchr(line, 0, (size_t)len)) {
            rc = ee_err_set(err, "--prompts-file %s: line %zu contains a NUL byte", path, lineno);
            break;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (!blank(line) && prod_lines_add(l, line, err)) {
            rc = -1;
            break;
        }
    }
    if (rc == 0 && ferror(f)) rc = ee_err_set(err, "--prompts-file %s: read error", path);
    if (rc == 0 && l->n == 0)
        rc = ee_err_set(err, "--prompts-file %s: no prompts (all lines are blank)", path);
    free(line);
    if (!std_in) fclose(f);
    return rc;
}

void prod_lines_free(prod_lines *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}
