#include "ee_platform.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* OpenBLAS extensions (declared in its cblas.h, repeated here so this file
 * does not depend on which cblas.h is first on the include path). */
extern void openblas_set_num_threads(int num_threads);
extern char *openblas_get_corename(void);

static int g_threads = 1;

void ee_platform_init(int argc, char **argv) {
    (void)argc;
    const char *auto_env = getenv("EE_OPENBLAS_AUTO");
    if (auto_env && strcmp(auto_env, "0") == 0) return;
    if (getenv("OPENBLAS_CORETYPE")) return; /* user's choice, or already re-executed */
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f")) return;
    if (setenv("OPENBLAS_CORETYPE", "SkylakeX", 1) != 0) return;
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc?): continue with the default kernels. */
    unsetenv("OPENBLAS_CORETYPE");
}

void ee_platform_set_threads(int n) {
    if (n < 1) n = 1;
    g_threads = n;
    openblas_set_num_threads(n);
}

int ee_platform_threads(void) { return g_threads; }

const char *ee_platform_blas_core(void) {
    const char *n = openblas_get_corename();
    return n ? n : "unknown";
}

double ee_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int64_t ee_epoch_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
