/* ee-model audit: the model owner runs the strongest weight-alignment attack
 * we have against its own encrypted model, before deploying it
 * (core/ee/ee_audit.h, docs/SECURITY.md). Exit 0 whatever the attack finds;
 * 1 for bad input. */
#include "cli_args.h"
#include "cmd_common.h"
#include "cmds.h"
#include "ee_audit.h"
#include "ee_wordpiece.h"
#include "ee_clock.h"
#include "ee_compute.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *HELP_TEXT =
    "usage: ee-model audit --model ENC.gguf --public PLAIN.gguf [--tokens ENC_IDS]\n"
    "         [--json] [--key K.eekey [--plain-model SRC.gguf]] [--perturb EPS]\n"
    "         [--seed S] [--threads N]\n"
    "  Attacks ENC as a worker would that holds ENC and the public weights PLAIN\n"
    "  (no key, no traffic): recovers the residual rotation, the MLP permutations\n"
    "  and scales, the per-head maps and the vocabulary permutation from the\n"
    "  weights alone, and reports what it recovered and how long it took.\n"
    "  Run it against every public model the private one may derive from.\n"
    "  --tokens   encrypted ids to decrypt with the recovered permutation only\n"
    "  --key      also check the recovered vocabulary against the truth (the\n"
    "             key never takes part in the attack); with --plain-model, the\n"
    "             model ENC was encrypted from, if it is not PLAIN\n"
    "  --perturb  simulate a private fine-tune: add Gaussian noise of EPS x the\n"
    "             tensor's std to every public weight before attacking\n"
    "  --json     one JSON object: vocab_recovered (0..1), seconds, text, ...\n"
    "  Exit status 0 whatever the audit finds (docs/SECURITY.md: threat table).\n"
    "\n"
    "usage (image classifiers, general.architecture eecnn):\n"
    "       ee-model audit --model ENC.gguf [--public PLAIN.gguf] [--plain-model SRC.gguf]\n"
    "         --key K.eekey --test-set T.gguf [--json] [--dump-pgm DIR]\n"
    "  What a worker learns about the secret image from the encrypted stem feature\n"
    "  map a client sends (core/ee/ee_audit_cnn.h). The key and the test set only\n"
    "  make the maps (plaintext stem, then the client's cipher) and score the\n"
    "  results; the attacks get ENC, the public weights and the maps:\n"
    "    A  no public weights (private weights, or a traffic observer). From one\n"
    "       map: channel mean / max (each channel divided by its maximum), aligned\n"
    "       mean (min-max, polarity-aligned, contrast-weighted), and a blind\n"
    "       deconvolution (filters and image fitted together by alternating least\n"
    "       squares); from all the test set's maps together (one key: what a worker\n"
    "       sees over time): pooled principal component, and the deconvolution with\n"
    "       one set of filters. The verdict names the best.\n"
    "    B  with --public: the channel permutations and scales read off the block-1\n"
    "       kernels, then each image solved from the map by least squares\n"
    "  Reports per-image correlation with the true image (median, 10th percentile),\n"
    "  how often the plaintext model reads the reconstructions (vs the true images\n"
    "  and chance), for B the max abs pixel error and the permutation entries\n"
    "  recovered (checked with the key), and each attack's time.\n"
    "  --plain-model  the model ENC was encrypted from (default --public); without\n"
    "                 --public it is needed for the harness and only A runs\n"
    "  --dump-pgm     write the first 8 images, original / A / B, as 64x64 PGM files\n"
    "                 (_a: channel mean or max; _a_aligned, _a_deconv1, _a_pc,\n"
    "                 _a_deconvn; _a_best: the best A; A scaled by its maximum, B\n"
    "                 clamped to [0, 1] for display only)\n";

