/* Hugging Face BERT directory -> GGUF, as llama.cpp's converter writes it.
 * Read section by section:
 *   1. JSON inputs (config.json, sentence-transformers files)
 *   2. tensors: HF name -> GGUF name, shape checks, storage type
 *   3. vocabulary: phantom-space tokens, token types, special ids
 *   4. ee_bert_import: metadata in llama.cpp's keys + ours, then write */
#include "ee_bert_import.h"

#include "ee_gguf.h"
#include "ee_quant.h"
#include "ee_safetensors.h"

#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* llama.cpp's token types (gguf TokenType). */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER_DEFINED = 4, TT_UNUSED = 5 };

/* ---- 1. JSON inputs ------------------------------------------------------- */

/* DIR/file as JSON. Missing file: NULL with *missing set (err untouched)
 * when optional; any other failure: NULL with err. */
static json_t *load_json(const char *dir, const char *file, bool optional, bool *missing,
                         ee_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (missing) *missing = false;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (optional) {
            if (missing) *missing = true;
            return NULL;
        }
        ee_err_set(err, "%s: cannot open (the directory needs config.json, model.safetensors "
                        "and tokenizer.json)",
                   path);
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
    fclose(f);
    if (!j) ee_err_set(err, "%s: invalid JSON at line %d: %s", path, je.line, je.text);
    else if (!json_is_object(j)) {
        ee_err_set(err, "%s: not a JSON object", path);
        json_decref(j);
        j = NULL;
    }
    return j;
}

static int cfg_int(const json_t *cfg, const char *key, long min, long max, int *out,
                   ee_err *err) {
    const json_t *v = json_object_get(cfg, key);
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return ee_err_set(err, "config.json: '%s' is missing or not an integer in %ld..%ld", key,
                          min, max);
    *out = (int)json_integer_value(v);
    return 0;
}

typedef struct bert_cfg {
    int n_vocab, n_embd, n_layer, n_head, n_ff, n_pos, n_types;
    float eps;
} bert_cfg;

static int read_config(const json_t *c, bert_cfg *b, ee_err *err) {
    const json_t *mt = json_object_get(c, "model_type");
    if (!json_is_string(mt) || strcmp(json_string_value(mt), "bert"))
        return ee_err_set(err, "config.json: model_type is %s, not \"bert\"",
                          json_is_string(mt) ? json_string_value(mt) : "missing");
    const json_t *act = json_object_get(c, "hidden_act");
    if (act && (!json_is_string(act) || strcmp(json_string_value(act), "gelu")))
        return ee_err_set(err, "config.json: hidden_act %s is not \"gelu\" (erf form), the only "
                               "activation this encoder runs",
                          json_is_string(act) ? json_string_value(act) : "(not a string)");
    const json_t *pet = json_object_get(c, "position_embedding_type");
    if (pet && (!json_is_string(pet) || strcmp(json_string_value(pet), "absolute")))
        return ee_err_set(err, "config.json: position_embedding_type is not \"absolute\"");
    if (cfg_int(c, "vocab_size", 1, 1 << 24, &b->n_vocab, err) ||
        cfg_int(c, "hidden_size", 1, 1 << 16, &b->n_embd, err) ||
        cfg_int(c, "num_hidden_layers", 1, 1024, &b->n_layer, err) ||
        cfg_int(c, "num_attention_heads", 1, 1024, &b->n_head, err) ||
        cfg_int(c, "intermediate_size", 1, 1 << 20, &b->n_ff, err) ||
        cfg_int(c, "max_position_embeddings", 1, 1 << 20, &b->n_pos, err))
        return -1;
    b->n_types = 2;
    if (json_object_get(c, "type_vocab_size") &&
        cfg_int(c, "type_vocab_size", 1, 1 << 16, &b->n_types, err))
        return -1;
    if (b->n_embd % b->n_head)
        return ee_err_set(err, "config.json: hidden_size %d is not a multiple of "
                               "num_attention_heads %d",
                          b->n_embd, b->n_head);
    const json_t *eps = json_object_get(c, "layer_norm_eps");
    if (!json_is_number(eps) || !(json_number_value(eps) > 0) || json_number_value(eps) >= 1)
        return ee_err_set(err, "config.json: layer_norm_eps is missing or not in (0, 1)");
    b->eps = (float)json_number_value(eps);
    return 0;
}

