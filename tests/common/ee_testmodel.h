/* Shared test helpers. Synthetic models for fast unit tests (a tiny Llama
 * with random weights and a byte-level GPT-2 vocabulary, written with our
 * GGUF writer), temp files and directories, and running oracles and our
 * binaries. Helpers marked "asserts" fail the current Check test. */
#ifndef EE_TESTMODEL_H
#define EE_TESTMODEL_H

#include "ee_dtype.h"
#include "ee_error.h"
#include "ee_llama.h"

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Only calls into Check on failure (ck_assert costs a pipe write per call,
 * too slow inside loops of thousands of iterations). */
#ifndef REQUIRE
#define REQUIRE(cond, ...)                         \
    do {                                           \
        if (!(cond)) ck_abort_msg(__VA_ARGS__);    \
    } while (0)
#endif

typedef struct ee_testmodel_cfg {
    int n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx;
    float rope_theta, norm_eps;
    ee_dtype wtype;  /* type of 2-D weights (F32, F16, Q8_0, Q4_1...) */
    bool tied;       /* no output.weight */
    uint64_t seed;
} ee_testmodel_cfg;

/* n_embd 64, 2 layers, 4 heads, 2 kv heads, ff 128, ctx 256, f32, tied. */
ee_testmodel_cfg ee_testmodel_default(void);

/* Vocabulary: 256 byte tokens, <|endoftext|>=256, <|im_start|>=257,
 * <|im_end|>=258, then merged tokens "Ġt", "he", "Ġthe", "in", "Ġin". */
#define EE_TESTMODEL_VOCAB 264

int ee_testmodel_write(const char *path, const ee_testmodel_cfg *cfg, ee_err *err);

/* A copy of the GGUF at src in a new temp file (malloc'd path; asserts),
 * with general.architecture set to arch (NULL: kept) and the tensor named
 * drop left out (NULL: none). */
char *ee_test_gguf_rewrite(const char *src, const char *arch, const char *drop);

/* A synthetic model written to a temp file, opened, loaded and given a
 * context (asserts). stored_weights: keep the file's types (fused kernels)
 * instead of f32 copies. Close removes the file. */
typedef struct ee_test_llama {
    char *path;
    ee_gguf *g;
    ee_llama_model *m;
    ee_llama_ctx *ctx;
} ee_test_llama;
void ee_test_llama_open(ee_test_llama *f, const ee_testmodel_cfg *cfg, bool stored_weights);
void ee_test_llama_close(ee_test_llama *f);

/* GPT-2 bytes_to_unicode, written out independently of the library's:
 * printable bytes map to themselves, the rest to 256 + k in order. Writes
 * the NUL-terminated UTF-8 of byte b's code point (at most 3 bytes). */
void ee_test_byte_token(unsigned b, char out[3]);

/* splitmix64 step: deterministic pseudo-random stream from *state. */
uint64_t ee_test_splitmix64(uint64_t *state);

/* A temp file path under $TMPDIR (malloc'd); caller unlinks and frees. */
char *ee_test_tmpfile(const char *suffix);

/* A fresh directory $TMPDIR/ee-test-TAG-XXXXXX (malloc'd; asserts). */
char *ee_test_mkdtemp(const char *tag);
/* Remove DIR and everything below it; no-op for NULL or "". */
void ee_test_rmtree(const char *dir);
/* Write exactly n bytes to PATH (asserts). */
void ee_test_write_file(const char *path, const void *p, size_t n);

/* Python interpreter for oracles: $EE_PY or .cache/venv/bin/python. */
const char *ee_test_python(void);
/* Directory of our binaries: $EE_BIN or build/bin. */
const char *ee_test_bindir(void);
/* Real model for the model tier: $EE_MODEL or the cached SmolLM2 file. */
const char *ee_test_model_path(void);
/* Python references made by `make test-model`: $EE_REF or build/ref. */
const char *ee_test_refdir(void);

/* Run a shell command, capture stdout (malloc'd, NUL-terminated) and exit
 * status. stderr goes to *err_out if non-NULL. Returns exit status or -1. */
int ee_test_run(const char *cmd, char **out, char **err_out);

/* Write SCRIPT to DIR/oracle.py and run `'PYTHON' 'DIR/oracle.py' ARGS`
 * (ARGS quoted by the caller) with system(); the command line is left in
 * cmd. Returns system()'s status (0 on success), -1 if the script cannot
 * be written. */
int ee_test_python_script(const char *dir, const char *script, const char *args, char *cmd,
                          size_t cmd_cap);

#endif
