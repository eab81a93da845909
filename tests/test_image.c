/*
 * test_image.c - image decoding and preprocessing against OpenAI's reference
 * (shared/reference/tiny-s1001: golden.json + golden_inputs.npz), the
 * known-answer transform in shared/data/known-answers/clip_data.json, the
 * Pillow goldens in tests/golden/image (made by tools/ref_preprocess.py),
 * round trips through every format's encoder, EXIF orientation, and the
 * error paths (truncated, empty, wrong format, decompression bombs).
 */
#include <jansson.h>
#include <png.h>
#include <gif_lib.h>
#include <tiffio.h>
#include <webp/encode.h>
#include <zlib.h>

#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "clipdex.h"
#include "npz.h"

static const float MEAN[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float STD[3] = {0.26862954f, 0.26130258f, 0.27577711f};

static char tmpdir[256];

static uint32_t fnv1a(const uint8_t *p, size_t n)
{
    uint32_t h = 0x811C9DC5u;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x01000193u;
    }
    return h;
}

static const char *mode_name(int m)
{
    switch (m) {
    case CLIPDEX_MODE_1: return "1";
    case CLIPDEX_MODE_L: return "L";
    case CLIPDEX_MODE_LA: return "LA";
    case CLIPDEX_MODE_P: return "P";
    case CLIPDEX_MODE_RGB: return "RGB";
    case CLIPDEX_MODE_RGBA: return "RGBA";
    default: return "?";
    }
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    if (b && n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)(n > 0 ? n : 0);
    return b;
}

static int write_all(const char *path, const void *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(d, 1, n, f);
    fclose(f);
    return w == n ? 0 : -1;
}

/* ------------------------------------------------------------------------ */
/* OpenAI reference goldens                                                  */
/* ------------------------------------------------------------------------ */

static void test_reference(clipdex_ctx *ctx, const char *shared)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/reference/tiny-s1001/golden.json", shared);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    CHECK(root != NULL, "cannot parse %s: %s", path, jerr.text);
    if (!root) return;
    snprintf(path, sizeof path, "%s/reference/tiny-s1001/golden_inputs.npz", shared);
    npz_file *z = NULL;
    npz_array a;
    CHECK(npz_open(path, &z) == 0, "cannot open %s", path);
    int rc = z ? npz_find(z, "images", &a) : -1;
    CHECK(rc == 0 && strcmp(a.dtype, "<f4") == 0 && a.ndim == 4 && a.shape[1] == 3 &&
              a.shape[2] == 224 && a.shape[3] == 224,
          "images.npy: rc %d", rc);
    if (rc != 0) {
        npz_close(z);
        json_decref(root);
        return;
    }
    json_t *images = json_object_get(root, "images");
    size_t n = json_array_size(images);
    CHECK(n == a.shape[0], "golden.json lists %zu images, npz holds %zu", n, a.shape[0]);
    const size_t plane = 224 * 224, per = 3 * plane;
    float *got = malloc(per * sizeof(float)), *want = malloc(per * sizeof(float));
    clipdex_image_params ip = clipdex_image_params_default();
    ip.ignore_exif_orientation = 1;
    for (size_t i = 0; i < n && i < a.shape[0]; i++) {
        json_t *im = json_array_get(images, i);
        const char *rel = json_string_value(json_object_get(im, "path"));
        const char *mode = json_string_value(json_object_get(im, "mode"));
        snprintf(path, sizeof path, "%s/%s", shared, rel);
        clipdex_image *img = NULL;
        int st = clipdex_image_load(ctx, path, &ip, &img);
        CHECK(st == CLIPDEX_OK, "load %s: %s", path, clipdex_ctx_errmsg(ctx));
        if (st) continue;
        json_t *size = json_object_get(im, "size");
        CHECK(strcmp(mode_name(clipdex_image_mode(img)), mode) == 0, "%s: mode %s, want %s", rel,
              mode_name(clipdex_image_mode(img)), mode);
        CHECK(clipdex_image_width(img) == json_integer_value(json_array_get(size, 0)) &&
                  clipdex_image_height(img) == json_integer_value(json_array_get(size, 1)),
              "%s: size %ux%u", rel, clipdex_image_width(img), clipdex_image_height(img));
        st = clipdex_image_preprocess(ctx, img, 224, MEAN, STD, got, per);
        CHECK(st == CLIPDEX_OK, "preprocess %s: %s", rel, clipdex_ctx_errmsg(ctx));
        memcpy(want, (const uint8_t *)a.data + i * per * sizeof(float), per * sizeof(float));
        double maxerr = 0, mean[3] = {0, 0, 0};
        size_t off = 0;
        for (size_t k = 0; k < per; k++) {
            double e = fabs((double)got[k] - want[k]);
            if (e > maxerr) maxerr = e;
            if (e > 1e-6) off++;
            mean[k / plane] += got[k];
        }
        int is_png = strstr(rel, ".png") != NULL;
        /* one 8-bit level is 1/255/std <= 0.0151 */
        double tol = is_png ? 1e-6 : 0.0152;
        CHECK(maxerr <= tol, "%s: max abs error %.3g (> %.3g), %zu values differ", rel, maxerr, tol, off);
        printf("  %-45s %-4s max abs err %.3g, %zu/%zu values differ\n", rel, mode, maxerr, off, per);
        json_t *f8 = json_object_get(im, "preprocessed_first8");
        for (size_t k = 0; k < 8 && is_png; k++)
            CHECK(fabs(got[k] - json_real_value(json_array_get(f8, k))) < 1e-6, "%s: first8[%zu]", rel, k);
        json_t *cm = json_object_get(im, "preprocessed_channel_mean");
        for (int c = 0; c < 3; c++)
            CHECK(fabs(mean[c] / plane - json_real_value(json_array_get(cm, c))) < (is_png ? 1e-5 : 1e-3),
                  "%s: channel mean %d: %.7f vs %.7f", rel, c, mean[c] / plane,
                  json_real_value(json_array_get(cm, c)));
        clipdex_image_free(img);
    }
    free(got);
    free(want);
    npz_close(z);
    json_decref(root);
}

