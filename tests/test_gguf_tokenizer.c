/*
 * test_gguf_tokenizer.c - a GGUF file written by `clipdex quantize` carries
 * its tokenizer (tokenizer.ggml.tokens and tokenizer.ggml.merges):
 *   - the lists rebuilt from OpenAI's vocabulary equal Hugging Face's own
 *     files token for token (vocab.json: every id's string) and merge for
 *     merge (merges.txt), and read back into the same tokenizer tables;
 *   - a quantized tiny model alone in a folder (no vocabulary beside it, no
 *     CLIPDEX_VOCAB) embeds texts, with token ids and embeddings bitwise
 *     those of the same file with the vocabulary given explicitly;
 *   - hostile tokenizer keys: a merge without its space, the token list of
 *     another type, and a file with tokens but no merges (clip.cpp's files)
 *     which then needs the vocabulary beside it, as before.
 */
#include <jansson.h>
#include <unistd.h>

#include "check.h"
#include "clipdex.h"
#include "text/text.h"

static char tmpdir[] = "/tmp/clipdex-test-ggtok-XXXXXX";

static const char *const texts[] = {"a photo of a dog", "naïve café, 東京 — OK!!", "it's   <|endoftext|> 123",
                                    ""};
#define N_TEXTS (sizeof texts / sizeof texts[0])

/* The lists against Hugging Face's vocab.json and merges.txt, and back. */
static void test_lists(clipdex_ctx *ctx, const char *vocab_dir)
{
    char path[1024];
    clipdex_tokenizer *tok = NULL;
    snprintf(path, sizeof path, "%s/bpe_simple_vocab_16e6.txt.gz", vocab_dir);
    if (clipdex_tokenizer_load(ctx, path, &tok) != CLIPDEX_OK) {
        SKIP("no %s: %s", path, clipdex_ctx_errmsg(ctx));
        return;
    }
    char **tokens = NULL, **merges = NULL;
    CHECK(cdx_vocab_strings(ctx, tok, &tokens, &merges) == CLIPDEX_OK, "%s", clipdex_ctx_errmsg(ctx));
    snprintf(path, sizeof path, "%s/vocab.json", vocab_dir);
    json_t *vocab = json_load_file(path, 0, NULL);
    size_t bad = 0, n = 0;
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        json_int_t id = json_integer_value(val);
        bad += id < 0 || (size_t)id >= tok->vocab_size || strcmp(tokens[id], key) != 0;
        n++;
    }
    CHECK(vocab && n == tok->vocab_size && bad == 0, "%zu of %zu vocab.json tokens differ (vocab size %zu)", bad, n,
          tok->vocab_size);
    json_decref(vocab);
    snprintf(path, sizeof path, "%s/merges.txt", vocab_dir);
    FILE *f = fopen(path, "r");
    char line[512];
    size_t r = 0;
    bad = 0;
    if (f && fgets(line, sizeof line, f)) /* the #version line */
        while (fgets(line, sizeof line, f) && r < tok->n_merges) {
            line[strcspn(line, "\r\n")] = '\0';
            bad += strcmp(line, merges[r++]) != 0;
        }
    if (f) fclose(f);
    CHECK(r == tok->n_merges && bad == 0, "%zu of %zu merges differ from merges.txt", bad, r);
    struct clipdex_tokenizer back;
    memset(&back, 0, sizeof back);
    CHECK(cdx_vocab_from_strings(ctx, "lists", tokens, tok->vocab_size, merges, tok->n_merges, &back) == CLIPDEX_OK,
          "%s", clipdex_ctx_errmsg(ctx));
    CHECK(cdx_tokenizer_same(tok, &back), "the lists read back into other tables");
    cdx_vocab_release(&back);
    /* a merge that lost its space */
    char *saved = merges[7];
    merges[7] = "nospace";
    memset(&back, 0, sizeof back);
    int rc = cdx_vocab_from_strings(ctx, "lists", tokens, tok->vocab_size, merges, tok->n_merges, &back);
    CHECK(rc == CLIPDEX_E_FORMAT && strstr(clipdex_ctx_errmsg(ctx), "merge 8"), "bad merge: %d %s", rc,
          clipdex_ctx_errmsg(ctx));
    cdx_vocab_release(&back);
    merges[7] = saved;
    cdx_strs_free(tokens, tok->vocab_size);
    cdx_strs_free(merges, tok->n_merges);
    clipdex_tokenizer_free(tok);
}

/* ids and embeddings of `texts` with model m into ids/emb; 0 ok */
static int embed_texts(clipdex_ctx *ctx, const clipdex_model *m, int32_t *ids, float *emb, int dim)
{
    const clipdex_tokenizer *tok = clipdex_model_tokenizer(m);
    if (!tok) return -1;
    for (size_t i = 0; i < N_TEXTS; i++)
        if (clipdex_text_tokenize(ctx, tok, texts[i], strlen(texts[i]), ids + 77 * i, 77, NULL, NULL)) return -1;
    return clipdex_text_embed(ctx, m, texts, N_TEXTS, emb, N_TEXTS * (size_t)dim, 0);
}

static clipdex_model *load(clipdex_ctx *ctx, const char *path, const char *vocab)
{
    clipdex_model_params p = clipdex_model_params_default();
    p.vocab_path = vocab;
    clipdex_model *m = NULL;
    return clipdex_model_load(ctx, path, &p, &m) == CLIPDEX_OK ? m : NULL;
}

