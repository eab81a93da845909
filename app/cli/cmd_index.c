/*
 * cmd_index.c - `clipdex index`: walks folders, embeds new and changed
 * images into the SQLite index and removes missing ones. A pool of decoder
 * threads (one clipdex_ctx each) reads, hashes, decodes and preprocesses
 * files while the main thread runs the image tower on full batches and
 * commits each batch in one transaction, so an interrupted run loses at most
 * the batch in flight. When decoders and inference threads outnumber the
 * CPUs the decoders run at idle priority, so they fill the image tower's
 * gaps instead of preempting its threads. Content hashes (SHA-256) let renamed, moved and
 * duplicate files reuse their vector. Videos (by extension) are sampled
 * after the images, one at a time, each in its own transaction
 * (app/video/vindex.c). With --detector person, the photos whose content
 * no detector has looked at are then read again one by one for their
 * people (person/pfind.c), committed in transactions of PERSONS_TXN photos,
 * and each video sample gets its people as it is sampled.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cmd_detect.h"
#include "cli/cmd_store.h"
#include "person/pfind.h"
#include "person/pstore.h"
#include "util/sha256.h"
#include "store/store.h"
#include "store/vecindex.h"
#include "store/shard.h"
#include "store/walk.h"
#include "util/hmap.h"
#include "util/json.h"
#include "video/vindex.h"

#define INDEX_BATCH_DEFAULT 16
#define CLI_INTERRUPTED 130 /* 128 + SIGINT, as shells report it */
#define INDEX_BATCH_MAX 1024
#define INDEX_MAX_OPS 512 /* file rows per transaction at most */
#define PERSONS_TXN 16    /* photos per transaction of the person pass */
#ifndef INDEX_MAX_FILE_BYTES
#define INDEX_MAX_FILE_BYTES (256ull << 20) /* larger files are refused as too large */
#endif

const char usage_index[] =
    "Usage: clipdex index [--model DIR] [--db FILE] [OPTIONS] PATH...\n"
    "\n"
    "Adds the images and videos under each PATH (folders are walked\n"
    "recursively) to the index database. A video is sampled every 2 s of its\n"
    "timestamps and at scene changes; each sample is embedded and stored with\n"
    "its time and a thumbnail. Unchanged files (same path, size and mtime) are not read\n"
    "again, changed ones are embedded again, files that are gone from the\n"
    "walked folders are removed, and a renamed, moved or duplicated file is\n"
    "recognised by its content hash and not embedded again. A file that cannot\n"
    "be read or decoded is reported and counted; the exit code is then 1.\n"
    "\n"
    "Options:\n"
    "  --model DIR|NAME model directory or name (default: $CLIPDEX_MODEL, then ViT-B-32)\n"
    "  --download       fetch a model NAME that is not downloaded yet\n"
    "  --db FILE        index database (default: $CLIPDEX_DB, then ./clipdex.db)\n"
    "  --batch N        images per inference batch and transaction, 1..1024 (default 16)\n"
    "  --threads N      inference threads, 0 = all CPUs (default 0)\n"
    "  --decoders N     decoding threads, 0 = all CPUs (default 0); when they and\n"
    "                   the inference threads outnumber the CPUs, they run at\n"
    "                   idle priority (SCHED_IDLE) behind the image tower\n"
    "  --no-exif        ignore the EXIF orientation tag\n"
    "  --video-every S  seconds between video samples, 0.05..3600 (default 2)\n"
    "  --scene T        also sample where the scene score reaches T, 0..1;\n"
    "                   1 = scene changes off (default 0.3)\n"
    "  --detector person  also find the people in each photo and video sample\n"
    "                   and embed each one's crop (padded to a square), so that\n"
    "                   `search --persons` finds a person and its box; photos\n"
    "                   indexed before are looked at once, without embedding\n"
    "                   them again\n"
    "  --detector-model DIR  the detector (default: $CLIPDEX_DETECTOR; sh\n"
    "                   tools/get_detector.sh DIR installs NanoDet)\n"
    "  --max-persons N  people kept per photo or sample, best first, 1..128 (default 16)\n"
    "  --redetect       forget the people another detector (or other settings)\n"
    "                   found and look again\n"
    "  --shard I/N      index only shard I of N (0 <= I < N): the files whose\n"
    "                   path relative to its PATH hashes to I; removals too only\n"
    "                   touch that share (`clipdex merge` joins the shards)\n"
    "  --shard auto     I and N from SLURM_ARRAY_TASK_ID/_COUNT (or _MIN/_MAX),\n"
    "                   else JOB_COMPLETION_INDEX and --shard-count\n"
    "  --shard-count N  the count for JOB_COMPLETION_INDEX (default: $CLIPDEX_SHARD_COUNT)\n"
    "  --json           print the summary as one JSON object\n"
    "  -q, --quiet      no progress and no text summary\n"
    "  -h, --help       print this text\n";

typedef struct index_opts {
    const char *model, *db;
    long batch, threads, decoders;
    double video_every, scene;
    int no_exif, json, quiet, download;
    char **paths;
    size_t n_paths;
    const char *shard_arg;
    long shard_count;
    shard_spec shard; /* count 0: every file */
    const char *detector, *detector_model;
    long max_persons;
    int redetect;
} index_opts;

enum { RES_PIXELS, RES_KNOWN, RES_FAILED };

typedef struct result {
    size_t work;                    /* index into the work list */
    int kind;
    unsigned char hash[SHA256_LEN];
    float *pixels;                  /* RES_PIXELS: [3, S, S] */
    char *err;                      /* RES_FAILED */
} result;

/* One work item: a walked file that is new or changed. */
typedef struct work_item {
    const walk_entry *e;
    int had_row; /* the path was in the index before */
} work_item;

typedef struct pipeline {
    pthread_mutex_t mu;
    pthread_cond_t not_full, not_empty;
    const work_item *work;
    size_t n_work, next;
    result *q;               /* ring buffer */
    size_t q_cap, q_head, q_n;
    int producers_left;
    int stop;
    int low_priority;        /* decoders yield the CPU to the image tower */
    hmap *known;             /* content hashes with a vector (guarded by mu) */
    const clipdex_model *model;
    clipdex_model_info info;
    clipdex_image_params ip;
} pipeline;

/* Set by SIGINT/SIGTERM: the run stops taking files, commits the batch it
 * has gathered, brings the matrix in step and prints the summary. */
