/*
 * store.h - the clipdex index database (SQLite; schema in docs/schema.md):
 * opening it in WAL mode, the model identity it records, and the statements
 * `index` and `search` use. Only the application links SQLite; the engine
 * never sees it.
 */
#ifndef CLIPDEX_APP_STORE_H
#define CLIPDEX_APP_STORE_H

#include <sqlite3.h>
#include <stdint.h>

#include "clipdex.h"
#include "util/sha256.h"

#define STORE_SCHEMA_VERSION 3
#define STORE_DEFAULT_DB "clipdex.db"
/* Bytes hashed at each end of the weights file for the model identity. */
#define STORE_MODEL_HASH_SPAN (1u << 20)

/* Which model made the vectors: a name for messages and a hash that decides. */
typedef struct store_model_id {
    char name[256];   /* base name of the model directory */
    char hash[2 * SHA256_LEN + 1]; /* hex; see docs/schema.md */
    int dim;          /* embed_dim */
} store_model_id;

typedef struct store {
    sqlite3 *db;
    char *path;
    char *vec_path;   /* the memory-mapped matrix beside the database */
    char *pvec_path;  /* the matrix of the people's crops (`index --detector`) */
} store;

/* The database path: `opt`, else $CLIPDEX_DB, else ./clipdex.db. */
const char *store_db_path(const char *opt);

/* Computes the identity of a loaded model; returns 0 or APP_MODEL (reported). */
int store_model_identify(const clipdex_model *model, const char *model_path, store_model_id *id);

/* Opens (and with `create`, creates) the database; returns 0 or APP_FAIL
 * after reporting the reason. */
int store_open(const char *path, int create, store **out);
void store_close(store *s);

/* Compares the model recorded in the database with `id`. An empty database
 * records `id` when `record` is set. Returns 0, or APP_FAIL after reporting
 * which models differ. */
int store_check_model(store *s, const store_model_id *id, int record);

/* Reads the model identity the database records; returns 0, or APP_FAIL
 * (reported) when it holds no index yet. */
int store_read_model(store *s, store_model_id *id);

/* meta.key as text into buf (empty when absent); setting it: 0 or -1
 * (reported). */
void store_meta_get(store *s, const char *key, char *buf, size_t cap);
int store_meta_set(store *s, const char *key, const char *val);

/* Runs SQL without results; returns 0 or -1 (message reported). */
int store_exec(store *s, const char *sql);
/* Prepares a statement; NULL (message reported) on failure. */
sqlite3_stmt *store_prepare(store *s, const char *sql);
/* The generation counter: bumped by every transaction that changes files. */
int64_t store_generation(store *s);
int store_bump_generation(store *s);
/* Reports "WHAT 'db': sqlite message" (util/report.h). */
void store_error(store *s, const char *what);

#endif
