/*
 * bpe.c - byte-level BPE of one pre-token, the same result as OpenAI's
 * simple_tokenizer.bpe() in O(n log n) instead of its O(n^2) per merge.
 *
 * The reference repeats: find the adjacent pair of lowest rank, then sweep the
 * word left to right merging every non-overlapping occurrence of that pair.
 * Here symbols form a linked list over positions and a min-heap holds
 * (rank, position) for adjacent pairs that have a merge. One round pops every
 * entry of the lowest rank - in position order, i.e. the reference's sweep -
 * skips those made stale by earlier merges, merges the rest, and only then
 * pushes the pairs the merged symbols form with their neighbours (their ranks
 * may be lower than this round's: they wait for the next round, as in the
 * reference).
 *
 * Invariants: every adjacent pair that has a merge has a live heap entry;
 * a merge never yields either of its parts, so a symbol merged in a round
 * survives that round; the heap holds at most 3n entries.
 */
#include <stdlib.h>

#include "text/text.h"

static void heap_push(uint64_t *h, size_t *n, uint64_t x)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p] <= x) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static uint64_t heap_pop(uint64_t *h, size_t *n)
{
    uint64_t top = h[0], x = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && h[c + 1] < h[c]) c++;
        if (x <= h[c]) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = x;
    return top;
}

static int work_reserve(struct cdx_bpe_work *w, size_t n)
{
    if (n <= w->cap) return CLIPDEX_OK;
    size_t cap = w->cap ? w->cap : 64;
    while (cap < n) cap *= 2;
    size_t h;
    if (cdx_mul(cap, 3, &h) || h > SIZE_MAX / sizeof(uint64_t)) return CLIPDEX_E_NOMEM;
    cdx_bpe_work_free(w);
    w->sym = malloc(cap * sizeof *w->sym);
    w->next = malloc(cap * sizeof *w->next);
    w->prev = malloc(cap * sizeof *w->prev);
    w->batch = malloc(cap * sizeof *w->batch);
    w->heap = malloc(h * sizeof *w->heap);
    if (!w->sym || !w->next || !w->prev || !w->batch || !w->heap) {
        cdx_bpe_work_free(w);
        return CLIPDEX_E_NOMEM;
    }
    w->cap = cap;
    return CLIPDEX_OK;
}

void cdx_bpe_work_free(struct cdx_bpe_work *w)
{
    free(w->sym);
    free(w->next);
    free(w->prev);
    free(w->batch);
    free(w->heap);
    w->sym = NULL;
    w->next = w->prev = w->batch = NULL;
    w->heap = NULL;
    w->cap = 0;
}

#define NONE UINT32_MAX

/* Pushes the pair starting at position p if it has a merge. */
static void push_pair(const struct clipdex_tokenizer *tok, struct cdx_bpe_work *w, size_t *hn,
                      uint32_t p)
{
    if (p == NONE || w->next[p] == NONE) return;
    uint32_t r = cdx_merge_rank(tok, w->sym[p], w->sym[w->next[p]]);
    if (r != UINT32_MAX) heap_push(w->heap, hn, ((uint64_t)r << 32) | p);
}

int cdx_bpe_word(const struct clipdex_tokenizer *tok, const uint8_t *bytes, size_t n,
                 struct cdx_bpe_work *w, int32_t *out, size_t room, size_t *n_out)
{
    *n_out = 0;
    if (n == 0) return CLIPDEX_OK;
    if (n >= NONE) return CLIPDEX_E_LIMIT;
    if (n == 1) {
        if (room) out[(*n_out)++] = tok->byte_end_id[bytes[0]];
        return CLIPDEX_OK;
    }
    if (work_reserve(w, n)) return CLIPDEX_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        w->sym[i] = i + 1 < n ? tok->byte_id[bytes[i]] : tok->byte_end_id[bytes[i]];
        w->prev[i] = i ? (uint32_t)(i - 1) : NONE;
        w->next[i] = i + 1 < n ? (uint32_t)(i + 1) : NONE;
    }
    size_t hn = 0;
    for (size_t i = 0; i + 1 < n; i++) push_pair(tok, w, &hn, (uint32_t)i);

    while (hn) {
        uint32_t rank = (uint32_t)(w->heap[0] >> 32);
        const struct cdx_merge *m = &tok->merges[rank];
        size_t nb = 0;
        while (hn && (uint32_t)(w->heap[0] >> 32) == rank) {
            uint32_t p = (uint32_t)heap_pop(w->heap, &hn);
            uint32_t q = w->next[p];
            /* Stale if p was absorbed (its list links are then cut), changed,
             * or its right neighbour is no longer the pair's right part. */
            if (w->sym[p] != m->left || q == NONE || w->sym[q] != m->right) continue;
            w->sym[p] = m->id;
            w->sym[q] = -1; /* absorbed */
            w->next[p] = w->next[q];
            if (w->next[q] != NONE) w->prev[w->next[q]] = p;
            w->next[q] = NONE;
            w->batch[nb++] = p;
        }
        for (size_t i = 0; i < nb; i++) {
            uint32_t p = w->batch[i];
            push_pair(tok, w, &hn, w->prev[p]);
            push_pair(tok, w, &hn, p);
        }
    }
    for (uint32_t p = 0; p != NONE && *n_out < room; p = w->next[p]) out[(*n_out)++] = w->sym[p];
    return CLIPDEX_OK;
}
