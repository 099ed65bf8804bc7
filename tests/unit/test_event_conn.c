/* SPDX-License-Identifier: MIT */
/* test_event_conn.c — the callback API on one loop, over real sockets: echo on
 * every socket kind, half-close, backpressure against a client that never
 * reads, a burst of connections reset by their clients, idle timeout and the
 * connection cap; and the io_uring completion mode's own hazards (a peer that
 * never reads, send-and-close, close with ops in flight, the buffer ring run
 * dry, close and free with sends in flight). The loop runs on a thread; the
 * test plays the clients.
 * ctest-labels: tsan
 */
#include "testutil.h"
#include "internal.h"
#include "event_internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- a server loop on a thread ------------------------------------------- */

typedef struct stats {
    atomic_int opened, closed, timeouts, paused_seen;
    atomic_size_t max_queued;
    atomic_int last_reason;
} stats;

typedef struct server {
    ss_loop *loop;
    pthread_t thread;
    int fd;
    ss_addr addr; /* where clients connect */
    ss_listener *listener;
    ss_dgram *dgram;
} server;

static void *run_loop(void *arg)
{
    server *s = arg;
    assert_int_equal(ss_loop_run(s->loop), 0);
    return NULL;
}

/* A bound (and for streams listening) socket on loopback / an abstract
 * name, built with plain system calls so this test needs only the loop. */
static int bind_socket(ss_addr_kind kind, ss_addr *addr)
{
    memset(addr, 0, sizeof *addr);
    addr->kind = kind;
    int type = kind == SS_ADDR_TCP || kind == SS_ADDR_UNIX ? SOCK_STREAM
               : kind == SS_ADDR_SEQPACKET                 ? SOCK_SEQPACKET
                                                           : SOCK_DGRAM;
    int fd;
    if (kind == SS_ADDR_TCP || kind == SS_ADDR_UDP) {
        fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
        addr->u.in.sin_family = AF_INET;
        addr->u.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr->len = sizeof addr->u.in;
    } else {
        fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
        char name[100];
        tu_abstract_name(name, sizeof name);
        addr->u.un.sun_family = AF_UNIX;
        addr->u.un.sun_path[0] = '\0';
        memcpy(addr->u.un.sun_path + 1, name + 1, strlen(name) - 1);
        addr->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name));
    }
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, &addr->u.sa, addr->len), 0);
    addr->len = sizeof addr->u;
    assert_int_equal(getsockname(fd, &addr->u.sa, &addr->len), 0);
    if (type != SOCK_DGRAM)
        assert_int_equal(listen(fd, 4096), 0);
    return fd;
}

static void note_turn(ss_loop *loop, void *arg)
{
    (void)loop;
    atomic_store((atomic_bool *)arg, true);
}

static void server_start_on(server *s, ss_backend backend, ss_addr_kind kind,
                            const struct ss_event_handler *h, const ss_listener_opts *lo)
{
    memset(s, 0, sizeof *s);
    assert_int_equal(ss_loop_new_backend(&s->loop, backend, NULL), 0);
    s->fd = bind_socket(kind, &s->addr);
    if (kind == SS_ADDR_UDP || kind == SS_ADDR_UNIXGRAM)
        assert_int_equal(ss_loop_dgram(s->loop, s->fd, h, 0, &s->dgram, NULL), 0);
    else
        assert_int_equal(ss_loop_listen(s->loop, s->fd, h, lo, &s->listener, NULL), 0);
    assert_int_equal(pthread_create(&s->thread, NULL, run_loop, s), 0);
    /* the loop has run a turn (io_uring makes its ring then): descriptor
     * counts taken from here on see all of the loop's own */
    atomic_bool turned = false;
    assert_int_equal(ss_loop_post(s->loop, note_turn, &turned), 0);
    for (int i = 0; i < 500 && !atomic_load(&turned); i++)
        usleep(10000);
    assert_true(atomic_load(&turned));
}

static void server_start(server *s, ss_addr_kind kind, const struct ss_event_handler *h,
                         const ss_listener_opts *lo)
{
    server_start_on(s, SS_BACKEND_AUTO, kind, h, lo);
}

/* The io_uring backend in its completion mode, or the test is skipped
 * (a kernel or policy without io_uring, SS_URING_MODE=readiness). */
static void server_start_uring(server *s, ss_addr_kind kind, const struct ss_event_handler *h,
                               const ss_listener_opts *lo)
{
    ss_loop *probe;
    if (ss_loop_new_backend(&probe, SS_BACKEND_IO_URING, NULL) < 0)
        skip();
    bool completion = ss__loop_completion(probe);
    ss_loop_free(probe);
    if (!completion)
        skip();
    server_start_on(s, SS_BACKEND_IO_URING, kind, h, lo);
}

/* The completion mode's counters, read on the loop's thread. */
typedef struct stats_job {
    ss__uring_stats st;
    atomic_bool done;
} stats_job;

static void take_stats(ss_loop *loop, void *arg)
{
    stats_job *j = arg;
    ss__loop_uring_stats(loop, &j->st);
    atomic_store(&j->done, true);
}

static ss__uring_stats uring_stats(server *s)
{
    stats_job j = {.done = false};
    assert_int_equal(ss_loop_post(s->loop, take_stats, &j), 0);
    for (int i = 0; i < 500 && !atomic_load(&j.done); i++)
        usleep(10000);
    assert_true(atomic_load(&j.done));
    return j.st;
}

