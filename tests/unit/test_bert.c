/* BERT encoder on a tiny synthetic model: a Hugging Face directory
 * (config.json, tokenizer.json, sentence-transformers files and a
 * model.safetensors with random weights, all written here) imported with
 * ee_bert_import, run by ee_bert_embed and checked against the independent
 * numpy reference tests/ref/bert_ref.py (which reads the safetensors file,
 * or the GGUF through the PyPI gguf package). Also: batched == one by one,
 * truncation, f16 files, 16-bit sources, the GGUF's metadata, and clean
 * errors from the converter, the loader and the forward pass. */
#include "ee_bert.h"
#include "ee_bert_import.h"
#include "ee_gguf.h"
#include "ee_quant.h"
#include "ee_testmodel.h"

#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the synthetic model ---------------------------------------------------- */

enum { V = 40, D = 32, NL = 2, NH = 4, FF = 64, NPOS = 16, NTYPES = 2, MAXSEQ = 12 };
enum { PAD = 0, UNK = 1, CLS = 2, SEP = 3, MASK = 4 };

typedef struct syn_opts {
    const char *dtype;       /* "F32" or "BF16" weights in the safetensors file */
    const char *skip;        /* HF tensor left out (NULL: none) */
    const char *bad_shape;   /* HF tensor written one row short */
    const char *extra;       /* an unknown tensor added */
    const char *hidden_act;  /* config.json's (NULL: "gelu") */
    bool dup_token;          /* two vocabulary entries share an id */
    uint64_t seed;
} syn_opts;

/* A safetensors file being built: header JSON and data. */
typedef struct stb {
    char *hdr;
    size_t hn, hcap;
    uint8_t *data;
    size_t dn, dcap;
} stb;

static void stb_hdr(stb *b, const char *s) {
    size_t n = strlen(s);
    if (b->hn + n + 1 > b->hcap) {
        b->hcap = (b->hn + n + 1) * 2;
        b->hdr = realloc(b->hdr, b->hcap);
    }
    memcpy(b->hdr + b->hn, s, n + 1);
    b->hn += n;
}

static void stb_add(stb *b, const char *name, const char *dtype, int nd, const int64_t *shape,
                    const void *bytes, size_t nbytes) {
    char e[512];
    int o = snprintf(e, sizeof e, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", b->hn > 1 ? "," : "",
                     name, dtype);
    for (int i = 0; i < nd; i++) o += snprintf(e + o, sizeof e - o, "%s%lld", i ? "," : "",
                                               (long long)shape[i]);
    snprintf(e + o, sizeof e - o, "],\"data_offsets\":[%zu,%zu]}", b->dn, b->dn + nbytes);
    stb_hdr(b, e);
    if (b->dn + nbytes > b->dcap) {
        b->dcap = (b->dn + nbytes) * 2;
        b->data = realloc(b->data, b->dcap);
    }
    memcpy(b->data + b->dn, bytes, nbytes);
    b->dn += nbytes;
}

/* Random tensor: values in [-a, a) + center, stored as dtype. */
static void stb_rand(stb *b, const syn_opts *o, const char *name, int64_t rows, int64_t cols,
                     float a, float center, uint64_t *rng) {
    if (o->skip && !strcmp(o->skip, name)) return;
    if (o->bad_shape && !strcmp(o->bad_shape, name)) {
        if (rows) rows--;
        else cols--;
    }
    int64_t n = (rows ? rows : 1) * cols;
    float *v = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        v[i] = center + ((ee_test_splitmix64(rng) >> 40) * (1.0f / 16777216.0f) * 2 - 1) * a;
    int64_t shape[2] = {rows, cols};
    if (!strcmp(o->dtype, "BF16")) {
        uint16_t *h = malloc((size_t)n * 2);
        for (int64_t i = 0; i < n; i++) h[i] = ee_fp32_to_bf16(v[i]);
        stb_add(b, name, "BF16", rows ? 2 : 1, rows ? shape : shape + 1, h, (size_t)n * 2);
        free(h);
    } else {
        stb_add(b, name, "F32", rows ? 2 : 1, rows ? shape : shape + 1, v, (size_t)n * 4);
    }
    free(v);
}

static void write_text(const char *dir, const char *file, const char *text) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    ee_test_write_file(p, text, strlen(text));
}

static const char *word(int id) { /* vocabulary entries 5.. */
    static const char *w[] = {"the", "a", "cat", "dog", "sat", "on", "mat", "##s", "##ing", "run",
                              "blue", "red", "##ed", "big", "small", "house", "tree", "car",
                              "##ly", "fast", "slow", "up", "down", "in", "out", "day", "night",
                              "sun", "moon", "star", ".", ",", "!", "?", "##er"};
    return w[id - 5];
}

/* The directory: DIR/{config.json, tokenizer.json, tokenizer_config.json,
 * modules.json, sentence_bert_config.json, 1_Pooling/config.json,
 * model.safetensors}. */
