/*
 * test_video_index.c - videos in the index, end to end through the clipdex
 * program: the `ffmpeg` program makes a slideshow of three photos (each
 * shown 3 s, scaled to 160x120) as H.264/MP4, VP9/WebM and MJPEG/AVI beside
 * a still photo and three bad videos (truncated, garbage, audio only);
 * `clipdex index --video-every 1` indexes the folder with a seeded tiny
 * model. Checked:
 *   - every sample in the database is at the time our decoder gives for the
 *     same sampling, and its embedding equals `clipdex embed` of that
 *     decoded frame written as a PPM (within 1e-6);
 *   - `clipdex search` with each slide's image finds every video with a time
 *     range inside the slide's span (+- one sampling interval) and the best
 *     time in it; the still photo ranks first for itself (photos and
 *     videos ranked together);
 *   - each bad video is named on stderr and the run still indexes the rest;
 *   - a second run changes nothing; a re-encoded video is re-sampled and
 *     the others keep their rows.
 * Skips when the ffmpeg program or libx264/libvpx is absent.
 */
#include <jansson.h>
#include <sqlite3.h>
#include <unistd.h>

#include "check.h"
#include "store/walk.c"
#include "util/hmap.c"
#include "util/report.c"
#include "video/decode.c"

#define SLIDE 3.0 /* seconds each photo is shown */
#define EVERY 1.0 /* --video-every */
#define SCENE "0.3"

static char dir[] = "/tmp/clipdex-test-vindex-XXXXXX";
static char bin[512], model[600], db[600], lib[600];
static const char *slides[3] = {"astronaut.png", "coffee.png", "chelsea.png"};
static const char *videos[3] = {"show.mp4", "show.webm", "show.avi"};
static const char *codecs[3] = {"-c:v libx264 -pix_fmt yuv420p", "-c:v libvpx-vp9 -b:v 1M -pix_fmt yuv420p",
                                "-c:v mjpeg -q:v 3"};

static int run(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Reads a command's whole stdout (NUL-terminated, malloc'd), NULL on failure. */
static char *capture(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (cap - len < 2) buf = realloc(buf, cap *= 2);
    }
    pclose(p);
    if (buf) buf[len] = '\0';
    return buf;
}

/* The slideshow of slides[order[0..2]] as `name` with `codec`. */
static int make_show(const char *name, const char *codec, const int order[3])
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "ffmpeg -nostdin -loglevel error -y -framerate 10 -loop 1 -t %g -i '%s/slide%d.png' "
             "-framerate 10 -loop 1 -t %g -i '%s/slide%d.png' -framerate 10 -loop 1 -t %g -i '%s/slide%d.png' "
             "-filter_complex '[0]setsar=1[a];[1]setsar=1[b];[2]setsar=1[c];[a][b][c]concat=n=3:v=1,fps=10' %s '%s/media/%s'",
             SLIDE, lib, order[0], SLIDE, lib, order[1], SLIDE, lib, order[2], codec, dir, name);
    return run(cmd);
}

static int make_inputs(const char *shared)
{
    char cmd[2048];
    for (int i = 0; i < 3; i++) { /* the slides, as the queries see them */
        snprintf(cmd, sizeof cmd,
                 "ffmpeg -nostdin -loglevel error -y -i '%s/data/images/photos/%s' -vf scale=160:120,setsar=1 '%s/slide%d.png'",
                 shared, slides[i], lib, i);
        if (run(cmd)) return -1;
    }
    static const int order[3] = {0, 1, 2};
    for (int v = 0; v < 3; v++)
        if (make_show(videos[v], codecs[v], order)) return -1;
    snprintf(cmd, sizeof cmd,
             "cp '%s/data/images/photos/coins.png' '%s/media/still.png' && "
             "head -c 3000 '%s/media/show.mp4' > '%s/media/cut.mp4' && "
             "head -c 5000 /dev/urandom > '%s/media/garbage.mkv' && "
             "ffmpeg -nostdin -loglevel error -y -f lavfi -i sine=d=1 '%s/media/sound.mp4'",
             shared, dir, dir, dir, dir, dir);
    return run(cmd);
}

/* Runs `clipdex index` over the media folder; stderr to dir/index.err. */
static int index_run(void)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "'%s' index --model '%s' --db '%s' --video-every %g --scene " SCENE
             " --threads 2 --quiet '%s/media' >/dev/null 2>'%s/index.err'",
             bin, model, db, EVERY, dir, dir);
    return run(cmd);
}

static char *read_file(const char *path)
{
    char cmd[800];
    snprintf(cmd, sizeof cmd, "cat '%s'", path);
    return capture(cmd);
}

/* The frames of video `name`: ids, times and embeddings (dim floats each). */
typedef struct stored {
    int n;
    long long id[64];
    double t[64];
    float emb[64][512];
} stored;