static volatile sig_atomic_t index_interrupted;

static void on_signal(int sig)
{
    (void)sig;
    index_interrupted = 1;
}

static char *fmt_err(const char *path, const char *what)
{
    size_t n = strlen(path) + strlen(what) + 16;
    char *s = malloc(n);
    if (!s) return cli_strdup("out of memory");
    snprintf(s, n, "'%s': %s", path, what);
    return s;
}

/* Reads a whole file (at most INDEX_MAX_FILE_BYTES). */
static int read_file(const char *path, unsigned char **out, size_t *len, char **err)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *err = fmt_err(path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            *err = fmt_err(path, "out of memory");
            break;
        }
        if (n == cap) {
            if (cap >= INDEX_MAX_FILE_BYTES) {
                *err = fmt_err(path, "file too large");
                break;
            }
            cap *= 2;
            unsigned char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                buf = NULL;
                continue;
            }
            buf = nb;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            *err = fmt_err(path, strerror(errno));
            break;
        }
        if (r == 0) {
            close(fd);
            *out = buf;
            *len = n;
            return 0;
        }
        n += (size_t)r;
    }
    free(buf);
    close(fd);
    return -1;
}

/* Decodes one work item into *r (everything but r->work). */
static void process_item(pipeline *p, clipdex_ctx *ctx, const work_item *w, result *r)
{
    unsigned char *data = NULL;
    size_t len = 0;
    r->pixels = NULL;
    r->err = NULL;
    r->kind = RES_FAILED;
    if (read_file(w->e->path, &data, &len, &r->err)) return;
    if (len == 0) {
        free(data);
        r->err = fmt_err(w->e->path, "empty file");
        return;
    }
    sha256(data, len, r->hash);
    pthread_mutex_lock(&p->mu);
    int known = hmap_get(p->known, r->hash, SHA256_LEN, NULL);
    pthread_mutex_unlock(&p->mu);
    if (known) {
        free(data);
        r->kind = RES_KNOWN;
        return;
    }
    clipdex_image *img = NULL;
    int st = clipdex_image_decode(ctx, data, len, &p->ip, &img);
    free(data);
    size_t S = (size_t)p->info.image_size, n = 3 * S * S;
    if (st == CLIPDEX_OK) {
        r->pixels = malloc(n * sizeof *r->pixels);
        if (!r->pixels) {
            clipdex_image_free(img);
            r->err = fmt_err(w->e->path, "out of memory");
            return;
        }
        st = clipdex_image_preprocess(ctx, img, (int)S, p->info.mean, p->info.std, r->pixels, n);
        clipdex_image_free(img);
    }
    if (st != CLIPDEX_OK) {
        char *m = cli_errdup(ctx, st);
        r->err = fmt_err(w->e->path, m);
        cli_msg_free(m);
        free(r->pixels);
        r->pixels = NULL;
        return;
    }
    r->kind = RES_PIXELS;
}

/* Lowers the calling thread only (Linux schedules threads one by one):
 * SCHED_IDLE, or nice 19 where that is refused. */
static void decoder_lower_priority(void)
{
#ifdef SCHED_IDLE
    struct sched_param sp;
    memset(&sp, 0, sizeof sp);
    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) == 0) return;
#endif
#ifdef SYS_gettid
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
#endif
}

static void *decoder_main(void *arg)
{
    pipeline *p = arg;
    if (p->low_priority) decoder_lower_priority();
    clipdex_ctx_params cp = clipdex_ctx_params_default();
    cp.n_threads = 1;
    clipdex_ctx *ctx = NULL;
    clipdex_ctx_new(&ctx, &cp); /* NULL is allowed: messages are then generic */
    for (;;) {
        pthread_mutex_lock(&p->mu);
        size_t i = p->next < p->n_work && !p->stop ? p->next++ : (size_t)-1;
        pthread_mutex_unlock(&p->mu);
        if (i == (size_t)-1) break;
        result r;
        r.work = i;
        process_item(p, ctx, &p->work[i], &r);
        pthread_mutex_lock(&p->mu);
        while (p->q_n == p->q_cap && !p->stop) pthread_cond_wait(&p->not_full, &p->mu);
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            free(r.pixels);
            cli_msg_free(r.err);
            break;
        }
        p->q[(p->q_head + p->q_n++) % p->q_cap] = r;
        pthread_cond_signal(&p->not_empty);
        pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_lock(&p->mu);
    p->producers_left--;
    pthread_cond_broadcast(&p->not_empty);
    pthread_mutex_unlock(&p->mu);
    clipdex_ctx_free(ctx);
    return NULL;
}

/* Pops a result; returns 0 when every producer is done and the queue empty. */
static int pipeline_pop(pipeline *p, result *r)
{
    pthread_mutex_lock(&p->mu);
    while (p->q_n == 0 && p->producers_left > 0) pthread_cond_wait(&p->not_empty, &p->mu);
    if (p->q_n == 0) {
        pthread_mutex_unlock(&p->mu);
        return 0;
    }
    *r = p->q[p->q_head];
    p->q_head = (p->q_head + 1) % p->q_cap;
    p->q_n--;
    pthread_cond_signal(&p->not_full);
    pthread_mutex_unlock(&p->mu);
    return 1;
}

/* ---- counters and progress ------------------------------------------- */

typedef struct index_stats {
    size_t added, updated, unchanged, removed, failed, skipped, embedded, reused;
    size_t videos, frames; /* videos sampled in this run, samples embedded */
    size_t person_photos, persons; /* photos looked at by the detector, people stored */
    double t0;
} index_stats;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct progress {
    int mode; /* 0 none, 1 terminal, 2 plain lines */
    double last, t0;
    size_t total;
} progress;

static void progress_show(progress *pr, size_t done, int final)
{
    if (pr->mode == 0 || pr->total == 0) return;
    double t = now_s();
    double every = pr->mode == 1 ? 0.1 : 5.0;
    if (!final && t - pr->last < every) return;
    pr->last = t;
    double el = t - pr->t0, rate = el > 0 ? (double)done / el : 0;
    double eta = rate > 0 ? (double)(pr->total - done) / rate : 0;
    int pct = (int)(100.0 * (double)done / (double)pr->total);
    if (pr->mode == 1) {
        char bar[31];
        int fill = pct * 30 / 100;
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
        bar[30] = '\0';
        fprintf(stderr, "\r[%s] %zu/%zu %3d%% %.1f img/s ETA %d:%02d ", bar, done, pr->total, pct,
                rate, (int)eta / 60, (int)eta % 60);
        if (final) fputc('\n', stderr);
    } else {
        fprintf(stderr, "clipdex index: %zu/%zu files (%d%%), %.1f img/s, ETA %.0f s\n", done,
                pr->total, pct, rate, eta);
    }
    fflush(stderr);
}

