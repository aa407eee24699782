/* Client-side cost of EE per request: fingerprinting the plain model (once
 * per model: keys are bound to it), loading the key, deriving the token
 * permutation, encrypting a prompt's ids and decrypting the reply's ids.
 * Prints measured times (median of many repetitions). */
#include "ee_gguf.h"
#include "ee_key.h"
#include "ee_llama.h"
#include "ee_clock.h"
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
    if (argc < 3) {
        fprintf(stderr, "usage: bench-ee-client KEY.eekey PLAIN.gguf\n");
        return 2;
    }
    ee_err err = {{0}};
    ee_gguf *plain = ee_gguf_open(argv[2], &err);
    ee_llama_hparams hp;
    if (!plain || ee_llama_read_hparams(plain, &hp, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const uint32_t V = (uint32_t)hp.n_vocab;
    enum { FP_REPS = 5 };
    double t_fp[FP_REPS];
    uint8_t fp[EE_MODEL_FP_BYTES];
    for (int r = 0; r < FP_REPS; r++) {
        double t0 = ee_now_ms();
        if (ee_model_fingerprint(plain, fp, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        t_fp[r] = ee_now_ms() - t0;
    }
    enum { REPS = 200, PROMPT = 512, REPLY = 128 };
    static double t_load[REPS], t_derive[REPS], t_enc[REPS], t_dec[REPS];
    int32_t in[PROMPT], out[PROMPT];
    for (int i = 0; i < PROMPT; i++) in[i] = (int32_t)((i * 7919u) % V);
    for (int r = 0; r < REPS; r++) {
        ee_key k;
        double t0 = ee_now_ms();
        if (ee_key_load(&k, argv[1], &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        double t1 = ee_now_ms();
        ee_vocab_cipher vc;
        ee_key_bind(&k, fp, &k); /* the model-bound key (ee-llama-v2) */
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
    printf("  fingerprint plain model       %8.1f ms  (once per model; %.0f MB hashed)\n",
           median(t_fp, FP_REPS), (double)ee_gguf_file_size(plain) / 1e6);
    printf("  load key file                 %8.1f us\n", median(t_load, REPS));
    printf("  bind key + derive permutation %8.1f us  (once per key and model; cached)\n",
           median(t_derive, REPS));
    printf("  encrypt %3d prompt ids        %8.2f us\n", PROMPT, median(t_enc, REPS));
    printf("  decrypt %3d reply ids         %8.2f us\n", REPLY, median(t_dec, REPS));
    ee_gguf_close(plain);
    return 0;
}
