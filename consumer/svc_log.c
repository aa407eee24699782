/* Structured logs: one JSON object per line on stderr, e.g.
 *   {"ts":"2026-11-24T12:00:00.123Z","level":"info","event":"job_done",
 *    "id":"job-1","topic":"ee.requests.smollm2.small","partition":0,...}
 * JSON because job ids are client-chosen text: a JSON string escapes
 * anything a client puts in it, so a log line is always one line. Nothing
 * secret exists in the worker (no key, no plaintext); token ids are not
 * logged either. */
#include "svc_log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

void svc_log(const char *level, const char *event, json_t *fields) {
    json_t *o = json_object();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[96];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    json_object_set_new(o, "ts", json_string(when));
    json_object_set_new(o, "level", json_string(level));
    json_object_set_new(o, "event", json_string(event));
    if (fields) json_object_update(o, fields);
    json_decref(fields);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(o);
    if (!s) return;
    pthread_mutex_lock(&log_mu);
    fputs(s, stderr);
    fputc('\n', stderr);
    fflush(stderr);
    pthread_mutex_unlock(&log_mu);
    free(s);
}

void svc_log_job(const char *level, const char *event, const svc_job *j, json_t *fields) {
    json_t *o = json_object();
    if (j->has_id) json_object_set_new(o, "id", json_string(j->id));
    json_object_set_new(o, "topic", json_string(j->topic));
    json_object_set_new(o, "partition", json_integer(j->partition));
    json_object_set_new(o, "offset", json_integer(j->offset));
    if (fields) json_object_update(o, fields);
    json_decref(fields);
    svc_log(level, event, o);
}
