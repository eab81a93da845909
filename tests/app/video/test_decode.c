/*
 * test_decode.c - app/video/decode.c against videos whose content is known:
 * the `ffmpeg` program makes a clip of three solid colours (red 0-2 s, green
 * 2-4 s, blue 4-6 s, 10 frames/s) as H.264/MP4, VP9/WebM and MJPEG/AVI; the
 * test checks the frame count, the pts of sampled frames, the colours, the
 * scene cuts at 2 s and 4 s, scaling, stdin (live: a slow caller gets frames
 * dropped, not delayed), and the errors: no video stream, garbage, a
 * truncated file, a 100000-pixel-wide stream, a server that never answers.
 * Skips when the ffmpeg program is absent.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "store/walk.c"
#include "util/hmap.c"
#include "util/report.c"
#include "video/decode.c"

static char dir[] = "/tmp/clipdex-test-decode-XXXXXX";

static int sh(const char *fmt, const char *a, const char *b)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    return system(cmd);
}

static void path_in(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", dir, name);
}

/* Makes the three-colour clip NAME with the codec arguments ARGS. */
static int make_clip(const char *name, const char *args)
{
    char p[512], cmd[2048];
    path_in(p, sizeof p, name);
    snprintf(cmd, sizeof cmd,
             "ffmpeg -nostdin -loglevel error -y -f lavfi -i color=c=red:s=64x48:r=10:d=2 "
             "-f lavfi -i color=c=lime:s=64x48:r=10:d=2 -f lavfi -i color=c=blue:s=64x48:r=10:d=2 "
             "-filter_complex '[0][1][2]concat=n=3:v=1' %s '%s'",
             args, p);
    return system(cmd);
}

/* 0 red, 1 green, 2 blue: the dominant channel of the centre pixel. */
static int colour_at(const video_frame *f)
{
    const uint8_t *px = f->rgb + (size_t)(f->h / 2) * f->stride + 3 * (f->w / 2);
    if (px[0] > 200 && px[1] < 60 && px[2] < 60) return 0;
    if (px[1] > 200 && px[0] < 60 && px[2] < 60) return 1;
    if (px[2] > 200 && px[0] < 60 && px[1] < 60) return 2;
    return -1;
}

static int open_path(const char *name, const video_opts *o, video_src **s, char *err, size_t n)
{
    char p[512];
    path_in(p, sizeof p, name);
    return video_open(p, o, s, err, n);
}

static void test_clip(const char *name)
{
    video_opts o;
    video_opts_default(&o);
    video_src *s;
    char err[512];
    if (open_path(name, &o, &s, err, sizeof err)) {
        CHECK(0, "%s: %s", name, err);
        return;
    }
    CHECK(!video_is_live(s), "%s: a file is not live", name);
    double d = video_duration(s);
    CHECK(fabs(d - 6.0) < 0.15, "%s: duration %g, expected 6", name, d);
    video_frame f;
    int n = 0, bad_colour = 0, rc;
    double prev = -1;
    while ((rc = video_next(s, &f, err, sizeof err)) == 1) {
        int want = f.pts < 2 - 1e-6 ? 0 : f.pts < 4 - 1e-6 ? 1 : 2;
        if (colour_at(&f) != want) bad_colour++;
        CHECK(f.pts > prev, "%s: pts %g after %g", name, f.pts, prev);
        CHECK(f.w == 64 && f.h == 48 && f.stride >= 3 * 64, "%s: %dx%d stride %d", name, f.w, f.h,
              f.stride);
        prev = f.pts;
        n++;
    }
    CHECK(rc == 0, "%s: end of stream, got %d (%s)", name, rc, err);
    CHECK(n == 60, "%s: %d frames, expected 60", name, n);
    CHECK(bad_colour == 0, "%s: %d frames of the wrong colour", name, bad_colour);
    CHECK(fabs(prev - 5.9) < 1e-6, "%s: last pts %g, expected 5.9", name, prev);
    video_close(s);

    /* one per second, scaled to fit 32x32 */
    o.every = 1.0;
    o.out_w = o.out_h = 32;
    if (open_path(name, &o, &s, err, sizeof err)) return;
    n = 0;
    while (video_next(s, &f, err, sizeof err) == 1) {
        CHECK(fabs(f.pts - n) < 1e-6, "%s: sample %d at pts %g", name, n, f.pts);
        CHECK(f.w == 32 && f.h == 24, "%s: scaled to %dx%d, expected 32x24", name, f.w, f.h);
        CHECK(colour_at(&f) == n / 2, "%s: sample %d colour %d", name, n, colour_at(&f));
        n++;
    }
    CHECK(n == 6, "%s: %d samples at 1 s, expected 6", name, n);
    CHECK(video_dropped(s) == 54, "%s: %ld frames not returned, expected 54", name,
          video_dropped(s));
    video_close(s);

    /* scene changes only: the first frame and the cuts at 2 s and 4 s */
    o.every = 100;
    o.scene = 0.3;
    o.out_w = o.out_h = 0;
    if (open_path(name, &o, &s, err, sizeof err)) return;
    double want[3] = {0, 2, 4};
    n = 0;
    while (video_next(s, &f, err, sizeof err) == 1) {
        if (n < 3) {
            CHECK(fabs(f.pts - want[n]) < 1e-6, "%s: cut %d at %g, expected %g", name, n, f.pts,
                  want[n]);
            CHECK(n == 0 ? f.scene == 0 : f.scene >= 0.3, "%s: cut %d score %g", name, n, f.scene);
        }
        n++;
    }
    CHECK(n == 3, "%s: %d scene samples, expected 3", name, n);
    video_close(s);
}

