/* hist - see hist.h */
#include "hist.h"

/* Values below 2^(SUB_BITS+1) have a bucket each; above, bucket
 * (shift+1)*2^SUB_BITS + the SUB_BITS bits below the leading one, where
 * shift is how far the value must move right to be < 2^(SUB_BITS+1). */
static unsigned bucket_of(uint64_t v)
{
    if (v < (2u << HIST_SUB_BITS))
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - HIST_SUB_BITS;
    if (shift > HIST_MAX_SHIFT)
        return HIST_BUCKETS - 1;
    return ((shift + 1) << HIST_SUB_BITS) + (unsigned)((v >> shift) - (1u << HIST_SUB_BITS));
}

/* The middle of bucket i's range. */
static uint64_t value_of(unsigned i)
{
    if (i < (2u << HIST_SUB_BITS))
        return i;
    unsigned shift = (i >> HIST_SUB_BITS) - 1;
    uint64_t sub = (i & ((1u << HIST_SUB_BITS) - 1)) + (1u << HIST_SUB_BITS);
    return (sub << shift) + ((1ull << shift) >> 1);
}

void hist_add(struct hist *h, uint64_t ns)
{
    h->b[bucket_of(ns)]++;
    h->count++;
    h->sum += ns;
    if (ns > h->max)
        h->max = ns;
}

void hist_merge(struct hist *into, const struct hist *from)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        into->b[i] += from->b[i];
    into->count += from->count;
    into->sum += from->sum;
    if (from->max > into->max)
        into->max = from->max;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
    if (!h->count)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.5);
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t v = value_of(i);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}