/* clip_data.json: transform_input is an HWC uint8 image, transform_output the
 * preprocessed HWC float image at transform_resolution. */
static void test_known_answer(clipdex_ctx *ctx, const char *shared)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/data/known-answers/clip_data.json", shared);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        SKIP("cannot read %s", path);
        return;
    }
    int res = (int)json_integer_value(json_object_get(root, "transform_resolution"));
    json_t *in = json_object_get(root, "transform_input"), *outj = json_object_get(root, "transform_output");
    size_t h = json_array_size(in), w = json_array_size(json_array_get(in, 0));
    CHECK(res > 0 && h > 0 && w > 0, "transform_* missing");
    if (!(res > 0 && h > 0 && w > 0)) {
        json_decref(root);
        return;
    }
    char hdr[64];
    int hl = snprintf(hdr, sizeof hdr, "P6\n%zu %zu\n255\n", w, h);
    size_t n = (size_t)hl + w * h * 3;
    uint8_t *ppm = malloc(n);
    memcpy(ppm, hdr, (size_t)hl);
    for (size_t y = 0; y < h; y++)
        for (size_t x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                ppm[hl + (y * w + x) * 3 + c] =
                    (uint8_t)json_integer_value(json_array_get(json_array_get(json_array_get(in, y), x), c));
    clipdex_image *img = NULL;
    int st = clipdex_image_decode(ctx, ppm, n, NULL, &img);
    CHECK(st == CLIPDEX_OK, "decode transform_input: %s", clipdex_ctx_errmsg(ctx));
    float *got = calloc((size_t)3 * res * res, sizeof(float));
    if (st == CLIPDEX_OK) st = clipdex_image_preprocess(ctx, img, res, MEAN, STD, got, (size_t)3 * res * res);
    CHECK(st == CLIPDEX_OK, "preprocess transform_input: %s", clipdex_ctx_errmsg(ctx));
    double maxerr = 0;
    for (int y = 0; y < res; y++)
        for (int x = 0; x < res; x++)
            for (int c = 0; c < 3; c++) {
                double want = json_number_value(json_array_get(json_array_get(json_array_get(outj, y), x), c));
                double e = fabs(got[(size_t)c * res * res + (size_t)y * res + x] - want);
                if (e > maxerr) maxerr = e;
            }
    CHECK(maxerr <= 1e-5, "transform known answer: max abs error %.3g", maxerr);
    printf("  clip_data.json transform (%zux%zu -> %d): max abs err %.3g\n", w, h, res, maxerr);
    clipdex_image_free(img);
    free(got);
    free(ppm);
    json_decref(root);
}

/* ------------------------------------------------------------------------ */
/* Pillow goldens (tests/golden/image/manifest.txt)                         */
/* ------------------------------------------------------------------------ */

static void test_pillow_goldens(clipdex_ctx *ctx)
{
    const char *dir = "tests/golden/image";
    char path[1024];
    snprintf(path, sizeof path, "%s/manifest.txt", dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "cannot open %s", path);
    if (!f) return;
    char line[512];
    int lines = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        char name[128], mode[8];
        unsigned w, h, size, fnv;
        int orient;
        if (sscanf(line, "%127s %7s %u %u %u %x %d", name, mode, &w, &h, &size, &fnv, &orient) != 7) continue;
        lines++;
        snprintf(path, sizeof path, "%s/%s", dir, name);
        clipdex_image_params ip = clipdex_image_params_default();
        ip.ignore_exif_orientation = orient == 0;
        clipdex_image *img = NULL;
        int st = clipdex_image_load(ctx, path, &ip, &img);
        CHECK(st == CLIPDEX_OK, "load %s: %s", name, clipdex_ctx_errmsg(ctx));
        if (st) continue;
        const char *want_mode = strcmp(mode, "CMYK") == 0 ? "RGB" : mode; /* CMYK is reported as RGB */
        CHECK(strcmp(mode_name(clipdex_image_mode(img)), want_mode) == 0, "%s: mode %s, want %s", name,
              mode_name(clipdex_image_mode(img)), mode);
        CHECK(clipdex_image_width(img) == w && clipdex_image_height(img) == h, "%s (orient %d): %ux%u, want %ux%u",
              name, orient, clipdex_image_width(img), clipdex_image_height(img), w, h);
        uint8_t *crop = malloc((size_t)size * size * 3);
        st = clipdex_image_crop_rgb(ctx, img, (int)size, crop, (size_t)size * size * 3);
        CHECK(st == CLIPDEX_OK, "crop %s: %s", name, clipdex_ctx_errmsg(ctx));
        uint32_t got = fnv1a(crop, (size_t)size * size * 3);
        CHECK(got == fnv, "%s size %u orient %d: crop checksum %08x, Pillow's %08x", name, size, orient, got, fnv);
        free(crop);
        clipdex_image_free(img);
    }
    fclose(f);
    CHECK(lines >= 40, "manifest has only %d entries", lines);
}

