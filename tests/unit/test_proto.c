/* Unit tests for ee_proto: the job protocol, version 1 (docs/PROTOCOL.md).
 *
 * - A valid request parses with every field; a minimal one gets the defaults.
 * - Every kind of bad input (one loop test per case) gives the documented
 *   error code and a message that names the field.
 * - id / reply_to are recovered from otherwise bad requests when usable.
 * - Fuzz: 5,000 deterministic mutations of a valid request (bit flips, byte
 *   sets, truncations, insertions of JSON-ish fragments, deletions) never
 *   crash under ASan/UBSan and always give success or a coded error; every
 *   mutant that parses survives a to_json / parse round trip.
 * - Reply builders produce JSON that parses back with the expected fields.
 * - Names: topics, groups, validators, class choice, error codes, DLQ
 *   headers, deadlines. */
#include <check.h>
#include <math.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ee_proto.h"

/* ---- fixtures ------------------------------------------------------------- */

static const char VALID[] =
    "{\"v\":1,\"id\":\"job-1\",\"session\":\"sess-9\",\"model\":\"smollm2\","
    "\"key_id\":\"0123456789abcdef0123456789abcdef\",\"task\":\"generate\","
    "\"input\":{\"tokens\":[1,2,3,49151]},"
    "\"params\":{\"max_tokens\":64,\"temperature\":0.7,\"top_k\":40,\"top_p\":0.9,"
    "\"seed\":9007199254740992,\"stop_ids\":[2,3]},"
    "\"reply_to\":\"replies.me\",\"deadline_ms\":1700000000000,\"stream\":true,"
    "\"x-future\":{\"anything\":[1,null]}}";

static const ee_proto_limits LIM = {
    .n_vocab = 49152, .max_prompt_tokens = 8, .max_new_tokens = 256, .max_request_bytes = 4096};

/* VALID with the member at a dotted path replaced by value_json (parsed), or
 * removed when value_json is NULL. */
static char *valid_with(const char *path, const char *value_json) {
    json_error_t je;
    json_t *root = json_loads(VALID, 0, &je);
    ck_assert_ptr_nonnull(root);
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *obj = root;
    char *key = buf, *dot;
    while ((dot = strchr(key, '.'))) {
        *dot = '\0';
        obj = json_object_get(obj, key);
        ck_assert_msg(json_is_object(obj), "bad path %s", path);
        key = dot + 1;
    }
    if (value_json) {
        json_t *v = json_loads(value_json, JSON_DECODE_ANY, &je);
        ck_assert_msg(v != NULL, "bad value %s: %s", value_json, je.text);
        json_object_set_new(obj, key, v);
    } else {
        json_object_del(obj, key);
    }
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    ck_assert_ptr_nonnull(s);
    return s;
}

static int parse_str(const char *s, ee_proto_request *r, ee_proto_error *e) {
    return ee_proto_parse_request(s, strlen(s), &LIM, r, e);
}

static char *repeat(char c, int n) {
    char *s = malloc((size_t)n + 3);
    s[0] = '"';
    memset(s + 1, c, (size_t)n);
    s[n + 1] = '"';
    s[n + 2] = '\0';
    return s;
}

/* ---- valid requests ------------------------------------------------------- */

START_TEST(valid_request_every_field) {
    ee_proto_request r;
    ee_proto_error e;
    ck_assert_int_eq(parse_str(VALID, &r, &e), 0);
    ck_assert_int_eq(e.code, EE_PROTO_OK);
    ck_assert_str_eq(r.id, "job-1");
    ck_assert_str_eq(r.session, "sess-9");
    ck_assert_str_eq(r.model, "smollm2");
    ck_assert_str_eq(r.key_id, "0123456789abcdef0123456789abcdef");
    ck_assert_str_eq(r.task, "generate");
    ck_assert_uint_eq(r.n_tokens, 4);
    ck_assert_int_eq(r.tokens[0], 1);
    ck_assert_int_eq(r.tokens[3], 49151);
    ck_assert_uint_eq(r.params.max_tokens, 64);
    ck_assert_double_eq(r.params.temperature, 0.7);
    ck_assert_uint_eq(r.params.top_k, 40);
    ck_assert_double_eq(r.params.top_p, 0.9);
    ck_assert_uint_eq(r.params.seed, 9007199254740992ULL);
    ck_assert_uint_eq(r.params.n_stop, 2);
    ck_assert_int_eq(r.params.stop_ids[0], 2);
    ck_assert_int_eq(r.params.stop_ids[1], 3);
    ck_assert_str_eq(r.reply_to, "replies.me");
    ck_assert_int_eq(r.deadline_ms, 1700000000000LL);
    ck_assert(r.stream);
    ee_proto_request_free(&r);
    ck_assert_ptr_null(r.id);
    ee_proto_request_free(&r); /* idempotent */
}
END_TEST

START_TEST(minimal_request_defaults) {
    const char *s = "{\"v\":1,\"id\":\"a\",\"model\":\"m\",\"key_id\":"
                    "\"ffffffffffffffffffffffffffffffff\",\"task\":\"generate\","
                    "\"input\":{\"tokens\":[0]},\"reply_to\":\"r\",\"params\":{\"seed\":null}}";
    ee_proto_request r;
    ee_proto_error e;
    ck_assert_int_eq(parse_str(s, &r, &e), 0);
    ck_assert_ptr_null(r.session);
    ck_assert_uint_eq(r.params.max_tokens, 128);
    ck_assert_double_eq(r.params.temperature, 0.0);
    ck_assert_uint_eq(r.params.top_k, 0);
    ck_assert_double_eq(r.params.top_p, 1.0);
    ck_assert_uint_eq(r.params.seed, 0);
    ck_assert_uint_eq(r.params.n_stop, 0);
    ck_assert_ptr_null(r.params.stop_ids);
    ck_assert_int_eq(r.deadline_ms, 0);
    ck_assert(!r.stream);
    ee_proto_request_free(&r);

    /* default max_tokens is clamped to the worker's limit */
    ee_proto_limits small = LIM;
    small.max_new_tokens = 16;
    ck_assert_int_eq(ee_proto_parse_request(s, strlen(s), &small, &r, &e), 0);
    ck_assert_uint_eq(r.params.max_tokens, 16);
    ee_proto_request_free(&r);
}
END_TEST

START_TEST(request_round_trip) {
    ee_proto_request a, b;
    ee_proto_error e;
    ee_err err;
    ck_assert_int_eq(parse_str(VALID, &a, &e), 0);
    char *js = ee_proto_request_to_json(&a, &err);
    ck_assert_ptr_nonnull(js);
    ck_assert_int_eq(parse_str(js, &b, &e), 0);
    ck_assert_str_eq(a.id, b.id);
    ck_assert_str_eq(a.session, b.session);
    ck_assert_str_eq(a.model, b.model);
    ck_assert_str_eq(a.key_id, b.key_id);
    ck_assert_str_eq(a.task, b.task);
    ck_assert_uint_eq(a.n_tokens, b.n_tokens);
    ck_assert_mem_eq(a.tokens, b.tokens, a.n_tokens * sizeof *a.tokens);
    ck_assert_uint_eq(a.params.max_tokens, b.params.max_tokens);
    ck_assert(a.params.temperature == b.params.temperature); /* exact */
    ck_assert(a.params.top_p == b.params.top_p);
    ck_assert_uint_eq(a.params.top_k, b.params.top_k);
    ck_assert_uint_eq(a.params.seed, b.params.seed);
    ck_assert_uint_eq(a.params.n_stop, b.params.n_stop);
    ck_assert_mem_eq(a.params.stop_ids, b.params.stop_ids, a.params.n_stop * sizeof(int32_t));
    ck_assert_str_eq(a.reply_to, b.reply_to);
    ck_assert_int_eq(a.deadline_ms, b.deadline_ms);
    ck_assert_int_eq(a.stream, b.stream);
    free(js);
    ee_proto_request_free(&a);
    ee_proto_request_free(&b);

    /* a producer-built struct: no session, no stop ids, no deadline */
    int32_t toks[] = {5, 6, 7};
    ee_proto_request p = {.id = "j2", .model = "smollm2", .key_id =
                              "00112233445566778899aabbccddeeff",
                          .tokens = toks, .n_tokens = 3, .reply_to = "out"};
    ee_proto_params_default(&p.params, &LIM);
    p.params.temperature = 0.1;
    js = ee_proto_request_to_json(&p, &err);
    ck_assert_ptr_nonnull(js);
    ck_assert_ptr_null(strstr(js, "session"));
    ck_assert_ptr_null(strstr(js, "stop_ids"));
    ck_assert_ptr_null(strstr(js, "deadline_ms"));
    ck_assert_int_eq(parse_str(js, &b, &e), 0);
    ck_assert_str_eq(b.task, "generate");
    ck_assert(b.params.temperature == 0.1);
    ck_assert_uint_eq(b.n_tokens, 3);
    ck_assert_int_eq(b.tokens[2], 7);
    free(js);
    ee_proto_request_free(&b);

    p.id = NULL;
    ck_assert_ptr_null(ee_proto_request_to_json(&p, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "id"));
}
END_TEST

