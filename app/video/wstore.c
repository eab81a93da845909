/*
 * wstore.c - the frames of `clipdex watch --db` into the index (contract in
 * wstore.h). Invariants: each input owns exactly one `files` row for the
 * whole watch; its `frames` rows get consecutive seq numbers after the ones
 * already there; a transaction is open only while frames are pending. In
 * person mode the crops of a frame arrive before it (TRACK events come
 * before FRAME) and wait in their input's list until the frame's row exists.
 */
#include "video/wstore.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "person/pstore.h"
#include "store/store.h"
#include "util/report.h"
#include "util/sha256.h"
#include "video/vindex.h"

typedef struct winput {
    int64_t file_id;
    int64_t next_seq;
    pfind_person *pp;   /* the crops of its next frame */
    float *pemb;        /* [n_pp, dim] */
    size_t n_pp, cap_pp;
    uint32_t w, h;      /* the size of the frame they are in */
} winput;

struct wstore {
    store *s;
    size_t dim;
    winput *in;
    size_t n_in;
    sqlite3_stmt *ins, *ins_person;
    int persons;        /* person mode: frames.persons counts the crops stored */
    int in_txn;
    size_t pending;
    double txn_t0;
    long count;
};

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

/* The row of a live input: the existing one of this URI, else a new one. */
static int live_row(wstore *ws, const char *uri, winput *wi)
{
    sqlite3_stmt *q = store_prepare(ws->s, "SELECT f.id, coalesce((SELECT max(seq) + 1 FROM frames "
                                           "WHERE file_id = f.id), 0) FROM files f WHERE path = ?1");
    if (!q) return -1;
    sqlite3_bind_blob(q, 1, uri, (int)strlen(uri), SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        wi->file_id = sqlite3_column_int64(q, 0);
        wi->next_seq = sqlite3_column_int64(q, 1);
    }
    sqlite3_finalize(q);
    if (rc == SQLITE_ROW) return 0;
    if (rc != SQLITE_DONE) return -1;
    unsigned char hash[SHA256_LEN];
    sha256(uri, strlen(uri), hash);
    sqlite3_stmt *ins = store_prepare(ws->s, "INSERT INTO files(path, size, mtime_ns, hash, indexed_at) "
                                             "VALUES(?1, 0, 0, ?2, ?3)");
    if (!ins) return -1;
    sqlite3_bind_blob(ins, 1, uri, (int)strlen(uri), SQLITE_STATIC);
    sqlite3_bind_blob(ins, 2, hash, SHA256_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 3, (sqlite3_int64)time(NULL));
    rc = step_done(ins);
    sqlite3_finalize(ins);
    wi->file_id = sqlite3_last_insert_rowid(ws->s->db);
    wi->next_seq = 0;
    return rc;
}

/* The row of a file input: its old row and samples replaced by a new row. */
static int file_row(wstore *ws, const char *path, winput *wi)
{
    char err[512];
    unsigned char hash[SHA256_LEN];
    struct stat sb;
    if (stat(path, &sb) != 0 || vindex_file_hash(path, hash, err, sizeof err) != 0) {
        report_error("watch --db: cannot read '%s'", path);
        return -1;
    }
    static const char *const sql[] = {
        "DELETE FROM persons WHERE frame_id IN (SELECT id FROM frames WHERE file_id IN "
        "(SELECT id FROM files WHERE path = ?1))",
        "DELETE FROM frames WHERE file_id IN (SELECT id FROM files WHERE path = ?1)",
        "DELETE FROM files WHERE path = ?1",
        "INSERT INTO files(path, size, mtime_ns, hash, indexed_at) VALUES(?1, ?2, ?3, ?4, ?5)"};
    int rc = 0;
    for (int i = 0; i < 4 && !rc; i++) {
        sqlite3_stmt *st = store_prepare(ws->s, sql[i]);
        if (!st) return -1;
        sqlite3_bind_blob(st, 1, path, (int)strlen(path), SQLITE_STATIC);
        if (i == 3) {
            sqlite3_bind_int64(st, 2, (sqlite3_int64)sb.st_size);
            sqlite3_bind_int64(st, 3, (sqlite3_int64)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec);
            sqlite3_bind_blob(st, 4, hash, SHA256_LEN, SQLITE_STATIC);
            sqlite3_bind_int64(st, 5, (sqlite3_int64)time(NULL));
        }
        rc = step_done(st);
        sqlite3_finalize(st);
    }
    wi->file_id = sqlite3_last_insert_rowid(ws->s->db);
    wi->next_seq = 0;
    return rc;
}

/* The rows of every input, in one transaction. */
static int prepare_rows(wstore *ws, const char *const *uris, const int *live)
{
    if (store_exec(ws->s, "BEGIN IMMEDIATE")) return -1;
    for (size_t i = 0; i < ws->n_in; i++) {
        int rc;
        if (live[i]) {
            rc = live_row(ws, uris[i], &ws->in[i]);
        } else {
            char *canon = realpath(uris[i], NULL);
            rc = canon ? file_row(ws, canon, &ws->in[i]) : -1;
            if (!canon) report_error("watch --db: cannot resolve '%s'", uris[i]);
            free(canon);
        }
        if (rc) {
            store_error(ws->s, "cannot write to");
            store_exec(ws->s, "ROLLBACK");
            return -1;
        }
    }
    if (store_bump_generation(ws->s) || store_exec(ws->s, "COMMIT")) {
        store_exec(ws->s, "ROLLBACK");
        return -1;
    }
    return 0;
}

