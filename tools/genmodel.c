/*
 * genmodel.c - writes an architecture-exact CLIP with seeded random weights.
 *
 *   genmodel --config tiny|small|b32|b16|l14 --layout hf|openclip|both
 *            --dtype f32|f16|bf16 --seed N --out DIR [--vocab DIR]
 *
 * Layout hf writes DIR/config.json, DIR/preprocessor_config.json and
 * DIR/model.safetensors with the Hugging Face transformers CLIPModel names
 * (including the int64 position_ids tensors hub files carry). Layout openclip
 * writes DIR/open_clip_config.json and DIR/open_clip_model.safetensors with
 * OpenAI's state-dict names. Layout both writes both, holding the same numbers:
 * in_proj_weight is q, k, v stacked; visual.proj and text_projection are the
 * transposes of the HF projection weights.
 *
 * Every weight is a pure function of (seed, canonical HF tensor name, element
 * index): a splitmix64 stream keyed by the seed and an FNV-1a hash of the name
 * gives uniform numbers in [-1, 1), scaled per kind of tensor. Numbers are
 * made in float32 and rounded to nearest-even for f16/bf16, so the same
 * command always writes byte-identical files. The sha256 of each safetensors
 * file is printed (sha256sum format).
 *
 * Only libc and libm; the tests (tests/golden/models/) regenerate models with
 * this tool and compare the engine with goldens of tools/reference.py.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------------ */
/* Model shapes                                                              */
/* ------------------------------------------------------------------------ */

struct cfg {
    const char *name;
    int image_size, patch, v_width, v_layers, v_heads, v_mlp;
    int t_width, t_layers, t_heads, t_mlp, vocab, ctx;
    int embed;
    int quick_gelu; /* 1: x*sigmoid(1.702x); 0: exact erf GELU */
};

static const struct cfg CONFIGS[] = {
    /* name    img  P   vW  vL  vH  vMLP  tW  tL  tH  tMLP  vocab  ctx  E   qg */
    {"tiny",   224, 32, 64,   2, 2,  256,  32,  2, 2,  128, 49408, 77,  32, 1},
    {"small",   64, 16, 48,   3, 3,  192,  40,  2, 5,  160, 49408, 77,  24, 0},
    {"b32",    224, 32, 768, 12, 12, 3072, 512, 12, 8, 2048, 49408, 77, 512, 1},
    {"b16",    224, 16, 768, 12, 12, 3072, 512, 12, 8, 2048, 49408, 77, 512, 1},
    {"l14",    224, 14, 1024, 24, 16, 4096, 768, 12, 12, 3072, 49408, 77, 768, 1},
};

/* ------------------------------------------------------------------------ */
/* Deterministic random numbers                                              */
/* ------------------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t fnv1a64(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

/* How a tensor's numbers are drawn: value = center + halfwidth * U[-1, 1). */
struct dist {
    double center, halfwidth;
};

/* Fills `out[n]` with the numbers of canonical tensor `name`. */
static void gen_values(uint64_t seed, const char *name, struct dist d, float *out, size_t n)
{
    uint64_t st = seed * 0xD1B54A32D192ED03ull ^ fnv1a64(name);
    splitmix64(&st); /* decorrelate nearby seeds */
    for (size_t i = 0; i < n; i++) {
        uint64_t r = splitmix64(&st);
        double u = (double)(r >> 40) * (1.0 / 16777216.0) * 2.0 - 1.0; /* [-1, 1) */
        out[i] = (float)(d.center + d.halfwidth * u);
    }
}

/* Uniform with standard deviation `std` around 0. */
static struct dist d_std(double std) { return (struct dist){0.0, std * sqrt(3.0)}; }
/* A linear layer's weight: std gain / sqrt(fan_in). */
static struct dist d_linear(int fan_in, double gain) { return d_std(gain / sqrt((double)fan_in)); }
static const struct dist D_BIAS = {0.0, 0.05};
static const struct dist D_LN_W = {1.0, 0.2}; /* never exactly 1 */
static const struct dist D_LN_B = {0.0, 0.1}; /* never exactly 0 */

/* ------------------------------------------------------------------------ */
/* Float conversions (round to nearest even)                                 */
/* ------------------------------------------------------------------------ */

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static uint16_t f32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static uint16_t f32_to_f16(float f)
{
    uint32_t u = f32_bits(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    int exp = (int)((u >> 23) & 0xff);
    uint32_t mant = u & 0x7fffffu;
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00u | (mant ? 0x200u : 0));
    int e = exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) { /* subnormal or zero in f16 */
        if (e < -10) return (uint16_t)sign;
        uint32_t m = mant | 0x800000u;
        int shift = 14 - e;
        uint32_t h = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1u))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = sign | ((uint32_t)e << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++; /* may carry into inf */
    return (uint16_t)h;
}

