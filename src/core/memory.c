/*
 * memory.c — aligned allocation.  Every buffer the kernels touch is 64-byte
 * aligned so vector loads never split a cache line.
 */
#include "internal.h"

void *ib__aligned_alloc(size_t bytes)
{
    if (bytes == 0)
        bytes = IB_ALIGN;
    size_t rounded = (bytes + IB_ALIGN - 1) / IB_ALIGN * IB_ALIGN;
    return aligned_alloc(IB_ALIGN, rounded);
}

void ib__aligned_free(void *p) { free(p); }
