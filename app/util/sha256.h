/*
 * sha256.h - SHA-256 (FIPS 180-4) for the clipdex program: content hashes of
 * indexed images and the identity hash of a model's weights.
 */
#ifndef CLIPDEX_APP_SHA256_H
#define CLIPDEX_APP_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32

typedef struct sha256_ctx {
    uint32_t h[8];
    uint64_t n_bytes;     /* bytes hashed so far */
    unsigned char buf[64];
    size_t n_buf;         /* bytes waiting in buf */
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *data, size_t len);
void sha256_final(sha256_ctx *c, unsigned char out[SHA256_LEN]);
/* One-shot hash of `len` bytes. */
void sha256(const void *data, size_t len, unsigned char out[SHA256_LEN]);
/* Writes 2*n lower-case hex digits and a NUL into `hex`. */
void hex_encode(const unsigned char *bytes, size_t n, char *hex);

#endif
