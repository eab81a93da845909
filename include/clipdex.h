/*
 * clipdex.h - the whole public API of libclipdex, a CLIP engine in C.
 *
 * CLIP maps images and texts into one vector space. libclipdex loads a real
 * CLIP checkpoint (Hugging Face `config.json` + `model.safetensors`, or the
 * OpenAI/OpenCLIP layout `open_clip_config.json` + `open_clip_model.safetensors`),
 * tokenizes text exactly like OpenAI's BPE tokenizer, decodes and preprocesses
 * images exactly like OpenAI's reference pipeline, and runs both towers in
 * float32 to produce L2-normalized embeddings.
 *
 * Objects
 *   clipdex_ctx        mutable: thread pool, scratch memory and the last error.
 *                      Use one context from one thread at a time.
 *   clipdex_model      immutable once loaded (weights are mmapped read-only);
 *                      one model may be shared by any number of contexts and
 *                      threads.
 *   clipdex_tokenizer  immutable; shareable across threads.
 *   clipdex_image      a decoded image in its original mode; immutable.
 *
 * Errors
 *   Every fallible function returns an `int` status: CLIPDEX_OK (0) or a
 *   negative `enum clipdex_status`. A message naming the file, tensor or input
 *   that failed is kept on the context passed in (`clipdex_ctx_errmsg`). A NULL
 *   context is allowed everywhere; the message is then lost. The library never
 *   prints and never exits.
 *
 * Lifecycle
 *   `*_new`/`*_load`/`*_decode` create, `*_free` destroys; `*_free(NULL)` is a
 *   no-op. Parameter structs have a `*_default()` constructor and a zero field
 *   means "the default".
 */
#ifndef CLIPDEX_H
#define CLIPDEX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define CLIPDEX_API __attribute__((visibility("default")))
#else
#define CLIPDEX_API
#endif

#define CLIPDEX_VERSION "0.1.0"

/* ------------------------------------------------------------------------ */
/* Status codes                                                              */
/* ------------------------------------------------------------------------ */

enum clipdex_status {
    CLIPDEX_OK = 0,
    CLIPDEX_E_ARG = -1,         /* invalid argument: NULL, zero size, buffer too small */
    CLIPDEX_E_NOMEM = -2,       /* out of memory */
    CLIPDEX_E_IO = -3,          /* a file cannot be opened, read or mapped */
    CLIPDEX_E_FORMAT = -4,      /* malformed file: safetensors, JSON, vocabulary */
    CLIPDEX_E_MODEL = -5,       /* inconsistent model: missing tensor, wrong shape or dtype, bad config */
    CLIPDEX_E_IMAGE = -6,       /* corrupt, truncated or undecodable image */
    CLIPDEX_E_LIMIT = -7,       /* input exceeds a limit (image dimensions, sizes) */
    CLIPDEX_E_UNSUPPORTED = -8, /* valid input that clipdex does not handle */
    CLIPDEX_E_INTERNAL = -9     /* broken internal invariant (a bug) */
};

/* A short static description of a status ("invalid argument", ...). */
CLIPDEX_API const char *clipdex_status_str(int status);

/* The library version string, CLIPDEX_VERSION at build time. */
CLIPDEX_API const char *clipdex_version(void);

/* ------------------------------------------------------------------------ */
/* Context                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct clipdex_ctx clipdex_ctx;

typedef struct clipdex_ctx_params {
    int n_threads; /* worker threads for the forward pass; 0: number of online CPUs */
} clipdex_ctx_params;

CLIPDEX_API clipdex_ctx_params clipdex_ctx_params_default(void);

/* Creates a context. `params` may be NULL for the defaults. The kernels are
 * chosen once from the CPU's features (the best of scalar, avx2, avx-vnni,
 * avx512). The environment variable CLIPDEX_ISA=scalar|avx2|avx-vnni|avx512 asks for a lower
 * path (for tests and comparisons; a path the CPU lacks gives the best one it
 * has), and CLIPDEX_FORCE_SCALAR=1 is CLIPDEX_ISA=scalar. Returns
 * CLIPDEX_E_ARG if CLIPDEX_ISA names no path. */
