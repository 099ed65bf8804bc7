/* SPDX-License-Identifier: MIT */
/*
 * test_exec_spawn.c — starting and ending the program of `sockserve exec`
 * (apps/exec/spawn.c): finding it at start, an execve that fails, the
 * default signal actions and empty mask it gets, its process group killed
 * when it ends or when it is stopped (TERM, then KILL after the grace).
 */
#include "testutil.h"

#include "exec/spawn.h"
#include "exec/relay.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Run `sh -c script` with one end of a socketpair as its stdin/stdout;
 * *out gets the other end. */
static void start_sh(exec_child *c, const char *script, int *out)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    char *argv[] = {"sh", "-c", (char *)script, NULL};
    exec_spawn_opts o = {.path = "/bin/sh", .argv = argv, .envp = environ, .stdio_fd = sv[1]};
    bool failed;
    assert_int_equal(exec_spawn(c, &o, &failed), 0);
    assert_false(failed);
    close(sv[1]);
    *out = sv[0];
}

/* One line of the program's output, as a number. */
static long read_number(int fd)
{
    char buf[64];
    size_t got = 0;
    while (got < sizeof buf - 1) {
        ssize_t n = read(fd, buf + got, 1);
        if (n <= 0 || buf[got] == '\n')
            break;
        got++;
    }
    buf[got] = '\0';
    return strtol(buf, NULL, 10);
}

/* Running (a zombie waiting for whoever reaps orphans here is dead). */
static bool alive(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')');
    return paren != NULL && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

static void resolves_like_execvp_and_says_why_not(void **state)
{
    (void)state;
    char out[4096];
    ss_error err = {0};
    assert_int_equal(exec_resolve("sh", "/nonexistent-dir:/bin:/usr/bin", out, sizeof out, &err),
                     0);
    assert_string_equal(out, "/bin/sh");
    assert_int_equal(exec_resolve("/bin/sh", NULL, out, sizeof out, &err), 0);
    assert_string_equal(out, "/bin/sh");

    assert_int_equal(exec_resolve("no-such-program-here", "/bin", out, sizeof out, &err), -ENOENT);
    assert_string_equal(err.msg, "cannot run 'no-such-program-here': not found in PATH");
    assert_int_equal(exec_resolve("/no/such/file", NULL, out, sizeof out, &err), -ENOENT);
    assert_int_equal(exec_resolve("/tmp", NULL, out, sizeof out, &err), -EISDIR);
    assert_int_equal(exec_resolve("/dev/null", NULL, out, sizeof out, &err), -EACCES);

    char plain[256];
    tu_temp_path(plain, sizeof plain, "not-executable");
    FILE *f = fopen(plain, "w");
    assert_non_null(f);
    fputs("#!/bin/sh\necho hi\n", f);
    fclose(f);
    chmod(plain, 0644);
    /* (root too: it may read anything, but executes only with an x bit) */
    assert_int_equal(exec_resolve(plain, NULL, out, sizeof out, &err), -EACCES);
    assert_non_null(strstr(err.msg, "Permission denied"));
    unlink(plain);
}

static void a_failed_execve_is_reported_not_run(void **state)
{
    (void)state;
    tu_alarm(20);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    char *argv[] = {"gone", NULL};
    exec_child c;
    exec_spawn_opts o = {
        .path = "/no/such/program", .argv = argv, .envp = environ, .stdio_fd = sv[1]};
    bool failed;
    assert_int_equal(exec_spawn(&c, &o, &failed), -ENOENT);
    assert_true(failed);
    assert_true(c.reaped);
    assert_true(WIFEXITED(c.status));
    assert_int_equal(WEXITSTATUS(c.status), 127);
    exec_child_close(&c);
    close(sv[0]);
    close(sv[1]);
}

