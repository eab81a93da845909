/*
 * merge.c - merging a shard database into an index (`clipdex merge`). The
 * shard is ATTACHed read-only; one IMMEDIATE transaction copies the rows of
 * the files that `out` lacks or holds in another version, byte for byte
 * (the embeddings are the shard's blobs, never recomputed), replaces their
 * video samples, drops vectors no file uses any more and bumps the
 * generation only when something changed. The people a detector found
 * (table persons) come with their photos and samples, when both databases
 * record the same detector. Invariants: idempotent (a second
 * merge of the same shard writes nothing), and a failure leaves `out` as it
 * was.
 */
#include "store/merge.h"

#include <stdio.h>
#include <string.h>

#include "util/report.h"

/* Which files of the shard to copy: new to main, or another version. */
static const char merge_pick_sql[] =
    "CREATE TEMP TABLE merge_pick AS SELECT s.path AS path FROM src.files s "
    "LEFT JOIN main.files m ON m.path = s.path WHERE m.id IS NULL OR m.size != s.size "
    "OR m.mtime_ns != s.mtime_ns OR m.hash != s.hash";

static const char merge_copy_sql[] =
    "INSERT OR IGNORE INTO main.images(hash, embedding) SELECT i.hash, i.embedding FROM src.images i "
    "WHERE i.hash IN (SELECT hash FROM src.files WHERE path IN (SELECT path FROM temp.merge_pick));"
    "INSERT INTO main.files(path, size, mtime_ns, hash, indexed_at) "
    "SELECT path, size, mtime_ns, hash, indexed_at FROM src.files "
    "WHERE path IN (SELECT path FROM temp.merge_pick) ORDER BY id "
    "ON CONFLICT(path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns, "
    "hash = excluded.hash, indexed_at = excluded.indexed_at;"
    "DELETE FROM main.persons WHERE frame_id IN (SELECT id FROM main.frames WHERE file_id IN "
    "(SELECT id FROM main.files WHERE path IN (SELECT path FROM temp.merge_pick)));"
    "DELETE FROM main.frames WHERE file_id IN "
    "(SELECT id FROM main.files WHERE path IN (SELECT path FROM temp.merge_pick));";

/* The samples of the copied videos; %s is the persons column of the
 * shard's samples ("NULL" for a version-2 shard: nobody looked for people). */
static const char merge_frames_fmt[] =
    "INSERT INTO main.frames(file_id, seq, t, embedding, thumb, persons) "
    "SELECT m.id, f.seq, f.t, f.embedding, f.thumb, %s FROM src.frames f "
    "JOIN src.files sf ON sf.id = f.file_id JOIN main.files m ON m.path = sf.path "
    "WHERE sf.path IN (SELECT path FROM temp.merge_pick) ORDER BY m.id, f.seq";

/* The people of the photos main has not looked at and the shard has, and
 * those of the samples just copied (main's new frames by path and seq). */
static const char merge_persons_sql[] =
    "CREATE TEMP TABLE merge_ph AS SELECT s.hash AS hash, s.persons AS n FROM src.images s "
    "JOIN main.images m ON m.hash = s.hash WHERE m.persons IS NULL AND s.persons IS NOT NULL;"
    "INSERT INTO main.persons(hash, frame_id, x0, y0, x1, y1, score, width, height, embedding) "
    "SELECT hash, NULL, x0, y0, x1, y1, score, width, height, embedding FROM src.persons "
    "WHERE hash IN (SELECT hash FROM temp.merge_ph) ORDER BY id;"
    "UPDATE main.images SET persons = (SELECT n FROM temp.merge_ph p WHERE p.hash = main.images.hash) "
    "WHERE hash IN (SELECT hash FROM temp.merge_ph);"
    "DROP TABLE temp.merge_ph;"
    "INSERT INTO main.persons(hash, frame_id, x0, y0, x1, y1, score, width, height, embedding) "
    "SELECT NULL, mf.id, p.x0, p.y0, p.x1, p.y1, p.score, p.width, p.height, p.embedding "
    "FROM src.persons p JOIN src.frames f ON f.id = p.frame_id JOIN src.files sf ON sf.id = f.file_id "
    "JOIN main.files m ON m.path = sf.path JOIN main.frames mf ON mf.file_id = m.id AND mf.seq = f.seq "
    "WHERE sf.path IN (SELECT path FROM temp.merge_pick) ORDER BY p.id;";

