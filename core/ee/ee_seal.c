/* Sealed and signed jobs (see ee_seal.h). Every primitive is libsodium's:
 * crypto_box_seal (X25519 + XSalsa20-Poly1305 with an ephemeral key),
 * crypto_sign_detached (Ed25519), crypto_generichash (BLAKE2b) for the
 * signed digest and the reply-key derivation, crypto_shorthash (SipHash,
 * keyed per process) for the replay table. */
#include "ee_seal.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* ---- keys ------------------------------------------------------------------- */

void ee_seal_wipe(void *key, size_t n) { sodium_memzero(key, n); }

int ee_pool_key_generate(ee_pool_key *k, ee_err *err) {
    if (ee_sodium_init(err)) return -1;
    crypto_box_keypair(k->pk, k->sk);
    return 0;
}

int ee_pool_key_save(const ee_pool_key *k, const char *path, ee_err *err) {
    return ee_keyfile_save(path, EE_KEYFILE_POOL, k->sk, err);
}

int ee_pool_key_load(ee_pool_key *k, const char *path, ee_err *err) {
    if (ee_keyfile_load(path, EE_KEYFILE_POOL, k->sk, err)) return -1;
    crypto_scalarmult_base(k->pk, k->sk);
    return 0;
}

int ee_client_key_generate(ee_client_key *k, ee_err *err) {
    if (ee_sodium_init(err)) return -1;
    randombytes_buf(k->seed, sizeof k->seed);
    crypto_sign_seed_keypair(k->pk, k->sk, k->seed);
    return 0;
}

int ee_client_key_save(const ee_client_key *k, const char *path, ee_err *err) {
    return ee_keyfile_save(path, EE_KEYFILE_CLIENT, k->seed, err);
}

int ee_client_key_load(ee_client_key *k, const char *path, ee_err *err) {
    if (ee_keyfile_load(path, EE_KEYFILE_CLIENT, k->seed, err)) return -1;
    crypto_sign_seed_keypair(k->pk, k->sk, k->seed);
    return 0;
}

static int hex_parse(const char *hex, uint8_t *out, size_t n, const char *what, ee_err *err) {
    size_t len = hex ? strlen(hex) : 0, got = 0;
    if (len != 2 * n)
        return ee_err_set(err, "%s: expected %zu hex characters, got %zu", what, 2 * n, len);
    for (size_t i = 0; i < len; i++)
        if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f') ||
              (hex[i] >= 'A' && hex[i] <= 'F')))
            return ee_err_set(err, "%s: '%c' at %zu is not a hex digit", what, hex[i], i);
    if (sodium_hex2bin(out, n, hex, len, NULL, &got, NULL) != 0 || got != n)
        return ee_err_set(err, "%s: not %zu bytes of hex", what, n);
    return 0;
}

void ee_seal_pk_hex(const uint8_t pk[EE_SEAL_PK_BYTES], char out[EE_SEAL_PK_HEX]) {
    sodium_bin2hex(out, EE_SEAL_PK_HEX, pk, EE_SEAL_PK_BYTES);
}

int ee_seal_pk_parse(const char *hex, uint8_t pk[EE_SEAL_PK_BYTES], ee_err *err) {
    return hex_parse(hex, pk, EE_SEAL_PK_BYTES, "public key", err);
}

void ee_seal_sig_hex(const uint8_t sig[EE_SEAL_SIG_BYTES], char out[EE_SEAL_SIG_HEX]) {
    sodium_bin2hex(out, EE_SEAL_SIG_HEX, sig, EE_SEAL_SIG_BYTES);
}

int ee_seal_sig_parse(const char *hex, uint8_t sig[EE_SEAL_SIG_BYTES], ee_err *err) {
    return hex_parse(hex, sig, EE_SEAL_SIG_BYTES, "signature", err);
}

void ee_reply_keypair(const ee_client_key *ck, const char *job_id, uint8_t pk[32], uint8_t sk[32]) {
    static const char domain[] = "eeinfer.reply-key.v1";
    uint8_t seed[crypto_box_SEEDBYTES];
    crypto_generichash_state st;
    crypto_generichash_init(&st, ck->seed, sizeof ck->seed, sizeof seed);
    crypto_generichash_update(&st, (const uint8_t *)domain, sizeof domain);
    crypto_generichash_update(&st, (const uint8_t *)job_id, strlen(job_id));
    crypto_generichash_final(&st, seed, sizeof seed);
    crypto_box_seed_keypair(pk, sk, seed);
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(&st, sizeof st);
}

/* ---- sealing ------------------------------------------------------------------ */

