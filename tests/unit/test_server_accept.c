/* SPDX-License-Identifier: MIT */
/* test_server_accept.c — the hardened accept path under every model: silent
 * connections hold no worker, handshake_timeout and max_pending bound them,
 * bursts wait instead of being refused, max_per_ip, access rules,
 * reply_rate, unix_mode, write_timeout, and the once-a-second refusal line.
 * ctest-labels: tsan */
#include "server_test.h"
#include "internal.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>

static const ss_model every_model[] = {SS_MODEL_SERIAL, SS_MODEL_THREADING, SS_MODEL_FORKING,
                                       SS_MODEL_POOL,   SS_MODEL_PREFORK,   SS_MODEL_EVENT};
#define NMODELS (sizeof every_model / sizeof every_model[0])

/* Close a test client for good. Under the forking model every child holds a
 * copy of the test's client descriptors (it forks this whole process), so
 * close() alone would not end the connection; shutdown() acts on the
 * socket itself. */
static void hang_up(ss_sock *c)
{
    if (c->fd >= 0)
        shutdown(c->fd, SHUT_RDWR);
    ss_sock_close(c);
}

/* The smallest server of each model: one worker of whatever kind it has. */
static ss_server_opts tight_opts(ss_model m, st_log *log)
{
    ss_server_opts o;
    ss_server_opts_init(&o);
    o.model = m;
    o.workers = 1;
    o.max_children = 1;
    o.pool_queue = 1;
    o.drain_timeout = 0.5;
    if (log != NULL) {
        o.log = st_log_fn;
        o.log_data = log;
    }
    return o;
}

static bool closed_by_server(ss_sock *c)
{
    char b;
    return ss_sock_recv(c, &b, 1, 0) <= 0; /* EOF, or a reset */
}

static void silent_connections_hold_no_worker(void **state)
{
    (void)state;
    tu_alarm(60);
    for (size_t m = 0; m < NMODELS; m++) {
        ss_server_opts o = tight_opts(every_model[m], NULL);
        print_message("model %s\n", ss_model_name(every_model[m]));
        st_server s;
        st_start(&s, "tcp://127.0.0.1:0", &st_echo, &o);
        enum { SILENT = 20 };
        ss_sock silent[SILENT];
        for (int i = 0; i < SILENT; i++)
            assert_int_equal(st_connect(s.addr, &silent[i]), 0);
        /* one worker, twenty silent peers: a real client is served at once */
        for (int round = 0; round < 3; round++) {
            ss_sock c;
            assert_int_equal(st_connect(s.addr, &c), 0);
            assert_int_equal(st_roundtrip(&c, "real\n"), 0);
            hang_up(&c);
        }
        for (int i = 0; i < SILENT; i++)
            hang_up(&silent[i]);
        st_stop(&s);
    }
}

static void handshake_timeout_cuts_silent_connections(void **state)
{
    (void)state;
    tu_alarm(60);
    for (size_t m = 0; m < NMODELS; m++) {
        if (every_model[m] == SS_MODEL_EVENT)
            continue; /* callbacks own their connections; see docs/models.md */
        ss_server_opts o = tight_opts(every_model[m], NULL);
        o.handshake_timeout = 0.3;
        st_server s;
        st_start(&s, "tcp://127.0.0.1:0", &st_echo, &o);
        ss_sock c;
        assert_int_equal(st_connect(s.addr, &c), 0);
        int64_t t0 = ss__now_ms();
        assert_true(closed_by_server(&c));
        assert_true(ss__now_ms() - t0 < 3000);
        hang_up(&c);
        ss_server_stats st;
        ss_server_stats_get(s.srv, &st);
        assert_int_equal(st.timed_out, 1);
        assert_int_equal(st.accepted, 0); /* never became a request */
        st_stop(&s);
    }
}

static void max_pending_cuts_the_oldest_silent_first(void **state)
{
    (void)state;
    tu_alarm(30);
    ss_server_opts o = tight_opts(SS_MODEL_THREADING, NULL);
    o.max_conns = 1;
    o.max_pending = 3;
    st_server s;
    st_start(&s, "tcp://127.0.0.1:0", &st_echo, &o);
    ss_sock busy, silent1, ready, silent2, late;
    assert_int_equal(st_connect(s.addr, &busy), 0);
    assert_int_equal(st_roundtrip(&busy, "busy\n"), 0); /* holds the one slot */
    assert_int_equal(st_connect(s.addr, &silent1), 0);
    assert_int_equal(st_connect(s.addr, &ready), 0);
    assert_int_equal(ss_sock_sendall(&ready, "r\n", 2), 0); /* waits for room */
    assert_int_equal(st_connect(s.addr, &silent2), 0);
    usleep(200 * 1000);
    assert_int_equal(st_connect(s.addr, &late), 0); /* a fourth: one must go */
    assert_true(closed_by_server(&silent1));
    ss_server_stats st;
    ST_ASSERT_EVENTUALLY((ss_server_stats_get(s.srv, &st), st.evicted == 1), 10);
    /* the one that spoke is served when the slot frees */
    hang_up(&busy);
    char buf[2];
    assert_int_equal(ss_sock_recv(&ready, buf, 2, MSG_WAITALL), 2);
    assert_memory_equal(buf, "r\n", 2);
    hang_up(&ready);
    hang_up(&silent1);
    hang_up(&silent2);
    hang_up(&late);
    st_stop(&s);
}

