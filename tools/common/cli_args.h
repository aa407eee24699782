/* cli_args: strict command-line parsing shared by the ee-model and
 * ee-producer subcommands. Every failure is one line naming the flag and the
 * bad value. */
#ifndef EE_CLI_ARGS_H
#define EE_CLI_ARGS_H

#include "ee_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cli_flag {
    const char *name;     /* "--model" */
    bool has_value;       /* takes the next argument (or --flag=value) */
    bool repeat;          /* may be given several times (values[]) */
    const char *value;    /* out: the (last) value (has_value) */
    bool present;         /* out: seen */
    const char **values;  /* out, repeat only: every value, malloc'd array */
    size_t n_values;
} cli_flag;

/* Parse argv[0..argc) against flags; rejects unknown flags, positional
 * arguments, repeated non-repeatable flags and missing values. Free the
 * repeat arrays with cli_flags_free (also after a failure). */
int cli_parse(int argc, char **argv, cli_flag *flags, size_t n_flags, ee_err *err);
void cli_flags_free(cli_flag *flags, size_t n_flags);
/* The flag named name, or NULL if the table has none. */
cli_flag *cli_get(cli_flag *flags, size_t n_flags, const char *name);
/* Whether argv holds --help or -h (checked before parsing so that help
 * works even next to a bad flag). */
bool cli_wants_help(int argc, char **argv);

int cli_int(const char *flag, const char *s, long min, long max, long *out, ee_err *err);
int cli_u64(const char *flag, const char *s, uint64_t *out, ee_err *err);
int cli_float(const char *flag, const char *s, double min, double max, double *out,
              ee_err *err);
/* "1,2,3" -> ids (malloc'd). Each must be in [0, n_vocab). */
int cli_token_list(const char *flag, const char *s, int32_t n_vocab, int32_t **ids,
                   size_t *n, ee_err *err);

#endif