/* sentence-transformers: pooling mode (llama.cpp's PoolingType; -1 when the
 * directory has no modules.json), whether a Normalize module follows,
 * max_seq_length and do_lower_case. */
typedef struct st_cfg {
    int pooling;
    bool normalize;
    int max_seq;
    bool do_lower_case;
} st_cfg;

static int read_st_config(const char *dir, int n_pos, st_cfg *s, ee_err *err) {
    s->pooling = -1;
    s->normalize = false;
    s->max_seq = n_pos;
    s->do_lower_case = false;
    bool missing;
    json_t *sb = load_json(dir, "sentence_bert_config.json", true, &missing, err);
    if (!sb && !missing) return -1;
    if (sb) {
        const json_t *m = json_object_get(sb, "max_seq_length");
        int rc = 0;
        if (m && (!json_is_integer(m) || json_integer_value(m) < 1 ||
                  json_integer_value(m) > n_pos))
            rc = ee_err_set(err, "sentence_bert_config.json: max_seq_length is not an integer "
                                 "in 1..%d (max_position_embeddings)",
                            n_pos);
        else if (m) s->max_seq = (int)json_integer_value(m);
        s->do_lower_case = json_is_true(json_object_get(sb, "do_lower_case"));
        json_decref(sb);
        if (rc) return -1;
    }
    /* modules.json is a JSON array: load_json wants an object, so read it
     * here. */
    char path[4096];
    snprintf(path, sizeof path, "%s/modules.json", dir);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    json_error_t je;
    json_t *mods = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
    fclose(f);
    if (!json_is_array(mods)) {
        json_decref(mods);
        return ee_err_set(err, "%s: not a JSON array of modules", path);
    }
    int rc = 0;
    size_t i;
    json_t *m;
    json_array_foreach(mods, i, m) {
        const char *type = json_string_value(json_object_get(m, "type"));
        const char *mp = json_string_value(json_object_get(m, "path"));
        if (!type) continue;
        if (!strcmp(type, "sentence_transformers.models.Normalize")) s->normalize = true;
        if (strcmp(type, "sentence_transformers.models.Pooling") || !mp) continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/config.json", mp);
        json_t *pc = load_json(dir, sub, false, NULL, err);
        if (!pc) {
            rc = -1;
            break;
        }
        if (json_is_true(json_object_get(pc, "pooling_mode_mean_tokens"))) s->pooling = 1;
        else if (json_is_true(json_object_get(pc, "pooling_mode_cls_token"))) s->pooling = 2;
        else if (json_is_true(json_object_get(pc, "pooling_mode_lasttoken"))) s->pooling = 3;
        else rc = ee_err_set(err, "%s/%s: only mean, CLS and last-token pooling are supported",
                             dir, sub);
        json_decref(pc);
        if (rc) break;
    }
    json_decref(mods);
    return rc;
}

/* ---- 2. tensors ------------------------------------------------------------- */

typedef struct conv {
    const ee_safetensors *st;
    ee_gguf_writer *w;
    ee_dtype wtype;
    bool *used;          /* [n tensors of st] */
    uint64_t n_params;
} conv;

/* HF names may carry a "bert." prefix (BertForMaskedLM) and old LayerNorm
 * names end in gamma/beta; llama.cpp accepts both, so do we. */
static const ee_st_tensor *find_hf(const ee_safetensors *st, const char *name) {
    const ee_st_tensor *t = ee_safetensors_find(st, name);
    char alt[512];
    if (!t) {
        snprintf(alt, sizeof alt, "bert.%s", name);
        t = ee_safetensors_find(st, alt);
    }
    size_t n = strlen(name);
    if (!t && n > 7 && strstr(name, "LayerNorm.")) {
        const char *suffix = NULL;
        if (!strcmp(name + n - 7, ".weight")) suffix = ".gamma";
        else if (n > 5 && !strcmp(name + n - 5, ".bias")) suffix = ".beta";
        if (suffix) {
            size_t stem = n - (suffix[1] == 'g' ? 7 : 5);
            snprintf(alt, sizeof alt, "%.*s%s", (int)stem, name, suffix);
            t = ee_safetensors_find(st, alt);
            if (!t) {
                char alt2[520];
                snprintf(alt2, sizeof alt2, "bert.%s", alt);
                t = ee_safetensors_find(st, alt2);
            }
        }
    }
    return t;
}

