/* ee_idmap: a hash map from non-negative 64-bit ids to 64-bit values.
 *
 * ee_vindex's map from a caller's vector id to the row that holds it.
 * Open addressing with linear probing and backward-shift deletion (no
 * tombstones, so a long run of upserts and removes never slows lookups).
 * Growth happens only in ee_idmap_reserve, so an update that has reserved
 * first cannot fail half way (ee_vindex changes faiss, then the map).
 *
 * Keys must be >= 0 (-1 marks an empty slot). A zeroed struct is an empty
 * map. Not thread-safe: the owner locks. */
#ifndef EE_IDMAP_H
#define EE_IDMAP_H

#include "ee_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ee_idmap {
    int64_t *keys; /* -1: empty */
    int64_t *vals;
    size_t cap;    /* slots, a power of two, or 0 */
    size_t n;      /* keys held */
} ee_idmap;

/* Room for n keys in all (not n more) without growing. */
int ee_idmap_reserve(ee_idmap *m, size_t n, ee_err *err);
/* The value of key, or -1 when absent. */
int64_t ee_idmap_get(const ee_idmap *m, int64_t key);
/* Insert or overwrite. The caller has reserved room for m->n + 1 keys
 * (returns -1 without reserving room, which is a bug in the caller). */
int ee_idmap_put(ee_idmap *m, int64_t key, int64_t val);
/* True if key was there. */
bool ee_idmap_del(ee_idmap *m, int64_t key);
void ee_idmap_clear(ee_idmap *m); /* keep the memory */
void ee_idmap_free(ee_idmap *m);

#endif
