/* ee-model info: architecture, shapes, tensor types, tokenizer facts. */
#include "cli_args.h"
#include "cmd_common.h"
#include "cmds.h"
#include "ee_scheme.h"
#include "ee_arch.h"
#include "ee_bert.h"
#include "ee_cnn.h"
#include "ee_llama.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- hyperparameters, one reader per architecture ---- */

static json_t *llama_hparams(const ee_gguf *g, ee_err *err) {
    ee_llama_hparams hp;
    if (ee_llama_read_hparams(g, &hp, err)) return NULL;
    json_t *h = json_object();
    json_object_set_new(h, "n_vocab", json_integer(hp.n_vocab));
    json_object_set_new(h, "n_embd", json_integer(hp.n_embd));
    json_object_set_new(h, "n_layer", json_integer(hp.n_layer));
    json_object_set_new(h, "n_head", json_integer(hp.n_head));
    json_object_set_new(h, "n_head_kv", json_integer(hp.n_head_kv));
    json_object_set_new(h, "head_dim", json_integer(hp.head_dim));
    json_object_set_new(h, "n_rot", json_integer(hp.n_rot));
    json_object_set_new(h, "n_ff", json_integer(hp.n_ff));
    json_object_set_new(h, "n_ctx_train", json_integer(hp.n_ctx_train));
    json_object_set_new(h, "rope_theta", json_real(hp.rope_theta));
    json_object_set_new(h, "norm_eps", json_real(hp.norm_eps));
    json_object_set_new(h, "tied_embeddings", json_boolean(!ee_gguf_find_tensor(g, "output.weight")));
    return h;
}

static json_t *bert_hparams(const ee_gguf *g, ee_err *err) {
    ee_bert_hparams hp;
    if (ee_bert_read_hparams(g, &hp, err)) return NULL;
    json_t *h = json_object();
    json_object_set_new(h, "n_vocab", json_integer(hp.n_vocab));
    json_object_set_new(h, "n_embd", json_integer(hp.n_embd));
    json_object_set_new(h, "n_layer", json_integer(hp.n_layer));
    json_object_set_new(h, "n_head", json_integer(hp.n_head));
    json_object_set_new(h, "head_dim", json_integer(hp.head_dim));
    json_object_set_new(h, "n_ff", json_integer(hp.n_ff));
    json_object_set_new(h, "n_pos", json_integer(hp.n_pos));
    json_object_set_new(h, "n_types", json_integer(hp.n_types));
    json_object_set_new(h, "max_seq", json_integer(hp.max_seq));
    json_object_set_new(h, "norm_eps", json_real(hp.norm_eps));
    json_object_set_new(h, "normalize", json_boolean(hp.normalize));
    return h;
}

static json_t *cnn_hparams(const ee_gguf *g, ee_err *err) {
    ee_cnn_model *m = ee_cnn_load(g, err); /* the shapes are checked at load */
    if (!m) return NULL;
    json_t *h = json_object(), *blocks = json_array();
    json_object_set_new(h, "image", json_pack("[iii]", m->hp.in_c, m->hp.in_h, m->hp.in_w));
    json_object_set_new(h, "pool_size", json_integer(m->hp.pool));
    json_object_set_new(h, "n_class", json_integer(m->hp.n_class));
    json_object_set_new(h, "client_blocks", json_integer(m->hp.client_blocks));
    for (int l = 0; l < m->hp.n_block; l++) {
        const ee_cnn_block *b = &m->blocks[l];
        json_t *e = json_pack("{s:i,s:i,s:i,s:[ii]}", "c_in", b->c_in, "c_out", b->c_out,
                              "kernel", b->k, "input", b->h, b->w);
        if (l < m->hp.client_blocks) json_object_set_new(e, "runs_at", json_string("client"));
        json_array_append_new(blocks, e);
    }
    json_object_set_new(h, "blocks", blocks);
    json_object_set_new(h, "n_feat", json_integer(m->n_feat));
    ee_cnn_free(m);
    return h;
}

