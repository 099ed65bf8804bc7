/* SPDX-License-Identifier: MIT */
/*
 * test_exec_relay.c — the relay of `sockserve exec` (apps/exec/relay.c) over
 * two socketpairs with the plain-descriptor transport: the test holds the
 * "client" end of one and the "program" end of the other, the relay runs on
 * a thread between them. Both directions, half-closes, large transfers
 * through small buffers, backpressure (a program that never reads, a peer
 * that never reads), resets, idle timeout, watched descriptors, deadlines,
 * and no spinning while idle.
 */
#include "testutil.h"

#include "exec/relay.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct rig {
    int client;  /* the test's end of the "connection" */
    int program; /* the test's end of the program's socketpair */
    ss_transport peer, prog;
    exec_relay r;
    pthread_t th;
    int rc;
    int64_t deadline;
    int fds_before;
} rig;

static void rig_open(rig *g, const exec_relay_opts *o)
{
    memset(g, 0, sizeof *g);
    g->fds_before = tu_count_fds();
    int a[2], b[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b), 0);
    g->client = a[0];
    g->program = b[0];
    assert_int_equal(ss_transport_fd_init(&g->peer, a[1]), 0);
    assert_int_equal(ss_transport_fd_init(&g->prog, b[1]), 0);
    assert_int_equal(exec_relay_init(&g->r, &g->peer, &g->prog, o), 0);
    g->deadline = -1;
}

static void *relay_main(void *arg)
{
    rig *g = arg;
    g->rc = exec_relay_run(&g->r, NULL, 0, g->deadline);
    return NULL;
}

static void rig_start(rig *g)
{
    assert_int_equal(pthread_create(&g->th, NULL, relay_main, g), 0);
}

static int rig_join(rig *g)
{
    assert_int_equal(pthread_join(g->th, NULL), 0);
    return g->rc;
}

static void rig_close(rig *g)
{
    exec_relay_free(&g->r);
    g->peer.ops->close(&g->peer);
    g->prog.ops->close(&g->prog);
    if (g->client >= 0)
        close(g->client);
    if (g->program >= 0)
        close(g->program);
    assert_int_equal(tu_count_fds(), g->fds_before);
}

static void send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

/* Everything until end of file (at most `max` bytes). */
static size_t recv_all(int fd, char *buf, size_t max)
{
    size_t got = 0;
    for (;;) {
        assert_true(got < max);
        ssize_t n = recv(fd, buf + got, max - got, 0);
        assert_true(n >= 0);
        if (n == 0)
            return got;
        got += (size_t)n;
    }
}

/* ---- a pattern writer/reader on threads, for the large transfers ------- */

static unsigned char pattern_byte(uint64_t i, unsigned seed)
{
    return (unsigned char)((i * 2654435761u + seed) >> 7);
}

typedef struct pump {
    int fd;
    uint64_t len;
    unsigned seed;
    bool shut; /* shutdown(SHUT_WR) at the end */
    uint64_t done;
    bool ok;
} pump;

static void *writer_main(void *arg)
{
    pump *w = arg;
    unsigned char chunk[7919]; /* a prime: chunks never line up with buffers */
    w->ok = true;
    while (w->done < w->len) {
        size_t n = sizeof chunk;
        if (n > w->len - w->done)
            n = (size_t)(w->len - w->done);
        for (size_t i = 0; i < n; i++)
            chunk[i] = pattern_byte(w->done + i, w->seed);
        const unsigned char *p = chunk;
        size_t left = n;
        while (left > 0) {
            ssize_t s = send(w->fd, p, left, MSG_NOSIGNAL);
            if (s <= 0) {
                w->ok = false;
                return NULL;
            }
            p += s;
            left -= (size_t)s;
        }
        w->done += n;
    }
    if (w->shut)
        shutdown(w->fd, SHUT_WR);
    return NULL;
}

static void *reader_main(void *arg)
{
    pump *rd = arg;
    unsigned char chunk[5003];
    rd->ok = true;
    for (;;) {
        ssize_t n = recv(rd->fd, chunk, sizeof chunk, 0);
        if (n < 0) {
            rd->ok = false;
            return NULL;
        }
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            if (chunk[i] != pattern_byte(rd->done + (uint64_t)i, rd->seed))
                rd->ok = false;
        rd->done += (uint64_t)n;
    }
    return NULL;
}