/* ------------------------------------------------------------------------ */
/* Round trips through the encoders                                         */
/* ------------------------------------------------------------------------ */

static uint32_t rng_state = 12345;
static uint8_t rnd8(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return (uint8_t)(rng_state >> 16);
}

/* Writes a PNG with libpng: `samples` holds one byte per sample (values
 * already within the bit depth; 16-bit samples are given as two bytes). */
static int write_png(const char *path, uint32_t w, uint32_t h, int ctype, int depth, const uint8_t *packed_rows,
                     size_t rowbytes, const png_color *pal, int npal, int interlace)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, w, h, depth, ctype, interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (pal) png_set_PLTE(png, info, pal, npal);
    png_write_info(png, info);
    png_bytep *rows = malloc(h * sizeof *rows);
    for (uint32_t y = 0; y < h; y++) rows[y] = (png_bytep)packed_rows + y * rowbytes;
    png_write_image(png, rows);
    png_write_end(png, info);
    free(rows);
    png_destroy_write_struct(&png, &info);
    fclose(f);
    return 0;
}

static clipdex_image *load_noexif(clipdex_ctx *ctx, const char *path)
{
    clipdex_image_params ip = clipdex_image_params_default();
    ip.ignore_exif_orientation = 1;
    clipdex_image *img = NULL;
    int st = clipdex_image_load(ctx, path, &ip, &img);
    CHECK(st == CLIPDEX_OK, "load %s: %s", path, clipdex_ctx_errmsg(ctx));
    return img;
}

/* Checks an image's mode/size and its crop at the image's own size (no
 * resampling) against expected RGB pixels. */
static void expect_rgb(clipdex_ctx *ctx, const char *what, clipdex_image *img, int mode, uint32_t w,
                       const uint8_t *rgb)
{
    if (!img) return;
    CHECK(clipdex_image_mode(img) == mode, "%s: mode %s, want %s", what, mode_name(clipdex_image_mode(img)),
          mode_name(mode));
    CHECK(clipdex_image_width(img) == w && clipdex_image_height(img) == w, "%s: size %ux%u", what,
          clipdex_image_width(img), clipdex_image_height(img));
    uint8_t *got = malloc((size_t)w * w * 3);
    int st = clipdex_image_crop_rgb(ctx, img, (int)w, got, (size_t)w * w * 3);
    CHECK(st == CLIPDEX_OK && memcmp(got, rgb, (size_t)w * w * 3) == 0, "%s: pixels differ", what);
    free(got);
}

