/*
 * vecindex.c - build, validate and map the `DB-vectors` matrix file: a
 * 64-byte header (magic, dim, count, generation, int8 error terms), the
 * files.id of each row, the float32 rows, then their int8 copy and row
 * scales and their 4-bit copy and row error terms, so a search reads one
 * contiguous mapping instead of SQL rows.
 */
#include "store/vecindex.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/report.h"

static size_t align64(size_t x) { return (x + 63) & ~(size_t)63; }

/* Byte offsets of the id array and the matrix for n rows. */
static size_t ids_off(void) { return VECINDEX_HEADER; }
static size_t mat_off(size_t n) { return align64(VECINDEX_HEADER + n * sizeof(int64_t)); }
/* the int8 codes and the row scales follow the float rows (room for cap) */
static size_t q8_off(size_t cap, size_t dim) { return align64(mat_off(cap) + cap * dim * sizeof(float)); }
static size_t scale_off(size_t cap, size_t dim) { return align64(q8_off(cap, dim) + cap * dim); }
/* then the 4-bit codes and their clipdex_vec_q4_info */
static size_t q4_off(size_t cap, size_t dim) { return align64(scale_off(cap, dim) + cap * sizeof(float)); }
static size_t q4info_off(size_t cap, size_t dim) { return align64(q4_off(cap, dim) + cap * clipdex_vec_q4_row_bytes(dim)); }
static size_t file_size(size_t cap, size_t dim) { return q4info_off(cap, dim) + cap * sizeof(clipdex_vec_q4_info); }

static int write_all(int fd, const void *p, size_t len, off_t off)
{
    const char *c = p;
    while (len) {
        ssize_t w = pwrite(fd, c, len, off);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        c += w;
        len -= (size_t)w;
        off += w;
    }
    return 0;
}

/* What each kind of matrix holds: its file, its row count and its rows. */
static const char *kind_path(const store *s, int kind)
{
    return kind == VECINDEX_PERSONS ? s->pvec_path : s->vec_path;
}

static const char *const count_sql[] = {
    "SELECT (SELECT count(*) FROM files) + (SELECT count(*) FROM frames)",
    "SELECT count(*) FROM persons"};
/* photos by files.id, video frames by -frames.id, people by persons.id
 * (docs/schema.md) */
static const char *const rows_sql[] = {
    "SELECT f.id, i.embedding FROM files f JOIN images i ON i.hash = f.hash "
    "UNION ALL SELECT -id, embedding FROM frames ORDER BY 1",
    "SELECT id, embedding FROM persons ORDER BY 1"};

