/*
 * decode_gif.c - the first frame of a GIF through giflib, as Pillow 9.4
 * opens it: mode P with the frame's palette (local, else global), or L when
 * there is none or it is the identity gray ramp (Pillow drops such
 * palettes). The canvas is the logical screen, grown to hold the frame if
 * the frame sticks out (as Pillow does); pixels outside the frame hold the
 * transparent index if the frame has one, else 0. Interlaced frames are
 * de-interlaced. Only the records up to the first image are read, so later
 * frames cannot cost anything.
 * Invariant: the canvas size is checked against the limits before any pixel
 * allocation; every giflib failure, including running out of data, is
 * CLIPDEX_E_IMAGE.
 */
#include <stdlib.h>
#include <string.h>

#include <gif_lib.h>

#include "image/image.h"

struct gif_src {
    const uint8_t *data;
    size_t len, pos;
};

static int on_read(GifFileType *gif, GifByteType *dst, int n)
{
    struct gif_src *s = gif->UserData;
    if (n <= 0) return 0;
    size_t k = (size_t)n;
    if (k > s->len - s->pos) k = s->len - s->pos;
    memcpy(dst, s->data + s->pos, k);
    s->pos += k;
    return (int)k;
}

/* Pillow keeps a palette only if it is not 0,0,0 1,1,1 2,2,2 ... */
static int palette_needed(const ColorMapObject *cm)
{
    for (int i = 0; i < cm->ColorCount; i++) {
        const GifColorType *c = &cm->Colors[i];
        if (!(c->Red == i && c->Green == i && c->Blue == i)) return 1;
    }
    return 0;
}

static int gif_fail(clipdex_ctx *ctx, GifFileType *gif, clipdex_image *img, const char *what)
{
    int code = gif ? gif->Error : 0;
    const char *s = code ? GifErrorString(code) : NULL;
    int st = cdx_error(ctx, CLIPDEX_E_IMAGE, "%s GIF%s%s", what, s ? ": " : "", s ? s : "");
    if (gif) DGifCloseFile(gif, NULL);
    free(img->pixels);
    img->pixels = NULL;
    return st;
}

int cdx_decode_gif(clipdex_ctx *ctx, const uint8_t *data, size_t len,
                   const struct cdx_decode_opts *o, clipdex_image *img, struct cdx_decode_out *out)
{
    (void)out;
    struct gif_src src = {data, len, 0};
    int err = 0;
    GifFileType *gif = DGifOpen(&src, on_read, &err);
    if (!gif) {
        const char *s = GifErrorString(err);
        return cdx_error(ctx, CLIPDEX_E_IMAGE, "corrupt or truncated GIF header%s%s", s ? ": " : "", s ? s : "");
    }
    int transparency = -1;
    for (;;) {
        GifRecordType rt;
        if (DGifGetRecordType(gif, &rt) == GIF_ERROR) return gif_fail(ctx, gif, img, "truncated or corrupt");
        if (rt == TERMINATE_RECORD_TYPE) return gif_fail(ctx, gif, img, "no image in");
        if (rt == EXTENSION_RECORD_TYPE) {
            int code;
            GifByteType *ext;
            if (DGifGetExtension(gif, &code, &ext) == GIF_ERROR) return gif_fail(ctx, gif, img, "corrupt");
            if (code == GRAPHICS_EXT_FUNC_CODE && ext && ext[0] >= 4) {
                /* Pillow keeps the last control block before the image */
                transparency = (ext[1] & 1) ? ext[4] : -1;
            }
            while (ext) {
                if (DGifGetExtensionNext(gif, &ext) == GIF_ERROR) return gif_fail(ctx, gif, img, "truncated or corrupt");
            }
            continue;
        }
        if (rt != IMAGE_DESC_RECORD_TYPE) continue;
        if (DGifGetImageDesc(gif) == GIF_ERROR) return gif_fail(ctx, gif, img, "truncated or corrupt");
        GifImageDesc *d = &gif->Image;
        uint64_t x0 = (uint64_t)d->Left, y0 = (uint64_t)d->Top;
        uint64_t fw = (uint64_t)d->Width, fh = (uint64_t)d->Height;
        uint64_t cw = (uint64_t)gif->SWidth, chh = (uint64_t)gif->SHeight;
        if (x0 + fw > cw) cw = x0 + fw;
        if (y0 + fh > chh) chh = y0 + fh;
        int st = cdx_image_check_size(ctx, o, "GIF", cw, chh);
        if (st) {
            DGifCloseFile(gif, NULL);
            return st;
        }
        const ColorMapObject *cm = d->ColorMap ? d->ColorMap : gif->SColorMap;
        int mode = cm && cm->Colors && palette_needed(cm) ? CLIPDEX_MODE_P : CLIPDEX_MODE_L;
        if ((st = cdx_image_alloc(ctx, img, (uint32_t)cw, (uint32_t)chh, mode, "gif")) != 0) {
            DGifCloseFile(gif, NULL);
            return st;
        }
        if (mode == CLIPDEX_MODE_P)
            for (int i = 0; i < cm->ColorCount && i < 256; i++) {
                img->palette[3 * i] = cm->Colors[i].Red;
                img->palette[3 * i + 1] = cm->Colors[i].Green;
                img->palette[3 * i + 2] = cm->Colors[i].Blue;
            }
        memset(img->pixels, transparency >= 0 ? transparency : 0, (size_t)cw * chh);
        if (fw == 0 || fh == 0) break;
        GifPixelType *line = malloc((size_t)fw);
        if (!line) {
            DGifCloseFile(gif, NULL);
            free(img->pixels);
            img->pixels = NULL;
            return cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory");
        }
        static const int start[4] = {0, 4, 2, 1}, step[4] = {8, 8, 4, 2};
        int passes = d->Interlace ? 4 : 1;
        for (int p = 0; p < passes; p++) {
            for (uint64_t r = d->Interlace ? (uint64_t)start[p] : 0; r < fh; r += d->Interlace ? (uint64_t)step[p] : 1) {
                if (DGifGetLine(gif, line, (int)fw) == GIF_ERROR) {
                    free(line);
                    return gif_fail(ctx, gif, img, "truncated or corrupt");
                }
                memcpy(img->pixels + (size_t)(y0 + r) * cw + x0, line, (size_t)fw);
            }
        }
        free(line);
        break;
    }
    DGifCloseFile(gif, NULL);
    return CLIPDEX_OK;
}
