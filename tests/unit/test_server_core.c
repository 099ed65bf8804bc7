/* SPDX-License-Identifier: MIT */
/* test_server_core.c — socketserver semantics (ported from CPython's
 * test_socketserver and the BaseServer docs) and the production behaviour
 * beyond it: hooks, handle_request/timeout, shutdown, errors, bind failure,
 * idle timeout, max_conns, max_unadmitted, pool overflow, drain, logs.
 * ctest-labels: tsan */
#include "server_test.h"

static ss_server_opts opts_for(ss_model m, st_log *log)
{
    ss_server_opts o;
    ss_server_opts_init(&o);
    o.model = m;
    if (log != NULL) {
        o.log = st_log_fn;
        o.log_data = log;
    }
    return o;
}

/* ---- handle_request ---------------------------------------------------- */

static atomic_int timeouts;
static void count_timeout(ss_server *srv)
{
    (void)srv;
    atomic_fetch_add(&timeouts, 1);
}

static void handle_request_times_out(void **state)
{
    (void)state;
    tu_alarm(20);
    ss_server_opts o = opts_for(SS_MODEL_SERIAL, NULL);
    o.timeout = 0.1;
    o.handle_timeout = count_timeout;
    ss_server *srv;
    assert_int_equal(ss_server_new(&srv, "tcp://127.0.0.1:0", &st_echo, &o, NULL), 0);
    atomic_store(&timeouts, 0);
    assert_int_equal(ss_server_handle_request(srv), SS_ETIMEOUT);
    assert_int_equal(atomic_load(&timeouts), 1);
    ss_server_free(srv);
}

typedef struct dial_job {
    char addr[SS_ADDR_STRLEN];
    int rc;
} dial_job;

static void *roundtrip_once(void *arg)
{
    dial_job *j = arg;
    ss_sock s;
    j->rc = st_connect(j->addr, &s);
    if (j->rc == 0) {
        j->rc = st_roundtrip(&s, "one\n");
        ss_sock_close(&s);
    }
    return NULL;
}

static void handle_request_serves_one(void **state)
{
    (void)state;
    tu_alarm(20);
    for (int dgram = 0; dgram < 2; dgram++) {
        ss_server_opts o = opts_for(SS_MODEL_SERIAL, NULL);
        o.timeout = ST_IO_TIMEOUT;
        ss_server *srv;
        assert_int_equal(ss_server_new(&srv, dgram ? "udp://127.0.0.1:0"
                                                   : "tcp://127.0.0.1:0",
                                       &st_echo, &o, NULL),
                         0);
        dial_job j = {0};
        ss_addr_format(ss_server_address(srv), j.addr, sizeof j.addr);
        pthread_t t;
        pthread_create(&t, NULL, roundtrip_once, &j);
        assert_int_equal(ss_server_handle_request(srv), 0);
        pthread_join(t, NULL);
        assert_int_equal(j.rc, 0);
        ss_server_free(srv);
    }
}

/* Finding 6 of the hardening review: under SS_MODEL_EVENT a datagram
 * server's handle_request dropped the packet. Every model must answer it. */
static void handle_request_answers_a_datagram_under_every_model(void **state)
{
    (void)state;
    tu_alarm(60);
    static const ss_model models[] = {SS_MODEL_SERIAL, SS_MODEL_THREADING, SS_MODEL_FORKING,
                                      SS_MODEL_POOL,   SS_MODEL_PREFORK,   SS_MODEL_EVENT};
    for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) {
        ss_server_opts o = opts_for(models[m], NULL);
        o.timeout = ST_IO_TIMEOUT;
        ss_server *srv;
        assert_int_equal(ss_server_new(&srv, "udp://127.0.0.1:0", &st_echo, &o, NULL), 0);
        dial_job j = {0};
        ss_addr_format(ss_server_address(srv), j.addr, sizeof j.addr);
        pthread_t t;
        pthread_create(&t, NULL, roundtrip_once, &j);
        assert_int_equal(ss_server_handle_request(srv), 0);
        pthread_join(t, NULL);
        if (j.rc != 0)
            fail_msg("model %s: no answer (%s)", ss_model_name(models[m]), ss_strerror(j.rc));
        ss_server_free(srv);
    }
}

/* ---- hooks -------------------------------------------------------------- */

static bool refuse_all(ss_server *srv, const ss_sock *c, const ss_addr *a)
{
    (void)srv, (void)c, (void)a;
    return false;
}

