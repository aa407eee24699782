/* prod_args: strict command-line parsing for the ee-producer subcommands
 * (a copy of tools/ee_model/cli_args with repeatable flags added). Every
 * failure is one line naming the flag and the bad value, e.g.
 *   --max-tokens: 'abc' is not an integer in 1..1048576 */
#ifndef PROD_ARGS_H
#define PROD_ARGS_H

#include "ee_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct prod_flag {
    const char *name;     /* "--model" */
    bool has_value;       /* takes the next argument (or --flag=value) */
    bool repeat;          /* may be given several times (values[]) */
    const char *value;    /* out: the (last) value */
    bool present;         /* out: seen */
    const char **values;  /* out, repeat only: every value, malloc'd array */
    size_t n_values;
} prod_flag;

/* Parse argv[0..argc) against flags; rejects unknown flags, positional
 * arguments, repeated non-repeatable flags and missing values. Free the
 * repeat arrays with prod_flags_free (also after a failure). */
int prod_parse(int argc, char **argv, prod_flag *flags, size_t n_flags, ee_err *err);
void prod_flags_free(prod_flag *flags, size_t n_flags);
/* The flag named name, or NULL if the table has none. */
prod_flag *prod_get(prod_flag *flags, size_t n_flags, const char *name);
/* Whether argv holds --help or -h (checked before parsing so that help
 * works even next to a bad flag). */
bool prod_wants_help(int argc, char **argv);

/* Numbers: the whole string, in [min, max]; messages name the flag. */
int prod_int(const char *flag, const char *s, long long min, long long max, long long *out,
             ee_err *err);
int prod_float(const char *flag, const char *s, double min, double max, double *out,
               ee_err *err);

#endif
