/* SPDX-License-Identifier: MIT */
/* test_addr.c — the address syntax: parse, format, resolve, accessors. */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define UN_OFF offsetof(struct sockaddr_un, sun_path)
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/*
 * A name the resolver itself refuses: a 64-byte label is longer than DNS
 * allows (63), so glibc's getaddrinfo fails with EAI_NONAME before sending
 * any packet. "nosuchhost.invalid" would do a real DNS query: fast on a
 * machine whose resolver answers (2 ms on the build machine), but up to
 * timeout x attempts (10 s and more) where a resolver is configured and
 * unreachable, so the test does not use it.
 */
#define NORESOLVE_HOST "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.invalid"

typedef struct addr_case {
    const char *in;
    int flags;
    int code;         /* 0, SS_EBADADDR, ... */
    const char *want; /* canonical text when code is 0, else words of err.msg */
} addr_case;

static const addr_case cases[] = {
    /* good: every numeric form, canonical output */
    {"tcp://127.0.0.1:9999", 0, 0, "tcp://127.0.0.1:9999"},
    {"tcp://[::1]:9999", 0, 0, "tcp://[::1]:9999"},
    {"127.0.0.1:9999", 0, 0, "tcp://127.0.0.1:9999"},
    {":9999", 0, 0, "tcp://127.0.0.1:9999"},
    {"tcp://:80", 0, 0, "tcp://127.0.0.1:80"},
    {"tcp://[::]:0", 0, 0, "tcp://[::]:0"},
    {"tcp://[::]:0", SS_ADDR_PASSIVE, 0, "tcp://[::]:0"},
    {"tcp://0.0.0.0:0", 0, 0, "tcp://0.0.0.0:0"},
    {"tcp://127.0.0.1:65535", 0, 0, "tcp://127.0.0.1:65535"},
    {"tcp://127.0.0.1:00080", 0, 0, "tcp://127.0.0.1:80"},
    {"TCP://127.0.0.1:1", 0, 0, "tcp://127.0.0.1:1"},
    {"tcp://[2001:DB8::1]:80", 0, 0, "tcp://[2001:db8::1]:80"},
    {"tcp://[0:0:0:0:0:0:0:1]:80", 0, 0, "tcp://[::1]:80"},
    {"tcp://[::ffff:127.0.0.1]:7", 0, 0, "tcp://[::ffff:127.0.0.1]:7"},
    {"udp://127.0.0.1:53", 0, 0, "udp://127.0.0.1:53"},
    {"udp://[::1]:5353", SS_ADDR_NUMERIC, 0, "udp://[::1]:5353"},
    {"udp://:0", 0, 0, "udp://127.0.0.1:0"},
    {"10.1.2.3:4", SS_ADDR_NUMERIC, 0, "tcp://10.1.2.3:4"},
    {"unix:/tmp/x.sock", 0, 0, "unix:/tmp/x.sock"},
    {"unix:relative.sock", 0, 0, "unix:relative.sock"},
    {"unix:@name", 0, 0, "unix:@name"},
    {"unix:@a@b", 0, 0, "unix:@a@b"},
    {"unixgram:/tmp/g", 0, 0, "unixgram:/tmp/g"},
    {"unixgram:@g", 0, 0, "unixgram:@g"},
    {"seqpacket:/tmp/s", 0, 0, "seqpacket:/tmp/s"},
    {"seqpacket:@s", 0, 0, "seqpacket:@s"},

    /* bad: brackets and IPv6 */
    {"tcp://[::1", 0, SS_EBADADDR, "missing ']' after IPv6 host"},
    {"tcp://[::1]", 0, SS_EBADADDR, "missing port"},
    {"tcp://[::1]:", 0, SS_EBADADDR, "missing port"},
    {"tcp://[::1]80", 0, SS_EBADADDR, "expected ':PORT' after ']'"},
    {"tcp://[]:80", 0, SS_EBADADDR, "empty IPv6 host"},
    {"tcp://[1.2.3.4]:80", 0, SS_EBADADDR, "bad IPv6 address '1.2.3.4'"},
    {"tcp://[::g]:80", 0, SS_EBADADDR, "bad IPv6 address"},
    {"tcp://[localhost]:80", 0, SS_EBADADDR, "bad IPv6 address"},
    {"tcp://[::1%]:80", 0, SS_EBADADDR, "empty IPv6 scope"},
    {"tcp://[fe80::1%nosuchif0]:80", 0, SS_EBADADDR, "unknown interface 'nosuchif0'"},
    {"::1:80", 0, SS_EBADADDR, "IPv6 host must be in brackets"},
    {"tcp://::1:80", 0, SS_EBADADDR, "IPv6 host must be in brackets"},
    /* bad: ports */
    {"tcp://127.0.0.1:70000", 0, SS_EBADADDR, "port must be 0..65535"},
    {"tcp://127.0.0.1:65536", 0, SS_EBADADDR, "port must be 0..65535"},
    {"tcp://127.0.0.1:99999999999999999999999", 0, SS_EBADADDR, "port must be 0..65535"},
    {"tcp://127.0.0.1:-1", 0, SS_EBADADDR, "port '-1' is not a decimal number"},
    {"tcp://127.0.0.1:+80", 0, SS_EBADADDR, "port '+80' is not a decimal number"},
    {"tcp://127.0.0.1: 80", 0, SS_EBADADDR, "not a decimal number"},
    {"tcp://127.0.0.1:80 ", 0, SS_EBADADDR, "not a decimal number"},
    {"tcp://127.0.0.1:80x", 0, SS_EBADADDR, "port '80x' is not a decimal number"},
    {"tcp://127.0.0.1:0x50", 0, SS_EBADADDR, "not a decimal number"},
    {"tcp://127.0.0.1:", 0, SS_EBADADDR, "missing port"},
    {"tcp://127.0.0.1", 0, SS_EBADADDR, "missing port"},
    {"127.0.0.1", 0, SS_EBADADDR, "missing port"},
    {"tcp://", 0, SS_EBADADDR, "missing port"},
    {":", 0, SS_EBADADDR, "missing port"},
    /* bad: hosts */
    {"tcp://1.2.3:80", 0, SS_EBADADDR, "bad IPv4 address '1.2.3'"},
    {"tcp://256.1.1.1:80", 0, SS_EBADADDR, "bad IPv4 address '256.1.1.1'"},
    {"tcp://127.1:80", 0, SS_EBADADDR, "bad IPv4 address '127.1'"},
    {"tcp://0x7f.0.0.1:80", 0, SS_EBADADDR, "bad IPv4 address '0x7f.0.0.1'"},
    {"tcp://a b:80", 0, SS_EBADADDR, "bad host name 'a b'"},
    {"tcp://host/x:80", 0, SS_EBADADDR, "bad host name 'host/x'"},
    {"tcp://localhost:80", SS_ADDR_NUMERIC, SS_EBADADDR, "only numeric addresses"},
    {"udp://" NORESOLVE_HOST ":1", SS_ADDR_NUMERIC, SS_EBADADDR, "only numeric addresses"},
    /* bad: schemes */
    {"", 0, SS_EBADADDR, "empty address"},
    {"foo://1.2.3.4:5", 0, SS_EBADADDR, "unknown scheme 'foo'"},
    {"http://example.com:80", 0, SS_EBADADDR, "unknown scheme 'http'"},
    {"file:/etc/passwd", 0, SS_EBADADDR, "unknown scheme 'file'"},
    {"tcp:127.0.0.1:80", 0, SS_EBADADDR, "missing '//' after 'tcp:'"},
    {"udp:/x", 0, SS_EBADADDR, "missing '//' after 'udp:'"},
    {"/tmp/x.sock", 0, SS_EBADADDR, "unix:/tmp/x.sock"},
    {"@abstract", 0, SS_EBADADDR, "missing scheme"},
    /* bad: unix */
    {"unix:", 0, SS_EBADADDR, "empty unix path"},
    {"unixgram:", 0, SS_EBADADDR, "empty unix path"},
    {"seqpacket:", 0, SS_EBADADDR, "empty unix path"},
    {"unix:@", 0, SS_EBADADDR, "empty abstract unix name"},
    {"unix:/tmp/a\nb", 0, SS_EBADADDR, "control character in unix path"},
};

