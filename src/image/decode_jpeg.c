/*
 * decode_jpeg.c - JPEG through libjpeg-turbo with the settings Pillow uses
 * (ISLOW DCT, fancy upsampling, libjpeg's own colour conversion), so pixels
 * equal PIL's decode of the same file.
 *
 * Modes as Pillow opens them: 1 component -> L, 3 -> RGB, 4 -> CMYK kept
 * internally and inverted like Pillow's "CMYK;I" rawmode (Pillow always
 * assumes Adobe polarity). Errors never exit: error_exit longjmps back here.
 * Running out of data (libjpeg's JWRN_JPEG_EOF, "premature end of JPEG
 * file") is an error, "truncated JPEG", as in Pillow with
 * LOAD_TRUNCATED_IMAGES = False; other libjpeg warnings (corrupt data,
 * extraneous bytes) are tolerated like Pillow tolerates them.
 * With clipdex_image_params.jpeg_scale_target set (opt-in, off by default)
 * a large JPEG is decoded already reduced by libjpeg-turbo's scaled IDCT;
 * the default path is untouched and stays Pillow-exact.
 * Invariant: the size is checked against the limits after jpeg_read_header
 * and before jpeg_start_decompress allocates anything large.
 */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "image/image.h"

struct jerr {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
    int truncated;
};

static void on_error_exit(j_common_ptr cinfo)
{
    struct jerr *e = (struct jerr *)cinfo->err;
    cinfo->err->format_message(cinfo, e->msg);
    longjmp(e->jb, 1);
}

static void on_emit_message(j_common_ptr cinfo, int level)
{
    struct jerr *e = (struct jerr *)cinfo->err;
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
        e->truncated = 1;
        longjmp(e->jb, 1);
    }
    if (level < 0) cinfo->err->num_warnings++;
}

static void on_output_message(j_common_ptr cinfo) { (void)cinfo; }

int cdx_decode_jpeg(clipdex_ctx *ctx, const uint8_t *data, size_t len,
                    const struct cdx_decode_opts *o, clipdex_image *img, struct cdx_decode_out *out)
{
    struct jpeg_decompress_struct cinfo;
    struct jerr err;
    memset(&cinfo, 0, sizeof cinfo);
    memset(&err, 0, sizeof err);
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_error_exit;
    err.pub.emit_message = on_emit_message;
    err.pub.output_message = on_output_message;
    volatile int st = CLIPDEX_OK;
    if (setjmp(err.jb)) {
        if (st == CLIPDEX_OK) {
            st = CLIPDEX_E_IMAGE;
            if (err.truncated)
                cdx_error(ctx, st, "truncated JPEG (premature end of data)");
            else
                cdx_error(ctx, st, "corrupt JPEG: %s", err.msg);
        }
        jpeg_destroy_decompress(&cinfo);
        free(img->pixels);
        img->pixels = NULL;
        return st;
    }
    jpeg_create_decompress(&cinfo);
    if (len > (size_t)(unsigned long)-1) len = (unsigned long)-1;
    jpeg_mem_src(&cinfo, data, (unsigned long)len);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&cinfo, TRUE);

    int mode;
    switch (cinfo.num_components) {
    case 1: mode = CLIPDEX_MODE_L; cinfo.out_color_space = JCS_GRAYSCALE; break;
    case 3: mode = CLIPDEX_MODE_RGB; cinfo.out_color_space = JCS_RGB; break;
    case 4: mode = CDX_MODE_CMYK; cinfo.out_color_space = JCS_CMYK; break;
    default:
        st = cdx_error(ctx, CLIPDEX_E_UNSUPPORTED, "JPEG with %d components is not supported",
                       cinfo.num_components);
        longjmp(err.jb, 1);
    }
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;
    if ((st = cdx_image_check_size(ctx, o, "JPEG", cinfo.image_width, cinfo.image_height)) != 0)
        longjmp(err.jb, 1);
    for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next) {
        if (m->marker == JPEG_APP0 + 1 && m->data_length > 6 && memcmp(m->data, "Exif\0\0", 6) == 0) {
            out->exif_own = malloc(m->data_length - 6);
            if (out->exif_own) {
                memcpy(out->exif_own, m->data + 6, m->data_length - 6);
                out->exif = out->exif_own;
                out->exif_len = m->data_length - 6;
            }
            break;
        }
    }
    /* Opt-in fast path: DCT-domain downscaling by num/8, the smallest num
     * whose output keeps the shorter side >= the target (libjpeg rounds the
     * scaled size up). Only when the image is at least twice the target. */
    if (o->jpeg_scale_target) {
        uint64_t t = o->jpeg_scale_target;
        uint64_t s = cinfo.image_width < cinfo.image_height ? cinfo.image_width : cinfo.image_height;
        if (s >= 2 * t) {
            unsigned num = 8;
            for (unsigned k = 1; k < 8; k++)
                if ((s * k + 7) / 8 >= t) { num = k; break; }
            cinfo.scale_num = num;
            cinfo.scale_denom = 8;
        }
    }
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_components != (mode == CLIPDEX_MODE_L ? 1 : mode == CLIPDEX_MODE_RGB ? 3 : 4)) {
        st = cdx_error(ctx, CLIPDEX_E_IMAGE, "corrupt JPEG: unexpected output components");
        longjmp(err.jb, 1);
    }
    if ((st = cdx_image_alloc(ctx, img, cinfo.output_width, cinfo.output_height, mode, "jpeg")) != 0)
        longjmp(err.jb, 1);
    size_t stride = (size_t)img->width * img->channels;
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = img->pixels + (size_t)cinfo.output_scanline * stride;
        if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) {
            err.truncated = 1;
            longjmp(err.jb, 1);
        }
    }
    if (mode == CDX_MODE_CMYK) { /* Pillow's "CMYK;I": Adobe writes inverted CMYK */
        size_t n = stride * img->height;
        for (size_t i = 0; i < n; i++) img->pixels[i] = (uint8_t)(255 - img->pixels[i]);
    }
    /* Not jpeg_finish_decompress: like Pillow, data after the last scanline
     * (a missing EOI, trailing bytes) does not matter. */
    jpeg_destroy_decompress(&cinfo);
    return CLIPDEX_OK;
}