static void test_roundtrips(clipdex_ctx *ctx)
{
    enum { W = 19 }; /* square, so the crop at size W is the image itself */
    char path[512];
    uint8_t rgb[W * W * 3], rgba[W * W * 4], gray[W * W], exp[W * W * 3], packed[W * 8 * W];
    for (int i = 0; i < W * W * 3; i++) rgb[i] = rnd8();
    for (int i = 0; i < W * W * 4; i++) rgba[i] = rnd8();
    for (int i = 0; i < W * W; i++) rgba[4 * i + 3] |= 1; /* lossless WebP keeps colour only under alpha > 0 */
    for (int i = 0; i < W * W; i++) gray[i] = rnd8();

    /* PNG gray at 1, 2, 4, 8 and 16 bits */
    static const int depths[] = {1, 2, 4, 8, 16};
    for (int di = 0; di < 5; di++) {
        int d = depths[di];
        size_t rb = ((size_t)W * d + 7) / 8;
        memset(packed, 0, sizeof packed);
        for (int y = 0; y < W; y++)
            for (int x = 0; x < W; x++) {
                uint32_t v = d == 16 ? gray[y * W + x] : (uint32_t)gray[y * W + x] >> (8 - d);
                if (d == 16) {
                    packed[y * rb + 2 * x] = (uint8_t)v;
                    packed[y * rb + 2 * x + 1] = rnd8();
                } else {
                    packed[y * rb + (size_t)x * d / 8] |= (uint8_t)(v << (8 - d - (x * d) % 8));
                }
                uint8_t e = d == 16 ? (uint8_t)v : (uint8_t)(v * 255 / ((1u << d) - 1));
                exp[3 * (y * W + x)] = exp[3 * (y * W + x) + 1] = exp[3 * (y * W + x) + 2] = e;
            }
        snprintf(path, sizeof path, "%s/gray%d.png", tmpdir, d);
        CHECK(write_png(path, W, W, PNG_COLOR_TYPE_GRAY, d, packed, rb, NULL, 0, di == 3) == 0, "write %s", path);
        clipdex_image *img = load_noexif(ctx, path);
        expect_rgb(ctx, path, img, d == 1 ? CLIPDEX_MODE_1 : CLIPDEX_MODE_L, W, exp);
        CHECK(img && strcmp(clipdex_image_format(img), "png") == 0, "format");
        clipdex_image_free(img);
    }
    /* PNG palette, 4-bit, interlaced */
    {
        png_color pal[16];
        for (int i = 0; i < 16; i++) pal[i].red = rnd8(), pal[i].green = rnd8(), pal[i].blue = rnd8();
        size_t rb = (W * 4 + 7) / 8;
        memset(packed, 0, sizeof packed);
        for (int y = 0; y < W; y++)
            for (int x = 0; x < W; x++) {
                int v = gray[y * W + x] & 15;
                packed[y * rb + x / 2] |= (uint8_t)(v << (x % 2 ? 0 : 4));
                exp[3 * (y * W + x)] = pal[v].red;
                exp[3 * (y * W + x) + 1] = pal[v].green;
                exp[3 * (y * W + x) + 2] = pal[v].blue;
            }
        snprintf(path, sizeof path, "%s/pal4.png", tmpdir);
        CHECK(write_png(path, W, W, PNG_COLOR_TYPE_PALETTE, 4, packed, rb, pal, 16, 1) == 0, "write %s", path);
        clipdex_image *img = load_noexif(ctx, path);
        expect_rgb(ctx, path, img, CLIPDEX_MODE_P, W, exp);
        clipdex_image_free(img);

        /* the same as a GIF (giflib's encoder), interlaced */
        snprintf(path, sizeof path, "%s/pal.gif", tmpdir);
        int err = 0;
        GifFileType *g = EGifOpenFileName(path, 0, &err);
        CHECK(g != NULL, "EGifOpenFileName: %d", err);
        if (g) {
            GifColorType cols[16];
            for (int i = 0; i < 16; i++) cols[i].Red = pal[i].red, cols[i].Green = pal[i].green, cols[i].Blue = pal[i].blue;
            ColorMapObject *cm = GifMakeMapObject(16, cols);
            EGifPutScreenDesc(g, W, W, 4, 0, cm);
            EGifPutImageDesc(g, 0, 0, W, W, 1, NULL);
            static const int start[4] = {0, 4, 2, 1}, step[4] = {8, 8, 4, 2};
            GifPixelType line[W];
            for (int p = 0; p < 4; p++)
                for (int y = start[p]; y < W; y += step[p]) {
                    for (int x = 0; x < W; x++) line[x] = gray[y * W + x] & 15;
                    EGifPutLine(g, line, W);
                }
            EGifCloseFile(g, &err);
            GifFreeMapObject(cm);
            img = load_noexif(ctx, path);
            expect_rgb(ctx, path, img, CLIPDEX_MODE_P, W, exp);
            CHECK(img && strcmp(clipdex_image_format(img), "gif") == 0, "format");
            clipdex_image_free(img);
        }
    }
    /* PNG LA, RGB 16-bit, RGBA */
    {
        uint8_t la[W * W * 2];
        for (int i = 0; i < W * W; i++) {
            la[2 * i] = gray[i];
            la[2 * i + 1] = rgb[i];
            exp[3 * i] = exp[3 * i + 1] = exp[3 * i + 2] = gray[i];
        }
        snprintf(path, sizeof path, "%s/la.png", tmpdir);
        write_png(path, W, W, PNG_COLOR_TYPE_GRAY_ALPHA, 8, la, W * 2, NULL, 0, 0);
        clipdex_image *img = load_noexif(ctx, path);
        expect_rgb(ctx, path, img, CLIPDEX_MODE_LA, W, exp);
        clipdex_image_free(img);

        uint8_t rgb16[W * W * 6];
        for (int i = 0; i < W * W * 3; i++) rgb16[2 * i] = rgb[i], rgb16[2 * i + 1] = rnd8();
        snprintf(path, sizeof path, "%s/rgb16.png", tmpdir);
        write_png(path, W, W, PNG_COLOR_TYPE_RGB, 16, rgb16, W * 6, NULL, 0, 0);
        img = load_noexif(ctx, path);
        expect_rgb(ctx, path, img, CLIPDEX_MODE_RGB, W, rgb);
        clipdex_image_free(img);

        for (int i = 0; i < W * W; i++) memcpy(exp + 3 * i, rgba + 4 * i, 3);
        snprintf(path, sizeof path, "%s/rgba.png", tmpdir);
        write_png(path, W, W, PNG_COLOR_TYPE_RGB_ALPHA, 8, rgba, W * 4, NULL, 0, 0);
        img = load_noexif(ctx, path);
        expect_rgb(ctx, path, img, CLIPDEX_MODE_RGBA, W, exp); /* alpha dropped, not composited */
        clipdex_image_free(img);

        /* WebP lossless RGBA */
        uint8_t *webp = NULL;
        size_t wl = WebPEncodeLosslessRGBA(rgba, W, W, W * 4, &webp);
        CHECK(wl > 0, "WebPEncodeLosslessRGBA");
        clipdex_image *wi = NULL;
        int st = clipdex_image_decode(ctx, webp, wl, NULL, &wi);
        CHECK(st == CLIPDEX_OK, "decode webp: %s", clipdex_ctx_errmsg(ctx));
        expect_rgb(ctx, "lossless webp", wi, CLIPDEX_MODE_RGBA, W, exp);
        clipdex_image_free(wi);
        WebPFree(webp);

        /* TIFF RGBA (unassociated alpha), LZW, tiled */
        snprintf(path, sizeof path, "%s/rgba.tif", tmpdir);
        TIFF *t = TIFFOpen(path, "w");
        CHECK(t != NULL, "TIFFOpen %s", path);
        if (t) {
            uint16_t ex = EXTRASAMPLE_UNASSALPHA;
            TIFFSetField(t, TIFFTAG_IMAGEWIDTH, W);
            TIFFSetField(t, TIFFTAG_IMAGELENGTH, W);
            TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 4);
            TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
            TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB);
            TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
            TIFFSetField(t, TIFFTAG_EXTRASAMPLES, 1, &ex);
            TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_LZW);
            TIFFSetField(t, TIFFTAG_TILEWIDTH, 16);
            TIFFSetField(t, TIFFTAG_TILELENGTH, 16);
            uint8_t tile[16 * 16 * 4];
            for (int ty = 0; ty < W; ty += 16)
                for (int tx = 0; tx < W; tx += 16) {
                    memset(tile, 0, sizeof tile);
                    for (int y = 0; y < 16 && ty + y < W; y++)
                        for (int x = 0; x < 16 && tx + x < W; x++)
                            memcpy(tile + (y * 16 + x) * 4, rgba + ((ty + y) * W + tx + x) * 4, 4);
                    TIFFWriteTile(t, tile, (uint32_t)tx, (uint32_t)ty, 0, 0);
                }
            TIFFClose(t);
            img = load_noexif(ctx, path);
            expect_rgb(ctx, path, img, CLIPDEX_MODE_RGBA, W, exp);
            CHECK(img && strcmp(clipdex_image_format(img), "tiff") == 0, "format");
            clipdex_image_free(img);
        }
    }
    /* PNM: P6 raw, P3 plain, P5 with maxval 1000 (2 bytes), P1 and P4 */
    {
        char buf[W * W * 16 + 64];
        int n = snprintf(buf, sizeof buf, "P6 %d %d 255\n", W, W);
        memcpy(buf + n, rgb, sizeof rgb);
        clipdex_image *img = NULL;
        int st = clipdex_image_decode(ctx, buf, (size_t)n + sizeof rgb, NULL, &img);
        CHECK(st == CLIPDEX_OK, "P6: %s", clipdex_ctx_errmsg(ctx));
        expect_rgb(ctx, "P6", img, CLIPDEX_MODE_RGB, W, rgb);
        clipdex_image_free(img);

        n = snprintf(buf, sizeof buf, "P3\n# plain\n%d %d\n255\n", W, W);
        for (int i = 0; i < W * W * 3; i++) n += snprintf(buf + n, sizeof buf - n, "%d%c", rgb[i], i % 12 == 11 ? '\n' : ' ');
        st = clipdex_image_decode(ctx, buf, (size_t)n, NULL, &img);
        CHECK(st == CLIPDEX_OK, "P3: %s", clipdex_ctx_errmsg(ctx));
        expect_rgb(ctx, "P3", img, CLIPDEX_MODE_RGB, W, rgb);
        clipdex_image_free(img);

        n = snprintf(buf, sizeof buf, "P5 %d %d 1000\n", W, W);
        for (int i = 0; i < W * W; i++) {
            unsigned v = gray[i] * 1000u / 255u;
            buf[n++] = (char)(v >> 8);
            buf[n++] = (char)(v & 255);
            uint8_t e = (uint8_t)rint((double)v / 1000 * 255.0);
            exp[3 * i] = exp[3 * i + 1] = exp[3 * i + 2] = e;
        }
        st = clipdex_image_decode(ctx, buf, (size_t)n, NULL, &img);
        CHECK(st == CLIPDEX_OK, "P5: %s", clipdex_ctx_errmsg(ctx));
        expect_rgb(ctx, "P5 maxval 1000", img, CLIPDEX_MODE_L, W, exp);
        clipdex_image_free(img);

        n = snprintf(buf, sizeof buf, "P1\n%d %d\n", W, W);
        for (int i = 0; i < W * W; i++) {
            int bit = gray[i] & 1;
            buf[n++] = bit ? '1' : '0';
            if (i % 7 == 0) buf[n++] = ' ';
            exp[3 * i] = exp[3 * i + 1] = exp[3 * i + 2] = bit ? 0 : 255;
        }
        st = clipdex_image_decode(ctx, buf, (size_t)n, NULL, &img);
        CHECK(st == CLIPDEX_OK, "P1: %s", clipdex_ctx_errmsg(ctx));
        expect_rgb(ctx, "P1", img, CLIPDEX_MODE_1, W, exp);
        clipdex_image_free(img);

        n = snprintf(buf, sizeof buf, "P4\n%d %d\n", W, W);
        int rb = (W + 7) / 8;
        memset(buf + n, 0, (size_t)rb * W);
        for (int y = 0; y < W; y++)
            for (int x = 0; x < W; x++)
                if (gray[y * W + x] & 1) buf[n + y * rb + x / 8] |= (char)(0x80 >> (x % 8));
        st = clipdex_image_decode(ctx, buf, (size_t)n + (size_t)rb * W, NULL, &img);
        CHECK(st == CLIPDEX_OK, "P4: %s", clipdex_ctx_errmsg(ctx));
        expect_rgb(ctx, "P4", img, CLIPDEX_MODE_1, W, exp);
        clipdex_image_free(img);
    }
    /* BMP 24-bit top-down, written by hand */
    {
        int row = (W * 3 + 3) & ~3;
        size_t n = 54 + (size_t)row * W;
        uint8_t *b = calloc(1, n);
        b[0] = 'B', b[1] = 'M';
        b[2] = (uint8_t)n, b[3] = (uint8_t)(n >> 8);
        b[10] = 54, b[14] = 40;
        b[18] = W;
        int32_t negh = -W;
        memcpy(b + 22, &negh, 4); /* little-endian host assumed by the test */
        b[26] = 1, b[28] = 24;
        for (int y = 0; y < W; y++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < 3; c++) b[54 + y * row + x * 3 + c] = rgb[(y * W + x) * 3 + 2 - c];
        clipdex_image *img = NULL;
        int st = clipdex_image_decode(ctx, b, n, NULL, &img);
        CHECK(st == CLIPDEX_OK, "BMP: %s", clipdex_ctx_errmsg(ctx));
        expect_rgb(ctx, "BMP top-down", img, CLIPDEX_MODE_RGB, W, rgb);
        CHECK(img && strcmp(clipdex_image_format(img), "bmp") == 0, "format");
        clipdex_image_free(img);
        st = clipdex_image_decode(ctx, b, n - 10, NULL, &img);
        CHECK(st == CLIPDEX_E_IMAGE && strstr(clipdex_ctx_errmsg(ctx), "truncated"), "truncated BMP: %d %s", st,
              clipdex_ctx_errmsg(ctx));
        free(b);
    }
}

