/*
 * serve_store.c - the index routes of `clipdex serve`: POST /v1/search (a
 * weighted query of texts, images and indexed IDs, scanned over the
 * memory-mapped vector matrix of store/vecindex.c, through the ANN index
 * of app/ann/ when `clipdex ann build` made one), POST/GET /v1/index (runs
 * `clipdex index` on a folder under a --root as a child process and reports
 * its progress), GET /v1/thumb/ID (a cached JPEG thumbnail) and
 * GET /v1/image/ID (the original), and the reading of images that requests
 * name by path (under a --root) or by ID. Only files recorded in the index
 * are ever served, looked up by ID; a URL never names a path.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h> /* before jpeglib.h, which needs FILE */
#include <jpeglib.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ann/ann.h"
#include "person/pstore.h"
#include "serve/serve.h"
#include "store/rowset.h"
#include "store/store.h"
#include "store/vecindex.h"
#include "video/vhits.h"
#include "util/report.h"

#ifndef SERVE_THUMB_SIZE
#define SERVE_THUMB_SIZE 192              /* thumbnail side in pixels */
#endif
#define SERVE_SEARCH_ROWS_MAX (8 * HTTP_MAX_K + 64) /* rows scanned for k hits (vhits_rows) */
#ifndef SERVE_THUMB_CACHE_BYTES
#define SERVE_THUMB_CACHE_BYTES (64u << 20)
#endif
#ifndef SERVE_MAX_FILE
#define SERVE_MAX_FILE (256u << 20)        /* largest original served or read */
#endif

typedef struct thumb {
    int64_t id;
    unsigned char *jpeg;
    size_t len;
} thumb_entry;

struct serve_index {
    pthread_mutex_t mu;       /* store, vi, thumbs, job */
    store *s;                 /* NULL until the database exists */
    store_model_id mid;
    vec_index vi;
    int have_vi;
    ann_index ann;            /* the ANN index over vi, when there is a usable one */
    int have_ann;
    struct stat ann_st;       /* its id file when last opened (st_ino 0: none) */
    vec_index pvi;            /* the people (`index --detector person`), mapped on demand */
    int have_pvi;
    thumb_entry *thumbs;           /* FIFO cache */
    size_t n_thumbs, cap_thumbs, thumb_bytes;
    /* the indexing child */
    pid_t pid;
    int running;
    char *job_path;
    char last_line[512];
    int exit_code;
    double job_started, job_ended;
    pthread_t reader;
    int have_reader;
};

/* Opens the database when it exists (it may be created later by /v1/index).
 * Returns 0 (open or absent) or -1 (message reported). Called locked. */
static int index_connect(server *srv)
{
    serve_index *ix = srv->index;
    if (ix->s) return 0;
    struct stat st;
    if (stat(srv->o.db, &st) != 0) return 0;
    if (store_open(srv->o.db, 0, &ix->s)) return -1;
    if (store_check_model(ix->s, &ix->mid, 0)) {
        store_close(ix->s);
        ix->s = NULL;
        return -1;
    }
    return 0;
}

/* The id file's identity; st_ino 0 when there is none. */
static struct stat ann_stat(store *s)
{
    struct stat st;
    memset(&st, 0, sizeof st);
    char *p = ann_path(s, 1);
    if (!p || stat(p, &st) != 0) memset(&st, 0, sizeof st);
    free(p);
    return st;
}

/* (Re)opens the ANN index over vi when vi or the ANN files changed; an
 * unusable one is reported once and searches scan exactly. Called locked. */
static void index_ann(server *srv, int vi_changed)
{
    serve_index *ix = srv->index;
    struct stat st = ann_stat(ix->s);
    if (!vi_changed && st.st_ino == ix->ann_st.st_ino && st.st_dev == ix->ann_st.st_dev &&
        st.st_mtim.tv_sec == ix->ann_st.st_mtim.tv_sec && st.st_mtim.tv_nsec == ix->ann_st.st_mtim.tv_nsec &&
        st.st_size == ix->ann_st.st_size)
        return;
    if (ix->have_ann) ann_close(&ix->ann);
    ix->have_ann = 0;
    ix->ann_st = st;
    int rc = ann_open(ix->s, &ix->vi, 0, &ix->ann); /* many queries: in memory */
    if (rc == 0)
        ix->have_ann = 1;
    else if (rc != ANN_NONE)
        report_error("searching '%s' exactly instead", srv->o.db);
}

/* Maps the matrix matching the database's generation. Called locked. */
static int index_matrix(server *srv)
{
    serve_index *ix = srv->index;
    if (!ix->s) return 0;
    int64_t gen = store_generation(ix->s);
    if (ix->have_vi && ix->vi.generation == gen) {
        index_ann(srv, 0);
        return 0;
    }
    if (ix->have_ann) ann_close(&ix->ann); /* it points into the old matrix */
    ix->have_ann = 0;
    if (ix->have_vi) vecindex_close(&ix->vi);
    ix->have_vi = 0;
    memset(&ix->vi, 0, sizeof ix->vi);
    if (vecindex_open(ix->s, ix->mid.dim, &ix->vi)) return -1;
    ix->have_vi = 1;
    index_ann(srv, 1);
    /* thumbnails of changed files must not outlive a generation */
    for (size_t i = 0; i < ix->n_thumbs; i++) free(ix->thumbs[i].jpeg);
    ix->n_thumbs = 0;
    ix->thumb_bytes = 0;
    return 0;
}

