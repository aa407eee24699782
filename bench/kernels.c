/* Fused GEMV time per decoded token for each kernel set this CPU runs: the
 * SmolLM2-135M matrices (30 layers of q/k/v/o/gate/up/down in Q4_1 or f32,
 * the 49152 x 576 output matrix in Q8_0 or f32), random weights, T = 1,
 * 1 and 2 threads. Prints the best of 7 passes per set (the machine is
 * shared: the minimum is the least disturbed), in ms per token and as a
 * ratio to the first set. Two passes: "stream" reads distinct copies of
 * every layer (DRAM traffic as in decode), "hot" reuses one layer's copy
 * (in cache, so the kernels' arithmetic is what is timed; a quieter or
 * faster memory than the run's moves decode towards this case). Asserts
 * nothing. Usage: bench-kernels [q4_1|f32] */
#include "ee_kernels.h"
#include "ee_clock.h"
#include "ee_compute.h"
#include "ee_quant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { int rows, cols, count; ee_dtype t; uint8_t *w; size_t rb; } mat;

int main(int argc, char **argv) {
    ee_compute_init(argc, argv);
    const bool f32 = argc > 1 && strcmp(argv[1], "f32") == 0;
    const ee_dtype lt = f32 ? EE_DT_F32 : EE_DT_Q4_1, ot = f32 ? EE_DT_F32 : EE_DT_Q8_0;
    mat m[] = {{576, 576, 60, lt, 0, 0},   {192, 576, 60, lt, 0, 0},  {1536, 576, 60, lt, 0, 0},
               {576, 1536, 30, lt, 0, 0},  {49152, 576, 1, ot, 0, 0}};
    const int nm = sizeof m / sizeof m[0];
    unsigned s = 1;
    float *row = malloc(1536 * sizeof(float)), x[1536], y[49152];
    for (int i = 0; i < 1536; i++) x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    for (int k = 0; k < nm; k++) {
        m[k].rb = ee_dtype_row_bytes(m[k].t, (uint64_t)m[k].cols);
        /* count copies back to back, so a pass streams from DRAM as decode does */
        size_t n = (size_t)m[k].rows * m[k].count;
        m[k].w = malloc(m[k].rb * n);
        if (!m[k].w || !row) return 1;
        for (size_t r = 0; r < n; r++) {
            for (int c = 0; c < m[k].cols; c++) {
                s = s * 1664525u + 1013904223u;
                row[c] = (float)(s >> 8) / 16777216.0f - 0.5f;
            }
            ee_quantize_row(m[k].t, row, m[k].w + r * m[k].rb, (uint64_t)m[k].cols, NULL);
        }
    }
    static const char *const isas[] = {"avx512", "avx2", "scalar"};
    printf("weights %s, ms per token of fused GEMVs (best of 7)\n", f32 ? "f32" : "q4_1+q8_0");
    for (int pass = 0; pass < 4; pass++) {
        const int threads = 1 + pass % 2;
        const bool hot = pass >= 2;
        ee_compute_set_threads(threads);
        double first = 0;
        for (int v = 0; v < 3; v++) {
            if (ee_kernels_set_isa(isas[v], NULL)) continue;
            double best = 1e30;
            for (int rep = 0; rep < 7; rep++) {
                double t0 = ee_now_ms();
                for (int k = 0; k < nm; k++)
                    for (int c = 0; c < m[k].count; c++)
                        ee_gemv_stored(m[k].t, m[k].w + (size_t)(hot ? 0 : c) * m[k].rows * m[k].rb, m[k].rb,
                                       m[k].rows, m[k].cols, x, m[k].cols, 1, y, m[k].rows, 0.0f);
                double ms = ee_now_ms() - t0;
                if (ms < best) best = ms;
            }
            if (!first) first = best;
            printf("%-6s threads %d  %-7s %8.2f ms  (%.2fx the time of %s)\n",
                   hot ? "hot" : "stream", threads, isas[v], best, best / first, isas[0]);
        }
    }
    for (int k = 0; k < nm; k++) free(m[k].w);
    free(row);
    return 0;
}
