/*
 * tfjs.c - reads a TensorFlow.js graph model (the format of
 * tfjs-converter: model.json with `modelTopology.node` in TensorFlow's
 * GraphDef JSON form and a `weightsManifest` naming little-endian binary
 * files whose concatenated bytes hold every Const tensor in manifest order,
 * optionally quantized to float16 or to uint8/uint16 with scale and min),
 * builds the executor's graph, folds the constant subgraphs and runs it.
 *
 * Hostile files: every count, shape and byte range is checked before use
 * (shape products overflow-checked, the manifest's bytes against the files'
 * sizes, weight paths confined to the model's folder, inputs naming existing
 * nodes and outputs, no cycles); an unsupported op is an error naming the op
 * and the node. A single weights file is mmapped (several are read into one
 * buffer); every tensor is copied out of it (float16 widened to float32)
 * and the mapping is released once the weights are loaded.
 */
#include "graph/graph.h"

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_JSON (64u << 20)
#define MAX_NODES 200000
#define MAX_WEIGHTS_BYTES (4ull << 30)

/* ---- names: an open-addressing table from node name to node index ---- */

struct names {
    int *slot; /* node index + 1, 0 empty */
    size_t cap;
};

static uint64_t hash_str(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static int names_find(const struct names *t, const struct cdx_gnode *nodes, const char *s, size_t n)
{
    for (size_t i = hash_str(s, n) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        int v = t->slot[i];
        if (!v) return -1;
        const char *nm = nodes[v - 1].name;
        if (strlen(nm) == n && !memcmp(nm, s, n)) return v - 1;
    }
}

/* 0, or 1 when the name is already there. */
static int names_add(struct names *t, const struct cdx_gnode *nodes, int idx)
{
    const char *s = nodes[idx].name;
    size_t n = strlen(s);
    if (names_find(t, nodes, s, n) >= 0) return 1;
    size_t i = hash_str(s, n) & (t->cap - 1);
    while (t->slot[i]) i = (i + 1) & (t->cap - 1);
    t->slot[i] = idx + 1;
    return 0;
}

/* ---- attributes ---- */

/* An integer written as a JSON number or as a decimal string (int64). */
static int json_int(json_t *v, long long *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v)) return -1;
    const char *s = json_string_value(v);
    char *end;
    long long x = strtoll(s, &end, 10);
    if (end == s || *end) return -1;
    *out = x;
    return 0;
}

/* attr[key].list.i as up to `max` ints; returns the count, or -1 if malformed. */
static int attr_ints(json_t *attr, const char *key, int *out, int max)
{
    json_t *l = json_object_get(json_object_get(json_object_get(attr, key), "list"), "i");
    if (!l) return 0;
    if (!json_is_array(l) || (int)json_array_size(l) > max) return -1;
    for (size_t i = 0; i < json_array_size(l); i++) {
        long long x;
        if (json_int(json_array_get(l, i), &x) || x < -(1 << 30) || x > (1 << 30)) return -1;
        out[i] = (int)x;
    }
    return (int)json_array_size(l);
}

/* attr[key].s: TF writes strings base64-encoded; the few this reader needs
 * are compared in that form (VALID, SAME, EXPLICIT, NHWC, NCHW). */
static const char *attr_str(json_t *attr, const char *key)
{
    return json_string_value(json_object_get(json_object_get(attr, key), "s"));
}

