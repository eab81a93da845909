/*
 * cmd_search.c - `clipdex search`: builds one query vector from texts and
 * images with weights and signs (rclip's syntax: "2:golden retriever",
 * ./pool.jpg, -fruit), scans the memory-mapped vector matrix of the index
 * (the library's clipdex_vecs_search: 4-bit, then int8 stage, each proven
 * or falling back) for
 * the k best, and prints or copies/links the results in rank order. Video
 * samples among the rows are merged into time ranges (video/vhits.c); more
 * rows than k are scanned so that merged hits still fill k.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ann/ann.h"
#include "cli/cli.h"
#include "cli/cmd_store.h"
#include "person/pstore.h"
#include "store/filter.h"
#include "store/rowset.h"
#include "store/store.h"
#include "store/vecindex.h"
#include "util/json.h"
#include "video/decode.h"
#include "video/jpeg.h"
#include "video/vhits.h"
#include "zeroshot/zeroshot.h"

#define SEARCH_K_DEFAULT 10
#define SEARCH_K_MAX 100000

const char usage_search[] =
    "Usage: clipdex search [--model DIR] [--db FILE] [QUERY]... [--image PATH]... [OPTIONS]\n"
    "\n"
    "Finds the indexed images closest to a query and prints rank, similarity\n"
    "and path, best first. The query is the weighted sum of its terms, each an\n"
    "L2-normalized embedding:\n"
    "  TEXT          a text (\"golden retriever\")\n"
    "  PATH          an existing image file is an image term (./pool.jpg)\n"
    "  W:TERM        weight W (\"2:golden retriever\", \"0.5:./pool.jpg\")\n"
    "  -TERM, - TERM subtract the term (-fruit); a lone + is ignored\n"
    "  --image PATH  an image term, whatever its name\n"
    "\n"
    "Options:\n"
    "  --model DIR|NAME   model directory or name (default: $CLIPDEX_MODEL, then\n"
    "                     ViT-B-32); must be the model the index was made with\n"
    "  --download         fetch a model NAME that is not downloaded yet\n"
    "  --db FILE          index database (default: $CLIPDEX_DB, then ./clipdex.db);\n"
    "                     give it again for each shard database: their top k merge\n"
    "  -k, --top N        results to show, 1..100000 (default 10)\n"
    "  --threshold T      only results with similarity >= T\n"
    "  --under PREFIX     only files under PREFIX: a folder (photos matches photos/x,\n"
    "                     not photos2/x) or a file; made absolute like index's paths\n"
    "  --time FROM-TO     only video samples at FROM..TO in the video (seconds, M:SS\n"
    "                     or H:MM:SS: 1:30-2:00; 60- and -2:00 are open at one end);\n"
    "                     photos pass\n"
    "  --json             one JSON object per result: {\"rank\",\"similarity\",\"path\"}\n"
    "                     (a video adds \"start\",\"end\",\"best_time\",\"samples\")\n"
    "  --merge D          adjacent samples of a video within D of the hit's best\n"
    "                     score join it as one time range (default 0.02)\n"
    "  --copy-to DIR      copy the results into DIR as 001_NAME, 002_NAME, ...\n"
    "                     (a video's best frame as 001_NAME@T.jpg)\n"
    "  --link-to DIR      the same with symbolic links\n"
    "  --prompts P        take text terms from P (`clipdex prompts`; matched by text,\n"
    "                     then label) instead of running the text tower\n"
    "  --persons          search the people found by `index --detector person`:\n"
    "                     each hit is one person, with its box (x0,y0,x1,y1 in\n"
    "                     pixels) and detector score; --copy-to writes the crop\n"
    "  --exact            scan the float32 rows only: no ANN index (`clipdex ann\n"
    "                     build`), no 4-bit or int8 first stage (docs/search.md)\n"
    "  --candidates M     with an ANN index: M x k approximate candidates are\n"
    "                     re-ranked exactly (default 10; docs/ann.md)\n"
    "  --nprobe N         with an IVF ANN index: lists visited (default: the\n"
    "                     index's, a sixteenth of them, at least 16)\n"
    "  --threads N        threads for the scan and the query, 0 = all CPUs (default 0)\n"
    "  --no-exif          ignore the EXIF orientation tag of query images\n"
    "  -h, --help         print this text\n";

enum { TERM_TEXT, TERM_IMAGE };

typedef struct term {
    int kind;
    const char *arg;
    float weight; /* signed */
} term;

