/* SPDX-License-Identifier: MIT */
/* test_server_defaults.c — what a server does without being told: a failing
 * handler is reported on stderr (and silenced with opts.log = NULL), and
 * ss_server_serve_until_signal stops on SIGTERM/SIGINT, drains the requests
 * it accepted, returns 0 and puts the previous signal actions back.
 * ctest-labels: tsan */
#include "server_test.h"

#include <fcntl.h>
#include <signal.h>

/* ---- the default log sink ---------------------------------------------- */

static int fail_handle(ss_request *req)
{
    (void)req;
    return -EIO;
}

/* Run one failing request on a serial server with `o`, stderr captured;
 * returns what reached stderr (static buffer). */
static const char *stderr_of_failing_request(const ss_server_opts *o)
{
    static char got[4096];
    int pipefd[2];
    assert_int_equal(pipe2(pipefd, O_CLOEXEC | O_NONBLOCK), 0);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_int_equal(dup2(pipefd[1], STDERR_FILENO), STDERR_FILENO);

    ss_handler h = {.handle = fail_handle};
    ss_server *srv;
    assert_int_equal(ss_server_new(&srv, "tcp://127.0.0.1:0", &h, o, NULL), 0);
    char addr[SS_ADDR_STRLEN];
    ss_addr_format(ss_server_address(srv), addr, sizeof addr);
    ss_sock c;
    assert_int_equal(st_connect(addr, &c), 0);
    assert_int_equal(ss_sock_sendall(&c, "x", 1), 0); /* a worker only after a byte */
    assert_int_equal(ss_server_handle_request(srv), 0);
    ss_sock_close(&c);
    ss_server_free(srv);

    dup2(saved, STDERR_FILENO);
    close(saved);
    close(pipefd[1]);
    ssize_t n = read(pipefd[0], got, sizeof got - 1);
    got[n > 0 ? n : 0] = '\0';
    close(pipefd[0]);
    return got;
}

static void failing_handler_is_reported_on_stderr(void **state)
{
    (void)state;
    tu_alarm(20);
    ss_server_opts o;
    ss_server_opts_init(&o);
    assert_ptr_equal(o.log, ss_server_log_to_stderr);
    const char *err = stderr_of_failing_request(&o);
    assert_non_null(strstr(err, "test_server_defaults: error: tcp://127.0.0.1:"));
    assert_non_null(strstr(err, "request failed: Input/output error\n"));
    /* NULL opts are the same defaults */
    err = stderr_of_failing_request(NULL);
    assert_non_null(strstr(err, "request failed: Input/output error\n"));
}

static void null_log_is_silent(void **state)
{
    (void)state;
    tu_alarm(20);
    ss_server_opts o;
    ss_server_opts_init(&o);
    o.log = NULL;
    assert_string_equal(stderr_of_failing_request(&o), "");
}

static void stderr_sink_keeps_only_errors_and_warnings(void **state)
{
    (void)state;
    int pipefd[2];
    assert_int_equal(pipe2(pipefd, O_CLOEXEC | O_NONBLOCK), 0);
    int saved = dup(STDERR_FILENO);
    dup2(pipefd[1], STDERR_FILENO);
    ss_server_log_to_stderr(NULL, SS_LOG_INFO, "info line");
    ss_server_log_to_stderr(NULL, SS_LOG_DEBUG, "debug line");
    ss_server_log_to_stderr(NULL, SS_LOG_WARN, "warn line");
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(pipefd[1]);
    char got[512];
    ssize_t n = read(pipefd[0], got, sizeof got - 1);
    got[n > 0 ? n : 0] = '\0';
    close(pipefd[0]);
    assert_string_equal(got, "test_server_defaults: warning: warn line\n");
}

/* ---- serve_until_signal -------------------------------------------------- */

static atomic_int previous_handler_runs;
static void previous_handler(int sig)
{
    (void)sig;
    atomic_fetch_add(&previous_handler_runs, 1);
}

static atomic_bool request_done;
static int echo_then_mark(ss_request *req)
{
    int rc = st_echo_handle(req);
    atomic_store(&request_done, true);
    return rc;
}

