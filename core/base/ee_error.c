#include "ee_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int ee_err_set(ee_err *err, const char *fmt, ...) {
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int ee_err_wrap(ee_err *err, const char *fmt, ...) {
    if (!err) return -1;
    char prefix[EE_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* Shift the old message right and put "prefix: " in front, truncating
     * the tail if the whole does not fit. */
    size_t pl = strlen(prefix), ol = strnlen(err->msg, EE_ERR_MAX - 1);
    if (pl + 2 >= EE_ERR_MAX) pl = EE_ERR_MAX - 3;
    size_t keep = ol;
    if (pl + 2 + keep >= EE_ERR_MAX) keep = EE_ERR_MAX - 1 - pl - 2;
    memmove(err->msg + pl + 2, err->msg, keep);
    memcpy(err->msg, prefix, pl);
    err->msg[pl] = ':';
    err->msg[pl + 1] = ' ';
    err->msg[pl + 2 + keep] = 0;
    return -1;
}
