/* SPDX-License-Identifier: MIT */
/* test_sock_transfer.c — bulk data through sendall and the stream with a
 * peer thread: partial writes, a byte-at-a-time reader, EINTR storms, and
 * 4 MiB checked byte for byte over TCP and unix sockets.
 * ctest-labels: tsan
 */
#include "sockpeer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static unsigned char pattern_byte(size_t i)
{
    /* not periodic in any power of two, so a lost or doubled chunk shows */
    return (unsigned char)((i * 131u + (i >> 11) * 7u) % 251u);
}

static unsigned char *pattern(size_t len)
{
    unsigned char *p = malloc(len);
    assert_non_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = pattern_byte(i);
    return p;
}

static void shrink_buffers(int fd)
{
    int small = 4096;
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
}

/* ---- a reader thread that takes `chunk` bytes per recv ----------------- */

typedef struct reader {
    int fd;
    size_t want;
    size_t chunk;
    size_t got;
    size_t mismatches;
    bool eof_seen;
} reader;

static void *reader_main(void *arg)
{
    reader *r = arg;
    unsigned char buf[65536];
    size_t chunk = r->chunk < sizeof buf ? r->chunk : sizeof buf;
    while (r->got < r->want) {
        ssize_t n = recv(r->fd, buf, chunk, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != pattern_byte(r->got + (size_t)i))
                r->mismatches++;
        r->got += (size_t)n;
    }
    /* then the sender's close must show as end of file */
    char c;
    r->eof_seen = recv(r->fd, &c, 1, 0) == 0;
    return NULL;
}

static void sendall_to_slow_reader(const char *text, double timeout, size_t len)
{
    ss_sock cli, conn;
    tp_pair(text, &cli, &conn);
    shrink_buffers(cli.fd);
    shrink_buffers(conn.fd);
    assert_int_equal(ss_sock_settimeout(&cli, timeout), 0);
    unsigned char *data = pattern(len);
    reader r = {.fd = conn.fd, .want = len, .chunk = 1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reader_main, &r), 0);
    assert_int_equal(ss_sock_sendall(&cli, data, len), 0);
    ss_sock_close(&cli);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(r.got, len);
    assert_int_equal(r.mismatches, 0);
    assert_true(r.eof_seen);
    ss_sock_close(&conn);
    free(data);
}

static void sendall_byte_at_a_time_reader_tcp(void **state)
{
    (void)state;
    tu_alarm(60);
    /* TCP with 4 KiB windows crawls (window updates wait for the reader):
     * 32 KiB is still eight times what the buffers hold */
    sendall_to_slow_reader("tcp://127.0.0.1:0", SS_TIMEOUT_NONE, 32 * 1024);
    /* the non-blocking path: every partial write followed by a poll */
    sendall_to_slow_reader("tcp://127.0.0.1:0", 10.0, 32 * 1024);
}

static void sendall_byte_at_a_time_reader_unix(void **state)
{
    (void)state;
    tu_alarm(60);
    char name[96], text[128];
    tu_abstract_name(name, sizeof name);
    snprintf(text, sizeof text, "unix:%s", name);
    sendall_to_slow_reader(text, 10.0, 64 * 1024);
}

/* ---- EINTR storm -------------------------------------------------------- */

static atomic_int signals_seen;
static atomic_bool storm_done;

static void count_signal(int sig)
{
    (void)sig;
    atomic_fetch_add(&signals_seen, 1);
}

static void *storm_main(void *arg)
{
    pthread_t target = *(pthread_t *)arg;
    /* bounded: at most 20000 signals, one every 200 us */
    for (int i = 0; i < 20000 && !atomic_load(&storm_done); i++) {
        pthread_kill(target, SIGUSR1);
        usleep(200);
    }
    return NULL;
}

