/* ee_kernels driver: scalar reference, generic fallback, threading, and
 * the run-time choice of a per-ISA kernel set (ee_kernels_impl.h). This
 * file is compiled with the tree's $(ARCH); the vector kernels live in
 * ee_kernels_avx512.c and ee_kernels_avx2.c, built with their own flags. */
#include "ee_kernels.h"
#include "ee_kernels_impl.h"

#include "ee_quant.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static int g_threads = 1;

void ee_kernels_set_threads(int n) { g_threads = n < 1 ? 1 : n; }
int ee_kernels_threads(void) { return g_threads; }

void ee_split_range(int64_t n, int parts, int id, int64_t align, int64_t *a, int64_t *b) {
    int64_t per = ((n + parts - 1) / parts + align - 1) / align * align;
    *a = id * per < n ? id * per : n;
    *b = *a + per < n ? *a + per : n;
}

bool ee_gemv_supported(ee_dtype t) {
    return t == EE_DT_F32 || t == EE_DT_F16 || t == EE_DT_BF16 || t == EE_DT_Q8_0 ||
           t == EE_DT_Q4_0 || t == EE_DT_Q4_1;
}

/* ---- kernel sets and the run-time choice ----------------------------------- */

/* No vector kernels: every entry falls back to the scalar code here and in
 * ee_ops.c. */
static const ee_kernel_set scalar_set = {.name = "scalar"};

static const ee_kernel_set *const all_sets[] = {&ee_kernels_avx512_set, &ee_kernels_avx2_set,
                                                &scalar_set};

/* Each per-ISA file is compiled for one x86-64 psABI level (Makefile
 * ISA_FLAGS_*), so the check is that level: v4 = AVX-512 F/BW/CD/DQ/VL on
 * top of v3 = AVX2, FMA, F16C, BMI1/2, LZCNT, MOVBE. __builtin_cpu_supports
 * also checks that the OS saves the vector state (XGETBV). */
static bool cpu_has(const ee_kernel_set *s) {
    __builtin_cpu_init();
    if (s == &ee_kernels_avx512_set) return __builtin_cpu_supports("x86-64-v4");
    if (s == &ee_kernels_avx2_set) return __builtin_cpu_supports("x86-64-v3");
    return true;
}

static const ee_kernel_set *set_by_name(const char *name) {
    for (size_t i = 0; i < sizeof all_sets / sizeof all_sets[0]; i++)
        if (strcmp(all_sets[i]->name, name) == 0) return all_sets[i];
    return NULL;
}

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
/* Written once under g_once (or by ee_kernels_set_isa), read on every
 * kernel call: atomic so a forced switch is never a torn read. */
static _Atomic(const ee_kernel_set *) g_set;
static char g_choose_err[EE_ERR_MAX]; /* set by choose() when EE_ISA is bad */

static void choose(void) {
    const ee_kernel_set *best = &scalar_set;
    for (size_t i = 0; i < sizeof all_sets / sizeof all_sets[0]; i++)
        if (cpu_has(all_sets[i])) {
            best = all_sets[i];
            break;
        }
    const char *want = getenv("EE_ISA");
    if (want && *want && strcmp(want, "auto") != 0) {
        const ee_kernel_set *s = set_by_name(want);
        if (!s)
            snprintf(g_choose_err, sizeof g_choose_err,
                     "EE_ISA=%.64s: unknown kernel set (avx512, avx2, scalar or auto)", want);
        else if (!cpu_has(s))
            snprintf(g_choose_err, sizeof g_choose_err,
                     "EE_ISA=%s: this CPU lacks the %s instructions (best available: %s)",
                     s->name, s == &ee_kernels_avx512_set ? "AVX-512 (x86-64-v4)" : "AVX2/FMA/F16C (x86-64-v3)",
                     best->name);
        else best = s;
    }
    atomic_store(&g_set, best);
}

const ee_kernel_set *ee_kernels_active(void) {
    pthread_once(&g_once, choose);
    return atomic_load_explicit(&g_set, memory_order_acquire);
}

int ee_kernels_init(ee_err *err) {
    pthread_once(&g_once, choose);
    if (g_choose_err[0]) return ee_err_set(err, "%s", g_choose_err);
    return 0;
}

const char *ee_kernels_isa(void) { return ee_kernels_active()->name; }

bool ee_kernels_isa_supported(const char *name) {
    const ee_kernel_set *s = name ? set_by_name(name) : NULL;
    return s && cpu_has(s);
}

int ee_kernels_set_isa(const char *name, ee_err *err) {
    pthread_once(&g_once, choose);
    const ee_kernel_set *s = name ? set_by_name(name) : NULL;
    if (!s) return ee_err_set(err, "unknown kernel set '%.64s' (avx512, avx2 or scalar)",
                              name ? name : "(null)");
    if (!cpu_has(s)) return ee_err_set(err, "this CPU cannot run the %s kernels", s->name);
    atomic_store(&g_set, s);
    return 0;
}