static void server_stop(server *s)
{
    ss_loop_stop(s->loop);
    pthread_join(s->thread, NULL);
    ss_loop_free(s->loop); /* closes what is left, runs on_close */
    close(s->fd);
}

/* ---- clients --------------------------------------------------------------- */

static int client_connect(const server *s)
{
    int family = s->addr.u.sa.sa_family;
    int type = s->addr.kind == SS_ADDR_TCP || s->addr.kind == SS_ADDR_UNIX ? SOCK_STREAM
               : s->addr.kind == SS_ADDR_SEQPACKET                         ? SOCK_SEQPACKET
                                                                           : SOCK_DGRAM;
    int fd = socket(family, type | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    if (type == SOCK_DGRAM && family == AF_UNIX) {
        /* a unixgram client must have a name to be answered */
        ss_addr me;
        close(fd);
        fd = bind_socket(SS_ADDR_UNIXGRAM, &me);
    }
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    assert_int_equal(connect(fd, &s->addr.u.sa, s->addr.len), 0);
    return fd;
}

static void read_exactly(int fd, unsigned char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = recv(fd, buf + got, len - got, 0);
        if (n <= 0)
            fail_msg("recv after %zu of %zu bytes: %s", got, len, n == 0 ? "EOF" : strerror(errno));
        got += (size_t)n;
    }
}

/* True if `fd` becomes readable within `ms`. */
static bool readable_within(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) == 1;
}

/* Send junk on `fd` until the server stops taking it (no room for 300 ms):
 * true if it stopped, with the bytes it took in *sent. Bounded: at most
 * 64 MiB or 10 s; a server that keeps reading would let all of it through. */
static bool send_until_blocked(int fd, size_t *sent)
{
    static unsigned char junk[65536];
    int64_t deadline = ss__deadline(10);
    while (*sent < (64u << 20) && ss__remaining_ms(deadline) > 0) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, 300) == 0)
            return true;
        ssize_t n = send(fd, junk, sizeof junk, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0)
            *sent += (size_t)n;
    }
    return false;
}

/* ---- handlers ------------------------------------------------------------------ */

static void count_open(ss_conn *c)
{
    stats *st = ss_conn_handler_data(c);
    atomic_fetch_add(&st->opened, 1);
}

static void count_close(ss_conn *c, int reason)
{
    stats *st = ss_conn_handler_data(c);
    if (reason == SS_ETIMEOUT)
        atomic_fetch_add(&st->timeouts, 1);
    atomic_store(&st->last_reason, reason);
    atomic_fetch_add(&st->closed, 1);
}

static void echo_data(ss_conn *c, const void *data, size_t len)
{
    stats *st = ss_conn_handler_data(c);
    (void)ss_conn_write(c, data, len);
    size_t q = ss_conn_queued(c);
    size_t prev = atomic_load(&st->max_queued);
    while (q > prev && !atomic_compare_exchange_weak(&st->max_queued, &prev, q))
        ;
    if (ss_conn_paused(c))
        atomic_fetch_add(&st->paused_seen, 1);
}

static void echo_packet(ss_dgram *d, const void *data, size_t len, const ss_addr *from)
{
    assert_int_equal(ss_dgram_send(d, from, data, len), 0);
}

static stats the_stats;
static struct ss_event_handler echo_handler = {
    .on_open = count_open,
    .on_data = echo_data,
    .on_close = count_close,
    .on_packet = echo_packet,
    .data = &the_stats,
};

static int reset_stats(void **state)
{
    (void)state;
    memset(&the_stats, 0, sizeof the_stats);
    echo_handler.high_water = echo_handler.low_water = echo_handler.hard_limit = 0;
    return 0;
}

/* Wait (bounded) until the server has closed `n` connections. */
static void wait_closed(int n)
{
    for (int i = 0; i < 500 && atomic_load(&the_stats.closed) < n; i++)
        usleep(10000);
    assert_int_equal(atomic_load(&the_stats.closed), n);
}

/* ---- tests ------------------------------------------------------------------------ */

static void echo_round_trips(ss_addr_kind kind)
{
    server s;
    server_start(&s, kind, &echo_handler, NULL);
    int fd = client_connect(&s);
    unsigned char out[3000], in[3000];
    for (int round = 0; round < 50; round++) {
        size_t len = 1 + (size_t)(round * 61) % sizeof out;
        for (size_t i = 0; i < len; i++)
            out[i] = (unsigned char)(i * 7 + (size_t)round);
        assert_int_equal(send(fd, out, len, MSG_NOSIGNAL), (ssize_t)len);
        if (kind == SS_ADDR_SEQPACKET || kind == SS_ADDR_UDP || kind == SS_ADDR_UNIXGRAM) {
            /* message kinds: one message back, boundaries kept */
            ssize_t n = recv(fd, in, sizeof in, 0);
            assert_int_equal(n, (ssize_t)len);
        } else {
            read_exactly(fd, in, len);
        }
        assert_memory_equal(in, out, len);
    }
    close(fd);
    if (kind != SS_ADDR_UDP && kind != SS_ADDR_UNIXGRAM) {
        wait_closed(1);
        assert_int_equal(atomic_load(&the_stats.opened), 1);
        assert_int_equal(atomic_load(&the_stats.last_reason), 0);
    }
    server_stop(&s);
}

