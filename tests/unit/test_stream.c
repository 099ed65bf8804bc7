/* SPDX-License-Identifier: MIT */
/* test_stream.c — the buffered stream over the plain-fd transport: read,
 * readline, read_exact, write/flush, and every timeout and end-of-file path. */
#include "sockpeer.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* A stream over one end of a unix socketpair; `peer` is the other end. */
typedef struct pair {
    ss_transport t;
    ss_stream *s;
    int peer;
} pair;

static void pair_open(pair *p, const ss_stream_opts *o)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(ss_transport_fd_init(&p->t, sv[0]), 0);
    assert_int_equal(ss_stream_new(&p->s, &p->t, o), 0);
    assert_ptr_equal(ss_stream_transport(p->s), &p->t);
    p->peer = sv[1];
}

static void pair_close(pair *p)
{
    ss_stream_free(p->s);
    p->t.ops->close(&p->t);
    assert_int_equal(p->t.fd, -1);
    if (p->peer >= 0)
        close(p->peer);
}

static void peer_write(pair *p, const char *text)
{
    size_t len = strlen(text);
    assert_int_equal(send(p->peer, text, len, MSG_NOSIGNAL), (ssize_t)len);
}

static void shrink_buffers(int fd)
{
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
}

static void transport_sets_nonblocking(void **state)
{
    (void)state;
    pair p;
    pair_open(&p, NULL);
    assert_true(fcntl(p.t.fd, F_GETFL) & O_NONBLOCK);
    assert_string_equal(p.t.ops->name, "fd");
    assert_int_equal(p.t.ops->wait_events(&p.t, POLLIN), POLLIN);
    pair_close(&p);

    ss_transport bad;
    assert_int_equal(ss_transport_fd_init(&bad, 9999), -EBADF);
}

static void readline_then_read_buffered(void **state)
{
    (void)state;
    tu_alarm(10);
    pair p;
    pair_open(&p, NULL);
    peer_write(&p, "hello\nworld\n");
    char buf[64];
    assert_int_equal(ss_stream_readline(p.s, buf, sizeof buf), 6);
    assert_memory_equal(buf, "hello\n", 6);
    assert_int_equal(ss_stream_buffered(p.s), 6);
    /* read1 semantics: what is buffered, without waiting for more */
    assert_int_equal(ss_stream_read(p.s, buf, sizeof buf), 6);
    assert_memory_equal(buf, "world\n", 6);
    assert_int_equal(ss_stream_buffered(p.s), 0);
    assert_int_equal(ss_stream_read(p.s, buf, 0), 0);
    pair_close(&p);
}

static void readline_across_many_writes(void **state)
{
    (void)state;
    tu_alarm(10);
    ss_stream_opts o = {.read_buffer = 8};
    pair p;
    pair_open(&p, &o);
    peer_write(&p, "abc");
    peer_write(&p, "defghijklmnop");
    peer_write(&p, "qrstuvwxyz\nnext\n");
    char buf[64];
    /* longer than the read buffer: it grows up to the caller's bound */
    assert_int_equal(ss_stream_readline(p.s, buf, sizeof buf), 27);
    assert_memory_equal(buf, "abcdefghijklmnopqrstuvwxyz\n", 27);
    assert_int_equal(ss_stream_readline(p.s, buf, sizeof buf), 5);
    assert_memory_equal(buf, "next\n", 5);
    pair_close(&p);
}

static void readline_eof_mid_line(void **state)
{
    (void)state;
    tu_alarm(10);
    pair p;
    pair_open(&p, NULL);
    peer_write(&p, "abc\ndef");
    shutdown(p.peer, SHUT_WR);
    char buf[64];
    assert_int_equal(ss_stream_readline(p.s, buf, sizeof buf), 4);
    assert_memory_equal(buf, "abc\n", 4);
    assert_int_equal(ss_stream_readline(p.s, buf, sizeof buf), 3);
    assert_memory_equal(buf, "def", 3);
    assert_int_equal(ss_stream_readline(p.s, buf, sizeof buf), 0);
    assert_int_equal(ss_stream_readline(p.s, buf, sizeof buf), 0);
    assert_int_equal(ss_stream_read(p.s, buf, sizeof buf), 0);
    pair_close(&p);
}