/* general.architecture of the --model file, if argv names one that opens. */
static bool model_is_cnn(int argc, char **argv) {
    const char *path = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) path = argv[i + 1];
        else if (strncmp(argv[i], "--model=", 8) == 0) path = argv[i] + 8;
    }
    ee_gguf *g = path ? ee_gguf_open(path, NULL) : NULL;
    const char *arch = g ? ee_gguf_get_str(g, "general.architecture", NULL) : NULL;
    bool cnn = arch && strcmp(arch, "eecnn") == 0;
    ee_gguf_close(g);
    return cnn;
}

/* A JSON number, or null for NaN (e.g. a median over no matches). */
static json_t *jnum(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static const char *verdict(double v) {
    if (v >= 0.99) return "EXPOSED: a worker holding these public weights reads every prompt and reply";
    if (v >= 0.5) return "MOSTLY EXPOSED: most token ids are readable by a worker holding these weights";
    if (v >= 0.01) return "PARTLY EXPOSED: some token ids are readable by a worker holding these weights";
    return "NOT RECOVERED by this attack (stronger attacks may exist; see docs/SECURITY.md)";
}

int cmd_audit(int argc, char **argv) {
    enum { MODEL, PUBLIC, TOKENS, JSON, KEY, PLAIN, PERTURB, SEED, THREADS, HELP, NF };
    cli_flag f[NF] = {[MODEL] = {"--model", true},     [PUBLIC] = {"--public", true},
                      [TOKENS] = {"--tokens", true},   [JSON] = {"--json", false},
                      [KEY] = {"--key", true},         [PLAIN] = {"--plain-model", true},
                      [PERTURB] = {"--perturb", true},
                      [SEED] = {"--seed", true},       [THREADS] = {"--threads", true},
                      [HELP] = {"--help", false}};
    ee_err err = {{0}};
    if (cli_wants_help(argc, argv)) {
        fputs(HELP_TEXT, stdout);
        return 0;
    }
    if (model_is_cnn(argc, argv)) return cmd_audit_cnn(argc, argv);
    if (cli_parse(argc, argv, f, NF, &err)) return cmd_fail("audit", err.msg);
    if (f[PLAIN].present && !f[KEY].present)
        return cmd_fail("audit", "--plain-model goes with --key (it only checks the result)");
    if (!f[MODEL].present || !f[PUBLIC].present)
        return cmd_fail("audit", "--model (the encrypted file) and --public (the public "
                                 "plaintext weights) are required");
    ee_audit_opts o = {0};
    long threads = 2;
    if ((f[PERTURB].present && cli_float("--perturb", f[PERTURB].value, 0, 10, &o.perturb, &err)) ||
        (f[SEED].present && cli_u64("--seed", f[SEED].value, &o.seed, &err)) ||
        (f[THREADS].present && cli_int("--threads", f[THREADS].value, 1, 256, &threads, &err)))
        return cmd_fail("audit", err.msg);
    ee_compute_set_threads((int)threads);

    cmd_model enc = {0}, pub = {0}, plain = {0};
    if (cmd_model_open(&enc, f[MODEL].value, false, &err)) {
        ee_err_wrap(&err, "--model");
        return cmd_fail("audit", err.msg);
    }
    if (cmd_model_open(&pub, f[PUBLIC].value, false, &err)) {
        ee_err_wrap(&err, "--public");
        cmd_model_close(&enc);
        return cmd_fail("audit", err.msg);
    }
    int32_t *ids = NULL;
    size_t n_ids = 0;
    char *text = NULL;
    size_t text_len = 0;
    double correct = -1, resid_correct = -1;
    ee_audit_result r = {0};
    int rc = -1;
    ee_wordpiece *wp = NULL; /* an encoder's public tokenizer */
    if (f[TOKENS].present && !pub.tok) {
        const char *tm = ee_gguf_get_str(pub.gguf, "tokenizer.ggml.model", NULL);
        if (!(tm && strcmp(tm, "bert") == 0 && ee_wordpiece_open_gguf(&wp, pub.gguf, &err) == 0)) {
            if (!wp && !(tm && strcmp(tm, "bert") == 0))
                ee_err_set(&err, "--public has no usable tokenizer to print --tokens: %.400s",
                           pub.tok_err.msg);
            goto done;
        }
    }
    if (ee_audit_run(enc.gguf, pub.gguf, &o, &r, &err)) goto done;
    if (f[TOKENS].present) {
        if (cli_token_list("--tokens", f[TOKENS].value, r.n_vocab, &ids, &n_ids, &err)) goto done;
        for (size_t i = 0; i < n_ids; i++) {
            int32_t m = r.vocab_map[ids[i]];
            ids[i] = m >= 0 ? m : 0;
        }
        if (wp ? ee_wordpiece_decode(wp, ids, n_ids, false, &text, &text_len, &err)
               : ee_tokenizer_decode_lossy(pub.tok, ids, n_ids, true, &text, &text_len, &err))
            goto done;
    }
    if (f[KEY].present) {
        ee_vocab_cipher vc = {0};
        char key_id[EE_KEY_ID_HEX];
        /* The key bound to the model the file was encrypted from: --plain-model,
         * else --public (the same weights, unless --perturb simulates others). */
        const ee_gguf *src = pub.gguf;
        if (f[PLAIN].present) {
            if (cmd_model_open(&plain, f[PLAIN].value, false, &err)) {
                ee_err_wrap(&err, "--plain-model");
                goto done;
            }
            src = plain.gguf;
        }
        if (ee_vocab_cipher_load(&vc, f[KEY].value, src, ee_model_scheme(enc.gguf),
                                 (uint32_t)r.n_vocab, key_id, &err))
            goto done;
        const char *model_id = ee_gguf_get_str(enc.gguf, "ee.key_id", NULL);
        if (!model_id || strlen(model_id) != strlen(key_id) || !ee_key_id_equal(model_id, key_id)) {
            ee_vocab_cipher_free(&vc);
            ee_err_set(&err, "--key: key id %s (bound to %s) did not encrypt this model (key id "
                             "%.64s): wrong key, or give --plain-model, the model it was "
                             "encrypted from", key_id, f[PLAIN].present ? "--plain-model" : "--public",
                       model_id ? model_id : "?");
            goto done;
        }
        long ok = 0;
        for (int e = 0; e < r.n_vocab; e++) ok += r.vocab_map[e] == (int32_t)vc.inv[e];
        correct = (double)ok / r.n_vocab;
        ee_vocab_cipher_free(&vc);
        if (r.resid_map) { /* an encoder: check the residual permutation too */
            ee_key k, sk;
            ee_vec_cipher ec = {0};
            if (ee_key_load(&k, f[KEY].value, &err)) goto done;
            int krc = ee_scheme_key(&k, src, ee_model_scheme(enc.gguf), &sk, &err);
            ee_key_wipe(&k);
            if (krc == 0) krc = ee_vec_cipher_init(&ec, &sk, r.n_embd, &err);
            ee_key_wipe(&sk);
            if (krc) goto done;
            long okr = 0; /* enc coordinate j holds plaintext coordinate rp[j] */
            for (int j = 0; j < r.n_embd; j++) okr += r.resid_map[j] == (int32_t)ec.rp[j];
            resid_correct = (double)okr / r.n_embd;
            ee_vec_cipher_free(&ec);
        }
    }
    if (f[JSON].present) {
        json_t *j = json_object();
        json_object_set_new(j, "adversary", json_string("worker holding the encrypted model and "
                                                        "the public weights; no key, no traffic"));
        json_object_set_new(j, "model", json_string(f[MODEL].value));
        json_object_set_new(j, "public", json_string(f[PUBLIC].value));
        json_object_set_new(j, "perturb", jnum(o.perturb));
        json_object_set_new(j, "vocab_recovered", jnum(r.vocab_recovered));
        if (correct >= 0) json_object_set_new(j, "vocab_correct", jnum(correct));
        if (r.resid_map)
            json_object_set_new(j, "residual_perm_recovered", jnum(r.resid_perm_recovered));
        if (resid_correct >= 0) json_object_set_new(j, "residual_perm_correct", jnum(resid_correct));
        json_object_set_new(j, "rotation_residual_layer0", jnum(r.rot_residual0));
        json_object_set_new(j, "rotation_residual", jnum(r.rot_residual));
        json_object_set_new(j, "rotation_start", json_string(r.rot_start ? r.rot_start : "?"));
        json_object_set_new(j, "refinement_rounds", json_integer(r.rounds));
        json_object_set_new(j, "mlp_perm_recovered", jnum(r.mlp_perm_recovered));
        json_object_set_new(j, "mlp_layers_full", json_integer(r.mlp_layers_full));
        json_object_set_new(j, "mlp_scale_spread", jnum(r.mlp_scale_spread));
        json_object_set_new(j, "heads_q_recovered", jnum(r.heads_q));
        json_object_set_new(j, "heads_k_recovered", jnum(r.heads_k));
        json_object_set_new(j, "heads_v_recovered", jnum(r.heads_v));
        json_object_set_new(j, "head_map_residual", jnum(r.head_residual));
        json_object_set_new(j, "seconds", jnum(r.seconds));
        json_object_set_new(j, "seconds_rotation", jnum(r.seconds_rotation));
        json_object_set_new(j, "seconds_vocab", jnum(r.seconds_vocab));
        json_object_set_new(j, "seconds_heads", jnum(r.seconds_heads));
        json_object_set_new(j, "threads", json_integer(threads));
        if (text) json_object_set_new(j, "text", json_stringn(text, text_len));
        json_object_set_new(j, "verdict", json_string(verdict(r.vocab_recovered)));
        char *s = json_dumps(j, JSON_COMPACT);
        if (s) puts(s);
        free(s);
        json_decref(j);
    } else {
        printf("audit of %s against public weights %s%s\n", f[MODEL].value, f[PUBLIC].value,
               o.perturb > 0 ? " (perturbed: simulated private fine-tune)" : "");
        if (o.perturb > 0) printf("  perturbation     eps %.3g x each tensor's std\n", o.perturb);
        printf("  adversary        a worker holding the encrypted model and these public\n"
               "                   weights; no key, no traffic\n");
        printf("  vocabulary       %.2f%% of %d token ids recovered unambiguously", 100 * r.vocab_recovered,
               r.n_vocab);
        if (correct >= 0) printf(" (checked with --key: %.2f%% correct)", 100 * correct);
        if (r.resid_map)
            printf("\n  residual perm.   %.2f%% of %d coordinates recovered unambiguously (an encoder's\n"
                   "                   stream can only be permuted: its embeddings are readable)\n",
                   100 * r.resid_perm_recovered, r.n_embd);
        else
            printf("\n  residual rotation relative residual %.2g over all matched MLP vectors (start: %s,\n"
                   "                   %d refinement rounds)\n",
                   r.rot_residual, r.rot_start ? r.rot_start : "?", r.rounds);
        printf("  MLP permutations %.2f%% of channels, %d of %d layers complete; scales agree to %.2g\n",
               100 * r.mlp_perm_recovered, r.mlp_layers_full, r.n_layer, r.mlp_scale_spread);
        printf("  per-head maps    q %.0f%%, k %.0f%%, v %.0f%% of heads (median residual %.2g)\n",
               100 * r.heads_q, 100 * r.heads_k, 100 * r.heads_v, r.head_residual);
        printf("  time             %.1f s (rotation %.1f, vocabulary %.1f, heads %.1f; %ld threads)\n",
               r.seconds, r.seconds_rotation, r.seconds_vocab, r.seconds_heads, threads);
        if (text) printf("  decrypted tokens %s\n", text);
        printf("  verdict          %s\n", verdict(r.vocab_recovered));
    }
    rc = 0;
done:
    free(ids);
    free(text);
    ee_audit_result_free(&r);
    ee_wordpiece_close(wp);
    cmd_model_close(&enc);
    cmd_model_close(&pub);
    cmd_model_close(&plain);
    return rc ? cmd_fail("audit", err.msg) : 0;
}