static void echo_tcp(void **state)
{
    (void)state, echo_round_trips(SS_ADDR_TCP);
}
static void echo_unix(void **state)
{
    (void)state, echo_round_trips(SS_ADDR_UNIX);
}
static void echo_seqpacket(void **state)
{
    (void)state, echo_round_trips(SS_ADDR_SEQPACKET);
}
/* A seqpacket message longer than the loop's read buffer: the connection
 * fails with EMSGSIZE; its first 64 KiB are never handed on as if they
 * were the whole message (recv without MSG_TRUNC drops the tail unsaid). */
static void seqpacket_message_over_the_read_buffer_fails(void **state)
{
    (void)state;
    server s;
    server_start(&s, SS_ADDR_SEQPACKET, &echo_handler, NULL);
    int fd = client_connect(&s);
    int sndbuf = 1 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    size_t len = SS__LOOP_READ_BUFFER + 4096;
    unsigned char *big = calloc(1, len);
    assert_non_null(big);
    ssize_t sent = send(fd, big, len, MSG_NOSIGNAL);
    free(big);
    assert_int_equal(sent, (ssize_t)len);
    /* then a small one the server would echo if it went on reading; the
     * server may have closed already (a fast loop, or a slow client under
     * a sanitizer), and then the send fails with EPIPE: fine as well */
    ssize_t ok = send(fd, "ok", 2, MSG_NOSIGNAL);
    assert_true(ok == 2 || (ok < 0 && (errno == EPIPE || errno == ECONNRESET)));
    wait_closed(1);
    assert_int_equal(atomic_load(&the_stats.last_reason), -EMSGSIZE);
    /* nothing came back: the connection ended (EOF, or a reset for the
     * message it left unread), no truncated echo */
    unsigned char in[16];
    assert_true(recv(fd, in, sizeof in, 0) <= 0);
    close(fd);
    server_stop(&s);
}

static void echo_udp(void **state)
{
    (void)state, echo_round_trips(SS_ADDR_UDP);
}
static void echo_unixgram(void **state)
{
    (void)state, echo_round_trips(SS_ADDR_UNIXGRAM);
}

/* The client sends 1 MiB, shuts down writing, and still reads every byte
 * back before the server closes. */
static void half_close_gets_every_byte(void **state)
{
    (void)state;
    server s;
    server_start(&s, SS_ADDR_TCP, &echo_handler, NULL);
    int fd = client_connect(&s);
    enum { TOTAL = 1 << 20 };
    unsigned char *out = malloc(TOTAL), *in = malloc(TOTAL);
    for (size_t i = 0; i < TOTAL; i++)
        out[i] = (unsigned char)(i * 31 + i / 4096);
    size_t sent = 0, got = 0;
    bool shut = false;
    int64_t deadline = ss__deadline(20);
    while (got < TOTAL || !shut) {
        assert_true(ss__remaining_ms(deadline) > 0);
        struct pollfd p = {.fd = fd, .events = POLLIN | (sent < TOTAL ? POLLOUT : 0)};
        assert_true(poll(&p, 1, 1000) >= 0);
        if ((p.revents & POLLOUT) && sent < TOTAL) {
            ssize_t n = send(fd, out + sent, TOTAL - sent < 65536 ? TOTAL - sent : 65536,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0)
                sent += (size_t)n;
        }
        if (sent == TOTAL && !shut) {
            assert_int_equal(shutdown(fd, SHUT_WR), 0);
            shut = true;
        }
        if (p.revents & POLLIN) {
            ssize_t n = recv(fd, in + got, TOTAL - got, MSG_DONTWAIT);
            assert_true(n > 0 || (n < 0 && errno == EAGAIN));
            if (n > 0)
                got += (size_t)n;
        }
    }
    assert_memory_equal(in, out, TOTAL);
    /* then the server closes: end of file */
    unsigned char extra;
    assert_int_equal(recv(fd, &extra, 1, 0), 0);
    close(fd);
    wait_closed(1);
    free(out);
    free(in);
    server_stop(&s);
}

/* A client writes and never reads: the server's queue for it stops at the
 * high-water mark (reading paused, so the client's sends block), and
 * another client is served meanwhile. */
static void never_reading_client_is_bounded(void **state)
{
    (void)state;
    echo_handler.high_water = 64 * 1024;
    echo_handler.hard_limit = 4 * 1024 * 1024;
    server s;
    server_start(&s, SS_ADDR_TCP, &echo_handler, NULL);
    int hog = client_connect(&s);
    int small = 4096;
    setsockopt(hog, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    size_t sent = 0;
    bool blocked = send_until_blocked(hog, &sent);
    assert_true(blocked);
    assert_true(atomic_load(&the_stats.paused_seen) > 0);
    /* queue bounded: high water plus at most one read's worth */
    assert_true(atomic_load(&the_stats.max_queued) <= 64 * 1024 + 64 * 1024);
    assert_int_equal(atomic_load(&the_stats.closed), 0); /* not over the hard limit */

    int other = client_connect(&s);
    unsigned char msg[100], back[100];
    memset(msg, 'z', sizeof msg);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(send(other, msg, sizeof msg, MSG_NOSIGNAL), (ssize_t)sizeof msg);
        read_exactly(other, back, sizeof back);
        assert_memory_equal(back, msg, sizeof msg);
    }
    close(other);
    close(hog);
    wait_closed(2);
    server_stop(&s);
}

/* A write that would go past hard_limit closes the connection (SS_EBUSY). */
static void amplify_data(ss_conn *c, const void *data, size_t len)
{
    (void)data;
    static unsigned char big[65536];
    for (int i = 0; i < 512 && ss_conn_write(c, big, sizeof big) == 0; i++)
        ;
    (void)len;
}

