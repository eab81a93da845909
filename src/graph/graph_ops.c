/*
 * graph_ops.c - the ops of the graph executor, with TensorFlow's semantics:
 * numpy broadcasting for the element-wise ops, NHWC convolution and pooling
 * (VALID, SAME and explicit padding, strides, dilations), ResizeBilinear
 * with align_corners / half_pixel_centers as tf.image does it, and the
 * shape ops. Convolution is im2col + the project's linear kernels (the
 * filter packed once at load as W (cout, kh kw cin)); a 1x1 stride-1
 * convolution reads its input directly. Everything else is plain C.
 *
 * Every op checks its inputs' dtypes and shapes and fails with a message
 * naming the node; outputs are allocated here (cdx_gt_alloc).
 */
#include "graph/graph.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *tf;
    int op;
} op_names[] = {
    {"Const", CDX_OP_CONST},       {"Placeholder", CDX_OP_PLACEHOLDER}, {"Identity", CDX_OP_IDENTITY},
    {"Add", CDX_OP_ADD},           {"AddV2", CDX_OP_ADD},               {"Sub", CDX_OP_SUB},
    {"Mul", CDX_OP_MUL},           {"Pad", CDX_OP_PAD},                 {"PadV2", CDX_OP_PADV2},
    {"Transpose", CDX_OP_TRANSPOSE}, {"Conv2D", CDX_OP_CONV2D},         {"LeakyRelu", CDX_OP_LEAKYRELU},
    {"Relu", CDX_OP_RELU},         {"ConcatV2", CDX_OP_CONCAT},         {"MaxPool", CDX_OP_MAXPOOL},
    {"ResizeBilinear", CDX_OP_RESIZE_BILINEAR}, {"SplitV", CDX_OP_SPLITV}, {"Sigmoid", CDX_OP_SIGMOID},
    {"Reshape", CDX_OP_RESHAPE},   {"SparseToDense", CDX_OP_SPARSE_TO_DENSE},
};

int cdx_gop_of(const char *tf_name)
{
    for (size_t i = 0; i < sizeof op_names / sizeof op_names[0]; i++)
        if (!strcmp(op_names[i].tf, tf_name)) return op_names[i].op;
    return 0;
}

const char *cdx_gop_name(int op)
{
    for (size_t i = 0; i < sizeof op_names / sizeof op_names[0]; i++)
        if (op_names[i].op == op) return op_names[i].tf;
    return "?";
}

/* ---- tensors ---- */

int cdx_gt_alloc(struct cdx_gtensor *t, int dtype, int rank, const int64_t *dim)
{
    cdx_gt_release(t);
    if (rank < 0 || rank > CDX_G_MAXDIM) return -1;
    size_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (dim[i] < 0 || cdx_mul(n, (size_t)dim[i], &n)) return -1;
        t->dim[i] = dim[i];
    }
    if (n > CDX_G_MAX_ELEMS) return -1;
    t->data = malloc(n ? n * 4 : 4);
    if (!t->data) return -1;
    t->dtype = dtype;
    t->rank = rank;
    t->n = n;
    t->owned = 1;
    return 0;
}

void cdx_gt_release(struct cdx_gtensor *t)
{
    if (t->owned) free(t->data);
    memset(t, 0, sizeof *t);
}

#define IN(k) (&g->vals[nd->in[k]])
#define OUT(k) (&g->vals[nd->out + (k)])

static int fail(clipdex_ctx *ctx, const struct cdx_gnode *nd, const char *what)
{
    return cdx_error(ctx, CLIPDEX_E_FORMAT, "graph node '%s' (%s): %s", nd->name, cdx_gop_name(nd->op), what);
}

static int nomem(clipdex_ctx *ctx, const struct cdx_gnode *nd) { return fail(ctx, nd, "out of memory or too large"); }

/* The int32 values of a small tensor (shapes, axes, paddings), as int64. */
static int ints_of(const struct cdx_gtensor *t, int64_t *out, size_t max, size_t *n)
{
    if (t->dtype != CDX_G_I32 || t->n > max) return -1;
    for (size_t i = 0; i < t->n; i++) out[i] = ((const int32_t *)t->data)[i];
    *n = t->n;
    return 0;
}

static int axis_of(const struct cdx_gtensor *t, int rank, int *axis)
{
    int64_t v;
    size_t n;
    if (ints_of(t, &v, 1, &n) || n != 1 || v < -rank || v >= rank) return -1;
    *axis = (int)(v < 0 ? v + rank : v);
    return 0;
}

/* ---- element-wise ---- */

