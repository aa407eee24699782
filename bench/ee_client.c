/* Client-side cost of EE per request: loading the key, deriving the token
 * permutation, encrypting a prompt's ids and decrypting the reply's ids.
 * Prints measured microseconds (median of many repetitions). */
#include "ee_key.h"
#include "ee_platform.h"
#include "ee_scheme.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return v[n / 2];
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench-ee-client KEY.eekey [n_vocab]\n");
        return 2;
    }
    uint32_t V = argc > 2 ? (uint32_t)atoi(argv[2]) : 49152;
    enum { REPS = 200, PROMPT = 512, REPLY = 128 };
    static double t_load[REPS], t_derive[REPS], t_enc[REPS], t_dec[REPS];
    int32_t in[PROMPT], out[PROMPT];
    for (int i = 0; i < PROMPT; i++) in[i] = (int32_t)((i * 7919u) % V);
    ee_err err = {{0}};
    for (int r = 0; r < REPS; r++) {
        ee_key k;
        double t0 = ee_now_ms();
        if (ee_key_load(&k, argv[1], &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        double t1 = ee_now_ms();
        ee_vocab_cipher vc;
        ee_vocab_cipher_init(&vc, &k, V, &err);
        ee_key_wipe(&k);
        double t2 = ee_now_ms();
        ee_vocab_encrypt(&vc, in, out, PROMPT, &err);
        double t3 = ee_now_ms();
        ee_vocab_decrypt(&vc, out, out, REPLY, &err);
        double t4 = ee_now_ms();
        t_load[r] = (t1 - t0) * 1e3;
        t_derive[r] = (t2 - t1) * 1e3;
        t_enc[r] = (t3 - t2) * 1e3;
        t_dec[r] = (t4 - t3) * 1e3;
        ee_vocab_cipher_free(&vc);
    }
    printf("client EE cost (median of %d, vocabulary %u):\n", REPS, V);
    printf("  load key file                 %8.1f us\n", median(t_load, REPS));
    printf("  derive token permutation      %8.1f us  (once per key; a client caches it)\n",
           median(t_derive, REPS));
    printf("  encrypt %3d prompt ids        %8.2f us\n", PROMPT, median(t_enc, REPS));
    printf("  decrypt %3d reply ids         %8.2f us\n", REPLY, median(t_dec, REPS));
    return 0;
}