static void over_hard_limit_closes(void **state)
{
    (void)state;
    struct ss_event_handler h = echo_handler;
    h.on_data = amplify_data;
    h.high_water = 64 * 1024;
    h.hard_limit = 512 * 1024;
    server s;
    server_start(&s, SS_ADDR_TCP, &h, NULL);
    int fd = client_connect(&s);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    assert_int_equal(send(fd, "x", 1, MSG_NOSIGNAL), 1);
    wait_closed(1);
    assert_int_equal(atomic_load(&the_stats.last_reason), SS_EBUSY);
    close(fd);
    server_stop(&s);
}

/* 2,000 connections opened at once and dropped with RST: every one the
 * server saw is closed again, nothing leaks, the server still answers. */
static void burst_of_resets(void **state)
{
    (void)state;
    enum { N = 2000 };
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 2 * N + 100 && rl.rlim_max >= 2 * N + 100) {
        rl.rlim_cur = 2 * N + 100;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    int n = rl.rlim_cur >= 2 * N + 100 ? N : (int)(rl.rlim_cur - 100) / 2;
    server s;
    server_start(&s, SS_ADDR_TCP, &echo_handler, NULL);
    int before = tu_count_fds();
    int *fds = malloc(sizeof *fds * (size_t)n);
    for (int i = 0; i < n; i++) {
        fds[i] = client_connect(&s);
        if (i % 3 == 0)
            (void)send(fds[i], "hello", 5, MSG_NOSIGNAL);
    }
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    for (int i = 0; i < n; i++) {
        setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(fds[i]);
    }
    for (int i = 0; i < 1000 && atomic_load(&the_stats.closed) < atomic_load(&the_stats.opened);
         i++)
        usleep(10000);
    int fd = client_connect(&s);
    assert_int_equal(send(fd, "ping", 4, MSG_NOSIGNAL), 4);
    unsigned char back[4];
    read_exactly(fd, back, 4);
    close(fd);
    for (int i = 0; i < 500 && atomic_load(&the_stats.closed) < atomic_load(&the_stats.opened); i++)
        usleep(10000);
    assert_true(atomic_load(&the_stats.opened) >= 1);
    assert_int_equal(atomic_load(&the_stats.closed), atomic_load(&the_stats.opened));
    assert_int_equal(tu_count_fds(), before);
    free(fds);
    server_stop(&s);
}

static void idle_connections_time_out(void **state)
{
    (void)state;
    server s;
    ss_listener_opts lo = {.idle_timeout = 0.2};
    server_start(&s, SS_ADDR_TCP, &echo_handler, &lo);
    int quiet = client_connect(&s);
    int chatty = client_connect(&s);
    unsigned char b[1];
    int64_t t0 = ss__now_ms();
    /* chatty talks every 50 ms for 600 ms: it must survive */
    for (int i = 0; i < 12; i++) {
        assert_int_equal(send(chatty, "c", 1, MSG_NOSIGNAL), 1);
        read_exactly(chatty, b, 1);
        usleep(50000);
    }
    assert_true(readable_within(quiet, 1));
    assert_int_equal(recv(quiet, b, 1, 0), 0); /* closed by the server */
    assert_true(ss__now_ms() - t0 >= 200);
    assert_int_equal(atomic_load(&the_stats.timeouts), 1);
    assert_int_equal(send(chatty, "d", 1, MSG_NOSIGNAL), 1);
    read_exactly(chatty, b, 1);
    close(quiet);
    close(chatty);
    wait_closed(2);
    server_stop(&s);
}

static void connection_cap_stops_accepting(void **state)
{
    (void)state;
    server s;
    ss_listener_opts lo = {.max_conns = 2};
    server_start(&s, SS_ADDR_UNIX, &echo_handler, &lo);
    int a = client_connect(&s), b = client_connect(&s), c = client_connect(&s);
    unsigned char x[1];
    assert_int_equal(send(a, "a", 1, MSG_NOSIGNAL), 1);
    read_exactly(a, x, 1);
    assert_int_equal(send(b, "b", 1, MSG_NOSIGNAL), 1);
    read_exactly(b, x, 1);
    assert_int_equal(send(c, "c", 1, MSG_NOSIGNAL), 1);
    assert_false(readable_within(c, 200)); /* waits in the backlog */
    assert_int_equal(atomic_load(&the_stats.opened), 2);
    close(a);
    assert_true(readable_within(c, 5000)); /* taken once a slot freed */
    read_exactly(c, x, 1);
    assert_int_equal(x[0], 'c');
    close(b);
    close(c);
    wait_closed(3);
    server_stop(&s);
}

/* Client side of the API: ss_loop_adopt a connected socket. */
static void adopted_socketpair_echoes(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ss_loop *loop;
    assert_int_equal(ss_loop_new(&loop, NULL), 0);
    ss_conn *c;
    assert_int_equal(ss_loop_adopt(loop, sv[0], &echo_handler, &c), 0);
    assert_int_equal(ss_conn_fd(c), sv[0]);
    assert_int_equal(atomic_load(&the_stats.opened), 1);
    assert_int_equal(send(sv[1], "abc", 3, 0), 3);
    for (int i = 0; i < 10 && !readable_within(sv[1], 0); i++)
        assert_int_equal(ss_loop_run_once(loop, 100), 0);
    char back[3];
    assert_int_equal(recv(sv[1], back, 3, 0), 3);
    assert_memory_equal(back, "abc", 3);
    ss_loop_free(loop); /* closes it: on_close runs */
    assert_int_equal(atomic_load(&the_stats.closed), 1);
    char eof;
    assert_int_equal(recv(sv[1], &eof, 1, 0), 0);
    close(sv[1]);
}

