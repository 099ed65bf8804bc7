/* SPDX-License-Identifier: MIT */
/* test_sock.c — the sock layer: open, options, bind/listen/accept/connect,
 * unix socket files, names, ss_listen / ss_dial, errors and fd hygiene. */
#include "sockpeer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void assert_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFD);
    assert_true(fl >= 0 && (fl & FD_CLOEXEC));
}

static bool is_nonblocking(int fd)
{
    return (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0;
}

static void open_every_kind_cloexec(void **state)
{
    (void)state;
    static const struct {
        int family, type;
        ss_addr_kind kind;
    } cases[] = {
        {AF_INET, SOCK_STREAM, SS_ADDR_TCP},          {AF_INET, SOCK_DGRAM, SS_ADDR_UDP},
        {AF_UNIX, SOCK_STREAM, SS_ADDR_UNIX},         {AF_UNIX, SOCK_DGRAM, SS_ADDR_UNIXGRAM},
        {AF_UNIX, SOCK_SEQPACKET, SS_ADDR_SEQPACKET},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ss_sock s;
        assert_int_equal(ss_sock_open(&s, cases[i].family, cases[i].type, 0), 0);
        assert_cloexec(s.fd);
        assert_false(is_nonblocking(s.fd));
        assert_int_equal(s.kind, cases[i].kind);
        assert_int_equal(s.family, cases[i].family);
        assert_true(ss_sock_gettimeout(&s) < 0);
        assert_int_equal(ss_sock_close(&s), 0);
        assert_int_equal(s.fd, -1);
        assert_int_equal(ss_sock_close(&s), 0); /* idempotent */
    }
    ss_sock bad;
    assert_int_equal(ss_sock_open(&bad, 12345, SOCK_STREAM, 0), -EAFNOSUPPORT);
    assert_int_equal(bad.fd, -1);
}

static void raw_is_eperm_without_privilege(void **state)
{
    (void)state;
    ss_sock s;
    int rc = ss_sock_open(&s, AF_INET, SOCK_RAW, IPPROTO_ICMP);
    if (rc == 0) {
        /* we have CAP_NET_RAW: then the socket must be a proper one */
        assert_cloexec(s.fd);
        assert_int_equal(s.kind, SS_ADDR_NONE);
        ss_sock_close(&s);
    } else {
        assert_int_equal(rc, -EPERM);
        assert_int_equal(s.fd, -1);
    }
}

static void settimeout_switches_blocking_mode(void **state)
{
    (void)state;
    ss_sock s;
    assert_int_equal(ss_sock_open(&s, AF_INET, SOCK_STREAM, 0), 0);
    assert_int_equal(ss_sock_settimeout(&s, 0), 0);
    assert_true(is_nonblocking(s.fd));
    assert_true(ss_sock_gettimeout(&s) == 0.0);
    assert_int_equal(ss_sock_settimeout(&s, 1.5), 0);
    assert_true(is_nonblocking(s.fd));
    assert_true(ss_sock_gettimeout(&s) == 1.5);
    assert_int_equal(ss_sock_setblocking(&s, true), 0);
    assert_false(is_nonblocking(s.fd));
    assert_true(ss_sock_gettimeout(&s) == SS_TIMEOUT_NONE);
    assert_int_equal(ss_sock_setblocking(&s, false), 0);
    assert_true(is_nonblocking(s.fd));
    assert_true(ss_sock_gettimeout(&s) == 0.0);
    ss_sock_close(&s);
}

static void timeout_zero_gives_eagain(void **state)
{
    (void)state;
    tu_alarm(10);
    ss_sock srv, cli, conn;
    ss_addr bound;
    assert_int_equal(tp_listen(&srv, "tcp://127.0.0.1:0", &bound), 0);
    assert_int_equal(ss_sock_settimeout(&srv, 0), 0);
    assert_int_equal(ss_sock_accept(&srv, &conn, NULL), -EAGAIN);
    tp_connect(&cli, &bound);
    assert_int_equal(ss_sock_settimeout(&cli, 0), 0);
    char buf[8];
    assert_int_equal(ss_sock_recv(&cli, buf, sizeof buf, 0), -EAGAIN);
    ss_sock_close(&cli);
    ss_sock_close(&srv);
}

static void recv_times_out(void **state)
{
    (void)state;
    tu_alarm(10);
    ss_sock cli, conn;
    tp_pair("tcp://127.0.0.1:0", &cli, &conn);
    assert_int_equal(ss_sock_settimeout(&cli, 0.2), 0);
    char buf[8];
    double t0 = tp_now();
    assert_int_equal(ss_sock_recv(&cli, buf, sizeof buf, 0), SS_ETIMEOUT);
    assert_true(tp_now() - t0 >= 0.15);
    ss_addr from;
    assert_int_equal(ss_sock_recvfrom(&cli, buf, sizeof buf, 0, &from), SS_ETIMEOUT);
    /* data that comes afterwards is still read normally */
    assert_int_equal(ss_sock_sendall(&conn, "hi", 2), 0);
    assert_int_equal(ss_sock_recv(&cli, buf, sizeof buf, 0), 2);
    ss_sock_close(&conn);
    assert_int_equal(ss_sock_recv(&cli, buf, sizeof buf, 0), 0); /* EOF is 0 */
    ss_sock_close(&cli);
}

static void sendall_times_out_when_peer_stops_reading(void **state)
{
    (void)state;
    tu_alarm(20);
    ss_sock cli, conn;
    tp_pair("tcp://127.0.0.1:0", &cli, &conn);
    int small = 4096;
    assert_int_equal(ss_sock_set_option(&cli, SS_OPT_SNDBUF, small), 0);
    assert_int_equal(ss_sock_set_option(&conn, SS_OPT_RCVBUF, small), 0);
    assert_int_equal(ss_sock_settimeout(&cli, 0.3), 0);
    const size_t len = 8 * 1024 * 1024; /* far beyond both buffers */
    char *big = calloc(1, len);
    assert_non_null(big);
    double t0 = tp_now();
    assert_int_equal(ss_sock_sendall(&cli, big, len), SS_ETIMEOUT);
    assert_true(tp_now() - t0 >= 0.25);
    /* and with timeout 0 the same stall is -EAGAIN, at once */
    assert_int_equal(ss_sock_settimeout(&cli, 0), 0);
    assert_int_equal(ss_sock_sendall(&cli, big, len), -EAGAIN);
    free(big);
    ss_sock_close(&cli);
    ss_sock_close(&conn);
}

static void accept_times_out(void **state)
{
    (void)state;
    tu_alarm(10);
    ss_sock srv, conn;
    ss_addr bound;
    assert_int_equal(tp_listen(&srv, "tcp://127.0.0.1:0", &bound), 0);
    assert_int_equal(ss_sock_settimeout(&srv, 0.2), 0);
    double t0 = tp_now();
    assert_int_equal(ss_sock_accept(&srv, &conn, NULL), SS_ETIMEOUT);
    assert_true(tp_now() - t0 >= 0.15);
    assert_int_equal(conn.fd, -1);
    ss_sock_close(&srv);
}

static void accepted_socket_is_blocking_and_cloexec(void **state)
{
    (void)state;
    tu_alarm(10);
    ss_sock srv, cli, conn;
    ss_addr bound, peer, cli_name, conn_peer;
    assert_int_equal(tp_listen(&srv, "tcp://127.0.0.1:0", &bound), 0);
    assert_int_equal(ss_sock_settimeout(&srv, 2.0), 0);
    tp_connect(&cli, &bound);
    assert_int_equal(ss_sock_accept(&srv, &conn, &peer), 0);
    assert_cloexec(conn.fd);
    assert_false(is_nonblocking(conn.fd));
    assert_true(ss_sock_gettimeout(&conn) == SS_TIMEOUT_NONE);
    assert_int_equal(conn.kind, SS_ADDR_TCP);
    /* the peer accept saw is the client's own name, and vice versa */
    assert_int_equal(ss_sock_getsockname(&cli, &cli_name), 0);
    char a[SS_ADDR_STRLEN], b[SS_ADDR_STRLEN];
    ss_addr_format(&peer, a, sizeof a);
    ss_addr_format(&cli_name, b, sizeof b);
    assert_string_equal(a, b);
    assert_int_equal(ss_sock_getpeername(&conn, &conn_peer), 0);
    ss_addr_format(&conn_peer, b, sizeof b);
    assert_string_equal(a, b);
    assert_int_equal(strncmp(a, "tcp://127.0.0.1:", 16), 0);
    ss_sock_close(&cli);
    ss_sock_close(&conn);
    ss_sock_close(&srv);
}

static void connect_ex_closed_port_refused(void **state)
{
    (void)state;
    tu_alarm(10);
    int before = tu_count_fds();
    /* a bound socket that does not listen holds the port and answers RST */
    ss_sock holder, cli;
    ss_addr a, bound;
    tp_parse(&a, "tcp://127.0.0.1:0");
    assert_int_equal(ss_sock_open_for(&holder, &a), 0);
    assert_int_equal(ss_sock_bind(&holder, &a, NULL), 0);
    assert_int_equal(ss_sock_getsockname(&holder, &bound), 0);

    assert_int_equal(ss_sock_open_for(&cli, &bound), 0);
    assert_int_equal(ss_sock_connect_ex(&cli, &bound), -ECONNREFUSED);
    ss_sock_close(&cli);

    assert_int_equal(ss_sock_open_for(&cli, &bound), 0);
    assert_int_equal(ss_sock_settimeout(&cli, 2.0), 0); /* the non-blocking path */
    ss_error err = {0};
    assert_int_equal(ss_sock_connect(&cli, &bound, &err), -ECONNREFUSED);
    assert_int_equal(err.code, -ECONNREFUSED);
    char want[SS_ADDR_STRLEN + 64], text[SS_ADDR_STRLEN];
    ss_addr_format(&bound, text, sizeof text);
    snprintf(want, sizeof want, "cannot connect to %s: Connection refused", text);
    assert_string_equal(err.msg, want);
    ss_sock_close(&cli);

    /* ss_dial says the same, and leaves nothing open */
    ss_sock d;
    memset(&err, 0, sizeof err);
    assert_int_equal(ss_dial(&d, text, 2.0, &err), -ECONNREFUSED);
    assert_string_equal(err.msg, want);
    assert_int_equal(d.fd, -1);
    ss_sock_close(&holder);
    assert_int_equal(tu_count_fds(), before);
}

/*
 * A listener with backlog 0 that never accepts: once its accept queue is
 * full the kernel drops further SYNs, so a connect waits for a retransmit
 * (a second away) and our 0.3 s timeout runs out. Loopback only.
 */
static void connect_times_out_on_full_backlog(void **state)
{
    (void)state;
    tu_alarm(30);
    int before = tu_count_fds();
    ss_sock srv;
    ss_addr a, bound;
    ss_listen_opts o = {.backlog = 1};
    tp_parse(&a, "tcp://127.0.0.1:0");
    assert_int_equal(ss_listen(&srv, &a, &o, NULL), 0);
    assert_int_equal(ss_sock_listen(&srv, 0), 0);
    assert_int_equal(ss_sock_getsockname(&srv, &bound), 0);

    enum { MAX_TRIES = 32 };
    ss_sock queued[MAX_TRIES];
    int nqueued = 0, rc = 0;
    ss_error err = {0};
    for (int i = 0; i < MAX_TRIES; i++) {
        ss_sock c;
        assert_int_equal(ss_sock_open_for(&c, &bound), 0);
        assert_int_equal(ss_sock_settimeout(&c, 0.3), 0);
        rc = ss_sock_connect(&c, &bound, &err);
        if (rc == 0) {
            queued[nqueued++] = c;
            continue;
        }
        ss_sock_close(&c);
        break;
    }
    assert_int_equal(rc, SS_ETIMEOUT);
    assert_non_null(strstr(err.msg, "timed out"));
    for (int i = 0; i < nqueued; i++)
        ss_sock_close(&queued[i]);
    ss_sock_close(&srv);
    assert_int_equal(tu_count_fds(), before);
}

static void timeout_zero_connect_is_einprogress(void **state)
{
    (void)state;
    tu_alarm(10);
    ss_sock srv, cli, conn;
    ss_addr bound;
    assert_int_equal(tp_listen(&srv, "tcp://127.0.0.1:0", &bound), 0);
    assert_int_equal(ss_sock_open_for(&cli, &bound), 0);
    assert_int_equal(ss_sock_settimeout(&cli, 0), 0);
    int rc = ss_sock_connect_ex(&cli, &bound);
    /* loopback may finish at once; otherwise Python's BlockingIOError */
    assert_true(rc == 0 || rc == -EINPROGRESS);
    assert_int_equal(ss_sock_settimeout(&srv, 2.0), 0);
    assert_int_equal(ss_sock_accept(&srv, &conn, NULL), 0);
    ss_sock_close(&conn);
    ss_sock_close(&cli);
    ss_sock_close(&srv);
}

static void closed_peer_gives_epipe_not_sigpipe(void **state)
{
    (void)state;
    tu_alarm(10);
    ss_sock cli, conn;
    tp_pair("tcp://127.0.0.1:0", &cli, &conn);
    ss_sock_close(&conn);
    /* the first send may succeed (the RST comes back afterwards): bounded */
    char buf[1024];
    memset(buf, 'x', sizeof buf);
    int rc = 0;
    for (int i = 0; i < 200 && rc == 0; i++) {
        rc = ss_sock_sendall(&cli, buf, sizeof buf);
        if (rc == 0)
            usleep(1000);
    }
    assert_true(rc == -EPIPE || rc == -ECONNRESET);
    ss_sock_close(&cli);

    /* and over a unix socket, where the first write fails at once */
    char name[96], text[128];
    tu_abstract_name(name, sizeof name);
    snprintf(text, sizeof text, "unix:%s", name);
    tp_pair(text, &cli, &conn);
    ss_sock_close(&conn);
    assert_int_equal(ss_sock_send(&cli, "x", 1, 0), -EPIPE);
    ss_sock_close(&cli);
}

static void options_set_and_read_back(void **state)
{
    (void)state;
    ss_sock t, u;
    int v;
    assert_int_equal(ss_sock_open(&t, AF_INET, SOCK_STREAM, 0), 0);
    static const ss_sockopt flags[] = {SS_OPT_REUSEADDR, SS_OPT_REUSEPORT, SS_OPT_NODELAY,
                                       SS_OPT_KEEPALIVE};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        assert_int_equal(ss_sock_set_option(&t, flags[i], 1), 0);
        assert_int_equal(ss_sock_get_option(&t, flags[i], &v), 0);
        assert_int_not_equal(v, 0);
        assert_int_equal(ss_sock_set_option(&t, flags[i], 0), 0);
        assert_int_equal(ss_sock_get_option(&t, flags[i], &v), 0);
        assert_int_equal(v, 0);
    }
    assert_int_equal(ss_sock_set_option(&t, SS_OPT_RCVBUF, 8192), 0);
    assert_int_equal(ss_sock_get_option(&t, SS_OPT_RCVBUF, &v), 0);
    assert_true(v >= 8192);
    assert_int_equal(ss_sock_set_option(&t, SS_OPT_SNDBUF, 8192), 0);
    assert_int_equal(ss_sock_get_option(&t, SS_OPT_SNDBUF, &v), 0);
    assert_true(v >= 8192);
    /* an option that does not apply is an errno, not a crash */
    assert_int_equal(ss_sock_set_option(&t, SS_OPT_V6ONLY, 1), -ENOPROTOOPT);
    assert_int_equal(ss_sock_set_option(&t, (ss_sockopt)999, 1), SS_EUSAGE);
    ss_sock_close(&t);

    assert_int_equal(ss_sock_open(&u, AF_INET, SOCK_DGRAM, 0), 0);
    assert_int_equal(ss_sock_set_option(&u, SS_OPT_BROADCAST, 1), 0);
    assert_int_equal(ss_sock_get_option(&u, SS_OPT_BROADCAST, &v), 0);
    assert_int_not_equal(v, 0);
    ss_sock_close(&u);
}