/* ---- bad requests --------------------------------------------------------- */

typedef struct bad_case {
    const char *path;  /* member to change (dotted), or NULL: raw is the record */
    const char *value; /* JSON; NULL removes the member */
    ee_proto_code code;
    const char *needle; /* must appear in the message */
} bad_case;

#define LONG_ID "@ID129"
#define LONG_MODEL "@M65"
#define LONG_TOPIC "@T250"
#define MAX_TOPIC "@T249"

static const bad_case BAD[] = {
    /* the record */
    {NULL, "{", EE_PROTO_E_BAD_REQUEST, "not valid JSON"},
    {NULL, "", EE_PROTO_E_BAD_REQUEST, "empty"},
    {NULL, "[1,2]", EE_PROTO_E_BAD_REQUEST, "JSON object"},
    {NULL, "\"str\"", EE_PROTO_E_BAD_REQUEST, "not valid JSON"}, /* no JSON_DECODE_ANY */
    {NULL, "{\"v\":1,\"id\":\"a\",\"id\":\"b\"}", EE_PROTO_E_BAD_REQUEST, "duplicate"},
    {NULL, "{\"v\":1} trailing", EE_PROTO_E_BAD_REQUEST, "not valid JSON"},
    {NULL, "{\"v\":1,\"id\":\"a\\u0000b\"}", EE_PROTO_E_BAD_REQUEST, "not valid JSON"},
    {NULL, "{\"v\":1,\"id\":\"\xff\"}", EE_PROTO_E_BAD_REQUEST, "not valid JSON"},
    {NULL, "{\"v\":1e999}", EE_PROTO_E_BAD_REQUEST, "not valid JSON"},
    {NULL, "@BIG", EE_PROTO_E_TOO_LARGE, "request"},
    /* v */
    {"v", NULL, EE_PROTO_E_UNSUPPORTED_VERSION, "v:"},
    {"v", "2", EE_PROTO_E_UNSUPPORTED_VERSION, "v:"},
    {"v", "0", EE_PROTO_E_UNSUPPORTED_VERSION, "v:"},
    {"v", "\"1\"", EE_PROTO_E_UNSUPPORTED_VERSION, "v:"},
    {"v", "1.0", EE_PROTO_E_UNSUPPORTED_VERSION, "v:"},
    /* id */
    {"id", NULL, EE_PROTO_E_BAD_REQUEST, "id: missing"},
    {"id", "7", EE_PROTO_E_BAD_REQUEST, "id: must be a string"},
    {"id", "null", EE_PROTO_E_BAD_REQUEST, "id: must be a string"},
    {"id", "\"\"", EE_PROTO_E_BAD_REQUEST, "id: must not be empty"},
    {"id", LONG_ID, EE_PROTO_E_BAD_REQUEST, "id: 129 bytes"},
    {"id", "\"a\\u0001b\"", EE_PROTO_E_BAD_REQUEST, "id: contains control"},
    {"id", "\"a\\nb\"", EE_PROTO_E_BAD_REQUEST, "id: contains control"},
    {"id", "\"a\\u007fb\"", EE_PROTO_E_BAD_REQUEST, "id: contains control"},
    {"id", "\"a\\u0085b\"", EE_PROTO_E_BAD_REQUEST, "id: contains control"},
    /* model */
    {"model", NULL, EE_PROTO_E_BAD_REQUEST, "model: missing"},
    {"model", "[]", EE_PROTO_E_BAD_REQUEST, "model: must be a string"},
    {"model", "\"\"", EE_PROTO_E_BAD_REQUEST, "model:"},
    {"model", "\"a/b\"", EE_PROTO_E_BAD_REQUEST, "model:"},
    {"model", "\"sm ol\"", EE_PROTO_E_BAD_REQUEST, "model:"},
    {"model", "\"smøl\"", EE_PROTO_E_BAD_REQUEST, "model:"},
    {"model", LONG_MODEL, EE_PROTO_E_BAD_REQUEST, "model:"},
    /* task */
    {"task", NULL, EE_PROTO_E_BAD_REQUEST, "task: missing"},
    {"task", "\"rank\"", EE_PROTO_E_UNKNOWN_TASK, "task:"},
    {"task", "\"Embed\"", EE_PROTO_E_UNKNOWN_TASK, "task:"},
    {"task", "\"Generate\"", EE_PROTO_E_UNKNOWN_TASK, "task:"},
    {"task", "1", EE_PROTO_E_BAD_REQUEST, "task: must be a string"},
    /* key_id */
    {"key_id", NULL, EE_PROTO_E_BAD_REQUEST, "key_id: missing"},
    {"key_id", "\"0123456789ABCDEF0123456789ABCDEF\"", EE_PROTO_E_BAD_REQUEST, "key_id:"},
    {"key_id", "\"0123456789abcdef\"", EE_PROTO_E_BAD_REQUEST, "key_id:"},
    {"key_id", "\"0123456789abcdef0123456789abcdef0\"", EE_PROTO_E_BAD_REQUEST, "key_id:"},
    {"key_id", "\"0123456789abcdef0123456789abcdeg\"", EE_PROTO_E_BAD_REQUEST, "key_id:"},
    /* input.tokens */
    {"input", NULL, EE_PROTO_E_BAD_REQUEST, "input: missing"},
    {"input", "[1]", EE_PROTO_E_BAD_REQUEST, "input: must be an object"},
    {"input.tokens", NULL, EE_PROTO_E_BAD_REQUEST, "input.tokens: missing"},
    {"input.tokens", "\"1 2\"", EE_PROTO_E_BAD_REQUEST, "input.tokens: must be an array"},
    {"input.tokens", "[]", EE_PROTO_E_BAD_REQUEST, "input.tokens: must not be empty"},
    {"input.tokens", "[1,\"2\"]", EE_PROTO_E_BAD_REQUEST, "input.tokens[1]"},
    {"input.tokens", "[1,2.5]", EE_PROTO_E_BAD_REQUEST, "input.tokens[1]"},
    {"input.tokens", "[1,2,49152]", EE_PROTO_E_BAD_TOKEN, "input.tokens[2]"},
    {"input.tokens", "[-1]", EE_PROTO_E_BAD_TOKEN, "input.tokens[0]"},
    {"input.tokens", "[1,99999999999]", EE_PROTO_E_BAD_TOKEN, "input.tokens[1]"},
    {"input.tokens", "[1,2,3,4,5,6,7,8,9]", EE_PROTO_E_TOO_LARGE, "input.tokens"},
    /* params */
    {"params", "\"greedy\"", EE_PROTO_E_BAD_REQUEST, "params: must be an object"},
    {"params.max_tokens", "0", EE_PROTO_E_BAD_REQUEST, "params.max_tokens"},
    {"params.max_tokens", "257", EE_PROTO_E_TOO_LARGE, "params.max_tokens"},
    {"params.max_tokens", "1.5", EE_PROTO_E_BAD_REQUEST, "params.max_tokens"},
    {"params.max_tokens", "\"64\"", EE_PROTO_E_BAD_REQUEST, "params.max_tokens"},
    {"params.temperature", "-0.1", EE_PROTO_E_BAD_REQUEST, "params.temperature"},
    {"params.temperature", "100.5", EE_PROTO_E_BAD_REQUEST, "params.temperature"},
    {"params.temperature", "\"hot\"", EE_PROTO_E_BAD_REQUEST, "params.temperature"},
    {"params.top_k", "-1", EE_PROTO_E_BAD_REQUEST, "params.top_k"},
    {"params.top_k", "4.5", EE_PROTO_E_BAD_REQUEST, "params.top_k"},
    {"params.top_k", "4294967296", EE_PROTO_E_BAD_REQUEST, "params.top_k"},
    {"params.top_p", "0", EE_PROTO_E_BAD_REQUEST, "params.top_p"},
    {"params.top_p", "-0.5", EE_PROTO_E_BAD_REQUEST, "params.top_p"},
    {"params.top_p", "1.01", EE_PROTO_E_BAD_REQUEST, "params.top_p"},
    {"params.top_p", "true", EE_PROTO_E_BAD_REQUEST, "params.top_p"},
    {"params.seed", "-1", EE_PROTO_E_BAD_REQUEST, "params.seed"},
    {"params.seed", "9007199254740993", EE_PROTO_E_BAD_REQUEST, "params.seed"},
    {"params.seed", "1.0", EE_PROTO_E_BAD_REQUEST, "params.seed"},
    {"params.seed", "\"42\"", EE_PROTO_E_BAD_REQUEST, "params.seed"},
    {"params.stop_ids", "2", EE_PROTO_E_BAD_REQUEST, "params.stop_ids"},
    {"params.stop_ids", "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]", EE_PROTO_E_BAD_REQUEST,
     "params.stop_ids"},
    {"params.stop_ids", "[2,49152]", EE_PROTO_E_BAD_TOKEN, "params.stop_ids[1]"},
    {"params.stop_ids", "[\"x\"]", EE_PROTO_E_BAD_REQUEST, "params.stop_ids[0]"},
    /* reply_to */
    {"reply_to", NULL, EE_PROTO_E_BAD_REQUEST, "reply_to: missing"},
    {"reply_to", "5", EE_PROTO_E_BAD_REQUEST, "reply_to: must be a string"},
    {"reply_to", "\"\"", EE_PROTO_E_BAD_REQUEST, "reply_to:"},
    {"reply_to", "\".\"", EE_PROTO_E_BAD_REQUEST, "reply_to:"},
    {"reply_to", "\"..\"", EE_PROTO_E_BAD_REQUEST, "reply_to:"},
    {"reply_to", "\"my replies\"", EE_PROTO_E_BAD_REQUEST, "reply_to:"},
    {"reply_to", "\"a/b\"", EE_PROTO_E_BAD_REQUEST, "reply_to:"},
    {"reply_to", LONG_TOPIC, EE_PROTO_E_BAD_REQUEST, "reply_to:"},
    /* deadline_ms, stream, session */
    {"deadline_ms", "-1", EE_PROTO_E_BAD_REQUEST, "deadline_ms"},
    {"deadline_ms", "1.7e12", EE_PROTO_E_BAD_REQUEST, "deadline_ms"},
    {"deadline_ms", "\"soon\"", EE_PROTO_E_BAD_REQUEST, "deadline_ms"},
    {"stream", "\"yes\"", EE_PROTO_E_BAD_REQUEST, "stream"},
    {"stream", "1", EE_PROTO_E_BAD_REQUEST, "stream"},
    {"session", "\"\"", EE_PROTO_E_BAD_REQUEST, "session"},
    {"session", "42", EE_PROTO_E_BAD_REQUEST, "session"},
};
#define N_BAD ((int)(sizeof BAD / sizeof BAD[0]))

