/* Real SmolLM2-135M-Instruct through the CLI with each kernel set forced
 * by EE_ISA: AVX2 and AVX-512 give the same greedy tokens and text for a
 * fixed prompt, with the weights as stored (Q4_1/Q8_0 fused kernels) and
 * as f32 copies (f32 kernels). Sets this CPU lacks are skipped; a CPU with
 * AVX-512 runs both. */
#include "ee_kernels.h"
#include "ee_testmodel.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Greedy run with EE_ISA=isa; returns the parsed --json object. */
static json_t *generate(const char *isa, bool f32_weights) {
    const char *model = getenv("EE_MODEL");
    char cmd[2048], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd,
             "EE_ISA=%s %s/ee-model generate --model %s --prompt 'Once upon a time' "
             "--max-tokens 48 --ignore-eos --threads 2 --json%s",
             isa, ee_test_bindir(), model ? model : ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf",
             f32_weights ? " --f32-weights" : "");
    int st = ee_test_run(cmd, &out, &err);
    ck_assert_msg(st == 0, "%s: exit %d: %s", cmd, st, err);
    json_error_t je;
    json_t *o = json_loads(out, 0, &je);
    ck_assert_msg(o != NULL, "not JSON: %s", out);
    ck_assert_str_eq(json_string_value(json_object_get(o, "isa")), isa);
    free(out);
    free(err);
    return o;
}

START_TEST(avx2_and_avx512_same_greedy_text) {
    if (!ee_kernels_isa_supported("avx512") || !ee_kernels_isa_supported("avx2")) {
        fprintf(stderr, "[isa] this CPU lacks AVX-512 or AVX2: nothing to compare\n");
        return;
    }
    const bool f32 = _i == 1;
    json_t *a = generate("avx512", f32), *b = generate("avx2", f32);
    ck_assert_int_eq(json_array_size(json_object_get(a, "tokens")), 48);
    ck_assert_msg(json_equal(json_object_get(a, "tokens"), json_object_get(b, "tokens")),
                  "%s weights: avx2 tokens differ from avx512", f32 ? "f32" : "stored");
    ck_assert_str_eq(json_string_value(json_object_get(a, "text")),
                     json_string_value(json_object_get(b, "text")));
    json_decref(a);
    json_decref(b);
}
END_TEST

Suite *suite_isa_model(void) {
    Suite *s = suite_create("isa_model");
    TCase *tc = tcase_create("smollm2");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, avx2_and_avx512_same_greedy_text, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}