static int parse_attrs(struct cdx_gnode *nd, json_t *attr)
{
    struct cdx_gattr *a = &nd->a;
    for (int i = 0; i < 4; i++) a->strides[i] = a->dilations[i] = a->ksize[i] = 1;
    a->alpha = 0.2f; /* TF's default */
    if (!attr) return 0;
    if (attr && !json_is_object(attr)) return -1;
    if (attr_ints(attr, "strides", a->strides, 4) < 0 || attr_ints(attr, "dilations", a->dilations, 4) < 0 ||
        attr_ints(attr, "ksize", a->ksize, 4) < 0)
        return -1;
    int ne = attr_ints(attr, "explicit_paddings", a->explicit_pad, 8);
    if (ne < 0 || (ne != 0 && ne != 8)) return -1;
    const char *pad = attr_str(attr, "padding");
    if (pad) {
        if (!strcmp(pad, "VkFMSUQ=")) a->padding = CDX_PAD_VALID;
        else if (!strcmp(pad, "U0FNRQ==")) a->padding = CDX_PAD_SAME;
        else if (!strcmp(pad, "RVhQTElDSVQ=")) a->padding = CDX_PAD_EXPLICIT;
        else return -1;
    }
    const char *fmt = attr_str(attr, "data_format");
    if (fmt) {
        if (!strcmp(fmt, "TkNIVw==")) a->nchw = 1;
        else if (strcmp(fmt, "TkhXQw==")) return -1;
    }
    json_t *f = json_object_get(json_object_get(attr, "alpha"), "f");
    if (f) {
        if (!json_is_number(f)) return -1;
        a->alpha = (float)json_number_value(f);
    }
    a->align_corners = json_is_true(json_object_get(json_object_get(attr, "align_corners"), "b"));
    a->half_pixel = json_is_true(json_object_get(json_object_get(attr, "half_pixel_centers"), "b"));
    json_t *ns = json_object_get(json_object_get(attr, "num_split"), "i");
    if (ns) {
        long long x;
        if (json_int(ns, &x) || x < 1 || x > CDX_G_MAXOUT) return -1;
        a->num_split = (int)x;
    }
    return 0;
}

/* ---- nodes ---- */

static int load_nodes(clipdex_ctx *ctx, const char *path, json_t *jnodes, struct cdx_graph *g, struct names *tab)
{
    size_t n = json_array_size(jnodes);
    if (n == 0 || n > MAX_NODES)
        return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': %zu nodes", path, n);
    g->nodes = calloc(n, sizeof *g->nodes);
    tab->cap = 16;
    while (tab->cap < 2 * n) tab->cap *= 2;
    tab->slot = calloc(tab->cap, sizeof *tab->slot);
    if (!g->nodes || !tab->slot) return cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory");
    g->n_nodes = n;
    for (size_t i = 0; i < n; i++) {
        json_t *jn = json_array_get(jnodes, i);
        const char *name = json_string_value(json_object_get(jn, "name"));
        const char *op = json_string_value(json_object_get(jn, "op"));
        if (!name || !op || !*name || strchr(name, ':'))
            return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': node %zu has no valid name or op", path, i);
        struct cdx_gnode *nd = &g->nodes[i];
        if (!(nd->name = strdup(name))) return cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory");
        if (names_add(tab, g->nodes, (int)i))
            return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': two nodes are named '%s'", path, name);
        if (!(nd->op = cdx_gop_of(op)))
            return cdx_error(ctx, CLIPDEX_E_UNSUPPORTED, "cannot load '%s': op '%s' (node '%s') is not supported",
                             path, op, name);
        if (parse_attrs(nd, json_object_get(jn, "attr")))
            return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': node '%s' has malformed attributes", path, name);
        nd->n_out = nd->op == CDX_OP_SPLITV ? (nd->a.num_split ? nd->a.num_split : 1) : 1;
    }
    size_t nv = 0;
    for (size_t i = 0; i < n; i++) {
        g->nodes[i].out = (int)nv;
        nv += (size_t)g->nodes[i].n_out;
    }
    g->n_vals = nv;
    g->vals = calloc(nv, sizeof *g->vals);
    g->is_const = calloc(nv, 1);
    g->last_use = malloc(nv * sizeof *g->last_use);
    if (!g->vals || !g->is_const || !g->last_use) return cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory");
    return 0;
}

/* Value id of "name", "name:k"; -1 if there is none. */
static int find_value(const struct cdx_graph *g, const struct names *tab, const char *ref)
{
    const char *colon = strchr(ref, ':');
    size_t len = colon ? (size_t)(colon - ref) : strlen(ref);
    long k = 0;
    if (colon) {
        char *end;
        k = strtol(colon + 1, &end, 10);
        if (end == colon + 1 || *end || k < 0) return -1;
    }
    int idx = names_find(tab, g->nodes, ref, len);
    if (idx < 0 || k >= g->nodes[idx].n_out) return -1;
    return g->nodes[idx].out + (int)k;
}

