/* SPDX-License-Identifier: MIT */
/* test_event_server.c — SS_MODEL_EVENT through the server API: echo on every
 * socket kind with two loops, blocking datagram handlers on the loop, the
 * refusal of blocking stream handlers, shutdown and graceful drain.
 * ctest-labels: tsan
 */
#include "testutil.h"
#include "internal.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static atomic_int opened, closed_count, shutdown_closes;

static void on_open(ss_conn *c)
{
    (void)c;
    atomic_fetch_add(&opened, 1);
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

static int reset(void **state)
{
    (void)state;
    atomic_store(&opened, 0);
    atomic_store(&closed_count, 0);
    atomic_store(&shutdown_closes, 0);
    return 0;
}

typedef struct running {
    ss_server *srv;
    pthread_t thread;
    int rc;
    char addr[SS_ADDR_STRLEN];
} running;

static void *serve(void *arg)
{
    running *r = arg;
    r->rc = ss_server_serve_forever(r->srv);
    return NULL;
}

static void start(running *r, const char *address, const ss_handler *handler,
                  const struct ss_event_handler *ev, double drain)
{
    memset(r, 0, sizeof *r);
    ss_server_opts o;
    ss_server_opts_init(&o);
    o.model = SS_MODEL_EVENT;
    o.workers = 2;
    o.event = ev;
    o.drain_timeout = drain;
    ss_error err = {0};
    ss_handler none = {0};
    int rc = ss_server_new(&r->srv, address, handler ? handler : &none, &o, &err);
    if (rc < 0)
        fail_msg("ss_server_new %s: %s", address, err.msg);
    assert_true(ss_addr_format(ss_server_address(r->srv), r->addr, sizeof r->addr) > 0);
    assert_int_equal(pthread_create(&r->thread, NULL, serve, r), 0);
}

static void stop(running *r)
{
    ss_server_shutdown(r->srv);
    pthread_join(r->thread, NULL);
    assert_int_equal(r->rc, 0);
    ss_server_free(r->srv);
}

static void round_trips(const char *address_of_client_side, bool message_kind, const running *r)
{
    ss_sock s;
    ss_error err;
    if (ss_dial(&s, address_of_client_side ? address_of_client_side : r->addr, 5, &err) < 0)
        fail_msg("dial %s: %s", r->addr, err.msg);
    for (int i = 0; i < 20; i++) {
        char out[64], in[64];
        int n = snprintf(out, sizeof out, "message %d", i);
        assert_int_equal(ss_sock_send(&s, out, (size_t)n, 0), n);
        ssize_t got = 0;
        while (got < n) {
            ssize_t k = ss_sock_recv(&s, in + got, sizeof in - (size_t)got, 0);
            assert_true(k > 0);
            got += k;
            if (message_kind)
                break;
        }
        assert_int_equal(got, n);
        assert_memory_equal(in, out, (size_t)n);
    }
    ss_sock_close(&s);
}

static void echo_on(const char *address, bool message_kind)
{
    running r;
    start(&r, address, NULL, &echo, 1);
    round_trips(NULL, message_kind, &r);
    stop(&r);
}

static void echo_tcp(void **state)
{
    (void)state, echo_on("tcp://127.0.0.1:0", false);
}
static void echo_unix(void **state)
{
    (void)state;
    char name[80], addr[100];
    tu_abstract_name(name, sizeof name);
    snprintf(addr, sizeof addr, "unix:%s", name);
    echo_on(addr, false);
}
static void echo_seqpacket(void **state)
{
    (void)state;
    char path[200], addr[220];
    tu_temp_path(path, sizeof path, "seqpacket.sock");
    snprintf(addr, sizeof addr, "seqpacket:%s", path);
    echo_on(addr, true);
}
static void echo_udp(void **state)
{
    (void)state, echo_on("udp://127.0.0.1:0", true);
}

static void echo_unixgram(void **state)
{
    (void)state;
    char name[80], addr[100];
    tu_abstract_name(name, sizeof name);
    snprintf(addr, sizeof addr, "unixgram:%s", name);
    running r;
    start(&r, addr, NULL, &echo, 1);
    /* the client needs a name of its own to be answered */
    char me[80], meaddr[100];
    tu_abstract_name(me, sizeof me);
    snprintf(meaddr, sizeof meaddr, "unixgram:%s", me);
    ss_addr mine, theirs;
    assert_int_equal(ss_addr_parse(&mine, meaddr, 0, NULL), 0);
    assert_int_equal(ss_addr_parse(&theirs, addr, 0, NULL), 0);
    ss_sock s = SS_SOCK_INIT;
    assert_int_equal(ss_sock_open_for(&s, &mine), 0);
    assert_int_equal(ss_sock_bind(&s, &mine, NULL), 0);
    assert_int_equal(ss_sock_settimeout(&s, 5), 0);
    assert_int_equal(ss_sock_connect(&s, &theirs, NULL), 0);
    for (int i = 0; i < 20; i++) {
        char in[16];
        assert_int_equal(ss_sock_send(&s, "gram", 4, 0), 4);
        assert_int_equal(ss_sock_recv(&s, in, sizeof in, 0), 4);
        assert_memory_equal(in, "gram", 4);
    }
    ss_sock_close(&s);
    stop(&r);
}

/* Datagram servers may run the blocking handler on the loop. */
static int upper_handle(ss_request *req)
{
    char out[64];
    size_t n = req->packet_len < sizeof out ? req->packet_len : sizeof out;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)(req->packet[i] >= 'a' && req->packet[i] <= 'z' ? req->packet[i] - 32
                                                                       : req->packet[i]);
    return ss_request_reply(req, out, n);
}

