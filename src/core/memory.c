/*
 * memory.c — aligned allocation and the offset planner of graph memory.
 * Every buffer the kernels touch is 64-byte aligned so vector loads never
 * split a cache line.  The planner packs buffers with known lifetimes into
 * one arena (graph.c decides the lifetimes); under AddressSanitizer dead
 * buffers are poisoned so a read after reuse is reported, not silently wrong.
 */
#include "internal.h"

#if defined(__SANITIZE_ADDRESS__)
#define IB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define IB_ASAN 1
#endif
#endif
#ifdef IB_ASAN
#include <sanitizer/asan_interface.h>
#endif

void *ib__aligned_alloc(size_t bytes)
{
    if (bytes == 0)
        bytes = IB_ALIGN;
    size_t rounded = (bytes + IB_ALIGN - 1) / IB_ALIGN * IB_ALIGN;
    return aligned_alloc(IB_ALIGN, rounded);
}

void ib__aligned_free(void *p) { free(p); }

void ib__poison(const void *p, size_t bytes)
{
#ifdef IB_ASAN
    if (p && bytes)
        __asan_poison_memory_region(p, bytes);
#else
    (void)p;
    (void)bytes;
#endif
}

void ib__unpoison(const void *p, size_t bytes)
{
#ifdef IB_ASAN
    if (p && bytes)
        __asan_unpoison_memory_region(p, bytes);
#else
    (void)p;
    (void)bytes;
#endif
}

static size_t round_up(size_t x) { return (x + IB_ALIGN - 1) / IB_ALIGN * IB_ALIGN; }

typedef struct plan_key {
    size_t bytes;
    int lo, index;
} plan_key;

/* Largest first; ties by earlier start, then by index, so the plan is the
 * same on every run (qsort is not stable). */
static int by_size(const void *a, const void *b)
{
    const plan_key *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes > y->bytes ? -1 : 1;
    if (x->lo != y->lo)
        return x->lo < y->lo ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

size_t ib__plan_offsets(ib__plan_item *items, int n)
{
    if (n <= 0)
        return 0;
    plan_key *order = malloc((size_t)n * sizeof *order);
    int *placed = malloc((size_t)n * sizeof *placed); /* placed items, by offset */
    if (!order || !placed) {
        /* no memory to plan: lay everything end to end */
        free(order);
        free(placed);
        size_t at = 0;
        for (int k = 0; k < n; k++) {
            items[k].offset = at;
            at += round_up(items[k].bytes);
        }
        return at;
    }
    for (int k = 0; k < n; k++)
        order[k] = (plan_key){items[k].bytes, items[k].lo, k};
    qsort(order, (size_t)n, sizeof *order, by_size);
    int n_placed = 0;
    size_t total = 0;
    for (int o = 0; o < n; o++) {
        ib__plan_item *it = &items[order[o].index];
        size_t need = round_up(it->bytes), end = 0, best = SIZE_MAX, best_gap = SIZE_MAX;
        for (int p = 0; p < n_placed; p++) {
            const ib__plan_item *q = &items[placed[p]];
            if (q->lo > it->hi || it->lo > q->hi)
                continue; /* never alive together */
            if (q->offset >= end && q->offset - end >= need && q->offset - end < best_gap) {
                best = end;
                best_gap = q->offset - end;
            }
            size_t q_end = q->offset + round_up(q->bytes);
            if (q_end > end)
                end = q_end;
        }
        it->offset = best != SIZE_MAX ? best : end;
        if (it->offset + need > total)
            total = it->offset + need;
        int p = n_placed++;
        while (p > 0 && items[placed[p - 1]].offset > it->offset) {
            placed[p] = placed[p - 1];
            p--;
        }
        placed[p] = order[o].index;
    }
    free(order);
    free(placed);
    return total;
}
