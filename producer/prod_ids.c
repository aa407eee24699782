#include "prod_ids.h"

#include "ee_key.h"

#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int prod_random_hex(char *out, size_t nbytes, ee_err *err) {
    unsigned char raw[64];
    if (nbytes > sizeof raw) return ee_err_set(err, "random id too long");
    if (ee_sodium_init(err)) return -1;
    randombytes_buf(raw, nbytes);
    for (size_t i = 0; i < nbytes; i++) snprintf(out + 2 * i, 3, "%02x", raw[i]);
    out[2 * nbytes] = 0;
    return 0;
}

int prod_random_job_id(char out[32], ee_err *err) {
    char hex[17];
    if (prod_random_hex(hex, 8, err)) return -1;
    snprintf(out, 32, "job-%s", hex);
    return 0;
}

void prod_default_reply_topic(char *out, size_t cap) {
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0) host[0] = 0;
    host[sizeof host - 1] = 0;
    char safe[65];
    size_t n = 0;
    for (const char *p = host; *p && n < sizeof safe - 1; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-';
        safe[n++] = ok ? c : '-';
    }
    safe[n] = 0;
    snprintf(out, cap, "ee.replies.%s", n ? safe : "default");
}