/* Copy HF tensor `hf` to GGUF tensor `gg`: 2-D [rows][cols] (PyTorch
 * [out, in]; GGUF ne = [cols, rows]) or 1-D [cols] when rows == 0. */
static int put(conv *c, const char *hf, const char *gg, int64_t rows, int64_t cols,
               ee_err *err) {
    const ee_st_tensor *t = find_hf(c->st, hf);
    if (!t) return ee_err_set(err, "model.safetensors: tensor '%s' is missing", hf);
    bool ok = rows ? (t->n_dims == 2 && (int64_t)t->shape[0] == rows &&
                      (int64_t)t->shape[1] == cols)
                   : (t->n_dims == 1 && (int64_t)t->shape[0] == cols);
    if (!ok) {
        char got[128] = "[";
        for (uint32_t i = 0; i < t->n_dims; i++) {
            size_t l = strlen(got);
            snprintf(got + l, sizeof got - l, "%s%llu", i ? ", " : "",
                     (unsigned long long)t->shape[i]);
        }
        strncat(got, "]", sizeof got - strlen(got) - 1);
        if (rows)
            return ee_err_set(err, "model.safetensors: tensor '%s' has shape %s, expected "
                                   "[%lld, %lld]",
                              t->name, got, (long long)rows, (long long)cols);
        return ee_err_set(err, "model.safetensors: tensor '%s' has shape %s, expected [%lld]",
                          t->name, got, (long long)cols);
    }
    if (!ee_st_dtype_is_float(t->dtype))
        return ee_err_set(err, "model.safetensors: tensor '%s' has dtype %s (F32, F16 or BF16 "
                               "expected)",
                          t->name, ee_st_dtype_name(t->dtype));
    c->used[t - ee_safetensors_tensor_at(c->st, 0)] = true;
    uint64_t n = t->n_elements;
    c->n_params += n;
    float *v = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!v) return ee_err_set(err, "out of memory converting '%s'", t->name);
    if (ee_safetensors_read_f32(t, v, err)) {
        free(v);
        return -1;
    }
    /* llama.cpp's rule for --outtype f16: 1-D tensors, norms, biases,
     * position and token-type embeddings stay f32. */
    size_t l = strlen(gg);
    bool is_weight = l > 7 && !strcmp(gg + l - 7, ".weight");
    bool keep_f32 = !rows || !is_weight || strstr(gg, "_norm.") ||
                    !strcmp(gg, "position_embd.weight") || !strcmp(gg, "token_types.weight");
    ee_dtype dt = keep_f32 ? EE_DT_F32 : c->wtype;
    uint64_t ne[2] = {(uint64_t)cols, (uint64_t)(rows ? rows : 1)};
    int rc;
    if (dt == EE_DT_F32) {
        rc = ee_gguf_writer_add_tensor(c->w, gg, rows ? 2 : 1, ne, EE_DT_F32, v, true, err);
    } else {
        size_t rb = ee_dtype_row_bytes(dt, (uint64_t)cols);
        uint8_t *q = malloc(rb * (size_t)rows);
        rc = q ? 0 : ee_err_set(err, "out of memory converting '%s'", t->name);
        for (int64_t r = 0; r < rows && !rc; r++)
            rc = ee_quantize_row(dt, v + r * cols, q + (size_t)r * rb, (uint64_t)cols, err);
        if (!rc) rc = ee_gguf_writer_add_tensor(c->w, gg, 2, ne, dt, q, true, err);
        free(q);
    }
    free(v);
    return rc ? ee_err_wrap(err, "tensor '%s'", gg) : 0;
}