/* ---- the database side -------------------------------------------------- */

typedef struct db_files {
    int64_t *id;
    char **path;
    size_t *len;
    int64_t *size, *mtime;
    unsigned char *seen;
    size_t n;
    hmap by_path;
} db_files;

static void db_files_free(db_files *f)
{
    for (size_t i = 0; i < f->n; i++) free(f->path[i]);
    free(f->id);
    free(f->path);
    free(f->len);
    free(f->size);
    free(f->mtime);
    free(f->seen);
    hmap_free(&f->by_path);
}

static int db_files_load(store *s, db_files *f)
{
    memset(f, 0, sizeof *f);
    hmap_init(&f->by_path);
    sqlite3_stmt *st = store_prepare(s, "SELECT count(*) FROM files");
    if (!st) return -1;
    size_t n = sqlite3_step(st) == SQLITE_ROW ? (size_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    size_t c = n ? n : 1;
    f->id = malloc(c * sizeof *f->id);
    f->path = calloc(c, sizeof *f->path);
    f->len = malloc(c * sizeof *f->len);
    f->size = malloc(c * sizeof *f->size);
    f->mtime = malloc(c * sizeof *f->mtime);
    f->seen = calloc(c, 1);
    if (!f->id || !f->path || !f->len || !f->size || !f->mtime || !f->seen) goto nomem;
    st = store_prepare(s, "SELECT id, path, size, mtime_ns FROM files");
    if (!st) return -1;
    while (f->n < n && sqlite3_step(st) == SQLITE_ROW) {
        size_t i = f->n, len = (size_t)sqlite3_column_bytes(st, 1);
        const void *p = sqlite3_column_blob(st, 1);
        f->path[i] = malloc(len + 1);
        if (!f->path[i]) break;
        if (len) memcpy(f->path[i], p, len);
        f->path[i][len] = '\0';
        f->len[i] = len;
        f->id[i] = sqlite3_column_int64(st, 0);
        f->size[i] = sqlite3_column_int64(st, 2);
        f->mtime[i] = sqlite3_column_int64(st, 3);
        f->n++;
        if (hmap_put(&f->by_path, f->path[i], len, i)) break;
    }
    sqlite3_finalize(st);
    if (f->n < n) goto nomem;
    return 0;
nomem:
    cli_error("out of memory");
    return -1;
}

/* Loads the content hashes that have a vector into `known`, keys in *buf
 * (room for `extra` more hashes added during the run). */
static int known_load(store *s, hmap *known, unsigned char **buf, size_t extra, size_t *n_out)
{
    sqlite3_stmt *st = store_prepare(s, "SELECT count(*) FROM images");
    if (!st) return -1;
    size_t n = sqlite3_step(st) == SQLITE_ROW ? (size_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    *buf = malloc((n + extra + 1) * SHA256_LEN);
    if (!*buf) {
        cli_error("out of memory");
        return -1;
    }
    st = store_prepare(s, "SELECT hash FROM images");
    if (!st) return -1;
    size_t k = 0;
    while (k < n && sqlite3_step(st) == SQLITE_ROW) {
        if (sqlite3_column_bytes(st, 0) != SHA256_LEN) continue;
        unsigned char *h = *buf + k * SHA256_LEN;
        memcpy(h, sqlite3_column_blob(st, 0), SHA256_LEN);
        if (hmap_put(known, h, SHA256_LEN, 1)) {
            sqlite3_finalize(st);
            cli_error("out of memory");
            return -1;
        }
        k++;
    }
    sqlite3_finalize(st);
    *n_out = k;
    return 0;
}

/* The statements of one batch transaction. */
typedef struct batch_sql {
    sqlite3_stmt *ins_image, *upsert_file, *del_file;
} batch_sql;

static int step_reset(store *s, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) {
        store_error(s, "cannot write to");
        return -1;
    }
    return 0;
}

/* A pending database operation of the current batch. */
typedef struct pending {
    size_t work;
    int kind;                       /* RES_PIXELS (embedded), RES_KNOWN, RES_FAILED */
    unsigned char hash[SHA256_LEN];
    const float *emb;               /* RES_PIXELS: the vector */
} pending;

static int batch_commit(store *s, batch_sql *b, const work_item *work, const pending *pd, size_t n,
                        size_t dim)
{
    if (n == 0) return 0;
    if (store_exec(s, "BEGIN IMMEDIATE")) return -1;
    int64_t t = (int64_t)time(NULL);
    for (size_t i = 0; i < n; i++) {
        if (pd[i].kind != RES_PIXELS || !pd[i].emb) continue;
        sqlite3_bind_blob(b->ins_image, 1, pd[i].hash, SHA256_LEN, SQLITE_STATIC);
        sqlite3_bind_blob(b->ins_image, 2, pd[i].emb, (int)(dim * sizeof(float)), SQLITE_STATIC);
        if (step_reset(s, b->ins_image)) goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        const walk_entry *e = work[pd[i].work].e;
        if (pd[i].kind == RES_FAILED || (pd[i].kind == RES_PIXELS && !pd[i].emb)) {
            if (!work[pd[i].work].had_row) continue;
            sqlite3_bind_blob(b->del_file, 1, e->path, (int)e->len, SQLITE_STATIC);
            if (step_reset(s, b->del_file)) goto fail;
            continue;
        }
        sqlite3_bind_blob(b->upsert_file, 1, e->path, (int)e->len, SQLITE_STATIC);
        sqlite3_bind_int64(b->upsert_file, 2, (sqlite3_int64)e->size);
        sqlite3_bind_int64(b->upsert_file, 3, e->mtime_ns);
        sqlite3_bind_blob(b->upsert_file, 4, pd[i].hash, SHA256_LEN, SQLITE_STATIC);
        sqlite3_bind_int64(b->upsert_file, 5, t);
        if (step_reset(s, b->upsert_file)) goto fail;
    }
    if (store_bump_generation(s) || store_exec(s, "COMMIT")) goto fail;
    return 0;
fail:
    store_exec(s, "ROLLBACK");
    return -1;
}

/* ---- the run ------------------------------------------------------------- */

typedef struct runner {
    const index_opts *o;
    store *s;
    clipdex_ctx *ctx;
    clipdex_model *model;
    clipdex_model_info info;
    size_t dim, px;          /* embed_dim, floats per image */
    walk_result wr;
    db_files dbf;
    hmap known;
    unsigned char *known_buf;
    size_t n_known;
    work_item *work;
    size_t n_work;
    work_item *vwork;        /* videos: sampled after the images */
    size_t n_vwork;
    index_stats stats;
    progress pr;
    clipdex_detector *det;   /* --detector person */
    pfind pf;
    hmap redo_videos;        /* unchanged videos with samples no detector saw (by path) */
} runner;

/* Embeds the batch's n pixel images; on failure retries them one by one. */
static void embed_batch(runner *R, float *pixels, float *emb, pending *pd, size_t *slot, size_t n)
{
    if (n == 0) return;
    int st = clipdex_pixels_embed(R->ctx, R->model, pixels, n, emb, n * R->dim, 0);
    for (size_t k = 0; k < n; k++) {
        pending *p = &pd[slot[k]];
        if (st != CLIPDEX_OK) {
            int st1 = clipdex_pixels_embed(R->ctx, R->model, pixels + k * R->px, 1,
                                           emb + k * R->dim, R->dim, 0);
            if (st1 != CLIPDEX_OK) {
                char *m = cli_errdup(R->ctx, st1);
                cli_error("cannot embed '%s': %s", R->work[p->work].e->path, m);
                cli_msg_free(m);
                R->stats.failed++;
                continue;
            }
        }
        p->emb = emb + k * R->dim;
        R->stats.embedded++;
    }
}

static void count_done(runner *R, const pending *pd, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (pd[i].kind == RES_FAILED || (pd[i].kind == RES_PIXELS && !pd[i].emb)) continue;
        if (R->work[pd[i].work].had_row)
            R->stats.updated++;
        else
            R->stats.added++;
        if (pd[i].kind == RES_KNOWN) R->stats.reused++;
    }
}