/* ------------------------------------------------------------------------ */
/* SHA-256 (FIPS 180-4)                                                      */
/* ------------------------------------------------------------------------ */

struct sha256 {
    uint32_t h[8];
    uint64_t len;
    unsigned char buf[64];
    size_t n;
};

static const uint32_t SHA_K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR32(x, r) (((x) >> (r)) | ((x) << (32 - (r))))

static void sha256_init(struct sha256 *s)
{
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, h0, sizeof h0);
    s->len = 0;
    s->n = 0;
}

static void sha256_block(struct sha256 *s, const unsigned char *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR32(w[i - 15], 7) ^ ROR32(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR32(w[i - 2], 17) ^ ROR32(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3];
    uint32_t e = s->h[4], f = s->h[5], g = s->h[6], h = s->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (ROR32(e, 6) ^ ROR32(e, 11) ^ ROR32(e, 25)) + ((e & f) ^ (~e & g)) +
                      SHA_K[i] + w[i];
        uint32_t t2 = (ROR32(a, 2) ^ ROR32(a, 13) ^ ROR32(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g; g = f; f = e; e = d + t1;
        d = c; c = b; b = a; a = t1 + t2;
    }
    s->h[0] += a; s->h[1] += b; s->h[2] += c; s->h[3] += d;
    s->h[4] += e; s->h[5] += f; s->h[6] += g; s->h[7] += h;
}

static void sha256_update(struct sha256 *s, const void *data, size_t len)
{
    const unsigned char *p = data;
    s->len += len;
    if (s->n) {
        size_t k = 64 - s->n < len ? 64 - s->n : len;
        memcpy(s->buf + s->n, p, k);
        s->n += k; p += k; len -= k;
        if (s->n < 64) return;
        sha256_block(s, s->buf);
        s->n = 0;
    }
    for (; len >= 64; p += 64, len -= 64) sha256_block(s, p);
    memcpy(s->buf, p, len);
    s->n = len;
}

static void sha256_hex(struct sha256 *s, char out[65])
{
    uint64_t bits = s->len * 8;
    unsigned char pad[72] = {0x80};
    size_t padlen = (s->n < 56 ? 56 : 120) - s->n;
    for (int i = 0; i < 8; i++) pad[padlen + i] = (unsigned char)(bits >> (56 - 8 * i));
    sha256_update(s, pad, padlen + 8);
    for (int i = 0; i < 8; i++) sprintf(out + 8 * i, "%08x", s->h[i]);
    out[64] = 0;
}

/* ------------------------------------------------------------------------ */
/* Tensor list                                                               */
/* ------------------------------------------------------------------------ */

enum dtype { DT_F32, DT_F16, DT_BF16, DT_I64 };
static const char *DT_NAME[] = {"F32", "F16", "BF16", "I64"};
static const int DT_SIZE[] = {4, 2, 2, 8};

/* How a file tensor is made from canonical (HF-named) numbers. */
enum how {
    H_PLAIN,     /* the canonical tensor `src[0]` as is */
    H_CONCAT3,   /* src[0], src[1], src[2] stacked along dim 0 (in_proj) */
    H_TRANSPOSE, /* the transpose of 2-D canonical `src[0]` [rows, cols] */
    H_POS_IDS,   /* int64 0..n-1, shape [1, n] */
    H_CONST      /* the constant `value` (logit_scale) */
};

struct tensor {
    char name[160];
    enum dtype dt;
    int ndim;
    long shape[4];
    enum how how;
    char src[3][160];
    struct dist dist[3];
    long rows, cols; /* H_TRANSPOSE: canonical shape */
    double value;
    size_t offset, nbytes;
};

struct tlist {
    struct tensor *t;
    size_t n, cap;
};

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "genmodel: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    exit(1);
}

static struct tensor *tl_add(struct tlist *l, const char *name, enum dtype dt, int ndim,
                             long s0, long s1, long s2, long s3)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->t = realloc(l->t, l->cap * sizeof *l->t);
        if (!l->t) die("%s", "out of memory");
    }
    struct tensor *t = &l->t[l->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dt = dt;
    t->ndim = ndim;
    long s[4] = {s0, s1, s2, s3};
    for (int i = 0; i < ndim; i++) t->shape[i] = s[i];
    t->how = H_PLAIN;
    return t;
}

static size_t t_numel(const struct tensor *t)
{
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
    return n;
}

