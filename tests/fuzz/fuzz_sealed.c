/* libFuzzer target: the request parser through the sealed path. Odd first
 * byte: the rest is a record value as a broker would deliver it (it must
 * be refused or opened safely: without the key nothing opens). Even first
 * byte: the rest is a request body, sealed to the pool key, opened again
 * (must round-trip exactly) and parsed as the worker parses an opened body;
 * a signature over it must verify, and fail once the value changes. */
#include "ee_proto.h"
#include "ee_seal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static ee_pool_key g_pool;
static ee_client_key g_client;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    ee_err err;
    if (ee_pool_key_generate(&g_pool, &err) || ee_client_key_generate(&g_client, &err)) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const uint8_t *p = data + 1;
    const size_t n = size - 1;
    ee_err err;
    uint8_t *open = NULL, *sealed = NULL;
    size_t on = 0, sn = 0;
    if (data[0] & 1) {
        if (ee_unseal(g_pool.pk, g_pool.sk, p, n, &open, &on, &err) == 0) abort(); /* forged */
        return 0;
    }
    if (ee_seal(g_pool.pk, p, n, &sealed, &sn, &err)) abort();
    if (!ee_is_sealed(sealed, sn)) abort();
    if (ee_unseal(g_pool.pk, g_pool.sk, sealed, sn, &open, &on, &err)) abort();
    if (on != n || memcmp(open, p, n) || open[on] != 0) abort();
    const ee_proto_limits lim = {.n_vocab = 49152, .max_prompt_tokens = 4096,
                                 .max_new_tokens = 2048, .max_request_bytes = 1 << 20};
    ee_proto_request r;
    ee_proto_error e;
    if (ee_proto_parse_request((const char *)open, on, &lim, &r, &e) == 0) {
        if (r.reply_pk) {
            uint8_t pk[32];
            if (ee_seal_pk_parse(r.reply_pk, pk, &err)) abort(); /* the parser checked it */
        }
        ee_signed_fields f = {.topic = "ee.requests.m.small", .id = r.id, .reply_to = r.reply_to,
                              .tenant = "t", .ts_ms = 1, .deadline_ms = r.deadline_ms,
                              .value = sealed, .value_n = sn};
        uint8_t sig[EE_SEAL_SIG_BYTES];
        ee_sign_request(&g_client, &f, sig);
        if (ee_verify_request(g_client.pk, &f, sig, &err)) abort();
        sealed[sn - 1] ^= 1;
        if (ee_verify_request(g_client.pk, &f, sig, &err) == 0) abort();
        ee_proto_request_free(&r);
    } else if (!e.message[0]) {
        abort();
    }
    free(open);
    free(sealed);
    return 0;
}