/* The people's matrix, mapped when a search asks for it. Called locked. */
static int index_pmatrix(server *srv)
{
    serve_index *ix = srv->index;
    if (!ix->s) return 0;
    int64_t gen = store_generation(ix->s);
    if (ix->have_pvi && ix->pvi.generation == gen) return 0;
    if (ix->have_pvi) vecindex_close(&ix->pvi);
    ix->have_pvi = 0;
    if (vecindex_open_kind(ix->s, ix->mid.dim, VECINDEX_PERSONS, &ix->pvi)) return -1;
    ix->have_pvi = 1;
    return 0;
}

/* What every search result has: rank, the file's id, similarity, path,
 * the thumbnail URL `thumb` (a printf format of `thumb_id`) and the file's
 * URL (the video's for a video). The caller closes the object. */
static void put_head(json_out *j, size_t rank, int64_t file_id, float score, const char *path, size_t len,
                     const char *thumb, int64_t thumb_id, int is_video)
{
    char url[64];
    json_obj_begin(j);
    json_key(j, "rank");
    json_uint(j, rank);
    json_key(j, "id");
    json_int(j, file_id);
    json_key(j, "similarity");
    json_num(j, score);
    json_key(j, "path");
    json_strn(j, path, len);
    json_key(j, "thumbnail");
    snprintf(url, sizeof url, thumb, (long long)thumb_id);
    json_str(j, url);
    json_key(j, is_video ? "video" : "image");
    snprintf(url, sizeof url, is_video ? "/v1/video/%lld" : "/v1/image/%lld", (long long)file_id);
    json_str(j, url);
}

/* One person found: the square over it as the thumbnail (/v1/person/ID),
 * the photo or the video, and the box with the size of the image it is in. */
static void put_person(json_out *j, size_t rank, const phit *h)
{
    put_head(j, rank, h->file_id, h->score, h->path, h->len, "/v1/person/%lld", h->person_id, h->is_video);
    json_key(j, "person");
    json_int(j, h->person_id);
    phits_json(j, h);
    json_obj_end(j);
}

/* One search result: a photo with its thumbnail and original, or a video's
 * time range with its best sample's thumbnail and the video itself (played
 * from the best time by the page: /v1/video/ID#t=T). */
static void put_hit(json_out *j, size_t rank, const vhit *h)
{
    put_head(j, rank, h->file_id, h->score, h->path, h->len, h->is_video ? "/v1/frame/%lld" : "/v1/thumb/%lld",
             h->is_video ? h->best_frame : h->file_id, h->is_video);
    vhits_json_range(j, h);
    json_obj_end(j);
}

/* The k best rows for the unit query qv among `only` (NULL: all rows):
 * with ann, its candidates and exact tail re-ranked exactly (docs/ann.md);
 * else the exact float32 scan, as the page's queries are small. -1 when no
 * context, memory or FAISS failed. Called locked (one ANN search at a time). */
static long index_scan(server *srv, const vec_index *vi, ann_index *ann, const float *qv, const api_search *q,
                       const row_set *only, size_t k_rows, clipdex_hit *hits)
{
    clipdex_ctx *ctx = server_ctx_get(srv);
    clipdex_search_params p = clipdex_search_params_default();
    p.k = k_rows;
    p.threshold = q->has_threshold ? (float)q->threshold : -INFINITY;
    p.stage = CLIPDEX_SEARCH_EXACT;
    size_t n = 0;
    ann_params ap = {q->nprobe, q->candidates, 1, (size_t)q->k, only};
    ann_stats st;
    int rc = !ctx ? CLIPDEX_E_NOMEM
             : ann && !q->exact ? ann_search(ann, ctx, vi, qv, &p, &ap, hits, &n, &st)
             : only ? vecindex_search_rows(ctx, vi, only->rows, only->n, qv, &p, hits, &n)
                    : clipdex_vecs_search(ctx, vi->vecs, qv, &p, hits, &n, NULL);
    server_ctx_put(srv, ctx);
    return rc ? -1 : (long)n;
}

int serve_index_open(server *srv)
{
    serve_index *ix = calloc(1, sizeof *ix);
    if (!ix) {
        report_error("out of memory");
        return -1;
    }
    pthread_mutex_init(&ix->mu, NULL);
    ix->exit_code = -1;
    srv->index = ix;
    if (store_model_identify(srv->model, srv->o.model, &ix->mid)) return -1;
    pthread_mutex_lock(&ix->mu);
    int rc = index_connect(srv);
    if (!rc) rc = index_matrix(srv);
    pthread_mutex_unlock(&ix->mu);
    return rc;
}

