/* SPDX-License-Identifier: MIT */
/* test_peer_limits.c — peer keys, connections per key, token buckets.
 *
 * ctest-labels: tsan
 */
#include "testutil.h"

#include "peer_limits.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static ss_addr peer(const char *text)
{
    ss_addr a;
    ss_error err;
    if (ss_addr_parse(&a, text, SS_ADDR_NUMERIC, &err) != 0)
        fail_msg("%s", err.msg);
    return a;
}

static ss__peer_key key(const char *text, bool want_ip)
{
    ss_addr a = peer(text);
    ss__peer_key k;
    assert_int_equal(ss__peer_key_of(&a, &k), want_ip);
    return k;
}

static bool same(ss__peer_key a, ss__peer_key b)
{
    return memcmp(a.b, b.b, sizeof a.b) == 0;
}

static void keys(void **state)
{
    (void)state;
    /* IPv4 by address, port ignored */
    assert_true(same(key("10.0.0.1:1", true), key("10.0.0.1:2", true)));
    assert_false(same(key("10.0.0.1:1", true), key("10.0.0.2:1", true)));
    /* IPv6 by /64 */
    assert_true(same(key("[2001:db8:1:2::1]:1", true), key("[2001:db8:1:2:ffff::9]:1", true)));
    assert_false(same(key("[2001:db8:1:2::1]:1", true), key("[2001:db8:1:3::1]:1", true)));
    assert_false(same(key("[::1]:1", true), key("[2001:db8::1]:1", true)));
    /* mapped IPv4 is the IPv4 key; IPv4 and IPv6 keys never meet */
    assert_true(same(key("[::ffff:10.0.0.1]:1", true), key("10.0.0.1:1", true)));
    assert_false(same(key("[::ffff:10.0.0.2]:1", true), key("10.0.0.1:1", true)));
    assert_false(same(key("0.0.0.0:1", true), key("[::]:1", true)));
    assert_int_not_equal(key("10.0.0.1:1", true).b[0], key("[::1]:1", true).b[0]);

    /* unix: by path, whether or not the length counts the NUL */
    ss__peer_key p1 = key("unix:/tmp/a.sock", false);
    ss_addr a = peer("unix:/tmp/a.sock");
    a.len--; /* without the NUL */
    ss__peer_key p2;
    assert_false(ss__peer_key_of(&a, &p2));
    assert_true(same(p1, p2));
    assert_false(same(p1, key("unix:/tmp/b.sock", false)));
    assert_false(same(p1, key("unix:@/tmp/a.sock", false)));
    assert_true(same(key("unix:@x", false), key("unix:@x", false)));
    assert_false(same(key("unix:@x", false), key("unix:@y", false)));
    assert_int_not_equal(p1.b[0], key("10.0.0.1:1", true).b[0]);

    /* every unnamed unix peer is one key */
    ss_addr u1, u2;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_int_equal(ss_addr_from_sockaddr(&u1, SS_ADDR_UNIX, (struct sockaddr *)&sa, 0), 0);
    assert_int_equal(
        ss_addr_from_sockaddr(&u2, SS_ADDR_UNIXGRAM, (struct sockaddr *)&sa, sizeof(sa_family_t)),
        0);
    ss__peer_key k1, k2;
    assert_false(ss__peer_key_of(&u1, &k1));
    assert_false(ss__peer_key_of(&u2, &k2));
    assert_true(same(k1, k2));
    assert_false(same(k1, p1));
}

static void count_limits(void **state)
{
    (void)state;
    ss__peer_count *c;
    assert_int_equal(ss__peer_count_new(&c, 0), -EINVAL);
    assert_null(c);
    assert_int_equal(ss__peer_count_new(&c, -1), -EINVAL);
    assert_int_equal(ss__peer_count_new(&c, 3), 0);

    ss__peer_key a = key("10.0.0.1:1", true), b = key("[2001:db8::1]:1", true);
    ss__peer_key b2 = key("[2001:db8::2]:1", true); /* same /64 as b */
    assert_int_equal(ss__peer_count_of(c, &a), 0);
    for (int i = 0; i < 3; i++)
        assert_true(ss__peer_count_acquire(c, &a));
    assert_false(ss__peer_count_acquire(c, &a));
    assert_int_equal(ss__peer_count_of(c, &a), 3);

    /* others are counted on their own; one /64 is one client */
    assert_true(ss__peer_count_acquire(c, &b));
    assert_true(ss__peer_count_acquire(c, &b2));
    assert_true(ss__peer_count_acquire(c, &b));
    assert_false(ss__peer_count_acquire(c, &b2));
    assert_int_equal(ss__peer_count_of(c, &b), 3);

    ss__peer_count_release(c, &a);
    assert_int_equal(ss__peer_count_of(c, &a), 2);
    assert_true(ss__peer_count_acquire(c, &a));
    assert_false(ss__peer_count_acquire(c, &a));

    /* at zero the entry is gone; a release without an acquire does not
     * make room for more than max_per_key */
    for (int i = 0; i < 3; i++)
        ss__peer_count_release(c, &a);
    assert_int_equal(ss__peer_count_of(c, &a), 0);
    ss__peer_count_release(c, &a);
    assert_int_equal(ss__peer_count_of(c, &a), 0);
    for (int i = 0; i < 3; i++)
        assert_true(ss__peer_count_acquire(c, &a));
    assert_false(ss__peer_count_acquire(c, &a));

    ss__peer_count_free(c); /* with entries left: freed too (ASan) */
    ss__peer_count_free(NULL);
}

