/*
 * detect.c - object detection with a NanoDet graph model: find the heads
 * in the graph's signature, letterbox the image into the input, run the
 * graph, decode the GFL heads (nanodet/model/head/gfl_head.py get_bboxes)
 * and suppress overlaps per class (nms.py multiclass_nms).
 *
 * Shapes: input (1, 3, S, S) NCHW, BGR, (v - mean) / std; per stride s in
 * 8, 16, 32 with g = ceil(S / s): classes (1, g g, C) already sigmoid,
 * distances (1, g g, 4 B) as logits over B bins per side (left, top, right,
 * bottom). Cell i sits at ((i % g + 0.5) s, (i / g + 0.5) s); a side's
 * distance is softmax(bins) . [0, B) x s. Boxes are clamped to the input,
 * then mapped back through the letterbox and clamped to the image.
 */
#include "detect/detect.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>

#include "image/image.h"

static const char *const coco[80] = {
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
};

static const float MEAN_BGR[3] = {103.53f, 116.28f, 123.675f}, STD_BGR[3] = {57.375f, 57.12f, 58.395f};
#define CAND_MIN 0.05f /* NanoDet's score_thr: candidates for NMS */

clipdex_detect_params clipdex_detect_params_default(void)
{
    clipdex_detect_params p = {0.35f, 0.6f, 100, NULL};
    return p;
}

/* ---- loading ---- */

/* The output among the signature's with shape (1, n, c): its index or -1. */
static int find_head(const struct cdx_graph *g, int64_t n, int want_cls, int n_classes, int *bins)
{
    for (int o = 0; o < g->n_outputs; o++) {
        const int64_t *d = g->out_dim[o];
        if (g->out_rank[o] != 3 || d[0] != 1 || d[1] != n) continue;
        if (want_cls && d[2] == n_classes) return o;
        if (!want_cls && d[2] != n_classes && d[2] % 4 == 0 && d[2] >= 8) {
            *bins = (int)(d[2] / 4);
            return o;
        }
    }
    return -1;
}

static int find_heads(clipdex_ctx *ctx, const char *path, clipdex_detector *det)
{
    const struct cdx_graph *g = det->g;
    if (g->in_rank != 4 || g->in_dim[0] != 1 || g->in_dim[1] != 3 || g->in_dim[2] < 32 ||
        g->in_dim[2] != g->in_dim[3] || g->in_dim[2] > 4096)
        return cdx_error(ctx, CLIPDEX_E_UNSUPPORTED, "'%s': the input is not (1, 3, S, S) as NanoDet's", path);
    det->size = (int)g->in_dim[2];
    det->n_classes = 80;
    for (int l = 0; l < CDX_DET_LEVELS; l++) {
        det->stride[l] = 8 << l;
        det->grid[l] = (det->size + det->stride[l] - 1) / det->stride[l];
        int64_t n = (int64_t)det->grid[l] * det->grid[l];
        int bins = 0, c = find_head(g, n, 1, det->n_classes, &bins), r = find_head(g, n, 0, det->n_classes, &bins);
        if (c < 0 || r < 0 || (l && bins != det->bins))
            return cdx_error(ctx, CLIPDEX_E_UNSUPPORTED,
                             "'%s': no NanoDet head for stride %d (outputs (1, %lld, 80) and (1, %lld, 4 bins))", path,
                             det->stride[l], (long long)n, (long long)n);
        det->bins = bins;
        det->cls_out[l] = g->outputs[c];
        det->reg_out[l] = g->outputs[r];
    }
    return 0;
}

/* A folder holding exactly one .json: that file. */
static int model_json(clipdex_ctx *ctx, const char *path, char *out, size_t cap)
{
    struct stat st;
    if (stat(path, &st)) return cdx_error(ctx, CLIPDEX_E_IO, "cannot open detector '%s'", path);
    if (!S_ISDIR(st.st_mode)) {
        snprintf(out, cap, "%s", path);
        return 0;
    }
    DIR *d = opendir(path);
    if (!d) return cdx_error(ctx, CLIPDEX_E_IO, "cannot open detector folder '%s'", path);
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 5 && !strcmp(e->d_name + n - 5, ".json") && strcmp(e->d_name, "package.json")) {
            found++;
            snprintf(out, cap, "%s/%s", path, e->d_name);
        }
    }
    closedir(d);
    if (found != 1)
        return cdx_error(ctx, CLIPDEX_E_ARG, "detector folder '%s' holds %d graph models (*.json); name one", path,
                         found);
    return 0;
}

int clipdex_detector_load(clipdex_ctx *ctx, const char *path, clipdex_detector **out)
{
    if (!ctx || !path || !out) return ctx ? cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_detector_load: NULL argument") : CLIPDEX_E_ARG;
    cdx_clear_error(ctx);
    *out = NULL;
    char json[4096];
    int st = model_json(ctx, path, json, sizeof json);
    if (st) return st;
    clipdex_detector *det = calloc(1, sizeof *det);
    if (!det) return cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory");
    st = cdx_graph_load_tfjs(ctx, json, &det->g);
    if (!st) st = find_heads(ctx, json, det);
    if (!st && !(det->input = malloc(3 * (size_t)det->size * (size_t)det->size * sizeof(float))))
        st = cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory");
    if (st) {
        clipdex_detector_free(det);
        return st;
    }
    *out = det;
    return 0;
}

