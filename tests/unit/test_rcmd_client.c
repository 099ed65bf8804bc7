/* SPDX-License-Identifier: MIT */
/* test_rcmd_client.c — the rcmd client against a scripted in-process peer
 * (a thread speaking frames over TLS-PSK or plain on an abstract unix
 * socket): exit codes, stdout/stderr apart, stdin forwarding, Ctrl-C,
 * several commands per connection, wrong key, protocol errors.
 *
 * ctest-labels: tsan
 */
#include "testutil.h"

#include "rcmd/client.h"
#include "rcmd/frame.h"
#include "rcmd/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum script {
    ECHO,          /* STDOUT argv joined + stdin; STDERR "err"; EXIT argc */
    DIE_BY_SIGNAL, /* EXIT signal 9 */
    ON_SIGNAL,     /* wait for SIGNAL N, answer EXIT signal N */
    IGNORE_SIGNAL, /* never answer */
    BAD_FRAME,     /* a header with length 0xFFFFFFFF */
    CLOSE_EARLY,   /* close after EXEC */
    DENY           /* ERROR DENIED + EXIT 126 */
};

typedef struct peer {
    char address[128];
    ss_sock listener;
    rcmd_key key;
    bool plain;
    enum script script;
    int commands; /* served */
    pthread_t thread;
} peer;

static rcmd_key test_key(unsigned char fill)
{
    rcmd_key k;
    memset(&k, 0, sizeof k);
    memset(k.key, fill, 32);
    k.key_len = 32;
    rcmd_key_default_identity(k.key, 32, k.identity);
    return k;
}

static int send_frame(ss_transport *t, const uint8_t *b, ssize_t n)
{
    return n < 0 ? (int)n : rcmd_transport_write_all(t, b, (size_t)n, rcmd_now_ms() + 5000);
}

/* Next frame from the client, or <= 0 at EOF / error. */
static int next(ss_transport *t, rcmd_reader *r, rcmd_frame *f)
{
    for (;;) {
        int rc = rcmd_reader_next(r, f);
        if (rc != 0)
            return rc;
        size_t avail;
        uint8_t *space = rcmd_reader_space(r, &avail);
        ssize_t n = t->ops->read(t, space, avail);
        if (n == -EAGAIN) {
            if (rcmd_transport_wait(t, POLLIN, rcmd_now_ms() + 10000) < 0)
                return -1;
            continue;
        }
        if (n <= 0)
            return -1;
        rcmd_reader_commit(r, (size_t)n);
    }
}