CLIPDEX_API int clipdex_ctx_new(clipdex_ctx **out, const clipdex_ctx_params *params);
CLIPDEX_API void clipdex_ctx_free(clipdex_ctx *ctx);

/* The message of the last error on this context ("" if none). Valid until the
 * next call that uses the context. */
CLIPDEX_API const char *clipdex_ctx_errmsg(const clipdex_ctx *ctx);
/* The status of the last error on this context (CLIPDEX_OK if none). */
CLIPDEX_API int clipdex_ctx_errcode(const clipdex_ctx *ctx);
CLIPDEX_API int clipdex_ctx_n_threads(const clipdex_ctx *ctx);
/* The kernel path the context runs: "scalar", "avx2", "avx-vnni" or "avx512". */
CLIPDEX_API const char *clipdex_ctx_isa(const clipdex_ctx *ctx);
/* What each kernel family of that path uses, one line:
 * "fp32 avx512, int8 avx512-vnni, bf16 avx512-bf16". */
CLIPDEX_API const char *clipdex_ctx_kernels(const clipdex_ctx *ctx);
/* The CPU features clipdex detected and may use, space-separated
 * ("avx2 avx512 avx512_vnni avx_vnni avx512_bf16"; "" if none). */
CLIPDEX_API const char *clipdex_cpu_features(void);

/* ------------------------------------------------------------------------ */
/* Tokenizer                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct clipdex_tokenizer clipdex_tokenizer;

/* Loads OpenAI's byte-level BPE vocabulary. `path` is one of
 *   - `bpe_simple_vocab_16e6.txt.gz` (or the uncompressed .txt),
 *   - a `vocab.json` (its `merges.txt` must sit beside it), or `merges.txt`
 *     (its `vocab.json` beside it),
 *   - a directory holding either of the above.
 * The vocabulary must define `<|startoftext|>` and `<|endoftext|>`. */
CLIPDEX_API int clipdex_tokenizer_load(clipdex_ctx *ctx, const char *path, clipdex_tokenizer **out);
CLIPDEX_API void clipdex_tokenizer_free(clipdex_tokenizer *tok);

/* Tokenizes `text` (`len` bytes of UTF-8; invalid sequences are replaced by
 * U+FFFD) exactly like OpenAI's `clip.tokenize`: ftfy-style cleaning (NFC,
 * straight quotes, ligatures split, full-width forms narrowed, control
 * characters and terminal escapes removed; mojibake repair is not done),
 * HTML-unescape twice, whitespace folding, lower-casing, OpenAI's
 * pre-tokenizer pattern and byte-level BPE.
 *
 * Writes exactly `context_length` ids into `ids`: start token, BPE tokens,
 * end token, then zeros. A text too long keeps the start token and the first
 * `context_length - 2` tokens and puts the end token last.
 * `*n_tokens` (may be NULL) receives the count of ids through the end token;
 * `*truncated` (may be NULL) receives 1 if the text was cut. */
CLIPDEX_API int clipdex_text_tokenize(clipdex_ctx *ctx, const clipdex_tokenizer *tok,
                                      const char *text, size_t len, int32_t *ids,
                                      size_t context_length, size_t *n_tokens, int *truncated);

/* The ids of `<|startoftext|>` and `<|endoftext|>` and the vocabulary size. */
CLIPDEX_API int32_t clipdex_tokenizer_sot(const clipdex_tokenizer *tok);
CLIPDEX_API int32_t clipdex_tokenizer_eot(const clipdex_tokenizer *tok);
CLIPDEX_API size_t clipdex_tokenizer_vocab_size(const clipdex_tokenizer *tok);

/* ------------------------------------------------------------------------ */
/* Images                                                                    */
/* ------------------------------------------------------------------------ */

