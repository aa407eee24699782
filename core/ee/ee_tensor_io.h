/* ee_tensor_io: weights as doubles, for the schemes' transforms (each
 * architecture's scheme file reads and writes tensors through these). */
#ifndef EE_TENSOR_IO_H
#define EE_TENSOR_IO_H

#include "ee_error.h"
#include "ee_gguf.h"

#include <stdint.h>

/* Load a [rows][cols] weight (GGUF ne = [cols, rows]; rows 1 may also be a
 * 1-d tensor of cols) as doubles, any stored type. NULL with err naming
 * the tensor if it is missing or shaped otherwise. */
double *ee_tensor_load_d(const ee_gguf *g, const char *name, int64_t cols, int64_t rows,
                         ee_err *err);

#endif
