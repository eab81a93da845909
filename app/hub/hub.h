/*
 * hub.h - models by name: names and aliases (names.c), the download cache
 * (cache.c) and the Hugging Face hub downloader (download.c over http.c).
 *
 * The cache is $CLIPDEX_HOME, else $XDG_CACHE_HOME/clipdex, else
 * ~/.cache/clipdex; a model lives in models/<org>--<name>/ with the hub's
 * files under their own names, converted weights as model-<type>.gguf and
 * the manifest clipdex.json. Invariants: a file under its final name is
 * complete and verified (downloads go to NAME.part, are checked, then
 * renamed); clipdex.json is written last, so a directory without it is an
 * unfinished download; .lock is held (flock) by whoever writes the directory.
 *
 * Nothing here prints or exits: functions return 0 on success and -1 with a
 * message in a hub_err, and report progress through hub_report callbacks.
 */
#ifndef CLIPDEX_APP_HUB_H
#define CLIPDEX_APP_HUB_H

#include <stddef.h>
#include <stdint.h>

#define HUB_ERR_LEN 1024
#define HUB_PATH_MAX 4096
#define HUB_REPO_MAX 200
#define HUB_DEFAULT_NAME "ViT-B-32"
#define HUB_MANIFEST "clipdex.json"

typedef struct hub_err {
    char msg[HUB_ERR_LEN];
} hub_err;

/* Sets e->msg; returns -1. */
int hub_fail(hub_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- names.c ---------------------------------------------------------- */

/* The repository ("org/name") of an alias (ViT-B-32, ViT-B/16, ...) or of a
 * well-formed hub repository name. Returns 0, or -1 if `name` is neither. */
int hub_repo_of(const char *name, char *repo, size_t len);
/* The alias of a repository, or NULL. */
const char *hub_alias_of(const char *repo);
/* Parses f32|f16|q8|q5|q4 (and q8_0, ...) into a CLIPDEX_TYPE_*; -1 if unknown. */
int hub_type_parse(const char *s);
/* The short name of a CLIPDEX_TYPE_* ("q8"). */
const char *hub_type_name(int type);
/* The hub's base URL without a trailing '/': $CLIPDEX_HUB_URL, else
 * $HF_ENDPOINT, else https://huggingface.co. */
const char *hub_endpoint(char *buf, size_t len);
/* out = dir/name; -1 (message) if it does not fit. */
int hub_path_join(char *out, size_t len, const char *dir, const char *name, hub_err *e);
/* The cache root (see above). */
int hub_home(char *out, size_t len, hub_err *e);
/* The cache directory of a repository: <home>/models/<org>--<name>. */
int hub_model_dir(const char *repo, char *out, size_t len, hub_err *e);

/* ---- cache.c ---------------------------------------------------------- */

typedef struct hub_entry {
    char repo[HUB_REPO_MAX];
    char dir[HUB_PATH_MAX];
    uint64_t bytes;      /* all files of the directory */
    char types[64];      /* what can be used: "f32 q8" ("" if unfinished) */
    char use[8];         /* what a name resolves to: "f32" or a converted type */
    int complete;        /* the manifest is there */
} hub_entry;

/* Resolves a model name to the path to load (the directory, or the
 * converted file the model uses). Returns 1 found, 0 not downloaded, -1 error. */
int hub_cache_find(const char *name, char *path, size_t len, hub_err *e);
/* Calls `each` for every model directory of the cache, sorted by name. */
int hub_cache_list(void (*each)(const hub_entry *m, void *arg), void *arg, hub_err *e);
/* Deletes a model's directory (waiting for a download in progress). */
int hub_cache_rm(const char *name, hub_err *e);

/* Directory lock: opens (creating) dir/.lock and takes an exclusive flock,
 * calling `waiting` first if another process holds it. Returns the fd or -1. */
int hub_lock(const char *dir, void (*waiting)(void *arg), void *arg, hub_err *e);
void hub_unlock(int fd);

/* The manifest of a downloaded model. */
typedef struct hub_manifest {
    char repo[HUB_REPO_MAX];
    char commit[64];
    char layout[16];     /* "hf" or "openclip" */
    char use[8];         /* type the name resolves to */
} hub_manifest;

/* Reads dir/clipdex.json: 1 read, 0 absent, -1 error. */
int hub_manifest_read(const char *dir, hub_manifest *m, hub_err *e);
/* Writes dir/clipdex.json atomically, with the verified files' sizes and
 * sha256s (`files`: a jansson array, borrowed; may be NULL to keep the ones
 * on disk). */
int hub_manifest_write(const char *dir, const hub_manifest *m, void *files, hub_err *e);

/* ---- download.c ------------------------------------------------------- */

/* What a download reports while it runs (any callback may be NULL). */
typedef struct hub_report {
    void *arg;
    /* a file starts (done > 0 when resuming) and then progresses */
    void (*bytes)(void *arg, const char *file, uint64_t done, uint64_t total);
    /* one line of news: "waiting for ...", "converting to q8", ... */
    void (*note)(void *arg, const char *msg);
} hub_report;

/* Downloads the model `name` into the cache (a no-op for the files already
 * there), then with type >= 0 converts it once (type f32: use the files as
 * downloaded) and makes it the type the name resolves to. */
int hub_get(const char *name, int type, const hub_report *r, hub_err *e);

#endif