static void from_fd_adopts_a_socket(void **state)
{
    (void)state;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    assert_true(fd >= 0);
    ss_sock s;
    assert_int_equal(ss_sock_from_fd(&s, fd, SS_ADDR_NONE), 0);
    assert_int_equal(s.kind, SS_ADDR_UNIXGRAM);
    assert_int_equal(s.family, AF_UNIX);
    assert_true(ss_sock_gettimeout(&s) == 0.0);
    assert_cloexec(fd);
    ss_sock_close(&s);

    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(ss_sock_from_fd(&s, p[0], SS_ADDR_NONE), -ENOTSOCK);
    assert_int_equal(s.fd, -1);
    close(p[0]);
    close(p[1]);
}

static void udp_roundtrip(void **state)
{
    (void)state;
    tu_alarm(10);
    ss_sock srv, cli;
    ss_addr bound, from;
    char text[SS_ADDR_STRLEN], buf[64];
    assert_int_equal(tp_listen(&srv, "udp://127.0.0.1:0", &bound), 0);
    ss_addr_format(&bound, text, sizeof text);
    assert_int_equal(strncmp(text, "udp://127.0.0.1:", 16), 0);
    assert_int_equal(ss_dial(&cli, text, 2.0, NULL), 0);
    assert_int_equal(ss_sock_send(&cli, "ping", 4, 0), 4);
    assert_int_equal(ss_sock_settimeout(&srv, 2.0), 0);
    assert_int_equal(ss_sock_recvfrom(&srv, buf, sizeof buf, 0, &from), 4);
    assert_memory_equal(buf, "ping", 4);
    assert_int_equal(from.kind, SS_ADDR_UDP);
    assert_int_equal(ss_sock_sendto(&srv, "pong", 4, 0, &from), 4);
    assert_int_equal(ss_sock_recv(&cli, buf, sizeof buf, 0), 4);
    assert_memory_equal(buf, "pong", 4);
    ss_sock_close(&cli);
    ss_sock_close(&srv);
}

