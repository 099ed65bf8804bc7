/* SPDX-License-Identifier: MIT */
/* test_server_procs.c — the process models: forking (ForkingTCPServer,
 * ForkingUDPServer, ForkingUnixStreamServer ...) and prefork, on every
 * socket kind; forking keeps to max_children and leaves no zombies; prefork
 * restarts a worker that dies and stops its workers on shutdown.
 *
 * The server runs in a child process of the test, stopped by SIGTERM whose
 * handler calls ss_server_shutdown_nowait (the signal-handler path). It must
 * not share the test's process: its forked children would inherit the
 * test's client sockets and keep each other's connections open.
 * (Not under TSan: fork() is outside what it models.) */
#include "server_test.h"

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>

#define NCLIENTS 4

static ss_server *server_in_this_process;

static void on_sigterm(int sig)
{
    (void)sig;
    ss_server_shutdown_nowait(server_in_this_process);
}

/* Children of `pid`, zombies included (scans /proc). */
static int count_children(pid_t pid)
{
    DIR *d = opendir("/proc");
    int n = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        if (fgets(buf, sizeof buf, f) != NULL) {
            char *rp = strrchr(buf, ')');
            char state;
            int ppid;
            if (rp != NULL && sscanf(rp + 1, " %c %d", &state, &ppid) == 2 &&
                ppid == pid)
                n++;
        }
        fclose(f);
    }
    if (d != NULL)
        closedir(d);
    return n;
}

typedef struct proc_server {
    pid_t pid;
    char addr[SS_ADDR_STRLEN];
} proc_server;

/* Start a server in a child process; its address comes back on a pipe. The
 * child exits 0 only if serve_forever returned 0 and nothing is left: no
 * child processes, no active request, no descriptor beyond those it began
 * with. */
static void ps_start(proc_server *p, const char *address, const ss_handler *h,
                     const ss_server_opts *o)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    p->pid = fork();
    assert_true(p->pid >= 0);
    if (p->pid == 0) {
        close(fds[0]);
        int before = tu_count_fds() - 1; /* the pipe's write end goes */
        ss_error err = {0};
        ss_server *srv;
        char text[SS_ADDR_STRLEN + 8] = "ERR";
        int rc = ss_server_new(&srv, address, h, o, &err);
        if (rc == 0)
            ss_addr_format(ss_server_address(srv), text, sizeof text);
        else
            snprintf(text, sizeof text, "ERR");
        (void)!write(fds[1], text, strlen(text) + 1);
        close(fds[1]);
        if (rc != 0)
            _exit(10);
        server_in_this_process = srv;
        struct sigaction sa = {.sa_handler = on_sigterm};
        sigaction(SIGTERM, &sa, NULL);
        rc = ss_server_serve_forever(srv);
        ss_server_free(srv);
        int status;
        bool no_kids = waitpid(-1, &status, WNOHANG) < 0 && errno == ECHILD;
        _exit(rc != 0 ? 11 : !no_kids ? 12 : tu_count_fds() != before ? 13 : 0);
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t n;
    while (got < sizeof p->addr - 1 &&
           (n = read(fds[0], p->addr + got, sizeof p->addr - 1 - got)) > 0)
        got += (size_t)n;
    p->addr[got] = '\0';
    close(fds[0]);
    if (strncmp(p->addr, "ERR", 3) == 0)
        fail_msg("server for %s did not start", address);
}

