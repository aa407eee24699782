/* Synthetic models for fast unit tests: a tiny Llama with random weights
 * and a byte-level GPT-2 vocabulary, written with our GGUF writer. */
#ifndef EE_TESTMODEL_H
#define EE_TESTMODEL_H

#include "ee_dtype.h"
#include "ee_error.h"

#include <stdbool.h>
#include <stdint.h>

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

/* A temp file path under $TMPDIR (malloc'd); caller unlinks and frees. */
char *ee_test_tmpfile(const char *suffix);

/* Python interpreter for oracles: $EE_PY or .cache/venv/bin/python. */
const char *ee_test_python(void);
/* Directory of our binaries: $EE_BIN or build/bin. */
const char *ee_test_bindir(void);

/* Run a shell command, capture stdout (malloc'd, NUL-terminated) and exit
 * status. stderr goes to *err_out if non-NULL. Returns exit status or -1. */
int ee_test_run(const char *cmd, char **out, char **err_out);

#endif