/* ---- unix sockets ------------------------------------------------------- */

/* Echo one message over a listener of `text` (any unix kind) via ss_dial. */
static void unix_exchange(const char *text, ss_addr_kind kind)
{
    ss_sock srv, cli, conn;
    ss_addr bound;
    char name[SS_ADDR_STRLEN], buf[64];
    assert_int_equal(tp_listen(&srv, text, &bound), 0);
    assert_int_equal(srv.kind, kind);
    ss_addr_format(&bound, name, sizeof name);
    assert_string_equal(name, text);
    ss_error err = {0};
    int rc = ss_dial(&cli, text, 2.0, &err);
    if (rc != 0)
        fail_msg("dial %s: %s", text, err.msg);
    assert_int_equal(cli.kind, kind);
    assert_int_equal(ss_sock_sendall(&cli, "hello", 5), 0);
    if (kind == SS_ADDR_UNIXGRAM) {
        /* the client was autobound, so the server can answer it */
        ss_addr from;
        assert_int_equal(ss_sock_settimeout(&srv, 2.0), 0);
        assert_int_equal(ss_sock_recvfrom(&srv, buf, sizeof buf, 0, &from), 5);
        assert_true(from.len > sizeof(sa_family_t));
        assert_int_equal(ss_sock_sendto(&srv, "HELLO", 5, 0, &from), 5);
    } else {
        ss_addr peer;
        char peer_text[SS_ADDR_STRLEN], want[32];
        assert_int_equal(ss_sock_accept(&srv, &conn, &peer), 0);
        /* a unix client has no name: "unix:" / "seqpacket:" */
        assert_int_equal(peer.kind, kind);
        assert_true(ss_addr_format(&peer, peer_text, sizeof peer_text) >= 0);
        snprintf(want, sizeof want, "%s:", ss_addr_kind_name(kind));
        assert_string_equal(peer_text, want);
        ss_addr from;
        assert_int_equal(ss_sock_recvfrom(&conn, buf, sizeof buf, 0, &from), 5);
        assert_int_equal(from.kind, kind);
        assert_int_equal(ss_sock_sendall(&conn, "HELLO", 5), 0);
        ss_sock_close(&conn);
    }
    assert_int_equal(ss_sock_recv(&cli, buf, sizeof buf, 0), 5);
    assert_memory_equal(buf, "HELLO", 5);
    ss_sock_close(&cli);
    ss_sock_close(&srv);
}

