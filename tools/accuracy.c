/*
 * accuracy.c - measures how far the speed options move image embeddings
 * from the exact fp32 path, with the public API only (docs/accuracy.md).
 *
 *   accuracy --ref DIR [--variant NAME=MODEL]... [--images DIR] [--n N]
 *            [--threads T] [--target S]
 *
 * Takes the first N JPEG files (sorted by name) of --images, decodes and
 * preprocesses each twice, exactly and with jpeg_scale_target = S (default
 * 224), interleaved (the order alternates per image) and timed. Then embeds:
 * the exact pixels with --ref (the baseline), the fast pixels with --ref
 * (only images the fast path actually reduced; the rest are identical), and
 * the exact pixels with every --variant model. For each set it prints the
 * per-image cosine to the baseline (min, 1st percentile, mean) and how the
 * top-10 image-to-image neighbours (cosine, self excluded) agree with the
 * baseline's (mean overlap of the sets, % identical top-1), plus the spread
 * of the baseline embeddings, which bounds what the neighbour figures mean.
 */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clipdex.h"

#define MAX_VARIANTS 8
#define TOPK 10
#define BATCH 8

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "accuracy: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n > 0 && fseek(f, 0, SEEK_SET) == 0) {
            buf = xmalloc((size_t)n);
            if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                buf = NULL;
            } else {
                *len = (size_t)n;
            }
        }
    }
    fclose(f);
    return buf;
}

/* Decodes (data, len) with `target` and preprocesses into `px`; returns the
 * decoded width/height through w/h, or exits on error. */
static void prep(clipdex_ctx *ctx, const char *name, const uint8_t *data, size_t len,
                 uint32_t target, const clipdex_model_info *info, float *px, uint32_t *w,
                 uint32_t *h)
{
    clipdex_image_params p = clipdex_image_params_default();
    p.jpeg_scale_target = target;
    clipdex_image *img = NULL;
    size_t n = (size_t)3 * info->image_size * info->image_size;
    if (clipdex_image_decode(ctx, data, len, &p, &img) != CLIPDEX_OK ||
        clipdex_image_preprocess(ctx, img, info->image_size, info->mean, info->std, px, n) !=
            CLIPDEX_OK) {
        fprintf(stderr, "accuracy: %s: %s\n", name, clipdex_ctx_errmsg(ctx));
        exit(1);
    }
    *w = clipdex_image_width(img);
    *h = clipdex_image_height(img);
    clipdex_image_free(img);
}

/* Embeds the images idx[0..m) of `px` (each `per` floats) into out rows idx[]. */
static void embed_set(clipdex_ctx *ctx, const clipdex_model *model, const float *px, size_t per,
                      const size_t *idx, size_t m, float *out, int dim)
{
    float *batch = xmalloc(BATCH * per * sizeof(float));
    float *emb = xmalloc(BATCH * (size_t)dim * sizeof(float));
    double t0 = now_ms();
    for (size_t i = 0; i < m; i += BATCH) {
        size_t b = m - i < BATCH ? m - i : BATCH;
        for (size_t j = 0; j < b; j++)
            memcpy(batch + j * per, px + idx[i + j] * per, per * sizeof(float));
        if (clipdex_pixels_embed(ctx, model, batch, b, emb, b * (size_t)dim, 0) != CLIPDEX_OK) {
            fprintf(stderr, "accuracy: embed: %s\n", clipdex_ctx_errmsg(ctx));
            exit(1);
        }
        for (size_t j = 0; j < b; j++)
            memcpy(out + idx[i + j] * dim, emb + j * dim, (size_t)dim * sizeof(float));
    }
    fprintf(stderr, "  embedded %zu images in %.1f s\n", m, (now_ms() - t0) / 1e3);
    free(batch);
    free(emb);
}

static double dot(const float *a, const float *b, int d)
{
    double s = 0;
    for (int i = 0; i < d; i++) s += (double)a[i] * b[i];
    return s;
}

