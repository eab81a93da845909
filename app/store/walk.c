/*
 * walk.c - the directory walk of `clipdex index`: canonical roots, a
 * recursive readdir that stats through symbolic links, a set of visited
 * (device, inode) pairs against loops, and the image-extension filter.
 */
#include "store/walk.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "util/hmap.h"
#include "util/report.h"

static const char *const image_exts[] = {"jpg", "jpeg", "jpe", "jfif", "png", "webp", "gif",
                                         "bmp", "dib", "tif", "tiff", "pnm", "ppm", "pgm", "pbm"};

static const char *const video_exts[] = {"mp4", "m4v", "mkv", "webm", "mov", "avi",
                                         "mpg", "mpeg", "ts",  "wmv", "flv", "3gp"};

static int has_ext(const char *name, const char *const *exts, size_t n)
{
    const char *dot = strrchr(name, '.');
    const char *slash = strrchr(name, '/');
    if (!dot || (slash && dot < slash) || dot[1] == '\0') return 0;
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(dot + 1, exts[i]) == 0) return 1;
    return 0;
}

int walk_is_image_name(const char *name)
{
    return has_ext(name, image_exts, sizeof image_exts / sizeof image_exts[0]);
}

int walk_is_video_name(const char *name)
{
    return has_ext(name, video_exts, sizeof video_exts / sizeof video_exts[0]);
}

typedef struct walker {
    walk_result *r;
    hmap dirs;          /* visited directories, keyed by their dev_ino */
    uint64_t *dev_ino;  /* [2 * n_dirs] keys of `dirs` */
    size_t n_dirs, cap_dirs;
    int nomem;
} walker;

static int add_file(walker *w, const char *path, size_t len, const struct stat *sb)
{
    walk_result *r = w->r;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 256;
        walk_entry *v = realloc(r->v, cap * sizeof *v);
        if (!v) return -1;
        r->v = v;
        r->cap = cap;
    }
    char *p = malloc(len + 1);
    if (!p) return -1;
    memcpy(p, path, len + 1);
    walk_entry *e = &r->v[r->n++];
    e->path = p;
    e->len = len;
    e->size = (uint64_t)sb->st_size;
    e->mtime_ns = (int64_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec;
    return 0;
}

/* Marks a directory visited; returns 1 if it was new, 0 if seen, -1 nomem. */
static int visit_dir(walker *w, const struct stat *sb)
{
    if (w->n_dirs == w->cap_dirs) {
        /* the map points into dev_ino: rebuild it after a realloc */
        size_t cap = w->cap_dirs ? w->cap_dirs * 2 : 64;
        uint64_t *v = realloc(w->dev_ino, cap * 2 * sizeof *v);
        if (!v) return -1;
        w->dev_ino = v;
        w->cap_dirs = cap;
        hmap_free(&w->dirs);
        for (size_t i = 0; i < w->n_dirs; i++)
            if (hmap_put(&w->dirs, &w->dev_ino[2 * i], 2 * sizeof(uint64_t), i)) return -1;
    }
    uint64_t *k = &w->dev_ino[2 * w->n_dirs];
    k[0] = (uint64_t)sb->st_dev;
    k[1] = (uint64_t)sb->st_ino;
    if (hmap_get(&w->dirs, k, 2 * sizeof(uint64_t), NULL)) return 0;
    if (hmap_put(&w->dirs, k, 2 * sizeof(uint64_t), w->n_dirs)) return -1;
    w->n_dirs++;
    return 1;
}

static void walk_dir(walker *w, char *path, size_t len, int depth);

/* Handles one path of any kind. `path` has room for PATH_MAX bytes. */
static void walk_one(walker *w, char *path, size_t len, int depth, int is_root)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        report_error("cannot read '%s': %s", path, strerror(errno));
        w->r->failed++;
        return;
    }
    if (S_ISDIR(sb.st_mode)) {
        int v = visit_dir(w, &sb);
        if (v < 0) w->nomem = 1;
        if (v <= 0) return; /* seen already: a link loop or a second route */
        if (depth >= WALK_MAX_DEPTH) {
            report_error("cannot read '%s': more than %d directories deep", path, WALK_MAX_DEPTH);
            w->r->failed++;
            return;
        }
        walk_dir(w, path, len, depth + 1);
        return;
    }
    if (!S_ISREG(sb.st_mode) || (!is_root && !walk_is_image_name(path) && !walk_is_video_name(path))) {
        w->r->skipped++;
        return;
    }
    if (add_file(w, path, len, &sb)) w->nomem = 1;
}