/* ---- tests ---------------------------------------------------------------- */

static void passes_both_ways_and_half_closes(void **state)
{
    (void)state;
    tu_alarm(20);
    rig g;
    rig_open(&g, NULL);
    rig_start(&g);
    send_all(g.client, "request", 7);
    shutdown(g.client, SHUT_WR);
    char buf[64];
    /* the program sees the request, then end of file: the half-close went on */
    assert_int_equal(recv_all(g.program, buf, sizeof buf), 7);
    assert_memory_equal(buf, "request", 7);
    send_all(g.program, "reply", 5);
    shutdown(g.program, SHUT_WR);
    assert_int_equal(recv_all(g.client, buf, sizeof buf), 5);
    assert_memory_equal(buf, "reply", 5);
    assert_int_equal(rig_join(&g), 0);
    assert_true(exec_relay_finished(&g.r));
    assert_int_equal(g.r.up.bytes, 7);
    assert_int_equal(g.r.down.bytes, 5);
    assert_int_equal(g.r.up.error, 0);
    assert_int_equal(g.r.down.error, 0);
    rig_close(&g);
}

static void half_close_keeps_the_other_direction_open(void **state)
{
    (void)state;
    tu_alarm(30);
    rig g;
    rig_open(&g, NULL);
    rig_start(&g);
    shutdown(g.client, SHUT_WR); /* the client says all at once: nothing */
    char buf[16];
    assert_int_equal(recv_all(g.program, buf, sizeof buf), 0);
    /* ... and still gets a long answer after that */
    pump w = {.fd = g.program, .len = 1 << 20, .seed = 3, .shut = true};
    pump rd = {.fd = g.client, .seed = 3};
    pthread_t wt;
    assert_int_equal(pthread_create(&wt, NULL, writer_main, &w), 0);
    reader_main(&rd);
    assert_int_equal(pthread_join(wt, NULL), 0);
    assert_true(w.ok);
    assert_true(rd.ok);
    assert_int_equal(rd.done, 1 << 20);
    assert_int_equal(rig_join(&g), 0);
    rig_close(&g);
}

static void large_transfers_both_ways_through_small_buffers(void **state)
{
    (void)state;
    tu_alarm(60);
    exec_relay_opts o = {.buffer = 4096};
    rig g;
    rig_open(&g, &o);
    rig_start(&g);
    const uint64_t len = 4u << 20;
    pump up_w = {.fd = g.client, .len = len, .seed = 1, .shut = true};
    pump up_r = {.fd = g.program, .seed = 1};
    pump down_w = {.fd = g.program, .len = len + 12345, .seed = 2, .shut = true};
    pump down_r = {.fd = g.client, .seed = 2};
    pthread_t t[4];
    assert_int_equal(pthread_create(&t[0], NULL, writer_main, &up_w), 0);
    assert_int_equal(pthread_create(&t[1], NULL, reader_main, &up_r), 0);
    assert_int_equal(pthread_create(&t[2], NULL, writer_main, &down_w), 0);
    assert_int_equal(pthread_create(&t[3], NULL, reader_main, &down_r), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_true(up_w.ok && up_r.ok && down_w.ok && down_r.ok);
    assert_int_equal(up_r.done, len);
    assert_int_equal(down_r.done, len + 12345);
    assert_int_equal(rig_join(&g), 0);
    assert_int_equal(g.r.up.bytes, len);
    assert_int_equal(g.r.down.bytes, len + 12345);
    rig_close(&g);
}

static void a_program_that_never_reads_bounds_the_input_and_output_still_flows(void **state)
{
    (void)state;
    tu_alarm(30);
    exec_relay_opts o = {.buffer = 4096};
    rig g;
    rig_open(&g, &o);
    rig_start(&g);
    /* flood from the client until the kernel says no more: everything the
     * relay took sits in bounded buffers, none of it in a growing queue */
    fcntl(g.client, F_SETFL, fcntl(g.client, F_GETFL) | O_NONBLOCK);
    static char junk[65536];
    uint64_t sent = 0;
    int quiet = 0;
    while (sent < (64u << 20) && quiet < 50) {
        ssize_t n = send(g.client, junk, sizeof junk, MSG_NOSIGNAL);
        if (n > 0) {
            sent += (uint64_t)n;
            quiet = 0;
            continue;
        }
        assert_int_equal(errno, EAGAIN);
        struct timespec ts = {0, 2 * 1000 * 1000}; /* let the relay try */
        nanosleep(&ts, NULL);
        quiet++;
    }
    assert_true(sent < (16u << 20)); /* socket buffers + 4 KiB, not 64 MiB */
    assert_true(g.r.up.len <= 4096);
    /* the other direction is not held up behind it */
    send_all(g.program, "still here", 10);
    char buf[16];
    struct pollfd p = {.fd = g.client, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 10000), 1);
    assert_int_equal(recv(g.client, buf, sizeof buf, 0), 10);
    assert_memory_equal(buf, "still here", 10);
    /* the program goes away without reading: the relay ends, the client
     * sees end of file */
    close(g.program);
    g.program = -1;
    fcntl(g.client, F_SETFL, fcntl(g.client, F_GETFL) & ~O_NONBLOCK);
    assert_int_equal(recv_all(g.client, buf, sizeof buf), 0);
    assert_int_equal(rig_join(&g), 0);
    assert_true(g.r.up.error == -EPIPE || g.r.up.error == -ECONNRESET);
    rig_close(&g);
}

