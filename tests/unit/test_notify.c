/* SPDX-License-Identifier: MIT */
/* test_notify.c — sd_notify without libsystemd: ss_notify() to a unix
 * datagram socket the test binds (path and @abstract), the refusals of a
 * bad NOTIFY_SOCKET, and a server with opts.notify sending READY=1 as it
 * starts serving and STOPPING=1 as server_close begins (and nothing
 * without the option). */
#include "server_test.h"

#include <poll.h>

/* A unix datagram socket to read notifications from; *name is what
 * NOTIFY_SOCKET should say. */
static int bind_listener(bool abstract, char *name, size_t len)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    socklen_t sl;
    if (abstract) {
        tu_abstract_name(name, len);
        size_t n = strlen(name);
        memcpy(sun.sun_path + 1, name + 1, n - 1);
        sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        tu_temp_path(name, len, "notify.sock");
        unlink(name);
        snprintf(sun.sun_path, sizeof sun.sun_path, "%s", name);
        sl = sizeof sun;
    }
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sl), 0);
    return fd;
}

/* The next notification, or "" when none comes within `ms`. */
static void read_note(int fd, char *buf, size_t len, int ms)
{
    buf[0] = '\0';
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ms) != 1)
        return;
    ssize_t n = recv(fd, buf, len - 1, 0);
    assert_true(n >= 0);
    buf[n] = '\0';
}

static int cleanup(void **state)
{
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    return 0;
}

static void unset_means_nothing_to_do(void **state)
{
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(ss_notify("READY=1", NULL), 0);
    setenv("NOTIFY_SOCKET", "", 1);
    assert_int_equal(ss_notify("READY=1", NULL), 0);
}

static void sends_to_a_path(void **state)
{
    (void)state;
    char name[100];
    int fd = bind_listener(false, name, sizeof name);
    setenv("NOTIFY_SOCKET", name, 1);
    ss_error err = {0};
    assert_int_equal(ss_notify("READY=1\nSTATUS=up", &err), 1);
    char note[256];
    read_note(fd, note, sizeof note, 5000);
    assert_string_equal(note, "READY=1\nSTATUS=up");
    close(fd);
    unlink(name);
}

static void sends_to_an_abstract_name(void **state)
{
    (void)state;
    char name[100];
    int fd = bind_listener(true, name, sizeof name);
    setenv("NOTIFY_SOCKET", name, 1);
    assert_int_equal(ss_notify("STOPPING=1", NULL), 1);
    char note[256];
    read_note(fd, note, sizeof note, 5000);
    assert_string_equal(note, "STOPPING=1");
    close(fd);
}

