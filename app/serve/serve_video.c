/*
 * serve_video.c - the video routes of `clipdex serve`: GET /v1/video/ID sends
 * an indexed video file (files.id) straight from the file descriptor, with
 * HTTP Range requests answered 206 (one byte range; a browser's <video>
 * asks for the part it plays, so /v1/video/ID#t=T plays from T) and 416
 * when unsatisfiable; GET /v1/frame/ID sends a video sample's stored JPEG
 * thumbnail (frames.id), the picture of a video hit in /v1/search. Only
 * files of the index are served, never a path from the request.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serve/serve.h"
#include "video/decode.h"

/* The Content-Type of a video by its extension. */
static const char *video_type(const char *path)
{
    static const char *const map[][2] = {{".mp4", "video/mp4"},        {".m4v", "video/mp4"},
                                          {".mov", "video/quicktime"},  {".webm", "video/webm"},
                                          {".mkv", "video/x-matroska"}, {".avi", "video/x-msvideo"},
                                          {".ts", "video/mp2t"},        {".mpg", "video/mpeg"},
                                          {".mpeg", "video/mpeg"},      {".3gp", "video/3gpp"}};
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof map / sizeof map[0]; i++)
        if (strcasecmp(dot, map[i][0]) == 0) return map[i][1];
    return "application/octet-stream";
}

/* Opens the regular file `path` (descriptor >= 3, close-on-exec) and its
 * size; -1 with e set. */
static int open_regular(const char *path, uint64_t *size, http_err *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return http_fail(e, 404, "cannot open '%s': %s", path, strerror(errno));
    if (fd < 3) { /* 0 means "no descriptor" in http_response */
        int d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        close(fd);
        if ((fd = d) < 0) return http_fail(e, 500, "cannot duplicate a descriptor: %s", strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return http_fail(e, 404, "'%s' is not a regular file", path);
    }
    *size = (uint64_t)st.st_size;
    return fd;
}

void serve_route_video(server *srv, const http_request *rq, http_response *rs)
{
    int64_t id = 0;
    http_err e = {0, ""};
    char *path = NULL;
    if (http_parse_id(rq->url, "/v1/video/", &id) != 1) {
        resp_error(rs, 400, "bad video ID in '%s'", rq->url);
        return;
    }
    if (serve_index_path(srv, id, &path, &e)) {
        resp_error(rs, e.status, "%s", e.msg);
        return;
    }
    if (!video_path_is_video(path)) {
        resp_error(rs, 404, "file %lld is not a video (/v1/image/%lld serves photos)", (long long)id, (long long)id);
        free(path);
        return;
    }
    uint64_t size = 0, first = 0, last = 0;
    int fd = open_regular(path, &size, &e);
    if (fd < 0) {
        resp_error(rs, e.status, "%s", e.msg);
        free(path);
        return;
    }
    int r = http_parse_range(rq->range, size, &first, &last);
    if (r < 0) {
        close(fd);
        resp_error(rs, 416, "range '%s' is outside the %llu bytes of video %lld", rq->range,
                   (unsigned long long)size, (long long)id);
        snprintf(rs->content_range, sizeof rs->content_range, "bytes */%llu", (unsigned long long)size);
        free(path);
        return;
    }
    if (r == 0) first = 0, last = size ? size - 1 : 0;
    rs->status = r ? 206 : 200;
    rs->content_type = video_type(path);
    rs->accept_ranges = 1;
    rs->cache_control = "private, max-age=60";
    rs->body_fd = fd;
    rs->body_off = first;
    rs->len = size ? (size_t)(last - first + 1) : 0;
    if (r)
        snprintf(rs->content_range, sizeof rs->content_range, "bytes %llu-%llu/%llu", (unsigned long long)first,
                 (unsigned long long)last, (unsigned long long)size);
    free(path);
}

void serve_route_frame(server *srv, const http_request *rq, http_response *rs)
{
    int64_t id = 0;
    http_err e = {0, ""};
    unsigned char *jpeg = NULL;
    size_t len = 0;
    if (http_parse_id(rq->url, "/v1/frame/", &id) != 1) {
        resp_error(rs, 400, "bad sample ID in '%s'", rq->url);
        return;
    }
    if (serve_index_frame_thumb(srv, id, &jpeg, &len, &e)) {
        resp_error(rs, e.status, "%s", e.msg);
        return;
    }
    rs->status = 200;
    rs->content_type = "image/jpeg";
    rs->body = jpeg;
    rs->len = len;
    rs->cache_control = "private, max-age=60";
}
