#include "ee_testmodel.h"

#include "ee_gguf.h"
#include "ee_quant.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

ee_testmodel_cfg ee_testmodel_default(void) {
    return (ee_testmodel_cfg){.n_embd = 64, .n_layer = 2, .n_head = 4, .n_head_kv = 2,
                              .n_ff = 128, .n_ctx = 256, .rope_theta = 10000.0f,
                              .norm_eps = 1e-5f, .wtype = EE_DT_F32, .tied = true,
                              .seed = 1};
}

uint64_t ee_test_splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [-a, a). */
static float rng_uniform(uint64_t *s, float a) {
    return ((ee_test_splitmix64(s) >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f) * a;
}

static int add_weight(ee_gguf_writer *w, const char *name, int cols, int rows, ee_dtype t,
                      float scale, uint64_t *rng, ee_err *err) {
    size_t n = (size_t)cols * rows;
    float *v = malloc(n * sizeof(float));
    size_t rb = ee_dtype_row_bytes(t, (uint64_t)cols);
    uint8_t *q = malloc(rb * rows);
    if (!v || !q) {
        free(v);
        free(q);
        return ee_err_set(err, "oom");
    }
    for (size_t i = 0; i < n; i++) v[i] = rng_uniform(rng, scale);
    int rc = 0;
    for (int r = 0; r < rows && rc == 0; r++)
        rc = ee_quantize_row(t, v + (size_t)r * cols, q + (size_t)r * rb, (uint64_t)cols, err);
    uint64_t ne[2] = {(uint64_t)cols, (uint64_t)rows};
    if (rc == 0) rc = ee_gguf_writer_add_tensor(w, name, rows == 1 ? 1 : 2, ne, t, q, true, err);
    free(v);
    free(q);
    return rc;
}

static int add_gain(ee_gguf_writer *w, const char *name, int n, uint64_t *rng, ee_err *err) {
    float *v = malloc((size_t)n * sizeof(float));
    if (!v) return ee_err_set(err, "oom");
    for (int i = 0; i < n; i++) v[i] = 1.0f + rng_uniform(rng, 0.5f);
    uint64_t ne[1] = {(uint64_t)n};
    int rc = ee_gguf_writer_add_tensor(w, name, 1, ne, EE_DT_F32, v, true, err);
    free(v);
    return rc;
}

static bool byte_is_printable(unsigned b) {
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
}

void ee_test_byte_token(unsigned b, char out[3]) {
    unsigned cp = b;
    if (!byte_is_printable(b)) {
        cp = 256;
        for (unsigned x = 0; x < b; x++) cp += !byte_is_printable(x);
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

int ee_testmodel_write(const char *path, const ee_testmodel_cfg *c, ee_err *err) {
    ee_gguf_writer *w = ee_gguf_writer_new(err);
    if (!w) return -1;
    uint64_t rng = c->seed * 0x2545F4914F6CDD1DULL + 7;
    const int d = c->n_embd, hd = d / c->n_head, qd = d, kvd = c->n_head_kv * hd;
    int rc = 0;
    char *toks[EE_TESTMODEL_VOCAB];
    static char bytes[256][4];
    for (int b = 0; b < 256; b++) {
        ee_test_byte_token((unsigned)b, bytes[b]);
        toks[b] = bytes[b];
    }
    /* "Ġ" is U+0120 = bytes_to_unicode(' '). */
    const char *extra[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "\xc4\xa0t", "he",
                           "\xc4\xa0the", "in", "\xc4\xa0in"};
    for (int i = 0; i < 8; i++) toks[256 + i] = (char *)extra[i];
    int32_t types[EE_TESTMODEL_VOCAB];
    for (int i = 0; i < EE_TESTMODEL_VOCAB; i++) types[i] = (i >= 256 && i <= 258) ? 3 : 1;
    const char *merges[] = {"\xc4\xa0 t", "h e", "\xc4\xa0t he", "i n", "\xc4\xa0 in"};
    const char *tmpl =
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
        "{{ '<|im_start|>system\nYou are a test model<|im_end|>\n' }}{% endif %}"
        "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    rc = rc || ee_gguf_writer_set_str(w, "general.architecture", "llama", err);
    rc = rc || ee_gguf_writer_set_str(w, "general.name", "eeinfer synthetic test model", err);
    rc = rc || ee_gguf_writer_set_u32(w, "llama.block_count", (uint32_t)c->n_layer, err);
    rc = rc || ee_gguf_writer_set_u32(w, "llama.context_length", (uint32_t)c->n_ctx, err);
    rc = rc || ee_gguf_writer_set_u32(w, "llama.embedding_length", (uint32_t)d, err);
    rc = rc || ee_gguf_writer_set_u32(w, "llama.feed_forward_length", (uint32_t)c->n_ff, err);
    rc = rc || ee_gguf_writer_set_u32(w, "llama.attention.head_count", (uint32_t)c->n_head, err);
    rc = rc || ee_gguf_writer_set_u32(w, "llama.attention.head_count_kv", (uint32_t)c->n_head_kv, err);
    rc = rc || ee_gguf_writer_set_f32(w, "llama.rope.freq_base", c->rope_theta, err);
    rc = rc || ee_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", c->norm_eps, err);
    rc = rc || ee_gguf_writer_set_u32(w, "llama.rope.dimension_count", (uint32_t)hd, err);
    rc = rc || ee_gguf_writer_set_u32(w, "llama.vocab_size", EE_TESTMODEL_VOCAB, err);
    rc = rc || ee_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2", err);
    rc = rc || ee_gguf_writer_set_str(w, "tokenizer.ggml.pre", "smollm", err);
    rc = rc || ee_gguf_writer_set_str_arr(w, "tokenizer.ggml.tokens", (const char *const *)toks,
                                          EE_TESTMODEL_VOCAB, err);
    rc = rc || ee_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", EE_GGUF_I32, types,
                                      EE_TESTMODEL_VOCAB, err);
    rc = rc || ee_gguf_writer_set_str_arr(w, "tokenizer.ggml.merges", merges, 5, err);
    rc = rc || ee_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 257, err);
    rc = rc || ee_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 258, err);
    rc = rc || ee_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", false, err);
    rc = rc || ee_gguf_writer_set_str(w, "tokenizer.chat_template", tmpl, err);

    /* Scales keep activations O(1) through the tiny random network. */
    rc = rc || add_weight(w, "token_embd.weight", d, EE_TESTMODEL_VOCAB, c->wtype, 1.0f, &rng, err);
    char name[64];
    for (int l = 0; l < c->n_layer && !rc; l++) {
#define W(suffix, cols, rows, scale)                                        \
    snprintf(name, sizeof name, "blk.%d.%s.weight", l, suffix);             \
    rc = rc || add_weight(w, name, cols, rows, c->wtype, scale, &rng, err);
#define G(suffix)                                                           \
    snprintf(name, sizeof name, "blk.%d.%s.weight", l, suffix);             \
    rc = rc || add_gain(w, name, d, &rng, err);
        G("attn_norm");
        W("attn_q", d, qd, 0.3f);
        W("attn_k", d, kvd, 0.3f);
        W("attn_v", d, kvd, 0.3f);
        W("attn_output", qd, d, 0.2f);
        G("ffn_norm");
        W("ffn_gate", d, c->n_ff, 0.2f);
        W("ffn_up", d, c->n_ff, 0.2f);
        W("ffn_down", c->n_ff, d, 0.2f);
#undef W
#undef G
    }
    rc = rc || add_gain(w, "output_norm.weight", d, &rng, err);
    if (!c->tied)
        rc = rc || add_weight(w, "output.weight", d, EE_TESTMODEL_VOCAB, c->wtype, 0.5f, &rng, err);
    if (!rc) rc = ee_gguf_writer_write(w, path, err);
    ee_gguf_writer_free(w);
    return rc ? -1 : 0;
}

