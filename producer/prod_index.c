/* ee-producer index: the key holder puts documents into a blind index.
 *
 * Each document is tokenized with the plaintext encoder's tokenizer,
 * encrypted, and embedded BLIND by the workers (embed jobs); its sealed
 * text (ee_docseal) and the encrypted vector the worker returned then go
 * to the index's compacted topic ee.index.<name>, one record per document
 * (key = document id). Workers serving the index load that topic; nothing
 * in it can be read without the key (docs/RAG.md). */
#include "prod_admin.h"
#include "prod_client.h"
#include "prod_cmds.h"
#include "prod_collect.h"
#include "prod_exit.h"
#include "prod_ids.h"
#include "prod_jobs.h"
#include "prod_opts.h"
#include "prod_print.h"
#include "prod_run.h"
#include "prod_session.h"
#include "prod_tracker.h"

#include "ee_clock.h"
#include "ee_docseal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *USAGE =
    "usage: ee-producer index --bootstrap HOST:PORT --model ENCODER --index NAME\n"
    "         --key K.eekey --plain-model PLAIN.gguf (--docs FILE|- | --delete ID)\n"
    "         [--id-prefix P] [--json] [--timeout-ms N] [--reply-to TOPIC] [--kafka PROP=VAL ...]\n"
    "\n"
    "  Adds documents to the blind index NAME (docs/RAG.md). --docs holds one\n"
    "  document per non-blank line: plain text (id P1, P2, ...; --id-prefix, default\n"
    "  doc-) or a JSON object {\"id\": ..., \"text\": ...}. Each text is embedded by the\n"
    "  workers serving ENCODER from its encrypted ids; the returned encrypted vector\n"
    "  and the text sealed under a key derived from K go to the compacted topic\n"
    "  ee.index.NAME (created if missing). A document id already there is replaced.\n"
    "  --delete ID removes a document (a tombstone). Prints one line per document\n"
    "  (--json: objects), then a summary.\n"
    "\n" PROD_EXIT_HELP;

enum { BOOT, MODEL, INDEX, KEY, PLAIN, DOCS, DEL, PREFIX, JSON, TIMEOUT, REPLY, KAFKA, HELP, NF };

typedef struct doc {
    char *id;
    char *text;
} doc;

/* One document per line: text, or {"id": ..., "text": ...}. */
static int read_docs(const char *path, const char *prefix, doc **out, size_t *n, ee_err *err) {
    prod_lines l = {0};
    if (prod_lines_read(&l, path, err)) return ee_err_wrap(err, "--docs");
    doc *d = calloc(l.n, sizeof *d);
    int rc = d ? 0 : ee_err_set(err, "out of memory");
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        const char *line = l.v[i];
        while (*line == ' ' || *line == '\t') line++;
        if (*line == '{') {
            json_error_t je;
            json_t *o = json_loads(line, JSON_REJECT_DUPLICATES, &je);
            json_t *id = o ? json_object_get(o, "id") : NULL, *tx = o ? json_object_get(o, "text") : NULL;
            if (!json_is_string(id) || !json_is_string(tx)) {
                rc = ee_err_set(err, "--docs line %zu: a JSON line needs string fields id and text", i + 1);
            } else {
                d[i].id = strdup(json_string_value(id));
                d[i].text = strdup(json_string_value(tx));
            }
            json_decref(o);
        } else {
            char id[64];
            snprintf(id, sizeof id, "%.40s%zu", prefix, i + 1);
            d[i].id = strdup(id);
            d[i].text = strdup(line);
        }
        if (rc == 0 && (!d[i].id || !d[i].text)) rc = ee_err_set(err, "out of memory");
        if (rc == 0 && !ee_proto_valid_id(d[i].id))
            rc = ee_err_set(err, "--docs line %zu: '%.64s' is not a valid document id", i + 1, d[i].id);
        for (size_t j = 0; rc == 0 && j < i; j++)
            if (strcmp(d[i].id, d[j].id) == 0)
                rc = ee_err_set(err, "--docs line %zu: document id %s is used twice (line %zu)",
                                i + 1, d[i].id, j + 1);
    }
    *out = d;
    *n = l.n;
    prod_lines_free(&l);
    return rc;
}

