/*
 * vhits.c - merging video samples into time ranges (see vhits.h). Every
 * scanned row is looked up once; a map keyed by (file id, sample number)
 * finds a sample's neighbours among the rows. Hits are made in score order,
 * so each hit's seed is its best sample and the hits come out ranked.
 */
#include "video/vhits.h"

#include <stdlib.h>
#include <string.h>

#include "util/hmap.h"
#include "util/json.h"
#include "util/report.h"

typedef struct cand {
    int64_t key[2];  /* file id, seq: the map key */
    int64_t frame;   /* frames.id, 0 for a photo */
    double t;
    float score;
    int used, ok;
} cand;

/* Fills c from the database: 0, or -1 when the row is gone. */
static int lookup(sqlite3_stmt *photo, sqlite3_stmt *frame, const vhit_row *r, cand *c)
{
    memset(c, 0, sizeof *c);
    c->score = r->score;
    sqlite3_stmt *st = r->id > 0 ? photo : frame;
    sqlite3_bind_int64(st, 1, r->id > 0 ? r->id : -r->id);
    int ok = sqlite3_step(st) == SQLITE_ROW;
    if (ok && r->id > 0) {
        c->key[0] = r->id;
        c->key[1] = -1;
    } else if (ok) {
        c->key[0] = sqlite3_column_int64(st, 0);
        c->key[1] = sqlite3_column_int64(st, 1);
        c->t = sqlite3_column_double(st, 2);
        c->frame = -r->id;
    }
    sqlite3_reset(st);
    c->ok = ok;
    return ok ? 0 : -1;
}

static int file_path(sqlite3_stmt *st, int64_t file_id, vhit *h)
{
    sqlite3_bind_int64(st, 1, file_id);
    int rc = -1;
    if (sqlite3_step(st) == SQLITE_ROW) {
        size_t len = (size_t)sqlite3_column_bytes(st, 0);
        const void *p = sqlite3_column_blob(st, 0);
        h->path = malloc(len + 1);
        if (h->path) {
            if (len) memcpy(h->path, p, len);
            h->path[len] = '\0';
            h->len = len;
            rc = 0;
        }
    }
    sqlite3_reset(st);
    return rc;
}

/* Grows a video hit from its seed over the adjacent unused samples, in
 * direction dir (-1 earlier, +1 later), while they score within `merge`. */
static void extend(cand *v, const hmap *m, const cand *seed, int dir, double merge, vhit *h)
{
    int64_t key[2] = {seed->key[0], seed->key[1]};
    size_t j;
    for (;;) {
        key[1] += dir;
        if (!hmap_get(m, key, sizeof key, &j) || v[j].used ||
            (double)v[j].score < (double)seed->score - merge)
            break;
        v[j].used = 1;
        h->n_samples++;
        if (dir < 0) h->start = v[j].t;
        else h->end = v[j].t;
    }
}

static void hit_from_seed(cand *v, const hmap *m, cand *c, double merge, vhit *h)
{
    memset(h, 0, sizeof *h);
    c->used = 1;
    h->score = c->score;
    h->n_samples = 1;
    if (!c->frame) return;
    h->is_video = 1;
    h->best_frame = c->frame;
    h->start = h->end = h->best_t = c->t;
    extend(v, m, c, -1, merge, h);
    extend(v, m, c, +1, merge, h);
}

size_t vhits_rows(size_t k, size_t max)
{
    size_t r = 8 * k + 64;
    return r > max ? (k > max ? k : max) : r;
}

void vhits_free(vhit *h, size_t n)
{
    for (size_t i = 0; h && i < n; i++) free(h[i].path);
    free(h);
}

long vhits_build(store *s, const vhit_row *rows, size_t n, size_t k, double merge, vhit **out)
{
    *out = NULL;
    sqlite3_stmt *photo = store_prepare(s, "SELECT 1 FROM files WHERE id = ?");
    sqlite3_stmt *frame = store_prepare(s, "SELECT file_id, seq, t FROM frames WHERE id = ?");
    sqlite3_stmt *path = store_prepare(s, "SELECT path FROM files WHERE id = ?");
    cand *v = calloc(n ? n : 1, sizeof *v);
    vhit *h = calloc(k ? k : 1, sizeof *h);
    hmap m;
    hmap_init(&m);
    long nh = -1;
    if (!photo || !frame || !path) goto done;
    if (!v || !h) goto nomem;
    for (size_t i = 0; i < n; i++)
        if (lookup(photo, frame, &rows[i], &v[i]) == 0 && v[i].frame &&
            hmap_put(&m, v[i].key, sizeof v[i].key, i))
            goto nomem;
    nh = 0;
    for (size_t i = 0; i < n && (size_t)nh < k; i++) {
        if (!v[i].ok || v[i].used) continue;
        hit_from_seed(v, &m, &v[i], merge, &h[nh]);
        h[nh].file_id = v[i].key[0];
        if (file_path(path, v[i].key[0], &h[nh]) == 0) nh++;
    }
    goto done;
nomem:
    report_error("out of memory");
    nh = -1;
done:
    sqlite3_finalize(photo);
    sqlite3_finalize(frame);
    sqlite3_finalize(path);
    hmap_free(&m);
    free(v);
    if (nh < 0) {
        vhits_free(h, 0);
        return -1;
    }
    *out = h;
    return nh;
}

void vhits_json_range(json_out *j, const vhit *h)
{
    if (!h->is_video) return;
    json_key(j, "start");
    json_num(j, h->start);
    json_key(j, "end");
    json_num(j, h->end);
    json_key(j, "best_time");
    json_num(j, h->best_t);
    json_key(j, "samples");
    json_uint(j, h->n_samples);
}

uint8_t *vhits_thumb(store *s, int64_t frame_id, size_t *len)
{
    *len = 0;
    sqlite3_stmt *st = store_prepare(s, "SELECT thumb FROM frames WHERE id = ?");
    if (!st) return NULL;
    sqlite3_bind_int64(st, 1, frame_id);
    uint8_t *b = NULL;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) > 0) {
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        b = malloc(n);
        if (b) {
            memcpy(b, sqlite3_column_blob(st, 0), n);
            *len = n;
        }
    }
    sqlite3_finalize(st);
    return b;
}
