/* ee-producer classify: images classified blind (docs/VISION.md).
 *
 * For each image: decoded and resized here (stb_image), the stem of the
 * PLAINTEXT classifier run here, its feature map encrypted with the key
 * (ee_cnn_cipher) and sent as a classify job; a worker runs the encrypted
 * rest of the network and returns encrypted class scores, decrypted here.
 * The image and the stem never leave this process, but the feature map
 * that does gives the image away (docs/SECURITY.md rows 5 and 5b). */
#include "prod_client.h"
#include "prod_cmds.h"
#include "prod_collect.h"
#include "prod_exit.h"
#include "prod_ids.h"
#include "prod_jobs.h"
#include "prod_opts.h"
#include "prod_print.h"
#include "prod_run.h"
#include "prod_session.h"
#include "prod_tracker.h"

#include "ee_clock.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *USAGE =
    "usage: ee-producer classify --bootstrap HOST:PORT --model NAME --key K.eekey\n"
    "         --plain-model CNN.gguf --image FILE [--image FILE ...] [--invert] [--json]\n"
    "         [--class small|large] [--timeout-ms N] [--reply-to TOPIC] [--kafka PROP=VAL ...]\n"
    "         [--pool-pk HEX --client-key FILE --tenant NAME]   (sealed and signed jobs)\n"
    "\n"
    "  Classifies images with an encrypted eecnn model served by the workers of\n"
    "  NAME (docs/VISION.md). Each image (PNG, PGM, JPEG, BMP: stb_image) is made\n"
    "  grey and box-resized to the model's size here; the plaintext model's stem\n"
    "  runs here and its feature map goes out encrypted, as one classify job; the\n"
    "  encrypted class scores that come back are decrypted here. Images are read\n"
    "  bright ink on dark, as the digits set; --invert for dark ink on a light page.\n"
    "  Prints one line per image: FILE: LABEL (class K, score S); --json: one object\n"
    "  per image with the scores and the encrypted scores the worker returned.\n"
    "  What a worker sees is the encrypted feature map, and it gives the image\n"
    "  away: a worker with the public weights rebuilds every test digit exactly;\n"
    "  one without them reads 96.7% of them by blind deconvolution\n"
    "  (docs/SECURITY.md rows 5, 5b; make security-report). Sealed jobs\n"
    "  (docs/PROTOCOL.md) keep the map from the broker and other tenants.\n"
    "\n" PROD_EXIT_HELP;

enum { BOOT, MODEL, KEY, PLAIN, IMAGE, INVERT, JSON, CLASS, TIMEOUT, REPLY, KAFKA, POOLPK, CKEY,
       TENANT, HELP, NF };

static void print_result(const prod_client *cl, const char *image, const prod_job *j, bool json) {
    const ee_proto_reply *f = &j->final;
    const int nc = (int)f->n_scores, k = ee_cnn_argmax(j->scores, nc);
    char lb[16];
    const char *label = ee_cnn_class_label(cl->gguf, k, lb);
    if (!json) {
        printf("%s: %s (class %d, score %.4f)\n", image, label, k, j->scores[k]);
        return;
    }
    json_t *o = json_object(), *a = json_array(), *ea = json_array();
    for (int i = 0; i < nc; i++) {
        json_array_append_new(a, json_real(j->scores[i]));
        json_array_append_new(ea, json_real(f->scores[i]));
    }
    json_object_set_new(o, "image", json_string(image));
    json_object_set_new(o, "id", json_string(j->id));
    json_object_set_new(o, "class", json_integer(k));
    json_object_set_new(o, "label", json_string(label));
    json_object_set_new(o, "scores", a);
    json_object_set_new(o, "encrypted_scores", ea);
    json_object_set_new(o, "worker", f->worker ? json_string(f->worker) : json_null());
    json_object_set_new(o, "latency_ms", json_real(j->t_done - j->t_sent));
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9));
    if (s) puts(s);
    free(s);
    json_decref(o);
}