static void syn_write(const char *dir, const syn_opts *o) {
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"architectures\":[\"BertModel\"],\"model_type\":\"bert\",\"hidden_act\":\"%s\","
             "\"hidden_size\":%d,\"num_hidden_layers\":%d,\"num_attention_heads\":%d,"
             "\"intermediate_size\":%d,\"max_position_embeddings\":%d,\"type_vocab_size\":%d,"
             "\"vocab_size\":%d,\"layer_norm_eps\":1e-12,\"pad_token_id\":0,"
             "\"position_embedding_type\":\"absolute\"}",
             o->hidden_act ? o->hidden_act : "gelu", D, NL, NH, FF, NPOS, NTYPES, V);
    write_text(dir, "config.json", cfg);

    char *tj = malloc(16384);
    int n = snprintf(tj, 16384,
                     "{\"version\":\"1.0\",\"truncation\":{\"max_length\":8},\"padding\":null,"
                     "\"added_tokens\":[");
    const char *sp[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    for (int i = 0; i < 5; i++)
        n += snprintf(tj + n, 16384 - n, "%s{\"id\":%d,\"content\":\"%s\",\"special\":true}",
                      i ? "," : "", i, sp[i]);
    n += snprintf(tj + n, 16384 - n,
                  "],\"normalizer\":{\"type\":\"BertNormalizer\",\"clean_text\":true,"
                  "\"handle_chinese_chars\":true,\"strip_accents\":null,\"lowercase\":true},"
                  "\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"},"
                  "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":["
                  "{\"SpecialToken\":{\"id\":\"[CLS]\",\"type_id\":0}},"
                  "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},"
                  "{\"SpecialToken\":{\"id\":\"[SEP]\",\"type_id\":0}}]},"
                  "\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\","
                  "\"continuing_subword_prefix\":\"##\",\"max_input_chars_per_word\":100,"
                  "\"vocab\":{");
    for (int i = 0; i < V; i++)
        n += snprintf(tj + n, 16384 - n, "%s\"%s\":%d", i ? "," : "", i < 5 ? sp[i] : word(i),
                      o->dup_token && i == V - 1 ? V - 2 : i);
    snprintf(tj + n, 16384 - n, "}}}");
    write_text(dir, "tokenizer.json", tj);
    free(tj);
    write_text(dir, "tokenizer_config.json",
               "{\"cls_token\":\"[CLS]\",\"sep_token\":\"[SEP]\",\"unk_token\":\"[UNK]\","
               "\"pad_token\":\"[PAD]\",\"mask_token\":\"[MASK]\",\"do_lower_case\":true}");
    write_text(dir, "modules.json",
               "[{\"idx\":0,\"name\":\"0\",\"path\":\"\",\"type\":\"sentence_transformers.models."
               "Transformer\"},{\"idx\":1,\"name\":\"1\",\"path\":\"1_Pooling\",\"type\":"
               "\"sentence_transformers.models.Pooling\"},{\"idx\":2,\"name\":\"2\",\"path\":"
               "\"2_Normalize\",\"type\":\"sentence_transformers.models.Normalize\"}]");
    char sb[128];
    snprintf(sb, sizeof sb, "{\"max_seq_length\":%d,\"do_lower_case\":false}", MAXSEQ);
    write_text(dir, "sentence_bert_config.json", sb);
    char pd[1024];
    snprintf(pd, sizeof pd, "%s/1_Pooling", dir);
    mkdir(pd, 0755);
    write_text(dir, "1_Pooling/config.json",
               "{\"word_embedding_dimension\":32,\"pooling_mode_cls_token\":false,"
               "\"pooling_mode_mean_tokens\":true,\"pooling_mode_max_tokens\":false}");

    /* Weights. Scales keep activations O(1) through the random network. */
    uint64_t rng = o->seed * 0x9E3779B97F4A7C15ULL + 1;
    stb b = {0};
    stb_hdr(&b, "{");
    int64_t pos_ids[NPOS];
    for (int i = 0; i < NPOS; i++) pos_ids[i] = i;
    int64_t ps[2] = {1, NPOS};
    stb_add(&b, "embeddings.position_ids", "I64", 2, ps, pos_ids, sizeof pos_ids);
    stb_rand(&b, o, "embeddings.word_embeddings.weight", V, D, 1.0f, 0, &rng);
    stb_rand(&b, o, "embeddings.position_embeddings.weight", NPOS, D, 0.5f, 0, &rng);
    stb_rand(&b, o, "embeddings.token_type_embeddings.weight", NTYPES, D, 0.5f, 0, &rng);
    stb_rand(&b, o, "embeddings.LayerNorm.weight", 0, D, 0.3f, 1.0f, &rng);
    stb_rand(&b, o, "embeddings.LayerNorm.bias", 0, D, 0.1f, 0, &rng);
    for (int l = 0; l < NL; l++) {
        char nm[128];
#define LIN(h, rows, cols, a)                                                          \
    snprintf(nm, sizeof nm, "encoder.layer.%d.%s.weight", l, h);                       \
    stb_rand(&b, o, nm, rows, cols, a, 0, &rng);                                       \
    snprintf(nm, sizeof nm, "encoder.layer.%d.%s.bias", l, h);                         \
    stb_rand(&b, o, nm, 0, rows, 0.1f, 0, &rng);
#define NORM(h)                                                                        \
    snprintf(nm, sizeof nm, "encoder.layer.%d.%s.weight", l, h);                       \
    stb_rand(&b, o, nm, 0, D, 0.3f, 1.0f, &rng);                                       \
    snprintf(nm, sizeof nm, "encoder.layer.%d.%s.bias", l, h);                         \
    stb_rand(&b, o, nm, 0, D, 0.1f, 0, &rng);
        LIN("attention.self.query", D, D, 0.4f);
        LIN("attention.self.key", D, D, 0.4f);
        LIN("attention.self.value", D, D, 0.4f);
        LIN("attention.output.dense", D, D, 0.3f);
        NORM("attention.output.LayerNorm");
        LIN("intermediate.dense", FF, D, 0.3f);
        LIN("output.dense", D, FF, 0.3f);
        NORM("output.LayerNorm");
#undef LIN
#undef NORM
    }
    stb_rand(&b, o, "pooler.dense.weight", D, D, 0.1f, 0, &rng); /* dropped, as llama.cpp does */
    stb_rand(&b, o, "pooler.dense.bias", 0, D, 0.1f, 0, &rng);
    if (o->extra) stb_rand(&b, o, o->extra, 0, D, 0.1f, 0, &rng);
    stb_hdr(&b, "}");
    char p[1024];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)b.hn >> (8 * i));
    ck_assert_uint_eq(fwrite(len, 1, 8, f), 8);
    ck_assert_uint_eq(fwrite(b.hdr, 1, b.hn, f), b.hn);
    if (b.dn) ck_assert_uint_eq(fwrite(b.data, 1, b.dn, f), b.dn);
    ck_assert_int_eq(fclose(f), 0);
    free(b.hdr);
    free(b.data);
}

