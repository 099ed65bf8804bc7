/* SPDX-License-Identifier: MIT */
/* test_rcmd_runner.c — the command runner: nothing is signalled after a reap
 * (pid reuse), and nothing of a command outlives it.
 * ctest-labels: tsan */
#include "testutil.h"

#include "rcmd/runner.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void reap_bounded(rcmd_child *c)
{
    int st;
    for (int i = 0; i < 500; i++) { /* 5 s at most */
        if (rcmd_try_reap(c, &st) == 1)
            return;
        sleep_ms(10);
    }
    fail_msg("the command did not end");
}

/* Finding: the runner killed a process group up to 1 s after reaping its
 * leader; by then the id may belong to someone else. Recreate exactly that:
 * once the leader is reaped, make its pid (and so its group id) a new,
 * unrelated process group through ns_last_pid, then let the runner finish.
 * The newcomer must live. Needs root (ns_last_pid); other pids may race us
 * for the number, so it tries a few times. */
static void group_is_never_signalled_after_its_leader_is_reaped(void **state)
{
    (void)state;
    int last = geteuid() == 0 ? open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC) : -1;
    if (last < 0) {
        print_message("skipped: needs root and a writable /proc/sys/kernel/ns_last_pid\n");
        skip();
    }
    for (int attempt = 0; attempt < 20; attempt++) {
        rcmd_child c;
        char *argv[] = {(char *)"true", NULL};
        assert_int_equal(rcmd_spawn(&c, false, argv, 0), 0);
        pid_t leader = c.pid;
        reap_bounded(&c);

        char text[32];
        int n = snprintf(text, sizeof text, "%d", (int)leader - 1);
        assert_int_equal(pwrite(last, text, (size_t)n, 0), n);
        pid_t y = fork();
        assert_true(y >= 0);
        if (y == 0) {
            setpgid(0, 0);
            pause();
            _exit(0);
        }
        setpgid(y, y);
        if (y != leader) { /* someone else took the number first */
            kill(y, SIGKILL);
            waitpid(y, NULL, 0);
            rcmd_child_destroy(&c, NULL);
            continue;
        }
        rcmd_child_destroy(&c, NULL); /* must not touch group `leader` now */
        sleep_ms(50);
        int st;
        pid_t r = waitpid(y, &st, WNOHANG);
        kill(y, SIGKILL);
        if (r == 0)
            waitpid(y, NULL, 0);
        close(last);
        assert_int_equal(r, 0); /* still alive: nothing hit the reused group */
        return;
    }
    close(last);
    print_message("skipped: could not get the pid back (a busy machine)\n");
    skip();
}

/* Every descendant dies with the command: one that left the group with
 * setsid and double-forked is gone once the main process is reaped. */
static void setsid_descendants_die_with_the_command(void **state)
{
    (void)state;
    rcmd_child c;
    char *argv[] = {(char *)"(setsid sh -c 'sleep 300 & echo $!' &); sleep 0.2", NULL};
    assert_int_equal(rcmd_spawn(&c, true, argv, RCMD_RUN_STDOUT), 0);
    char buf[64] = {0};
    size_t got = 0;
    for (int i = 0; i < 500 && !memchr(buf, '\n', got); i++) {
        ssize_t r = read(c.out_fd, buf + got, sizeof buf - 1 - got);
        if (r > 0)
            got += (size_t)r;
        else
            sleep_ms(10);
    }
    pid_t pid = (pid_t)atoi(buf);
    assert_true(pid > 0);
    assert_int_equal(kill(pid, 0), 0);
    reap_bounded(&c);
    rcmd_child_destroy(&c, NULL);
    /* the reaper killed and reaped it before exiting: no such process */
    int alive = kill(pid, 0) == 0;
    if (alive)
        kill(pid, SIGKILL); /* our own leftover: the bug this test looks for */
    assert_false(alive);
}

int main(void)
{
    tu_alarm(60);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(group_is_never_signalled_after_its_leader_is_reaped),
        cmocka_unit_test(setsid_descendants_die_with_the_command),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