static json_t *hparams_json(const ee_gguf *g, ee_err *err) {
    static const struct {
        ee_arch arch;
        json_t *(*read)(const ee_gguf *, ee_err *);
    } READERS[] = {{EE_ARCH_LLAMA, llama_hparams}, {EE_ARCH_BERT, bert_hparams}, {EE_ARCH_CNN, cnn_hparams}};
    const char *name = ee_gguf_get_str(g, "general.architecture", NULL);
    const ee_arch_info *ai = ee_arch_find(name);
    for (size_t i = 0; ai && i < sizeof READERS / sizeof READERS[0]; i++)
        if (READERS[i].arch == ai->arch) return READERS[i].read(g, err);
    ee_err_set(err, "unsupported architecture '%.64s'", name ? name : "(missing)");
    return NULL;
}

int cmd_info(int argc, char **argv) {
    cli_flag f[] = {{"--model", true}, {"--tensors", false}, {"--json", false},
                    {"--help", false}};
    const size_t nf = sizeof f / sizeof f[0];
    ee_err err = {{0}};
    if (cli_parse(argc, argv, f, nf, &err)) return cmd_fail("info", err.msg);
    if (f[3].present) {
        printf("usage: ee-model info --model M.gguf [--tensors] [--json]\n");
        return 0;
    }
    if (!f[0].present) return cmd_fail("info", "--model is required");
    cmd_model cm;
    if (cmd_model_open(&cm, f[0].value, false, &err)) return cmd_fail("info", err.msg);

    ee_err hp_err = {{0}};
    json_t *hparams = hparams_json(cm.gguf, &hp_err);
    uint64_t n_t = ee_gguf_n_tensors(cm.gguf), n_params = 0;
    uint64_t type_count[64] = {0};
    for (uint64_t i = 0; i < n_t; i++) {
        const ee_gguf_tensor *t = ee_gguf_tensor_at(cm.gguf, i);
        n_params += ee_gguf_tensor_nelements(t);
        if ((unsigned)t->type < 64) type_count[t->type]++;
    }
    const ee_gguf_kv *arch = ee_gguf_find_kv(cm.gguf, "general.architecture");
    const ee_gguf_kv *name = ee_gguf_find_kv(cm.gguf, "general.name");
    const ee_gguf_kv *scheme = ee_gguf_find_kv(cm.gguf, "ee.scheme");

    json_t *o = json_object();
    json_object_set_new(o, "file", json_string(f[0].value));
    json_object_set_new(o, "gguf_version", json_integer(ee_gguf_version(cm.gguf)));
    json_object_set_new(o, "file_bytes", json_integer((json_int_t)ee_gguf_file_size(cm.gguf)));
    json_object_set_new(o, "architecture",
                        arch && arch->type == EE_GGUF_STRING ? json_string(arch->str) : json_null());
    json_object_set_new(o, "name",
                        name && name->type == EE_GGUF_STRING ? json_string(name->str) : json_null());
    json_object_set_new(o, "encrypted", json_boolean(scheme != NULL));
    if (scheme) { /* public: what clients put in requests' key_id */
        const ee_gguf_kv *kid = ee_gguf_find_kv(cm.gguf, "ee.key_id");
        if (kid && kid->type == EE_GGUF_STRING) json_object_set_new(o, "key_id", json_string(kid->str));
        if (scheme->type == EE_GGUF_STRING) {
            json_object_set_new(o, "scheme", json_string(scheme->str));
            const ee_scheme_info *si = ee_scheme_find(scheme->str);
            json_object_set_new(o, "scheme_status", json_string(!si ? "unknown" : si->legacy
                                    ? "legacy (key not bound to the model)" : "current"));
        }
        /* Encrypted end-of-generation ids: metadata every worker reads. */
        int32_t stop[16];
        int n = ee_model_stop_ids(cm.gguf, stop, 16, NULL);
        if (n > 0) {
            json_t *a = json_array();
            for (int i = 0; i < n && i < 16; i++) json_array_append_new(a, json_integer(stop[i]));
            json_object_set_new(o, "stop_ids", a);
        }
    }
    json_object_set_new(o, "n_tensors", json_integer((json_int_t)n_t));
    json_object_set_new(o, "n_params", json_integer((json_int_t)n_params));
    json_t *types = json_object();
    for (int i = 0; i < 64; i++) {
        const ee_dtype_info *di = ee_dtype_get((uint32_t)i);
        if (type_count[i] && di) json_object_set_new(types, di->name, json_integer((json_int_t)type_count[i]));
    }
    json_object_set_new(o, "tensor_types", types);
    if (hparams)
        json_object_set_new(o, "hparams", hparams);
    else
        json_object_set_new(o, "hparams_error", json_string(hp_err.msg));
    if (cm.tok) {
        json_t *t = json_object();
        const ee_gguf_kv *m = ee_gguf_find_kv(cm.gguf, "tokenizer.ggml.model");
        const ee_gguf_kv *pre = ee_gguf_find_kv(cm.gguf, "tokenizer.ggml.pre");
        json_object_set_new(t, "model", m && m->type == EE_GGUF_STRING ? json_string(m->str) : json_null());
        json_object_set_new(t, "pre", pre && pre->type == EE_GGUF_STRING ? json_string(pre->str) : json_null());
        json_object_set_new(t, "n_vocab", json_integer(ee_tokenizer_n_vocab(cm.tok)));
        json_object_set_new(t, "bos", json_integer(ee_tokenizer_bos(cm.tok)));
        json_object_set_new(t, "eos", json_integer(ee_tokenizer_eos(cm.tok)));
        json_object_set_new(t, "add_bos", json_boolean(ee_tokenizer_add_bos(cm.tok)));
        int32_t eog[16];
        int ne = ee_tokenizer_eog_ids(cm.tok, eog, 16);
        json_t *ea = json_array();
        for (int i = 0; i < ne && i < 16; i++) json_array_append_new(ea, json_integer(eog[i]));
        json_object_set_new(t, "eog_ids", ea);
        json_object_set_new(t, "chat_template",
                            json_boolean(ee_gguf_find_kv(cm.gguf, "tokenizer.chat_template") != NULL));
        json_object_set_new(o, "tokenizer", t);
    } else if (!ee_gguf_find_kv(cm.gguf, "eecnn.class_count")) { /* classifiers have none */
        json_object_set_new(o, "tokenizer_error", json_string(cm.tok_err.msg));
    }
    if (f[1].present) {
        json_t *ta = json_array();
        for (uint64_t i = 0; i < n_t; i++) {
            const ee_gguf_tensor *t = ee_gguf_tensor_at(cm.gguf, i);
            json_t *e = json_object(), *shape = json_array();
            for (uint32_t d = 0; d < t->n_dims; d++) json_array_append_new(shape, json_integer((json_int_t)t->ne[d]));
            json_object_set_new(e, "name", json_string(t->name));
            json_object_set_new(e, "shape", shape);
            json_object_set_new(e, "type", json_string(ee_dtype_get(t->type)->name));
            json_object_set_new(e, "bytes", json_integer((json_int_t)t->nbytes));
            json_array_append_new(ta, e);
        }
        json_object_set_new(o, "tensors", ta);
    }

    if (f[2].present) {
        char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        puts(s);
        free(s);
    } else {
        /* Human-readable rendering of the same facts. */
        const char *key;
        json_t *v;
        json_object_foreach(o, key, v) {
            if (json_is_object(v)) {
                printf("%s:\n", key);
                const char *k2;
                json_t *v2;
                json_object_foreach(v, k2, v2) {
                    char *s = json_dumps(v2, JSON_ENCODE_ANY | JSON_COMPACT);
                    printf("  %-16s %s\n", k2, s);
                    free(s);
                }
            } else if (json_is_array(v) && !strcmp(key, "tensors")) {
                printf("tensors:\n");
                size_t i;
                json_t *e;
                json_array_foreach(v, i, e) {
                    char *shape = json_dumps(json_object_get(e, "shape"), JSON_COMPACT);
                    printf("  %-32s %-6s %s\n", json_string_value(json_object_get(e, "name")),
                           json_string_value(json_object_get(e, "type")), shape);
                    free(shape);
                }
            } else {
                char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
                printf("%-18s %s\n", key, s);
                free(s);
            }
        }
    }
    json_decref(o);
    cmd_model_close(&cm);
    return 0;
}
