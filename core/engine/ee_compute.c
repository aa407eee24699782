#include "ee_compute.h"

#include "ee_kernels.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* OpenBLAS extensions (declared in its cblas.h, repeated here so this file
 * does not depend on which cblas.h is first on the include path). */
extern void openblas_set_num_threads(int num_threads);
extern char *openblas_get_corename(void);

#define REEXEC_MARK "EE_BLAS_REEXECED"

static int g_threads = 1;

void ee_compute_init(int argc, char **argv) {
    (void)argc;
    openblas_set_num_threads(1);
    if (getenv(REEXEC_MARK)) { /* second run: keep the marker out of children */
        unsetenv(REEXEC_MARK);
        return;
    }
    const char *mode = getenv("EE_BLAS_CORE");
    if (!mode || !*mode) mode = "auto";
    if (strcmp(mode, "keep") == 0) return;
    const char *want = mode;
    if (strcmp(mode, "auto") == 0) {
        __builtin_cpu_init();
        if (!__builtin_cpu_supports("avx512f")) return;
        want = "SkylakeX";
    }
    const char *cur = getenv("OPENBLAS_CORETYPE");
    if (cur && strcmp(cur, want) == 0) return;
    if (setenv("OPENBLAS_CORETYPE", want, 1) != 0 || setenv(REEXEC_MARK, "1", 1) != 0) return;
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc?): continue with the kernels already loaded. */
    unsetenv(REEXEC_MARK);
}

void ee_compute_set_threads(int n) {
    if (n < 1) n = 1;
    g_threads = n;
    openblas_set_num_threads(1);
    ee_kernels_set_threads(n);
}

int ee_compute_threads(void) { return g_threads; }

const char *ee_compute_blas_core(void) {
    const char *n = openblas_get_corename();
    return n ? n : "unknown";
}