typedef struct client_job {
    char addr[SS_ADDR_STRLEN];
    int sig;
    int rc_before, rc_during; /* round trips before and after the signal */
    bool refused_after;       /* a new client could not connect once draining */
} client_job;

/* A client with a request in flight when the signal comes: it is still
 * served while the server drains, then leaves. */
static void *client_then_signal(void *arg)
{
    client_job *j = arg;
    ss_sock c;
    if (st_connect(j->addr, &c) < 0)
        return NULL;
    j->rc_before = st_roundtrip(&c, "before\n");
    kill(getpid(), j->sig);
    /* once serve_forever has returned the listener closes: new clients are
     * refused while this one is still being served */
    for (int i = 0; i < 500 && !j->refused_after; i++) {
        ss_sock late;
        if (st_connect(j->addr, &late) < 0)
            j->refused_after = true;
        else
            ss_sock_close(&late), usleep(10 * 1000);
    }
    j->rc_during = st_roundtrip(&c, "during\n");
    ss_sock_close(&c); /* the handler sees end of file and returns */
    return NULL;
}

static void run_until(int sig)
{
    tu_alarm(30);
    struct sigaction prev = {.sa_handler = previous_handler}, now;
    sigemptyset(&prev.sa_mask);
    struct sigaction saved;
    sigaction(sig, &prev, &saved);

    ss_server_opts o;
    ss_server_opts_init(&o);
    o.model = SS_MODEL_THREADING;
    o.drain_timeout = 20; /* long: the request must end on its own */
    ss_handler h = {.handle = echo_then_mark};
    ss_server *srv;
    assert_int_equal(ss_server_new(&srv, "tcp://127.0.0.1:0", &h, &o, NULL), 0);
    client_job job = {.sig = sig, .rc_before = -1, .rc_during = -1};
    ss_addr_format(ss_server_address(srv), job.addr, sizeof job.addr);
    atomic_store(&request_done, false);
    atomic_store(&previous_handler_runs, 0);

    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, client_then_signal, &job), 0);
    assert_int_equal(ss_server_serve_until_signal(srv), 0);
    assert_true(atomic_load(&request_done)); /* drained before returning */
    pthread_join(t, NULL);
    assert_int_equal(job.rc_before, 0);
    assert_int_equal(job.rc_during, 0);
    assert_true(job.refused_after);
    assert_int_equal(atomic_load(&previous_handler_runs), 0); /* ours took it */

    sigaction(sig, NULL, &now);
    assert_ptr_equal(now.sa_handler, previous_handler); /* put back */
    ss_server_free(srv);
    sigaction(sig, &saved, NULL);
}

static void sigterm_stops_and_drains(void **state)
{
    (void)state;
    run_until(SIGTERM);
}

static void sigint_stops_and_drains(void **state)
{
    (void)state;
    run_until(SIGINT);
}

static void *serve_until_signal_thread(void *arg)
{
    return (void *)(intptr_t)ss_server_serve_until_signal(arg);
}

static void one_server_at_a_time(void **state)
{
    (void)state;
    tu_alarm(20);
    ss_server *a, *b;
    assert_int_equal(ss_server_new(&a, "tcp://127.0.0.1:0", &st_echo, NULL, NULL), 0);
    assert_int_equal(ss_server_new(&b, "tcp://127.0.0.1:0", &st_echo, NULL, NULL), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, serve_until_signal_thread, a), 0);
    struct sigaction now;
    ST_ASSERT_EVENTUALLY((sigaction(SIGTERM, NULL, &now), now.sa_handler != SIG_DFL), 5);
    assert_int_equal(ss_server_serve_until_signal(b), SS_EBUSY); /* a holds it */
    ss_server_shutdown_nowait(a);
    void *rc;
    pthread_join(t, &rc);
    assert_int_equal((int)(intptr_t)rc, 0);
    ss_server_free(a);
    ss_server_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(failing_handler_is_reported_on_stderr),
        cmocka_unit_test(null_log_is_silent),
        cmocka_unit_test(stderr_sink_keeps_only_errors_and_warnings),
        cmocka_unit_test(sigterm_stops_and_drains),
        cmocka_unit_test(sigint_stops_and_drains),
        cmocka_unit_test(one_server_at_a_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