typedef struct search_opts {
    const char *model, *copy_to, *link_to, *prompts;
    const char **dbs; /* one or more index databases (shards): their top k merged */
    size_t n_dbs;
    long k, threads, nprobe, candidates;
    double threshold, merge;
    int has_threshold, json, no_exif, exact, download, persons;
    term *terms;
    size_t n_terms;
    search_filter filter; /* --under, --time */
} search_opts;

/* Parses "W:rest" into the weight; returns rest, or s when there is none. */
static const char *parse_weight(const char *s, float *w)
{
    const char *colon = strchr(s, ':');
    if (!colon || colon == s) return s;
    char *end = NULL;
    double v = strtod(s, &end);
    if (end != colon || !isfinite(v)) return s;
    *w = (float)v;
    return colon + 1;
}

static void add_term(search_opts *o, const char *arg, int sign, int force_image)
{
    float w = 1;
    const char *s = force_image ? arg : parse_weight(arg, &w);
    struct stat sb;
    term *t = &o->terms[o->n_terms++];
    t->kind = force_image || (stat(s, &sb) == 0 && S_ISREG(sb.st_mode)) ? TERM_IMAGE : TERM_TEXT;
    t->arg = s;
    t->weight = (float)sign * w;
}

/* --under: the prefix as the index records paths (absolute, symbolic
 * links resolved when it exists); 0 or APP_USAGE. */
static int parse_under(const char *cmd, const char *val, search_filter *f)
{
    char real[2 * PATH_MAX + 2], cwd[PATH_MAX];
    const char *p = val;
    if (realpath(val, real)) {
        p = real;
    } else if (val[0] != '/' && val[0]) {
        if (!getcwd(cwd, sizeof cwd) || strlen(val) > PATH_MAX)
            return cli_usage_error(cmd, "cannot make --under '%s' absolute", val);
        snprintf(real, sizeof real, "%s/%s", cwd, val);
        p = real;
    }
    if (filter_set_under(f, p)) return cli_usage_error(cmd, "invalid value '%s' for --under", val);
    return 0;
}

