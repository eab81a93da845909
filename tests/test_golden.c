/*
 * test_golden.c - the C engine end to end against the committed goldens of
 * tools/make_goldens.py (an independent float64 PyTorch reference):
 * for each tests/golden/models/<name>.json, regenerate the same seeded model
 * with $BUILD/tools/genmodel (cached in $BUILD/models), then check
 *   - token ids exactly,
 *   - the 8-bit preprocessed crops within one level of the golden PNGs,
 *   - every embedding: cosine >= 0.99999 and max abs error <= 1e-4,
 *   - identical (bitwise) embeddings for 1 and 2 threads and batches 1, 3, 16.
 * Needs ../shared (the photos and the vocabulary); skips without it.
 */
#include <dirent.h>
#include <jansson.h>

#include "check.h"
#include "clipdex.h"
#include "golden_model.h"

static double cosine_d(const float *a, const double *b, size_t n)
{
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++) ab += a[i] * b[i], aa += (double)a[i] * a[i], bb += b[i] * b[i];
    return ab / sqrt(aa * bb);
}

static double *jdoubles(json_t *a, size_t *n)
{
    *n = json_array_size(a);
    double *p = malloc((*n ? *n : 1) * sizeof *p);
    for (size_t i = 0; i < *n; i++) p[i] = json_number_value(json_array_get(a, i));
    return p;
}