static int put_linear(conv *c, const char *hf, const char *gg, int64_t rows, int64_t cols,
                      ee_err *err) {
    char h[256], g[256];
    snprintf(h, sizeof h, "%s.weight", hf);
    snprintf(g, sizeof g, "%s.weight", gg);
    if (put(c, h, g, rows, cols, err)) return -1;
    snprintf(h, sizeof h, "%s.bias", hf);
    snprintf(g, sizeof g, "%s.bias", gg);
    return put(c, h, g, 0, rows, err);
}

static int put_norm(conv *c, const char *hf, const char *gg, int64_t n, ee_err *err) {
    char h[256], g[256];
    snprintf(h, sizeof h, "%s.weight", hf);
    snprintf(g, sizeof g, "%s.weight", gg);
    if (put(c, h, g, 0, n, err)) return -1;
    snprintf(h, sizeof h, "%s.bias", hf);
    snprintf(g, sizeof g, "%s.bias", gg);
    return put(c, h, g, 0, n, err);
}

static int put_tensors(conv *c, const bert_cfg *b, ee_err *err) {
    const int d = b->n_embd, ff = b->n_ff;
    if (put(c, "embeddings.word_embeddings.weight", "token_embd.weight", b->n_vocab, d, err) ||
        put(c, "embeddings.token_type_embeddings.weight", "token_types.weight", b->n_types, d,
            err) ||
        put(c, "embeddings.position_embeddings.weight", "position_embd.weight", b->n_pos, d,
            err) ||
        put_norm(c, "embeddings.LayerNorm", "token_embd_norm", d, err))
        return -1;
    for (int l = 0; l < b->n_layer; l++) {
        char hf[128], gg[64];
#define LIN(h, g, rows, cols)                                                     \
    snprintf(hf, sizeof hf, "encoder.layer.%d.%s", l, h);                         \
    snprintf(gg, sizeof gg, "blk.%d.%s", l, g);                                   \
    if (put_linear(c, hf, gg, rows, cols, err)) return -1;
#define NORM(h, g)                                                                \
    snprintf(hf, sizeof hf, "encoder.layer.%d.%s", l, h);                         \
    snprintf(gg, sizeof gg, "blk.%d.%s", l, g);                                   \
    if (put_norm(c, hf, gg, d, err)) return -1;
        LIN("attention.self.query", "attn_q", d, d);
        LIN("attention.self.key", "attn_k", d, d);
        LIN("attention.self.value", "attn_v", d, d);
        LIN("attention.output.dense", "attn_output", d, d);
        NORM("attention.output.LayerNorm", "attn_output_norm");
        LIN("intermediate.dense", "ffn_up", ff, d);
        LIN("output.dense", "ffn_down", d, ff);
        NORM("output.LayerNorm", "layer_output_norm");
#undef LIN
#undef NORM
    }
    /* Anything left over must be what llama.cpp drops as well. */
    for (size_t i = 0; i < ee_safetensors_n_tensors(c->st); i++) {
        if (c->used[i]) continue;
        const char *n = ee_safetensors_tensor_at(c->st, i)->name;
        const char *s = !strncmp(n, "bert.", 5) ? n + 5 : n;
        if (!strcmp(s, "embeddings.position_ids") || !strncmp(s, "pooler.", 7) ||
            !strncmp(s, "cls.", 4) || !strncmp(n, "cls.", 4))
            continue;
        return ee_err_set(err, "model.safetensors: tensor '%s' is not part of a BERT encoder "
                               "this converter knows (layer index past num_hidden_layers %d?)",
                          n, b->n_layer);
    }
    return 0;
}

/* ---- 3. vocabulary ------------------------------------------------------------ */

int ee_bert_phantom_token(const char *tok, int is_control, char *out, size_t cap) {
    size_t n = strlen(tok);
    const char *src = tok, *pre = "";
    if (!is_control) {
        if (!strncmp(tok, "##", 2)) src = tok + 2, n -= 2;
        else pre = "\xe2\x96\x81"; /* U+2581 */
    }
    size_t len = strlen(pre) + n;
    if (len + 1 > cap) return -1;
    memcpy(out, pre, strlen(pre));
    memcpy(out + strlen(pre), src, n);
    out[len] = 0;
    return (int)len;
}

