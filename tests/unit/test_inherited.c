/* SPDX-License-Identifier: MIT */
/* test_inherited.c — servers on sockets they were given: fd:N (listening or
 * only bound, stream or datagram), systemd: and systemd:NAME through the
 * real environment, and every refusal (not open, not a socket, wrong type,
 * unbound, a connection, malformed forms), each leaving the descriptor as
 * it was. Also: what a server starts sees no LISTEN_* and none of the
 * passed descriptors. */
#include "server_test.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <sys/stat.h>
#include <sys/wait.h>

static bool is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static bool is_cloexec(int fd)
{
    int flags = fcntl(fd, F_GETFD);
    return flags >= 0 && (flags & FD_CLOEXEC);
}

static bool is_listening(int fd)
{
    int v = 0;
    socklen_t len = sizeof v;
    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) == 0 && v != 0;
}

/* A TCP socket on 127.0.0.1, bound to a free port; listening if asked.
 * Inheritable (no close-on-exec), as a parent would pass it. */
static int tcp_socket(bool listening)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    if (listening)
        assert_int_equal(listen(fd, 16), 0);
    return fd;
}

static int udp_socket(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    return fd;
}

static void fd_form(char *buf, size_t len, int fd)
{
    snprintf(buf, len, "fd:%d", fd);
}

static int activations;
static int count_activate(ss_server *srv, ss_sock *sock, ss_error *err)
{
    (void)srv;
    (void)err;
    activations++;
    return ss_sock_listen(sock, 16);
}

/* ---- the forms ------------------------------------------------------------ */

static void forms_are_recognised(void **state)
{
    (void)state;
    assert_true(ss_addr_is_inherited("systemd:"));
    assert_true(ss_addr_is_inherited("systemd:web"));
    assert_true(ss_addr_is_inherited("SystemD:web"));
    assert_true(ss_addr_is_inherited("fd:3"));
    assert_true(ss_addr_is_inherited("FD:3"));
    assert_true(ss_addr_is_inherited("fd:")); /* malformed, but of the form */
    assert_false(ss_addr_is_inherited(NULL));
    assert_false(ss_addr_is_inherited("fd"));
    assert_false(ss_addr_is_inherited("fdx:3"));
    assert_false(ss_addr_is_inherited("systemdx:"));
    assert_false(ss_addr_is_inherited("tcp://fd:3"));
    assert_false(ss_addr_is_inherited("unix:/fd:3"));
}

static void addr_parse_refuses_them(void **state)
{
    (void)state;
    static const char *const forms[] = {"systemd:", "systemd:web", "fd:3", "fd:80"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        ss_addr a;
        ss_error err = {0};
        assert_int_equal(ss_addr_parse(&a, forms[i], SS_ADDR_PASSIVE, &err), SS_EBADADDR);
        assert_non_null(strstr(err.msg, "only a server can take it"));
    }
}

static void malformed_forms(void **state)
{
    (void)state;
    char long_name[300] = "systemd:";
    memset(long_name + 8, 'n', 256);
    long_name[8 + 256] = '\0';
    static const char *const bad[] = {"fd:",   "fd:x",          "fd:-1",       "fd:3x",
                                      "fd: 3", "fd:2147483648", "systemd:a:b", "systemd:a\tb"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0] + 1; i++) {
        const char *text = i < sizeof bad / sizeof bad[0] ? bad[i] : long_name;
        ss_server *srv = NULL;
        ss_error err = {0};
        int rc = ss_server_new(&srv, text, &st_echo, NULL, &err);
        if (rc != SS_EBADADDR)
            fail_msg("%s: rc %d (%s)", text, rc, err.msg);
        assert_null(srv);
        assert_non_null(strstr(err.msg, "bad address"));
        assert_null(strchr(err.msg, '\t'));
    }
}

/* ---- fd:N ----------------------------------------------------------------- */