void serve_index_close(server *srv)
{
    serve_index *ix = srv->index;
    if (!ix) return;
    pthread_mutex_lock(&ix->mu);
    if (ix->running && ix->pid > 0) kill(ix->pid, SIGTERM);
    pthread_mutex_unlock(&ix->mu);
    if (ix->have_reader) pthread_join(ix->reader, NULL);
    if (ix->have_ann) ann_close(&ix->ann);
    if (ix->have_vi) vecindex_close(&ix->vi);
    if (ix->have_pvi) vecindex_close(&ix->pvi);
    store_close(ix->s);
    for (size_t i = 0; i < ix->n_thumbs; i++) free(ix->thumbs[i].jpeg);
    free(ix->thumbs);
    free(ix->job_path);
    pthread_mutex_destroy(&ix->mu);
    free(ix);
    srv->index = NULL;
}

/* "search": how searches are answered: {"index": "exact"} or the ANN
 * index's factory with its recall settings and coverage. Called locked. */
static void index_search_info(const serve_index *ix, json_out *j)
{
    json_key(j, "search");
    json_obj_begin(j);
    json_key(j, "index");
    if (!ix->have_ann) {
        json_str(j, "exact");
        json_obj_end(j);
        return;
    }
    json_str(j, ix->ann.factory);
    json_key(j, "nprobe");
    json_int(j, ix->ann.nprobe);
    json_key(j, "candidates_per_k");
    json_int(j, ANN_CANDIDATES_DEFAULT);
    json_key(j, "rerank");
    json_str(j, "exact float32");
    json_key(j, "ann_vectors");
    json_uint(j, ix->ann.n_live);
    json_key(j, "exact_tail");
    json_uint(j, ix->ann.n_tail);
    json_obj_end(j);
}

void serve_index_info(server *srv, json_out *j)
{
    serve_index *ix = srv->index;
    json_key(j, "vectors");
    if (!ix) {
        json_null(j);
        return;
    }
    pthread_mutex_lock(&ix->mu);
    if (index_connect(srv) == 0) index_matrix(srv);
    size_t n = ix->have_vi ? ix->vi.n : 0;
    json_uint(j, n);
    index_search_info(ix, j);
    pthread_mutex_unlock(&ix->mu);
    json_key(j, "db");
    json_str(j, srv->o.db);
    json_key(j, "roots");
    json_arr_begin(j);
    for (size_t i = 0; i < srv->n_roots; i++) json_str(j, srv->roots[i]);
    json_arr_end(j);
}

/* The path of file `id` (malloc'd, NUL-terminated); -1 with e set. Locked. */
static int id_path(server *srv, int64_t id, char **out, http_err *e)
{
    serve_index *ix = srv->index;
    *out = NULL;
    if (!ix->s) return http_fail(e, 404, "no image %lld: the index is empty", (long long)id);
    sqlite3_stmt *st = store_prepare(ix->s, "SELECT path FROM files WHERE id = ?");
    if (!st) return http_fail(e, 500, "cannot query the index");
    sqlite3_bind_int64(st, 1, id);
    int rc = -1;
    if (sqlite3_step(st) == SQLITE_ROW) {
        size_t len = (size_t)sqlite3_column_bytes(st, 0);
        const void *p = sqlite3_column_blob(st, 0);
        char *s = malloc(len + 1);
        if (s) {
            if (len) memcpy(s, p, len);
            s[len] = '\0';
            *out = s;
            rc = 0;
        } else {
            http_fail(e, 500, "out of memory");
        }
    } else {
        http_fail(e, 404, "no image with ID %lld in the index", (long long)id);
    }
    sqlite3_finalize(st);
    return rc;
}

static int read_file(const char *path, unsigned char **out, size_t *len, http_err *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return http_fail(e, 404, "the indexed file is gone: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > SERVE_MAX_FILE) {
        close(fd);
        return http_fail(e, 404, "the indexed file is not a readable image any more");
    }
    unsigned char *buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (!buf || got != (size_t)st.st_size) {
        free(buf);
        return http_fail(e, 500, "cannot read the indexed file");
    }
    *out = buf;
    *len = got;
    return 0;
}

int serve_index_path(server *srv, int64_t id, char **path, http_err *e)
{
    serve_index *ix = srv->index;
    if (!ix) return http_fail(e, 404, "no index: start the server with --db FILE");
    pthread_mutex_lock(&ix->mu);
    int rc = index_connect(srv) ? http_fail(e, 500, "cannot open the index") : id_path(srv, id, path, e);
    pthread_mutex_unlock(&ix->mu);
    return rc;
}

