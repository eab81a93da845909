/*
 * tokenizer.c - the public tokenizer API: clip.tokenize(text) of OpenAI's
 * CLIP, i.e. [sot] + SimpleTokenizer.encode(text) + [eot], cut or zero-padded
 * to context_length.
 *
 * The text is streamed: decoded and fixed one ftfy segment at a time (a line
 * through its '\n'), then cleaned, pre-tokenized and BPE'd in pieces that end
 * at a ' ' or '\n' of ftfy's output - no later stage looks across those (no
 * HTML reference contains one, they are \s to the regex, and they end the
 * Final_Sigma context) - so the ids equal those of the whole text, and work
 * stops as soon as context_length - 1 BPE ids are known (one more than fit
 * tells truncation). Long texts therefore cost only what their kept prefix
 * costs; a single huge line costs time and memory linear in it (BPE is
 * O(n log n)).
 *
 * Pre-tokenizer: OpenAI's regex, with re.IGNORECASE, by hand:
 *   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 * On lower-cased text IGNORECASE still matters twice: 'ſ' (U+017F) matches
 * 's', and U+0345 (which case-folds to a letter) matches neither [\p{L}] nor
 * [^\s\p{L}\p{N}], so like whitespace it belongs to no token (checked against
 * the `regex` module over all code points).
 *
 * Invariants: the tokenizer is never written after load; all scratch is
 * local to a call.
 */
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "text/text.h"

/* ------------------------------------------------------------------------ */
/* Load, free, accessors                                                     */
/* ------------------------------------------------------------------------ */

int clipdex_tokenizer_load(clipdex_ctx *ctx, const char *path, clipdex_tokenizer **out)
{
    cdx_clear_error(ctx);
    if (!out) return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_tokenizer_load: out is NULL");
    *out = NULL;
    if (!path || !*path) return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_tokenizer_load: no path");
    clipdex_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok) return cdx_error(ctx, CLIPDEX_E_NOMEM, "cannot load '%s': out of memory", path);
    int rc = cdx_vocab_load(ctx, path, tok);
    if (rc) {
        clipdex_tokenizer_free(tok);
        return rc;
    }
    *out = tok;
    return CLIPDEX_OK;
}

void clipdex_tokenizer_free(clipdex_tokenizer *tok)
{
    if (!tok) return;
    cdx_vocab_release(tok);
    free(tok);
}

int32_t clipdex_tokenizer_sot(const clipdex_tokenizer *tok) { return tok ? tok->sot : -1; }
int32_t clipdex_tokenizer_eot(const clipdex_tokenizer *tok) { return tok ? tok->eot : -1; }
size_t clipdex_tokenizer_vocab_size(const clipdex_tokenizer *tok) { return tok ? tok->vocab_size : 0; }

/* ------------------------------------------------------------------------ */
/* Pre-tokenizer and BPE                                                     */
/* ------------------------------------------------------------------------ */

struct run {
    const clipdex_tokenizer *tok;
    int32_t *out;   /* BPE ids */
    size_t need, n; /* wanted, written */
    struct cdx_bpe_work bpe;
    uint8_t *bytes; /* UTF-8 of one pre-token */
    size_t bytes_cap;
};

static int is_letter(uint32_t c)
{
    if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
}

static int is_number(uint32_t c)
{
    if (c < 0x80) return c >= '0' && c <= '9';
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO;
}

/* Matches no alternative of the pattern (see the top comment). */
static int is_skipped(uint32_t c) { return cdx_is_regex_space(c) || c == 0x345; }

/* Compares t[0..) with an ASCII literal under IGNORECASE on lower-cased text. */
static int match_lit(const uint32_t *t, size_t n, const char *lit)
{
    size_t i = 0;
    for (; lit[i]; i++) {
        if (i >= n) return 0;
        uint32_t c = t[i];
        if (c != (uint8_t)lit[i] && !(lit[i] == 's' && c == 0x17F)) return 0;
    }
    return (int)i;
}

static int emit_piece(struct run *r, const uint32_t *t, size_t len)
{
    static const char sot[] = "<|startoftext|>", eot[] = "<|endoftext|>";
    /* The reference's cache maps the exact special strings to themselves. */
    if (len == sizeof sot - 1 || len == sizeof eot - 1) {
        const char *s = len == sizeof sot - 1 ? sot : eot;
        size_t i = 0;
        while (i < len && t[i] == (uint8_t)s[i]) i++;
        if (i == len) {
            r->out[r->n++] = s == sot ? r->tok->sot : r->tok->eot;
            return CLIPDEX_OK;
        }
    }
    size_t bytes;
    if (cdx_mul(len, 4, &bytes)) return CLIPDEX_E_NOMEM;
    if (bytes > r->bytes_cap) {
        uint8_t *nb = realloc(r->bytes, bytes);
        if (!nb) return CLIPDEX_E_NOMEM;
        r->bytes = nb;
        r->bytes_cap = bytes;
    }
    size_t nb = 0;
    for (size_t i = 0; i < len; i++) nb += cdx_utf8_put(t[i], r->bytes + nb);
    size_t got;
    int rc = cdx_bpe_word(r->tok, r->bytes, nb, &r->bpe, r->out + r->n, r->need - r->n, &got);
    r->n += got;
    return rc;
}