int prod_cmd_classify(int argc, char **argv) {
    cli_flag f[NF] = {
        [BOOT] = {"--bootstrap", true}, [MODEL] = {"--model", true}, [KEY] = {"--key", true},
        [PLAIN] = {"--plain-model", true}, [IMAGE] = {"--image", true, true},
        [INVERT] = {"--invert", false}, [JSON] = {"--json", false}, [CLASS] = {"--class", true},
        [TIMEOUT] = {"--timeout-ms", true}, [REPLY] = {"--reply-to", true},
        [KAFKA] = {"--kafka", true, true}, [POOLPK] = {"--pool-pk", true},
        [CKEY] = {"--client-key", true}, [TENANT] = {"--tenant", true}, [HELP] = {"--help", false},
    };
    if (cli_wants_help(argc, argv)) {
        fputs(USAGE, stdout);
        return PROD_EXIT_OK;
    }
    ee_err err = {{0}};
    prod_common c;
    prod_gen_opts g;
    prod_client cl = {0};
    prod_session ss = {0};
    prod_tracker tr = {0};
    prod_print pr = {0};
    prod_collect col = {0};
    prod_batch jb = {0};
    size_t n = 0;
    int rc = PROD_EXIT_USAGE;
    if (cli_parse(argc, argv, f, NF, &err) || prod_common_parse(&c, f, NF, 60000, &err) ||
        prod_gen_parse(&g, f, NF, &c, &err) || prod_common_require(&c, &err))
        goto done;
    if (!f[IMAGE].present) {
        ee_err_set(&err, "--image FILE is required (give it once per image)");
        goto done;
    }
    g.task = EE_TASK_CLASSIFY;
    g.invert = f[INVERT].present;
    if (prod_client_open(&cl, c.plain_path, c.key_path, c.scheme, &err) ||
        prod_client_secure(&cl, c.pool_pk, c.client_key, c.tenant, &err))
        goto done;
    if (!cl.cnn) {
        ee_err_set(&err, "--plain-model %s is not an image classifier (eecnn)", c.plain_path);
        goto done;
    }
    n = f[IMAGE].n_values;
    /* Every image is read and encrypted before anything is sent: a bad file
     * stops the command without half the jobs in flight. */
    size_t bad;
    if (prod_batch_make(&jb, &cl, f[IMAGE].values, n, &g, &bad, &err)) {
        ee_err_wrap(&err, "--image %s", f[IMAGE].values[bad]);
        goto done;
    }
    double deadline = ee_now_ms() + (double)c.timeout_ms;
    rc = prod_session_open(&ss, &c, jb.topics, n, true, (int)c.timeout_ms, deadline, &err);
    if (rc) goto done;
    pr = (prod_print){.cl = &cl, .quiet = true};
    col = (prod_collect){.rep = &ss.rep, .tr = &tr, .cl = &cl, .pr = &pr, .cap = &ss.cap};
    prod_run_spec sp = {.cl = &cl, .g = &g, .reply_to = c.reply_to, .pp = jb.pp, .ids = jb.ids,
                        .bodies = jb.bodies, .n = n, .wait = true, .timeout_ms = c.timeout_ms};
    rc = prod_run(&sp, &ss, &col, deadline, &err);
    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        prod_job *j = prod_tracker_find(&tr, jb.ids[i]);
        if (!j || j->state != PROD_JOB_OK || !j->scores) {
            failed++;
            const char *code = j && j->final.id && !j->final.ok
                                   ? ee_proto_code_name(j->final.error_code) : "failed";
            const char *why = j && j->final.error_message ? j->final.error_message
                              : j && j->problem ? j->problem : "no answer";
            fprintf(stderr, "ee-producer classify: %s: %s: %s\n", f[IMAGE].values[i], code, why);
            continue;
        }
        print_result(&cl, f[IMAGE].values[i], j, c.json);
    }
    fflush(stdout);
    if (failed && rc == PROD_EXIT_OK) rc = PROD_EXIT_REPLY;
    if (!failed && rc == PROD_EXIT_OK) err.msg[0] = 0;
done:
    if (err.msg[0] && rc != PROD_EXIT_OK) prod_fail("classify", rc, err.msg);
    prod_session_close(&ss);
    prod_tracker_free(&tr);
    prod_batch_free(&jb);
    prod_client_close(&cl);
    cli_flags_free(f, NF);
    return rc;
}
