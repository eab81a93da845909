/*
 * vindex.c - one video into the index (see vindex.h): decode.c samples
 * frames, the engine embeds them in batches of VINDEX_BATCH through
 * clipdex_image_from_pixels + clipdex_image_embed, jpeg.c makes the
 * thumbnails, and one BEGIN IMMEDIATE transaction replaces the video's row
 * and samples. The content hash is SHA-256 of the file, read in chunks.
 */
#include "video/vindex.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "person/pstore.h"
#include "util/sha256.h"
#include "video/decode.h"
#include "video/jpeg.h"

typedef struct sample {
    double t;
    uint8_t *thumb;
    size_t thumb_len;
    pfind_result persons;   /* with a detector (vindex_opts.persons) */
} sample;

typedef struct sampler {
    sample *v;
    float *emb;               /* [cap, dim] */
    size_t n, cap, dim;
    clipdex_image *pend[VINDEX_BATCH];
    size_t n_pend;
    int persons;              /* the samples were looked at by a detector */
} sampler;

static void sampler_free(sampler *sp)
{
    for (size_t i = 0; i < sp->n; i++) {
        free(sp->v[i].thumb);
        pfind_result_free(&sp->v[i].persons);
    }
    for (size_t i = 0; i < sp->n_pend; i++) clipdex_image_free(sp->pend[i]);
    free(sp->v);
    free(sp->emb);
}

int vindex_file_hash(const char *path, unsigned char out[SHA256_LEN], char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "'%s': %s", path, strerror(errno));
        return -1;
    }
    sha256_ctx c;
    sha256_init(&c);
    unsigned char buf[1 << 16];
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) != 0) {
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            snprintf(err, errlen, "'%s': %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        sha256_update(&c, buf, (size_t)r);
    }
    close(fd);
    sha256_final(&c, out);
    return 0;
}

static void engine_err(clipdex_ctx *ctx, int st, const char *path, char *err, size_t errlen)
{
    const char *m = ctx ? clipdex_ctx_errmsg(ctx) : NULL;
    snprintf(err, errlen, "'%s': %s", path, m && m[0] ? m : clipdex_status_str(st));
}

/* Embeds the pending images into the rows that follow the stored ones. */
static int flush(sampler *sp, clipdex_ctx *ctx, const clipdex_model *model, const char *path,
                 char *err, size_t errlen)
{
    if (sp->n_pend == 0) return 0;
    size_t first = sp->n - sp->n_pend;
    int st = clipdex_image_embed(ctx, model, (const clipdex_image *const *)sp->pend, sp->n_pend,
                                 sp->emb + first * sp->dim, sp->n_pend * sp->dim, 0);
    for (size_t i = 0; i < sp->n_pend; i++) clipdex_image_free(sp->pend[i]);
    sp->n_pend = 0;
    if (st != CLIPDEX_OK) {
        engine_err(ctx, st, path, err, errlen);
        return -1;
    }
    return 0;
}

static int grow(sampler *sp)
{
    if (sp->n < sp->cap) return 0;
    size_t cap = sp->cap ? 2 * sp->cap : 64;
    sample *v = realloc(sp->v, cap * sizeof *v);
    if (!v) return -1;
    sp->v = v;
    float *e = realloc(sp->emb, cap * sp->dim * sizeof *e);
    if (!e) return -1;
    sp->emb = e;
    sp->cap = cap;
    return 0;
}

/* Adds frame f: its thumbnail now, its embedding with the next batch. */
static int add_frame(sampler *sp, clipdex_ctx *ctx, const clipdex_model *model, const char *path,
                     const video_frame *f, const vindex_opts *o, char *err, size_t errlen)
{
    if (sp->n >= VINDEX_MAX_SAMPLES) return 0; /* the rest of a very long video is not sampled */
    if (grow(sp)) {
        snprintf(err, errlen, "'%s': out of memory", path);
        return -1;
    }
    clipdex_image *img = NULL;
    int st = clipdex_image_from_pixels(ctx, f->rgb, (uint32_t)f->w, (uint32_t)f->h,
                                       (size_t)f->stride, CLIPDEX_MODE_RGB, NULL, &img);
    if (st != CLIPDEX_OK) {
        engine_err(ctx, st, path, err, errlen);
        return -1;
    }
    sample *x = &sp->v[sp->n++];
    memset(x, 0, sizeof *x);
    x->t = f->pts;
    sp->pend[sp->n_pend++] = img;
    if (o->persons && (st = pfind_run(o->persons, ctx, img, &x->persons)) != CLIPDEX_OK) {
        engine_err(ctx, st, path, err, errlen);
        return -1;
    }
    if (!o->no_thumbs && video_jpeg_encode(f->rgb, f->w, f->h, f->stride, VINDEX_THUMB_SIDE, 5,
                                           &x->thumb, &x->thumb_len, err, errlen))
        return -1;
    return sp->n_pend == VINDEX_BATCH ? flush(sp, ctx, model, path, err, errlen) : 0;
}

/* Decodes and embeds every sample: 0, 1 stopped, -1 error. */
static int sample_video(sampler *sp, clipdex_ctx *ctx, const clipdex_model *model,
                        const char *path, const vindex_opts *o, char *err, size_t errlen)
{
    video_opts vo;
    video_opts_default(&vo);
    vo.live = 0;
    vo.every = o->every;
    vo.scene = o->scene <= 1.0 ? o->scene : 0;
    video_src *src = NULL;
    if (video_open(path, &vo, &src, err, errlen)) return -1;
    video_frame f;
    int rc;
    while ((rc = video_next(src, &f, err, errlen)) == 1) {
        if (o->stop && *o->stop) {
            rc = 1;
            break;
        }
        if (add_frame(sp, ctx, model, path, &f, o, err, errlen)) {
            rc = -1;
            break;
        }
    }
    video_close(src);
    if (rc == 0) rc = flush(sp, ctx, model, path, err, errlen);
    if (rc == 0 && sp->n == 0) {
        snprintf(err, errlen, "'%s': no frame", path);
        rc = -1;
    }
    return rc;
}

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

