/*
 * filter.c - search filters (see filter.h): parsing a path prefix and a
 * time range, and turning them into the set of matrix rows that pass, read
 * from the database in two queries (the photos, the video samples).
 */
#include "store/filter.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/report.h"

#define CLOCK_MAX 32 /* bytes of one time: "1:02:03.5" */

/* One field of a time: digits, with a fraction only when it is the last. */
static int clock_field(const char *s, size_t len, int last, double *v)
{
    char buf[CLOCK_MAX + 1];
    if (len == 0 || len > CLOCK_MAX || s[0] < '0' || s[0] > '9') return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (strspn(buf, last ? "0123456789." : "0123456789") != len) return -1;
    char *end = NULL;
    *v = strtod(buf, &end);
    return *end || !isfinite(*v) ? -1 : 0;
}

int filter_clock_parse(const char *s, size_t len, double *t)
{
    double v = 0, f;
    int fields = 0;
    for (size_t i = 0; i <= len && fields < 3; fields++) {
        const char *c = memchr(s + i, ':', len - i);
        size_t n = c ? (size_t)(c - (s + i)) : len - i;
        if (clock_field(s + i, n, !c, &f) || (fields > 0 && f >= 60)) return -1;
        v = v * 60 + f;
        i += n + 1;
        if (!c) {
            *t = v;
            return 0;
        }
    }
    return -1; /* more than H:M:S */
}

int filter_time_parse(const char *s, search_filter *f)
{
    const char *dash = strchr(s, '-');
    if (!dash || strchr(dash + 1, '-') || (dash == s && !dash[1])) return -1;
    double from = 0, to = INFINITY;
    if (dash > s && filter_clock_parse(s, (size_t)(dash - s), &from)) return -1;
    if (dash[1] && filter_clock_parse(dash + 1, strlen(dash + 1), &to)) return -1;
    if (from > to) return -1;
    f->has_time = 1;
    f->t_from = from;
    f->t_to = to;
    return 0;
}

int filter_set_under(search_filter *f, const char *p)
{
    if (p[0] != '/') return -1;
    size_t n = strlen(p);
    while (n > 0 && p[n - 1] == '/') n--;
    char *u = malloc(n + 1);
    if (!u) return -1;
    memcpy(u, p, n);
    u[n] = '\0';
    free(f->under);
    f->under = u;
    return 0;
}

int filter_active(const search_filter *f) { return f->under || f->has_time; }

void filter_free(search_filter *f)
{
    free(f->under);
    f->under = NULL;
}

void row_set_free(row_set *r)
{
    free(r->in);
    free(r->rows);
    memset(r, 0, sizeof *r);
}

/* Whether a stored path (raw bytes) is under the prefix: the prefix itself
 * or a path below it, so "/a/photos" does not take "/a/photos2/x". */
static int path_under(const search_filter *f, const void *path, size_t len)
{
    if (!f->under) return 1;
    size_t n = strlen(f->under);
    const char *p = path;
    return len >= n && memcmp(p, f->under, n) == 0 && (len == n || p[n] == '/');
}

/* Marks the row of id when its path passes. */
static void mark(const vec_index *vi, const search_filter *f, sqlite3_stmt *st, int64_t id, row_set *r)
{
    long row = vecindex_row_of(vi, id);
    if (row >= 0 && path_under(f, sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1)))
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