bool ee_is_sealed(const void *value, size_t n) {
    return value && n >= EE_SEAL_MAGIC_LEN && memcmp(value, EE_SEAL_MAGIC, EE_SEAL_MAGIC_LEN) == 0;
}

int ee_seal(const uint8_t pk[EE_SEAL_PK_BYTES], const void *msg, size_t n, uint8_t **out,
            size_t *out_n, ee_err *err) {
    *out = NULL;
    *out_n = 0;
    if (ee_sodium_init(err)) return -1;
    if (n > SIZE_MAX - EE_SEAL_MAGIC_LEN - crypto_box_SEALBYTES)
        return ee_err_set(err, "message too large to seal");
    size_t len = EE_SEAL_MAGIC_LEN + crypto_box_SEALBYTES + n;
    uint8_t *b = malloc(len);
    if (!b) return ee_err_set(err, "out of memory sealing %zu bytes", n);
    memcpy(b, EE_SEAL_MAGIC, EE_SEAL_MAGIC_LEN);
    if (crypto_box_seal(b + EE_SEAL_MAGIC_LEN, msg, n, pk) != 0) {
        free(b);
        return ee_err_set(err, "sealing failed (invalid public key)");
    }
    *out = b;
    *out_n = len;
    return 0;
}

int ee_unseal(const uint8_t pk[32], const uint8_t sk[32], const void *value, size_t n,
              uint8_t **msg, size_t *msg_n, ee_err *err) {
    *msg = NULL;
    *msg_n = 0;
    if (ee_sodium_init(err)) return -1;
    if (!ee_is_sealed(value, n)) return ee_err_set(err, "not a sealed record (no %.7s magic)", EE_SEAL_MAGIC);
    if (n < EE_SEAL_MAGIC_LEN + crypto_box_SEALBYTES)
        return ee_err_set(err, "sealed record of %zu bytes is truncated (at least %zu)", n,
                          (size_t)(EE_SEAL_MAGIC_LEN + crypto_box_SEALBYTES));
    size_t len = n - EE_SEAL_MAGIC_LEN - crypto_box_SEALBYTES;
    uint8_t *m = malloc(len + 1);
    if (!m) return ee_err_set(err, "out of memory opening %zu bytes", n);
    if (crypto_box_seal_open(m, (const uint8_t *)value + EE_SEAL_MAGIC_LEN,
                             n - EE_SEAL_MAGIC_LEN, pk, sk) != 0) {
        free(m);
        return ee_err_set(err, "sealed record does not open with this key (sealed to another "
                               "key, or altered)");
    }
    m[len] = 0;
    *msg = m;
    *msg_n = len;
    return 0;
}

/* ---- signatures --------------------------------------------------------------- */

/* BLAKE2b-512 of the domain and each field length-prefixed, so no two
 * different field lists give the same bytes. */
static void signed_digest(const ee_signed_fields *f, uint8_t out[64]) {
    static const char domain[] = "eeinfer.request-signature.v1";
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 64);
    crypto_generichash_update(&st, (const uint8_t *)domain, sizeof domain);
    const char *strs[] = {f->topic, f->id, f->reply_to, f->tenant};
    for (size_t i = 0; i < 4; i++) {
        const char *s = strs[i] ? strs[i] : "";
        uint64_t len = strlen(s);
        crypto_generichash_update(&st, (const uint8_t *)&len, sizeof len);
        crypto_generichash_update(&st, (const uint8_t *)s, len);
    }
    int64_t nums[2] = {f->ts_ms, f->deadline_ms};
    crypto_generichash_update(&st, (const uint8_t *)nums, sizeof nums);
    uint64_t vlen = f->value_n;
    crypto_generichash_update(&st, (const uint8_t *)&vlen, sizeof vlen);
    if (f->value_n) crypto_generichash_update(&st, f->value, f->value_n);
    crypto_generichash_final(&st, out, 64);
}

void ee_sign_request(const ee_client_key *k, const ee_signed_fields *f,
                     uint8_t sig[EE_SEAL_SIG_BYTES]) {
    (void)ee_sodium_init(NULL);
    uint8_t d[64];
    signed_digest(f, d);
    crypto_sign_detached(sig, NULL, d, sizeof d, k->sk);
}

int ee_verify_request(const uint8_t pk[EE_SEAL_PK_BYTES], const ee_signed_fields *f,
                      const uint8_t sig[EE_SEAL_SIG_BYTES], ee_err *err) {
    if (ee_sodium_init(err)) return -1;
    uint8_t d[64];
    signed_digest(f, d);
    if (crypto_sign_verify_detached(sig, d, sizeof d, pk) != 0)
        return ee_err_set(err, "the signature does not verify with tenant '%.64s''s key (wrong "
                               "key, or the record or its headers were changed)",
                          f->tenant ? f->tenant : "");
    return 0;
}

