/*
 * clipdex_bench.c - times libclipdex through its public API only.
 *
 * Two ways to run it:
 *
 *   clipdex_bench --model PATH [--jpeg DIR] [--text NAME=STRING]... [--seconds S]
 *       standalone: image encodes at batch 1 and 16, 1 and 2 threads, and each
 *       text at 1 and 2 threads; one line per result, then the peak RSS.
 *
 *   clipdex_bench --serve --model PATH [--jpeg DIR] [--text NAME=STRING]...
 *       a worker for bench/driver.py, which interleaves it with the peers
 *       (bench/peers/) so that all of them see the same machine speed. It reads
 *       commands on stdin and answers one line each:
 *         image B T S   -> result image B T ITERS SECONDS GFLOP_PER_ENCODE
 *         pixels B T S  -> the same without decoding (preprocessed pixels in)
 *         decode B T S  -> result decode B T ITERS SECONDS 0: decoding and
 *                          preprocessing alone
 *         text NAME T S -> result text NAME T ITERS SECONDS GFLOP_PER_ENCODE
 *         rss           -> rss KILOBYTES   (getrusage peak resident set)
 *         quit
 *       B = batch, T = threads (clipdex_ctx_params.n_threads), S = seconds to
 *       keep repeating; the first call of each (task, threads) also runs one
 *       untimed warm-up encode. The bench/peers workers speak the same protocol.
 *       The ready line names the kernel path (isa=, kernels=, cpu=): the
 *       CLIPDEX_ISA environment variable chooses it, as in the library.
 *
 * Images are timed from JPEG bytes in memory: each encode of B images decodes
 * B JPEGs (clipdex_image_decode), preprocesses them (clipdex_image_preprocess:
 * Pillow-exact bicubic resize, center crop, normalize) and embeds the batch
 * (clipdex_pixels_embed); with T threads the decoding is split over T threads,
 * as an application with T cores would. The JPEGs are the first MAX_BATCH
 * *.jpg / *.jpeg files of --jpeg DIR (sorted by name; make bench passes the
 * ImageNet samples of ../shared), or, without --jpeg, MAX_BATCH seeded
 * 500 x 375 images encoded here with libjpeg at quality 90. The peers get
 * preprocessed pixels (decoding is not timed for them).
 *
 * FLOPs are counted here, from the model's dimensions, as multiply-adds x 2 of
 * every matrix product the encoder does (patch embedding, q/k/v, scores,
 * probabilities x values, output projection, MLP, final projection); LayerNorm,
 * softmax and activations are left out. ViT-B/32: 8.82 GFLOP per image. The
 * text tower runs only the positions up to the end token (the causal mask makes
 * the rest irrelevant), so a text of L tokens costs its L positions.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

#include <jpeglib.h>

#include "clipdex.h"

#define MAX_TEXTS 8
#define MAX_BATCH 64
#define MAX_THREADS 16

struct text {
    char name[32];
    int32_t *ids;   /* [context_length] */
    size_t n_tokens;
};

struct jpeg {
    unsigned char *data;
    size_t len;
    char name[64];
};