typedef struct vocab {
    int n;
    char **raw;     /* [n] tokens as in tokenizer.json (NULL: id unused) */
    int32_t *type;  /* [n] */
} vocab;

static void vocab_free(vocab *v) {
    if (v->raw)
        for (int i = 0; i < v->n; i++) free(v->raw[i]);
    free(v->raw);
    free(v->type);
}

static int read_vocab(const json_t *tj, int n_vocab, vocab *v, ee_err *err) {
    v->n = n_vocab;
    v->raw = calloc((size_t)n_vocab, sizeof *v->raw);
    v->type = calloc((size_t)n_vocab, sizeof *v->type);
    if (!v->raw || !v->type) return ee_err_set(err, "out of memory");
    const json_t *model = json_object_get(tj, "model");
    const char *mtype = json_string_value(json_object_get(model, "type"));
    if (!mtype || strcmp(mtype, "WordPiece"))
        return ee_err_set(err, "tokenizer.json: model type is %s, not WordPiece",
                          mtype ? mtype : "missing");
    const json_t *vj = json_object_get(model, "vocab");
    if (!json_is_object(vj)) return ee_err_set(err, "tokenizer.json: model.vocab is missing");
    const char *tok;
    json_t *idj;
    json_object_foreach((json_t *)vj, tok, idj) {
        json_int_t id = json_is_integer(idj) ? json_integer_value(idj) : -1;
        if (id < 0 || id >= n_vocab)
            return ee_err_set(err, "tokenizer.json: token '%s' has id %lld outside 0..%d "
                                   "(config.json vocab_size)",
                              tok, (long long)id, n_vocab - 1);
        if (v->raw[id])
            return ee_err_set(err, "tokenizer.json: tokens '%s' and '%s' share id %lld",
                              v->raw[id], tok, (long long)id);
        if (!(v->raw[id] = strdup(tok))) return ee_err_set(err, "out of memory");
        v->type[id] = TT_NORMAL;
    }
    const json_t *added = json_object_get(tj, "added_tokens");
    size_t i;
    json_t *a;
    json_array_foreach(added, i, a) {
        const json_t *idj2 = json_object_get(a, "id");
        const char *content = json_string_value(json_object_get(a, "content"));
        json_int_t id = json_is_integer(idj2) ? json_integer_value(idj2) : -1;
        if (!content || id < 0 || id >= n_vocab)
            return ee_err_set(err, "tokenizer.json: added_tokens[%zu] has no content or an id "
                                   "outside 0..%d",
                              i, n_vocab - 1);
        if (v->raw[id] && strcmp(v->raw[id], content))
            return ee_err_set(err, "tokenizer.json: added token '%s' has id %lld, which the "
                                   "vocabulary gives to '%s'",
                              content, (long long)id, v->raw[id]);
        if (!v->raw[id] && !(v->raw[id] = strdup(content)))
            return ee_err_set(err, "out of memory");
        v->type[id] = json_is_true(json_object_get(a, "special")) ? TT_CONTROL : TT_USER_DEFINED;
    }
    for (int id = 0; id < n_vocab; id++) {
        if (v->raw[id]) continue;
        char pad[32];
        snprintf(pad, sizeof pad, "[PAD%d]", id);
        if (!(v->raw[id] = strdup(pad))) return ee_err_set(err, "out of memory");
        v->type[id] = TT_UNUSED;
    }
    return 0;
}

static int token_id(const vocab *v, const char *s) {
    if (!s) return -1;
    for (int i = 0; i < v->n; i++)
        if (v->type[i] != TT_UNUSED && !strcmp(v->raw[i], s)) return i;
    return -1;
}

/* A special token's text from tokenizer_config.json (a string or an
 * AddedToken object with "content"); dflt when absent. */
static const char *special_name(const json_t *tc, const char *key, const char *dflt) {
    const json_t *v = tc ? json_object_get(tc, key) : NULL;
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_object(v) && json_is_string(json_object_get(v, "content")))
        return json_string_value(json_object_get(v, "content"));
    return dflt;
}

