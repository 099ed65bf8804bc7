/* SPDX-License-Identifier: MIT */
/* test_listen_fds.c — systemd's socket-activation variables: the parser on
 * any text, then ss_listen_fds() on the real environment with sockets at
 * descriptors 3 and 4 (the variables unset, every descriptor close-on-exec,
 * a refused environment left as it was). */
#include "testutil.h"
#include "listen_fds.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the parser ----------------------------------------------------------- */

static void parse_nothing_passed(void **state)
{
    (void)state;
    ss__listen_env e;
    assert_int_equal(ss__listen_env_parse(&e, NULL, NULL, NULL, 42, NULL), 0);
    assert_int_equal(e.count, 0);
    /* LISTEN_PID alone, or LISTEN_FDS=0: nothing was passed */
    assert_int_equal(ss__listen_env_parse(&e, "42", NULL, NULL, 42, NULL), 0);
    assert_int_equal(ss__listen_env_parse(&e, "42", "0", NULL, 42, NULL), 0);
}

static void parse_good(void **state)
{
    (void)state;
    ss__listen_env e;
    ss_error err = {0};
    assert_int_equal(ss__listen_env_parse(&e, "42", "3", "a:bb:c", 42, &err), 3);
    assert_int_equal(e.count, 3);
    char name[SS_LISTEN_NAME_MAX];
    ss__listen_env_name(&e, 0, name, sizeof name);
    assert_string_equal(name, "a");
    ss__listen_env_name(&e, 1, name, sizeof name);
    assert_string_equal(name, "bb");
    ss__listen_env_name(&e, 2, name, sizeof name);
    assert_string_equal(name, "c");
    assert_int_equal(ss__listen_env_find(&e, "bb"), 1);
    assert_int_equal(ss__listen_env_find(&e, "c"), 2);
    assert_int_equal(ss__listen_env_find(&e, "b"), -1); /* whole names only */
    assert_int_equal(ss__listen_env_find(&e, "bbc"), -1);
    /* a truncated copy stays a C string */
    char small[2];
    ss__listen_env_name(&e, 1, small, sizeof small);
    assert_string_equal(small, "b");
}

static void parse_names_default_to_unknown(void **state)
{
    (void)state;
    ss__listen_env e;
    assert_int_equal(ss__listen_env_parse(&e, "7", "2", NULL, 7, NULL), 2);
    char name[SS_LISTEN_NAME_MAX];
    ss__listen_env_name(&e, 1, name, sizeof name);
    assert_string_equal(name, "unknown"); /* as libsystemd */
    assert_int_equal(ss__listen_env_find(&e, "unknown"), 0);
    assert_int_equal(ss__listen_env_find(&e, "web"), -1);
    /* empty entries are names too (systemd may pass them) */
    assert_int_equal(ss__listen_env_parse(&e, "7", "3", "a::c", 7, NULL), 3);
    assert_int_equal(ss__listen_env_find(&e, "c"), 2);
}

static void parse_wrong_pid(void **state)
{
    (void)state;
    ss__listen_env e;
    ss_error err = {0};
    assert_int_equal(ss__listen_env_parse(&e, "41", "1", NULL, 42, &err), -ESRCH);
    assert_non_null(strstr(err.msg, "LISTEN_PID=41 is not this process (pid 42)"));
    assert_int_equal(e.count, 0);
    memset(&err, 0, sizeof err);
    assert_int_equal(ss__listen_env_parse(&e, NULL, "1", NULL, 42, &err), -ESRCH);
    assert_non_null(strstr(err.msg, "LISTEN_PID is not"));
}