static int run_binary(clipdex_ctx *ctx, struct cdx_graph *g, const struct cdx_gnode *nd)
{
    const struct cdx_gtensor *a = IN(0), *b = IN(1);
    if (a->dtype != b->dtype) return fail(ctx, nd, "operands of different types");
    int r = a->rank > b->rank ? a->rank : b->rank;
    int64_t dim[CDX_G_MAXDIM], sa[CDX_G_MAXDIM], sb[CDX_G_MAXDIM];
    int64_t stra = 1, strb = 1;
    for (int i = r - 1; i >= 0; i--) { /* right-aligned, numpy rules */
        int ia = i - (r - a->rank), ib = i - (r - b->rank);
        int64_t da = ia >= 0 ? a->dim[ia] : 1, db = ib >= 0 ? b->dim[ib] : 1;
        if (da != db && da != 1 && db != 1) return fail(ctx, nd, "shapes do not broadcast");
        dim[i] = da > db ? da : db;
        if (da == 0 || db == 0) dim[i] = 0;
        sa[i] = da == 1 ? 0 : stra;
        sb[i] = db == 1 ? 0 : strb;
        stra *= da;
        strb *= db;
    }
    struct cdx_gtensor o = {0};
    if (cdx_gt_alloc(&o, a->dtype, r, dim)) return nomem(ctx, nd);
    int64_t idx[CDX_G_MAXDIM] = {0};
    for (size_t e = 0; e < o.n; e++) {
        int64_t ka = 0, kb = 0;
        for (int i = 0; i < r; i++) {
            ka += idx[i] * sa[i];
            kb += idx[i] * sb[i];
        }
        if (a->dtype == CDX_G_F32) {
            float x = ((const float *)a->data)[ka], y = ((const float *)b->data)[kb];
            ((float *)o.data)[e] = nd->op == CDX_OP_ADD ? x + y : nd->op == CDX_OP_SUB ? x - y : x * y;
        } else {
            int64_t x = ((const int32_t *)a->data)[ka], y = ((const int32_t *)b->data)[kb];
            ((int32_t *)o.data)[e] = (int32_t)(nd->op == CDX_OP_ADD ? x + y : nd->op == CDX_OP_SUB ? x - y : x * y);
        }
        for (int i = r - 1; i >= 0 && ++idx[i] == dim[i]; i--) idx[i] = 0;
    }
    *OUT(0) = o;
    return 0;
}

/* a (rows, cols) + b (cols): the bias add after a convolution */
static int run_add_bias(struct cdx_graph *g, const struct cdx_gnode *nd)
{
    const struct cdx_gtensor *a = IN(0), *b = IN(1);
    struct cdx_gtensor o = {0};
    if (cdx_gt_alloc(&o, CDX_G_F32, a->rank, a->dim)) return -1;
    size_t c = b->n, rows = c ? a->n / c : 0;
    const float *x = a->data, *y = b->data;
    float *z = o.data;
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < c; j++) z[i * c + j] = x[i * c + j] + y[j];
    *OUT(0) = o;
    return 0;
}

static int is_bias_shape(const struct cdx_gtensor *a, const struct cdx_gtensor *b)
{
    return a->dtype == CDX_G_F32 && b->dtype == CDX_G_F32 && b->rank == 1 && a->rank >= 1 &&
           a->dim[a->rank - 1] == b->dim[0];
}

/* Whether node nd may overwrite its input i: a computed tensor that no
 * later node reads. */
static int may_reuse(const struct cdx_graph *g, const struct cdx_gnode *nd, int i)
{
    int v = nd->in[i];
    return !g->is_const[v] && nd->pos >= 0 && g->last_use[v] == nd->pos;
}

static int run_unary(clipdex_ctx *ctx, struct cdx_graph *g, const struct cdx_gnode *nd)
{
    struct cdx_gtensor *a = &g->vals[nd->in[0]];
    if (a->dtype != CDX_G_F32) return fail(ctx, nd, "input is not float32");
    struct cdx_gtensor o = {0};
    if (may_reuse(g, nd, 0)) { /* in place: the tensor moves to the output */
        o = *a;
        memset(a, 0, sizeof *a);
    } else if (cdx_gt_alloc(&o, CDX_G_F32, a->rank, a->dim)) {
        return nomem(ctx, nd);
    }
    const float *x = a->data ? a->data : o.data; /* in place, a was emptied */
    float *y = o.data, al = nd->a.alpha;
    size_t n = o.n;
    /* one loop per op, so that each vectorizes */
    if (nd->op == CDX_OP_LEAKYRELU)
        for (size_t i = 0; i < n; i++) y[i] = x[i] < 0 ? x[i] * al : x[i];
    else if (nd->op == CDX_OP_RELU)
        for (size_t i = 0; i < n; i++) y[i] = x[i] < 0 ? 0 : x[i];
    else
        for (size_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i])); /* Sigmoid */
    *OUT(0) = o;
    return 0;
}

static int copy_of(clipdex_ctx *ctx, const struct cdx_gnode *nd, const struct cdx_gtensor *a, int rank,
                   const int64_t *dim, struct cdx_gtensor *o)
{
    if (cdx_gt_alloc(o, a->dtype, rank, dim)) return nomem(ctx, nd);
    if (o->n != a->n) return fail(ctx, nd, "the new shape has another element count");
    memcpy(o->data, a->data, a->n * 4);
    return 0;
}

/* ---- shapes ---- */