static int run_pipeline(runner *R)
{
    const index_opts *o = R->o;
    size_t batch = (size_t)o->batch;
    int n_dec = (int)o->decoders;
    if (n_dec <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n_dec = c > 0 ? (int)c : 1;
    }
    if ((size_t)n_dec > R->n_work) n_dec = (int)R->n_work;
    if (n_dec < 1) n_dec = 1;
    long n_cpu = sysconf(_SC_NPROCESSORS_ONLN);
    long n_enc = o->threads > 0 ? o->threads : n_cpu;
    pipeline p;
    memset(&p, 0, sizeof p);
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.not_full, NULL);
    pthread_cond_init(&p.not_empty, NULL);
    p.work = R->work;
    p.n_work = R->n_work;
    /* room for the next batch while one is embedded */
    p.q_cap = 2 * batch + 2 * (size_t)n_dec;
    p.low_priority = n_cpu > 0 && n_dec + n_enc > n_cpu;
    const char *prio = getenv("CLIPDEX_INDEX_DECODER_PRIORITY"); /* benchmarks: "normal" */
    if (prio && strcmp(prio, "normal") == 0) p.low_priority = 0;
    p.known = &R->known;
    p.model = R->model;
    p.info = R->info;
    p.ip = clipdex_image_params_default();
    p.ip.ignore_exif_orientation = o->no_exif;
    p.q = calloc(p.q_cap, sizeof *p.q);
    float *pixels = malloc(batch * R->px * sizeof *pixels);
    float *emb = malloc(batch * R->dim * sizeof *emb);
    size_t pd_cap = INDEX_MAX_OPS + batch;
    pending *pd = calloc(pd_cap, sizeof *pd);
    size_t *slot = calloc(batch, sizeof *slot);
    batch_sql b = {0};
    b.ins_image = store_prepare(R->s, "INSERT OR IGNORE INTO images(hash, embedding) VALUES(?, ?)");
    b.upsert_file = store_prepare(
        R->s, "INSERT INTO files(path, size, mtime_ns, hash, indexed_at) VALUES(?, ?, ?, ?, ?) "
              "ON CONFLICT(path) DO UPDATE SET size=excluded.size, mtime_ns=excluded.mtime_ns, "
              "hash=excluded.hash, indexed_at=excluded.indexed_at");
    b.del_file = store_prepare(R->s, "DELETE FROM files WHERE path = ?");
    int rc = 0;
    pthread_t *tid = calloc((size_t)n_dec, sizeof *tid);
    if (!p.q || !pixels || !emb || !pd || !slot || !tid) {
        cli_error("out of memory");
        rc = APP_FAIL;
    }
    if (!b.ins_image || !b.upsert_file || !b.del_file) rc = APP_FAIL;
    int started = 0;
    for (int t = 0; !rc && t < n_dec; t++) {
        p.producers_left++;
        if (pthread_create(&tid[t], NULL, decoder_main, &p) != 0) {
            p.producers_left--;
            break;
        }
        started++;
    }
    if (!rc && started == 0) {
        cli_error("cannot start a decoding thread");
        rc = APP_FAIL;
    }
    size_t n_pd = 0, n_px = 0, done = 0;
    result r;
    int more = 1;
    while (!rc && more) {
        if (index_interrupted && !p.stop) { /* take no more files; drop what is decoded */
            pthread_mutex_lock(&p.mu);
            p.stop = 1;
            pthread_cond_broadcast(&p.not_full);
            pthread_mutex_unlock(&p.mu);
            result x;
            while (pipeline_pop(&p, &x)) {
                free(x.pixels);
                cli_msg_free(x.err);
            }
        }
        more = p.stop ? 0 : pipeline_pop(&p, &r);
        if (more) {
            done++;
            pending *q = &pd[n_pd];
            q->work = r.work;
            q->kind = r.kind;
            q->emb = NULL;
            memcpy(q->hash, r.hash, SHA256_LEN);
            if (r.kind == RES_FAILED) {
                fprintf(stderr, "%sclipdex: cannot index %s\n", R->pr.mode == 1 ? "\n" : "", r.err);
                cli_msg_free(r.err);
                R->stats.failed++;
            } else if (r.kind == RES_PIXELS) {
                pthread_mutex_lock(&p.mu);
                int known = hmap_get(&R->known, r.hash, SHA256_LEN, NULL);
                if (!known) {
                    /* a duplicate later in this run reuses this vector */
                    unsigned char *h = R->known_buf + R->n_known * SHA256_LEN;
                    memcpy(h, r.hash, SHA256_LEN);
                    if (hmap_put(&R->known, h, SHA256_LEN, 1) == 0) R->n_known++;
                }
                pthread_mutex_unlock(&p.mu);
                if (known) {
                    q->kind = RES_KNOWN;
                } else {
                    memcpy(pixels + n_px * R->px, r.pixels, R->px * sizeof *pixels);
                    slot[n_px++] = n_pd;
                }
                free(r.pixels);
            }
            n_pd++;
        }
        if (n_px == batch || n_pd >= INDEX_MAX_OPS || (!more && n_pd > 0)) {
            embed_batch(R, pixels, emb, pd, slot, n_px);
            if (batch_commit(R->s, &b, R->work, pd, n_pd, R->dim)) {
                rc = APP_FAIL;
            } else {
                count_done(R, pd, n_pd);
            }
            n_pd = n_px = 0;
        }
        progress_show(&R->pr, done, 0);
    }
    if (rc) { /* stop the decoders */
        pthread_mutex_lock(&p.mu);
        p.stop = 1;
        pthread_cond_broadcast(&p.not_full);
        pthread_mutex_unlock(&p.mu);
        while (pipeline_pop(&p, &r)) {
            free(r.pixels);
            cli_msg_free(r.err);
        }
    }
    for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
    progress_show(&R->pr, done, 1);
    sqlite3_finalize(b.ins_image);
    sqlite3_finalize(b.upsert_file);
    sqlite3_finalize(b.del_file);
    pthread_mutex_destroy(&p.mu);
    pthread_cond_destroy(&p.not_full);
    pthread_cond_destroy(&p.not_empty);
    free(tid);
    free(p.q);
    free(pixels);
    free(emb);
    free(pd);
    free(slot);
    return rc;
}

