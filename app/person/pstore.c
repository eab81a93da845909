/*
 * pstore.c - the people in the index database (see pstore.h). A photo's
 * people are keyed by its content hash (a renamed or duplicated photo
 * shares them, as it shares its vector), a video sample's by frames.id;
 * images.persons / frames.persons count them, NULL meaning "not looked
 * for", which is what `index --detector` fills in. Hits resolve a person
 * to every path that holds its photo, or to its sample's video and time.
 */
#include "person/pstore.h"

#include <stdlib.h>
#include <string.h>

#include "util/json.h"
#include "util/report.h"

const char pstore_insert_sql[] =
    "INSERT INTO persons(hash, frame_id, x0, y0, x1, y1, score, width, height, embedding) "
    "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

int pstore_check_detector(store *s, const char *id, int redetect)
{
    char have[512];
    if (store_exec(s, "BEGIN IMMEDIATE")) return APP_FAIL;
    store_meta_get(s, "detector", have, sizeof have);
    int rc = 0;
    if (have[0] && strcmp(have, id) != 0) {
        if (!redetect) {
            report_error("database '%s' holds the people found by detector '%s', not by '%s'; give "
                         "--redetect to look for them again with this one, or use another --db",
                         s->path, have, id);
            store_exec(s, "ROLLBACK");
            return APP_FAIL;
        }
        rc = store_exec(s, "DELETE FROM persons; UPDATE images SET persons = NULL; "
                           "UPDATE frames SET persons = NULL") ||
             store_bump_generation(s);
    }
    if (!rc && strcmp(have, id) != 0) rc = store_meta_set(s, "detector", id);
    if (rc || store_exec(s, "COMMIT")) {
        store_exec(s, "ROLLBACK");
        return APP_FAIL;
    }
    return 0;
}

int pstore_insert(store *s, sqlite3_stmt *ins, const unsigned char *hash, int64_t frame_id,
                  const pfind_result *r, size_t dim)
{
    for (size_t k = 0; k < r->n; k++) {
        const pfind_person *p = &r->p[k];
        if (hash) {
            sqlite3_bind_blob(ins, 1, hash, SHA256_LEN, SQLITE_STATIC);
            sqlite3_bind_null(ins, 2);
        } else {
            sqlite3_bind_null(ins, 1);
            sqlite3_bind_int64(ins, 2, frame_id);
        }
        double v[5] = {p->x0, p->y0, p->x1, p->y1, p->score};
        for (int i = 0; i < 5; i++) sqlite3_bind_double(ins, 3 + i, v[i]);
        sqlite3_bind_int64(ins, 8, r->width);
        sqlite3_bind_int64(ins, 9, r->height);
        sqlite3_bind_blob(ins, 10, r->emb + k * dim, (int)(dim * sizeof(float)), SQLITE_STATIC);
        int rc = sqlite3_step(ins);
        sqlite3_reset(ins);
        sqlite3_clear_bindings(ins);
        if (rc != SQLITE_DONE) {
            store_error(s, "cannot write to");
            return -1;
        }
    }
    return 0;
}

int pstore_prune(store *s)
{
    return store_exec(s, "DELETE FROM persons WHERE (hash IS NOT NULL AND hash NOT IN "
                         "(SELECT hash FROM images)) OR (frame_id IS NOT NULL AND frame_id NOT IN "
                         "(SELECT id FROM frames))");
}

void phits_free(phit *h, size_t n)
{
    for (size_t i = 0; h && i < n; i++) free(h[i].path);
    free(h);
}

static char *blob_str(sqlite3_stmt *st, int col, size_t *len)
{
    *len = (size_t)sqlite3_column_bytes(st, col);
    char *p = malloc(*len + 1);
    if (!p) return NULL;
    if (*len) memcpy(p, sqlite3_column_blob(st, col), *len);
    p[*len] = '\0';
    return p;
}

