/*
 * store.c - the index database: open/create with the schema of
 * docs/schema.md, WAL mode and a busy timeout so searches run beside an
 * index, the model identity check, and small statement helpers.
 */
#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/report.h"

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;\n"
    "CREATE TABLE IF NOT EXISTS images(\n"
    "  hash BLOB PRIMARY KEY,\n"
    "  embedding BLOB NOT NULL) WITHOUT ROWID;\n"
    "CREATE TABLE IF NOT EXISTS files(\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  path BLOB NOT NULL UNIQUE,\n"
    "  size INTEGER NOT NULL,\n"
    "  mtime_ns INTEGER NOT NULL,\n"
    "  hash BLOB NOT NULL,\n"
    "  indexed_at INTEGER NOT NULL);\n"
    "CREATE INDEX IF NOT EXISTS files_hash ON files(hash);\n"
    "INSERT OR IGNORE INTO meta VALUES('schema_version', 2);\n"
    "INSERT OR IGNORE INTO meta VALUES('generation', 0);\n";

/* Version 2 adds the sampled frames of videos (a version-1 database gains
 * the table when opened for writing; it had no videos, so nothing else). */
static const char frames_sql[] =
    "CREATE TABLE IF NOT EXISTS frames(\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  file_id INTEGER NOT NULL,\n"
    "  seq INTEGER NOT NULL,\n"
    "  t REAL NOT NULL,\n"
    "  embedding BLOB NOT NULL,\n"
    "  thumb BLOB);\n"
    "CREATE INDEX IF NOT EXISTS frames_file ON frames(file_id, seq);\n"
    "UPDATE meta SET value=2 WHERE key='schema_version' AND value < 2;\n";

/* Version 3 adds the people the detector found (`index --detector person`):
 * one row per person of a photo (by content hash) or of a video sample, and
 * per photo and sample how many were found (NULL: not looked for). */
#define PERSONS_COLUMNS                                                    \
    "(id INTEGER PRIMARY KEY, hash BLOB, frame_id INTEGER, "               \
    "x0 REAL NOT NULL, y0 REAL NOT NULL, x1 REAL NOT NULL, y1 REAL NOT NULL, " \
    "score REAL NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL, " \
    "embedding BLOB NOT NULL)"
static const char persons_table_sql[] =
    "CREATE TABLE IF NOT EXISTS persons" PERSONS_COLUMNS ";\n"
    "CREATE INDEX IF NOT EXISTS persons_hash ON persons(hash);\n"
    "CREATE INDEX IF NOT EXISTS persons_frame ON persons(frame_id);\n";
static const char persons_cols_sql[] =
    "ALTER TABLE images ADD COLUMN persons INTEGER;\n"
    "ALTER TABLE frames ADD COLUMN persons INTEGER;\n"
    "UPDATE meta SET value=3 WHERE key='schema_version';\n";

const char *store_db_path(const char *opt)
{
    if (opt) return opt;
    const char *env = getenv("CLIPDEX_DB");
    return env && env[0] ? env : STORE_DEFAULT_DB;
}

void store_error(store *s, const char *what)
{
    report_error("%s '%s': %s", what, s->path, sqlite3_errmsg(s->db));
}

