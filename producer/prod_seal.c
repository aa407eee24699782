/* ee-producer keygen / seal: a client's signing key, and sealed + signed
 * records by hand (kcat interop, docs/PROTOCOL.md). */
#include "prod_cmds.h"
#include "prod_exit.h"

#include "cli_args.h"
#include "ee_clock.h"
#include "ee_proto.h"
#include "ee_buf.h"
#include "ee_seal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int prod_cmd_keygen(int argc, char **argv) {
    enum { OUT, HELP, NF };
    cli_flag f[NF] = {[OUT] = {"--out", true}, [HELP] = {"--help", false}};
    ee_err err = {{0}};
    if (cli_parse(argc, argv, f, NF, &err)) return prod_fail("keygen", PROD_EXIT_USAGE, err.msg);
    if (f[HELP].present) {
        puts("usage: ee-producer keygen --out CLIENT.key\n"
             "  Writes a client's Ed25519 signing key (mode 0600, never overwritten) and\n"
             "  prints its public key (64 hex) for the worker's [tenant NAME] public_key.\n"
             "  submit/load sign with --client-key CLIENT.key --tenant NAME; sealed replies\n"
             "  are opened with keys derived from it.");
        return PROD_EXIT_OK;
    }
    if (!f[OUT].present) return prod_fail("keygen", PROD_EXIT_USAGE, "--out is required");
    ee_client_key k;
    int rc = ee_client_key_generate(&k, &err) || ee_client_key_save(&k, f[OUT].value, &err);
    char pk[EE_SEAL_PK_HEX];
    ee_seal_pk_hex(k.pk, pk);
    ee_seal_wipe(&k, sizeof k);
    if (rc) return prod_fail("keygen", PROD_EXIT_USAGE, err.msg);
    puts(pk);
    return PROD_EXIT_OK;
}

/* Read all of a file ("-": stdin), at most 64 MiB. */
static char *slurp(const char *path, size_t *n, ee_err *err) {
    FILE *fp = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!fp) return ee_err_set(err, "--in %s: cannot open", path), NULL;
    char what[64 + 8];
    snprintf(what, sizeof what, "--in %.64s", path);
    ee_buf b = {0};
    int rc = ee_buf_read_file(&b, fp, 64u << 20, what, err);
    if (fp != stdin) fclose(fp);
    if (rc) {
        ee_buf_free(&b);
        return NULL;
    }
    return ee_buf_detach(&b, n);
}