static void count_many_keys(void **state)
{
    (void)state;
    ss__peer_count *c;
    assert_int_equal(ss__peer_count_new(&c, 2), 0);
    enum { N = 20000 };
    char text[64];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            snprintf(text, sizeof text, "10.%d.%d.%d:1", i >> 16, (i >> 8) & 255, i & 255);
            ss__peer_key k = key(text, true);
            assert_true(ss__peer_count_acquire(c, &k));
            assert_true(ss__peer_count_acquire(c, &k));
            assert_false(ss__peer_count_acquire(c, &k));
        }
        for (int i = 0; i < N; i++) {
            snprintf(text, sizeof text, "10.%d.%d.%d:1", i >> 16, (i >> 8) & 255, i & 255);
            ss__peer_key k = key(text, true);
            assert_int_equal(ss__peer_count_of(c, &k), 2);
            ss__peer_count_release(c, &k);
            ss__peer_count_release(c, &k);
            assert_int_equal(ss__peer_count_of(c, &k), 0);
        }
    }
    ss__peer_count_free(c);
}

/* ---- threads ---------------------------------------------------------------- */

enum { THREADS = 8, ROUNDS = 20000, HOT_MAX = 3 };

typedef struct hammer {
    ss__peer_count *c;
    ss__peer_key hot;    /* every thread wants it: never more than HOT_MAX */
    atomic_int holders;  /* of hot, right now */
    atomic_int too_many; /* times holders went past HOT_MAX */
    ss__peer_key own[THREADS];
    ss__rate *r;
} hammer;

typedef struct hammer_arg {
    hammer *h;
    int id;
} hammer_arg;

static void *hammer_main(void *p)
{
    hammer_arg *arg = p;
    hammer *h = arg->h;
    for (int i = 0; i < ROUNDS; i++) {
        if (ss__peer_count_acquire(h->c, &h->hot)) {
            if (atomic_fetch_add(&h->holders, 1) + 1 > HOT_MAX)
                atomic_fetch_add(&h->too_many, 1);
            atomic_fetch_sub(&h->holders, 1);
            ss__peer_count_release(h->c, &h->hot);
        }
        /* its own key: never refused, since nobody else uses it */
        if (!ss__peer_count_acquire(h->c, &h->own[arg->id]))
            atomic_fetch_add(&h->too_many, 1);
        else
            ss__peer_count_release(h->c, &h->own[arg->id]);
        (void)ss__rate_take(h->r, &h->own[i % THREADS], i / 16);
    }
    return NULL;
}