static bool same_bytes(const ss_addr *a, const ss_addr *b)
{
    return a->kind == b->kind && a->len == b->len && memcmp(&a->u, &b->u, a->len) == 0;
}

static void check_case(const addr_case *c)
{
    ss_addr a;
    ss_error err = {0};
    memset(&a, 0xa5, sizeof a);
    int rc = ss_addr_parse(&a, c->in, c->flags, &err);
    if (rc != c->code)
        print_error("input '%s': got %s (%s), want %s\n", c->in, ss_err_name(rc), err.msg,
                    ss_err_name(c->code));
    assert_int_equal(rc, c->code);

    if (c->code == 0) {
        char buf[SS_ADDR_STRLEN];
        int n = ss_addr_format(&a, buf, sizeof buf);
        assert_int_equal(n, (int)strlen(c->want));
        assert_string_equal(buf, c->want);
        return;
    }
    /* the error names the input and says what is wrong, on one line */
    assert_int_equal(err.code, rc);
    if (strstr(err.msg, c->want) == NULL)
        print_error("input '%s': message '%s' lacks '%s'\n", c->in, err.msg, c->want);
    assert_non_null(strstr(err.msg, c->want));
    assert_null(strchr(err.msg, '\n'));
    if (c->code == SS_EBADADDR && strchr(c->in, '\n') == NULL) {
        char prefix[256];
        snprintf(prefix, sizeof prefix, "bad address '%s': ", c->in);
        assert_int_equal(strncmp(err.msg, prefix, strlen(prefix)), 0);
    }
    /* a failed parse leaves nothing half-filled */
    assert_int_equal(a.kind, SS_ADDR_NONE);
    assert_int_equal(a.len, 0);
    /* and the same input without an error struct fails the same way */
    assert_int_equal(ss_addr_parse(&a, c->in, c->flags, NULL), c->code);
}

