/* Added cost per job of sealed and signed jobs (issue 10), measured on
 * records of realistic sizes: a request body of 42 and 2,000 prompt ids
 * (about 0.4 and 14 KB of JSON) and a reply of 128 ids. Client: seal +
 * sign (+ open the reply); worker: verify + open (+ seal the reply) +
 * replay check. Prints the median of many repetitions in microseconds. */
#include "ee_clock.h"
#include "ee_seal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static char *body(int n_ids) {
    size_t cap = 256 + (size_t)n_ids * 8;
    char *s = malloc(cap);
    size_t o = (size_t)snprintf(s, cap, "{\"v\":1,\"id\":\"job-0123456789abcdef\",\"model\":\"smollm2\","
                                        "\"key_id\":\"0123456789abcdef0123456789abcdef\",\"task\":"
                                        "\"generate\",\"input\":{\"tokens\":[");
    for (int i = 0; i < n_ids; i++) o += (size_t)snprintf(s + o, cap - o, "%s%d", i ? "," : "", (i * 7919) % 49152);
    snprintf(s + o, cap - o, "]},\"reply_to\":\"ee.replies.x\",\"reply_pk\":\"%064d\"}", 0);
    return s;
}

int main(void) {
    enum { REPS = 2000 };
    ee_err err = {{0}};
    ee_pool_key pool;
    ee_client_key client;
    if (ee_pool_key_generate(&pool, &err) || ee_client_key_generate(&client, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    ee_replay *rp = ee_replay_open(1 << 20, 600000, &err);
    static double t[6][REPS];
    const char *names[6] = {"client: seal request", "client: sign", "worker: verify",
                            "worker: open request", "worker: seal reply", "client: open reply"};
    int sizes[2] = {42, 2000};
    printf("sealed and signed jobs: added cost per job (median of %d, microseconds)\n", REPS);
    printf("%-24s %14s %14s\n", "step", "42 prompt ids", "2000 prompt ids");
    double med[2][6];
    char *reply = body(128);
    for (int si = 0; si < 2; si++) {
        char *req = body(sizes[si]);
        for (int r = 0; r < REPS; r++) {
            uint8_t *sealed, *open, *rs, *ro, sig[64], rpk[32], rsk[32];
            size_t n, m, rn, rm;
            char id[32];
            snprintf(id, sizeof id, "job-%d-%d", si, r);
            double t0 = ee_now_ms();
            ee_seal(pool.pk, req, strlen(req), &sealed, &n, &err);
            double t1 = ee_now_ms();
            ee_signed_fields f = {.topic = "ee.requests.smollm2.small", .id = id,
                                  .reply_to = "ee.replies.x", .tenant = "acme", .ts_ms = 1000,
                                  .value = sealed, .value_n = n};
            ee_sign_request(&client, &f, sig);
            double t2 = ee_now_ms();
            if (ee_verify_request(client.pk, &f, sig, &err) ||
                ee_replay_check(rp, "acme", id, 0, 1000, 1000) != EE_REPLAY_FRESH) {
                fprintf(stderr, "verify failed: %s\n", err.msg);
                return 1;
            }
            double t3 = ee_now_ms();
            ee_unseal(pool.pk, pool.sk, sealed, n, &open, &m, &err);
            double t4 = ee_now_ms();
            ee_reply_keypair(&client, id, rpk, rsk);
            double t5 = ee_now_ms();
            ee_seal(rpk, reply, strlen(reply), &rs, &rn, &err);
            double t6 = ee_now_ms();
            if (ee_unseal(rpk, rsk, rs, rn, &ro, &rm, &err)) {
                fprintf(stderr, "open failed: %s\n", err.msg);
                return 1;
            }
            double t7 = ee_now_ms();
            t[0][r] = (t1 - t0) * 1e3, t[1][r] = (t2 - t1) * 1e3, t[2][r] = (t3 - t2) * 1e3;
            t[3][r] = (t4 - t3) * 1e3, t[4][r] = (t6 - t5) * 1e3, t[5][r] = (t7 - t6) * 1e3;
            free(sealed), free(open), free(rs), free(ro);
        }
        for (int k = 0; k < 6; k++) {
            qsort(t[k], REPS, sizeof(double), cmp_d);
            med[si][k] = t[k][REPS / 2];
        }
        free(req);
    }
    for (int k = 0; k < 6; k++) printf("%-24s %14.1f %14.1f\n", names[k], med[0][k], med[1][k]);
    double c0 = med[0][0] + med[0][1] + med[0][5], w0 = med[0][2] + med[0][3] + med[0][4];
    double c1 = med[1][0] + med[1][1] + med[1][5], w1 = med[1][2] + med[1][3] + med[1][4];
    printf("%-24s %14.1f %14.1f\n", "client total", c0, c1);
    printf("%-24s %14.1f %14.1f\n", "worker total", w0, w1);
    free(reply);
    ee_replay_close(rp);
    return 0;
}