/* A closed connection whose socket has another reference (a dup the
 * handler kept, a forked child's copy) must leave the epoll set: close()
 * drops a registration only with the file's last descriptor, and the
 * peer's next byte then named the freed ss_conn. Checked in the epoll
 * set's own listing (/proc/self/fdinfo), which names every watched fd. */
static int kept_fd = -1;

static void keep_and_close(ss_conn *c)
{
    kept_fd = dup(ss_conn_fd(c));
    ss_conn_close(c);
}

static bool epoll_watches(int fd)
{
    char want[32];
    snprintf(want, sizeof want, "tfd: %8d ", fd);
    bool found = false;
    for (int e = 0; e < 1024 && !found; e++) {
        char path[64], target[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", e);
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (strcmp(target, "anon_inode:[eventpoll]") != 0)
            continue;
        snprintf(path, sizeof path, "/proc/self/fdinfo/%d", e);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        char line[256];
        while (fgets(line, sizeof line, f) != NULL)
            if (strstr(line, want) != NULL)
                found = true;
        fclose(f);
    }
    return found;
}

static void closed_conn_leaves_epoll_while_its_file_lives(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ss_loop *loop;
    ss_error err = {0};
    assert_int_equal(ss_loop_new_backend(&loop, SS_BACKEND_EPOLL, &err), 0);
    static const struct ss_event_handler h = {
        .on_open = keep_and_close, .on_close = count_close, .data = &the_stats};
    assert_int_equal(ss_loop_adopt(loop, sv[0], &h, NULL), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ss_loop_run_once(loop, 10), 0);
    assert_int_equal(atomic_load(&the_stats.closed), 1);
    assert_true(kept_fd >= 0);
    assert_false(epoll_watches(sv[0]));
    assert_int_equal(send(sv[1], "x", 1, 0), 1); /* was: conn_io on freed memory */
    for (int i = 0; i < 3; i++)
        assert_int_equal(ss_loop_run_once(loop, 10), 0);
    ss_loop_free(loop);
    close(kept_fd);
    close(sv[1]);
}


/* ---- the io_uring completion mode ------------------------------------------------ */

/* A peer that sends and never reads: once its queue is over high water no
 * receive is armed for it (a multishot receive, or one left armed, kept
 * draining the peer into memory), the queue stays bounded, and reading
 * resumes once the peer reads. */
static void uring_never_reading_peer_holds_no_receive(void **state)
{
    (void)state;
    echo_handler.high_water = 64 * 1024;
    echo_handler.hard_limit = 64 * 1024 * 1024;
    server s;
    server_start_uring(&s, SS_ADDR_TCP, &echo_handler, NULL);
    /* default buffers: a tiny SO_RCVBUF would make the read-back below
     * crawl (TCP's small window), not the server */
    int hog = client_connect(&s);
    size_t sent = 0;
    bool blocked = send_until_blocked(hog, &sent);
    assert_true(blocked);
    ss__uring_stats a = uring_stats(&s);
    assert_true(a.recvs > 0); /* it did read through the ring */
    assert_int_equal(a.recvs_armed, 0);
    usleep(300000);
    ss__uring_stats b = uring_stats(&s);
    assert_int_equal(b.recvs_armed, 0);
    assert_int_equal(b.recvs, a.recvs); /* none re-armed meanwhile */
    /* bounded: high water, one receive's worth that raced the pause, and
     * one write's */
    assert_true(atomic_load(&the_stats.max_queued) <= 64 * 1024 + 2 * 65536);
    assert_int_equal(atomic_load(&the_stats.closed), 0);
    /* the peer reads: everything it sent comes back */
    static unsigned char back[65536];
    size_t got = 0;
    bool shut = false;
    int64_t deadline = ss__deadline(20);
    while (got < sent) {
        if (ss__remaining_ms(deadline) <= 0)
            fail_msg("read back %zu of %zu bytes", got, sent);
        if (!shut) {
            assert_int_equal(shutdown(hog, SHUT_WR), 0);
            shut = true;
        }
        ssize_t n = recv(hog, back, sizeof back, 0);
        assert_true(n > 0);
        got += (size_t)n;
    }
    assert_int_equal(got, sent);
    close(hog);
    wait_closed(1);
    ss__uring_stats c = uring_stats(&s);
    assert_int_equal(c.buffers_used, c.buffers_returned);
    server_stop(&s);
}

/* ss_conn_pause on a quiet connection: its armed receive is cancelled (a
 * paused connection holds none), what the peer sends meanwhile waits in
 * the socket, and after ss_conn_resume it is delivered. */
static ss_conn *paused_conn;

static void echo_then_pause(ss_conn *c, const void *data, size_t len)
{
    (void)ss_conn_write(c, data, len);
    ss_conn_pause(c);
    paused_conn = c;
}

static void resume_paused(ss_loop *loop, void *arg)
{
    (void)loop, (void)arg;
    ss_conn_resume(paused_conn);
}

static void uring_pause_cancels_the_receive(void **state)
{
    (void)state;
    struct ss_event_handler h = echo_handler;
    h.on_data = echo_then_pause;
    server s;
    server_start_uring(&s, SS_ADDR_TCP, &h, NULL);
    int fd = client_connect(&s);
    unsigned char b[1];
    assert_int_equal(send(fd, "a", 1, MSG_NOSIGNAL), 1);
    read_exactly(fd, b, 1);
    assert_int_equal(b[0], 'a');
    ss__uring_stats st = uring_stats(&s);
    for (int i = 0; i < 100 && st.recvs_armed != 0; i++) {
        usleep(10000);
        st = uring_stats(&s);
    }
    assert_int_equal(st.recvs_armed, 0);
    assert_int_equal(send(fd, "b", 1, MSG_NOSIGNAL), 1);
    assert_false(readable_within(fd, 200)); /* paused: not read */
    assert_int_equal(ss_loop_post(s.loop, resume_paused, NULL), 0);
    read_exactly(fd, b, 1);
    assert_int_equal(b[0], 'b');
    close(fd); /* unseen: it paused again after "b" */
    server_stop(&s);
    assert_int_equal(atomic_load(&the_stats.closed), 1);
}

/* Peers that send and close at once, some with a half-close (every byte
 * comes back), some with a full close or a reset (what cannot be sent is
 * dropped): every connection closes, no descriptor or buffer is left. */
static void uring_send_and_close_at_once(void **state)
{
    (void)state;
    enum { N = 60, LEN = 20000 };
    server s;
    server_start_uring(&s, SS_ADDR_TCP, &echo_handler, NULL);
    int before = tu_count_fds();
    static unsigned char out[LEN], in[LEN];
    for (size_t i = 0; i < LEN; i++)
        out[i] = (unsigned char)(i * 13 + i / 251);
    int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = client_connect(&s);
        assert_int_equal(send(fds[i], out, LEN, MSG_NOSIGNAL), LEN);
        if (i % 3 == 0) {
            assert_int_equal(shutdown(fds[i], SHUT_WR), 0);
        } else {
            if (i % 3 == 2) {
                struct linger lg = {.l_onoff = 1, .l_linger = 0};
                setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            }
            close(fds[i]);
            fds[i] = -1;
        }
    }
    for (int i = 0; i < N; i += 3) {
        read_exactly(fds[i], in, LEN);
        assert_memory_equal(in, out, LEN);
        unsigned char extra;
        assert_int_equal(recv(fds[i], &extra, 1, 0), 0); /* then the server's close */
        close(fds[i]);
    }
    wait_closed(N);
    assert_int_equal(atomic_load(&the_stats.opened), N);
    for (int i = 0; i < 500 && tu_count_fds() != before; i++)
        usleep(10000);
    assert_int_equal(tu_count_fds(), before);
    ss__uring_stats st = uring_stats(&s);
    assert_int_equal(st.buffers_used, st.buffers_returned);
    assert_int_equal(st.recvs_armed, 0);
    server_stop(&s);
}