static void fd_listening_is_served_and_not_listened_again(void **state)
{
    (void)state;
    int fd = tcp_socket(true);
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    char form[32], want[SS_ADDR_STRLEN];
    fd_form(form, sizeof form, fd);
    snprintf(want, sizeof want, "tcp://127.0.0.1:%d", ntohs(sin.sin_port));

    ss_server_opts o;
    ss_server_opts_init(&o);
    o.model = SS_MODEL_THREADING;
    o.server_activate = count_activate;
    activations = 0;
    st_server s;
    st_start(&s, form, &st_echo, &o);
    assert_string_equal(s.addr, want); /* the socket's own address */
    assert_int_equal(ss_server_fileno(s.srv), fd);
    assert_int_equal(activations, 0); /* listening already: no listen() again */
    assert_true(is_cloexec(fd));
    ss_sock c;
    assert_int_equal(st_connect(s.addr, &c), 0);
    assert_int_equal(st_roundtrip(&c, "inherited\n"), 0);
    ss_sock_close(&c);
    st_stop(&s);
    assert_false(is_open(fd)); /* the server owned it */
}

static void fd_bound_only_is_listened_once(void **state)
{
    (void)state;
    int fd = tcp_socket(false);
    char form[32];
    fd_form(form, sizeof form, fd);
    ss_server_opts o;
    ss_server_opts_init(&o);
    o.model = SS_MODEL_THREADING;
    o.server_activate = count_activate;
    activations = 0;
    st_server s;
    st_start(&s, form, &st_echo, &o);
    assert_int_equal(activations, 1);
    assert_true(is_listening(fd));
    ss_sock c;
    assert_int_equal(st_connect(s.addr, &c), 0);
    assert_int_equal(st_roundtrip(&c, "bound only\n"), 0);
    ss_sock_close(&c);
    st_stop(&s);
}

static void fd_datagram_is_a_datagram_server(void **state)
{
    (void)state;
    int fd = udp_socket();
    char form[32];
    fd_form(form, sizeof form, fd);
    st_server s;
    st_start(&s, form, &st_echo, NULL);
    assert_int_equal(strncmp(s.addr, "udp://127.0.0.1:", 16), 0);
    ss_sock c;
    assert_int_equal(st_connect(s.addr, &c), 0);
    assert_int_equal(st_roundtrip(&c, "one packet"), 0);
    ss_sock_close(&c);
    st_stop(&s);
}

/* A unix socket file belongs to whoever bound it: the server leaves it. */
static void fd_unix_file_is_left_alone(void **state)
{
    (void)state;
    char path[100];
    tu_temp_path(path, sizeof path, "inherited.sock");
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
    assert_int_equal(listen(fd, 8), 0);
    char form[32], want[SS_ADDR_STRLEN];
    fd_form(form, sizeof form, fd);
    snprintf(want, sizeof want, "unix:%s", path);
    st_server s;
    ss_server_opts o;
    ss_server_opts_init(&o);
    o.model = SS_MODEL_THREADING;
    o.unix_mode = 0600; /* acts before bind: not for an inherited socket */
    st_start(&s, form, &st_echo, &o);
    assert_string_equal(s.addr, want);
    ss_sock c;
    assert_int_equal(st_connect(s.addr, &c), 0);
    assert_int_equal(st_roundtrip(&c, "unix\n"), 0);
    ss_sock_close(&c);
    st_stop(&s);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    unlink(path);
}

/* Each refusal: the code, words of the message, and the descriptor as it
 * was (open, still inheritable, blocking). */
static void expect_refused(const char *form, int socket_type, int code, const char *words, int fd)
{
    ss_server_opts o;
    ss_server_opts_init(&o);
    o.socket_type = socket_type;
    ss_server *srv = NULL;
    ss_error err = {0};
    int rc = ss_server_new(&srv, form, &st_echo, &o, &err);
    if (rc != code || strstr(err.msg, words) == NULL)
        fail_msg("%s: rc %d (%s), msg '%s'; want %d and '%s'", form, rc, ss_err_name(rc), err.msg,
                 code, words);
    assert_null(srv);
    if (fd >= 0) {
        assert_true(is_open(fd));
        assert_false(is_cloexec(fd));
        assert_false(fcntl(fd, F_GETFL) & O_NONBLOCK);
    }
}