int prod_cmd_seal(int argc, char **argv) {
    enum { IN, OUT, TOPIC, POOLPK, CKEY, TENANT, HELP, NF };
    cli_flag f[NF] = {[IN] = {"--in", true},         [OUT] = {"--out", true},
                      [TOPIC] = {"--topic", true},   [POOLPK] = {"--pool-pk", true},
                      [CKEY] = {"--client-key", true}, [TENANT] = {"--tenant", true},
                      [HELP] = {"--help", false}};
    ee_err err = {{0}};
    if (cli_parse(argc, argv, f, NF, &err)) return prod_fail("seal", PROD_EXIT_USAGE, err.msg);
    if (f[HELP].present) {
        puts("usage: ee-producer seal --in REQUEST.json|- --out RECORD.bin --topic TOPIC\n"
             "         [--pool-pk HEX] [--client-key CLIENT.key --tenant NAME]\n"
             "  Turns a hand-written JSON request (docs/PROTOCOL.md) into the record value a\n"
             "  worker with require_sealed/require_signed accepts: with --pool-pk the body\n"
             "  gets reply_pk (the job's reply key, derived from --client-key) and is\n"
             "  sealed; with --client-key and --tenant the record is signed. Writes the value\n"
             "  to --out and prints the kcat flags for the key and headers, e.g.\n"
             "    kcat -P -b HOST:9092 -t TOPIC $(ee-producer seal ...) RECORD.bin\n"
             "  (kcat sends each file argument as one record.)");
        return PROD_EXIT_OK;
    }
    if (!f[IN].present || !f[OUT].present || !f[TOPIC].present)
        return prod_fail("seal", PROD_EXIT_USAGE, "--in, --out and --topic are required");
    if (f[POOLPK].present && !f[CKEY].present)
        return prod_fail("seal", PROD_EXIT_USAGE, "--pool-pk needs --client-key (reply keys)");
    if (f[CKEY].present != f[TENANT].present)
        return prod_fail("seal", PROD_EXIT_USAGE, "--client-key and --tenant go together");
    size_t n = 0;
    char *text = slurp(f[IN].value, &n, &err);
    if (!text) return prod_fail("seal", PROD_EXIT_USAGE, err.msg);
    /* Validate as a worker would (generous limits: the worker applies its own). */
    const ee_proto_limits lim = {.n_vocab = 1u << 30, .max_prompt_tokens = 1u << 24,
                                 .max_new_tokens = 1u << 24};
    ee_proto_request r;
    ee_proto_error pe;
    int rc = PROD_EXIT_USAGE;
    char *json = NULL;
    uint8_t *sealed = NULL;
    size_t sealed_n = 0;
    ee_client_key ck;
    bool have_ck = false;
    if (ee_proto_parse_request(text, n, &lim, &r, &pe)) {
        prod_fail("seal", PROD_EXIT_USAGE, pe.message);
        free(text);
        return PROD_EXIT_USAGE;
    }
    if (f[CKEY].present) {
        if (ee_client_key_load(&ck, f[CKEY].value, &err)) {
            ee_err_wrap(&err, "--client-key");
            goto done;
        }
        have_ck = true;
    }
    if (f[POOLPK].present) {
        uint8_t pool[32], pk[32], sk[32];
        if (ee_seal_pk_parse(f[POOLPK].value, pool, &err)) {
            ee_err_wrap(&err, "--pool-pk");
            goto done;
        }
        ee_reply_keypair(&ck, r.id, pk, sk);
        ee_seal_wipe(sk, sizeof sk);
        char hex[EE_SEAL_PK_HEX];
        ee_seal_pk_hex(pk, hex);
        free(r.reply_pk);
        r.reply_pk = strdup(hex);
        if (!r.reply_pk || !(json = ee_proto_request_to_json(&r, &err)) ||
            ee_seal(pool, json, strlen(json), &sealed, &sealed_n, &err))
            goto done;
    }
    const void *value = sealed ? (const void *)sealed : text;
    size_t value_n = sealed ? sealed_n : n;
    FILE *out = fopen(f[OUT].value, "wb");
    if (!out || fwrite(value, 1, value_n, out) != value_n || fclose(out) != 0) {
        ee_err_set(&err, "--out %s: cannot write", f[OUT].value);
        goto done;
    }
    printf("-k %s -H %s=%s -H %s=%s", r.session ? r.session : r.id, EE_PROTO_HDR_ID, r.id,
           EE_PROTO_HDR_REPLY_TO, r.reply_to);
    if (have_ck) {
        int64_t ts = ee_epoch_ms();
        ee_signed_fields sf = {.topic = f[TOPIC].value, .id = r.id, .reply_to = r.reply_to,
                               .tenant = f[TENANT].value, .ts_ms = ts,
                               .deadline_ms = r.deadline_ms, .value = value, .value_n = value_n};
        uint8_t sig[EE_SEAL_SIG_BYTES];
        char sig_hex[EE_SEAL_SIG_HEX];
        ee_sign_request(&ck, &sf, sig);
        ee_seal_sig_hex(sig, sig_hex);
        printf(" -H %s=%s -H %s=%lld", EE_PROTO_HDR_TENANT, f[TENANT].value, EE_PROTO_HDR_TS,
               (long long)ts);
        if (r.deadline_ms) printf(" -H %s=%lld", EE_PROTO_HDR_DEADLINE, (long long)r.deadline_ms);
        printf(" -H %s=%s", EE_PROTO_HDR_SIG, sig_hex);
    }
    printf("\n");
    rc = PROD_EXIT_OK;
done:
    if (rc && err.msg[0]) prod_fail("seal", rc, err.msg);
    if (have_ck) ee_seal_wipe(&ck, sizeof ck);
    ee_proto_request_free(&r);
    free(text);
    free(json);
    free(sealed);
    return rc;
}