static int link_inputs(clipdex_ctx *ctx, const char *path, json_t *jnodes, struct cdx_graph *g,
                       const struct names *tab)
{
    for (size_t i = 0; i < g->n_nodes; i++) {
        struct cdx_gnode *nd = &g->nodes[i];
        json_t *ins = json_object_get(json_array_get(jnodes, i), "input");
        if (ins && !json_is_array(ins))
            return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': node '%s': inputs are not a list", path, nd->name);
        for (size_t j = 0; ins && j < json_array_size(ins); j++) {
            const char *ref = json_string_value(json_array_get(ins, j));
            if (!ref) return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': node '%s': bad input", path, nd->name);
            if (ref[0] == '^') continue; /* a control dependency: no data */
            if (nd->n_in == CDX_G_MAXIN)
                return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': node '%s' has too many inputs", path, nd->name);
            int v = find_value(g, tab, ref);
            if (v < 0)
                return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': node '%s' reads '%s', which no node makes",
                                 path, nd->name, ref);
            nd->in[nd->n_in++] = v;
        }
    }
    return 0;
}

/* ---- weights ---- */

/* Reads (or maps) the group's files into one byte range. */
static int read_weight_files(clipdex_ctx *ctx, const char *dir, json_t *manifest, struct cdx_graph *g,
                             const uint8_t **bytes, size_t *len)
{
    size_t total = 0, n_paths = 0;
    char full[4096];
    size_t ng = json_array_size(manifest);
    for (size_t gi = 0; gi < ng; gi++) {
        json_t *paths = json_object_get(json_array_get(manifest, gi), "paths");
        for (size_t p = 0; p < json_array_size(paths); p++) {
            const char *rel = json_string_value(json_array_get(paths, p));
            if (!rel || !*rel || rel[0] == '/' || strstr(rel, "..") ||
                snprintf(full, sizeof full, "%s/%s", dir, rel) >= (int)sizeof full)
                return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': a weights path leaves the model's folder",
                                 dir);
            struct stat st;
            if (stat(full, &st) || !S_ISREG(st.st_mode))
                return cdx_error(ctx, CLIPDEX_E_IO, "cannot open weights file '%s'", full);
            if ((uint64_t)st.st_size > MAX_WEIGHTS_BYTES - total)
                return cdx_error(ctx, CLIPDEX_E_LIMIT, "weights of '%s' exceed 4 GiB", dir);
            total += (size_t)st.st_size;
            n_paths++;
        }
    }
    *bytes = NULL;
    *len = total;
    if (!total) return 0;
    if (n_paths == 1) { /* map the single file */
        int fd = open(full, O_RDONLY | O_CLOEXEC);
        if (fd < 0) return cdx_error(ctx, CLIPDEX_E_IO, "cannot open weights file '%s'", full);
        void *m = mmap(NULL, total, PROT_READ, MAP_PRIVATE, fd, 0);
        close(fd);
        if (m == MAP_FAILED) return cdx_error(ctx, CLIPDEX_E_IO, "cannot map weights file '%s'", full);
        g->map = m;
        g->map_len = total;
        *bytes = m;
        return 0;
    }
    uint8_t *buf = malloc(total);
    if (!buf) return cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory for %zu bytes of weights", total);
    g->wbuf = buf;
    size_t off = 0;
    for (size_t gi = 0; gi < ng; gi++) {
        json_t *paths = json_object_get(json_array_get(manifest, gi), "paths");
        for (size_t p = 0; p < json_array_size(paths); p++) {
            if (snprintf(full, sizeof full, "%s/%s", dir, json_string_value(json_array_get(paths, p))) >=
                (int)sizeof full)
                return cdx_error(ctx, CLIPDEX_E_IO, "weights path too long in '%s'", dir);
            FILE *f = fopen(full, "rb");
            size_t got = f ? fread(buf + off, 1, total - off, f) : 0;
            if (f) fclose(f);
            if (!f) return cdx_error(ctx, CLIPDEX_E_IO, "cannot open weights file '%s'", full);
            off += got;
        }
    }
    if (off != total) return cdx_error(ctx, CLIPDEX_E_IO, "weights files of '%s' changed while read", dir);
    *bytes = buf;
    return 0;
}

