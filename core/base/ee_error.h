/* ee_error: error reporting for library code.
 *
 * Library functions never print or exit. They return a status (0 ok, -1
 * failure, or NULL for constructors) and fill an ee_err with a one-line
 * message that names what is wrong (file, field, offset, value). The caller
 * decides whether to print it. A NULL ee_err pointer is allowed and means
 * "caller does not want the message". */
#ifndef EE_ERROR_H
#define EE_ERROR_H

#include <stddef.h>

#define EE_ERR_MAX 512

typedef struct ee_err {
    char msg[EE_ERR_MAX];
} ee_err;

/* Set the message (printf-style). Always returns -1 so callers can write
 * `return ee_err_set(err, "...")`. */
int ee_err_set(ee_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefix the existing message with context: "ctx: old message". Returns -1. */
int ee_err_wrap(ee_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