static void fd_refusals(void **state)
{
    (void)state;
    char form[32];

    int closed = dup(0);
    close(closed);
    fd_form(form, sizeof form, closed);
    expect_refused(form, 0, -EBADF, "'fd:", -1);
    expect_refused(form, 0, -EBADF, "is not open", -1);

    int p[2];
    assert_int_equal(pipe(p), 0);
    fd_form(form, sizeof form, p[0]);
    expect_refused(form, 0, -ENOTSOCK, "is not a socket", p[0]);
    close(p[0]);
    close(p[1]);

    int u = udp_socket();
    fd_form(form, sizeof form, u);
    expect_refused(form, SOCK_STREAM, -EPROTOTYPE, "is a datagram socket (udp://127.0.0.1:", u);
    expect_refused(form, SOCK_STREAM, -EPROTOTYPE, "serves stream sockets only", u);
    close(u);

    int t = tcp_socket(true);
    fd_form(form, sizeof form, t);
    expect_refused(form, SOCK_DGRAM, -EPROTOTYPE, "is a stream socket", t);
    expect_refused(form, SOCK_SEQPACKET, -EPROTOTYPE, "serves seqpacket sockets only", t);

    int unbound = socket(AF_INET, SOCK_STREAM, 0);
    fd_form(form, sizeof form, unbound);
    expect_refused(form, 0, -EDESTADDRREQ, "not bound", unbound);
    close(unbound);

    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    fd_form(form, sizeof form, sp[0]);
    expect_refused(form, 0, -EDESTADDRREQ, "not bound", sp[0]);
    close(sp[0]);
    close(sp[1]);

    /* a connection, as systemd's Accept=yes passes them */
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    assert_int_equal(getsockname(t, (struct sockaddr *)&sin, &len), 0);
    int client = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(client, (struct sockaddr *)&sin, sizeof sin), 0);
    int conn = accept(t, NULL, NULL);
    assert_true(conn >= 0);
    fd_form(form, sizeof form, conn);
    expect_refused(form, 0, -EISCONN, "Accept=no", conn);
    close(conn);
    close(client);
    close(t);

    int nl = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    if (nl >= 0) {
        fd_form(form, sizeof form, nl);
        expect_refused(form, 0, -EAFNOSUPPORT, "sockserve does not serve", nl);
        close(nl);
    }
}

static void socket_type_applies_to_addresses_too(void **state)
{
    (void)state;
    ss_server_opts o;
    ss_server_opts_init(&o);
    o.socket_type = SOCK_STREAM;
    ss_server *srv = NULL;
    ss_error err = {0};
    assert_int_equal(ss_server_new(&srv, "udp://127.0.0.1:0", &st_echo, &o, &err), SS_EUSAGE);
    assert_non_null(strstr(err.msg, "cannot serve udp://127.0.0.1:0: this server serves stream "
                                    "sockets only"));
    o.socket_type = 99;
    assert_int_equal(ss_server_new(&srv, "tcp://127.0.0.1:0", &st_echo, &o, &err), SS_EUSAGE);
    assert_non_null(strstr(err.msg, "socket_type"));
    o.socket_type = SOCK_STREAM;
    assert_int_equal(ss_server_new(&srv, "tcp://127.0.0.1:0", &st_echo, &o, &err), 0);
    ss_server_free(srv);
}

/* ---- systemd: through the environment --------------------------------------- */

/* Put `fd` at descriptor `at`, inheritable, as a manager passes it. */
static void place(int fd, int at)
{
    if (fd == at)
        return;
    assert_false(is_open(at));
    assert_int_equal(dup2(fd, at), at);
    close(fd);
}

