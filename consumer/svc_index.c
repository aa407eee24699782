/* Blind indexes: the worker's in-memory copy of each compacted topic
 * ee.index.<name> (docs/RAG.md), searched by search jobs.
 *
 * Kafka is the store. Every worker that serves an index reads its topic
 * from the beginning at start (an assign()ed consumer, not a group member:
 * every worker needs every document), up to the end offsets it saw when it
 * started, before it takes jobs; then it follows the topic for new
 * documents and deletions (null values) on the poll thread. Nothing here
 * can read a document: records hold the encrypted vector and the sealed
 * text, and the worker has no key.
 *
 * Threads: the poll thread applies records (write lock), the inference
 * thread searches (read lock); ee_vindex has its own lock too. */
#include "svc_index.h"

#include "svc_kafka.h"
#include "svc_log.h"

#include "ee_buf.h"
#include "ee_clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOAD_TIMEOUT_MS 120000

/* ---- documents: id <-> slot (the vector's id in the index) ---------------------- */

static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

/* The slot of id, or -1. Caller holds the lock. */
static int64_t slot_find(const svc_index *ix, const char *id) {
    if (!ix->hcap) return -1;
    for (size_t i = fnv1a(id) & (ix->hcap - 1);; i = (i + 1) & (ix->hcap - 1)) {
        int64_t sl = ix->hash[i];
        if (sl < 0) return -1;
        if (strcmp(ix->ids[sl], id) == 0) return sl;
    }
}

static int hash_insert(svc_index *ix, int64_t sl) {
    for (size_t i = fnv1a(ix->ids[sl]) & (ix->hcap - 1);; i = (i + 1) & (ix->hcap - 1))
        if (ix->hash[i] < 0) {
            ix->hash[i] = sl;
            return 0;
        }
}

/* A new slot for id (ids are never forgotten: a deleted id keeps its slot
 * for when it comes back). */
static int64_t slot_add(svc_index *ix, const char *id, ee_err *err) {
    if ((ix->n_slots + 1) * 2 > ix->hcap) {
        size_t nc = ix->hcap ? ix->hcap * 2 : 1024;
        int64_t *h = malloc(nc * sizeof *h);
        if (!h) return ee_err_set(err, "out of memory");
        free(ix->hash);
        ix->hash = h;
        ix->hcap = nc;
        for (size_t i = 0; i < nc; i++) h[i] = -1;
        for (size_t s = 0; s < ix->n_slots; s++) hash_insert(ix, (int64_t)s);
    }
    if (ee_array_reserve(&ix->ids, &ix->cap_slots, ix->n_slots + 1, sizeof *ix->ids, err)) return -1;
    size_t cap2 = ix->cap_docs;
    if (ee_array_reserve(&ix->docs, &cap2, ix->n_slots + 1, sizeof *ix->docs, err)) return -1;
    ix->cap_docs = cap2;
    char *c = strdup(id);
    if (!c) return ee_err_set(err, "out of memory");
    int64_t sl = (int64_t)ix->n_slots++;
    ix->ids[sl] = c;
    ix->docs[sl] = NULL;
    hash_insert(ix, sl);
    return sl;
}

/* ---- applying records -------------------------------------------------------------- */

static void reject(svc_index *ix, const rd_kafka_message_t *m, const char *why) {
    ix->rejected++;
    json_t *f = json_object();
    json_object_set_new(f, "index", json_string(ix->name));
    json_object_set_new(f, "partition", json_integer(m->partition));
    json_object_set_new(f, "offset", json_integer(m->offset));
    json_object_set_new(f, "error", json_string(why));
    svc_log("warn", "index_record_rejected", f);
}

/* One record of the topic: an upsert, or a deletion (null value). A bad
 * record is logged and skipped (it is the key holder's, and a compacted
 * topic keeps only its newest record per id anyway). */
