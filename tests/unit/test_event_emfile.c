/* SPDX-License-Identifier: MIT */
/* test_event_emfile.c — out of descriptors: a server in a child process with
 * a low RLIMIT_NOFILE. More clients connect than it can accept; it must keep
 * serving the ones it has, use (almost) no CPU while the listener stays
 * readable, and take the waiting clients once descriptors free up.
 */
#include "testutil.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define CLIENTS 40
#define SPARE_FDS 8 /* descriptors the child may open beyond what it has */

static void echo_data(ss_conn *c, const void *data, size_t len)
{
    (void)ss_conn_write(c, data, len);
}

static void stop_on_close(ss_conn *c, int reason)
{
    (void)reason;
    ss_loop_stop(ss_conn_loop(c));
}

/* The child: serve `lfd` until the control socket closes. */
static void child(int lfd, int ctl)
{
    ss_loop *loop;
    if (ss_loop_new(&loop, NULL) < 0)
        _exit(10);
    static const struct ss_event_handler echo = {.on_data = echo_data};
    static const struct ss_event_handler control = {.on_close = stop_on_close};
    ss_listener *l;
    if (ss_loop_listen(loop, lfd, &echo, NULL, &l, NULL) < 0)
        _exit(11);
    if (ss_loop_adopt(loop, ctl, &control, NULL) < 0)
        _exit(12);
    /* The limit bounds descriptor numbers: leave SPARE_FDS above the
     * highest one in use (holes below it may give a few more). */
    int top = dup(0);
    if (top < 0)
        _exit(13);
    close(top);
    int highest = top;
    for (int fd = top + 1; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            highest = fd;
    /* fill the holes below it (the test harness may hold a high fd) */
    for (;;) {
        int filler = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (filler < 0)
            _exit(13);
        if (filler > highest) {
            close(filler);
            break;
        }
    }
    struct rlimit rl = {.rlim_cur = (rlim_t)(highest + 1 + SPARE_FDS),
                        .rlim_max = (rlim_t)(highest + 1 + SPARE_FDS)};
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        _exit(13);
    int rc = ss_loop_run(loop);
    ss_loop_free(loop);
    close(lfd);
    _exit(rc == 0 ? 0 : 14);
}

/* utime + stime of `pid` in clock ticks. */
static long cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    assert_non_null(p);
    unsigned long ut = 0, st = 0;
    /* fields after the command: state(3) ... utime(14) stime(15) */
    assert_int_equal(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st),
                     2);
    return (long)(ut + st);
}

static bool echoes(int fd, int ms)
{
    if (send(fd, "p", 1, MSG_NOSIGNAL) != 1)
        return false;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ms) != 1)
        return false;
    char c;
    return recv(fd, &c, 1, 0) == 1 && c == 'p';
}

static void server_survives_emfile_and_recovers(void **state)
{
    (void)state;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, 128), 0);
    socklen_t alen = sizeof a;
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
    int ctl[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl), 0);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ctl[1]);
        child(lfd, ctl[0]);
    }
    close(ctl[0]);
    close(lfd);

    int fds[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(connect(fds[i], (struct sockaddr *)&a, sizeof a), 0);
    }
    /* Which clients did the server take? Ping everyone; those it accepted
     * answer, the rest wait in the backlog. Collect answers until none has
     * come for 300 ms. */
    bool served[CLIENTS] = {false};
    int nserved = 0;
    for (int i = 0; i < CLIENTS; i++)
        assert_int_equal(send(fds[i], "p", 1, MSG_NOSIGNAL), 1);
    for (int64_t quiet_until = ss__now_ms() + 1000; ss__now_ms() < quiet_until;) {
        for (int i = 0; i < CLIENTS; i++) {
            struct pollfd p = {.fd = fds[i], .events = POLLIN};
            char c;
            if (!served[i] && poll(&p, 1, 0) == 1 && recv(fds[i], &c, 1, 0) == 1) {
                served[i] = true;
                nserved++;
                quiet_until = ss__now_ms() + 300;
            }
        }
        usleep(5000);
    }
    assert_true(nserved >= 1);
    assert_true(nserved <= CLIENTS / 2); /* the rest had to wait */

    /* A second of clients waiting in the backlog with the server out of
     * descriptors: a server that retried accept() in a loop would burn the
     * whole second. Allow a tenth (sanitizers, a busy machine). */
    long hz = sysconf(_SC_CLK_TCK);
    long t0 = cpu_ticks(pid);
    usleep(1000000);
    long used = cpu_ticks(pid) - t0;
    assert_true(used * 10 <= hz);

    /* still responsive to the clients it has */
    for (int i = 0; i < CLIENTS; i++)
        if (served[i])
            assert_true(echoes(fds[i], 2000));

    /* the served clients leave: the waiting ones get their turn, a few at a
     * time as descriptors free up */
    int left = CLIENTS - nserved;
    for (int i = 0; i < CLIENTS; i++)
        if (served[i]) {
            close(fds[i]);
            fds[i] = -1;
        }
    for (int round = 0; round < 100 && left > 0; round++) {
        for (int i = 0; i < CLIENTS; i++) {
            if (fds[i] < 0 || served[i])
                continue;
            /* the ping sent earlier comes back once it is accepted */
            struct pollfd p = {.fd = fds[i], .events = POLLIN};
            if (poll(&p, 1, 10) == 1) {
                char c;
                assert_int_equal(recv(fds[i], &c, 1, 0), 1);
                assert_true(echoes(fds[i], 2000));
                close(fds[i]);
                fds[i] = -1;
                left--;
            }
        }
    }
    assert_int_equal(left, 0);

    close(ctl[1]); /* the child's loop stops */
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    tu_alarm(60);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(server_survives_emfile_and_recovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