/* A connection closed while its receive and its send are in flight: the
 * ops outlive it (ASan: no use after free), the send never reaches
 * another client that got the descriptor's number, nothing leaks. */
static unsigned char big_reply[256 * 1024];

static void write_then_abort(ss_conn *c)
{
    (void)ss_conn_write(c, big_reply, 1000);
    (void)ss_conn_write(c, big_reply, sizeof big_reply / 2);
    ss_conn_abort(c, false);
}

static void write_then_close_on_data(ss_conn *c, const void *data, size_t len)
{
    (void)data, (void)len;
    (void)ss_conn_write(c, big_reply, 1000);
    ss_conn_abort(c, true);
}

static void uring_close_with_ops_in_flight(void **state)
{
    (void)state;
    struct ss_event_handler h = echo_handler;
    h.on_open = write_then_abort; /* a receive was armed, a send prepared */
    int before = tu_count_fds();
    server s;
    server_start_uring(&s, SS_ADDR_TCP, &h, NULL);
    enum { N = 50 };
    for (int i = 0; i < N; i++) {
        int fd = client_connect(&s);
        /* whatever arrives comes from this connection's own send, then
         * its end; never an echo meant for another */
        unsigned char buf[4096];
        ssize_t n;
        while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
            ;
        close(fd);
    }
    wait_closed(N);
    struct ss_event_handler h2 = echo_handler;
    h2.on_data = write_then_close_on_data; /* inside the receive's callback */
    server s2;
    server_start_uring(&s2, SS_ADDR_TCP, &h2, NULL);
    for (int i = 0; i < N; i++) {
        int fd = client_connect(&s2);
        assert_int_equal(send(fd, "x", 1, MSG_NOSIGNAL), 1);
        unsigned char buf[4096];
        while (recv(fd, buf, sizeof buf, 0) > 0)
            ;
        close(fd);
    }
    wait_closed(2 * N);
    ss__uring_stats st = uring_stats(&s);
    assert_int_equal(st.buffers_used, st.buffers_returned);
    assert_int_equal(st.recvs_armed, 0);
    server_stop(&s2);
    server_stop(&s);
    assert_int_equal(tu_count_fds(), before);
}

/* Many connections and a buffer ring of one: receives find it empty
 * (-ENOBUFS), wait for the turn's buffers to come back and try again;
 * every byte is echoed, no connection dies, and the idle loop does not
 * spin. */