static int run_reshape(clipdex_ctx *ctx, struct cdx_graph *g, const struct cdx_gnode *nd)
{
    int64_t dim[CDX_G_MAXDIM];
    size_t r;
    if (ints_of(IN(1), dim, CDX_G_MAXDIM, &r)) return fail(ctx, nd, "bad shape operand");
    int infer = -1;
    size_t known = 1;
    for (size_t i = 0; i < r; i++) {
        if (dim[i] == -1 && infer < 0) infer = (int)i;
        else if (dim[i] < 0 || cdx_mul(known, (size_t)dim[i], &known)) return fail(ctx, nd, "bad shape operand");
    }
    if (infer >= 0) {
        if (!known || IN(0)->n % known) return fail(ctx, nd, "the shape does not divide the element count");
        dim[infer] = (int64_t)(IN(0)->n / known);
    }
    struct cdx_gtensor o = {0};
    int st = copy_of(ctx, nd, IN(0), (int)r, dim, &o);
    if (st) {
        cdx_gt_release(&o);
        return st;
    }
    *OUT(0) = o;
    return 0;
}

/* A permutation that keeps axes [0, p) and swaps the blocks [p, q) and
 * [q, r) is a batched 2D transpose: returns 1 and (B, R, C) such that the
 * input is (B, R, C) and the output (B, C, R). Layout changes NCHW <-> NHWC
 * ([0,2,3,1], [0,3,1,2]) are of this kind. */
static int as_2d_transpose(const int64_t *perm, const int64_t *dim, size_t r, size_t *B, size_t *R, size_t *C)
{
    size_t p = 0;
    while (p < r && perm[p] == (int64_t)p) p++;
    if (p + 2 > r) return 0;
    size_t q = (size_t)perm[p]; /* the output starts with the block [q, r) */
    if (q <= p) return 0;
    for (size_t i = 0; i < r - p; i++) {
        size_t want = i < r - q ? q + i : p + (i - (r - q));
        if ((size_t)perm[p + i] != want) return 0;
    }
    *B = *R = *C = 1;
    for (size_t i = 0; i < r; i++) *(i < p ? B : i < q ? R : C) *= (size_t)dim[i];
    return 1;
}

/* y (B, C, R) = x (B, R, C) transposed, in 32 x 32 tiles (one thread: on
 * 2 CPUs splitting it over the pool measured slower, 56-62 against 53 ms a
 * NanoDet run). */
static void transpose_2d(const uint32_t *x, uint32_t *y, size_t B, size_t R, size_t C)
{
    enum { T = 32 };
    for (size_t b = 0; b < B; b++, x += R * C, y += R * C)
        for (size_t i0 = 0; i0 < R; i0 += T)
            for (size_t j0 = 0; j0 < C; j0 += T) {
                size_t i1 = i0 + T < R ? i0 + T : R, j1 = j0 + T < C ? j0 + T : C;
                for (size_t c = j0; c < j1; c++)
                    for (size_t i = i0; i < i1; i++) y[c * R + i] = x[i * C + c];
            }
}

void cdx_transpose_u32(const uint32_t *x, int rank, const int64_t *in_dim, const int64_t *perm, uint32_t *y, int fast)
{
    size_t r = (size_t)rank, B, R, C;
    if (fast && as_2d_transpose(perm, in_dim, r, &B, &R, &C)) {
        transpose_2d(x, y, B, R, C);
        return;
    }
    int64_t dim[CDX_G_MAXDIM] = {0}, st_in[CDX_G_MAXDIM], st[CDX_G_MAXDIM], s = 1, n = 1;
    for (int i = rank - 1; i >= 0; i--) {
        st_in[i] = s;
        s *= in_dim[i];
    }
    for (size_t i = 0; i < r; i++) {
        dim[i] = in_dim[perm[i]];
        st[i] = st_in[perm[i]];
        n *= dim[i];
    }
    int64_t idx[CDX_G_MAXDIM] = {0}, inner = r ? dim[r - 1] : 1, sin = r ? st[r - 1] : 0;
    for (int64_t e = 0; inner > 0 && e < n; e += inner) {
        int64_t k = 0;
        for (size_t i = 0; i + 1 < r; i++) k += idx[i] * st[i];
        for (int64_t j = 0; j < inner; j++) y[e + j] = x[k + j * sin];
        for (int i = (int)r - 2; i >= 0 && ++idx[i] == dim[i]; i--) idx[i] = 0;
    }
}

static int run_transpose(clipdex_ctx *ctx, struct cdx_graph *g, const struct cdx_gnode *nd)
{
    const struct cdx_gtensor *a = IN(0);
    int64_t perm[CDX_G_MAXDIM], dim[CDX_G_MAXDIM] = {0};
    size_t r;
    if (ints_of(IN(1), perm, CDX_G_MAXDIM, &r) || (int)r != a->rank) return fail(ctx, nd, "bad permutation");
    int seen = 0;
    for (size_t i = 0; i < r; i++) {
        if (perm[i] < 0 || perm[i] >= (int64_t)r || (seen >> perm[i] & 1)) return fail(ctx, nd, "bad permutation");
        seen |= 1 << perm[i];
        dim[i] = a->dim[perm[i]];
    }
    struct cdx_gtensor o = {0};
    if (cdx_gt_alloc(&o, a->dtype, (int)r, dim)) return nomem(ctx, nd);
    cdx_transpose_u32(a->data, a->rank, a->dim, perm, o.data, 1);
    *OUT(0) = o;
    return 0;
}