static int load_frames(sqlite3 *h, const char *name, int dim, stored *s)
{
    sqlite3_stmt *st;
    s->n = 0;
    const char *sql = "SELECT frames.id, t, embedding FROM frames JOIN files ON files.id = frames.file_id "
                      "WHERE CAST(files.path AS TEXT) LIKE '%/' || ?1 ORDER BY seq";
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK) return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW && s->n < 64) {
        s->id[s->n] = sqlite3_column_int64(st, 0);
        s->t[s->n] = sqlite3_column_double(st, 1);
        if (sqlite3_column_bytes(st, 2) != dim * 4) break;
        memcpy(s->emb[s->n], sqlite3_column_blob(st, 2), (size_t)dim * 4);
        s->n++;
    }
    sqlite3_finalize(st);
    return 0;
}

static int write_ppm(const char *path, const video_frame *f)
{
    FILE *o = fopen(path, "wb");
    if (!o) return -1;
    fprintf(o, "P6\n%d %d\n255\n", f->w, f->h);
    for (int y = 0; y < f->h; y++) fwrite(f->rgb + (size_t)y * f->stride, 1, (size_t)f->w * 3, o);
    return fclose(o);
}

/* max |clipdex embed (ppm) - e|, or 1e9 on failure */
static double embed_diff(const char *ppm, const float *e, int dim)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' embed --model '%s' --image '%s' 2>/dev/null", bin, model, ppm);
    char *out = capture(cmd);
    json_t *j = out ? json_loads(out, 0, NULL) : NULL;
    json_t *a = j ? json_object_get(j, "embedding") : NULL;
    double worst = a && (int)json_array_size(a) == dim ? 0 : 1e9;
    for (int i = 0; worst < 1e9 && i < dim; i++) {
        double d = fabs(json_number_value(json_array_get(a, (size_t)i)) - e[i]);
        if (d > worst) worst = d;
    }
    json_decref(j);
    free(out);
    return worst;
}

/* The stored samples of one video against our decoder and `clipdex embed`. */
static void check_samples(sqlite3 *h, const char *name, int dim, int max_embeds)
{
    static stored s;
    load_frames(h, name, dim, &s);
    char path[700], err[256];
    snprintf(path, sizeof path, "%s/media/%s", dir, name);
    video_opts o;
    video_opts_default(&o);
    o.every = EVERY;
    o.scene = atof(SCENE);
    video_src *src = NULL;
    CHECK(video_open(path, &o, &src, err, sizeof err) == 0, "%s: %s", name, err);
    video_frame f;
    int n = 0, bad_t = 0, bad_e = 0;
    double worst = 0;
    while (src && video_next(src, &f, err, sizeof err) == 1) {
        if (n < s.n) {
            bad_t += fabs(f.pts - s.t[n]) > 1e-6;
            if (n < max_embeds) {
                char ppm[700];
                snprintf(ppm, sizeof ppm, "%s/frame.ppm", dir);
                double d = write_ppm(ppm, &f) ? 1e9 : embed_diff(ppm, s.emb[n], dim);
                bad_e += d > 1e-6;
                if (d > worst) worst = d;
            }
        }
        n++;
    }
    video_close(src);
    CHECK(s.n >= (int)(3 * SLIDE / EVERY) && n == s.n, "%s: %d samples stored, the decoder gives %d", name, s.n, n);
    CHECK(bad_t == 0, "%s: %d samples at other times than the decoder's", name, bad_t);
    CHECK(bad_e == 0, "%s: %d stored embeddings differ from clipdex embed of the frame (worst %g)", name, bad_e,
          worst);
}

/* Searches with an image and checks each video's first hit against the
 * position slot[v] of that slide in video v or, for the still, its rank. */
static void check_search(const int slot[3], const char *query, int expect_still_first)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' search --model '%s' --db '%s' --json -k 10 '%s' 2>/dev/null", bin, model, db,
             query);
    char *out = capture(cmd);
    int found[3] = {0, 0, 0}, line = 0, still_first = 0;
    for (char *p = out, *nl; p && *p; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl) break;
        *nl = '\0';
        json_t *j = json_loads(p, 0, NULL);
        const char *path = json_string_value(json_object_get(j, "path"));
        line++;
        if (path && line == 1 && strstr(path, "still.png")) still_first = 1;
        for (int v = 0; path && v < 3; v++) {
            if (!strstr(path, videos[v]) || found[v]) continue;
            double a = json_number_value(json_object_get(j, "start"));
            double b = json_number_value(json_object_get(j, "end"));
            double best = json_number_value(json_object_get(j, "best_time"));
            double lo = slot[v] * SLIDE - EVERY, hi = (slot[v] + 1) * SLIDE + EVERY;
            found[v] = a >= lo && b <= hi && best >= slot[v] * SLIDE - 1e-6 && best < (slot[v] + 1) * SLIDE ? 1 : -1;
            if (found[v] < 0 && !expect_still_first)
                fprintf(stderr, "%s: %s hit %.2f-%.2f best %.2f, span %.0f-%.0f s\n", query, videos[v], a, b, best,
                        slot[v] * SLIDE, (slot[v] + 1) * SLIDE);
        }
        json_decref(j);
    }
    free(out);
    if (expect_still_first) {
        CHECK(still_first, "the still photo is not the first hit for itself");
        return;
    }
    for (int v = 0; v < 3; v++)
        CHECK(found[v] == 1, "%s: %s's first hit %s", query, videos[v],
              found[v] ? "is outside the slide's span" : "is missing");
}