static int search_parse(int argc, char **argv, search_opts *o)
{
    const char *val = NULL;
    int r, sign = 1;
    cli_args a;
    cli_args_init(&a, argc, argv);
    while (cli_args_next(&a)) {
        const char *s = argv[a.i];
        if (cli_args_is_help(&a)) {
            fputs(usage_search, stdout);
            return cli_flush_stdout();
        }
        if (cli_args_positional(&a)) {
            if (!a.opts_done && strcmp(s, "+") == 0) continue;
            if (!a.opts_done && strcmp(s, "-") == 0) {
                sign = -sign;
                continue;
            }
            add_term(o, s, sign, 0);
            sign = 1;
        } else if ((r = cli_args_value(&a, "--model", &o->model)) != 0) {
            if (r < 0) return APP_USAGE;
        } else if ((r = cli_args_value(&a, "--db", &val)) != 0) {
            if (r < 0) return APP_USAGE;
            o->dbs[o->n_dbs++] = val;
        } else if ((r = cli_args_value(&a, "--prompts", &o->prompts)) != 0) {
            if (r < 0) return APP_USAGE;
        } else if ((r = cli_args_value(&a, "--image", &val)) != 0) {
            if (r < 0) return APP_USAGE;
            add_term(o, val, sign, 1);
            sign = 1;
        } else if ((r = cli_args_value(&a, "-k", &val)) != 0 ||
                   (r = cli_args_value(&a, "--top", &val)) != 0) {
            if (r < 0 || cli_parse_int(a.cmd, "-k", val, 1, SEARCH_K_MAX, &o->k)) return APP_USAGE;
        } else if ((r = cli_args_value(&a, "--threshold", &val)) != 0) {
            char *end = NULL;
            if (r < 0) return APP_USAGE;
            o->threshold = strtod(val, &end);
            if (!val[0] || *end || !isfinite(o->threshold))
                return cli_usage_error(a.cmd, "invalid value '%s' for --threshold", val);
            o->has_threshold = 1;
        } else if ((r = cli_args_value(&a, "--under", &val)) != 0) {
            if (r < 0 || parse_under(a.cmd, val, &o->filter)) return APP_USAGE;
        } else if ((r = cli_args_value(&a, "--time", &val)) != 0) {
            if (r < 0) return APP_USAGE;
            if (filter_time_parse(val, &o->filter))
                return cli_usage_error(a.cmd, "invalid value '%s' for --time: expected FROM-TO, each in "
                                       "seconds, M:SS or H:MM:SS, FROM <= TO, one of them may be left out", val);
        } else if ((r = cli_args_value(&a, "--threads", &val)) != 0) {
            if (r < 0 || cli_parse_int(a.cmd, "--threads", val, 0, 1024, &o->threads))
                return APP_USAGE;
        } else if ((r = cli_args_value(&a, "--nprobe", &val)) != 0) {
            if (r < 0 || cli_parse_int(a.cmd, "--nprobe", val, 1, ANN_NPROBE_MAX, &o->nprobe)) return APP_USAGE;
        } else if ((r = cli_args_value(&a, "--candidates", &val)) != 0) {
            if (r < 0 || cli_parse_int(a.cmd, "--candidates", val, 1, ANN_CANDIDATES_MAX, &o->candidates))
                return APP_USAGE;
        } else if ((r = cli_args_value(&a, "--copy-to", &o->copy_to)) != 0) {
            if (r < 0) return APP_USAGE;
        } else if ((r = cli_args_value(&a, "--link-to", &o->link_to)) != 0) {
            if (r < 0) return APP_USAGE;
        } else if ((r = cli_args_flag(&a, "--json")) != 0) {
            if (r < 0) return APP_USAGE;
            o->json = 1;
        } else if ((r = cli_args_flag(&a, "--no-exif")) != 0) {
            if (r < 0) return APP_USAGE;
            o->no_exif = 1;
        } else if ((r = cli_args_flag(&a, "--download")) != 0) {
            if (r < 0) return APP_USAGE;
            o->download = 1;
        } else if ((r = cli_args_value(&a, "--merge", &val)) != 0) {
            if (r < 0 || cli_parse_double(a.cmd, "--merge", val, 0, 2, &o->merge))
                return APP_USAGE;
        } else if ((r = cli_args_flag(&a, "--persons")) != 0) {
            if (r < 0) return APP_USAGE;
            o->persons = 1;
        } else if ((r = cli_args_flag(&a, "--exact")) != 0) {
            if (r < 0) return APP_USAGE;
            o->exact = 1;
        } else if (s[1] != '-') {
            add_term(o, s + 1, -sign, 0); /* -fruit: a negative term */
            sign = 1;
        } else {
            return cli_unknown_option(&a);
        }
    }
    o->model = cli_model_fetch(o->model, CLI_DOWNLOAD_OFFER + o->download);
    if (o->n_dbs == 0) o->dbs[o->n_dbs++] = store_db_path(NULL);
    if (!o->model) return cli_model_error();
    if (o->n_terms == 0) return cli_usage_error(a.cmd, "no query: give a text, an image or both");
    if (o->copy_to && o->link_to) return cli_usage_error(a.cmd, "give --copy-to or --link-to, not both");
    if (o->persons && filter_active(&o->filter))
        return cli_usage_error(a.cmd, "--under and --time do not apply to --persons");
    return -1;
}