/* Fills Const node `nd`'s value from spec `w` at bytes[*off...]. */
static int load_weight(clipdex_ctx *ctx, const char *path, json_t *w, struct cdx_graph *g, struct cdx_gnode *nd,
                       const uint8_t *bytes, size_t len, size_t *off)
{
    const char *dt = json_string_value(json_object_get(w, "dtype"));
    json_t *shape = json_object_get(w, "shape");
    json_t *q = json_object_get(w, "quantization");
    if (!dt || !json_is_array(shape) || json_array_size(shape) > CDX_G_MAXDIM)
        return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': weight '%s' has a bad dtype or shape", path, nd->name);
    int dtype = !strcmp(dt, "float32") ? CDX_G_F32 : !strcmp(dt, "int32") ? CDX_G_I32 : 0;
    if (!dtype)
        return cdx_error(ctx, CLIPDEX_E_UNSUPPORTED, "cannot load '%s': weight '%s' has dtype '%s'", path, nd->name, dt);
    int64_t dim[CDX_G_MAXDIM];
    int rank = (int)json_array_size(shape);
    for (int i = 0; i < rank; i++) {
        long long x;
        if (json_int(json_array_get(shape, i), &x) || x < 0 || x > (1ll << 32))
            return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': weight '%s' has a bad shape", path, nd->name);
        dim[i] = x;
    }
    const char *qdt = q ? json_string_value(json_object_get(q, "dtype")) : NULL;
    size_t esize = !qdt ? 4 : !strcmp(qdt, "float16") || !strcmp(qdt, "uint16") ? 2 : !strcmp(qdt, "uint8") ? 1 : 0;
    if (q && (!esize || dtype != CDX_G_F32))
        return cdx_error(ctx, CLIPDEX_E_UNSUPPORTED, "cannot load '%s': weight '%s' has an unsupported quantization",
                         path, nd->name);
    size_t count = 1, nbytes; /* checked against the file before anything is allocated */
    for (int i = 0; i < rank; i++)
        if (cdx_mul(count, (size_t)dim[i], &count) || count > CDX_G_MAX_ELEMS)
            return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': weight '%s' is too large", path, nd->name);
    if (cdx_mul(count, esize, &nbytes) || nbytes > len - *off)
        return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': weights end before '%s' (truncated .bin?)", path,
                         nd->name);
    struct cdx_gtensor *t = &g->vals[nd->out];
    if (cdx_gt_alloc(t, dtype, rank, dim))
        return cdx_error(ctx, CLIPDEX_E_NOMEM, "cannot load '%s': out of memory for weight '%s'", path, nd->name);
    const uint8_t *src = bytes + *off;
    *off += nbytes;
    if (!q) {
        memcpy(t->data, src, nbytes);
        return 0;
    }
    float *o = t->data;
    if (esize == 2 && !strcmp(qdt, "float16")) {
        for (size_t i = 0; i < t->n; i++) o[i] = cdx_half_to_float((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
        return 0;
    }
    json_t *js = json_object_get(q, "scale"), *jm = json_object_get(q, "min");
    if (!json_is_number(js) || !json_is_number(jm))
        return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': weight '%s' lacks its scale or min", path, nd->name);
    float scale = (float)json_number_value(js), mn = (float)json_number_value(jm);
    for (size_t i = 0; i < t->n; i++) {
        unsigned v = esize == 1 ? src[i] : (unsigned)(src[2 * i] | src[2 * i + 1] << 8);
        o[i] = (float)v * scale + mn;
    }
    return 0;
}

static int load_weights(clipdex_ctx *ctx, const char *path, const char *dir, json_t *manifest,
                        struct cdx_graph *g, const struct names *tab)
{
    if (!json_is_array(manifest))
        return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': no weightsManifest", path);
    const uint8_t *bytes;
    size_t len = 0, off = 0;
    int st = read_weight_files(ctx, dir, manifest, g, &bytes, &len);
    if (st) return st;
    for (size_t gi = 0; gi < json_array_size(manifest); gi++) {
        json_t *ws = json_object_get(json_array_get(manifest, gi), "weights");
        for (size_t i = 0; i < json_array_size(ws); i++) {
            json_t *w = json_array_get(ws, i);
            const char *name = json_string_value(json_object_get(w, "name"));
            int idx = name ? names_find(tab, g->nodes, name, strlen(name)) : -1;
            if (idx < 0 || g->nodes[idx].op != CDX_OP_CONST || g->vals[g->nodes[idx].out].dtype)
                return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': weight '%s' names no Const node (or twice)",
                                 path, name ? name : "?");
            if ((st = load_weight(ctx, path, w, g, &g->nodes[idx], bytes, len, &off))) return st;
            g->is_const[g->nodes[idx].out] = 1;
        }
    }
    for (size_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == CDX_OP_CONST && !g->is_const[g->nodes[i].out])
            return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': Const '%s' has no weights", path,
                             g->nodes[i].name);
    /* the float32 tensors could point into the mapping; they are copied (the
     * file is small next to the activations), so the mapping can go now */
    if (g->map) munmap(g->map, g->map_len);
    free(g->wbuf);
    g->map = g->wbuf = NULL;
    return 0;
}