static void check_model(const char *shared, const char *gpath)
{
    json_error_t e;
    json_t *g = json_load_file(gpath, 0, &e);
    CHECK(g != NULL, "parse %s: %s", gpath, e.text);
    if (!g) return;
    const char *name = json_string_value(json_object_get(g, "name"));
    char dir[1024];
    int rc = make_model(g, shared, name, dir, sizeof dir);
    CHECK(rc == 0, "%s: could not generate the model with genmodel", name);
    if (rc) return;
    /* genmodel printed "<sha256>  <path>" per file: the bytes must be the golden's */
    char shaf[1100], line[2048];
    snprintf(shaf, sizeof shaf, "%s/.genmodel-out", dir);
    FILE *sf = fopen(shaf, "r");
    int n_sha = 0;
    while (sf && fgets(line, sizeof line, sf)) {
        char sha[65], *base = strrchr(line, '/');
        if (sscanf(line, "%64s", sha) != 1 || !base) continue;
        base[strcspn(base, "\n")] = 0;
        const char *want = json_string_value(json_object_get(json_object_get(g, "files"), base + 1));
        CHECK(want && strcmp(want, sha) == 0, "%s: genmodel wrote %s with sha256 %s, the golden has %s", name,
              base + 1, sha, want ? want : "none");
        n_sha++;
    }
    if (sf) fclose(sf);
    CHECK(n_sha > 0, "%s: no sha256 from genmodel in %s", name, shaf);
    clipdex_ctx *ctx, *ctx1;
    clipdex_ctx_params cp = clipdex_ctx_params_default();
    cp.n_threads = 2;
    clipdex_ctx_new(&ctx, &cp);
    cp.n_threads = 1;
    clipdex_ctx_new(&ctx1, &cp);
    clipdex_model *m = NULL;
    rc = clipdex_model_load(ctx, dir, NULL, &m);
    CHECK(rc == 0, "%s: load: %s", name, clipdex_ctx_errmsg(ctx));
    if (rc) return;
    clipdex_model_info info;
    clipdex_model_get_info(m, &info);
    size_t E = (size_t)info.embed_dim;
    int S = info.image_size;
    json_t *imgs = json_object_get(g, "images"), *txts = json_object_get(g, "texts"), *it;
    size_t n_img = json_array_size(imgs), n_txt = json_array_size(txts), i;
    clipdex_image **ims = calloc(n_img, sizeof *ims);
    float *emb = malloc(n_img * E * sizeof *emb);
    uint8_t *crop = malloc((size_t)S * S * 3), *gold = malloc((size_t)S * S * 3);
    clipdex_image_params ip = clipdex_image_params_default();
    ip.ignore_exif_orientation = 1; /* as the reference */
    double worst_cos = 1, worst_abs = 0;
    int worst_px = 0;
    json_array_foreach(imgs, i, it) {
        char path[1024];
        const char *rel = json_string_value(json_object_get(it, "path"));
        snprintf(path, sizeof path, "%s/%s", shared, rel);
        rc = clipdex_image_load(ctx, path, &ip, &ims[i]);
        CHECK(rc == 0, "%s: load %s: %s", name, path, clipdex_ctx_errmsg(ctx));
        if (rc) goto out;
        const char *pix = json_string_value(json_object_get(it, "pixels"));
        clipdex_image *gi = NULL;
        if (pix && clipdex_image_load(ctx, pix, &ip, &gi) == 0 && clipdex_image_width(gi) == (uint32_t)S &&
            clipdex_image_height(gi) == (uint32_t)S) {
            CHECK(clipdex_image_crop_rgb(ctx, ims[i], S, crop, (size_t)S * S * 3) == 0, "crop %s", rel);
            clipdex_image_crop_rgb(ctx, gi, S, gold, (size_t)S * S * 3);
            int mx = 0;
            for (size_t k = 0; k < (size_t)S * S * 3; k++) {
                int d = abs((int)crop[k] - (int)gold[k]);
                if (d > mx) mx = d;
            }
            if (mx > worst_px) worst_px = mx;
            CHECK(mx <= 1, "%s: %s preprocessed pixels differ by %d levels", name, rel, mx);
        } else if (pix) {
            CHECK(0, "%s: cannot read golden pixels %s", name, pix);
        }
        clipdex_image_free(gi);
    }
    rc = clipdex_image_embed(ctx, m, (const clipdex_image *const *)ims, n_img, emb, n_img * E, 0);
    CHECK(rc == 0, "%s: image_embed: %s", name, clipdex_ctx_errmsg(ctx));
    json_array_foreach(imgs, i, it) {
        size_t n;
        double *want = jdoubles(json_object_get(it, "embedding_normalized"), &n);
        CHECK(n == E, "embedding size");
        double c = cosine_d(emb + i * E, want, E), mx = 0;
        for (size_t k = 0; k < E; k++) mx = fmax(mx, fabs(emb[i * E + k] - want[k]));
        worst_cos = fmin(worst_cos, c);
        worst_abs = fmax(worst_abs, mx);
        CHECK(c >= 0.99999 && mx <= 1e-4, "%s: image %s cosine %.8f max abs %g", name,
              json_string_value(json_object_get(it, "path")), c, mx);
        free(want);
    }
    /* batch sizes 1, 3, 16 and one thread give bitwise the same embeddings */
    float *alt = malloc(n_img * E * sizeof *alt);
    const size_t batches[] = {1, 3, 16};
    for (int b = 0; b < 3; b++) {
        for (size_t s = 0; s < n_img; s += batches[b]) {
            size_t c = n_img - s < batches[b] ? n_img - s : batches[b];
            clipdex_image_embed(b == 1 ? ctx1 : ctx, m, (const clipdex_image *const *)ims + s, c,
                                alt + s * E, c * E, 0);
        }
        CHECK(memcmp(alt, emb, n_img * E * sizeof *alt) == 0, "%s: batch %zu (%d threads) changes image embeddings",
              name, batches[b], b == 1 ? 1 : 2);
    }
    /* texts */
    const clipdex_tokenizer *tok = clipdex_model_tokenizer(m);
    CHECK(tok != NULL, "%s: model has no tokenizer", name);
    size_t C = (size_t)info.context_length;
    int32_t *ids = calloc(n_txt * C, sizeof *ids);
    float *temb = malloc(n_txt * E * sizeof *temb), *talt = malloc(n_txt * E * sizeof *talt);
    json_array_foreach(txts, i, it) {
        const char *s = json_string_value(json_object_get(it, "text"));
        size_t nt = 0;
        int tr = 0;
        rc = tok ? clipdex_text_tokenize(ctx, tok, s, strlen(s), ids + i * C, C, &nt, &tr) : -1;
        json_t *jt = json_object_get(it, "tokens");
        int same = rc == 0 && nt == json_array_size(jt);
        for (size_t k = 0; same && k < nt; k++) same = ids[i * C + k] == json_integer_value(json_array_get(jt, k));
        CHECK(same, "%s: tokens of '%s' differ", name, s);
        CHECK(tr == json_is_true(json_object_get(it, "truncated")), "%s: truncation flag of '%s'", name, s);
    }
    rc = clipdex_tokens_embed(ctx, m, ids, n_txt, temb, n_txt * E, 0);
    CHECK(rc == 0, "%s: tokens_embed: %s", name, clipdex_ctx_errmsg(ctx));
    json_array_foreach(txts, i, it) {
        size_t n;
        double *want = jdoubles(json_object_get(it, "embedding_normalized"), &n);
        double c = cosine_d(temb + i * E, want, E), mx = 0;
        for (size_t k = 0; k < E; k++) mx = fmax(mx, fabs(temb[i * E + k] - want[k]));
        worst_cos = fmin(worst_cos, c);
        worst_abs = fmax(worst_abs, mx);
        CHECK(c >= 0.99999 && mx <= 1e-4, "%s: text '%s' cosine %.8f max abs %g", name,
              json_string_value(json_object_get(it, "text")), c, mx);
        free(want);
    }
    for (int b = 0; b < 3; b++) {
        for (size_t s = 0; s < n_txt; s += batches[b]) {
            size_t c = n_txt - s < batches[b] ? n_txt - s : batches[b];
            clipdex_tokens_embed(b == 1 ? ctx1 : ctx, m, ids + s * C, c, talt + s * E, c * E, 0);
        }
        CHECK(memcmp(talt, temb, n_txt * E * sizeof *talt) == 0, "%s: batch %zu changes text embeddings", name,
              batches[b]);
    }
    /* the logits the golden lists: exp(logit_scale) * cosine */
    json_t *lg = json_object_get(json_object_get(g, "logits"), "per_image");
    if (json_array_size(lg) == n_img && n_txt >= 3) {
        double mx = 0;
        for (size_t a = 0; a < n_img; a++)
            for (size_t b = 0; b < 3; b++) {
                float c = clipdex_cosine(emb + a * E, temb + b * E, E);
                mx = fmax(mx, fabs(info.logit_scale * c - json_number_value(json_array_get(json_array_get(lg, a), b))));
            }
        CHECK(mx < 1e-2, "%s: logits differ by %g", name, mx);
    }
    printf("%s: %zu images, %zu texts: worst cosine %.9f, worst max abs %.3g, worst pixel diff %d\n", name,
           n_img, n_txt, worst_cos, worst_abs, worst_px);
    free(ids), free(temb), free(talt), free(alt);
out:
    for (i = 0; i < n_img; i++) clipdex_image_free(ims[i]);
    free(ims), free(emb), free(crop), free(gold);
    clipdex_model_free(m);
    clipdex_ctx_free(ctx);
    clipdex_ctx_free(ctx1);
    json_decref(g);
}

int main(int argc, char **argv)
{
    const char *shared = check_shared();
    if (!shared) {
        SKIP("../shared is absent");
        return check_done("test_golden");
    }
    /* CLIPDEX_GOLDEN_SKIP=substring skips matching goldens (e.g. b32 in sanitizer builds) */
    const char *only = getenv("CLIPDEX_GOLDEN_SKIP");
    DIR *d = opendir("tests/golden/models");
    CHECK(d != NULL, "tests/golden/models is missing (run from the repository root)");
    struct dirent *de;
    char *names[64];
    int n = 0;
    while (d && (de = readdir(d)) && n < 64)
        if (strstr(de->d_name, ".json")) names[n++] = strdup(de->d_name);
    if (d) closedir(d);
    for (int i = 0; i < n; i++) {
        char p[1024];
        snprintf(p, sizeof p, "tests/golden/models/%s", names[i]);
        if (only && *only && strstr(names[i], only)) {
            SKIP("%s (CLIPDEX_GOLDEN_SKIP=%s)", names[i], only);
            free(names[i]);
            continue;
        }
        check_model(shared, p);
        free(names[i]);
    }
    (void)argc, (void)argv;
    return check_done("test_golden");
}