static syn_opts syn_default(void) { return (syn_opts){.dtype = "F32", .seed = 1}; }

/* ---- fixtures ------------------------------------------------------------------ */

typedef struct fx {
    char *dir;   /* synthetic HF directory */
    char path[1100]; /* imported GGUF */
    ee_gguf *g;
    ee_bert_model *m;
} fx;

static void fx_open(fx *f, const syn_opts *o, ee_dtype wtype, bool stored) {
    ee_err err = {{0}};
    f->dir = ee_test_mkdtemp("bert");
    syn_write(f->dir, o);
    snprintf(f->path, sizeof f->path, "%s/m.gguf", f->dir);
    ee_bert_import_opts io = {.wtype = wtype};
    ck_assert_msg(ee_bert_import(f->dir, f->path, &io, &err) == 0, "%s", err.msg);
    f->g = ee_gguf_open(f->path, &err);
    ck_assert_msg(f->g != NULL, "%s", err.msg);
    ee_bert_load_opts lo = {.stored_weights = stored};
    f->m = ee_bert_load(f->g, &lo, &err);
    ck_assert_msg(f->m != NULL, "%s", err.msg);
}

static void fx_close(fx *f) {
    ee_bert_free(f->m);
    ee_gguf_close(f->g);
    ee_test_rmtree(f->dir);
    free(f->dir);
}

/* Test sentences: ids as a tokenizer gives them ([CLS] ... [SEP]); lengths
 * 2..16 including longer than MAXSEQ (cut), and one not ending in [SEP]. */
#define NS 8
static const size_t LENS[NS] = {2, 5, 12, 13, 16, 7, 3, 14};
static int32_t SENT[NS][NPOS];

static void make_sentences(void) {
    uint64_t rng = 99;
    for (int s = 0; s < NS; s++) {
        SENT[s][0] = CLS;
        for (size_t i = 1; i < LENS[s]; i++) SENT[s][i] = 5 + (int32_t)(ee_test_splitmix64(&rng) % (V - 5));
        if (s != NS - 1) SENT[s][LENS[s] - 1] = SEP; /* the last one: no [SEP] at the end */
    }
}

static float *embed_all(const ee_bert_model *m, bool raw) {
    const int32_t *ids[NS];
    for (int s = 0; s < NS; s++) ids[s] = SENT[s];
    float *out = malloc((size_t)NS * m->hp.n_embd * sizeof(float));
    ee_err err = {{0}};
    ee_bert_embed_opts o = {.raw = raw};
    ck_assert_msg(ee_bert_embed_ex(m, ids, LENS, NS, &o, out, &err) == 0, "%s", err.msg);
    return out;
}

/* The numpy reference on model (a directory or a GGUF) for SENT: returns
 * the parsed JSON (caller decrefs). */
static json_t *numpy_ref(const char *model) {
    char *in = ee_test_tmpfile(".json"), *out = ee_test_tmpfile(".json");
    FILE *f = fopen(in, "w");
    fputc('[', f);
    for (int s = 0; s < NS; s++) {
        fprintf(f, "%s[", s ? "," : "");
        for (size_t i = 0; i < LENS[s]; i++) fprintf(f, "%s%d", i ? "," : "", SENT[s][i]);
        fputc(']', f);
    }
    fputc(']', f);
    fclose(f);
    char cmd[4096], *err_text = NULL;
    snprintf(cmd, sizeof cmd, "'%s' tests/ref/bert_ref.py --model '%s' --ids-json '%s' --out '%s'",
             ee_test_python(), model, in, out);
    int st = ee_test_run(cmd, NULL, &err_text);
    ck_assert_msg(st == 0, "numpy reference failed (%d): %s", st, err_text);
    free(err_text);
    json_error_t je;
    json_t *j = json_load_file(out, 0, &je);
    ck_assert_msg(j != NULL, "reference output: %s", je.text);
    unlink(in);
    unlink(out);
    free(in);
    free(out);
    return j;
}