/* top[i*TOPK ..] = indices of the TOPK most similar other images of image i. */
static void topk(const float *e, size_t n, int dim, size_t *top)
{
    double *sim = xmalloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) sim[j] = j == i ? -INFINITY : dot(e + i * dim, e + j * dim, dim);
        for (int k = 0; k < TOPK; k++) {
            size_t best = 0;
            for (size_t j = 1; j < n; j++)
                if (sim[j] > sim[best]) best = j;
            top[i * TOPK + k] = best;
            sim[best] = -INFINITY;
        }
    }
    free(sim);
}

/* Prints cosine and neighbour agreement of `e` against the baseline. When
 * `only` is set, the cosine line is also given over those images. */
static void report(const char *name, const float *base, const size_t *base_top, const float *e,
                   size_t n, int dim, const unsigned char *only)
{
    double *c = xmalloc(n * sizeof(double));
    double sum = 0;
    size_t m = 0, mo = 0;
    double sum_o = 0, min_o = 1;
    for (size_t i = 0; i < n; i++) {
        double v = dot(base + i * dim, e + i * dim, dim) /
                   sqrt(dot(base + i * dim, base + i * dim, dim) * dot(e + i * dim, e + i * dim, dim));
        c[m++] = v;
        sum += v;
        if (only && only[i]) {
            mo++;
            sum_o += v;
            if (v < min_o) min_o = v;
        }
    }
    qsort(c, m, sizeof *c, cmp_double);
    size_t *top = xmalloc(n * TOPK * sizeof(size_t));
    topk(e, n, dim, top);
    double overlap = 0;
    size_t same1 = 0;
    for (size_t i = 0; i < n; i++) {
        int ov = 0;
        for (int a = 0; a < TOPK; a++)
            for (int b = 0; b < TOPK; b++)
                if (top[i * TOPK + a] == base_top[i * TOPK + b]) ov++;
        overlap += ov;
        if (top[i * TOPK] == base_top[i * TOPK]) same1++;
    }
    printf("%-10s cosine min %.6f  p1 %.6f  mean %.6f   top-%d overlap %.2f/%d  top-1 same %.1f%%\n",
           name, c[0], c[(size_t)(0.01 * (double)(m - 1))], sum / (double)m, TOPK,
           overlap / (double)n, TOPK, 100.0 * (double)same1 / (double)n);
    if (only)
        printf("%-10s   over the %zu reduced images only: cosine min %.6f  mean %.6f\n", "",
               mo, mo ? min_o : 1.0, mo ? sum_o / (double)mo : 1.0);
    free(c);
    free(top);
}

/* The spread of the baseline: pairwise cosines and neighbour margins. */
static void spread(const float *e, size_t n, int dim, const size_t *top)
{
    double s = 0, s2 = 0, mn = 1, mx = -1, t1 = 0, t10 = 0, gap = 0;
    size_t pairs = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            double v = dot(e + i * dim, e + j * dim, dim);
            s += v;
            s2 += v * v;
            if (v < mn) mn = v;
            if (v > mx) mx = v;
            pairs++;
        }
    for (size_t i = 0; i < n; i++) {
        t1 += dot(e + i * dim, e + top[i * TOPK] * dim, dim);
        t10 += dot(e + i * dim, e + top[i * TOPK + TOPK - 1] * dim, dim);
        /* the 11th neighbour: the best one outside the top-10 */
        double best = -INFINITY;
        for (size_t j = 0; j < n; j++) {
            if (j == i) continue;
            int in = 0;
            for (int k = 0; k < TOPK; k++) in |= top[i * TOPK + k] == j;
            if (!in) {
                double v = dot(e + i * dim, e + j * dim, dim);
                if (v > best) best = v;
            }
        }
        gap += dot(e + i * dim, e + top[i * TOPK + TOPK - 1] * dim, dim) - best;
    }
    double mean = s / (double)pairs;
    printf("baseline spread: pairwise cosine mean %.4f  sd %.4f  min %.4f  max %.4f; "
           "mean cosine of neighbour 1 %.4f, neighbour 10 %.4f; mean gap 10th-11th %.5f\n",
           mean, sqrt(s2 / (double)pairs - mean * mean), mn, mx, t1 / (double)n, t10 / (double)n,
           gap / (double)n);
}

