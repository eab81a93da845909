/*
 * vocab.c - loads OpenAI's byte-level BPE vocabulary into a clipdex_tokenizer.
 *
 * Two forms, one result:
 *   - OpenAI's `bpe_simple_vocab_16e6.txt[.gz]`: only merges. The vocabulary
 *     is built exactly as simple_tokenizer does: the 256 byte characters of
 *     bytes_to_unicode() in its order, the same with "</w>", one token per
 *     merge of lines[1 : 48895], then <|startoftext|> and <|endoftext|>.
 *   - Hugging Face `vocab.json` + `merges.txt`: ids come from vocab.json.
 *   - token and merge strings (a GGUF file's tokenizer.ggml.tokens and
 *     tokenizer.ggml.merges): ids are the token's index. cdx_vocab_strings
 *     writes a tokenizer back as those two lists.
 * Both go through the same code: a token -> id map (a jansson object, last
 * definition wins like Python's dict) and the merge list are turned into
 * integer tables: byte -> id and (left id, right id) -> rank, merged id.
 *
 * Invariants: every size read from a file is bounded (CDX_VOCAB_MAX_BYTES,
 * CDX_BPE_MAX_MERGES); a merge whose parts or result have no id is a format
 * error, so BPE never meets an unknown symbol; the finished tokenizer is
 * immutable.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <zlib.h>

#include "text/text.h"

/* ------------------------------------------------------------------------ */
/* bytes_to_unicode                                                          */
/* ------------------------------------------------------------------------ */

/* order[i]: the byte whose character is the i-th of bytes_to_unicode()'s
 * values; ch[b]: the character standing for byte b. */
