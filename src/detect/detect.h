/*
 * detect.h - internals of the detector (detect.c): the loaded graph, where
 * its heads are, the letterbox that maps image pixels to the model's input
 * and back. Exposed for the tests, which compare each stage with TF.js.
 */
#ifndef CDX_DETECT_H
#define CDX_DETECT_H

#include "core/core.h"
#include "graph/graph.h"

#define CDX_DET_LEVELS 3

struct clipdex_detector {
    struct cdx_graph *g;
    int size;                       /* square input side (416) */
    int n_classes;                  /* 80 */
    int bins;                       /* distance bins per side (reg_max + 1 = 11) */
    int stride[CDX_DET_LEVELS];     /* 8, 16, 32 */
    int grid[CDX_DET_LEVELS];       /* cells per side: ceil(size / stride) */
    int cls_out[CDX_DET_LEVELS];    /* value ids of the heads: (1, grid^2, n_classes) */
    int reg_out[CDX_DET_LEVELS];    /*                        (1, grid^2, 4 bins) */
    float *input;                   /* (1, 3, size, size) */
};

/* Where the image went in the input: scaled to (nw, nh) at (px, py). */
struct cdx_letterbox {
    int nw, nh, px, py;
    uint32_t w, h;                  /* the original image */
};

/* Letterboxes `img` into det->input (BGR, normalized, NCHW). */
CDX_INTERNAL int cdx_detect_prepare(clipdex_ctx *ctx, clipdex_detector *det, const clipdex_image *img,
                                    struct cdx_letterbox *lb);
/* Runs the graph on det->input. The heads are then g->vals[cls_out[i]] ... */
CDX_INTERNAL int cdx_detect_heads(clipdex_ctx *ctx, clipdex_detector *det);

#endif