static void refusals(void **state)
{
    (void)state;
    static const struct {
        const char *value, *state;
        int code;
        const char *words;
    } cases[] = {
        {"/x", "", SS_EUSAGE, "nothing to send"},
        {"relative/path", "READY=1", -EINVAL, "neither an absolute path"},
        {"@", "READY=1", -EINVAL, "abstract name"},
        {"vsock:2:1234", "READY=1", SS_EUNSUPPORTED, "AF_VSOCK"},
        {"/nonexistent/sockserve-notify", "READY=1", -ENOENT, "cannot notify"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        setenv("NOTIFY_SOCKET", cases[i].value, 1);
        ss_error err = {0};
        int rc = ss_notify(cases[i].state, &err);
        if (rc != cases[i].code || strstr(err.msg, cases[i].words) == NULL)
            fail_msg("NOTIFY_SOCKET=%s: rc %d, msg '%s'", cases[i].value, rc, err.msg);
    }
    char longpath[200] = "/";
    memset(longpath + 1, 'p', 150);
    longpath[151] = '\0';
    setenv("NOTIFY_SOCKET", longpath, 1);
    assert_int_equal(ss_notify("READY=1", NULL), -ENAMETOOLONG);
    char *big = malloc(5000);
    memset(big, 'x', 4999);
    big[4999] = '\0';
    assert_int_equal(ss_notify(big, NULL), SS_EUSAGE);
    free(big);
    assert_int_equal(ss_notify(NULL, NULL), SS_EUSAGE);
}

/* A server with opts.notify: READY=1 once serving starts, STOPPING=1 as
 * server_close begins, each once. */
static void server_notifies_ready_then_stopping(void **state)
{
    (void)state;
    char name[100];
    int fd = bind_listener(false, name, sizeof name);
    setenv("NOTIFY_SOCKET", name, 1);
    ss_server_opts o;
    ss_server_opts_init(&o);
    o.model = SS_MODEL_THREADING;
    o.notify = true;
    st_server s;
    st_start(&s, "tcp://127.0.0.1:0", &st_echo, &o);
    char note[256], want[300];
    read_note(fd, note, sizeof note, 5000);
    snprintf(want, sizeof want, "READY=1\nSTATUS=serving on %s", s.addr);
    assert_string_equal(note, want);
    ss_sock c;
    assert_int_equal(st_connect(s.addr, &c), 0);
    assert_int_equal(st_roundtrip(&c, "after ready\n"), 0);
    ss_sock_close(&c);
    read_note(fd, note, sizeof note, 50);
    assert_string_equal(note, ""); /* nothing more while serving */

    ss_server_shutdown(s.srv);
    assert_int_equal(pthread_join(s.thread, NULL), 0);
    ss_server_close(s.srv);
    read_note(fd, note, sizeof note, 5000);
    snprintf(want, sizeof want, "STOPPING=1\nSTATUS=draining %s", s.addr);
    assert_string_equal(note, want);
    ss_server_close(s.srv); /* idempotent: no second STOPPING=1 */
    ss_server_free(s.srv);
    read_note(fd, note, sizeof note, 50);
    assert_string_equal(note, "");
    close(fd);
    unlink(name);
}

static void handle_request_notifies_once(void **state)
{
    (void)state;
    char name[100];
    int fd = bind_listener(true, name, sizeof name);
    setenv("NOTIFY_SOCKET", name, 1);
    ss_server_opts o;
    ss_server_opts_init(&o);
    o.notify = true;
    o.timeout = 0.01;
    ss_server *srv;
    assert_int_equal(ss_server_new(&srv, "udp://127.0.0.1:0", &st_echo, &o, NULL), 0);
    assert_int_equal(ss_server_handle_request(srv), SS_ETIMEOUT);
    assert_int_equal(ss_server_handle_request(srv), SS_ETIMEOUT);
    char note[256];
    read_note(fd, note, sizeof note, 5000);
    assert_non_null(strstr(note, "READY=1\n"));
    read_note(fd, note, sizeof note, 50);
    assert_string_equal(note, "");
    ss_server_free(srv);
    read_note(fd, note, sizeof note, 5000);
    assert_non_null(strstr(note, "STOPPING=1\n"));
    close(fd);
}

static void off_by_default(void **state)
{
    (void)state;
    char name[100];
    int fd = bind_listener(false, name, sizeof name);
    setenv("NOTIFY_SOCKET", name, 1);
    st_server s;
    ss_server_opts o;
    ss_server_opts_init(&o);
    o.model = SS_MODEL_THREADING;
    st_start(&s, "tcp://127.0.0.1:0", &st_echo, &o);
    ss_sock c;
    assert_int_equal(st_connect(s.addr, &c), 0);
    assert_int_equal(st_roundtrip(&c, "quiet\n"), 0);
    ss_sock_close(&c);
    st_stop(&s);
    char note[256];
    read_note(fd, note, sizeof note, 100);
    assert_string_equal(note, "");
    close(fd);
    unlink(name);
}

/* A manager that is gone must not stop the server: one WARN line. */
static void failed_send_is_logged_not_fatal(void **state)
{
    (void)state;
    setenv("NOTIFY_SOCKET", "/nonexistent/sockserve-notify", 1);
    st_log log;
    st_log_init(&log);
    ss_server_opts o;
    ss_server_opts_init(&o);
    o.model = SS_MODEL_THREADING;
    o.notify = true;
    o.log = st_log_fn;
    o.log_data = &log;
    st_server s;
    st_start(&s, "tcp://127.0.0.1:0", &st_echo, &o);
    ST_ASSERT_EVENTUALLY(st_log_count(&log, SS_LOG_WARN, "cannot notify") == 1, 5);
    ss_sock c;
    assert_int_equal(st_connect(s.addr, &c), 0);
    assert_int_equal(st_roundtrip(&c, "still serving\n"), 0);
    ss_sock_close(&c);
    st_stop(&s);
}

int main(void)
{
    tu_alarm(60);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(unset_means_nothing_to_do, cleanup),
        cmocka_unit_test_teardown(sends_to_a_path, cleanup),
        cmocka_unit_test_teardown(sends_to_an_abstract_name, cleanup),
        cmocka_unit_test_teardown(refusals, cleanup),
        cmocka_unit_test_teardown(server_notifies_ready_then_stopping, cleanup),
        cmocka_unit_test_teardown(handle_request_notifies_once, cleanup),
        cmocka_unit_test_teardown(off_by_default, cleanup),
        cmocka_unit_test_teardown(failed_send_is_logged_not_fatal, cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