static void unix_abstract_every_type(void **state)
{
    (void)state;
    tu_alarm(10);
    static const char *schemes[] = {"unix", "unixgram", "seqpacket"};
    static const ss_addr_kind kinds[] = {SS_ADDR_UNIX, SS_ADDR_UNIXGRAM, SS_ADDR_SEQPACKET};
    int before = tu_count_fds();
    for (int i = 0; i < 3; i++) {
        char name[96], text[128];
        tu_abstract_name(name, sizeof name);
        snprintf(text, sizeof text, "%s:%s", schemes[i], name);
        unix_exchange(text, kinds[i]);
    }
    assert_int_equal(tu_count_fds(), before);
}

static void unix_path_every_type(void **state)
{
    (void)state;
    tu_alarm(10);
    static const char *schemes[] = {"unix", "unixgram", "seqpacket"};
    static const ss_addr_kind kinds[] = {SS_ADDR_UNIX, SS_ADDR_UNIXGRAM, SS_ADDR_SEQPACKET};
    int before = tu_count_fds();
    for (int i = 0; i < 3; i++) {
        char path[96], text[128];
        tu_temp_path(path, sizeof path, schemes[i]);
        snprintf(text, sizeof text, "%s:%s", schemes[i], path);
        unix_exchange(text, kinds[i]);
        unlink(path);
    }
    assert_int_equal(tu_count_fds(), before);
}

