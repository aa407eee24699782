/* ee_seal: pool and client key files, sealing, request signatures, reply
 * keys and the replay window; the wire format checked against PyNaCl and
 * hashlib (an independent client implementation). */
#include "ee_seal.h"
#include "ee_testmodel.h"

#include <check.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

START_TEST(key_files_round_trip_and_kinds) {
    char *dir = ee_test_mkdtemp("seal-keys");
    char pool[512], client[512], ee[512];
    snprintf(pool, sizeof pool, "%s/pool.key", dir);
    snprintf(client, sizeof client, "%s/client.key", dir);
    snprintf(ee, sizeof ee, "%s/k.eekey", dir);
    ee_err err = {{0}};
    ee_pool_key p, p2;
    ee_client_key c, c2;
    ee_key k;
    ck_assert_int_eq(ee_pool_key_generate(&p, &err), 0);
    ck_assert_int_eq(ee_client_key_generate(&c, &err), 0);
    ck_assert_int_eq(ee_key_generate(&k, &err), 0);
    ck_assert_int_eq(ee_pool_key_save(&p, pool, &err), 0);
    ck_assert_int_eq(ee_client_key_save(&c, client, &err), 0);
    ck_assert_int_eq(ee_key_save(&k, ee, &err), 0);
    struct stat st;
    ck_assert_int_eq(stat(pool, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(ee_pool_key_load(&p2, pool, &err), 0);
    ck_assert_mem_eq(p.pk, p2.pk, 32);
    ck_assert_mem_eq(p.sk, p2.sk, 32);
    ck_assert_int_eq(ee_client_key_load(&c2, client, &err), 0);
    ck_assert_mem_eq(c.pk, c2.pk, 32);
    ck_assert_mem_eq(c.sk, c2.sk, 64);
    /* Never overwritten; a file of another kind is named as such. */
    ck_assert_int_eq(ee_pool_key_save(&p, pool, &err), -1);
    ck_assert_msg(strstr(err.msg, "refusing to overwrite"), "%s", err.msg);
    ck_assert_int_eq(ee_pool_key_load(&p2, client, &err), -1);
    ck_assert_msg(strstr(err.msg, "is a client signing key, not a worker-pool sealing key"), "%s",
                  err.msg);
    ck_assert_int_eq(ee_client_key_load(&c2, ee, &err), -1);
    ck_assert_msg(strstr(err.msg, "is a EE key, not a client signing key"), "%s", err.msg);
    ck_assert_int_eq(ee_key_load(&k, pool, &err), -1);
    ck_assert_msg(strstr(err.msg, "worker-pool sealing key, not a EE key"), "%s", err.msg);
    chmod(pool, 0644);
    ck_assert_int_eq(ee_pool_key_load(&p2, pool, &err), -1);
    ck_assert_msg(strstr(err.msg, "chmod 600"), "%s", err.msg);
    /* Hex public keys. */
    char hex[EE_SEAL_PK_HEX];
    uint8_t back[32];
    ee_seal_pk_hex(p.pk, hex);
    ck_assert_int_eq(ee_seal_pk_parse(hex, back, &err), 0);
    ck_assert_mem_eq(back, p.pk, 32);
    ck_assert_int_eq(ee_seal_pk_parse("abc", back, &err), -1);
    ck_assert_msg(strstr(err.msg, "64 hex"), "%s", err.msg);
    hex[5] = 'g';
    ck_assert_int_eq(ee_seal_pk_parse(hex, back, &err), -1);
    ck_assert_msg(strstr(err.msg, "'g' at 5"), "%s", err.msg);
    ee_test_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(seal_opens_only_with_the_key_and_unaltered) {
    ee_err err = {{0}};
    ee_pool_key p, q;
    ee_pool_key_generate(&p, &err);
    ee_pool_key_generate(&q, &err);
    const char *msg = "{\"v\":1,\"id\":\"job-1\",\"input\":{\"tokens\":[1,2,3]}}";
    uint8_t *sealed, *open;
    size_t n, m;
    ck_assert_int_eq(ee_seal(p.pk, msg, strlen(msg), &sealed, &n, &err), 0);
    ck_assert(ee_is_sealed(sealed, n));
    ck_assert(!ee_is_sealed(msg, strlen(msg)));
    ck_assert_ptr_null(memmem(sealed, n, "job-1", 5)); /* nothing in the clear */
    ck_assert_int_eq(ee_unseal(p.pk, p.sk, sealed, n, &open, &m, &err), 0);
    ck_assert_uint_eq(m, strlen(msg));
    ck_assert_str_eq((char *)open, msg);
    free(open);
    ck_assert_int_eq(ee_unseal(q.pk, q.sk, sealed, n, &open, &m, &err), -1);
    ck_assert_msg(strstr(err.msg, "does not open"), "%s", err.msg);
    for (size_t i = EE_SEAL_MAGIC_LEN; i < n; i += 7) { /* any flipped byte */
        sealed[i] ^= 1;
        ck_assert_int_eq(ee_unseal(p.pk, p.sk, sealed, n, &open, &m, &err), -1);
        sealed[i] ^= 1;
    }
    ck_assert_int_eq(ee_unseal(p.pk, p.sk, sealed, 20, &open, &m, &err), -1);
    ck_assert_msg(strstr(err.msg, "truncated"), "%s", err.msg);
    ck_assert_int_eq(ee_unseal(p.pk, p.sk, msg, strlen(msg), &open, &m, &err), -1);
    ck_assert_msg(strstr(err.msg, "not a sealed record"), "%s", err.msg);
    free(sealed);
}
END_TEST

START_TEST(signature_covers_every_routing_field_and_the_value) {
    ee_err err = {{0}};
    ee_client_key c, d;
    ee_client_key_generate(&c, &err);
    ee_client_key_generate(&d, &err);
    const char *v = "EESEAL1:opaque bytes";
    ee_signed_fields f = {.topic = "ee.requests.smollm2.small", .id = "job-1",
                          .reply_to = "ee.replies.a", .tenant = "acme", .ts_ms = 1000,
                          .deadline_ms = 0, .value = v, .value_n = strlen(v)};
    uint8_t sig[64];
    ee_sign_request(&c, &f, sig);
    ck_assert_int_eq(ee_verify_request(c.pk, &f, sig, &err), 0);
    ck_assert_int_eq(ee_verify_request(d.pk, &f, sig, &err), -1);
    ck_assert_msg(strstr(err.msg, "acme"), "%s", err.msg);
    ee_signed_fields g;
    g = f, g.topic = "ee.requests.smollm2.large";
    ck_assert_int_eq(ee_verify_request(c.pk, &g, sig, &err), -1);
    g = f, g.id = "job-2";
    ck_assert_int_eq(ee_verify_request(c.pk, &g, sig, &err), -1);
    g = f, g.reply_to = "ee.replies.b";
    ck_assert_int_eq(ee_verify_request(c.pk, &g, sig, &err), -1);
    g = f, g.tenant = "acm";
    ck_assert_int_eq(ee_verify_request(c.pk, &g, sig, &err), -1);
    g = f, g.ts_ms = 1001;
    ck_assert_int_eq(ee_verify_request(c.pk, &g, sig, &err), -1);
    g = f, g.deadline_ms = 5;
    ck_assert_int_eq(ee_verify_request(c.pk, &g, sig, &err), -1);
    g = f, g.value_n = f.value_n - 1;
    ck_assert_int_eq(ee_verify_request(c.pk, &g, sig, &err), -1);
    /* Length prefixes: moving a byte between fields changes the digest. */
    g = f, g.id = "job-1e", g.reply_to = "e.replies.a";
    ck_assert_int_eq(ee_verify_request(c.pk, &g, sig, &err), -1);
    char hex[EE_SEAL_SIG_HEX];
    uint8_t back[64];
    ee_seal_sig_hex(sig, hex);
    ck_assert_int_eq(ee_seal_sig_parse(hex, back, &err), 0);
    ck_assert_mem_eq(back, sig, 64);
    /* Reply keys: the same per (client, id), different across ids/clients. */
    uint8_t pk1[32], sk1[32], pk2[32], sk2[32], pk3[32], sk3[32];
    ee_reply_keypair(&c, "job-1", pk1, sk1);
    ee_reply_keypair(&c, "job-1", pk2, sk2);
    ck_assert_mem_eq(pk1, pk2, 32);
    ee_reply_keypair(&c, "job-2", pk3, sk3);
    ck_assert(memcmp(pk1, pk3, 32) != 0);
    ee_reply_keypair(&d, "job-1", pk3, sk3);
    ck_assert(memcmp(pk1, pk3, 32) != 0);
}
END_TEST

START_TEST(replay_window) {
    ee_err err = {{0}};
    ee_replay *r = ee_replay_open(4, 1000, &err);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(ee_replay_check(r, "a", "j1", 0, 100, 100), EE_REPLAY_FRESH);
    ck_assert_int_eq(ee_replay_check(r, "a", "j1", 0, 100, 150), EE_REPLAY_SEEN);
    ck_assert_int_eq(ee_replay_check(r, "b", "j1", 0, 100, 150), EE_REPLAY_FRESH); /* per tenant */
    /* The same record again (a redelivery) is not a replay; another record
     * with the same id is. */
    ck_assert_int_eq(ee_replay_check(r, "c", "j1", 77, 100, 150), EE_REPLAY_FRESH);
    ck_assert_int_eq(ee_replay_check(r, "c", "j1", 77, 100, 160), EE_REPLAY_FRESH);
    ck_assert_int_eq(ee_replay_check(r, "c", "j1", 78, 100, 160), EE_REPLAY_SEEN);
    ck_assert_int_eq(ee_replay_check(r, "a", "j2", 0, -1000, 150), EE_REPLAY_TOO_OLD);
    ck_assert_int_eq(ee_replay_check(r, "a", "j2", 0, 1300, 150), EE_REPLAY_FUTURE);
    /* After the window the entry is forgotten, and the timestamp rule
     * refuses the same record instead. */
    ck_assert_int_eq(ee_replay_check(r, "a", "j1", 0, 100, 1200), EE_REPLAY_TOO_OLD);
    ck_assert_uint_eq(ee_replay_size(r), 0);
    /* Bounded: the oldest are dropped beyond the capacity. */
    char id[16];
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof id, "k%d", i);
        ck_assert_int_eq(ee_replay_check(r, "a", id, 0, 2000, 2000), EE_REPLAY_FRESH);
    }
    ck_assert_uint_eq(ee_replay_size(r), 4);
    ck_assert_int_eq(ee_replay_check(r, "a", "k9", 0, 2000, 2001), EE_REPLAY_SEEN);
    ck_assert_int_eq(ee_replay_check(r, "a", "k0", 0, 2000, 2001), EE_REPLAY_FRESH); /* evicted */
    /* Many entries through a small table keep the chains consistent. */
    ee_replay *big = ee_replay_open(1000, 1 << 30, &err);
    for (int i = 0; i < 20000; i++) {
        snprintf(id, sizeof id, "x%d", i);
        ck_assert_int_eq(ee_replay_check(big, "t", id, 0, i, i), EE_REPLAY_FRESH);
        if (i >= 1) {
            snprintf(id, sizeof id, "x%d", i - 1);
            ck_assert_int_eq(ee_replay_check(big, "t", id, 0, i, i), EE_REPLAY_SEEN);
        }
    }
    ee_replay_close(big);
    ck_assert_ptr_null(ee_replay_open(0, 10, &err));
    ck_assert_msg(strstr(err.msg, "capacity"), "%s", err.msg);
    ee_replay_close(r);
}
END_TEST

/* An independent client: PyNaCl opens what we seal and seals what we
 * open; hashlib rebuilds the signed digest and PyNaCl verifies our
 * signature over it. */
static const char *PY_SEAL =
    "import sys, hashlib, struct, nacl.public, nacl.signing\n"
    "d = sys.argv[1]\n"
    "rd = lambda n: open(f'{d}/{n}', 'rb').read()\n"
    "sk = nacl.public.PrivateKey(rd('pool_sk'))\n"
    "sealed = rd('sealed')\n"
    "assert sealed[:8] == b'EESEAL1:'\n"
    "assert nacl.public.SealedBox(sk).decrypt(sealed[8:]) == rd('msg')\n"
    "open(f'{d}/py_sealed', 'wb').write(b'EESEAL1:' + nacl.public.SealedBox(sk.public_key).encrypt(b'from python'))\n"
    "h = hashlib.blake2b(digest_size=64)\n"
    "h.update(b'eeinfer.request-signature.v1\\0')\n"
    "for s in [b'ee.requests.m.small', b'job-9', b'replies', b'acme']:\n"
    "    h.update(struct.pack('<Q', len(s))); h.update(s)\n"
    "h.update(struct.pack('<qq', 1234567, 0))\n"
    "v = rd('sealed'); h.update(struct.pack('<Q', len(v))); h.update(v)\n"
    "nacl.signing.VerifyKey(rd('client_pk')).verify(h.digest(), rd('sig'))\n"
    "print('ok')\n";

START_TEST(wire_format_matches_pynacl) {
    char *dir = ee_test_mkdtemp("seal-py");
    char path[600], cmd[2048];
    ee_err err = {{0}};
    ee_pool_key p;
    ee_client_key c;
    ee_pool_key_generate(&p, &err);
    ee_client_key_generate(&c, &err);
    const char *msg = "{\"v\":1,\"id\":\"job-9\"}";
    uint8_t *sealed;
    size_t n;
    ck_assert_int_eq(ee_seal(p.pk, msg, strlen(msg), &sealed, &n, &err), 0);
    ee_signed_fields f = {.topic = "ee.requests.m.small", .id = "job-9", .reply_to = "replies",
                          .tenant = "acme", .ts_ms = 1234567, .value = sealed, .value_n = n};
    uint8_t sig[64];
    ee_sign_request(&c, &f, sig);
    struct {
        const char *name;
        const void *p;
        size_t n;
    } files[] = {{"pool_sk", p.sk, 32}, {"sealed", sealed, n}, {"msg", msg, strlen(msg)},
                 {"client_pk", c.pk, 32}, {"sig", sig, 64}};
    for (size_t i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
        ee_test_write_file(path, files[i].p, files[i].n);
    }
    char args[700];
    snprintf(args, sizeof args, "'%s'", dir);
    int rc = ee_test_python_script(dir, PY_SEAL, args, cmd, sizeof cmd);
    ck_assert_msg(rc == 0, "PyNaCl oracle failed (rc %d): %s", rc, cmd);
    snprintf(path, sizeof path, "%s/py_sealed", dir);
    FILE *fp = fopen(path, "rb");
    ck_assert_ptr_nonnull(fp);
    uint8_t buf[256];
    size_t got = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    uint8_t *open;
    size_t m;
    ck_assert_int_eq(ee_unseal(p.pk, p.sk, buf, got, &open, &m, &err), 0);
    ck_assert_str_eq((char *)open, "from python");
    free(open);
    free(sealed);
    ee_test_rmtree(dir);
    free(dir);
}
END_TEST

Suite *suite_seal(void) {
    Suite *s = suite_create("seal");
    TCase *tc = tcase_create("seal");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, key_files_round_trip_and_kinds);
    tcase_add_test(tc, seal_opens_only_with_the_key_and_unaltered);
    tcase_add_test(tc, signature_covers_every_routing_field_and_the_value);
    tcase_add_test(tc, replay_window);
    tcase_add_test(tc, wire_format_matches_pynacl);
    suite_add_tcase(s, tc);
    return s;
}
