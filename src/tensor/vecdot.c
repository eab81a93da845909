/*
 * vecdot.c - scalar references of the vector-search kernels (vecdot.h):
 * plain loops in dimension order. The ISA files must give the same int8 and
 * 4-bit sums exactly; tests/test_vecscan.c checks them on odd shapes.
 */
#include "tensor/vecdot.h"

void cdx_vec_dot_ref(const float *m, size_t rows, size_t dim, const float *q, float *out)
{
    for (size_t r = 0; r < rows; r++) {
        const float *x = m + r * dim;
        float s = 0;
        for (size_t i = 0; i < dim; i++) s += x[i] * q[i];
        out[r] = s;
    }
}

void cdx_vec_dot8_ref(const int8_t *c, size_t rows, size_t dim, const int8_t *p, int32_t *out)
{
    for (size_t r = 0; r < rows; r++) {
        const int8_t *a = c + r * dim;
        int32_t s = 0;
        for (size_t i = 0; i < dim; i++) s += (int32_t)a[i] * p[i];
        out[r] = s;
    }
}

void cdx_vec_dot4_ref(const uint8_t *c, size_t rows, size_t rb, const int8_t *p, int32_t *out)
{
    for (size_t r = 0; r < rows; r++) {
        const uint8_t *row = c + r * rb;
        int32_t s = 0;
        for (size_t b = 0; b < 2 * rb; b += 64)
            for (size_t j = 0; j < 32; j++) {
                unsigned v = row[b / 2 + j];
                s += (int32_t)(v & 15) * p[b + j] + (int32_t)(v >> 4) * p[b + 32 + j];
            }
        out[r] = s;
    }
}