static void bytes_to_unicode(uint8_t order[256], uint32_t ch[256])
{
    int n = 0, extra = 0;
    uint8_t printable[256] = {0};
    for (int b = 0; b < 256; b++) {
        if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) {
            printable[b] = 1;
            order[n++] = (uint8_t)b;
            ch[b] = (uint32_t)b;
        }
    }
    for (int b = 0; b < 256; b++) {
        if (!printable[b]) {
            order[n++] = (uint8_t)b;
            ch[b] = 256u + (uint32_t)extra++;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Files                                                                     */
/* ------------------------------------------------------------------------ */

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static char *path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (k && p[k - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

/* The path of `name` in the directory holding `file`. */
static char *sibling(const char *file, const char *name)
{
    const char *slash = strrchr(file, '/');
    if (!slash) return path_join(".", name);
    size_t n = (size_t)(slash - file) + 1;
    char *dir = malloc(n + 1);
    if (!dir) return NULL;
    memcpy(dir, file, n);
    dir[n] = '\0';
    char *p = path_join(dir, name);
    free(dir);
    return p;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Reads a file, gunzipping it if it starts with the gzip magic. */
static int read_maybe_gz(clipdex_ctx *ctx, const char *path, char **out, size_t *out_len)
{
    char *raw;
    size_t n;
    int rc = cdx_read_file(ctx, path, CDX_VOCAB_MAX_BYTES, &raw, &n);
    if (rc) return rc;
    if (n < 2 || (uint8_t)raw[0] != 0x1F || (uint8_t)raw[1] != 0x8B) {
        *out = raw;
        *out_len = n;
        return CLIPDEX_OK;
    }
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
        free(raw);
        return cdx_error(ctx, CLIPDEX_E_NOMEM, "cannot gunzip '%s': zlib init failed", path);
    }
    size_t cap = 1 << 22, len = 0;
    char *buf = malloc(cap + 1);
    zs.next_in = (Bytef *)raw;
    zs.avail_in = (uInt)n; /* n <= CDX_VOCAB_MAX_BYTES fits uInt */
    rc = CLIPDEX_OK;
    while (buf) {
        if (len == cap) {
            if (cap >= CDX_VOCAB_MAX_BYTES) {
                rc = cdx_error(ctx, CLIPDEX_E_LIMIT, "cannot load '%s': over %zu bytes uncompressed",
                               path, (size_t)CDX_VOCAB_MAX_BYTES);
                break;
            }
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
        }
        zs.next_out = (Bytef *)buf + len;
        zs.avail_out = (uInt)(cap - len);
        int z = inflate(&zs, Z_NO_FLUSH);
        len = cap - zs.avail_out;
        if (z == Z_STREAM_END) {
            if (zs.avail_in == 0) break;
            if (inflateReset(&zs) != Z_OK) z = Z_DATA_ERROR; /* another gzip member */
            else continue;
        }
        if (z != Z_OK && !(z == Z_BUF_ERROR && zs.avail_out == 0)) {
            rc = cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot gunzip '%s': %s", path,
                           zs.msg ? zs.msg : "truncated or corrupt data");
            break;
        }
    }
    inflateEnd(&zs);
    free(raw);
    if (!buf) return cdx_error(ctx, CLIPDEX_E_NOMEM, "cannot gunzip '%s': out of memory", path);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return CLIPDEX_OK;
}

/* ------------------------------------------------------------------------ */
/* Merges                                                                    */
/* ------------------------------------------------------------------------ */

struct merge_text {
    const char *a, *b; /* NUL-terminated, inside the file buffer */
};

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* Splits lines[1 : 1 + CDX_BPE_MAX_MERGES] of `text` (modified in place)
 * into pairs, like `[tuple(l.split()) for l in lines]`. Empty lines at the
 * end of the file end the list. */
static int parse_merges(clipdex_ctx *ctx, const char *path, char *text, size_t len,
                        struct merge_text **out, size_t *n_out)
{
    if (!cdx_utf8_valid((const uint8_t *)text, len))
        return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': not UTF-8", path);
    struct merge_text *m = malloc(CDX_BPE_MAX_MERGES * sizeof *m);
    if (!m) return cdx_error(ctx, CLIPDEX_E_NOMEM, "cannot load '%s': out of memory", path);
    char *p = text, *end = text + len;
    char *nl = memchr(p, '\n', len); /* line 0 is the "#version" header */
    p = nl ? nl + 1 : end;
    size_t n = 0, line = 1, blank_at = 0;
    while (p < end && n < CDX_BPE_MAX_MERGES) {
        char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e) e = end;
        *e = '\0';
        char *f[3] = {0};
        int nf = 0;
        for (char *q = p; q < e && nf < 3;) {
            while (q < e && is_ws(*q)) *q++ = '\0';
            if (q >= e) break;
            f[nf++] = q;
            while (q < e && !is_ws(*q)) q++;
        }
        if (nf == 0) {
            if (!blank_at) blank_at = line;
        } else if (nf != 2 || blank_at) {
            free(m);
            return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': line %zu is not a merge 'a b'",
                             path, blank_at ? blank_at + 1 : line + 1);
        } else {
            m[n].a = f[0];
            m[n].b = f[1];
            n++;
        }
        line++;
        p = e + 1;
    }
    if (n == 0) {
        free(m);
        return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': no merges", path);
    }
    *out = m;
    *n_out = n;
    return CLIPDEX_OK;
}

/* ------------------------------------------------------------------------ */
/* Building the tables                                                       */
/* ------------------------------------------------------------------------ */

static int lookup(json_t *vocab, const char *tok, int32_t *id)
{
    json_t *v = json_object_get(vocab, tok);
    if (!v || !json_is_integer(v)) return 0;
    json_int_t x = json_integer_value(v);
    if (x < 0 || x > INT32_MAX - 1) return 0;
    *id = (int32_t)x;
    return 1;
}

static size_t utf8_of(uint32_t c, char *buf)
{
    size_t n = cdx_utf8_put(c, (uint8_t *)buf);
    buf[n] = '\0';
    return n;
}

static int build(clipdex_ctx *ctx, const char *path, json_t *vocab, const struct merge_text *mt,
                 size_t n_merges, struct clipdex_tokenizer *tok)
{
    uint8_t order[256];
    uint32_t ch[256];
    bytes_to_unicode(order, ch);
    char buf[16];
    for (int b = 0; b < 256; b++) {
        size_t k = utf8_of(ch[b], buf);
        if (!lookup(vocab, buf, &tok->byte_id[b]))
            return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': no id for byte 0x%02X", path, b);
        memcpy(buf + k, "</w>", 5);
        if (!lookup(vocab, buf, &tok->byte_end_id[b]))
            return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': no id for '%s'", path, buf);
    }
    if (!lookup(vocab, "<|startoftext|>", &tok->sot) || !lookup(vocab, "<|endoftext|>", &tok->eot))
        return cdx_error(ctx, CLIPDEX_E_FORMAT,
                         "cannot load '%s': <|startoftext|> or <|endoftext|> is missing", path);

    size_t slots = 1;
    while (slots < 2 * n_merges + 2) slots *= 2;
    tok->merges = malloc(n_merges * sizeof *tok->merges);
    tok->slot_key = malloc(slots * sizeof *tok->slot_key);
    tok->slot_rank = malloc(slots * sizeof *tok->slot_rank);
    if (!tok->merges || !tok->slot_key || !tok->slot_rank)
        return cdx_error(ctx, CLIPDEX_E_NOMEM, "cannot load '%s': out of memory", path);
    memset(tok->slot_key, 0xFF, slots * sizeof *tok->slot_key);
    tok->slot_mask = slots - 1;
    tok->n_merges = n_merges;

    size_t cap = 256;
    char *joined = malloc(cap);
    if (!joined) return cdx_error(ctx, CLIPDEX_E_NOMEM, "cannot load '%s': out of memory", path);
    for (size_t r = 0; r < n_merges; r++) {
        struct cdx_merge *m = &tok->merges[r];
        size_t la = strlen(mt[r].a), lb = strlen(mt[r].b);
        if (la + lb + 1 > cap) {
            cap = la + lb + 1;
            char *nj = realloc(joined, cap);
            if (!nj) {
                free(joined);
                return cdx_error(ctx, CLIPDEX_E_NOMEM, "cannot load '%s': out of memory", path);
            }
            joined = nj;
        }
        memcpy(joined, mt[r].a, la);
        memcpy(joined + la, mt[r].b, lb + 1);
        if (!lookup(vocab, mt[r].a, &m->left) || !lookup(vocab, mt[r].b, &m->right) ||
            !lookup(vocab, joined, &m->id)) {
            int rc = cdx_error(ctx, CLIPDEX_E_FORMAT,
                               "cannot load '%s': merge %zu ('%s' '%s') has no id", path, r + 1,
                               mt[r].a, mt[r].b);
            free(joined);
            return rc;
        }
        /* dict(zip(merges, range(...))): a repeated pair keeps its last rank. */
        uint64_t key = cdx_pair_key(m->left, m->right);
        size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & tok->slot_mask;
        while (tok->slot_key[i] != UINT64_MAX && tok->slot_key[i] != key) i = (i + 1) & tok->slot_mask;
        tok->slot_key[i] = key;
        tok->slot_rank[i] = (uint32_t)r;
    }
    free(joined);

    /* vocab_size: the largest id + 1. */
    int32_t max_id = -1;
    const char *k;
    json_t *v;
    json_object_foreach(vocab, k, v) {
        json_int_t id = json_is_integer(v) ? json_integer_value(v) : -1;
        if (id < 0 || id > INT32_MAX - 1)
            return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': token '%s' has no valid id",
                             path, k);
        if (id > max_id) max_id = (int32_t)id;
    }
    tok->vocab_size = (size_t)max_id + 1;
    return CLIPDEX_OK;
}