static void signals_are_back_to_their_defaults(void **state)
{
    (void)state;
    tu_alarm(20);
    /* what the server does to itself must not reach the program */
    signal(SIGPIPE, SIG_IGN);
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &term, &old);

    exec_child c;
    int fd;
    start_sh(&c, "kill -PIPE $$; echo survived", &fd);
    assert_int_equal(exec_child_wait(&c, NULL, 0, -1), EXEC_CHILD_EXITED);
    exec_child_reap(&c);
    assert_true(WIFSIGNALED(c.status));
    assert_int_equal(WTERMSIG(c.status), SIGPIPE);
    exec_child_close(&c);
    close(fd);

    start_sh(&c, "kill -TERM $$; sleep 10", &fd);
    assert_int_equal(exec_child_wait(&c, NULL, 0, exec_relay_now_ms() + 5000), EXEC_CHILD_EXITED);
    exec_child_reap(&c);
    assert_true(WIFSIGNALED(c.status));
    assert_int_equal(WTERMSIG(c.status), SIGTERM);
    exec_child_close(&c);
    close(fd);

    /* even the real-time signals libc keeps for itself (glibc will not
     * let sigaction() touch 32 and 33, but an ignored one survives exec) */
    static const unsigned long ign[8] = {(unsigned long)SIG_IGN};
    static const unsigned long dfl[8];
    assert_int_equal(syscall(SYS_rt_sigaction, 32, ign, NULL, (size_t)((NSIG - 1) / 8)), 0);
    start_sh(&c, "exec grep SigIgn /proc/self/status", &fd);
    char buf[128] = "";
    size_t got = 0;
    ssize_t n;
    while (got < sizeof buf - 1 && (n = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)n;
    buf[got] = '\0';
    syscall(SYS_rt_sigaction, 32, dfl, NULL, (size_t)((NSIG - 1) / 8));
    assert_string_equal(buf, "SigIgn:\t0000000000000000\n");
    assert_int_equal(exec_child_wait(&c, NULL, 0, -1), EXEC_CHILD_EXITED);
    exec_child_reap(&c);
    exec_child_close(&c);
    close(fd);

    pthread_sigmask(SIG_SETMASK, &old, NULL);
    signal(SIGPIPE, SIG_DFL);
}

static void only_stdin_stdout_and_stderr_are_inherited(void **state)
{
    (void)state;
    tu_alarm(20);
    int leak = open("/dev/null", O_RDONLY); /* not close-on-exec */
    assert_true(leak > 2);
    exec_child c;
    int fd;
    start_sh(&c, "ls /proc/self/fd | wc -l", &fd);
    /* ls sees 0, 1, 2 and the directory it reads: 4 */
    assert_int_equal(read_number(fd), 4);
    assert_int_equal(exec_child_wait(&c, NULL, 0, -1), EXEC_CHILD_EXITED);
    exec_child_reap(&c);
    assert_true(WIFEXITED(c.status));
    exec_child_close(&c);
    close(fd);
    close(leak);
}

static void what_it_leaves_in_its_group_dies_with_it(void **state)
{
    (void)state;
    tu_alarm(20);
    exec_child c;
    int fd;
    start_sh(&c, "sleep 30 & echo $!", &fd);
    long bg = read_number(fd);
    assert_true(bg > 0);
    assert_int_equal(exec_child_wait(&c, NULL, 0, -1), EXEC_CHILD_EXITED);
    assert_true(alive((pid_t)bg));
    exec_child_reap(&c);
    assert_true(WIFEXITED(c.status));
    assert_int_equal(WEXITSTATUS(c.status), 0);
    /* the background sleep got SIGKILL; init (or a subreaper) reaps it */
    for (int i = 0; i < 500 && alive((pid_t)bg); i++)
        usleep(10000);
    assert_false(alive((pid_t)bg));
    exec_child_close(&c);
    close(fd);
}

static void stop_is_term_then_kill_after_the_grace(void **state)
{
    (void)state;
    tu_alarm(30);
    exec_child c;
    int fd;
    /* leaves at once on TERM */
    start_sh(&c, "echo ready; exec sleep 30", &fd);
    read_number(fd);
    assert_int_equal(exec_child_wait(&c, NULL, 0, exec_relay_now_ms() + 100), EXEC_CHILD_DEADLINE);
    assert_int_equal(exec_child_stop(&c, 2000), SIGTERM);
    assert_true(c.reaped);
    assert_int_equal(WTERMSIG(c.status), SIGTERM);
    exec_child_close(&c);
    close(fd);

    /* ignores TERM, and so does its background child */
    start_sh(&c, "trap '' TERM; sleep 30 & echo $!; wait", &fd);
    long bg = read_number(fd);
    assert_true(bg > 0);
    int64_t t0 = exec_relay_now_ms();
    assert_int_equal(exec_child_stop(&c, 300), SIGKILL);
    assert_true(exec_relay_now_ms() - t0 >= 300);
    assert_int_equal(WTERMSIG(c.status), SIGKILL);
    for (int i = 0; i < 500 && alive((pid_t)bg); i++)
        usleep(10000);
    assert_false(alive((pid_t)bg));
    exec_child_close(&c);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(resolves_like_execvp_and_says_why_not),
        cmocka_unit_test(a_failed_execve_is_reported_not_run),
        cmocka_unit_test(signals_are_back_to_their_defaults),
        cmocka_unit_test(only_stdin_stdout_and_stderr_are_inherited),
        cmocka_unit_test(what_it_leaves_in_its_group_dies_with_it),
        cmocka_unit_test(stop_is_term_then_kill_after_the_grace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