static void sendall_survives_eintr(void **state)
{
    (void)state;
    tu_alarm(60);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = count_signal; /* no SA_RESTART: send() really fails EINTR */
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    atomic_store(&signals_seen, 0);
    atomic_store(&storm_done, false);

    /* a unix socket with small buffers: the blocking send waits often, and
     * unlike TCP with small windows it moves data fast */
    char name[96], text[128];
    tu_abstract_name(name, sizeof name);
    snprintf(text, sizeof text, "unix:%s", name);
    ss_sock cli, conn;
    tp_pair(text, &cli, &conn);
    shrink_buffers(cli.fd);
    shrink_buffers(conn.fd);
    const size_t len = 1024 * 1024;
    unsigned char *data = pattern(len);
    reader r = {.fd = conn.fd, .want = len, .chunk = 64};
    pthread_t rd, storm, self = pthread_self();
    assert_int_equal(pthread_create(&rd, NULL, reader_main, &r), 0);
    assert_int_equal(pthread_create(&storm, NULL, storm_main, &self), 0);
    int rc = ss_sock_sendall(&cli, data, len);
    atomic_store(&storm_done, true);
    assert_int_equal(pthread_join(storm, NULL), 0);
    assert_int_equal(rc, 0);
    ss_sock_close(&cli);
    assert_int_equal(pthread_join(rd, NULL), 0);
    assert_int_equal(r.got, len);
    assert_int_equal(r.mismatches, 0);
    assert_true(atomic_load(&signals_seen) > 0);
    ss_sock_close(&conn);
    free(data);
    sigaction(SIGUSR1, &old, NULL);
}

/* ---- 4 MiB through sendall, read back through the stream ---------------- */

typedef struct sender {
    ss_sock *sock;
    const unsigned char *data;
    size_t len;
    int rc;
} sender;

static void *sender_main(void *arg)
{
    sender *s = arg;
    s->rc = ss_sock_sendall(s->sock, s->data, s->len);
    ss_sock_shutdown(s->sock, SHUT_WR);
    return NULL;
}

static void transfer_4mib(const char *text)
{
    const size_t len = 4 * 1024 * 1024;
    ss_sock cli, conn;
    tp_pair(text, &cli, &conn);
    unsigned char *data = pattern(len);
    unsigned char *back = malloc(len);
    assert_non_null(back);
    sender snd = {.sock = &cli, .data = data, .len = len};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, sender_main, &snd), 0);

    ss_transport t;
    ss_stream *s;
    ss_stream_opts o = {.timeout = 20};
    int dup_fd = dup(conn.fd); /* the transport closes its own copy */
    assert_true(dup_fd >= 0);
    assert_int_equal(ss_transport_fd_init(&t, dup_fd), 0);
    assert_int_equal(ss_stream_new(&s, &t, &o), 0);
    /* uneven pieces: below, at and above the buffer size */
    static const size_t pieces[] = {1, 7, 4096, 16384, 100000, 3, 65536};
    size_t done = 0;
    for (int i = 0; done < len; i++) {
        size_t want = pieces[i % 7];
        if (want > len - done)
            want = len - done;
        size_t got = 0;
        int rc = ss_stream_read_exact(s, back + done, want, &got);
        assert_int_equal(rc, 0);
        assert_int_equal(got, want);
        done += got;
    }
    size_t got = 99;
    assert_int_equal(ss_stream_read_exact(s, back, 1, &got), SS_EEOF);
    assert_int_equal(got, 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(snd.rc, 0);
    assert_memory_equal(back, data, len);
    ss_stream_free(s);
    t.ops->close(&t);
    ss_sock_close(&cli);
    ss_sock_close(&conn);
    free(back);
    free(data);
}

static void transfer_4mib_tcp(void **state)
{
    (void)state;
    tu_alarm(60);
    int before = tu_count_fds();
    transfer_4mib("tcp://127.0.0.1:0");
    assert_int_equal(tu_count_fds(), before);
}

static void transfer_4mib_unix(void **state)
{
    (void)state;
    tu_alarm(60);
    char name[96], text[128];
    tu_abstract_name(name, sizeof name);
    snprintf(text, sizeof text, "unix:%s", name);
    transfer_4mib(text);
}