/* OpenAI's file: the vocabulary is implied by the merges. */
static int load_openai(clipdex_ctx *ctx, const char *path, struct clipdex_tokenizer *tok)
{
    char *text;
    size_t len;
    int rc = read_maybe_gz(ctx, path, &text, &len);
    if (rc) return rc;
    struct merge_text *mt = NULL;
    size_t n = 0;
    json_t *vocab = NULL;
    if ((rc = parse_merges(ctx, path, text, len, &mt, &n))) goto done;
    vocab = json_object();
    if (!vocab) {
        rc = cdx_error(ctx, CLIPDEX_E_NOMEM, "cannot load '%s': out of memory", path);
        goto done;
    }
    uint8_t order[256];
    uint32_t ch[256];
    bytes_to_unicode(order, ch);
    char buf[16];
    json_int_t id = 0;
    int bad = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < 256; i++) {
            size_t k = utf8_of(ch[order[i]], buf);
            if (pass) memcpy(buf + k, "</w>", 5);
            bad |= json_object_set_new_nocheck(vocab, buf, json_integer(id++));
        }
    }
    char *joined = NULL;
    for (size_t r = 0; r < n && !bad; r++) {
        size_t la = strlen(mt[r].a), lb = strlen(mt[r].b);
        char *nj = realloc(joined, la + lb + 1);
        if (!nj) {
            bad = 1;
            break;
        }
        joined = nj;
        memcpy(joined, mt[r].a, la);
        memcpy(joined + la, mt[r].b, lb + 1);
        bad |= json_object_set_new_nocheck(vocab, joined, json_integer(id++));
    }
    free(joined);
    bad |= json_object_set_new_nocheck(vocab, "<|startoftext|>", json_integer(id++));
    bad |= json_object_set_new_nocheck(vocab, "<|endoftext|>", json_integer(id++));
    if (bad) rc = cdx_error(ctx, CLIPDEX_E_NOMEM, "cannot load '%s': out of memory", path);
    else rc = build(ctx, path, vocab, mt, n, tok);
