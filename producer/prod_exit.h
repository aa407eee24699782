/* Exit codes of ee-producer (also in --help and docs/PROTOCOL.md). When
 * several apply, the highest wins: a Kafka failure hides a timeout, a
 * timeout hides an error reply, so scripts see the most serious problem. */
#ifndef PROD_EXIT_H
#define PROD_EXIT_H

enum {
    PROD_EXIT_OK = 0,      /* every job got an ok final reply (or was delivered) */
    PROD_EXIT_USAGE = 1,   /* bad flag or input: key, model, prompt file, ... */
    PROD_EXIT_REPLY = 2,   /* at least one error reply (or an unreadable one) */
    PROD_EXIT_TIMEOUT = 3, /* --timeout-ms passed with jobs still pending */
    PROD_EXIT_KAFKA = 4,   /* Kafka unreachable, topic missing, produce failed */
};

#define PROD_EXIT_HELP                                                            \
    "exit codes: 0 all ok; 1 usage or bad input (flag, key, model, file);\n"     \
    "  2 at least one error reply; 3 timeout (jobs still pending);\n"            \
    "  4 Kafka unreachable, topic missing or produce failed (highest wins)\n"

static inline int prod_exit_worst(int a, int b) { return a > b ? a : b; }

#endif
