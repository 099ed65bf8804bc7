/* SPDX-License-Identifier: MIT */
/* test_loop.c — the event loop alone: timers, stop, wake-ups and posted work
 * from other threads.
 * ctest-labels: tsan
 */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

typedef struct record {
    int order[16];
    int n;
    ss_loop *loop;
} record;

typedef struct tagged {
    ss_timer t;
    int tag;
    record *rec;
} tagged;

static void note_fire(ss_timer *t)
{
    tagged *x = (tagged *)t;
    x->rec->order[x->rec->n++] = x->tag;
}

static void stop_loop(ss_timer *t)
{
    ss_loop_stop(t->data);
}

static void timers_fire_in_order(void **state)
{
    (void)state;
    ss_loop *loop;
    assert_int_equal(ss_loop_new(&loop, NULL), 0);
    record rec = {.loop = loop};
    /* started out of order; two share a due time and must keep start order */
    int delays[] = {30, 10, 20, 10, 0};
    int tags[] = {5, 2, 4, 3, 1};
    tagged ts[5];
    for (int i = 0; i < 5; i++) {
        ss_timer_init(&ts[i].t, note_fire, NULL);
        ts[i].tag = tags[i];
        ts[i].rec = &rec;
        assert_int_equal(ss_timer_start(loop, &ts[i].t, (uint64_t)delays[i], 0), 0);
    }
    ss_timer stopper;
    ss_timer_init(&stopper, stop_loop, loop);
    assert_int_equal(ss_timer_start(loop, &stopper, 60, 0), 0);
    int64_t t0 = ss_loop_now(loop);
    assert_int_equal(ss_loop_run(loop), 0);
    assert_true(ss_loop_now(loop) - t0 >= 60);
    assert_int_equal(rec.n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(rec.order[i], i + 1);
    for (int i = 0; i < 5; i++)
        assert_false(ss_timer_active(&ts[i].t));
    ss_loop_free(loop);
}

static void timers_can_be_cancelled_and_moved(void **state)
{
    (void)state;
    ss_loop *loop;
    assert_int_equal(ss_loop_new(&loop, NULL), 0);
    record rec = {.loop = loop};
    tagged a, b, c;
    ss_timer_init(&a.t, note_fire, NULL);
    ss_timer_init(&b.t, note_fire, NULL);
    ss_timer_init(&c.t, note_fire, NULL);
    a.tag = 1, b.tag = 2, c.tag = 3;
    a.rec = b.rec = c.rec = &rec;
    ss_timer_stop(&a.t); /* never started: harmless */
    assert_int_equal(ss_timer_start(loop, &a.t, 10, 0), 0);
    assert_int_equal(ss_timer_start(loop, &b.t, 20, 0), 0);
    assert_int_equal(ss_timer_start(loop, &c.t, 5, 0), 0);
    ss_timer_stop(&b.t);
    ss_timer_stop(&b.t);
    assert_int_equal(ss_timer_start(loop, &c.t, 30, 0), 0); /* moved after a */
    ss_timer stopper;
    ss_timer_init(&stopper, stop_loop, loop);
    assert_int_equal(ss_timer_start(loop, &stopper, 50, 0), 0);
    assert_int_equal(ss_loop_run(loop), 0);
    assert_int_equal(rec.n, 2);
    assert_int_equal(rec.order[0], 1);
    assert_int_equal(rec.order[1], 3);
    ss_loop_free(loop);
}

static void count_and_stop_at_3(ss_timer *t)
{
    record *rec = t->data;
    if (++rec->n == 3) {
        ss_timer_stop(t);
        ss_loop_stop(rec->loop);
    }
}

static void repeating_timer_repeats(void **state)
{
    (void)state;
    ss_loop *loop;
    assert_int_equal(ss_loop_new(&loop, NULL), 0);
    record rec = {.loop = loop};
    ss_timer t;
    ss_timer_init(&t, count_and_stop_at_3, &rec);
    assert_int_equal(ss_timer_start(loop, &t, 1, 5), 0);
    assert_int_equal(ss_loop_run(loop), 0);
    assert_int_equal(rec.n, 3);
    assert_false(ss_timer_active(&t));
    ss_loop_free(loop);
}

/* Many timers in random order come out sorted: the heap holds its shape. */
static void many_timers_come_out_sorted(void **state)
{
    (void)state;
    ss_loop *loop;
    assert_int_equal(ss_loop_new(&loop, NULL), 0);
    enum { N = 300 };
    static ss_timer ts[N];
    unsigned seed = 12345;
    for (int i = 0; i < N; i++) {
        ss_timer_init(&ts[i], note_fire, NULL);
        seed = seed * 1103515245u + 12345u;
        assert_int_equal(ss_timer_start(loop, &ts[i], 1000 + (seed >> 16) % 1000, 0), 0);
    }
    for (int i = 0; i < N; i += 3)
        ss_timer_stop(&ts[i]);
    int64_t last = -1;
    /* pop them through the public view: the next due never decreases */
    for (;;) {
        int64_t best = -1;
        int idx = -1;
        for (int i = 0; i < N; i++)
            if (ss_timer_active(&ts[i]) && (best < 0 || ts[i].due < best))
                best = ts[i].due, idx = i;
        if (idx < 0)
            break;
        assert_true(best >= last);
        last = best;
        ss_timer_stop(&ts[idx]);
    }
    ss_loop_free(loop);
}

typedef struct waker {
    ss_loop *loop;
    atomic_int posted;
    atomic_int ran;
} waker;

static void *stop_from_thread(void *arg)
{
    waker *w = arg;
    usleep(20000);
    ss_loop_stop(w->loop);
    return NULL;
}

static void stop_from_another_thread_wakes_the_loop(void **state)
{
    (void)state;
    ss_loop *loop;
    assert_int_equal(ss_loop_new(&loop, NULL), 0);
    waker w = {.loop = loop};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, stop_from_thread, &w), 0);
    /* nothing else on the loop: only the eventfd can end this run */
    assert_int_equal(ss_loop_run(loop), 0);
    pthread_join(th, NULL);
    ss_loop_free(loop);
}