static char *expand_value(const char *v) {
    if (!v || v[0] != '@') return v ? strdup(v) : NULL;
    if (strcmp(v, LONG_ID) == 0) return repeat('i', 129);
    if (strcmp(v, LONG_MODEL) == 0) return repeat('m', 65);
    if (strcmp(v, LONG_TOPIC) == 0) return repeat('t', 250);
    if (strcmp(v, MAX_TOPIC) == 0) return repeat('t', 249);
    ck_abort_msg("unknown placeholder %s", v);
    return NULL;
}

START_TEST(bad_request_case) {
    const bad_case *c = &BAD[_i];
    char *rec;
    ee_proto_limits lim = LIM;
    if (!c->path) {
        if (strcmp(c->value, "@BIG") == 0) {
            lim.max_request_bytes = strlen(VALID) - 1;
            rec = strdup(VALID);
        } else {
            rec = strdup(c->value);
        }
    } else {
        char *v = expand_value(c->value);
        rec = valid_with(c->path, v);
        free(v);
    }
    ee_proto_request r;
    ee_proto_error e;
    memset(&r, 0x5a, sizeof r);
    int rc = ee_proto_parse_request(rec, strlen(rec), &lim, &r, &e);
    ck_assert_msg(rc == -1, "case %d (%s=%s) parsed", _i, c->path, c->value);
    ck_assert_msg(e.code == c->code, "case %d (%s=%s): code %s, want %s (%s)", _i, c->path,
                  c->value, ee_proto_code_name(e.code), ee_proto_code_name(c->code), e.message);
    ck_assert_msg(strstr(e.message, c->needle) != NULL, "case %d: message \"%s\" lacks \"%s\"",
                  _i, e.message, c->needle);
    /* out is zeroed on failure */
    ck_assert_ptr_null(r.id);
    ck_assert_ptr_null(r.tokens);
    ck_assert_ptr_null(r.params.stop_ids);
    ee_proto_request_free(&r);
    free(rec);
}
END_TEST

START_TEST(boundaries_accepted) {
    static const char *const ok[][2] = {
        {"id", "@ID128"},          {"reply_to", MAX_TOPIC},  {"model", "\"A-z_0.9\""},
        {"input.tokens", "[0,1,2,3,4,5,6,49151]"},           {"params.max_tokens", "256"},
        {"params.max_tokens", "1"}, {"params.temperature", "100"},
        {"params.temperature", "0"}, {"params.top_k", "0"},   {"params.top_p", "1"},
        {"params.top_p", "1e-9"},  {"params.seed", "0"},      {"params.stop_ids", "[]"},
        {"params.stop_ids", "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]"},
        {"deadline_ms", "0"},      {"stream", "false"},       {"stream", "null"},
        {"session", "\"ünïcode ok\""}, {"id", "\"日本\""},    {"params", "{}"},
        {"params", "null"},        {"session", NULL},         {"deadline_ms", NULL},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char *v = NULL;
        if (ok[i][1] && strcmp(ok[i][1], "@ID128") == 0) v = repeat('i', 128);
        else v = expand_value(ok[i][1]);
        char *rec = valid_with(ok[i][0], v);
        ee_proto_request r;
        ee_proto_error e;
        ck_assert_msg(parse_str(rec, &r, &e) == 0, "%s=%s refused: %s", ok[i][0], ok[i][1],
                      e.message);
        ee_proto_request_free(&r);
        free(rec);
        free(v);
    }
}
END_TEST

/* ---- id / reply_to recovery ----------------------------------------------- */