/* Default limits against decompression bombs; override at build time with
 * -DCLIPDEX_MAX_IMAGE_SIDE=... or per call with clipdex_image_params. */
#ifndef CLIPDEX_MAX_IMAGE_SIDE
#define CLIPDEX_MAX_IMAGE_SIDE 32768u
#endif
#ifndef CLIPDEX_MAX_IMAGE_PIXELS
#define CLIPDEX_MAX_IMAGE_PIXELS 178956970ull /* Pillow's error threshold (2 x 89478485) */
#endif

typedef struct clipdex_image clipdex_image;

/* The pixel mode an image was decoded in; it decides how it is resized
 * (the reference pipeline resizes in the image's own mode). */
enum clipdex_image_mode {
    CLIPDEX_MODE_1 = 1, /* 1-bit; resized with nearest-neighbour */
    CLIPDEX_MODE_L,     /* 8-bit grayscale */
    CLIPDEX_MODE_LA,    /* grayscale + alpha (resized premultiplied) */
    CLIPDEX_MODE_P,     /* palette; resized with nearest-neighbour */
    CLIPDEX_MODE_RGB,
    CLIPDEX_MODE_RGBA   /* resized premultiplied by alpha */
};

typedef struct clipdex_image_params {
    uint32_t max_width;  /* 0: CLIPDEX_MAX_IMAGE_SIDE */
    uint32_t max_height; /* 0: CLIPDEX_MAX_IMAGE_SIDE */
    uint64_t max_pixels; /* 0: CLIPDEX_MAX_IMAGE_PIXELS */
    int ignore_exif_orientation; /* 0: apply the EXIF orientation tag (default);
                                    1: ignore it, as OpenAI's reference does */
    uint32_t jpeg_scale_target;  /* 0: exact decode (default; matches the reference
                                    bit for bit). N > 0: a JPEG whose shorter side is
                                    at least 2N may be decoded with libjpeg-turbo's
                                    DCT-domain scaling (scale_num/8, the largest
                                    reduction that keeps the shorter side >= N), then
                                    preprocessed as usual. Faster on large photos, but
                                    the pixels (and embeddings) differ slightly from
                                    the reference; docs/accuracy.md has the figures.
                                    Other formats always decode exactly. */
} clipdex_image_params;

CLIPDEX_API clipdex_image_params clipdex_image_params_default(void);

/* Decodes JPEG, PNG, WebP, GIF (first frame), BMP, TIFF or PNM from memory
 * (the format is sniffed from the bytes). `params` may be NULL. */
CLIPDEX_API int clipdex_image_decode(clipdex_ctx *ctx, const void *data, size_t len,
                                     const clipdex_image_params *params, clipdex_image **out);
/* Reads and decodes a file. */
CLIPDEX_API int clipdex_image_load(clipdex_ctx *ctx, const char *path,
                                   const clipdex_image_params *params, clipdex_image **out);
CLIPDEX_API void clipdex_image_free(clipdex_image *img);
/* Wraps raw 8-bit pixels (a decoded video frame, a camera buffer) as an image:
 * `height` rows of `width` pixels, `stride` bytes apart (>= width*channels),
 * copied. `mode` is CLIPDEX_MODE_L, CLIPDEX_MODE_RGB or CLIPDEX_MODE_RGBA;
 * the format string of the result is "raw". Same size limits as a decode
 * (`params` may be NULL; only the limits are read). */
CLIPDEX_API int clipdex_image_from_pixels(clipdex_ctx *ctx, const uint8_t *pixels, uint32_t width,
                                          uint32_t height, size_t stride, int mode,
                                          const clipdex_image_params *params,
                                          clipdex_image **out);

CLIPDEX_API uint32_t clipdex_image_width(const clipdex_image *img);
CLIPDEX_API uint32_t clipdex_image_height(const clipdex_image *img);
CLIPDEX_API int clipdex_image_mode(const clipdex_image *img); /* enum clipdex_image_mode */
CLIPDEX_API const char *clipdex_image_format(const clipdex_image *img); /* "jpeg", "png", ... */