int serve_index_frame_thumb(server *srv, int64_t frame_id, unsigned char **jpeg, size_t *len, http_err *e)
{
    serve_index *ix = srv->index;
    if (!ix) return http_fail(e, 404, "no index: start the server with --db FILE");
    pthread_mutex_lock(&ix->mu);
    *jpeg = NULL;
    if (index_connect(srv) == 0 && ix->s) *jpeg = vhits_thumb(ix->s, frame_id, len);
    pthread_mutex_unlock(&ix->mu);
    return *jpeg ? 0 : http_fail(e, 404, "no thumbnail of video sample %lld in the index", (long long)frame_id);
}

int serve_index_read(server *srv, int64_t id, unsigned char **data, size_t *len, char **path,
                     http_err *e)
{
    if (serve_index_path(srv, id, path, e)) return -1;
    if (read_file(*path, data, len, e)) {
        free(*path);
        *path = NULL;
        return -1;
    }
    return 0;
}

/* ---- images by reference ------------------------------------------------ */

/* Reads a whole regular file of at most max bytes. */
static int read_small_file(const char *path, size_t max, unsigned char **out, size_t *len,
                           http_err *e)
{
    FILE *f = fopen(path, "rb");
    if (!f) return http_fail(e, 404, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return http_fail(e, 400, "'%s' is not a regular file", path);
    }
    if ((uint64_t)st.st_size > max) {
        fclose(f);
        return http_fail(e, 413, "'%s' is larger than %zu bytes", path, max);
    }
    unsigned char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        fclose(f);
        return http_fail(e, 500, "out of memory");
    }
    size_t n = fread(buf, 1, (size_t)st.st_size, f);
    fclose(f);
    if (n != (size_t)st.st_size) {
        free(buf);
        return http_fail(e, 500, "cannot read '%s'", path);
    }
    *out = buf;
    *len = n;
    return 0;
}

int serve_images_load(server *srv, api_image *images, size_t n, http_err *e)
{
    for (size_t i = 0; i < n; i++) {
        api_image *im = &images[i];
        if (im->kind == API_IMAGE_PATH) {
            char *real = serve_path_in_roots(srv, im->path, e);
            if (!real) return -1;
            int r = read_small_file(real, (size_t)srv->o.max_body, &im->data, &im->len, e);
            free(real);
            if (r) return -1;
            im->kind = API_IMAGE_BYTES;
        } else if (im->kind == API_IMAGE_ID) {
            char *p = NULL;
            if (serve_index_read(srv, im->id, &im->data, &im->len, &p, e)) return -1;
            free(p);
            im->kind = API_IMAGE_BYTES;
        }
    }
    return 0;
}

/* ---- search ------------------------------------------------------------- */

/* The people closest to qv as results; returns the people searched.
 * Called locked. */
static size_t search_persons(server *srv, const float *qv, const api_search *q, clipdex_hit *hits, json_out *j)
{
    serve_index *ix = srv->index;
    if (index_connect(srv) || index_pmatrix(srv) || !ix->have_pvi) return 0;
    long nh = index_scan(srv, &ix->pvi, NULL, qv, q, NULL, (size_t)q->k, hits);
    int64_t *ids = nh > 0 ? malloc((size_t)nh * sizeof *ids) : NULL;
    float *sc = nh > 0 ? malloc((size_t)nh * sizeof *sc) : NULL;
    for (long i = 0; ids && sc && i < nh; i++) ids[i] = ix->pvi.ids[hits[i].row], sc[i] = hits[i].score;
    phit *ph = NULL;
    long n = ids && sc ? phits_build(ix->s, ids, sc, (size_t)nh, (size_t)q->k, &ph) : 0;
    for (long i = 0; i < n; i++) put_person(j, (size_t)i + 1, &ph[i]);
    if (n > 0) phits_free(ph, (size_t)n);
    free(ids);
    free(sc);
    return ix->pvi.n;
}

