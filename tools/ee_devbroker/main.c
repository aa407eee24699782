/* ee-devbroker: zero-setup, in-memory Kafka for `make demo` and local hacking.
 *
 * DEVELOPMENT ONLY. Wraps the librdkafka mock cluster (rdkafka_mock.h): a
 * handful of fake brokers on random 127.0.0.1 ports, reachable from other
 * processes while this one runs. Everything lives in memory and is lost on
 * exit; transactions are not really enforced; there is no admin API, so
 * topics are created here up front (--topic NAME:PARTITIONS). Integration
 * tests use a real Kafka 3.9 instead.
 *
 * Prints the bootstrap servers as one line on stdout once the cluster and
 * topics exist, optionally writes the same line atomically to
 * --bootstrap-file (removed again on clean exit), then waits for
 * SIGTERM/SIGINT, destroys the cluster and exits 0. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define PROG "ee-devbroker"
#define MAX_BROKERS 16
#define MAX_PARTITIONS 1024
#define MAX_TOPICS 256
#define MAX_TOPIC_NAME 249

struct topic_spec {
    char name[MAX_TOPIC_NAME + 1];
    int partitions;
};

static const struct topic_spec default_topics[] = {
    {"ee.dlq", 1},
};

static void usage(FILE *f)
{
    fprintf(f,
        "usage: " PROG " [--brokers N] [--topic NAME:PARTITIONS]... [--bootstrap-file PATH]\n"
        "\n"
        "Development-only in-memory Kafka (librdkafka mock cluster). Data is lost on\n"
        "exit, transactions are not enforced, there is no admin API. Prints the\n"
        "bootstrap servers as one line on stdout, then runs until SIGTERM/SIGINT.\n"
        "\n"
        "  --brokers N            number of mock brokers, 1..%d (default 1)\n"
        "  --topic NAME:PARTS     create topic NAME with PARTS partitions (1..%d);\n"
        "                         repeatable; always also created: ee.dlq:1\n"
        "                         (an explicit --topic ee.dlq:N overrides it)\n"
        "  --bootstrap-file PATH  also write the bootstrap line to PATH (atomic\n"
        "                         rename; removed on clean exit)\n"
        "  --help                 show this help\n",
        MAX_BROKERS, MAX_PARTITIONS);
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v;
    if (!s || !*s) return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

/* Kafka's legal topic names: [a-zA-Z0-9._-]{1,249}, not "." or "..". */
static int valid_topic_name(const char *s, size_t n)
{
    if (n == 0 || n > MAX_TOPIC_NAME) return 0;
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int parse_topic(const char *arg, struct topic_spec *t)
{
    const char *colon = strrchr(arg, ':');
    if (!colon) return -1;
    size_t n = (size_t)(colon - arg);
    if (!valid_topic_name(arg, n)) return -1;
    if (parse_int(colon + 1, 1, MAX_PARTITIONS, &t->partitions)) return -1;
    memcpy(t->name, arg, n);
    t->name[n] = '\0';
    return 0;
}

/* Adds or replaces (same name: later wins) a topic in the list. */
static int add_topic(struct topic_spec *list, int *cnt, const struct topic_spec *t)
{
    for (int i = 0; i < *cnt; i++)
        if (!strcmp(list[i].name, t->name)) {
            list[i].partitions = t->partitions;
            return 0;
        }
    if (*cnt >= MAX_TOPICS) return -1;
    list[(*cnt)++] = *t;
    return 0;
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Writes "line\n" to path via a temp file in the same directory + rename. */
static int write_file_atomic(const char *path, const char *line)
{
    char tmp[PATH_MAX];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    if (write_all(fd, line, strlen(line)) || write_all(fd, "\n", 1) || fsync(fd)) {
        int e = errno;
        close(fd);
        unlink(tmp);
        errno = e;
        return -1;
    }
    if (close(fd) || rename(tmp, path)) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int brokers = 1;
    const char *bootstrap_file = NULL;
    static struct topic_spec topics[MAX_TOPICS];
    int ntopics = 0;

    for (size_t i = 0; i < sizeof default_topics / sizeof default_topics[0]; i++)
        add_topic(topics, &ntopics, &default_topics[i]);

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        const char *eq = NULL;
        size_t alen = strlen(a);
        if (!strncmp(a, "--", 2) && (eq = strchr(a, '='))) {
            alen = (size_t)(eq - a);
            val = eq + 1;
        }
#define IS(flag) (alen == strlen(flag) && !strncmp(a, flag, alen))
#define NEED_VAL(flag)                                                        \
        do {                                                                  \
            if (!val) {                                                       \
                if (i + 1 >= argc) {                                          \
                    fprintf(stderr, PROG ": %s: missing value\n", flag);      \
                    return 2;                                                 \
                }                                                             \
                val = argv[++i];                                              \
            }                                                                 \
        } while (0)
        if (IS("--help") || IS("-h")) {
            if (val) {
                fprintf(stderr, PROG ": --help: takes no value\n");
                return 2;
            }
            usage(stdout);
            return 0;
        } else if (IS("--brokers")) {
            NEED_VAL("--brokers");
            if (parse_int(val, 1, MAX_BROKERS, &brokers)) {
                fprintf(stderr, PROG ": --brokers: '%s' is not an integer in 1..%d\n",
                        val, MAX_BROKERS);
                return 2;
            }
        } else if (IS("--topic")) {
            struct topic_spec t;
            NEED_VAL("--topic");
            if (parse_topic(val, &t)) {
                fprintf(stderr,
                        PROG ": --topic: '%s' is not NAME:PARTITIONS (NAME [a-zA-Z0-9._-]{1,%d}, "
                        "PARTITIONS 1..%d)\n", val, MAX_TOPIC_NAME, MAX_PARTITIONS);
                return 2;
            }
            if (add_topic(topics, &ntopics, &t)) {
                fprintf(stderr, PROG ": --topic: more than %d topics\n", MAX_TOPICS);
                return 2;
            }
        } else if (IS("--bootstrap-file")) {
            NEED_VAL("--bootstrap-file");
            if (!*val) {
                fprintf(stderr, PROG ": --bootstrap-file: empty path\n");
                return 2;
            }
            bootstrap_file = val;
        } else {
            fprintf(stderr, PROG ": unknown argument '%s' (try --help)\n", a);
            return 2;
        }
#undef IS
#undef NEED_VAL
    }

    /* Block the stop signals before librdkafka starts its threads (they
     * inherit the mask), then wait for them synchronously with sigwait. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* log_level 3 = LOG_ERR: keeps the "no bootstrap.servers" notice and
     * connection chatter from other clients out of the output. */
    if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "client.id", PROG, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, PROG ": config: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, PROG ": rd_kafka_new: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }

    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
    if (!mc) {
        fprintf(stderr, PROG ": failed to create mock cluster with %d broker(s)\n", brokers);
        rd_kafka_destroy(rk);
        return 1;
    }

    int rf = brokers < 3 ? brokers : 3;
    int rc = 0;
    for (int i = 0; i < ntopics; i++) {
        rd_kafka_resp_err_t err =
            rd_kafka_mock_topic_create(mc, topics[i].name, topics[i].partitions, rf);
        if (err) {
            fprintf(stderr, PROG ": creating topic %s:%d: %s\n", topics[i].name,
                    topics[i].partitions, rd_kafka_err2str(err));
            rc = 1;
            goto out;
        }
    }

    const char *bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
    if (bootstrap_file && write_file_atomic(bootstrap_file, bootstraps)) {
        fprintf(stderr, PROG ": --bootstrap-file: cannot write '%s': %s\n", bootstrap_file,
                strerror(errno));
        rc = 1;
        goto out;
    }
    if (printf("%s\n", bootstraps) < 0 || fflush(stdout)) {
        /* Nobody is listening on stdout (closed pipe): keep running, the
         * bootstrap file (if any) is the way to find us. */
        clearerr(stdout);
    }

    int sig = 0;
    while (sigwait(&stop, &sig) != 0)
        ;

    if (bootstrap_file) unlink(bootstrap_file);
out:
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return rc;
}