/* ---- the input, the outputs, the order ---- */

/* A TensorShapeProto's `dim` list ([{"size": "3"}, ...]; a missing size is
 * -1, unknown) into dim/rank; 0 or -1. */
static int read_dims(json_t *dims, int64_t *dim, int *rank)
{
    if (!dims) {
        *rank = 0;
        return 0;
    }
    if (!json_is_array(dims) || json_array_size(dims) > CDX_G_MAXDIM) return -1;
    *rank = (int)json_array_size(dims);
    for (int d = 0; d < *rank; d++) {
        long long x = -1;
        json_t *s = json_object_get(json_array_get(dims, (size_t)d), "size");
        if (s && (json_int(s, &x) || x < -1 || x > (1 << 24))) return -1;
        dim[d] = x;
    }
    return 0;
}

static int find_io(clipdex_ctx *ctx, const char *path, json_t *root, struct cdx_graph *g, const struct names *tab)
{
    g->input = -1;
    for (size_t i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].op != CDX_OP_PLACEHOLDER) continue;
        if (g->input >= 0) return cdx_error(ctx, CLIPDEX_E_UNSUPPORTED, "cannot load '%s': several inputs", path);
        g->input = g->nodes[i].out;
    }
    if (g->input < 0) return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': no Placeholder input", path);
    json_t *outs = json_object_get(json_object_get(root, "signature"), "outputs");
    const char *key;
    json_t *v;
    json_object_foreach(outs, key, v) {
        int id = find_value(g, tab, key);
        if (id < 0 || g->n_outputs == 16)
            return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': signature output '%s' is not in the graph",
                             path, key);
        if (read_dims(json_object_get(json_object_get(v, "tensorShape"), "dim"), g->out_dim[g->n_outputs],
                      &g->out_rank[g->n_outputs]))
            return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': signature output '%s' has a bad shape", path,
                             key);
        if (!(g->output_names[g->n_outputs] = strdup(key))) return cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory");
        g->outputs[g->n_outputs++] = id;
    }
    if (!g->n_outputs) return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': no signature outputs", path);
    return 0;
}

static int input_shape(clipdex_ctx *ctx, const char *path, json_t *jnodes, struct cdx_graph *g)
{
    for (size_t i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].op != CDX_OP_PLACEHOLDER) continue;
        json_t *dims = json_object_get(
            json_object_get(json_object_get(json_object_get(json_array_get(jnodes, i), "attr"), "shape"), "shape"),
            "dim");
        if (!dims || read_dims(dims, g->in_dim, &g->in_rank))
            return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': the input has no valid shape", path);
    }
    return 0;
}

/* Kahn's algorithm over the nodes that are not constant; folds the nodes
 * whose inputs are all constant on the way. */
