/*
 * fuzz_video.c - fuzz target for the video input (app/video/decode.c,
 * compiled in here): every input is written to a memory file and opened as
 * a video file (FFmpeg's demuxers by probing, then the decoders and the RGB
 * conversion), and up to 64 frames are decoded, every frame and at a
 * sampling interval. Nothing may crash, leak or read out of bounds; a frame
 * handed out must have a sane size within the limits given.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "store/walk.c"
#include "util/hmap.c"
#include "util/report.c"
#include "video/decode.c"

#define FUZZ_MAX_SIDE 2048
#define FUZZ_MAX_FRAMES 64

static void decode_all(const char *path, double every)
{
    video_opts o;
    video_opts_default(&o);
    o.every = every;
    o.live = 0;
    o.max_side = FUZZ_MAX_SIDE;
    o.timeout_s = 2;
    o.scene = every > 0 ? 0.3 : 0;
    char err[256];
    video_src *s = NULL;
    if (video_open(path, &o, &s, err, sizeof err)) return;
    video_frame f;
    for (int n = 0; n < FUZZ_MAX_FRAMES && video_next(s, &f, err, sizeof err) == 1; n++) {
        if (f.w < 1 || f.h < 1 || f.w > FUZZ_MAX_SIDE || f.h > FUZZ_MAX_SIDE || f.stride < 3 * f.w) abort();
        volatile uint8_t last = f.rgb[(size_t)(f.h - 1) * f.stride + 3 * (size_t)f.w - 1];
        (void)last;
        if (!(f.scene >= 0 && f.scene <= 1)) abort();
    }
    video_close(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) { /* FFmpeg's own log stays off the fuzzer's output */
        av_log_set_level(AV_LOG_QUIET);
        quiet = 1;
    }
    int fd = memfd_create("fuzz_video", MFD_CLOEXEC);
    if (fd < 0) return 0;
    if (write(fd, data, size) == (ssize_t)size) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        decode_all(path, 0);
        decode_all(path, 0.5);
    }
    close(fd);
    return 0;
}