static void unix_stale_file_replaced(void **state)
{
    (void)state;
    tu_alarm(10);
    static const char *schemes[] = {"unix", "unixgram", "seqpacket"};
    for (int i = 0; i < 3; i++) {
        char path[96], text[128], leaf[32];
        snprintf(leaf, sizeof leaf, "stale-%s.sock", schemes[i]);
        tu_temp_path(path, sizeof path, leaf);
        snprintf(text, sizeof text, "%s:%s", schemes[i], path);
        /* a server that died without removing its file */
        ss_sock dead;
        assert_int_equal(tp_listen(&dead, text, NULL), 0);
        ss_sock_close(&dead);
        struct stat st;
        assert_int_equal(lstat(path, &st), 0);
        assert_true(S_ISSOCK(st.st_mode));

        int before = tu_count_fds();
        ss_sock srv, cli;
        ss_error err = {0};
        assert_int_equal(tp_listen(&srv, text, NULL), 0);
        int rc = ss_dial(&cli, text, 2.0, &err);
        if (rc != 0)
            fail_msg("dial %s: %s", text, err.msg);
        ss_sock_close(&cli);
        ss_sock_close(&srv);
        assert_int_equal(tu_count_fds(), before);
        unlink(path);
    }
}

static void unix_live_socket_refused(void **state)
{
    (void)state;
    tu_alarm(10);
    static const char *schemes[] = {"unix", "unixgram", "seqpacket"};
    for (int i = 0; i < 3; i++) {
        char path[96], text[128], leaf[32];
        snprintf(leaf, sizeof leaf, "live-%s.sock", schemes[i]);
        tu_temp_path(path, sizeof path, leaf);
        snprintf(text, sizeof text, "%s:%s", schemes[i], path);
        ss_sock live, second;
        ss_addr a;
        assert_int_equal(tp_listen(&live, text, NULL), 0);
        int before = tu_count_fds();
        tp_parse(&a, text);
        ss_error err = {0};
        assert_int_equal(ss_listen(&second, &a, NULL, &err), -EADDRINUSE);
        assert_int_equal(second.fd, -1);
        char want[256];
        snprintf(want, sizeof want, "cannot bind %s: Address already in use", text);
        assert_string_equal(err.msg, want);
        assert_int_equal(tu_count_fds(), before);
        /* the live server still has its file and is still reachable */
        ss_sock cli;
        assert_int_equal(ss_dial(&cli, text, 2.0, NULL), 0);
        ss_sock_close(&cli);
        ss_sock_close(&live);
        unlink(path);
    }
}