/* Worst |a-b| and worst cosine between our rows and the reference's
 * `field` ("embedding" or "pooled"). */
static void compare_ref(const float *ours, const json_t *ref, const char *field, int d,
                        double *max_abs, double *min_cos) {
    const json_t *items = json_object_get(ref, "items");
    ck_assert_uint_eq(json_array_size(items), NS);
    *max_abs = 0;
    *min_cos = 1;
    for (int s = 0; s < NS; s++) {
        const json_t *e = json_object_get(json_array_get(items, s), field);
        ck_assert_uint_eq(json_array_size(e), (size_t)d);
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < d; i++) {
            double a = ours[(size_t)s * d + i], b = json_number_value(json_array_get(e, i));
            double diff = fabs(a - b);
            if (!(diff <= *max_abs)) *max_abs = diff;
            dot += a * b, na += a * a, nb += b * b;
        }
        double c = dot / sqrt(na * nb);
        if (!(c >= *min_cos)) *min_cos = c;
    }
}

/* ---- tests ------------------------------------------------------------------------ */

START_TEST(matches_numpy_f32) {
    make_sentences();
    syn_opts o = syn_default();
    fx f;
    fx_open(&f, &o, EE_DT_F32, false);
    ck_assert_int_eq(f.m->hp.max_seq, MAXSEQ);
    ck_assert(f.m->hp.normalize);
    ck_assert_int_eq(f.m->hp.pooling, EE_BERT_POOL_MEAN);
    ck_assert_int_eq(f.m->hp.sep_id, SEP);
    json_t *ref = numpy_ref(f.dir); /* reads model.safetensors itself */
    /* The reference cut the long sentences as we do. */
    const json_t *items = json_object_get(ref, "items");
    for (int s = 0; s < NS; s++)
        ck_assert_uint_eq(json_array_size(json_object_get(json_array_get(items, s), "ids_used")),
                          ee_bert_kept(f.m, LENS[s]));
    float *e = embed_all(f.m, false), *p = embed_all(f.m, true);
    double ma, mc;
    compare_ref(e, ref, "embedding", D, &ma, &mc);
    ck_assert_msg(ma <= 2e-6 && mc >= 1 - 1e-9, "embedding vs numpy: max abs %g, min cos %.12f",
                  ma, mc);
    compare_ref(p, ref, "pooled", D, &ma, &mc);
    ck_assert_msg(ma <= 1e-5 && mc >= 1 - 1e-9, "raw pooled vs numpy: max abs %g, min cos %.12f",
                  ma, mc);
    for (int s = 0; s < NS; s++) { /* unit length */
        double nn = 0;
        for (int i = 0; i < D; i++) nn += (double)e[s * D + i] * e[s * D + i];
        ck_assert_msg(fabs(sqrt(nn) - 1) < 1e-6, "sentence %d: |e| = %g", s, sqrt(nn));
    }
    free(e);
    free(p);
    json_decref(ref);
    fx_close(&f);
}
END_TEST

/* f16 weights (as llama.cpp's --outtype f16 stores them), used both as f32
 * copies and as stored: the reference reads the same GGUF. */
START_TEST(matches_numpy_f16_file) {
    make_sentences();
    syn_opts o = syn_default();
    o.seed = 2;
    for (int stored = 0; stored < 2; stored++) {
        fx f;
        fx_open(&f, &o, EE_DT_F16, stored);
        const ee_gguf_tensor *t = ee_gguf_find_tensor(f.g, "blk.0.attn_q.weight");
        ck_assert_int_eq(t->type, EE_DT_F16);
        ck_assert_int_eq(ee_gguf_find_tensor(f.g, "position_embd.weight")->type, EE_DT_F32);
        ck_assert_int_eq(ee_gguf_find_tensor(f.g, "token_types.weight")->type, EE_DT_F32);
        ck_assert_int_eq(ee_gguf_find_tensor(f.g, "token_embd.weight")->type, EE_DT_F16);
        ck_assert_int_eq(ee_gguf_find_tensor(f.g, "blk.1.attn_output_norm.weight")->type, EE_DT_F32);
        ck_assert_int_eq(ee_gguf_find_tensor(f.g, "blk.1.ffn_up.bias")->type, EE_DT_F32);
        json_t *ref = numpy_ref(f.path); /* reads the GGUF via the gguf package */
        float *e = embed_all(f.m, false);
        double ma, mc;
        compare_ref(e, ref, "embedding", D, &ma, &mc);
        ck_assert_msg(ma <= 2e-6 && mc >= 1 - 1e-9, "stored %d: max abs %g, min cos %.12f",
                      stored, ma, mc);
        free(e);
        json_decref(ref);
        fx_close(&f);
    }
}
END_TEST

