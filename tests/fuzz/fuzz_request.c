/* libFuzzer target: the worker's request parser on arbitrary record bytes.
 * Every input either parses into a request that satisfies the limits and
 * round-trips through the producer's serialiser, or is refused with a coded
 * error and a message; nothing may crash, leak or read out of bounds. */
#include "ee_proto.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const ee_proto_limits lim = {.n_vocab = 49152, .max_prompt_tokens = 4096,
                                 .max_new_tokens = 2048, .max_request_bytes = 1 << 20};
    ee_proto_request r;
    ee_proto_error e;
    if (ee_proto_parse_request((const char *)data, size, &lim, &r, &e) == 0) {
        /* The input is token ids, or (search) a query vector, or (classify)
         * a feature map: never none, never out of limits. */
        const bool vec = r.task_kind == EE_TASK_SEARCH && r.query;
        const bool map = r.task_kind == EE_TASK_CLASSIFY;
        if (map ? (r.n_tokens || !r.fmap || r.fmap_len == 0 || r.fmap_len > EE_PROTO_MAX_FMAP)
                : vec ? (r.n_tokens || r.query_dim == 0 || r.query_dim > EE_PROTO_MAX_DIM)
                      : (r.n_tokens == 0 || r.n_tokens > lim.max_prompt_tokens))
            abort();
        for (size_t i = 0; i < r.n_tokens; i++)
            if (r.tokens[i] < 0 || (uint32_t)r.tokens[i] >= lim.n_vocab) abort();
        if (r.params.max_tokens < 1 || r.params.max_tokens > lim.max_new_tokens) abort();
        /* What the worker accepted, re-serialised, parses to the same. */
        ee_err err;
        char *js = ee_proto_request_to_json(&r, &err);
        if (!js) abort();
        ee_proto_request r2;
        if (ee_proto_parse_request(js, strlen(js), &lim, &r2, &e) != 0) abort();
        if (strcmp(r.id, r2.id) || r.task_kind != r2.task_kind || r.n_tokens != r2.n_tokens ||
            (r.n_tokens && memcmp(r.tokens, r2.tokens, r.n_tokens * sizeof r.tokens[0])) ||
            r.query_dim != r2.query_dim ||
            (r.query_dim && memcmp(r.query, r2.query, r.query_dim * sizeof r.query[0])) ||
            r.fmap_len != r2.fmap_len ||
            (r.fmap_len && memcmp(r.fmap, r2.fmap, r.fmap_len * sizeof r.fmap[0])))
            abort();
        ee_proto_request_free(&r2);
        free(js);
        ee_proto_request_free(&r);
    } else if (!e.message[0]) {
        abort(); /* a refusal always says why */
    }
    return 0;
}