static void parse_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *pid, *fds, *names, *words;
    } cases[] = {
        {"42", "", NULL, "bad LISTEN_FDS ''"},
        {"42", "x", NULL, "bad LISTEN_FDS 'x'"},
        {"42", "-1", NULL, "bad LISTEN_FDS"},
        {"42", "+1", NULL, "bad LISTEN_FDS"},
        {"42", "1 ", NULL, "bad LISTEN_FDS"},
        {"42", "65537", NULL, "bad LISTEN_FDS"},
        {"42", "99999999999999999999", NULL, "bad LISTEN_FDS"},
        {"abc", "1", NULL, "bad LISTEN_PID 'abc'"},
        {"0", "1", NULL, "bad LISTEN_PID '0'"},
        {"", "1", NULL, "bad LISTEN_PID ''"},
        {"42", "2", "one", "has 1 name for LISTEN_FDS=2"},
        {"42", "1", "a:b", "has 2 names for LISTEN_FDS=1"},
        {"42", "1", "", NULL}, /* one empty name: fine */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ss__listen_env e;
        ss_error err = {0};
        int rc = ss__listen_env_parse(&e, cases[i].pid, cases[i].fds, cases[i].names, 42, &err);
        if (cases[i].words == NULL) {
            assert_int_equal(rc, 1);
            continue;
        }
        if (rc != -EINVAL || strstr(err.msg, cases[i].words) == NULL)
            fail_msg("case %zu (%s/%s/%s): rc %d, msg '%s'", i, cases[i].pid, cases[i].fds,
                     cases[i].names ? cases[i].names : "(unset)", rc, err.msg);
    }
}

static void parse_quotes_bounded_and_printable(void **state)
{
    (void)state;
    char fds[300];
    memset(fds, 'x', sizeof fds - 1);
    fds[sizeof fds - 1] = '\0';
    fds[3] = '\n';
    ss__listen_env e;
    ss_error err = {0};
    assert_int_equal(ss__listen_env_parse(&e, "1", fds, NULL, 1, &err), -EINVAL);
    assert_null(strchr(err.msg, '\n'));
    assert_non_null(strstr(err.msg, "xxx?xxx"));
    assert_non_null(strstr(err.msg, "...'"));
    assert_true(strlen(err.msg) < 200);
}

/* ---- the environment ------------------------------------------------------ */

static bool is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static bool is_cloexec(int fd)
{
    int flags = fcntl(fd, F_GETFD);
    return flags >= 0 && (flags & FD_CLOEXEC);
}

/* Put a fresh socket at descriptor `at` (3, 4 ...), inheritable as a
 * manager would leave it. */
static void socket_at(int at, int type)
{
    assert_false(is_open(at)); /* the test process must not use 3 and 4 */
    int fd = socket(AF_UNIX, type, 0);
    assert_true(fd >= 0);
    if (fd != at) {
        assert_int_equal(dup2(fd, at), at);
        close(fd);
    }
    assert_false(is_cloexec(at));
}

static void set_env(const char *pid, const char *fds, const char *names)
{
    char self[32];
    snprintf(self, sizeof self, "%ld", (long)getpid());
    setenv("LISTEN_PID", pid != NULL ? pid : self, 1);
    setenv("LISTEN_FDS", fds, 1);
    if (names != NULL)
        setenv("LISTEN_FDNAMES", names, 1);
    else
        unsetenv("LISTEN_FDNAMES");
}

static int cleanup(void **state)
{
    (void)state;
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    close(3);
    close(4);
    return 0;
}

static void take_sets_cloexec_and_unsets(void **state)
{
    (void)state;
    socket_at(3, SOCK_STREAM);
    socket_at(4, SOCK_DGRAM);
    set_env(NULL, "2", "web:dns");
    ss_listen_fd got[4];
    memset(got, 0, sizeof got);
    ss_error err = {0};
    assert_int_equal(ss_listen_fds(got, 4, &err), 2);
    assert_int_equal(got[0].fd, 3);
    assert_string_equal(got[0].name, "web");
    assert_int_equal(got[1].fd, 4);
    assert_string_equal(got[1].name, "dns");
    assert_true(is_cloexec(3));
    assert_true(is_cloexec(4));
    assert_null(getenv("LISTEN_PID"));
    assert_null(getenv("LISTEN_FDS"));
    assert_null(getenv("LISTEN_FDNAMES"));
    /* taken once: a second look finds nothing */
    assert_int_equal(ss_listen_fds(got, 4, &err), 0);
}