/* The whole image as RGB8 (HWC, width*height*3 bytes into out): gray
 * replicated, palette expanded, alpha dropped, as Pillow's convert("RGB"). */
CLIPDEX_API int clipdex_image_rgb(clipdex_ctx *ctx, const clipdex_image *img, uint8_t *out, size_t out_len);
/* A new RGB image of the pixels under a box (x0, y0, x1, y1 in pixels,
 * e.g. a clipdex_detection; rounded outward, clipped to the image). With
 * `square` the crop is centred on a black square of its longer side (what
 * a CLIP tower should see of a tall person). */
CLIPDEX_API int clipdex_image_crop_box(clipdex_ctx *ctx, const clipdex_image *img, float x0, float y0, float x1,
                                       float y1, int square, clipdex_image **out);

/* The reference preprocessing up to the 8-bit crop: resize the shorter side
 * to `size` with Pillow's bicubic filter in the image's own mode, center crop
 * to size x size, convert to RGB. Writes size*size*3 bytes, HWC, RGB. */
CLIPDEX_API int clipdex_image_crop_rgb(clipdex_ctx *ctx, const clipdex_image *img, int size,
                                       uint8_t *out, size_t out_len);

/* The whole reference preprocessing: clipdex_image_crop_rgb, then x/255,
 * then (x - mean[c]) / std[c]. Writes 3*size*size floats, CHW (planar RGB). */
CLIPDEX_API int clipdex_image_preprocess(clipdex_ctx *ctx, const clipdex_image *img, int size,
                                         const float mean[3], const float std[3],
                                         float *out, size_t out_len);

/* ------------------------------------------------------------------------ */
/* Models                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct clipdex_model clipdex_model;

typedef struct clipdex_model_params {
    const char *vocab_path; /* tokenizer file or directory; NULL: look in the model
                               directory, then the CLIPDEX_VOCAB environment variable */
} clipdex_model_params;

CLIPDEX_API clipdex_model_params clipdex_model_params_default(void);

/* Loads a model. `path` is a directory holding `config.json` +
 * `model.safetensors` (Hugging Face CLIPModel naming) or
 * `open_clip_config.json` + `open_clip_model.safetensors` (OpenAI/OpenCLIP
 * naming), or the path of one of those .safetensors files (its config must
 * sit beside it); or a GGUF file (clip.cpp's naming, as written by
 * clipdex_model_quantize; recognised by its magic bytes), or a directory
 * without the safetensors pairs above that holds exactly one `*.gguf` file.
 * Safetensors tensors may be F32, F16 or BF16; GGUF tensors F32, F16, Q8_0,
 * Q5_0, Q5_1, Q4_0 or Q4_1. The weight matrices are used in place from the
 * read-only mapping (F32, F16 and the Q types: the kernels dequantize them
 * on the fly); only BF16 tensors, the transposed OpenCLIP projections and
 * non-F32 small tensors (LayerNorms, biases, embeddings) are converted once
 * here. Every tensor the engine needs is checked for presence, dtype and
 * shape; tensors it does not need are ignored. A model whose directory has no
 * tokenizer files loads, but text functions then fail with CLIPDEX_E_MODEL. */
CLIPDEX_API int clipdex_model_load(clipdex_ctx *ctx, const char *path,
                                   const clipdex_model_params *params, clipdex_model **out);
CLIPDEX_API void clipdex_model_free(clipdex_model *model);

enum clipdex_activation { CLIPDEX_ACT_QUICK_GELU = 1, CLIPDEX_ACT_GELU = 2 };

