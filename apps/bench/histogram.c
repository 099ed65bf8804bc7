/* SPDX-License-Identifier: MIT */
/* histogram.c — log-linear latency histogram; see histogram.h for the layout. */
#include "bench/histogram.h"

#include <math.h>
#include <string.h>

void bench_hist_reset(bench_hist *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

unsigned bench_hist_index(uint64_t v)
{
    if (v < 2 * BENCH_HIST_HALF)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    if (msb > BENCH_HIST_MAX_MSB)
        return BENCH_HIST_BUCKETS - 1; /* saturate: beyond any sane latency */
    unsigned shift = msb - BENCH_HIST_SUB_BITS; /* >= 1 */
    unsigned sub = (unsigned)(v >> shift);      /* in [HALF, 2*HALF) */
    return (shift + 1) * BENCH_HIST_HALF + (sub - BENCH_HIST_HALF);
}

uint64_t bench_hist_bucket_high(unsigned index)
{
    if (index < 2 * BENCH_HIST_HALF)
        return index;
    unsigned shift = index / BENCH_HIST_HALF - 1;
    uint64_t sub = BENCH_HIST_HALF + index % BENCH_HIST_HALF;
    return ((sub + 1) << shift) - 1;
}

void bench_hist_record(bench_hist *h, uint64_t v)
{
    h->counts[bench_hist_index(v)]++;
    h->count++;
    h->sum += (double)v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

uint64_t bench_hist_percentile(const bench_hist *h, double percentile)
{
    if (h->count == 0)
        return 0;
    if (percentile >= 100.0)
        return h->max;
    /* The rank of the sample we want, 1-based, as HdrHistogram counts it. */
    uint64_t rank = (uint64_t)ceil(percentile / 100.0 * (double)h->count);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t high = bench_hist_bucket_high(i);
            /* Never report beyond what was really seen. */
            return high > h->max ? h->max : high < h->min ? h->min : high;
        }
    }
    return h->max;
}

double bench_hist_mean(const bench_hist *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}
