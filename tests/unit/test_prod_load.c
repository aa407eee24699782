/* Unit tests for the pure pieces of `ee-producer load`:
 *
 * - percentiles (nearest rank) and distribution summaries;
 * - the open-loop schedule (intended send times) and the latency of a job
 *   from its intended send vs its service time from its actual send
 *   (coordinated omission);
 * - the run statistics over a tracker of ok / error / timeout / never
 *   started jobs (counts, tokens, the three distributions, workers);
 * - the per-job records: fields and statuses of one record, and a records
 *   file written while jobs settle (whole lines, each job once, settled
 *   ones first, open ones as "pending" at the end);
 * - the progress line: counts from a tracker and its exact text. */
#include "prod_loadrec.h"
#include "prod_progress.h"
#include "prod_sched.h"
#include "prod_stats.h"
#include "prod_tracker.h"

#include "ee_testmodel.h"

#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

START_TEST(percentile_nearest_rank) {
    double v[10];
    for (int i = 0; i < 10; i++) v[i] = i + 1;
    ck_assert_double_eq(prod_percentile(v, 10, 0.50), 5);
    ck_assert_double_eq(prod_percentile(v, 10, 0.90), 9);
    ck_assert_double_eq(prod_percentile(v, 10, 0.99), 10);
    ck_assert_double_eq(prod_percentile(v, 10, 0.01), 1);
    ck_assert_double_eq(prod_percentile(v, 1, 0.99), 1);
    ck_assert_double_eq(prod_percentile(v, 0, 0.5), 0);
}
END_TEST

START_TEST(dist_sorts_and_summarizes) {
    double v[] = {40, 10, 30, 20};
    prod_dist d;
    prod_dist_make(&d, v, 4);
    ck_assert_uint_eq(d.n, 4);
    ck_assert_double_eq(v[0], 10); /* sorted in place */
    ck_assert_double_eq(d.p50, 20);
    ck_assert_double_eq(d.p90, 40);
    ck_assert_double_eq(d.max, 40);
    ck_assert_double_eq(d.mean, 25);
    prod_dist_make(&d, v, 0);
    ck_assert_uint_eq(d.n, 0);
    ck_assert_double_eq(d.p50, 0);
}
END_TEST

START_TEST(schedule_open_and_closed) {
    ck_assert_double_eq(prod_sched_at(1000, 0, 4), 1000);
    ck_assert_double_eq(prod_sched_at(1000, 1, 4), 1250);
    ck_assert_double_eq(prod_sched_at(1000, 10, 4), 3500);
    ck_assert_double_eq_tol(prod_sched_at(0, 3, 0.5), 6000, 1e-9);
    /* closed loop: every job is due from the start */
    ck_assert_double_eq(prod_sched_at(1000, 7, 0), 1000);
}
END_TEST

START_TEST(latency_from_intended_send) {
    prod_job j = {.t_intended = 100, .t_sent = 150, .t_done = 400};
    ck_assert_double_eq(prod_job_latency(&j), 300); /* the 50 ms send delay counts */
    ck_assert_double_eq(prod_job_service(&j), 250);
    j.t_intended = 0; /* no schedule: from the actual send */
    ck_assert_double_eq(prod_job_latency(&j), 250);
    prod_job never = {.t_done = 400};
    ck_assert_double_eq(prod_job_latency(&never), -1);
    ck_assert_double_eq(prod_job_service(&never), -1);
}
END_TEST

/* A job settled as s at done with an (optional) final reply. */
static prod_job *add(prod_tracker *t, const char *id, double intended, double sent, double first,
                     double done, prod_job_state s, const char *worker, uint32_t completion) {
    ee_err err = {{0}};
    prod_job *j = prod_tracker_add(t, id, &err);
    ck_assert_msg(j != NULL, "%s", err.msg);
    j->t_intended = intended;
    j->t_sent = sent;
    j->t_first = first;
    if (s == PROD_JOB_OK || s == PROD_JOB_ERROR) {
        j->final.id = strdup(id);
        j->final.ok = s == PROD_JOB_OK;
        j->final.final = true;
        j->final.worker = worker ? strdup(worker) : NULL;
        if (s == PROD_JOB_OK) {
            j->final.prompt_tokens = 10;
            j->final.completion_tokens = completion;
            j->final.queue_ms = 1.5;
            j->final.prefill_ms = 20;
            j->final.decode_ms = 80;
        } else {
            j->final.error_code = EE_PROTO_E_BAD_TOKEN;
            j->final.error_message = strdup("input.tokens[3]: out of range");
        }
    }
    if (s != PROD_JOB_PENDING) prod_tracker_settle(t, j, s, done, NULL);
    return j;
}

/* ok a (w1), ok b (w2, streamed), error c (w1), timeout d, pending e. */
static void five_jobs(prod_tracker *t) {
    add(t, "a", 100, 100, 0, 600, PROD_JOB_OK, "w1", 8);
    add(t, "b", 350, 400, 450, 1400, PROD_JOB_OK, "w2", 12);
    add(t, "c", 600, 600, 0, 700, PROD_JOB_ERROR, "w1", 0);
    add(t, "d", 850, 860, 0, 5000, PROD_JOB_TIMEOUT, NULL, 0);
    add(t, "e", 1100, 1100, 0, 0, PROD_JOB_PENDING, NULL, 0);
}