static atomic_int handled;
static int count_handle(ss_request *req)
{
    (void)req;
    atomic_fetch_add(&handled, 1);
    return 0;
}

static void verify_request_refuses(void **state)
{
    (void)state;
    tu_alarm(20);
    ss_server_opts o = opts_for(SS_MODEL_THREADING, NULL);
    o.verify_request = refuse_all;
    ss_handler h = {NULL, count_handle, NULL, NULL};
    atomic_store(&handled, 0);
    st_server s;
    st_start(&s, "tcp://127.0.0.1:0", &h, &o);
    ss_sock c;
    assert_int_equal(st_connect(s.addr, &c), 0);
    char b;
    assert_int_equal(ss_sock_recv(&c, &b, 1, 0), 0); /* closed, unserved */
    ss_sock_close(&c);
    ss_server_stats st;
    ss_server_stats_get(s.srv, &st);
    assert_int_equal(st.refused, 1);
    assert_int_equal(st.accepted, 0);
    st_stop(&s);
    assert_int_equal(atomic_load(&handled), 0);
}

/* The order of calls, per request, as a string. */
static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;
static char trace[256];
static void trace_add(const char *what)
{
    pthread_mutex_lock(&trace_lock);
    strncat(trace, what, sizeof trace - strlen(trace) - 1);
    pthread_mutex_unlock(&trace_lock);
}

static int setup_ok(ss_request *r) { (void)r; trace_add("setup,"); return 0; }
static int setup_fails(ss_request *r) { (void)r; trace_add("setup,"); return -EIO; }
static int handle_fails(ss_request *r) { (void)r; trace_add("handle,"); return -EINVAL; }
static void finish_tr(ss_request *r) { (void)r; trace_add("finish,"); }
static void error_tr(ss_server *srv, ss_request *r, int code)
{
    (void)srv, (void)r;
    trace_add(code == -EIO ? "error(EIO)," : code == -EINVAL ? "error(EINVAL),"
                                                            : "error(?),");
}

static void run_one_traced(const ss_handler *h, const char *want)
{
    ss_server_opts o = opts_for(SS_MODEL_SERIAL, NULL);
    o.handle_error = error_tr;
    trace[0] = '\0';
    st_server s;
    st_start(&s, "tcp://127.0.0.1:0", h, &o);
    ss_sock c;
    assert_int_equal(st_connect(s.addr, &c), 0);
    assert_int_equal(ss_sock_sendall(&c, "x", 1), 0); /* a request starts with a byte */
    char b;
    assert_true(ss_sock_recv(&c, &b, 1, 0) <= 0); /* the request ended */
    ss_sock_close(&c);
    /* and the server goes on serving after a failure */
    ss_sock d;
    assert_int_equal(st_connect(s.addr, &d), 0);
    assert_int_equal(ss_sock_sendall(&d, "x", 1), 0);
    assert_true(ss_sock_recv(&d, &b, 1, 0) <= 0);
    ss_sock_close(&d);
    st_stop(&s);
    char twice[300];
    snprintf(twice, sizeof twice, "%s%s", want, want);
    pthread_mutex_lock(&trace_lock);
    assert_string_equal(trace, twice);
    pthread_mutex_unlock(&trace_lock);
}

static void finish_runs_after_failing_handle(void **state)
{
    (void)state;
    tu_alarm(20);
    ss_handler h = {setup_ok, handle_fails, finish_tr, NULL};
    run_one_traced(&h, "setup,handle,finish,error(EINVAL),");
}

static void failing_setup_skips_handle_and_finish(void **state)
{
    (void)state;
    tu_alarm(20);
    ss_handler h = {setup_fails, handle_fails, finish_tr, NULL};
    run_one_traced(&h, "setup,error(EIO),");
}

