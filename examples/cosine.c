/*
 * examples/cosine.c - the smallest program on libclipdex: embed one image and
 * one text with a CLIP model and print their cosine similarity.
 *
 *   cc cosine.c $(pkg-config --cflags --libs clipdex) -o cosine
 *   ./cosine MODEL IMAGE TEXT          prints the cosine with 9 significant digits
 *
 * Both embeddings come back L2-normalized, so the cosine is their dot product
 * (clipdex_cosine computes it). Errors print the context's message and exit 1.
 */
#include <clipdex.h>
#include <stdio.h>
#include <stdlib.h>

static int fail(clipdex_ctx *ctx, const char *what)
{
    fprintf(stderr, "cosine: %s: %s\n", what, clipdex_ctx_errmsg(ctx));
    return 1;
}

static int embed_both(clipdex_ctx *ctx, const char *model_path, const char *image_path,
                      const char *text)
{
    clipdex_model *model = NULL;
    clipdex_image *image = NULL;
    float *emb = NULL;
    int rc = 1;

    if (clipdex_model_load(ctx, model_path, NULL, &model) != CLIPDEX_OK)
        return fail(ctx, "cannot load the model");
    if (clipdex_image_load(ctx, image_path, NULL, &image) != CLIPDEX_OK) {
        rc = fail(ctx, "cannot load the image");
        goto out;
    }
    size_t dim = (size_t)clipdex_model_embed_dim(model);
    emb = malloc(2 * dim * sizeof *emb);
    if (!emb) {
        fprintf(stderr, "cosine: out of memory\n");
        goto out;
    }
    const clipdex_image *images[1] = { image };
    if (clipdex_image_embed(ctx, model, images, 1, emb, dim, 0) != CLIPDEX_OK) {
        rc = fail(ctx, "cannot embed the image");
        goto out;
    }
    if (clipdex_text_embed(ctx, model, &text, 1, emb + dim, dim, 0) != CLIPDEX_OK) {
        rc = fail(ctx, "cannot embed the text");
        goto out;
    }
    printf("%.9g\n", clipdex_cosine(emb, emb + dim, dim));
    rc = 0;
out:
    free(emb);
    clipdex_image_free(image);
    clipdex_model_free(model);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: cosine MODEL IMAGE TEXT\n");
        return 2;
    }
    clipdex_ctx *ctx = NULL;
    if (clipdex_ctx_new(&ctx, NULL) != CLIPDEX_OK) {
        fprintf(stderr, "cosine: cannot create a context\n");
        return 1;
    }
    int rc = embed_both(ctx, argv[1], argv[2], argv[3]);
    clipdex_ctx_free(ctx);
    return rc;
}