static void expect_open_error(const char *uri, const char *want, const char *what)
{
    video_src *s = NULL;
    char err[512] = "";
    video_opts o;
    video_opts_default(&o);
    o.timeout_s = 1;
    int rc = video_open(uri, &o, &s, err, sizeof err);
    if (rc == 0) {
        /* some failures show only when decoding starts */
        video_frame f;
        while ((rc = video_next(s, &f, err, sizeof err)) == 1) {}
        rc = rc < 0 ? -1 : 0;
    }
    CHECK(rc == -1 && strstr(err, want), "%s: rc %d, error '%s', expected '%s'", what, rc, err,
          want);
    video_close(s);
}

static void write_file(const char *p, const void *data, size_t n)
{
    FILE *f = fopen(p, "wb");
    if (!f) return;
    fwrite(data, 1, n, f);
    fclose(f);
}

static void test_errors(void)
{
    char p[512];
    path_in(p, sizeof p, "sound.wav");
    sh("ffmpeg -nostdin -loglevel error -y -f lavfi -i sine=d=1 '%s'%s", p, "");
    expect_open_error(p, "has no video stream", "audio only");

    path_in(p, sizeof p, "garbage.mp4");
    char junk[4096];
    srand(7);
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (char)rand();
    write_file(p, junk, sizeof junk);
    expect_open_error(p, "cannot open", "garbage");

    char src[512];
    path_in(src, sizeof src, "clip.mp4");
    path_in(p, sizeof p, "truncated.mp4");
    sh("head -c 3000 '%s' > '%s'", src, p);
    expect_open_error(p, "truncated.mp4", "truncated mp4");

    /* a 100000x2 raw YUV4MPEG stream: refused before a frame is allocated */
    path_in(p, sizeof p, "wide.y4m");
    FILE *f = fopen(p, "wb");
    if (f) {
        fprintf(f, "YUV4MPEG2 W100000 H2 F25:1 Ip A1:1 C420jpeg\nFRAME\n");
        for (int i = 0; i < 300000; i++) fputc(128, f);
        fclose(f);
    }
    expect_open_error(p, "over the 16384-pixel limit", "too wide");

    expect_open_error("/nonexistent/x.mp4", "cannot open '/nonexistent/x.mp4'", "missing");
}