struct bench {
    clipdex_model *model;
    struct jpeg jpegs[MAX_BATCH]; /* the encoded images, cycled if a batch needs more */
    int n_jpegs;
    size_t jpeg_bytes;
    clipdex_model_info info;
    clipdex_ctx *ctx[MAX_THREADS + 1]; /* by thread count, made on first use */
    float *pixels;                     /* [MAX_BATCH, 3, S, S] */
    float *out;                        /* [MAX_BATCH, embed_dim] */
    struct text texts[MAX_TEXTS];
    int n_texts;
    int warm[4][MAX_BATCH + MAX_TEXTS + 1][MAX_THREADS + 1]; /* by mode (image, text, pixels, decode) */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(const char *what, int rc, const clipdex_ctx *ctx)
{
    fprintf(stderr, "clipdex_bench: %s: %s (%s)\n", what, clipdex_status_str(rc),
            ctx ? clipdex_ctx_errmsg(ctx) : "");
    exit(1);
}

/* One pre-LN transformer block over n_seq sequences of L positions. */
static double block_flops(double L, double W, double M)
{
    return 2.0 * L * W * 3.0 * W  /* q, k, v */
           + 2.0 * L * L * W      /* q k^T, all heads */
           + 2.0 * L * L * W      /* p v, all heads */
           + 2.0 * L * W * W      /* output projection */
           + 2.0 * L * W * M * 2; /* fc1 + fc2 */
}

static double image_gflop(const clipdex_model_info *m)
{
    double g = (double)(m->image_size / m->patch_size), P = m->patch_size, W = m->vision_width;
    double L = g * g + 1;
    double f = 2.0 * g * g * (3.0 * P * P) * W;                           /* patch embedding */
    f += m->vision_layers * block_flops(L, W, m->vision_mlp);
    f += 2.0 * W * m->embed_dim;                                          /* projection */
    return f * 1e-9;
}

static double text_gflop(const clipdex_model_info *m, size_t L)
{
    double W = m->text_width;
    double f = m->text_layers * block_flops((double)L, W, m->text_mlp);
    f += 2.0 * W * m->embed_dim;
    return f * 1e-9;
}

static clipdex_ctx *ctx_for(struct bench *b, int threads)
{
    if (threads < 1 || threads > MAX_THREADS) {
        fprintf(stderr, "clipdex_bench: threads must be 1..%d\n", MAX_THREADS);
        exit(2);
    }
    if (!b->ctx[threads]) {
        clipdex_ctx_params p = clipdex_ctx_params_default();
        p.n_threads = threads;
        int rc = clipdex_ctx_new(&b->ctx[threads], &p);
        if (rc) die("clipdex_ctx_new", rc, NULL);
    }
    return b->ctx[threads];
}

enum image_mode { MODE_IMAGE = 0, MODE_PIXELS = 2, MODE_DECODE = 3 }; /* indexes of bench.warm */

struct decode_job {
    const struct bench *b;
    int first, step, batch; /* decodes images first, first + step, ... < batch */
    int rc;
    char err[160];
};

/* Decodes and preprocesses images job->first, +step, ... of the batch into b->pixels. */
static void *decode_part(void *arg)
{
    struct decode_job *j = arg;
    const struct bench *b = j->b;
    int S = b->info.image_size;
    size_t px = 3 * (size_t)S * S;
    for (int i = j->first; i < j->batch && !j->rc; i += j->step) {
        const struct jpeg *jp = &b->jpegs[i % b->n_jpegs];
        clipdex_image *img = NULL;
        j->rc = clipdex_image_decode(NULL, jp->data, jp->len, NULL, &img);
        if (!j->rc) j->rc = clipdex_image_preprocess(NULL, img, S, b->info.mean, b->info.std, b->pixels + i * px, px);
        if (j->rc) snprintf(j->err, sizeof j->err, "image '%s': %s", jp->name, clipdex_status_str(j->rc));
        clipdex_image_free(img);
    }
    return NULL;
}

/* Decodes + preprocesses `batch` JPEGs on `threads` threads (the caller is one). */
static void decode_batch(struct bench *b, int batch, int threads)
{
    struct decode_job jobs[MAX_THREADS];
    pthread_t th[MAX_THREADS];
    int nt = threads < batch ? threads : batch;
    for (int t = 0; t < nt; t++) {
        jobs[t] = (struct decode_job){.b = b, .first = t, .step = nt, .batch = batch};
        if (t > 0 && pthread_create(&th[t], NULL, decode_part, &jobs[t]) != 0) {
            fprintf(stderr, "clipdex_bench: cannot start a decoding thread: %s\n", strerror(errno));
            exit(1);
        }
    }
    decode_part(&jobs[0]);
    for (int t = 1; t < nt; t++) pthread_join(th[t], NULL);
    for (int t = 0; t < nt; t++)
        if (jobs[t].rc) {
            fprintf(stderr, "clipdex_bench: %s\n", jobs[t].err);
            exit(1);
        }
}

static int image_once(struct bench *b, clipdex_ctx *ctx, int batch, int threads, enum image_mode mode)
{
    size_t e = (size_t)b->info.embed_dim;
    if (mode != MODE_PIXELS) decode_batch(b, batch, threads);
    if (mode == MODE_DECODE) return 0;
    return clipdex_pixels_embed(ctx, b->model, b->pixels, (size_t)batch, b->out, (size_t)batch * e, 0);
}

static int text_once(struct bench *b, clipdex_ctx *ctx, const struct text *t)
{
    return clipdex_tokens_embed(ctx, b->model, t->ids, 1, b->out, (size_t)b->info.embed_dim, 0);
}

/* Repeats one task for at least `seconds` (at least once); returns iterations
 * and the elapsed time. */
static void run_image(struct bench *b, enum image_mode mode, int batch, int threads, double seconds, long *iters,
                      double *elapsed)
{
    if (batch < 1 || batch > MAX_BATCH) {
        fprintf(stderr, "clipdex_bench: batch must be 1..%d\n", MAX_BATCH);
        exit(2);
    }
    clipdex_ctx *ctx = ctx_for(b, threads);
    int rc;
    if (!b->warm[mode][batch][threads]) {
        if ((rc = image_once(b, ctx, batch, threads, mode))) die("clipdex_pixels_embed", rc, ctx);
        b->warm[mode][batch][threads] = 1;
    }
    long n = 0;
    double t0 = now_s(), t;
    do {
        if ((rc = image_once(b, ctx, batch, threads, mode))) die("clipdex_pixels_embed", rc, ctx);
        n++;
        t = now_s();
    } while (t - t0 < seconds);
    *iters = n;
    *elapsed = t - t0;
}

static const struct text *find_text(const struct bench *b, const char *name, int *index)
{
    for (int i = 0; i < b->n_texts; i++)
        if (!strcmp(b->texts[i].name, name)) {
            *index = i;
            return &b->texts[i];
        }
    return NULL;
}

static void run_text(struct bench *b, const struct text *tx, int index, int threads, double seconds,
                     long *iters, double *elapsed)
{
    clipdex_ctx *ctx = ctx_for(b, threads);
    int rc;
    if (!b->warm[1][index][threads]) {
        if ((rc = text_once(b, ctx, tx))) die("clipdex_tokens_embed", rc, ctx);
        b->warm[1][index][threads] = 1;
    }
    long n = 0;
    double t0 = now_s(), t;
    do {
        if ((rc = text_once(b, ctx, tx))) die("clipdex_tokens_embed", rc, ctx);
        n++;
        t = now_s();
    } while (t - t0 < seconds);
    *iters = n;
    *elapsed = t - t0;
}

static long peak_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void add_text(struct bench *b, const char *spec)
{
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || (size_t)(eq - spec) >= sizeof b->texts[0].name || b->n_texts == MAX_TEXTS) {
        fprintf(stderr, "clipdex_bench: --text wants NAME=STRING (at most %d)\n", MAX_TEXTS);
        exit(2);
    }
    struct text *t = &b->texts[b->n_texts++];
    memcpy(t->name, spec, (size_t)(eq - spec));
    t->name[eq - spec] = 0;
    const clipdex_tokenizer *tok = clipdex_model_tokenizer(b->model);
    if (!tok) {
        fprintf(stderr, "clipdex_bench: the model has no tokenizer; texts cannot be benchmarked\n");
        exit(1);
    }
    size_t C = (size_t)b->info.context_length;
    t->ids = calloc(C, sizeof *t->ids);
    if (!t->ids) die("calloc", CLIPDEX_E_NOMEM, NULL);
    int rc = clipdex_text_tokenize(NULL, tok, eq + 1, strlen(eq + 1), t->ids, C, &t->n_tokens, NULL);
    if (rc) die("clipdex_text_tokenize", rc, NULL);
}

