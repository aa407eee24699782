/* prod_sched: the open-loop schedule of a load test. Job i (0-based) is
 * meant to be sent at t0 + i * 1000 / rate ms, whatever is outstanding;
 * latency is measured from that intended time (as wrk2 does), so a stall
 * that delays sends still shows in the numbers (no coordinated omission). */
#ifndef PROD_SCHED_H
#define PROD_SCHED_H

#include <stddef.h>

/* Monotonic ms job i is due; rate <= 0 (closed loop): t0, always due. */
double prod_sched_at(double t0, size_t i, double rate);

#endif