START_TEST(stats_over_jobs) {
    prod_tracker t = {0};
    five_jobs(&t);
    prod_stats s;
    ee_err err = {{0}};
    ck_assert_int_eq(prod_stats_make(&s, &t, 7, 2000, &err), 0);
    ck_assert_uint_eq(s.total, 7);
    ck_assert_uint_eq(s.ok, 2);
    ck_assert_uint_eq(s.error, 1);
    ck_assert_uint_eq(s.timeout, 2); /* the pending one too */
    ck_assert_uint_eq(s.unsent, 2);  /* 7 meant, 5 started */
    ck_assert_uint_eq(s.generated, 20);
    ck_assert_uint_eq(s.prompt, 20);
    /* latency from intended: 500, 1050; service from sent: 500, 1000 */
    ck_assert_uint_eq(s.latency.n, 2);
    ck_assert_double_eq(s.latency.p50, 500);
    ck_assert_double_eq(s.latency.max, 1050);
    ck_assert_double_eq(s.latency.mean, 775);
    ck_assert_double_eq(s.service.max, 1000);
    ck_assert_uint_eq(s.first_token.n, 1);
    ck_assert_double_eq(s.first_token.p50, 50);
    ck_assert_double_eq(s.decode_ms, 80);
    ck_assert_uint_eq(s.n_workers, 2);
    ck_assert_str_eq(s.workers[0].name, "w1");
    ck_assert_uint_eq(s.workers[0].jobs, 2); /* the error reply names its worker too */
    ck_assert_str_eq(s.workers[1].name, "w2");
    prod_stats_free(&s);
    prod_tracker_free(&t);
}
END_TEST

START_TEST(record_fields) {
    prod_tracker t = {0};
    five_jobs(&t);
    json_t *o = prod_loadrec_job(t.jobs[1], 100);
    ck_assert_str_eq(json_string_value(json_object_get(o, "record")), "job");
    ck_assert_str_eq(json_string_value(json_object_get(o, "id")), "b");
    ck_assert_int_eq(json_integer_value(json_object_get(o, "index")), 1);
    ck_assert_double_eq(json_real_value(json_object_get(o, "intended_ms")), 250);
    ck_assert_double_eq(json_real_value(json_object_get(o, "sent_ms")), 300);
    ck_assert_double_eq(json_real_value(json_object_get(o, "first_token_ms")), 350);
    ck_assert_double_eq(json_real_value(json_object_get(o, "final_ms")), 1300);
    ck_assert_double_eq(json_real_value(json_object_get(o, "latency_ms")), 1050);
    ck_assert_double_eq(json_real_value(json_object_get(o, "service_ms")), 1000);
    ck_assert_str_eq(json_string_value(json_object_get(o, "status")), "ok");
    ck_assert_str_eq(json_string_value(json_object_get(o, "worker")), "w2");
    ck_assert_int_eq(json_integer_value(json_object_get(o, "prompt_tokens")), 10);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "completion_tokens")), 12);
    ck_assert_double_eq(json_real_value(json_object_get(o, "queue_ms")), 1.5);
    ck_assert(json_is_null(json_object_get(o, "error")));
    json_decref(o);
    /* not streamed: no first token */
    o = prod_loadrec_job(t.jobs[0], 100);
    ck_assert(json_is_null(json_object_get(o, "first_token_ms")));
    json_decref(o);
    /* error reply: status is the code, the message kept, no usage */
    o = prod_loadrec_job(t.jobs[2], 100);
    ck_assert_str_eq(json_string_value(json_object_get(o, "status")), "bad_token");
    ck_assert_str_eq(json_string_value(json_object_get(o, "error")), "input.tokens[3]: out of range");
    ck_assert(json_is_null(json_object_get(o, "completion_tokens")));
    ck_assert_str_eq(json_string_value(json_object_get(o, "worker")), "w1");
    json_decref(o);
    ck_assert_str_eq(prod_loadrec_status(t.jobs[3]), "timeout");
    ck_assert_str_eq(prod_loadrec_status(t.jobs[4]), "pending");
    o = prod_loadrec_job(t.jobs[4], 100);
    ck_assert(json_is_null(json_object_get(o, "final_ms")));
    ck_assert(json_is_null(json_object_get(o, "latency_ms")));
    json_decref(o);
    prod_tracker_free(&t);
}
END_TEST

/* Lines of path, each checked to end in '\n' and parse; returns count. */
static size_t read_lines(const char *path, json_t **out, size_t cap) {
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char buf[4096];
    size_t n = 0;
    while (fgets(buf, sizeof buf, f)) {
        size_t len = strlen(buf);
        ck_assert_msg(len && buf[len - 1] == '\n', "a torn line: '%s'", buf);
        json_error_t je;
        json_t *o = json_loads(buf, 0, &je);
        ck_assert_msg(o != NULL, "line %zu: %s", n + 1, je.text);
        ck_assert_uint_lt(n, cap);
        out[n++] = o;
    }
    fclose(f);
    return n;
}