static void table_of_cases(void **state)
{
    (void)state;
    assert_true(ARRAY_LEN(cases) >= 40);
    for (size_t i = 0; i < ARRAY_LEN(cases); i++)
        check_case(&cases[i]);
}

/* parse -> format -> parse gives the same bytes, and format is a fixed point */
static void round_trips(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        const addr_case *c = &cases[i];
        if (c->code != 0)
            continue;
        ss_addr a, b;
        char t1[SS_ADDR_STRLEN], t2[SS_ADDR_STRLEN];
        assert_int_equal(ss_addr_parse(&a, c->in, c->flags, NULL), 0);
        assert_true(ss_addr_format(&a, t1, sizeof t1) > 0);
        assert_int_equal(ss_addr_parse(&b, t1, SS_ADDR_NUMERIC, NULL), 0);
        assert_true(same_bytes(&a, &b));
        assert_true(ss_addr_format(&b, t2, sizeof t2) > 0);
        assert_string_equal(t1, t2);
    }
}

/* Names differing only by a trailing byte are different sockets: the length
 * we pass is exact, with no NUL padding after the name. */
static void abstract_names_are_length_exact(void **state)
{
    (void)state;
    char name[80], longer[90];
    tu_abstract_name(name, sizeof name); /* "@sockserve-test-..." */
    char text_a[100], text_b[100];
    snprintf(text_a, sizeof text_a, "unix:%s", name);
    snprintf(longer, sizeof longer, "%sx", name);
    snprintf(text_b, sizeof text_b, "unix:%s", longer);

    ss_addr a, b, again;
    assert_int_equal(ss_addr_parse(&a, text_a, 0, NULL), 0);
    assert_int_equal(ss_addr_parse(&b, text_b, 0, NULL), 0);
    assert_int_equal(a.len, UN_OFF + 1 + strlen(name + 1));
    assert_int_equal(b.len, a.len + 1);
    assert_int_equal(a.u.un.sun_path[0], '\0');

    int fds_before = tu_count_fds();
    int sa = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int sb = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int sc = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(sa >= 0 && sb >= 0 && sc >= 0);
    assert_int_equal(bind(sa, &a.u.sa, a.len), 0);
    assert_int_equal(bind(sb, &b.u.sa, b.len), 0);
    /* the very same name is taken */
    assert_int_equal(bind(sc, &a.u.sa, a.len), -1);
    assert_int_equal(errno, EADDRINUSE);

    /* what the kernel reports formats back to what we parsed */
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char buf[SS_ADDR_STRLEN];
    assert_int_equal(getsockname(sa, (struct sockaddr *)&ss, &len), 0);
    assert_int_equal(len, a.len);
    assert_int_equal(ss_addr_from_sockaddr(&again, SS_ADDR_UNIX, (struct sockaddr *)&ss, len), 0);
    assert_true(same_bytes(&a, &again));
    ss_addr_format(&again, buf, sizeof buf);
    assert_string_equal(buf, text_a);
    len = sizeof ss;
    assert_int_equal(getsockname(sb, (struct sockaddr *)&ss, &len), 0);
    assert_int_equal(ss_addr_from_sockaddr(&again, SS_ADDR_UNIX, (struct sockaddr *)&ss, len), 0);
    ss_addr_format(&again, buf, sizeof buf);
    assert_string_equal(buf, text_b);

    /* connecting to the shorter name reaches the shorter socket only */
    assert_int_equal(listen(sa, 1), 0);
    assert_int_equal(connect(sc, &a.u.sa, a.len), 0);
    int conn = accept4(sa, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    assert_true(conn >= 0);
    close(conn);
    close(sa);
    close(sb);
    close(sc);
    assert_int_equal(tu_count_fds(), fds_before);
}

/* The kernel's own names (autobind) and NUL-padded names format sensibly. */
static void kernel_names_format(void **state)
{
    (void)state;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sa_family_t)), 0); /* autobind */
    socklen_t len = sizeof sun;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sun, &len), 0);
    close(fd);

    ss_addr a, b;
    char buf[SS_ADDR_STRLEN];
    assert_int_equal(ss_addr_from_sockaddr(&a, SS_ADDR_UNIXGRAM, (struct sockaddr *)&sun, len), 0);
    int n = ss_addr_format(&a, buf, sizeof buf);
    assert_int_equal(n, (int)strlen("unixgram:@") + (int)(len - UN_OFF - 1));
    assert_int_equal(strncmp(buf, "unixgram:@", 10), 0);
    assert_int_equal(ss_addr_parse(&b, buf, 0, NULL), 0);
    assert_true(same_bytes(&a, &b));

    /* a name padded with NULs to the full size, as some programs bind */
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path + 1, "pad", 3);
    assert_int_equal(ss_addr_from_sockaddr(&a, SS_ADDR_UNIX, (struct sockaddr *)&sun, sizeof sun),
                     0);
    n = ss_addr_format(&a, buf, sizeof buf);
    assert_true(n < SS_ADDR_STRLEN);
    assert_int_equal(strncmp(buf, "unix:@pad@@@", 12), 0);
    assert_int_equal(n, (int)(strlen("unix:@") + sizeof sun.sun_path - 1));
}