/* ------------------------------------------------------------------------ */
/* Resampling properties                                                     */
/* ------------------------------------------------------------------------ */

static clipdex_image *ppm_image(clipdex_ctx *ctx, uint32_t w, uint32_t h, uint8_t (*px)(uint32_t x, uint32_t y, int c))
{
    char hdr[64];
    int hl = snprintf(hdr, sizeof hdr, "P6\n%u %u\n255\n", w, h);
    size_t n = (size_t)hl + (size_t)w * h * 3;
    uint8_t *b = malloc(n);
    memcpy(b, hdr, (size_t)hl);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) b[hl + ((size_t)y * w + x) * 3 + c] = px(x, y, c);
    clipdex_image *img = NULL;
    clipdex_image_decode(ctx, b, n, NULL, &img);
    free(b);
    return img;
}

static uint8_t px_const(uint32_t x, uint32_t y, int c) { (void)x; (void)y; return (uint8_t)(40 + 70 * c); }
static uint8_t px_pattern(uint32_t x, uint32_t y, int c) { return (uint8_t)((x * 7 + y * 13 + (uint32_t)c * 50) ^ (x * y)); }

static void test_resample(clipdex_ctx *ctx)
{
    /* a constant image stays constant through any resize */
    clipdex_image *img = ppm_image(ctx, 301, 97, px_const);
    CHECK(img != NULL, "constant image");
    uint8_t out[50 * 50 * 3];
    if (img) {
        int st = clipdex_image_crop_rgb(ctx, img, 50, out, sizeof out);
        int ok = st == CLIPDEX_OK;
        for (int i = 0; i < 50 * 50 && ok; i++)
            ok = out[3 * i] == 40 && out[3 * i + 1] == 110 && out[3 * i + 2] == 180;
        CHECK(ok, "constant image is not constant after resize");
        clipdex_image_free(img);
    }
    /* already at the target size: the crop is the image itself */
    img = ppm_image(ctx, 24, 24, px_pattern);
    if (img) {
        uint8_t o2[24 * 24 * 3];
        int st = clipdex_image_crop_rgb(ctx, img, 24, o2, sizeof o2);
        int ok = st == CLIPDEX_OK;
        for (uint32_t y = 0; y < 24 && ok; y++)
            for (uint32_t x = 0; x < 24 && ok; x++)
                for (int c = 0; c < 3; c++) ok = ok && o2[(y * 24 + x) * 3 + c] == px_pattern(x, y, c);
        CHECK(ok, "identity resize changed pixels");
        clipdex_image_free(img);
    }
    /* argument errors */
    CHECK(clipdex_image_crop_rgb(ctx, NULL, 10, out, sizeof out) == CLIPDEX_E_ARG, "NULL image");
    img = ppm_image(ctx, 20, 20, px_pattern);
    CHECK(clipdex_image_crop_rgb(ctx, img, 0, out, sizeof out) == CLIPDEX_E_ARG, "size 0");
    CHECK(clipdex_image_crop_rgb(ctx, img, 50, out, 100) == CLIPDEX_E_ARG, "short buffer");
    float f[3 * 4 * 4];
    float zero_std[3] = {0, 1, 1};
    CHECK(clipdex_image_preprocess(ctx, img, 4, MEAN, zero_std, f, 48) == CLIPDEX_E_ARG, "zero std");
    CHECK(clipdex_image_preprocess(ctx, img, 4, MEAN, STD, f, 47) == CLIPDEX_E_ARG, "short float buffer");
    clipdex_image_free(img);
    clipdex_image_free(NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void test_speed(clipdex_ctx *ctx)
{
    clipdex_image *img = ppm_image(ctx, 4000, 3000, px_pattern);
    CHECK(img != NULL, "4000x3000 image");
    if (!img) return;
    float *out = malloc(3 * 224 * 224 * sizeof(float));
    double t0 = now_s();
    int st = clipdex_image_preprocess(ctx, img, 224, MEAN, STD, out, 3 * 224 * 224);
    double dt = now_s() - t0;
    CHECK(st == CLIPDEX_OK, "preprocess 4000x3000: %s", clipdex_ctx_errmsg(ctx));
    CHECK(dt < 5.0, "preprocess 4000x3000 took %.3f s", dt);
    printf("  preprocess 4000x3000 RGB -> 224: %.1f ms\n", dt * 1e3);
    free(out);
    clipdex_image_free(img);
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

static void be32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }

static void expect_fail(clipdex_ctx *ctx, const char *what, const void *d, size_t n,
                        const clipdex_image_params *ip, int want, const char *needle)
{
    clipdex_image *img = (clipdex_image *)1;
    int st = clipdex_image_decode(ctx, d, n, ip, &img);
    CHECK(st == want, "%s: status %d (%s), want %d", what, st, clipdex_ctx_errmsg(ctx), want);
    CHECK(img == NULL, "%s: *out not cleared", what);
    CHECK(clipdex_ctx_errcode(ctx) == want, "%s: ctx errcode", what);
    CHECK(needle == NULL || strstr(clipdex_ctx_errmsg(ctx), needle), "%s: message '%s' lacks '%s'", what,
          clipdex_ctx_errmsg(ctx), needle ? needle : "");
}

static void test_errors(clipdex_ctx *ctx)
{
    size_t jl = 0, pl = 0;
    uint8_t *jpg = read_all("tests/golden/image/rgb.jpg", &jl);
    uint8_t *png = read_all("tests/golden/image/rgb.png", &pl);
    CHECK(jpg && png, "golden files missing");
    if (!jpg || !png) {
        free(jpg);
        free(png);
        return;
    }
    expect_fail(ctx, "zero bytes", "", 0, NULL, CLIPDEX_E_IMAGE, "empty");
    const char *text = "this is not an image, just text saved as photo.jpg\n";
    expect_fail(ctx, "text", text, strlen(text), NULL, CLIPDEX_E_IMAGE, "unrecognized");
    expect_fail(ctx, "truncated JPEG", jpg, jl / 2, NULL, CLIPDEX_E_IMAGE, "truncated JPEG");
    expect_fail(ctx, "JPEG header only", jpg, 40, NULL, CLIPDEX_E_IMAGE, "JPEG");
    expect_fail(ctx, "truncated PNG", png, pl / 2, NULL, CLIPDEX_E_IMAGE, "truncated PNG");
    expect_fail(ctx, "PNG signature only", png, 8, NULL, CLIPDEX_E_IMAGE, "PNG");
    /* corrupt PNG data: flip bytes in the middle (IDAT CRC / zlib error) */
    uint8_t *bad = malloc(pl);
    memcpy(bad, png, pl);
    for (size_t i = pl / 2; i < pl / 2 + 16; i++) bad[i] ^= 0x5A;
    expect_fail(ctx, "corrupt PNG", bad, pl, NULL, CLIPDEX_E_IMAGE, "PNG");
    free(bad);
    /* corrupt JPEG: destroy the quantization/Huffman tables region */
    bad = malloc(jl);
    memcpy(bad, jpg, jl);
    for (size_t i = 4; i < 200 && i < jl; i++) bad[i] = 0xFF;
    expect_fail(ctx, "corrupt JPEG", bad, jl, NULL, CLIPDEX_E_IMAGE, "JPEG");
    free(bad);

    /* a PNG header claiming 30000x30000, with valid CRCs and no data: must be
     * refused by the pixel limit before anything is allocated */
    uint8_t bomb[8 + 25 + 12];
    memcpy(bomb, "\x89PNG\r\n\x1a\n", 8);
    be32(bomb + 8, 13);
    memcpy(bomb + 12, "IHDR", 4);
    be32(bomb + 16, 30000);
    be32(bomb + 20, 30000);
    bomb[24] = 8, bomb[25] = 6, bomb[26] = 0, bomb[27] = 0, bomb[28] = 0;
    be32(bomb + 29, (uint32_t)crc32(0, bomb + 12, 17));
    be32(bomb + 33, 0);
    memcpy(bomb + 37, "IEND", 4);
    be32(bomb + 41, (uint32_t)crc32(0, (const Bytef *)"IEND", 4));
    expect_fail(ctx, "30000x30000 PNG", bomb, sizeof bomb, NULL, CLIPDEX_E_LIMIT, "30000x30000 exceeds the limit of");
    /* per-call limits */
    clipdex_image_params ip = clipdex_image_params_default();
    ip.max_pixels = 100;
    expect_fail(ctx, "pixel limit", png, pl, &ip, CLIPDEX_E_LIMIT, "100 pixels");
    ip = clipdex_image_params_default();
    ip.max_width = 40;
    expect_fail(ctx, "width limit", png, pl, &ip, CLIPDEX_E_LIMIT, "45x33");
    /* a huge PNM header */
    const char *pnm = "P6 100000 100000 255\n";
    expect_fail(ctx, "PNM bomb", pnm, strlen(pnm), NULL, CLIPDEX_E_LIMIT, "exceeds");
    expect_fail(ctx, "truncated PNM", "P5 10 10 255\n\x01\x02", 15, NULL, CLIPDEX_E_IMAGE, "truncated PNM");
    expect_fail(ctx, "GIF header only", "GIF89a\x10\x00", 8, NULL, CLIPDEX_E_IMAGE, "GIF");
    expect_fail(ctx, "WebP header only", "RIFF\x10\0\0\0WEBPVP8 ", 16, NULL, CLIPDEX_E_IMAGE, "WebP");
    expect_fail(ctx, "TIFF header only", "II*\0\x08\0\0\0", 8, NULL, CLIPDEX_E_IMAGE, "TIFF");
    expect_fail(ctx, "BMP header only", "BM\0\0", 4, NULL, CLIPDEX_E_IMAGE, "BMP");

    /* file errors name the file */
    clipdex_image *img = NULL;
    int st = clipdex_image_load(ctx, "/nonexistent/x.jpg", NULL, &img);
    CHECK(st == CLIPDEX_E_IO && strstr(clipdex_ctx_errmsg(ctx), "x.jpg"), "missing file: %d %s", st,
          clipdex_ctx_errmsg(ctx));
    char path[512];
    snprintf(path, sizeof path, "%s/text.jpg", tmpdir);
    write_all(path, text, strlen(text));
    st = clipdex_image_load(ctx, path, NULL, &img);
    CHECK(st == CLIPDEX_E_IMAGE && strstr(clipdex_ctx_errmsg(ctx), "text.jpg"), "text.jpg: %d %s", st,
          clipdex_ctx_errmsg(ctx));
    /* a NULL context is allowed */
    st = clipdex_image_decode(NULL, jpg, jl / 2, NULL, &img);
    CHECK(st == CLIPDEX_E_IMAGE && img == NULL, "NULL ctx");
    free(jpg);
    free(png);
}

/* clipdex_image_from_pixels: the same RGB/L pixels wrapped from a strided buffer
 * and decoded from a PNM file give bitwise the same crop, and bad arguments or
 * sizes over the limits are refused with a message. */
static void test_from_pixels(clipdex_ctx *ctx)
{
    enum { W = 37, H = 23, PAD = 5 };
    uint8_t rgb[H * (W * 3 + PAD)];
    char hdr[32];
    int hl = snprintf(hdr, sizeof hdr, "P6\n%d %d\n255\n", W, H);
    uint8_t pnm[sizeof hdr + W * H * 3];
    memcpy(pnm, hdr, (size_t)hl);
    uint32_t x = 12345;
    for (int y = 0; y < H; y++)
        for (int i = 0; i < W * 3 + PAD; i++) {
            x = x * 1103515245u + 12345u;
            rgb[y * (W * 3 + PAD) + i] = (uint8_t)(x >> 16);
            if (i < W * 3) pnm[hl + y * W * 3 + i] = (uint8_t)(x >> 16);
        }
    clipdex_image *a = NULL, *b = NULL;
    CHECK(clipdex_image_from_pixels(ctx, rgb, W, H, W * 3 + PAD, CLIPDEX_MODE_RGB, NULL, &a) == CLIPDEX_OK,
          "from_pixels rgb: %s", clipdex_ctx_errmsg(ctx));
    CHECK(clipdex_image_decode(ctx, pnm, (size_t)hl + W * H * 3, NULL, &b) == CLIPDEX_OK, "decode pnm: %s",
          clipdex_ctx_errmsg(ctx));
    if (a && b) {
        CHECK(clipdex_image_width(a) == W && clipdex_image_height(a) == H &&
                  clipdex_image_mode(a) == CLIPDEX_MODE_RGB && strcmp(clipdex_image_format(a), "raw") == 0,
              "from_pixels: %ux%u mode %d format %s", clipdex_image_width(a), clipdex_image_height(a),
              clipdex_image_mode(a), clipdex_image_format(a));
        uint8_t ca[16 * 16 * 3], cb[16 * 16 * 3];
        CHECK(clipdex_image_crop_rgb(ctx, a, 16, ca, sizeof ca) == CLIPDEX_OK &&
                  clipdex_image_crop_rgb(ctx, b, 16, cb, sizeof cb) == CLIPDEX_OK && memcmp(ca, cb, sizeof ca) == 0,
              "from_pixels crop differs from the PNM decode of the same pixels");
    }
    clipdex_image_free(a);
    clipdex_image_free(b);
    a = NULL;
    CHECK(clipdex_image_from_pixels(ctx, rgb, W, H, W, CLIPDEX_MODE_L, NULL, &a) == CLIPDEX_OK && a &&
              clipdex_image_mode(a) == CLIPDEX_MODE_L,
          "from_pixels L");
    clipdex_image_free(a);
    a = (clipdex_image *)1;
    CHECK(clipdex_image_from_pixels(ctx, rgb, W, H, W * 3 - 1, CLIPDEX_MODE_RGB, NULL, &a) == CLIPDEX_E_ARG &&
              a == NULL && strstr(clipdex_ctx_errmsg(ctx), "stride"),
          "short stride: %s", clipdex_ctx_errmsg(ctx));
    CHECK(clipdex_image_from_pixels(ctx, rgb, W, H, W * 3, CLIPDEX_MODE_P, NULL, &a) == CLIPDEX_E_ARG,
          "palette mode refused");
    CHECK(clipdex_image_from_pixels(ctx, NULL, W, H, W * 3, CLIPDEX_MODE_RGB, NULL, &a) == CLIPDEX_E_ARG,
          "NULL pixels refused");
    clipdex_image_params lim = clipdex_image_params_default();
    lim.max_width = W - 1;
    CHECK(clipdex_image_from_pixels(ctx, rgb, W, H, W * 3, CLIPDEX_MODE_RGB, &lim, &a) == CLIPDEX_E_LIMIT &&
              a == NULL,
          "side limit: %s", clipdex_ctx_errmsg(ctx));
}

int main(void)
{
    clipdex_ctx *ctx = NULL;
    CHECK(clipdex_ctx_new(&ctx, NULL) == CLIPDEX_OK, "ctx");
    snprintf(tmpdir, sizeof tmpdir, "/tmp/clipdex-test-image-XXXXXX");
    CHECK(mkdtemp(tmpdir) != NULL, "mkdtemp");

    clipdex_image_params p = clipdex_image_params_default();
    CHECK(p.max_width == CLIPDEX_MAX_IMAGE_SIDE && p.max_pixels == CLIPDEX_MAX_IMAGE_PIXELS &&
              p.ignore_exif_orientation == 0,
          "params default");

    test_pillow_goldens(ctx);
    test_roundtrips(ctx);
    test_resample(ctx);
    test_errors(ctx);
    test_from_pixels(ctx);
    test_speed(ctx);
    const char *shared = check_shared();
    if (!shared) {
        SKIP("no shared data directory (set CLIPDEX_SHARED)");
    } else {
        test_reference(ctx, shared);
        test_known_answer(ctx, shared);
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmpdir);
    clipdex_ctx_free(ctx);
    return check_done("test_image");
}