/* ---- the person pass ------------------------------------------------------ */

/* A photo whose content no detector has looked at yet. */
typedef struct ptodo {
    const walk_entry *e;
    unsigned char hash[SHA256_LEN];
} ptodo;

/* The walked photos (of this run's roots and shard) whose content has
 * images.persons NULL, one path per content. */
static int persons_todo(runner *R, ptodo **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    hmap walked, hashes;
    hmap_init(&walked);
    hmap_init(&hashes);
    ptodo *v = NULL;
    size_t n = 0, cap = 0;
    int rc = -1;
    for (size_t i = 0; i < R->wr.n; i++)
        if (!walk_is_video_name(R->wr.v[i].path) && hmap_put(&walked, R->wr.v[i].path, R->wr.v[i].len, i))
            goto nomem;
    sqlite3_stmt *st = store_prepare(R->s, "SELECT f.path, f.hash FROM files f JOIN images i ON "
                                           "i.hash = f.hash WHERE i.persons IS NULL ORDER BY f.id");
    if (!st) goto done;
    while (sqlite3_step(st) == SQLITE_ROW) {
        size_t w;
        const void *path = sqlite3_column_blob(st, 0);
        if (!path || sqlite3_column_bytes(st, 1) != SHA256_LEN ||
            !hmap_get(&walked, path, (size_t)sqlite3_column_bytes(st, 0), &w))
            continue;
        if (n == cap) {
            ptodo *nv = realloc(v, (cap = cap ? 2 * cap : 256) * sizeof *v);
            if (!nv) {
                sqlite3_finalize(st);
                goto nomem;
            }
            v = nv;
        }
        v[n].e = &R->wr.v[w];
        memcpy(v[n].hash, sqlite3_column_blob(st, 1), SHA256_LEN);
        n++;
    }
    sqlite3_finalize(st);
    /* one path per content: the first (keys stay put: v no longer grows) */
    size_t kept = 0;
    char *dup = calloc(n ? n : 1, 1);
    if (!dup) goto nomem;
    for (size_t i = 0; i < n; i++) {
        if (hmap_get(&hashes, v[i].hash, SHA256_LEN, NULL)) dup[i] = 1;
        else if (hmap_put(&hashes, v[i].hash, SHA256_LEN, i)) {
            free(dup);
            goto nomem;
        }
    }
    hmap_free(&hashes);
    hmap_init(&hashes);
    for (size_t i = 0; i < n; i++)
        if (!dup[i]) v[kept++] = v[i];
    free(dup);
    *out = v;
    *n_out = kept;
    v = NULL;
    rc = 0;
    goto done;
nomem:
    cli_error("out of memory");
done:
    free(v);
    hmap_free(&walked);
    hmap_free(&hashes);
    return rc;
}

/* Reads, checks and decodes one photo and finds its people: 0, or -1
 * (reported and counted as failed). */
static int persons_of(runner *R, const ptodo *t, pfind_result *r)
{
    unsigned char *data = NULL, hash[SHA256_LEN];
    size_t len = 0;
    char *err = NULL;
    clipdex_image *img = NULL;
    int st = CLIPDEX_OK;
    if (read_file(t->e->path, &data, &len, &err) == 0) {
        sha256(data, len, hash);
        if (memcmp(hash, t->hash, SHA256_LEN) != 0) {
            err = fmt_err(t->e->path, "changed while indexing (it is looked at again next run)");
        } else {
            clipdex_image_params ip = clipdex_image_params_default();
            ip.ignore_exif_orientation = R->o->no_exif;
            st = clipdex_image_decode(R->ctx, data, len, &ip, &img);
            if (st == CLIPDEX_OK) st = pfind_run(&R->pf, R->ctx, img, r);
            if (st != CLIPDEX_OK) {
                char *m = cli_errdup(R->ctx, st);
                err = fmt_err(t->e->path, m);
                cli_msg_free(m);
            }
        }
    }
    free(data);
    clipdex_image_free(img);
    if (!err) return 0;
    fprintf(stderr, "%sclipdex: cannot look for people in %s\n", R->pr.mode == 1 ? "\n" : "", err);
    cli_msg_free(err);
    R->stats.failed++;
    return -1;
}