/* A plain tensor named `name` in the file, drawn as canonical `canon`. */
static void add_plain(struct tlist *l, const char *name, const char *canon, struct dist d,
                      enum dtype dt, int ndim, long s0, long s1, long s2, long s3)
{
    struct tensor *t = tl_add(l, name, dt, ndim, s0, s1, s2, s3);
    snprintf(t->src[0], sizeof t->src[0], "%s", canon);
    t->dist[0] = d;
}

/* The canonical (HF) prefix of a tower's layer `i`. */
static void hf_layer(char *buf, size_t n, const char *tower, int i)
{
    snprintf(buf, n, "%s_model.encoder.layers.%d.", tower, i);
}

/* Adds one transformer block. `prefix` is the file prefix; `canon` the HF prefix. */
static void add_block(struct tlist *l, int openclip, const char *prefix, const char *canon,
                      int w, int mlp, enum dtype dt)
{
    char n[160], c[3][160]; /* prefixes are < 96 bytes */
    const struct dist dw = d_linear(w, 1.0), dm = d_linear(mlp, 1.0);
#define N(s) (snprintf(n, sizeof n, "%s%s", prefix, s), n)
#define C(k, s) (snprintf(c[k], sizeof c[k], "%s%s", canon, s), c[k])
    if (!openclip) {
        static const char *qkv[] = {"q", "k", "v", "out"};
        for (int j = 0; j < 4; j++) {
            char s[64];
            snprintf(s, sizeof s, "self_attn.%s_proj.weight", qkv[j]);
            add_plain(l, N(s), C(0, s), dw, dt, 2, w, w, 0, 0);
            snprintf(s, sizeof s, "self_attn.%s_proj.bias", qkv[j]);
            add_plain(l, N(s), C(0, s), D_BIAS, dt, 1, w, 0, 0, 0);
        }
        add_plain(l, N("layer_norm1.weight"), C(0, "layer_norm1.weight"), D_LN_W, dt, 1, w, 0, 0, 0);
        add_plain(l, N("layer_norm1.bias"), C(0, "layer_norm1.bias"), D_LN_B, dt, 1, w, 0, 0, 0);
        add_plain(l, N("mlp.fc1.weight"), C(0, "mlp.fc1.weight"), dw, dt, 2, mlp, w, 0, 0);
        add_plain(l, N("mlp.fc1.bias"), C(0, "mlp.fc1.bias"), D_BIAS, dt, 1, mlp, 0, 0, 0);
        add_plain(l, N("mlp.fc2.weight"), C(0, "mlp.fc2.weight"), dm, dt, 2, w, mlp, 0, 0);
        add_plain(l, N("mlp.fc2.bias"), C(0, "mlp.fc2.bias"), D_BIAS, dt, 1, w, 0, 0, 0);
        add_plain(l, N("layer_norm2.weight"), C(0, "layer_norm2.weight"), D_LN_W, dt, 1, w, 0, 0, 0);
        add_plain(l, N("layer_norm2.bias"), C(0, "layer_norm2.bias"), D_LN_B, dt, 1, w, 0, 0, 0);
    } else {
        struct tensor *t = tl_add(l, N("attn.in_proj_weight"), dt, 2, 3L * w, w, 0, 0);
        t->how = H_CONCAT3;
        snprintf(t->src[0], sizeof t->src[0], "%s", C(0, "self_attn.q_proj.weight"));
        snprintf(t->src[1], sizeof t->src[1], "%s", C(1, "self_attn.k_proj.weight"));
        snprintf(t->src[2], sizeof t->src[2], "%s", C(2, "self_attn.v_proj.weight"));
        t->dist[0] = t->dist[1] = t->dist[2] = dw;
        t = tl_add(l, N("attn.in_proj_bias"), dt, 1, 3L * w, 0, 0, 0);
        t->how = H_CONCAT3;
        snprintf(t->src[0], sizeof t->src[0], "%s", C(0, "self_attn.q_proj.bias"));
        snprintf(t->src[1], sizeof t->src[1], "%s", C(1, "self_attn.k_proj.bias"));
        snprintf(t->src[2], sizeof t->src[2], "%s", C(2, "self_attn.v_proj.bias"));
        t->dist[0] = t->dist[1] = t->dist[2] = D_BIAS;
        add_plain(l, N("attn.out_proj.weight"), C(0, "self_attn.out_proj.weight"), dw, dt, 2, w, w, 0, 0);
        add_plain(l, N("attn.out_proj.bias"), C(0, "self_attn.out_proj.bias"), D_BIAS, dt, 1, w, 0, 0, 0);
        add_plain(l, N("ln_1.weight"), C(0, "layer_norm1.weight"), D_LN_W, dt, 1, w, 0, 0, 0);
        add_plain(l, N("ln_1.bias"), C(0, "layer_norm1.bias"), D_LN_B, dt, 1, w, 0, 0, 0);
        add_plain(l, N("mlp.c_fc.weight"), C(0, "mlp.fc1.weight"), dw, dt, 2, mlp, w, 0, 0);
        add_plain(l, N("mlp.c_fc.bias"), C(0, "mlp.fc1.bias"), D_BIAS, dt, 1, mlp, 0, 0, 0);
        add_plain(l, N("mlp.c_proj.weight"), C(0, "mlp.fc2.weight"), dm, dt, 2, w, mlp, 0, 0);
        add_plain(l, N("mlp.c_proj.bias"), C(0, "mlp.fc2.bias"), D_BIAS, dt, 1, w, 0, 0, 0);
        add_plain(l, N("ln_2.weight"), C(0, "layer_norm2.weight"), D_LN_W, dt, 1, w, 0, 0, 0);
        add_plain(l, N("ln_2.bias"), C(0, "layer_norm2.bias"), D_LN_B, dt, 1, w, 0, 0, 0);
    }
#undef N
#undef C
}

