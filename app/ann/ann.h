/*
 * ann.h - approximate search over the vector matrix (store/vecindex.h)
 * with a FAISS index kept beside the database (docs/ann.md): `DB-ann`, the
 * FAISS index itself, and `DB-ann.ids`, what each FAISS label stands for
 * (the row's files.id or -frames.id and a fingerprint of the row when it
 * was added). A search takes ANN_CANDIDATES_DEFAULT x k approximate
 * candidates, adds every row the FAISS index does not hold (the "exact
 * tail": rows indexed or changed after `clipdex ann build`) and re-ranks
 * them all exactly in float32 from the matrix, so scores are always exact
 * and only recall is approximate. Functions return 0 or APP_FAIL after
 * reporting why (util/report.h); nothing here prints.
 */
#ifndef CLIPDEX_APP_ANN_H
#define CLIPDEX_APP_ANN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ann/faiss_glue.h"
#include "clipdex.h"
#include "store/rowset.h"
#include "store/store.h"
#include "store/vecindex.h"

#define ANN_MAGIC "CDXANN01"
#define ANN_HEADER 256
#define ANN_FACTORY_MAX 128
#ifndef ANN_CANDIDATES_DEFAULT
#define ANN_CANDIDATES_DEFAULT 10   /* approximate candidates per row wanted */
#endif
#ifndef ANN_NPROBE_MIN
#define ANN_NPROBE_MIN 16           /* default nprobe: nlist / 16, at least this */
#endif
#ifndef ANN_TRAIN_MIN
#define ANN_TRAIN_MIN 65536         /* training sample: at least this many rows... */
#endif
#define ANN_TRAIN_PER_LIST 64       /* ...or 64 per inverted list, if more */
#define ANN_TRAIN_WARN_PER_LIST 39  /* fewer per list: a note (FAISS's own minimum) */
#define ANN_DEAD_MAX_FRACTION 0.25  /* an update rebuilds when more labels are dead */

/* An opened ANN index, valid for the vec_index it was opened against. */
typedef struct ann_index {
    fg_index *fg;
    char factory[ANN_FACTORY_MAX];
    long nprobe;            /* the file's default nprobe (0: not an IVF index) */
    int by_rule;            /* the factory rule chose the factory */
    int64_t generation;     /* the matrix generation at the last build or update */
    size_t n_labels;        /* vectors in the FAISS index */
    size_t n_live;          /* of those, still in the matrix unchanged */
    int32_t *label_row;     /* [n_labels] row of the matrix, -1 if gone or changed */
    uint32_t *tail;         /* [n_tail] rows of the matrix the FAISS index lacks */
    size_t n_tail;
    int64_t *ids;           /* [n_labels] what the labels stand for (owned) */
    float *fp;              /* [n_labels] their fingerprints (owned) */
} ann_index;

/* Search settings; zero fields take the defaults. */
typedef struct ann_params {
    long nprobe;            /* inverted lists visited (0: the file's default) */
    long candidates;        /* approximate candidates = candidates x k (0: ANN_CANDIDATES_DEFAULT) */
    int threads;            /* FAISS's OpenMP threads (0: its default) */
    size_t min_rows;        /* fewer rows to re-rank than this: the exact scan answers (0: sp->k) */
    const row_set *only;    /* a search filter's rows: only these are candidates (NULL: all) */
} ann_params;

#define ANN_NPROBE_MAX (1L << 20)  /* the largest nprobe a search may ask for */
#define ANN_CANDIDATES_MAX 1000    /* the largest candidates multiplier */

typedef struct ann_stats {
    size_t candidates;      /* approximate candidates that were live rows */
    size_t tail;            /* rows scanned exactly besides them */
    size_t reranked;        /* rows re-scored in float32 (both, without repeats) */
    int exact;              /* 1: fewer than min_rows came out of both: the whole matrix (or the
                               rows of `only`) was scanned; 2: `only` held no more rows than the
                               candidates asked for: they were scanned at once */
} ann_stats;

/* The factory string the rule of docs/ann.md picks for n vectors, and its
 * default nprobe (0 for Flat). */
void ann_factory_auto(size_t n, char *buf, size_t cap, long *nprobe);

/* "DB-ann" and "DB-ann.ids" of a database (malloc'd; NULL: out of memory). */
char *ann_path(const store *s, int ids_file);

/* What `clipdex ann build` did. */
typedef struct ann_build_info {
    char factory[ANN_FACTORY_MAX];
    int updated;            /* 1: rows added to the existing index, 0: built anew */
    size_t added;           /* vectors added now */
    size_t total;           /* vectors in the index after */
    size_t trained_on;      /* training rows (0 when none were needed) */
} ann_build_info;

/* Builds the ANN index of the matrix vi, or adds the rows it lacks to the
 * existing one when that has the factory the build would use (factory; else
 * the existing one's if it was asked for; else the rule's) and under
 * ANN_DEAD_MAX_FRACTION of its labels are dead. */
int ann_build(store *s, const vec_index *vi, const char *factory, ann_build_info *info);

/* What ann_open returns when the database has no ANN index. */
#define ANN_NONE (-1)

/* Opens the ANN index for the matrix vi. mmap = 1 maps an IVF index's
 * lists from the file (FAISS's IO_FLAG_MMAP: no read of the whole file,
 * for one search; but each search then costs more, docs/ann.md), 0 reads
 * it into memory (a server). Returns 0, ANN_NONE when the database has none
 * (nothing reported), or APP_FAIL (reported: built for another model,
 * corrupt, ...). */
int ann_open(store *s, const vec_index *vi, int mmap, ann_index *a);
void ann_close(ann_index *a);

/* The best sp->k rows of vi for the unit query q (sp->threshold applies),
 * approximate candidates re-ranked exactly, into out (sp->k entries); when
 * candidates and tail hold fewer than ap->min_rows rows, the exact scan of the
 * whole matrix (clipdex_vecs_search, sp->stage) answers instead. With
 * ap->only, candidates and tail outside it are dropped, and the exact scan
 * is that of its rows: the filtered top k, also when the filter keeps no
 * more rows than there are candidates (then it answers at once). It
 * sets FAISS's search parameters on a: one search at a time per index. */
int ann_search(ann_index *a, clipdex_ctx *ctx, const vec_index *vi, const float *q,
               const clipdex_search_params *sp, const ann_params *ap, clipdex_hit *out, size_t *n_out,
               ann_stats *st);

#endif