/* BF16 weights in the safetensors file, imported to f32. */
START_TEST(matches_numpy_bf16_source) {
    make_sentences();
    syn_opts o = syn_default();
    o.dtype = "BF16";
    o.seed = 3;
    fx f;
    fx_open(&f, &o, EE_DT_F32, false);
    json_t *ref = numpy_ref(f.dir);
    float *e = embed_all(f.m, false);
    double ma, mc;
    compare_ref(e, ref, "embedding", D, &ma, &mc);
    ck_assert_msg(ma <= 2e-6 && mc >= 1 - 1e-9, "max abs %g, min cos %.12f", ma, mc);
    free(e);
    json_decref(ref);
    fx_close(&f);
}
END_TEST

/* Batched == one by one == a different order; the hidden-state output. */
START_TEST(batched_equals_single) {
    make_sentences();
    syn_opts o = syn_default();
    fx f;
    fx_open(&f, &o, EE_DT_F32, false);
    float *all = embed_all(f.m, false);
    ee_err err = {{0}};
    float one[D];
    for (int s = 0; s < NS; s++) {
        const int32_t *ids = SENT[s];
        ck_assert_msg(ee_bert_embed(f.m, &ids, &LENS[s], 1, one, &err) == 0, "%s", err.msg);
        for (int i = 0; i < D; i++)
            ck_assert_msg(fabsf(one[i] - all[s * D + i]) <= 1e-6f, "sentence %d dim %d: %g vs %g",
                          s, i, one[i], all[s * D + i]);
    }
    /* Reversed order. */
    const int32_t *rev[NS];
    size_t rlen[NS];
    for (int s = 0; s < NS; s++) rev[s] = SENT[NS - 1 - s], rlen[s] = LENS[NS - 1 - s];
    float out[NS * D];
    ck_assert_int_eq(ee_bert_embed(f.m, rev, rlen, NS, out, &err), 0);
    for (int s = 0; s < NS; s++)
        for (int i = 0; i < D; i++)
            ck_assert(fabsf(out[s * D + i] - all[(NS - 1 - s) * D + i]) <= 1e-6f);
    /* Hidden states: mean of a sentence's rows is its raw pooled vector. */
    size_t T = 0;
    for (int s = 0; s < NS; s++) T += ee_bert_kept(f.m, LENS[s]);
    float *hid = malloc(T * D * sizeof(float));
    float *raw = embed_all(f.m, true);
    const int32_t *ids[NS];
    for (int s = 0; s < NS; s++) ids[s] = SENT[s];
    ee_bert_embed_opts eo = {.raw = true, .hidden = hid, .hidden_rows = T - 1};
    ck_assert_int_eq(ee_bert_embed_ex(f.m, ids, LENS, NS, &eo, out, &err), -1);
    ck_assert_msg(strstr(err.msg, "hidden-state buffer holds"), "%s", err.msg);
    eo.hidden_rows = T;
    ck_assert_int_eq(ee_bert_embed_ex(f.m, ids, LENS, NS, &eo, out, &err), 0);
    size_t r0 = 0;
    for (int s = 0; s < NS; s++) {
        size_t L = ee_bert_kept(f.m, LENS[s]);
        for (int i = 0; i < D; i++) {
            double acc = 0;
            for (size_t t = 0; t < L; t++) acc += hid[(r0 + t) * D + i];
            ck_assert(fabs(acc / L - raw[s * D + i]) <= 1e-5);
        }
        r0 += L;
    }
    free(raw);
    free(hid);
    free(all);
    fx_close(&f);
}
END_TEST