static void set_env(const char *fds, const char *names)
{
    char self[32];
    snprintf(self, sizeof self, "%ld", (long)getpid());
    setenv("LISTEN_PID", self, 1);
    setenv("LISTEN_FDS", fds, 1);
    if (names != NULL)
        setenv("LISTEN_FDNAMES", names, 1);
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

/* Runs `script` with /bin/sh as a child of this process; its exit status. */
static int run_child(const char *script)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", script, (char *)NULL);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void systemd_named_socket_is_served(void **state)
{
    (void)state;
    place(tcp_socket(true), 3);
    place(udp_socket(), 4);
    set_env("2", "web:dns");
    /* what the children of the server see before: the test would be empty
     * without it */
    assert_int_equal(run_child("test -n \"$LISTEN_FDS\" && test -e /proc/self/fd/3"), 0);

    st_server s;
    st_start(&s, "systemd:dns", &st_echo, NULL);
    assert_int_equal(ss_server_fileno(s.srv), 4);
    assert_int_equal(strncmp(s.addr, "udp://127.0.0.1:", 16), 0);
    /* taken: every passed descriptor close-on-exec, the variables gone */
    assert_true(is_cloexec(3));
    assert_true(is_cloexec(4));
    assert_null(getenv("LISTEN_PID"));
    assert_null(getenv("LISTEN_FDS"));
    assert_null(getenv("LISTEN_FDNAMES"));
    /* a program the server starts sees neither */
    assert_int_equal(run_child("test -z \"$LISTEN_PID$LISTEN_FDS$LISTEN_FDNAMES\" && "
                               "! test -e /proc/self/fd/3 && ! test -e /proc/self/fd/4"),
                     0);
    ss_sock c;
    assert_int_equal(st_connect(s.addr, &c), 0);
    assert_int_equal(st_roundtrip(&c, "activated"), 0);
    ss_sock_close(&c);
    st_stop(&s);
    assert_true(is_open(3)); /* not the server's: still ours to close */

    /* taken once: a second server finds nothing */
    ss_server *srv = NULL;
    ss_error err = {0};
    assert_int_equal(ss_server_new(&srv, "systemd:web", &st_echo, NULL, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "'systemd:web': no socket was passed"));
}

static void systemd_first_socket(void **state)
{
    (void)state;
    place(tcp_socket(true), 3);
    set_env("1", NULL);
    ss_server_opts o;
    ss_server_opts_init(&o);
    o.model = SS_MODEL_THREADING;
    st_server s;
    st_start(&s, "systemd:", &st_echo, &o);
    assert_int_equal(ss_server_fileno(s.srv), 3);
    ss_sock c;
    assert_int_equal(st_connect(s.addr, &c), 0);
    assert_int_equal(st_roundtrip(&c, "first\n"), 0);
    ss_sock_close(&c);
    st_stop(&s);
    assert_false(is_open(3));
}

static void systemd_refusals_change_nothing(void **state)
{
    (void)state;
    place(udp_socket(), 3);
    set_env("1", "dns");
    ss_server_opts o;
    ss_server_opts_init(&o);
    o.socket_type = SOCK_STREAM;
    ss_server *srv = NULL;
    ss_error err = {0};

    assert_int_equal(ss_server_new(&srv, "systemd:web", &st_echo, &o, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "'systemd:web': no socket named 'web' among the 1 passed "
                                    "(LISTEN_FDNAMES=dns)"));
    assert_int_equal(ss_server_new(&srv, "systemd:dns", &st_echo, &o, &err), -EPROTOTYPE);
    assert_non_null(strstr(err.msg, "'systemd:dns': descriptor 3 is a datagram socket"));
    assert_false(is_cloexec(3));
    assert_non_null(getenv("LISTEN_FDS"));

    setenv("LISTEN_PID", "1", 1);
    assert_int_equal(ss_server_new(&srv, "systemd:", &st_echo, NULL, &err), -ESRCH);
    assert_non_null(strstr(err.msg, "LISTEN_PID=1 is not this process"));
    assert_false(is_cloexec(3));
    assert_string_equal(getenv("LISTEN_PID"), "1");
    assert_null(srv);
}

/* Whatever the test runner left at 3 and 4 moves out of the way. */
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
        cmocka_unit_test(forms_are_recognised),
        cmocka_unit_test(addr_parse_refuses_them),
        cmocka_unit_test(malformed_forms),
        cmocka_unit_test(fd_listening_is_served_and_not_listened_again),
        cmocka_unit_test(fd_bound_only_is_listened_once),
        cmocka_unit_test(fd_datagram_is_a_datagram_server),
        cmocka_unit_test(fd_unix_file_is_left_alone),
        cmocka_unit_test(fd_refusals),
        cmocka_unit_test(socket_type_applies_to_addresses_too),
        cmocka_unit_test_teardown(systemd_named_socket_is_served, cleanup),
        cmocka_unit_test_teardown(systemd_first_socket, cleanup),
        cmocka_unit_test_teardown(systemd_refusals_change_nothing, cleanup),
    };
    return cmocka_run_group_tests(tests, free_3_and_4, NULL);
}