static void usage(void)
{
    fprintf(stderr, "usage: accuracy --ref MODEL [--variant NAME=MODEL]... [--images DIR]\n"
                    "                [--n N] [--threads T] [--target S]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *ref = NULL, *images = "../shared/data/imagenet-samples";
    const char *vname[MAX_VARIANTS], *vpath[MAX_VARIANTS];
    int nv = 0, threads = 2;
    size_t want = 1000;
    uint32_t target = 224;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) usage();
        const char *v = argv[++i];
        if (!strcmp(a, "--ref")) ref = v;
        else if (!strcmp(a, "--images")) images = v;
        else if (!strcmp(a, "--n")) want = (size_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--target")) target = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--variant")) {
            const char *eq = strchr(v, '=');
            if (!eq || nv == MAX_VARIANTS) usage();
            char *nm = xmalloc((size_t)(eq - v) + 1);
            memcpy(nm, v, (size_t)(eq - v));
            nm[eq - v] = 0;
            vname[nv] = nm;
            vpath[nv++] = eq + 1;
        } else usage();
    }
    if (!ref || want < TOPK + 2 || target == 0) usage();

    /* the first `want` JPEG files by name */
    DIR *d = opendir(images);
    if (!d) {
        fprintf(stderr, "accuracy: cannot open '%s'\n", images);
        return 1;
    }
    size_t nf = 0, cap = 0;
    char **files = NULL;
    for (struct dirent *de; (de = readdir(d));) {
        const char *dot_ = strrchr(de->d_name, '.');
        if (!dot_ || (strcasecmp(dot_, ".jpeg") && strcasecmp(dot_, ".jpg"))) continue;
        if (nf == cap) {
            cap = cap ? 2 * cap : 1024;
            char **nfiles = realloc(files, cap * sizeof *files);
            if (!nfiles) return 1;
            files = nfiles;
        }
        files[nf++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(files, nf, sizeof *files, cmp_str);
    size_t n = nf < want ? nf : want;
    if (n < TOPK + 2) {
        fprintf(stderr, "accuracy: only %zu JPEG files in '%s'\n", nf, images);
        return 1;
    }

    clipdex_ctx_params cp = clipdex_ctx_params_default();
    cp.n_threads = threads;
    clipdex_ctx *ctx = NULL;
    clipdex_model *model = NULL;
    clipdex_model_info info;
    if (clipdex_ctx_new(&ctx, &cp) != CLIPDEX_OK ||
        clipdex_model_load(ctx, ref, NULL, &model) != CLIPDEX_OK ||
        clipdex_model_get_info(model, &info) != CLIPDEX_OK) {
        fprintf(stderr, "accuracy: cannot load '%s': %s\n", ref, ctx ? clipdex_ctx_errmsg(ctx) : "");
        return 1;
    }
    int dim = info.embed_dim;
    size_t per = (size_t)3 * info.image_size * info.image_size;
    printf("images: first %zu of %zu JPEGs in %s; reference %s (%s); threads %d; target %u\n", n,
           nf, images, ref, info.dtype, threads, target);

    /* decode + preprocess, exact and fast, interleaved and timed */
    float *px_exact = xmalloc(n * per * sizeof(float));
    float *px_fast = xmalloc(n * per * sizeof(float));
    unsigned char *reduced = calloc(n, 1);
    size_t *idx_all = xmalloc(n * sizeof(size_t)), *idx_red = xmalloc(n * sizeof(size_t));
    size_t n_red = 0;
    double ms_exact = 0, ms_fast = 0, ms_exact_red = 0, ms_fast_red = 0;
    char path[4096];
    /* warm-up (first-call costs: libjpeg tables, page faults) before timing */
    snprintf(path, sizeof path, "%s/%s", images, files[0]);
    {
        size_t len = 0;
        uint8_t *data = read_file(path, &len);
        uint32_t w, h;
        if (data) prep(ctx, path, data, len, target, &info, px_fast, &w, &h);
        if (data) prep(ctx, path, data, len, 0, &info, px_exact, &w, &h);
        free(data);
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", images, files[i]);
        size_t len = 0;
        uint8_t *data = read_file(path, &len);
        if (!data) {
            fprintf(stderr, "accuracy: cannot read '%s'\n", path);
            return 1;
        }
        uint32_t we, he, wf, hf;
        double te = 0, tf = 0;
        for (int k = 0; k < 2; k++) {
            int fast = (int)((i + (size_t)k) & 1);
            double t0 = now_ms();
            if (fast)
                prep(ctx, path, data, len, target, &info, px_fast + i * per, &wf, &hf);
            else
                prep(ctx, path, data, len, 0, &info, px_exact + i * per, &we, &he);
            double t = now_ms() - t0;
            if (fast) tf = t; else te = t;
        }
        free(data);
        ms_exact += te;
        ms_fast += tf;
        idx_all[i] = i;
        if (we != wf || he != hf) {
            reduced[i] = 1;
            idx_red[n_red++] = i;
            ms_exact_red += te;
            ms_fast_red += tf;
        }
    }
    printf("decode+preprocess ms/image: all %zu: exact %.2f  fast %.2f (x%.2f);  "
           "the %zu the fast path reduced: exact %.2f  fast %.2f (x%.2f)\n",
           n, ms_exact / (double)n, ms_fast / (double)n, ms_exact / ms_fast, n_red,
           n_red ? ms_exact_red / (double)n_red : 0, n_red ? ms_fast_red / (double)n_red : 0,
           n_red && ms_fast_red > 0 ? ms_exact_red / ms_fast_red : 1.0);
    fflush(stdout);

    /* baseline, and the fast decode with the same model */
    float *base = xmalloc(n * (size_t)dim * sizeof(float));
    float *emb = xmalloc(n * (size_t)dim * sizeof(float));
    fprintf(stderr, "fp32 exact:\n");
    embed_set(ctx, model, px_exact, per, idx_all, n, base, dim);
    size_t *base_top = xmalloc(n * TOPK * sizeof(size_t));
    topk(base, n, dim, base_top);
    spread(base, n, dim, base_top);
    memcpy(emb, base, n * (size_t)dim * sizeof(float));
    fprintf(stderr, "fp32 fast decode:\n");
    embed_set(ctx, model, px_fast, per, idx_red, n_red, emb, dim);
    report("fp32-fast", base, base_top, emb, n, dim, reduced);
    fflush(stdout);
    clipdex_model_free(model);
    free(px_fast);

    for (int v = 0; v < nv; v++) {
        clipdex_model *vm = NULL;
        if (clipdex_model_load(ctx, vpath[v], NULL, &vm) != CLIPDEX_OK) {
            fprintf(stderr, "accuracy: cannot load '%s': %s\n", vpath[v], clipdex_ctx_errmsg(ctx));
            return 1;
        }
        clipdex_model_info vi;
        clipdex_model_get_info(vm, &vi);
        if (vi.embed_dim != dim || vi.image_size != info.image_size) {
            fprintf(stderr, "accuracy: '%s' is not shaped like the reference\n", vpath[v]);
            return 1;
        }
        fprintf(stderr, "%s (%s):\n", vname[v], vi.dtype);
        embed_set(ctx, vm, px_exact, per, idx_all, n, emb, dim);
        report(vname[v], base, base_top, emb, n, dim, NULL);
        fflush(stdout);
        clipdex_model_free(vm);
    }

    for (size_t i = 0; i < nf; i++) free(files[i]);
    free(files);
    for (int v = 0; v < nv; v++) free((void *)vname[v]);
    free(px_exact);
    free(reduced);
    free(idx_all);
    free(idx_red);
    free(base);
    free(emb);
    free(base_top);
    clipdex_ctx_free(ctx);
    return 0;
}