/* What the file holds: llama.cpp's keys and names, our eeinfer.* keys. */
START_TEST(gguf_metadata) {
    syn_opts o = syn_default();
    fx f;
    fx_open(&f, &o, EE_DT_F32, false);
    ee_err err = {{0}};
    const ee_gguf *g = f.g;
    uint32_t u;
    bool b;
    float x;
    ck_assert_str_eq(ee_gguf_get_str(g, "general.architecture", &err), "bert");
    ck_assert_str_eq(ee_gguf_get_str(g, "tokenizer.ggml.model", &err), "bert");
    ck_assert_int_eq(ee_gguf_get_u32(g, "bert.context_length", &u, &err), 0);
    ck_assert_uint_eq(u, NPOS);
    ck_assert_int_eq(ee_gguf_get_u32(g, "bert.block_count", &u, &err), 0);
    ck_assert_uint_eq(u, NL);
    ck_assert_int_eq(ee_gguf_get_u32(g, "bert.pooling_type", &u, &err), 0);
    ck_assert_uint_eq(u, 1);
    ck_assert_int_eq(ee_gguf_get_bool(g, "bert.attention.causal", &b, &err), 0);
    ck_assert(!b);
    ck_assert_int_eq(ee_gguf_get_f32(g, "bert.attention.layer_norm_epsilon", &x, &err), 0);
    ck_assert_float_eq(x, 1e-12f);
    struct { const char *k; uint32_t v; } ids[] = {
        {"tokenizer.ggml.seperator_token_id", SEP}, {"tokenizer.ggml.cls_token_id", CLS},
        {"tokenizer.ggml.padding_token_id", PAD},   {"tokenizer.ggml.unknown_token_id", UNK},
        {"tokenizer.ggml.mask_token_id", MASK},     {"tokenizer.ggml.bos_token_id", CLS},
        {"tokenizer.ggml.eos_token_id", SEP},       {"tokenizer.ggml.token_type_count", NTYPES},
        {EE_BERT_KEY_MAX_SEQ, MAXSEQ},              {EE_BERT_KEY_MAX_WORD, 100},
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        ck_assert_msg(ee_gguf_get_u32(g, ids[i].k, &u, &err) == 0, "%s", err.msg);
        ck_assert_msg(u == ids[i].v, "%s = %u, expected %u", ids[i].k, u, ids[i].v);
    }
    const char *bools[] = {EE_BERT_KEY_NORMALIZE, EE_BERT_KEY_LOWERCASE, EE_BERT_KEY_STRIP_ACCENTS,
                           EE_BERT_KEY_CLEAN_TEXT, EE_BERT_KEY_CHINESE,
                           "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token"};
    for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
        ck_assert_msg(ee_gguf_get_bool(g, bools[i], &b, &err) == 0, "%s", err.msg);
        ck_assert_msg(b, "%s is false", bools[i]);
    }
    const ee_gguf_kv *toks = ee_gguf_get_arr(g, "tokenizer.ggml.tokens", EE_GGUF_STRING, &err);
    const ee_gguf_kv *types = ee_gguf_get_arr(g, "tokenizer.ggml.token_type", EE_GGUF_I32, &err);
    ck_assert_ptr_nonnull(toks);
    ck_assert_ptr_nonnull(types);
    ck_assert_uint_eq(toks->n, V);
    ck_assert_str_eq(toks->strs[CLS], "[CLS]");                /* control: unchanged */
    ck_assert_str_eq(toks->strs[5], "\xe2\x96\x81the");        /* word: phantom space */
    ck_assert_str_eq(toks->strs[12], "s");                     /* "##s": prefix dropped */
    ck_assert_int_eq(((const int32_t *)types->arr)[SEP], 3);   /* CONTROL */
    ck_assert_int_eq(((const int32_t *)types->arr)[6], 1);     /* NORMAL */
    /* Tensors: llama.cpp's names; the pooler and position_ids dropped. */
    ck_assert_uint_eq(ee_gguf_n_tensors(g), 5 + NL * 16);
    ck_assert_ptr_nonnull(ee_gguf_find_tensor(g, "blk.1.layer_output_norm.bias"));
    const ee_gguf_tensor *up = ee_gguf_find_tensor(g, "blk.0.ffn_up.weight");
    ck_assert_uint_eq(up->ne[0], D);
    ck_assert_uint_eq(up->ne[1], FF);
    fx_close(&f);
}
END_TEST

START_TEST(phantom_tokens) {
    char out[16];
    ck_assert_int_eq(ee_bert_phantom_token("##ing", 0, out, sizeof out), 3);
    ck_assert_str_eq(out, "ing");
    ck_assert_int_eq(ee_bert_phantom_token("cat", 0, out, sizeof out), 6);
    ck_assert_str_eq(out, "\xe2\x96\x81" "cat");
    ck_assert_int_eq(ee_bert_phantom_token("[SEP]", 1, out, sizeof out), 5);
    ck_assert_str_eq(out, "[SEP]");
    ck_assert_int_eq(ee_bert_phantom_token("[unused0]", 0, out, sizeof out), 12); /* NORMAL */
    ck_assert_int_eq(ee_bert_phantom_token("##", 0, out, sizeof out), 0);
    ck_assert_int_eq(ee_bert_phantom_token("abcdefghijklmn", 0, out, sizeof out), -1);
}
END_TEST

/* A copy of src with tensor `name` one row (or value) short, or kv edits. */
static char *rewrite(const char *src, const char *short_tensor, const char *bool_key, bool bv,
                     const char *u32_key, uint32_t uv) {
    ee_err err = {{0}};
    ee_gguf *g = ee_gguf_open(src, &err);
    ck_assert_msg(g != NULL, "%s", err.msg);
    ee_gguf_writer *w = ee_gguf_writer_new(&err);
    for (uint64_t i = 0; i < ee_gguf_n_kv(g); i++)
        ck_assert_int_eq(ee_gguf_writer_copy_kv(w, ee_gguf_kv_at(g, i), &err), 0);
    if (bool_key) ck_assert_int_eq(ee_gguf_writer_set_bool(w, bool_key, bv, &err), 0);
    if (u32_key) ck_assert_int_eq(ee_gguf_writer_set_u32(w, u32_key, uv, &err), 0);
    for (uint64_t i = 0; i < ee_gguf_n_tensors(g); i++) {
        const ee_gguf_tensor *t = ee_gguf_tensor_at(g, i);
        uint64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
        if (short_tensor && !strcmp(t->name, short_tensor)) ne[t->n_dims - 1]--;
        ck_assert_int_eq(ee_gguf_writer_add_tensor(w, t->name, t->n_dims, ne, t->type, t->data,
                                                   true, &err), 0);
    }
    char *out = ee_test_tmpfile(".gguf");
    ck_assert_msg(ee_gguf_writer_write(w, out, &err) == 0, "%s", err.msg);
    ee_gguf_writer_free(w);
    ee_gguf_close(g);
    return out;
}