/* ---- the stream's writer against a thread that reads ------------------- */

typedef struct stream_writer {
    ss_stream *s;
    const unsigned char *data;
    size_t len;
    int rc;
} stream_writer;

static void *stream_writer_main(void *arg)
{
    stream_writer *w = arg;
    static const size_t pieces[] = {5, 20000, 1, 16384, 999};
    size_t done = 0;
    w->rc = 0;
    for (int i = 0; done < w->len && w->rc == 0; i++) {
        size_t n = pieces[i % 5];
        if (n > w->len - done)
            n = w->len - done;
        w->rc = ss_stream_write(w->s, w->data + done, n);
        done += n;
    }
    if (w->rc == 0)
        w->rc = ss_stream_flush(w->s);
    return NULL;
}

static void stream_write_4mib_tcp(void **state)
{
    (void)state;
    tu_alarm(60);
    const size_t len = 4 * 1024 * 1024;
    ss_sock cli, conn;
    tp_pair("tcp://127.0.0.1:0", &cli, &conn);
    unsigned char *data = pattern(len);
    ss_transport t;
    ss_stream *s;
    ss_stream_opts o = {.timeout = 20, .write_buffer = 8192};
    int dup_fd = dup(cli.fd);
    assert_true(dup_fd >= 0);
    assert_int_equal(ss_transport_fd_init(&t, dup_fd), 0);
    assert_int_equal(ss_stream_new(&s, &t, &o), 0);
    stream_writer w = {.s = s, .data = data, .len = len};
    reader r = {.fd = conn.fd, .want = len, .chunk = 60000};
    pthread_t wt, rt;
    assert_int_equal(pthread_create(&rt, NULL, reader_main, &r), 0);
    assert_int_equal(pthread_create(&wt, NULL, stream_writer_main, &w), 0);
    assert_int_equal(pthread_join(wt, NULL), 0);
    assert_int_equal(w.rc, 0);
    ss_stream_free(s);
    t.ops->close(&t);
    ss_sock_close(&cli);
    assert_int_equal(pthread_join(rt, NULL), 0);
    assert_int_equal(r.got, len);
    assert_int_equal(r.mismatches, 0);
    assert_true(r.eof_seen);
    ss_sock_close(&conn);
    free(data);
}

/* ---- NONE stays blocking even over a descriptor made non-blocking ------- */

typedef struct late_writer {
    int fd;
    ssize_t rc;
} late_writer;

static void *late_writer_main(void *arg)
{
    late_writer *w = arg;
    usleep(100 * 1000);
    w->rc = send(w->fd, "late", 4, MSG_NOSIGNAL);
    return NULL;
}

static void timeout_none_blocks_over_nonblocking_fd(void **state)
{
    (void)state;
    tu_alarm(10);
    ss_sock cli, conn;
    tp_pair("tcp://127.0.0.1:0", &cli, &conn);
    /* e.g. a transport was put over the same descriptor */
    assert_int_equal(fcntl(cli.fd, F_SETFL, fcntl(cli.fd, F_GETFL) | O_NONBLOCK), 0);
    assert_true(ss_sock_gettimeout(&cli) == SS_TIMEOUT_NONE);
    late_writer w = {.fd = conn.fd};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, late_writer_main, &w), 0);
    char buf[8];
    assert_int_equal(ss_sock_recv(&cli, buf, sizeof buf, 0), 4);
    assert_memory_equal(buf, "late", 4);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(w.rc, 4);
    ss_sock_close(&cli);
    ss_sock_close(&conn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sendall_byte_at_a_time_reader_tcp),
        cmocka_unit_test(sendall_byte_at_a_time_reader_unix),
        cmocka_unit_test(sendall_survives_eintr),
        cmocka_unit_test(transfer_4mib_tcp),
        cmocka_unit_test(transfer_4mib_unix),
        cmocka_unit_test(stream_write_4mib_tcp),
        cmocka_unit_test(timeout_none_blocks_over_nonblocking_fd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