int vecindex_build(store *s, int dim, int kind)
{
    const char *path = kind_path(s, kind);
    size_t tlen = strlen(path) + 32;
    char *tmp = malloc(tlen);
    int64_t *ids = NULL;
    float *rows = NULL, *scales = NULL;
    int8_t *codes = NULL;
    uint8_t *codes4 = NULL;
    clipdex_vec_q4_info *info4 = NULL;
    int fd = -1, rc = APP_FAIL, in_txn = 0;
    sqlite3_stmt *st = NULL;
    if (!tmp) goto nomem;
    snprintf(tmp, tlen, "%s.tmp%ld", path, (long)getpid());
    if (store_exec(s, "BEGIN")) goto done;
    in_txn = 1;
    int64_t gen = store_generation(s);
    st = store_prepare(s, count_sql[kind]);
    if (!st || sqlite3_step(st) != SQLITE_ROW) goto sqlfail;
    size_t n = (size_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = store_prepare(s, rows_sql[kind]);
    if (!st) goto done;
    fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        report_error("cannot create '%s': %s", tmp, strerror(errno));
        goto done;
    }
    ids = malloc((n ? n : 1) * sizeof *ids);
    size_t chunk = 1024;
    rows = malloc(chunk * (size_t)dim * sizeof *rows);
    codes = malloc(chunk * (size_t)dim);
    scales = malloc((n ? n : 1) * sizeof *scales);
    size_t rb4 = clipdex_vec_q4_row_bytes((size_t)dim);
    codes4 = malloc(chunk * rb4);
    info4 = malloc((n ? n : 1) * sizeof *info4);
    if (!ids || !rows || !codes || !scales || !codes4 || !info4) goto nomem;
    float max_scale = 0, max_l1 = 0;
    size_t qo = q8_off(n, (size_t)dim), q4o = q4_off(n, (size_t)dim);
    size_t got = 0, in_chunk = 0, mo = mat_off(n);
    size_t row_bytes = (size_t)dim * sizeof(float);
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW && got < n) {
        const void *blob = sqlite3_column_blob(st, 1);
        if ((size_t)sqlite3_column_bytes(st, 1) != row_bytes || !blob) continue; /* damaged row */
        ids[got] = sqlite3_column_int64(st, 0);
        float *row = rows + in_chunk * (size_t)dim;
        memcpy(row, blob, row_bytes);
        clipdex_vec_q8_row(row, (size_t)dim, codes + in_chunk * (size_t)dim, &scales[got]);
        clipdex_vec_q4_row(row, (size_t)dim, codes4 + in_chunk * rb4, &info4[got]);
        double l1 = 0;
        for (int i = 0; i < dim; i++) l1 += row[i] < 0 ? -(double)row[i] : row[i];
        if (scales[got] > max_scale) max_scale = scales[got];
        if (l1 > max_l1) max_l1 = (float)(l1 * (1 + 1e-6));
        got++;
        if (++in_chunk == chunk) {
            if (write_all(fd, rows, in_chunk * row_bytes, (off_t)(mo + (got - in_chunk) * row_bytes)) ||
                write_all(fd, codes, in_chunk * (size_t)dim, (off_t)(qo + (got - in_chunk) * (size_t)dim)) ||
                write_all(fd, codes4, in_chunk * rb4, (off_t)(q4o + (got - in_chunk) * rb4)))
                goto ioerr;
            in_chunk = 0;
        }
    }
    if (r != SQLITE_ROW && r != SQLITE_DONE) goto sqlfail;
    if (in_chunk &&
        (write_all(fd, rows, in_chunk * row_bytes, (off_t)(mo + (got - in_chunk) * row_bytes)) ||
         write_all(fd, codes, in_chunk * (size_t)dim, (off_t)(qo + (got - in_chunk) * (size_t)dim)) ||
         write_all(fd, codes4, in_chunk * rb4, (off_t)(q4o + (got - in_chunk) * rb4))))
        goto ioerr;
    /* got <= n: rows without an image are left out; ids move up, the matrix
     * was written at mat_off(n), which the header records */
    unsigned char hdr[VECINDEX_HEADER];
    memset(hdr, 0, sizeof hdr);
    memcpy(hdr, VECINDEX_MAGIC, 8);
    uint32_t d32 = (uint32_t)dim;
    uint64_t cnt = got, cap = n, g = (uint64_t)gen;
    memcpy(hdr + 8, &d32, 4);
    memcpy(hdr + 16, &cnt, 8);
    memcpy(hdr + 24, &g, 8);
    memcpy(hdr + 32, &cap, 8); /* rows the id array has room for */
    memcpy(hdr + 40, &max_scale, 4);
    memcpy(hdr + 44, &max_l1, 4);
    if (write_all(fd, ids, got * sizeof *ids, (off_t)ids_off()) ||
        write_all(fd, scales, got * sizeof *scales, (off_t)scale_off(n, (size_t)dim)) ||
        write_all(fd, info4, got * sizeof *info4, (off_t)q4info_off(n, (size_t)dim)) ||
        ftruncate(fd, (off_t)file_size(n, (size_t)dim)) || write_all(fd, hdr, sizeof hdr, 0) ||
        fdatasync(fd))
        goto ioerr;
    close(fd);
    fd = -1;
    if (rename(tmp, path)) {
        report_error("cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        goto done;
    }
    rc = 0;
    goto done;
nomem:
    report_error("out of memory");
    goto done;
ioerr:
    report_error("cannot write '%s': %s", tmp, strerror(errno));
    goto done;
sqlfail:
    store_error(s, "cannot read the vectors from");
done:
    sqlite3_finalize(st);
    if (in_txn) store_exec(s, "COMMIT");
    if (fd >= 0) close(fd);
    if (rc && tmp) unlink(tmp);
    free(tmp);
    free(ids);
    free(rows);
    free(codes);
    free(scales);
    free(codes4);
    free(info4);
    return rc;
}

/* Maps the file if it is valid for dim and at least generation min_gen;
 * 0 ok, -1 stale or absent. */