static void apply(svc *s, svc_index *ix, const rd_kafka_message_t *m) {
    if (!m->key || m->key_len == 0 || m->key_len > EE_PROTO_ID_MAX) {
        reject(ix, m, "record key: missing or too long (the document id)");
        return;
    }
    char id[EE_PROTO_ID_MAX + 1];
    memcpy(id, m->key, m->key_len);
    id[m->key_len] = '\0';
    ee_err err = {{0}};
    if (!m->payload) { /* deletion */
        pthread_rwlock_wrlock(&ix->lock);
        int64_t sl = slot_find(ix, id);
        if (sl >= 0 && ix->docs[sl]) {
            ee_vindex_remove(ix->vx, sl, &err);
            free(ix->docs[sl]);
            ix->docs[sl] = NULL;
            ix->live--;
        }
        pthread_rwlock_unlock(&ix->lock);
        return;
    }
    ee_proto_index_record r;
    if (ee_proto_index_record_parse(m->payload, m->len, &r, &err)) {
        reject(ix, m, err.msg);
        return;
    }
    const svc_model *sm = &s->models[ix->model];
    char why[256] = "";
    if (strcmp(r.id, id) != 0)
        snprintf(why, sizeof why, "record key '%s' differs from its id '%.64s'", id, r.id);
    else if (strcmp(r.key_id, sm->key_id) != 0)
        snprintf(why, sizeof why, "document %.64s: key_id %s is not model %s's (%s)", r.id, r.key_id,
                 sm->name, sm->key_id);
    else if ((int)r.dim != ix->dim)
        snprintf(why, sizeof why, "document %.64s: %zu values, the model's embeddings have %d",
                 r.id, r.dim, ix->dim);
    if (*why) {
        reject(ix, m, why);
        ee_proto_index_record_free(&r);
        return;
    }
    pthread_rwlock_wrlock(&ix->lock);
    int64_t sl = slot_find(ix, id);
    if (sl < 0) sl = slot_add(ix, id, &err);
    int rc = sl < 0 ? -1 : ee_vindex_upsert(ix->vx, &sl, r.embedding, 1, &err);
    if (rc == 0) {
        if (!ix->docs[sl]) ix->live++;
        free(ix->docs[sl]);
        ix->docs[sl] = r.doc; /* taken */
        r.doc = NULL;
    }
    pthread_rwlock_unlock(&ix->lock);
    if (rc) reject(ix, m, err.msg);
    ee_proto_index_record_free(&r);
}

/* ---- opening: create, assign, catch up ------------------------------------------- */

