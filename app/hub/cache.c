/*
 * cache.c - the model cache on disk (layout and invariants in hub.h): the
 * per-model lock, the manifest clipdex.json, name -> path resolution,
 * listing and removal. Only files directly inside a model directory are
 * ever created or deleted; names come from hub_repo_of, never from the
 * network, so no path leaves the cache.
 */
#include "hub.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int hub_lock(const char *dir, void (*waiting)(void *arg), void *arg, hub_err *e)
{
    char p[HUB_PATH_MAX];
    if (hub_path_join(p, sizeof p, dir, ".lock", e)) return -1;
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return hub_fail(e, "cannot create lock file '%s': %s", p, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
    if (waiting) waiting(arg);
    while (flock(fd, LOCK_EX) != 0) {
        if (errno == EINTR) continue;
        hub_fail(e, "cannot lock '%s': %s", p, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

void hub_unlock(int fd)
{
    if (fd >= 0) close(fd);
}

static void copy_str(char *dst, size_t len, json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    snprintf(dst, len, "%s", v ? v : "");
}

static json_t *manifest_load(const char *dir, int *absent, hub_err *e)
{
    char p[HUB_PATH_MAX];
    *absent = 0;
    if (hub_path_join(p, sizeof p, dir, HUB_MANIFEST, e)) return NULL;
    if (access(p, F_OK) != 0) {
        *absent = 1;
        return NULL;
    }
    json_error_t je;
    json_t *root = json_load_file(p, 0, &je);
    if (!root || !json_is_object(root)) {
        hub_fail(e, "cannot read '%s': %s (remove the model and get it again)", p, root ? "not an object" : je.text);
        json_decref(root);
        return NULL;
    }
    return root;
}

int hub_manifest_read(const char *dir, hub_manifest *m, hub_err *e)
{
    int absent;
    json_t *root = manifest_load(dir, &absent, e);
    if (!root) return absent ? 0 : -1;
    copy_str(m->repo, sizeof m->repo, root, "repo");
    copy_str(m->commit, sizeof m->commit, root, "commit");
    copy_str(m->layout, sizeof m->layout, root, "layout");
    copy_str(m->use, sizeof m->use, root, "use");
    if (!m->use[0]) snprintf(m->use, sizeof m->use, "f32");
    json_decref(root);
    return 1;
}

int hub_manifest_write(const char *dir, const hub_manifest *m, void *files, hub_err *e)
{
    char p[HUB_PATH_MAX], tmp[HUB_PATH_MAX];
    int absent;
    json_t *old = files ? NULL : manifest_load(dir, &absent, e);
    json_t *fl = files ? json_incref(files) : json_incref(json_object_get(old, "files"));
    json_decref(old);
    json_t *root = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "repo", m->repo, "revision", "main", "commit",
                             m->commit, "layout", m->layout, "use", m->use, "files", fl ? fl : json_array());
    if (!root) return hub_fail(e, "cannot build the manifest of '%s'", m->repo);
    int rc = hub_path_join(p, sizeof p, dir, HUB_MANIFEST, e) || hub_path_join(tmp, sizeof tmp, dir, HUB_MANIFEST ".tmp", e);
    if (!rc && json_dump_file(root, tmp, JSON_INDENT(1) | JSON_SORT_KEYS) != 0)
        rc = hub_fail(e, "cannot write '%s': %s", tmp, strerror(errno));
    if (!rc && rename(tmp, p) != 0) rc = hub_fail(e, "cannot rename '%s': %s", tmp, strerror(errno));
    json_decref(root);
    return rc ? -1 : 0;
}

/* dir/model-<use>.gguf if the model uses a converted type and it is there,
 * else dir itself. */
static int use_path(const char *dir, const hub_manifest *m, char *path, size_t len, hub_err *e)
{
    char name[64];
    snprintf(name, sizeof name, "model-%s.gguf", m->use);
    if (strcmp(m->use, "f32") != 0) {
        if (hub_path_join(path, len, dir, name, e)) return -1;
        if (access(path, R_OK) == 0) return 0;
    }
    return snprintf(path, len, "%s", dir) < (int)len ? 0 : hub_fail(e, "path '%s' is too long", dir);
}

int hub_cache_find(const char *name, char *path, size_t len, hub_err *e)
{
    char repo[HUB_REPO_MAX], dir[HUB_PATH_MAX];
    hub_manifest m;
    if (hub_repo_of(name, repo, sizeof repo)) return hub_fail(e, "'%s' is not a model name (ORG/NAME or an alias)", name);
    if (hub_model_dir(repo, dir, sizeof dir, e)) return -1;
    int r = hub_manifest_read(dir, &m, e);
    if (r <= 0) return r;
    return use_path(dir, &m, path, len, e) ? -1 : 1;
}

/* Adds up the dir's files and the types they offer. */
static void entry_scan(hub_entry *m)
{
    DIR *d = opendir(m->dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        char p[HUB_PATH_MAX], t[16];
        struct stat st;
        if (snprintf(p, sizeof p, "%s/%s", m->dir, de->d_name) >= (int)sizeof p) continue;
        if (stat(p, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        m->bytes += (uint64_t)st.st_size;
        size_t n = strlen(de->d_name);
        if (m->complete && sscanf(de->d_name, "model-%15[^.].gguf", t) == 1 && n > 5 &&
            strcmp(de->d_name + n - 5, ".gguf") == 0 && strlen(m->types) + strlen(t) + 2 < sizeof m->types) {
            strcat(m->types, " ");
            strcat(m->types, t);
        }
    }
    closedir(d);
}

static int entry_load(const char *models, const char *dname, hub_entry *m, hub_err *e)
{
    hub_manifest man;
    memset(m, 0, sizeof *m);
    if (snprintf(m->dir, sizeof m->dir, "%s/%s", models, dname) >= (int)sizeof m->dir)
        return hub_fail(e, "path '%s' is too long", models);
    const char *sep = strstr(dname, "--");
    if (snprintf(m->repo, sizeof m->repo, "%.*s/%s", sep ? (int)(sep - dname) : 0, dname, sep ? sep + 2 : dname) >=
        (int)sizeof m->repo)
        return hub_fail(e, "model directory name '%s' is too long", dname);
    int r = hub_manifest_read(m->dir, &man, e);
    if (r < 0) return -1;
    m->complete = r;
    if (r) {
        snprintf(m->types, sizeof m->types, "f32");
        snprintf(m->use, sizeof m->use, "%s", man.use);
    }
    entry_scan(m);
    return 0;
}

int hub_cache_list(void (*each)(const hub_entry *m, void *arg), void *arg, hub_err *e)
{
    char home[HUB_PATH_MAX], models[HUB_PATH_MAX];
    if (hub_home(home, sizeof home, e) || hub_path_join(models, sizeof models, home, "models", e)) return -1;
    struct dirent **names = NULL;
    int n = scandir(models, &names, NULL, alphasort);
    if (n < 0) return errno == ENOENT ? 0 : hub_fail(e, "cannot read '%s': %s", models, strerror(errno));
    int rc = 0;
    for (int i = 0; i < n; i++) {
        hub_entry m;
        if (!rc && names[i]->d_name[0] != '.' && strstr(names[i]->d_name, "--")) {
            if (entry_load(models, names[i]->d_name, &m, e) == 0)
                each(&m, arg);
            else
                rc = -1;
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

/* Deletes the files of a model directory, then the directory. */
static int dir_remove(const char *dir, hub_err *e)
{
    DIR *d = opendir(dir);
    if (!d) return hub_fail(e, "cannot open '%s': %s", dir, strerror(errno));
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d))) {
        char p[HUB_PATH_MAX];
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        if (hub_path_join(p, sizeof p, dir, de->d_name, e)) {
            rc = -1;
            break;
        }
        if (unlink(p) != 0) {
            rc = hub_fail(e, "cannot delete '%s': %s", p, strerror(errno));
            break;
        }
    }
    closedir(d);
    if (!rc && rmdir(dir) != 0) rc = hub_fail(e, "cannot delete '%s': %s", dir, strerror(errno));
    return rc;
}

int hub_cache_rm(const char *name, hub_err *e)
{
    char repo[HUB_REPO_MAX], dir[HUB_PATH_MAX];
    struct stat st;
    if (hub_repo_of(name, repo, sizeof repo)) return hub_fail(e, "'%s' is not a model name (ORG/NAME or an alias)", name);
    if (hub_model_dir(repo, dir, sizeof dir, e)) return -1;
    if (stat(dir, &st) != 0) return hub_fail(e, "model '%s' is not downloaded (no '%s')", repo, dir);
    int fd = hub_lock(dir, NULL, NULL, e);
    if (fd < 0) return -1;
    int rc = dir_remove(dir, e);
    hub_unlock(fd);
    return rc;
}