static int run_pad(clipdex_ctx *ctx, struct cdx_graph *g, const struct cdx_gnode *nd)
{
    const struct cdx_gtensor *a = IN(0);
    int64_t p[2 * CDX_G_MAXDIM], dim[CDX_G_MAXDIM];
    size_t np;
    if (ints_of(IN(1), p, 2 * CDX_G_MAXDIM, &np) || np != 2 * (size_t)a->rank) return fail(ctx, nd, "bad paddings");
    uint32_t fill = 0;
    if (nd->op == CDX_OP_PADV2) {
        const struct cdx_gtensor *v = IN(2);
        if (v->n != 1 || v->dtype != a->dtype) return fail(ctx, nd, "bad constant value");
        memcpy(&fill, v->data, 4);
    }
    for (int i = 0; i < a->rank; i++) {
        if (p[2 * i] < 0 || p[2 * i + 1] < 0 || p[2 * i] > (1 << 20) || p[2 * i + 1] > (1 << 20))
            return fail(ctx, nd, "negative or huge paddings");
        dim[i] = a->dim[i] + p[2 * i] + p[2 * i + 1];
    }
    struct cdx_gtensor o = {0};
    if (cdx_gt_alloc(&o, a->dtype, a->rank, dim)) return nomem(ctx, nd);
    uint32_t *y = o.data;
    for (size_t i = 0; i < o.n; i++) y[i] = fill;
    int r = a->rank;
    if (a->n && r) {
        int64_t ost[CDX_G_MAXDIM], s = 1, idx[CDX_G_MAXDIM] = {0}, inner = a->dim[r - 1];
        for (int i = r - 1; i >= 0; i--) {
            ost[i] = s;
            s *= dim[i];
        }
        const uint32_t *x = a->data;
        for (size_t e = 0; e < a->n; e += (size_t)inner) {
            int64_t k = 0;
            for (int i = 0; i < r; i++) k += (idx[i] + p[2 * i]) * ost[i];
            memcpy(y + k, x + e, (size_t)inner * 4);
            for (int i = r - 2; i >= 0 && ++idx[i] == a->dim[i]; i--) idx[i] = 0;
        }
    } else if (a->n) {
        memcpy(y, a->data, 4);
    }
    *OUT(0) = o;
    return 0;
}

static int run_concat(clipdex_ctx *ctx, struct cdx_graph *g, const struct cdx_gnode *nd)
{
    int n = nd->n_in - 1, axis;
    const struct cdx_gtensor *a = IN(0);
    if (n < 1 || axis_of(IN(n), a->rank, &axis)) return fail(ctx, nd, "bad axis");
    int64_t dim[CDX_G_MAXDIM];
    memcpy(dim, a->dim, sizeof dim);
    dim[axis] = 0;
    for (int i = 0; i < n; i++) {
        const struct cdx_gtensor *t = IN(i);
        if (t->dtype != a->dtype || t->rank != a->rank) return fail(ctx, nd, "inputs differ in type or rank");
        for (int d = 0; d < a->rank; d++)
            if (d != axis && t->dim[d] != a->dim[d]) return fail(ctx, nd, "inputs differ in shape");
        dim[axis] += t->dim[axis];
    }
    struct cdx_gtensor o = {0};
    if (cdx_gt_alloc(&o, a->dtype, a->rank, dim)) return nomem(ctx, nd);
    size_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++) outer *= (size_t)dim[d];
    for (int d = axis + 1; d < a->rank; d++) inner *= (size_t)dim[d];
    size_t row = (size_t)dim[axis] * inner, at = 0;
    for (int i = 0; i < n; i++) {
        const struct cdx_gtensor *t = IN(i);
        size_t w = (size_t)t->dim[axis] * inner;
        for (size_t q = 0; q < outer; q++)
            memcpy((uint32_t *)o.data + q * row + at, (const uint32_t *)t->data + q * w, w * 4);
        at += w;
    }
    *OUT(0) = o;
    return 0;
}