static int put_vocab(ee_gguf_writer *w, const char *dir, const json_t *tj, const vocab *v,
                     int n_types, ee_err *err) {
    int rc = 0;
    char **ph = calloc((size_t)v->n, sizeof *ph);
    if (!ph) return ee_err_set(err, "out of memory");
    for (int i = 0; i < v->n && !rc; i++) {
        size_t cap = strlen(v->raw[i]) + 4;
        ph[i] = malloc(cap);
        if (!ph[i] || ee_bert_phantom_token(v->raw[i], v->type[i] == TT_CONTROL, ph[i], cap) < 0)
            rc = ee_err_set(err, "out of memory");
    }
    if (!rc) rc = ee_gguf_writer_set_str(w, "tokenizer.ggml.model", "bert", err);
    if (!rc) rc = ee_gguf_writer_set_str_arr(w, "tokenizer.ggml.tokens", (const char *const *)ph,
                                             (uint64_t)v->n, err);
    if (!rc) rc = ee_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", EE_GGUF_I32, v->type,
                                         (uint64_t)v->n, err);
    for (int i = 0; i < v->n; i++) free(ph[i]);
    free(ph);
    if (rc) return -1;
    if (ee_gguf_writer_set_u32(w, "tokenizer.ggml.token_type_count", (uint32_t)n_types, err))
        return -1;

    /* Special ids as gguf-py's SpecialVocab finds them for a BERT
     * tokenizer: names from tokenizer_config.json, bos = cls and eos = sep
     * when the tokenizer has no bos/eos of its own. */
    bool missing;
    json_t *tc = load_json(dir, "tokenizer_config.json", true, &missing, err);
    if (!tc && !missing) return -1;
    const char *cls = special_name(tc, "cls_token", "[CLS]"),
               *sep = special_name(tc, "sep_token", "[SEP]");
    struct {
        const char *key, *name;
    } sp[] = {
        {"tokenizer.ggml.bos_token_id", special_name(tc, "bos_token", cls)},
        {"tokenizer.ggml.eos_token_id", special_name(tc, "eos_token", sep)},
        {"tokenizer.ggml.unknown_token_id", special_name(tc, "unk_token", "[UNK]")},
        {"tokenizer.ggml.seperator_token_id", sep}, /* sic: llama.cpp's spelling */
        {"tokenizer.ggml.padding_token_id", special_name(tc, "pad_token", "[PAD]")},
        {"tokenizer.ggml.cls_token_id", cls},
        {"tokenizer.ggml.mask_token_id", special_name(tc, "mask_token", "[MASK]")},
    };
    int cls_id = token_id(v, cls), sep_id = token_id(v, sep);
    for (size_t i = 0; i < sizeof sp / sizeof sp[0] && !rc; i++) {
        int id = token_id(v, sp[i].name);
        if (id >= 0) rc = ee_gguf_writer_set_u32(w, sp[i].key, (uint32_t)id, err);
    }
    /* [CLS] A [SEP] post-processing: llama.cpp adds [CLS] and [SEP] itself
     * (add_bos/add_eos), with no extra separator. */
    const json_t *pp = json_object_get(tj, "post_processor");
    const char *ppt = json_string_value(json_object_get(pp, "type"));
    bool bert_template = ppt && !strcmp(ppt, "BertProcessing");
    if (ppt && !strcmp(ppt, "TemplateProcessing")) {
        const json_t *single = json_object_get(pp, "single");
        const char *first = json_string_value(
            json_object_get(json_object_get(json_array_get(single, 0), "SpecialToken"), "id"));
        const char *last = json_string_value(json_object_get(
            json_object_get(json_array_get(single, json_array_size(single) - 1), "SpecialToken"),
            "id"));
        bert_template = json_array_size(single) == 3 && first && last && !strcmp(first, cls) &&
                        !strcmp(last, sep);
    }
    if (!rc && bert_template && cls_id >= 0 && sep_id >= 0) {
        rc = ee_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true, err);
        if (!rc) rc = ee_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", true, err);
        if (!rc) rc = ee_gguf_writer_set_bool(w, "tokenizer.ggml.add_sep_token", false, err);
    }
    json_decref(tc);
    return rc ? -1 : 0;
}

