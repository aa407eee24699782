/* Served models: encrypted GGUF files only. The worker never has a key; it
 * learns the key id and the encrypted stop ids from the file and refuses a
 * plaintext model (serving one would mean handling plaintext prompts). */
#include "svc_models.h"

#include "svc_log.h"

#include "ee_clock.h"
#include "ee_scheme.h"

#include <stdlib.h>
#include <stdint.h>
#include <string.h>

int svc_models_open(svc *s, ee_err *err) {
    const ee_config *c = s->cfg;
    s->models = calloc(c->n_models, sizeof *s->models);
    if (!s->models) return ee_err_set(err, "out of memory");
    s->n_models = (int)c->n_models;
    for (int i = 0; i < s->n_models; i++) {
        svc_model *sm = &s->models[i];
        sm->name = c->models[i].name;
        sm->path = c->models[i].path;
        double t0 = ee_now_ms();
        sm->gguf = ee_gguf_open(sm->path, err);
        if (!sm->gguf) return ee_err_wrap(err, "model %s", sm->name);
        if (!ee_model_is_encrypted(sm->gguf))
            return ee_err_set(err,
                              "model %s: %s is not an encrypted model (the worker serves only "
                              "models made by `ee-model encrypt`; it never sees plaintext)",
                              sm->name, sm->path);
        const ee_scheme_info *si = ee_scheme_find(ee_model_scheme(sm->gguf));
        if (!si)
            return ee_err_set(err, "model %s: %s uses encryption scheme '%.64s', which this worker "
                                   "does not know (known: %s, %s, %s, legacy %s)", sm->name,
                              sm->path, ee_model_scheme(sm->gguf), EE_SCHEME_ID, EE_SCHEME_BERT,
                              EE_SCHEME_CNN, EE_SCHEME_LEGACY_V1);
        const char *kid = ee_gguf_get_str(sm->gguf, "ee.key_id", NULL);
        if (!kid || !ee_proto_valid_key_id(kid))
            return ee_err_set(err, "model %s: %s has no valid ee.key_id", sm->name, sm->path);
        memcpy(sm->key_id, kid, EE_PROTO_KEY_ID_LEN + 1);
        const ee_arch_info *ai = ee_arch_find(ee_gguf_get_str(sm->gguf, "general.architecture", NULL));
        if (!ai)
            return ee_err_set(err, "model %s: %s has an architecture this worker does not run",
                              sm->name, sm->path);
        sm->kind = ai->kind;
        if (sm->kind == EE_KIND_ENCODER) {
            sm->enc = ee_bert_load(sm->gguf, NULL, err);
            if (!sm->enc) return ee_err_wrap(err, "model %s: %s", sm->name, sm->path);
            sm->limits = ee_config_limits(c, (uint32_t)sm->enc->hp.n_vocab);
            json_t *f = json_object();
            json_object_set_new(f, "model", json_string(sm->name));
            json_object_set_new(f, "path", json_string(sm->path));
            json_object_set_new(f, "key_id", json_string(sm->key_id));
            json_object_set_new(f, "scheme", json_string(si->id));
            json_object_set_new(f, "kind", json_string("encoder"));
            json_object_set_new(f, "n_embd", json_integer(sm->enc->hp.n_embd));
            json_object_set_new(f, "max_seq_length", json_integer(sm->enc->hp.max_seq));
            json_object_set_new(f, "load_ms", json_real(ee_now_ms() - t0));
            svc_log("info", "model_loaded", f);
            continue;
        }
        if (sm->kind == EE_KIND_CLASSIFIER) {
            sm->cnn = ee_cnn_load(sm->gguf, err);
            if (!sm->cnn) return ee_err_wrap(err, "model %s: %s", sm->name, sm->path);
            if (sm->cnn->hp.client_blocks != 1)
                return ee_err_set(err, "model %s: %s holds its stem (eecnn.client_blocks %d); "
                                       "the worker serves files whose stem the client runs",
                                  sm->name, sm->path, sm->cnn->hp.client_blocks);
            /* A classifier reads no token ids: any id passes the parse, so a
             * generate job sent here is refused as unsupported_task (what
             * it is), not as bad_token. */
            sm->limits = ee_config_limits(c, INT32_MAX);
            json_t *f = json_object();
            json_object_set_new(f, "model", json_string(sm->name));
            json_object_set_new(f, "path", json_string(sm->path));
            json_object_set_new(f, "key_id", json_string(sm->key_id));
            json_object_set_new(f, "scheme", json_string(si->id));
            json_object_set_new(f, "kind", json_string("classifier"));
            json_object_set_new(f, "fmap", json_pack("[iii]", ee_cnn_fmap_channels(sm->cnn),
                                                     sm->cnn->hp.in_h, sm->cnn->hp.in_w));
            json_object_set_new(f, "classes", json_integer(sm->cnn->hp.n_class));
            json_object_set_new(f, "load_ms", json_real(ee_now_ms() - t0));
            svc_log("info", "model_loaded", f);
            continue;
        }
        sm->n_stop = ee_model_stop_ids(sm->gguf, sm->stop, 16, err);
        if (sm->n_stop < 0) return ee_err_wrap(err, "model %s", sm->name);
        if (sm->n_stop > 16) sm->n_stop = 16;
        sm->m = ee_llama_load(sm->gguf, NULL, err);
        if (!sm->m) return ee_err_wrap(err, "model %s: %s", sm->name, sm->path);
        sm->ctx = ee_llama_ctx_new(sm->m, err);
        if (!sm->ctx) return ee_err_wrap(err, "model %s", sm->name);
        sm->limits = ee_config_limits(c, (uint32_t)sm->m->hp.n_vocab);
        /* A job must fit the context: cap the limits by it. */
        uint32_t ctxn = (uint32_t)sm->m->hp.n_ctx_train;
        if (sm->limits.max_prompt_tokens >= ctxn) sm->limits.max_prompt_tokens = ctxn - 1;
        if (sm->limits.max_new_tokens >= ctxn) sm->limits.max_new_tokens = ctxn - 1;
        json_t *f = json_object();
        json_object_set_new(f, "model", json_string(sm->name));
        json_object_set_new(f, "path", json_string(sm->path));
        json_object_set_new(f, "key_id", json_string(sm->key_id));
        json_object_set_new(f, "scheme", json_string(si->id));
        if (si->legacy) /* clients must pass --scheme ee-llama-v1 */
            json_object_set_new(f, "warning", json_string("legacy scheme: key not bound to the "
                                                          "model; re-encrypt with ee-model encrypt"));
        json_object_set_new(f, "n_vocab", json_integer(sm->m->hp.n_vocab));
        json_object_set_new(f, "n_ctx", json_integer(sm->m->hp.n_ctx_train));
        json_object_set_new(f, "load_ms", json_real(ee_now_ms() - t0));
        svc_log("info", "model_loaded", f);
    }
    return 0;
}

void svc_models_close(svc *s) {
    for (int i = 0; i < s->n_models; i++) {
        svc_model *sm = &s->models[i];
        ee_batch_free(sm->batch);
        ee_bert_free(sm->enc);
        ee_cnn_free(sm->cnn);
        ee_llama_ctx_free(sm->ctx);
        ee_llama_free(sm->m);
        ee_gguf_close(sm->gguf);
    }
    free(s->models);
    s->models = NULL;
    s->n_models = 0;
}
