/*
 * hmap.c - the byte-string hash map: FNV-1a hashing, linear probing, and
 * doubling at 50% load.
 */
#include "util/hmap.h"

#include <stdlib.h>
#include <string.h>

static uint64_t fnv1a(const void *p, size_t n)
{
    const unsigned char *c = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

void hmap_init(hmap *m) { memset(m, 0, sizeof *m); }

void hmap_free(hmap *m)
{
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static hmap_slot *find(const hmap *m, const void *key, size_t len, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        hmap_slot *s = &m->slots[i];
        if (!s->key) return s;
        if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0) return s;
    }
}

static int grow(hmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    hmap_slot *old = m->slots;
    size_t old_cap = m->cap;
    m->slots = calloc(cap, sizeof *m->slots);
    if (!m->slots) {
        m->slots = old;
        return -1;
    }
    m->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].key) *find(m, old[i].key, old[i].len, old[i].hash) = old[i];
    free(old);
    return 0;
}

int hmap_put(hmap *m, const void *key, size_t len, size_t value)
{
    if ((m->n + 1) * 2 > m->cap && grow(m)) return -1;
    uint64_t h = fnv1a(key, len);
    hmap_slot *s = find(m, key, len, h);
    if (!s->key) {
        m->n++;
        s->key = key;
        s->len = len;
        s->hash = h;
    }
    s->value = value;
    return 0;
}

int hmap_get(const hmap *m, const void *key, size_t len, size_t *value)
{
    if (!m->cap) return 0;
    hmap_slot *s = find(m, key, len, fnv1a(key, len));
    if (!s->key) return 0;
    if (value) *value = s->value;
    return 1;
}
