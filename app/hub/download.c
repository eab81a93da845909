/*
 * download.c - `clipdex model get`: fetches a model from the Hugging Face
 * hub (or a mirror) into the cache, the way huggingface_hub does: the tree
 * API lists the files with their sizes and LFS sha256s, each file comes from
 * {endpoint}/{repo}/resolve/main/{file} (following the redirect to the CDN).
 *
 * Invariants (see hub.h): the model directory is locked for the whole get;
 * bytes land in FILE.part (kept across failures and resumed with a Range
 * request), are checked against the listed size and, for LFS files, the
 * sha256 (a mismatch deletes the .part), then renamed to FILE; the manifest
 * is written last. Only the files the engine reads are fetched, by fixed
 * names, so nothing from the network becomes a path.
 */
#include "hub.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clipdex.h"
#include "http.h"
#include "util/sha256.h"

/* Attempts per file when the connection drops (each resumes). */
#ifndef HUB_ATTEMPTS
#define HUB_ATTEMPTS 4
#endif
#define HUB_FILES_MAX 8

static const char *const hf_need[] = {"config.json", "model.safetensors", NULL};
static const char *const openclip_need[] = {"open_clip_config.json", "open_clip_model.safetensors", NULL};
static const char *const extras[] = {"preprocessor_config.json", "vocab.json", "merges.txt", NULL};
/* OpenAI's vocabulary file, fetched only without vocab.json + merges.txt */
static const char *const bpe_gz[] = {"bpe_simple_vocab_16e6.txt.gz", NULL};

typedef struct hub_file {
    const char *path;  /* one of the names above */
    uint64_t size;
    char sha256[72];   /* LFS files: lower-case hex; "" otherwise */
} hub_file;

typedef struct plan {
    const char *layout;
    hub_file f[HUB_FILES_MAX];
    int n;
    int has_vocab;
} plan;