static void unnamed_unix_peers(void **state)
{
    (void)state;
    static const struct {
        ss_addr_kind kind;
        const char *want;
    } kinds[] = {
        {SS_ADDR_UNIX, "unix:"},
        {SS_ADDR_UNIXGRAM, "unixgram:"},
        {SS_ADDR_SEQPACKET, "seqpacket:"},
    };
    for (size_t i = 0; i < ARRAY_LEN(kinds); i++) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        ss_addr a;
        char buf[SS_ADDR_STRLEN];
        assert_int_equal(
            ss_addr_from_sockaddr(&a, kinds[i].kind, (struct sockaddr *)&sun, sizeof(sa_family_t)),
            0);
        assert_int_equal(ss_addr_format(&a, buf, sizeof buf), (int)strlen(kinds[i].want));
        assert_string_equal(buf, kinds[i].want);
        /* recvfrom from an unbound sender may report a length of 0 */
        assert_int_equal(ss_addr_from_sockaddr(&a, kinds[i].kind, (struct sockaddr *)&sun, 0), 0);
        ss_addr_format(&a, buf, sizeof buf);
        assert_string_equal(buf, kinds[i].want);
        assert_true(ss_addr_is_loopback(&a));
    }

    /* a socketpair end has no name */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    assert_int_equal(getsockname(sv[0], (struct sockaddr *)&ss, &len), 0);
    close(sv[0]);
    close(sv[1]);
    ss_addr a;
    char buf[SS_ADDR_STRLEN];
    assert_int_equal(ss_addr_from_sockaddr(&a, SS_ADDR_UNIX, (struct sockaddr *)&ss, len), 0);
    ss_addr_format(&a, buf, sizeof buf);
    assert_string_equal(buf, "unix:");
}

static void unix_path_limits(void **state)
{
    (void)state;
    const size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1; /* 107 */
    char text[300];
    ss_addr a;
    ss_error err = {0};

    /* a path of exactly 107 bytes fits, 108 does not */
    strcpy(text, "unix:/");
    memset(text + 6, 'p', max - 1);
    text[6 + max - 1] = '\0';
    assert_int_equal(ss_addr_parse(&a, text, 0, &err), 0);
    assert_int_equal(a.len, UN_OFF + max + 1);
    char buf[SS_ADDR_STRLEN];
    assert_int_equal(ss_addr_format(&a, buf, sizeof buf), (int)strlen(text));
    assert_string_equal(buf, text);
    strcat(text, "p");
    assert_int_equal(ss_addr_parse(&a, text, 0, &err), SS_EBADADDR);
    assert_non_null(strstr(err.msg, "unix path longer than 107 bytes"));

    /* an abstract name of 107 bytes fills sun_path exactly */
    strcpy(text, "unixgram:@");
    memset(text + 10, 'n', max);
    text[10 + max] = '\0';
    assert_int_equal(ss_addr_parse(&a, text, 0, &err), 0);
    assert_int_equal(a.len, sizeof(struct sockaddr_un));
    assert_int_equal(ss_addr_format(&a, buf, sizeof buf), (int)strlen(text));
    assert_string_equal(buf, text);
    strcat(text, "n");
    assert_int_equal(ss_addr_parse(&a, text, 0, &err), SS_EBADADDR);
    assert_non_null(strstr(err.msg, "abstract unix name longer than 107 bytes"));

    /* the longest inet form fits SS_ADDR_STRLEN too */
    assert_int_equal(
        ss_addr_parse(&a, "udp://[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535", 0, NULL),
        0);
    assert_true(ss_addr_format(&a, buf, sizeof buf) < SS_ADDR_STRLEN);
}

