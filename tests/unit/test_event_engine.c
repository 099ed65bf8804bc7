/* SPDX-License-Identifier: MIT */
/* test_event_engine.c — several loops on several threads sharing one
 * listener: echo under concurrent clients, the connection cap across loops,
 * drain (stop accepting, wait, then close), datagrams on shared loops.
 * ctest-labels: tsan
 */
#include "testutil.h"
#include "event_engine.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static atomic_int opened, closed_count, shutdown_closes;
static atomic_int loops_seen_mask;

static ss_loop *_Atomic loops[2];
static atomic_int per_loop[2];

static void on_open(ss_conn *c)
{
    atomic_fetch_add(&opened, 1);
    for (int i = 0; i < 2; i++)
        if (atomic_load(&loops[i]) == ss_conn_loop(c))
            atomic_fetch_add(&per_loop[i], 1);
}

static void on_data(ss_conn *c, const void *d, size_t n)
{
    (void)ss_conn_write(c, d, n);
}

static void on_close(ss_conn *c, int reason)
{
    (void)c;
    if (reason == SS_ESHUTDOWN)
        atomic_fetch_add(&shutdown_closes, 1);
    atomic_fetch_add(&closed_count, 1);
}

static void on_packet(ss_dgram *d, const void *data, size_t len, const ss_addr *from)
{
    (void)ss_dgram_send(d, from, data, len);
}

static const struct ss_event_handler echo = {
    .on_open = on_open, .on_data = on_data, .on_close = on_close, .on_packet = on_packet};

static void note_loop(ss_loop *loop, int index, void *arg)
{
    (void)loop;
    (void)arg;
    atomic_fetch_or(&loops_seen_mask, 1 << index);
}

static int reset(void **state)
{
    (void)state;
    atomic_store(&opened, 0);
    atomic_store(&closed_count, 0);
    atomic_store(&shutdown_closes, 0);
    atomic_store(&loops_seen_mask, 0);
    return 0;
}

static int inet_socket(int type, struct sockaddr_in *a)
{
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    *a = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)a, sizeof *a), 0);
    socklen_t len = sizeof *a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)a, &len), 0);
    if (type == SOCK_STREAM)
        assert_int_equal(listen(fd, 1024), 0);
    return fd;
}

static int dial(const struct sockaddr_in *a, int type)
{
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(connect(fd, (const struct sockaddr *)a, sizeof *a), 0);
    return fd;
}

static void ping(int fd, int i)
{
    char out[32], in[32];
    int n = snprintf(out, sizeof out, "msg %d", i);
    assert_int_equal(send(fd, out, (size_t)n, MSG_NOSIGNAL), n);
    int got = 0;
    while (got < n) {
        ssize_t r = recv(fd, in + got, (size_t)(n - got), 0);
        assert_true(r > 0);
        got += (int)r;
    }
    assert_memory_equal(in, out, (size_t)n);
}

typedef struct client_job {
    struct sockaddr_in addr;
    int rounds;
} client_job;

static void *client_thread(void *arg)
{
    client_job *j = arg;
    for (int c = 0; c < 10; c++) {
        int fd = dial(&j->addr, SOCK_STREAM);
        for (int i = 0; i < j->rounds; i++)
            ping(fd, i);
        close(fd);
    }
    return NULL;
}

static void many_clients_on_two_loops(void **state)
{
    (void)state;
    struct sockaddr_in a;
    int lfd = inet_socket(SOCK_STREAM, &a);
    ss__engine *e;
    ss__engine_opts o = {.workers = 2, .fd = lfd, .handler = &echo, .loop_init = note_loop};
    assert_int_equal(ss__engine_start(&e, &o, NULL), 0);
    assert_int_equal(ss__engine_workers(e), 2);
    client_job job = {.addr = a, .rounds = 20};
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, client_thread, &job), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_true(ss__engine_drain(e, ss__deadline(5)));
    assert_int_equal(atomic_load(&opened), 40);
    assert_int_equal(atomic_load(&closed_count), 40);
    assert_int_equal(atomic_load(&loops_seen_mask), 3); /* both loops ran */
    ss__engine_free(e);
    close(lfd);
}