static void unix_regular_file_never_removed(void **state)
{
    (void)state;
    tu_alarm(10);
    char path[96], text[128];
    tu_temp_path(path, sizeof path, "precious.txt");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("keep me\n", f);
    fclose(f);
    snprintf(text, sizeof text, "unix:%s", path);
    int before = tu_count_fds();
    ss_sock s;
    ss_addr a;
    tp_parse(&a, text);
    ss_error err = {0};
    assert_int_equal(ss_listen(&s, &a, NULL, &err), -EADDRINUSE);
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(tu_count_fds(), before);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_size, 8);
    unlink(path);
}

/* ---- ss_listen / ss_dial ------------------------------------------------ */

static void listen_port_in_use_names_address(void **state)
{
    (void)state;
    tu_alarm(10);
    ss_sock first, second;
    ss_addr bound;
    assert_int_equal(tp_listen(&first, "tcp://127.0.0.1:0", &bound), 0);
    char text[SS_ADDR_STRLEN], want[SS_ADDR_STRLEN + 64];
    ss_addr_format(&bound, text, sizeof text);
    int before = tu_count_fds();
    ss_error err = {0};
    ss_listen_opts o = {.reuse_address = true};
    assert_int_equal(ss_listen(&second, &bound, &o, &err), -EADDRINUSE);
    snprintf(want, sizeof want, "cannot bind %s: Address already in use", text);
    assert_string_equal(err.msg, want);
    assert_int_equal(err.code, -EADDRINUSE);
    assert_int_equal(second.fd, -1);
    assert_int_equal(tu_count_fds(), before);
    ss_sock_close(&first);
}

