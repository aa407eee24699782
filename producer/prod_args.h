/* prod_args: number flags of the ee-producer subcommands (the flag parser
 * itself is tools/common/cli_args). Every failure is one line naming the
 * flag and the bad value, e.g.
 *   --max-tokens: 'abc' is not an integer in 1..1048576 */
#ifndef PROD_ARGS_H
#define PROD_ARGS_H

#include "cli_args.h"
#include "ee_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Numbers: the whole string, in [min, max]; messages name the flag. */
int prod_int(const char *flag, const char *s, long long min, long long max, long long *out,
             ee_err *err);
int prod_float(const char *flag, const char *s, double min, double max, double *out,
               ee_err *err);

#endif