/* Embeds every term and sums them into q (dim), normalized. */
static int build_query(const search_opts *o, clipdex_ctx *ctx, const clipdex_model *model,
                       const zs_prompts *pr, size_t dim, float *q)
{
    float *e = malloc(dim * sizeof *e);
    if (!e) {
        cli_error("out of memory");
        return APP_FAIL;
    }
    clipdex_image_params ip = clipdex_image_params_default();
    ip.ignore_exif_orientation = o->no_exif;
    memset(q, 0, dim * sizeof *q);
    int rc = 0;
    for (size_t i = 0; i < o->n_terms && !rc; i++) {
        const term *t = &o->terms[i];
        int st;
        if (t->kind == TERM_TEXT && pr) {
            long at = zs_prompts_find(pr, t->arg);
            if (at < 0) {
                cli_error("the query text '%s' is not in the prompts file (add it with "
                          "`clipdex prompts --append`)", t->arg);
                rc = APP_FAIL;
                break;
            }
            memcpy(e, pr->emb + (size_t)at * dim, dim * sizeof *e);
            st = CLIPDEX_OK;
        } else if (t->kind == TERM_TEXT) {
            if (!clipdex_model_tokenizer(model)) {
                cli_error("the model has no tokenizer: text queries need one");
                rc = APP_MODEL;
                break;
            }
            st = clipdex_text_embed(ctx, model, &t->arg, 1, e, dim, 0);
        } else {
            clipdex_image *img = NULL;
            st = clipdex_image_load(ctx, t->arg, &ip, &img);
            if (st == CLIPDEX_OK) {
                const clipdex_image *one = img;
                st = clipdex_image_embed(ctx, model, &one, 1, e, dim, 0);
            }
            clipdex_image_free(img);
        }
        if (st != CLIPDEX_OK) {
            char *m = cli_errdup(ctx, st);
            cli_error("cannot embed the query %s '%s': %s", t->kind == TERM_TEXT ? "text" : "image",
                      t->arg, m);
            cli_msg_free(m);
            rc = APP_FAIL;
            break;
        }
        for (size_t d = 0; d < dim; d++) q[d] += t->weight * e[d];
    }
    free(e);
    if (rc) return rc;
    double n2 = 0;
    for (size_t d = 0; d < dim; d++) n2 += (double)q[d] * q[d];
    if (n2 <= 1e-20) {
        cli_error("the query terms cancel out: the query vector is zero");
        return APP_FAIL;
    }
    float inv = (float)(1.0 / sqrt(n2));
    for (size_t d = 0; d < dim; d++) q[d] *= inv;
    return 0;
}

static int copy_file(const char *src, const char *dst)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return -1;
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
        close(in);
        return -1;
    }
    char buf[1 << 16];
    ssize_t n;
    int rc = 0;
    while ((n = read(in, buf, sizeof buf)) != 0) {
        if (n < 0) {
            if (errno == EINTR) continue;
            rc = -1;
            break;
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0) {
                if (errno == EINTR) continue;
                rc = -1;
                break;
            }
            off += w;
        }
        if (rc) break;
    }
    close(in);
    if (close(out)) rc = -1;
    return rc;
}

/* Copies or links result `rank` (1-based) into dir as NNN_basename. */
static int place_result(const search_opts *o, size_t rank, size_t n, const char *path)
{
    const char *dir = o->copy_to ? o->copy_to : o->link_to;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    int width = n >= 1000 ? (n >= 10000 ? (n >= 100000 ? 6 : 5) : 4) : 3;
    size_t len = strlen(dir) + strlen(base) + 16;
    char *dst = malloc(len);
    if (!dst) return -1;
    snprintf(dst, len, "%s/%0*zu_%s", dir, width, rank, base);
    int rc;
    if (o->copy_to) {
        rc = copy_file(path, dst);
    } else {
        unlink(dst);
        rc = symlink(path, dst);
    }
    if (rc) cli_error("cannot %s '%s' to '%s': %s", o->copy_to ? "copy" : "link", path, dst,
                      strerror(errno));
    free(dst);
    return rc;
}

/* Writes the pixels under box (x0, y0, x1, y1; NULL: all) of an RGB image
 * as a full-quality JPEG `dst`; 0, or -1 with the reason in err. */
static int write_rgb(const uint8_t *rgb, int w, int h, int stride, const float *box, const char *dst,
                     char *err, size_t errlen)
{
    int x0 = 0, y0 = 0, x1 = w, y1 = h;
    if (box) { /* rounded outward and clipped, as clipdex_image_crop_box does */
        x0 = (int)fmax(0, floor(box[0]));
        y0 = (int)fmax(0, floor(box[1]));
        x1 = (int)fmin(w, ceil(box[2]));
        y1 = (int)fmin(h, ceil(box[3]));
        if (x1 <= x0 || y1 <= y0) {
            snprintf(err, errlen, "the box is outside the image");
            return -1;
        }
    }
    uint8_t *jpg = NULL;
    size_t len = 0;
    const uint8_t *p = rgb + (size_t)y0 * (size_t)stride + 3 * (size_t)x0;
    if (video_jpeg_encode(p, x1 - x0, y1 - y0, stride, 0, 2, &jpg, &len, err, errlen)) return -1;
    FILE *fp = fopen(dst, "wb");
    int rc = fp && fwrite(jpg, 1, len, fp) == len ? 0 : -1;
    if (fp && fclose(fp)) rc = -1;
    if (rc) snprintf(err, errlen, "%s", strerror(errno));
    free(jpg);
    return rc;
}