static void default_handle_error_logs_and_goes_on(void **state)
{
    (void)state;
    tu_alarm(20);
    st_log log;
    st_log_init(&log);
    ss_server_opts o = opts_for(SS_MODEL_THREADING, &log);
    ss_handler h = {NULL, handle_fails, NULL, NULL};
    st_server s;
    st_start(&s, "tcp://127.0.0.1:0", &h, &o);
    for (int i = 0; i < 2; i++) {
        ss_sock c;
        char b;
        assert_int_equal(st_connect(s.addr, &c), 0);
        assert_int_equal(ss_sock_sendall(&c, "x", 1), 0);
        assert_true(ss_sock_recv(&c, &b, 1, 0) <= 0);
        ss_sock_close(&c);
    }
    st_stop(&s);
    assert_int_equal(st_log_count(&log, SS_LOG_ERROR, "Invalid argument"), 2);
    /* one INFO line per connection, at its end; the opening is DEBUG */
    assert_int_equal(st_log_count(&log, SS_LOG_DEBUG, " connected"), 2);
    assert_int_equal(st_log_count(&log, SS_LOG_INFO, "tcp://127.0.0.1:"), 2);
    assert_int_equal(st_log_count(&log, SS_LOG_INFO, " closed after "), 2);
    assert_int_equal(st_log_count(&log, -1, "tcp://127.0.0.1:"), 6);
}

static atomic_int actions;
static void count_actions(ss_server *srv)
{
    (void)srv;
    atomic_fetch_add(&actions, 1);
}

static void service_actions_runs_while_idle(void **state)
{
    (void)state;
    tu_alarm(20);
    ss_server_opts o = opts_for(SS_MODEL_SERIAL, NULL);
    o.service_actions = count_actions;
    atomic_store(&actions, 0);
    st_server s;
    st_start(&s, "tcp://127.0.0.1:0", &st_echo, &o);
    ST_ASSERT_EVENTUALLY(atomic_load(&actions) >= 2, 10);
    st_stop(&s);
}

/* ---- shutdown and close ----------------------------------------------------- */

static void shutdown_while_idle(void **state)
{
    (void)state;
    tu_alarm(20);
    int fds = tu_count_fds();
    for (int m = SS_MODEL_SERIAL; m <= SS_MODEL_POOL; m++) {
        if (m == SS_MODEL_FORKING)
            continue; /* test_server_procs */
        ss_server_opts o = opts_for((ss_model)m, NULL);
        st_server s;
        st_start(&s, "tcp://127.0.0.1:0", &st_echo, &o);
        st_stop(&s); /* returns only once serve_forever has */
    }
    assert_int_equal(tu_count_fds(), fds);
}

static void shutdown_before_serve_forever(void **state)
{
    (void)state;
    tu_alarm(20);
    ss_server *srv;
    assert_int_equal(ss_server_new(&srv, "tcp://127.0.0.1:0", &st_echo, NULL, NULL), 0);
    ss_server_shutdown(srv); /* not serving: returns at once */
    assert_int_equal(ss_server_serve_forever(srv), 0); /* honours it */
    ss_server_free(srv);
}

static atomic_int finished;
static void count_finish(ss_request *r)
{
    (void)r;
    atomic_fetch_add(&finished, 1);
}

static int slow_echo(ss_request *req)
{
    char line[64];
    ssize_t n = ss_stream_readline(req->stream, line, sizeof line);
    if (n <= 0)
        return (int)n;
    usleep(200 * 1000);
    return ss_request_reply(req, line, (size_t)n);
}

/* CPython: server_close joins the non-daemon threads (block_on_close). */
static void threads_are_joined_on_close(void **state)
{
    (void)state;
    tu_alarm(20);
    ss_server_opts o = opts_for(SS_MODEL_THREADING, NULL);
    ss_handler h = {NULL, slow_echo, count_finish, NULL};
    atomic_store(&finished, 0);
    st_server s;
    st_start(&s, "tcp://127.0.0.1:0", &h, &o);
    ss_sock c[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(st_connect(s.addr, &c[i]), 0);
        assert_int_equal(ss_sock_sendall(&c[i], "x\n", 2), 0);
    }
    ST_ASSERT_EVENTUALLY(ss_server_active(s.srv) == 3, 10);
    ss_server_shutdown(s.srv); /* while busy */
    pthread_join(s.thread, NULL);
    ss_server_close(s.srv); /* waits for the three handlers */
    assert_int_equal(atomic_load(&finished), 3);
    assert_int_equal(ss_server_active(s.srv), 0);
    for (int i = 0; i < 3; i++) {
        char b[4];
        assert_int_equal(ss_sock_recv(&c[i], b, sizeof b, 0), 2);
        ss_sock_close(&c[i]);
    }
    ss_server_free(s.srv);
}

/* Drain: a handler that would wait forever is cut off after drain_timeout
 * (its connection shut down so it returns), then joined. */