static int run_splitv(clipdex_ctx *ctx, struct cdx_graph *g, const struct cdx_gnode *nd)
{
    const struct cdx_gtensor *a = IN(0);
    int64_t sz[CDX_G_MAXOUT];
    size_t ns;
    int axis;
    if (ints_of(IN(1), sz, CDX_G_MAXOUT, &ns) || (int)ns != nd->n_out || axis_of(IN(2), a->rank, &axis))
        return fail(ctx, nd, "bad sizes or axis");
    int64_t known = 0;
    int infer = -1;
    for (size_t i = 0; i < ns; i++) {
        if (sz[i] == -1 && infer < 0) infer = (int)i;
        else if (sz[i] < 0) return fail(ctx, nd, "bad sizes");
        else known += sz[i];
    }
    if (infer >= 0) sz[infer] = a->dim[axis] - known;
    else if (known != a->dim[axis]) return fail(ctx, nd, "sizes do not add up to the dim");
    if (infer >= 0 && sz[infer] < 0) return fail(ctx, nd, "sizes exceed the dim");
    size_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++) outer *= (size_t)a->dim[d];
    for (int d = axis + 1; d < a->rank; d++) inner *= (size_t)a->dim[d];
    size_t row = (size_t)a->dim[axis] * inner, at = 0;
    for (size_t i = 0; i < ns; i++) {
        int64_t dim[CDX_G_MAXDIM];
        memcpy(dim, a->dim, sizeof dim);
        dim[axis] = sz[i];
        struct cdx_gtensor o = {0};
        if (cdx_gt_alloc(&o, a->dtype, a->rank, dim)) return nomem(ctx, nd);
        size_t w = (size_t)sz[i] * inner;
        for (size_t q = 0; q < outer; q++)
            memcpy((uint32_t *)o.data + q * w, (const uint32_t *)a->data + q * row + at, w * 4);
        at += w;
        *OUT(i) = o;
    }
    return 0;
}

static int run_sparse_to_dense(clipdex_ctx *ctx, struct cdx_graph *g, const struct cdx_gnode *nd)
{
    const struct cdx_gtensor *ix = IN(0), *vals = IN(2), *def = IN(3);
    int64_t dim[CDX_G_MAXDIM];
    size_t r;
    if (ints_of(IN(1), dim, CDX_G_MAXDIM, &r) || ix->dtype != CDX_G_I32 || def->n != 1 || def->dtype != vals->dtype)
        return fail(ctx, nd, "bad operands");
    size_t n_ix = ix->rank == 0 ? 1 : (size_t)ix->dim[0], width = ix->rank == 2 ? (size_t)ix->dim[1] : 1;
    if (ix->rank > 2 || (ix->rank == 2 && width != r) || (vals->n != 1 && vals->n != n_ix) || (r == 0 && n_ix))
        return fail(ctx, nd, "indices and values do not agree");
    struct cdx_gtensor o = {0};
    if (cdx_gt_alloc(&o, vals->dtype, (int)r, dim)) return nomem(ctx, nd);
    uint32_t *y = o.data, d0;
    memcpy(&d0, def->data, 4);
    for (size_t i = 0; i < o.n; i++) y[i] = d0;
    for (size_t i = 0; i < n_ix; i++) {
        int64_t k = 0;
        for (size_t j = 0; j < width; j++) {
            int64_t v = ((const int32_t *)ix->data)[i * width + j];
            if (v < 0 || v >= dim[j]) {
                cdx_gt_release(&o);
                return fail(ctx, nd, "an index is out of bounds");
            }
            k = k * dim[j] + v;
        }
        memcpy(y + k, (const uint32_t *)vals->data + (vals->n == 1 ? 0 : i), 4);
    }
    *OUT(0) = o;
    return 0;
}

/* ---- spatial ---- */

#define CONV_BLOCK ((size_t)1 << 22) /* floats of one im2col block (16 MiB) */

/* Output size and leading pad of one spatial dim. */
static int spatial(const struct cdx_gattr *a, int d, int64_t in, int k, int64_t *out, int64_t *pad)
{
    int s = a->strides[d], dl = d == 1 || d == 2 ? a->dilations[d] : 1;
    if (s < 1 || dl < 1 || k < 1) return -1;
    int64_t eff = (int64_t)(k - 1) * dl + 1;
    if (a->padding == CDX_PAD_SAME) {
        *out = (in + s - 1) / s;
        int64_t total = (*out - 1) * s + eff - in;
        *pad = total > 0 ? total / 2 : 0;
        return 0;
    }
    int64_t before = 0, after = 0;
    if (a->padding == CDX_PAD_EXPLICIT) {
        before = a->explicit_pad[2 * d];
        after = a->explicit_pad[2 * d + 1];
        if (before < 0 || after < 0) return -1;
    }
    if (in + before + after < eff) return -1;
    *out = (in + before + after - eff) / s + 1;
    *pad = before;
    return 0;
}

/* im2col of output rows [r0, r1) of one image: A (r1 - r0, kh kw c), zero
 * outside the input; output row r is pixel (r / ow, r % ow). */
static void im2col(const float *x, int64_t h, int64_t w, int64_t c, const struct cdx_gattr *a, int kh, int kw,
                   int64_t ow, int64_t pt, int64_t pl, size_t r0, size_t r1, float *A)
{
    int sh = a->strides[1], sw = a->strides[2], dh = a->dilations[1], dw = a->dilations[2];
    size_t k = (size_t)kh * (size_t)kw * (size_t)c;
    for (size_t r = r0; r < r1; r++) {
        int64_t oy = (int64_t)r / ow, ox = (int64_t)r % ow;
        float *row = A + (r - r0) * k;
            for (int ky = 0; ky < kh; ky++) {
                int64_t iy = oy * sh - pt + (int64_t)ky * dh;
                for (int kx = 0; kx < kw; kx++) {
                    int64_t ix = ox * sw - pl + (int64_t)kx * dw;
                    float *dst = row + ((size_t)ky * kw + (size_t)kx) * (size_t)c;
                    if (iy < 0 || iy >= h || ix < 0 || ix >= w) memset(dst, 0, (size_t)c * 4);
                    else memcpy(dst, x + ((size_t)(iy * w + ix)) * (size_t)c, (size_t)c * 4);
                }
            }
        }
}