static void uring_buffer_ring_exhausted(void **state)
{
    (void)state;
    enum { N = 40, LEN = 6000 };
    setenv("SS_URING_BUFFERS", "1", 1);
    server s;
    server_start_uring(&s, SS_ADDR_TCP, &echo_handler, NULL);
    unsetenv("SS_URING_BUFFERS");
    assert_int_equal(uring_stats(&s).buffers, 1);
    static unsigned char out[LEN], in[LEN];
    int fds[N];
    for (int i = 0; i < N; i++)
        fds[i] = client_connect(&s);
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < LEN; i++)
            out[i] = (unsigned char)(i * 7 + (size_t)round);
        for (int i = 0; i < N; i++)
            assert_int_equal(send(fds[i], out, LEN, MSG_NOSIGNAL), LEN);
        for (int i = 0; i < N; i++) {
            read_exactly(fds[i], in, LEN);
            assert_memory_equal(in, out, LEN);
        }
    }
    ss__uring_stats st = uring_stats(&s);
    assert_true(st.enobufs > 0);
    assert_int_equal(atomic_load(&the_stats.closed), 0);
    assert_int_equal(st.recvs_armed, N); /* every one still reading */
    /* idle with N receives armed on an empty-then-refilled ring: no spin */
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    uint64_t recvs0 = st.recvs;
    usleep(300000);
    getrusage(RUSAGE_SELF, &r1);
    double cpu = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec + r1.ru_stime.tv_sec -
                          r0.ru_stime.tv_sec) +
                 (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec + r1.ru_stime.tv_usec -
                          r0.ru_stime.tv_usec) /
                     1e6;
    assert_true(cpu < 0.1);
    st = uring_stats(&s);
    assert_int_equal(st.recvs, recvs0);
    for (int i = 0; i < N; i++)
        close(fds[i]);
    wait_closed(N);
    st = uring_stats(&s);
    assert_int_equal(st.buffers_used, st.buffers_returned);
    server_stop(&s);
}

/* A bulk stream goes to the bulk pool: 1 MiB written at once comes back
 * whole and in order, most of it through 64 KiB receives, and every buffer
 * of both pools goes back. */
static void uring_bulk_stream_takes_the_bulk_pool(void **state)
{
    (void)state;
    enum { LEN = 1024 * 1024 };
    server s;
    server_start_uring(&s, SS_ADDR_TCP, &echo_handler, NULL);
    ss__uring_stats st = uring_stats(&s);
    assert_int_equal(st.buffers, 256);
    assert_int_equal(st.bulk_buffers, 32);
    unsigned char *out = malloc(LEN), *in = malloc(LEN);
    assert_non_null(out);
    assert_non_null(in);
    for (size_t i = 0; i < LEN; i++)
        out[i] = (unsigned char)(i * 131 + (i >> 12));
    int fd = client_connect(&s);
    size_t sent = 0, got = 0;
    /* both ways at once: the echo fills our receive buffer long before we
     * have written it all */
    for (int spins = 0; got < LEN && spins < 100000; spins++) {
        if (sent < LEN) {
            ssize_t n = send(fd, out + sent, LEN - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0)
                sent += (size_t)n;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 2000) != 1)
            break; /* nothing back for 2 s: stuck */
        ssize_t n = recv(fd, in + got, LEN - got, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN))
            break;
        if (n > 0)
            got += (size_t)n;
    }
    assert_int_equal(got, LEN);
    int same = memcmp(in, out, LEN) == 0;
    free(out);
    free(in);
    assert_true(same);
    st = uring_stats(&s);
    assert_true(st.bulk_recvs > 0);
    /* fewer receives than 8 KiB pieces: the bulk pool did the work */
    assert_true(st.recvs < LEN / (8 * 1024));
    close(fd);
    wait_closed(1);
    st = uring_stats(&s);
    assert_int_equal(st.buffers_used, st.buffers_returned);
    assert_int_equal(st.recvs_armed, 0);
    server_stop(&s);
}

/* Pools of one buffer each (SS_URING_BUFFERS=1: one small, one bulk) and
 * many bulk senders: receives find the bulk pool dry, fall back to the
 * small one, find that dry too and wait; every byte is echoed and no
 * connection dies. */
static void uring_bulk_pool_exhausted(void **state)
{
    (void)state;
    enum { N = 8, LEN = 200 * 1024 };
    setenv("SS_URING_BUFFERS", "1", 1);
    server s;
    server_start_uring(&s, SS_ADDR_TCP, &echo_handler, NULL);
    unsetenv("SS_URING_BUFFERS");
    ss__uring_stats st = uring_stats(&s);
    assert_int_equal(st.buffers, 1);
    assert_int_equal(st.bulk_buffers, 1);
    unsigned char *out = malloc(LEN), *in = malloc(LEN);
    assert_non_null(out);
    assert_non_null(in);
    int fds[N];
    size_t sent[N], got[N];
    for (int i = 0; i < N; i++) {
        fds[i] = client_connect(&s);
        sent[i] = got[i] = 0;
    }
    for (size_t i = 0; i < LEN; i++)
        out[i] = (unsigned char)(i * 7 + (i >> 10));
    bool ok = true;
    for (int i = 0; i < N && ok; i++) {
        /* every connection gets its whole stream in before any is read
         * back, so receives compete for the two buffers */
        for (int spins = 0; got[i] < LEN && spins < 100000; spins++) {
            for (int j = 0; j < N; j++) {
                if (sent[j] < LEN) {
                    ssize_t n = send(fds[j], out + sent[j], LEN - sent[j],
                                     MSG_NOSIGNAL | MSG_DONTWAIT);
                    if (n > 0)
                        sent[j] += (size_t)n;
                }
            }
            struct pollfd p = {.fd = fds[i], .events = POLLIN};
            if (poll(&p, 1, 2000) != 1)
                break; /* nothing back for 2 s: stuck */
            ssize_t n = recv(fds[i], in + got[i], LEN - got[i], MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN))
                break;
            if (n > 0)
                got[i] += (size_t)n;
        }
        ok = got[i] == LEN && memcmp(in, out, LEN) == 0;
    }
    free(out);
    free(in);
    assert_true(ok);
    st = uring_stats(&s);
    assert_true(st.enobufs > 0);
    assert_true(st.bulk_recvs > 0);
    assert_int_equal(atomic_load(&the_stats.closed), 0);
    for (int i = 0; i < N; i++)
        close(fds[i]);
    wait_closed(N);
    st = uring_stats(&s);
    assert_int_equal(st.buffers_used, st.buffers_returned);
    server_stop(&s);
}

