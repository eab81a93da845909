/*
 * faiss_glue.h - the C face of the one C++ file of clipdex (faiss_glue.cpp):
 * a FAISS index made from a factory string with the inner-product metric,
 * trained, filled, written, read back (memory-mapped where FAISS can) and
 * searched. FAISS labels are the order in which rows were added (0, 1, ...);
 * what they stand for is the caller's business (app/ann/ann.c). Every
 * function returns 0, or -1 with the reason in err (errlen bytes); nothing
 * here prints (FAISS itself may warn on stderr about small training sets).
 */
#ifndef CLIPDEX_APP_FAISS_GLUE_H
#define CLIPDEX_APP_FAISS_GLUE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fg_index fg_index;

/* A new empty index of dimension dim from a FAISS factory string ("Flat",
 * "IVF1024,Flat", ...), inner-product metric. */
int fg_new(const char *factory, int dim, fg_index **out, char *err, size_t errlen);
/* Reads an index written by fg_write; mmap = 1 maps the inverted lists of
 * an IVF index from the file instead of reading them (FAISS's
 * IO_FLAG_MMAP; such an index cannot be added to). */
int fg_read(const char *path, int mmap, fg_index **out, char *err, size_t errlen);
void fg_free(fg_index *ix);

int fg_dim(const fg_index *ix);
int64_t fg_count(const fg_index *ix);   /* vectors added (ntotal) */
int fg_is_trained(const fg_index *ix);

/* Trains on n rows x [n, dim] (a no-op for an index that needs none). */
int fg_train(fg_index *ix, size_t n, const float *x, char *err, size_t errlen);
/* Adds n rows; their labels are fg_count() before the call, +1 each. */
int fg_add(fg_index *ix, size_t n, const float *x, char *err, size_t errlen);
int fg_write(const fg_index *ix, const char *path, char *err, size_t errlen);

/* Sets a search parameter of FAISS's ParameterSpace ("nprobe",
 * "efSearch", "quantizer_efSearch"); 1 if the index has it, 0 if not,
 * -1 on another error. */
int fg_set_param(fg_index *ix, const char *name, double value, char *err, size_t errlen);
/* The k best labels of one query q [dim] by inner product, best first,
 * into labels [k] (-1 where fewer exist) and scores [k]. threads > 0 sets
 * OpenMP's thread count first. */
int fg_search(const fg_index *ix, const float *q, size_t k, int threads, int64_t *labels, float *scores,
              char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
