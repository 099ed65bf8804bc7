/* SPDX-License-Identifier: MIT */
/* test_coro.c — the coroutine switch (coro.c, coro_switch.S), its scheduler
 * on a loop (coro_sched.c), and SS_MODEL_COROUTINE: many coroutines in
 * ping-pong keep their registers and stacks, recursion deep within the
 * stack works, an overflow is a one-line report and an abort, and a server's
 * blocking handlers (sleep, connect, read, write) share one loop thread.
 * ctest-labels: tsan coroutine */
#include "server_test.h"
#include "coro.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

/* ---- the switch ------------------------------------------------------------- */

#define NCORO 200
#define ROUNDS 50

typedef struct pinger {
    int id;
    int rounds_done;
    int *trace; /* order in which coroutines ran */
    int *trace_len;
} pinger;

/* Keeps values in locals (some in callee-saved registers, a double in an
 * FP register) across every yield: a switch that lost one shows here. */
static void ping_main(void *arg)
{
    pinger *p = arg;
    unsigned long acc = (unsigned long)p->id;
    double f = p->id * 0.5;
    volatile char on_stack[64];
    memset((char *)on_stack, p->id & 0x7f, sizeof on_stack);
    for (int r = 0; r < ROUNDS; r++) {
        p->trace[(*p->trace_len)++] = p->id;
        acc = acc * 3 + (unsigned long)r;
        f = f * 1.0001 + r;
        ss__coro_yield();
        for (size_t i = 0; i < sizeof on_stack; i++)
            if (on_stack[i] != (char)(p->id & 0x7f))
                abort();
        p->rounds_done++;
    }
    /* recompute what we should hold */
    unsigned long want = (unsigned long)p->id;
    double wf = p->id * 0.5;
    for (int r = 0; r < ROUNDS; r++) {
        want = want * 3 + (unsigned long)r;
        wf = wf * 1.0001 + r;
    }
    if (acc != want || f != wf)
        abort();
}

static void test_ping_pong(void **state)
{
    (void)state;
    static pinger p[NCORO];
    static ss__coro *co[NCORO];
    static int trace[NCORO * ROUNDS];
    int trace_len = 0;
    for (int i = 0; i < NCORO; i++) {
        p[i] = (pinger){.id = i, .trace = trace, .trace_len = &trace_len};
        assert_int_equal(ss__coro_new(&co[i], 0, ping_main, &p[i]), 0);
    }
    assert_null(ss__coro_current());
    /* round robin: each resume runs one round of each coroutine */
    int alive = NCORO;
    while (alive > 0) {
        for (int i = 0; i < NCORO; i++) {
            if (co[i] == NULL)
                continue;
            if (ss__coro_resume(co[i])) {
                ss__coro_free(co[i]);
                co[i] = NULL;
                alive--;
            }
        }
    }
    assert_null(ss__coro_current());
    assert_int_equal(trace_len, NCORO * ROUNDS);
    for (int k = 0; k < trace_len; k++)
        assert_int_equal(trace[k], k % NCORO); /* strictly interleaved */
    for (int i = 0; i < NCORO; i++)
        assert_int_equal(p[i].rounds_done, ROUNDS);
}

/* ~200 bytes a frame, `depth` frames: deep within 64 KiB at depth 200. */
static int recurse(int depth)
{
    volatile char pad[160];
    pad[0] = (char)depth;
    pad[sizeof pad - 1] = (char)depth;
    if (depth == 0)
        return 0;
    return recurse(depth - 1) + 1 + (pad[0] - (char)depth) + (pad[sizeof pad - 1] - (char)depth);
}

static void deep_main(void *arg)
{
    int *out = arg;
    *out = recurse(*out);
    ss__coro_yield();
    *out = recurse(*out); /* again, after a switch */
}

static void test_deep_recursion_within_the_stack(void **state)
{
    (void)state;
    ss__coro *co;
    int depth = 150; /* ~30 KiB of frames (more with sanitizers) */
    assert_int_equal(ss__coro_new(&co, 256 * 1024, deep_main, &depth), 0);
    assert_false(ss__coro_resume(co));
    assert_int_equal(depth, 150);
    assert_true(ss__coro_resume(co));
    assert_int_equal(depth, 150);
    /* a stack is reused for the next coroutine */
    depth = 100;
    assert_int_equal(ss__coro_reuse(co, deep_main, &depth), 0);
    assert_false(ss__coro_resume(co));
    assert_true(ss__coro_resume(co));
    assert_int_equal(depth, 100);
    ss__coro_free(co);
}