/* Clients connecting one after another are spread over the loops, though
 * EPOLLEXCLUSIVE alone would wake the same loop for nearly all of them. */
static void connections_are_spread_over_the_loops(void **state)
{
    (void)state;
    struct sockaddr_in a;
    int lfd = inet_socket(SOCK_STREAM, &a);
    ss__engine *e;
    ss__engine_opts o = {.workers = 2, .fd = lfd, .handler = &echo};
    assert_int_equal(ss__engine_start(&e, &o, NULL), 0);
    atomic_store(&loops[0], ss__engine_loop(e, 0));
    atomic_store(&loops[1], ss__engine_loop(e, 1));
    atomic_store(&per_loop[0], 0);
    atomic_store(&per_loop[1], 0);
    enum { N = 40 };
    int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = dial(&a, SOCK_STREAM);
        ping(fds[i], i);
    }
    assert_int_equal(atomic_load(&per_loop[0]) + atomic_load(&per_loop[1]), N);
    assert_true(atomic_load(&per_loop[0]) >= N / 2 - 2);
    assert_true(atomic_load(&per_loop[1]) >= N / 2 - 2);
    for (int i = 0; i < N; i++)
        close(fds[i]);
    assert_true(ss__engine_drain(e, ss__deadline(5)));
    ss__engine_free(e);
    atomic_store(&loops[0], NULL);
    atomic_store(&loops[1], NULL);
    close(lfd);
}

static void drain_waits_then_abort_closes(void **state)
{
    (void)state;
    struct sockaddr_in a;
    int lfd = inet_socket(SOCK_STREAM, &a);
    ss__engine *e;
    ss__engine_opts o = {.workers = 2, .fd = lfd, .handler = &echo};
    assert_int_equal(ss__engine_start(&e, &o, NULL), 0);
    int c1 = dial(&a, SOCK_STREAM), c2 = dial(&a, SOCK_STREAM);
    ping(c1, 1);
    ping(c2, 2);
    /* c1 leaves during the drain, c2 stays past the deadline */
    int64_t t0 = ss__now_ms();
    close(c1);
    assert_false(ss__engine_drain(e, ss__deadline(0.3)));
    assert_true(ss__now_ms() - t0 >= 250);
    assert_int_equal(ss__engine_conns(e), 1);
    /* no longer accepting: a new client is not served */
    int c3 = dial(&a, SOCK_STREAM);
    assert_int_equal(send(c3, "x", 1, MSG_NOSIGNAL), 1);
    struct pollfd p = {.fd = c3, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 100), 0);
    /* c2 is still served during the drain */
    ping(c2, 3);
    ss__engine_abort(e, SS_ESHUTDOWN);
    assert_int_equal(ss__engine_conns(e), 0);
    assert_int_equal(atomic_load(&shutdown_closes), 1);
    char ch;
    assert_int_equal(recv(c2, &ch, 1, 0), 0);
    ss__engine_free(e);
    close(c2);
    close(c3);
    close(lfd);
}

static void held_engine_accepts_only_when_released(void **state)
{
    (void)state;
    struct sockaddr_in a;
    int lfd = inet_socket(SOCK_STREAM, &a);
    ss__engine *e;
    ss__engine_opts o = {.workers = 2, .fd = lfd, .handler = &echo, .held = true};
    assert_int_equal(ss__engine_start(&e, &o, NULL), 0);
    int fd = dial(&a, SOCK_STREAM);
    assert_int_equal(send(fd, "x", 1, MSG_NOSIGNAL), 1);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 100), 0);
    ss__engine_start_accepting(e);
    assert_int_equal(poll(&p, 1, 5000), 1);
    char ch;
    assert_int_equal(recv(fd, &ch, 1, 0), 1);
    ss__engine_stop_accepting(e);
    close(lfd); /* safe: no loop touches it any more */
    ping(fd, 7);
    close(fd);
    assert_true(ss__engine_drain(e, ss__deadline(5)));
    ss__engine_free(e);
}

