/* libFuzzer target: the worker's request parser on arbitrary record bytes.
 * Every input either parses into a request that satisfies the limits and
 * round-trips through the producer's serialiser, or is refused with a coded
 * error and a message; nothing may crash, leak or read out of bounds. */
#include "ee_proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const ee_proto_limits lim = {.n_vocab = 49152, .max_prompt_tokens = 4096,
                                 .max_new_tokens = 2048, .max_request_bytes = 1 << 20};
    ee_proto_request r;
    ee_proto_error e;
    if (ee_proto_parse_request((const char *)data, size, &lim, &r, &e) == 0) {
        if (r.n_tokens == 0 || r.n_tokens > lim.max_prompt_tokens) abort();
        for (size_t i = 0; i < r.n_tokens; i++)
            if (r.tokens[i] < 0 || (uint32_t)r.tokens[i] >= lim.n_vocab) abort();
        if (r.params.max_tokens < 1 || r.params.max_tokens > lim.max_new_tokens) abort();
        /* What the worker accepted, re-serialised, parses to the same. */
        ee_err err;
        char *js = ee_proto_request_to_json(&r, &err);
        if (!js) abort();
        ee_proto_request r2;
        if (ee_proto_parse_request(js, strlen(js), &lim, &r2, &e) != 0) abort();
        if (strcmp(r.id, r2.id) || r.n_tokens != r2.n_tokens ||
            memcmp(r.tokens, r2.tokens, r.n_tokens * sizeof r.tokens[0]))
            abort();
        ee_proto_request_free(&r2);
        free(js);
        ee_proto_request_free(&r);
    } else if (!e.message[0]) {
        abort(); /* a refusal always says why */
    }
    return 0;
}