static void note(const hub_report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(const hub_report *r, const char *fmt, ...)
{
    char msg[HUB_ERR_LEN];
    va_list ap;
    if (!r || !r->note) return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->note(r->arg, msg);
}

static int is_sha256(const char *s)
{
    size_t n = strspn(s, "0123456789abcdef");
    return n == 64 && s[n] == '\0';
}

/* ---- the file list ---------------------------------------------------- */

static json_t *tree_find(json_t *tree, const char *path)
{
    size_t i;
    json_t *v;
    json_array_foreach(tree, i, v) {
        const char *p = json_string_value(json_object_get(v, "path"));
        const char *t = json_string_value(json_object_get(v, "type"));
        if (p && strcmp(p, path) == 0 && (!t || strcmp(t, "file") == 0)) return v;
    }
    return NULL;
}

static int tree_has_all(json_t *tree, const char *const *names)
{
    for (; *names; names++)
        if (!tree_find(tree, *names)) return 0;
    return 1;
}

static void plan_add(plan *p, json_t *entry, const char *path)
{
    hub_file *f = &p->f[p->n++];
    json_t *lfs = json_object_get(entry, "lfs");
    json_t *size = json_object_get(lfs ? lfs : entry, "size");
    const char *oid = json_string_value(json_object_get(lfs, "oid"));
    f->path = path;
    f->size = json_is_integer(size) && json_integer_value(size) >= 0 ? (uint64_t)json_integer_value(size) : 0;
    snprintf(f->sha256, sizeof f->sha256, "%s", oid && is_sha256(oid) ? oid : "");
}

static void plan_add_all(plan *p, json_t *tree, const char *const *names)
{
    for (; *names; names++) {
        json_t *v = tree_find(tree, *names);
        if (v && p->n < HUB_FILES_MAX) plan_add(p, v, *names);
    }
}

/* Picks the files to fetch from a tree listing (JSON array). */
static int plan_make(const char *repo, const char *body, plan *p, hub_err *e)
{
    json_error_t je;
    json_t *tree = json_loads(body, 0, &je);
    memset(p, 0, sizeof *p);
    int rc = 0;
    if (!json_is_array(tree))
        rc = hub_fail(e, "the file list of '%s' is not a JSON array (%s)", repo, tree ? "other JSON" : je.text);
    else if (tree_has_all(tree, hf_need))
        p->layout = "hf", plan_add_all(p, tree, hf_need);
    else if (tree_has_all(tree, openclip_need))
        p->layout = "openclip", plan_add_all(p, tree, openclip_need);
    else
        rc = hub_fail(e,
                      "'%s' has neither config.json + model.safetensors (Hugging Face CLIPModel) nor "
                      "open_clip_config.json + open_clip_model.safetensors (OpenCLIP): clipdex cannot use it",
                      repo);
    if (!rc) {
        plan_add_all(p, tree, extras);
        p->has_vocab = tree_find(tree, "vocab.json") && tree_find(tree, "merges.txt");
        if (!p->has_vocab) plan_add_all(p, tree, bpe_gz);
        p->has_vocab = p->has_vocab || tree_find(tree, bpe_gz[0]);
    }
    json_decref(tree);
    return rc;
}

static int plan_fetch(const hub_http *h, const char *repo, plan *p, hub_err *e)
{
    char url[2048], what[300], *body = NULL;
    size_t len;
    snprintf(url, sizeof url, "%s/api/models/%s/tree/main", h->endpoint, repo);
    snprintf(what, sizeof what, "the file list of '%s'", repo);
    if (hub_http_get_mem(h, url, what, &body, &len, e)) return -1;
    int rc = plan_make(repo, body, p, e);
    free(body);
    return rc;
}

/* ---- one file --------------------------------------------------------- */

static int file_sha256(const char *path, char hex[65], hub_err *e)
{
    FILE *f = fopen(path, "rb");
    if (!f) return hub_fail(e, "cannot read '%s': %s", path, strerror(errno));
    static unsigned char buf[1 << 20];
    unsigned char d[SHA256_LEN];
    sha256_ctx c;
    sha256_init(&c);
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) sha256_update(&c, buf, n);
    int bad = ferror(f);
    fclose(f);
    if (bad) return hub_fail(e, "cannot read '%s'", path);
    sha256_final(&c, d);
    hex_encode(d, SHA256_LEN, hex);
    return 0;
}

/* Checks a downloaded file's size and sha256; 0 good, -1 (message) bad. */
static int verify(const char *path, const char *repo, const hub_file *f, const hub_http_meta *m, hub_err *e)
{
    struct stat st;
    char got[65];
    const char *want = f->sha256[0] ? f->sha256 : is_sha256(m->linked_etag) ? m->linked_etag : NULL;
    if (stat(path, &st) != 0) return hub_fail(e, "cannot stat '%s': %s", path, strerror(errno));
    if ((uint64_t)st.st_size != f->size)
        return hub_fail(e, "'%s' of '%s' has %llu bytes, the hub lists %llu", f->path, repo,
                        (unsigned long long)st.st_size, (unsigned long long)f->size);
    if (f->sha256[0] && is_sha256(m->linked_etag) && strcmp(f->sha256, m->linked_etag) != 0)
        return hub_fail(e, "the hub gives two sha256 for '%s' of '%s': %s (file list) and %s (X-Linked-Etag)",
                        f->path, repo, f->sha256, m->linked_etag);
    if (!want) return 0;
    if (file_sha256(path, got, e)) return -1;
    if (strcmp(got, want) != 0)
        return hub_fail(e, "'%s' of '%s' is corrupt: its sha256 is %s, the hub publishes %s", f->path, repo, got,
                        want);
    return 0;
}