typedef struct clipdex_model_info {
    const char *layout;      /* "hf", "openclip" or "gguf" */
    const char *dtype;       /* dtype of the weight matrices (linear layers, projections,
                                token embedding): "F32", "F16", "BF16", "Q8_0", "Q5_0",
                                "Q5_1", "Q4_0" or "Q4_1" (when several types are mixed,
                                the quantized type holding the most parameters), or
                                "mixed" (float types only) */
    const char *weights_path;
    uint64_t file_size;      /* bytes of the weight file */
    uint64_t n_params;       /* parameters the engine uses */
    uint64_t n_params_vision;
    uint64_t n_params_text;  /* includes logit_scale */
    int embed_dim;
    int image_size, patch_size, vision_width, vision_layers, vision_heads, vision_mlp;
    int vision_activation;   /* enum clipdex_activation */
    int context_length, vocab_size, text_width, text_layers, text_heads, text_mlp;
    int text_activation;
    float layer_norm_eps;
    float logit_scale;       /* exp(logit_scale tensor) */
    float mean[3], std[3];   /* preprocessing normalization */
    int has_tokenizer;
} clipdex_model_info;

CLIPDEX_API int clipdex_model_get_info(const clipdex_model *model, clipdex_model_info *out);
/* The tokenizer the model loaded (NULL if its directory had none). */
CLIPDEX_API const clipdex_tokenizer *clipdex_model_tokenizer(const clipdex_model *model);
CLIPDEX_API int clipdex_model_embed_dim(const clipdex_model *model);

/* ------------------------------------------------------------------------ */
/* Reduced-precision weights (GGUF)                                          */
/* ------------------------------------------------------------------------ */

/* Weight types, numbered like ggml's tensor types. Q types store blocks of 32
 * values along a weight row: Q8_0 an f16 scale + 32 int8 (8.5 bits/weight),
 * Q5_0 / Q5_1 5-bit (5.5 / 6), Q4_0 / Q4_1 4-bit (4.5 / 5); _1 types add a
 * per-block minimum. BF16 is bfloat16 (16 bits: float32's exponent, 8 bits
 * of mantissa); on CPUs with AVX512_BF16 its products use vdpbf16ps with
 * bfloat16 activations, elsewhere the weights are widened to floats. */
enum clipdex_wtype {
    CLIPDEX_TYPE_F32 = 0,
    CLIPDEX_TYPE_F16 = 1,
    CLIPDEX_TYPE_Q4_0 = 2,
    CLIPDEX_TYPE_Q4_1 = 3,
    CLIPDEX_TYPE_Q5_0 = 6,
    CLIPDEX_TYPE_Q5_1 = 7,
    CLIPDEX_TYPE_Q8_0 = 8,
    /* int8 with one float scale per output row (8 bits/weight), the format
     * of ONNX Runtime's dynamic quantization: the int8 kernels sum a whole
     * row in integers (with per-row int8 activations), 1.6-2x the Q8_0
     * kernels' speed with VNNI. clipdex's own: packed layout only. */
    CLIPDEX_TYPE_I8 = 15,
    CLIPDEX_TYPE_BF16 = 30
};

/* Writes `model` (loaded from any file, of any dtype) as one GGUF file at
 * `out_path` (written to out_path + ".tmp", then renamed), the format of
 * docs/quantized.md: tensor names and keys as clip.cpp's converter writes
 * them, plus a `logit_scale` tensor. The linear-layer weights, the two
 * projections and the token embedding become `type`; a Q type needs rows of
 * a multiple of 32 values, other rows stay F16. With Q4_0 / Q4_1 the most
 * sensitive matrices stay Q8_0 (attention value and output projections, the
 * first block of each tower, the token embedding, the projections) to keep
 * cosine >= 0.99 to the F32 model. The patch convolution is F16
 * (F32 when type is F32); LayerNorms, biases, class and position embeddings
 * stay F32. clipdex_model_load reads the file back (a .gguf path, or a
 * directory holding one .gguf file) and computes with the weights in place:
 * nothing is converted at start-up. The tokenizer is not stored: keep
 * vocab.json + merges.txt (or bpe_simple_vocab_16e6.txt.gz) beside the file,
 * or give one with clipdex_model_params.vocab_path / CLIPDEX_VOCAB.
 * The matrices are written in the CLIPDEX_LAYOUT_PACKED layout (the fast
 * one; see clipdex_model_quantize_layout). */