char *ee_test_tmpfile(const char *suffix) {
    const char *dir = getenv("TMPDIR");
    if (!dir) dir = "/tmp";
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/eetest-XXXXXX%s", dir, suffix ? suffix : "");
    int fd = mkstemps(tmpl, suffix ? (int)strlen(suffix) : 0);
    if (fd < 0) return NULL;
    close(fd);
    return strdup(tmpl);
}

char *ee_test_mkdtemp(const char *tag) {
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/ee-test-%s-XXXXXX", dir, tag);
    ck_assert_msg(mkdtemp(tmpl) != NULL, "mkdtemp: %s", strerror(errno));
    char *p = strdup(tmpl);
    ck_assert_ptr_nonnull(p);
    return p;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

void ee_test_rmtree(const char *dir) {
    if (dir && *dir) nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}

void ee_test_write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "fopen %s: %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

const char *ee_test_python(void) {
    const char *p = getenv("EE_PY");
    return p && *p ? p : ".cache/venv/bin/python";
}

const char *ee_test_bindir(void) {
    const char *p = getenv("EE_BIN");
    return p ? p : "build/bin";
}

const char *ee_test_model_path(void) {
    const char *p = getenv("EE_MODEL");
    return p && *p ? p : ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

const char *ee_test_refdir(void) {
    const char *p = getenv("EE_REF");
    return p && *p ? p : "build/ref";
}

static char *slurp_fd(FILE *f) {
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    if (!b) return NULL;
    size_t r;
    while ((r = fread(b + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n - 1 == 0) {
            cap *= 2;
            char *nb = realloc(b, cap);
            if (!nb) break;
            b = nb;
        }
    }
    b[n] = 0;
    return b;
}

int ee_test_run(const char *cmd, char **out, char **err_out) {
    char *errfile = ee_test_tmpfile(".err");
    if (!errfile) return -1;
    size_t len = strlen(cmd) + strlen(errfile) + 16;
    char *full = malloc(len);
    snprintf(full, len, "%s 2>%s", cmd, errfile);
    FILE *p = popen(full, "r");
    free(full);
    if (!p) {
        unlink(errfile);
        free(errfile);
        return -1;
    }
    char *o = slurp_fd(p);
    int st = pclose(p);
    if (out) *out = o;
    else free(o);
    if (err_out) {
        FILE *e = fopen(errfile, "r");
        *err_out = e ? slurp_fd(e) : strdup("");
        if (e) fclose(e);
    }
    unlink(errfile);
    free(errfile);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int ee_test_python_script(const char *dir, const char *script, const char *args, char *cmd,
                          size_t cmd_cap) {
    char path[1024];
    snprintf(path, sizeof path, "%s/oracle.py", dir);
    snprintf(cmd, cmd_cap, "'%s' '%s' %s", ee_test_python(), path, args);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    size_t n = strlen(script);
    bool ok = fwrite(script, 1, n, f) == n;
    if (fclose(f) != 0 || !ok) return -1;
    return system(cmd);
}

void ee_test_llama_open(ee_test_llama *f, const ee_testmodel_cfg *cfg, bool stored_weights) {
    ee_err err = {{0}};
    f->path = ee_test_tmpfile(".gguf");
    ck_assert_ptr_nonnull(f->path);
    ck_assert_msg(ee_testmodel_write(f->path, cfg, &err) == 0, "%s", err.msg);
    f->g = ee_gguf_open(f->path, &err);
    ck_assert_msg(f->g != NULL, "%s", err.msg);
    ee_llama_load_opts o = {.f32_weights = !stored_weights};
    f->m = ee_llama_load(f->g, &o, &err);
    ck_assert_msg(f->m != NULL, "%s", err.msg);
    f->ctx = ee_llama_ctx_new(f->m, &err);
    ck_assert_msg(f->ctx != NULL, "%s", err.msg);
}

void ee_test_llama_close(ee_test_llama *f) {
    ee_llama_ctx_free(f->ctx);
    ee_llama_free(f->m);
    ee_gguf_close(f->g);
    unlink(f->path);
    free(f->path);
}

char *ee_test_gguf_rewrite(const char *src, const char *arch, const char *drop) {
    ee_err err = {{0}};
    ee_gguf *g = ee_gguf_open(src, &err);
    ck_assert_msg(g != NULL, "%s", err.msg);
    ee_gguf_writer *w = ee_gguf_writer_new(&err);
    ck_assert_msg(w != NULL, "%s", err.msg);
    for (uint64_t i = 0; i < ee_gguf_n_kv(g); i++)
        ck_assert_int_eq(ee_gguf_writer_copy_kv(w, ee_gguf_kv_at(g, i), &err), 0);
    if (arch) ck_assert_int_eq(ee_gguf_writer_set_str(w, "general.architecture", arch, &err), 0);
    for (uint64_t i = 0; i < ee_gguf_n_tensors(g); i++) {
        const ee_gguf_tensor *t = ee_gguf_tensor_at(g, i);
        if (drop && strcmp(t->name, drop) == 0) continue;
        ck_assert_int_eq(
            ee_gguf_writer_add_tensor(w, t->name, t->n_dims, t->ne, t->type, t->data, true, &err), 0);
    }
    char *out = ee_test_tmpfile(".gguf");
    ck_assert_msg(ee_gguf_writer_write(w, out, &err) == 0, "%s", err.msg);
    ee_gguf_writer_free(w);
    ee_gguf_close(g);
    return out;
}