static void serve(peer *p, ss_transport *t)
{
    static uint8_t out[RCMD_FRAME_MAX];
    rcmd_reader r;
    rcmd_reader_init(&r);
    rcmd_frame f;
    if (next(t, &r, &f) != 1 || f.type != RCMD_HELLO)
        goto done;
    send_frame(t, out, rcmd_hello_encode(out, sizeof out, "test peer"));
    while (next(t, &r, &f) == 1) {
        if (f.type != RCMD_EXEC)
            continue; /* stray STDIN etc. between commands: ignored, as §5 says */
        int mode;
        char **argv;
        size_t argc;
        if (rcmd_exec_decode(&f, &mode, &argv, &argc) != 0)
            goto done;
        p->commands++;
        switch (p->script) {
        case ECHO: {
            char line[1024] = "";
            for (size_t i = 0; i < argc; i++) {
                strcat(line, i ? " " : "");
                strncat(line, argv[i], 100);
            }
            send_frame(t, out, rcmd_data_encode(out, sizeof out, RCMD_STDOUT, line, strlen(line)));
            send_frame(t, out, rcmd_data_encode(out, sizeof out, RCMD_STDERR, "err", 3));
            while (next(t, &r, &f) == 1 && f.type != RCMD_STDIN_EOF)
                if (f.type == RCMD_STDIN)
                    send_frame(t, out,
                               rcmd_data_encode(out, sizeof out, RCMD_STDOUT, f.payload, f.len));
            send_frame(t, out, rcmd_exit_encode(out, sizeof out, RCMD_EXIT_CODE, (int)argc));
            break;
        }
        case DIE_BY_SIGNAL:
            send_frame(t, out, rcmd_exit_encode(out, sizeof out, RCMD_EXIT_SIGNAL, 9));
            break;
        case ON_SIGNAL: {
            int sig = 0;
            while (next(t, &r, &f) == 1)
                if (f.type == RCMD_SIGNAL && rcmd_signal_decode(&f, &sig) == 0)
                    break;
            if (sig)
                send_frame(t, out, rcmd_exit_encode(out, sizeof out, RCMD_EXIT_SIGNAL, sig));
            break;
        }
        case IGNORE_SIGNAL:
            while (next(t, &r, &f) == 1)
                ;
            break;
        case BAD_FRAME: {
            const uint8_t bad[] = {RCMD_STDOUT, 0xff, 0xff, 0xff, 0xff};
            send_frame(t, bad, sizeof bad);
            while (next(t, &r, &f) == 1)
                ;
            break;
        }
        case CLOSE_EARLY: free(argv); goto done;
        case DENY:
            send_frame(
                t, out,
                rcmd_error_encode(out, sizeof out, RCMD_ERR_DENIED, "not allowed: \x1b[31mrm"));
            send_frame(t, out, rcmd_exit_encode(out, sizeof out, RCMD_EXIT_CODE, 126));
            break;
        }
        free(argv);
    }
done:
    rcmd_reader_free(&r);
}

static void *peer_main(void *arg)
{
    peer *p = arg;
    ss_sock conn = SS_SOCK_INIT;
    if (ss_sock_accept(&p->listener, &conn, NULL) < 0)
        return NULL;
    ss_transport t;
    rcmd_tls_ctx *ctx = NULL;
    if (p->plain) {
        rcmd_plain_transport_init(&t, conn.fd);
    } else {
        rcmd_tls_config cfg = {.key = &p->key};
        if (rcmd_tls_ctx_new(&ctx, true, &cfg, NULL) != 0 ||
            rcmd_tls_transport_new(&t, ctx, conn.fd, NULL) != 0) {
            ss_sock_close(&conn);
            rcmd_tls_ctx_free(ctx);
            return NULL;
        }
        if (rcmd_tls_handshake(&t, rcmd_now_ms() + 10000, NULL) != 0) {
            t.ops->close(&t);
            rcmd_tls_ctx_free(ctx);
            return NULL;
        }
    }
    serve(p, &t);
    t.ops->close(&t);
    rcmd_tls_ctx_free(ctx);
    return NULL;
}

static void peer_start(peer *p, enum script s, bool plain, unsigned char keyfill)
{
    memset(p, 0, sizeof *p);
    p->listener = (ss_sock)SS_SOCK_INIT;
    char name[64];
    tu_abstract_name(name, sizeof name);
    snprintf(p->address, sizeof p->address, "unix:%s", name);
    ss_addr a;
    assert_int_equal(ss_addr_parse(&a, p->address, SS_ADDR_PASSIVE, NULL), 0);
    assert_int_equal(ss_listen(&p->listener, &a, NULL, NULL), 0);
    p->key = test_key(keyfill);
    p->plain = plain;
    p->script = s;
    assert_int_equal(pthread_create(&p->thread, NULL, peer_main, p), 0);
}

static void peer_stop(peer *p)
{
    pthread_join(p->thread, NULL);
    ss_sock_close(&p->listener);
}

/* Drain a pipe's read end into a string (non-blocking). */
static void drain(int fd, char *buf, size_t cap)
{
    size_t n = strlen(buf);
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
}

typedef struct io_pipes {
    int in[2], out[2], err[2], sig[2];
    rcmd_client_io io;
} io_pipes;

