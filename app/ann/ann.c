/*
 * ann.c - the ANN index beside the database (docs/ann.md): the factory
 * rule, building and updating `DB-ann` with `DB-ann.ids`, opening them
 * against the current vector matrix, and the search that re-ranks FAISS's
 * candidates and the exact tail in float32 with the library's exact scan.
 * Invariants: FAISS label i stands for ids[i]; a label counts only while
 * the matrix still has a row with that id and the same fingerprint (the
 * row's int8 scale, max|x|/127, which changes with the embedding), so a
 * removed or re-embedded file never comes back from a stale label; every
 * matrix row not held by a live label is in the tail and scanned exactly.
 * Scores are those of clipdex_vecs_search over the same rows (same kernel,
 * ties by lower row), hence equal to the exact search's.
 */
#include "ann/ann.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/report.h"

/* ---- the factory rule ------------------------------------------------- */

/* The largest power of two <= x, at least lo. */
static size_t pow2_floor(double x, size_t lo)
{
    size_t p = lo;
    while ((double)(p * 2) <= x) p *= 2;
    return p;
}

/* nprobe unless told: a sixteenth of the lists, at least ANN_NPROBE_MIN (or all of
 * them when there are fewer); 0 without lists. */
static size_t default_nprobe(size_t nlist)
{
    size_t lo = nlist < ANN_NPROBE_MIN ? nlist : ANN_NPROBE_MIN;
    return nlist / 16 > lo ? nlist / 16 : lo;
}

void ann_factory_auto(size_t n, char *buf, size_t cap, long *nprobe)
{
    if (n < 10000) {
        snprintf(buf, cap, "Flat");
        *nprobe = 0;
        return;
    }
    size_t nlist = pow2_floor(4 * sqrt((double)n), 16);
    if (n < 1000000)
        snprintf(buf, cap, "IVF%zu,Flat", nlist);
    else if (n < 10000000)
        snprintf(buf, cap, "IVF%zu_HNSW32,Flat", nlist);
    else
        snprintf(buf, cap, "OPQ64_256,IVF%zu_HNSW32,PQ64", nlist);
    *nprobe = (long)default_nprobe(nlist);
}

/* nlist of a factory string with an IVF stage ("IVF1024,Flat"), else 0. */
static size_t factory_nlist(const char *factory)
{
    const char *p = strstr(factory, "IVF");
    return p ? (size_t)strtoul(p + 3, NULL, 10) : 0;
}

char *ann_path(const store *s, int ids_file)
{
    const char *suffix = ids_file ? "-ann.ids" : "-ann";
    size_t len = strlen(s->path) + strlen(suffix) + 1;
    char *p = malloc(len);
    if (p) snprintf(p, len, "%s%s", s->path, suffix);
    return p;
}

/* ---- DB-ann.ids ------------------------------------------------------- */
/* header (ANN_HEADER bytes): magic[8], u32 dim, u32 nprobe, u64 n labels,
 * i64 generation, model hash[72], factory[ANN_FACTORY_MAX], u32 by_rule
 * (1: the factory rule chose it), zeros; then i64 ids[n], f32
 * fingerprints[n] */
enum { H_DIM = 8, H_NPROBE = 12, H_N = 16, H_GEN = 24, H_HASH = 32, H_FACTORY = 104, H_BY_RULE = 232 };

typedef struct ann_meta {
    uint32_t dim, nprobe;
    uint64_t n;
    int64_t generation;
    char hash[72];
    char factory[ANN_FACTORY_MAX];
    uint32_t by_rule;
    int64_t *ids;
    float *fp;
} ann_meta;

static int write_all(FILE *f, const void *p, size_t len) { return fwrite(p, 1, len, f) == len ? 0 : -1; }