static void serve(struct bench *b)
{
    char line[512], kind[16], name[64];
    int batch, threads;
    double seconds;
    long iters;
    double elapsed;
    while (fgets(line, sizeof line, stdin)) {
        if (sscanf(line, "%15s %d %d %lf", kind, &batch, &threads, &seconds) == 4 &&
            (!strcmp(kind, "image") || !strcmp(kind, "pixels") || !strcmp(kind, "decode"))) {
            enum image_mode mode = kind[0] == 'i' ? MODE_IMAGE : kind[0] == 'p' ? MODE_PIXELS : MODE_DECODE;
            run_image(b, mode, batch, threads, seconds, &iters, &elapsed);
            printf("result %s %d %d %ld %.6f %.4f\n", kind, batch, threads, iters, elapsed,
                   mode == MODE_DECODE ? 0.0 : image_gflop(&b->info));
        } else if (sscanf(line, "text %63s %d %lf", name, &threads, &seconds) == 3) {
            int index;
            const struct text *t = find_text(b, name, &index);
            if (!t) {
                printf("error unknown text '%s'\n", name);
            } else {
                run_text(b, t, index, threads, seconds, &iters, &elapsed);
                printf("result text %s %d %ld %.6f %.4f\n", name, threads, iters, elapsed,
                       text_gflop(&b->info, t->n_tokens));
            }
        } else if (sscanf(line, "%15s", kind) == 1 && !strcmp(kind, "rss")) {
            printf("rss %ld\n", peak_rss_kb());
        } else if (sscanf(line, "%15s", kind) == 1 && !strcmp(kind, "quit")) {
            break;
        } else {
            printf("error bad command\n");
        }
        fflush(stdout);
    }
}

