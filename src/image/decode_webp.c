/*
 * decode_webp.c - WebP through libwebp's animation decoder, the way Pillow
 * 9.4 reads every WebP (still or animated): the first frame composited on
 * the canvas in non-premultiplied RGBA; the mode is RGBA when the file has
 * alpha, else RGB. The EXIF chunk, if any, is handed back for orientation.
 * Invariant: the canvas size from the header is checked against the limits
 * before the decoder allocates its canvas.
 */
#include <stdlib.h>
#include <string.h>

#include <webp/decode.h>
#include <webp/demux.h>

#include "image/image.h"

int cdx_decode_webp(clipdex_ctx *ctx, const uint8_t *data, size_t len,
                    const struct cdx_decode_opts *o, clipdex_image *img, struct cdx_decode_out *out)
{
    WebPBitstreamFeatures f;
    VP8StatusCode vs = WebPGetFeatures(data, len, &f);
    if (vs == VP8_STATUS_NOT_ENOUGH_DATA)
        return cdx_error(ctx, CLIPDEX_E_IMAGE, "truncated WebP header");
    if (vs != VP8_STATUS_OK) return cdx_error(ctx, CLIPDEX_E_IMAGE, "corrupt WebP header (status %d)", (int)vs);
    if (f.width <= 0 || f.height <= 0) return cdx_error(ctx, CLIPDEX_E_IMAGE, "corrupt WebP: empty size");
    int st = cdx_image_check_size(ctx, o, "WebP", (uint64_t)f.width, (uint64_t)f.height);
    if (st) return st;

    WebPData wd = {data, len};
    WebPAnimDecoderOptions opt;
    if (!WebPAnimDecoderOptionsInit(&opt)) return cdx_error(ctx, CLIPDEX_E_INTERNAL, "libwebp version mismatch");
    opt.color_mode = MODE_RGBA;
    opt.use_threads = 0;
    WebPAnimDecoder *dec = WebPAnimDecoderNew(&wd, &opt);
    if (!dec) return cdx_error(ctx, CLIPDEX_E_IMAGE, "corrupt or truncated WebP");
    WebPAnimInfo ai;
    uint8_t *rgba = NULL;
    int ts = 0;
    if (!WebPAnimDecoderGetInfo(dec, &ai) || ai.canvas_width != (uint32_t)f.width ||
        ai.canvas_height != (uint32_t)f.height) {
        WebPAnimDecoderDelete(dec);
        return cdx_error(ctx, CLIPDEX_E_IMAGE, "corrupt WebP: inconsistent canvas size");
    }
    if (!WebPAnimDecoderGetNext(dec, &rgba, &ts) || !rgba) {
        WebPAnimDecoderDelete(dec);
        return cdx_error(ctx, CLIPDEX_E_IMAGE, "corrupt or truncated WebP image data");
    }
    int mode = f.has_alpha ? CLIPDEX_MODE_RGBA : CLIPDEX_MODE_RGB;
    st = cdx_image_alloc(ctx, img, (uint32_t)f.width, (uint32_t)f.height, mode, "webp");
    if (st == CLIPDEX_OK) {
        size_t n = (size_t)img->width * img->height;
        if (mode == CLIPDEX_MODE_RGBA)
            memcpy(img->pixels, rgba, n * 4);
        else
            for (size_t i = 0; i < n; i++) memcpy(img->pixels + 3 * i, rgba + 4 * i, 3);
        const WebPDemuxer *dmx = WebPAnimDecoderGetDemuxer(dec);
        WebPChunkIterator it;
        if (dmx && WebPDemuxGetChunk(dmx, "EXIF", 1, &it)) {
            if (it.chunk.size > 0 && (out->exif_own = malloc(it.chunk.size)) != NULL) {
                memcpy(out->exif_own, it.chunk.bytes, it.chunk.size);
                out->exif = out->exif_own;
                out->exif_len = it.chunk.size;
            }
            WebPDemuxReleaseChunkIterator(&it);
        }
    }
    WebPAnimDecoderDelete(dec);
    return st;
}