/* Downloads into `part` (resuming), retrying dropped connections. */
static int download_part(const hub_http *h, const char *url, const char *part, const hub_file *f,
                         hub_http_meta *m, hub_err *e)
{
    FILE *fp = fopen(part, "ab");
    if (!fp) return hub_fail(e, "cannot create '%s': %s", part, strerror(errno));
    uint64_t have = (uint64_t)ftell(fp);
    int rc = 0;
    if (have > f->size) rc = ftruncate(fileno(fp), 0) != 0 ? hub_fail(e, "cannot truncate '%s'", part) : 0;
    if (have > f->size) have = 0;
    for (int attempt = 1; !rc && (have < f->size || f->size == 0); attempt++) {
        if (have > 0) note(h->report, "resuming '%s' at %llu of %llu bytes", f->path, (unsigned long long)have,
                           (unsigned long long)f->size);
        rc = hub_http_get_file(h, url, f->path, fp, &have, f->size, m, e);
        if (rc == HUB_HTTP_DROPPED && attempt < HUB_ATTEMPTS) rc = 0;
        else if (rc == 0) break;
    }
    if (fflush(fp) != 0 || fsync(fileno(fp)) != 0) rc = rc ? rc : hub_fail(e, "cannot write '%s'", part);
    fclose(fp);
    if (rc == HUB_HTTP_DROPPED) {
        size_t n = strlen(e->msg);
        snprintf(e->msg + n, sizeof e->msg - n, "; run the command again to resume");
    }
    return rc ? -1 : 0;
}

static int fetch_file(const hub_http *h, const char *repo, const char *dir, const hub_file *f,
                      hub_http_meta *m, hub_err *e)
{
    char url[2048], final[HUB_PATH_MAX], part[HUB_PATH_MAX], name[80];
    snprintf(url, sizeof url, "%s/%s/resolve/main/%s", h->endpoint, repo, f->path);
    snprintf(name, sizeof name, "%s.part", f->path);
    if (hub_path_join(final, sizeof final, dir, f->path, e) || hub_path_join(part, sizeof part, dir, name, e))
        return -1;
    m->linked_etag[0] = '\0'; /* X-Linked-Etag is per file */
    hub_err ignore;
    if (access(final, F_OK) == 0) { /* left by an unfinished get: verified when renamed */
        if (verify(final, repo, f, m, &ignore) == 0) return 0;
        unlink(final);
    }
    if (download_part(h, url, part, f, m, e)) return -1;
    if (verify(part, repo, f, m, e)) {
        unlink(part);
        size_t n = strlen(e->msg);
        snprintf(e->msg + n, sizeof e->msg - n, "; the download was deleted, nothing was kept");
        return -1;
    }
    if (rename(part, final) != 0) return hub_fail(e, "cannot rename '%s': %s", part, strerror(errno));
    return 0;
}

/* ---- the model -------------------------------------------------------- */

static int download(const char *repo, const char *dir, const hub_report *r, hub_manifest *man, hub_err *e)
{
    hub_http h;
    hub_http_meta meta = {{0}, {0}};
    plan p;
    if (hub_http_init(&h, r, e) || plan_fetch(&h, repo, &p, e)) return -1;
    json_t *files = json_array();
    int rc = files ? 0 : hub_fail(e, "out of memory");
    for (int i = 0; !rc && i < p.n; i++) {
        rc = fetch_file(&h, repo, dir, &p.f[i], &meta, e);
        json_array_append_new(files, json_pack("{s:s, s:I, s:s?}", "path", p.f[i].path, "size",
                                               (json_int_t)p.f[i].size, "sha256",
                                               p.f[i].sha256[0] ? p.f[i].sha256 : NULL));
    }
    if (!rc) {
        memset(man, 0, sizeof *man);
        snprintf(man->repo, sizeof man->repo, "%s", repo);
        snprintf(man->commit, sizeof man->commit, "%s", meta.commit);
        snprintf(man->layout, sizeof man->layout, "%s", p.layout);
        snprintf(man->use, sizeof man->use, "f32");
        rc = hub_manifest_write(dir, man, files, e);
    }
    json_decref(files);
    if (!rc && !p.has_vocab)
        note(r, "'%s' has no tokenizer files: text needs CLIPDEX_VOCAB (vocab.json + merges.txt)", repo);
    return rc;
}