void serve_route_search(server *srv, const http_request *rq, http_response *rs)
{
    serve_index *ix = srv->index;
    if (!ix) {
        resp_error(rs, 503, "no index: start the server with --db FILE");
        return;
    }
    http_err e = {0, ""};
    double t0 = serve_now();
    api_search q;
    memset(&q, 0, sizeof q);
    size_t dim = (size_t)srv->info.embed_dim;
    float *emb = NULL, *qv = NULL;
    clipdex_hit *hits = NULL;
    struct json_t *root = api_json_load((const char *)rq->body, rq->body_len, &e);
    if (!root || api_parse_search(root, &q, &e)) goto fail;
    emb = malloc(q.n_terms * dim * sizeof *emb);
    qv = calloc(dim, sizeof *qv);
    size_t k_rows = vhits_rows((size_t)q.k, SERVE_SEARCH_ROWS_MAX);
    hits = malloc(k_rows * sizeof *hits);
    if (!emb || !qv || !hits) {
        http_fail(&e, 500, "out of memory");
        goto fail;
    }
    /* embed the terms: texts in one batch, images in another */
    api_text texts[HTTP_MAX_TERMS];
    api_image images[HTTP_MAX_TERMS];
    size_t nt = 0, ni = 0, ti[HTTP_MAX_TERMS], ii[HTTP_MAX_TERMS];
    for (size_t i = 0; i < q.n_terms; i++) {
        if (q.terms[i].is_image) {
            images[ni] = q.terms[i].image;
            ii[ni++] = i;
        } else {
            texts[nt] = q.terms[i].text;
            ti[nt++] = i;
        }
    }
    float *tmp = malloc(q.n_terms * dim * sizeof *tmp);
    if (!tmp) {
        http_fail(&e, 500, "out of memory");
        goto fail;
    }
    int r = nt ? serve_embed_texts(srv, texts, nt, tmp, rq->deadline, &e) : 0;
    for (size_t k = 0; !r && k < nt; k++) memcpy(emb + ti[k] * dim, tmp + k * dim, dim * sizeof *tmp);
    if (!r && ni) r = serve_images_load(srv, images, ni, &e);
    if (!r && ni) r = serve_embed_images(srv, images, ni, tmp, rq->deadline, &e);
    for (size_t k = 0; k < ni; k++) { /* the loaded bytes now belong to images[] */
        q.terms[ii[k]].image.data = images[k].data;
        if (!r) memcpy(emb + ii[k] * dim, tmp + k * dim, dim * sizeof *tmp);
    }
    free(tmp);
    if (r) goto fail;
    double norm = 0.0;
    for (size_t i = 0; i < q.n_terms; i++)
        for (size_t d = 0; d < dim; d++) qv[d] += (float)q.terms[i].weight * emb[i * dim + d];
    for (size_t d = 0; d < dim; d++) norm += (double)qv[d] * qv[d];
    if (!(norm > 0.0)) {
        http_fail(&e, 400, "the weighted query is the zero vector (terms cancel out)");
        goto fail;
    }
    for (size_t d = 0; d < dim; d++) qv[d] = (float)(qv[d] / sqrt(norm));
    resp_json o;
    if (resp_json_begin(&o)) {
        http_fail(&e, 500, "out of memory");
        goto fail;
    }
    json_obj_begin(&o.j);
    json_key(&o.j, "results");
    json_arr_begin(&o.j);
    pthread_mutex_lock(&ix->mu);
    size_t total = 0;
    if (q.persons) {
        total = search_persons(srv, qv, &q, hits, &o.j);
    } else if (index_connect(srv) == 0 && index_matrix(srv) == 0 && ix->have_vi) {
        total = ix->vi.n;
        row_set only;
        int filtered = filter_active(&q.filter);
        long nh = filtered && filter_rows(ix->s, &ix->vi, &q.filter, &only) ? -1
                  : index_scan(srv, &ix->vi, ix->have_ann ? &ix->ann : NULL, qv, &q, filtered ? &only : NULL,
                               k_rows, hits);
        if (filtered) row_set_free(&only);
        vhit_row *rows = nh > 0 ? malloc((size_t)nh * sizeof *rows) : NULL;
        for (long i = 0; rows && i < nh; i++) rows[i] = (vhit_row){ix->vi.ids[hits[i].row], hits[i].score};
        vhit *vh = NULL;
        long n = rows ? vhits_build(ix->s, rows, (size_t)nh, (size_t)q.k, VHITS_MERGE_DEFAULT, &vh) : 0;
        for (long i = 0; i < n; i++) put_hit(&o.j, (size_t)i + 1, &vh[i]);
        if (n > 0) vhits_free(vh, (size_t)n);
        free(rows);
    }
    pthread_mutex_unlock(&ix->mu);
    json_arr_end(&o.j);
    json_key(&o.j, "vectors");
    json_uint(&o.j, total);
    json_key(&o.j, "time");
    json_num(&o.j, serve_now() - t0);
    json_obj_end(&o.j);
    resp_json_end(&o, rs, 200);
    goto done;
fail:
    resp_error(rs, e.status ? e.status : 500, "%s", e.msg);
done:
    api_search_free(&q);
    api_json_free(root);
    free(emb);
    free(qv);
    free(hits);
}

/* ---- thumbnails and originals ---------------------------------------------- */

/* Encodes an RGB image as JPEG (quality 80) into a malloc'd buffer. */
static int jpeg_encode(const uint8_t *rgb, int w, int h, unsigned char **out, size_t *len)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    unsigned char *buf = NULL;
    unsigned long size = 0;
    c.err = jpeg_std_error(&err); /* errors here are bugs (memory dest, valid input) */
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &buf, &size);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 80, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)c.next_scanline * (size_t)w * 3);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    if (!buf) return -1;
    *out = buf;
    *len = size;
    return 0;
}

static const char *sniff_type(const unsigned char *d, size_t n)
{
    if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8) return "image/jpeg";
    if (n >= 8 && memcmp(d, "\x89PNG", 4) == 0) return "image/png";
    if (n >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0) return "image/webp";
    if (n >= 6 && memcmp(d, "GIF8", 4) == 0) return "image/gif";
    if (n >= 2 && memcmp(d, "BM", 2) == 0) return "image/bmp";
    if (n >= 4 && (memcmp(d, "II*\0", 4) == 0 || memcmp(d, "MM\0*", 4) == 0)) return "image/tiff";
    return "application/octet-stream";
}

