/*
 * hmap.h - an open-addressing hash map from byte strings to size_t values
 * for the clipdex program (paths -> rows, content hashes -> presence). Keys
 * are not copied: the caller keeps them alive while they are in the map.
 */
#ifndef CLIPDEX_APP_HMAP_H
#define CLIPDEX_APP_HMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct hmap_slot {
    const void *key; /* NULL: empty */
    size_t len;
    uint64_t hash;
    size_t value;
} hmap_slot;

typedef struct hmap {
    hmap_slot *slots;
    size_t cap, n; /* cap is a power of two */
} hmap;

void hmap_init(hmap *m);
void hmap_free(hmap *m);
/* Inserts or replaces; returns 0 or -1 (out of memory). */
int hmap_put(hmap *m, const void *key, size_t len, size_t value);
/* Looks up; returns 1 and sets *value (may be NULL) if present. */
int hmap_get(const hmap *m, const void *key, size_t len, size_t *value);

#endif