/* The BERT normalizer's options, stored for our WordPiece tokenizer. */
static int put_normalizer(ee_gguf_writer *w, const json_t *tj, bool st_lower, ee_err *err) {
    const json_t *nj = json_object_get(tj, "normalizer");
    const char *nt = json_string_value(json_object_get(nj, "type"));
    if (!nt || strcmp(nt, "BertNormalizer"))
        return ee_err_set(err, "tokenizer.json: normalizer is %s, not BertNormalizer",
                          nt ? nt : "missing");
    const json_t *pj = json_object_get(tj, "pre_tokenizer");
    const char *pt = json_string_value(json_object_get(pj, "type"));
    if (!pt || strcmp(pt, "BertPreTokenizer"))
        return ee_err_set(err, "tokenizer.json: pre_tokenizer is %s, not BertPreTokenizer",
                          pt ? pt : "missing");
    const json_t *sa = json_object_get(nj, "strip_accents");
    bool lower = json_is_true(json_object_get(nj, "lowercase"));
    /* strip_accents null means "as lowercase" (HF BertNormalizer). */
    bool strip = json_is_boolean(sa) ? json_is_true(sa) : lower;
    const json_t *ct = json_object_get(nj, "clean_text"), *hc = json_object_get(nj, "handle_chinese_chars");
    const json_t *mw = json_object_get(json_object_get(tj, "model"), "max_input_chars_per_word");
    uint32_t max_word = json_is_integer(mw) && json_integer_value(mw) > 0
                            ? (uint32_t)json_integer_value(mw)
                            : 100;
    if (ee_gguf_writer_set_bool(w, EE_BERT_KEY_LOWERCASE, lower || st_lower, err) ||
        ee_gguf_writer_set_bool(w, EE_BERT_KEY_STRIP_ACCENTS, strip, err) ||
        ee_gguf_writer_set_bool(w, EE_BERT_KEY_CLEAN_TEXT, ct ? json_is_true(ct) : true, err) ||
        ee_gguf_writer_set_bool(w, EE_BERT_KEY_CHINESE, hc ? json_is_true(hc) : true, err) ||
        ee_gguf_writer_set_u32(w, EE_BERT_KEY_MAX_WORD, max_word, err))
        return -1;
    /* tokenizer.ggml.pre: llama.cpp names the pre-tokenizer by hashing the
     * tokens of a test string; an uncased BERT WordPiece (bert-base-uncased
     * vocabulary and rules, as all-MiniLM-L6-v2) hashes to "bert-bge". Its
     * loader ignores the value for WordPiece ("bert") vocabularies. */
    return ee_gguf_writer_set_str(w, "tokenizer.ggml.pre", lower ? "bert-bge" : "default", err);
}

/* ---- 4. import ------------------------------------------------------------------- */

/* gguf-py's size label: "23M" for 22.7 million parameters. */
static void size_label(uint64_t n, char *out, size_t cap) {
    double x = (double)n;
    const char *suf = "K";
    double s = x * 1e-3;
    if (x > 1e12) suf = "T", s = x * 1e-12;
    else if (x > 1e9) suf = "B", s = x * 1e-9;
    else if (x > 1e6) suf = "M", s = x * 1e-6;
    char digits[32];
    snprintf(digits, sizeof digits, "%.0f", s);
    int nd = (int)strlen(digits), fix = 2 - nd;
    if (!strcmp(digits, "0")) fix = 2; /* lstrip('0') leaves nothing */
    snprintf(out, cap, "%.*f%s", fix > 0 ? fix : 0, s, suf);
}

