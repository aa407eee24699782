/* ee_compute: process-level setup of the compute engine (BLAS kernels and
 * threads), for every binary that runs a model.
 *
 * BLAS kernels. Debian's OpenBLAS (0.3.21, DYNAMIC_ARCH) detects AVX-512
 * Zen 4/5 CPUs as Haswell and runs AVX2 kernels; its SkylakeX kernels make
 * sgemm ~1.7x faster there. OpenBLAS reads OPENBLAS_CORETYPE in its library
 * constructor, before main, so ee_compute_init re-executes the program
 * once with the variable set. EE_BLAS_CORE chooses:
 *   auto (default)  SkylakeX on CPUs with AVX-512, else OpenBLAS's own pick;
 *                   an inherited OPENBLAS_CORETYPE is overridden (it is
 *                   often set globally for other programs' reproducibility)
 *   keep            leave OPENBLAS_CORETYPE as inherited
 *   NAME            force OPENBLAS_CORETYPE=NAME
 * `ee-model generate --json` and the worker report the core in use.
 *
 * Threads. One OpenMP team runs every parallel region (our kernels, and
 * OpenBLAS calls split by rows, each single-threaded). Two thread pools
 * that both spin-wait on a 2-core machine starve each other, so OpenBLAS's
 * own pool is kept at one thread. */
#ifndef EE_COMPUTE_H
#define EE_COMPUTE_H

/* Call first in main(). May not return (re-exec). */
void ee_compute_init(int argc, char **argv);
/* Threads for the OpenMP team (>= 1). */
void ee_compute_set_threads(int n);
int ee_compute_threads(void);
/* OpenBLAS's name for the kernels in use, e.g. "SkylakeX". */
const char *ee_compute_blas_core(void);

#endif