static void pipes_open(io_pipes *p, const char *stdin_text)
{
    assert_int_equal(pipe2(p->in, O_CLOEXEC), 0);
    assert_int_equal(pipe2(p->out, O_CLOEXEC | O_NONBLOCK), 0);
    assert_int_equal(pipe2(p->err, O_CLOEXEC | O_NONBLOCK), 0);
    assert_int_equal(pipe2(p->sig, O_CLOEXEC | O_NONBLOCK), 0);
    if (stdin_text)
        assert_int_equal(write(p->in[1], stdin_text, strlen(stdin_text)),
                         (ssize_t)strlen(stdin_text));
    close(p->in[1]);
    p->io = (rcmd_client_io){p->in[0], p->out[1], p->err[1], p->sig[0]};
}

static void pipes_close(io_pipes *p)
{
    int *all[] = {p->out, p->err, p->sig};
    close(p->in[0]);
    for (int i = 0; i < 3; i++) {
        close(all[i][0]);
        close(all[i][1]);
    }
}

static rcmd_client *connect_to(peer *p, unsigned char keyfill, bool plain)
{
    rcmd_key k = test_key(keyfill);
    rcmd_client_opts o = {
        .address = p->address, .key = plain ? NULL : &k, .insecure = plain, .connect_timeout = 10};
    rcmd_client *c = NULL;
    ss_error err = {0};
    int rc = rcmd_client_connect(&c, &o, &err);
    if (rc != 0)
        print_message("connect: %s\n", err.msg);
    assert_int_equal(rc, 0);
    return c;
}

static void argv_stdout_stderr_stdin_and_exit_code(void **state)
{
    (void)state;
    int fds = tu_count_fds();
    peer p;
    peer_start(&p, ECHO, false, 7);
    rcmd_client *c = connect_to(&p, 7, false);
    io_pipes io;
    pipes_open(&io, "from stdin");
    const char *argv[] = {"prog", "a b", "c"};
    ss_error err = {0};
    assert_int_equal(rcmd_client_run(c, RCMD_EXEC_ARGV, argv, 3, &io.io, &err), 3);
    char out[256] = "", errs[256] = "";
    drain(io.out[0], out, sizeof out);
    drain(io.err[0], errs, sizeof errs);
    assert_string_equal(out, "prog a b cfrom stdin");
    assert_string_equal(errs, "err");
    assert_true(rcmd_client_usable(c));

    /* a second command on the same connection, with no stdin */
    io.io.in_fd = -1;
    const char *line[] = {"echo hi | wc"};
    assert_int_equal(rcmd_client_run(c, RCMD_EXEC_SHELL, line, 1, &io.io, &err), 1);
    out[0] = '\0';
    drain(io.out[0], out, sizeof out);
    assert_string_equal(out, "echo hi | wc");
    rcmd_client_close(c);
    peer_stop(&p);
    assert_int_equal(p.commands, 2);
    pipes_close(&io);
    assert_int_equal(tu_count_fds(), fds);
}

static void insecure_plain_works_on_loopback(void **state)
{
    (void)state;
    peer p;
    peer_start(&p, ECHO, true, 0);
    rcmd_client *c = connect_to(&p, 0, true);
    io_pipes io;
    pipes_open(&io, NULL);
    const char *argv[] = {"x"};
    assert_int_equal(rcmd_client_run(c, RCMD_EXEC_ARGV, argv, 1, &io.io, NULL), 1);
    rcmd_client_close(c);
    peer_stop(&p);
    pipes_close(&io);
}

static void insecure_refused_off_loopback(void **state)
{
    (void)state;
    rcmd_client_opts o = {.address = "tcp://192.0.2.1:9922", .insecure = true};
    rcmd_client *c;
    ss_error err = {0};
    assert_int_equal(rcmd_client_connect(&c, &o, &err), SS_EUSAGE);
    assert_non_null(strstr(err.msg, "loopback"));
    rcmd_client_opts nokey = {.address = "tcp://127.0.0.1:9922"};
    assert_int_equal(rcmd_client_connect(&c, &nokey, &err), SS_EUSAGE);
}

