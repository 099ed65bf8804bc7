/* SPDX-License-Identifier: MIT */
/* server_test.h — helpers shared by the test_server_*.c programs: a server
 * running serve_forever on a thread, an echo handler, clients of every
 * socket kind, a log collector. Header-only (static) so each test program
 * stays one file. */
#ifndef SS_SERVER_TEST_H
#define SS_SERVER_TEST_H

#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Generous: sanitized builds run several times slower. */
#define ST_IO_TIMEOUT 10.0

/* ---- the addresses every model is tried on -------------------------------- */

typedef struct st_kind {
    const char *label;
    const char *scheme; /* "tcp://127.0.0.1:0", or a prefix for unix kinds */
    bool unix_path;     /* scheme + fresh path */
    bool unix_abstract; /* scheme + fresh @name */
    bool dgram;
} st_kind;

static const st_kind st_kinds[] = {
    {"tcp4", "tcp://127.0.0.1:0", false, false, false},
    {"tcp6", "tcp://[::1]:0", false, false, false},
    {"tcp-dual", "tcp://[::]:0", false, false, false},
    {"udp4", "udp://127.0.0.1:0", false, false, true},
    {"udp6", "udp://[::1]:0", false, false, true},
    {"unix-path", "unix:", true, false, false},
    {"unix-abstract", "unix:", false, true, false},
    {"unixgram-path", "unixgram:", true, false, true},
    {"unixgram-abstract", "unixgram:", false, true, true},
    {"seqpacket-path", "seqpacket:", true, false, false},
    {"seqpacket-abstract", "seqpacket:", false, true, false},
};
#define ST_NKINDS (sizeof st_kinds / sizeof st_kinds[0])

static inline void st_address(const st_kind *k, char *buf, size_t len)
{
    static int n;
    char leaf[64];
    if (k->unix_path) {
        snprintf(leaf, sizeof leaf, "s%d-%d.sock", (int)getpid(), n++);
        char path[200];
        tu_temp_path(path, sizeof path, leaf);
        snprintf(buf, len, "%s%s", k->scheme, path);
    } else if (k->unix_abstract) {
        char name[100];
        tu_abstract_name(name, sizeof name);
        snprintf(buf, len, "%s%s", k->scheme, name);
    } else {
        snprintf(buf, len, "%s", k->scheme);
    }
}

/* ---- a log collector (thread-safe; the library logs from any thread) ----- */

#define ST_LOG_MAX 256
typedef struct st_log {
    pthread_mutex_t lock;
    int n;
    char lines[ST_LOG_MAX][160];
    ss_log_level levels[ST_LOG_MAX];
} st_log;

static inline void st_log_init(st_log *l)
{
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->lock, NULL);
}

static inline void st_log_fn(void *data, ss_log_level level, const char *line)
{
    st_log *l = data;
    pthread_mutex_lock(&l->lock);
    if (l->n < ST_LOG_MAX) {
        snprintf(l->lines[l->n], sizeof l->lines[0], "%s", line);
        l->levels[l->n] = level;
        l->n++;
    }
    pthread_mutex_unlock(&l->lock);
}

/* Lines at `level` (or any level when < 0) that contain `needle`. */
static inline int st_log_count(st_log *l, int level, const char *needle)
{
    int c = 0;
    pthread_mutex_lock(&l->lock);
    for (int i = 0; i < l->n; i++)
        if ((level < 0 || (int)l->levels[i] == level) &&
            strstr(l->lines[i], needle) != NULL)
            c++;
    pthread_mutex_unlock(&l->lock);
    return c;
}

/* ---- handlers ------------------------------------------------------------ */

/* Echo each line (stream) or each packet (datagram) back. */
static inline int st_echo_handle(ss_request *req)
{
    if (req->stream == NULL)
        return ss_request_reply(req, req->packet, req->packet_len);
    char line[1024];
    for (;;) {
        ssize_t n = ss_stream_readline(req->stream, line, sizeof line);
        if (n == 0)
            return 0;
        if (n < 0)
            return (int)n;
        int rc = ss_request_reply(req, line, (size_t)n);
        if (rc < 0)
            return rc;
    }
}