static int sort_and_fold(clipdex_ctx *ctx, const char *path, struct cdx_graph *g)
{
    size_t n = g->n_nodes;
    int *indeg = calloc(n, sizeof *indeg), *queue = malloc(n * sizeof *queue);
    int *producer = malloc(g->n_vals * sizeof *producer);
    size_t *cnt = calloc(n + 1, sizeof *cnt);
    int st = 0;
    g->order = malloc(n * sizeof *g->order);
    if (!indeg || !queue || !producer || !cnt || !g->order) {
        st = cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < g->nodes[i].n_out; k++) producer[g->nodes[i].out + k] = (int)i;
    /* consumers of each node, as a CSR list */
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < g->nodes[i].n_in; j++) cnt[producer[g->nodes[i].in[j]] + 1]++;
    for (size_t i = 0; i < n; i++) cnt[i + 1] += cnt[i];
    int *cons = malloc((cnt[n] + 1) * sizeof *cons);
    size_t *fill = calloc(n, sizeof *fill);
    if (!cons || !fill) {
        free(cons);
        free(fill);
        st = cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < g->nodes[i].n_in; j++) {
            int p = producer[g->nodes[i].in[j]];
            cons[cnt[p] + fill[p]++] = (int)i;
            indeg[i]++;
        }
    size_t head = 0, tail = 0, done = 0;
    for (size_t i = 0; i < n; i++)
        if (!indeg[i]) queue[tail++] = (int)i;
    while (head < tail) {
        int i = queue[head++];
        struct cdx_gnode *nd = &g->nodes[i];
        done++;
        if ((st = cdx_gop_prepare(ctx, g, nd))) break;
        int all_const = nd->op != CDX_OP_PLACEHOLDER && nd->op != CDX_OP_CONST;
        for (int j = 0; j < nd->n_in; j++) all_const &= g->is_const[nd->in[j]];
        if (all_const) {
            if ((st = cdx_gop_run(ctx, g, nd))) break;
            for (int k = 0; k < nd->n_out; k++) g->is_const[nd->out + k] = 1;
        } else if (nd->op != CDX_OP_CONST && nd->op != CDX_OP_PLACEHOLDER) {
            g->order[g->n_order++] = i;
        }
        for (size_t c = cnt[i]; c < cnt[i + 1]; c++)
            if (--indeg[cons[c]] == 0) queue[tail++] = cons[c];
    }
    if (!st && done != n) st = cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': the graph has a cycle", path);
    free(cons);
    free(fill);
out:
    free(indeg);
    free(queue);
    free(producer);
    free(cnt);
    return st;
}

static void set_last_use(struct cdx_graph *g)
{
    for (size_t v = 0; v < g->n_vals; v++) g->last_use[v] = -1;
    for (size_t p = 0; p < g->n_order; p++) {
        const struct cdx_gnode *nd = &g->nodes[g->order[p]];
        for (int j = 0; j < nd->n_in; j++) g->last_use[nd->in[j]] = (int)p;
    }
    for (int o = 0; o < g->n_outputs; o++) g->last_use[g->outputs[o]] = INT32_MAX; /* kept */
}

/* Whether value v is a bias for a Conv2D of `cout` outputs: a constant
 * float32 vector of that length. */
static int is_conv_bias(const struct cdx_graph *g, int v, int cout)
{
    const struct cdx_gtensor *b = &g->vals[v];
    return g->is_const[v] && b->dtype == CDX_G_F32 && b->rank == 1 && b->dim[0] == cout;
}

/* Places the nodes in `order` and fuses each Conv2D with the bias Add that
 * is its only consumer: the convolution's epilogue adds the bias (in its
 * threads, on the output still in cache) and the Add passes the tensor on. */
static int fuse_bias(struct cdx_graph *g)
{
    int *uses = calloc(g->n_vals ? g->n_vals : 1, sizeof *uses), *producer = malloc((g->n_vals ? g->n_vals : 1) * sizeof *producer);
    if (!uses || !producer) {
        free(uses);
        free(producer);
        return -1;
    }
    for (size_t i = 0; i < g->n_nodes; i++) g->nodes[i].pos = -1;
    for (size_t v = 0; v < g->n_vals; v++) producer[v] = -1;
    for (size_t p = 0; p < g->n_order; p++) {
        struct cdx_gnode *nd = &g->nodes[g->order[p]];
        nd->pos = (int)p;
        for (int j = 0; j < nd->n_in; j++) uses[nd->in[j]]++;
        for (int k = 0; k < nd->n_out; k++) producer[nd->out + k] = g->order[p];
    }
    for (size_t p = 0; p < g->n_order; p++) {
        struct cdx_gnode *nd = &g->nodes[g->order[p]];
        if (nd->op != CDX_OP_ADD || nd->n_in != 2) continue;
        int a = nd->in[0], pr = producer[a];
        struct cdx_gnode *cv = pr >= 0 ? &g->nodes[pr] : NULL;
        if (!cv || cv->op != CDX_OP_CONV2D || !cv->conv || cv->conv->bias || uses[a] != 1 ||
            g->last_use[a] == INT32_MAX || !is_conv_bias(g, nd->in[1], cv->conv->cout))
            continue;
        cv->conv->bias = g->vals[nd->in[1]].data;
        nd->fused = 1;
    }
    free(uses);
    free(producer);
    return 0;
}

