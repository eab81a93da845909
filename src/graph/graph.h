/*
 * graph.h - a small dataflow-graph executor for detector models: tensors,
 * nodes, the TensorFlow.js graph-model reader (tfjs.c) and the ops
 * (graph_ops.c). It runs what the graph says, node by node in topological
 * order, so a model is added by implementing its missing ops, never by
 * writing its forward pass by hand.
 *
 * Invariants: every tensor's element count equals the product of its dims
 * (overflow-checked when it is made); a node's inputs are values produced
 * earlier in `order`; constant values (weights, and every node whose inputs
 * are all constant, folded at load) are never freed by a run; any other value
 * is freed right after its last consumer ran, unless it is a graph output.
 */
#ifndef CDX_GRAPH_H
#define CDX_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "tensor/ops.h"

#define CDX_G_MAXDIM 6
#define CDX_G_MAXIN 8   /* inputs per node */
#define CDX_G_MAXOUT 8  /* outputs per node */
/* elements of one tensor (64 MiB of float32): 12x the largest tensor the
 * NanoDet person detector allocates at 416 px (1,411,200 elements); a bigger
 * shape in a model is an error, not minutes of work (fuzz_tfjs found a Pad
 * of 917248 images taking 32 s) */
#define CDX_G_MAX_ELEMS ((size_t)1 << 24)

enum cdx_gdtype { CDX_G_F32 = 1, CDX_G_I32 = 2 };

struct cdx_gtensor {
    int dtype;                /* enum cdx_gdtype; 0 while the value is not computed */
    int rank;
    int64_t dim[CDX_G_MAXDIM];
    size_t n;                 /* elements */
    void *data;               /* float or int32_t, n elements */
    int owned;                /* data is malloc'd by the graph */
};

enum cdx_gop {
    CDX_OP_CONST = 1, CDX_OP_PLACEHOLDER, CDX_OP_IDENTITY, CDX_OP_ADD, CDX_OP_SUB, CDX_OP_MUL,
    CDX_OP_PAD, CDX_OP_PADV2, CDX_OP_TRANSPOSE, CDX_OP_CONV2D, CDX_OP_LEAKYRELU, CDX_OP_RELU,
    CDX_OP_CONCAT, CDX_OP_MAXPOOL, CDX_OP_RESIZE_BILINEAR, CDX_OP_SPLITV, CDX_OP_SIGMOID,
    CDX_OP_RESHAPE, CDX_OP_SPARSE_TO_DENSE
};

enum cdx_gpad { CDX_PAD_VALID = 0, CDX_PAD_SAME, CDX_PAD_EXPLICIT };

/* The attributes the ops read (parsed and checked at load). */
struct cdx_gattr {
    int strides[4], dilations[4], ksize[4]; /* NHWC order, as TF writes them */
    int padding;                            /* enum cdx_gpad */
    int explicit_pad[8];                    /* (before, after) per NHWC dim */
    int nchw;                               /* data_format NCHW (only NHWC is run) */
    float alpha;                            /* LeakyRelu */
    int align_corners, half_pixel;          /* ResizeBilinear */
    int num_split;                          /* SplitV */
};

/* Conv2D's filter, repacked at load for the linear kernels: W (cout, kh kw
 * cin), k ordered (ky, kx, c), as panels (CDX_W_F32P). */
struct cdx_gconv {
    int kh, kw, cin, cout;
    struct cdx_wmat w;
    void *w_own;
    const float *bias;        /* [cout]: the constant of the Add that followed it (fused), or NULL */
};

struct cdx_gnode {
    char *name;
    int op;                   /* enum cdx_gop */
    int n_in, n_out;
    int in[CDX_G_MAXIN];      /* value ids */
    int out;                  /* first output's value id; output i is out + i */
    struct cdx_gattr a;
    struct cdx_gconv *conv;   /* Conv2D with a constant filter */
    int pos;                  /* its place in `order` (-1: folded or constant) */
    int fused;                /* an Add whose bias the Conv2D before it added: passes input 0 on */
};