static int run_conv(clipdex_ctx *ctx, struct cdx_graph *g, const struct cdx_gnode *nd)
{
    const struct cdx_gtensor *x = IN(0);
    const struct cdx_gconv *cv = nd->conv;
    if (x->dtype != CDX_G_F32 || x->rank != 4 || x->dim[3] != cv->cin) return fail(ctx, nd, "input is not NHWC with the filter's channels");
    int64_t oh, ow, pt, pl;
    if (spatial(&nd->a, 1, x->dim[1], cv->kh, &oh, &pt) || spatial(&nd->a, 2, x->dim[2], cv->kw, &ow, &pl))
        return fail(ctx, nd, "the input is smaller than the filter");
    int64_t dim[4] = {x->dim[0], oh, ow, cv->cout};
    struct cdx_gtensor o = {0};
    if (cdx_gt_alloc(&o, CDX_G_F32, 4, dim)) return nomem(ctx, nd);
    size_t m = (size_t)(oh * ow), k = (size_t)cv->kh * (size_t)cv->kw * (size_t)cv->cin;
    int direct = cv->kh == 1 && cv->kw == 1 && nd->a.strides[1] == 1 && nd->a.strides[2] == 1 && pt == 0 &&
                 pl == 0 && oh == x->dim[1] && ow == x->dim[2];
    /* im2col in blocks of rows, at most CONV_BLOCK floats (the linear
     * kernels' results do not depend on how the rows are split) */
    size_t rows = direct ? m : k >= CONV_BLOCK ? 1 : CONV_BLOCK / k;
    if (rows > m) rows = m;
    float *A = direct ? NULL : malloc(rows * k * sizeof *A);
    if (!direct && !A) {
        cdx_gt_release(&o);
        return nomem(ctx, nd);
    }
    size_t in_img = (size_t)(x->dim[1] * x->dim[2] * x->dim[3]);
    for (int64_t b = 0; b < x->dim[0]; b++) {
        const float *xb = (const float *)x->data + (size_t)b * in_img;
        float *ob = (float *)o.data + (size_t)b * m * (size_t)cv->cout;
        for (size_t r0 = 0; r0 < m; r0 += rows) {
            size_t r1 = r0 + rows < m ? r0 + rows : m;
            if (!direct) im2col(xb, x->dim[1], x->dim[2], x->dim[3], &nd->a, cv->kh, cv->kw, ow, pt, pl, r0, r1, A);
            cdx_linear_w(ctx, direct ? xb + r0 * k : A, k, &cv->w, cv->bias, ob + r0 * (size_t)cv->cout, (size_t)cv->cout,
                         r1 - r0, (size_t)cv->cout, k, CDX_ACT_NONE, 0);
        }
    }
    free(A);
    *OUT(0) = o;
    return 0;
}

static int run_maxpool(clipdex_ctx *ctx, struct cdx_graph *g, const struct cdx_gnode *nd)
{
    const struct cdx_gtensor *x = IN(0);
    const struct cdx_gattr *a = &nd->a;
    if (x->dtype != CDX_G_F32 || x->rank != 4) return fail(ctx, nd, "input is not NHWC float32");
    int kh = a->ksize[1], kw = a->ksize[2];
    int64_t oh, ow, pt, pl, h = x->dim[1], w = x->dim[2], c = x->dim[3];
    if (spatial(a, 1, h, kh, &oh, &pt) || spatial(a, 2, w, kw, &ow, &pl))
        return fail(ctx, nd, "the input is smaller than the window");
    int64_t dim[4] = {x->dim[0], oh, ow, c};
    struct cdx_gtensor o = {0};
    if (cdx_gt_alloc(&o, CDX_G_F32, 4, dim)) return nomem(ctx, nd);
    float *y = o.data;
    for (int64_t b = 0; b < x->dim[0]; b++)
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++)
                for (int64_t ch = 0; ch < c; ch++) {
                    float m = -INFINITY;
                    for (int ky = 0; ky < kh; ky++)
                        for (int kx = 0; kx < kw; kx++) {
                            int64_t iy = oy * a->strides[1] - pt + ky, ix = ox * a->strides[2] - pl + kx;
                            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                            float v = ((const float *)x->data)[((b * h + iy) * w + ix) * c + ch];
                            if (v > m) m = v;
                        }
                    y[((b * oh + oy) * ow + ox) * c + ch] = m;
                }
    *OUT(0) = o;
    return 0;
}