int ee_bert_import(const char *dir, const char *out_path, const ee_bert_import_opts *opts,
                   ee_err *err) {
    ee_dtype wtype = opts ? opts->wtype : EE_DT_F32;
    if (wtype != EE_DT_F32 && wtype != EE_DT_F16)
        return ee_err_set(err, "weight type must be f32 or f16");
    json_t *cj = NULL, *tj = NULL;
    ee_safetensors *st = NULL;
    ee_gguf_writer *w = NULL;
    vocab v = {0};
    conv c = {0};
    int rc = -1;
    bert_cfg b = {0};
    st_cfg s = {0};
    if (!(cj = load_json(dir, "config.json", false, NULL, err))) goto done;
    if (read_config(cj, &b, err)) goto done;
    if (read_st_config(dir, b.n_pos, &s, err)) goto done;
    if (!(tj = load_json(dir, "tokenizer.json", false, NULL, err))) goto done;
    if (read_vocab(tj, b.n_vocab, &v, err)) goto done;
    char stp[4096];
    snprintf(stp, sizeof stp, "%s/model.safetensors", dir);
    if (!(st = ee_safetensors_open(stp, err))) goto done;
    if (!(w = ee_gguf_writer_new(err))) goto done;

    /* Tensors first: the parameter count goes into general.size_label. */
    c.st = st;
    c.w = w;
    c.wtype = wtype;
    c.used = calloc(ee_safetensors_n_tensors(st) + 1, sizeof *c.used);
    if (!c.used) {
        ee_err_set(err, "out of memory");
        goto done;
    }
    if (put_tensors(&c, &b, err)) goto done;

    char name[256], label[32];
    if (opts && opts->name) {
        snprintf(name, sizeof name, "%s", opts->name);
    } else {
        size_t l = strlen(dir);
        while (l > 1 && dir[l - 1] == '/') l--;
        size_t s0 = l;
        while (s0 > 0 && dir[s0 - 1] != '/') s0--;
        snprintf(name, sizeof name, "%.*s", (int)(l - s0), dir + s0);
    }
    size_label(c.n_params, label, sizeof label);
#define SET(call)                                                                  \
    if (call) goto done;
    SET(ee_gguf_writer_set_str(w, "general.architecture", "bert", err));
    SET(ee_gguf_writer_set_str(w, "general.type", "model", err));
    SET(ee_gguf_writer_set_str(w, "general.name", name, err));
    SET(ee_gguf_writer_set_str(w, "general.size_label", label, err));
    SET(ee_gguf_writer_set_u32(w, "bert.block_count", (uint32_t)b.n_layer, err));
    SET(ee_gguf_writer_set_u32(w, "bert.context_length", (uint32_t)b.n_pos, err));
    SET(ee_gguf_writer_set_u32(w, "bert.embedding_length", (uint32_t)b.n_embd, err));
    SET(ee_gguf_writer_set_u32(w, "bert.feed_forward_length", (uint32_t)b.n_ff, err));
    SET(ee_gguf_writer_set_u32(w, "bert.attention.head_count", (uint32_t)b.n_head, err));
    SET(ee_gguf_writer_set_f32(w, "bert.attention.layer_norm_epsilon", b.eps, err));
    /* llama.cpp's LlamaFileType: ALL_F32 = 0, MOSTLY_F16 = 1. */
    SET(ee_gguf_writer_set_u32(w, "general.file_type", wtype == EE_DT_F16 ? 1 : 0, err));
    SET(ee_gguf_writer_set_bool(w, "bert.attention.causal", false, err));
    if (s.pooling >= 0) SET(ee_gguf_writer_set_u32(w, "bert.pooling_type", (uint32_t)s.pooling, err));
    SET(put_vocab(w, dir, tj, &v, b.n_types, err));
    SET(put_normalizer(w, tj, s.do_lower_case, err));
    SET(ee_gguf_writer_set_u32(w, "general.quantization_version", 2, err));
    SET(ee_gguf_writer_set_u32(w, EE_BERT_KEY_MAX_SEQ, (uint32_t)s.max_seq, err));
    SET(ee_gguf_writer_set_bool(w, EE_BERT_KEY_NORMALIZE, s.normalize, err));
#undef SET
    rc = ee_gguf_writer_write(w, out_path, err);
done:
    if (rc) ee_err_wrap(err, "import %s", dir);
    free(c.used);
    vocab_free(&v);
    ee_gguf_writer_free(w);
    ee_safetensors_close(st);
    json_decref(tj);
    json_decref(cj);
    return rc;
}
