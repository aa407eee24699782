/* prod_opts: the flags the subcommands share, read from a parsed flag
 * table by name (a flag missing from a subcommand's table is skipped), and
 * checked with one-line messages naming the flag. */
#ifndef PROD_OPTS_H
#define PROD_OPTS_H

#include "prod_args.h"
#include "prod_jobs.h"
#include "prod_kafka.h"
#include "prod_lines.h"

#include "ee_error.h"
#include "ee_proto.h"

#include <stdbool.h>
#include <stddef.h>

#define PROD_TOKENS_MAX 1048576 /* --max-tokens and class thresholds */
#define PROD_TIMEOUT_MAX 86400000LL /* one day */

typedef struct prod_common {
    prod_kafka_opts kafka;          /* --bootstrap, --kafka PROP=VALUE ... */
    const char *key_path;           /* --key */
    const char *plain_path;         /* --plain-model */
    const char *scheme;             /* --scheme (NULL: current, model-bound) */
    const char *pool_pk;            /* --pool-pk HEX: seal requests to the worker pool */
    const char *client_key;         /* --client-key FILE: sign requests, open sealed replies */
    const char *tenant;             /* --tenant NAME: who signs (the worker's [tenant NAME]) */
    const char *reply_to;           /* --reply-to, or reply_default */
    char reply_default[EE_PROTO_TOPIC_MAX + 1];
    bool json;                      /* --json */
    long long timeout_ms;           /* --timeout-ms */
    int reply_partitions;           /* --reply-partitions (default 1) */
    int reply_replication;          /* --reply-replication (default -1: broker's) */
} prod_common;

/* Checks the values given; prod_common_require then checks that
 * --bootstrap, --key and --plain-model were given (values are checked
 * first so that a bad value is reported even when a flag is missing). */
int prod_common_parse(prod_common *c, cli_flag *f, size_t n, long long default_timeout_ms,
                      ee_err *err);
int prod_common_require(const prod_common *c, ee_err *err);
/* Checks the values given, then that --model was; reply_to is taken from c. */
int prod_gen_parse(prod_gen_opts *g, cli_flag *f, size_t n, const prod_common *c, ee_err *err);
/* Exactly one of --prompt / --prompts-file. */
int prod_prompts_parse(prod_lines *l, cli_flag *f, size_t n, ee_err *err);

#endif