static void a_path_socket_reports_what_we_bound(void **state)
{
    (void)state;
    char path[200], text[220];
    tu_temp_path(path, sizeof path, "addr.sock");
    unlink(path);
    snprintf(text, sizeof text, "seqpacket:%s", path);
    ss_addr a, back;
    assert_int_equal(ss_addr_parse(&a, text, 0, NULL), 0);
    assert_int_equal(ss_addr_socktype(a.kind), SOCK_SEQPACKET);
    int fd = socket(ss_addr_family(&a), ss_addr_socktype(a.kind) | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, &a.u.sa, a.len), 0);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    close(fd);
    unlink(path);
    assert_int_equal(len, a.len);
    assert_int_equal(ss_addr_from_sockaddr(&back, SS_ADDR_SEQPACKET, (struct sockaddr *)&ss, len),
                     0);
    assert_true(same_bytes(&a, &back));
    char buf[SS_ADDR_STRLEN];
    ss_addr_format(&back, buf, sizeof buf);
    assert_string_equal(buf, text);
}

/* Bind, getsockname, format, parse again and connect: for 127.0.0.1 and ::1. */
static void bind_and_reconnect(const char *text, bool optional)
{
    ss_addr a, bound, again;
    assert_int_equal(ss_addr_parse(&a, text, SS_ADDR_PASSIVE, NULL), 0);
    int lfd = socket(ss_addr_family(&a), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 && optional)
        skip();
    assert_true(lfd >= 0);
    if (bind(lfd, &a.u.sa, a.len) != 0) {
        close(lfd);
        if (optional && errno == EADDRNOTAVAIL)
            skip();
        fail_msg("bind %s: %s", text, strerror(errno));
    }
    assert_int_equal(listen(lfd, 1), 0);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&ss, &len), 0);
    assert_int_equal(ss_addr_from_sockaddr(&bound, SS_ADDR_TCP, (struct sockaddr *)&ss, len), 0);
    assert_true(ss_addr_port(&bound) > 0);
    assert_true(ss_addr_is_loopback(&bound));

    char buf[SS_ADDR_STRLEN];
    ss_addr_format(&bound, buf, sizeof buf);
    char want[SS_ADDR_STRLEN];
    snprintf(want, sizeof want, "%.*s%d", (int)(strlen(text) - 1), text, ss_addr_port(&bound));
    assert_string_equal(buf, want);

    assert_int_equal(ss_addr_parse(&again, buf, SS_ADDR_NUMERIC, NULL), 0);
    assert_true(same_bytes(&again, &bound));
    int cfd = socket(ss_addr_family(&again), SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(cfd >= 0);
    assert_int_equal(connect(cfd, &again.u.sa, again.len), 0);
    close(cfd);
    close(lfd);
}

static void ipv4_loopback_binds(void **state)
{
    (void)state;
    bind_and_reconnect("tcp://127.0.0.1:0", false);
}

static void ipv6_loopback_binds(void **state)
{
    (void)state;
    bind_and_reconnect("tcp://[::1]:0", true);
}

static bool machine_has_ipv6(void)
{
    int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

static void passive_and_active_port_only(void **state)
{
    (void)state;
    ss_addr a;
    char buf[SS_ADDR_STRLEN];

    assert_int_equal(ss_addr_parse(&a, ":9999", SS_ADDR_PASSIVE, NULL), 0);
    ss_addr_format(&a, buf, sizeof buf);
    assert_string_equal(buf, machine_has_ipv6() ? "tcp://[::]:9999" : "tcp://0.0.0.0:9999");
    assert_false(ss_addr_is_loopback(&a));

    assert_int_equal(ss_addr_parse(&a, "udp://:0", SS_ADDR_PASSIVE, NULL), 0);
    ss_addr_format(&a, buf, sizeof buf);
    assert_string_equal(buf, machine_has_ipv6() ? "udp://[::]:0" : "udp://0.0.0.0:0");

    assert_int_equal(ss_addr_parse(&a, ":9999", 0, NULL), 0);
    ss_addr_format(&a, buf, sizeof buf);
    assert_string_equal(buf, "tcp://127.0.0.1:9999");
    assert_true(ss_addr_is_loopback(&a));

    /* an explicit host is the same either way */
    assert_int_equal(ss_addr_parse(&a, "127.0.0.1:5", SS_ADDR_PASSIVE, NULL), 0);
    ss_addr_format(&a, buf, sizeof buf);
    assert_string_equal(buf, "tcp://127.0.0.1:5");

    /* the passive address really binds (port 0) */
    assert_int_equal(ss_addr_parse(&a, ":0", SS_ADDR_PASSIVE, NULL), 0);
    int fd = socket(ss_addr_family(&a), SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, &a.u.sa, a.len), 0);
    close(fd);
}

