/*
 * merge.c - merging a shard database into an index (`clipdex merge`). The
 * shard is ATTACHed read-only; one IMMEDIATE transaction copies the rows of
 * the files that `out` lacks or holds in another version, byte for byte
 * (the embeddings are the shard's blobs, never recomputed), replaces their
 * video samples, drops vectors no file uses any more and bumps the
 * generation only when something changed. Invariants: idempotent (a second
 * merge of the same shard writes nothing), and a failure leaves `out` as it
 * was.
 */
#include "store/merge.h"

#include <string.h>

#include "util/report.h"

/* Which files of the shard to copy: new to main, or another version. */
static const char merge_pick_sql[] =
    "CREATE TEMP TABLE merge_pick AS SELECT s.path AS path FROM src.files s "
    "LEFT JOIN main.files m ON m.path = s.path WHERE m.id IS NULL OR m.size != s.size "
    "OR m.mtime_ns != s.mtime_ns OR m.hash != s.hash";

static const char merge_copy_sql[] =
    "INSERT OR IGNORE INTO main.images SELECT i.hash, i.embedding FROM src.images i "
    "WHERE i.hash IN (SELECT hash FROM src.files WHERE path IN (SELECT path FROM temp.merge_pick));"
    "INSERT INTO main.files(path, size, mtime_ns, hash, indexed_at) "
    "SELECT path, size, mtime_ns, hash, indexed_at FROM src.files "
    "WHERE path IN (SELECT path FROM temp.merge_pick) ORDER BY id "
    "ON CONFLICT(path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns, "
    "hash = excluded.hash, indexed_at = excluded.indexed_at;"
    "DELETE FROM main.frames WHERE file_id IN "
    "(SELECT id FROM main.files WHERE path IN (SELECT path FROM temp.merge_pick));";

static const char merge_frames_sql[] =
    "INSERT INTO main.frames(file_id, seq, t, embedding, thumb) "
    "SELECT m.id, f.seq, f.t, f.embedding, f.thumb FROM src.frames f "
    "JOIN src.files sf ON sf.id = f.file_id JOIN main.files m ON m.path = sf.path "
    "WHERE sf.path IN (SELECT path FROM temp.merge_pick) ORDER BY m.id, f.seq";

static const char merge_prune_sql[] =
    "DELETE FROM main.images WHERE hash NOT IN (SELECT hash FROM main.files)";

/* Runs a one-row integer query (0 when it fails, reported). */
static long long query_int(store *s, const char *sql)
{
    sqlite3_stmt *st = store_prepare(s, sql);
    long long v = st && sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return v;
}

static int attach(store *out, const char *path)
{
    sqlite3_stmt *st = store_prepare(out, "ATTACH DATABASE ? AS src");
    if (!st) return -1;
    sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        report_error("cannot attach shard '%s': %s", path, sqlite3_errmsg(out->db));
        return -1;
    }
    return 0;
}

/* The copy itself, inside the caller's transaction. */
static int merge_rows(store *out, size_t *changed)
{
    if (store_exec(out, "DROP TABLE IF EXISTS temp.merge_pick") || store_exec(out, merge_pick_sql))
        return -1;
    long long n = query_int(out, "SELECT count(*) FROM temp.merge_pick");
    int has_frames = query_int(out, "SELECT count(*) FROM src.sqlite_master "
                                    "WHERE type = 'table' AND name = 'frames'") > 0;
    if (n && (store_exec(out, merge_copy_sql) || (has_frames && store_exec(out, merge_frames_sql)) ||
              store_exec(out, merge_prune_sql) || store_bump_generation(out)))
        return -1;
    *changed = (size_t)n;
    return store_exec(out, "DROP TABLE temp.merge_pick");
}

int store_merge(store *out, const char *src_path, size_t *changed)
{
    store *src = NULL;
    store_model_id id;
    *changed = 0;
    if (store_open(src_path, 0, &src)) return APP_FAIL;
    int rc = store_read_model(src, &id);
    store_close(src);
    if (rc || store_check_model(out, &id, 1)) return APP_FAIL;
    if (attach(out, src_path)) return APP_FAIL;
    if (store_exec(out, "BEGIN IMMEDIATE")) rc = APP_FAIL;
    else if (merge_rows(out, changed) || store_exec(out, "COMMIT")) {
        store_exec(out, "ROLLBACK");
        *changed = 0;
        rc = APP_FAIL;
    }
    store_exec(out, "DETACH DATABASE src");
    return rc;
}