static void listen_reuse_port_shares(void **state)
{
    (void)state;
    ss_sock a, b;
    ss_addr bound;
    ss_listen_opts o = {.reuse_port = true, .reuse_address = true};
    ss_addr any;
    tp_parse(&any, "tcp://127.0.0.1:0");
    assert_int_equal(ss_listen(&a, &any, &o, NULL), 0);
    assert_int_equal(ss_sock_getsockname(&a, &bound), 0);
    assert_int_equal(ss_listen(&b, &bound, &o, NULL), 0);
    int v = 0;
    assert_int_equal(ss_sock_get_option(&b, SS_OPT_REUSEPORT, &v), 0);
    assert_int_not_equal(v, 0);
    ss_sock_close(&b);
    ss_sock_close(&a);
}

static void listen_privileged_port_message(void **state)
{
    (void)state;
    if (geteuid() == 0)
        skip(); /* root may bind port 80 */
    ss_sock s;
    ss_addr a;
    tp_parse(&a, "tcp://127.0.0.1:80");
    ss_error err = {0};
    int rc = ss_listen(&s, &a, NULL, &err);
    if (rc == 0) { /* net.ipv4.ip_unprivileged_port_start may allow it */
        ss_sock_close(&s);
        skip();
    }
    assert_true(rc == -EACCES || rc == -EADDRINUSE);
    if (rc == -EACCES)
        assert_string_equal(err.msg, "cannot bind tcp://127.0.0.1:80: Permission denied");
}

static void dial_bad_address_fails_cleanly(void **state)
{
    (void)state;
    int before = tu_count_fds();
    ss_sock s;
    ss_error err = {0};
    int rc = ss_dial(&s, "nonsense-scheme://x", 1.0, &err);
    assert_true(rc < 0);
    assert_int_equal(s.fd, -1);
    assert_true(err.msg[0] != '\0');
    assert_int_equal(tu_count_fds(), before);
}

static void dial_keeps_timeout(void **state)
{
    (void)state;
    tu_alarm(10);
    ss_sock srv, cli, conn;
    ss_addr bound;
    char text[SS_ADDR_STRLEN];
    assert_int_equal(tp_listen(&srv, "tcp://127.0.0.1:0", &bound), 0);
    ss_addr_format(&bound, text, sizeof text);
    assert_int_equal(ss_dial(&cli, text, 0.25, NULL), 0);
    assert_true(ss_sock_gettimeout(&cli) == 0.25);
    assert_int_equal(ss_sock_accept(&srv, &conn, NULL), 0);
    char c;
    assert_int_equal(ss_sock_recv(&cli, &c, 1, 0), SS_ETIMEOUT);
    ss_sock_close(&conn);
    ss_sock_close(&cli);
    ss_sock_close(&srv);
}

/* "localhost" may give ::1 first: with a server on 127.0.0.1 only, the
 * first address is refused and the next one must be tried. */
static void dial_tries_every_address(void **state)
{
    (void)state;
    tu_alarm(10);
    int before = tu_count_fds();
    ss_sock srv, cli, conn;
    ss_addr bound;
    assert_int_equal(tp_listen(&srv, "tcp://127.0.0.1:0", &bound), 0);
    char text[64];
    snprintf(text, sizeof text, "tcp://localhost:%d", ss_addr_port(&bound));
    ss_error err = {0};
    int rc = ss_dial(&cli, text, 2.0, &err);
    if (rc != 0)
        fail_msg("dial %s: %s", text, err.msg);
    assert_int_equal(cli.family, AF_INET);
    assert_int_equal(ss_sock_accept(&srv, &conn, NULL), 0);
    ss_sock_close(&conn);
    ss_sock_close(&cli);
    /* ":PORT" means localhost for a client */
    snprintf(text, sizeof text, ":%d", ss_addr_port(&bound));
    assert_int_equal(ss_dial(&cli, text, 2.0, NULL), 0);
    ss_sock_close(&cli);
    ss_sock_close(&srv);
    assert_int_equal(tu_count_fds(), before);
}

