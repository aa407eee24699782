/* ee_seal: real cryptography for jobs on Kafka (libsodium), for the parties
 * EE does not cover: brokers and their disks, anyone with produce rights on
 * a request topic, anyone who can replay a record (docs/SECURITY.md).
 *
 *   sealing     the request body is sealed to the worker pool's X25519
 *               public key (crypto_box_seal: an ephemeral key per record);
 *               the reply is sealed to a reply key the client derives per
 *               job, so only that client reads it
 *   signatures  each client has an Ed25519 key; it signs the record's
 *               routing fields and value (the sealed bytes), so a worker
 *               knows which tenant sent a job and that nobody changed or
 *               moved it (the topic is signed too)
 *   replay      a bounded window of (tenant, id) seen recently, and a
 *               timestamp that must lie within the window
 *
 * Key files follow ee_key's rules (0600, never overwritten, checked):
 * "EEPOOL01" holds the pool's X25519 secret, "EESIGN01" a client's Ed25519
 * seed. Public keys travel as 64 lowercase hex characters. */
#ifndef EE_SEAL_H
#define EE_SEAL_H

#include "ee_error.h"
#include "ee_key.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EE_SEAL_PK_BYTES 32
#define EE_SEAL_PK_HEX (EE_SEAL_PK_BYTES * 2 + 1)
#define EE_SEAL_SIG_BYTES 64
#define EE_SEAL_SIG_HEX (EE_SEAL_SIG_BYTES * 2 + 1)
#define EE_SEAL_MAGIC "EESEAL1:"  /* 8 bytes before every sealed record value */
#define EE_SEAL_MAGIC_LEN 8

/* ---- keys -------------------------------------------------------------------- */

typedef struct ee_pool_key {        /* X25519, the worker pool's */
    uint8_t sk[32];
    uint8_t pk[EE_SEAL_PK_BYTES];
} ee_pool_key;

typedef struct ee_client_key {      /* Ed25519, one per client (tenant) */
    uint8_t seed[32];
    uint8_t sk[64];
    uint8_t pk[EE_SEAL_PK_BYTES];
} ee_client_key;

int ee_pool_key_generate(ee_pool_key *k, ee_err *err);
int ee_pool_key_save(const ee_pool_key *k, const char *path, ee_err *err);
int ee_pool_key_load(ee_pool_key *k, const char *path, ee_err *err);
int ee_client_key_generate(ee_client_key *k, ee_err *err);
int ee_client_key_save(const ee_client_key *k, const char *path, ee_err *err);
int ee_client_key_load(ee_client_key *k, const char *path, ee_err *err);
void ee_seal_wipe(void *key, size_t n); /* sodium_memzero */

/* Public key <-> hex (lowercase; parse accepts exactly 64 hex chars). */
void ee_seal_pk_hex(const uint8_t pk[EE_SEAL_PK_BYTES], char out[EE_SEAL_PK_HEX]);
int ee_seal_pk_parse(const char *hex, uint8_t pk[EE_SEAL_PK_BYTES], ee_err *err);

/* The reply key pair of one job, derived from the client's key and the job
 * id (so `ee-producer wait` can open replies later without state). */
void ee_reply_keypair(const ee_client_key *ck, const char *job_id, uint8_t pk[32], uint8_t sk[32]);

/* ---- sealing ------------------------------------------------------------------- */

/* Whether a record value is sealed (starts with EE_SEAL_MAGIC). */
bool ee_is_sealed(const void *value, size_t n);
/* EE_SEAL_MAGIC || crypto_box_seal(msg) to pk; *out malloc'd. */
int ee_seal(const uint8_t pk[EE_SEAL_PK_BYTES], const void *msg, size_t n, uint8_t **out,
            size_t *out_n, ee_err *err);
/* Opens a sealed value with the recipient's key pair; *msg malloc'd and
 * NUL-terminated (not counted in *msg_n). Fails for a value that is not
 * sealed, truncated, or sealed to another key. */
int ee_unseal(const uint8_t pk[32], const uint8_t sk[32], const void *value, size_t n,
              uint8_t **msg, size_t *msg_n, ee_err *err);

/* ---- signatures ---------------------------------------------------------------- */

/* What a request signature covers: the routing fields a broker or a
 * producer could change, and the record value (sealed or not). */
typedef struct ee_signed_fields {
    const char *topic;     /* the request topic (moving a job is refused) */
    const char *id;        /* job id (header ee-id) */
    const char *reply_to;  /* header ee-reply-to */
    const char *tenant;    /* header ee-tenant */
    int64_t ts_ms;         /* header ee-ts: when the client signed */
    int64_t deadline_ms;   /* header ee-deadline (0: none) */
    const void *value;
    size_t value_n;
} ee_signed_fields;

void ee_sign_request(const ee_client_key *k, const ee_signed_fields *f,
                     uint8_t sig[EE_SEAL_SIG_BYTES]);
/* 0 if sig is k's signature of f; -1 with err otherwise. */
int ee_verify_request(const uint8_t pk[EE_SEAL_PK_BYTES], const ee_signed_fields *f,
                      const uint8_t sig[EE_SEAL_SIG_BYTES], ee_err *err);
void ee_seal_sig_hex(const uint8_t sig[EE_SEAL_SIG_BYTES], char out[EE_SEAL_SIG_HEX]);
int ee_seal_sig_parse(const char *hex, uint8_t sig[EE_SEAL_SIG_BYTES], ee_err *err);

/* ---- replay window --------------------------------------------------------------- */

/* (tenant, id) pairs accepted within the last window_ms, at most capacity
 * of them (the oldest are forgotten first; a job older than the window is
 * refused by its timestamp anyway, so forgetting it is safe as long as
 * capacity covers one window of traffic). Not thread-safe. */
typedef struct ee_replay ee_replay;
ee_replay *ee_replay_open(size_t capacity, int64_t window_ms, ee_err *err);
void ee_replay_close(ee_replay *r);
typedef enum ee_replay_verdict {
    EE_REPLAY_FRESH = 0,     /* recorded */
    EE_REPLAY_SEEN = 1,      /* same tenant and id within the window */
    EE_REPLAY_TOO_OLD = 2,   /* ts_ms < now - window */
    EE_REPLAY_FUTURE = 3,    /* ts_ms > now + window */
} ee_replay_verdict;
/* where identifies the record (e.g. a hash of topic, partition and
 * offset; 0 = unknown): the same record seen again is a redelivery
 * (after a rebalance or a retry), not a replay, and stays FRESH. */
ee_replay_verdict ee_replay_check(ee_replay *r, const char *tenant, const char *id, uint64_t where,
                                  int64_t ts_ms, int64_t now_ms);
size_t ee_replay_size(const ee_replay *r);

#endif
