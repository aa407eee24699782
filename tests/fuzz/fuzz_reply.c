/* libFuzzer target: the client's reply parser (replies come from workers,
 * which the client does not trust). Accepted replies re-serialise. */
#include "ee_proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ee_proto_reply r;
    ee_err err;
    if (ee_proto_parse_reply((const char *)data, size, &r, &err) == 0) {
        char *js = ee_proto_reply_to_json(&r, &err);
        if (js) {
            ee_proto_reply r2;
            if (ee_proto_parse_reply(js, strlen(js), &r2, &err) != 0) abort();
            if (strcmp(r.id, r2.id) || r.ok != r2.ok || r.n_tokens != r2.n_tokens) abort();
            ee_proto_reply_free(&r2);
            free(js);
        }
        ee_proto_reply_free(&r);
    } else if (!err.msg[0]) {
        abort();
    }
    return 0;
}