/* Scales of the embeddings (standard deviations). */
#define STD_CLASS 0.5
#define STD_VPOS 0.1
#define STD_TOKEN 0.1
#define STD_TPOS 0.05
#define LOGIT_SCALE 4.605170185988091 /* ln 100 */

static void build_list(struct tlist *l, const struct cfg *c, int openclip, enum dtype dt)
{
    int np = (c->image_size / c->patch) * (c->image_size / c->patch) + 1;
    long vw = c->v_width, tw = c->t_width, p = c->patch;
    char name[96], canon[96];
    struct dist dpatch = d_linear(3 * c->patch * c->patch, 1.0);

    if (!openclip) {
        struct tensor *t;
        add_plain(l, "logit_scale", "", D_BIAS, dt, 0, 0, 0, 0, 0);
        t = &l->t[l->n - 1]; t->how = H_CONST; t->value = LOGIT_SCALE;
        /* vision */
        add_plain(l, "vision_model.embeddings.class_embedding", "vision_model.embeddings.class_embedding",
                  d_std(STD_CLASS), dt, 1, vw, 0, 0, 0);
        add_plain(l, "vision_model.embeddings.patch_embedding.weight",
                  "vision_model.embeddings.patch_embedding.weight", dpatch, dt, 4, vw, 3, p, p);
        add_plain(l, "vision_model.embeddings.position_embedding.weight",
                  "vision_model.embeddings.position_embedding.weight", d_std(STD_VPOS), dt, 2, np, vw, 0, 0);
        t = tl_add(l, "vision_model.embeddings.position_ids", DT_I64, 2, 1, np, 0, 0);
        t->how = H_POS_IDS;
        add_plain(l, "vision_model.pre_layrnorm.weight", "vision_model.pre_layrnorm.weight", D_LN_W, dt, 1, vw, 0, 0, 0);
        add_plain(l, "vision_model.pre_layrnorm.bias", "vision_model.pre_layrnorm.bias", D_LN_B, dt, 1, vw, 0, 0, 0);
        for (int i = 0; i < c->v_layers; i++) {
            hf_layer(canon, sizeof canon, "vision", i);
            add_block(l, 0, canon, canon, c->v_width, c->v_mlp, dt);
        }
        add_plain(l, "vision_model.post_layernorm.weight", "vision_model.post_layernorm.weight", D_LN_W, dt, 1, vw, 0, 0, 0);
        add_plain(l, "vision_model.post_layernorm.bias", "vision_model.post_layernorm.bias", D_LN_B, dt, 1, vw, 0, 0, 0);
        add_plain(l, "visual_projection.weight", "visual_projection.weight", d_linear(c->v_width, 1.0),
                  dt, 2, c->embed, vw, 0, 0);
        /* text */
        add_plain(l, "text_model.embeddings.token_embedding.weight", "text_model.embeddings.token_embedding.weight",
                  d_std(STD_TOKEN), dt, 2, c->vocab, tw, 0, 0);
        add_plain(l, "text_model.embeddings.position_embedding.weight",
                  "text_model.embeddings.position_embedding.weight", d_std(STD_TPOS), dt, 2, c->ctx, tw, 0, 0);
        t = tl_add(l, "text_model.embeddings.position_ids", DT_I64, 2, 1, c->ctx, 0, 0);
        t->how = H_POS_IDS;
        for (int i = 0; i < c->t_layers; i++) {
            hf_layer(canon, sizeof canon, "text", i);
            add_block(l, 0, canon, canon, c->t_width, c->t_mlp, dt);
        }
        add_plain(l, "text_model.final_layer_norm.weight", "text_model.final_layer_norm.weight", D_LN_W, dt, 1, tw, 0, 0, 0);
        add_plain(l, "text_model.final_layer_norm.bias", "text_model.final_layer_norm.bias", D_LN_B, dt, 1, tw, 0, 0, 0);
        add_plain(l, "text_projection.weight", "text_projection.weight", d_linear(c->t_width, 1.0),
                  dt, 2, c->embed, tw, 0, 0);
    } else {
        struct tensor *t;
        add_plain(l, "logit_scale", "", D_BIAS, dt, 0, 0, 0, 0, 0);
        t = &l->t[l->n - 1]; t->how = H_CONST; t->value = LOGIT_SCALE;
        add_plain(l, "visual.class_embedding", "vision_model.embeddings.class_embedding",
                  d_std(STD_CLASS), dt, 1, vw, 0, 0, 0);
        add_plain(l, "visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight", dpatch, dt, 4, vw, 3, p, p);
        add_plain(l, "visual.positional_embedding", "vision_model.embeddings.position_embedding.weight",
                  d_std(STD_VPOS), dt, 2, np, vw, 0, 0);
        add_plain(l, "visual.ln_pre.weight", "vision_model.pre_layrnorm.weight", D_LN_W, dt, 1, vw, 0, 0, 0);
        add_plain(l, "visual.ln_pre.bias", "vision_model.pre_layrnorm.bias", D_LN_B, dt, 1, vw, 0, 0, 0);
        for (int i = 0; i < c->v_layers; i++) {
            snprintf(name, sizeof name, "visual.transformer.resblocks.%d.", i);
            hf_layer(canon, sizeof canon, "vision", i);
            add_block(l, 1, name, canon, c->v_width, c->v_mlp, dt);
        }
        add_plain(l, "visual.ln_post.weight", "vision_model.post_layernorm.weight", D_LN_W, dt, 1, vw, 0, 0, 0);
        add_plain(l, "visual.ln_post.bias", "vision_model.post_layernorm.bias", D_LN_B, dt, 1, vw, 0, 0, 0);
        t = tl_add(l, "visual.proj", dt, 2, vw, c->embed, 0, 0);
        t->how = H_TRANSPOSE;
        snprintf(t->src[0], sizeof t->src[0], "visual_projection.weight");
        t->dist[0] = d_linear(c->v_width, 1.0);
        t->rows = c->embed; t->cols = vw;
        add_plain(l, "token_embedding.weight", "text_model.embeddings.token_embedding.weight",
                  d_std(STD_TOKEN), dt, 2, c->vocab, tw, 0, 0);
        add_plain(l, "positional_embedding", "text_model.embeddings.position_embedding.weight",
                  d_std(STD_TPOS), dt, 2, c->ctx, tw, 0, 0);
        for (int i = 0; i < c->t_layers; i++) {
            snprintf(name, sizeof name, "transformer.resblocks.%d.", i);
            hf_layer(canon, sizeof canon, "text", i);
            add_block(l, 1, name, canon, c->t_width, c->t_mlp, dt);
        }
        add_plain(l, "ln_final.weight", "text_model.final_layer_norm.weight", D_LN_W, dt, 1, tw, 0, 0, 0);
        add_plain(l, "ln_final.bias", "text_model.final_layer_norm.bias", D_LN_B, dt, 1, tw, 0, 0, 0);
        t = tl_add(l, "text_projection", dt, 2, tw, c->embed, 0, 0);
        t->how = H_TRANSPOSE;
        snprintf(t->src[0], sizeof t->src[0], "text_projection.weight");
        t->dist[0] = d_linear(c->t_width, 1.0);
        t->rows = c->embed; t->cols = tw;
    }
}