void clipdex_detector_free(clipdex_detector *det)
{
    if (!det) return;
    cdx_graph_free(det->g);
    free(det->input);
    free(det);
}

int clipdex_detector_input_size(const clipdex_detector *det) { return det ? det->size : 0; }
int clipdex_detector_n_classes(const clipdex_detector *det) { return det ? det->n_classes : 0; }

const char *clipdex_detector_class_name(const clipdex_detector *det, int id)
{
    return det && id >= 0 && id < det->n_classes ? coco[id] : NULL;
}

int clipdex_detector_class_id(const clipdex_detector *det, const char *name)
{
    for (int i = 0; det && name && i < det->n_classes; i++)
        if (!strcmp(coco[i], name)) return i;
    return -1;
}

/* ---- the input ---- */

int cdx_detect_prepare(clipdex_ctx *ctx, clipdex_detector *det, const clipdex_image *img, struct cdx_letterbox *lb)
{
    int S = det->size;
    double r = fmin((double)S / img->width, (double)S / img->height);
    lb->w = img->width;
    lb->h = img->height;
    lb->nw = (int)fmax(1, fmin(S, round(img->width * r)));
    lb->nh = (int)fmax(1, fmin(S, round(img->height * r)));
    lb->px = (S - lb->nw) / 2;
    lb->py = (S - lb->nh) / 2;
    size_t n = (size_t)img->width * img->height;
    uint8_t *rgb = malloc(n * 3);
    struct cdx_lerp *ty = malloc((size_t)(lb->nh + lb->nw) * sizeof *ty), *tx = ty ? ty + lb->nh : NULL;
    if (!rgb || !ty) {
        free(rgb);
        free(ty);
        return cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory for a %ux%u image", img->width, img->height);
    }
    cdx_image_to_rgb(img, img->pixels, rgb, n);
    cdx_lerp_table(img->height, lb->nh, 0, 1, ty);
    cdx_lerp_table(img->width, lb->nw, 0, 1, tx);
    size_t plane = (size_t)S * S;
    float *in = det->input;
    for (int c = 0; c < 3; c++) /* the black border, normalized */
        for (size_t i = 0; i < plane; i++) in[c * plane + i] = (0.0f - MEAN_BGR[c]) / STD_BGR[c];
    size_t w = img->width;
    for (int y = 0; y < lb->nh; y++)
        for (int x = 0; x < lb->nw; x++) {
            const uint8_t *tl = rgb + (ty[y].lo * w + tx[x].lo) * 3, *tr = rgb + (ty[y].lo * w + tx[x].hi) * 3;
            const uint8_t *bl = rgb + (ty[y].hi * w + tx[x].lo) * 3, *br = rgb + (ty[y].hi * w + tx[x].hi) * 3;
            size_t at = (size_t)(y + lb->py) * S + (size_t)(x + lb->px);
            for (int k = 0; k < 3; k++) { /* k: RGB; plane 2 - k: BGR */
                double top = tl[k] + (double)(tr[k] - tl[k]) * tx[x].f;
                double bot = bl[k] + (double)(br[k] - bl[k]) * tx[x].f;
                float v = (float)(top + (bot - top) * ty[y].f);
                in[(size_t)(2 - k) * plane + at] = (v - MEAN_BGR[2 - k]) / STD_BGR[2 - k];
            }
        }
    free(rgb);
    free(ty);
    return 0;
}

int cdx_detect_heads(clipdex_ctx *ctx, clipdex_detector *det)
{
    int64_t dim[4] = {1, 3, det->size, det->size};
    int st = cdx_graph_run(ctx, det->g, det->input, dim, 4);
    if (st) return st;
    for (int l = 0; l < CDX_DET_LEVELS; l++) {
        const struct cdx_gtensor *c = &det->g->vals[det->cls_out[l]], *r = &det->g->vals[det->reg_out[l]];
        size_t cells = (size_t)det->grid[l] * det->grid[l];
        if (c->dtype != CDX_G_F32 || r->dtype != CDX_G_F32 || c->n != cells * (size_t)det->n_classes ||
            r->n != cells * 4 * (size_t)det->bins)
            return cdx_error(ctx, CLIPDEX_E_MODEL, "detector head of stride %d has the wrong size", det->stride[l]);
    }
    return 0;
}

/* ---- decoding ---- */

struct cand {
    float box[4]; /* input pixels */
    float score;
    int cls;
    size_t seq;   /* order of creation: ties keep it */
};