/* Writes the frame of video `path` at time t (the first frame at or after
 * it), or the part of it under box, as a full-size JPEG `dst`. */
static int write_frame(const char *path, double t, const float *box, const char *dst)
{
    video_opts vo;
    video_opts_default(&vo);
    vo.live = 0;
    video_src *src = NULL;
    video_frame f;
    char err[512] = "";
    int rc = video_open(path, &vo, &src, err, sizeof err);
    if (rc == 0)
        while ((rc = video_next(src, &f, err, sizeof err)) == 1 && f.pts < t - 1e-3) {}
    if (rc == 1)
        rc = write_rgb(f.rgb, f.w, f.h, f.stride, box, dst, err, sizeof err);
    else if (rc == 0) {
        snprintf(err, sizeof err, "'%s' has no frame at %.3f s", path, t);
        rc = -1;
    }
    video_close(src);
    if (rc) cli_error("cannot write the frame of '%s' to '%s': %s", path, dst, err);
    return rc ? -1 : 0;
}

/* Writes the part of photo `path` under box as a JPEG `dst`. */
static int write_crop(const char *path, const float *box, int no_exif, const char *dst)
{
    clipdex_ctx *ctx = NULL;
    clipdex_image *img = NULL;
    clipdex_image_params ip = clipdex_image_params_default();
    ip.ignore_exif_orientation = no_exif;
    char err[512] = "out of memory";
    uint8_t *rgb = NULL;
    int rc = clipdex_ctx_new(&ctx, &(clipdex_ctx_params){1}) || !ctx ? -1 : 0;
    if (!rc && clipdex_image_load(ctx, path, &ip, &img) != CLIPDEX_OK) {
        snprintf(err, sizeof err, "%s", clipdex_ctx_errmsg(ctx));
        rc = -1;
    }
    int w = img ? (int)clipdex_image_width(img) : 0, h = img ? (int)clipdex_image_height(img) : 0;
    if (!rc && !(rgb = malloc((size_t)w * (size_t)h * 3))) rc = -1;
    if (!rc && clipdex_image_rgb(ctx, img, rgb, (size_t)w * (size_t)h * 3) != CLIPDEX_OK) {
        snprintf(err, sizeof err, "%s", clipdex_ctx_errmsg(ctx));
        rc = -1;
    }
    if (!rc) rc = write_rgb(rgb, w, h, 3 * w, box, dst, err, sizeof err);
    if (rc) cli_error("cannot write the person of '%s' to '%s': %s", path, dst, err);
    free(rgb);
    clipdex_image_free(img);
    clipdex_ctx_free(ctx);
    return rc;
}

/* --copy-to for a video hit or a person: the best frame as
 * DIR/NNN_NAME@T.jpg, a person's crop as DIR/NNN_NAME[@T].person.jpg. */
static int place_frame(const search_opts *o, size_t rank, size_t n, const vhit *h)
{
    if (!o->copy_to) return place_result(o, rank, n, h->path);
    const char *base = strrchr(h->path, '/');
    base = base ? base + 1 : h->path;
    size_t len = strlen(o->copy_to) + strlen(base) + 64;
    char *dst = malloc(len), at[40] = "";
    if (!dst) return -1;
    if (h->is_video) snprintf(at, sizeof at, "@%.2f", h->best_t);
    int width = n >= 1000 ? (n >= 10000 ? (n >= 100000 ? 6 : 5) : 4) : 3;
    snprintf(dst, len, "%s/%0*zu_%s%s%s", o->copy_to, width, rank, base, at,
             h->is_person ? ".person.jpg" : ".jpg");
    const float *box = h->is_person ? h->box : NULL;
    int rc = h->is_video ? write_frame(h->path, h->best_t, box, dst)
                         : write_crop(h->path, box, o->no_exif, dst);
    free(dst);
    return rc;
}