static void cap_is_shared_by_the_loops(void **state)
{
    (void)state;
    struct sockaddr_in a;
    int lfd = inet_socket(SOCK_STREAM, &a);
    ss__engine *e;
    ss__engine_opts o = {.workers = 2, .fd = lfd, .handler = &echo, .max_conns = 3};
    assert_int_equal(ss__engine_start(&e, &o, NULL), 0);
    int fds[5];
    for (int i = 0; i < 5; i++) {
        fds[i] = dial(&a, SOCK_STREAM);
        assert_int_equal(send(fds[i], "x", 1, MSG_NOSIGNAL), 1);
    }
    int answered = 0;
    for (int round = 0; round < 40 && answered < 3; round++) {
        usleep(10000);
        answered = 0;
        for (int i = 0; i < 5; i++) {
            struct pollfd p = {.fd = fds[i], .events = POLLIN};
            answered += poll(&p, 1, 0) == 1;
        }
    }
    usleep(100000);
    answered = 0;
    for (int i = 0; i < 5; i++) {
        struct pollfd p = {.fd = fds[i], .events = POLLIN};
        answered += poll(&p, 1, 0) == 1;
    }
    assert_int_equal(answered, 3);
    assert_int_equal(ss__engine_conns(e), 3);
    for (int i = 0; i < 5; i++)
        close(fds[i]);
    assert_true(ss__engine_drain(e, ss__deadline(5)));
    ss__engine_free(e);
    close(lfd);
}

static void *udp_client(void *arg)
{
    const struct sockaddr_in *a = arg;
    int fd = dial(a, SOCK_DGRAM);
    for (int i = 0; i < 200; i++) {
        char out[16], in[16];
        int n = snprintf(out, sizeof out, "d%d", i);
        assert_int_equal(send(fd, out, (size_t)n, 0), n);
        assert_int_equal(recv(fd, in, sizeof in, 0), n);
        assert_memory_equal(in, out, (size_t)n);
    }
    close(fd);
    return NULL;
}

static void datagrams_on_shared_loops(void **state)
{
    (void)state;
    struct sockaddr_in a;
    int fd = inet_socket(SOCK_DGRAM, &a);
    ss__engine *e;
    ss__engine_opts o = {.workers = 2, .fd = fd, .handler = &echo};
    assert_int_equal(ss__engine_start(&e, &o, NULL), 0);
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&th[i], NULL, udp_client, &a), 0);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    ss__engine_stop_accepting(e);
    ss__engine_free(e);
    close(fd);
}

static void start_free_leaks_nothing(void **state)
{
    (void)state;
    struct sockaddr_in a;
    int lfd = inet_socket(SOCK_STREAM, &a);
    int before = tu_count_fds();
    for (int i = 0; i < 5; i++) {
        ss__engine *e;
        ss__engine_opts o = {.workers = 3, .fd = lfd, .handler = &echo};
        assert_int_equal(ss__engine_start(&e, &o, NULL), 0);
        ss__engine_free(e);
    }
    assert_int_equal(tu_count_fds(), before);
    close(lfd);
}

int main(void)
{
    tu_alarm(100);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(many_clients_on_two_loops, reset),
        cmocka_unit_test_setup(connections_are_spread_over_the_loops, reset),
        cmocka_unit_test_setup(drain_waits_then_abort_closes, reset),
        cmocka_unit_test_setup(held_engine_accepts_only_when_released, reset),
        cmocka_unit_test_setup(cap_is_shared_by_the_loops, reset),
        cmocka_unit_test_setup(datagrams_on_shared_loops, reset),
        cmocka_unit_test_setup(start_free_leaks_nothing, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
