/*
 * walk.h - collects the image and video files under the paths given to `clipdex
 * index`: recursive, follows symbolic links but never into a directory it
 * is already inside or has seen (no loops), keeps file names as raw bytes.
 */
#ifndef CLIPDEX_APP_WALK_H
#define CLIPDEX_APP_WALK_H

#include <stddef.h>
#include <stdint.h>

#ifndef WALK_MAX_DEPTH
#define WALK_MAX_DEPTH 256
#endif

typedef struct walk_entry {
    char *path;       /* absolute, NUL-terminated (names never hold NUL) */
    size_t len;
    uint64_t size;
    int64_t mtime_ns;
} walk_entry;

typedef struct walk_result {
    walk_entry *v;
    size_t n, cap;
    size_t skipped;   /* files that are neither images nor videos (by extension) */
    size_t failed;    /* paths that could not be read (each reported) */
    char **roots;     /* canonical roots; a file root is itself */
    size_t n_roots;
    char **unreadable; /* directories that could not be listed: what is indexed
                          under them is kept, not removed */
    size_t n_unreadable, cap_unreadable;
} walk_result;

/* Walks `paths`; returns 0, or -1 when memory ran out (reported). */
int walk_paths(char *const *paths, size_t n, walk_result *out);
void walk_result_free(walk_result *r);
/* The name has an extension of a format the engine decodes. */
int walk_is_image_name(const char *name);
/* The name has a video extension (mp4 m4v mkv webm mov avi mpg mpeg ts wmv
 * flv 3gp): `clipdex index` samples its frames (app/video/). */
int walk_is_video_name(const char *name);
/* `path` lies under one of the directories that could not be listed. */
int walk_under_unreadable(const walk_result *r, const char *path, size_t len);
/* `path` lies under (or is) one of the roots. */
int walk_under_roots(const walk_result *r, const char *path, size_t len);

#endif