/* ---- IPv6 --------------------------------------------------------------- */

static bool have_ipv6_loopback(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static void ipv6_loopback_roundtrip(void **state)
{
    (void)state;
    if (!have_ipv6_loopback())
        skip();
    tu_alarm(10);
    ss_sock cli, conn;
    tp_pair("tcp://[::1]:0", &cli, &conn);
    assert_int_equal(cli.family, AF_INET6);
    ss_addr name;
    char text[SS_ADDR_STRLEN], buf[8];
    assert_int_equal(ss_sock_getpeername(&cli, &name), 0);
    ss_addr_format(&name, text, sizeof text);
    assert_int_equal(strncmp(text, "tcp://[::1]:", 12), 0);
    assert_int_equal(ss_sock_sendall(&cli, "six", 3), 0);
    assert_int_equal(ss_sock_recv(&conn, buf, sizeof buf, 0), 3);
    ss_sock_close(&cli);
    ss_sock_close(&conn);
}

static void ipv6_any_is_dual_stack(void **state)
{
    (void)state;
    if (!have_ipv6_loopback())
        skip();
    tu_alarm(10);
    ss_sock srv, cli, conn;
    ss_addr bound, v4;
    assert_int_equal(tp_listen(&srv, "tcp://[::]:0", &bound), 0);
    int v = -1;
    assert_int_equal(ss_sock_get_option(&srv, SS_OPT_V6ONLY, &v), 0);
    assert_int_equal(v, 0);
    char text[64];
    snprintf(text, sizeof text, "tcp://127.0.0.1:%d", ss_addr_port(&bound));
    tp_parse(&v4, text);
    tp_connect(&cli, &v4);
    assert_int_equal(ss_sock_accept(&srv, &conn, NULL), 0);
    ss_sock_close(&conn);
    ss_sock_close(&cli);
    ss_sock_close(&srv);

    /* v6only: the IPv4 client is refused */
    ss_addr any;
    tp_parse(&any, "tcp://[::]:0");
    ss_listen_opts o = {.v6only = true};
    assert_int_equal(ss_listen(&srv, &any, &o, NULL), 0);
    assert_int_equal(ss_sock_getsockname(&srv, &bound), 0);
    snprintf(text, sizeof text, "tcp://127.0.0.1:%d", ss_addr_port(&bound));
    tp_parse(&v4, text);
    assert_int_equal(ss_sock_open_for(&cli, &v4), 0);
    assert_int_equal(ss_sock_connect_ex(&cli, &v4), -ECONNREFUSED);
    ss_sock_close(&cli);
    ss_sock_close(&srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(open_every_kind_cloexec),
        cmocka_unit_test(raw_is_eperm_without_privilege),
        cmocka_unit_test(settimeout_switches_blocking_mode),
        cmocka_unit_test(timeout_zero_gives_eagain),
        cmocka_unit_test(recv_times_out),
        cmocka_unit_test(sendall_times_out_when_peer_stops_reading),
        cmocka_unit_test(accept_times_out),
        cmocka_unit_test(accepted_socket_is_blocking_and_cloexec),
        cmocka_unit_test(connect_ex_closed_port_refused),
        cmocka_unit_test(connect_times_out_on_full_backlog),
        cmocka_unit_test(timeout_zero_connect_is_einprogress),
        cmocka_unit_test(closed_peer_gives_epipe_not_sigpipe),
        cmocka_unit_test(options_set_and_read_back),
        cmocka_unit_test(from_fd_adopts_a_socket),
        cmocka_unit_test(udp_roundtrip),
        cmocka_unit_test(unix_abstract_every_type),
        cmocka_unit_test(unix_path_every_type),
        cmocka_unit_test(unix_stale_file_replaced),
        cmocka_unit_test(unix_live_socket_refused),
        cmocka_unit_test(unix_regular_file_never_removed),
        cmocka_unit_test(listen_port_in_use_names_address),
        cmocka_unit_test(listen_reuse_port_shares),
        cmocka_unit_test(listen_privileged_port_message),
        cmocka_unit_test(dial_bad_address_fails_cleanly),
        cmocka_unit_test(dial_keeps_timeout),
        cmocka_unit_test(dial_tries_every_address),
        cmocka_unit_test(ipv6_loopback_roundtrip),
        cmocka_unit_test(ipv6_any_is_dual_stack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
