/* ee_platform: process-level setup shared by every binary.
 *
 * Debian's OpenBLAS (0.3.21, DYNAMIC_ARCH) detects AVX-512 Zen 4/5 CPUs as
 * Haswell and runs AVX2 kernels; OPENBLAS_CORETYPE=SkylakeX makes sgemm
 * ~1.7x faster there. OpenBLAS reads that variable in its library
 * constructor, before main, so ee_platform_init re-executes the program once
 * with the variable set when the CPU has AVX-512 and the user did not choose
 * a core type. The fast path is the default; EE_OPENBLAS_AUTO=0 disables it. */
#ifndef EE_PLATFORM_H
#define EE_PLATFORM_H

#include <stdint.h>

/* Call first in main(). May not return (re-exec). */
void ee_platform_init(int argc, char **argv);
/* Threads used by the BLAS and by our own kernels. */
void ee_platform_set_threads(int n);
int ee_platform_threads(void);
/* OpenBLAS's name for the kernels in use, e.g. "SkylakeX". */
const char *ee_platform_blas_core(void);
/* Monotonic milliseconds. */
double ee_now_ms(void);
/* Wall-clock epoch milliseconds. */
int64_t ee_epoch_ms(void);

#endif