CLIPDEX_API int clipdex_model_quantize(clipdex_ctx *ctx, const clipdex_model *model, int type,
                                       const char *out_path);

/* How clipdex_model_quantize_layout stores weight matrices. */
enum clipdex_layout {
    /* F32, F16, Q8_0 and Q4_0 matrices (not the token embedding) in clipdex's
     * panel-packed tensor types (docs/quantized.md): the kernels read them
     * from the mapping without transposing anything per call, and Q8_0 / Q4_0
     * run on int8 kernels. Other programs (clip.cpp, ggml) cannot read them. */
    CLIPDEX_LAYOUT_PACKED = 0,
    /* ggml's plain row layout, as clip.cpp's converter writes it. */
    CLIPDEX_LAYOUT_ROWS = 1
};

/* clipdex_model_quantize with an explicit matrix layout. */
CLIPDEX_API int clipdex_model_quantize_layout(clipdex_ctx *ctx, const clipdex_model *model, int type,
                                              int layout, const char *out_path);

/* ------------------------------------------------------------------------ */
/* Embeddings                                                                */
/* ------------------------------------------------------------------------ */

/* Flag: return the projected embedding without L2 normalization. */
#define CLIPDEX_EMBED_RAW 1u

/* Image tower on preprocessed pixels `[n, 3, S, S]` (S = image_size).
 * Writes `[n, embed_dim]` into `out` (out_len counts floats). Results do not
 * depend on the batch size or the number of threads. */
CLIPDEX_API int clipdex_pixels_embed(clipdex_ctx *ctx, const clipdex_model *model,
                                     const float *pixels, size_t n, float *out, size_t out_len,
                                     unsigned flags);
/* Preprocesses decoded images with the model's size/mean/std and embeds them. */
CLIPDEX_API int clipdex_image_embed(clipdex_ctx *ctx, const clipdex_model *model,
                                    const clipdex_image *const *images, size_t n, float *out,
                                    size_t out_len, unsigned flags);
/* Text tower on token ids `[n, context_length]` as written by
 * clipdex_text_tokenize. Pools at the end token (the argmax id). */
CLIPDEX_API int clipdex_tokens_embed(clipdex_ctx *ctx, const clipdex_model *model,
                                     const int32_t *ids, size_t n, float *out, size_t out_len,
                                     unsigned flags);
/* Tokenizes NUL-terminated UTF-8 texts with the model's tokenizer and embeds them. */
CLIPDEX_API int clipdex_text_embed(clipdex_ctx *ctx, const clipdex_model *model,
                                   const char *const *texts, size_t n, float *out, size_t out_len,
                                   unsigned flags);

/* Cosine similarity of two vectors (0 if either is zero). */
CLIPDEX_API float clipdex_cosine(const float *a, const float *b, size_t n);

/* ------------------------------------------------------------------------ */
/* Vector search                                                             */
/*
 * Exact top-k search of a query among n stored embeddings (a row-major
 * float32 matrix, n x dim), by dot product (cosine for unit vectors). The
 * caller owns the memory (it may be memory-mapped from a file); a
 * clipdex_vecs handle only describes it and must not outlive it.
 *
 * Two compact copies make large searches cheaper without changing a single
 * result: an int8 copy (a quarter of the bytes; clipdex_vec_q8_row per row)
 * and a 4-bit copy (an eighth; clipdex_vec_q4_row). A staged search scans
 * the 4-bit codes for candidates, re-scores them exactly in float32, and
 * returns only what an error bound proves equal to the float32 scan; where
 * the bound cannot prove it, it falls back to the int8 stage and then to the
 * full scan. The hits are therefore always those of the float32 scan: the
 * same rows, the same float scores, the same order (ties: lower row first).
 * Scores are computed by the context's kernel path (clipdex_ctx_isa) on its
 * threads; results do not depend on the thread count.
 */

