/*
 * text.h - internals of the tokenizer: code point buffers, UTF-8, the text
 * cleaning of OpenAI's `simple_tokenizer` (ftfy subset, HTML unescape,
 * whitespace, lower-case), the vocabulary and byte-level BPE.
 *
 * Layering: ustr.c (buffers, UTF-8) <- clean.c (cleaning) and vocab.c
 * (loading) and bpe.c (merging) <- tokenizer.c (public API). Everything here
 * is pure: no globals, no caches; a loaded tokenizer is never written again,
 * so one may be used from any number of threads.
 */
#ifndef CDX_TEXT_H
#define CDX_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* ftfy cuts a line longer than this many characters into segments
 * (TextFixerConfig.max_decode_length). */
#define CDX_FTFY_MAX_SEGMENT 1000000u

/* ftfy repeats its fixes on a segment until nothing changes, which can take
 * as many passes as an input nests "&amp;amp;...". The passes over one
 * segment stop after this many code points of work in all; below it (e.g. any
 * text up to 1 MiB needing up to 64 passes) results are exact. */
#ifndef CDX_FTFY_MAX_WORK
#define CDX_FTFY_MAX_WORK ((size_t)1 << 26)
#endif

/* Largest vocabulary file accepted (after gunzip). */
#ifndef CDX_VOCAB_MAX_BYTES
#define CDX_VOCAB_MAX_BYTES ((size_t)64 << 20)
#endif

/* OpenAI keeps merges[1 : 49152 - 256 - 2 + 1] of the merges file. */
#define CDX_BPE_MAX_MERGES (49152u - 256u - 2u)

/* ------------------------------------------------------------------------ */
/* Code point buffers and UTF-8 (ustr.c)                                     */
/* ------------------------------------------------------------------------ */

struct cdx_u32buf {
    uint32_t *v;
    size_t n, cap;
};

/* Makes room for `extra` more code points. CLIPDEX_OK or CLIPDEX_E_NOMEM. */
CDX_INTERNAL int cdx_u32_reserve(struct cdx_u32buf *b, size_t extra);
CDX_INTERNAL int cdx_u32_append(struct cdx_u32buf *b, const uint32_t *v, size_t n);
static inline int cdx_u32_push(struct cdx_u32buf *b, uint32_t c)
{
    if (b->n == b->cap && cdx_u32_reserve(b, 1)) return CLIPDEX_E_NOMEM;
    b->v[b->n++] = c;
    return CLIPDEX_OK;
}
CDX_INTERNAL void cdx_u32_free(struct cdx_u32buf *b);

/* Decodes one code point at s[*pos] (*pos < len) and advances *pos. Invalid
 * UTF-8 gives U+FFFD per maximal invalid subpart, exactly like Python's
 * bytes.decode('utf-8', errors='replace'). Never returns a surrogate. */
CDX_INTERNAL uint32_t cdx_utf8_next(const uint8_t *s, size_t len, size_t *pos);
/* Encodes c (< 0x110000) into out; returns the byte count (1..4). */
CDX_INTERNAL size_t cdx_utf8_put(uint32_t c, uint8_t out[4]);
/* 1 if s[0..len) is well-formed UTF-8. */
CDX_INTERNAL int cdx_utf8_valid(const uint8_t *s, size_t len);

/* ------------------------------------------------------------------------ */
/* Cleaning (clean.c)                                                        */
/* ------------------------------------------------------------------------ */

/* ftfy.fix_text on one segment (a line through its '\n', or a
 * CDX_FTFY_MAX_SEGMENT cut), well-formed-text fixes only, in place.
 * `unescape_html`: 0 once any segment so far held '<' (ftfy's "auto"). */
CDX_INTERNAL int cdx_ftfy_segment(struct cdx_u32buf *seg, int unescape_html);

/* The rest of the cleaning on ftfy's output, in place:
 * html.unescape(html.unescape(t)), strip, re.sub(r'\s+', ' '), strip, lower. */
CDX_INTERNAL int cdx_clean_post(struct cdx_u32buf *t);

/* The whole cleaning, whitespace_clean(basic_clean(text)).lower(), as UTF-8
 * into a malloc'd NUL-terminated *out (for tests and tools). */
CDX_INTERNAL int cdx_text_clean(const char *text, size_t len, char **out, size_t *out_len);