static void readline_too_long_keeps_data(void **state)
{
    (void)state;
    tu_alarm(10);
    pair p;
    pair_open(&p, NULL);
    peer_write(&p, "0123456789\n");
    char buf[64];
    assert_int_equal(ss_stream_readline(p.s, buf, 4), SS_ETOOLONG);
    assert_true(ss_stream_buffered(p.s) >= 4);
    /* a line of exactly `max` bytes, '\n' included, is fine */
    assert_int_equal(ss_stream_readline(p.s, buf, 11), 11);
    assert_memory_equal(buf, "0123456789\n", 11);
    assert_int_equal(ss_stream_readline(p.s, buf, 0), SS_EUSAGE);

    /* bound bigger than the buffer, line bigger than the bound */
    ss_stream_opts o = {.read_buffer = 4};
    pair q;
    pair_open(&q, &o);
    peer_write(&q, "abcdefghij");
    assert_int_equal(ss_stream_readline(q.s, buf, 8), SS_ETOOLONG);
    assert_int_equal(ss_stream_buffered(q.s), 8);
    assert_int_equal(ss_stream_read(q.s, buf, sizeof buf), 8);
    assert_memory_equal(buf, "abcdefgh", 8);
    pair_close(&q);
    pair_close(&p);
}

static void readline_times_out_then_completes(void **state)
{
    (void)state;
    tu_alarm(10);
    ss_stream_opts o = {.timeout = 0.2};
    pair p;
    pair_open(&p, &o);
    peer_write(&p, "partial");
    char buf[64];
    double t0 = tp_now();
    assert_int_equal(ss_stream_readline(p.s, buf, sizeof buf), SS_ETIMEOUT);
    assert_true(tp_now() - t0 >= 0.15);
    assert_int_equal(ss_stream_buffered(p.s), 7); /* nothing lost */
    peer_write(&p, " line\n");
    assert_int_equal(ss_stream_readline(p.s, buf, sizeof buf), 13);
    assert_memory_equal(buf, "partial line\n", 13);
    pair_close(&p);
}

static void read_timeout_eagain_and_eof_are_distinct(void **state)
{
    (void)state;
    tu_alarm(10);
    pair p;
    pair_open(&p, NULL);
    char buf[16];
    ss_stream_settimeout(p.s, 0);
    assert_int_equal(ss_stream_read(p.s, buf, sizeof buf), -EAGAIN);
    ss_stream_settimeout(p.s, 0.1);
    assert_int_equal(ss_stream_read(p.s, buf, sizeof buf), SS_ETIMEOUT);
    /* a big read goes straight through, with the same rules */
    char big[64 * 1024];
    assert_int_equal(ss_stream_read(p.s, big, sizeof big), SS_ETIMEOUT);
    peer_write(&p, "x");
    assert_int_equal(ss_stream_read(p.s, big, sizeof big), 1);
    close(p.peer);
    p.peer = -1;
    assert_int_equal(ss_stream_read(p.s, buf, sizeof buf), 0);
    pair_close(&p);
}

static void read_exact_paths(void **state)
{
    (void)state;
    tu_alarm(10);
    ss_stream_opts o = {.read_buffer = 8, .timeout = 0.2};
    pair p;
    pair_open(&p, &o);
    char buf[64];
    size_t got = 99;
    peer_write(&p, "0123");
    peer_write(&p, "4567890123456789abc");
    assert_int_equal(ss_stream_read_exact(p.s, buf, 20, &got), 0);
    assert_int_equal(got, 20);
    assert_memory_equal(buf, "01234567890123456789", 20);
    /* 3 bytes left ("abc"): asking for 5 times out, having stored 3 */
    assert_int_equal(ss_stream_read_exact(p.s, buf, 5, &got), SS_ETIMEOUT);
    assert_int_equal(got, 3);
    assert_memory_equal(buf, "abc", 3);
    peer_write(&p, "xy");
    shutdown(p.peer, SHUT_WR);
    assert_int_equal(ss_stream_read_exact(p.s, buf, 5, &got), SS_EEOF);
    assert_int_equal(got, 2);
    assert_int_equal(ss_stream_read_exact(p.s, buf, 5, NULL), SS_EEOF);
    assert_int_equal(ss_stream_read_exact(p.s, buf, 0, &got), 0);
    assert_int_equal(got, 0);
    pair_close(&p);
}