static void cell_box(const clipdex_detector *det, int l, size_t i, const float *reg, float box[4])
{
    int g = det->grid[l], s = det->stride[l], B = det->bins;
    double c[2] = {((double)(i % (size_t)g) + 0.5) * s, ((double)(i / (size_t)g) + 0.5) * s};
    for (int side = 0; side < 4; side++) {
        const float *v = reg + i * 4 * (size_t)B + (size_t)side * (size_t)B;
        double m = -INFINITY, z = 0, e = 0;
        for (int b = 0; b < B; b++) m = fmax(m, v[b]);
        for (int b = 0; b < B; b++) {
            double p = exp(v[b] - m);
            z += p;
            e += p * b;
        }
        double d = e / z * s, x = side < 2 ? c[side & 1] - d : c[side & 1] + d;
        box[side] = (float)fmin(fmax(x, 0), det->size);
    }
}

static int by_score(const void *pa, const void *pb)
{
    const struct cand *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static double iou(const float *a, const float *b)
{
    double aa = ((double)a[2] - a[0]) * ((double)a[3] - a[1]), ab = ((double)b[2] - b[0]) * ((double)b[3] - b[1]);
    if (aa <= 0 || ab <= 0) return 0;
    double iw = fmax(fmin(a[2], b[2]) - fmax(a[0], b[0]), 0), ih = fmax(fmin(a[3], b[3]) - fmax(a[1], b[1]), 0);
    return iw * ih / (aa + ab - iw * ih);
}

/* Collects every allowed (cell, class) above CAND_MIN, grouped by class. */
static int collect(const clipdex_detector *det, const clipdex_detect_params *p, struct cand **out, size_t *n_out)
{
    size_t n = 0, cap = 256;
    struct cand *c = malloc(cap * sizeof *c);
    if (!c) return -1;
    for (int l = 0; l < CDX_DET_LEVELS; l++) {
        const float *cls = det->g->vals[det->cls_out[l]].data, *reg = det->g->vals[det->reg_out[l]].data;
        size_t cells = (size_t)det->grid[l] * det->grid[l];
        for (size_t i = 0; i < cells; i++) {
            float box[4];
            int have_box = 0;
            for (int k = 0; k < det->n_classes; k++) {
                float s = cls[i * (size_t)det->n_classes + (size_t)k];
                if (!(s > CAND_MIN) || (p->classes && !p->classes[k])) continue;
                if (!have_box) cell_box(det, l, i, reg, box), have_box = 1;
                if (n == cap) {
                    struct cand *m = realloc(c, 2 * cap * sizeof *c);
                    if (!m) {
                        free(c);
                        return -1;
                    }
                    c = m;
                    cap *= 2;
                }
                memcpy(c[n].box, box, sizeof box);
                c[n].score = s;
                c[n].cls = k;
                c[n].seq = (size_t)k << 32 | n; /* class first, as the reference's per-class lists */
                n++;
            }
        }
    }
    *out = c;
    *n_out = n;
    return 0;
}

/* Greedy NMS within each class: keeps a box unless it overlaps a better
 * kept box of its class by more than `thr`. Compacts c[] to the kept ones. */
static size_t nms(struct cand *c, size_t n, float thr)
{
    qsort(c, n, sizeof *c, by_score);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        int ok = 1;
        for (size_t j = 0; j < kept && ok; j++)
            if (c[j].cls == c[i].cls && iou(c[j].box, c[i].box) > thr) ok = 0;
        if (ok) c[kept++] = c[i];
    }
    return kept;
}

int clipdex_detect(clipdex_ctx *ctx, clipdex_detector *det, const clipdex_image *img,
                   const clipdex_detect_params *params, clipdex_detection *out, size_t cap, size_t *n_out)
{
    if (!ctx) return CLIPDEX_E_ARG;
    cdx_clear_error(ctx);
    if (!det || !img || !n_out || (cap && !out)) return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_detect: NULL argument");
    *n_out = 0;
    clipdex_detect_params p = params ? *params : clipdex_detect_params_default();
    struct cdx_letterbox lb;
    int st = cdx_detect_prepare(ctx, det, img, &lb);
    if (!st) st = cdx_detect_heads(ctx, det);
    if (st) return st;
    struct cand *c;
    size_t n;
    if (collect(det, &p, &c, &n)) return cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory");
    n = nms(c, n, p.iou);
    size_t max = p.max_detections > 0 ? (size_t)p.max_detections : 0;
    double sx = (double)lb.w / lb.nw, sy = (double)lb.h / lb.nh;
    for (size_t i = 0; i < n && i < max && *n_out < cap; i++) {
        if (c[i].score < p.min_score) break; /* sorted: the rest score lower */
        clipdex_detection *d = &out[(*n_out)++];
        d->x0 = (float)fmin(fmax((c[i].box[0] - lb.px) * sx, 0), lb.w);
        d->y0 = (float)fmin(fmax((c[i].box[1] - lb.py) * sy, 0), lb.h);
        d->x1 = (float)fmin(fmax((c[i].box[2] - lb.px) * sx, 0), lb.w);
        d->y1 = (float)fmin(fmax((c[i].box[3] - lb.py) * sy, 0), lb.h);
        d->score = c[i].score;
        d->class_id = c[i].cls;
    }
    free(c);
    return 0;
}
