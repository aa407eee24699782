#include "prod_sched.h"

double prod_sched_at(double t0, size_t i, double rate) {
    if (rate <= 0) return t0;
    return t0 + 1000.0 * (double)i / rate;
}