static int banner_handle(ss_request *req)
{
    return ss_request_reply(req, "hello\n", 6);
}

static void server_speaks_first_skips_the_wait(void **state)
{
    (void)state;
    tu_alarm(60);
    ss_handler h = {.handle = banner_handle};
    for (size_t m = 0; m < NMODELS; m++) {
        ss_server_opts o = tight_opts(every_model[m], NULL);
        o.server_speaks_first = true;
        if (every_model[m] == SS_MODEL_EVENT)
            continue; /* a blocking banner handler under event runs on threads as threading */
        st_server s;
        st_start(&s, "tcp://127.0.0.1:0", &h, &o);
        ss_sock c;
        assert_int_equal(st_connect(s.addr, &c), 0);
        char buf[6];
        assert_int_equal(ss_sock_recv(&c, buf, 6, MSG_WAITALL), 6);
        assert_memory_equal(buf, "hello\n", 6);
        hang_up(&c);
        st_stop(&s);
    }
}

/* 200 clients at once against one or two workers: none refused, each
 * served in its turn (the pool used to close all but 20 of 500). */
static void a_burst_waits_instead_of_being_refused(void **state)
{
    (void)state;
    tu_alarm(120);
    enum { BURST = 200 };
    for (size_t m = 0; m < NMODELS; m++) {
        ss_server_opts o = tight_opts(every_model[m], NULL);
        o.workers = 2;
        o.max_children = 2;
        print_message("model %s\n", ss_model_name(every_model[m]));
        st_server s;
        st_start(&s, "tcp://127.0.0.1:0", &st_echo, &o);
        static ss_sock c[BURST];
        for (int i = 0; i < BURST; i++) {
            assert_int_equal(st_connect(s.addr, &c[i]), 0);
            assert_int_equal(ss_sock_sendall(&c[i], "b\n", 2), 0);
        }
        for (int i = 0; i < BURST; i++) {
            char buf[2];
            assert_int_equal(ss_sock_recv(&c[i], buf, 2, MSG_WAITALL), 2);
            hang_up(&c[i]);
        }
        ss_server_stats st;
        ss_server_stats_get(s.srv, &st);
        assert_int_equal(st.rejected + st.evicted + st.refused, 0);
        st_stop(&s);
    }
}

static void max_per_ip_closes_the_extra_ones(void **state)
{
    (void)state;
    tu_alarm(60);
    for (size_t m = 0; m < NMODELS; m++) {
        ss_server_opts o = tight_opts(every_model[m], NULL);
        if (every_model[m] == SS_MODEL_SERIAL)
            continue; /* it accepts nothing while it serves `a` (as Python's) */
        o.max_per_ip = 2;
        print_message("model %s\n", ss_model_name(every_model[m]));
        o.workers = 4;
        o.max_children = 4;
        st_server s;
        st_start(&s, "tcp://127.0.0.1:0", &st_echo, &o);
        ss_sock a, b, extra, again;
        assert_int_equal(st_connect(s.addr, &a), 0);
        assert_int_equal(st_roundtrip(&a, "a\n"), 0); /* one served */
        assert_int_equal(st_connect(s.addr, &b), 0);  /* one silent: counts too */
        usleep(100 * 1000);
        assert_int_equal(st_connect(s.addr, &extra), 0);
        assert_true(closed_by_server(&extra));
        ss_server_stats st;
        ss_server_stats_get(s.srv, &st);
        assert_int_equal(st.over_ip, 1);
        hang_up(&extra);
        hang_up(&a); /* gives its slot back (a child: when it exits) */
        hang_up(&b);
        bool served = false;
        for (int tries = 0; tries < 50 && !served; tries++) {
            assert_int_equal(st_connect(s.addr, &again), 0);
            served = st_roundtrip(&again, "x\n") == 0;
            hang_up(&again);
            if (!served)
                usleep(100 * 1000);
        }
        assert_true(served);
        st_stop(&s);
    }
}