int cdx_graph_load_tfjs(clipdex_ctx *ctx, const char *json_path, struct cdx_graph **out)
{
    *out = NULL;
    char *text = NULL;
    size_t len;
    int st = cdx_read_file(ctx, json_path, MAX_JSON, &text, &len);
    if (st) return st;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, 0, &jerr);
    free(text);
    if (!root) return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': bad JSON (line %d: %s)", json_path,
                                jerr.line, jerr.text);
    struct cdx_graph *g = calloc(1, sizeof *g);
    struct names tab = {0};
    char dir[4096];
    const char *slash = strrchr(json_path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - json_path) : 1, slash ? json_path : ".");
    json_t *jnodes = json_object_get(json_object_get(root, "modelTopology"), "node");
    if (!g) st = cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory");
    else if (!json_is_array(jnodes))
        st = cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': not a TF.js graph model (no modelTopology.node)",
                       json_path);
    if (!st) st = load_nodes(ctx, json_path, jnodes, g, &tab);
    if (!st) st = link_inputs(ctx, json_path, jnodes, g, &tab);
    if (!st) st = load_weights(ctx, json_path, dir, json_object_get(root, "weightsManifest"), g, &tab);
    if (!st) st = find_io(ctx, json_path, root, g, &tab);
    if (!st) st = input_shape(ctx, json_path, jnodes, g);
    if (!st) st = sort_and_fold(ctx, json_path, g);
    free(tab.slot);
    json_decref(root);
    if (st) {
        cdx_graph_free(g);
        return st;
    }
    set_last_use(g);
    if (fuse_bias(g)) {
        cdx_graph_free(g);
        return cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory");
    }
    *out = g;
    return 0;
}

void cdx_graph_free(struct cdx_graph *g)
{
    if (!g) return;
    for (size_t i = 0; i < g->n_nodes; i++) {
        free(g->nodes[i].name);
        if (g->nodes[i].conv) free(g->nodes[i].conv->w_own);
        free(g->nodes[i].conv);
    }
    for (size_t v = 0; v < g->n_vals && g->vals; v++) cdx_gt_release(&g->vals[v]);
    for (int o = 0; o < g->n_outputs; o++) free(g->output_names[o]);
    if (g->map) munmap(g->map, g->map_len);
    free(g->wbuf);
    free(g->nodes);
    free(g->order);
    free(g->vals);
    free(g->is_const);
    free(g->last_use);
    free(g);
}

int cdx_graph_find(const struct cdx_graph *g, const char *name)
{
    for (int o = 0; o < g->n_outputs; o++)
        if (!strcmp(g->output_names[o], name)) return g->outputs[o];
    const char *colon = strchr(name, ':');
    size_t len = colon ? (size_t)(colon - name) : strlen(name);
    long k = colon ? strtol(colon + 1, NULL, 10) : 0;
    for (size_t i = 0; i < g->n_nodes; i++)
        if (strlen(g->nodes[i].name) == len && !memcmp(g->nodes[i].name, name, len) && k >= 0 &&
            k < g->nodes[i].n_out)
            return g->nodes[i].out + (int)k;
    return -1;
}

int cdx_graph_run(clipdex_ctx *ctx, struct cdx_graph *g, const float *input, const int64_t *dim, int rank)
{
    if (rank != g->in_rank) return cdx_error(ctx, CLIPDEX_E_ARG, "graph input: rank %d, expected %d", rank, g->in_rank);
    for (int d = 0; d < rank; d++)
        if (g->in_dim[d] >= 0 && g->in_dim[d] != dim[d])
            return cdx_error(ctx, CLIPDEX_E_ARG, "graph input: dim %d is %lld, expected %lld", d, (long long)dim[d],
                             (long long)g->in_dim[d]);
    for (size_t v = 0; v < g->n_vals; v++)
        if (!g->is_const[v]) cdx_gt_release(&g->vals[v]);
    struct cdx_gtensor *in = &g->vals[g->input];
    if (cdx_gt_alloc(in, CDX_G_F32, rank, dim)) return cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory");
    memcpy(in->data, input, in->n * sizeof(float));
    for (size_t p = 0; p < g->n_order; p++) {
        const struct cdx_gnode *nd = &g->nodes[g->order[p]];
        int st = cdx_gop_run(ctx, g, nd);
        if (st) return st;
        for (int j = 0; j < nd->n_in; j++) {
            int v = nd->in[j];
            if (g->last_use[v] == (int)p && !g->is_const[v]) cdx_gt_release(&g->vals[v]);
        }
    }
    return 0;
}