static const ss_handler st_echo = {NULL, st_echo_handle, NULL, NULL};

/* ---- a server on a thread -------------------------------------------------- */

typedef struct st_server {
    ss_server *srv;
    pthread_t thread;
    int rc;
    char addr[SS_ADDR_STRLEN];
} st_server;

static inline void *st_serve(void *arg)
{
    st_server *s = arg;
    s->rc = ss_server_serve_forever(s->srv);
    return NULL;
}

/* Make a server on `address` and run serve_forever on a thread. */
static inline void st_start(st_server *s, const char *address,
                            const ss_handler *h, const ss_server_opts *o)
{
    ss_error err = {0};
    memset(s, 0, sizeof *s);
    int rc = ss_server_new(&s->srv, address, h, o, &err);
    if (rc != 0)
        fail_msg("ss_server_new(%s): %s", address, err.msg);
    ss_addr_format(ss_server_address(s->srv), s->addr, sizeof s->addr);
    assert_int_equal(pthread_create(&s->thread, NULL, st_serve, s), 0);
}

/* shutdown (serve_forever has returned when it does), then close + free. */
static inline void st_stop(st_server *s)
{
    ss_server_shutdown(s->srv);
    assert_int_equal(pthread_join(s->thread, NULL), 0);
    assert_int_equal(s->rc, 0);
    ss_server_free(s->srv);
    s->srv = NULL;
}

/* ---- clients ---------------------------------------------------------------- */

/* Connect to a server's address; datagram clients bind a name of their own
 * (unixgram: autobind) so the server can answer. */
static inline int st_connect(const char *address, ss_sock *out)
{
    ss_error err = {0};
    if (strncmp(address, "unixgram:", 9) == 0) {
        ss_addr a;
        int rc = ss_addr_parse(&a, address, 0, &err);
        if (rc < 0)
            return rc;
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un self = {.sun_family = AF_UNIX};
        if (fd < 0 || bind(fd, (struct sockaddr *)&self, sizeof(sa_family_t)) < 0 ||
            connect(fd, &a.u.sa, a.len) < 0) {
            rc = -errno;
            if (fd >= 0)
                close(fd);
            return rc;
        }
        ss_sock s = {fd, SS_ADDR_UNIXGRAM, AF_UNIX, SS_TIMEOUT_NONE};
        *out = s;
    } else {
        /* a dual-stack server is reached over IPv4 too */
        char text[SS_ADDR_STRLEN + 16]; /* the address, with ::'s prefix changed */
        if (strncmp(address, "tcp://[::]:", 11) == 0)
            snprintf(text, sizeof text, "tcp://127.0.0.1:%s", address + 11);
        else
            snprintf(text, sizeof text, "%s", address);
        int rc = ss_dial(out, text, ST_IO_TIMEOUT, &err);
        if (rc < 0)
            return rc;
    }
    return ss_sock_settimeout(out, ST_IO_TIMEOUT);
}

/* Send `msg` and read the echo back (one line or one packet). */
static inline int st_roundtrip(ss_sock *s, const char *msg)
{
    size_t len = strlen(msg);
    int rc = ss_sock_sendall(s, msg, len);
    if (rc < 0)
        return rc;
    char buf[1024];
    size_t got = 0;
    while (got < len) {
        ssize_t n = ss_sock_recv(s, buf + got, sizeof buf - got, 0);
        if (n <= 0)
            return n == 0 ? SS_EEOF : (int)n;
        got += (size_t)n;
        if (s->kind == SS_ADDR_UDP || s->kind == SS_ADDR_UNIXGRAM)
            break;
    }
    if (got != len || memcmp(buf, msg, len) != 0)
        return SS_EPROTO;
    return 0;
}

/* Assert that `expr` becomes true within `seconds` (polled every 10 ms). */
#define ST_ASSERT_EVENTUALLY(expr, seconds)                                    \
    do {                                                                       \
        int i_ = 0;                                                            \
        while (!(expr) && i_++ < (int)((seconds) * 100))                       \
            usleep(10000);                                                     \
        assert_true(expr);                                                     \
    } while (0)

#endif