/* Finding: the cleartext check looked only at the first address a name gives,
 * while the client dials up to 16. A list with one non-loopback address
 * anywhere in it fails the check. */
static void cleartext_check_covers_every_resolved_address(void **state)
{
    (void)state;
    ss_addr a[4];
    ss_error err = {0};
    assert_int_equal(ss_addr_parse(&a[0], "tcp://127.0.0.1:1", 0, &err), 0);
    assert_int_equal(ss_addr_parse(&a[1], "tcp://[::1]:1", 0, &err), 0);
    assert_int_equal(ss_addr_parse(&a[2], "tcp://192.0.2.7:1", 0, &err), 0);
    assert_int_equal(ss_addr_parse(&a[3], "unix:@x", 0, &err), 0);
    assert_true(rcmd_addrs_all_loopback(a, 2));
    assert_true(rcmd_addrs_all_loopback(&a[3], 1));
    assert_false(rcmd_addrs_all_loopback(a, 3)); /* loopback first, then not */
    assert_false(rcmd_addrs_all_loopback(&a[1], 2));
    assert_false(rcmd_addrs_all_loopback(a, 0));
    /* and the dialler refuses before connecting anywhere */
    ss_sock s;
    assert_int_equal(rcmd_dial(&s, "tcp://192.0.2.7:9", true, 0.2, &err), SS_EUSAGE);
    assert_int_equal(s.fd, -1);
    assert_non_null(strstr(err.msg, "loopback"));
}

static void wrong_key_is_an_authentication_failure(void **state)
{
    (void)state;
    int fds = tu_count_fds();
    peer p;
    peer_start(&p, ECHO, false, 7);
    rcmd_key k = test_key(8);
    memcpy(k.identity, p.key.identity, sizeof k.identity); /* same name, other key */
    rcmd_client_opts o = {.address = p.address, .key = &k};
    rcmd_client *c = NULL;
    ss_error err = {0};
    assert_int_equal(rcmd_client_connect(&c, &o, &err), SS_EAUTH);
    assert_null(c);
    assert_non_null(strstr(err.msg, "authentication failed"));
    assert_non_null(strstr(err.msg, p.address));
    peer_stop(&p);
    assert_int_equal(tu_count_fds(), fds);
}

static void plain_client_against_tls_server_fails(void **state)
{
    (void)state;
    peer p;
    peer_start(&p, ECHO, false, 7);
    rcmd_client_opts o = {.address = p.address, .insecure = true, .connect_timeout = 5};
    rcmd_client *c = NULL;
    ss_error err = {0};
    int rc = rcmd_client_connect(&c, &o, &err);
    assert_true(rc < 0);
    peer_stop(&p);
}

static void death_by_signal_is_128_plus_n(void **state)
{
    (void)state;
    peer p;
    peer_start(&p, DIE_BY_SIGNAL, false, 1);
    rcmd_client *c = connect_to(&p, 1, false);
    io_pipes io;
    pipes_open(&io, NULL);
    const char *argv[] = {"sleep", "100"};
    assert_int_equal(rcmd_client_run(c, RCMD_EXEC_ARGV, argv, 2, &io.io, NULL), 137);
    rcmd_client_close(c);
    peer_stop(&p);
    pipes_close(&io);
}

static void ctrl_c_is_forwarded(void **state)
{
    (void)state;
    peer p;
    peer_start(&p, ON_SIGNAL, false, 1);
    rcmd_client *c = connect_to(&p, 1, false);
    io_pipes io;
    pipes_open(&io, NULL);
    unsigned char sig = SIGINT;
    assert_int_equal(write(io.sig[1], &sig, 1), 1);
    const char *argv[] = {"sleep", "100"};
    assert_int_equal(rcmd_client_run(c, RCMD_EXEC_ARGV, argv, 2, &io.io, NULL), 130);
    assert_true(rcmd_client_usable(c)); /* the server answered EXIT */
    rcmd_client_close(c);
    peer_stop(&p);
    pipes_close(&io);
}