static void write_is_buffered_until_flush(void **state)
{
    (void)state;
    tu_alarm(10);
    ss_stream_opts o = {.write_buffer = 16};
    pair p;
    pair_open(&p, &o);
    char buf[64];
    assert_int_equal(ss_stream_write(p.s, "abc", 3), 0);
    assert_int_equal(ss_stream_write(p.s, "def", 3), 0);
    assert_int_equal(recv(p.peer, buf, sizeof buf, MSG_DONTWAIT), -1);
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(ss_stream_flush(p.s), 0);
    assert_int_equal(recv(p.peer, buf, sizeof buf, 0), 6);
    assert_memory_equal(buf, "abcdef", 6);
    assert_int_equal(ss_stream_flush(p.s), 0); /* nothing to do */

    /* filling the buffer writes the old bytes out first, in order */
    assert_int_equal(ss_stream_write(p.s, "0123456789", 10), 0);
    assert_int_equal(ss_stream_write(p.s, "ABCDEFGHIJ", 10), 0);
    assert_int_equal(recv(p.peer, buf, sizeof buf, 0), 10);
    assert_memory_equal(buf, "0123456789", 10);
    /* a write as large as the buffer goes straight out after the rest */
    assert_int_equal(ss_stream_write(p.s, "................", 16), 0);
    ssize_t n = 0;
    while (n < 26) {
        ssize_t r = recv(p.peer, buf + n, sizeof buf - (size_t)n, 0);
        assert_true(r > 0);
        n += r;
    }
    assert_memory_equal(buf, "ABCDEFGHIJ................", 26);
    pair_close(&p);
}

static void flush_times_out_and_keeps_data(void **state)
{
    (void)state;
    tu_alarm(20);
    ss_stream_opts o = {.write_buffer = 64 * 1024, .timeout = 0.2};
    pair p;
    pair_open(&p, &o);
    shrink_buffers(p.t.fd);
    shrink_buffers(p.peer);
    static char chunk[32 * 1024];
    memset(chunk, 'z', sizeof chunk);
    /* the peer never reads: within a bounded number of writes we must stall */
    int rc = 0;
    for (int i = 0; i < 64 && rc == 0; i++) {
        rc = ss_stream_write(p.s, chunk, sizeof chunk);
        if (rc == 0)
            rc = ss_stream_flush(p.s);
    }
    assert_int_equal(rc, SS_ETIMEOUT);
    /* the peer now drains; flushing without waiting (timeout 0) says
     * -EAGAIN until the last buffered byte has gone */
    char sink[8192];
    fcntl(p.peer, F_SETFL, O_NONBLOCK);
    ss_stream_settimeout(p.s, 0);
    for (int i = 0; i < 10000 && (rc = ss_stream_flush(p.s)) != 0; i++) {
        assert_int_equal(rc, -EAGAIN);
        while (recv(p.peer, sink, sizeof sink, 0) > 0)
            ;
    }
    assert_int_equal(rc, 0);
    while (recv(p.peer, sink, sizeof sink, 0) > 0)
        ;
    /* timeout 0: a write that would wait says -EAGAIN at once */
    rc = 0;
    for (int i = 0; i < 64 && rc == 0; i++)
        rc = ss_stream_write(p.s, chunk, sizeof chunk);
    assert_int_equal(rc, -EAGAIN);
    pair_close(&p);
}

static void write_to_closed_peer_is_epipe(void **state)
{
    (void)state;
    tu_alarm(10);
    pair p;
    pair_open(&p, NULL);
    close(p.peer);
    p.peer = -1;
    assert_int_equal(ss_stream_write(p.s, "x", 1), 0); /* only buffered */
    int rc = ss_stream_flush(p.s);
    assert_true(rc == -EPIPE || rc == -ECONNRESET);
    pair_close(&p);
}