static int try_map(const char *path, int dim, int64_t min_gen, vec_index *vi)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat sb;
    unsigned char hdr[VECINDEX_HEADER];
    if (fstat(fd, &sb) || sb.st_size < VECINDEX_HEADER ||
        pread(fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr || memcmp(hdr, VECINDEX_MAGIC, 8)) {
        close(fd);
        return -1;
    }
    uint32_t d32;
    uint64_t cnt, g, cap;
    memcpy(&d32, hdr + 8, 4);
    memcpy(&cnt, hdr + 16, 8);
    memcpy(&g, hdr + 24, 8);
    memcpy(&cap, hdr + 32, 8);
    float max_scale, max_l1;
    memcpy(&max_scale, hdr + 40, 4);
    memcpy(&max_l1, hdr + 44, 4);
    if (d32 != (uint32_t)dim || (int64_t)g < min_gen || cnt > cap || cap > ((uint64_t)1 << 34) ||
        (uint64_t)sb.st_size != file_size(cap, (size_t)dim) || !(max_scale >= 0) || !(max_l1 >= 0)) {
        close(fd);
        return -1;
    }
    void *map = NULL;
    if (sb.st_size > 0) {
        map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED) {
            close(fd);
            return -1;
        }
    }
    close(fd);
    vi->map = map;
    vi->map_len = (size_t)sb.st_size;
    vi->n = cnt;
    vi->dim = (size_t)dim;
    vi->generation = (int64_t)g;
    vi->ids = (const int64_t *)((const char *)map + ids_off());
    vi->m = (const float *)((const char *)map + mat_off(cap));
    vi->q8 = (const int8_t *)((const char *)map + q8_off(cap, (size_t)dim));
    vi->scale = (const float *)((const char *)map + scale_off(cap, (size_t)dim));
    vi->max_scale = max_scale;
    vi->max_l1 = max_l1;
    vi->q4 = (const uint8_t *)((const char *)map + q4_off(cap, (size_t)dim));
    vi->q4info = (const clipdex_vec_q4_info *)((const char *)map + q4info_off(cap, (size_t)dim));
    return 0;
}

/* The search handle over a mapped file (its arrays are borrowed). */
static int describe(const char *path, vec_index *vi)
{
    clipdex_vecs_data d = {vi->m, vi->n, vi->dim, vi->q8, vi->scale, vi->max_scale, vi->max_l1, vi->q4, vi->q4info};
    clipdex_ctx *ctx = NULL;
    int rc = clipdex_ctx_new(&ctx, &(clipdex_ctx_params){1});
    if (!rc) rc = clipdex_vecs_new(ctx, &d, 0, &vi->vecs);
    if (rc) report_error("the vector file '%s': %s", path, ctx ? clipdex_ctx_errmsg(ctx) : clipdex_status_str(rc));
    clipdex_ctx_free(ctx);
    if (rc) vecindex_close(vi);
    return rc ? APP_FAIL : 0;
}

int vecindex_open(store *s, int dim, vec_index *vi)
{
    return vecindex_open_kind(s, dim, VECINDEX_FILES, vi);
}

int vecindex_open_kind(store *s, int dim, int kind, vec_index *vi)
{
    const char *path = kind_path(s, kind);
    memset(vi, 0, sizeof *vi);
    int64_t gen = store_generation(s);
    if (gen < 0) {
        store_error(s, "cannot read");
        return APP_FAIL;
    }
    if (try_map(path, dim, gen, vi) == 0) return describe(path, vi);
    /* the build reads generation >= gen in its own transaction */
    if (vecindex_build(s, dim, kind)) return APP_FAIL;
    if (try_map(path, dim, gen, vi) == 0) return describe(path, vi);
    report_error("cannot map the vector file '%s'", path);
    return APP_FAIL;
}

void vecindex_close(vec_index *vi)
{
    clipdex_vecs_free(vi->vecs);
    if (vi->map) munmap(vi->map, vi->map_len);
    memset(vi, 0, sizeof *vi);
}

/* ids are sorted ascending: a binary search */
long vecindex_row_of(const vec_index *vi, int64_t id)
{
    size_t lo = 0, hi = vi->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (vi->ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < vi->n && vi->ids[lo] == id ? (long)lo : -1;
}

/* the rows are copied into one matrix that the library scans in float32 */
int vecindex_search_rows(clipdex_ctx *ctx, const vec_index *vi, const uint32_t *rows, size_t n, const float *q,
                         const clipdex_search_params *sp, clipdex_hit *out, size_t *n_out)
{
    float *x = malloc((n ? n : 1) * vi->dim * sizeof *x);
    if (!x) {
        report_error("out of memory");
        return APP_FAIL;
    }
    for (size_t i = 0; i < n; i++) memcpy(x + i * vi->dim, vi->m + (size_t)rows[i] * vi->dim, vi->dim * sizeof *x);
    clipdex_vecs_data d = {.rows = x, .n = n, .dim = vi->dim};
    clipdex_vecs *v = NULL;
    clipdex_search_params p = *sp;
    p.stage = CLIPDEX_SEARCH_EXACT;
    int st = clipdex_vecs_new(ctx, &d, 0, &v);
    if (st == CLIPDEX_OK) st = clipdex_vecs_search(ctx, v, q, &p, out, n_out, NULL);
    if (st != CLIPDEX_OK) report_error("the exact scan of %zu rows: %s", n, clipdex_ctx_errmsg(ctx));
    for (size_t i = 0; st == CLIPDEX_OK && i < *n_out; i++) out[i].row = rows[out[i].row];
    clipdex_vecs_free(v);
    free(x);
    return st == CLIPDEX_OK ? 0 : APP_FAIL;
}