static void second_ctrl_c_gives_up(void **state)
{
    (void)state;
    peer p;
    peer_start(&p, IGNORE_SIGNAL, false, 1);
    rcmd_client *c = connect_to(&p, 1, false);
    io_pipes io;
    pipes_open(&io, NULL);
    unsigned char sigs[2] = {SIGINT, SIGINT};
    assert_int_equal(write(io.sig[1], sigs, 2), 2);
    const char *argv[] = {"sleep", "100"};
    assert_int_equal(rcmd_client_run(c, RCMD_EXEC_ARGV, argv, 2, &io.io, NULL), 130);
    assert_false(rcmd_client_usable(c));
    rcmd_client_close(c); /* the peer sees EOF and its thread ends */
    peer_stop(&p);
    pipes_close(&io);
}

static void oversized_frame_from_server_is_a_protocol_error(void **state)
{
    (void)state;
    peer p;
    peer_start(&p, BAD_FRAME, false, 1);
    rcmd_client *c = connect_to(&p, 1, false);
    io_pipes io;
    pipes_open(&io, NULL);
    const char *argv[] = {"x"};
    ss_error err = {0};
    assert_int_equal(rcmd_client_run(c, RCMD_EXEC_ARGV, argv, 1, &io.io, &err), SS_EPROTO);
    assert_non_null(strstr(err.msg, "protocol error"));
    rcmd_client_close(c);
    peer_stop(&p);
    pipes_close(&io);
}

static void server_closing_before_exit_fails(void **state)
{
    (void)state;
    peer p;
    peer_start(&p, CLOSE_EARLY, false, 1);
    rcmd_client *c = connect_to(&p, 1, false);
    io_pipes io;
    pipes_open(&io, NULL);
    const char *argv[] = {"x"};
    ss_error err = {0};
    int rc = rcmd_client_run(c, RCMD_EXEC_ARGV, argv, 1, &io.io, &err);
    assert_true(rc < 0);
    assert_non_null(strstr(err.msg, p.address));
    rcmd_client_close(c);
    peer_stop(&p);
    pipes_close(&io);
}

static void server_error_text_is_printed_escaped(void **state)
{
    (void)state;
    peer p;
    peer_start(&p, DENY, false, 1);
    rcmd_client *c = connect_to(&p, 1, false);
    io_pipes io;
    pipes_open(&io, NULL);
    const char *argv[] = {"rm"};
    assert_int_equal(rcmd_client_run(c, RCMD_EXEC_ARGV, argv, 1, &io.io, NULL), 126);
    char errs[256] = "";
    drain(io.err[0], errs, sizeof errs);
    assert_string_equal(errs, "sockserve: rcmd: server: not allowed: \\x1b[31mrm\n");
    rcmd_client_close(c);
    peer_stop(&p);
    pipes_close(&io);
}

int main(void)
{
    tu_alarm(60);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(argv_stdout_stderr_stdin_and_exit_code),
        cmocka_unit_test(insecure_plain_works_on_loopback),
        cmocka_unit_test(insecure_refused_off_loopback),
        cmocka_unit_test(cleartext_check_covers_every_resolved_address),
        cmocka_unit_test(wrong_key_is_an_authentication_failure),
        cmocka_unit_test(plain_client_against_tls_server_fails),
        cmocka_unit_test(death_by_signal_is_128_plus_n),
        cmocka_unit_test(ctrl_c_is_forwarded),
        cmocka_unit_test(second_ctrl_c_gives_up),
        cmocka_unit_test(oversized_frame_from_server_is_a_protocol_error),
        cmocka_unit_test(server_closing_before_exit_fails),
        cmocka_unit_test(server_error_text_is_printed_escaped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