int store_exec(store *s, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        report_error("database '%s': %s", s->path, msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

sqlite3_stmt *store_prepare(store *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        store_error(s, "cannot prepare a statement on");
        return NULL;
    }
    return st;
}

static char *str_cat(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(na + nb + 1);
    if (!s) return NULL;
    memcpy(s, a, na);
    memcpy(s + na, b, nb + 1);
    return s;
}

static long long schema_version(store *s)
{
    sqlite3_stmt *st = store_prepare(s, "SELECT value FROM meta WHERE key='schema_version'");
    if (!st) return -1;
    long long v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return v;
}

/* Creates the tables of a new database or brings an older one to the
 * current version, in one transaction (a new one passes through every
 * version's step). */
static int store_upgrade(store *s)
{
    if (store_exec(s, "BEGIN IMMEDIATE")) return -1;
    int rc = store_exec(s, schema_sql) || store_exec(s, frames_sql) ||
             store_exec(s, persons_table_sql);
    long long v = rc ? -1 : schema_version(s);
    if (!rc && v == 2) rc = store_exec(s, persons_cols_sql);
    if (rc || store_exec(s, "COMMIT")) {
        store_exec(s, "ROLLBACK");
        return -1;
    }
    return 0;
}

int store_open(const char *path, int create, store **out)
{
    *out = NULL;
    store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = str_cat(path, "")) || !(s->vec_path = str_cat(path, "-vectors")) ||
        !(s->pvec_path = str_cat(path, "-persons"))) {
        report_error("out of memory");
        goto fail;
    }
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        if (!create && s->db && sqlite3_errcode(s->db) == SQLITE_CANTOPEN)
            report_error("cannot open database '%s': no such file (run `clipdex index` first)",
                         path);
        else
            report_error("cannot open database '%s': %s", path,
                         s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(s->db, 30000);
    sqlite3_extended_result_codes(s->db, 1);
    if (store_exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")) goto fail;
    if (create && store_upgrade(s)) goto fail;
    long long v = schema_version(s);
    if (v == 1 && !create) { /* read-only use of a version-1 index: no frames yet */
        if (store_exec(s, "CREATE TEMP TABLE frames(id INTEGER PRIMARY KEY, file_id INTEGER, "
                          "seq INTEGER, t REAL, embedding BLOB, thumb BLOB, persons INTEGER)"))
            goto fail;
        v = 2;
    }
    if (v == 2 && !create) { /* read-only use of a version-2 index: no people yet */
        if (store_exec(s, "CREATE TEMP TABLE persons" PERSONS_COLUMNS)) goto fail;
        v = STORE_SCHEMA_VERSION;
    }
    if (v != STORE_SCHEMA_VERSION) {
        report_error("database '%s' has schema version %lld; this clipdex reads version %d",
                     path, v, STORE_SCHEMA_VERSION);
        goto fail;
    }
    *out = s;
    return 0;
fail:
    store_close(s);
    return APP_FAIL;
}

void store_close(store *s)
{
    if (!s) return;
    sqlite3_close_v2(s->db);
    free(s->path);
    free(s->vec_path);
    free(s->pvec_path);
    free(s);
}

int64_t store_generation(store *s)
{
    sqlite3_stmt *st = store_prepare(s, "SELECT value FROM meta WHERE key='generation'");
    if (!st) return -1;
    int64_t g = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return g;
}

int store_bump_generation(store *s)
{
    return store_exec(s, "UPDATE meta SET value = value + 1 WHERE key='generation'");
}

/* Reads meta.key as text into buf (empty if absent). */
void store_meta_get(store *s, const char *key, char *buf, size_t cap)
{
    buf[0] = '\0';
    sqlite3_stmt *st = store_prepare(s, "SELECT CAST(value AS TEXT) FROM meta WHERE key=?");
    if (!st) return;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(buf, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
}

int store_meta_set(store *s, const char *key, const char *val)
{
    sqlite3_stmt *st = store_prepare(s, "INSERT OR REPLACE INTO meta VALUES(?, ?)");
    if (!st) return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, val, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        store_error(s, "cannot write to");
        return -1;
    }
    return 0;
}

int store_read_model(store *s, store_model_id *id)
{
    char dim[32];
    memset(id, 0, sizeof *id);
    store_meta_get(s, "model_hash", id->hash, sizeof id->hash);
    store_meta_get(s, "model_name", id->name, sizeof id->name);
    store_meta_get(s, "embed_dim", dim, sizeof dim);
    id->dim = atoi(dim);
    if (id->hash[0] == '\0' || id->dim <= 0) {
        report_error("database '%s' holds no index yet (run `clipdex index` first)", s->path);
        return APP_FAIL;
    }
    return 0;
}

int store_check_model(store *s, const store_model_id *id, int record)
{
    char name[256], hash[128], dim[32];
    if (record && store_exec(s, "BEGIN IMMEDIATE")) return APP_FAIL;
    store_meta_get(s, "model_hash", hash, sizeof hash);
    store_meta_get(s, "model_name", name, sizeof name);
    store_meta_get(s, "embed_dim", dim, sizeof dim);
    if (hash[0] == '\0') {
        if (!record) {
            report_error("database '%s' holds no index yet (run `clipdex index` first)", s->path);
            return APP_FAIL;
        }
        char d[32];
        snprintf(d, sizeof d, "%d", id->dim);
        if (store_meta_set(s, "model_hash", id->hash) || store_meta_set(s, "model_name", id->name) ||
            store_meta_set(s, "embed_dim", d) || store_exec(s, "COMMIT")) {
            store_exec(s, "ROLLBACK");
            return APP_FAIL;
        }
        return 0;
    }
    if (record) store_exec(s, "COMMIT");
    if (strcmp(hash, id->hash) != 0 || atoi(dim) != id->dim) {
        report_error("database '%s' was indexed with model '%s' (hash %.16s..., %s dimensions), "
                     "not with '%s' (hash %.16s..., %d dimensions); use that model or another --db",
                     s->path, name, hash, dim, id->name, id->hash, id->dim);
        return APP_FAIL;
    }
    return 0;
}

int store_model_identify(const clipdex_model *model, const char *model_path, store_model_id *id)
{
    clipdex_model_info info;
    memset(id, 0, sizeof *id);
    if (clipdex_model_get_info(model, &info) != CLIPDEX_OK || !info.weights_path) {
        report_error("cannot describe the model '%s'", model_path);
        return APP_MODEL;
    }
    id->dim = info.embed_dim;
    /* name: the last component of the model directory */
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", model_path);
    size_t n = strlen(tmp);
    while (n > 1 && tmp[n - 1] == '/') tmp[--n] = '\0';
    if (n > 12 && strcmp(tmp + n - 12, ".safetensors") == 0) {
        char *slash = strrchr(tmp, '/');
        if (slash) *slash = '\0';
        else snprintf(tmp, sizeof tmp, ".");
    }
    const char *base = strrchr(tmp, '/');
    snprintf(id->name, sizeof id->name, "%s", base && base[1] ? base + 1 : tmp);
    /* hash: sha256(layout, dtype, embed_dim, file size, first and last MiB) */
    FILE *f = fopen(info.weights_path, "rb");
    if (!f) {
        report_error("cannot open '%s': %s", info.weights_path, strerror(errno));
        return APP_MODEL;
    }
    sha256_ctx c;
    sha256_init(&c);
    char head[256];
    int hn = snprintf(head, sizeof head, "clipdex-model-v1 %s %s %d %llu\n", info.layout, info.dtype,
                      info.embed_dim, (unsigned long long)info.file_size);
    sha256_update(&c, head, (size_t)hn);
    unsigned char *buf = malloc(STORE_MODEL_HASH_SPAN);
    int err = !buf;
    for (int part = 0; part < 2 && !err; part++) {
        uint64_t off = 0;
        if (part == 1) {
            if (info.file_size <= STORE_MODEL_HASH_SPAN) break;
            off = info.file_size - STORE_MODEL_HASH_SPAN;
            if (info.file_size < 2ull * STORE_MODEL_HASH_SPAN) off = STORE_MODEL_HASH_SPAN;
        }
        if (fseeko(f, (off_t)off, SEEK_SET) != 0) { err = 1; break; }
        size_t got = fread(buf, 1, STORE_MODEL_HASH_SPAN, f);
        if (ferror(f)) err = 1;
        sha256_update(&c, buf, got);
    }
    free(buf);
    fclose(f);
    if (err) {
        report_error("cannot read '%s'", info.weights_path);
        return APP_MODEL;
    }
    unsigned char d[SHA256_LEN];
    sha256_final(&c, d);
    hex_encode(d, SHA256_LEN, id->hash);
    return 0;
}
