/*
 * test_image_fast.c - the opt-in JPEG fast path (clipdex_image_params.
 * jpeg_scale_target): the default stays the exact decode; with a target, a
 * JPEG at least twice the target decodes at libjpeg-turbo's reduced size
 * (the largest num/8 reduction that keeps the shorter side >= target), a
 * smaller one decodes exactly, and the 224 crop stays within a few levels of
 * the exact path's on shared photos. Needs ../shared for the photos.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "clipdex.h"

#define CROP 224

/* Mean and max absolute difference of two RGB crops (CROP x CROP x 3). */
static void crop_diff(const uint8_t *a, const uint8_t *b, double *mean, int *max)
{
    size_t n = (size_t)CROP * CROP * 3;
    uint64_t sum = 0;
    int m = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        sum += (uint64_t)d;
        if (d > m) m = d;
    }
    *mean = (double)sum / (double)n;
    *max = m;
}

/* Decodes `name` exactly and with target 224; checks the sizes and the crops. */
static void check_photo(clipdex_ctx *ctx, const char *shared, const char *name, uint32_t w,
                        uint32_t h, uint32_t fast_w, uint32_t fast_h)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/data/imagenet-samples/%s", shared, name);
    clipdex_image *exact = NULL, *fast = NULL, *dflt = NULL;
    clipdex_image_params p = clipdex_image_params_default();
    int st = clipdex_image_load(ctx, path, &p, &exact);
    CHECK(st == CLIPDEX_OK, "%s: %s", path, clipdex_ctx_errmsg(ctx));
    st = clipdex_image_load(ctx, path, NULL, &dflt);
    CHECK(st == CLIPDEX_OK, "%s (NULL params): %s", path, clipdex_ctx_errmsg(ctx));
    p.jpeg_scale_target = CROP;
    st = clipdex_image_load(ctx, path, &p, &fast);
    CHECK(st == CLIPDEX_OK, "%s (fast): %s", path, clipdex_ctx_errmsg(ctx));
    if (!exact || !fast || !dflt) goto out;

    CHECK(clipdex_image_width(exact) == w && clipdex_image_height(exact) == h,
          "%s: exact %ux%u, expected %ux%u", name, clipdex_image_width(exact),
          clipdex_image_height(exact), w, h);
    CHECK(clipdex_image_width(dflt) == w && clipdex_image_height(dflt) == h,
          "%s: default params decode %ux%u, expected the exact %ux%u", name,
          clipdex_image_width(dflt), clipdex_image_height(dflt), w, h);
    CHECK(clipdex_image_width(fast) == fast_w && clipdex_image_height(fast) == fast_h,
          "%s: fast %ux%u, expected %ux%u", name, clipdex_image_width(fast),
          clipdex_image_height(fast), fast_w, fast_h);

    static uint8_t ce[CROP * CROP * 3], cf[CROP * CROP * 3], cd[CROP * CROP * 3];
    CHECK(clipdex_image_crop_rgb(ctx, exact, CROP, ce, sizeof ce) == CLIPDEX_OK, "crop exact");
    CHECK(clipdex_image_crop_rgb(ctx, dflt, CROP, cd, sizeof cd) == CLIPDEX_OK, "crop default");
    CHECK(clipdex_image_crop_rgb(ctx, fast, CROP, cf, sizeof cf) == CLIPDEX_OK, "crop fast");
    CHECK(memcmp(ce, cd, sizeof ce) == 0, "%s: default decode differs from the exact one", name);
    double mean;
    int max;
    crop_diff(ce, cf, &mean, &max);
    printf("%s: %ux%u -> %ux%u, 224 crop mean |diff| %.3f, max %d\n", name, w, h, fast_w,
           fast_h, mean, max);
    CHECK(mean < 5.0, "%s: fast crop mean abs diff %.3f levels (want < 5)", name, mean);
    CHECK(mean > 0.0, "%s: fast crop identical to exact: was the fast path taken?", name);
out:
    clipdex_image_free(exact);
    clipdex_image_free(fast);
    clipdex_image_free(dflt);
}

/* A JPEG smaller than twice the target decodes exactly even with a target. */
static void check_small(clipdex_ctx *ctx, const char *shared)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/data/imagenet-samples/n01440764_tench.JPEG", shared);
    clipdex_image *a = NULL, *b = NULL;
    clipdex_image_params p = clipdex_image_params_default();
    CHECK(clipdex_image_load(ctx, path, &p, &a) == CLIPDEX_OK, "%s", clipdex_ctx_errmsg(ctx));
    p.jpeg_scale_target = CROP; /* 500x375: 375 < 448, no scaling */
    CHECK(clipdex_image_load(ctx, path, &p, &b) == CLIPDEX_OK, "%s", clipdex_ctx_errmsg(ctx));
    if (a && b) {
        CHECK(clipdex_image_width(b) == 500 && clipdex_image_height(b) == 375,
              "small JPEG scaled to %ux%u", clipdex_image_width(b), clipdex_image_height(b));
        static uint8_t ca[CROP * CROP * 3], cb[CROP * CROP * 3];
        CHECK(clipdex_image_crop_rgb(ctx, a, CROP, ca, sizeof ca) == CLIPDEX_OK, "crop");
        CHECK(clipdex_image_crop_rgb(ctx, b, CROP, cb, sizeof cb) == CLIPDEX_OK, "crop");
        CHECK(memcmp(ca, cb, sizeof ca) == 0, "below 2x the target the decode must be exact");
    }
    clipdex_image_free(a);
    clipdex_image_free(b);
}

int main(void)
{
    clipdex_ctx *ctx = NULL;
    CHECK(clipdex_ctx_new(&ctx, NULL) == CLIPDEX_OK, "ctx");
    clipdex_image_params p = clipdex_image_params_default();
    CHECK(p.jpeg_scale_target == 0, "default jpeg_scale_target is %u, expected 0 (exact)",
          p.jpeg_scale_target);
    const char *shared = check_shared();
    if (!shared) {
        SKIP("no shared data directory (set CLIPDEX_SHARED)");
    } else {
        /* 845x563: 563 >= 448; 4/8 keeps 282 >= 224 (3/8 would give 212). */
        check_photo(ctx, shared, "n01622779_great_grey_owl.JPEG", 845, 563, 423, 282);
        /* 1280x960: 2/8 gives 320x240. */
        check_photo(ctx, shared, "n03594945_jeep.JPEG", 1280, 960, 320, 240);
        check_small(ctx, shared);
    }
    clipdex_ctx_free(ctx);
    return check_done("test_image_fast");
}