static void print_hit(const search_opts *o, json_out *j, size_t rank, const vhit *h)
{
    if (o->json) {
        json_obj_begin(j);
        json_key(j, "rank");
        json_uint(j, rank);
        json_key(j, "similarity");
        json_num(j, h->score);
        json_key(j, "path");
        json_strn(j, h->path, h->len);
        if (h->is_person) {
            phit p = {.box = {h->box[0], h->box[1], h->box[2], h->box[3]}, .det_score = h->det_score,
                      .width = h->width, .height = h->height, .is_video = h->is_video, .t = h->best_t};
            phits_json(j, &p);
        } else {
            vhits_json_range(j, h);
        }
        json_obj_end(j);
        json_newline(j);
        return;
    }
    printf("%zu\t%.4f\t", rank, (double)h->score);
    fwrite(h->path, 1, h->len, stdout);
    if (h->is_person && h->is_video)
        printf("\t%.2f s", h->best_t);
    else if (h->is_video)
        printf("\t%.2f-%.2f s (best %.2f s)", h->start, h->end, h->best_t);
    if (h->is_person)
        printf("\tperson %.0f,%.0f,%.0f,%.0f (%.2f)", (double)h->box[0], (double)h->box[1],
               (double)h->box[2], (double)h->box[3], (double)h->det_score);
    putchar('\n');
}

/* Prints the hits and copies/links them. */
static int print_hits(const search_opts *o, const vhit *h, size_t n)
{
    json_out j;
    json_init(&j, stdout);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        size_t rank = i + 1;
        print_hit(o, &j, rank, &h[i]);
        if ((o->copy_to || o->link_to) &&
            (h[i].is_video || h[i].is_person ? place_frame(o, rank, n, &h[i])
                                             : place_result(o, rank, n, h[i].path)))
            rc = APP_FAIL;
    }
    return rc;
}

/* Merged hits of every database searched so far. */
typedef struct hit_set {
    vhit *h;
    size_t n, cap;
} hit_set;

/* The person hits of rows (persons.id) as hits: a person in a video is a
 * one-sample range at its time. Returns the count or -1 (reported). */
static long person_hits(store *s, const vhit_row *rows, size_t n_rows, size_t k, vhit **out)
{
    *out = NULL;
    int64_t *ids = malloc((n_rows ? n_rows : 1) * sizeof *ids);
    float *sc = malloc((n_rows ? n_rows : 1) * sizeof *sc);
    vhit *h = calloc(k ? k : 1, sizeof *h);
    phit *p = NULL;
    long n = -1;
    if (ids && sc && h) {
        for (size_t i = 0; i < n_rows; i++) ids[i] = rows[i].id, sc[i] = rows[i].score;
        n = phits_build(s, ids, sc, n_rows, k, &p);
    } else {
        cli_error("out of memory");
    }
    for (long i = 0; i < n; i++) {
        vhit *x = &h[i];
        x->file_id = p[i].file_id;
        x->path = p[i].path; /* changes owner */
        x->len = p[i].len;
        x->score = p[i].score;
        x->is_video = p[i].is_video;
        x->start = x->end = x->best_t = p[i].t;
        x->best_frame = p[i].frame_id;
        x->n_samples = 1;
        x->is_person = 1;
        memcpy(x->box, p[i].box, sizeof x->box);
        x->det_score = p[i].det_score;
        x->width = p[i].width;
        x->height = p[i].height;
    }
    free(p);
    free(ids);
    free(sc);
    if (n < 0) {
        free(h);
        return -1;
    }
    *out = h;
    return n;
}

/* Appends the k best hits of one database; 0 or APP_FAIL (reported). */
static int hits_add(hit_set *set, store *s, const vec_index *vi, const clipdex_hit *hits,
                    size_t n_rows, const search_opts *o)
{
    vhit_row *rows = malloc((n_rows ? n_rows : 1) * sizeof *rows);
    if (!rows) {
        cli_error("out of memory");
        return APP_FAIL;
    }
    for (size_t i = 0; i < n_rows; i++) rows[i] = (vhit_row){vi->ids[hits[i].row], hits[i].score};
    vhit *h = NULL;
    long n = o->persons ? person_hits(s, rows, n_rows, (size_t)o->k, &h)
                        : vhits_build(s, rows, n_rows, (size_t)o->k, o->merge, &h);
    free(rows);
    if (n < 0) return APP_FAIL;
    if (set->n + (size_t)n > set->cap) {
        size_t cap = set->n + (size_t)n;
        vhit *g = realloc(set->h, (cap ? cap : 1) * sizeof *g);
        if (!g) {
            vhits_free(h, (size_t)n);
            cli_error("out of memory");
            return APP_FAIL;
        }
        set->h = g;
        set->cap = cap;
    }
    if (n > 0) memcpy(set->h + set->n, h, (size_t)n * sizeof *h); /* the paths change owner */
    set->n += (size_t)n;
    free(h);
    return 0;
}