static void drain_cuts_off_a_slow_handler(void **state)
{
    (void)state;
    tu_alarm(20);
    for (int m = SS_MODEL_THREADING; m <= SS_MODEL_POOL; m += 2) {
        st_log log;
        st_log_init(&log);
        ss_server_opts o = opts_for((ss_model)m, &log);
        o.drain_timeout = 0.2;
        ss_handler h = {NULL, st_echo_handle, count_finish, NULL};
        atomic_store(&finished, 0);
        int fds = tu_count_fds();
        st_server s;
        st_start(&s, "tcp://127.0.0.1:0", &h, &o);
        ss_sock c;
        assert_int_equal(st_connect(s.addr, &c), 0);
        assert_int_equal(st_roundtrip(&c, "hi\n"), 0); /* handler now waits */
        st_stop(&s);
        assert_int_equal(atomic_load(&finished), 1);
        assert_int_equal(st_log_count(&log, SS_LOG_WARN, "still running"), 1);
        assert_int_equal(st_log_count(&log, SS_LOG_ERROR, ""), 0);
        char b;
        assert_int_equal(ss_sock_recv(&c, &b, 1, 0), 0);
        ss_sock_close(&c);
        assert_int_equal(tu_count_fds(), fds);
    }
}

/* ---- errors at setup ------------------------------------------------------------ */

static void bind_failure_is_reported_without_leak(void **state)
{
    (void)state;
    tu_alarm(20);
    ss_server *a, *b = (ss_server *)1;
    assert_int_equal(ss_server_new(&a, "tcp://127.0.0.1:0", &st_echo, NULL, NULL), 0);
    char addr[SS_ADDR_STRLEN];
    ss_addr_format(ss_server_address(a), addr, sizeof addr);
    int fds = tu_count_fds();
    ss_error err = {0};
    assert_int_equal(ss_server_new(&b, addr, &st_echo, NULL, &err), -EADDRINUSE);
    assert_null(b);
    assert_non_null(strstr(err.msg, "Address already in use"));
    assert_non_null(strstr(err.msg, addr));
    assert_int_equal(tu_count_fds(), fds);
    ss_server_free(a);
}

/* The event model runs callbacks; a blocking stream handler is refused
 * (clearly, and without leaking the socket it had opened). */
/* A blocking stream handler under the event model: connections wait on the
 * acceptor's epoll and each handler runs on a thread of its own, so a silent
 * connection holds nothing and a slow handler stalls no other client. */
static void event_model_runs_blocking_stream_handlers_on_threads(void **state)
{
    (void)state;
    tu_alarm(20);
    ss_server_opts o = opts_for(SS_MODEL_EVENT, NULL);
    st_server s;
    st_start(&s, "tcp://127.0.0.1:0", &st_echo, &o);
    ss_sock a, b;
    assert_int_equal(st_connect(s.addr, &a), 0);
    assert_int_equal(ss_sock_sendall(&a, "a", 1), 0); /* a handler waits for its line */
    assert_int_equal(st_connect(s.addr, &b), 0);
    assert_int_equal(st_roundtrip(&b, "b\n"), 0);
    assert_int_equal(ss_sock_sendall(&a, "\n", 1), 0);
    char buf[2];
    assert_int_equal(ss_sock_recv(&a, buf, 2, MSG_WAITALL), 2);
    assert_memory_equal(buf, "a\n", 2);
    ss_sock_close(&a);
    ss_sock_close(&b);
    st_stop(&s);
}

/* ---- limits ------------------------------------------------------------------- */

static void idle_timeout_frees_a_silent_client(void **state)
{
    (void)state;
    tu_alarm(20);
    st_log log;
    st_log_init(&log);
    ss_server_opts o = opts_for(SS_MODEL_THREADING, &log);
    o.idle_timeout = 0.2;
    st_server s;
    st_start(&s, "tcp://127.0.0.1:0", &st_echo, &o);
    ss_sock c;
    assert_int_equal(st_connect(s.addr, &c), 0);
    assert_int_equal(st_roundtrip(&c, "then silence\n"), 0);
    char b;
    assert_int_equal(ss_sock_recv(&c, &b, 1, 0), 0); /* the server hung up */
    ss_sock_close(&c);
    ST_ASSERT_EVENTUALLY(ss_server_active(s.srv) == 0, 10);
    assert_int_equal(st_log_count(&log, SS_LOG_INFO, "idle"), 1);
    assert_int_equal(st_log_count(&log, SS_LOG_ERROR, ""), 0);
    st_stop(&s);
}