/* Runs the pattern over cleaned text, BPE-ing each match until enough ids. */
static int pretokenize(struct run *r, const uint32_t *t, size_t n)
{
    static const char *const contractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    size_t i = 0;
    while (i < n && r->n < r->need) {
        uint32_t c = t[i];
        if (is_skipped(c)) {
            i++;
            continue;
        }
        size_t len = 0;
        if (c == '<') {
            len = (size_t)match_lit(t + i, n - i, "<|startoftext|>");
            if (!len) len = (size_t)match_lit(t + i, n - i, "<|endoftext|>");
        } else if (c == '\'') {
            for (size_t k = 0; k < 7 && !len; k++) len = (size_t)match_lit(t + i, n - i, contractions[k]);
        }
        if (!len) {
            size_t j = i + 1;
            if (is_letter(c)) {
                while (j < n && is_letter(t[j])) j++;
            } else if (!is_number(c)) {
                while (j < n && !is_skipped(t[j]) && !is_letter(t[j]) && !is_number(t[j])) j++;
            }
            len = j - i;
        }
        int rc = emit_piece(r, t + i, len);
        if (rc) return rc;
        i += len;
    }
    return CLIPDEX_OK;
}

/* Cleans one piece of ftfy output (ending at a separator, or the last) and
 * tokenizes it. */
static int process(struct run *r, struct cdx_u32buf *piece)
{
    int rc = cdx_clean_post(piece);
    if (rc) return rc;
    return pretokenize(r, piece->v, piece->n);
}

/* ------------------------------------------------------------------------ */
/* clipdex_text_tokenize                                                     */
/* ------------------------------------------------------------------------ */

static int encode(struct run *r, const uint8_t *s, size_t len)
{
    struct cdx_u32buf seg = {0}, pend = {0}, piece = {0};
    size_t pos = 0;
    int unescape = 1, rc = CLIPDEX_OK;
    while (pos < len && r->n < r->need && !rc) {
        seg.n = 0;
        while (pos < len && seg.n < CDX_FTFY_MAX_SEGMENT) {
            uint32_t c = cdx_utf8_next(s, len, &pos);
            if ((rc = cdx_u32_push(&seg, c))) break;
            if (c == '\n') break;
        }
        if (rc) break;
        /* ftfy's unescape_html="auto" turns off for good at the first '<'. */
        for (size_t i = 0; i < seg.n && unescape; i++) unescape = seg.v[i] != '<';
        if ((rc = cdx_ftfy_segment(&seg, unescape))) break;
        if ((rc = cdx_u32_append(&pend, seg.v, seg.n))) break;
        size_t cut = pend.n;
        while (cut > 0 && pend.v[cut - 1] != ' ' && pend.v[cut - 1] != '\n') cut--;
        if (cut == 0) continue; /* no separator yet: keep accumulating */
        piece.n = 0;
        if ((rc = cdx_u32_append(&piece, pend.v, cut))) break;
        memmove(pend.v, pend.v + cut, (pend.n - cut) * sizeof *pend.v);
        pend.n -= cut;
        rc = process(r, &piece);
    }
    if (!rc && r->n < r->need && pend.n) rc = process(r, &pend);
    cdx_u32_free(&seg);
    cdx_u32_free(&pend);
    cdx_u32_free(&piece);
    return rc;
}

int clipdex_text_tokenize(clipdex_ctx *ctx, const clipdex_tokenizer *tok, const char *text,
                          size_t len, int32_t *ids, size_t context_length, size_t *n_tokens,
                          int *truncated)
{
    cdx_clear_error(ctx);
    if (n_tokens) *n_tokens = 0;
    if (truncated) *truncated = 0;
    if (!tok || !ids || (!text && len))
        return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_text_tokenize: NULL tokenizer, ids or text");
    if (context_length < 2)
        return cdx_error(ctx, CLIPDEX_E_ARG,
                         "clipdex_text_tokenize: context_length %zu cannot hold the start and end tokens",
                         context_length);
    /* ids[1 .. context_length-1] takes the BPE ids: context_length - 2 that
     * fit, plus one more that only says the text was cut. */
    struct run r = {.tok = tok, .out = ids + 1, .need = context_length - 1};
    int rc = encode(&r, (const uint8_t *)text, len);
    cdx_bpe_work_free(&r.bpe);
    free(r.bytes);
    if (rc) {
        memset(ids, 0, context_length * sizeof *ids);
        return cdx_error(ctx, rc, "cannot tokenize text: %s",
                         rc == CLIPDEX_E_LIMIT ? "a single word of 4 GiB or more" : clipdex_status_str(rc));
    }
    int cut = r.n == r.need;
    size_t kept = cut ? r.n - 1 : r.n;
    ids[0] = tok->sot;
    ids[1 + kept] = tok->eot;
    for (size_t i = kept + 2; i < context_length; i++) ids[i] = 0;
    if (n_tokens) *n_tokens = kept + 2;
    if (truncated) *truncated = cut;
    return CLIPDEX_OK;
}
