/*
 * vindex.h - videos in the index (docs/schema.md, table `frames`): samples
 * one video's frames by presentation time (every `every` seconds, plus scene
 * changes over `scene`), embeds them through the public API as pixels, and
 * stores each sample's embedding, time and JPEG thumbnail together with the
 * video's `files` row in one transaction, so a killed run loses at most the
 * video in flight and a failed video leaves no stale samples.
 */
#ifndef CLIPDEX_APP_VIDEO_VINDEX_H
#define CLIPDEX_APP_VIDEO_VINDEX_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "clipdex.h"
#include "person/pfind.h"
#include "store/store.h"
#include "util/sha256.h"

#define VINDEX_EVERY_DEFAULT 2.0
#define VINDEX_SCENE_DEFAULT 0.3
#define VINDEX_THUMB_SIDE 160
#define VINDEX_BATCH 16
#ifndef VINDEX_MAX_SAMPLES
#define VINDEX_MAX_SAMPLES 100000 /* per video */
#endif

typedef struct vindex_opts {
    double every;   /* seconds between samples */
    double scene;   /* scene score that adds a sample (> 1 = off) */
    int no_thumbs;
    volatile sig_atomic_t *stop; /* set by a signal: give the video up, store nothing */
    const pfind *persons;        /* NULL, or also find and embed each sample's people */
    size_t *persons_found;       /* NULL, or adds the people stored */
} vindex_opts;

typedef struct vindex_video {
    const char *path;
    size_t len;
    uint64_t size;
    int64_t mtime_ns;
} vindex_video;

/* Indexes one video. Returns 0 (*n_samples stored), 1 when stopped, or -1
 * with the reason in err (the video's old row and samples are then removed). */
int vindex_add(store *s, clipdex_ctx *ctx, const clipdex_model *model, const vindex_video *v,
               const vindex_opts *o, size_t *n_samples, char *err, size_t errlen);

/* SHA-256 of a file's bytes (the `files.hash` of a video). 0, or -1 with
 * the reason in err. */
int vindex_file_hash(const char *path, unsigned char out[SHA256_LEN], char *err, size_t errlen);

/* Deletes the samples of files that are no longer indexed, and the people
 * of photos and samples that are gone. 0 or -1. */
int vindex_prune(store *s);

#endif