/* Stores the people of n photos (ok[i] set) in one transaction. */
static int persons_commit(runner *R, sqlite3_stmt *ins, sqlite3_stmt *set, const ptodo *t,
                          const pfind_result *r, const int *ok, size_t n)
{
    if (store_exec(R->s, "BEGIN IMMEDIATE")) return -1;
    for (size_t i = 0; i < n; i++) {
        if (!ok[i]) continue;
        if (pstore_insert(R->s, ins, t[i].hash, 0, &r[i], R->dim)) goto fail;
        sqlite3_bind_int64(set, 1, (sqlite3_int64)r[i].n);
        sqlite3_bind_blob(set, 2, t[i].hash, SHA256_LEN, SQLITE_STATIC);
        if (step_reset(R->s, set)) goto fail;
    }
    if (store_bump_generation(R->s) || store_exec(R->s, "COMMIT")) goto fail;
    for (size_t i = 0; i < n; i++)
        if (ok[i]) {
            R->stats.person_photos++;
            R->stats.persons += r[i].n;
        }
    return 0;
fail:
    store_exec(R->s, "ROLLBACK");
    return -1;
}

/* Looks for the people of every walked photo that has not been looked at
 * (new ones and those indexed without --detector). */
static int run_persons(runner *R)
{
    ptodo *todo = NULL;
    size_t n = 0;
    if (persons_todo(R, &todo, &n)) return APP_FAIL;
    sqlite3_stmt *ins = store_prepare(R->s, pstore_insert_sql);
    sqlite3_stmt *set = store_prepare(R->s, "UPDATE images SET persons = ? WHERE hash = ?");
    int rc = ins && set ? 0 : APP_FAIL;
    progress pr = R->pr;
    pr.t0 = pr.last = now_s();
    pr.total = n;
    if (n && pr.mode) fprintf(stderr, "clipdex index: looking for people in %zu photos\n", n);
    pfind_result r[PERSONS_TXN];
    int ok[PERSONS_TXN];
    for (size_t i = 0; !rc && i < n && !index_interrupted; i += PERSONS_TXN) {
        size_t m = n - i < PERSONS_TXN ? n - i : PERSONS_TXN;
        for (size_t k = 0; k < m; k++) {
            ok[k] = persons_of(R, &todo[i + k], &r[k]) == 0;
            progress_show(&pr, i + k + 1, 0);
        }
        if (persons_commit(R, ins, set, todo + i, r, ok, m)) rc = APP_FAIL;
        for (size_t k = 0; k < m; k++)
            if (ok[k]) pfind_result_free(&r[k]);
    }
    if (n) progress_show(&pr, n, 1);
    sqlite3_finalize(ins);
    sqlite3_finalize(set);
    free(todo);
    return rc;
}

/* Loads the paths of the videos that have samples no detector looked at. */
static int redo_videos_load(runner *R)
{
    sqlite3_stmt *st = store_prepare(R->s, "SELECT path FROM files WHERE id IN "
                                           "(SELECT file_id FROM frames WHERE persons IS NULL)");
    if (!st) return -1;
    int rc = 0;
    size_t i;
    while (!rc && sqlite3_step(st) == SQLITE_ROW)
        if (hmap_get(&R->dbf.by_path, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), &i))
            rc = hmap_put(&R->redo_videos, R->dbf.path[i], R->dbf.len[i], i); /* keys: dbf's */
    sqlite3_finalize(st);
    if (rc) cli_error("out of memory");
    return rc;
}

/* Loads the detector and checks it against the one the database records. */
static int persons_setup(runner *R)
{
    const index_opts *o = R->o;
    if (clipdex_detector_load(R->ctx, o->detector_model, &R->det)) {
        cli_error("%s", clipdex_ctx_errmsg(R->ctx));
        return APP_MODEL;
    }
    if (pfind_init(&R->pf, R->det, R->model, 0.35f, (int)o->max_persons)) {
        cli_error("the detector '%s' has no \"person\" class", o->detector_model);
        return APP_MODEL;
    }
    char id[512], err[512];
    if (pfind_identity(o->detector_model, &R->pf, id, sizeof id, err, sizeof err)) {
        cli_error("%s", err);
        return APP_MODEL;
    }
    if (pstore_check_detector(R->s, id, o->redetect)) return APP_FAIL;
    return redo_videos_load(R) ? APP_FAIL : 0;
}

/* Samples the new and changed videos, one transaction each; a video that
 * fails is reported and counted, and the run goes on. */
static int run_videos(runner *R)
{
    vindex_opts vo = {R->o->video_every, R->o->scene >= 1.0 ? 2.0 : R->o->scene, 0,
                      &index_interrupted, R->det ? &R->pf : NULL, &R->stats.persons};
    size_t done = R->n_work;
    for (size_t i = 0; i < R->n_vwork && !index_interrupted; i++) {
        const walk_entry *e = R->vwork[i].e;
        vindex_video v = {e->path, e->len, e->size, e->mtime_ns};
        char err[1024];
        size_t n = 0;
        int rc = vindex_add(R->s, R->ctx, R->model, &v, &vo, &n, err, sizeof err);
        if (rc < 0) {
            fprintf(stderr, "%sclipdex: cannot index %s\n", R->pr.mode == 1 ? "\n" : "", err);
            R->stats.failed++;
        } else if (rc == 0) {
            R->stats.videos++;
            R->stats.frames += n;
            if (R->vwork[i].had_row)
                R->stats.updated++;
            else
                R->stats.added++;
        }
        progress_show(&R->pr, ++done, 0);
    }
    progress_show(&R->pr, done, 1);
    return 0;
}

/* Row i of the database is a file of this shard under the walked roots that
 * the walk did not see (a folder that could not be listed keeps its rows). */
static int is_gone(const runner *R, size_t i)
{
    const char *p = R->dbf.path[i];
    size_t len = R->dbf.len[i];
    return !R->dbf.seen[i] && walk_under_roots(&R->wr, p, len) &&
           !walk_under_unreadable(&R->wr, p, len) && shard_mine(&R->o->shard, &R->wr, p, len);
}

/* Deletes indexed files under the walked roots that the walk did not see,
 * and vectors no file uses any more. */