/* A server that accepts and never answers: open gives up after timeout_s. */
static void test_timeout(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 4) ||
        getsockname(fd, (struct sockaddr *)&a, &len)) {
        SKIP("no loopback socket");
        return;
    }
    char uri[128];
    snprintf(uri, sizeof uri, "http://127.0.0.1:%d/live.ts", ntohs(a.sin_port));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    expect_open_error(uri, "no answer within 1 s", "silent server");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double dt = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
    CHECK(dt < 5, "silent server: gave up after %.1f s, expected about 1", dt);
    close(fd);
}

/* Runs video_open("-") with fd 0 reading FILE. */
static int open_stdin(const char *name, video_src **s, char *err, size_t n)
{
    char p[512];
    path_in(p, sizeof p, name);
    int fd = open(p, O_RDONLY);
    if (fd < 0) return -1;
    dup2(fd, 0);
    close(fd);
    video_opts o;
    video_opts_default(&o);
    return video_open("-", &o, s, err, n);
}

static void test_stdin(void)
{
    video_src *s;
    char err[512];
    if (open_stdin("clip.mkv", &s, err, sizeof err)) {
        CHECK(0, "stdin: %s", err);
        return;
    }
    CHECK(video_is_live(s), "stdin is live");
    video_frame f;
    int n = 0, rc;
    double prev = -1;
    struct timespec pause = {0, 30 * 1000 * 1000};
    while ((rc = video_next(s, &f, err, sizeof err)) == 1) {
        CHECK(f.pts > prev && f.wall > 1e9, "stdin: pts %g after %g, wall %f", f.pts, prev, f.wall);
        prev = f.pts;
        n++;
        nanosleep(&pause, NULL); /* slower than the reader */
    }
    CHECK(rc == 0, "stdin: end of stream, got %d (%s)", rc, err);
    CHECK(n >= 1 && n < 60 && video_dropped(s) == 60 - n,
          "stdin: a slow caller got %d frames, %ld dropped (expected some dropped, 60 in all)", n,
          video_dropped(s));
    video_close(s);

    if (open_stdin("garbage.mp4", &s, err, sizeof err) == 0) {
        while ((rc = video_next(s, &f, err, sizeof err)) == 1) {}
        CHECK(rc == -1, "garbage on stdin: rc %d", rc);
        video_close(s);
    } else {
        CHECK(strstr(err, "cannot open '-'"), "garbage on stdin: '%s'", err);
    }
}

static void test_names(void)
{
    CHECK(video_path_is_video("/a/b.MP4") && video_path_is_video("x.webm") &&
              video_path_is_video("c.3gp"),
          "video extensions");
    CHECK(!video_path_is_video("a.jpg") && !video_path_is_video("mp4") &&
              !video_path_is_video("a.mp4/b"),
          "not video extensions");
    CHECK(video_uri_is_live("rtsp://h/x") && video_uri_is_live("-") &&
              video_uri_is_live("/dev/video0") && video_uri_is_live("HTTPS://h/x.m3u8"),
          "live URIs");
    CHECK(!video_uri_is_live("/tmp/a.mp4") && !video_uri_is_live("file:a.mp4"), "file URIs");
}

int main(void)
{
    test_names();
    if (system("ffmpeg -hide_banner -version >/dev/null 2>&1") != 0 || !mkdtemp(dir)) {
        SKIP("the ffmpeg program is absent");
        return check_done("test_decode");
    }
    static const char *const clips[][2] = {
        {"clip.mp4", "-c:v libx264 -pix_fmt yuv420p"},
        {"clip.webm", "-c:v libvpx-vp9 -deadline realtime -b:v 200k"},
        {"clip.avi", "-c:v mjpeg -q:v 3"},
        {"clip.mkv", "-c:v libx264 -pix_fmt yuv420p"},
    };
    for (size_t i = 0; i < sizeof clips / sizeof *clips; i++) {
        if (make_clip(clips[i][0], clips[i][1]) != 0) {
            SKIP("ffmpeg cannot make %s (%s)", clips[i][0], clips[i][1]);
            continue;
        }
        if (i < 3) test_clip(clips[i][0]);
    }
    test_errors();
    test_timeout();
    test_stdin();
    sh("rm -rf '%s'%s", dir, "");
    return check_done("test_decode");
}