/* The statements of a hit lookup. */
typedef struct plookup {
    sqlite3_stmt *person, *photo, *frame;
} plookup;

/* Adds the hits of one person (every path of its photo, or its sample);
 * returns the new count, or -1 out of memory. */
static long add_person(const plookup *q, int64_t id, float score, phit *h, size_t nh, size_t k)
{
    sqlite3_bind_int64(q->person, 1, id);
    if (sqlite3_step(q->person) != SQLITE_ROW) {
        sqlite3_reset(q->person);
        return (long)nh;
    }
    phit base;
    memset(&base, 0, sizeof base);
    base.person_id = id;
    base.score = score;
    for (int i = 0; i < 4; i++) base.box[i] = (float)sqlite3_column_double(q->person, 2 + i);
    base.det_score = (float)sqlite3_column_double(q->person, 6);
    base.width = (uint32_t)sqlite3_column_int64(q->person, 7);
    base.height = (uint32_t)sqlite3_column_int64(q->person, 8);
    sqlite3_stmt *st;
    if (sqlite3_column_type(q->person, 1) != SQLITE_NULL) {
        base.is_video = 1;
        base.frame_id = sqlite3_column_int64(q->person, 1);
        st = q->frame;
        sqlite3_bind_int64(st, 1, base.frame_id);
    } else {
        st = q->photo;
        sqlite3_bind_blob(st, 1, sqlite3_column_blob(q->person, 0), sqlite3_column_bytes(q->person, 0),
                          SQLITE_TRANSIENT);
    }
    long rc = (long)nh;
    while (nh < k && sqlite3_step(st) == SQLITE_ROW) {
        phit *x = &h[nh];
        *x = base;
        x->file_id = sqlite3_column_int64(st, 0);
        if (!(x->path = blob_str(st, 1, &x->len))) {
            rc = -1;
            break;
        }
        if (base.is_video) x->t = sqlite3_column_double(st, 2);
        rc = (long)++nh;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    sqlite3_reset(q->person);
    return rc;
}

long phits_build(store *s, const int64_t *ids, const float *scores, size_t n, size_t k, phit **out)
{
    *out = NULL;
    plookup q = {
        store_prepare(s, "SELECT hash, frame_id, x0, y0, x1, y1, score, width, height FROM persons "
                         "WHERE id = ?"),
        store_prepare(s, "SELECT id, path FROM files WHERE hash = ? ORDER BY id"),
        store_prepare(s, "SELECT f.id, f.path, fr.t FROM frames fr JOIN files f ON f.id = fr.file_id "
                         "WHERE fr.id = ?")};
    phit *h = calloc(k ? k : 1, sizeof *h);
    long nh = -1;
    if (!q.person || !q.photo || !q.frame) goto done;
    if (!h) {
        report_error("out of memory");
        goto done;
    }
    nh = 0;
    for (size_t i = 0; i < n && (size_t)nh < k; i++) {
        long r = add_person(&q, ids[i], scores[i], h, (size_t)nh, k);
        if (r < 0) {
            report_error("out of memory");
            phits_free(h, (size_t)nh);
            h = NULL;
            nh = -1;
            break;
        }
        nh = r;
    }
done:
    sqlite3_finalize(q.person);
    sqlite3_finalize(q.photo);
    sqlite3_finalize(q.frame);
    if (nh < 0) {
        free(h);
        return -1;
    }
    *out = h;
    return nh;
}

void phits_json(json_out *j, const phit *h)
{
    json_key(j, "box");
    json_arr_begin(j);
    for (int i = 0; i < 4; i++) json_num(j, h->box[i]);
    json_arr_end(j);
    json_key(j, "person_score");
    json_num(j, h->det_score);
    json_key(j, "width");
    json_uint(j, h->width);
    json_key(j, "height");
    json_uint(j, h->height);
    if (!h->is_video) return;
    json_key(j, "time");
    json_num(j, h->t);
}