static int remove_missing(runner *R)
{
    size_t n_del = 0;
    for (size_t i = 0; i < R->dbf.n; i++)
        if (is_gone(R, i)) n_del++;
    if (store_exec(R->s, "BEGIN IMMEDIATE")) return APP_FAIL;
    sqlite3_stmt *st = store_prepare(R->s, "DELETE FROM files WHERE id = ?");
    if (!st) goto fail;
    for (size_t i = 0; i < R->dbf.n && n_del; i++) {
        if (!is_gone(R, i)) continue;
        sqlite3_bind_int64(st, 1, R->dbf.id[i]);
        if (step_reset(R->s, st)) goto fail;
        R->stats.removed++;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (store_exec(R->s, "DELETE FROM images WHERE hash NOT IN (SELECT hash FROM files)") ||
        vindex_prune(R->s)) /* with the people of what is gone */
        goto fail;
    if (n_del && store_bump_generation(R->s)) goto fail;
    if (store_exec(R->s, "COMMIT")) goto fail;
    return 0;
fail:
    sqlite3_finalize(st);
    store_exec(R->s, "ROLLBACK");
    return APP_FAIL;
}

static void print_summary(const runner *R, double secs)
{
    const index_stats *x = &R->stats;
    if (R->o->json) {
        json_out j;
        json_init(&j, stdout);
        json_obj_begin(&j);
        json_key(&j, "db");
        json_str(&j, R->s->path);
        json_key(&j, "added");
        json_uint(&j, x->added);
        json_key(&j, "updated");
        json_uint(&j, x->updated);
        json_key(&j, "unchanged");
        json_uint(&j, x->unchanged);
        json_key(&j, "removed");
        json_uint(&j, x->removed);
        json_key(&j, "failed");
        json_uint(&j, x->failed);
        json_key(&j, "skipped");
        json_uint(&j, x->skipped);
        json_key(&j, "embedded");
        json_uint(&j, x->embedded);
        json_key(&j, "reused");
        json_uint(&j, x->reused);
        json_key(&j, "videos");
        json_uint(&j, x->videos);
        json_key(&j, "frames");
        json_uint(&j, x->frames);
        if (R->det) {
            json_key(&j, "person_photos");
            json_uint(&j, x->person_photos);
            json_key(&j, "persons");
            json_uint(&j, x->persons);
        }
        json_key(&j, "seconds");
        json_num(&j, secs);
        json_obj_end(&j);
        json_newline(&j);
    } else if (!R->o->quiet) {
        printf("%zu added, %zu updated, %zu unchanged, %zu removed, %zu failed, %zu skipped "
               "(%zu embedded, %zu reused by content hash; %zu videos, %zu frames) in %.2f s\n",
               x->added, x->updated, x->unchanged, x->removed, x->failed, x->skipped, x->embedded,
               x->reused, x->videos, x->frames, secs);
        if (R->det)
            printf("%zu people found (%zu photos looked at; video samples as they were sampled)\n",
                   x->persons, x->person_photos);
    }
}

static int index_run(const index_opts *o)
{
    runner R;
    memset(&R, 0, sizeof R);
    R.o = o;
    hmap_init(&R.known);
    hmap_init(&R.redo_videos);
    R.stats.t0 = now_s();
    int lock_fd = -1;
    int rc = cli_ctx_new((int)o->threads, &R.ctx);
    if (!rc) rc = cli_model_load(R.ctx, o->model, NULL, &R.model);
    if (rc) goto done;
    if (clipdex_model_get_info(R.model, &R.info) != CLIPDEX_OK || R.info.embed_dim <= 0) {
        cli_error("cannot describe the model '%s'", o->model);
        rc = APP_MODEL;
        goto done;
    }
    R.dim = (size_t)R.info.embed_dim;
    R.px = 3 * (size_t)R.info.image_size * (size_t)R.info.image_size;
    store_model_id id;
    if ((rc = store_model_identify(R.model, o->model, &id))) goto done;
    if ((rc = store_open(o->db, 1, &R.s))) goto done;
    /* one indexer per database (searches need no lock) */
    lock_fd = open(o->db, O_RDONLY | O_CLOEXEC);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        cli_error("another `clipdex index` is running on '%s'", o->db);
        rc = APP_FAIL;
        goto done;
    }
    if ((rc = store_check_model(R.s, &id, 1))) goto done;
    if (walk_paths(o->paths, o->n_paths, &R.wr) || db_files_load(R.s, &R.dbf)) {
        rc = APP_FAIL;
        goto done;
    }
    shard_filter(&o->shard, &R.wr); /* the other shards' files are not ours to touch */
    if (o->detector && (rc = persons_setup(&R))) goto done;
    R.stats.skipped = R.wr.skipped;
    R.stats.failed = R.wr.failed;
    R.work = calloc(R.wr.n ? R.wr.n : 1, sizeof *R.work);
    R.vwork = calloc(R.wr.n ? R.wr.n : 1, sizeof *R.vwork);
    if (!R.work || !R.vwork) {
        cli_error("out of memory");
        rc = APP_FAIL;
        goto done;
    }
    for (size_t i = 0; i < R.wr.n; i++) {
        const walk_entry *e = &R.wr.v[i];
        size_t row;
        int had_row = 0;
        if (hmap_get(&R.dbf.by_path, e->path, e->len, &row)) {
            if (R.dbf.seen[row]) continue; /* the same path given twice */
            R.dbf.seen[row] = 1;
            if ((uint64_t)R.dbf.size[row] == e->size && R.dbf.mtime[row] == e->mtime_ns &&
                !hmap_get(&R.redo_videos, e->path, e->len, NULL)) {
                R.stats.unchanged++;
                continue;
            }
            had_row = 1;
        } /* new paths given twice are rare; the upsert makes them harmless */
        work_item *w = walk_is_video_name(e->path) ? &R.vwork[R.n_vwork++] : &R.work[R.n_work++];
        w->had_row = had_row;
        w->e = e;
    }
    if (known_load(R.s, &R.known, &R.known_buf, R.n_work, &R.n_known)) {
        rc = APP_FAIL;
        goto done;
    }
    R.pr.mode = o->quiet || o->json ? 0 : isatty(STDERR_FILENO) ? 1 : 2;
    if (o->quiet) R.pr.mode = 0;
    else if (o->json) R.pr.mode = isatty(STDERR_FILENO) ? 1 : 0;
    R.pr.t0 = R.pr.last = now_s();
    R.pr.total = R.n_work + R.n_vwork;
    struct sigaction old_sig[2];
    cli_signals_catch(on_signal, old_sig);
    if (R.n_work) rc = run_pipeline(&R);
    if (!rc && R.det && !index_interrupted) rc = run_persons(&R);
    if (!rc && R.n_vwork) rc = run_videos(&R);
    cli_signals_restore(old_sig);
    if (rc) goto done;
    /* interrupted: the walk is complete, but keep removals for a full run */
    if (!index_interrupted && (rc = remove_missing(&R))) goto done;
    vec_index vi; /* bring the matrices in step (rebuilt only when stale) */
    if ((rc = vecindex_open(R.s, (int)R.dim, &vi))) goto done;
    vecindex_close(&vi);
    if (R.det && (rc = vecindex_open_kind(R.s, (int)R.dim, VECINDEX_PERSONS, &vi))) goto done;
    if (R.det) vecindex_close(&vi);
    print_summary(&R, now_s() - R.stats.t0);
    rc = cli_flush_stdout();
    if (!rc && R.stats.failed) rc = APP_FAIL;
    if (index_interrupted) {
        cli_error("interrupted: the batches committed so far are kept; run again to finish");
        rc = CLI_INTERRUPTED;
    }
done:
    if (lock_fd >= 0) close(lock_fd);
    store_close(R.s);
    walk_result_free(&R.wr);
    db_files_free(&R.dbf);
    hmap_free(&R.known);
    hmap_free(&R.redo_videos);
    clipdex_detector_free(R.det);
    free(R.known_buf);
    free(R.work);
    free(R.vwork);
    clipdex_model_free(R.model);
    clipdex_ctx_free(R.ctx);
    return rc;
}

