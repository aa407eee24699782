/* ee-producer wait: collect the answers of jobs submitted earlier (without
 * --wait), by id, reading the reply topic from its beginning. */
#include "prod_client.h"
#include "prod_cmds.h"
#include "prod_collect.h"
#include "prod_exit.h"
#include "prod_opts.h"
#include "prod_print.h"
#include "prod_replies.h"
#include "prod_tracker.h"

#include "ee_clock.h"

#include <stdio.h>
#include <string.h>

static const char *USAGE =
    "usage: ee-producer wait --bootstrap HOST:PORT --id ID [--id ID ...] --key K.eekey\n"
    "         --plain-model PLAIN.gguf [--reply-to TOPIC] [--json] [--timeout-ms N]\n"
    "         [--kafka PROP=VALUE ...] [--scheme ee-llama-v1]   (legacy models)\n"
    "         [--client-key FILE]   (opens replies sealed to the jobs' reply keys)\n"
    "\n"
    "  Reads the reply topic (default ee.replies.<host name>, as submit) from the\n"
    "  beginning of every partition and prints the decrypted answer of each id as\n"
    "  submit --wait does (several ids: 'ID: text'; --json: one result object per\n"
    "  id). The first final reply of an id wins; replies for other ids are skipped.\n"
    "  Waits for ids not answered yet until --timeout-ms (default 120000).\n"
    "\n" PROD_EXIT_HELP;

enum { BOOT, REPLY, ID, KEY, PLAIN, SCHEME, CKEY, JSON, TIMEOUT, KAFKA, NF };

/* Partition count of the reply topic, or -1 with err. */
static int reply_partitions(rd_kafka_t *rk, prod_kcap *cap, const prod_common *c,
                            double deadline, ee_err *err) {
    const struct rd_kafka_metadata *md = NULL;
    if (prod_kafka_metadata(rk, cap, c->kafka.bootstrap, deadline, &md, err)) return -1;
    int n = prod_kafka_partitions(md, c->reply_to, NULL);
    rd_kafka_metadata_destroy(md);
    if (n < 0)
        return ee_err_set(err, "reply topic '%s' does not exist at %s (see --reply-to)",
                          c->reply_to, c->kafka.bootstrap);
    return n;
}

/* Reads the reply topic until every id is settled or the deadline passes;
 * returns the exit code. */
static int collect(const prod_common *c, prod_client *cl, prod_tracker *tr, ee_err *err) {
    const double deadline = ee_now_ms() + (double)c->timeout_ms;
    prod_kcap cap;
    prod_replies rep = {0};
    prod_print pr;
    prod_collect col;
    if (prod_kcap_init(&cap, &c->kafka, err)) return PROD_EXIT_USAGE;
    int rc = PROD_EXIT_KAFKA, parts;
    if (prod_replies_open(&rep, &c->kafka, &cap, err) ||
        (parts = reply_partitions(rep.rk, &cap, c, deadline, err)) < 0 ||
        prod_replies_assign(&rep, &c->kafka, &cap, c->reply_to, parts, true, deadline, err))
        goto done;
    pr = (prod_print){.cl = cl, .json = c->json, .multi = tr->n > 1};
    col = (prod_collect){.rep = &rep, .tr = tr, .cl = cl, .pr = &pr, .cap = &cap};
    while (tr->pending) {
        int left = prod_ms_left(deadline);
        if (left == 0) {
            prod_collect_give_up(&col, c->timeout_ms, err);
            break;
        }
        if (prod_collect_step(&col, left < 100 ? left : 100, err)) {
            col.exit_code = prod_exit_worst(col.exit_code, PROD_EXIT_KAFKA);
            break;
        }
    }
    rc = col.exit_code;
done:
    prod_replies_close(&rep);
    prod_kcap_destroy(&cap);
    return rc;
}

int prod_cmd_wait(int argc, char **argv) {
    cli_flag f[NF] = {
        [BOOT] = {"--bootstrap", true},  [REPLY] = {"--reply-to", true},
        [ID] = {"--id", true, true},     [KEY] = {"--key", true},
        [PLAIN] = {"--plain-model", true}, [SCHEME] = {"--scheme", true}, [CKEY] = {"--client-key", true}, [JSON] = {"--json", false},
        [TIMEOUT] = {"--timeout-ms", true}, [KAFKA] = {"--kafka", true, true},
    };
    if (cli_wants_help(argc, argv)) {
        fputs(USAGE, stdout);
        return PROD_EXIT_OK;
    }
    ee_err err = {{0}};
    prod_common c;
    prod_client cl = {0};
    prod_tracker tr = {0};
    int rc = PROD_EXIT_USAGE;
    if (cli_parse(argc, argv, f, NF, &err) || prod_common_parse(&c, f, NF, 120000, &err) ||
        prod_common_require(&c, &err))
        goto done;
    if (!f[ID].present) {
        ee_err_set(&err, "--id ID is required (repeat it for several jobs)");
        goto done;
    }
    for (size_t i = 0; i < f[ID].n_values; i++) {
        const char *id = f[ID].values[i];
        if (!ee_proto_valid_id(id)) {
            ee_err_set(&err, "--id: '%s' is not a valid job id (1..128 bytes, no control "
                             "characters)", id);
            goto done;
        }
        /* the same id twice is one job */
        if (!prod_tracker_find(&tr, id) && !prod_tracker_add(&tr, id, &err)) goto done;
    }
    if (prod_client_open(&cl, c.plain_path, c.key_path, c.scheme, &err) ||
        prod_client_secure(&cl, NULL, c.client_key, NULL, &err))
        goto done;
    rc = collect(&c, &cl, &tr, &err);
done:
    if (err.msg[0]) prod_fail("wait", rc, err.msg);
    prod_tracker_free(&tr);
    prod_client_close(&cl);
    cli_flags_free(f, NF);
    return rc;
}
