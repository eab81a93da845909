/*
 * fuzz_tokenizer.c - libFuzzer target for clipdex_text_tokenize: any bytes
 * are a text (invalid UTF-8 included). The vocabulary is loaded once from
 * $CLIPDEX_VOCAB, else ../shared/data/vocab; without one every input is a
 * no-op. Each input is tokenized at context lengths 77 and 2 and the result's
 * shape is checked (start token, end token where n_tokens says, zero padding);
 * a violation aborts so the fuzzer reports it.
 */
#include <stdint.h>
#include <stdlib.h>

#include "clipdex.h"

static const clipdex_tokenizer *get_tokenizer(void)
{
    static int tried;
    static clipdex_tokenizer *tok;
    if (!tried) {
        tried = 1;
        const char *p = getenv("CLIPDEX_VOCAB");
        if (clipdex_tokenizer_load(NULL, p && *p ? p : "../shared/data/vocab", &tok)) tok = NULL;
    }
    return tok;
}

static void run(const clipdex_tokenizer *tok, const uint8_t *data, size_t size, size_t cl)
{
    int32_t ids[77];
    size_t n = 0;
    int truncated = -1;
    if (clipdex_text_tokenize(NULL, tok, (const char *)data, size, ids, cl, &n, &truncated)) abort();
    int32_t sot = clipdex_tokenizer_sot(tok), eot = clipdex_tokenizer_eot(tok);
    if (n < 2 || n > cl || ids[0] != sot || ids[n - 1] != eot) abort();
    if (truncated != 0 && (truncated != 1 || n != cl)) abort();
    for (size_t i = 1; i + 1 < n; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= clipdex_tokenizer_vocab_size(tok)) abort();
    }
    for (size_t i = n; i < cl; i++) {
        if (ids[i] != 0) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const clipdex_tokenizer *tok = get_tokenizer();
    if (!tok) return 0;
    run(tok, data, size, 77);
    run(tok, data, size, 2);
    return 0;
}