int wstore_open(const char *db_path, const clipdex_model *model, const char *model_path,
                const char *const *uris, const int *live, size_t n_inputs, const char *detector_id, wstore **out)
{
    *out = NULL;
    store_model_id id;
    int rc = store_model_identify(model, model_path, &id);
    if (rc) return rc;
    wstore *ws = calloc(1, sizeof *ws);
    if (!ws || !(ws->in = calloc(n_inputs ? n_inputs : 1, sizeof *ws->in))) {
        free(ws);
        report_error("out of memory");
        return APP_FAIL;
    }
    ws->dim = (size_t)id.dim;
    ws->n_in = n_inputs;
    ws->persons = detector_id != NULL;
    if (store_open(db_path, 1, &ws->s) || store_check_model(ws->s, &id, 1) ||
        (detector_id && pstore_check_detector(ws->s, detector_id, 0)) || prepare_rows(ws, uris, live) ||
        !(ws->ins = store_prepare(ws->s, "INSERT INTO frames(file_id, seq, t, embedding, thumb, persons) "
                                         "VALUES(?1, ?2, ?3, ?4, ?5, ?6)")) ||
        !(ws->ins_person = store_prepare(ws->s, pstore_insert_sql))) {
        wstore_close(ws);
        return APP_FAIL;
    }
    *out = ws;
    return 0;
}

static int commit(wstore *ws)
{
    if (!ws->in_txn) return 0;
    ws->in_txn = 0;
    ws->pending = 0;
    if (store_bump_generation(ws->s) || store_exec(ws->s, "COMMIT")) {
        store_exec(ws->s, "ROLLBACK");
        return -1;
    }
    return 0;
}

int wstore_add(wstore *ws, size_t i, double t, const float *emb, const uint8_t *thumb, size_t thumb_len)
{
    if (!ws->in_txn) {
        if (store_exec(ws->s, "BEGIN IMMEDIATE")) return -1;
        ws->in_txn = 1;
        ws->txn_t0 = now_mono();
    }
    winput *wi = &ws->in[i];
    sqlite3_bind_int64(ws->ins, 1, wi->file_id);
    sqlite3_bind_int64(ws->ins, 2, wi->next_seq);
    sqlite3_bind_double(ws->ins, 3, t);
    sqlite3_bind_blob(ws->ins, 4, emb, (int)(ws->dim * sizeof(float)), SQLITE_STATIC);
    if (thumb && thumb_len <= INT_MAX) sqlite3_bind_blob(ws->ins, 5, thumb, (int)thumb_len, SQLITE_STATIC);
    else sqlite3_bind_null(ws->ins, 5);
    if (ws->persons) sqlite3_bind_int64(ws->ins, 6, (sqlite3_int64)wi->n_pp);
    else sqlite3_bind_null(ws->ins, 6);
    if (step_done(ws->ins)) {
        store_error(ws->s, "cannot write to");
        return -1;
    }
    pfind_result r = {wi->pp, wi->pemb, wi->n_pp, wi->w, wi->h};
    int prc = wi->n_pp ? pstore_insert(ws->s, ws->ins_person, NULL, sqlite3_last_insert_rowid(ws->s->db), &r, ws->dim) : 0;
    wi->n_pp = 0;
    if (prc) return -1;
    wi->next_seq++;
    ws->count++;
    if (++ws->pending >= WSTORE_COMMIT_FRAMES || now_mono() - ws->txn_t0 >= WSTORE_COMMIT_S) return commit(ws);
    return 0;
}

int wstore_add_person(wstore *ws, size_t i, const float *box, float score, uint32_t w, uint32_t h, const float *emb)
{
    winput *wi = &ws->in[i];
    if (wi->n_pp == wi->cap_pp) {
        size_t cap = wi->cap_pp ? 2 * wi->cap_pp : 8;
        pfind_person *pp = realloc(wi->pp, cap * sizeof *pp);
        if (pp) wi->pp = pp;
        float *pe = pp ? realloc(wi->pemb, cap * ws->dim * sizeof *pe) : NULL;
        if (pe) wi->pemb = pe;
        if (!pp || !pe) {
            report_error("out of memory");
            return -1;
        }
        wi->cap_pp = cap;
    }
    wi->pp[wi->n_pp] = (pfind_person){box[0], box[1], box[2], box[3], score};
    memcpy(wi->pemb + wi->n_pp * ws->dim, emb, ws->dim * sizeof *emb);
    wi->n_pp++;
    wi->w = w;
    wi->h = h;
    return 0;
}

long wstore_count(const wstore *ws) { return ws ? ws->count : 0; }

int wstore_close(wstore *ws)
{
    if (!ws) return 0;
    int rc = ws->s ? commit(ws) : 0;
    sqlite3_finalize(ws->ins);
    sqlite3_finalize(ws->ins_person);
    store_close(ws->s);
    for (size_t i = 0; i < ws->n_in; i++) {
        free(ws->in[i].pp);
        free(ws->in[i].pemb);
    }
    free(ws->in);
    free(ws);
    return rc;
}