/* Close after flush with the queue in flight: a reply much larger than the
 * socket takes, then ss_conn_close; the slow peer still gets every byte,
 * then the end. And a loop freed with sends in flight frees their memory
 * (LeakSanitizer) without touching the closed connections' (ASan). */
enum { REPLY_CHUNKS = 96, REPLY_CHUNK = 16 * 1024 };

static void reply_then_close(ss_conn *c, const void *data, size_t len)
{
    (void)data, (void)len;
    /* a small socket buffer: most of the reply waits in the queue */
    int small = 4096;
    setsockopt(ss_conn_fd(c), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    static unsigned char chunk[REPLY_CHUNK];
    for (int i = 0; i < REPLY_CHUNKS; i++) {
        memset(chunk, 'a' + i % 26, sizeof chunk);
        assert_int_equal(ss_conn_write(c, chunk, sizeof chunk), 0);
    }
    ss_conn_close(c);
}

static void uring_close_after_flush_and_free_in_flight(void **state)
{
    (void)state;
    struct ss_event_handler h = echo_handler;
    h.on_data = reply_then_close;
    h.hard_limit = 8 * 1024 * 1024;
    server s;
    server_start_uring(&s, SS_ADDR_TCP, &h, NULL);
    int fd = client_connect(&s);
    assert_int_equal(send(fd, "go", 2, MSG_NOSIGNAL), 2);
    usleep(100000); /* the server's sends meet a full socket */
    static unsigned char in[REPLY_CHUNKS * REPLY_CHUNK];
    read_exactly(fd, in, sizeof in);
    for (int i = 0; i < REPLY_CHUNKS; i++)
        assert_int_equal(in[(size_t)i * REPLY_CHUNK + REPLY_CHUNK - 1], 'a' + i % 26);
    unsigned char extra;
    assert_int_equal(recv(fd, &extra, 1, 0), 0);
    close(fd);
    wait_closed(1);
    assert_int_equal(atomic_load(&the_stats.last_reason), 0);

    /* now stop the loop while three replies are stuck in flight */
    int stuck[3];
    for (int i = 0; i < 3; i++) {
        stuck[i] = client_connect(&s);
        assert_int_equal(send(stuck[i], "go", 2, MSG_NOSIGNAL), 2);
    }
    usleep(200000);
    assert_int_equal(atomic_load(&the_stats.closed), 1);
    server_stop(&s); /* ss_loop_free: on_close for each, their ops end with the ring */
    assert_int_equal(atomic_load(&the_stats.closed), 4);
    for (int i = 0; i < 3; i++)
        close(stuck[i]);
}

int main(void)
{
    tu_alarm(100);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(echo_tcp, reset_stats),
        cmocka_unit_test_setup(echo_unix, reset_stats),
        cmocka_unit_test_setup(echo_seqpacket, reset_stats),
        cmocka_unit_test_setup(seqpacket_message_over_the_read_buffer_fails, reset_stats),
        cmocka_unit_test_setup(echo_udp, reset_stats),
        cmocka_unit_test_setup(echo_unixgram, reset_stats),
        cmocka_unit_test_setup(half_close_gets_every_byte, reset_stats),
        cmocka_unit_test_setup(never_reading_client_is_bounded, reset_stats),
        cmocka_unit_test_setup(over_hard_limit_closes, reset_stats),
        cmocka_unit_test_setup(burst_of_resets, reset_stats),
        cmocka_unit_test_setup(idle_connections_time_out, reset_stats),
        cmocka_unit_test_setup(connection_cap_stops_accepting, reset_stats),
        cmocka_unit_test_setup(adopted_socketpair_echoes, reset_stats),
        cmocka_unit_test_setup(closed_conn_leaves_epoll_while_its_file_lives, reset_stats),
        cmocka_unit_test_setup(uring_never_reading_peer_holds_no_receive, reset_stats),
        cmocka_unit_test_setup(uring_pause_cancels_the_receive, reset_stats),
        cmocka_unit_test_setup(uring_send_and_close_at_once, reset_stats),
        cmocka_unit_test_setup(uring_close_with_ops_in_flight, reset_stats),
        cmocka_unit_test_setup(uring_buffer_ring_exhausted, reset_stats),
        cmocka_unit_test_setup(uring_bulk_stream_takes_the_bulk_pool, reset_stats),
        cmocka_unit_test_setup(uring_bulk_pool_exhausted, reset_stats),
        cmocka_unit_test_setup(uring_close_after_flush_and_free_in_flight, reset_stats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