done:
    json_decref(vocab);
    free(mt);
    free(text);
    return rc;
}

/* Hugging Face: vocab.json + merges.txt. */
static int load_hf(clipdex_ctx *ctx, const char *vocab_path, const char *merges_path,
                   struct clipdex_tokenizer *tok)
{
    char *js, *text = NULL;
    size_t js_len, len;
    int rc = cdx_read_file(ctx, vocab_path, CDX_VOCAB_MAX_BYTES, &js, &js_len);
    if (rc) return rc;
    json_error_t err;
    json_t *vocab = json_loadb(js, js_len, 0, &err);
    free(js);
    if (!vocab || !json_is_object(vocab)) {
        rc = cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': %s (line %d)", vocab_path,
                       vocab ? "not a JSON object" : err.text, vocab ? 0 : err.line);
        json_decref(vocab);
        return rc;
    }
    struct merge_text *mt = NULL;
    size_t n = 0;
    if (!(rc = read_maybe_gz(ctx, merges_path, &text, &len)) &&
        !(rc = parse_merges(ctx, merges_path, text, len, &mt, &n)))
        rc = build(ctx, vocab_path, vocab, mt, n, tok);
    json_decref(vocab);
    free(mt);
    free(text);
    return rc;
}

int cdx_vocab_load(clipdex_ctx *ctx, const char *path, struct clipdex_tokenizer *tok)
{
    static const char *const openai_names[] = {"bpe_simple_vocab_16e6.txt.gz",
                                               "bpe_simple_vocab_16e6.txt"};
    int rc;
    if (is_dir(path)) {
        for (size_t i = 0; i < 2; i++) {
            char *p = path_join(path, openai_names[i]);
            if (!p) return cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory");
            if (is_file(p)) {
                rc = load_openai(ctx, p, tok);
                free(p);
                return rc;
            }
            free(p);
        }
        char *v = path_join(path, "vocab.json"), *m = path_join(path, "merges.txt");
        if (!v || !m) rc = cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory");
        else if (is_file(v) && is_file(m)) rc = load_hf(ctx, v, m, tok);
        else rc = cdx_error(ctx, CLIPDEX_E_IO,
                            "cannot load tokenizer from '%s': no bpe_simple_vocab_16e6.txt[.gz] "
                            "and no vocab.json + merges.txt there", path);
        free(v);
        free(m);
        return rc;
    }
    if (!is_file(path))
        return cdx_error(ctx, CLIPDEX_E_IO, "cannot open '%s': no such file or directory", path);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    int json = ends_with(path, ".json"), merges = strcmp(base, "merges.txt") == 0;
    if (!json && !merges) return load_openai(ctx, path, tok);
    char *other = sibling(path, json ? "merges.txt" : "vocab.json");
    if (!other) return cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory");
    if (!is_file(other)) rc = cdx_error(ctx, CLIPDEX_E_IO, "cannot load '%s': '%s' is missing", path, other);
    else rc = json ? load_hf(ctx, path, other, tok) : load_hf(ctx, other, path, tok);
    free(other);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Token and merge lists (GGUF)                                              */
/* ------------------------------------------------------------------------ */

#define CDX_VOCAB_MAX_TOKENS (1u << 20)

/* Splits "LEFT RIGHT" copies of the merges into mt (buf holds the copies). */
static int split_merges(clipdex_ctx *ctx, const char *label, char *const *merges, size_t n, struct merge_text *mt,
                        char **buf_out)
{
    size_t total = 0;
    for (size_t r = 0; r < n; r++) total += strlen(merges[r]) + 1;
    char *buf = malloc(total ? total : 1), *p = buf;
    *buf_out = buf;
    if (!buf) return cdx_error(ctx, CLIPDEX_E_NOMEM, "cannot load '%s': out of memory", label);
    for (size_t r = 0; r < n; r++) {
        size_t len = strlen(merges[r]);
        memcpy(p, merges[r], len + 1);
        char *sp = strchr(p, ' ');
        if (!sp || sp == p || !sp[1] || strchr(sp + 1, ' ') || !cdx_utf8_valid((const uint8_t *)p, len))
            return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': merge %zu is not 'a b' in UTF-8", label, r + 1);
        *sp = '\0';
        mt[r].a = p;
        mt[r].b = sp + 1;
        p += len + 1;
    }
    return CLIPDEX_OK;
}

int cdx_vocab_from_strings(clipdex_ctx *ctx, const char *label, char *const *tokens, size_t n_tokens,
                           char *const *merges, size_t n_merges, struct clipdex_tokenizer *tok)
{
    if (n_tokens == 0 || n_tokens > CDX_VOCAB_MAX_TOKENS || n_merges == 0 || n_merges > CDX_BPE_MAX_MERGES)
        return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': %zu tokens and %zu merges (1..%u and 1..%u)",
                         label, n_tokens, n_merges, CDX_VOCAB_MAX_TOKENS, (unsigned)CDX_BPE_MAX_MERGES);
    json_t *vocab = json_object();
    struct merge_text *mt = malloc(n_merges * sizeof *mt);
    char *buf = NULL;
    int rc = vocab && mt ? CLIPDEX_OK : cdx_error(ctx, CLIPDEX_E_NOMEM, "cannot load '%s': out of memory", label);
    for (size_t i = 0; !rc && i < n_tokens; i++) {
        if (!tokens[i][0]) continue;
        if (!cdx_utf8_valid((const uint8_t *)tokens[i], strlen(tokens[i])))
            rc = cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': token %zu is not UTF-8", label, i);
        else if (json_object_set_new(vocab, tokens[i], json_integer((json_int_t)i)))
            rc = cdx_error(ctx, CLIPDEX_E_NOMEM, "cannot load '%s': out of memory", label);
    }
    if (!rc) rc = split_merges(ctx, label, merges, n_merges, mt, &buf);
    if (!rc) rc = build(ctx, label, vocab, mt, n_merges, tok);
    json_decref(vocab);
    free(mt);
    free(buf);
    return rc;
}