START_TEST(recovers_id_and_reply_to) {
    ee_proto_request r;
    ee_proto_error e;
    /* something else is wrong: both usable */
    const char *fields[][2] = {{"model", "\"a/b\""},     {"input.tokens", "[99999]"},
                               {"v", "2"},               {"params.top_p", "2"},
                               {"task", "\"x\""},        {"key_id", "\"X\""}};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        char *rec = valid_with(fields[i][0], fields[i][1]);
        ck_assert_int_eq(parse_str(rec, &r, &e), -1);
        ck_assert(e.has_id);
        ck_assert_str_eq(e.id, "job-1");
        ck_assert(e.has_reply_to);
        ck_assert_str_eq(e.reply_to, "replies.me");
        free(rec);
    }
    /* a bad id: reply_to still usable, id not */
    char *rec = valid_with("id", "\"a\\u0001\"");
    ck_assert_int_eq(parse_str(rec, &r, &e), -1);
    ck_assert(!e.has_id);
    ck_assert(e.has_reply_to);
    free(rec);
    /* a bad reply_to: id usable, reply_to not */
    rec = valid_with("reply_to", "\"..\"");
    ck_assert_int_eq(parse_str(rec, &r, &e), -1);
    ck_assert(e.has_id);
    ck_assert(!e.has_reply_to);
    free(rec);
    /* not JSON: nothing */
    ck_assert_int_eq(parse_str("{\"id\":\"job-1\"", &r, &e), -1);
    ck_assert(!e.has_id);
    ck_assert(!e.has_reply_to);
    /* a NULL error pointer is allowed */
    ck_assert_int_eq(ee_proto_parse_request("x", 1, &LIM, &r, NULL), -1);
    /* missing limits: internal */
    ck_assert_int_eq(ee_proto_parse_request(VALID, strlen(VALID), NULL, &r, &e), -1);
    ck_assert_int_eq(e.code, EE_PROTO_E_INTERNAL);
}
END_TEST

START_TEST(deadline_check) {
    ee_proto_request r;
    ee_proto_error e;
    ck_assert_int_eq(parse_str(VALID, &r, &e), 0);
    ck_assert_int_eq(ee_proto_check_deadline(&r, 1699999999999LL, &e), 0);
    ck_assert_int_eq(ee_proto_check_deadline(&r, 1700000000000LL, &e), -1);
    ck_assert_int_eq(e.code, EE_PROTO_E_EXPIRED);
    ck_assert(e.has_id && e.has_reply_to);
    ck_assert_str_eq(e.id, "job-1");
    ck_assert_ptr_nonnull(strstr(e.message, "deadline_ms"));
    r.deadline_ms = 0;
    ck_assert_int_eq(ee_proto_check_deadline(&r, INT64_MAX, &e), 0);
    ee_proto_request_free(&r);
}
END_TEST

/* ---- fuzz ------------------------------------------------------------------ */

static uint64_t rng_state;
static uint64_t rng(void) {
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

START_TEST(fuzz_mutations) {
    static const char *const frags[] = {"\"", "{", "}", "[", "]", ",", ":", "\\", "\\u0000",
                                        "\\ud800", "-", "0", "1e999", "null", "true", "1.5",
                                        "99999999999999999999", "\"v\":2,", "\xff", "\xc2\x85",
                                        "\"id\":\"x\",", " ", "-0", "2147483648"};
    const size_t nf = sizeof frags / sizeof frags[0];
    const size_t base = strlen(VALID);
    size_t cap = base * 2 + 256;
    char *work = malloc(cap);
    rng_state = 0x9e3779b97f4a7c15ULL;
    int n_ok = 0, n_err = 0, codes[EE_PROTO_E_COUNT] = {0};
    for (int it = 0; it < 5000; it++) {
        size_t len = base;
        memcpy(work, VALID, base);
        int nmut = 1 + (int)(rng() % 3);
        for (int m = 0; m < nmut; m++) {
            size_t pos = len ? rng() % len : 0;
            switch (rng() % 5) {
            case 0: /* bit flip */
                if (len) work[pos] ^= (char)(1u << (rng() % 8));
                break;
            case 1: /* byte set */
                if (len) work[pos] = (char)(rng() & 0xff);
                break;
            case 2: /* truncate */
                len = pos;
                break;
            case 3: { /* insert a fragment */
                const char *f = frags[rng() % nf];
                size_t fl = strlen(f);
                if (len + fl > cap) break;
                memmove(work + pos + fl, work + pos, len - pos);
                memcpy(work + pos, f, fl);
                len += fl;
                break;
            }
            default: { /* delete a range */
                size_t dl = 1 + rng() % 8;
                if (pos + dl > len) dl = len - pos;
                memmove(work + pos, work + pos + dl, len - pos - dl);
                len -= dl;
            }
            }
        }
        /* exact-size copy so ASan sees any read past len */
        char *rec = malloc(len ? len : 1);
        memcpy(rec, work, len);
        ee_proto_request r;
        ee_proto_error e;
        int rc = ee_proto_parse_request(rec, len, &LIM, &r, &e);
        if (rc == 0) {
            ck_assert_int_eq(e.code, EE_PROTO_OK);
            n_ok++;
            ee_err jerr;
            char *js = ee_proto_request_to_json(&r, &jerr);
            ck_assert_msg(js != NULL, "iteration %d: to_json failed: %s", it, jerr.msg);
            ee_proto_request r2;
            ck_assert_msg(parse_str(js, &r2, &e) == 0, "iteration %d: reparse: %s", it,
                          e.message);
            ck_assert_str_eq(r.id, r2.id);
            ck_assert_uint_eq(r.n_tokens, r2.n_tokens);
            ee_proto_request_free(&r2);
            free(js);
            ee_proto_request_free(&r);
        } else {
            ck_assert_int_eq(rc, -1);
            ck_assert_msg(e.code > EE_PROTO_OK && e.code < EE_PROTO_E_COUNT,
                          "iteration %d: no code", it);
            ck_assert_msg(e.message[0] != '\0', "iteration %d: no message", it);
            ck_assert_ptr_null(r.id);
            if (e.has_id) ck_assert(ee_proto_valid_id(e.id));
            if (e.has_reply_to) ck_assert(ee_proto_valid_topic(e.reply_to));
            codes[e.code]++;
            n_err++;
        }
        free(rec);
    }
    free(work);
    ck_assert_int_eq(n_ok + n_err, 5000);
    /* the mutations reach past the JSON parser */
    ck_assert_int_gt(n_ok, 50);
    ck_assert_int_gt(codes[EE_PROTO_E_BAD_REQUEST], 100);
}
END_TEST

/* ---- replies -------------------------------------------------------------- */

START_TEST(reply_ok_final_round_trip) {
    int32_t toks[] = {17, 0, 49151};
    ee_proto_reply r = {.id = "job-1", .ok = true, .seq = 3, .final = true, .tokens = toks,
                        .n_tokens = 3, .finish_reason = "stop", .prompt_tokens = 4,
                        .completion_tokens = 3, .queue_ms = 1.25, .prefill_ms = 20.5,
                        .decode_ms = 300.75, .worker = "w-1"};
    ee_err err;
    char *js = ee_proto_reply_to_json(&r, &err);
    ck_assert_ptr_nonnull(js);
    /* independent check with jansson */
    json_error_t je;
    json_t *j = json_loads(js, JSON_REJECT_DUPLICATES, &je);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "v")), 1);
    ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "ok");
    ck_assert(json_is_true(json_object_get(j, "final")));
    ck_assert_int_eq(json_array_size(json_object_get(json_object_get(j, "output"), "tokens")),
                     3);
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(j, "usage"), "prompt_tokens")), 4);
    ck_assert_double_eq(
        json_real_value(json_object_get(json_object_get(j, "timings"), "decode_ms")), 300.75);
    ck_assert_ptr_null(json_object_get(j, "error"));
    json_decref(j);

    ee_proto_reply b;
    ck_assert_int_eq(ee_proto_parse_reply(js, strlen(js), &b, &err), 0);
    ck_assert_str_eq(b.id, "job-1");
    ck_assert(b.ok && b.final);
    ck_assert_uint_eq(b.seq, 3);
    ck_assert_uint_eq(b.n_tokens, 3);
    ck_assert_mem_eq(b.tokens, toks, sizeof toks);
    ck_assert_str_eq(b.finish_reason, "stop");
    ck_assert_uint_eq(b.prompt_tokens, 4);
    ck_assert_uint_eq(b.completion_tokens, 3);
    ck_assert_double_eq(b.queue_ms, 1.25);
    ck_assert_double_eq(b.prefill_ms, 20.5);
    ck_assert_double_eq(b.decode_ms, 300.75);
    ck_assert_str_eq(b.worker, "w-1");
    ee_proto_reply_free(&b);
    free(js);

    /* a final ok reply without finish_reason is refused */
    r.finish_reason = NULL;
    ck_assert_ptr_null(ee_proto_reply_to_json(&r, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "finish_reason"));
}
END_TEST