static void standalone(struct bench *b, double seconds)
{
    static const int batches[] = {1, 16}, thr[] = {1, 2};
    long iters;
    double elapsed;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            run_image(b, MODE_IMAGE, batches[i], thr[j], seconds, &iters, &elapsed);
            double per_s = (double)iters * batches[i] / elapsed;
            printf("image batch %-2d threads %d: %8.2f encodes/s  %7.1f GFLOP/s\n", batches[i], thr[j],
                   per_s, per_s * image_gflop(&b->info));
            fflush(stdout);
        }
    for (int i = 0; i < b->n_texts; i++)
        for (int j = 0; j < 2; j++) {
            run_text(b, &b->texts[i], i, thr[j], seconds, &iters, &elapsed);
            double per_s = (double)iters / elapsed;
            printf("text %-4s (%2zu tokens) threads %d: %8.2f encodes/s  %7.1f GFLOP/s\n", b->texts[i].name,
                   b->texts[i].n_tokens, thr[j], per_s, per_s * text_gflop(&b->info, b->texts[i].n_tokens));
            fflush(stdout);
        }
    printf("peak RSS %.1f MiB\n", peak_rss_kb() / 1024.0);
}

static int by_name(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Reads the first MAX_BATCH JPEG files of `dir` (sorted by name) into b->jpegs. */
static void load_jpegs(struct bench *b, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "clipdex_bench: cannot open '%s': %s\n", dir, strerror(errno));
        exit(1);
    }
    char *names[4096];
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 4096) {
        const char *dot = strrchr(de->d_name, '.');
        if (dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"))) names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, by_name);
    for (int i = 0; i < n; i++) {
        if (b->n_jpegs < MAX_BATCH) {
            struct jpeg *j = &b->jpegs[b->n_jpegs];
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            FILE *f = fopen(path, "rb");
            long len = -1;
            if (f && !fseek(f, 0, SEEK_END)) len = ftell(f);
            if (!f || len <= 0 || fseek(f, 0, SEEK_SET) || !(j->data = malloc((size_t)len)) ||
                fread(j->data, 1, (size_t)len, f) != (size_t)len) {
                fprintf(stderr, "clipdex_bench: cannot read '%s'\n", path);
                exit(1);
            }
            fclose(f);
            j->len = (size_t)len;
            snprintf(j->name, sizeof j->name, "%s", names[i]);
            b->jpeg_bytes += j->len;
            b->n_jpegs++;
        }
        free(names[i]);
    }
    if (!b->n_jpegs) {
        fprintf(stderr, "clipdex_bench: no *.jpg or *.jpeg file in '%s'\n", dir);
        exit(1);
    }
}

/* MAX_BATCH seeded 500 x 375 JPEGs (quality 90): smooth colour gradients
 * with noise, for machines without the sample photos. */
static void make_jpegs(struct bench *b)
{
    enum { W = 500, H = 375 };
    static unsigned char rgb[W * H * 3];
    uint64_t s = 0x2545f4914f6cdd1dull;
    for (int k = 0; k < MAX_BATCH; k++) {
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < 3; c++) {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    int v = (x * (c + 1) + y * (3 - c) + 40 * k) % 256 + (int)(s >> 60) - 8;
                    rgb[(y * W + x) * 3 + c] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
                }
        struct jpeg_compress_struct cinfo;
        struct jpeg_error_mgr jerr;
        unsigned char *mem = NULL;
        unsigned long len = 0;
        cinfo.err = jpeg_std_error(&jerr);
        jpeg_create_compress(&cinfo);
        jpeg_mem_dest(&cinfo, &mem, &len);
        cinfo.image_width = W;
        cinfo.image_height = H;
        cinfo.input_components = 3;
        cinfo.in_color_space = JCS_RGB;
        jpeg_set_defaults(&cinfo);
        jpeg_set_quality(&cinfo, 90, TRUE);
        jpeg_start_compress(&cinfo, TRUE);
        while (cinfo.next_scanline < H) {
            JSAMPROW row = rgb + (size_t)cinfo.next_scanline * W * 3;
            jpeg_write_scanlines(&cinfo, &row, 1);
        }
        jpeg_finish_compress(&cinfo);
        jpeg_destroy_compress(&cinfo);
        b->jpegs[k] = (struct jpeg){.data = mem, .len = len};
        snprintf(b->jpegs[k].name, sizeof b->jpegs[k].name, "synthetic-%d.jpg", k);
        b->jpeg_bytes += len;
    }
    b->n_jpegs = MAX_BATCH;
}