/* The square over a person: the image's shorter side, slid along the
 * longer one as far as it may towards the box centre (the page draws the
 * box in it; docs/http.md). box: x0, y0, x1, y1 in an image of w x h. */
static void person_square(const double *box, double w, double h, double *sx, double *sy, double *m)
{
    *m = w < h ? w : h;
    double cx = (box[0] + box[2]) / 2 - *m / 2, cy = (box[1] + box[3]) / 2 - *m / 2;
    *sx = floor(cx < 0 ? 0 : cx > w - *m ? w - *m : cx);
    *sy = floor(cy < 0 ? 0 : cy > h - *m ? h - *m : cy);
}

/* A SERVE_THUMB_SIZE square JPEG of an encoded image: its centre crop, or
 * with `person` (x0, y0, x1, y1 and the width and height of the image they
 * are in) the square over that person. A clipdex status; on failure rs has
 * the 500 answer. */
static int make_thumb(server *srv, const unsigned char *data, size_t len, const double *person,
                      unsigned char **jpeg, size_t *jlen, http_response *rs)
{
    clipdex_ctx *ctx = server_ctx_get(srv);
    clipdex_image *img = NULL, *sq = NULL;
    clipdex_image_params ip = clipdex_image_params_default();
    ip.ignore_exif_orientation = srv->o.no_exif;
    uint8_t *rgb = malloc((size_t)SERVE_THUMB_SIZE * SERVE_THUMB_SIZE * 3);
    int st = rgb && ctx ? clipdex_image_decode(ctx, data, len, &ip, &img) : CLIPDEX_E_NOMEM;
    if (st == CLIPDEX_OK && person) { /* the box may be in a larger copy (a sample's thumbnail) */
        double w = clipdex_image_width(img), h = clipdex_image_height(img), k = w / person[4], sx, sy, m;
        double box[4] = {person[0] * k, person[1] * k, person[2] * k, person[3] * k};
        person_square(box, w, h, &sx, &sy, &m);
        st = clipdex_image_crop_box(ctx, img, (float)sx, (float)sy, (float)(sx + m), (float)(sy + m), 0, &sq);
    }
    if (st == CLIPDEX_OK)
        st = clipdex_image_crop_rgb(ctx, sq ? sq : img, SERVE_THUMB_SIZE, rgb,
                                    (size_t)SERVE_THUMB_SIZE * SERVE_THUMB_SIZE * 3);
    if (st == CLIPDEX_OK && jpeg_encode(rgb, SERVE_THUMB_SIZE, SERVE_THUMB_SIZE, jpeg, jlen))
        st = CLIPDEX_E_NOMEM;
    if (st != CLIPDEX_OK) {
        const char *m = ctx ? clipdex_ctx_errmsg(ctx) : NULL;
        resp_error(rs, 500, "cannot make the thumbnail: %s", m && m[0] ? m : clipdex_status_str(st));
    }
    clipdex_image_free(sq);
    clipdex_image_free(img);
    if (ctx) server_ctx_put(srv, ctx);
    free(rgb);
    return st;
}

/* Where person `id` is: its box and image size, and the photo's first
 * files.id or the sample's frames.id. 0, or -1 with e set. Locked. */
static int person_where(server *srv, int64_t id, double *person, int64_t *file_id, int64_t *frame_id, http_err *e)
{
    serve_index *ix = srv->index;
    if (index_connect(srv) || !ix->s) return http_fail(e, 404, "no person %lld in the index", (long long)id);
    sqlite3_stmt *st = store_prepare(ix->s, "SELECT (SELECT min(f.id) FROM files f WHERE f.hash = p.hash), "
                                            "p.frame_id, p.x0, p.y0, p.x1, p.y1, p.width, p.height "
                                            "FROM persons p WHERE p.id = ?");
    if (!st) return http_fail(e, 500, "cannot query the index");
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : http_fail(e, 404, "no person %lld in the index", (long long)id);
    if (!rc) {
        *file_id = sqlite3_column_int64(st, 0);
        *frame_id = sqlite3_column_int64(st, 1);
        for (int i = 0; i < 6; i++) person[i] = sqlite3_column_double(st, 2 + i);
        if (!*file_id && !*frame_id) rc = http_fail(e, 404, "person %lld is in no indexed file", (long long)id);
    }
    sqlite3_finalize(st);
    return rc;
}