/* Inserts sample i of the video files.id = id, and its people when a
 * detector looked at it; 0 or -1 (reported). */
static int store_sample(store *s, sqlite3_stmt *ins, sqlite3_stmt *ins_person, sqlite3_int64 id,
                        size_t i, const sampler *sp)
{
    const sample *x = &sp->v[i];
    sqlite3_bind_int64(ins, 1, id);
    sqlite3_bind_int64(ins, 2, (sqlite3_int64)i);
    sqlite3_bind_double(ins, 3, x->t);
    sqlite3_bind_blob(ins, 4, sp->emb + i * sp->dim, (int)(sp->dim * sizeof(float)), SQLITE_STATIC);
    if (x->thumb)
        sqlite3_bind_blob(ins, 5, x->thumb, (int)x->thumb_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(ins, 5);
    if (sp->persons)
        sqlite3_bind_int64(ins, 6, (sqlite3_int64)x->persons.n);
    else
        sqlite3_bind_null(ins, 6);
    int rc = step_done(ins);
    sqlite3_clear_bindings(ins);
    if (rc) {
        store_error(s, "cannot write to");
        return -1;
    }
    return sp->persons ? pstore_insert(s, ins_person, NULL, sqlite3_last_insert_rowid(s->db), &x->persons, sp->dim) : 0;
}

/* Replaces the video's row and samples (n = 0: deletes them). */
static int store_samples(store *s, const vindex_video *v, const unsigned char *hash,
                         const sampler *sp)
{
    static const char *const sql[] = {
        "DELETE FROM persons WHERE frame_id IN (SELECT id FROM frames WHERE file_id IN "
        "(SELECT id FROM files WHERE path = ?1))",
        "DELETE FROM frames WHERE file_id IN (SELECT id FROM files WHERE path = ?1)",
        "DELETE FROM files WHERE path = ?1",
        "INSERT INTO files(path, size, mtime_ns, hash, indexed_at) VALUES(?1, ?2, ?3, ?4, ?5)",
        "INSERT INTO frames(file_id, seq, t, embedding, thumb, persons) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
        pstore_insert_sql};
    enum { N_SQL = sizeof sql / sizeof *sql };
    sqlite3_stmt *st[N_SQL] = {0};
    if (store_exec(s, "BEGIN IMMEDIATE")) return -1;
    for (int i = 0; i < N_SQL; i++)
        if (!(st[i] = store_prepare(s, sql[i]))) goto fail;
    for (int i = 0; i < 3; i++) {
        sqlite3_bind_blob(st[i], 1, v->path, (int)v->len, SQLITE_STATIC);
        if (step_done(st[i])) goto sqlfail;
    }
    if (sp) {
        sqlite3_bind_blob(st[3], 1, v->path, (int)v->len, SQLITE_STATIC);
        sqlite3_bind_int64(st[3], 2, (sqlite3_int64)v->size);
        sqlite3_bind_int64(st[3], 3, v->mtime_ns);
        sqlite3_bind_blob(st[3], 4, hash, SHA256_LEN, SQLITE_STATIC);
        sqlite3_bind_int64(st[3], 5, (sqlite3_int64)time(NULL));
        if (step_done(st[3])) goto sqlfail;
        sqlite3_int64 id = sqlite3_last_insert_rowid(s->db);
        for (size_t i = 0; i < sp->n; i++)
            if (store_sample(s, st[4], st[5], id, i, sp)) goto fail;
    }
    if (store_bump_generation(s) || store_exec(s, "COMMIT")) goto fail;
    for (int i = 0; i < N_SQL; i++) sqlite3_finalize(st[i]);
    return 0;
sqlfail:
    store_error(s, "cannot write to");
fail:
    for (int i = 0; i < N_SQL; i++) sqlite3_finalize(st[i]);
    store_exec(s, "ROLLBACK");
    return -1;
}

int vindex_add(store *s, clipdex_ctx *ctx, const clipdex_model *model, const vindex_video *v,
               const vindex_opts *o, size_t *n_samples, char *err, size_t errlen)
{
    *n_samples = 0;
    clipdex_model_info info;
    if (clipdex_model_get_info(model, &info) != CLIPDEX_OK || info.embed_dim <= 0) {
        snprintf(err, errlen, "'%s': cannot describe the model", v->path);
        return -1;
    }
    unsigned char hash[SHA256_LEN];
    sampler sp;
    memset(&sp, 0, sizeof sp);
    sp.dim = (size_t)info.embed_dim;
    sp.persons = o->persons != NULL;
    int rc = vindex_file_hash(v->path, hash, err, errlen);
    if (rc == 0) rc = sample_video(&sp, ctx, model, v->path, o, err, errlen);
    if (rc == 0) {
        if (store_samples(s, v, hash, &sp)) {
            snprintf(err, errlen, "'%s': the database write failed", v->path);
            rc = -1;
        } else {
            *n_samples = sp.n;
            for (size_t i = 0; o->persons_found && i < sp.n; i++) *o->persons_found += sp.v[i].persons.n;
        }
    } else if (rc < 0) {
        store_samples(s, v, NULL, NULL); /* no stale samples of a video that now fails */
    }
    sampler_free(&sp);
    return rc;
}

int vindex_prune(store *s)
{
    return store_exec(s, "DELETE FROM frames WHERE file_id NOT IN (SELECT id FROM files)") ||
           pstore_prune(s);
}
