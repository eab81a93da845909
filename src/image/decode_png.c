/*
 * decode_png.c - PNG through libpng, in the modes Pillow opens them:
 * gray 1-bit -> 1; gray 2/4/8-bit -> L (scaled x85 / x17 like Pillow's
 * L;2 / L;4); palette -> P (+ palette); gray+alpha 8-bit -> LA; 16-bit
 * gray+alpha -> RGBA (as Pillow's LA;16B rawmode); RGB -> RGB; RGBA -> RGBA.
 * 16-bit samples keep their high byte (Pillow's ";16B" unpackers).
 * 16-bit gray: Pillow opens it as mode I and its convert("RGB") clips at
 * 255, turning most images white; we keep the high byte as L instead (see
 * docs/preprocessing.md). tRNS is ignored, as convert("RGB") ignores it.
 * Invariants: libpng errors longjmp back here; running out of bytes is
 * "truncated PNG"; the size is checked after png_read_info, before any pixel
 * allocation. Chunks after the image data (eXIf) are read best-effort, like
 * Pillow, which stops silently at a broken trailer.
 */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "image/image.h"

struct png_src {
    const uint8_t *data;
    size_t len, pos;
    char msg[256];
};

static void on_read(png_structp png, png_bytep dst, png_size_t n)
{
    struct png_src *s = png_get_io_ptr(png);
    if (n > s->len - s->pos) {
        snprintf(s->msg, sizeof s->msg, "truncated PNG (file ends after %zu bytes)", s->len);
        png_error(png, "truncated");
    }
    memcpy(dst, s->data + s->pos, n);
    s->pos += n;
}

static void on_error(png_structp png, png_const_charp msg)
{
    struct png_src *s = png_get_error_ptr(png);
    if (!s->msg[0]) snprintf(s->msg, sizeof s->msg, "corrupt PNG: %s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

static void grab_exif(png_structp png, png_infop info, struct cdx_decode_out *out)
{
#ifdef PNG_eXIf_SUPPORTED
    png_uint_32 n = 0;
    png_bytep e = NULL;
    if (!out->exif && png_get_eXIf_1(png, info, &n, &e) && e && n > 0) {
        out->exif_own = malloc(n);
        if (out->exif_own) {
            memcpy(out->exif_own, e, n);
            out->exif = out->exif_own;
            out->exif_len = n;
        }
    }
#else
    (void)png; (void)info; (void)out;
#endif
}

int cdx_decode_png(clipdex_ctx *ctx, const uint8_t *data, size_t len,
                   const struct cdx_decode_opts *o, clipdex_image *img, struct cdx_decode_out *out)
{
    /* The size is in IHDR, the first chunk: refuse bombs before libpng
     * reads further (it would want to see the chunks up to IDAT). */
    if (len >= 24 && memcmp(data + 12, "IHDR", 4) == 0) {
        uint32_t w = (uint32_t)data[16] << 24 | (uint32_t)data[17] << 16 | (uint32_t)data[18] << 8 | data[19];
        uint32_t h = (uint32_t)data[20] << 24 | (uint32_t)data[21] << 16 | (uint32_t)data[22] << 8 | data[23];
        int st0 = cdx_image_check_size(ctx, o, "PNG", w, h);
        if (st0) return st0;
    }
    struct png_src src;
    memset(&src, 0, sizeof src);
    src.data = data;
    src.len = len;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, on_error, on_warning);
    if (!png) return cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory");
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory");
    }
    png_bytep *volatile rows = NULL;
    volatile int st = CLIPDEX_OK;
    volatile int in_trailer = 0;
    if (setjmp(png_jmpbuf(png))) {
        if (in_trailer) goto finish; /* image complete: ignore a broken trailer */
        if (st == CLIPDEX_OK) st = cdx_error(ctx, CLIPDEX_E_IMAGE, "%s", src.msg[0] ? src.msg : "corrupt PNG");
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        free(img->pixels);
        img->pixels = NULL;
        return st;
    }
    png_set_read_fn(png, &src, on_read);
    png_set_user_limits(png, 0x7fffffffu, 0x7fffffffu); /* our own limits apply below */
    png_read_info(png, info);
    png_uint_32 w, h;
    int depth, ctype, interlace;
    png_get_IHDR(png, info, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
    if ((st = cdx_image_check_size(ctx, o, "PNG", w, h)) != 0) png_longjmp(png, 1);
    grab_exif(png, info, out);

    int mode;
    switch (ctype) {
    case PNG_COLOR_TYPE_GRAY:
        mode = depth == 1 ? CLIPDEX_MODE_1 : CLIPDEX_MODE_L;
        if (depth < 8) png_set_expand_gray_1_2_4_to_8(png);
        break;
    case PNG_COLOR_TYPE_PALETTE:
        mode = CLIPDEX_MODE_P;
        if (depth < 8) png_set_packing(png);
        break;
    case PNG_COLOR_TYPE_GRAY_ALPHA:
        mode = depth == 16 ? CLIPDEX_MODE_RGBA : CLIPDEX_MODE_LA;
        if (depth == 16) png_set_gray_to_rgb(png);
        break;
    case PNG_COLOR_TYPE_RGB: mode = CLIPDEX_MODE_RGB; break;
    case PNG_COLOR_TYPE_RGB_ALPHA: mode = CLIPDEX_MODE_RGBA; break;
    default:
        st = cdx_error(ctx, CLIPDEX_E_IMAGE, "corrupt PNG: color type %d", ctype);
        png_longjmp(png, 1);
    }
    if (depth == 16) png_set_strip_16(png); /* high byte, as Pillow's ;16B unpackers */
    if (interlace != PNG_INTERLACE_NONE) png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if ((st = cdx_image_alloc(ctx, img, w, h, mode, "png")) != 0) png_longjmp(png, 1);
    size_t stride = (size_t)w * img->channels;
    if (png_get_rowbytes(png, info) != stride) {
        st = cdx_error(ctx, CLIPDEX_E_INTERNAL, "PNG row size mismatch");
        png_longjmp(png, 1);
    }
    if (mode == CLIPDEX_MODE_P) {
        png_colorp pal = NULL;
        int npal = 0;
        if (png_get_PLTE(png, info, &pal, &npal) && pal) {
            for (int i = 0; i < npal && i < 256; i++) {
                img->palette[3 * i] = pal[i].red;
                img->palette[3 * i + 1] = pal[i].green;
                img->palette[3 * i + 2] = pal[i].blue;
            }
        }
    }
    rows = malloc((size_t)h * sizeof *rows);
    if (!rows) {
        st = cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory");
        png_longjmp(png, 1);
    }
    for (png_uint_32 y = 0; y < h; y++) rows[y] = img->pixels + (size_t)y * stride;
    png_read_image(png, rows);
    if (mode == CLIPDEX_MODE_1) /* expanded 1-bit gray is 0/255 already; normalise anyway */
        for (size_t i = 0; i < stride * h; i++) img->pixels[i] = img->pixels[i] ? 255 : 0;
    in_trailer = 1;
    png_read_end(png, info);
    grab_exif(png, info, out);
finish:
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    return CLIPDEX_OK;
}
