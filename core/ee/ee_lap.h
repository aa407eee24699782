/* ee_lap: dense linear assignment (minimum-cost perfect matching on an
 * n x n cost matrix).
 *
 * Shortest augmenting paths with dual potentials (Kuhn-Munkres in the
 * Jonker-Volgenant form): O(n^3) in the worst case, close to O(n^2) when
 * most rows' cheapest column is their match, which is the case the weight
 * alignment attack of ee_audit produces. */
#ifndef EE_LAP_H
#define EE_LAP_H

#include "ee_error.h"

/* cost: row-major [n][n], finite values. row_to_col[i] receives the column
 * assigned to row i. Returns 0, or -1 with err (n < 1, out of memory, a
 * non-finite cost). */
int ee_lap_solve(const double *cost, int n, int *row_to_col, ee_err *err);

#endif
