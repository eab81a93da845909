/*
 * pfind.c - the people of one image (see pfind.h): clipdex_detect with the
 * person class only, boxes under PFIND_MIN_SIDE dropped, the best
 * max_persons kept, their square crops (clipdex_image_crop_box) embedded in
 * one batch. The identity hashes every .json and .bin file of the
 * detector's folder in name order, so another model or re-exported weights
 * give another identity.
 */
#include "person/pfind.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/sha256.h"

int pfind_init(pfind *f, clipdex_detector *det, const clipdex_model *model, float min_score,
               int max_persons)
{
    memset(f, 0, sizeof *f);
    f->det = det;
    f->model = model;
    f->min_score = min_score;
    f->max_persons = max_persons < 1 ? 1 : max_persons > PFIND_MAX ? PFIND_MAX : max_persons;
    clipdex_model_info info;
    if (clipdex_model_get_info(model, &info) != CLIPDEX_OK || info.embed_dim <= 0) return -1;
    f->dim = (size_t)info.embed_dim;
    int person = clipdex_detector_class_id(det, "person");
    if (person < 0 || person >= 256) return -1;
    f->keep[person] = 1;
    return 0;
}

void pfind_result_free(pfind_result *r)
{
    free(r->p);
    free(r->emb);
    memset(r, 0, sizeof *r);
}

/* The kept boxes of one detection run, best first. */
static size_t keep_boxes(const pfind *f, const clipdex_detection *d, size_t nd, pfind_person *out)
{
    size_t n = 0;
    for (size_t k = 0; k < nd && n < (size_t)f->max_persons; k++) {
        if (d[k].x1 - d[k].x0 < PFIND_MIN_SIDE || d[k].y1 - d[k].y0 < PFIND_MIN_SIDE) continue;
        out[n++] = (pfind_person){d[k].x0, d[k].y0, d[k].x1, d[k].y1, d[k].score};
    }
    return n;
}

int pfind_run(const pfind *f, clipdex_ctx *ctx, const clipdex_image *img, pfind_result *r)
{
    memset(r, 0, sizeof *r);
    r->width = clipdex_image_width(img);
    r->height = clipdex_image_height(img);
    clipdex_detection d[PFIND_MAX];
    clipdex_detect_params dp = clipdex_detect_params_default();
    dp.min_score = f->min_score;
    dp.classes = f->keep;
    dp.max_detections = PFIND_MAX;
    size_t nd = 0;
    int st = clipdex_detect(ctx, f->det, img, &dp, d, PFIND_MAX, &nd);
    if (st != CLIPDEX_OK) return st;
    r->p = malloc(PFIND_MAX * sizeof *r->p);
    if (!r->p) return CLIPDEX_E_NOMEM;
    r->n = keep_boxes(f, d, nd, r->p);
    if (r->n == 0) return CLIPDEX_OK;
    clipdex_image *crops[PFIND_MAX];
    size_t nc = 0;
    for (; nc < r->n && st == CLIPDEX_OK; nc++) {
        const pfind_person *p = &r->p[nc];
        st = clipdex_image_crop_box(ctx, img, p->x0, p->y0, p->x1, p->y1, 1, &crops[nc]);
        if (st != CLIPDEX_OK) break;
    }
    if (st == CLIPDEX_OK && !(r->emb = malloc(r->n * f->dim * sizeof *r->emb))) st = CLIPDEX_E_NOMEM;
    if (st == CLIPDEX_OK)
        st = clipdex_image_embed(ctx, f->model, (const clipdex_image *const *)crops, r->n, r->emb,
                                 r->n * f->dim, 0);
    for (size_t k = 0; k < nc; k++) clipdex_image_free(crops[k]);
    if (st != CLIPDEX_OK) pfind_result_free(r);
    return st;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

static int hash_file(sha256_ctx *c, const char *path, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
        return -1;
    }
    unsigned char buf[1 << 16];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, fp)) > 0) sha256_update(c, buf, got);
    int bad = ferror(fp);
    fclose(fp);
    if (bad) snprintf(err, errlen, "cannot read '%s'", path);
    return bad ? -1 : 0;
}

/* Hashes the folder's .json and .bin files in name order. */
static int hash_folder(const char *dir, sha256_ctx *c, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "cannot list '%s': %s", dir, strerror(errno));
        return -1;
    }
    char *names[256];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256)
        if (ends_with(e->d_name, ".json") || ends_with(e->d_name, ".bin"))
            if ((names[n] = strdup(e->d_name))) n++;
    closedir(d);
    qsort(names, n, sizeof *names, name_cmp);
    int rc = n ? 0 : -1;
    if (!n) snprintf(err, errlen, "no .json or .bin file in '%s'", dir);
    for (size_t i = 0; i < n; i++) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (!rc) {
            sha256_update(c, names[i], strlen(names[i]) + 1);
            rc = hash_file(c, path, err, errlen);
        }
        free(names[i]);
    }
    return rc;
}

int pfind_identity(const char *path, const pfind *f, char *out, size_t cap, char *err, size_t errlen)
{
    char dir[4096];
    struct stat sb;
    snprintf(dir, sizeof dir, "%s", path);
    if (stat(path, &sb) == 0 && !S_ISDIR(sb.st_mode)) { /* a model.json: its folder */
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0';
        else snprintf(dir, sizeof dir, ".");
    }
    sha256_ctx c;
    sha256_init(&c);
    if (hash_folder(dir, &c, err, errlen)) return -1;
    unsigned char d[SHA256_LEN];
    char hex[2 * SHA256_LEN + 1];
    sha256_final(&c, d);
    hex_encode(d, SHA256_LEN, hex);
    snprintf(out, cap, "sha256:%s min_score=%.4g min_side=%d max=%d", hex, (double)f->min_score,
             PFIND_MIN_SIDE, f->max_persons);
    return 0;
}