static void scope_ids(void **state)
{
    (void)state;
    unsigned lo = if_nametoindex("lo");
    if (lo == 0)
        skip();
    ss_addr a;
    char text[64], buf[SS_ADDR_STRLEN];
    assert_int_equal(ss_addr_parse(&a, "tcp://[fe80::1%lo]:80", SS_ADDR_NUMERIC, NULL), 0);
    assert_int_equal(a.u.in6.sin6_scope_id, lo);
    ss_addr_format(&a, buf, sizeof buf);
    assert_string_equal(buf, "tcp://[fe80::1%lo]:80");
    /* a numeric scope names the same interface */
    snprintf(text, sizeof text, "tcp://[fe80::1%%%u]:80", lo);
    assert_int_equal(ss_addr_parse(&a, text, 0, NULL), 0);
    assert_int_equal(a.u.in6.sin6_scope_id, lo);
    ss_addr_format(&a, buf, sizeof buf);
    assert_string_equal(buf, "tcp://[fe80::1%lo]:80");
    /* an index no interface has still prints as a number */
    assert_int_equal(ss_addr_parse(&a, "tcp://[fe80::1%4000000000]:1", 0, NULL), 0);
    ss_addr_format(&a, buf, sizeof buf);
    assert_string_equal(buf, "tcp://[fe80::1%4000000000]:1");
    assert_int_equal(ss_addr_parse(&a, "tcp://[fe80::1%99999999999]:1", 0, NULL), SS_EBADADDR);
}

static void localhost_resolves(void **state)
{
    (void)state;
    tu_alarm(30);
    ss_addr all[16], first;
    ss_error err = {0};
    int n = ss_addr_resolve("tcp://localhost:80", 0, all, ARRAY_LEN(all), &err);
    if (n < 0)
        fail_msg("resolve localhost: %s", err.msg);
    assert_true(n >= 1);
    for (int i = 0; i < n; i++) {
        assert_int_equal(all[i].kind, SS_ADDR_TCP);
        assert_int_equal(ss_addr_port(&all[i]), 80);
        assert_true(ss_addr_is_loopback(&all[i]));
        for (int j = 0; j < i; j++)
            assert_false(same_bytes(&all[i], &all[j])); /* no duplicates */
    }
    /* parse takes the first; max bounds the count */
    assert_int_equal(ss_addr_parse(&first, "localhost:80", 0, NULL), 0);
    assert_true(same_bytes(&first, &all[0]));
    assert_int_equal(ss_addr_resolve("tcp://localhost:80", 0, all, 1, NULL), 1);
    assert_int_equal(ss_addr_resolve("udp://localhost:53", 0, all, ARRAY_LEN(all), NULL), n);
    assert_int_equal(all[0].kind, SS_ADDR_UDP);
    /* a numeric address resolves to itself, once */
    assert_int_equal(ss_addr_resolve("tcp://[::1]:1", 0, all, ARRAY_LEN(all), NULL), 1);
    assert_int_equal(ss_addr_resolve("unix:@x", 0, all, ARRAY_LEN(all), NULL), 1);
    assert_int_equal(ss_addr_resolve("unix:@x", 0, all, 0, &err), SS_EUSAGE);
    assert_int_equal(ss_addr_resolve("tcp://[::1", 0, all, ARRAY_LEN(all), &err), SS_EBADADDR);
    tu_alarm(60); /* back to the whole-file guard */
}

static void a_name_that_does_not_resolve(void **state)
{
    (void)state;
    tu_alarm(30);
    ss_addr a;
    ss_error err = {0};
    assert_int_equal(ss_addr_parse(&a, "tcp://" NORESOLVE_HOST ":80", 0, &err), SS_ENORESOLVE);
    assert_int_equal(err.code, SS_ENORESOLVE);
    assert_int_equal(strncmp(err.msg, "cannot resolve '" NORESOLVE_HOST "': ",
                             strlen("cannot resolve '" NORESOLVE_HOST "': ")),
                     0);
    assert_true(strlen(err.msg) > strlen("cannot resolve '" NORESOLVE_HOST "': "));
    assert_int_equal(a.kind, SS_ADDR_NONE);
    ss_addr all[4];
    assert_int_equal(ss_addr_resolve(NORESOLVE_HOST ":80", 0, all, 4, NULL), SS_ENORESOLVE);
    tu_alarm(60); /* back to the whole-file guard */
}