static void usage(void)
{
    fprintf(stderr, "usage: clipdex_bench [--serve] --model PATH [--jpeg DIR] [--text NAME=STRING]... [--seconds S]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *jpeg_dir = NULL;
    const char *texts[MAX_TEXTS];
    int n_texts = 0, serve_mode = 0;
    double seconds = 1.0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model_path = argv[++i];
        else if (!strcmp(argv[i], "--text") && i + 1 < argc && n_texts < MAX_TEXTS) texts[n_texts++] = argv[++i];
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--jpeg") && i + 1 < argc) jpeg_dir = argv[++i];
        else if (!strcmp(argv[i], "--serve")) serve_mode = 1;
        else usage();
    }
    if (!model_path) usage();

    static struct bench b;
    double t0 = now_s();
    int rc = clipdex_model_load(NULL, model_path, NULL, &b.model);
    if (rc) {
        fprintf(stderr, "clipdex_bench: cannot load '%s': %s\n", model_path, clipdex_status_str(rc));
        return 1;
    }
    clipdex_model_get_info(b.model, &b.info);
    double load_s = now_s() - t0;

    size_t S = (size_t)b.info.image_size, px = 3 * S * S;
    b.pixels = malloc(MAX_BATCH * px * sizeof *b.pixels);
    b.out = malloc(MAX_BATCH * (size_t)b.info.embed_dim * sizeof *b.out);
    if (!b.pixels || !b.out) die("malloc", CLIPDEX_E_NOMEM, NULL);
    uint64_t s = 0x9e3779b97f4a7c15ull; /* xorshift: normalized pixels in [-2, 2) */
    for (size_t i = 0; i < MAX_BATCH * px; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        b.pixels[i] = (float)((s >> 40) * (1.0 / 16777216.0) * 4.0 - 2.0);
    }
    if (jpeg_dir) load_jpegs(&b, jpeg_dir);
    else make_jpegs(&b);
    if (!n_texts) texts[n_texts++] = "t6=a photo of dogs";
    for (int i = 0; i < n_texts; i++) add_text(&b, texts[i]);

    clipdex_ctx *c1 = ctx_for(&b, 1);
    char feat[256];
    snprintf(feat, sizeof feat, "%s", clipdex_cpu_features());
    for (char *q = feat; *q; q++)
        if (*q == ' ') *q = ',';
    printf("ready clipdex %s dtype=%s load_s=%.3f image_gflop=%.4f isa=%s cpu=%s kernels='%s' jpegs=%d jpeg_kb=%.0f",
           clipdex_version(), b.info.dtype, load_s, image_gflop(&b.info), clipdex_ctx_isa(c1),
           feat[0] ? feat : "none", clipdex_ctx_kernels(c1), b.n_jpegs, b.jpeg_bytes / 1024.0 / b.n_jpegs);
    for (int i = 0; i < b.n_texts; i++)
        printf(" %s_tokens=%zu %s_gflop=%.4f", b.texts[i].name, b.texts[i].n_tokens, b.texts[i].name,
               text_gflop(&b.info, b.texts[i].n_tokens));
    printf("\n");
    fflush(stdout);

    if (serve_mode) serve(&b);
    else standalone(&b, seconds);

    for (int i = 0; i <= MAX_THREADS; i++) clipdex_ctx_free(b.ctx[i]);
    for (int i = 0; i < b.n_texts; i++) free(b.texts[i].ids);
    for (int i = 0; i < b.n_jpegs; i++) free(b.jpegs[i].data);
    free(b.pixels);
    free(b.out);
    clipdex_model_free(b.model);
    return 0;
}
