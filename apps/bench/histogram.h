/* SPDX-License-Identifier: MIT */
/* histogram.h — a log-linear latency histogram (HdrHistogram's bucket layout).
 *
 * Values are nanoseconds. Below 256 every value has its own bucket; above,
 * each power of two is split into 128 equal sub-buckets, so any recorded value
 * is known to within 1/128 (< 0.8 %) whatever its size. Recording is an index
 * computation and an increment: no allocation, no floating point. */
#ifndef SS_BENCH_HISTOGRAM_H
#define SS_BENCH_HISTOGRAM_H

#include <stdint.h>

#define BENCH_HIST_SUB_BITS 7                            /* 128 sub-buckets */
#define BENCH_HIST_HALF (1u << BENCH_HIST_SUB_BITS)      /* 128 */
#define BENCH_HIST_MAX_MSB 45                            /* ~9.7 hours in ns */
#define BENCH_HIST_BUCKETS ((BENCH_HIST_MAX_MSB - BENCH_HIST_SUB_BITS + 2) * BENCH_HIST_HALF)

typedef struct bench_hist {
    uint64_t count;
    uint64_t min, max; /* exact */
    double sum;        /* for the mean */
    uint64_t counts[BENCH_HIST_BUCKETS];
} bench_hist;

void bench_hist_reset(bench_hist *h);
void bench_hist_record(bench_hist *h, uint64_t value_ns);
/* The value below which `percentile` (0..100) of the samples fall, reported as
 * the highest value of its bucket (as HdrHistogram does); 0 when empty. */
uint64_t bench_hist_percentile(const bench_hist *h, double percentile);
double bench_hist_mean(const bench_hist *h);

/* Bucket helpers, exposed for the unit test. */
unsigned bench_hist_index(uint64_t value);
uint64_t bench_hist_bucket_high(unsigned index);

#endif
