/*
 * jpeg.h - RGB24 pixels to a JPEG file image with FFmpeg's mjpeg encoder:
 * the thumbnails of indexed video frames and the best frame that `clipdex
 * search --copy-to` writes.
 */
#ifndef CLIPDEX_APP_VIDEO_JPEG_H
#define CLIPDEX_APP_VIDEO_JPEG_H

#include <stddef.h>
#include <stdint.h>

/* Encodes h rows of 3*w bytes (`stride` apart), scaled down to fit inside
 * max_side x max_side (0 = native size), quality 2 (best) .. 31. *out is
 * malloc'ed. Returns 0, or -1 with the reason in err. */
int video_jpeg_encode(const uint8_t *rgb, int w, int h, int stride, int max_side, int qscale,
                      uint8_t **out, size_t *out_len, char *err, size_t errlen);

#endif
