/*
 * cmd_eval.c - `clipdex eval`: zero-shot evaluation over a labelled folder
 * (ImageNet sample files nXXXXXXXX_name.JPEG, or CIFAR-style CLASS/ folders).
 * Class vectors are prompt ensembles over the dataset's templates (or come
 * from a prompts.json); each image is read and decoded, preprocessed and
 * embedded in batches, and scored; prints top-1/top-5 accuracy, images/s and
 * the time spent in decoding, preprocessing and inference.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/cmd_zeroshot.h"
#include "store/walk.h"
#include "util/json.h"
#include "zeroshot/imagenet_wnids.h"
#include "zeroshot/zeroshot.h"

#define EVAL_BATCH_DEFAULT 16
#define EVAL_TOPK 5

const char usage_eval[] =
    "Usage: clipdex eval [--model DIR] --dataset imagenet-samples|cifar10|cifar100 [OPTIONS] PATH\n"
    "\n"
    "Zero-shot evaluation over a labelled folder:\n"
    "  imagenet-samples  PATH/nXXXXXXXX_*.JPEG; the class is the index of the\n"
    "                    WordNet id among the 1000 ImageNet-1k ids (sorted)\n"
    "  cifar10, cifar100 PATH/CLASS/*; CLASS is a class name ('_' for ' ')\n"
    "Prints top-1 and top-5 accuracy, images/s and the seconds spent reading\n"
    "and decoding, preprocessing, inference and in the text tower.\n"
    "\n"
    "Options:\n"
    "  --model DIR         model directory (default: $CLIPDEX_MODEL)\n"
    "  --dataset NAME      imagenet-samples, cifar10 or cifar100\n"
    "  --classes F         class names, one per line in class-index order\n"
    "  --templates F       prompt templates, one per line, \"{}\" marks the class\n"
    "  --zeroshot DIR      where NAME_classes.txt and NAME_templates.txt are\n"
    "                      (NAME imagenet, cifar10, cifar100; default:\n"
    "                      $CLIPDEX_ZEROSHOT, then PATH/../zeroshot)\n"
    "  --prompts P         class vectors from `clipdex prompts` (its labels must\n"
    "                      be the class names, in order); no text tower is run\n"
    "  --limit N           evaluate N images evenly spaced in path order\n"
    "  --batch N           images per inference batch, 1..1024 (default 16)\n"
    "  --threads N         worker threads, 0 = all CPUs (default 0)\n"
    "  --per-image         first print one JSON line per image:\n"
    "                      {\"path\":...,\"class\":3,\"top5\":[3,17,...]}\n"
    "  --json              print the summary as one JSON object\n"
    "  --vocab PATH        tokenizer vocabulary (default: the model's)\n"
    "  -h, --help          print this text\n";

typedef struct eval_opts {
    const char *model, *vocab, *dataset, *classes, *templates, *zeroshot, *prompts, *path;
    long batch, threads, limit;
    int per_image, json;
} eval_opts;

enum { DS_IMAGENET, DS_CIFAR10, DS_CIFAR100 };

typedef struct sample {
    char *path;
    size_t cls;
} sample;

typedef struct samples {
    sample *v;
    size_t n, cap;
} samples;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int eval_parse(int argc, char **argv, eval_opts *o, int *ds)
{
    const char *val = NULL;
    int r;
    cli_args a;
    cli_args_init(&a, argc, argv);
    while (cli_args_next(&a)) {
        if (cli_args_is_help(&a)) {
            fputs(usage_eval, stdout);
            return cli_flush_stdout();
        }
        if (cli_args_positional(&a)) {
            if (o->path) return cli_usage_error(a.cmd, "give one PATH");
            o->path = argv[a.i];
        } else if ((r = cli_args_shared(&a, &o->model, &o->vocab, &o->threads, NULL)) != 0 ||
                   (r = cli_args_value(&a, "--dataset", &o->dataset)) != 0 ||
                   (r = cli_args_value(&a, "--classes", &o->classes)) != 0 ||
                   (r = cli_args_value(&a, "--templates", &o->templates)) != 0 ||
                   (r = cli_args_value(&a, "--zeroshot", &o->zeroshot)) != 0 ||
                   (r = cli_args_value(&a, "--prompts", &o->prompts)) != 0) {
            if (r < 0) return APP_USAGE;
        } else if ((r = cli_args_value(&a, "--limit", &val)) != 0) {
            if (r < 0 || cli_parse_int(a.cmd, "--limit", val, 1, 1L << 30, &o->limit))
                return APP_USAGE;
        } else if ((r = cli_args_value(&a, "--batch", &val)) != 0) {
            if (r < 0 || cli_parse_int(a.cmd, "--batch", val, 1, 1024, &o->batch)) return APP_USAGE;
        } else if ((r = cli_args_flag(&a, "--per-image")) != 0) {
            if (r < 0) return APP_USAGE;
            o->per_image = 1;
        } else if ((r = cli_args_flag(&a, "--json")) != 0) {
            if (r < 0) return APP_USAGE;
            o->json = 1;
        } else {
            return cli_unknown_option(&a);
        }
    }
    o->model = cli_model_path(o->model);
    if (!o->model) return cli_model_error();
    if (!o->dataset) return cli_usage_error(a.cmd, "give --dataset imagenet-samples|cifar10|cifar100");
    if (strcmp(o->dataset, "imagenet-samples") == 0 || strcmp(o->dataset, "imagenet") == 0)
        *ds = DS_IMAGENET;
    else if (strcmp(o->dataset, "cifar10") == 0)
        *ds = DS_CIFAR10;
    else if (strcmp(o->dataset, "cifar100") == 0)
        *ds = DS_CIFAR100;
    else
        return cli_usage_error(a.cmd, "unknown dataset '%s' (imagenet-samples, cifar10, cifar100)",
                               o->dataset);
    if (!o->path) return cli_usage_error(a.cmd, "give the dataset folder PATH");
    if (o->prompts && o->templates)
        return cli_usage_error(a.cmd, "--templates does not apply to --prompts");
    return -1;
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/%s", a, b);
    return s;
}

static int samples_add(samples *s, char *path, size_t cls)
{
    if (!path) return -1;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        sample *v = realloc(s->v, cap * sizeof *v);
        if (!v) {
            free(path);
            return -1;
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n].path = path;
    s->v[s->n++].cls = cls;
    return 0;
}

static void samples_free(samples *s)
{
    for (size_t i = 0; i < s->n; i++) free(s->v[i].path);
    free(s->v);
}

static int sample_cmp(const void *a, const void *b)
{
    return strcmp(((const sample *)a)->path, ((const sample *)b)->path);
}

/* Class of an ImageNet file name "nXXXXXXXX_..."; -1 if none. */
static long imagenet_class(const char *name)
{
    if (name[0] != 'n' || strlen(name) < 10 || name[9] != '_') return -1;
    for (int i = 1; i < 9; i++)
        if (name[i] < '0' || name[i] > '9') return -1;
    size_t lo = 0, hi = IMAGENET_N_CLASSES; /* the table is sorted */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strncmp(imagenet_wnids[mid], name, 9);
        if (c == 0) return (long)mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

/* A class folder name matches a class name with '_' read as ' '. */
static int name_matches(const char *dir, const char *cls)
{
    for (; *dir && *cls; dir++, cls++)
        if (*dir != *cls && !(*dir == '_' && *cls == ' ')) return 0;
    return *dir == '\0' && *cls == '\0';
}

/* Lists the labelled images of the dataset. Returns 0 or APP_FAIL. */
static int list_samples(const eval_opts *o, int ds, const zs_list *names, samples *out)
{
    DIR *d = opendir(o->path);
    if (!d) {
        cli_error("cannot read the dataset folder '%s': %s", o->path, strerror(errno));
        return APP_FAIL;
    }
    struct dirent *de;
    int rc = 0;
    while (!rc && (de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        if (nm[0] == '.') continue;
        if (ds == DS_IMAGENET) {
            if (!walk_is_image_name(nm)) continue;
            long c = imagenet_class(nm);
            if (c < 0) {
                cli_error("'%s/%s': not named nXXXXXXXX_*.JPEG with an ImageNet-1k id", o->path, nm);
                rc = APP_FAIL;
            } else if (samples_add(out, join(o->path, nm), (size_t)c)) {
                rc = -1;
            }
            continue;
        }
        size_t c = 0;
        while (c < names->n && !name_matches(nm, names->v[c])) c++;
        char *sub = join(o->path, nm);
        DIR *sd = sub ? opendir(sub) : NULL;
        if (!sub) {
            rc = -1;
        } else if (!sd) {
            if (errno != ENOTDIR) {
                cli_error("cannot read '%s': %s", sub, strerror(errno));
                rc = APP_FAIL;
            }
        } else if (c == names->n) {
            cli_error("'%s': '%s' is not a %s class", sub, nm, o->dataset);
            rc = APP_FAIL;
        } else {
            struct dirent *se;
            while (!rc && (se = readdir(sd)) != NULL)
                if (se->d_name[0] != '.' && walk_is_image_name(se->d_name) &&
                    samples_add(out, join(sub, se->d_name), c))
                    rc = -1;
        }
        if (sd) closedir(sd);
        free(sub);
    }
    closedir(d);
    if (rc < 0) {
        cli_error("out of memory");
        rc = APP_FAIL;
    }
    if (!rc && out->n == 0) {
        cli_error("no labelled images in '%s'", o->path);
        rc = APP_FAIL;
    }
    if (!rc) qsort(out->v, out->n, sizeof *out->v, sample_cmp);
    return rc;
}

/* The zero-shot file `DIR/PREFIX_KIND.txt` for the dataset. */
static char *zeroshot_file(const eval_opts *o, int ds, const char *kind)
{
    const char *prefix = ds == DS_IMAGENET ? "imagenet" : ds == DS_CIFAR10 ? "cifar10" : "cifar100";
    const char *dir = o->zeroshot;
    const char *env = getenv("CLIPDEX_ZEROSHOT");
    if (!dir && env && env[0]) dir = env;
    size_t n = (dir ? strlen(dir) : strlen(o->path) + 16) + strlen(prefix) + strlen(kind) + 16;
    char *s = malloc(n);
    if (!s) return NULL;
    if (dir)
        snprintf(s, n, "%s/%s_%s.txt", dir, prefix, kind);
    else
        snprintf(s, n, "%s/../zeroshot/%s_%s.txt", o->path, prefix, kind);
    return s;
}

typedef struct eval_stats {
    size_t n, failed, correct1, correct5;
    double t_decode, t_pre, t_infer, t_text, t_total;
} eval_stats;

/* Scores a batch of embedded images. */
static void score_batch(const eval_opts *o, const samples *sm, const size_t *which, size_t n,
                        const float *emb, const float *cls, size_t nc, size_t dim, double *sc,
                        eval_stats *st)
{
    for (size_t k = 0; k < n; k++) {
        const sample *s = &sm->v[which[k]];
        size_t top[EVAL_TOPK];
        /* argmax of cosine = argmax of softmax: rank by cosine */
        zs_scores(emb + k * dim, cls, nc, dim, 1.0, sc, sc + nc, sc + 2 * nc);
        size_t nt = zs_topk(sc, nc, EVAL_TOPK, top);
        st->n++;
        if (nt > 0 && top[0] == s->cls) st->correct1++;
        for (size_t t = 0; t < nt; t++)
            if (top[t] == s->cls) st->correct5++;
        if (o->per_image) {
            json_out j;
            json_init(&j, stdout);
            json_obj_begin(&j);
            json_key(&j, "path");
            json_str(&j, s->path);
            json_key(&j, "class");
            json_uint(&j, s->cls);
            json_key(&j, "top5");
            json_arr_begin(&j);
            for (size_t t = 0; t < nt; t++) json_uint(&j, top[t]);
            json_arr_end(&j);
            json_obj_end(&j);
            json_newline(&j);
        }
    }
}

static void eval_print(const eval_opts *o, size_t nc, const eval_stats *st)
{
    double n = st->n ? (double)st->n : 1.0;
    double img_s = st->t_total > 0 ? (double)(st->n + st->failed) / st->t_total : 0;
    if (o->json) {
        json_out j;
        json_init(&j, stdout);
        json_obj_begin(&j);
        json_key(&j, "dataset");
        json_str(&j, o->dataset);
        json_key(&j, "images");
        json_uint(&j, st->n);
        json_key(&j, "failed");
        json_uint(&j, st->failed);
        json_key(&j, "classes");
        json_uint(&j, nc);
        json_key(&j, "correct1");
        json_uint(&j, st->correct1);
        json_key(&j, "correct5");
        json_uint(&j, st->correct5);
        json_key(&j, "top1");
        json_num(&j, (double)st->correct1 / n);
        json_key(&j, "top5");
        json_num(&j, (double)st->correct5 / n);
        json_key(&j, "images_per_s");
        json_num(&j, img_s);
        json_key(&j, "decode_s");
        json_num(&j, st->t_decode);
        json_key(&j, "preprocess_s");
        json_num(&j, st->t_pre);
        json_key(&j, "inference_s");
        json_num(&j, st->t_infer);
        json_key(&j, "text_s");
        json_num(&j, st->t_text);
        json_key(&j, "seconds");
        json_num(&j, st->t_total + st->t_text);
        json_obj_end(&j);
        json_newline(&j);
        return;
    }
    printf("%s: %zu images, %zu classes: top-1 %.2f %% (%zu), top-5 %.2f %% (%zu)%s\n", o->dataset,
           st->n, nc, 100.0 * (double)st->correct1 / n, st->correct1,
           100.0 * (double)st->correct5 / n, st->correct5, st->failed ? " (some images failed)" : "");
    printf("%.1f images/s: decode %.2f s, preprocess %.2f s, inference %.2f s; text tower %.2f s\n",
           img_s, st->t_decode, st->t_pre, st->t_infer, st->t_text);
}

static int eval_run(const eval_opts *o, int ds)
{
    clipdex_ctx *ctx = NULL;
    clipdex_model *model = NULL;
    clipdex_model_info info;
    zs_list names = {0}, labels = {0}, templates = {0};
    samples sm = {0};
    float *cls = NULL, *pixels = NULL, *emb = NULL;
    double *sc = NULL;
    size_t *which = NULL;
    char *cpath = NULL, *tpath = NULL;
    eval_stats st;
    memset(&st, 0, sizeof st);
    int rc = cli_ctx_new((int)o->threads, &ctx);
    if (!rc) rc = cli_model_load(ctx, o->model, o->vocab, &model);
    if (rc) goto done;
    if (clipdex_model_get_info(model, &info) != CLIPDEX_OK || info.embed_dim <= 0) {
        cli_error("cannot describe the model '%s'", o->model);
        rc = APP_MODEL;
        goto done;
    }
    size_t dim = (size_t)info.embed_dim;
    cpath = o->classes ? strdup(o->classes) : zeroshot_file(o, ds, "classes");
    tpath = o->templates ? strdup(o->templates) : zeroshot_file(o, ds, "templates");
    if (!cpath || !tpath) {
        cli_error("out of memory");
        rc = APP_FAIL;
        goto done;
    }
    if ((rc = zs_list_file(cpath, &names))) goto done;
    size_t want = ds == DS_IMAGENET ? IMAGENET_N_CLASSES : ds == DS_CIFAR10 ? 10 : 100;
    if (names.n != want) {
        cli_error("'%s' holds %zu class names; %s has %zu", cpath, names.n, o->dataset, want);
        rc = APP_FAIL;
        goto done;
    }
    if ((rc = list_samples(o, ds, &names, &sm))) goto done;
    if (o->limit > 0 && (size_t)o->limit < sm.n) { /* N evenly spaced samples */
        size_t m = (size_t)o->limit, k = 0;
        for (size_t i = 0; i < sm.n; i++) {
            if (k < m && i == k * sm.n / m)
                sm.v[k++] = sm.v[i];
            else
                free(sm.v[i].path);
        }
        sm.n = m;
    }
    double t0 = now_s();
    if (o->prompts) {
        zs_source src = {0};
        src.prompts = o->prompts;
        if ((rc = zs_classes_load(ctx, model, o->model, &src, dim, &labels, &cls))) goto done;
        int same = labels.n == names.n;
        for (size_t c = 0; same && c < names.n; c++) same = strcmp(labels.v[c], names.v[c]) == 0;
        if (!same) {
            cli_error("the classes of '%s' (%zu) are not the %zu class names of '%s' in order",
                      o->prompts, labels.n, names.n, cpath);
            rc = APP_FAIL;
            goto done;
        }
    } else {
        if ((rc = zs_list_file(tpath, &templates))) goto done;
        cls = malloc(names.n * dim * sizeof *cls);
        if (!cls) {
            cli_error("out of memory");
            rc = APP_FAIL;
            goto done;
        }
        if ((rc = zs_class_embed(ctx, model, &names, &templates, dim, cls))) goto done;
    }
    st.t_text = now_s() - t0;
    size_t nc = names.n, B = (size_t)o->batch;
    size_t S = (size_t)info.image_size, px = 3 * S * S;
    pixels = malloc(B * px * sizeof *pixels);
    emb = malloc(B * dim * sizeof *emb);
    sc = malloc(3 * nc * sizeof *sc);
    which = malloc(B * sizeof *which);
    if (!pixels || !emb || !sc || !which) {
        cli_error("out of memory");
        rc = APP_FAIL;
        goto done;
    }
    double tstart = now_s();
    size_t nb = 0;
    for (size_t i = 0; i <= sm.n; i++) {
        if (nb == B || (i == sm.n && nb > 0)) {
            double a = now_s();
            int e = clipdex_pixels_embed(ctx, model, pixels, nb, emb, nb * dim, 0);
            st.t_infer += now_s() - a;
            if (e != CLIPDEX_OK) {
                char *m = cli_errdup(ctx, e);
                cli_error("inference failed: %s", m);
                cli_msg_free(m);
                rc = APP_FAIL;
                goto done;
            }
            score_batch(o, &sm, which, nb, emb, cls, nc, dim, sc, &st);
            nb = 0;
        }
        if (i == sm.n) break;
        double a = now_s();
        clipdex_image *img = NULL;
        int e = clipdex_image_load(ctx, sm.v[i].path, NULL, &img);
        double b = now_s();
        st.t_decode += b - a;
        if (e == CLIPDEX_OK)
            e = clipdex_image_preprocess(ctx, img, (int)S, info.mean, info.std, pixels + nb * px, px);
        st.t_pre += now_s() - b;
        clipdex_image_free(img);
        if (e != CLIPDEX_OK) {
            char *m = cli_errdup(ctx, e);
            cli_error("cannot evaluate '%s': %s", sm.v[i].path, m);
            cli_msg_free(m);
            st.failed++;
            continue;
        }
        which[nb++] = i;
    }
    st.t_total = now_s() - tstart;
    eval_print(o, nc, &st);
    rc = cli_flush_stdout();
    if (!rc && st.failed) rc = APP_FAIL;
done:
    free(cpath);
    free(tpath);
    zs_list_free(&names);
    zs_list_free(&labels);
    zs_list_free(&templates);
    samples_free(&sm);
    free(cls);
    free(pixels);
    free(emb);
    free(sc);
    free(which);
    clipdex_model_free(model);
    clipdex_ctx_free(ctx);
    return rc;
}

int cmd_eval(int argc, char **argv)
{
    eval_opts o;
    memset(&o, 0, sizeof o);
    o.batch = EVAL_BATCH_DEFAULT;
    int ds = DS_IMAGENET;
    int rc = eval_parse(argc, argv, &o, &ds);
    if (rc < 0) rc = eval_run(&o, ds);
    return rc;
}