static void expect_load_error(const char *path, const char *want) {
    ee_err err = {{0}};
    ee_gguf *g = ee_gguf_open(path, &err);
    ck_assert_msg(g != NULL, "%s", err.msg);
    ee_bert_model *m = ee_bert_load(g, NULL, &err);
    ck_assert_msg(m == NULL, "loaded (expected: %s)", want);
    ck_assert_msg(strstr(err.msg, want), "error '%s' lacks '%s'", err.msg, want);
    ee_gguf_close(g);
    unlink(path);
}

START_TEST(load_errors) {
    syn_opts o = syn_default();
    fx f;
    fx_open(&f, &o, EE_DT_F32, false);
    char *p = ee_test_gguf_rewrite(f.path, NULL, "blk.1.attn_k.bias");
    expect_load_error(p, "tensor 'blk.1.attn_k.bias' is missing");
    free(p);
    p = ee_test_gguf_rewrite(f.path, NULL, "token_embd_norm.weight");
    expect_load_error(p, "tensor 'token_embd_norm.weight' is missing");
    free(p);
    p = rewrite(f.path, "blk.0.ffn_down.weight", NULL, false, NULL, 0);
    expect_load_error(p, "tensor 'blk.0.ffn_down.weight' has shape [64, 31]");
    free(p);
    p = rewrite(f.path, "blk.0.attn_q.bias", NULL, false, NULL, 0);
    expect_load_error(p, "tensor 'blk.0.attn_q.bias' has shape [31, 1]");
    free(p);
    p = rewrite(f.path, "position_embd.weight", NULL, false, NULL, 0);
    expect_load_error(p, "tensor 'position_embd.weight' has shape [32, 15]");
    free(p);
    p = rewrite(f.path, NULL, "bert.attention.causal", true, NULL, 0);
    expect_load_error(p, "causal is true");
    free(p);
    p = rewrite(f.path, NULL, NULL, false, "bert.pooling_type", 0);
    expect_load_error(p, "bert.pooling_type 0");
    free(p);
    p = rewrite(f.path, NULL, NULL, false, EE_BERT_KEY_MAX_SEQ, NPOS + 1);
    expect_load_error(p, "exceeds the 16 positions");
    free(p);
    p = ee_test_gguf_rewrite(f.path, "llama", NULL);
    expect_load_error(p, "unsupported architecture 'llama'");
    free(p);
    fx_close(&f);
}
END_TEST

START_TEST(embed_errors) {
    make_sentences();
    syn_opts o = syn_default();
    fx f;
    fx_open(&f, &o, EE_DT_F32, false);
    ee_err err = {{0}};
    float out[2 * D];
    int32_t bad[3] = {CLS, V, SEP};
    const int32_t *ids[2] = {SENT[0], bad};
    size_t n[2] = {LENS[0], 3};
    ck_assert_int_eq(ee_bert_embed(f.m, ids, n, 2, out, &err), -1);
    ck_assert_msg(strstr(err.msg, "sentence 1: token 40 at index 1 is out of range"), "%s", err.msg);
    bad[1] = -1;
    ck_assert_int_eq(ee_bert_embed(f.m, ids, n, 2, out, &err), -1);
    n[1] = 0;
    ck_assert_int_eq(ee_bert_embed(f.m, ids, n, 2, out, &err), -1);
    ck_assert_msg(strstr(err.msg, "sentence 1 has no tokens"), "%s", err.msg);
    ck_assert_int_eq(ee_bert_embed(f.m, ids, n, 0, out, &err), -1);
    ck_assert_msg(strstr(err.msg, "empty batch"), "%s", err.msg);
    fx_close(&f);
}
END_TEST

static void expect_import_error(const syn_opts *o, const char *want) {
    ee_err err = {{0}};
    char *dir = ee_test_mkdtemp("bert-bad");
    syn_write(dir, o);
    char out[1100];
    snprintf(out, sizeof out, "%s/m.gguf", dir);
    ck_assert_int_eq(ee_bert_import(dir, out, NULL, &err), -1);
    ck_assert_msg(strstr(err.msg, want), "error '%s' lacks '%s'", err.msg, want);
    ck_assert_msg(access(out, F_OK) != 0, "a failed import left %s", out);
    ee_test_rmtree(dir);
    free(dir);
}