typedef struct clipdex_hit {
    float score;  /* dot product of the row with the query */
    uint32_t row; /* row of the matrix */
} clipdex_hit;

/* Quantizes one row to int8: x[i] ~= *scale * codes[i], |codes[i]| <= 127,
 * *scale = max|x| / 127 (0 for a zero row). */
CLIPDEX_API void clipdex_vec_q8_row(const float *x, size_t dim, int8_t *codes, float *scale);

/* Bytes of one row's 4-bit codes: dim rounded up to a multiple of 64, two
 * codes a byte (the layout is internal; store the bytes as they are). */
CLIPDEX_API size_t clipdex_vec_q4_row_bytes(size_t dim);

/* What bounds one row's 4-bit error (12 bytes, no padding; store it as is). */
typedef struct clipdex_vec_q4_info {
    float scale; /* x[i] ~= scale * code[i], code in [-8, 7] */
    float norm;  /* ||scale * code||_2, rounded up */
    float resid; /* ||x - scale * code||_2, rounded up */
} clipdex_vec_q4_info;

/* Quantizes one row to clipdex_vec_q4_row_bytes(dim) bytes at codes. */
CLIPDEX_API void clipdex_vec_q4_row(const float *x, size_t dim, uint8_t *codes, clipdex_vec_q4_info *info);

/* The matrix and its optional compact copies, all borrowed. */
typedef struct clipdex_vecs_data {
    const float *rows; /* [n, dim] float32, required (n may be 0) */
    size_t n, dim;     /* n < 2^32, 0 < dim < 2^17 */
    /* optional int8 copy: codes [n, dim] and scales [n] from
     * clipdex_vec_q8_row, with the largest scale and the largest L1 norm of
     * a float32 row (rounded up) */
    const int8_t *q8;
    const float *q8_scale;
    float q8_max_scale, q8_max_l1;
    /* optional 4-bit copy: codes [n, clipdex_vec_q4_row_bytes(dim)] and
     * infos [n] from clipdex_vec_q4_row */
    const uint8_t *q4;
    const clipdex_vec_q4_info *q4_info;
} clipdex_vecs_data;

typedef struct clipdex_vecs clipdex_vecs;

/* Describes `data` for searching (the arrays are not copied). With
 * `build_compact` = 1, copies that data lacks are made now and owned by the
 * handle (n x dim x 1.6 bytes). CLIPDEX_E_ARG for a NULL matrix, a zero or
 * too large dim or n, or an int8 or 4-bit copy given in part. */
CLIPDEX_API int clipdex_vecs_new(clipdex_ctx *ctx, const clipdex_vecs_data *data, int build_compact,
                                 clipdex_vecs **out);
CLIPDEX_API void clipdex_vecs_free(clipdex_vecs *vecs);
CLIPDEX_API size_t clipdex_vecs_count(const clipdex_vecs *vecs);

enum clipdex_search_stage {
    CLIPDEX_SEARCH_AUTO = 0,  /* staged when the copies exist and n is large (>= 8 x the int8
                                 candidates), else the float32 scan */
    CLIPDEX_SEARCH_EXACT = 1, /* the float32 scan only */
    CLIPDEX_SEARCH_STAGED = 2 /* staged whenever the copies exist (for tests) */
};

typedef struct clipdex_search_params {
    size_t k;             /* hits wanted (out holds k); default 10 */
    float threshold;      /* only scores >= threshold; default -INFINITY */
    int stage;            /* enum clipdex_search_stage; default AUTO */
    size_t q8_candidates; /* rows the int8 stage re-ranks; 0: max(4k, 4096) */
    size_t q4_candidates; /* rows each thread keeps in the 4-bit stage; 0: max(4k, 16384) */
} clipdex_search_params;