void cdx_strs_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) free(v[i]);
    free(v);
}

/* a + sep + b, malloc'd */
static char *cat3(const char *a, const char *sep, const char *b)
{
    size_t la = strlen(a), ls = strlen(sep), lb = strlen(b);
    char *s = malloc(la + ls + lb + 1);
    if (!s) return NULL;
    memcpy(s, a, la);
    memcpy(s + la, sep, ls);
    memcpy(s + la + ls, b, lb + 1);
    return s;
}

/* The token of every id: byte characters, those + "</w>", the specials,
 * then each merge's result as the concatenation of its parts. */
static int token_strings(const struct clipdex_tokenizer *tok, char **t)
{
    uint8_t order[256];
    uint32_t ch[256];
    bytes_to_unicode(order, ch);
    char buf[16];
    int bad = 0;
    for (int b = 0; b < 256; b++) {
        utf8_of(ch[b], buf);
        free(t[tok->byte_id[b]]);
        free(t[tok->byte_end_id[b]]);
        t[tok->byte_id[b]] = strdup(buf);
        t[tok->byte_end_id[b]] = cat3(buf, "", "</w>");
        bad |= !t[tok->byte_id[b]] || !t[tok->byte_end_id[b]];
    }
    free(t[tok->sot]);
    free(t[tok->eot]);
    t[tok->sot] = strdup("<|startoftext|>");
    t[tok->eot] = strdup("<|endoftext|>");
    bad |= !t[tok->sot] || !t[tok->eot];
    for (size_t r = 0; !bad && r < tok->n_merges; r++) {
        const struct cdx_merge *m = &tok->merges[r];
        if (!t[m->left] || !t[m->right]) return CLIPDEX_E_INTERNAL; /* a part defined by a later merge */
        char *s = cat3(t[m->left], "", t[m->right]);
        free(t[m->id]);
        t[m->id] = s;
        bad |= !s;
    }
    for (size_t i = 0; !bad && i < tok->vocab_size; i++)
        if (!t[i]) bad |= !(t[i] = strdup(""));
    return bad ? CLIPDEX_E_NOMEM : CLIPDEX_OK;
}