static void access_rules_refuse_before_any_worker(void **state)
{
    (void)state;
    tu_alarm(60);
    for (size_t m = 0; m < NMODELS; m++) {
        st_log log;
        st_log_init(&log);
        ss_server_opts o = tight_opts(every_model[m], &log);
        st_server s;
        st_start(&s, "tcp://127.0.0.1:0", &st_echo, &o);
        ss_access *deny;
        assert_int_equal(ss_access_new(&deny), 0);
        assert_int_equal(ss_access_add(deny, false, "127.0.0.0/8", NULL), 0);
        ss_server_set_access(s.srv, deny);
        for (int i = 0; i < 30; i++) {
            ss_sock c;
            assert_int_equal(st_connect(s.addr, &c), 0);
            (void)ss_sock_sendall(&c, "x\n", 2);
            assert_true(closed_by_server(&c));
            hang_up(&c);
        }
        ss_server_stats st;
        ss_server_stats_get(s.srv, &st);
        assert_int_equal(st.denied, 30);
        assert_int_equal(st.accepted, 0);
        /* new rules take effect for the next connection */
        ss_access *allow;
        assert_int_equal(ss_access_new(&allow), 0);
        assert_int_equal(ss_access_add(allow, true, "127.0.0.1", NULL), 0);
        ss_server_set_access(s.srv, allow);
        ss_sock c;
        assert_int_equal(st_connect(s.addr, &c), 0);
        assert_int_equal(st_roundtrip(&c, "in\n"), 0);
        hang_up(&c);
        st_stop(&s);
        /* thirty refusals within a second or two: one or two summary lines */
        int lines = st_log_count(&log, SS_LOG_WARN, "refused in the last");
        assert_true(lines >= 1 && lines <= 3);
    }
}

static int udp_echo(ss_request *req)
{
    return ss_request_reply(req, req->packet, req->packet_len);
}

/* Count the replies to `n` datagrams sent from `from` (an IPv4 address to
 * bind to) within a short wait. */
static int replies_to_burst(const ss_addr *to, const char *from, int n)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in me = {.sin_family = AF_INET};
    inet_pton(AF_INET, from, &me.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&me, sizeof me), 0);
    for (int i = 0; i < n; i++)
        (void)sendto(fd, "p", 1, 0, &to->u.sa, to->len);
    int got = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (poll(&p, 1, 300) > 0) {
        char b[8];
        if (recv(fd, b, sizeof b, 0) > 0)
            got++;
    }
    close(fd);
    return got;
}

static void reply_rate_bounds_each_source(void **state)
{
    (void)state;
    tu_alarm(60);
    ss_handler h = {.handle = udp_echo};
    const ss_model models[] = {SS_MODEL_SERIAL, SS_MODEL_THREADING, SS_MODEL_EVENT};
    for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) {
        ss_server_opts o = tight_opts(models[m], NULL);
        o.reply_rate = 10;
        st_server s;
        st_start(&s, "udp://127.0.0.1:0", &h, &o);
        const ss_addr *to = ss_server_address(s.srv);
        int first = replies_to_burst(to, "127.0.0.1", 200);
        assert_true(first >= 5 && first <= 20); /* the burst (10), and a little refill */
        /* another source has a bucket of its own */
        int second = replies_to_burst(to, "127.0.0.2", 5);
        assert_int_equal(second, 5);
        ss_server_stats st;
        ss_server_stats_get(s.srv, &st);
        assert_true(st.dropped >= 180);
        st_stop(&s);
    }
}

static void unix_mode_is_set_before_listen(void **state)
{
    (void)state;
    tu_alarm(20);
    char path[200], addr[220];
    tu_temp_path(path, sizeof path, "mode.sock");
    snprintf(addr, sizeof addr, "unix:%s", path);
    mode_t old = umask(0);
    ss_server_opts o = tight_opts(SS_MODEL_THREADING, NULL);
    o.unix_mode = 0600;
    st_server s;
    st_start(&s, addr, &st_echo, &o);
    umask(old);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    st_stop(&s);
}

/* A local user who can write to the socket's directory swaps the socket
 * file for a link to some other file between bind() and the chmod: the
 * server must refuse, and the file the link names must keep its mode. */
static char swap_victim[200];

static int bind_then_swap(ss_server *srv, ss_sock *sock, const ss_addr *a, ss_error *err)
{
    (void)srv;
    int rc = ss_sock_bind(sock, a, err);
    if (rc < 0)
        return rc;
    char link[230];
    snprintf(link, sizeof link, "%s.link", a->u.un.sun_path);
    if (symlink(swap_victim, link) < 0 || rename(link, a->u.un.sun_path) < 0)
        return -errno;
    return 0;
}

/* The file an attacker's link would point at: root's, with `mode`. */
static void make_victim(mode_t mode)
{
    tu_temp_path(swap_victim, sizeof swap_victim, "victim");
    int fd = open(swap_victim, O_CREAT | O_WRONLY | O_TRUNC, mode);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(chmod(swap_victim, mode), 0);
}