/* Writes the meta file at path (atomically: a temporary file renamed). */
static int meta_write(const char *path, const ann_meta *m)
{
    unsigned char h[ANN_HEADER];
    memset(h, 0, sizeof h);
    memcpy(h, ANN_MAGIC, 8);
    memcpy(h + H_DIM, &m->dim, 4);
    memcpy(h + H_NPROBE, &m->nprobe, 4);
    memcpy(h + H_N, &m->n, 8);
    memcpy(h + H_GEN, &m->generation, 8);
    memcpy(h + H_HASH, m->hash, sizeof m->hash);
    memcpy(h + H_FACTORY, m->factory, sizeof m->factory);
    memcpy(h + H_BY_RULE, &m->by_rule, 4);
    size_t len = strlen(path) + 32;
    char *tmp = malloc(len);
    if (!tmp) {
        report_error("out of memory");
        return APP_FAIL;
    }
    snprintf(tmp, len, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    int rc = f && !write_all(f, h, sizeof h) && !write_all(f, m->ids, m->n * sizeof *m->ids) &&
             !write_all(f, m->fp, m->n * sizeof *m->fp) ? 0 : -1;
    if (f && (fflush(f) || fsync(fileno(f)))) rc = -1;
    if (f && fclose(f)) rc = -1;
    if (!rc && rename(tmp, path)) rc = -1;
    if (rc) {
        report_error("cannot write '%s': %s", path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return rc ? APP_FAIL : 0;
}

/* Reads and checks the meta file; 0, ANN_NONE when absent or APP_FAIL (reported). */
static int meta_read(const char *path, ann_meta *m)
{
    memset(m, 0, sizeof *m);
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return ANN_NONE;
        report_error("cannot open '%s': %s", path, strerror(errno));
        return APP_FAIL;
    }
    unsigned char h[ANN_HEADER];
    struct stat sb;
    int rc = APP_FAIL;
    if (fstat(fileno(f), &sb) || fread(h, 1, sizeof h, f) != sizeof h || memcmp(h, ANN_MAGIC, 8)) {
        report_error("'%s' is not a clipdex ANN id file (corrupt or truncated)", path);
        goto done;
    }
    memcpy(&m->dim, h + H_DIM, 4);
    memcpy(&m->nprobe, h + H_NPROBE, 4);
    memcpy(&m->n, h + H_N, 8);
    memcpy(&m->generation, h + H_GEN, 8);
    memcpy(m->hash, h + H_HASH, sizeof m->hash);
    memcpy(m->factory, h + H_FACTORY, sizeof m->factory);
    memcpy(&m->by_rule, h + H_BY_RULE, 4);
    m->hash[sizeof m->hash - 1] = m->factory[sizeof m->factory - 1] = '\0';
    if (m->n > ((uint64_t)1 << 32) || (uint64_t)sb.st_size != ANN_HEADER + m->n * 12) {
        report_error("'%s' has the wrong size for %llu vectors (corrupt or truncated)", path,
                     (unsigned long long)m->n);
        goto done;
    }
    m->ids = malloc((m->n ? m->n : 1) * sizeof *m->ids);
    m->fp = malloc((m->n ? m->n : 1) * sizeof *m->fp);
    if (!m->ids || !m->fp) {
        report_error("out of memory");
        goto done;
    }
    if (fread(m->ids, sizeof *m->ids, m->n, f) != m->n || fread(m->fp, sizeof *m->fp, m->n, f) != m->n) {
        report_error("cannot read '%s'", path);
        goto done;
    }
    rc = 0;
done:
    fclose(f);
    if (rc) {
        free(m->ids);
        free(m->fp);
        m->ids = NULL;
        m->fp = NULL;
    }
    return rc;
}

/* ---- labels against the matrix ---------------------------------------- */

/* Fills a->label_row, a->n_live and the tail from a->ids and a->fp. */
static int map_labels(ann_index *a, const vec_index *vi)
{
    for (size_t r = 1; r < vi->n; r++)
        if (vi->ids[r - 1] >= vi->ids[r]) {
            report_error("the vector matrix is not sorted by id (rebuild it with `clipdex index`)");
            return APP_FAIL;
        }
    unsigned char *covered = calloc(vi->n ? vi->n : 1, 1);
    a->label_row = malloc((a->n_labels ? a->n_labels : 1) * sizeof *a->label_row);
    a->tail = malloc((vi->n ? vi->n : 1) * sizeof *a->tail);
    if (!covered || !a->label_row || !a->tail) {
        free(covered);
        report_error("out of memory");
        return APP_FAIL;
    }
    a->n_live = 0;
    for (size_t i = 0; i < a->n_labels; i++) {
        long r = vecindex_row_of(vi, a->ids[i]);
        if (r >= 0 && memcmp(&vi->scale[r], &a->fp[i], sizeof(float)) == 0 && !covered[r]) {
            covered[r] = 1;
            a->label_row[i] = (int32_t)r;
            a->n_live++;
        } else {
            a->label_row[i] = -1;
        }
    }
    a->n_tail = 0;
    for (size_t r = 0; r < vi->n; r++)
        if (!covered[r]) a->tail[a->n_tail++] = (uint32_t)r;
    free(covered);
    return 0;
}

/* Applies nprobe (0: the default) and the HNSW search depths. */
static int apply_params(ann_index *a, long nprobe, size_t k)
{
    char err[256];
    long np = nprobe > 0 ? nprobe : a->nprobe;
    long ef = (long)k > 64 ? (long)k : 64;
    if ((np > 0 && fg_set_param(a->fg, "nprobe", (double)np, err, sizeof err) < 0) ||
        fg_set_param(a->fg, "quantizer_efSearch", (double)(2 * np > 64 ? 2 * np : 64), err, sizeof err) < 0 ||
        fg_set_param(a->fg, "efSearch", (double)ef, err, sizeof err) < 0) {
        report_error("%s", err);
        return APP_FAIL;
    }
    return 0;
}

void ann_close(ann_index *a)
{
    if (!a) return;
    fg_free(a->fg);
    free(a->label_row);
    free(a->tail);
    free(a->ids);
    free(a->fp);
    memset(a, 0, sizeof *a);
}

/* Opens the pair of files (mmap as fg_read); 0, ANN_NONE or APP_FAIL. */
static int open_files(store *s, const vec_index *vi, int mmap, ann_index *a)
{
    memset(a, 0, sizeof *a);
    char *path = ann_path(s, 0), *ids_path = ann_path(s, 1);
    ann_meta m;
    store_model_id mid;
    char err[512];
    int rc = !path || !ids_path ? (report_error("out of memory"), APP_FAIL) : meta_read(ids_path, &m);
    if (rc == ANN_NONE && access(path, F_OK) == 0) {
        report_error("the ANN index '%s' has no id file '%s' (run `clipdex ann build`)", path, ids_path);
        rc = APP_FAIL;
    }
    if (rc) goto done;
    a->ids = m.ids;
    a->fp = m.fp;
    a->n_labels = (size_t)m.n;
    a->nprobe = (long)m.nprobe;
    a->generation = m.generation;
    a->by_rule = (int)m.by_rule;
    memcpy(a->factory, m.factory, sizeof a->factory);
    rc = APP_FAIL;
    if (m.dim != vi->dim || store_read_model(s, &mid) || strcmp(mid.hash, m.hash) != 0) {
        report_error("the ANN index '%s' was built for another model or database (run `clipdex ann build`)",
                     path);
        goto done;
    }
    if (fg_read(path, mmap, &a->fg, err, sizeof err)) {
        report_error("the ANN index '%s': %s", path, err);
        goto done;
    }
    if (fg_dim(a->fg) != (int)vi->dim || fg_count(a->fg) != (int64_t)m.n) {
        report_error("the ANN index '%s' holds %lld vectors of %d floats, its id file %llu of %u "
                     "(run `clipdex ann build`)", path, (long long)fg_count(a->fg), fg_dim(a->fg),
                     (unsigned long long)m.n, m.dim);
        goto done;
    }
    rc = map_labels(a, vi);
done:
    if (rc) ann_close(a);
    free(path);
    free(ids_path);
    return rc;
}

int ann_open(store *s, const vec_index *vi, int mmap, ann_index *a)
{
    int rc = open_files(s, vi, mmap, a);
    if (!rc && (rc = apply_params(a, 0, 0))) ann_close(a);
    return rc;
}

/* ---- building --------------------------------------------------------- */

/* Trains fg on an evenly strided sample of the matrix (copied). */
static int train(fg_index *fg, const vec_index *vi, const char *factory, size_t *used)
{
    *used = 0;
    if (fg_is_trained(fg)) return 0;
    size_t want = ANN_TRAIN_PER_LIST * factory_nlist(factory);
    if (want < ANN_TRAIN_MIN) want = ANN_TRAIN_MIN;
    size_t n = vi->n < want ? vi->n : want;
    float *x = malloc(n * vi->dim * sizeof *x);
    if (!x) {
        report_error("out of memory (training sample of %zu vectors)", n);
        return APP_FAIL;
    }
    for (size_t i = 0; i < n; i++)
        memcpy(x + i * vi->dim, vi->m + (i * vi->n / n) * vi->dim, vi->dim * sizeof *x);
    size_t nlist = factory_nlist(factory);
    if (n < ANN_TRAIN_WARN_PER_LIST * nlist)
        report_note("note: training %s on %zu vectors, under the %d per list FAISS asks for", factory, n,
                    ANN_TRAIN_WARN_PER_LIST);
    char err[512];
    int rc = fg_train(fg, n, x, err, sizeof err);
    free(x);
    if (rc) {
        report_error("%s", err);
        return APP_FAIL;
    }
    *used = n;
    return 0;
}

/* Adds the rows of vi listed in rows (n) to fg and to m's ids and fp. */
static int add_rows(fg_index *fg, const vec_index *vi, const uint32_t *rows, size_t n, ann_meta *m)
{
    int64_t *ids = realloc(m->ids, (m->n + n + 1) * sizeof *ids);
    if (ids) m->ids = ids;
    float *fp = realloc(m->fp, (m->n + n + 1) * sizeof *fp);
    if (fp) m->fp = fp;
    enum { CHUNK = 4096 };
    float *x = malloc(CHUNK * vi->dim * sizeof *x);
    if (!ids || !fp || !x) {
        free(x);
        report_error("out of memory");
        return APP_FAIL;
    }
    char err[512];
    for (size_t at = 0; at < n; at += CHUNK) {
        size_t c = n - at < CHUNK ? n - at : CHUNK;
        for (size_t i = 0; i < c; i++) {
            uint32_t r = rows[at + i];
            memcpy(x + i * vi->dim, vi->m + (size_t)r * vi->dim, vi->dim * sizeof *x);
            m->ids[m->n + i] = vi->ids[r];
            m->fp[m->n + i] = vi->scale[r];
        }
        if (fg_add(fg, c, x, err, sizeof err)) {
            free(x);
            report_error("%s", err);
            return APP_FAIL;
        }
        m->n += c;
    }
    free(x);
    return 0;
}

/* Writes fg to DB-ann, then m to DB-ann.ids (each through a rename). */
static int save(store *s, const fg_index *fg, const ann_meta *m)
{
    char *path = ann_path(s, 0), *ids_path = ann_path(s, 1);
    size_t len = path ? strlen(path) + 32 : 0;
    char *tmp = path ? malloc(len) : NULL;
    char err[512];
    int rc = APP_FAIL;
    if (!tmp || !ids_path) {
        report_error("out of memory");
        goto done;
    }
    snprintf(tmp, len, "%s.tmp%ld", path, (long)getpid());
    if (fg_write(fg, tmp, err, sizeof err)) {
        report_error("'%s': %s", tmp, err);
        unlink(tmp);
        goto done;
    }
    if (rename(tmp, path)) {
        report_error("cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        unlink(tmp);
        goto done;
    }
    rc = meta_write(ids_path, m);
done:
    free(tmp);
    free(path);
    free(ids_path);
    return rc;
}

/* The factory a build uses: the one asked for, else the existing index's
 * when it was asked for then, else the rule's. Opens the existing index
 * (read whole, for adding) into a and returns 0 when it can be brought up
 * to date: the same factory and few dead labels; else 1 (build anew). */
static int choose(store *s, const vec_index *vi, const char *factory, const char *rule, ann_index *a,
                  char *f, size_t cap)
{
    int have = open_files(s, vi, 0, a) == 0; /* absent, or unusable (reported): built anew */
    snprintf(f, cap, "%s", factory ? factory : have && !a->by_rule ? a->factory : rule);
    if (!have) return 1;
    size_t dead = a->n_labels - a->n_live;
    if (strcmp(a->factory, f) != 0 || (double)dead > ANN_DEAD_MAX_FRACTION * (double)a->n_labels) {
        ann_close(a);
        return 1;
    }
    return 0;
}

int ann_build(store *s, const vec_index *vi, const char *factory, ann_build_info *info)
{
    memset(info, 0, sizeof *info);
    if (vi->n == 0) {
        report_error("the index '%s' holds no vectors: nothing to build", s->path);
        return APP_FAIL;
    }
    char rule[ANN_FACTORY_MAX];
    long nprobe;
    ann_factory_auto(vi->n, rule, sizeof rule, &nprobe);
    ann_meta m;
    memset(&m, 0, sizeof m);
    ann_index a;
    fg_index *fg = NULL;
    const uint32_t *rows = NULL;
    uint32_t *all = NULL;
    size_t n_rows = 0;
    int rc = APP_FAIL;
    store_model_id mid;
    char f[ANN_FACTORY_MAX];
    if (factory && strlen(factory) >= ANN_FACTORY_MAX) {
        report_error("the factory string '%s' is longer than %d bytes", factory, ANN_FACTORY_MAX - 1);
        return APP_FAIL;
    }
    if (store_read_model(s, &mid)) return APP_FAIL;
    if (choose(s, vi, factory, rule, &a, f, sizeof f) == 0) {
        /* keep the labels and what they stand for; add the tail */
        fg = a.fg;
        a.fg = NULL;
        m.ids = a.ids;
        m.fp = a.fp;
        a.ids = NULL;
        a.fp = NULL;
        m.n = a.n_labels;
        m.nprobe = (uint32_t)a.nprobe;
        m.by_rule = (uint32_t)a.by_rule;
        rows = a.tail;
        n_rows = a.n_tail;
        info->updated = 1;
        snprintf(info->factory, sizeof info->factory, "%s", a.factory);
    } else {
        memset(&a, 0, sizeof a);
        char err[512];
        m.by_rule = strcmp(f, rule) == 0 && !factory;
        if (fg_new(f, (int)vi->dim, &fg, err, sizeof err)) {
            report_error("'%s': %s", f, err);
            goto done;
        }
        if (train(fg, vi, f, &info->trained_on)) goto done;
        all = malloc(vi->n * sizeof *all);
        if (!all) {
            report_error("out of memory");
            goto done;
        }
        for (size_t r = 0; r < vi->n; r++) all[r] = (uint32_t)r;
        rows = all;
        n_rows = vi->n;
        m.nprobe = (uint32_t)default_nprobe(factory_nlist(f));
        snprintf(info->factory, sizeof info->factory, "%s", f);
    }
    m.dim = (uint32_t)vi->dim;
    m.generation = vi->generation;
    snprintf(m.hash, sizeof m.hash, "%s", mid.hash);
    snprintf(m.factory, sizeof m.factory, "%s", info->factory);
    if (add_rows(fg, vi, rows, n_rows, &m) || save(s, fg, &m)) goto done;
    info->added = n_rows;
    info->total = (size_t)m.n;
    rc = 0;
done:
    fg_free(fg);
    free(all);
    free(m.ids);
    free(m.fp);
    ann_close(&a);
    return rc;
}

/* ---- searching -------------------------------------------------------- */

static int cmp_u32(const void *pa, const void *pb)
{
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    return (a > b) - (a < b);
}

/* The rows to re-rank: the live candidates of FAISS and the tail, those
 * in `only` if given, sorted, without repeats, into rows (room for n_cand +
 * a->n_tail). */
static int gather_rows(const ann_index *a, const float *q, size_t n_cand, int threads, const row_set *only,
                       uint32_t *rows, size_t *n_rows, ann_stats *st)
{
    int64_t *labels = malloc((n_cand ? n_cand : 1) * sizeof *labels);
    float *scores = malloc((n_cand ? n_cand : 1) * sizeof *scores);
    char err[512];
    if (!labels || !scores) {
        free(labels);
        free(scores);
        report_error("out of memory");
        return APP_FAIL;
    }
    int rc = n_cand ? fg_search(a->fg, q, n_cand, threads, labels, scores, err, sizeof err) : 0;
    size_t n = 0;
    for (size_t i = 0; !rc && i < n_cand; i++)
        if (labels[i] >= 0 && (size_t)labels[i] < a->n_labels && a->label_row[labels[i]] >= 0 &&
            (!only || only->in[a->label_row[labels[i]]]))
            rows[n++] = (uint32_t)a->label_row[labels[i]];
    free(labels);
    free(scores);
    if (rc) {
        report_error("%s", err);
        return APP_FAIL;
    }
    st->candidates = n;
    for (size_t i = 0; i < a->n_tail; i++)
        if (!only || only->in[a->tail[i]]) rows[n++] = a->tail[i];
    st->tail = n - st->candidates;
    qsort(rows, n, sizeof *rows, cmp_u32);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || rows[u - 1] != rows[i]) rows[u++] = rows[i];
    *n_rows = st->reranked = u;
    return 0;
}

/* The exact scan that answers when the candidates are too few: of the
 * whole matrix (sp->stage), or of the filter's rows. */
static int scan_exact(clipdex_ctx *ctx, const vec_index *vi, const float *q, const clipdex_search_params *sp,
                      const row_set *only, int why, clipdex_hit *out, size_t *n_out, ann_stats *st)
{
    st->exact = why;
    st->reranked = 0;
    if (only) return vecindex_search_rows(ctx, vi, only->rows, only->n, q, sp, out, n_out);
    if (clipdex_vecs_search(ctx, vi->vecs, q, sp, out, n_out, NULL) == CLIPDEX_OK) return 0;
    report_error("search: %s", clipdex_ctx_errmsg(ctx));
    return APP_FAIL;
}

int ann_search(ann_index *a, clipdex_ctx *ctx, const vec_index *vi, const float *q,
               const clipdex_search_params *sp, const ann_params *ap, clipdex_hit *out, size_t *n_out,
               ann_stats *st)
{
    memset(st, 0, sizeof *st);
    *n_out = 0;
    const row_set *only = ap->only;
    size_t mult = ap->candidates > 0 ? (size_t)ap->candidates : ANN_CANDIDATES_DEFAULT;
    size_t n_cand = sp->k * mult;
    if (n_cand > a->n_labels) n_cand = a->n_labels;
    if (only && only->n <= n_cand) /* the filter keeps fewer rows than FAISS would give */
        return scan_exact(ctx, vi, q, sp, only, 2, out, n_out, st);
    if (apply_params(a, ap->nprobe, n_cand)) return APP_FAIL;
    uint32_t *rows = malloc((n_cand + a->n_tail + 1) * sizeof *rows);
    if (!rows) {
        report_error("out of memory");
        return APP_FAIL;
    }
    size_t n = 0;
    int rc = gather_rows(a, q, n_cand, ap->threads, only, rows, &n, st);
    size_t need = ap->min_rows ? ap->min_rows : sp->k;
    if (!rc && n < need && n < (only ? only->n : vi->n)) /* too few candidates: scan it all */
        rc = scan_exact(ctx, vi, q, sp, only, 1, out, n_out, st);
    else if (!rc)
        rc = vecindex_search_rows(ctx, vi, rows, n, q, sp, out, n_out);
    free(rows);
    return rc;
}