static void format_into_small_buffers(void **state)
{
    (void)state;
    ss_addr a;
    const char *text = "tcp://127.0.0.1:41234";
    int want = (int)strlen(text);
    assert_int_equal(ss_addr_parse(&a, text, 0, NULL), 0);

    /* like snprintf: the return value is the length needed */
    assert_int_equal(ss_addr_format(&a, NULL, 0), want);
    char buf[SS_ADDR_STRLEN];
    memset(buf, 'X', sizeof buf);
    assert_int_equal(ss_addr_format(&a, buf, 0), want);
    assert_int_equal(buf[0], 'X'); /* len 0: nothing written */
    assert_int_equal(ss_addr_format(&a, buf, 1), want);
    assert_string_equal(buf, "");
    assert_int_equal(ss_addr_format(&a, buf, 7), want);
    assert_string_equal(buf, "tcp://");
    assert_int_equal(buf[7], 'X'); /* never past len */
    assert_int_equal(ss_addr_format(&a, buf, (size_t)want), want);
    assert_int_equal((int)strlen(buf), want - 1);
    assert_int_equal(ss_addr_format(&a, buf, (size_t)want + 1), want);
    assert_string_equal(buf, text);

    /* what it cannot format */
    ss_addr zero;
    memset(&zero, 0, sizeof zero);
    assert_int_equal(ss_addr_format(&zero, buf, sizeof buf), SS_EBADADDR);
    assert_int_equal(ss_addr_format(NULL, buf, sizeof buf), SS_EBADADDR);
    a.kind = SS_ADDR_UNIX; /* an inet address under a unix kind */
    assert_int_equal(ss_addr_format(&a, buf, sizeof buf), SS_EBADADDR);
}

static void from_sockaddr_checks_family_and_length(void **state)
{
    (void)state;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(7)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ss_addr a;
    char buf[SS_ADDR_STRLEN];
    assert_int_equal(ss_addr_from_sockaddr(&a, SS_ADDR_UDP, (struct sockaddr *)&sin, sizeof sin),
                     0);
    ss_addr_format(&a, buf, sizeof buf);
    assert_string_equal(buf, "udp://127.0.0.1:7");
    /* no kind given: tcp for inet */
    assert_int_equal(ss_addr_from_sockaddr(&a, SS_ADDR_NONE, (struct sockaddr *)&sin, sizeof sin),
                     0);
    assert_int_equal(a.kind, SS_ADDR_TCP);
    assert_int_equal(ss_addr_from_sockaddr(&a, SS_ADDR_UNIX, (struct sockaddr *)&sin, sizeof sin),
                     SS_EBADADDR);
    assert_int_equal(ss_addr_from_sockaddr(&a, SS_ADDR_TCP, (struct sockaddr *)&sin, 4),
                     SS_EBADADDR);
    struct sockaddr other = {.sa_family = AF_APPLETALK};
    assert_int_equal(ss_addr_from_sockaddr(&a, SS_ADDR_TCP, &other, sizeof other), SS_EBADADDR);
    assert_int_equal(ss_addr_from_sockaddr(&a, SS_ADDR_TCP, NULL, 0), SS_EBADADDR);

    /* a v4-mapped peer (dual-stack listener) keeps its form and counts as loopback */
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(9)};
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &sin6.sin6_addr);
    assert_int_equal(ss_addr_from_sockaddr(&a, SS_ADDR_TCP, (struct sockaddr *)&sin6, sizeof sin6),
                     0);
    ss_addr_format(&a, buf, sizeof buf);
    assert_string_equal(buf, "tcp://[::ffff:127.0.0.1]:9");
    assert_true(ss_addr_is_loopback(&a));
    assert_int_equal(ss_addr_port(&a), 9);
}