static void blocking_datagram_handler_runs_on_the_loop(void **state)
{
    (void)state;
    ss_handler h = {.handle = upper_handle};
    running r;
    start(&r, "udp://127.0.0.1:0", &h, NULL, 1);
    ss_sock s;
    assert_int_equal(ss_dial(&s, r.addr, 5, NULL), 0);
    char in[16];
    assert_int_equal(ss_sock_send(&s, "hello", 5, 0), 5);
    assert_int_equal(ss_sock_recv(&s, in, sizeof in, 0), 5);
    assert_memory_equal(in, "HELLO", 5);
    ss_sock_close(&s);
    stop(&r);
}

/* server_close: connections get drain_timeout to finish, then are closed;
 * a client that leaves in time is not cut off. */
static void close_drains_then_cuts_off(void **state)
{
    (void)state;
    running r;
    start(&r, "tcp://127.0.0.1:0", NULL, &echo, 0.3);
    ss_sock a, b;
    assert_int_equal(ss_dial(&a, r.addr, 5, NULL), 0);
    assert_int_equal(ss_dial(&b, r.addr, 5, NULL), 0);
    char in[4];
    assert_int_equal(ss_sock_send(&a, "a", 1, 0), 1);
    assert_int_equal(ss_sock_recv(&a, in, 1, 0), 1);
    assert_int_equal(ss_sock_send(&b, "b", 1, 0), 1);
    assert_int_equal(ss_sock_recv(&b, in, 1, 0), 1);
    assert_int_equal(ss_server_active(r.srv), 2);
    ss_server_shutdown(r.srv);
    pthread_join(r.thread, NULL);
    assert_int_equal(r.rc, 0);
    /* after serve_forever returned, accepted clients are still served */
    assert_int_equal(ss_sock_send(&a, "c", 1, 0), 1);
    assert_int_equal(ss_sock_recv(&a, in, 1, 0), 1);
    ss_sock_close(&a);
    int64_t t0 = ss__now_ms();
    ss_server_close(r.srv);
    assert_true(ss__now_ms() - t0 >= 250);
    assert_int_equal(ss_sock_recv(&b, in, 1, 0), 0); /* cut off */
    assert_int_equal(atomic_load(&shutdown_closes), 1);
    assert_int_equal(atomic_load(&closed_count), 2);
    assert_int_equal(ss_server_active(r.srv), 0);
    ss_sock_close(&b);
    ss_server_free(r.srv);
}

int main(void)
{
    tu_alarm(100);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(echo_tcp, reset),
        cmocka_unit_test_setup(echo_unix, reset),
        cmocka_unit_test_setup(echo_seqpacket, reset),
        cmocka_unit_test_setup(echo_udp, reset),
        cmocka_unit_test_setup(echo_unixgram, reset),
        cmocka_unit_test_setup(blocking_datagram_handler_runs_on_the_loop, reset),
        cmocka_unit_test_setup(close_drains_then_cuts_off, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