/* ---- scalar reference ---------------------------------------------------- */

int ee_gemv_stored_ref(ee_dtype t, const void *w, size_t row_bytes, int64_t rows,
                       int64_t cols, const float *x, int64_t ldx, int T, float *y,
                       int64_t ldy, float beta) {
    float *row = malloc((size_t)cols * sizeof(float));
    if (!row) return -1;
    for (int64_t r = 0; r < rows; r++) {
        ee_dequantize_row(t, (const uint8_t *)w + (size_t)r * row_bytes, row, (uint64_t)cols, NULL);
        for (int i = 0; i < T; i++) {
            double acc = 0.0;
            for (int64_t c = 0; c < cols; c++) acc += (double)row[c] * x[i * ldx + c];
            float *out = &y[i * ldy + r];
            *out = (float)acc + (beta != 0.0f ? beta * *out : 0.0f);
        }
    }
    free(row);
    return 0;
}

/* ---- dequantization ------------------------------------------------------- */

void ee_dequant_rows(ee_dtype t, const void *w, size_t row_bytes, int64_t cols, int64_t r0,
                     int64_t r1, float *out) {
    const ee_kernel_set *ks = ee_kernels_active();
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *src = (const uint8_t *)w + (size_t)r * row_bytes;
        float *o = out + (size_t)(r - r0) * cols;
        if (!ks->dequant_row || !ks->dequant_row(t, src, cols, o))
            ee_dequantize_row(t, src, o, (uint64_t)cols, NULL);
    }
}

/* Portable fallback: dequantize a row, then dot in f32. Returns -1 if the
 * row buffer cannot be had (rows above 4096 values take the heap). */
static int rows_generic(const ee_gemv_job *j, int64_t r0, int64_t r1) {
    float stack[4096];
    float *row = j->cols <= 4096 ? stack : malloc((size_t)j->cols * sizeof(float));
    if (!row) return -1;
    for (int64_t r = r0; r < r1; r++) {
        ee_dequantize_row(j->t, j->w + (size_t)r * j->row_bytes, row, (uint64_t)j->cols, NULL);
        for (int i = 0; i < j->T; i++) {
            float acc = 0.0f;
            const float *xp = j->x + i * j->ldx;
            for (int64_t c = 0; c < j->cols; c++) acc += row[c] * xp[c];
            ee_store_out(j, i, r, acc);
        }
    }
    if (row != stack) free(row);
    return 0;
}

static int run_rows(const ee_kernel_set *ks, const ee_gemv_job *j, int64_t r0, int64_t r1) {
    if (ks->gemv_rows && ks->gemv_rows(j, r0, r1)) return 0;
    return rows_generic(j, r0, r1);
}

int ee_gemv_stored(ee_dtype t, const void *w, size_t row_bytes, int64_t rows, int64_t cols,
                   const float *x, int64_t ldx, int T, float *y, int64_t ldy, float beta) {
    ee_gemv_job j = {.t = t, .w = w, .row_bytes = row_bytes, .cols = cols, .x = x, .ldx = ldx,
                     .T = T, .y = y, .ldy = ldy, .beta = beta, .xs = NULL};
    float xs_stack[EE_FUSED_MAX_T * 64];
    float *xs = NULL;
    if (t == EE_DT_Q4_1) {
        const int64_t nb = cols / 32;
        xs = (size_t)(T * nb) <= sizeof xs_stack / sizeof xs_stack[0]
                 ? xs_stack
                 : malloc((size_t)T * nb * sizeof(float));
        if (!xs) return -1;
        for (int i = 0; i < T; i++)
            for (int64_t k = 0; k < nb; k++) {
                float s = 0.0f;
                for (int c = 0; c < 32; c++) s += x[i * ldx + k * 32 + c];
                xs[i * nb + k] = s;
            }
        j.xs = xs;
    }
    const ee_kernel_set *ks = ee_kernels_active();
    int nt = g_threads, failed = 0;
    /* Below ~64K weights the fork/join costs more than it saves. */
    if (rows * cols < 65536 || rows < 2 * nt) nt = 1;
#ifdef _OPENMP
    if (nt > 1) {
#pragma omp parallel num_threads(nt) reduction(| : failed)
        {
            /* Row ranges rounded to 16 rows so threads never write the
             * same cache line of y. */
            int64_t a, b;
            ee_split_range(rows, omp_get_num_threads(), omp_get_thread_num(), 16, &a, &b);
            if (a < b) failed |= run_rows(ks, &j, a, b) != 0;
        }
    } else
#endif
        failed = run_rows(ks, &j, 0, rows) != 0;
    if (xs && xs != xs_stack) free(xs);
    return failed ? -1 : 0;
}