static void accessors(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        bool loopback;
        int family;
        int port;
    } rows[] = {
        {"tcp://127.0.0.1:1", true, AF_INET, 1},
        {"tcp://127.255.0.9:2", true, AF_INET, 2},
        {"tcp://128.0.0.1:3", false, AF_INET, 3},
        {"tcp://0.0.0.0:4", false, AF_INET, 4},
        {"tcp://10.0.0.1:5", false, AF_INET, 5},
        {"tcp://[::1]:6", true, AF_INET6, 6},
        {"tcp://[::]:7", false, AF_INET6, 7},
        {"tcp://[::ffff:127.1.2.3]:8", true, AF_INET6, 8},
        {"tcp://[::ffff:10.0.0.1]:9", false, AF_INET6, 9},
        {"tcp://[::2]:10", false, AF_INET6, 10},
        {"unix:/x", true, AF_UNIX, -1},
        {"unixgram:@y", true, AF_UNIX, -1},
    };
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        ss_addr a;
        assert_int_equal(ss_addr_parse(&a, rows[i].in, 0, NULL), 0);
        assert_int_equal(ss_addr_is_loopback(&a), rows[i].loopback);
        assert_int_equal(ss_addr_family(&a), rows[i].family);
        assert_int_equal(ss_addr_port(&a), rows[i].port);
    }
    assert_false(ss_addr_is_loopback(NULL));
    assert_int_equal(ss_addr_port(NULL), -1);

    assert_int_equal(ss_addr_socktype(SS_ADDR_TCP), SOCK_STREAM);
    assert_int_equal(ss_addr_socktype(SS_ADDR_UDP), SOCK_DGRAM);
    assert_int_equal(ss_addr_socktype(SS_ADDR_UNIX), SOCK_STREAM);
    assert_int_equal(ss_addr_socktype(SS_ADDR_UNIXGRAM), SOCK_DGRAM);
    assert_int_equal(ss_addr_socktype(SS_ADDR_SEQPACKET), SOCK_SEQPACKET);
    assert_true(ss_addr_socktype(SS_ADDR_NONE) < 0);

    assert_true(ss_addr_is_stream(SS_ADDR_TCP));
    assert_true(ss_addr_is_stream(SS_ADDR_UNIX));
    assert_true(ss_addr_is_stream(SS_ADDR_SEQPACKET));
    assert_false(ss_addr_is_stream(SS_ADDR_UDP));
    assert_false(ss_addr_is_stream(SS_ADDR_UNIXGRAM));
    assert_false(ss_addr_is_stream(SS_ADDR_NONE));

    assert_string_equal(ss_addr_kind_name(SS_ADDR_TCP), "tcp");
    assert_string_equal(ss_addr_kind_name(SS_ADDR_UDP), "udp");
    assert_string_equal(ss_addr_kind_name(SS_ADDR_UNIX), "unix");
    assert_string_equal(ss_addr_kind_name(SS_ADDR_UNIXGRAM), "unixgram");
    assert_string_equal(ss_addr_kind_name(SS_ADDR_SEQPACKET), "seqpacket");
    assert_string_equal(ss_addr_kind_name(SS_ADDR_NONE), "none");
}

static void odd_inputs(void **state)
{
    (void)state;
    ss_addr a;
    ss_error err = {0};
    assert_int_equal(ss_addr_parse(&a, NULL, 0, &err), SS_EBADADDR);
    assert_int_equal(ss_addr_parse(NULL, "tcp://127.0.0.1:1", 0, &err), SS_EUSAGE);

    /* a huge input is quoted in part, and the reason still shows */
    char big[2000];
    memset(big, 'h', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(ss_addr_parse(&a, big, 0, &err), SS_EBADADDR);
    assert_non_null(strstr(err.msg, "...': missing port"));
    assert_true(strlen(err.msg) < SS_ERROR_MSG_MAX - 1);

    /* control characters never reach the message */
    assert_int_equal(ss_addr_parse(&a, "tcp://a\tb:1\r", 0, &err), SS_EBADADDR);
    for (const char *p = err.msg; *p != '\0'; p++)
        assert_true((unsigned char)*p >= 0x20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table_of_cases),
        cmocka_unit_test(round_trips),
        cmocka_unit_test(abstract_names_are_length_exact),
        cmocka_unit_test(kernel_names_format),
        cmocka_unit_test(unnamed_unix_peers),
        cmocka_unit_test(unix_path_limits),
        cmocka_unit_test(a_path_socket_reports_what_we_bound),
        cmocka_unit_test(ipv4_loopback_binds),
        cmocka_unit_test(ipv6_loopback_binds),
        cmocka_unit_test(passive_and_active_port_only),
        cmocka_unit_test(scope_ids),
        cmocka_unit_test(localhost_resolves),
        cmocka_unit_test(a_name_that_does_not_resolve),
        cmocka_unit_test(format_into_small_buffers),
        cmocka_unit_test(from_sockaddr_checks_family_and_length),
        cmocka_unit_test(accessors),
        cmocka_unit_test(odd_inputs),
    };
    tu_alarm(60);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