/* Remembers a directory that could not be listed (or read to its end). */
static void add_unreadable(walker *w, const char *path, size_t len)
{
    walk_result *r = w->r;
    if (r->n_unreadable == r->cap_unreadable) {
        size_t cap = r->cap_unreadable ? 2 * r->cap_unreadable : 8;
        char **v = realloc(r->unreadable, cap * sizeof *v);
        if (!v) {
            w->nomem = 1;
            return;
        }
        r->unreadable = v;
        r->cap_unreadable = cap;
    }
    char *p = malloc(len + 1);
    if (!p) {
        w->nomem = 1;
        return;
    }
    memcpy(p, path, len + 1);
    r->unreadable[r->n_unreadable++] = p;
}

static void walk_dir(walker *w, char *path, size_t len, int depth)
{
    DIR *d = opendir(path);
    if (!d) {
        report_error("cannot read directory '%s': %s", path, strerror(errno));
        w->r->failed++;
        add_unreadable(w, path, len);
        return;
    }
    struct dirent *de;
    while (!w->nomem && (errno = 0, de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) continue;
        size_t nl = strlen(name);
        int slash = len > 0 && path[len - 1] != '/';
        if (len + slash + nl + 1 > PATH_MAX) {
            report_error("cannot read '%s/%s': path too long", path, name);
            w->r->failed++;
            continue;
        }
        if (slash) path[len] = '/';
        memcpy(path + len + slash, name, nl + 1);
        walk_one(w, path, len + slash + nl, depth, 0);
        path[len] = '\0';
    }
    if (errno && !w->nomem) {
        report_error("cannot read directory '%s': %s", path, strerror(errno));
        w->r->failed++;
        add_unreadable(w, path, len);
    }
    closedir(d);
}

int walk_paths(char *const *paths, size_t n, walk_result *out)
{
    memset(out, 0, sizeof *out);
    walker w;
    memset(&w, 0, sizeof w);
    w.r = out;
    hmap_init(&w.dirs);
    out->roots = calloc(n ? n : 1, sizeof *out->roots);
    char *buf = malloc(PATH_MAX + 1);
    if (!out->roots || !buf) w.nomem = 1;
    for (size_t i = 0; i < n && !w.nomem; i++) {
        char *canon = realpath(paths[i], NULL);
        if (!canon) {
            report_error("cannot read '%s': %s", paths[i], strerror(errno));
            out->failed++;
            continue;
        }
        out->roots[out->n_roots++] = canon;
        size_t len = strlen(canon);
        memcpy(buf, canon, len + 1);
        walk_one(&w, buf, len, 0, 1);
    }
    free(buf);
    free(w.dev_ino);
    hmap_free(&w.dirs);
    if (w.nomem) {
        report_error("out of memory while listing files");
        return -1;
    }
    return 0;
}

void walk_result_free(walk_result *r)
{
    for (size_t i = 0; i < r->n; i++) free(r->v[i].path);
    free(r->v);
    for (size_t i = 0; i < r->n_roots; i++) free(r->roots[i]);
    free(r->roots);
    for (size_t i = 0; i < r->n_unreadable; i++) free(r->unreadable[i]);
    free(r->unreadable);
    memset(r, 0, sizeof *r);
}

int walk_under_roots(const walk_result *r, const char *path, size_t len)
{
    for (size_t i = 0; i < r->n_roots; i++) {
        const char *root = r->roots[i];
        size_t rl = strlen(root);
        if (len < rl || memcmp(path, root, rl) != 0) continue;
        if (len == rl || path[rl] == '/' || (rl > 0 && root[rl - 1] == '/')) return 1;
    }
    return 0;
}

int walk_under_unreadable(const walk_result *r, const char *path, size_t len)
{
    for (size_t i = 0; i < r->n_unreadable; i++) {
        const char *d = r->unreadable[i];
        size_t dl = strlen(d);
        if (len > dl && memcmp(path, d, dl) == 0 && (path[dl] == '/' || d[dl - 1] == '/')) return 1;
    }
    return 0;
}