static const char merge_prune_sql[] =
    "DELETE FROM main.images WHERE hash NOT IN (SELECT hash FROM main.files);"
    "DELETE FROM main.persons WHERE (hash IS NOT NULL AND hash NOT IN (SELECT hash FROM main.images)) "
    "OR (frame_id IS NOT NULL AND frame_id NOT IN (SELECT id FROM main.frames))";

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

/* Whether the shard has a table, or a column of a table. */
static int src_has(store *out, const char *table, const char *column)
{
    char sql[256];
    if (column)
        snprintf(sql, sizeof sql, "SELECT count(*) FROM pragma_table_info('%s', 'src') WHERE name = '%s'",
                 table, column);
    else
        snprintf(sql, sizeof sql, "SELECT count(*) FROM src.sqlite_master WHERE type = 'table' AND "
                                  "name = '%s'", table);
    return query_int(out, sql) > 0;
}

/* Whether the shard's people can join main's: both found by one detector
 * (main without any records the shard's). 1 yes, 0 no people to copy, -1
 * error (reported). */
static int persons_agree(store *out, const char *src_path)
{
    if (!src_has(out, "persons", NULL) ||
        !query_int(out, "SELECT EXISTS(SELECT 1 FROM src.images WHERE persons IS NOT NULL) OR "
                        "EXISTS(SELECT 1 FROM src.frames WHERE persons IS NOT NULL)"))
        return 0;
    char mine[512], theirs[512] = "";
    store_meta_get(out, "detector", mine, sizeof mine);
    sqlite3_stmt *st = store_prepare(out, "SELECT CAST(value AS TEXT) FROM src.meta WHERE key = 'detector'");
    if (st && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(theirs, sizeof theirs, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    if (!mine[0] && theirs[0]) return store_meta_set(out, "detector", theirs) ? -1 : 1;
    if (strcmp(mine, theirs) == 0) return 1;
    report_error("shard '%s' holds the people found by detector '%s', the index those of '%s'; "
                 "index both with the same --detector-model", src_path, theirs, mine);
    return -1;
}

/* The copy itself, inside the caller's transaction. */
static int merge_rows(store *out, const char *src_path, size_t *changed)
{
    if (store_exec(out, "DROP TABLE IF EXISTS temp.merge_pick") || store_exec(out, merge_pick_sql))
        return -1;
    long long n = query_int(out, "SELECT count(*) FROM temp.merge_pick");
    int has_frames = src_has(out, "frames", NULL);
    int persons = persons_agree(out, src_path);
    if (persons < 0) return -1;
    char frames_sql[sizeof merge_frames_fmt + 16];
    snprintf(frames_sql, sizeof frames_sql, merge_frames_fmt,
             has_frames && src_has(out, "frames", "persons") ? "f.persons" : "NULL");
    if (n && (store_exec(out, merge_copy_sql) || (has_frames && store_exec(out, frames_sql))))
        return -1;
    long long people = query_int(out, "SELECT count(*) FROM main.persons");
    if (persons && store_exec(out, merge_persons_sql)) return -1;
    int moved = n || query_int(out, "SELECT count(*) FROM main.persons") != people;
    if (moved && (store_exec(out, merge_prune_sql) || store_bump_generation(out))) return -1;
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
    else if (merge_rows(out, src_path, changed) || store_exec(out, "COMMIT")) {
        store_exec(out, "ROLLBACK");
        *changed = 0;
        rc = APP_FAIL;
    }
    store_exec(out, "DETACH DATABASE src");
    return rc;
}
