/*
 * fuzz_image.c - libFuzzer target for image decoding: decodes the input with
 * small limits (1 M pixels, 4096 per side) so hostile headers cannot make
 * the fuzzer allocate much, then runs the reference crop at size 32 and the
 * float preprocessing at 24 on whatever decoded. Any crash, sanitizer report
 * or leak is a bug; errors are expected and ignored. The second-to-last
 * byte's low bit turns on the DCT-scaled JPEG decode (jpeg_scale_target 8). Runs as a plain program
 * through fuzz/main.c over fuzz/corpus/image.
 */
#include <stdint.h>
#include <stdlib.h>

#include "clipdex.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
    static const float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    clipdex_image_params p = clipdex_image_params_default();
    p.max_width = 4096;
    p.max_height = 4096;
    p.max_pixels = 1u << 20;
    p.ignore_exif_orientation = size > 0 && (data[size - 1] & 1);
    p.jpeg_scale_target = size > 1 && (data[size - 2] & 1) ? 8 : 0;
    clipdex_image *img = NULL;
    if (clipdex_image_decode(NULL, data, size, &p, &img) != CLIPDEX_OK) return 0;
    uint8_t rgb[32 * 32 * 3];
    clipdex_image_crop_rgb(NULL, img, 32, rgb, sizeof rgb);
    float px[3 * 24 * 24];
    clipdex_image_preprocess(NULL, img, 24, mean, std, px, sizeof px / sizeof px[0]);
    (void)clipdex_image_width(img);
    (void)clipdex_image_mode(img);
    (void)clipdex_image_format(img);
    clipdex_image_free(img);
    return 0;
}