/* Produce one record to the index topic and wait for its acknowledgement. */
static int put_record(rd_kafka_t *rk, const char *topic, const char *id, const char *value,
                      ee_err *err) {
    rd_kafka_resp_err_t e = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(id, strlen(id)),
        RD_KAFKA_V_VALUE((void *)value, value ? strlen(value) : 0),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (e) return ee_err_set(err, "producing document %s to %s: %s", id, topic, rd_kafka_err2str(e));
    return 0;
}

int prod_cmd_index(int argc, char **argv) {
    cli_flag f[NF] = {
        [BOOT] = {"--bootstrap", true}, [MODEL] = {"--model", true},   [INDEX] = {"--index", true},
        [KEY] = {"--key", true},        [PLAIN] = {"--plain-model", true}, [DOCS] = {"--docs", true},
        [DEL] = {"--delete", true},     [PREFIX] = {"--id-prefix", true}, [JSON] = {"--json", false},
        [TIMEOUT] = {"--timeout-ms", true}, [REPLY] = {"--reply-to", true},
        [KAFKA] = {"--kafka", true, true}, [HELP] = {"--help", false},
    };
    if (cli_wants_help(argc, argv)) {
        fputs(USAGE, stdout);
        return PROD_EXIT_OK;
    }
    ee_err err = {{0}};
    prod_common c;
    prod_gen_opts g;
    prod_client cl = {0};
    prod_session ss = {0};
    prod_tracker tr = {0};
    prod_print pr = {0};
    prod_collect col = {0};
    doc *docs = NULL;
    size_t n = 0;
    prod_batch jb = {0};
    const char **texts = NULL;
    char *topic = NULL;
    int rc = PROD_EXIT_USAGE;
    if (cli_parse(argc, argv, f, NF, &err) || prod_common_parse(&c, f, NF, 300000, &err) ||
        prod_gen_parse(&g, f, NF, &c, &err) || prod_common_require(&c, &err))
        goto done;
    if (!f[INDEX].present || !(topic = ee_proto_index_topic(f[INDEX].value, &err))) {
        if (!f[INDEX].present) ee_err_set(&err, "--index NAME is required");
        goto done;
    }
    if (f[DOCS].present == f[DEL].present) {
        ee_err_set(&err, "give --docs FILE (add documents) or --delete ID");
        goto done;
    }
    g.task = EE_TASK_EMBED;
    if (prod_client_open(&cl, c.plain_path, c.key_path, c.scheme, &err)) goto done;
    if (!cl.wp) {
        ee_err_set(&err, "--plain-model %s is not an encoder (an index holds an encoder's "
                         "embeddings, e.g. all-MiniLM-L6-v2)", c.plain_path);
        goto done;
    }
    double deadline = ee_now_ms() + (double)c.timeout_ms;
    if (f[DEL].present) {
        if (!ee_proto_valid_id(f[DEL].value)) {
            ee_err_set(&err, "--delete: '%s' is not a valid document id", f[DEL].value);
            goto done;
        }
        rc = prod_session_open(&ss, &c, NULL, 0, false, (int)c.timeout_ms, deadline, &err);
        if (rc) goto done;
        rc = PROD_EXIT_KAFKA;
        if (prod_admin_ensure_topic_ex(ss.producer, &ss.cap, c.kafka.bootstrap, topic, 1, -1,
                                       "compact", deadline, &err) < 0 ||
            put_record(ss.producer, topic, f[DEL].value, NULL, &err))
            goto done;
        if (rd_kafka_flush(ss.producer, prod_ms_left(deadline)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            ee_err_set(&err, "the deletion of %s was not acknowledged in time", f[DEL].value);
            goto done;
        }
        printf(c.json ? "{\"event\":\"deleted\",\"id\":\"%s\",\"index\":\"%s\"}\n"
                      : "deleted %s from index %s\n", f[DEL].value, f[INDEX].value);
        rc = PROD_EXIT_OK;
        goto done;
    }
    if (read_docs(f[DOCS].value, f[PREFIX].present ? f[PREFIX].value : "doc-", &docs, &n, &err))
        goto done;
    texts = malloc(sizeof *texts * (n ? n : 1));
    if (!texts) {
        ee_err_set(&err, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) texts[i] = docs[i].text;
    size_t bad;
    if (prod_batch_make(&jb, &cl, texts, n, &g, &bad, &err)) {
        ee_err_wrap(&err, "document %s", docs[bad].id);
        goto done;
    }
    rc = prod_session_open(&ss, &c, jb.topics, n, true, (int)c.timeout_ms, deadline, &err);
    if (rc) goto done;
    rc = PROD_EXIT_KAFKA;
    if (prod_admin_ensure_topic_ex(ss.producer, &ss.cap, c.kafka.bootstrap, topic, 1, -1,
                                   "compact", deadline, &err) < 0)
        goto done;
    pr = (prod_print){.cl = &cl, .quiet = true};
    col = (prod_collect){.rep = &ss.rep, .tr = &tr, .cl = &cl, .pr = &pr, .cap = &ss.cap};
    prod_run_spec sp = {.cl = &cl, .g = &g, .reply_to = c.reply_to, .pp = jb.pp, .ids = jb.ids,
                        .bodies = jb.bodies, .n = n, .wait = true, .timeout_ms = c.timeout_ms};
    rc = prod_run(&sp, &ss, &col, deadline, &err);
    size_t ok = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        prod_job *j = prod_tracker_find(&tr, jb.ids[i]);
        if (!j || j->state != PROD_JOB_OK || !j->final.embedding) {
            failed++;
            const char *why = j && j->final.error_message ? j->final.error_message
                              : j && j->problem ? j->problem : "no embedding";
            fprintf(stderr, "ee-producer index: document %s: %s\n", docs[i].id, why);
            continue;
        }
        ee_err e2 = {{0}};
        char *sealed = ee_doc_seal(cl.doc_key, docs[i].id, docs[i].text, strlen(docs[i].text), &e2);
        ee_proto_index_record r = {.id = docs[i].id, .key_id = cl.key_id,
                                   .embedding = j->final.embedding, .dim = j->final.dim,
                                   .doc = sealed};
        char *js = sealed ? ee_proto_index_record_to_json(&r, &e2) : NULL;
        int prc = js ? put_record(ss.producer, topic, docs[i].id, js, &e2) : -1;
        free(js);
        free(sealed);
        if (prc) {
            failed++;
            fprintf(stderr, "ee-producer index: document %s: %s\n", docs[i].id, e2.msg);
            continue;
        }
        ok++;
        if (c.json)
            printf("{\"event\":\"indexed\",\"id\":\"%s\",\"tokens\":%zu}\n", docs[i].id, jb.pp[i].n);
        else
            printf("%s\n", docs[i].id);
    }
    if (rd_kafka_flush(ss.producer, prod_ms_left(deadline) > 0 ? prod_ms_left(deadline) : 1000) !=
        RD_KAFKA_RESP_ERR_NO_ERROR) {
        ee_err_set(&err, "index records were not all acknowledged in time");
        rc = PROD_EXIT_KAFKA;
        goto done;
    }
    fprintf(stderr, "ee-producer index: %zu document(s) in %s, %zu failed\n", ok, topic, failed);
    if (failed && rc == PROD_EXIT_OK) rc = PROD_EXIT_REPLY;
    if (!failed) rc = PROD_EXIT_OK, err.msg[0] = 0;
done:
    if (err.msg[0] && rc != PROD_EXIT_OK) prod_fail("index", rc, err.msg);
    prod_session_close(&ss);
    prod_tracker_free(&tr);
    prod_batch_free(&jb);
    for (size_t i = 0; docs && i < n; i++) free(docs[i].id), free(docs[i].text);
    free(texts), free(docs), free(topic);
    prod_client_close(&cl);
    cli_flags_free(f, NF);
    return rc;
}