/* Best first; equal scores by path, so shards and their merge agree. */
static int hit_cmp(const void *pa, const void *pb)
{
    const vhit *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    int c = memcmp(a->path, b->path, a->len < b->len ? a->len : b->len);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

static int search_debug(void)
{
    const char *dbg = getenv("CLIPDEX_SEARCH_DEBUG"); /* which stage answered, on stderr */
    return dbg && dbg[0] && strcmp(dbg, "0") != 0;
}

/* Searches with the database's ANN index (docs/ann.md). Returns 0 (hits
 * in hits, n_hits), 1 when there is none or it cannot serve (said why:
 * the caller scans exactly) or APP_FAIL. */
static int search_ann(const search_opts *o, clipdex_ctx *ctx, store *s, const vec_index *vi, const float *q,
                      const clipdex_search_params *sp, const row_set *only, clipdex_hit *hits, size_t *n_hits)
{
    ann_index a;
    int rc = ann_open(s, vi, 1, &a); /* one query: map, do not read it all */
    if (rc == ANN_NONE) return 1;
    if (rc) {
        cli_error("searching '%s' exactly instead", s->path);
        return 1;
    }
    ann_params ap = {o->nprobe, o->candidates, (int)o->threads, (size_t)o->k, only};
    ann_stats st;
    rc = ann_search(&a, ctx, vi, q, sp, &ap, hits, n_hits, &st);
    if (!rc && search_debug())
        fprintf(stderr, "clipdex: search: %zu rows, answered by the ANN index (%s, nprobe %ld, %zu candidates, "
                "%zu tail rows, %zu re-ranked%s%s)\n", vi->n, a.factory, o->nprobe ? o->nprobe : a.nprobe,
                st.candidates, st.tail, st.reranked, only ? "; filtered" : "",
                st.exact == 2 ? "; fewer rows pass than the candidates, so an exact scan"
                : st.exact ? "; under k, so an exact scan" : "");
    ann_close(&a);
    return rc ? APP_FAIL : 0;
}

/* The search without the ANN index: of the whole matrix (staged, or
 * float32 with --exact), or float32 of the rows a filter keeps. */
static int scan_exact(clipdex_ctx *ctx, const vec_index *vi, const float *q, const clipdex_search_params *sp,
                      const row_set *only, clipdex_hit *hits, size_t *n_hits)
{
    clipdex_search_stats qs;
    if (only) {
        if (vecindex_search_rows(ctx, vi, only->rows, only->n, q, sp, hits, n_hits)) return APP_FAIL;
        if (search_debug())
            fprintf(stderr, "clipdex: search: %zu rows, answered by the float32 scan of the %zu rows the filter "
                    "keeps\n", vi->n, only->n);
        return 0;
    }
    if (clipdex_vecs_search(ctx, vi->vecs, q, sp, hits, n_hits, &qs)) {
        cli_error("search: %s", clipdex_ctx_errmsg(ctx));
        return APP_FAIL;
    }
    if (search_debug())
        fprintf(stderr, "clipdex: search: %zu rows, answered by the %s stage (%zu candidates, "
                "%zu re-ranked)\n", vi->n, qs.stage == 4 ? "4-bit" : qs.stage == 8 ? "int8" : "float32",
                qs.candidates, qs.reranked);
    return 0;
}

/* Scans one database for the query q and adds its hits to set. */
static int search_db(const search_opts *o, clipdex_ctx *ctx, const store_model_id *id,
                     const float *q, const char *db, clipdex_hit *hits, hit_set *set)
{
    store *s = NULL;
    vec_index vi;
    row_set rows;
    memset(&vi, 0, sizeof vi);
    memset(&rows, 0, sizeof rows);
    int rc = store_open(db, 0, &s);
    if (!rc) rc = store_check_model(s, id, 0);
    if (!rc) rc = vecindex_open_kind(s, id->dim, o->persons ? VECINDEX_PERSONS : VECINDEX_FILES, &vi);
    if (rc) goto done;
    clipdex_search_params sp = clipdex_search_params_default();
    sp.k = vhits_rows((size_t)o->k, SEARCH_K_MAX);
    sp.threshold = o->has_threshold ? (float)o->threshold : -INFINITY;
    sp.stage = o->exact ? CLIPDEX_SEARCH_EXACT : CLIPDEX_SEARCH_AUTO;
    const char *env = getenv("CLIPDEX_SEARCH_CANDIDATES"); /* tuning and tests */
    if (!o->exact && env && atol(env) > 0) {
        sp.stage = CLIPDEX_SEARCH_STAGED;
        sp.q8_candidates = sp.q4_candidates = (size_t)atol(env);
    }
    size_t n_hits = 0;
    const row_set *only = filter_active(&o->filter) ? &rows : NULL;
    if (only && (rc = filter_rows(s, &vi, &o->filter, &rows))) goto done;
    if (!o->exact && !o->persons && (rc = search_ann(o, ctx, s, &vi, q, &sp, only, hits, &n_hits)) != 1) {
        if (!rc) rc = hits_add(set, s, &vi, hits, n_hits, o);
        goto done;
    }
    rc = scan_exact(ctx, &vi, q, &sp, only, hits, &n_hits);
    if (!rc) rc = hits_add(set, s, &vi, hits, n_hits, o);
done:
    row_set_free(&rows);
    vecindex_close(&vi);
    store_close(s);
    return rc;
}

static int search_run(const search_opts *o)
{
    clipdex_ctx *ctx = NULL;
    clipdex_model *model = NULL;
    float *q = NULL;
    clipdex_hit *hits = NULL;
    hit_set set = {NULL, 0, 0};
    store_model_id id;
    zs_prompts pr;
    memset(&pr, 0, sizeof pr);
    int rc = cli_ctx_new((int)o->threads, &ctx);
    if (!rc) rc = cli_model_load(ctx, o->model, NULL, &model);
    if (!rc) rc = store_model_identify(model, o->model, &id);
    if (!rc && o->prompts) rc = zs_prompts_load(o->prompts, &id, &pr);
    if (rc) goto done;
    size_t dim = (size_t)id.dim;
    q = malloc(dim * sizeof *q);
    hits = malloc(vhits_rows((size_t)o->k, SEARCH_K_MAX) * sizeof *hits);
    if (!q || !hits) {
        cli_error("out of memory");
        rc = APP_FAIL;
        goto done;
    }
    if ((rc = build_query(o, ctx, model, o->prompts ? &pr : NULL, dim, q))) goto done;
    for (size_t i = 0; i < o->n_dbs && !rc; i++)
        rc = search_db(o, ctx, &id, q, o->dbs[i], hits, &set);
    if (rc) goto done;
    if (set.n > 1) qsort(set.h, set.n, sizeof *set.h, hit_cmp);
    size_t n = set.n < (size_t)o->k ? set.n : (size_t)o->k;
    if ((o->copy_to || o->link_to)) {
        const char *dir = o->copy_to ? o->copy_to : o->link_to;
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
            cli_error("cannot create '%s': %s", dir, strerror(errno));
            rc = APP_FAIL;
            goto done;
        }
    }
    rc = print_hits(o, set.h, n);
    int frc = cli_flush_stdout();
    if (!rc) rc = frc;
done:
    vhits_free(set.h, set.n);
    zs_prompts_free(&pr);
    free(q);
    free(hits);
    clipdex_model_free(model);
    clipdex_ctx_free(ctx);
    return rc;
}

int cmd_search(int argc, char **argv)
{
    search_opts o;
    memset(&o, 0, sizeof o);
    o.k = SEARCH_K_DEFAULT;
    o.merge = VHITS_MERGE_DEFAULT;
    o.terms = calloc((size_t)argc + 1, sizeof *o.terms);
    o.dbs = calloc((size_t)argc + 1, sizeof *o.dbs);
    if (!o.terms || !o.dbs) {
        free(o.terms);
        free(o.dbs);
        cli_error("out of memory");
        return APP_FAIL;
    }
    int rc = search_parse(argc, argv, &o);
    if (rc < 0) rc = search_run(&o);
    free(o.terms);
    free(o.dbs);
    filter_free(&o.filter);
    return rc;
}
