/*
 * test_real_model.c - opt-in: when CLIPDEX_TEST_REAL_MODEL points at a
 * downloaded openai/clip-vit-base-patch32 directory, CLIP.png against
 * "a diagram", "a dog", "a cat" must give OpenAI's published probabilities
 * [0.9927937, 0.00421068, 0.00299572] within 1e-3 (softmax of
 * exp(logit_scale) x cosine). Skipped otherwise.
 */
#include "check.h"
#include "clipdex.h"

int main(void)
{
    const char *dir = getenv("CLIPDEX_TEST_REAL_MODEL");
    const char *shared = check_shared();
    if (!dir || !*dir || !shared) {
        SKIP("set CLIPDEX_TEST_REAL_MODEL to a downloaded openai/clip-vit-base-patch32 to run");
        return check_done("test_real_model");
    }
    clipdex_ctx *ctx;
    clipdex_ctx_new(&ctx, NULL);
    clipdex_model *m = NULL;
    int rc = clipdex_model_load(ctx, dir, NULL, &m);
    CHECK(rc == 0, "load %s: %s", dir, clipdex_ctx_errmsg(ctx));
    if (rc) return check_done("test_real_model");
    char path[1024];
    snprintf(path, sizeof path, "%s/data/images/CLIP.png", shared);
    clipdex_image *img = NULL;
    clipdex_image_params ip = clipdex_image_params_default();
    ip.ignore_exif_orientation = 1;
    rc = clipdex_image_load(ctx, path, &ip, &img);
    CHECK(rc == 0, "%s: %s", path, clipdex_ctx_errmsg(ctx));
    int E = clipdex_model_embed_dim(m);
    float *ie = malloc((size_t)E * 4), *te = malloc(3 * (size_t)E * 4);
    const char *texts[3] = {"a diagram", "a dog", "a cat"};
    CHECK(clipdex_image_embed(ctx, m, (const clipdex_image *const *)&img, 1, ie, (size_t)E, 0) == 0, "%s",
          clipdex_ctx_errmsg(ctx));
    CHECK(clipdex_text_embed(ctx, m, texts, 3, te, 3 * (size_t)E, 0) == 0, "%s", clipdex_ctx_errmsg(ctx));
    clipdex_model_info info;
    clipdex_model_get_info(m, &info);
    double logit[3], mx = -1e30, sum = 0;
    for (int i = 0; i < 3; i++) {
        logit[i] = info.logit_scale * clipdex_cosine(ie, te + i * E, (size_t)E);
        mx = fmax(mx, logit[i]);
    }
    for (int i = 0; i < 3; i++) sum += exp(logit[i] - mx);
    const double want[3] = {0.9927937, 0.00421068, 0.00299572};
    for (int i = 0; i < 3; i++) {
        double p = exp(logit[i] - mx) / sum;
        printf("'%s': %.7f (published %.7f)\n", texts[i], p, want[i]);
        CHECK(fabs(p - want[i]) < 1e-3, "probability of '%s' %.7f, published %.7f", texts[i], p, want[i]);
    }
    free(ie), free(te);
    clipdex_image_free(img);
    clipdex_model_free(m);
    clipdex_ctx_free(ctx);
    return check_done("test_real_model");
}
