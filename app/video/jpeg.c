/*
 * jpeg.c - RGB24 to JPEG with FFmpeg (see jpeg.h): swscale to full-range
 * YUV 4:2:0 at the target size, then one frame through the mjpeg encoder.
 * Every FFmpeg object is freed on every path; the result is a copy.
 */
#include "video/jpeg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
#include <libswscale/swscale.h>

static void fit(int w, int h, int max_side, int *ow, int *oh)
{
    *ow = w;
    *oh = h;
    if (max_side <= 0 || (w <= max_side && h <= max_side)) return;
    if (w >= h) {
        *ow = max_side;
        *oh = (int)((double)h * max_side / w + 0.5);
    } else {
        *oh = max_side;
        *ow = (int)((double)w * max_side / h + 0.5);
    }
    if (*ow < 1) *ow = 1;
    if (*oh < 1) *oh = 1;
}

/* The YUV frame of the picture, ow x oh; NULL when memory ran out. */
static AVFrame *to_yuv(const uint8_t *rgb, int w, int h, int stride, int ow, int oh)
{
    AVFrame *f = av_frame_alloc();
    if (!f) return NULL;
    f->format = AV_PIX_FMT_YUVJ420P;
    f->width = ow;
    f->height = oh;
    struct SwsContext *c = sws_getContext(w, h, AV_PIX_FMT_RGB24, ow, oh, AV_PIX_FMT_YUV420P,
                                          SWS_BICUBIC, NULL, NULL, NULL);
    if (!c || av_frame_get_buffer(f, 0) < 0) {
        sws_freeContext(c);
        av_frame_free(&f);
        return NULL;
    }
    int *inv, sr, *tab, dr, b, ct, sat;
    if (sws_getColorspaceDetails(c, &inv, &sr, &tab, &dr, &b, &ct, &sat) >= 0)
        sws_setColorspaceDetails(c, inv, sr, tab, 1, b, ct, sat); /* JPEG: full range */
    const uint8_t *src[4] = {rgb};
    int ls[4] = {stride};
    sws_scale(c, src, ls, 0, h, f->data, f->linesize);
    sws_freeContext(c);
    return f;
}

int video_jpeg_encode(const uint8_t *rgb, int w, int h, int stride, int max_side, int qscale,
                      uint8_t **out, size_t *out_len, char *err, size_t errlen)
{
    *out = NULL;
    *out_len = 0;
    int ow, oh, rc = -1;
    fit(w, h, max_side, &ow, &oh);
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
    AVCodecContext *enc = codec ? avcodec_alloc_context3(codec) : NULL;
    AVFrame *f = enc ? to_yuv(rgb, w, h, stride, ow, oh) : NULL;
    AVPacket *pkt = av_packet_alloc();
    if (!enc || !f || !pkt) {
        snprintf(err, errlen, "%s", codec ? "out of memory for a JPEG" : "no mjpeg encoder");
        goto done;
    }
    enc->width = ow;
    enc->height = oh;
    enc->pix_fmt = AV_PIX_FMT_YUVJ420P;
    enc->time_base = (AVRational){1, 25};
    enc->flags |= AV_CODEC_FLAG_QSCALE;
    enc->global_quality = FF_QP2LAMBDA * (qscale < 2 ? 2 : qscale > 31 ? 31 : qscale);
    f->quality = enc->global_quality;
    f->pts = 0;
    if (avcodec_open2(enc, codec, NULL) < 0 || avcodec_send_frame(enc, f) < 0 ||
        avcodec_send_frame(enc, NULL) < 0 || avcodec_receive_packet(enc, pkt) < 0) {
        snprintf(err, errlen, "the mjpeg encoder failed on a %dx%d picture", ow, oh);
        goto done;
    }
    *out = malloc((size_t)pkt->size);
    if (!*out) {
        snprintf(err, errlen, "out of memory for a JPEG");
        goto done;
    }
    memcpy(*out, pkt->data, (size_t)pkt->size);
    *out_len = (size_t)pkt->size;
    rc = 0;
done:
    av_packet_free(&pkt);
    av_frame_free(&f);
    avcodec_free_context(&enc);
    return rc;
}
