/*
 * hist - a log-linear latency histogram (HDR-like): fixed memory, values in
 * nanoseconds, relative error below 1% (128 sub-buckets per power of two).
 */
#ifndef SY_HIST_H
#define SY_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 7
#define HIST_MAX_SHIFT 38  /* values up to ~2^45 ns (about 10 hours) */
#define HIST_BUCKETS ((HIST_MAX_SHIFT + 2) << HIST_SUB_BITS)

struct hist {
    uint64_t count, max, sum;
    uint64_t b[HIST_BUCKETS];
};

void hist_add(struct hist *h, uint64_t ns);
void hist_merge(struct hist *into, const struct hist *from);
/* The value at quantile q (0..1), in ns; 0 when empty. */
uint64_t hist_quantile(const struct hist *h, double q);

#endif
