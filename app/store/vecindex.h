/*
 * vecindex.h - the memory-mapped vector matrix kept beside the index
 * database (`DB-vectors`, format in docs/schema.md). It holds every indexed
 * file's embedding in one contiguous float32 matrix with the files.id of
 * each row, stamped with the database generation it was built from, an
 * int8 copy (per-row scale) and a 4-bit copy (per-row scale and error norms)
 * that searches scan first; a stale or missing matrix is rebuilt from
 * SQLite in one read transaction.
 */
#ifndef CLIPDEX_APP_VECINDEX_H
#define CLIPDEX_APP_VECINDEX_H

#include <stddef.h>
#include <stdint.h>

#include "clipdex.h"
#include "store/store.h"

#define VECINDEX_MAGIC "CDXVEC03"
#define VECINDEX_HEADER 64

typedef struct vec_index {
    void *map;          /* the whole mapped file */
    size_t map_len;
    size_t n, dim;      /* rows, columns */
    int64_t generation; /* the database generation it matches */
    const int64_t *ids; /* [n] files.id of each row */
    const float *m;     /* [n, dim] row-major, 64-byte aligned in the file */
    const int8_t *q8;   /* [n, dim] int8 codes: m[r][i] ~= scale[r] * q8[r][i] */
    const float *scale; /* [n] */
    float max_scale, max_l1; /* error terms of the int8 copy (clipdex_vecs_data) */
    const uint8_t *q4;  /* [n, clipdex_vec_q4_row_bytes(dim)] 4-bit codes (clipdex_vec_q4_row) */
    const clipdex_vec_q4_info *q4info; /* [n] their scales and error norms */
    clipdex_vecs *vecs; /* the library's search handle over all of the above */
} vec_index;

/* The two matrices: photos and video samples (`DB-vectors`), and the
 * people's crops (`DB-persons`; ids are persons.id). */
enum { VECINDEX_FILES, VECINDEX_PERSONS };

/* Writes the matrix of a kind for the database's current state (atomically:
 * a temporary file renamed over the old one). Returns 0 or APP_FAIL (reported). */
int vecindex_build(store *s, int dim, int kind);
/* Maps the matrix, rebuilding it first when it is missing or older than the
 * database, and describes it for clipdex_vecs_search (vi->vecs). Returns 0
 * or APP_FAIL (reported). */
int vecindex_open(store *s, int dim, vec_index *vi);
/* The same for a kind of matrix (vecindex_open is VECINDEX_FILES). */
int vecindex_open_kind(store *s, int dim, int kind, vec_index *vi);
void vecindex_close(vec_index *vi);

/* Row of id (files.id, -frames.id or persons.id) in vi, or -1. */
long vecindex_row_of(const vec_index *vi, int64_t id);
/* Exact top sp->k of the listed rows of vi (ascending) with the library's
 * float32 scan, so scores and tie order are those of the full scan; the
 * hits name rows of vi. Returns 0 or APP_FAIL (reported). */
int vecindex_search_rows(clipdex_ctx *ctx, const vec_index *vi, const uint32_t *rows, size_t n, const float *q,
                         const clipdex_search_params *sp, clipdex_hit *out, size_t *n_out);

#endif
