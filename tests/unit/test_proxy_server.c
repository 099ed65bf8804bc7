/* SPDX-License-Identifier: MIT */
/* test_proxy_server.c — opts.proxy_protocol in the library: the handler's
 * client_address and verify_request's `client` are the carried address
 * (under every blocking model), the bytes after the header reach the
 * handler, bad headers are counted and never reach it; a bare event
 * listener with ss_listener_opts.proxy_protocol opens connections as the
 * carried peer and tells proxy_refused about bad and late headers; servers
 * that cannot read a header refuse the option.
 *
 * ctest-labels: tsan
 */
#include "server_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>

static const char V1[] = "PROXY TCP4 192.0.2.1 198.51.100.7 54321 443\r\n";

/* ---- the server core ------------------------------------------------------ */

typedef struct seen {
    pthread_mutex_t lock;
    char verified[SS_ADDR_STRLEN]; /* verify_request's client */
    char handled[SS_ADDR_STRLEN];  /* the handler's client_address */
    char line[64];                 /* the first line the handler read */
    atomic_int handled_n;
} seen;

static seen g_seen = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool verify(ss_server *srv, const ss_sock *conn, const ss_addr *client)
{
    (void)srv;
    (void)conn;
    pthread_mutex_lock(&g_seen.lock);
    ss_addr_format(client, g_seen.verified, sizeof g_seen.verified);
    pthread_mutex_unlock(&g_seen.lock);
    return true;
}

static int handle_once(ss_request *req)
{
    char line[64];
    ssize_t n = ss_stream_readline(req->stream, line, sizeof line - 1);
    pthread_mutex_lock(&g_seen.lock);
    ss_addr_format(&req->client_address, g_seen.handled, sizeof g_seen.handled);
    snprintf(g_seen.line, sizeof g_seen.line, "%.*s", n > 0 ? (int)n : 0, line);
    pthread_mutex_unlock(&g_seen.lock);
    atomic_fetch_add(&g_seen.handled_n, 1);
    return n > 0 ? ss_request_reply(req, line, (size_t)n) : 0;
}

static const ss_handler once = {NULL, handle_once, NULL, NULL};

/* Send `data` on a fresh connection; read what comes back (until EOF). */
static size_t converse(const char *address, const void *data, size_t len, char *reply, size_t cap,
                       bool half_close)
{
    ss_sock s;
    assert_int_equal(st_connect(address, &s), 0);
    assert_int_equal(ss_sock_sendall(&s, data, len), 0);
    if (half_close)
        ss_sock_shutdown(&s, SHUT_WR);
    size_t got = 0;
    for (;;) {
        ssize_t n = ss_sock_recv(&s, reply + got, cap - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (memchr(reply, '\n', got) != NULL)
            break;
    }
    ss_sock_close(&s);
    return got;
}

static void carried_address_everywhere(void **state)
{
    (void)state;
    static const ss_model models[] = {SS_MODEL_SERIAL, SS_MODEL_THREADING, SS_MODEL_POOL};
    for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) {
        ss_server_opts o;
        ss_server_opts_init(&o);
        o.model = models[m];
        o.proxy_protocol = true;
        o.verify_request = verify;
        st_server s;
        st_start(&s, "tcp://127.0.0.1:0", &once, &o);
        memset(g_seen.handled, 0, sizeof g_seen.handled);
        atomic_store(&g_seen.handled_n, 0);

        char msg[128], reply[128];
        snprintf(msg, sizeof msg, "%shello\n", V1);
        size_t n = converse(s.addr, msg, strlen(msg), reply, sizeof reply, false);
        assert_int_equal(n, 6);
        assert_memory_equal(reply, "hello\n", 6);
        ST_ASSERT_EVENTUALLY(atomic_load(&g_seen.handled_n) == 1, 5);
        pthread_mutex_lock(&g_seen.lock);
        assert_string_equal(g_seen.verified, "tcp://192.0.2.1:54321");
        assert_string_equal(g_seen.handled, "tcp://192.0.2.1:54321");
        assert_string_equal(g_seen.line, "hello\n"); /* nothing of the header */
        pthread_mutex_unlock(&g_seen.lock);

        /* LOCAL: the socket's peer */
        static const unsigned char local[16] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51,
                                                0x55, 0x49, 0x54, 0x0A, 0x20, 0x00, 0x00, 0x00};
        unsigned char lmsg[32];
        memcpy(lmsg, local, 16);
        memcpy(lmsg + 16, "local\n", 6);
        n = converse(s.addr, lmsg, 22, reply, sizeof reply, false);
        assert_int_equal(n, 6);
        ST_ASSERT_EVENTUALLY(atomic_load(&g_seen.handled_n) == 2, 5);
        pthread_mutex_lock(&g_seen.lock);
        assert_non_null(strstr(g_seen.handled, "tcp://127.0.0.1:"));
        pthread_mutex_unlock(&g_seen.lock);

        /* bad and cut-short headers: counted, closed, never handled */
        static const char *bad[] = {"GET / HTTP/1.0\r\n\r\n", "PROXY TCP4 1.2.3.4\r\nx\n"};
        for (size_t i = 0; i < 2; i++)
            assert_int_equal(converse(s.addr, bad[i], strlen(bad[i]), reply, sizeof reply, false),
                             0);
        assert_int_equal(converse(s.addr, V1, 20, reply, sizeof reply, true), 0);
        ss_server_stats st;
        ST_ASSERT_EVENTUALLY((ss_server_stats_get(s.srv, &st), st.bad_header == 3), 5);
        assert_int_equal(atomic_load(&g_seen.handled_n), 2);
        st_stop(&s);
    }
}