static void max_conns_leaves_clients_in_the_backlog(void **state)
{
    (void)state;
    tu_alarm(20);
    ss_server_opts o = opts_for(SS_MODEL_THREADING, NULL);
    o.max_conns = 1;
    st_server s;
    st_start(&s, "tcp://127.0.0.1:0", &st_echo, &o);
    ss_sock a, b;
    assert_int_equal(st_connect(s.addr, &a), 0);
    assert_int_equal(st_roundtrip(&a, "a\n"), 0);
    assert_int_equal(st_connect(s.addr, &b), 0); /* the kernel's backlog */
    assert_int_equal(ss_sock_sendall(&b, "b\n", 2), 0);
    usleep(300 * 1000);
    ss_server_stats st;
    ss_server_stats_get(s.srv, &st);
    assert_int_equal(st.accepted, 1); /* not accepted, and not refused */
    assert_int_equal(ss_server_active(s.srv), 1);
    ss_sock_close(&a);
    char buf[4];
    assert_int_equal(ss_sock_recv(&b, buf, sizeof buf, 0), 2);
    ss_sock_close(&b);
    st_stop(&s);
}

/* A handler whose clients must say "login" first, as a TLS handshake would
 * authenticate them: only then is the request admitted. */
static int login_then_echo(ss_request *req)
{
    char line[64];
    ssize_t n = ss_stream_readline(req->stream, line, sizeof line);
    if (n <= 0 || strcmp(line, "login\n") != 0)
        return 0;
    ss_request_admit(req);
    ss_request_admit(req); /* idempotent */
    if (ss_request_reply(req, "ok\n", 3) < 0)
        return 0;
    return st_echo_handle(req);
}

static const ss_handler login_echo = {.handle = login_then_echo};

static int expect_ok(ss_sock *c)
{
    char buf[3];
    size_t got = 0;
    while (got < sizeof buf) {
        ssize_t n = ss_sock_recv(c, buf + got, sizeof buf - got, 0);
        if (n <= 0)
            return n == 0 ? SS_EEOF : (int)n;
        got += (size_t)n;
    }
    return memcmp(buf, "ok\n", 3) == 0 ? 0 : SS_EPROTO;
}

static int log_in(ss_sock *c)
{
    int rc = ss_sock_sendall(c, "login\n", 6);
    return rc < 0 ? rc : expect_ok(c);
}

static bool closed_by_server(ss_sock *c)
{
    char b;
    return ss_sock_recv(c, &b, 1, 0) <= 0; /* EOF, or a reset */
}

static void max_unadmitted_evicts_the_oldest_unadmitted(void **state)
{
    (void)state;
    tu_alarm(30);
    /* (serial serves one connection at a time: it never has two pending) */
    const ss_model models[] = {SS_MODEL_THREADING, SS_MODEL_POOL};
    for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) {
        ss_server_opts o = opts_for(models[m], NULL);
        o.max_unadmitted = 2;
        o.workers = 8;
        st_server s;
        st_start(&s, "tcp://127.0.0.1:0", &login_echo, &o);
        ss_sock admitted, silent1, silent2, late;
        ss_server_stats st;
        assert_int_equal(st_connect(s.addr, &admitted), 0);
        assert_int_equal(log_in(&admitted), 0);
        ST_ASSERT_EVENTUALLY((ss_server_stats_get(s.srv, &st), st.unadmitted == 0), 10);

        /* two clients that start but never finish a login fill the slots
         * (a client that sends nothing never becomes a request at all) */
        assert_int_equal(st_connect(s.addr, &silent1), 0);
        assert_int_equal(ss_sock_sendall(&silent1, "log", 3), 0);
        ST_ASSERT_EVENTUALLY((ss_server_stats_get(s.srv, &st), st.unadmitted == 1), 10);
        assert_int_equal(st_connect(s.addr, &silent2), 0);
        assert_int_equal(ss_sock_sendall(&silent2, "log", 3), 0);
        ST_ASSERT_EVENTUALLY((ss_server_stats_get(s.srv, &st), st.unadmitted == 2), 10);

        /* a third starts too (it becomes a request with its first byte):
         * it is served all the same, and the oldest stalled one is cut */
        assert_int_equal(st_connect(s.addr, &late), 0);
        assert_int_equal(ss_sock_sendall(&late, "login\n", 6), 0);
        assert_true(closed_by_server(&silent1));
        assert_int_equal(expect_ok(&late), 0);
        assert_int_equal(st_roundtrip(&late, "late\n"), 0);
        ss_server_stats_get(s.srv, &st);
        assert_int_equal(st.evicted, 1);
        assert_int_equal(st.refused + st.rejected, 0);

        /* the admitted client was never touched */
        assert_int_equal(st_roundtrip(&admitted, "still here\n"), 0);

        /* logging in frees a slot: silent2 is safe now, and stays */
        assert_int_equal(ss_sock_sendall(&silent2, "in\n", 3), 0);
        assert_int_equal(expect_ok(&silent2), 0);
        ST_ASSERT_EVENTUALLY((ss_server_stats_get(s.srv, &st), st.unadmitted == 0), 10);
        assert_int_equal(st_roundtrip(&silent2, "kept\n"), 0);
        ss_sock_close(&silent1);
        ss_sock_close(&silent2);
        ss_sock_close(&late);
        ss_sock_close(&admitted);
        st_stop(&s);
    }
}