/* embed: the task is in the table, cannot stream, and its final reply
 * carries an embedding instead of tokens and finish_reason. */
START_TEST(embed_request_and_reply) {
    ee_proto_request r;
    ee_proto_error e;
    const char *req = "{\"v\":1,\"id\":\"e-1\",\"reply_to\":\"r\",\"model\":\"minilm\","
                      "\"task\":\"embed\",\"key_id\":\"0123456789abcdef0123456789abcdef\","
                      "\"input\":{\"tokens\":[1,2,3]}}";
    ck_assert_int_eq(parse_str(req, &r, &e), 0);
    ck_assert_int_eq(r.task_kind, EE_TASK_EMBED);
    ck_assert_str_eq(r.task, "embed");
    ck_assert_str_eq(ee_proto_task_get(EE_TASK_EMBED)->name, "embed");
    ck_assert_ptr_nonnull(ee_proto_task_find("search"));
    ee_proto_request_free(&r);
    const char *streamed = "{\"v\":1,\"id\":\"e-2\",\"reply_to\":\"r\",\"model\":\"minilm\","
                           "\"task\":\"embed\",\"key_id\":\"0123456789abcdef0123456789abcdef\","
                           "\"input\":{\"tokens\":[1]},\"stream\":true}";
    ck_assert_int_eq(parse_str(streamed, &r, &e), -1);
    ck_assert_int_eq(e.code, EE_PROTO_E_BAD_REQUEST);
    ck_assert_ptr_nonnull(strstr(e.message, "stream"));

    float emb[4] = {0.5f, -0.25f, 1e-7f, 0.0078125f};
    ee_proto_reply rep = {.id = "e-1", .ok = true, .final = true, .embedding = emb, .dim = 4,
                          .prompt_tokens = 3, .prefill_ms = 2.5};
    ee_err err;
    char *js = ee_proto_reply_to_json(&rep, &err);
    ck_assert_msg(js != NULL, "%s", err.msg);
    json_error_t je;
    json_t *j = json_loads(js, JSON_REJECT_DUPLICATES, &je);
    json_t *a = json_object_get(json_object_get(j, "output"), "embedding");
    ck_assert_int_eq(json_array_size(a), 4);
    ck_assert_double_eq(json_real_value(json_array_get(a, 1)), -0.25);
    ck_assert_ptr_null(json_object_get(j, "finish_reason"));
    json_decref(j);
    ee_proto_reply b;
    ck_assert_int_eq(ee_proto_parse_reply(js, strlen(js), &b, &err), 0);
    ck_assert_uint_eq(b.dim, 4);
    for (int i = 0; i < 4; i++) ck_assert_float_eq(b.embedding[i], emb[i]); /* round trip exact */
    ck_assert_ptr_null(b.tokens);
    ck_assert_double_eq(b.prefill_ms, 2.5);
    ee_proto_reply_free(&b);
    free(js);
    /* a non-finite value is refused on both sides */
    emb[2] = NAN;
    ck_assert_ptr_null(ee_proto_reply_to_json(&rep, &err));
    const char *badrep = "{\"v\":1,\"id\":\"x\",\"status\":\"ok\",\"seq\":0,\"final\":true,"
                         "\"output\":{\"embedding\":[1,\"a\"]}}";
    ck_assert_int_eq(ee_proto_parse_reply(badrep, strlen(badrep), &b, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "output.embedding[1]"));
}
END_TEST

/* classify: the encrypted feature map in (input.fmap), the encrypted class
 * scores out (output.scores); round trips exact; refusals name the field
 * and keep the id (answered, not dead-lettered). */
#define CLASSIFY_HEAD "{\"v\":1,\"id\":\"c-1\",\"reply_to\":\"r\",\"model\":\"digits\"," \
                      "\"task\":\"classify\",\"key_id\":\"0123456789abcdef0123456789abcdef\","
