/*
 * wstore.h - `clipdex watch --db`: the sampled frames of watched inputs go
 * into the index (table `frames`, docs/schema.md), so what a camera saw can
 * be searched later with `clipdex search` and the server, as video hits
 * with time ranges.
 *   - A file input is one `files` row (its canonical path, size, mtime and
 *     SHA-256, as `clipdex index` writes a video); watching it again
 *     replaces its samples. Sample times are the stream's pts.
 *   - A live input (stream, camera, stdin) is one `files` row keyed by its
 *     URI as given (size 0, mtime 0, hash = SHA-256 of the URI); every
 *     watch appends to it. Sample times are wall-clock (CLOCK_REALTIME
 *     seconds), so a search answers *when* the camera saw it.
 * Frames are committed in small transactions (WSTORE_COMMIT_FRAMES frames
 * or WSTORE_COMMIT_S seconds, and at the end), each bumping the generation
 * so readers rebuild their vectors: a killed watch loses at most the frames
 * of one open transaction.
 */
#ifndef CLIPDEX_APP_VIDEO_WSTORE_H
#define CLIPDEX_APP_VIDEO_WSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "clipdex.h"

#define WSTORE_COMMIT_FRAMES 32
#define WSTORE_COMMIT_S 2.0

typedef struct wstore wstore;

/* Opens (creating) the database at db_path for the model (the same identity
 * check as `clipdex index`) and prepares one row per input; live[i] says
 * whether input i is live. detector_id (person mode, else NULL) is the
 * detector the people stored were found by (checked as `index --detector`
 * checks it). Returns 0 or APP_FAIL/APP_MODEL (reported). */
int wstore_open(const char *db_path, const clipdex_model *model, const char *model_path,
                const char *const *uris, const int *live, size_t n_inputs, const char *detector_id, wstore **out);
/* Person mode: a crop of input i's next frame (box in its pixels, the
 * detector's score, the frame's size, the crop's embedding), stored with
 * that frame by the next wstore_add. 0 or -1 (reported). */
int wstore_add_person(wstore *ws, size_t i, const float *box, float score, uint32_t w, uint32_t h, const float *emb);
/* Adds one sample of input i: time t (pts for files, wall clock for live
 * inputs), its embedding and optional JPEG thumbnail. 0, or -1 (reported;
 * later calls keep trying). */
int wstore_add(wstore *ws, size_t i, double t, const float *emb, const uint8_t *thumb, size_t thumb_len);
/* Frames stored so far (committed or pending). */
long wstore_count(const wstore *ws);
/* Commits what is pending and closes (NULL ok). Returns 0 or -1 (reported). */
int wstore_close(wstore *ws);

#endif
