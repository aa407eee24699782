/* cli_args: strict command-line parsing shared by the ee-model subcommands.
 * Every failure is one line naming the flag and the bad value. */
#ifndef EE_CLI_ARGS_H
#define EE_CLI_ARGS_H

#include "ee_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cli_flag {
    const char *name;   /* "--model" */
    bool has_value;     /* takes the next argument */
    const char *value;  /* out: the value (has_value) */
    bool present;       /* out: seen */
} cli_flag;

/* Parse argv[0..argc) against flags; rejects unknown flags, positional
 * arguments, repeated flags and missing values. */
int cli_parse(int argc, char **argv, cli_flag *flags, size_t n_flags, ee_err *err);
cli_flag *cli_get(cli_flag *flags, size_t n_flags, const char *name);

int cli_int(const char *flag, const char *s, long min, long max, long *out, ee_err *err);
int cli_u64(const char *flag, const char *s, uint64_t *out, ee_err *err);
int cli_float(const char *flag, const char *s, double min, double max, double *out,
              ee_err *err);
/* "1,2,3" -> ids (malloc'd). Each must be in [0, n_vocab). */
int cli_token_list(const char *flag, const char *s, int32_t n_vocab, int32_t **ids,
                   size_t *n, ee_err *err);

#endif