static void take_more_than_room(void **state)
{
    (void)state;
    socket_at(3, SOCK_STREAM);
    socket_at(4, SOCK_STREAM);
    set_env(NULL, "2", NULL);
    ss_listen_fd one;
    assert_int_equal(ss_listen_fds(&one, 1, NULL), 2);
    assert_int_equal(one.fd, 3);
    assert_string_equal(one.name, "unknown");
    assert_true(is_cloexec(4)); /* taken too, though not returned */
    assert_null(getenv("LISTEN_FDS"));
}

/* Nothing changes when the environment is refused. */
static void refused_changes_nothing(void **state)
{
    (void)state;
    socket_at(3, SOCK_STREAM);
    set_env("1", "1", NULL); /* pid 1 is not us */
    ss_error err = {0};
    ss_listen_fd got;
    assert_int_equal(ss_listen_fds(&got, 1, &err), -ESRCH);
    assert_non_null(strstr(err.msg, "LISTEN_PID=1 is not this process"));
    assert_false(is_cloexec(3));
    assert_string_equal(getenv("LISTEN_FDS"), "1");
    assert_string_equal(getenv("LISTEN_PID"), "1");

    /* LISTEN_FDS=2 but only descriptor 3 is open */
    set_env(NULL, "2", NULL);
    memset(&err, 0, sizeof err);
    assert_int_equal(ss_listen_fds(&got, 1, &err), -EBADF);
    assert_non_null(strstr(err.msg, "descriptor 4 is not open"));
    assert_false(is_cloexec(3));
    assert_non_null(getenv("LISTEN_FDS"));
}

static void find_by_name(void **state)
{
    (void)state;
    socket_at(3, SOCK_STREAM);
    socket_at(4, SOCK_STREAM);
    set_env(NULL, "2", "a:b");
    ss_error err = {0};
    assert_int_equal(ss__listen_fds_find("b", &err), 4);
    assert_int_equal(ss__listen_fds_find(NULL, &err), 3);
    /* finding changes nothing */
    assert_false(is_cloexec(4));
    assert_non_null(getenv("LISTEN_FDS"));
    assert_int_equal(ss__listen_fds_find("c", &err), -ENOENT);
    assert_non_null(strstr(err.msg, "no socket named 'c' among the 2 passed (LISTEN_FDNAMES=a:b)"));

    set_env(NULL, "2", NULL);
    assert_int_equal(ss__listen_fds_find("web", &err), -ENOENT);
    assert_non_null(strstr(err.msg, "LISTEN_FDNAMES is not set"));

    cleanup(NULL);
    memset(&err, 0, sizeof err);
    assert_int_equal(ss__listen_fds_find(NULL, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "LISTEN_FDS is not set"));
}

static void null_out_with_room_is_usage(void **state)
{
    (void)state;
    assert_int_equal(ss_listen_fds(NULL, 1, NULL), SS_EUSAGE);
    assert_int_equal(ss_listen_fds(NULL, 0, NULL), 0); /* nothing set: nothing passed */
}

/* Whatever the test runner left at 3 and 4 (ctest passes a descriptor
 * down) moves out of the way, kept open above them. */
static int free_3_and_4(void **state)
{
    (void)state;
    for (int fd = 3; fd <= 4; fd++) {
        if (!is_open(fd))
            continue;
        if (fcntl(fd, F_DUPFD_CLOEXEC, 100) < 0)
            return -1;
        close(fd);
    }
    return 0;
}

int main(void)
{
    tu_alarm(60);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_nothing_passed),
        cmocka_unit_test(parse_good),
        cmocka_unit_test(parse_names_default_to_unknown),
        cmocka_unit_test(parse_wrong_pid),
        cmocka_unit_test(parse_malformed),
        cmocka_unit_test(parse_quotes_bounded_and_printable),
        cmocka_unit_test_teardown(take_sets_cloexec_and_unsets, cleanup),
        cmocka_unit_test_teardown(take_more_than_room, cleanup),
        cmocka_unit_test_teardown(refused_changes_nothing, cleanup),
        cmocka_unit_test_teardown(find_by_name, cleanup),
        cmocka_unit_test_teardown(null_out_with_room_is_usage, cleanup),
    };
    return cmocka_run_group_tests(tests, free_3_and_4, NULL);
}