/* ---- the overflow report ---------------------------------------------------------- */

static volatile int recursion_limit = -1; /* never reached: -1 */

static int unbounded(int n)
{
    volatile char pad[512];
    pad[0] = (char)n;
    if (n == recursion_limit)
        return 0;
    return unbounded(n + 1) + pad[0];
}

static void overflow_main(void *arg)
{
    (void)arg;
    (void)unbounded(0);
}

/* Run `child` in a forked process with stderr into a pipe; returns its wait
 * status and what it wrote. */
static int run_child(void (*child)(void), char *err, size_t cap)
{
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pfd[1], STDERR_FILENO);
        close(pfd[0]);
        close(pfd[1]);
        alarm(20);
        child();
        _exit(0);
    }
    close(pfd[1]);
    size_t got = 0;
    ssize_t n;
    while (got + 1 < cap && (n = read(pfd[0], err + got, cap - 1 - got)) > 0)
        got += (size_t)n;
    err[got] = '\0';
    close(pfd[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static void overflow_child(void)
{
    signal(SIGABRT, SIG_DFL);
    if (ss__coro_thread_init() < 0)
        _exit(3);
    ss__coro *co;
    if (ss__coro_new(&co, 16 * 1024, overflow_main, NULL) < 0)
        _exit(4);
    ss__coro_resume(co);
    _exit(5); /* not reached: the overflow aborts */
}

static void test_stack_overflow_is_reported(void **state)
{
    (void)state;
    char err[4096];
    int status = run_child(overflow_child, err, sizeof err);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
        fail_msg("the child did not abort (status %#x); stderr: %s", status, err);
    if (strstr(err, "sockserve: coroutine stack overflow (16 KiB stack)") == NULL)
        fail_msg("no overflow report on stderr: %s", err);
}

/* A server's handler that recurses without end: the same report, from a
 * loop thread of the coroutine model, when a client sends a byte. */
static int recursing_handle(ss_request *req)
{
    char c;
    if (ss_stream_read(req->stream, &c, 1) != 1)
        return 0;
    return unbounded(c);
}

static void server_overflow_child(void)
{
    signal(SIGABRT, SIG_DFL);
    ss_server_opts o;
    ss_server_opts_init(&o);
    o.model = SS_MODEL_COROUTINE;
    o.workers = 1;
    o.coro_stack_size = 32 * 1024;
    o.log = NULL;
    static const ss_handler h = {NULL, recursing_handle, NULL, NULL};
    st_server s;
    st_start(&s, "tcp://127.0.0.1:0", &h, &o);
    ss_sock c;
    if (st_connect(s.addr, &c) < 0)
        _exit(6);
    (void)ss_sock_sendall(&c, "x", 1);
    char buf[1];
    (void)ss_sock_recv(&c, buf, 1, 0); /* the process dies meanwhile */
    _exit(7);
}

static void test_server_handler_overflow_is_reported(void **state)
{
    (void)state;
    char err[4096];
    int status = run_child(server_overflow_child, err, sizeof err);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
        fail_msg("the server did not abort (status %#x); stderr: %s", status, err);
    if (strstr(err, "sockserve: coroutine stack overflow (32 KiB stack)") == NULL)
        fail_msg("no overflow report on stderr: %s", err);
}

/* ---- the model: blocking handlers sharing one loop thread ----------------------- */

static atomic_int in_handler, most_in_handler;
static pthread_t handler_threads[2];
static atomic_int nthreads_seen;

static void note_thread(void)
{
    pthread_t self = pthread_self();
    int n = atomic_load(&nthreads_seen);
    for (int i = 0; i < n; i++)
        if (pthread_equal(handler_threads[i], self))
            return;
    if (n < 2) {
        handler_threads[n] = self;
        atomic_store(&nthreads_seen, n + 1);
    }
}

/* Sleeps, then echoes through a connection of its own to an upstream echo
 * server: ss_sleep, ss_dial, sendall and recv as plain calls. */
static int relay_handle(ss_request *req)
{
    const char *upstream = ss_server_handler_data(req->server);
    note_thread();
    if (!ss_in_coroutine())
        return SS_EPROTO;
    int now = atomic_fetch_add(&in_handler, 1) + 1;
    int most = atomic_load(&most_in_handler);
    while (now > most && !atomic_compare_exchange_weak(&most_in_handler, &most, now))
        ;
    int rc = ss_sleep(0.2);
    ss_sock up = SS_SOCK_INIT;
    if (rc == 0)
        rc = ss_dial(&up, upstream, SS_TIMEOUT_NONE, NULL); /* blocking: yields */
    char line[256];
    ssize_t n = rc < 0 ? rc : ss_stream_readline(req->stream, line, sizeof line);
    if (n > 0)
        rc = ss_sock_sendall(&up, line, (size_t)n);
    size_t got = 0;
    while (rc == 0 && n > 0 && got < (size_t)n) {
        ssize_t m = ss_sock_recv(&up, line + got, (size_t)n - got, 0);
        if (m <= 0)
            rc = m == 0 ? SS_EEOF : (int)m;
        else
            got += (size_t)m;
    }
    if (rc == 0 && n > 0)
        rc = ss_request_reply(req, line, (size_t)n);
    ss_sock_close(&up);
    atomic_fetch_sub(&in_handler, 1);
    return rc < 0 ? rc : (n < 0 ? (int)n : 0);
}

#define NCLIENTS 20

static void test_blocking_handlers_share_one_loop(void **state)
{
    (void)state;
    tu_alarm(60);
    ss_server_opts uo;
    ss_server_opts_init(&uo);
    uo.model = SS_MODEL_THREADING;
    uo.log = NULL;
    st_server up;
    st_start(&up, "tcp://127.0.0.1:0", &st_echo, &uo);

    ss_server_opts o;
    ss_server_opts_init(&o);
    o.model = SS_MODEL_COROUTINE;
    o.workers = 1; /* one thread: concurrency can only come from yielding */
    o.log = NULL;
    ss_handler h = {NULL, relay_handle, NULL, up.addr};
    st_server s;
    st_start(&s, "tcp://127.0.0.1:0", &h, &o);

    ss_sock c[NCLIENTS];
    for (int i = 0; i < NCLIENTS; i++) {
        assert_int_equal(st_connect(s.addr, &c[i]), 0);
        char msg[32];
        snprintf(msg, sizeof msg, "client %d\n", i);
        assert_int_equal(ss_sock_sendall(&c[i], msg, strlen(msg)), 0);
    }
    for (int i = 0; i < NCLIENTS; i++) {
        char msg[32], buf[64];
        snprintf(msg, sizeof msg, "client %d\n", i);
        size_t got = 0;
        while (got < strlen(msg)) {
            ssize_t n = ss_sock_recv(&c[i], buf + got, sizeof buf - got, 0);
            if (n <= 0)
                fail_msg("client %d: %s", i, n == 0 ? "closed" : ss_strerror((int)n));
            got += (size_t)n;
        }
        assert_memory_equal(buf, msg, strlen(msg));
        ss_sock_close(&c[i]);
    }
    /* 20 handlers each sleeping 0.2 s on one thread: they overlapped */
    assert_true(atomic_load(&most_in_handler) > 1);
    assert_int_equal(atomic_load(&nthreads_seen), 1);
    st_stop(&s);
    st_stop(&up);
}

/* ss_poll as a handler's own poll(): a pipe nobody writes times out, the
 * connection (with the client's line in it) is ready; meanwhile the loop
 * serves the other requests. */
static atomic_int polling, most_polling;

static int poll_handle(ss_request *req)
{
    int now = atomic_fetch_add(&polling, 1) + 1;
    int most = atomic_load(&most_polling);
    while (now > most && !atomic_compare_exchange_weak(&most_polling, &most, now))
        ;
    int pfd[2];
    if (pipe(pfd) < 0)
        return -errno;
    struct pollfd p[2] = {{.fd = pfd[0], .events = POLLIN}, {.fd = -1}};
    int n = ss_poll(p, 2, 200);
    int rc = n == 0 ? 0 : SS_EPROTO;
    close(pfd[0]);
    close(pfd[1]);
    struct pollfd c = {.fd = req->sock->fd, .events = POLLIN};
    if (rc == 0 && (ss_poll(&c, 1, 5000) != 1 || !(c.revents & POLLIN)))
        rc = SS_EPROTO;
    atomic_fetch_sub(&polling, 1);
    char line[64];
    ssize_t m = rc < 0 ? rc : ss_stream_readline(req->stream, line, sizeof line);
    if (m > 0)
        rc = ss_request_reply(req, line, (size_t)m);
    return rc < 0 ? rc : (m < 0 ? (int)m : 0);
}

static void test_ss_poll_yields(void **state)
{
    (void)state;
    tu_alarm(60);
    ss_server_opts o;
    ss_server_opts_init(&o);
    o.model = SS_MODEL_COROUTINE;
    o.workers = 1;
    o.log = NULL;
    static const ss_handler h = {NULL, poll_handle, NULL, NULL};
    st_server s;
    st_start(&s, "tcp://127.0.0.1:0", &h, &o);
    ss_sock c[8];
    for (int i = 0; i < 8; i++) {
        assert_int_equal(st_connect(s.addr, &c[i]), 0);
        assert_int_equal(ss_sock_sendall(&c[i], "ping\n", 5), 0);
    }
    for (int i = 0; i < 8; i++) {
        char buf[8];
        size_t got = 0;
        while (got < 5) {
            ssize_t n = ss_sock_recv(&c[i], buf + got, sizeof buf - got, 0);
            if (n <= 0)
                fail_msg("client %d: %s", i, n == 0 ? "closed" : ss_strerror((int)n));
            got += (size_t)n;
        }
        assert_memory_equal(buf, "ping\n", 5);
        ss_sock_close(&c[i]);
    }
    assert_true(atomic_load(&most_polling) > 1);
    st_stop(&s);
}

/* Echo each chunk; after the second, sleep while the client sends the last
 * chunk and its end of file: their readiness comes while nobody waits on
 * the connection, and must still be read (the short-read hint of
 * transport_fd.c must not take it for "nothing there"). */
static int sleepy_echo_handle(ss_request *req)
{
    for (int i = 0;; i++) {
        char buf[256];
        ssize_t n = ss_stream_read(req->stream, buf, sizeof buf);
        if (n <= 0)
            return (int)n;
        int rc = ss_request_reply(req, buf, (size_t)n);
        if (rc < 0)
            return rc;
        if (i == 1) /* the second came after a wait on the connection */
            (void)ss_sleep(0.3);
    }
}

/* A one-loop coroutine server running `handle`, and a client that has had
 * two chunks echoed ("a" at once, "x" after the handler waited on the
 * connection) and then sent "b" and its end of file while the handler
 * sleeps (each handler here sleeps after its second chunk). */
static void start_and_queue_while_asleep(int (*handle)(ss_request *), st_server *s, ss_sock *c)
{
    tu_alarm(60);
    ss_server_opts o;
    ss_server_opts_init(&o);
    o.model = SS_MODEL_COROUTINE;
    o.workers = 1;
    o.log = NULL;
    static ss_handler h; /* the server keeps a pointer to it */
    h = (ss_handler){NULL, handle, NULL, NULL};
    st_start(s, "tcp://127.0.0.1:0", &h, &o);
    assert_int_equal(st_connect(s->addr, c), 0);
    assert_int_equal(ss_sock_settimeout(c, 5.0), 0);
    char buf[8];
    assert_int_equal(ss_sock_sendall(c, "a", 1), 0);
    assert_int_equal(ss_sock_recv(c, buf, sizeof buf, 0), 1);
    usleep(100 * 1000); /* the handler waits on the connection now */
    assert_int_equal(ss_sock_sendall(c, "x", 1), 0);
    assert_int_equal(ss_sock_recv(c, buf, sizeof buf, 0), 1);
    /* the handler sleeps now, with these waiting in its socket */
    assert_int_equal(ss_sock_sendall(c, "b", 1), 0);
    assert_int_equal(ss_sock_shutdown(c, SHUT_WR), 0);
}

static void test_data_and_eof_while_not_waiting(void **state)
{
    (void)state;
    st_server s;
    ss_sock c;
    start_and_queue_while_asleep(sleepy_echo_handle, &s, &c);
    char buf[8];
    ssize_t n = ss_sock_recv(&c, buf, sizeof buf, 0);
    if (n != 1)
        fail_msg("the second chunk was not echoed: %s", n < 0 ? ss_strerror((int)n) : "closed");
    assert_int_equal(buf[0], 'b');
    n = ss_sock_recv(&c, buf, sizeof buf, 0);
    if (n != 0)
        fail_msg("the server did not see the end of file: %s", n < 0 ? ss_strerror((int)n) : "data");
    ss_sock_close(&c);
    st_stop(&s);
}

/* The connection's readiness while its coroutine sleeps (bytes, then end
 * of file) is level: the loop must not wake for it turn after turn until
 * the handler reads again. CPU time of the process over the sleep: a bound
 * on idleness (a spinning loop burns all of it), not a speed assertion. */
static int slow_second_read_handle(ss_request *req)
{
    char buf[256];
    ssize_t n;
    int rc;
    /* the first chunk is there at once (the core waits for it); the second
     * is waited for on the loop, which registers the connection */
    for (int i = 0; i < 2; i++) {
        if ((n = ss_stream_read(req->stream, buf, sizeof buf)) <= 0)
            return (int)n;
        if ((rc = ss_request_reply(req, buf, (size_t)n)) < 0)
            return rc;
    }
    (void)ss_sleep(0.8);
    while ((n = ss_stream_read(req->stream, buf, sizeof buf)) > 0)
        if ((rc = ss_request_reply(req, buf, (size_t)n)) < 0)
            return rc;
    return (int)n;
}

static double process_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_readiness_while_asleep_costs_no_cpu(void **state)
{
    (void)state;
    st_server s;
    ss_sock c;
    start_and_queue_while_asleep(slow_second_read_handle, &s, &c);
    char buf[8];
    usleep(100 * 1000);
    double t0 = process_cpu_s();
    usleep(500 * 1000);
    double used = process_cpu_s() - t0;
    if (used > 0.1)
        fail_msg("the loop used %.3f s of CPU in 0.5 s while its coroutine slept", used);
    /* and what came meanwhile is still served */
    assert_int_equal(ss_sock_recv(&c, buf, sizeof buf, 0), 1);
    assert_int_equal(buf[0], 'b');
    assert_int_equal(ss_sock_recv(&c, buf, sizeof buf, 0), 0);
    ss_sock_close(&c);
    st_stop(&s);
}

/* ---- a write wait and reports it did not ask for ---------------------------- */

/* A coroutine on a loop of the test's own (no server, no threads): it fills
 * its connection's send buffer and waits for POLLOUT, as a handler writing
 * a big reply to a client that does not read does. */
typedef struct blocked_writer {
    int fd;       /* the coroutine's home fd: the server side of a TCP pair */
    size_t sent;  /* bytes it got into the socket */
    int phase;    /* 1: waiting for POLLOUT; 2: the wait ended */
    int rc;       /* what the wait returned */
} blocked_writer;

static void blocked_writer_main(void *arg)
{
    blocked_writer *b = arg;
    ss__coro_home_fd(b->fd);
    char buf[4096];
    memset(buf, 'w', sizeof buf);
    for (;;) {
        ssize_t n = send(b->fd, buf, sizeof buf, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0)
            break;
        b->sent += (size_t)n;
    }
    b->phase = 1;
    b->rc = errno == EAGAIN || errno == EWOULDBLOCK
                ? ss__coro_wait_fd(b->fd, POLLOUT, ss__now_ms() + 5000)
                : -errno;
    b->phase = 2;
    ss__coro_home_fd(-1);
}

/* A connected loopback TCP pair with small buffers: *srv non-blocking. */
static void small_tcp_pair(int *srv, int *cli)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, 1), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
    *cli = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(*cli >= 0);
    int small = 4096;
    assert_int_equal(setsockopt(*cli, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    assert_int_equal(connect(*cli, (struct sockaddr *)&a, sizeof a), 0);
    *srv = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    assert_true(*srv >= 0);
    assert_int_equal(setsockopt(*srv, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    close(lfd);
}

/* The peer reads what the blocked writer sent, with the loop running, until
 * the writer's phase leaves `waiting` (2 s at most): the bytes it read. */
static size_t peer_reads_while(ss_loop *loop, int cli, const int *phase, int waiting)
{
    size_t got = 0;
    int64_t t0 = ss__now_ms();
    while (*phase == waiting && ss__now_ms() - t0 < 2000) {
        char buf[65536];
        ssize_t n;
        while ((n = recv(cli, buf, sizeof buf, MSG_DONTWAIT)) > 0)
            got += (size_t)n;
        assert_int_equal(ss_loop_run_once(loop, 10), 0);
    }
    return got;
}

/*
 * The peer's end of file (a FIN) while the coroutine waits to write: io_uring
 * reports EPOLLRDHUP on any poll, whatever its mask (the kernel adds it, as
 * it adds EPOLLERR and EPOLLHUP), so the wait for POLLOUT gets a report it
 * did not ask for. Before 7b7ed8d the scheduler took that for readiness
 * nobody waits for and dropped the registration: the coroutine then never
 * woke when the peer read (or reset), and a server kept the connection
 * forever (integration.faults test_sigpipe_coroutine, a descriptor more).
 * The wait must still end when the peer reads, and the report must not turn
 * into a busy loop meanwhile. The loop runs here, one turn at a time: turns
 * while nothing happens count wake-ups (a turn waits up to 50 ms).
 */
static void test_write_wait_survives_peer_half_close(void **state)
{
    (void)state;
    tu_alarm(30);
    ss_loop *loop;
    assert_int_equal(ss_loop_new(&loop, NULL), 0);
    ss__sched *sched;
    assert_int_equal(ss__sched_new(&sched, loop, 0), 0);
    int srv, cli;
    small_tcp_pair(&srv, &cli);
    blocked_writer b = {.fd = srv};
    assert_int_equal(ss__sched_spawn(sched, blocked_writer_main, &b), 0);
    assert_int_equal(b.phase, 1); /* parked on its POLLOUT wait */
    for (int i = 0; i < 3; i++)
        assert_int_equal(ss_loop_run_once(loop, 10), 0); /* the poll is armed */
    assert_int_equal(shutdown(cli, SHUT_WR), 0); /* the FIN: EPOLLRDHUP at the server */
    int turns = 0;
    int64_t t0 = ss__now_ms();
    while (ss__now_ms() - t0 < 300 && b.phase == 1) {
        assert_int_equal(ss_loop_run_once(loop, 50), 0);
        turns++;
    }
    assert_int_equal(b.phase, 1); /* nothing it waits for came */
    if (turns > 60)
        fail_msg("%d loop turns in 300 ms while the coroutine waited: the report spins", turns);
    /* the peer reads: the socket drains, the wait ends */
    size_t got = peer_reads_while(loop, cli, &b.phase, 1);
    if (b.phase != 2)
        fail_msg("the coroutine never woke from its write wait (%zu of %zu bytes read): its "
                 "poll was dropped", got, b.sent);
    assert_int_equal(b.rc, 0);
    assert_int_equal(ss__sched_live(sched), 0);
    close(cli);
    close(srv);
    ss__sched_free(sched);
    ss_loop_free(loop);
}

/* Reads a byte of its connection, waits on a second descriptor of the same
 * socket (a dup: a scratch registration), then blocks writing. */
typedef struct turning_writer {
    int fd, dup_fd;
    size_t sent;
    int phase; /* 1: waiting to read; 2: on the dup; 3: for POLLOUT; 4: done */
    int rc;
} turning_writer;

static void turning_writer_main(void *arg)
{
    turning_writer *t = arg;
    ss__coro_home_fd(t->fd);
    t->phase = 1;
    char c;
    if ((t->rc = ss__coro_wait_fd(t->fd, POLLIN, ss__now_ms() + 5000)) == 0 &&
        read(t->fd, &c, 1) == 1) {
        t->phase = 2;
        t->rc = ss__coro_wait_fd(t->dup_fd, POLLIN, ss__now_ms() + 5000);
    }
    if (t->phase == 2 && t->rc == 0) {
        char buf[4096];
        memset(buf, 'w', sizeof buf);
        ssize_t n;
        while ((n = send(t->fd, buf, sizeof buf, MSG_DONTWAIT | MSG_NOSIGNAL)) > 0)
            t->sent += (size_t)n;
        t->phase = 3;
        t->rc = ss__coro_wait_fd(t->fd, POLLOUT, ss__now_ms() + 5000);
    }
    t->phase = 4;
    ss__coro_home_fd(-1);
}

/*
 * A report of an older mask: the coroutine's connection registered for
 * POLLIN (lazily, from its read), the coroutine waiting on another
 * descriptor; the peer's byte makes both ready in one wake-up, the later
 * registration (the dup) first, so one epoll batch holds both: the dup's
 * report resumes the coroutine, which turns to waiting for POLLOUT on its
 * connection, and then the batch's POLLIN for the connection comes, for a
 * wait that no longer asks for it. Dropping the registration then (before
 * 7b7ed8d) stranded the coroutine: it never woke when the peer read.
 */
static void test_write_wait_survives_a_report_of_its_old_mask(void **state)
{
    (void)state;
    tu_alarm(30);
    ss_loop *loop;
    assert_int_equal(ss_loop_new(&loop, NULL), 0);
    ss__sched *sched;
    assert_int_equal(ss__sched_new(&sched, loop, 0), 0);
    int srv, cli;
    small_tcp_pair(&srv, &cli);
    turning_writer t = {.fd = srv, .dup_fd = fcntl(srv, F_DUPFD_CLOEXEC, 0)};
    assert_true(t.dup_fd >= 0);
    assert_int_equal(ss__sched_spawn(sched, turning_writer_main, &t), 0);
    assert_int_equal(t.phase, 1);
    assert_int_equal(send(cli, "a", 1, 0), 1);
    for (int i = 0; i < 200 && t.phase == 1; i++)
        assert_int_equal(ss_loop_run_once(loop, 10), 0);
    assert_int_equal(t.phase, 2);
    /* a few turns: the connection's level-triggered entry is checked (not
     * ready: off epoll's ready list), the dup's poll armed */
    for (int i = 0; i < 3; i++)
        assert_int_equal(ss_loop_run_once(loop, 10), 0);
    assert_int_equal(send(cli, "b", 1, 0), 1);
    for (int i = 0; i < 200 && t.phase == 2; i++)
        assert_int_equal(ss_loop_run_once(loop, 10), 0);
    assert_int_equal(t.phase, 3);
    size_t got = peer_reads_while(loop, cli, &t.phase, 3);
    if (t.phase != 4)
        fail_msg("the coroutine never woke from its write wait (%zu of %zu bytes read): its "
                 "registration was dropped", got, t.sent);
    assert_int_equal(t.rc, 0);
    assert_int_equal(ss__sched_live(sched), 0);
    close(t.dup_fd);
    close(cli);
    close(srv);
    ss__sched_free(sched);
    ss_loop_free(loop);
}

static void test_options_are_checked(void **state)
{
    (void)state;
    ss_server_opts o;
    ss_server_opts_init(&o);
    o.model = SS_MODEL_COROUTINE;
    o.coro_stack_size = 1024;
    o.log = NULL;
    ss_server *srv = NULL;
    ss_error err = {0};
    assert_int_equal(ss_server_new(&srv, "tcp://127.0.0.1:0", &st_echo, &o, &err), SS_EUSAGE);
    assert_non_null(strstr(err.msg, "coro_stack_size"));
    assert_string_equal(ss_model_name(SS_MODEL_COROUTINE), "coroutine");
    ss_model m;
    assert_int_equal(ss_model_parse("coroutine", &m), 0);
    assert_int_equal(m, SS_MODEL_COROUTINE);
    assert_false(ss_in_coroutine());
    assert_int_equal(ss_sleep(0.001), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ping_pong),
        cmocka_unit_test(test_deep_recursion_within_the_stack),
        cmocka_unit_test(test_stack_overflow_is_reported),
        cmocka_unit_test(test_server_handler_overflow_is_reported),
        cmocka_unit_test(test_blocking_handlers_share_one_loop),
        cmocka_unit_test(test_ss_poll_yields),
        cmocka_unit_test(test_data_and_eof_while_not_waiting),
        cmocka_unit_test(test_readiness_while_asleep_costs_no_cpu),
        cmocka_unit_test(test_write_wait_survives_peer_half_close),
        cmocka_unit_test(test_write_wait_survives_a_report_of_its_old_mask),
        cmocka_unit_test(test_options_are_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