START_TEST(classify_request_and_reply) {
    ee_proto_request r, r2;
    ee_proto_error e;
    ee_err err;
    ck_assert_ptr_nonnull(ee_proto_task_find("classify"));
    ck_assert_int_eq(ee_proto_task_find("classify")->task, EE_TASK_CLASSIFY);
    ck_assert_int_eq(parse_str(CLASSIFY_HEAD "\"input\":{\"fmap\":[0.5,-0.25,3e-3,0]}}", &r, &e), 0);
    ck_assert_int_eq(r.task_kind, EE_TASK_CLASSIFY);
    ck_assert_uint_eq(r.fmap_len, 4);
    ck_assert_float_eq(r.fmap[1], -0.25f);
    ck_assert_ptr_null(r.tokens);
    char *js = ee_proto_request_to_json(&r, &err);
    ck_assert_msg(js != NULL, "%s", err.msg);
    ck_assert_ptr_null(strstr(js, "\"tokens\""));
    ck_assert_int_eq(parse_str(js, &r2, &e), 0);
    ck_assert_uint_eq(r2.fmap_len, 4);
    for (int i = 0; i < 4; i++) ck_assert_float_eq(r2.fmap[i], r.fmap[i]);
    ee_proto_request_free(&r2);
    free(js);
    ee_proto_request_free(&r);
    static const struct { const char *tail; ee_proto_code code; const char *msg; } bad[] = {
        {"\"input\":{}}", EE_PROTO_E_BAD_REQUEST, "input.fmap: missing"},
        {"\"input\":{\"fmap\":[]}}", EE_PROTO_E_BAD_REQUEST, "input.fmap: must be a non-empty"},
        {"\"input\":{\"fmap\":{}}}", EE_PROTO_E_BAD_REQUEST, "input.fmap: must be a non-empty"},
        {"\"input\":{\"fmap\":[1,\"x\"]}}", EE_PROTO_E_BAD_REQUEST, "input.fmap[1]"},
        {"\"input\":{\"fmap\":[1,null]}}", EE_PROTO_E_BAD_REQUEST, "input.fmap[1]"},
        {"\"input\":{\"fmap\":[1,1e39]}}", EE_PROTO_E_BAD_REQUEST, "input.fmap[1]: 1e+39 is outside the float range"},
        {"\"input\":{\"tokens\":[1]}}", EE_PROTO_E_BAD_REQUEST, "not tokens"},
        {"\"input\":{\"fmap\":[1]},\"stream\":true}", EE_PROTO_E_BAD_REQUEST, "only generate jobs stream"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char buf[512];
        snprintf(buf, sizeof buf, CLASSIFY_HEAD "%s", bad[i].tail);
        ck_assert_msg(parse_str(buf, &r, &e) == -1, "accepted: %s", bad[i].tail);
        ck_assert_msg(e.code == bad[i].code && strstr(e.message, bad[i].msg), "%s -> %s (%d)",
                      bad[i].tail, e.message, (int)e.code);
        ck_assert(e.has_id);
    }
    /* over the size limit: too_large, before any value is read */
    size_t n = (size_t)EE_PROTO_MAX_FMAP + 1, cap = n * 2 + 256;
    char *big = malloc(cap);
    ck_assert_ptr_nonnull(big);
    size_t o = (size_t)snprintf(big, cap, CLASSIFY_HEAD "\"input\":{\"fmap\":[");
    for (size_t i = 0; i < n; i++) o += (size_t)snprintf(big + o, cap - o, i ? ",0" : "0");
    snprintf(big + o, cap - o, "]}}");
    const ee_proto_limits unbounded = {.n_vocab = 16, .max_prompt_tokens = 8, .max_new_tokens = 8};
    ck_assert_int_eq(ee_proto_parse_request(big, strlen(big), &unbounded, &r, &e), -1);
    ck_assert_int_eq(e.code, EE_PROTO_E_TOO_LARGE);
    ck_assert_ptr_nonnull(strstr(e.message, "input.fmap"));
    free(big);

    float sc[3] = {1.5f, -2.25f, 0.125f};
    ee_proto_reply rep = {.id = "c-1", .ok = true, .final = true, .scores = sc, .n_scores = 3};
    js = ee_proto_reply_to_json(&rep, &err);
    ck_assert_msg(js != NULL, "%s", err.msg);
    ck_assert_ptr_null(strstr(js, "finish_reason"));
    ee_proto_reply b;
    ck_assert_int_eq(ee_proto_parse_reply(js, strlen(js), &b, &err), 0);
    ck_assert_uint_eq(b.n_scores, 3);
    for (int i = 0; i < 3; i++) ck_assert_float_eq(b.scores[i], sc[i]);
    ee_proto_reply_free(&b);
    free(js);
    const char *badrep = "{\"v\":1,\"id\":\"c-1\",\"status\":\"ok\",\"seq\":0,\"final\":true,"
                         "\"output\":{\"scores\":[1,\"a\"]}}";
    ck_assert_int_eq(ee_proto_parse_reply(badrep, strlen(badrep), &b, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "output.scores[1]"));
}
END_TEST

/* search: the query as ids or as an encrypted vector, an index and k; the
 * reply's hits; the compacted topic's index records. */
#define SEARCH_HEAD "{\"v\":1,\"id\":\"s-1\",\"reply_to\":\"r\",\"model\":\"minilm\"," \
                    "\"task\":\"search\",\"key_id\":\"0123456789abcdef0123456789abcdef\","
START_TEST(search_request_reply_and_index_records) {
    ee_proto_request r;
    ee_proto_error e;
    ck_assert_int_eq(parse_str(SEARCH_HEAD "\"input\":{\"tokens\":[1,2]},\"search\":{\"index\":\"docs\",\"k\":3}}", &r, &e), 0);
    ck_assert_int_eq(r.task_kind, EE_TASK_SEARCH);
    ck_assert_str_eq(r.index, "docs");
    ck_assert_uint_eq(r.k, 3);
    ck_assert_ptr_null(r.query);
    /* round trip through the producer's JSON */
    ee_err err;
    char *js = ee_proto_request_to_json(&r, &err);
    ck_assert_ptr_nonnull(js);
    ee_proto_request r2;
    ck_assert_int_eq(parse_str(js, &r2, &e), 0);
    ck_assert_str_eq(r2.index, "docs");
    ck_assert_uint_eq(r2.k, 3);
    ee_proto_request_free(&r2);
    free(js);
    ee_proto_request_free(&r);
    ck_assert_int_eq(parse_str(SEARCH_HEAD "\"input\":{\"embedding\":[0.5,-0.25]},\"search\":{\"index\":\"docs\"}}", &r, &e), 0);
    ck_assert_uint_eq(r.query_dim, 2);
    ck_assert_float_eq(r.query[1], -0.25f);
    ck_assert_uint_eq(r.k, 5); /* default */
    js = ee_proto_request_to_json(&r, &err);
    ck_assert_ptr_nonnull(strstr(js, "\"embedding\""));
    free(js);
    ee_proto_request_free(&r);
    static const struct { const char *tail; ee_proto_code code; const char *msg; } bad[] = {
        {"\"input\":{\"tokens\":[1]}}", EE_PROTO_E_BAD_REQUEST, "search: missing"},
        {"\"input\":{\"tokens\":[1]},\"search\":1}", EE_PROTO_E_BAD_REQUEST, "search: must be an object"},
        {"\"input\":{\"tokens\":[1]},\"search\":{}}", EE_PROTO_E_BAD_REQUEST, "search.index"},
        {"\"input\":{\"tokens\":[1]},\"search\":{\"index\":\"a/b\"}}", EE_PROTO_E_BAD_REQUEST, "search.index"},
        {"\"input\":{\"tokens\":[1]},\"search\":{\"index\":\"d\",\"k\":0}}", EE_PROTO_E_BAD_REQUEST, "search.k"},
        {"\"input\":{\"tokens\":[1]},\"search\":{\"index\":\"d\",\"k\":101}}", EE_PROTO_E_TOO_LARGE, "search.k"},
        {"\"input\":{\"tokens\":[1],\"embedding\":[1]},\"search\":{\"index\":\"d\"}}", EE_PROTO_E_BAD_REQUEST, "not both"},
        {"\"input\":{},\"search\":{\"index\":\"d\"}}", EE_PROTO_E_BAD_REQUEST, "input.embedding"},
        {"\"input\":{\"embedding\":[]},\"search\":{\"index\":\"d\"}}", EE_PROTO_E_BAD_REQUEST, "input.embedding"},
        {"\"input\":{\"embedding\":[1,\"x\"]},\"search\":{\"index\":\"d\"}}", EE_PROTO_E_BAD_REQUEST, "input.embedding[1]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char buf[512];
        snprintf(buf, sizeof buf, SEARCH_HEAD "%s", bad[i].tail);
        ck_assert_msg(parse_str(buf, &r, &e) == -1, "accepted: %s", bad[i].tail);
        ck_assert_msg(e.code == bad[i].code && strstr(e.message, bad[i].msg), "%s -> %s (%d)",
                      bad[i].tail, e.message, (int)e.code);
        ck_assert(e.has_id); /* answered, not dead-lettered */
    }

    ee_proto_hit hits[2] = {{.id = "doc-3", .score = 0.8125, .doc = "c2VhbGVk"},
                            {.id = "doc-1", .score = -0.5, .doc = NULL}};
    ee_proto_reply rep = {.id = "s-1", .ok = true, .final = true, .is_search = true, .hits = hits,
                          .n_hits = 2};
    js = ee_proto_reply_to_json(&rep, &err);
    ck_assert_msg(js != NULL, "%s", err.msg);
    ee_proto_reply b;
    ck_assert_int_eq(ee_proto_parse_reply(js, strlen(js), &b, &err), 0);
    ck_assert(b.is_search);
    ck_assert_uint_eq(b.n_hits, 2);
    ck_assert_str_eq(b.hits[0].id, "doc-3");
    ck_assert_double_eq(b.hits[0].score, 0.8125);
    ck_assert_str_eq(b.hits[0].doc, "c2VhbGVk");
    ck_assert_ptr_null(b.hits[1].doc);
    ee_proto_reply_free(&b);
    free(js);
    rep.n_hits = 0; /* an empty index: zero hits is a valid answer */
    js = ee_proto_reply_to_json(&rep, &err);
    ck_assert_int_eq(ee_proto_parse_reply(js, strlen(js), &b, &err), 0);
    ck_assert(b.is_search && b.n_hits == 0);
    ee_proto_reply_free(&b);
    free(js);

    float v[3] = {0.25f, -1.0f, 3e-8f};
    ee_proto_index_record ir = {.id = "doc-9", .key_id = "0123456789abcdef0123456789abcdef",
                                .embedding = v, .dim = 3, .doc = "c2VhbGVk"};
    js = ee_proto_index_record_to_json(&ir, &err);
    ck_assert_msg(js != NULL, "%s", err.msg);
    ee_proto_index_record o;
    ck_assert_int_eq(ee_proto_index_record_parse(js, strlen(js), &o, &err), 0);
    ck_assert_str_eq(o.id, "doc-9");
    ck_assert_uint_eq(o.dim, 3);
    for (int i = 0; i < 3; i++) ck_assert_float_eq(o.embedding[i], v[i]);
    ee_proto_index_record_free(&o);
    free(js);
    static const char *const bad_rec[] = {
        "[]", "{\"v\":2}", "{\"v\":1,\"id\":\"d\",\"key_id\":\"zz\",\"doc\":\"x\",\"embedding\":[1]}",
        "{\"v\":1,\"id\":\"d\",\"key_id\":\"0123456789abcdef0123456789abcdef\",\"doc\":\"x\",\"embedding\":[]}",
        "{\"v\":1,\"id\":\"d\",\"key_id\":\"0123456789abcdef0123456789abcdef\",\"doc\":\"x\",\"embedding\":[1,null]}",
        "{\"v\":1,\"key_id\":\"0123456789abcdef0123456789abcdef\",\"doc\":\"x\",\"embedding\":[1]}"};
    for (size_t i = 0; i < sizeof bad_rec / sizeof bad_rec[0]; i++)
        ck_assert_msg(ee_proto_index_record_parse(bad_rec[i], strlen(bad_rec[i]), &o, &err) == -1,
                      "accepted %s", bad_rec[i]);
    char *t = ee_proto_index_topic("docs", &err);
    ck_assert_str_eq(t, "ee.index.docs");
    free(t);
    ck_assert_ptr_null(ee_proto_index_topic("a b", &err));
}
END_TEST

START_TEST(reply_partial_round_trip) {
    int32_t toks[] = {5};
    ee_proto_reply r = {.id = "s", .ok = true, .seq = 0, .final = false, .tokens = toks,
                        .n_tokens = 1};
    ee_err err;
    char *js = ee_proto_reply_to_json(&r, &err);
    ck_assert_ptr_nonnull(js);
    ck_assert_ptr_null(strstr(js, "finish_reason"));
    ck_assert_ptr_null(strstr(js, "usage"));
    ck_assert_ptr_null(strstr(js, "worker"));
    ee_proto_reply b;
    ck_assert_int_eq(ee_proto_parse_reply(js, strlen(js), &b, &err), 0);
    ck_assert(b.ok && !b.final);
    ck_assert_uint_eq(b.seq, 0);
    ck_assert_uint_eq(b.n_tokens, 1);
    ck_assert_int_eq(b.tokens[0], 5);
    ck_assert_ptr_null(b.finish_reason);
    ee_proto_reply_free(&b);
    free(js);
}
END_TEST

START_TEST(reply_error_round_trip) {
    ee_err err;
    char *js = ee_proto_error_reply_json("job-9", EE_PROTO_E_KEY_MISMATCH,
                                         "key_id: abc is not the model's", "w-2", 2, &err);
    ck_assert_ptr_nonnull(js);
    json_error_t je;
    json_t *j = json_loads(js, 0, &je);
    ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "error");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                     "key_mismatch");
    ck_assert_ptr_null(json_object_get(j, "output"));
    json_decref(j);
    ee_proto_reply b;
    ck_assert_int_eq(ee_proto_parse_reply(js, strlen(js), &b, &err), 0);
    ck_assert(!b.ok && b.final);
    ck_assert_uint_eq(b.seq, 2);
    ck_assert_str_eq(b.id, "job-9");
    ck_assert_int_eq(b.error_code, EE_PROTO_E_KEY_MISMATCH);
    ck_assert_str_eq(b.error_message, "key_id: abc is not the model's");
    ck_assert_str_eq(b.worker, "w-2");
    ee_proto_reply_free(&b);
    free(js);

    /* an error reply straight from a parse error */
    char *rec = valid_with("input.tokens", "[1,49152]");
    ee_proto_request r;
    ee_proto_error e;
    ck_assert_int_eq(parse_str(rec, &r, &e), -1);
    js = ee_proto_error_reply_json(e.id, e.code, e.message, NULL, 0, &err);
    ck_assert_ptr_nonnull(js);
    ck_assert_int_eq(ee_proto_parse_reply(js, strlen(js), &b, &err), 0);
    ck_assert_int_eq(b.error_code, EE_PROTO_E_BAD_TOKEN);
    ck_assert_ptr_nonnull(strstr(b.error_message, "input.tokens[1]"));
    ee_proto_reply_free(&b);
    free(js);
    free(rec);

    /* invalid codes are refused; unknown codes from newer workers read as internal */
    ck_assert_ptr_null(ee_proto_error_reply_json("x", EE_PROTO_OK, "m", NULL, 0, &err));
    ck_assert_ptr_null(ee_proto_error_reply_json("x", EE_PROTO_E_COUNT, "m", NULL, 0, &err));
    ck_assert_ptr_null(ee_proto_error_reply_json(NULL, EE_PROTO_E_INTERNAL, "m", NULL, 0, &err));
    const char *future = "{\"v\":1,\"id\":\"x\",\"status\":\"error\",\"seq\":0,\"final\":true,"
                         "\"error\":{\"code\":\"quota_exceeded\",\"message\":\"m\"}}";
    ck_assert_int_eq(ee_proto_parse_reply(future, strlen(future), &b, &err), 0);
    ck_assert_int_eq(b.error_code, EE_PROTO_E_INTERNAL);
    ee_proto_reply_free(&b);
}
END_TEST