static void threads_hammer(void **state)
{
    (void)state;
    static hammer h;
    assert_int_equal(ss__peer_count_new(&h.c, HOT_MAX), 0);
    assert_int_equal(ss__rate_new(&h.r, 100, 4), 0);
    h.hot = key("192.0.2.1:1", true);
    char text[64];
    for (int i = 0; i < THREADS; i++) {
        snprintf(text, sizeof text, "[2001:db8:%d::1]:1", i + 1);
        h.own[i] = key(text, true);
    }
    pthread_t t[THREADS];
    hammer_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (hammer_arg){&h, i};
        assert_int_equal(pthread_create(&t[i], NULL, hammer_main, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&h.too_many), 0);
    assert_int_equal(ss__peer_count_of(h.c, &h.hot), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(ss__peer_count_of(h.c, &h.own[i]), 0);
    ss__peer_count_free(h.c);
    ss__rate_free(h.r);
}

/* ---- token buckets ---------------------------------------------------------- */

static void rate_burst_and_refill(void **state)
{
    (void)state;
    ss__rate *r;
    assert_int_equal(ss__rate_new(&r, 0, 10), -EINVAL);
    assert_null(r);
    assert_int_equal(ss__rate_new(&r, 5, 0), -EINVAL);
    assert_int_equal(ss__rate_new(&r, 5, 10), 0);
    ss__peer_key a = key("10.0.0.1:1", true), b = key("10.0.0.2:1", true);

    int64_t t0 = 1000000;
    /* burst = rate, then refused */
    for (int i = 0; i < 5; i++)
        assert_true(ss__rate_take(r, &a, t0));
    assert_false(ss__rate_take(r, &a, t0));
    assert_false(ss__rate_take(r, &a, t0 + 100)); /* half a token */
    assert_true(ss__rate_take(r, &a, t0 + 200));  /* 5/s: one each 200 ms */
    assert_false(ss__rate_take(r, &a, t0 + 200));
    assert_false(ss__rate_take(r, &a, t0 + 399));
    assert_true(ss__rate_take(r, &a, t0 + 400)); /* the 199 ms of before count */

    /* another key has its own bucket */
    for (int i = 0; i < 5; i++)
        assert_true(ss__rate_take(r, &b, t0 + 400));
    assert_false(ss__rate_take(r, &b, t0 + 400));

    /* a long idle time refills to the burst, no more */
    int64_t t1 = t0 + 3600 * 1000;
    for (int i = 0; i < 5; i++)
        assert_true(ss__rate_take(r, &a, t1));
    assert_false(ss__rate_take(r, &a, t1));

    /* a clock that goes back gives nothing */
    assert_false(ss__rate_take(r, &a, t1 - 5000));
    assert_false(ss__rate_take(r, &a, t1 + 100));
    assert_true(ss__rate_take(r, &a, t1 + 200));
    ss__rate_free(r);
    ss__rate_free(NULL);

    /* a high rate: whole tokens per millisecond */
    assert_int_equal(ss__rate_new(&r, 4000000000u, 10), 0);
    int n = 0;
    while (ss__rate_take(r, &a, 0) && n < 5)
        n++;
    assert_int_equal(n, 5);
    ss__rate_free(r);
}

static void rate_reuses_the_idlest_bucket(void **state)
{
    (void)state;
    ss__rate *r;
    assert_int_equal(ss__rate_new(&r, 2, 2), 0);
    ss__peer_key a = key("10.0.0.1:1", true), b = key("10.0.0.2:1", true);
    ss__peer_key c = key("10.0.0.3:1", true);

    /* a then b spend their bursts; then a is used again (refused, but
     * seen): b is the idlest */
    assert_true(ss__rate_take(r, &a, 0));
    assert_true(ss__rate_take(r, &a, 0));
    assert_true(ss__rate_take(r, &b, 1));
    assert_true(ss__rate_take(r, &b, 1));
    assert_false(ss__rate_take(r, &a, 2));
    /* c needs a bucket: b's goes */
    assert_true(ss__rate_take(r, &c, 3));
    assert_false(ss__rate_take(r, &a, 4)); /* a was kept, still empty */
    /* b is new again (fresh burst), in c's bucket: c is idler than a */
    assert_true(ss__rate_take(r, &b, 5));
    assert_true(ss__rate_take(r, &b, 5));
    assert_false(ss__rate_take(r, &b, 5));
    assert_false(ss__rate_take(r, &a, 6)); /* a kept again */
    /* c is new again, in b's bucket */
    assert_true(ss__rate_take(r, &c, 6));
    assert_true(ss__rate_take(r, &c, 6));
    assert_false(ss__rate_take(r, &c, 6));
    assert_false(ss__rate_take(r, &a, 7));
    ss__rate_free(r);

    /* many sources through a small table: always bounded, each new one
     * gets its burst */
    assert_int_equal(ss__rate_new(&r, 1, 64), 0);
    char text[64];
    for (int i = 0; i < 10000; i++) {
        snprintf(text, sizeof text, "[2001:db8:%x:%x::1]:1", i >> 8, i & 255);
        ss__peer_key k = key(text, true);
        assert_true(ss__rate_take(r, &k, 7));
        assert_false(ss__rate_take(r, &k, 7));
    }
    ss__rate_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keys),
        cmocka_unit_test(count_limits),
        cmocka_unit_test(count_many_keys),
        cmocka_unit_test(threads_hammer),
        cmocka_unit_test(rate_burst_and_refill),
        cmocka_unit_test(rate_reuses_the_idlest_bucket),
    };
    tu_alarm(100);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