void cdx_lerp_table(int64_t in, int64_t out, int align_corners, int half_pixel, struct cdx_lerp *tab)
{
    double r = align_corners && out > 1 ? (double)(in - 1) / (double)(out - 1) : (double)in / (double)out;
    for (int64_t i = 0; i < out; i++) {
        double f = half_pixel ? r * ((double)i + 0.5) - 0.5 : r * (double)i, fl = floor(f);
        int64_t lo = fl < 0 ? 0 : (int64_t)fl, hi = (int64_t)ceil(f);
        tab[i].lo = lo > in - 1 ? in - 1 : lo;
        tab[i].hi = hi > in - 1 ? in - 1 : hi;
        tab[i].f = f - fl;
    }
}

void cdx_resize_bilinear(const float *src, int64_t h, int64_t w, int64_t c, float *dst, int64_t oh, int64_t ow,
                         const struct cdx_lerp *ty, const struct cdx_lerp *tx)
{
    for (int64_t y = 0; y < oh; y++)
        for (int64_t x = 0; x < ow; x++) {
            const float *tl = src + (ty[y].lo * w + tx[x].lo) * c, *tr = src + (ty[y].lo * w + tx[x].hi) * c;
            const float *bl = src + (ty[y].hi * w + tx[x].lo) * c, *br = src + (ty[y].hi * w + tx[x].hi) * c;
            float *o = dst + (y * ow + x) * c;
            for (int64_t k = 0; k < c; k++) {
                double top = tl[k] + (tr[k] - tl[k]) * tx[x].f, bot = bl[k] + (br[k] - bl[k]) * tx[x].f;
                o[k] = (float)(top + (bot - top) * ty[y].f);
            }
        }
}

static int run_resize(clipdex_ctx *ctx, struct cdx_graph *g, const struct cdx_gnode *nd)
{
    const struct cdx_gtensor *x = IN(0);
    int64_t sz[2];
    size_t ns;
    if (x->dtype != CDX_G_F32 || x->rank != 4 || ints_of(IN(1), sz, 2, &ns) || ns != 2 || sz[0] < 1 || sz[1] < 1 ||
        sz[0] > (1 << 16) || sz[1] > (1 << 16) || x->dim[1] < 1 || x->dim[2] < 1)
        return fail(ctx, nd, "bad input or size");
    int64_t dim[4] = {x->dim[0], sz[0], sz[1], x->dim[3]};
    struct cdx_gtensor o = {0};
    if (cdx_gt_alloc(&o, CDX_G_F32, 4, dim)) return nomem(ctx, nd);
    struct cdx_lerp *ty = malloc((size_t)(sz[0] + sz[1]) * sizeof *ty), *tx = ty + sz[0];
    if (!ty) {
        cdx_gt_release(&o);
        return nomem(ctx, nd);
    }
    cdx_lerp_table(x->dim[1], sz[0], nd->a.align_corners, nd->a.half_pixel, ty);
    cdx_lerp_table(x->dim[2], sz[1], nd->a.align_corners, nd->a.half_pixel, tx);
    size_t in_img = (size_t)(x->dim[1] * x->dim[2] * x->dim[3]), out_img = (size_t)(sz[0] * sz[1] * x->dim[3]);
    for (int64_t b = 0; b < x->dim[0]; b++)
        cdx_resize_bilinear((const float *)x->data + (size_t)b * in_img, x->dim[1], x->dim[2], x->dim[3],
                            (float *)o.data + (size_t)b * out_img, sz[0], sz[1], ty, tx);
    free(ty);
    *OUT(0) = o;
    return 0;
}

/* ---- load-time preparation ---- */

static const signed char n_inputs[] = {
    [CDX_OP_CONST] = 0, [CDX_OP_PLACEHOLDER] = 0, [CDX_OP_IDENTITY] = 1, [CDX_OP_ADD] = 2, [CDX_OP_SUB] = 2,
    [CDX_OP_MUL] = 2, [CDX_OP_PAD] = 2, [CDX_OP_PADV2] = 3, [CDX_OP_TRANSPOSE] = 2, [CDX_OP_CONV2D] = 2,
    [CDX_OP_LEAKYRELU] = 1, [CDX_OP_RELU] = 1, [CDX_OP_CONCAT] = -1, [CDX_OP_MAXPOOL] = 1,
    [CDX_OP_RESIZE_BILINEAR] = 2, [CDX_OP_SPLITV] = 3, [CDX_OP_SIGMOID] = 1, [CDX_OP_RESHAPE] = 2,
    [CDX_OP_SPARSE_TO_DENSE] = 4,
};