START_TEST(import_errors) {
    syn_opts o = syn_default();
    o.skip = "encoder.layer.1.attention.self.value.weight";
    expect_import_error(&o, "tensor 'encoder.layer.1.attention.self.value.weight' is missing");
    o = syn_default();
    o.bad_shape = "encoder.layer.0.intermediate.dense.weight";
    expect_import_error(&o, "tensor 'encoder.layer.0.intermediate.dense.weight' has shape [63, 32], "
                            "expected [64, 32]");
    o = syn_default();
    o.extra = "encoder.layer.2.output.LayerNorm.weight";
    expect_import_error(&o, "tensor 'encoder.layer.2.output.LayerNorm.weight' is not part of");
    o = syn_default();
    o.hidden_act = "gelu_new";
    expect_import_error(&o, "hidden_act gelu_new is not \"gelu\"");
    o = syn_default();
    o.dup_token = true;
    expect_import_error(&o, "share id 38");
    ee_err err = {{0}};
    ck_assert_int_eq(ee_bert_import("/nonexistent-dir", "/tmp/x.gguf", NULL, &err), -1);
    ck_assert_msg(strstr(err.msg, "/nonexistent-dir/config.json: cannot open"), "%s", err.msg);
    ee_bert_import_opts bad = {.wtype = EE_DT_Q8_0};
    ck_assert_int_eq(ee_bert_import("/nonexistent-dir", "/tmp/x.gguf", &bad, &err), -1);
    ck_assert_msg(strstr(err.msg, "f32 or f16"), "%s", err.msg);
}
END_TEST

/* ee-model import / embed: the JSON contract on the synthetic model, and
 * bad input named in one line. */
static void cli_expect(const char *args, int want_status, const char *needle) {
    char cmd[8192], *out = NULL, *err_text = NULL;
    snprintf(cmd, sizeof cmd, "%s/ee-model %s", ee_test_bindir(), args);
    int st = ee_test_run(cmd, &out, &err_text);
    ck_assert_msg(st == want_status, "`%s`: status %d (want %d): %s", args, st, want_status,
                  err_text);
    if (needle)
        ck_assert_msg(strstr(want_status ? err_text : out, needle), "`%s`: output lacks '%s': %s%s",
                      args, needle, out, err_text);
    free(out);
    free(err_text);
}

START_TEST(cli_contract) {
    syn_opts o = syn_default();
    char *dir = ee_test_mkdtemp("bert-cli");
    syn_write(dir, &o);
    char a[4096];
    snprintf(a, sizeof a, "import --from '%s' --out '%s/c.gguf' --type f16", dir, dir);
    cli_expect(a, 0, "f16 weights, 37 tensors");
    snprintf(a, sizeof a, "embed --model '%s/c.gguf' --tokens 2,5,6,7,3 --json", dir);
    char cmd[8192], *out = NULL, *err_text = NULL;
    snprintf(cmd, sizeof cmd, "%s/ee-model %s", ee_test_bindir(), a);
    ck_assert_int_eq(ee_test_run(cmd, &out, &err_text), 0);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    ck_assert_msg(j != NULL, "%s: %s", je.text, out);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "embedding")), D);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "n_tokens")), 5);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "n_embd")), D);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "max_seq_length")), MAXSEQ);
    ck_assert_str_eq(json_string_value(json_object_get(j, "pooling")), "mean");
    ck_assert(json_is_true(json_object_get(j, "normalized")));
    ck_assert(json_is_string(json_object_get(j, "model")));
    ck_assert(json_is_number(json_object_get(j, "ms")));
    json_decref(j);
    free(out);
    free(err_text);

    snprintf(a, sizeof a, "embed --model '%s/c.gguf' --tokens 2,5,6,7,3 --raw --json", dir);
    cli_expect(a, 0, "\"normalized\":false");
    snprintf(a, sizeof a, "embed --model '%s/c.gguf' --tokens 2,99,3", dir);
    cli_expect(a, 1, "--tokens: token id 99 (item 1) is out of range [0, 40)");
    snprintf(a, sizeof a, "embed --model '%s/c.gguf' --tokens 2,3 --text hi", dir);
    cli_expect(a, 1, "give one of --text, --tokens and --tokens-file");
    snprintf(a, sizeof a, "embed --model '%s/c.gguf' --tokens-file /nonexistent", dir);
    cli_expect(a, 1, "--tokens-file /nonexistent");
    snprintf(a, sizeof a, "embed --model '%s/model.safetensors' --tokens 2,3", dir);
    cli_expect(a, 1, "ee-model embed: ");
    cli_expect("embed --tokens 2,3", 1, "--model is required");
    cli_expect("import --out x.gguf", 1, "--from and --out are required");
    snprintf(a, sizeof a, "import --from '%s' --out '%s/d.gguf' --type q8_0", dir, dir);
    cli_expect(a, 1, "--type: 'q8_0' is not f32 or f16");
    snprintf(a, sizeof a, "import --from '%s/1_Pooling' --out '%s/d.gguf'", dir, dir);
    cli_expect(a, 1, "config.json");
    ee_test_rmtree(dir);
    free(dir);
}
END_TEST

Suite *suite_bert(void) {
    Suite *s = suite_create("bert");
    TCase *tc = tcase_create("encoder");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, matches_numpy_f32);
    tcase_add_test(tc, matches_numpy_f16_file);
    tcase_add_test(tc, matches_numpy_bf16_source);
    tcase_add_test(tc, batched_equals_single);
    tcase_add_test(tc, gguf_metadata);
    tcase_add_test(tc, phantom_tokens);
    tcase_add_test(tc, load_errors);
    tcase_add_test(tc, embed_errors);
    tcase_add_test(tc, import_errors);
    tcase_add_test(tc, cli_contract);
    suite_add_tcase(s, tc);
    return s;
}