static void stalled_header_times_out(void **state)
{
    (void)state;
    ss_server_opts o;
    ss_server_opts_init(&o);
    o.model = SS_MODEL_THREADING;
    o.proxy_protocol = true;
    o.handshake_timeout = 0.2;
    o.server_speaks_first = true; /* still waits for the header */
    st_server s;
    st_start(&s, "tcp://127.0.0.1:0", &once, &o);
    atomic_store(&g_seen.handled_n, 0);
    char reply[16];
    ss_sock c;
    assert_int_equal(st_connect(s.addr, &c), 0);
    assert_int_equal(ss_sock_sendall(&c, V1, 10), 0);
    assert_int_equal(ss_sock_recv(&c, reply, sizeof reply, 0), 0); /* closed */
    ss_sock_close(&c);
    ss_server_stats st;
    ss_server_stats_get(s.srv, &st);
    assert_int_equal(st.timed_out, 1);
    assert_int_equal(atomic_load(&g_seen.handled_n), 0);
    st_stop(&s);
}

static void only_stream_servers(void **state)
{
    (void)state;
    ss_server_opts o;
    ss_server_opts_init(&o);
    o.proxy_protocol = true;
    static const char *no[] = {"udp://127.0.0.1:0", "seqpacket:@sockserve-proxy-test",
                               "unixgram:@sockserve-proxy-test-g"};
    for (size_t i = 0; i < 3; i++) {
        ss_server *srv = NULL;
        ss_error err = {0};
        assert_int_equal(ss_server_new(&srv, no[i], &once, &o, &err), SS_EUSAGE);
        assert_null(srv);
        assert_non_null(strstr(err.msg, "PROXY protocol"));
    }
}

/* ---- a bare event listener --------------------------------------------------- */

typedef struct ev_seen {
    atomic_int opened, refused, verified;
    atomic_int last_reason;
    char peer[SS_ADDR_STRLEN];
    char data[64];
} ev_seen;

static ev_seen g_ev;

static void ev_open(ss_conn *c)
{
    ss_addr_format(ss_conn_peer(c), g_ev.peer, sizeof g_ev.peer);
    atomic_fetch_add(&g_ev.opened, 1);
}

static void ev_data(ss_conn *c, const void *data, size_t len)
{
    snprintf(g_ev.data, sizeof g_ev.data, "%.*s", (int)len, (const char *)data);
    ss_conn_write(c, data, len);
}

static bool ev_verify(void *arg, int fd, const ss_addr *peer)
{
    (void)arg;
    (void)fd;
    atomic_fetch_add(&g_ev.verified, 1);
    return ss_addr_in_cidr(peer, "192.0.2.0/24"); /* the carried one */
}