/* Regex-module `\s` (what separates pre-tokens). */
static inline int cdx_is_regex_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* ------------------------------------------------------------------------ */
/* Vocabulary (vocab.c) and BPE (bpe.c)                                      */
/* ------------------------------------------------------------------------ */

struct cdx_merge {
    int32_t left, right; /* ids of the pair */
    int32_t id;          /* id of the merged token */
};

struct clipdex_tokenizer {
    int32_t byte_id[256];     /* id of the byte-level char of byte b inside a word */
    int32_t byte_end_id[256]; /* id of that char + "</w>" (last byte of a word) */
    int32_t sot, eot;         /* <|startoftext|>, <|endoftext|> */
    size_t vocab_size;        /* largest id + 1 */
    size_t n_merges;
    struct cdx_merge *merges; /* [n_merges], by rank (0 merges first) */
    uint64_t *slot_key;       /* open addressing: pair key -> rank; UINT64_MAX empty */
    uint32_t *slot_rank;
    size_t slot_mask;         /* slots - 1 (power of two) */
};

/* Fills *tok from `path` (file or directory, see clipdex_tokenizer_load). */
CDX_INTERNAL int cdx_vocab_load(clipdex_ctx *ctx, const char *path, struct clipdex_tokenizer *tok);
CDX_INTERNAL void cdx_vocab_release(struct clipdex_tokenizer *tok);

/* Fills *tok from token strings (tokens[i] is the token of id i; "" for an
 * id without one) and merges ("LEFT RIGHT", by rank), as a GGUF file stores
 * them (tokenizer.ggml.tokens, tokenizer.ggml.merges); `label` names the
 * source in messages. The same checks as the vocabulary files. */
CDX_INTERNAL int cdx_vocab_from_strings(clipdex_ctx *ctx, const char *label, char *const *tokens, size_t n_tokens,
                                        char *const *merges, size_t n_merges, struct clipdex_tokenizer *tok);
/* The token strings of every id (*tokens, tok->vocab_size entries, "" for an
 * id without one) and the merges ("LEFT RIGHT", tok->n_merges entries) of a
 * tokenizer, rebuilt from its tables: what cdx_vocab_from_strings reads
 * back into the same tokenizer. Free both with cdx_strs_free. */
CDX_INTERNAL int cdx_vocab_strings(clipdex_ctx *ctx, const struct clipdex_tokenizer *tok, char ***tokens,
                                   char ***merges);
CDX_INTERNAL void cdx_strs_free(char **v, size_t n);

/* 1 if two tokenizers map every byte, merge and special token identically. */
CDX_INTERNAL int cdx_tokenizer_same(const struct clipdex_tokenizer *a,
                                    const struct clipdex_tokenizer *b);

static inline uint64_t cdx_pair_key(int32_t left, int32_t right)
{
    return ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
}

/* The rank of merging (left, right), or UINT32_MAX if there is none. */
static inline uint32_t cdx_merge_rank(const struct clipdex_tokenizer *tok, int32_t left,
                                      int32_t right)
{
    uint64_t key = cdx_pair_key(left, right);
    size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & tok->slot_mask;
    for (;;) {
        uint64_t k = tok->slot_key[i];
        if (k == key) return tok->slot_rank[i];
        if (k == UINT64_MAX) return UINT32_MAX;
        i = (i + 1) & tok->slot_mask;
    }
}

/* Scratch for cdx_bpe_word, owned by one call (grows, freed by the caller). */
struct cdx_bpe_work {
    int32_t *sym;
    uint32_t *next, *prev;
    uint64_t *heap;  /* (rank << 32) | position */
    uint32_t *batch; /* positions merged in one round */
    size_t cap;      /* symbols the arrays hold */
};

/* Byte-level BPE of one pre-token given as UTF-8 bytes (n >= 1), exactly as
 * simple_tokenizer.bpe: at each step merge every occurrence, left to right,
 * of the adjacent pair of lowest rank. Appends at most `room` ids to out and
 * returns how many through *n_out. O(n log n). */
CDX_INTERNAL int cdx_bpe_word(const struct clipdex_tokenizer *tok, const uint8_t *bytes,
                              size_t n, struct cdx_bpe_work *w, int32_t *out, size_t room,
                              size_t *n_out);
CDX_INTERNAL void cdx_bpe_work_free(struct cdx_bpe_work *w);

#endif