static void count_post(ss_loop *loop, void *arg)
{
    waker *w = arg;
    if (atomic_fetch_add(&w->ran, 1) + 1 == 1000)
        ss_loop_stop(loop);
}

static void *post_many(void *arg)
{
    waker *w = arg;
    for (int i = 0; i < 500; i++) {
        assert_int_equal(ss_loop_post(w->loop, count_post, w), 0);
        atomic_fetch_add(&w->posted, 1);
    }
    return NULL;
}

static void posts_from_threads_all_run_on_the_loop(void **state)
{
    (void)state;
    ss_loop *loop;
    assert_int_equal(ss_loop_new(&loop, NULL), 0);
    waker w = {.loop = loop};
    pthread_t a, b;
    assert_int_equal(pthread_create(&a, NULL, post_many, &w), 0);
    assert_int_equal(pthread_create(&b, NULL, post_many, &w), 0);
    assert_int_equal(ss_loop_run(loop), 0);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    assert_int_equal(atomic_load(&w.ran), 1000);
    ss_loop_free(loop);
}

static void stop_before_run_returns_at_once(void **state)
{
    (void)state;
    ss_loop *loop;
    assert_int_equal(ss_loop_new(&loop, NULL), 0);
    ss_loop_stop(loop);
    assert_int_equal(ss_loop_run(loop), 0);
    /* the stop was consumed: a timer can end the next run */
    ss_timer t;
    ss_timer_init(&t, stop_loop, loop);
    assert_int_equal(ss_timer_start(loop, &t, 5, 0), 0);
    assert_int_equal(ss_loop_run(loop), 0);
    ss_loop_free(loop);
}

static void free_leaks_no_descriptors(void **state)
{
    (void)state;
    int before = tu_count_fds();
    for (int i = 0; i < 20; i++) {
        ss_loop *loop;
        assert_int_equal(ss_loop_new(&loop, NULL), 0);
        assert_int_equal(ss_loop_post(loop, count_post, &(waker){0}), 0); /* dropped */
        ss_loop_free(loop);
    }
    ss_loop_free(NULL);
    assert_int_equal(tu_count_fds(), before);
}

/* Each backend asked for by name is the one the loop runs on, a ran loop
 * frees every descriptor it made (io_uring makes its ring at the first
 * turn), and the names parse back. */
static void backends_by_name(void **state)
{
    (void)state;
    const ss_backend kinds[] = {SS_BACKEND_EPOLL, SS_BACKEND_IO_URING};
    int before = tu_count_fds();
    for (size_t i = 0; i < 2; i++) {
        ss_loop *loop;
        ss_error err = {0};
        assert_int_equal(ss_loop_new_backend(&loop, kinds[i], &err), 0);
        assert_int_equal(ss_loop_backend(loop), kinds[i]);
        waker w = {0};
        assert_int_equal(ss_loop_post(loop, count_post, &w), 0);
        assert_int_equal(ss_loop_run_once(loop, 0), 0);
        assert_int_equal(atomic_load(&w.ran), 1);
        ss_loop_free(loop);
        assert_int_equal(tu_count_fds(), before);
        ss_backend b;
        assert_int_equal(ss_backend_parse(ss_backend_name(kinds[i]), &b), 0);
        assert_int_equal(b, kinds[i]);
    }
    ss_backend b;
    assert_int_equal(ss_backend_parse("auto", &b), 0);
    assert_int_equal(b, SS_BACKEND_AUTO);
    assert_int_equal(ss_backend_parse("kqueue", &b), SS_EUSAGE);
}

int main(void)
{
    tu_alarm(60);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(timers_fire_in_order),
        cmocka_unit_test(timers_can_be_cancelled_and_moved),
        cmocka_unit_test(repeating_timer_repeats),
        cmocka_unit_test(many_timers_come_out_sorted),
        cmocka_unit_test(stop_from_another_thread_wakes_the_loop),
        cmocka_unit_test(posts_from_threads_all_run_on_the_loop),
        cmocka_unit_test(stop_before_run_returns_at_once),
        cmocka_unit_test(free_leaks_no_descriptors),
        cmocka_unit_test(backends_by_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