/* SIGTERM -> shutdown_nowait -> serve_forever returns -> free. */
static void ps_stop(proc_server *p)
{
    assert_int_equal(kill(p->pid, SIGTERM), 0);
    int status;
    assert_int_equal(waitpid(p->pid, &status, 0), p->pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("server process: %s %d", WIFEXITED(status) ? "exit" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

static void echo_matrix(ss_model model)
{
    tu_alarm(90);
    for (size_t k = 0; k < ST_NKINDS; k++) {
        char address[256];
        st_address(&st_kinds[k], address, sizeof address);
        ss_server_opts o;
        ss_server_opts_init(&o);
        o.model = model;
        o.workers = NCLIENTS;
        proc_server s;
        ps_start(&s, address, &st_echo, &o);
        ss_sock c[NCLIENTS];
        for (int i = 0; i < NCLIENTS; i++)
            if (st_connect(s.addr, &c[i]) != 0)
                fail_msg("%s: connect %d", st_kinds[k].label, i);
        /* all open at once, served out of order: real concurrency */
        for (int r = 0; r < 2; r++) {
            for (int i = NCLIENTS - 1; i >= 0; i--) {
                char msg[64];
                snprintf(msg, sizeof msg, "conn %d round %d\n", i, r);
                int rc = st_roundtrip(&c[i], msg);
                if (rc != 0)
                    fail_msg("%s (%s): conn %d: %s", st_kinds[k].label, s.addr,
                             i, ss_strerror(rc));
            }
        }
        for (int i = 0; i < NCLIENTS; i++)
            ss_sock_close(&c[i]);
        ps_stop(&s);
        if (st_kinds[k].unix_path)
            assert_int_equal(access(address + strlen(st_kinds[k].scheme), F_OK),
                             -1);
    }
}

static void forking_serves_every_kind(void **state)
{
    (void)state;
    echo_matrix(SS_MODEL_FORKING);
}

static void prefork_serves_every_kind(void **state)
{
    (void)state;
    echo_matrix(SS_MODEL_PREFORK);
}

/* CPython's ForkingMixIn tests: children are reaped while the server runs
 * (no zombies, without a new connection to prod the loop) and there are
 * never more than max_children. */
static void forking_respects_max_children_and_reaps(void **state)
{
    (void)state;
    tu_alarm(30);
    ss_server_opts o;
    ss_server_opts_init(&o);
    o.model = SS_MODEL_FORKING;
    o.max_children = 2;
    proc_server s;
    ps_start(&s, "tcp://127.0.0.1:0", &st_echo, &o);

    ss_sock a, b, c;
    assert_int_equal(st_connect(s.addr, &a), 0);
    assert_int_equal(st_connect(s.addr, &b), 0);
    assert_int_equal(st_roundtrip(&a, "a\n"), 0);
    assert_int_equal(st_roundtrip(&b, "b\n"), 0);
    assert_int_equal(count_children(s.pid), 2);
    /* The third waits in the backlog: no child is forked for it. */
    assert_int_equal(st_connect(s.addr, &c), 0);
    assert_int_equal(ss_sock_sendall(&c, "c\n", 2), 0);
    usleep(300 * 1000);
    assert_int_equal(count_children(s.pid), 2);
    /* One child ends: the slot goes to the waiting client. */
    ss_sock_close(&a);
    char buf[8];
    assert_int_equal(ss_sock_recv(&c, buf, sizeof buf, 0), 2);
    assert_memory_equal(buf, "c\n", 2);
    assert_true(count_children(s.pid) <= 2);
    ss_sock_close(&b);
    ss_sock_close(&c);
    ST_ASSERT_EVENTUALLY(count_children(s.pid) == 0, 10);
    ps_stop(&s);
}

static int die_on_request(ss_request *req)
{
    char line[64];
    ssize_t n = ss_stream_readline(req->stream, line, sizeof line);
    if (n > 0 && strncmp(line, "die", 3) == 0)
        _exit(3); /* a crashing worker */
    return n < 0 ? (int)n : ss_request_reply(req, line, (size_t)n);
}

static void prefork_restarts_a_dead_worker(void **state)
{
    (void)state;
    tu_alarm(30);
    ss_server_opts o;
    ss_server_opts_init(&o);
    o.model = SS_MODEL_PREFORK;
    o.workers = 1;
    ss_handler h = {NULL, die_on_request, NULL, NULL};
    proc_server s;
    ps_start(&s, "tcp://127.0.0.1:0", &h, &o);

    ss_sock c;
    assert_int_equal(st_connect(s.addr, &c), 0);
    assert_int_equal(ss_sock_sendall(&c, "die\n", 4), 0);
    char buf[8];
    assert_true(ss_sock_recv(&c, buf, sizeof buf, 0) <= 0); /* it died */
    ss_sock_close(&c);
    /* the only worker is gone; its replacement serves the next client */
    assert_int_equal(st_connect(s.addr, &c), 0);
    assert_int_equal(st_roundtrip(&c, "alive\n"), 0);
    ss_sock_close(&c);
    assert_int_equal(count_children(s.pid), 1);
    ps_stop(&s); /* exits 0 only with every worker reaped */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(forking_serves_every_kind),
        cmocka_unit_test(prefork_serves_every_kind),
        cmocka_unit_test(forking_respects_max_children_and_reaps),
        cmocka_unit_test(prefork_restarts_a_dead_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
