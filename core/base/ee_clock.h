/* ee_clock: the two clocks every tier uses. */
#ifndef EE_CLOCK_H
#define EE_CLOCK_H

#include <stdint.h>

/* Monotonic milliseconds (durations). */
double ee_now_ms(void);
/* Wall-clock epoch milliseconds (timestamps on the wire). */
int64_t ee_epoch_ms(void);

#endif