/* Rewrites `len` bytes at the first occurrence of `what` in file `path`. */
static int patch_file(const char *path, const char *what, const void *with, size_t len, size_t skip)
{
    FILE *f = fopen(path, "r+b");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    char *b = malloc((size_t)n);
    rewind(f);
    int rc = -1;
    if (b && fread(b, 1, (size_t)n, f) == (size_t)n) {
        char *at = memmem(b, (size_t)n, what, strlen(what));
        if (at) {
            fseek(f, (long)(at - b) + (long)skip, SEEK_SET);
            rc = fwrite(with, 1, len, f) == len ? 0 : -1;
        }
    }
    free(b);
    fclose(f);
    return rc;
}

static void test_model(clipdex_ctx *ctx, const char *vocab_dir)
{
    char cmd[2048], dir[128], gguf[256], alt[256];
    snprintf(dir, sizeof dir, "%s/src", tmpdir);
    snprintf(gguf, sizeof gguf, "%s/alone/tiny-q8.gguf", tmpdir);
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/alone' && '%s/tools/genmodel' --config tiny --layout hf --seed 5 --out '%s' --vocab '%s' "
             ">/dev/null && '%s/clipdex' quantize --model '%s' --type q8 --out '%s' >/dev/null",
             tmpdir, check_build(), dir, vocab_dir, check_build(), dir, gguf);
    if (system(cmd) != 0) {
        CHECK(0, "cannot make the quantized model: %s", cmd);
        return;
    }
    unsetenv("CLIPDEX_VOCAB");
    clipdex_model *alone = load(ctx, gguf, NULL), *given = load(ctx, gguf, vocab_dir);
    CHECK(alone && clipdex_model_tokenizer(alone), "the GGUF alone has no tokenizer: %s", clipdex_ctx_errmsg(ctx));
    int dim = alone ? clipdex_model_embed_dim(alone) : 0;
    int32_t ids_a[N_TEXTS * 77], ids_g[N_TEXTS * 77];
    float *ea = calloc(N_TEXTS * (size_t)(dim + 1), sizeof *ea), *eg = calloc(N_TEXTS * (size_t)(dim + 1), sizeof *eg);
    int ra = alone && given ? embed_texts(ctx, alone, ids_a, ea, dim) : -1;
    int rg = ra == 0 ? embed_texts(ctx, given, ids_g, eg, dim) : -1;
    CHECK(ra == 0 && rg == 0, "embedding failed: %s", clipdex_ctx_errmsg(ctx));
    CHECK(ra == 0 && memcmp(ids_a, ids_g, sizeof ids_a) == 0, "token ids differ from the vocabulary's");
    CHECK(ra == 0 && memcmp(ea, eg, N_TEXTS * (size_t)dim * sizeof *ea) == 0, "text embeddings differ");
    clipdex_model_free(alone);
    clipdex_model_free(given);
    free(ea);
    free(eg);
    /* a merge without its space: the first merge is "i n" */
    snprintf(alt, sizeof alt, "%s/alone/bad.gguf", tmpdir);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", gguf, alt);
    CHECK(system(cmd) == 0 && patch_file(alt, "tokenizer.ggml.merges", "X", 1, 21 + 4 + 4 + 8 + 8 + 1) == 0,
          "cannot patch the merge");
    clipdex_model *m = load(ctx, alt, NULL);
    CHECK(!m && clipdex_ctx_errcode(ctx) == CLIPDEX_E_FORMAT && strstr(clipdex_ctx_errmsg(ctx), "merge 1"),
          "a garbled merge: %s", clipdex_ctx_errmsg(ctx));
    clipdex_model_free(m);
    /* the token list as u32 numbers: the parse or the loader refuses it */
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", gguf, alt);
    uint32_t u32 = 4;
    CHECK(system(cmd) == 0 && patch_file(alt, "tokenizer.ggml.tokens", &u32, 4, 21 + 4) == 0, "cannot patch");
    m = load(ctx, alt, NULL);
    CHECK(!m && clipdex_ctx_errcode(ctx) == CLIPDEX_E_FORMAT, "tokens of another type: %s", clipdex_ctx_errmsg(ctx));
    clipdex_model_free(m);
    /* tokens without merges (clip.cpp's files): the vocabulary beside it or CLIPDEX_VOCAB */
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", gguf, alt);
    CHECK(system(cmd) == 0 && patch_file(alt, "tokenizer.ggml.merges", "q", 1, 15) == 0, "cannot patch");
    m = load(ctx, alt, NULL);
    CHECK(m && !clipdex_model_tokenizer(m), "tokens without merges: %s", m ? "a tokenizer was made" : clipdex_ctx_errmsg(ctx));
    clipdex_model_free(m);
    setenv("CLIPDEX_VOCAB", vocab_dir, 1);
    m = load(ctx, alt, NULL);
    CHECK(m && clipdex_model_tokenizer(m), "tokens without merges + CLIPDEX_VOCAB: %s", clipdex_ctx_errmsg(ctx));
    clipdex_model_free(m);
    unsetenv("CLIPDEX_VOCAB");
}

int main(void)
{
    const char *shared = check_shared();
    clipdex_ctx *ctx = NULL;
    if (!shared || !mkdtemp(tmpdir) || clipdex_ctx_new(&ctx, NULL) != CLIPDEX_OK) {
        SKIP("no ../shared (the vocabulary)");
        return check_done("test_gguf_tokenizer");
    }
    char vocab[512];
    snprintf(vocab, sizeof vocab, "%s/data/vocab", shared);
    test_lists(ctx, vocab);
    test_model(ctx, vocab);
    clipdex_ctx_free(ctx);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd)) return 1;
    return check_done("test_gguf_tokenizer");
}