CLIPDEX_API clipdex_search_params clipdex_search_params_default(void);

/* What answered a search. */
typedef struct clipdex_search_stats {
    int stage;         /* 4: the 4-bit stage, 8: the int8 stage, 32: the float32 scan */
    size_t candidates; /* rows the answering compact stage kept */
    size_t reranked;   /* of those, rows re-scored in float32 (4-bit stage) */
} clipdex_search_stats;

/* The best min(k, n) rows with score >= threshold, best first, into out
 * (k entries); *n_out says how many. `params` may be NULL (the defaults),
 * `stats` too. The query has dim floats. */
CLIPDEX_API int clipdex_vecs_search(clipdex_ctx *ctx, const clipdex_vecs *vecs, const float *query,
                                    const clipdex_search_params *params, clipdex_hit *out, size_t *n_out,
                                    clipdex_search_stats *stats);

/* ------------------------------------------------------------------------ */
/* Object detection                                                          */
/*
 * A detector is a TensorFlow.js graph model (model.json + its .bin weights)
 * run by the engine's graph executor; the post-processing is NanoDet's (a
 * GFL head per stride 8/16/32: sigmoid class scores and a distance
 * distribution per box side). The image is letterboxed into the model's
 * square input (scale r = min(S/w, S/h), bilinear with half-pixel centres,
 * centred on black), normalized with NanoDet's BGR mean and std; boxes come
 * back in the original image's pixels. Candidates above 0.05 go through NMS
 * per class (IoU > iou suppressed), the best max_detections are kept, then
 * those under min_score are dropped. The class names are COCO's 80.
 */

typedef struct clipdex_detector clipdex_detector;

typedef struct clipdex_detection {
    float x0, y0, x1, y1; /* box in image pixels: left, top, right, bottom */
    float score;          /* the class score (0..1) */
    int class_id;         /* 0-based (COCO: 0 = person) */
} clipdex_detection;

typedef struct clipdex_detect_params {
    float min_score;      /* drop detections scoring below this (default 0.35) */
    float iou;            /* NMS IoU threshold (default 0.6, NanoDet's) */
    int max_detections;   /* at most this many, best first (default 100) */
    const uint8_t *classes; /* NULL: every class; else classes[id] != 0 keeps id
                               (an array of clipdex_detector_n_classes bytes) */
} clipdex_detect_params;

CLIPDEX_API clipdex_detect_params clipdex_detect_params_default(void);
/* Loads a detector: a model.json path, or a folder holding exactly one
 * *.json graph model (nanodet.json). CLIPDEX_E_UNSUPPORTED names an op the
 * executor lacks, or a head that is not NanoDet's. */
CLIPDEX_API int clipdex_detector_load(clipdex_ctx *ctx, const char *path, clipdex_detector **out);
CLIPDEX_API void clipdex_detector_free(clipdex_detector *det);
CLIPDEX_API int clipdex_detector_input_size(const clipdex_detector *det); /* 416 for NanoDet */
CLIPDEX_API int clipdex_detector_n_classes(const clipdex_detector *det);
/* "person", ...; NULL outside 0..n_classes-1. */
CLIPDEX_API const char *clipdex_detector_class_name(const clipdex_detector *det, int class_id);
/* The id of a class name (exact, e.g. "person", "traffic light"), or -1. */
CLIPDEX_API int clipdex_detector_class_id(const clipdex_detector *det, const char *name);
/* Detects objects in `img`: up to `cap` detections, best first, into out;
 * *n_out says how many. `params` may be NULL (the defaults). The detector
 * keeps per-run buffers: use one detector per thread. */
CLIPDEX_API int clipdex_detect(clipdex_ctx *ctx, clipdex_detector *det, const clipdex_image *img,
                               const clipdex_detect_params *params, clipdex_detection *out, size_t cap,
                               size_t *n_out);

#ifdef __cplusplus
}
#endif
#endif /* CLIPDEX_H */