static void a_peer_that_never_reads_times_out(void **state)
{
    (void)state;
    tu_alarm(30);
    exec_relay_opts o = {.buffer = 4096, .peer_write_timeout_ms = 200};
    rig g;
    rig_open(&g, &o);
    rig_start(&g);
    fcntl(g.program, F_SETFL, fcntl(g.program, F_GETFL) | O_NONBLOCK);
    static char junk[65536];
    for (int i = 0; i < 4096; i++) { /* at most 256 MiB; stops at the first EAGAIN */
        ssize_t n = send(g.program, junk, sizeof junk, MSG_NOSIGNAL);
        if (n < 0) {
            assert_int_equal(errno, EAGAIN);
            break;
        }
    }
    assert_int_equal(rig_join(&g), SS_ETIMEOUT);
    assert_string_equal(g.r.why, "peer not reading");
    rig_close(&g);
}

static void a_silent_connection_times_out_when_asked(void **state)
{
    (void)state;
    tu_alarm(20);
    exec_relay_opts o = {.idle_timeout_ms = 100};
    rig g;
    rig_open(&g, &o);
    rig_start(&g);
    assert_int_equal(rig_join(&g), SS_ETIMEOUT);
    assert_string_equal(g.r.why, "idle");
    rig_close(&g);
}

static void a_watched_descriptor_wakes_it_and_nothing_is_lost(void **state)
{
    (void)state;
    tu_alarm(20);
    rig g;
    rig_open(&g, NULL);
    send_all(g.client, "abc", 3);
    int ev = eventfd(1, EFD_CLOEXEC);
    assert_true(ev >= 0);
    struct pollfd w = {.fd = ev, .events = POLLIN};
    assert_int_equal(exec_relay_run(&g.r, &w, 1, -1), EXEC_RELAY_WATCH);
    assert_true(w.revents & POLLIN);
    close(ev);
    /* resumed, it finishes what it was doing */
    rig_start(&g);
    send_all(g.client, "def", 3);
    shutdown(g.client, SHUT_WR);
    char buf[16];
    assert_int_equal(recv_all(g.program, buf, sizeof buf), 6);
    assert_memory_equal(buf, "abcdef", 6);
    shutdown(g.program, SHUT_WR);
    assert_int_equal(recv_all(g.client, buf, sizeof buf), 0);
    assert_int_equal(rig_join(&g), 0);
    rig_close(&g);
}