START_TEST(records_file_as_jobs_settle) {
    char *path = ee_test_tmpfile(".jsonl");
    prod_loadrec w;
    ee_err err = {{0}};
    ck_assert_int_eq(prod_loadrec_open(&w, path, &err), 0);
    w.t0 = 100;
    json_t *h = json_pack("{s:s, s:i}", "record", "run", "start_epoch_ms", 1234);
    ck_assert_int_eq(prod_loadrec_line(&w, h, &err), 0);
    json_decref(h);
    prod_tracker t = {0};
    five_jobs(&t);
    /* settled only: a, b, c, d; e is still open */
    ck_assert_int_eq(prod_loadrec_flush(&w, &t, false, &err), 0);
    ck_assert_int_eq(prod_loadrec_flush(&w, &t, false, &err), 0); /* nothing twice */
    ck_assert_uint_eq(w.next, 4);
    prod_tracker_settle(&t, t.jobs[4], PROD_JOB_TIMEOUT, 9000, NULL);
    add(&t, "f", 1350, 1350, 0, 0, PROD_JOB_PENDING, NULL, 0);
    ck_assert_int_eq(prod_loadrec_flush(&w, &t, true, &err), 0); /* e, then f as pending */
    prod_loadrec_close(&w);
    json_t *lines[16];
    size_t n = read_lines(path, lines, 16);
    ck_assert_uint_eq(n, 7);
    ck_assert_str_eq(json_string_value(json_object_get(lines[0], "record")), "run");
    const char *ids = "abcdef", *status[] = {"ok", "ok", "bad_token", "timeout", "timeout", "pending"};
    for (size_t i = 1; i < n; i++) {
        char id[2] = {ids[i - 1], 0};
        ck_assert_str_eq(json_string_value(json_object_get(lines[i], "id")), id);
        ck_assert_str_eq(json_string_value(json_object_get(lines[i], "status")), status[i - 1]);
    }
    for (size_t i = 0; i < n; i++) json_decref(lines[i]);
    prod_tracker_free(&t);
    unlink(path);
    free(path);
}
END_TEST

START_TEST(records_bad_path) {
    prod_loadrec w;
    ee_err err = {{0}};
    ck_assert_int_eq(prod_loadrec_open(&w, "/nonexistent-dir/r.jsonl", &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "--records: cannot create '/nonexistent-dir/r.jsonl'"));
    prod_loadrec_close(&w); /* safe after a failed open */
}
END_TEST

START_TEST(progress_counts_and_line) {
    prod_tracker t = {0};
    five_jobs(&t);
    prod_progress_counts c;
    ck_assert_int_eq(prod_progress_measure(&c, &t, 10, 2000), 0);
    ck_assert_uint_eq(c.total, 10);
    ck_assert_uint_eq(c.done, 4);
    ck_assert_uint_eq(c.inflight, 1);
    ck_assert_uint_eq(c.errors, 2);
    ck_assert_uint_eq(c.ok, 2);
    ck_assert_uint_eq(c.tokens, 20);
    ck_assert_uint_eq(c.n_lat, 2);
    ck_assert_double_eq(c.p50, 500);
    char line[256];
    size_t n = prod_progress_format(line, sizeof line, &c);
    ck_assert_str_eq(line, "4/10 done, 1 in flight, 2 errors | 1.00 jobs/s, 10.0 tok/s | p50 500 ms");
    ck_assert_uint_eq(n, strlen(line));
    prod_progress_counts none = {.total = 3};
    prod_progress_format(line, sizeof line, &none);
    ck_assert_str_eq(line, "0/3 done, 0 in flight, 0 errors | 0.00 jobs/s, 0.0 tok/s | p50 -");
    /* truncated to the buffer */
    ck_assert_uint_eq(prod_progress_format(line, 8, &c), 7);
    ck_assert_str_eq(line, "4/10 do");
    prod_tracker_free(&t);
}
END_TEST

START_TEST(progress_only_on_a_terminal) {
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert(!prod_progress_wanted(0, fds[1])); /* a pipe is no terminal */
    ck_assert(prod_progress_wanted(1, fds[1]));  /* --progress */
    ck_assert(!prod_progress_wanted(-1, fds[1])); /* --no-progress */
    close(fds[0]);
    close(fds[1]);
}
END_TEST

Suite *suite_prod_load(void) {
    Suite *s = suite_create("prod_load");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, percentile_nearest_rank);
    tcase_add_test(tc, dist_sorts_and_summarizes);
    tcase_add_test(tc, schedule_open_and_closed);
    tcase_add_test(tc, latency_from_intended_send);
    tcase_add_test(tc, stats_over_jobs);
    tcase_add_test(tc, record_fields);
    tcase_add_test(tc, records_file_as_jobs_settle);
    tcase_add_test(tc, records_bad_path);
    tcase_add_test(tc, progress_counts_and_line);
    tcase_add_test(tc, progress_only_on_a_terminal);
    suite_add_tcase(s, tc);
    return s;
}