void serve_route_person(server *srv, const http_request *rq, http_response *rs)
{
    serve_index *ix = srv->index;
    int64_t id = 0, file_id = 0, frame_id = 0;
    http_err e = {0, ""};
    double person[6];
    if (!ix) {
        resp_error(rs, 404, "no index: start the server with --db FILE");
        return;
    }
    http_parse_id(rq->url, "/v1/person/", &id);
    pthread_mutex_lock(&ix->mu);
    int rc = person_where(srv, id, person, &file_id, &frame_id, &e);
    pthread_mutex_unlock(&ix->mu);
    unsigned char *data = NULL, *jpeg = NULL;
    size_t len = 0, jlen = 0;
    char *path = NULL;
    if (!rc) rc = frame_id ? serve_index_frame_thumb(srv, frame_id, &data, &len, &e)
                           : serve_index_read(srv, file_id, &data, &len, &path, &e);
    free(path);
    if (rc) {
        resp_error(rs, e.status, "%s", e.msg);
        return;
    }
    int st = make_thumb(srv, data, len, person, &jpeg, &jlen, rs);
    free(data);
    if (st != CLIPDEX_OK) return;
    rs->status = 200;
    rs->content_type = "image/jpeg";
    rs->body = jpeg; /* from libjpeg's malloc */
    rs->len = jlen;
    rs->cache_control = "private, max-age=60";
}

void serve_route_file(server *srv, const http_request *rq, http_response *rs, int thumb)
{
    serve_index *ix = srv->index;
    int64_t id = 0;
    http_parse_id(rq->url, thumb ? "/v1/thumb/" : "/v1/image/", &id);
    if (!ix) {
        resp_error(rs, 404, "no index: start the server with --db FILE");
        return;
    }
    if (thumb) { /* the cache first */
        pthread_mutex_lock(&ix->mu);
        if (index_connect(srv) == 0) index_matrix(srv);
        for (size_t i = 0; i < ix->n_thumbs; i++) {
            if (ix->thumbs[i].id != id) continue;
            unsigned char *copy = malloc(ix->thumbs[i].len);
            if (copy) {
                memcpy(copy, ix->thumbs[i].jpeg, ix->thumbs[i].len);
                rs->status = 200;
                rs->content_type = "image/jpeg";
                rs->body = copy;
                rs->len = ix->thumbs[i].len;
                rs->cache_control = "private, max-age=60";
            }
            break;
        }
        pthread_mutex_unlock(&ix->mu);
        if (rs->body) return;
    }
    http_err e = {0, ""};
    unsigned char *data = NULL;
    size_t len = 0;
    char *path = NULL;
    if (serve_index_read(srv, id, &data, &len, &path, &e)) {
        resp_error(rs, e.status, "%s", e.msg);
        return;
    }
    free(path);
    if (!thumb) {
        rs->status = 200;
        rs->content_type = sniff_type(data, len);
        rs->body = data;
        rs->len = len;
        rs->cache_control = "private, max-age=60";
        return;
    }
    unsigned char *jpeg = NULL;
    size_t jlen = 0;
    int st = make_thumb(srv, data, len, NULL, &jpeg, &jlen, rs);
    free(data);
    if (st != CLIPDEX_OK) return;
    /* keep a copy in the cache (oldest out first) */
    pthread_mutex_lock(&ix->mu);
    while (ix->n_thumbs && ix->thumb_bytes + jlen > SERVE_THUMB_CACHE_BYTES) {
        ix->thumb_bytes -= ix->thumbs[0].len;
        free(ix->thumbs[0].jpeg);
        memmove(ix->thumbs, ix->thumbs + 1, (ix->n_thumbs - 1) * sizeof *ix->thumbs);
        ix->n_thumbs--;
    }
    if (ix->n_thumbs == ix->cap_thumbs) {
        size_t cap = ix->cap_thumbs ? ix->cap_thumbs * 2 : 64;
        thumb_entry *v = realloc(ix->thumbs, cap * sizeof *v);
        if (v) {
            ix->thumbs = v;
            ix->cap_thumbs = cap;
        }
    }
    unsigned char *copy = ix->n_thumbs < ix->cap_thumbs ? malloc(jlen) : NULL;
    if (copy) {
        memcpy(copy, jpeg, jlen);
        ix->thumbs[ix->n_thumbs++] = (thumb_entry){id, copy, jlen};
        ix->thumb_bytes += jlen;
    }
    pthread_mutex_unlock(&ix->mu);
    rs->status = 200;
    rs->content_type = "image/jpeg";
    rs->body = jpeg; /* from libjpeg's malloc */
    rs->len = jlen;
    rs->cache_control = "private, max-age=60";
}

/* ---- indexing ----------------------------------------------------------- */

typedef struct reader_arg {
    server *srv;
    int fd;
} reader_arg;