START_TEST(reply_parse_refusals) {
    static const char *const bad[][2] = {
        {"", "empty"},
        {"[]", "object"},
        {"{\"v\":2,\"id\":\"x\",\"status\":\"ok\",\"seq\":0,\"final\":true}", "v:"},
        {"{\"v\":1,\"status\":\"ok\",\"seq\":0,\"final\":true}", "id"},
        {"{\"v\":1,\"id\":\"x\",\"status\":\"maybe\",\"seq\":0,\"final\":true}", "status"},
        {"{\"v\":1,\"id\":\"x\",\"status\":\"ok\",\"seq\":-1,\"final\":true}", "seq"},
        {"{\"v\":1,\"id\":\"x\",\"status\":\"ok\",\"seq\":0}", "final"},
        {"{\"v\":1,\"id\":\"x\",\"status\":\"ok\",\"seq\":0,\"final\":true}", "output"},
        {"{\"v\":1,\"id\":\"x\",\"status\":\"ok\",\"seq\":0,\"final\":true,"
         "\"output\":{\"tokens\":[1,\"a\"]},\"finish_reason\":\"stop\"}",
         "output.tokens[1]"},
        {"{\"v\":1,\"id\":\"x\",\"status\":\"ok\",\"seq\":0,\"final\":true,"
         "\"output\":{\"tokens\":[1]}}",
         "finish_reason"},
        {"{\"v\":1,\"id\":\"x\",\"status\":\"error\",\"seq\":0,\"final\":true}", "error"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ee_proto_reply b;
        ee_err err;
        ck_assert_msg(ee_proto_parse_reply(bad[i][0], strlen(bad[i][0]), &b, &err) == -1,
                      "case %zu parsed", i);
        ck_assert_msg(strstr(err.msg, bad[i][1]) != NULL, "case %zu: \"%s\" lacks \"%s\"", i,
                      err.msg, bad[i][1]);
        ck_assert_ptr_null(b.id);
        ck_assert_ptr_null(b.tokens);
    }
}
END_TEST

/* ---- names ---------------------------------------------------------------- */

START_TEST(error_codes) {
    static const char *const names[] = {"bad_request",   "unsupported_version",
                                        "unknown_model", "unknown_task",
                                        "key_mismatch",  "too_large",
                                        "bad_token",     "expired",
                                        "overloaded",    "internal",
                                        "shutting_down", "unauthenticated",
                                        "forbidden",     "replayed",
                                        "unsupported_task"};
    ck_assert_int_eq(sizeof names / sizeof names[0], EE_PROTO_E_COUNT - 1);
    for (int c = 1; c < EE_PROTO_E_COUNT; c++) {
        ck_assert_str_eq(ee_proto_code_name((ee_proto_code)c), names[c - 1]);
        ee_proto_code back = EE_PROTO_OK;
        ck_assert_int_eq(ee_proto_code_parse(names[c - 1], &back), 0);
        ck_assert_int_eq(back, c);
    }
    ck_assert_str_eq(ee_proto_code_name(EE_PROTO_OK), "ok");
    ck_assert_ptr_null(ee_proto_code_name(EE_PROTO_E_COUNT));
    ck_assert_ptr_null(ee_proto_code_name((ee_proto_code)-1));
    ee_proto_code x;
    ck_assert_int_eq(ee_proto_code_parse("ok", &x), -1);
    ck_assert_int_eq(ee_proto_code_parse("Bad_Request", &x), -1);
    ck_assert_int_eq(ee_proto_code_parse(NULL, &x), -1);
    ck_assert(ee_proto_code_retryable(EE_PROTO_E_OVERLOADED));
    ck_assert(ee_proto_code_retryable(EE_PROTO_E_INTERNAL));
    ck_assert(ee_proto_code_retryable(EE_PROTO_E_SHUTTING_DOWN));
    ck_assert(!ee_proto_code_retryable(EE_PROTO_E_BAD_REQUEST));
    ck_assert(!ee_proto_code_retryable(EE_PROTO_E_KEY_MISMATCH));
    ck_assert(!ee_proto_code_retryable(EE_PROTO_E_EXPIRED));
}
END_TEST

START_TEST(topics_and_groups) {
    ee_err err;
    char *t = ee_proto_request_topic("smollm2", EE_PROTO_CLASS_SMALL, &err);
    ck_assert_str_eq(t, "ee.requests.smollm2.small");
    ck_assert(ee_proto_valid_topic(t));
    free(t);
    t = ee_proto_group("SmolLM2-135M_q4.1", EE_PROTO_CLASS_LARGE, &err);
    ck_assert_str_eq(t, "ee-workers.SmolLM2-135M_q4.1.large");
    free(t);
    ck_assert_ptr_null(ee_proto_request_topic("a/b", "small", &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "model"));
    ck_assert_ptr_null(ee_proto_group("m", "", &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "class"));
    ck_assert_ptr_null(ee_proto_request_topic(NULL, "small", &err));
    /* the longest names still give a valid topic */
    char m[65];
    memset(m, 'm', 64);
    m[64] = '\0';
    t = ee_proto_request_topic(m, m, &err);
    ck_assert(ee_proto_valid_topic(t));
    free(t);
    ck_assert_str_eq(EE_PROTO_DLQ_TOPIC, "ee.dlq");

    ck_assert(ee_proto_valid_topic("replies.me"));
    ck_assert(ee_proto_valid_topic("..."));
    ck_assert(!ee_proto_valid_topic("."));
    ck_assert(!ee_proto_valid_topic(".."));
    ck_assert(!ee_proto_valid_topic(""));
    ck_assert(!ee_proto_valid_topic(NULL));
    ck_assert(ee_proto_valid_key_id("0123456789abcdef0123456789abcdef"));
    ck_assert(!ee_proto_valid_key_id("0123456789abcdef0123456789abcde"));
    ck_assert(ee_proto_valid_id("a b"));
    ck_assert(!ee_proto_valid_id("a\tb"));
}
END_TEST

START_TEST(choose_class) {
    ee_proto_class_thresholds th = {.small_max_prompt = 100, .small_max_total = 300};
    ck_assert_str_eq(ee_proto_choose_class(1, 1, &th), "small");
    ck_assert_str_eq(ee_proto_choose_class(100, 200, &th), "small");
    ck_assert_str_eq(ee_proto_choose_class(101, 1, &th), "large");   /* prompt */
    ck_assert_str_eq(ee_proto_choose_class(100, 201, &th), "large"); /* total */
    ck_assert_str_eq(ee_proto_choose_class(10, 291, &th), "large");
    ck_assert_str_eq(ee_proto_choose_class(UINT32_MAX, UINT32_MAX, &th), "large"); /* no wrap */
    ck_assert_str_eq(ee_proto_choose_class(512, 512, NULL), "small");
    ck_assert_str_eq(ee_proto_choose_class(513, 0, NULL), "large");
    ck_assert_str_eq(ee_proto_choose_class(10, 1015, NULL), "large");
}
END_TEST

START_TEST(dlq_headers) {
    ee_proto_dlq_info d = {.topic = "ee.requests.smollm2.small", .partition = 3,
                           .offset = 1234567890123LL, .timestamp_ms = -1,
                           .group = "ee-workers.smollm2.small", .code = EE_PROTO_E_BAD_REQUEST,
                           .message = "request: not valid JSON"};
    ee_proto_header h[EE_PROTO_DLQ_NHDR];
    ee_err err;
    ck_assert_int_eq(ee_proto_dlq_headers(&d, h, &err), 0);
    ck_assert_str_eq(h[0].name, "ee-dlq-topic");
    ck_assert_str_eq(h[0].value, "ee.requests.smollm2.small");
    ck_assert_str_eq(h[1].name, "ee-dlq-partition");
    ck_assert_str_eq(h[1].value, "3");
    ck_assert_str_eq(h[2].name, "ee-dlq-offset");
    ck_assert_str_eq(h[2].value, "1234567890123");
    ck_assert_str_eq(h[3].name, "ee-dlq-timestamp");
    ck_assert_str_eq(h[3].value, "-1");
    ck_assert_str_eq(h[4].name, "ee-dlq-group");
    ck_assert_str_eq(h[4].value, "ee-workers.smollm2.small");
    ck_assert_str_eq(h[5].name, "ee-dlq-error-code");
    ck_assert_str_eq(h[5].value, "bad_request");
    ck_assert_str_eq(h[6].name, "ee-dlq-error-message");
    ck_assert_str_eq(h[6].value, "request: not valid JSON");
    ee_proto_headers_free(h, EE_PROTO_DLQ_NHDR);
    ck_assert_ptr_null(h[0].value);
    d.code = EE_PROTO_OK;
    ck_assert_int_eq(ee_proto_dlq_headers(&d, h, &err), -1);
    d.code = EE_PROTO_E_INTERNAL;
    d.topic = NULL;
    ck_assert_int_eq(ee_proto_dlq_headers(&d, h, &err), -1);
    ck_assert_str_eq(EE_PROTO_HDR_ID, "ee-id");
    ck_assert_str_eq(EE_PROTO_HDR_REPLY_TO, "ee-reply-to");
}
END_TEST

Suite *suite_proto(void) {
    Suite *s = suite_create("proto");
    TCase *tc = tcase_create("request");
    tcase_add_test(tc, valid_request_every_field);
    tcase_add_test(tc, minimal_request_defaults);
    tcase_add_test(tc, request_round_trip);
    tcase_add_loop_test(tc, bad_request_case, 0, N_BAD);
    tcase_add_test(tc, boundaries_accepted);
    tcase_add_test(tc, recovers_id_and_reply_to);
    tcase_add_test(tc, deadline_check);
    suite_add_tcase(s, tc);

    tc = tcase_create("fuzz");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, fuzz_mutations);
    suite_add_tcase(s, tc);

    tc = tcase_create("reply");
    tcase_add_test(tc, reply_ok_final_round_trip);
    tcase_add_test(tc, reply_partial_round_trip);
    tcase_add_test(tc, embed_request_and_reply);
    tcase_add_test(tc, search_request_reply_and_index_records);
    tcase_add_test(tc, classify_request_and_reply);
    tcase_add_test(tc, reply_error_round_trip);
    tcase_add_test(tc, reply_parse_refusals);
    suite_add_tcase(s, tc);

    tc = tcase_create("names");
    tcase_add_test(tc, error_codes);
    tcase_add_test(tc, topics_and_groups);
    tcase_add_test(tc, choose_class);
    tcase_add_test(tc, dlq_headers);
    suite_add_tcase(s, tc);
    return s;
}