static int create_topic(svc *s, const char *topic, ee_err *err) {
    char e[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, 1, (int)s->cfg->topic_replication, e,
                                                    sizeof e);
    if (!nt) return ee_err_set(err, "topic %s: %s", topic, e);
    rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
    rd_kafka_queue_t *q = rd_kafka_queue_new(s->producer);
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(s->producer, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(o, 15000, e, sizeof e);
    rd_kafka_CreateTopics(s->producer, &nt, 1, o, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 20000);
    int rc = 0;
    const rd_kafka_CreateTopics_result_t *res = ev ? rd_kafka_event_CreateTopics_result(ev) : NULL;
    if (!res) {
        rc = ee_err_set(err, "creating topic %s: %s", topic,
                        ev ? rd_kafka_event_error_string(ev) : "no answer in 20 s");
    } else {
        size_t cnt = 0;
        const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &cnt);
        rd_kafka_resp_err_t te = cnt ? rd_kafka_topic_result_error(tr[0]) : RD_KAFKA_RESP_ERR_NO_ERROR;
        if (te == RD_KAFKA_RESP_ERR_NO_ERROR) {
            json_t *f = json_object();
            json_object_set_new(f, "topic", json_string(topic));
            json_object_set_new(f, "cleanup_policy", json_string("compact"));
            svc_log("info", "topic_created", f);
        } else if (te != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            rc = ee_err_set(err, "creating topic %s: %s", topic, rd_kafka_err2str(te));
        }
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

/* Assign every partition of the topic from the beginning and read up to
 * the end offsets as of now. */
static int load(svc *s, svc_index *ix, ee_err *err) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(ix->rk, ix->topic, NULL);
    rd_kafka_resp_err_t me;
    /* a topic just created takes a moment to appear with leaders everywhere */
    for (double until = ee_now_ms() + 20000;; usleep(200 * 1000)) {
        if (md) rd_kafka_metadata_destroy(md);
        md = NULL;
        me = rd_kafka_metadata(ix->rk, 0, rkt, &md, 10000);
        bool ready = !me && md && md->topic_cnt == 1 && !md->topics[0].err &&
                     md->topics[0].partition_cnt > 0;
        for (int p = 0; ready && p < md->topics[0].partition_cnt; p++)
            ready = md->topics[0].partitions[p].leader >= 0;
        if (ready || ee_now_ms() > until) break;
    }
    rd_kafka_topic_destroy(rkt);
    if (me || !md || md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt < 1) {
        if (md) rd_kafka_metadata_destroy(md);
        return ee_err_set(err, "index %s: no metadata for topic %s (%s)", ix->name, ix->topic,
                          rd_kafka_err2str(me ? me : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
    }
    int np = md->topics[0].partition_cnt;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(np);
    int64_t *end = calloc((size_t)np, sizeof *end);
    int rc = 0;
    for (int p = 0; p < np && rc == 0; p++) {
        int32_t pid = md->topics[0].partitions[p].id;
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t we = rd_kafka_query_watermark_offsets(ix->rk, ix->topic, pid, &lo, &hi, 10000);
        if (we) rc = ee_err_set(err, "index %s: end offset of %s [%d]: %s", ix->name, ix->topic,
                                (int)pid, rd_kafka_err2str(we));
        end[p] = hi;
        rd_kafka_topic_partition_list_add(parts, ix->topic, pid)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_metadata_destroy(md);
    if (rc == 0 && rd_kafka_assign(ix->rk, parts))
        rc = ee_err_set(err, "index %s: cannot assign %s", ix->name, ix->topic);
    double t0 = ee_now_ms();
    long n = 0;
    while (rc == 0) {
        bool done = true;
        for (int p = 0; p < np && done; p++) {
            rd_kafka_topic_partition_list_t *pos = rd_kafka_topic_partition_list_new(1);
            rd_kafka_topic_partition_list_add(pos, ix->topic, parts->elems[p].partition);
            rd_kafka_position(ix->rk, pos);
            int64_t at = pos->elems[0].offset;
            rd_kafka_topic_partition_list_destroy(pos);
            if (end[p] > 0 && (at < 0 || at < end[p])) done = false;
        }
        if (done) break;
        if (ee_now_ms() - t0 > LOAD_TIMEOUT_MS) {
            rc = ee_err_set(err, "index %s: not caught up with %s after %d s", ix->name, ix->topic,
                            LOAD_TIMEOUT_MS / 1000);
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(ix->rk, 100);
        if (!m) continue;
        if (!m->err) {
            apply(s, ix, m);
            n++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_topic_partition_list_destroy(parts);
    free(end);
    if (rc == 0) {
        json_t *f = json_object();
        json_object_set_new(f, "index", json_string(ix->name));
        json_object_set_new(f, "topic", json_string(ix->topic));
        json_object_set_new(f, "kind", json_string(ee_vindex_kind_name(ix->kind)));
        json_object_set_new(f, "records", json_integer(n));
        json_object_set_new(f, "documents", json_integer((json_int_t)ix->live));
        json_object_set_new(f, "rejected", json_integer(ix->rejected));
        json_object_set_new(f, "load_ms", json_real(ee_now_ms() - t0));
        svc_log("info", "index_loaded", f);
    }
    return rc;
}

int svc_index_open(svc *s, ee_err *err) {
    const ee_config *c = s->cfg;
    if (!c->n_indexes) return 0;
    s->indexes = calloc(c->n_indexes, sizeof *s->indexes);
    if (!s->indexes) return ee_err_set(err, "out of memory");
    s->n_indexes = (int)c->n_indexes;
    for (int i = 0; i < s->n_indexes; i++) {
        svc_index *ix = &s->indexes[i];
        const ee_config_index *ci = &c->indexes[i];
        pthread_rwlock_init(&ix->lock, NULL);
        ix->name = ci->name;
        ix->model = -1;
        for (int m = 0; m < s->n_models; m++)
            if (strcmp(s->models[m].name, ci->model) == 0) ix->model = m;
        if (ix->model < 0 || s->models[ix->model].kind != EE_KIND_ENCODER)
            return ee_err_set(err, "index %s: model %s is not an encoder this worker serves",
                              ci->name, ci->model);
        ix->dim = s->models[ix->model].enc->hp.n_embd;
        if (ee_vindex_kind_parse(ci->kind ? ci->kind : "flat", &ix->kind, err) ||
            ee_vindex_open(&ix->vx, ix->kind, ix->dim, NULL, err))
            return ee_err_wrap(err, "index %s", ci->name);
        if (!(ix->topic = ee_proto_index_topic(ci->name, err))) return -1;
        ee_err cerr = {{0}};
        if (create_topic(s, ix->topic, &cerr)) { /* e.g. a broker without the Admin API: */
            json_t *f = json_object();              /* the topic may exist anyway (load says) */
            json_object_set_new(f, "index", json_string(ci->name));
            json_object_set_new(f, "error", json_string(cerr.msg));
            svc_log("warn", "index_topic_not_created", f);
        }
        char group[300];
        snprintf(group, sizeof group, "ee-index.%s.%s", ci->name, s->name);
        rd_kafka_conf_t *conf = svc_kafka_conf(s, true, group, err);
        if (!conf) return ee_err_wrap(err, "index %s", ci->name);
        /* assign()ed, never committed: every start reads the whole topic */
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
        char e[512];
        ix->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e);
        if (!ix->rk) {
            rd_kafka_conf_destroy(conf);
            return ee_err_set(err, "index %s: %s", ci->name, e);
        }
        if (load(s, ix, err)) return -1;
        svc_kafka_wake_on(s, rd_kafka_queue_get_consumer(ix->rk));
    }
    return 0;
}

void svc_index_poll(svc *s) {
    for (int i = 0; i < s->n_indexes; i++) {
        svc_index *ix = &s->indexes[i];
        for (int n = 0; n < 256; n++) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(ix->rk, 0);
            if (!m) break;
            if (!m->err) apply(s, ix, m);
            rd_kafka_message_destroy(m);
            if (n == 255) s->poll_pending = true;
        }
    }
}

svc_index *svc_index_find(svc *s, const char *name) {
    for (int i = 0; i < s->n_indexes; i++)
        if (strcmp(s->indexes[i].name, name) == 0) return &s->indexes[i];
    return NULL;
}

int svc_index_search(svc_index *ix, const float *query, int k, ee_proto_hit **hits, size_t *n_hits,
                     ee_err *err) {
    *hits = NULL;
    *n_hits = 0;
    int64_t *ids = malloc(sizeof *ids * (size_t)k);
    float *sc = malloc(sizeof *sc * (size_t)k);
    ee_proto_hit *h = calloc((size_t)k, sizeof *h);
    int rc = -1;
    if (!ids || !sc || !h) {
        ee_err_set(err, "out of memory");
        goto done;
    }
    pthread_rwlock_rdlock(&ix->lock);
    rc = ee_vindex_search(ix->vx, query, 1, k, ids, sc, err);
    size_t n = 0;
    for (int i = 0; rc == 0 && i < k; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= ix->n_slots || !ix->docs[ids[i]]) continue;
        h[n].id = strdup(ix->ids[ids[i]]);
        h[n].doc = strdup(ix->docs[ids[i]]);
        h[n].score = sc[i];
        if (!h[n].id || !h[n].doc) rc = ee_err_set(err, "out of memory");
        n++;
    }
    pthread_rwlock_unlock(&ix->lock);
    if (rc == 0) {
        *hits = h;
        *n_hits = n;
        h = NULL;
    } else {
        for (size_t i = 0; i < n; i++) free(h[i].id), free(h[i].doc);
    }
done:
    free(ids);
    free(sc);
    free(h);
    return rc;
}

void svc_index_close(svc *s) {
    for (int i = 0; i < s->n_indexes; i++) {
        svc_index *ix = &s->indexes[i];
        if (ix->rk) {
            rd_kafka_consumer_close(ix->rk);
            rd_kafka_destroy(ix->rk);
        }
        ee_vindex_close(ix->vx);
        for (size_t j = 0; j < ix->n_slots; j++) free(ix->ids[j]), free(ix->docs[j]);
        free(ix->ids);
        free(ix->docs);
        free(ix->hash);
        free(ix->topic);
        pthread_rwlock_destroy(&ix->lock);
    }
    free(s->indexes);
    s->indexes = NULL;
    s->n_indexes = 0;
}
