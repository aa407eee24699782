/* ee_offtrack: which offsets a worker may commit.
 *
 * At-least-once with many jobs in flight: records of one partition finish
 * out of order (batching, different lengths), but Kafka commits one
 * position per partition, meaning "everything before this is done". So a
 * worker may only commit the contiguous finished prefix: offsets are
 * registered as they are polled (increasing per partition) and marked done
 * when their reply or dead letter is acknowledged; the commit position
 * advances over the done prefix and stops at the first unfinished record.
 *
 * Partitions are keyed by (consumer index, topic, partition). Each time a
 * partition is (re)registered after a drop it gets a new generation, so a
 * late "done" for a record polled before a revoke cannot mark a record of
 * the new assignment. Not thread-safe (the worker's poll thread owns it). */
#ifndef EE_OFFTRACK_H
#define EE_OFFTRACK_H

#include <stddef.h>
#include <stdint.h>

typedef struct ee_offtrack ee_offtrack;

ee_offtrack *ee_offtrack_new(void);
void ee_offtrack_free(ee_offtrack *t);

/* Register a polled record. Offsets must increase per partition. Returns
 * the partition's generation (>= 1), or 0 on a non-increasing offset or
 * out of memory. */
uint64_t ee_offtrack_add(ee_offtrack *t, int cons, const char *topic, int32_t partition,
                         int64_t offset);

/* Mark a record done. Returns the new commit position (the offset after the
 * finished prefix) when it advanced, -1 when it did not (a gap before it),
 * -2 when the record is unknown or gen is stale (revoked since). */
int64_t ee_offtrack_done(ee_offtrack *t, int cons, const char *topic, int32_t partition,
                         int64_t offset, uint64_t gen);

/* Forget a partition (revoked): its records can no longer be committed. */
void ee_offtrack_drop(ee_offtrack *t, int cons, const char *topic, int32_t partition);

/* Records registered and not yet in the committed prefix. */
size_t ee_offtrack_pending(const ee_offtrack *t, int cons, const char *topic, int32_t partition);
size_t ee_offtrack_pending_total(const ee_offtrack *t);

#endif