static void unix_mode_never_follows_a_swapped_link(void **state)
{
    (void)state;
    tu_alarm(20);
    char path[200], addr[220];
    tu_temp_path(path, sizeof path, "swap.sock");
    make_victim(0644);
    snprintf(addr, sizeof addr, "unix:%s", path);
    ss_server_opts o = tight_opts(SS_MODEL_THREADING, NULL);
    o.unix_mode = 0600;
    o.server_bind = bind_then_swap;
    ss_server *srv = NULL;
    ss_error err = {0};
    int rc = ss_server_new(&srv, addr, &st_echo, &o, &err);
    assert_int_equal(rc, -ENOTSOCK);
    assert_non_null(strstr(err.msg, "no longer the socket"));
    struct stat st;
    assert_int_equal(stat(swap_victim, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    unlink(path);
    unlink(swap_victim);
}

static void chown_unix_file_changes_only_the_socket_it_bound(void **state)
{
    (void)state;
    tu_alarm(20);
    if (geteuid() != 0)
        skip();
    char path[200], addr[220];
    tu_temp_path(path, sizeof path, "own.sock");
    make_victim(0600);
    snprintf(addr, sizeof addr, "unix:%s", path);
    ss_server_opts o = tight_opts(SS_MODEL_THREADING, NULL);
    st_server s;
    st_start(&s, addr, &st_echo, &o);
    struct stat st;
    assert_int_equal(ss_server_chown_unix_file(s.srv, 65534, 65534), 0);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_uid, 65534);
    /* now the attacker's swap: the path names root's file through a link */
    char link[230];
    snprintf(link, sizeof link, "%s.link", path);
    char moved[230];
    snprintf(moved, sizeof moved, "%s.moved", path);
    assert_int_equal(rename(path, moved), 0);
    assert_int_equal(symlink(swap_victim, link), 0);
    assert_int_equal(rename(link, path), 0);
    assert_int_equal(ss_server_chown_unix_file(s.srv, 65534, 65534), -ENOTSOCK);
    assert_int_equal(stat(swap_victim, &st), 0);
    assert_int_equal(st.st_uid, 0);
    /* and exit leaves the link (and what it names) alone */
    st_stop(&s);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(stat(swap_victim, &st), 0);
    unlink(path);
    unlink(moved);
    unlink(swap_victim);
}

static atomic_int write_failures;

static void count_error(ss_server *srv, ss_request *req, int code)
{
    (void)srv;
    (void)req;
    if (code == SS_ETIMEOUT)
        atomic_fetch_add(&write_failures, 1);
}

static int flood_handle(ss_request *req)
{
    static char chunk[65536];
    for (int i = 0; i < 4096; i++) { /* 256 MiB: far beyond any socket buffer */
        int rc = ss_stream_write(req->stream, chunk, sizeof chunk);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* A peer that stops reading cannot pin a worker: write_timeout. */
static void write_timeout_frees_the_worker(void **state)
{
    (void)state;
    tu_alarm(30);
    ss_server_opts o = tight_opts(SS_MODEL_THREADING, NULL);
    o.write_timeout = 0.3;
    o.handle_error = count_error;
    atomic_store(&write_failures, 0);
    ss_handler h = {.handle = flood_handle};
    st_server s;
    st_start(&s, "tcp://127.0.0.1:0", &h, &o);
    ss_sock c;
    assert_int_equal(st_connect(s.addr, &c), 0);
    assert_int_equal(ss_sock_sendall(&c, "go", 2), 0); /* and never read */
    ST_ASSERT_EVENTUALLY(atomic_load(&write_failures) == 1, 10);
    ST_ASSERT_EVENTUALLY(ss_server_active(s.srv) == 0, 10);
    hang_up(&c);
    st_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(silent_connections_hold_no_worker),
        cmocka_unit_test(handshake_timeout_cuts_silent_connections),
        cmocka_unit_test(max_pending_cuts_the_oldest_silent_first),
        cmocka_unit_test(server_speaks_first_skips_the_wait),
        cmocka_unit_test(a_burst_waits_instead_of_being_refused),
        cmocka_unit_test(max_per_ip_closes_the_extra_ones),
        cmocka_unit_test(access_rules_refuse_before_any_worker),
        cmocka_unit_test(reply_rate_bounds_each_source),
        cmocka_unit_test(unix_mode_is_set_before_listen),
        cmocka_unit_test(unix_mode_never_follows_a_swapped_link),
        cmocka_unit_test(chown_unix_file_changes_only_the_socket_it_bound),
        cmocka_unit_test(write_timeout_frees_the_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