/* Writes dir/model-<type>.gguf from the downloaded files, via a .part. */
static int convert(const char *dir, const char *out, int type, hub_err *e)
{
    char part[HUB_PATH_MAX + 16];
    clipdex_ctx *ctx = NULL;
    clipdex_model *model = NULL;
    clipdex_ctx_params cp = clipdex_ctx_params_default();
    snprintf(part, sizeof part, "%s.part", out);
    if (clipdex_ctx_new(&ctx, &cp) != CLIPDEX_OK) return hub_fail(e, "cannot create a context to convert '%s'", dir);
    int st = clipdex_model_load(ctx, dir, NULL, &model);
    if (st == CLIPDEX_OK) st = clipdex_model_quantize_layout(ctx, model, type, CLIPDEX_LAYOUT_PACKED, part);
    int rc = st == CLIPDEX_OK ? 0 : hub_fail(e, "cannot convert '%s': %s", dir, clipdex_ctx_errmsg(ctx));
    if (!rc && rename(part, out) != 0) rc = hub_fail(e, "cannot rename '%s': %s", part, strerror(errno));
    if (rc) unlink(part);
    clipdex_model_free(model);
    clipdex_ctx_free(ctx);
    return rc;
}

/* Makes `type` what the model's name resolves to, converting once. */
static int use_type(const char *dir, hub_manifest *man, int type, const hub_report *r, hub_err *e)
{
    const char *tn = type == CLIPDEX_TYPE_F32 ? "f32" : hub_type_name(type);
    char out[HUB_PATH_MAX], name[32];
    snprintf(name, sizeof name, "model-%s.gguf", tn);
    if (hub_path_join(out, sizeof out, dir, name, e)) return -1;
    if (type != CLIPDEX_TYPE_F32 && access(out, R_OK) != 0) {
        note(r, "converting '%s' to %s (once)", man->repo, tn);
        if (convert(dir, out, type, e)) return -1;
    }
    snprintf(man->use, sizeof man->use, "%s", tn);
    return hub_manifest_write(dir, man, NULL, e);
}

static int mkdirs(const char *path, hub_err *e)
{
    char p[HUB_PATH_MAX];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0') continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) return hub_fail(e, "cannot create '%s': %s", p, strerror(errno));
        *s = c;
        if (!c) return 0;
    }
}

typedef struct wait_arg {
    const hub_report *r;
    const char *repo;
} wait_arg;

static void waiting(void *arg)
{
    wait_arg *w = arg;
    note(w->r, "waiting for another clipdex that is fetching '%s'", w->repo);
}

int hub_get(const char *name, int type, const hub_report *r, hub_err *e)
{
    char repo[HUB_REPO_MAX], dir[HUB_PATH_MAX];
    hub_manifest man;
    if (hub_repo_of(name, repo, sizeof repo))
        return hub_fail(e, "'%s' is not a model name: give ORG/NAME as on the hub, or an alias (ViT-B-32, ViT-B-16, "
                           "ViT-L-14)", name);
    if (hub_model_dir(repo, dir, sizeof dir, e) || mkdirs(dir, e)) return -1;
    wait_arg w = {r, repo};
    int fd = hub_lock(dir, waiting, &w, e);
    if (fd < 0) return -1;
    int rc = hub_manifest_read(dir, &man, e);
    if (rc == 0)
        rc = download(repo, dir, r, &man, e);
    else if (rc == 1)
        note(r, "'%s' is already downloaded in %s", repo, dir), rc = 0;
    if (rc == 0 && type >= 0) rc = use_type(dir, &man, type, r, e);
    hub_unlock(fd);
    return rc;
}