static void shutdown_write_gives_peer_eof(void **state)
{
    (void)state;
    tu_alarm(10);
    pair p;
    pair_open(&p, NULL);
    assert_int_equal(ss_stream_write(p.s, "bye", 3), 0);
    assert_int_equal(ss_stream_flush(p.s), 0);
    assert_int_equal(p.t.ops->shutdown_write(&p.t), 0);
    char buf[8];
    assert_int_equal(recv(p.peer, buf, sizeof buf, 0), 3);
    assert_int_equal(recv(p.peer, buf, sizeof buf, 0), 0);
    /* reading still works after our side is shut */
    peer_write(&p, "ok\n");
    assert_int_equal(ss_stream_readline(p.s, buf, sizeof buf), 3);
    pair_close(&p);
}

static void pipe_transport(void **state)
{
    (void)state;
    tu_alarm(10);
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    ss_transport r, w;
    assert_int_equal(ss_transport_fd_init(&r, fds[0]), 0);
    assert_int_equal(ss_transport_fd_init(&w, fds[1]), 0);
    ss_stream *in, *out;
    ss_stream_opts o = {.timeout = 0.1};
    assert_int_equal(ss_stream_new(&in, &r, &o), 0);
    assert_int_equal(ss_stream_new(&out, &w, NULL), 0);
    char buf[16];
    assert_int_equal(ss_stream_readline(in, buf, sizeof buf), SS_ETIMEOUT);
    assert_int_equal(ss_stream_write(out, "piped\n", 6), 0);
    assert_int_equal(ss_stream_flush(out), 0);
    assert_int_equal(ss_stream_readline(in, buf, sizeof buf), 6);
    assert_memory_equal(buf, "piped\n", 6);
    assert_int_equal(w.ops->shutdown_write(&w), SS_EUNSUPPORTED);
    ss_stream_free(out);
    w.ops->close(&w);
    assert_int_equal(ss_stream_readline(in, buf, sizeof buf), 0);
    ss_stream_free(in);
    r.ops->close(&r);
}

/*
 * A transport shaped like TLS: its first read says -EAGAIN but needs the
 * socket writable (a renegotiation would), and its bytes sit in the socket
 * only once that "handshake" is done. A stream that polled for POLLIN
 * instead of asking wait_events would time out here.
 */
typedef struct fake_tls {
    int peer;
    bool asked;      /* the first read said "I need to write first" */
    bool handshaken; /* a read after that finished the handshake */
} fake_tls;

static ssize_t fake_read(ss_transport *t, void *buf, size_t len)
{
    fake_tls *f = t->impl;
    if (!f->asked) {
        f->asked = true;
        return -EAGAIN;
    }
    if (!f->handshaken) {
        /* the peer's data exists only once the handshake is done */
        f->handshaken = true;
        (void)!send(f->peer, "secret\n", 7, MSG_NOSIGNAL);
    }
    ssize_t n = recv(t->fd, buf, len, MSG_DONTWAIT);
    return n < 0 ? -errno : n;
}