static long long count(sqlite3 *h, const char *sql)
{
    sqlite3_stmt *st;
    long long n = -1;
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static void check_bad_and_incremental(void)
{
    char path[700];
    snprintf(path, sizeof path, "%s/index.err", dir);
    char *err = read_file(path);
    const char *bad[3] = {"cut.mp4", "garbage.mkv", "sound.mp4"};
    for (int i = 0; i < 3; i++)
        CHECK(err && strstr(err, bad[i]), "stderr does not name the bad video %s: %s", bad[i], err ? err : "");
    free(err);
    sqlite3 *h = NULL;
    sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL);
    long long frames = count(h, "SELECT count(*) FROM frames"), maxid = count(h, "SELECT max(id) FROM frames");
    const char *others = "SELECT sum(frames.id) * 1000 + count(*) FROM frames JOIN files ON files.id = file_id "
                         "WHERE CAST(path AS TEXT) NOT LIKE '%show.webm'";
    long long kept0 = count(h, others);
    sqlite3_close(h);
    /* a second run: nothing changes */
    index_run();
    sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL);
    CHECK(count(h, "SELECT count(*) FROM frames") == frames && count(h, "SELECT max(id) FROM frames") == maxid,
          "a second run changed the frames (%lld rows before)", frames);
    sqlite3_close(h);
    /* the WebM re-encoded with the slides in another order: re-sampled */
    static const int order[3] = {2, 0, 1};
    CHECK(make_show("show.webm", codecs[1], order) == 0, "cannot re-encode show.webm");
    index_run();
    sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL);
    long long kept = count(h, others);
    long long fresh = count(h, "SELECT min(frames.id) FROM frames JOIN files ON files.id = file_id "
                               "WHERE CAST(path AS TEXT) LIKE '%show.webm'");
    sqlite3_close(h);
    CHECK(fresh > maxid, "show.webm was not re-sampled (its first frame id %lld, before max %lld)", fresh,
          maxid);
    CHECK(kept == kept0 && kept > 0, "the other videos' frames changed (%lld, were %lld)", kept, kept0);
    char q[700];
    snprintf(q, sizeof q, "%s/slide2.png", lib);
    static const int slot[3] = {2, 0, 2}; /* slide 2 now opens the WebM */
    check_search(slot, q, 0);
}

int main(void)
{
    const char *shared = check_shared();
    if (!shared) {
        SKIP("no ../shared");
        return check_done("test_video_index");
    }
    if (run("ffmpeg -hide_banner -encoders 2>/dev/null | grep -q libx264 && "
            "ffmpeg -hide_banner -encoders 2>/dev/null | grep -q libvpx-vp9") != 0 ||
        !mkdtemp(dir)) {
        SKIP("the ffmpeg program (with libx264 and libvpx) is absent");
        return check_done("test_video_index");
    }
    snprintf(bin, sizeof bin, "%s/clipdex", check_build());
    snprintf(model, sizeof model, "%s/model", dir);
    snprintf(db, sizeof db, "%s/index.db", dir);
    snprintf(lib, sizeof lib, "%s/slides", dir);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/media' '%s' && '%s/tools/genmodel' --config tiny --layout hf --seed 7 "
             "--out '%s' --vocab '%s/data/vocab' >/dev/null", dir, lib, check_build(), model, shared);
    CHECK(run(cmd) == 0, "cannot make the model");
    CHECK(make_inputs(shared) == 0, "cannot make the test videos");
    int rc = index_run();
    CHECK(rc == 1, "clipdex index with bad videos exits %d (1 expected: some files failed)", rc);
    sqlite3 *h = NULL;
    CHECK(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK, "no database");
    int dim = (int)count(h, "SELECT length(embedding) / 4 FROM frames LIMIT 1");
    CHECK(dim > 0 && dim <= 512, "embedding dimension %d", dim);
    for (int v = 0; dim > 0 && dim <= 512 && v < 3; v++) check_samples(h, videos[v], dim, v == 0 ? 64 : 4);
    sqlite3_close(h);
    char q[700];
    for (int i = 0; i < 3; i++) {
        snprintf(q, sizeof q, "%s/slide%d.png", lib, i);
        const int slot[3] = {i, i, i};
        check_search(slot, q, 0);
    }
    snprintf(q, sizeof q, "%s/media/still.png", dir);
    check_search((const int[3]){0, 0, 0}, q, 1);
    check_bad_and_incremental();
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    run(cmd);
    return check_done("test_video_index");
}
