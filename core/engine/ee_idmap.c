#include "ee_idmap.h"

#include <stdlib.h>
#include <string.h>

/* Load factor at most 1/2: probes stay short without tuning. */
#define MIN_CAP 16

/* splitmix64's finaliser: ids are often sequential, which a plain mask
 * would pile into neighbouring slots. */
static size_t slot_of(int64_t key, size_t cap) {
    uint64_t x = (uint64_t)key;
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return (size_t)x & (cap - 1);
}

static void insert(int64_t *keys, int64_t *vals, size_t cap, int64_t key, int64_t val) {
    size_t i = slot_of(key, cap);
    while (keys[i] != -1 && keys[i] != key) i = (i + 1) & (cap - 1);
    keys[i] = key;
    vals[i] = val;
}

int ee_idmap_reserve(ee_idmap *m, size_t n, ee_err *err) {
    if (n <= m->cap / 2) return 0;
    size_t cap = m->cap ? m->cap : MIN_CAP;
    while (cap / 2 < n) {
        if (cap > SIZE_MAX / 2 / sizeof(int64_t))
            return ee_err_set(err, "id map: out of memory for %zu ids", n);
        cap *= 2;
    }
    int64_t *keys = malloc(cap * sizeof *keys), *vals = malloc(cap * sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return ee_err_set(err, "id map: out of memory for %zu ids", n);
    }
    memset(keys, 0xff, cap * sizeof *keys); /* all -1 */
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i] != -1) insert(keys, vals, cap, m->keys[i], m->vals[i]);
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    return 0;
}

int64_t ee_idmap_get(const ee_idmap *m, int64_t key) {
    if (!m->cap || key < 0) return -1;
    for (size_t i = slot_of(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key) return m->vals[i];
        if (m->keys[i] == -1) return -1;
    }
}

int ee_idmap_put(ee_idmap *m, int64_t key, int64_t val) {
    if (key < 0 || m->n + 1 > m->cap / 2) {
        /* An overwrite needs no room; only a new key does. */
        if (key < 0 || ee_idmap_get(m, key) == -1) return -1;
    }
    size_t i = slot_of(key, m->cap);
    while (m->keys[i] != -1 && m->keys[i] != key) i = (i + 1) & (m->cap - 1);
    if (m->keys[i] == -1) m->n++;
    m->keys[i] = key;
    m->vals[i] = val;
    return 0;
}

bool ee_idmap_del(ee_idmap *m, int64_t key) {
    if (!m->cap || key < 0) return false;
    size_t mask = m->cap - 1, i = slot_of(key, m->cap);
    while (m->keys[i] != key) {
        if (m->keys[i] == -1) return false;
        i = (i + 1) & mask;
    }
    /* Backward shift: pull later members of the probe run into the hole
     * when their home slot does not lie cyclically in (hole, j]. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; m->keys[j] != -1; j = (j + 1) & mask) {
        size_t home = slot_of(m->keys[j], m->cap);
        bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (stays) continue;
        m->keys[hole] = m->keys[j];
        m->vals[hole] = m->vals[j];
        hole = j;
    }
    m->keys[hole] = -1;
    m->n--;
    return true;
}

void ee_idmap_clear(ee_idmap *m) {
    if (m->cap) memset(m->keys, 0xff, m->cap * sizeof *m->keys);
    m->n = 0;
}

void ee_idmap_free(ee_idmap *m) {
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}