int cmd_index(int argc, char **argv)
{
    index_opts o;
    memset(&o, 0, sizeof o);
    o.batch = INDEX_BATCH_DEFAULT;
    o.video_every = VINDEX_EVERY_DEFAULT;
    o.scene = VINDEX_SCENE_DEFAULT;
    o.max_persons = PFIND_MAX_DEFAULT;
    o.paths = calloc((size_t)argc + 1, sizeof *o.paths);
    if (!o.paths) {
        cli_error("out of memory");
        return APP_FAIL;
    }
    const char *val = NULL;
    int r, rc = -1;
    cli_args a;
    cli_args_init(&a, argc, argv);
    while (rc < 0 && cli_args_next(&a)) {
        if (cli_args_is_help(&a)) {
            fputs(usage_index, stdout);
            rc = cli_flush_stdout();
        } else if (cli_args_positional(&a)) {
            o.paths[o.n_paths++] = argv[a.i];
        } else if ((r = cli_args_value(&a, "--model", &o.model)) != 0) {
            if (r < 0) rc = APP_USAGE;
        } else if ((r = cli_args_flag(&a, "--download")) != 0) {
            if (r < 0) rc = APP_USAGE;
            o.download = 1;
        } else if ((r = cli_args_value(&a, "--db", &o.db)) != 0) {
            if (r < 0) rc = APP_USAGE;
        } else if ((r = cli_args_value(&a, "--batch", &val)) != 0) {
            if (r < 0 || cli_parse_int(a.cmd, "--batch", val, 1, INDEX_BATCH_MAX, &o.batch))
                rc = APP_USAGE;
        } else if ((r = cli_args_value(&a, "--threads", &val)) != 0) {
            if (r < 0 || cli_parse_int(a.cmd, "--threads", val, 0, 1024, &o.threads)) rc = APP_USAGE;
        } else if ((r = cli_args_value(&a, "--decoders", &val)) != 0) {
            if (r < 0 || cli_parse_int(a.cmd, "--decoders", val, 0, 1024, &o.decoders))
                rc = APP_USAGE;
        } else if ((r = cli_args_value(&a, "--video-every", &val)) != 0) {
            if (r < 0 || cli_parse_double(a.cmd, "--video-every", val, 0.05, 3600, &o.video_every))
                rc = APP_USAGE;
        } else if ((r = cli_args_value(&a, "--scene", &val)) != 0) {
            if (r < 0 || cli_parse_double(a.cmd, "--scene", val, 0, 1, &o.scene)) rc = APP_USAGE;
        } else if ((r = cli_args_flag(&a, "--no-exif")) != 0) {
            if (r < 0) rc = APP_USAGE;
            o.no_exif = 1;
        } else if ((r = cli_args_value(&a, "--detector", &o.detector)) != 0 ||
                   (r = cli_args_value(&a, "--detector-model", &o.detector_model)) != 0) {
            if (r < 0) rc = APP_USAGE;
        } else if ((r = cli_args_value(&a, "--max-persons", &val)) != 0) {
            if (r < 0 || cli_parse_int(a.cmd, "--max-persons", val, 1, PFIND_MAX, &o.max_persons))
                rc = APP_USAGE;
        } else if ((r = cli_args_flag(&a, "--redetect")) != 0) {
            if (r < 0) rc = APP_USAGE;
            o.redetect = 1;
        } else if ((r = cli_args_value(&a, "--shard", &o.shard_arg)) != 0) {
            if (r < 0) rc = APP_USAGE;
        } else if ((r = cli_args_value(&a, "--shard-count", &val)) != 0) {
            if (r < 0 || cli_parse_int(a.cmd, "--shard-count", val, 1, SHARD_MAX, &o.shard_count))
                rc = APP_USAGE;
        } else if ((r = cli_args_flag(&a, "--json")) != 0) {
            if (r < 0) rc = APP_USAGE;
            o.json = 1;
        } else if ((r = cli_args_flag(&a, "--quiet")) != 0 || (r = cli_args_flag(&a, "-q")) != 0) {
            if (r < 0) rc = APP_USAGE;
            o.quiet = 1;
        } else {
            rc = cli_unknown_option(&a);
        }
    }
    if (rc < 0) {
        o.model = cli_model_fetch(o.model, CLI_DOWNLOAD_OFFER + o.download);
        o.db = store_db_path(o.db);
        if (!o.model)
            rc = cli_model_error();
        else if (o.n_paths == 0)
            rc = cli_usage_error(a.cmd, "nothing to index: give one or more PATHs");
        else if (o.shard_arg && shard_parse(o.shard_arg, (unsigned)o.shard_count, &o.shard))
            rc = APP_USAGE;
        else if (o.detector && strcmp(o.detector, "person") != 0)
            rc = cli_usage_error(a.cmd, "--detector takes 'person', not '%s'", o.detector);
        else if (!o.detector && (o.detector_model || o.redetect))
            rc = cli_usage_error(a.cmd, "--detector-model and --redetect need --detector person");
        else if (o.detector && !(o.detector_model = cli_detector_path(o.detector_model)))
            rc = APP_USAGE;
    }
    if (rc < 0) rc = index_run(&o);
    free(o.paths);
    return rc;
}