static void max_unadmitted_is_checked(void **state)
{
    (void)state;
    ss_server_opts o = opts_for(SS_MODEL_THREADING, NULL);
    ss_server *srv;
    ss_error err = {0};
    o.max_unadmitted = -1;
    assert_int_equal(ss_server_new(&srv, "tcp://127.0.0.1:0", &login_echo, &o, &err),
                     SS_EUSAGE);
    assert_non_null(strstr(err.msg, "max_unadmitted"));
}

static void pool_full_keeps_connections_waiting(void **state)
{
    (void)state;
    tu_alarm(20);
    st_log log;
    st_log_init(&log);
    ss_server_opts o = opts_for(SS_MODEL_POOL, &log);
    o.workers = 1;
    o.pool_queue = 1;
    st_server s;
    st_start(&s, "tcp://127.0.0.1:0", &st_echo, &o);
    ss_sock busy, queued, extra;
    assert_int_equal(st_connect(s.addr, &busy), 0);
    assert_int_equal(st_roundtrip(&busy, "x\n"), 0); /* the worker is busy */
    assert_int_equal(st_connect(s.addr, &queued), 0);
    assert_int_equal(ss_sock_sendall(&queued, "q\n", 2), 0);
    ST_ASSERT_EVENTUALLY(ss_server_active(s.srv) == 2, 10); /* queued */
    assert_int_equal(st_connect(s.addr, &extra), 0);
    assert_int_equal(ss_sock_sendall(&extra, "e\n", 2), 0);
    usleep(200 * 1000);
    ss_server_stats st;
    ss_server_stats_get(s.srv, &st);
    assert_int_equal(st.rejected, 0); /* it waits in the acceptor */
    assert_int_equal(ss_server_active(s.srv), 2);
    assert_int_equal(st_log_count(&log, SS_LOG_WARN, ""), 0);
    /* both are served, in order, once the worker is free */
    ss_sock_close(&busy);
    char buf[2];
    assert_int_equal(ss_sock_recv(&queued, buf, 2, 0), 2);
    ss_sock_close(&queued);
    assert_int_equal(ss_sock_recv(&extra, buf, 2, 0), 2);
    assert_memory_equal(buf, "e\n", 2);
    ss_sock_close(&extra);
    st_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(handle_request_times_out),
        cmocka_unit_test(handle_request_serves_one),
        cmocka_unit_test(handle_request_answers_a_datagram_under_every_model),
        cmocka_unit_test(verify_request_refuses),
        cmocka_unit_test(finish_runs_after_failing_handle),
        cmocka_unit_test(failing_setup_skips_handle_and_finish),
        cmocka_unit_test(default_handle_error_logs_and_goes_on),
        cmocka_unit_test(service_actions_runs_while_idle),
        cmocka_unit_test(shutdown_while_idle),
        cmocka_unit_test(shutdown_before_serve_forever),
        cmocka_unit_test(threads_are_joined_on_close),
        cmocka_unit_test(drain_cuts_off_a_slow_handler),
        cmocka_unit_test(bind_failure_is_reported_without_leak),
        cmocka_unit_test(event_model_runs_blocking_stream_handlers_on_threads),
        cmocka_unit_test(idle_timeout_frees_a_silent_client),
        cmocka_unit_test(max_conns_leaves_clients_in_the_backlog),
        cmocka_unit_test(max_unadmitted_evicts_the_oldest_unadmitted),
        cmocka_unit_test(max_unadmitted_is_checked),
        cmocka_unit_test(pool_full_keeps_connections_waiting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
