/*
 * rowset.c - the rows of the vector matrix that pass a search filter (see
 * rowset.h), read from the database in two queries: the photos with their
 * paths, the video samples in the time range with their video's path.
 */
#include "store/rowset.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/report.h"

void row_set_free(row_set *r)
{
    free(r->in);
    free(r->rows);
    memset(r, 0, sizeof *r);
}

/* Marks the row of id when its path passes. */
static void mark(const vec_index *vi, const search_filter *f, sqlite3_stmt *st, int64_t id, row_set *r)
{
    long row = vecindex_row_of(vi, id);
    if (row >= 0 && filter_path_passes(f, sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1)))
        r->in[row] = 1;
}

/* The photos (id, path) and the samples in the time range (-id, path). */
static const char photos_sql[] = "SELECT id, path FROM files";
static const char samples_sql[] =
    "SELECT -fr.id, f.path FROM frames fr JOIN files f ON f.id = fr.file_id WHERE fr.t >= ?1 AND fr.t <= ?2";

int filter_rows(store *s, const vec_index *vi, const search_filter *f, row_set *out)
{
    memset(out, 0, sizeof *out);
    out->in = calloc(vi->n ? vi->n : 1, 1);
    out->rows = malloc((vi->n ? vi->n : 1) * sizeof *out->rows);
    sqlite3_stmt *ph = store_prepare(s, photos_sql), *sa = store_prepare(s, samples_sql);
    int rc = APP_FAIL;
    if (!out->in || !out->rows) report_error("out of memory");
    if (!out->in || !out->rows || !ph || !sa) goto done;
    sqlite3_bind_double(sa, 1, f->has_time ? f->t_from : -1e300);
    sqlite3_bind_double(sa, 2, f->has_time && isfinite(f->t_to) ? f->t_to : 1e300);
    int r;
    while ((r = sqlite3_step(ph)) == SQLITE_ROW) mark(vi, f, ph, sqlite3_column_int64(ph, 0), out);
    if (r == SQLITE_DONE)
        while ((r = sqlite3_step(sa)) == SQLITE_ROW) mark(vi, f, sa, sqlite3_column_int64(sa, 0), out);
    if (r != SQLITE_DONE) {
        report_error("cannot read '%s' for the filter: %s", s->path, sqlite3_errmsg(s->db));
        goto done;
    }
    for (size_t i = 0; i < vi->n; i++)
        if (out->in[i]) out->rows[out->n++] = (uint32_t)i;
    rc = 0;
done:
    sqlite3_finalize(ph);
    sqlite3_finalize(sa);
    if (rc) row_set_free(out);
    return rc;
}