static int prepare_conv(clipdex_ctx *ctx, struct cdx_graph *g, struct cdx_gnode *nd)
{
    const struct cdx_gtensor *f = IN(1);
    if (!g->is_const[nd->in[1]]) return fail(ctx, nd, "a computed filter is not supported");
    if (f->dtype != CDX_G_F32 || f->rank != 4 || f->n == 0) return fail(ctx, nd, "the filter is not HWIO float32");
    if (nd->a.strides[0] != 1 || nd->a.strides[3] != 1 || nd->a.dilations[0] != 1 || nd->a.dilations[3] != 1)
        return fail(ctx, nd, "strides or dilations over batch or channels");
    if (f->dim[0] > 64 || f->dim[1] > 64) return fail(ctx, nd, "filter larger than 64x64");
    struct cdx_gconv *cv = calloc(1, sizeof *cv);
    if (!cv) return nomem(ctx, nd);
    nd->conv = cv;
    cv->kh = (int)f->dim[0];
    cv->kw = (int)f->dim[1];
    cv->cin = (int)f->dim[2];
    cv->cout = (int)f->dim[3];
    size_t k = (size_t)cv->kh * (size_t)cv->kw * (size_t)cv->cin, n = (size_t)cv->cout;
    float *rows = malloc(n * k * sizeof *rows);
    size_t pbytes = cdx_wmat_bytes(CDX_W_F32P, n, k);
    cv->w_own = pbytes ? aligned_alloc(64, (pbytes + 63) / 64 * 64) : NULL; /* the kernels load panels aligned */
    if (!rows || !cv->w_own) {
        free(rows);
        return nomem(ctx, nd);
    }
    const float *hwio = f->data; /* [ky][kx][c][o] -> W[o][(ky kw + kx) cin + c] */
    for (size_t p = 0; p < k; p++)
        for (size_t o = 0; o < n; o++) rows[o * k + p] = hwio[p * n + o];
    struct cdx_wmat src = cdx_wmat_f32(rows);
    int st = cdx_wmat_pack(CDX_W_F32P, &src, n, k, cv->w_own);
    free(rows);
    if (st) return fail(ctx, nd, "cannot pack the filter");
    cv->w.type = CDX_W_F32P;
    cv->w.data = cv->w_own;
    return 0;
}

int cdx_gop_prepare(clipdex_ctx *ctx, struct cdx_graph *g, struct cdx_gnode *nd)
{
    int want = n_inputs[nd->op];
    if ((want >= 0 && nd->n_in != want) || (want < 0 && nd->n_in < 2)) return fail(ctx, nd, "wrong number of inputs");
    if (nd->a.nchw && (nd->op == CDX_OP_CONV2D || nd->op == CDX_OP_MAXPOOL))
        return cdx_error(ctx, CLIPDEX_E_UNSUPPORTED, "graph node '%s' (%s): data format NCHW is not supported",
                         nd->name, cdx_gop_name(nd->op));
    if (nd->op == CDX_OP_CONV2D) return prepare_conv(ctx, g, nd);
    if (nd->op == CDX_OP_MAXPOOL && (nd->a.ksize[0] != 1 || nd->a.ksize[3] != 1 || nd->a.strides[1] < 1 ||
                                     nd->a.strides[2] < 1 || nd->a.ksize[1] < 1 || nd->a.ksize[2] < 1))
        return fail(ctx, nd, "pooling over batch or channels");
    return 0;
}

int cdx_gop_run(clipdex_ctx *ctx, struct cdx_graph *g, const struct cdx_gnode *nd)
{
    for (int i = 0; i < nd->n_in; i++)
        if (!IN(i)->dtype) return fail(ctx, nd, "an input was not computed");
    switch (nd->op) {
    case CDX_OP_IDENTITY: {
        struct cdx_gtensor o = {0};
        int st = copy_of(ctx, nd, IN(0), IN(0)->rank, IN(0)->dim, &o);
        if (!st) *OUT(0) = o;
        return st;
    }
    case CDX_OP_ADD:
        if (nd->fused) { /* the convolution before added the bias: pass its output on */
            *OUT(0) = g->vals[nd->in[0]];
            memset(&g->vals[nd->in[0]], 0, sizeof g->vals[nd->in[0]]);
            return 0;
        }
        if (is_bias_shape(IN(0), IN(1))) return run_add_bias(g, nd) ? nomem(ctx, nd) : 0;
        return run_binary(ctx, g, nd);
    case CDX_OP_SUB:
    case CDX_OP_MUL: return run_binary(ctx, g, nd);
    case CDX_OP_PAD:
    case CDX_OP_PADV2: return run_pad(ctx, g, nd);
    case CDX_OP_TRANSPOSE: return run_transpose(ctx, g, nd);
    case CDX_OP_CONV2D: return run_conv(ctx, g, nd);
    case CDX_OP_LEAKYRELU:
    case CDX_OP_RELU:
    case CDX_OP_SIGMOID: return run_unary(ctx, g, nd);
    case CDX_OP_CONCAT: return run_concat(ctx, g, nd);
    case CDX_OP_MAXPOOL: return run_maxpool(ctx, g, nd);
    case CDX_OP_RESIZE_BILINEAR: return run_resize(ctx, g, nd);
    case CDX_OP_SPLITV: return run_splitv(ctx, g, nd);
    case CDX_OP_RESHAPE: return run_reshape(ctx, g, nd);
    case CDX_OP_SPARSE_TO_DENSE: return run_sparse_to_dense(ctx, g, nd);
    default: return fail(ctx, nd, "cannot be run");
    }
}