int cdx_vocab_strings(clipdex_ctx *ctx, const struct clipdex_tokenizer *tok, char ***tokens, char ***merges)
{
    *tokens = calloc(tok->vocab_size, sizeof **tokens);
    *merges = calloc(tok->n_merges ? tok->n_merges : 1, sizeof **merges);
    int rc = *tokens && *merges ? token_strings(tok, *tokens) : CLIPDEX_E_NOMEM;
    for (size_t r = 0; !rc && r < tok->n_merges; r++)
        if (!((*merges)[r] = cat3((*tokens)[tok->merges[r].left], " ", (*tokens)[tok->merges[r].right])))
            rc = CLIPDEX_E_NOMEM;
    if (!rc) return CLIPDEX_OK;
    cdx_strs_free(*tokens, tok->vocab_size);
    cdx_strs_free(*merges, tok->n_merges);
    *tokens = *merges = NULL;
    return cdx_error(ctx, rc, rc == CLIPDEX_E_NOMEM ? "cannot list the tokenizer: out of memory"
                                                   : "cannot list the tokenizer: a merge uses a later token");
}

void cdx_vocab_release(struct clipdex_tokenizer *tok)
{
    free(tok->merges);
    free(tok->slot_key);
    free(tok->slot_rank);
    tok->merges = NULL;
    tok->slot_key = NULL;
    tok->slot_rank = NULL;
}

int cdx_tokenizer_same(const struct clipdex_tokenizer *a, const struct clipdex_tokenizer *b)
{
    if (memcmp(a->byte_id, b->byte_id, sizeof a->byte_id) ||
        memcmp(a->byte_end_id, b->byte_end_id, sizeof a->byte_end_id) || a->sot != b->sot ||
        a->eot != b->eot || a->vocab_size != b->vocab_size || a->n_merges != b->n_merges)
        return 0;
    for (size_t r = 0; r < a->n_merges; r++) {
        if (a->merges[r].left != b->merges[r].left || a->merges[r].right != b->merges[r].right ||
            a->merges[r].id != b->merges[r].id)
            return 0;
        if (cdx_merge_rank(a, a->merges[r].left, a->merges[r].right) !=
            cdx_merge_rank(b, b->merges[r].left, b->merges[r].right))
            return 0;
    }
    return 1;
}