/* ---- replay window ------------------------------------------------------------- */

typedef struct replay_entry {
    uint64_t h;     /* SipHash of tenant || 0 || id */
    int64_t ts;     /* the job's timestamp */
    uint64_t where; /* the record it came in */
    int32_t next;   /* next entry in the bucket chain, -1 at the end */
} replay_entry;

struct ee_replay {
    size_t cap, n, head; /* ring: entries [head - n, head) mod cap, oldest first */
    int64_t window;
    replay_entry *ring;
    int32_t *bucket; /* nb chain heads, -1 empty */
    size_t nb;
    uint8_t key[crypto_shorthash_KEYBYTES];
};

ee_replay *ee_replay_open(size_t capacity, int64_t window_ms, ee_err *err) {
    if (ee_sodium_init(err)) return NULL;
    if (capacity < 1 || capacity > (1u << 30) || window_ms < 1) {
        ee_err_set(err, "replay window: capacity %zu (1..2^30) or window %lld ms (>= 1) out of range",
                   capacity, (long long)window_ms);
        return NULL;
    }
    ee_replay *r = calloc(1, sizeof *r);
    size_t nb = 1;
    while (nb < 2 * capacity) nb <<= 1;
    if (r) {
        r->ring = malloc(sizeof(replay_entry) * capacity);
        r->bucket = malloc(sizeof(int32_t) * nb);
    }
    if (!r || !r->ring || !r->bucket) {
        ee_replay_close(r);
        ee_err_set(err, "out of memory for a replay window of %zu entries", capacity);
        return NULL;
    }
    memset(r->bucket, 0xff, sizeof(int32_t) * nb);
    r->cap = capacity, r->nb = nb, r->window = window_ms;
    randombytes_buf(r->key, sizeof r->key);
    return r;
}

void ee_replay_close(ee_replay *r) {
    if (!r) return;
    free(r->ring);
    free(r->bucket);
    free(r);
}

size_t ee_replay_size(const ee_replay *r) { return r->n; }

static void drop_oldest(ee_replay *r) {
    size_t i = (r->head + r->cap - r->n) % r->cap;
    int32_t *p = &r->bucket[r->ring[i].h & (r->nb - 1)];
    while (*p != (int32_t)i) p = &r->ring[*p].next; /* it is in its chain */
    *p = r->ring[i].next;
    r->n--;
}

ee_replay_verdict ee_replay_check(ee_replay *r, const char *tenant, const char *id, uint64_t where,
                                  int64_t ts_ms, int64_t now_ms) {
    /* Forget what the timestamp rule now covers (oldest inserted first). */
    while (r->n > 0 && r->ring[(r->head + r->cap - r->n) % r->cap].ts < now_ms - r->window)
        drop_oldest(r);
    if (ts_ms < now_ms - r->window) return EE_REPLAY_TOO_OLD;
    if (ts_ms > now_ms + r->window) return EE_REPLAY_FUTURE;
    /* Key: SipHash of tenant || 0 || id (ids <= 128 bytes, names <= 64). A
     * 64-bit collision (odds ~ n / 2^64) would refuse one fresh job. */
    size_t tl = strlen(tenant), il = strlen(id);
    uint64_t h = 0;
    uint8_t buf[512];
    if (tl + il + 1 <= sizeof buf) {
        memcpy(buf, tenant, tl);
        buf[tl] = 0;
        memcpy(buf + tl + 1, id, il);
        crypto_shorthash((uint8_t *)&h, buf, tl + il + 1, r->key);
    } else {
        uint64_t a = 0, b = 0;
        crypto_shorthash((uint8_t *)&a, (const uint8_t *)tenant, tl, r->key);
        crypto_shorthash((uint8_t *)&b, (const uint8_t *)id, il, r->key);
        h = a ^ (b * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull);
    }
    for (int32_t i = r->bucket[h & (r->nb - 1)]; i >= 0; i = r->ring[i].next)
        if (r->ring[i].h == h)
            return where && r->ring[i].where == where ? EE_REPLAY_FRESH : EE_REPLAY_SEEN;
    if (r->n == r->cap) drop_oldest(r);
    size_t i = r->head;
    r->ring[i] = (replay_entry){.h = h, .ts = ts_ms, .where = where, .next = r->bucket[h & (r->nb - 1)]};
    r->bucket[h & (r->nb - 1)] = (int32_t)i;
    r->head = (r->head + 1) % r->cap;
    r->n++;
    return EE_REPLAY_FRESH;
}
