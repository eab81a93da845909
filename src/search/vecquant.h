/*
 * vecquant.h - where dimension i of a 4-bit row lives (vecquant.c): byte
 * cdx_q4_byte(i), shifted by cdx_q4_shift(i) (0 or 4).
 */
#ifndef CDX_VECQUANT_H
#define CDX_VECQUANT_H

#include <stddef.h>

#include "core/core.h"

CDX_INTERNAL size_t cdx_q4_byte(size_t i);
CDX_INTERNAL unsigned cdx_q4_shift(size_t i);

#endif