static void ev_refused(void *arg, const ss_addr *peer, int reason, const char *why)
{
    (void)arg;
    (void)peer;
    assert_non_null(why);
    atomic_store(&g_ev.last_reason, reason);
    atomic_fetch_add(&g_ev.refused, 1);
}

typedef struct loop_thread {
    ss_loop *loop;
    pthread_t t;
} loop_thread;

static void *run(void *arg)
{
    ss_loop_run(((loop_thread *)arg)->loop);
    return NULL;
}

static void event_listener(void **state)
{
    (void)state;
    ss_sock lsock;
    ss_addr a;
    assert_int_equal(ss_addr_parse(&a, "tcp://127.0.0.1:0", 0, NULL), 0);
    assert_int_equal(ss_listen(&lsock, &a, NULL, NULL), 0);
    ss_addr bound;
    assert_int_equal(ss_sock_getsockname(&lsock, &bound), 0);
    char address[SS_ADDR_STRLEN];
    ss_addr_format(&bound, address, sizeof address);

    loop_thread lt;
    assert_int_equal(ss_loop_new(&lt.loop, NULL), 0);
    static const struct ss_event_handler h = {.on_open = ev_open, .on_data = ev_data};
    ss_listener_opts lo = {.verify = ev_verify,
                           .proxy_protocol = true,
                           .proxy_timeout = 0.3,
                           .proxy_refused = ev_refused};
    ss_listener *l;
    assert_int_equal(ss_loop_listen(lt.loop, lsock.fd, &h, &lo, &l, NULL), 0);
    assert_int_equal(pthread_create(&lt.t, NULL, run, &lt), 0);

    char msg[128], reply[128];
    snprintf(msg, sizeof msg, "%sdata\n", V1);
    assert_int_equal(converse(address, msg, strlen(msg), reply, sizeof reply, false), 5);
    assert_memory_equal(reply, "data\n", 5);
    ST_ASSERT_EVENTUALLY(atomic_load(&g_ev.opened) == 1, 5);
    assert_string_equal(g_ev.peer, "tcp://192.0.2.1:54321");
    assert_int_equal(atomic_load(&g_ev.verified), 1);

    /* verify sees the carried address: one outside 192.0.2.0/24 is closed */
    const char *other = "PROXY TCP4 203.0.113.1 198.51.100.7 1 2\r\nx\n";
    assert_int_equal(converse(address, other, strlen(other), reply, sizeof reply, false), 0);
    ST_ASSERT_EVENTUALLY(atomic_load(&g_ev.verified) == 2, 5);
    assert_int_equal(atomic_load(&g_ev.opened), 1);

    /* malformed: proxy_refused, SS_EPROTO, nothing opened */
    assert_int_equal(converse(address, "GET /\r\n", 7, reply, sizeof reply, false), 0);
    ST_ASSERT_EVENTUALLY(atomic_load(&g_ev.refused) == 1, 5);
    assert_int_equal(atomic_load(&g_ev.last_reason), SS_EPROTO);
    /* late: SS_ETIMEOUT */
    ss_sock c;
    assert_int_equal(st_connect(address, &c), 0);
    assert_int_equal(ss_sock_sendall(&c, V1, 8), 0);
    assert_int_equal(ss_sock_recv(&c, reply, sizeof reply, 0), 0);
    ss_sock_close(&c);
    ST_ASSERT_EVENTUALLY(atomic_load(&g_ev.refused) == 2, 5);
    assert_int_equal(atomic_load(&g_ev.last_reason), SS_ETIMEOUT);
    assert_int_equal(atomic_load(&g_ev.opened), 1);

    ss_loop_stop(lt.loop);
    pthread_join(lt.t, NULL);
    ss_loop_free(lt.loop);
    ss_sock_close(&lsock);

    /* not on a seqpacket socket */
    assert_int_equal(ss_loop_new(&lt.loop, NULL), 0);
    int sp = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    assert_true(sp >= 0);
    assert_int_equal(ss_loop_listen(lt.loop, sp, &h, &lo, &l, NULL), SS_EUSAGE);
    close(sp);
    ss_loop_free(lt.loop);
}

int main(void)
{
    tu_alarm(120);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(carried_address_everywhere),
        cmocka_unit_test(stalled_header_times_out),
        cmocka_unit_test(only_stream_servers),
        cmocka_unit_test(event_listener),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
