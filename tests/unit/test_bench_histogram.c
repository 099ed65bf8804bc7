/* SPDX-License-Identifier: MIT */
/* test_bench_histogram.c — the load generator's log-linear histogram. */
#include "testutil.h"

#include "bench/histogram.h"

#include <stdlib.h>

/* Every value lands in a bucket whose range holds it, and the range is no
 * wider than 1/128 of the value (the promised precision). */
static void buckets_hold_their_values(void **state)
{
    (void)state;
    uint64_t samples[] = {0, 1, 255, 256, 257, 511, 512, 1000, 35000, 999999, 1u << 30,
                          (1ull << 40) + 12345};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        uint64_t v = samples[i];
        unsigned idx = bench_hist_index(v);
        assert_true(idx < BENCH_HIST_BUCKETS);
        uint64_t high = bench_hist_bucket_high(idx);
        assert_true(high >= v);
        assert_true(high - v <= v / 128);
        if (idx > 0)
            assert_true(bench_hist_bucket_high(idx - 1) < v);
    }
}

static void indexes_are_monotonic_and_contiguous(void **state)
{
    (void)state;
    unsigned prev = 0;
    for (uint64_t v = 1; v < (1u << 20); v++) {
        unsigned idx = bench_hist_index(v);
        assert_true(idx == prev || idx == prev + 1);
        prev = idx;
    }
}

static void huge_values_saturate(void **state)
{
    (void)state;
    assert_int_equal(bench_hist_index(UINT64_MAX), BENCH_HIST_BUCKETS - 1);
}

static void percentiles_of_a_uniform_spread(void **state)
{
    (void)state;
    bench_hist *h = malloc(sizeof *h);
    assert_non_null(h);
    bench_hist_reset(h);
    assert_int_equal(bench_hist_percentile(h, 50), 0);
    for (uint64_t v = 1; v <= 100000; v++)
        bench_hist_record(h, v * 1000); /* 1 us .. 100 ms */
    assert_int_equal(h->count, 100000);
    assert_int_equal(h->min, 1000);
    assert_int_equal(h->max, 100000000);
    double p50 = (double)bench_hist_percentile(h, 50);
    double p99 = (double)bench_hist_percentile(h, 99);
    double p999 = (double)bench_hist_percentile(h, 99.9);
    assert_true(p50 >= 50000000.0 && p50 <= 50000000.0 * 1.008);
    assert_true(p99 >= 99000000.0 && p99 <= 99000000.0 * 1.008);
    assert_true(p999 >= 99900000.0 && p999 <= 100000000.0);
    assert_int_equal(bench_hist_percentile(h, 100), 100000000);
    assert_true(bench_hist_mean(h) > 50000000.0 && bench_hist_mean(h) < 50001000.0);
    free(h);
}

static void one_sample_is_every_percentile(void **state)
{
    (void)state;
    bench_hist *h = malloc(sizeof *h);
    assert_non_null(h);
    bench_hist_reset(h);
    bench_hist_record(h, 31234);
    assert_int_equal(bench_hist_percentile(h, 0), 31234);
    assert_int_equal(bench_hist_percentile(h, 50), 31234);
    assert_int_equal(bench_hist_percentile(h, 99.9), 31234);
    free(h);
}

int main(void)
{
    tu_alarm(30);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buckets_hold_their_values),
        cmocka_unit_test(indexes_are_monotonic_and_contiguous),
        cmocka_unit_test(huge_values_saturate),
        cmocka_unit_test(percentiles_of_a_uniform_spread),
        cmocka_unit_test(one_sample_is_every_percentile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