/* Reads the child's stderr; keeps the last line; reaps the child. */
static void *reader_main(void *arg)
{
    reader_arg *ra = arg;
    serve_index *ix = ra->srv->index;
    char buf[4096], line[512];
    size_t ll = 0;
    ssize_t n;
    while ((n = read(ra->fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            char c = buf[i];
            if (c == '\n' || c == '\r') {
                if (ll == 0) continue;
                line[ll] = '\0';
                pthread_mutex_lock(&ix->mu);
                snprintf(ix->last_line, sizeof ix->last_line, "%s", line);
                pthread_mutex_unlock(&ix->mu);
                ll = 0;
            } else if (ll + 1 < sizeof line) {
                line[ll++] = c;
            }
        }
    }
    close(ra->fd);
    int status = 0;
    pid_t pid = ix->pid;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    pthread_mutex_lock(&ix->mu);
    ix->running = 0;
    ix->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    ix->job_ended = serve_now();
    if (ix->s) { /* see the new rows */
        if (ix->have_vi) vecindex_close(&ix->vi);
        if (ix->have_pvi) vecindex_close(&ix->pvi);
        ix->have_pvi = 0;
        ix->have_vi = 0;
    }
    pthread_mutex_unlock(&ix->mu);
    free(ra);
    return NULL;
}

static void index_status(server *srv, http_response *rs, int status)
{
    serve_index *ix = srv->index;
    resp_json o;
    if (resp_json_begin(&o)) {
        resp_error(rs, 500, "out of memory");
        return;
    }
    pthread_mutex_lock(&ix->mu);
    json_obj_begin(&o.j);
    json_key(&o.j, "running");
    json_bool(&o.j, ix->running);
    json_key(&o.j, "path");
    json_str(&o.j, ix->job_path);
    json_key(&o.j, "progress");
    json_str(&o.j, ix->last_line);
    json_key(&o.j, "exit_code");
    if (ix->running || !ix->job_path)
        json_null(&o.j);
    else
        json_int(&o.j, ix->exit_code);
    json_key(&o.j, "seconds");
    json_num(&o.j, ix->job_path ? (ix->running ? serve_now() : ix->job_ended) - ix->job_started : 0);
    pthread_mutex_unlock(&ix->mu);
    serve_index_info(srv, &o.j);
    json_obj_end(&o.j);
    resp_json_end(&o, rs, status);
}

void serve_route_index(server *srv, const http_request *rq, http_response *rs)
{
    serve_index *ix = srv->index;
    if (!ix) {
        resp_error(rs, 503, "no index: start the server with --db FILE");
        return;
    }
    if (strcmp(rq->method, "POST") != 0) {
        index_status(srv, rs, 200);
        return;
    }
    http_err e = {0, ""};
    const char *path = NULL;
    struct json_t *root = api_json_load((const char *)rq->body, rq->body_len, &e);
    char *real = NULL;
    if (!root || api_parse_index(root, &path, &e) || !(real = serve_path_in_roots(srv, path, &e))) {
        resp_error(rs, e.status, "%s", e.msg);
        api_json_free(root);
        return;
    }
    api_json_free(root);
    pthread_mutex_lock(&ix->mu);
    if (ix->running) {
        pthread_mutex_unlock(&ix->mu);
        free(real);
        resp_error(rs, 409, "an index run is in progress (GET /v1/index for its progress)");
        return;
    }
    if (ix->have_reader) { /* the previous run's reader has finished */
        pthread_join(ix->reader, NULL);
        ix->have_reader = 0;
    }
    int fds[2];
    reader_arg *ra = malloc(sizeof *ra);
    if (!ra || pipe2(fds, O_CLOEXEC) != 0) {
        pthread_mutex_unlock(&ix->mu);
        free(ra);
        free(real);
        resp_error(rs, 500, "cannot start indexing: %s", strerror(errno));
        return;
    }
    char threads[32];
    snprintf(threads, sizeof threads, "%ld", srv->o.threads);
    const char *argv[16];
    int a = 0;
    argv[a++] = "clipdex";
    argv[a++] = "index";
    argv[a++] = "--model";
    argv[a++] = srv->o.model;
    argv[a++] = "--db";
    argv[a++] = srv->o.db;
    argv[a++] = "--threads";
    argv[a++] = threads;
    if (srv->o.no_exif) argv[a++] = "--no-exif";
    argv[a++] = "--";
    argv[a++] = real;
    argv[a] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        pthread_sigmask(SIG_SETMASK, &none, NULL);
        dup2(fds[1], 2);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
        }
        execv("/proc/self/exe", (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        pthread_mutex_unlock(&ix->mu);
        free(ra);
        free(real);
        resp_error(rs, 500, "cannot start indexing: %s", strerror(errno));
        return;
    }
    free(ix->job_path);
    ix->job_path = real;
    ix->pid = pid;
    ix->running = 1;
    ix->exit_code = -1;
    ix->last_line[0] = '\0';
    ix->job_started = serve_now();
    ra->srv = srv;
    ra->fd = fds[0];
    if (pthread_create(&ix->reader, NULL, reader_main, ra) == 0) {
        ix->have_reader = 1;
    } else { /* no reader: wait here */
        close(fds[0]);
        free(ra);
        waitpid(pid, NULL, 0);
        ix->running = 0;
    }
    pthread_mutex_unlock(&ix->mu);
    index_status(srv, rs, 202);
}