static ssize_t fake_write(ss_transport *t, const void *buf, size_t len)
{
    ssize_t n = send(t->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    return n < 0 ? -errno : n;
}

static short fake_wait_events(ss_transport *t, short wanted)
{
    fake_tls *f = t->impl;
    return f->handshaken ? wanted : POLLOUT;
}

static int fake_shutdown_write(ss_transport *t)
{
    return shutdown(t->fd, SHUT_WR) < 0 ? -errno : 0;
}

static void fake_close(ss_transport *t)
{
    close(t->fd);
    t->fd = -1;
}

static void stream_polls_for_what_the_transport_wants(void **state)
{
    (void)state;
    tu_alarm(10);
    static const ss_transport_ops fake_ops = {
        .name = "fake-tls",
        .read = fake_read,
        .write = fake_write,
        .wait_events = fake_wait_events,
        .shutdown_write = fake_shutdown_write,
        .close = fake_close,
    };
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    fake_tls f = {.peer = sv[1]};
    ss_transport t = {.ops = &fake_ops, .fd = sv[0], .impl = &f};
    ss_stream *s;
    ss_stream_opts o = {.timeout = 0.5};
    assert_int_equal(ss_stream_new(&s, &t, &o), 0);
    char buf[16];
    assert_int_equal(ss_stream_readline(s, buf, sizeof buf), 7);
    assert_memory_equal(buf, "secret\n", 7);
    ss_stream_free(s);
    t.ops->close(&t);
    close(sv[1]);
}

static void tcp_stream_lines(void **state)
{
    (void)state;
    tu_alarm(10);
    int before = tu_count_fds();
    ss_sock cli, conn;
    tp_pair("tcp://127.0.0.1:0", &cli, &conn);
    ss_transport tc, ts;
    ss_stream *c, *s;
    ss_stream_opts o = {.timeout = 5};
    assert_int_equal(ss_transport_fd_init(&tc, cli.fd), 0);
    assert_int_equal(ss_transport_fd_init(&ts, conn.fd), 0);
    assert_int_equal(ss_stream_new(&c, &tc, &o), 0);
    assert_int_equal(ss_stream_new(&s, &ts, &o), 0);
    char buf[64];
    for (int i = 0; i < 100; i++) {
        int n = snprintf(buf, sizeof buf, "line %d\n", i);
        assert_int_equal(ss_stream_write(c, buf, (size_t)n), 0);
    }
    assert_int_equal(ss_stream_flush(c), 0);
    for (int i = 0; i < 100; i++) {
        char want[32];
        int n = snprintf(want, sizeof want, "line %d\n", i);
        assert_int_equal(ss_stream_readline(s, buf, sizeof buf), n);
        assert_memory_equal(buf, want, (size_t)n);
    }
    ss_stream_free(c);
    ss_stream_free(s);
    tc.ops->close(&tc); /* the transports own the descriptors now */
    ts.ops->close(&ts);
    assert_int_equal(tu_count_fds(), before);
}

/* A seqpacket message longer than the read: an error, never its head
 * alone (recv drops the tail of a message it cannot hold). */
static void seqpacket_message_over_the_read_is_an_error(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    ss_transport t;
    assert_int_equal(ss_transport_fd_init(&t, sv[0]), 0);
    static char big[100000], got[65536];
    memset(big, 'b', sizeof big);
    assert_int_equal(send(sv[1], big, sizeof big, 0), (ssize_t)sizeof big);
    assert_int_equal(send(sv[1], "next", 4, 0), 4);
    struct pollfd p = {.fd = sv[0], .events = POLLIN};
    assert_int_equal(poll(&p, 1, 5000), 1);
    assert_int_equal(t.ops->read(&t, got, sizeof got), -EMSGSIZE);
    assert_int_equal(t.ops->read(&t, got, sizeof got), 4); /* the next one is whole */
    assert_memory_equal(got, "next", 4);
    t.ops->close(&t);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(seqpacket_message_over_the_read_is_an_error),
        cmocka_unit_test(transport_sets_nonblocking),
        cmocka_unit_test(readline_then_read_buffered),
        cmocka_unit_test(readline_across_many_writes),
        cmocka_unit_test(readline_eof_mid_line),
        cmocka_unit_test(readline_too_long_keeps_data),
        cmocka_unit_test(readline_times_out_then_completes),
        cmocka_unit_test(read_timeout_eagain_and_eof_are_distinct),
        cmocka_unit_test(read_exact_paths),
        cmocka_unit_test(write_is_buffered_until_flush),
        cmocka_unit_test(flush_times_out_and_keeps_data),
        cmocka_unit_test(write_to_closed_peer_is_epipe),
        cmocka_unit_test(shutdown_write_gives_peer_eof),
        cmocka_unit_test(pipe_transport),
        cmocka_unit_test(stream_polls_for_what_the_transport_wants),
        cmocka_unit_test(tcp_stream_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
