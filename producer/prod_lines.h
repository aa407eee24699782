/* prod_lines: prompts from a file, one per non-blank line. */
#ifndef PROD_LINES_H
#define PROD_LINES_H

#include "ee_error.h"

#include <stddef.h>

typedef struct prod_lines {
    char **v;
    size_t n, cap;
} prod_lines;

/* Reads path ("-": stdin). Line ends (\n, \r\n) are removed; lines of
 * only spaces and tabs are skipped. Fails for an unreadable file, a NUL
 * byte in a line, or a file without any prompt. */
int prod_lines_read(prod_lines *l, const char *path, ee_err *err);
/* Appends a copy of s. */
int prod_lines_add(prod_lines *l, const char *s, ee_err *err);
void prod_lines_free(prod_lines *l);

#endif