/* Order like the safetensors library: larger element size first, then name
 * (keeps every tensor aligned to its element size). */
static int t_cmp(const void *a, const void *b)
{
    const struct tensor *x = a, *y = b;
    if (DT_SIZE[x->dt] != DT_SIZE[y->dt]) return DT_SIZE[y->dt] - DT_SIZE[x->dt];
    return strcmp(x->name, y->name);
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                   */
/* ------------------------------------------------------------------------ */

struct out {
    FILE *f;
    struct sha256 sha;
    const char *path;
};

static void out_write(struct out *o, const void *p, size_t n)
{
    if (n && fwrite(p, 1, n, o->f) != n) die("cannot write '%s'", o->path);
    sha256_update(&o->sha, p, n);
}

/* Converts `n` floats to `dt` and writes them. */
static void write_floats(struct out *o, const float *v, size_t n, enum dtype dt)
{
    unsigned char buf[1 << 16];
    size_t es = (size_t)DT_SIZE[dt], per = sizeof buf / es;
    for (size_t i = 0; i < n; i += per) {
        size_t k = n - i < per ? n - i : per;
        if (dt == DT_F32) {
            memcpy(buf, v + i, 4 * k); /* little-endian hosts only, like the engine */
        } else {
            for (size_t j = 0; j < k; j++) {
                uint16_t h = dt == DT_F16 ? f32_to_f16(v[i + j]) : f32_to_bf16(v[i + j]);
                buf[2 * j] = (unsigned char)(h & 0xff);
                buf[2 * j + 1] = (unsigned char)(h >> 8);
            }
        }
        out_write(o, buf, k * es);
    }
}

static void write_tensor(struct out *o, const struct tensor *t, uint64_t seed, float *scratch)
{
    size_t n = t_numel(t);
    switch (t->how) {
    case H_PLAIN:
        gen_values(seed, t->src[0], t->dist[0], scratch, n);
        write_floats(o, scratch, n, t->dt);
        break;
    case H_CONCAT3:
        for (int k = 0; k < 3; k++) {
            gen_values(seed, t->src[k], t->dist[k], scratch, n / 3);
            write_floats(o, scratch, n / 3, t->dt);
        }
        break;
    case H_TRANSPOSE: {
        gen_values(seed, t->src[0], t->dist[0], scratch, n);
        float *tr = scratch + n;
        for (long r = 0; r < t->rows; r++)
            for (long c = 0; c < t->cols; c++) tr[c * t->rows + r] = scratch[r * t->cols + c];
        write_floats(o, tr, n, t->dt);
        break;
    }
    case H_POS_IDS:
        for (size_t i = 0; i < n; i++) {
            unsigned char b[8];
            uint64_t v = i;
            for (int k = 0; k < 8; k++) b[k] = (unsigned char)(v >> (8 * k));
            out_write(o, b, 8);
        }
        break;
    case H_CONST: {
        float v = (float)t->value;
        write_floats(o, &v, 1, t->dt);
        break;
    }
    }
}

static void write_safetensors(const char *path, struct tlist *l, uint64_t seed)
{
    qsort(l->t, l->n, sizeof *l->t, t_cmp);
    size_t off = 0, maxn = 1;
    for (size_t i = 0; i < l->n; i++) {
        struct tensor *t = &l->t[i];
        t->offset = off;
        t->nbytes = t_numel(t) * (size_t)DT_SIZE[t->dt];
        off += t->nbytes;
        if (t_numel(t) > maxn) maxn = t_numel(t);
    }
    /* header JSON */
    size_t cap = 256 + l->n * 320, len = 0;
    char *h = malloc(cap + 8);
    if (!h) die("%s", "out of memory");
    len += (size_t)snprintf(h + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (size_t i = 0; i < l->n; i++) {
        const struct tensor *t = &l->t[i];
        len += (size_t)snprintf(h + len, cap - len, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t->name,
                                DT_NAME[t->dt]);
        for (int d = 0; d < t->ndim; d++)
            len += (size_t)snprintf(h + len, cap - len, "%s%ld", d ? "," : "", t->shape[d]);
        len += (size_t)snprintf(h + len, cap - len, "],\"data_offsets\":[%zu,%zu]}", t->offset,
                                t->offset + t->nbytes);
    }
    len += (size_t)snprintf(h + len, cap - len, "}");
    if (len >= cap) die("%s", "header overflow");
    while ((8 + len) % 8) h[len++] = ' ';

    struct out o = {fopen(path, "wb"), {{0}, 0, {0}, 0}, path};
    if (!o.f) die("cannot create '%s'", path);
    setvbuf(o.f, NULL, _IOFBF, 1 << 20);
    sha256_init(&o.sha);
    unsigned char hl[8];
    for (int k = 0; k < 8; k++) hl[k] = (unsigned char)((uint64_t)len >> (8 * k));
    out_write(&o, hl, 8);
    out_write(&o, h, len);
    free(h);
    float *scratch = malloc(2 * maxn * sizeof *scratch);
    if (!scratch) die("%s", "out of memory");
    for (size_t i = 0; i < l->n; i++) write_tensor(&o, &l->t[i], seed, scratch);
    free(scratch);
    if (fclose(o.f) != 0) die("cannot write '%s'", path);
    char hex[65];
    sha256_hex(&o.sha, hex);
    printf("%s  %s\n", hex, path);
}

static FILE *open_text(const char *dir, const char *name, char *path, size_t n)
{
    snprintf(path, n, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) die("cannot create '%s'", path);
    return f;
}

static const char *TORCH_DT[] = {"float32", "float16", "bfloat16"};

static void write_hf_config(const char *dir, const struct cfg *c, enum dtype dt)
{
    char path[4096];
    FILE *f = open_text(dir, "config.json", path, sizeof path);
    const char *act = c->quick_gelu ? "quick_gelu" : "gelu";
    fprintf(f,
            "{\n"
            "  \"architectures\": [\n    \"CLIPModel\"\n  ],\n"
            "  \"initializer_factor\": 1.0,\n"
            "  \"logit_scale_init_value\": 2.6592,\n"
            "  \"model_type\": \"clip\",\n"
            "  \"projection_dim\": %d,\n"
            "  \"text_config\": {\n"
            "    \"attention_dropout\": 0.0,\n"
            "    \"bos_token_id\": 0,\n"
            "    \"dropout\": 0.0,\n"
            "    \"eos_token_id\": 2,\n"
            "    \"hidden_act\": \"%s\",\n"
            "    \"hidden_size\": %d,\n"
            "    \"initializer_factor\": 1.0,\n"
            "    \"initializer_range\": 0.02,\n"
            "    \"intermediate_size\": %d,\n"
            "    \"layer_norm_eps\": 1e-05,\n"
            "    \"max_position_embeddings\": %d,\n"
            "    \"model_type\": \"clip_text_model\",\n"
            "    \"num_attention_heads\": %d,\n"
            "    \"num_hidden_layers\": %d,\n"
            "    \"projection_dim\": %d,\n"
            "    \"torch_dtype\": \"%s\",\n"
            "    \"vocab_size\": %d\n"
            "  },\n"
            "  \"torch_dtype\": \"%s\",\n"
            "  \"transformers_version\": \"4.51.3\",\n"
            "  \"vision_config\": {\n"
            "    \"attention_dropout\": 0.0,\n"
            "    \"dropout\": 0.0,\n"
            "    \"hidden_act\": \"%s\",\n"
            "    \"hidden_size\": %d,\n"
            "    \"image_size\": %d,\n"
            "    \"initializer_factor\": 1.0,\n"
            "    \"initializer_range\": 0.02,\n"
            "    \"intermediate_size\": %d,\n"
            "    \"layer_norm_eps\": 1e-05,\n"
            "    \"model_type\": \"clip_vision_model\",\n"
            "    \"num_attention_heads\": %d,\n"
            "    \"num_channels\": 3,\n"
            "    \"num_hidden_layers\": %d,\n"
            "    \"patch_size\": %d,\n"
            "    \"projection_dim\": %d,\n"
            "    \"torch_dtype\": \"%s\"\n"
            "  }\n"
            "}\n",
            c->embed, act, c->t_width, c->t_mlp, c->ctx, c->t_heads, c->t_layers, c->embed,
            TORCH_DT[dt], c->vocab, TORCH_DT[dt], act, c->v_width, c->image_size, c->v_mlp,
            c->v_heads, c->v_layers, c->patch, c->embed, TORCH_DT[dt]);
    if (fclose(f) != 0) die("cannot write '%s'", path);

    f = open_text(dir, "preprocessor_config.json", path, sizeof path);
    fprintf(f,
            "{\n"
            "  \"crop_size\": {\n    \"height\": %d,\n    \"width\": %d\n  },\n"
            "  \"do_center_crop\": true,\n"
            "  \"do_convert_rgb\": true,\n"
            "  \"do_normalize\": true,\n"
            "  \"do_rescale\": true,\n"
            "  \"do_resize\": true,\n"
            "  \"image_mean\": [\n    0.48145466,\n    0.4578275,\n    0.40821073\n  ],\n"
            "  \"image_processor_type\": \"CLIPImageProcessor\",\n"
            "  \"image_std\": [\n    0.26862954,\n    0.26130258,\n    0.27577711\n  ],\n"
            "  \"resample\": 3,\n"
            "  \"rescale_factor\": 0.00392156862745098,\n"
            "  \"size\": {\n    \"shortest_edge\": %d\n  }\n"
            "}\n",
            c->image_size, c->image_size, c->image_size);
    if (fclose(f) != 0) die("cannot write '%s'", path);
}

static void write_openclip_config(const char *dir, const struct cfg *c)
{
    char path[4096];
    FILE *f = open_text(dir, "open_clip_config.json", path, sizeof path);
    fprintf(f,
            "{\n"
            "  \"model_cfg\": {\n"
            "    \"embed_dim\": %d,\n"
            "    \"quick_gelu\": %s,\n"
            "    \"vision_cfg\": {\n"
            "      \"image_size\": %d,\n"
            "      \"layers\": %d,\n"
            "      \"width\": %d,\n"
            "      \"patch_size\": %d,\n"
            "      \"head_width\": %d\n"
            "    },\n"
            "    \"text_cfg\": {\n"
            "      \"context_length\": %d,\n"
            "      \"vocab_size\": %d,\n"
            "      \"width\": %d,\n"
            "      \"heads\": %d,\n"
            "      \"layers\": %d\n"
            "    }\n"
            "  },\n"
            "  \"preprocess_cfg\": {\n"
            "    \"mean\": [0.48145466, 0.4578275, 0.40821073],\n"
            "    \"std\": [0.26862954, 0.26130258, 0.27577711]\n"
            "  }\n"
            "}\n",
            c->embed, c->quick_gelu ? "true" : "false", c->image_size, c->v_layers, c->v_width,
            c->patch, c->v_width / c->v_heads, c->ctx, c->vocab, c->t_width, c->t_heads, c->t_layers);
    if (fclose(f) != 0) die("cannot write '%s'", path);
}

/* Copies `dir/name` to `outdir/name` if it exists. */
static void copy_file(const char *dir, const char *name, const char *outdir)
{
    char src[4096], dst[4096];
    snprintf(src, sizeof src, "%s/%s", dir, name);
    snprintf(dst, sizeof dst, "%s/%s", outdir, name);
    FILE *in = fopen(src, "rb");
    if (!in) return;
    FILE *out = fopen(dst, "wb");
    if (!out) die("cannot create '%s'", dst);
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) die("cannot write '%s'", dst);
    if (ferror(in)) die("cannot read '%s'", src);
    fclose(in);
    if (fclose(out) != 0) die("cannot write '%s'", dst);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: genmodel --config tiny|small|b32|b16|l14 --layout hf|openclip|both\n"
            "                --dtype f32|f16|bf16 --seed N --out DIR [--vocab DIR]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *config = NULL, *layout = "hf", *dtype = "f32", *out = NULL, *vocab = NULL;
    uint64_t seed = 0;
    int have_seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) usage();
        const char *v = argv[++i];
        if (!strcmp(a, "--config")) config = v;
        else if (!strcmp(a, "--layout")) layout = v;
        else if (!strcmp(a, "--dtype")) dtype = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--vocab")) vocab = v;
        else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            seed = strtoull(v, &end, 10);
            if (errno || *end || !*v) die("bad seed '%s'", v);
            have_seed = 1;
        } else usage();
    }
    if (!config || !out || !have_seed) usage();
    const struct cfg *c = NULL;
    for (size_t i = 0; i < sizeof CONFIGS / sizeof CONFIGS[0]; i++)
        if (!strcmp(CONFIGS[i].name, config)) c = &CONFIGS[i];
    if (!c) die("unknown config '%s'", config);
    enum dtype dt;
    if (!strcmp(dtype, "f32")) dt = DT_F32;
    else if (!strcmp(dtype, "f16")) dt = DT_F16;
    else if (!strcmp(dtype, "bf16")) dt = DT_BF16;
    else die("unknown dtype '%s'", dtype);
    int hf = !strcmp(layout, "hf") || !strcmp(layout, "both");
    int oc = !strcmp(layout, "openclip") || !strcmp(layout, "both");
    if (!hf && !oc) die("unknown layout '%s'", layout);
    if (mkdir(out, 0777) != 0 && errno != EEXIST) die("cannot create directory '%s'", out);

    char path[4096];
    if (hf) {
        struct tlist l = {0};
        build_list(&l, c, 0, dt);
        write_hf_config(out, c, dt);
        snprintf(path, sizeof path, "%s/model.safetensors", out);
        write_safetensors(path, &l, seed);
        free(l.t);
    }
    if (oc) {
        struct tlist l = {0};
        build_list(&l, c, 1, dt);
        write_openclip_config(out, c);
        snprintf(path, sizeof path, "%s/open_clip_model.safetensors", out);
        write_safetensors(path, &l, seed);
        free(l.t);
    }
    if (vocab) {
        static const char *files[] = {"vocab.json", "merges.txt", "bpe_simple_vocab_16e6.txt.gz",
                                      "tokenizer_config.json", "special_tokens_map.json"};
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) copy_file(vocab, files[i], out);
    }
    return 0;
}