static void a_deadline_returns_and_the_relay_goes_on(void **state)
{
    (void)state;
    tu_alarm(20);
    rig g;
    rig_open(&g, NULL);
    assert_int_equal(exec_relay_run(&g.r, NULL, 0, exec_relay_now_ms() + 50), EXEC_RELAY_DEADLINE);
    assert_false(exec_relay_finished(&g.r));
    rig_start(&g);
    shutdown(g.client, SHUT_WR);
    shutdown(g.program, SHUT_WR);
    assert_int_equal(rig_join(&g), 0);
    rig_close(&g);
}

static void pushed_bytes_go_first(void **state)
{
    (void)state;
    tu_alarm(20);
    exec_relay_opts o = {.buffer = 16};
    rig g;
    rig_open(&g, &o);
    assert_int_equal(exec_relay_push_up(&g.r, "first-", 6), 0);
    assert_int_equal(exec_relay_push_up(&g.r, "0123456789abc", 13), SS_ETOOLONG);
    rig_start(&g);
    send_all(g.client, "second", 6);
    shutdown(g.client, SHUT_WR);
    char buf[32];
    assert_int_equal(recv_all(g.program, buf, sizeof buf), 12);
    assert_memory_equal(buf, "first-second", 12);
    shutdown(g.program, SHUT_WR);
    assert_int_equal(rig_join(&g), 0);
    rig_close(&g);
}

static void a_program_reset_still_delivers_what_it_wrote(void **state)
{
    (void)state;
    tu_alarm(20);
    rig g;
    rig_open(&g, NULL);
    rig_start(&g);
    send_all(g.client, "unread", 6);
    /* wait until the program's end holds the input it will never read */
    struct pollfd p = {.fd = g.program, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 10000), 1);
    send_all(g.program, "bye", 3);
    close(g.program); /* with unread input: the relay's read sees a reset */
    g.program = -1;
    char buf[16];
    assert_int_equal(recv_all(g.client, buf, sizeof buf), 3);
    assert_memory_equal(buf, "bye", 3);
    shutdown(g.client, SHUT_WR);
    assert_int_equal(rig_join(&g), 0);
    assert_int_equal(g.r.down.bytes, 3);
    rig_close(&g);
}

static void writes_to_a_gone_program_end_that_direction(void **state)
{
    (void)state;
    tu_alarm(20);
    rig g;
    rig_open(&g, NULL);
    close(g.program);
    g.program = -1;
    rig_start(&g);
    send_all(g.client, "anyone?", 7);
    char buf[16];
    assert_int_equal(recv_all(g.client, buf, sizeof buf), 0);
    assert_int_equal(rig_join(&g), 0);
    assert_int_equal(g.r.up.bytes, 0);
    rig_close(&g);
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void it_sleeps_while_nothing_happens(void **state)
{
    (void)state;
    tu_alarm(20);
    exec_relay_opts o = {.idle_timeout_ms = 5000, .peer_write_timeout_ms = 5000};
    rig g;
    rig_open(&g, &o);
    send_all(g.client, "x", 1); /* one byte through, then silence */
    rig_start(&g);
    char c;
    assert_int_equal(recv(g.program, &c, 1, 0), 1);
    double before = cpu_seconds();
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    /* a spinning loop would burn the whole 0.3 s */
    assert_true(cpu_seconds() - before < 0.1);
    shutdown(g.client, SHUT_WR);
    shutdown(g.program, SHUT_WR);
    assert_int_equal(rig_join(&g), 0);
    rig_close(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(passes_both_ways_and_half_closes),
        cmocka_unit_test(half_close_keeps_the_other_direction_open),
        cmocka_unit_test(large_transfers_both_ways_through_small_buffers),
        cmocka_unit_test(a_program_that_never_reads_bounds_the_input_and_output_still_flows),
        cmocka_unit_test(a_peer_that_never_reads_times_out),
        cmocka_unit_test(a_silent_connection_times_out_when_asked),
        cmocka_unit_test(a_watched_descriptor_wakes_it_and_nothing_is_lost),
        cmocka_unit_test(a_deadline_returns_and_the_relay_goes_on),
        cmocka_unit_test(pushed_bytes_go_first),
        cmocka_unit_test(a_program_reset_still_delivers_what_it_wrote),
        cmocka_unit_test(writes_to_a_gone_program_end_that_direction),
        cmocka_unit_test(it_sleeps_while_nothing_happens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
