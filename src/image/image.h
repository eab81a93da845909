/*
 * image.h - internals of the image module: the decoded image object, the
 * per-format decoders, EXIF orientation and Pillow-exact resampling.
 *
 * A clipdex_image keeps its pixels in the mode Pillow would open the file in
 * (1, L, LA, P, RGB, RGBA, or CMYK internally), packed row-major with
 * `channels` bytes per pixel and no row padding. Mode 1 stores one byte per
 * pixel, 0 or 255 (as Pillow does internally).
 */
#ifndef CDX_IMAGE_H
#define CDX_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* Internal-only mode: Adobe-convention CMYK JPEGs are kept as CMYK (already
 * un-inverted, like Pillow's "CMYK;I" rawmode) so that the resize runs in
 * CMYK like Pillow's; clipdex_image_mode() reports it as RGB. */
#define CDX_MODE_CMYK 100

struct clipdex_image {
    uint32_t width, height;
    int mode;             /* enum clipdex_image_mode or CDX_MODE_CMYK */
    int channels;         /* bytes per pixel: 1 (1, L, P), 2 (LA), 3 (RGB), 4 (RGBA, CMYK) */
    const char *format;   /* static string: "jpeg", "png", ... */
    uint8_t *pixels;      /* height rows of width*channels bytes */
    uint8_t palette[768]; /* mode P: 256 RGB entries (unset entries are Pillow's gray ramp) */
};

/* The resolved limits and options of one decode call. */
struct cdx_decode_opts {
    uint32_t max_width, max_height;
    uint64_t max_pixels;
    uint32_t jpeg_scale_target; /* clipdex_image_params.jpeg_scale_target (0: exact) */
};

/* What a decoder hands back besides the image: the raw EXIF (a TIFF header
 * and IFDs, without the "Exif\0\0" prefix) if the file carries one, pointing
 * into the input or into `exif_own` (malloc'd, freed by the caller). */
struct cdx_decode_out {
    const uint8_t *exif;
    size_t exif_len;
    uint8_t *exif_own;
};

/* Checks a header's dimensions against the limits before any allocation;
 * returns CLIPDEX_E_IMAGE for zero sizes and CLIPDEX_E_LIMIT when too big. */
CDX_INTERNAL int cdx_image_check_size(clipdex_ctx *ctx, const struct cdx_decode_opts *o,
                                      const char *fmt, uint64_t w, uint64_t h);
/* Allocates img->pixels for width x height x channels (sizes already checked)
 * and fills in the fields; the palette is set to Pillow's gray ramp. */
CDX_INTERNAL int cdx_image_alloc(clipdex_ctx *ctx, clipdex_image *img, uint32_t w, uint32_t h,
                                 int mode, const char *fmt);

/* Decoders: fill *img (zeroed by the caller) from (data, len). On failure they
 * free what they allocated in img and return a status with a message. */
CDX_INTERNAL int cdx_decode_jpeg(clipdex_ctx *ctx, const uint8_t *data, size_t len,
                                 const struct cdx_decode_opts *o, clipdex_image *img,
                                 struct cdx_decode_out *out);
CDX_INTERNAL int cdx_decode_png(clipdex_ctx *ctx, const uint8_t *data, size_t len,
                                const struct cdx_decode_opts *o, clipdex_image *img,
                                struct cdx_decode_out *out);
CDX_INTERNAL int cdx_decode_webp(clipdex_ctx *ctx, const uint8_t *data, size_t len,
                                 const struct cdx_decode_opts *o, clipdex_image *img,
                                 struct cdx_decode_out *out);
CDX_INTERNAL int cdx_decode_gif(clipdex_ctx *ctx, const uint8_t *data, size_t len,
                                const struct cdx_decode_opts *o, clipdex_image *img,
                                struct cdx_decode_out *out);
CDX_INTERNAL int cdx_decode_bmp(clipdex_ctx *ctx, const uint8_t *data, size_t len,
                                const struct cdx_decode_opts *o, clipdex_image *img,
                                struct cdx_decode_out *out);
CDX_INTERNAL int cdx_decode_tiff(clipdex_ctx *ctx, const uint8_t *data, size_t len,
                                 const struct cdx_decode_opts *o, clipdex_image *img,
                                 struct cdx_decode_out *out);
CDX_INTERNAL int cdx_decode_pnm(clipdex_ctx *ctx, const uint8_t *data, size_t len,
                                const struct cdx_decode_opts *o, clipdex_image *img,
                                struct cdx_decode_out *out);

/* EXIF: the orientation tag (1..8) of a TIFF-structured EXIF block, or 0 if
 * absent or unreadable. Bounds-checked; never reads outside (exif, len). */
CDX_INTERNAL int cdx_exif_orientation(const uint8_t *exif, size_t len);
/* Applies an EXIF orientation (2..8) in place like Pillow's
 * ImageOps.exif_transpose; 5..8 swap width and height. */
CDX_INTERNAL int cdx_image_orient(clipdex_ctx *ctx, clipdex_image *img, int orientation);

/* Resize (Pillow semantics for the image's mode) + center crop + convert to
 * RGB, writing size*size*3 bytes. Only the pixels inside the crop are
 * computed; they are bit-identical to Pillow's full resize then crop. */
CDX_INTERNAL int cdx_resize_crop_rgb(clipdex_ctx *ctx, const clipdex_image *img, uint32_t out_w,
                                     uint32_t out_h, uint32_t left, uint32_t top, uint32_t size,
                                     uint8_t *out);

/* Converts n pixels of the image's own mode (as stored in img->pixels) to
 * RGB8 like Pillow's convert("RGB"): gray replicated, palette expanded, alpha
 * dropped without compositing, CMYK un-inked. */
CDX_INTERNAL void cdx_image_to_rgb(const clipdex_image *img, const uint8_t *in, uint8_t *out, size_t n);

#endif