struct cdx_graph {
    struct cdx_gnode *nodes;  /* every node, in file order */
    size_t n_nodes;
    int *order;               /* node indices, topological, non-constant nodes only */
    size_t n_order;
    struct cdx_gtensor *vals; /* every node output */
    char *is_const;           /* per value */
    int *last_use;            /* per value: position in `order` of its last consumer, -1 none */
    size_t n_vals;
    int input;                /* the Placeholder's value id */
    int64_t in_dim[CDX_G_MAXDIM]; /* its declared shape (-1: any) */
    int in_rank;
    int outputs[16];          /* the signature's outputs, in file order */
    char *output_names[16];
    int64_t out_dim[16][CDX_G_MAXDIM]; /* the signature's declared shapes (-1: any) */
    int out_rank[16];
    int n_outputs;
    void *map;                /* the weights file mapping (or NULL) */
    size_t map_len;
    void *wbuf;               /* weights read into memory (several shards) */
};

/* Reads a TF.js graph model: `json_path` (model.json), its weights files
 * beside it. Hostile files give CLIPDEX_E_FORMAT naming the file and node. */
CDX_INTERNAL int cdx_graph_load_tfjs(clipdex_ctx *ctx, const char *json_path, struct cdx_graph **out);
CDX_INTERNAL void cdx_graph_free(struct cdx_graph *g);
/* Runs the graph on one float input of `rank` dims `dim` (it must match the
 * declared shape). The outputs stay in g->vals until the next run. */
CDX_INTERNAL int cdx_graph_run(clipdex_ctx *ctx, struct cdx_graph *g, const float *input,
                               const int64_t *dim, int rank);
/* The value id of an output or node name ("Identity:0", "x", "x:1"); -1. */
CDX_INTERNAL int cdx_graph_find(const struct cdx_graph *g, const char *name);

/* Ops (graph_ops.c): compute node `nd`'s outputs from its inputs. Each
 * allocates its outputs with cdx_gt_alloc. */
CDX_INTERNAL int cdx_gop_run(clipdex_ctx *ctx, struct cdx_graph *g, const struct cdx_gnode *nd);
/* Load-time checks and preparation of one node (Conv2D filter packing); 0 or
 * a status with a message. */
CDX_INTERNAL int cdx_gop_prepare(clipdex_ctx *ctx, struct cdx_graph *g, struct cdx_gnode *nd);
/* The op of a TF op name, 0 if unsupported. */
CDX_INTERNAL int cdx_gop_of(const char *tf_name);
CDX_INTERNAL const char *cdx_gop_name(int op);

/* Allocates t's data for `rank` dims `dim` of `dtype`; 0 or -1 (overflow,
 * negative dims, out of memory). */
CDX_INTERNAL int cdx_gt_alloc(struct cdx_gtensor *t, int dtype, int rank, const int64_t *dim);
CDX_INTERNAL void cdx_gt_release(struct cdx_gtensor *t);

/* Transposes 4-byte elements: y = x (rank dims in_dim) permuted by perm (a
 * valid permutation). With `fast`, a permutation that is a batched 2D
 * transpose (NCHW <-> NHWC) runs in cache tiles; without, the general
 * strided loop (the reference the tiles are tested against). */
CDX_INTERNAL void cdx_transpose_u32(const uint32_t *x, int rank, const int64_t *in_dim, const int64_t *perm,
                                    uint32_t *y, int fast);

/* Bilinear resampling with TensorFlow's ResizeBilinear semantics (also the
 * detector's letterbox): output index i of a dim reads source indices lo and
 * hi, weight f on hi. The source coordinate is r (i + 0.5) - 0.5 with
 * half-pixel centres, else r i; r = (in - 1) / (out - 1) with aligned
 * corners, else in / out; lo = max(floor, 0), hi = min(ceil, in - 1). */
struct cdx_lerp {
    int64_t lo, hi;
    double f;
};
CDX_INTERNAL void cdx_lerp_table(int64_t in, int64_t out, int align_corners, int half_pixel, struct cdx_lerp *tab);
/* src (h, w, c) -> dst (oh, ow, c) with the tables of cdx_lerp_table. */
CDX_INTERNAL void cdx_resize_bilinear(const float *src, int64_t h, int64_t w, int64_t c, float *dst, int64_t oh,
                                      int64_t ow, const struct cdx_lerp *ty, const struct cdx_lerp *tx);

#endif
