/*
 * pstore.h - the people in the index database (table `persons`, schema
 * version 3, docs/schema.md): which detector made them (meta `detector`),
 * writing a photo's or a video sample's people, dropping those whose photo
 * or sample is gone, and turning the rows a search of the people's matrix
 * found (persons.id) into hits: the photo or video, its time, and the box.
 */
#ifndef CLIPDEX_APP_PERSON_PSTORE_H
#define CLIPDEX_APP_PERSON_PSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "person/pfind.h"
#include "store/store.h"

/* Compares the detector the database records with `id` (pfind_identity);
 * an index without one records it. With `redetect` the people found by
 * another detector are forgotten first (every photo and sample is then
 * looked at again). 0, or APP_FAIL (reported). */
int pstore_check_detector(store *s, const char *id, int redetect);

/* Inserts the people of a photo (hash, frame_id 0) or of a video sample
 * (hash NULL, frames.id) inside the caller's transaction; 0 or -1 (reported).
 * `ins` is pstore_insert_sql prepared. */
extern const char pstore_insert_sql[];
int pstore_insert(store *s, sqlite3_stmt *ins, const unsigned char *hash, int64_t frame_id,
                  const pfind_result *r, size_t dim);

/* Deletes the people of photos and samples no longer indexed (inside the
 * caller's transaction). 0 or -1. */
int pstore_prune(store *s);

/* A person a search found. */
typedef struct phit {
    int64_t person_id;
    int64_t file_id;     /* files.id of the photo or the video */
    char *path;          /* NUL-terminated (raw bytes) */
    size_t len;
    float score;         /* similarity to the query */
    float box[4];        /* x0, y0, x1, y1 in the image's pixels */
    float det_score;     /* the detector's score */
    uint32_t width, height; /* the image the box is in */
    int is_video;
    double t;            /* video: the sample's time, seconds */
    int64_t frame_id;    /* video: frames.id of the sample */
} phit;

/* Turns persons.id rows (best first) into at most k hits, best first; a
 * photo held at several paths gives one hit per path. Rows that are gone
 * are skipped. Returns the number of hits (*out malloc'ed, phits_free), or
 * -1 (reported). */
long phits_build(store *s, const int64_t *ids, const float *scores, size_t n, size_t k, phit **out);
void phits_free(phit *h, size_t n);

struct json_out;
/* Writes a hit's person members ("box", "person_score", "width",
 * "height", and for a video "time"). */
void phits_json(struct json_out *j, const phit *h);

#endif
