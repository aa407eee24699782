/* Linear assignment by shortest augmenting paths (see ee_lap.h). Rows are
 * added one at a time; for each, a Dijkstra-like search over columns with
 * reduced costs cost[i][j] - u[i] - v[j] finds the cheapest augmenting
 * path to a free column, then the potentials are updated so every reduced
 * cost stays >= 0 (which proves optimality at the end). Index 0 is a
 * virtual column holding the row being inserted. */
#include "ee_lap.h"

#include <math.h>
#include <stdlib.h>

int ee_lap_solve(const double *cost, int n, int *row_to_col, ee_err *err) {
    if (n < 1) return ee_err_set(err, "assignment of size %d", n);
    for (size_t i = 0; i < (size_t)n * n; i++)
        if (!isfinite(cost[i]))
            return ee_err_set(err, "assignment cost [%zu][%zu] is not finite", i / n, i % n);
    double *u = calloc((size_t)n + 1, sizeof(double));    /* row potentials */
    double *v = calloc((size_t)n + 1, sizeof(double));    /* column potentials */
    double *minv = malloc(sizeof(double) * (n + 1));      /* best reduced cost to column j */
    int *p = calloc((size_t)n + 1, sizeof(int));          /* p[j]: row matched to column j (1-based) */
    int *way = calloc((size_t)n + 1, sizeof(int));        /* previous column on the path */
    char *used = malloc((size_t)n + 1);
    if (!u || !v || !minv || !p || !way || !used) {
        free(u), free(v), free(minv), free(p), free(way), free(used);
        return ee_err_set(err, "out of memory for an assignment of size %d", n);
    }
    for (int i = 1; i <= n; i++) {
        p[0] = i;
        int j0 = 0;
        for (int j = 0; j <= n; j++) minv[j] = INFINITY, used[j] = 0;
        do {
            used[j0] = 1;
            const int i0 = p[j0];
            const double *row = cost + (size_t)(i0 - 1) * n;
            double delta = INFINITY;
            int j1 = 0;
            for (int j = 1; j <= n; j++) {
                if (used[j]) continue;
                const double cur = row[j - 1] - u[i0] - v[j];
                if (cur < minv[j]) minv[j] = cur, way[j] = j0;
                if (minv[j] < delta) delta = minv[j], j1 = j;
            }
            for (int j = 0; j <= n; j++) {
                if (used[j]) u[p[j]] += delta, v[j] -= delta;
                else minv[j] -= delta;
            }
            j0 = j1;
        } while (p[j0] != 0);
        do { /* flip the path */
            const int j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
        } while (j0 != 0);
    }
    for (int j = 1; j <= n; j++) row_to_col[p[j] - 1] = j - 1;
    free(u), free(v), free(minv), free(p), free(way), free(used);
    return 0;
}
