/* SPDX-License-Identifier: MIT */
/* engine.c — the epoll load generator behind `sockserve bench`.
 *
 * It must cost less per message than the servers it measures, so the hot path
 * is: one read per readiness (level-triggered epoll reports again if more is
 * waiting), a memcmp against a precomputed pattern, one clock read, and one
 * send carrying every message that the read completed. No allocation after
 * start-up; the send side never copies (it sends straight out of the pattern).
 *
 * The byte pattern: a fixed pseudo-random sequence with period PERIOD (a prime,
 * so message sizes never line up with it); connection c starts at offset
 * c % PERIOD of it, so a server that mixes up connections, drops, repeats or
 * flips bytes is caught at the first wrong byte.
 *
 * Warm-up: the clock starts only when every connection has had its first echo
 * back (a server that starves its accept loop would otherwise look better or
 * worse at random); messages are counted if they complete inside the window,
 * latencies if they were also sent inside it.
 */
#include "bench/engine.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PERIOD 251u
#define RECV_BUF (256u << 10)
#define MAX_EVENTS 1024

enum conn_state { CONN_CONNECTING, CONN_HANDSHAKE, CONN_OPEN };

typedef struct conn {
    int fd;
    uint8_t state;
    bool warmed;      /* has had its first echo back */
    bool want_out;    /* EPOLLOUT registered (a send was partial) */
    uint32_t phase;   /* where this connection starts in the pattern */
    uint64_t queued;  /* stream bytes decided to send */
    uint64_t sent;    /* stream bytes handed to the kernel */
    uint64_t recvd;   /* stream bytes echoed back and checked */
    uint64_t *stamps; /* send time of message k at [k % depth] */
    ss_transport t;   /* TLS: the connection (owns fd); t.ops NULL when plain */
} conn;

typedef struct engine {
    const bench_opts *o;
    bench_result *r;
    int ep;
    conn *conns;
    uint64_t *stamps;
    uint8_t *pattern; /* PERIOD + window bytes: any window starts anywhere in a period */
    uint8_t *rbuf;
    size_t rbuf_len;
    uint64_t window; /* depth * size */
    long warmed;
    bool measuring;
    uint64_t t_start, t0; /* ns: first connect; clock start */
    uint64_t cpu0;        /* server clock ticks at t0 */
    double self_cpu0;     /* our own CPU seconds at t0 */
    char addr_text[SS_ADDR_STRLEN];
} engine;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int fail(engine *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(engine *e, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->r->error, sizeof e->r->error, fmt, ap);
    va_end(ap);
    e->r->errors = 1;
    return code;
}

/* utime + stime of every thread of a process, in clock ticks; -1 if unreadable. */
static long long server_ticks(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* The command name may contain spaces and parentheses: count fields after
     * the last ')'. utime and stime are fields 14 and 15 (state is field 3). */
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    unsigned long long utime, stime;
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
               &stime) != 2)
        return -1;
    return (long long)(utime + stime);
}

static void fill_pattern(uint8_t *p, size_t len)
{
    /* A fixed xorshift sequence: the same on every run, so failures repeat. */
    uint32_t x = 2463534242u;
    uint8_t period[PERIOD];
    for (unsigned i = 0; i < PERIOD; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        period[i] = (uint8_t)(x >> 11);
    }
    for (size_t i = 0; i < len; i++)
        p[i] = period[i % PERIOD];
}

static const uint8_t *pattern_at(const engine *e, const conn *c, uint64_t off)
{
    return e->pattern + (c->phase + off) % PERIOD;
}

static int set_events(engine *e, conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.u64 = (uint64_t)(c - e->conns)};
    if (epoll_ctl(e->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        return fail(e, -errno, "epoll_ctl: %s", strerror(errno));
    return 0;
}

/* Hand the queued bytes to the kernel, straight from the pattern. */
static int flush(engine *e, conn *c)
{
    while (c->sent < c->queued) {
        ssize_t n;
        if (c->t.ops != NULL) {
            n = c->t.ops->write(&c->t, pattern_at(e, c, c->sent), (size_t)(c->queued - c->sent));
            if (n < 0) {
                errno = n == -EAGAIN ? EAGAIN : (int)-n;
                if (n <= -10000) /* an SS_E code, not an errno */
                    return fail(e, (int)n, "connection %ld: TLS send: %s", (long)(c - e->conns),
                                ss_strerror((int)n));
                n = -1;
            }
        } else {
            n = send(c->fd, pattern_at(e, c, c->sent), (size_t)(c->queued - c->sent),
                     MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        if (n > 0) {
            c->sent += (uint64_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->want_out) {
                c->want_out = true;
                return set_events(e, c, EPOLLIN | EPOLLOUT);
            }
            return 0;
        }
        return fail(e, n < 0 ? -errno : SS_ECLOSED, "connection %ld: send: %s",
                    (long)(c - e->conns), n < 0 ? strerror(errno) : "closed");
    }
    if (c->want_out) {
        c->want_out = false;
        return set_events(e, c, EPOLLIN);
    }
    return 0;
}

/* Queue `count` new messages stamped `t` and send them in one call. */
static int send_messages(engine *e, conn *c, uint64_t count, uint64_t t)
{
    uint64_t k = c->queued / e->o->size;
    for (uint64_t i = 0; i < count; i++)
        c->stamps[(k + i) % (uint64_t)e->o->depth] = t;
    c->queued += count * e->o->size;
    return flush(e, c);
}

static double self_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void start_clock(engine *e, uint64_t t)
{
    e->measuring = true;
    e->t0 = t;
    e->self_cpu0 = self_cpu();
    e->r->warmup = (double)(t - e->t_start) / 1e9;
    e->r->messages = 0;
    e->r->bytes = 0;
    bench_hist_reset(&e->r->hist);
    if (e->o->server_pid > 0) {
        long long ticks = server_ticks(e->o->server_pid);
        e->cpu0 = ticks < 0 ? UINT64_MAX : (uint64_t)ticks;
    }
}

static int on_readable(engine *e, conn *c)
{
    ssize_t n;
    if (c->t.ops != NULL) {
        n = c->t.ops->read(&c->t, e->rbuf, e->rbuf_len);
        if (n == -EAGAIN)
            return 0;
        if (n < 0) {
            if (n <= -10000)
                return fail(e, (int)n, "connection %ld: TLS: %s", (long)(c - e->conns),
                            ss_strerror((int)n));
            errno = (int)-n;
            n = -1;
        }
    } else {
        n = recv(c->fd, e->rbuf, e->rbuf_len, MSG_DONTWAIT);
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return 0;
        return fail(e, -errno, "connection %ld: the server reset it after %llu echoed bytes: %s",
                    (long)(c - e->conns), (unsigned long long)c->recvd, strerror(errno));
    }
    if (n == 0)
        return fail(e, SS_ECLOSED, "connection %ld: the server closed it after %llu echoed bytes",
                    (long)(c - e->conns), (unsigned long long)c->recvd);
    if ((uint64_t)n > c->sent - c->recvd)
        return fail(e, SS_EPROTO,
                    "connection %ld: the server sent %zd bytes with only %llu outstanding",
                    (long)(c - e->conns), n, (unsigned long long)(c->sent - c->recvd));
    const uint8_t *want = pattern_at(e, c, c->recvd);
    if (memcmp(e->rbuf, want, (size_t)n) != 0) {
        size_t i = 0;
        while (e->rbuf[i] == want[i])
            i++;
        return fail(e, SS_EPROTO,
                    "connection %ld: echoed byte %llu differs (got 0x%02x, sent 0x%02x)",
                    (long)(c - e->conns), (unsigned long long)(c->recvd + i), e->rbuf[i],
                    want[i]);
    }
    uint64_t size = e->o->size;
    uint64_t first = c->recvd / size;
    c->recvd += (uint64_t)n;
    uint64_t done = c->recvd / size - first; /* messages this read completed */
    if (done == 0)
        return 0;

    uint64_t t = now_ns();
    if (e->measuring) {
        e->r->messages += done;
        e->r->bytes += done * size;
        for (uint64_t k = first; k < first + done; k++) {
            uint64_t sent_at = c->stamps[k % (uint64_t)e->o->depth];
            if (sent_at >= e->t0)
                bench_hist_record(&e->r->hist, t - sent_at);
        }
    }
    if (!c->warmed) {
        c->warmed = true;
        if (++e->warmed == e->o->conns)
            start_clock(e, t);
    }
    if (e->o->idle && c->warmed)
        return 0;
    return send_messages(e, c, done, t);
}

static int start_sending(engine *e, conn *c)
{
    c->state = CONN_OPEN;
    c->want_out = true; /* EPOLLOUT is on from the connect; flush turns it off */
    uint64_t depth = e->o->idle ? 1 : (uint64_t)e->o->depth;
    return send_messages(e, c, depth, now_ns());
}

/* One TLS handshake step; the messages start once it is done. */
static int handshake(engine *e, conn *c)
{
    ss_error err = {0};
    int rc = ss_tls_handshake_step(&c->t, &err);
    if (rc == -EAGAIN) {
        short ev = c->t.ops->wait_events(&c->t, POLLIN);
        return set_events(e, c, (ev & POLLOUT) ? EPOLLOUT : EPOLLIN);
    }
    if (rc < 0)
        return fail(e, rc, "connection %ld: %s", (long)(c - e->conns), err.msg);
    ss_tls_info info;
    if (ss_tls_info_get(&c->t, &info) == 0 && info.resumed)
        e->r->resumed++;
    return start_sending(e, c);
}

static int on_connected(engine *e, conn *c)
{
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        soerr = errno;
    if (soerr != 0)
        return fail(e, -soerr, "cannot connect to %s: %s", e->addr_text, strerror(soerr));
    if (e->o->tls != NULL) {
        ss_error err = {0};
        int rc = ss_tls_transport_new(&c->t, e->o->tls, c->fd, e->o->server_name, &err);
        if (rc < 0)
            return fail(e, rc, "connection %ld: %s", (long)(c - e->conns), err.msg);
        c->state = CONN_HANDSHAKE;
        return handshake(e, c);
    }
    return start_sending(e, c);
}

static int open_conn(engine *e, conn *c)
{
    const ss_addr *a = &e->o->addr;
    bool is_unix = a->u.sa.sa_family == AF_UNIX;
    /* Unix stream sockets return EAGAIN, not EINPROGRESS, on a full backlog:
     * connect those blocking (bounded by SO_SNDTIMEO), TCP non-blocking. */
    int fd = socket(a->u.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | (is_unix ? 0 : SOCK_NONBLOCK), 0);
    if (fd < 0)
        return fail(e, -errno, "socket: %s", strerror(errno));
    c->fd = fd;
    if (!is_unix) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    } else {
        struct timeval tv = {.tv_sec = (time_t)e->o->warmup_max,
                             .tv_usec = (suseconds_t)((e->o->warmup_max -
                                                       (double)(time_t)e->o->warmup_max) * 1e6)};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    int rc;
    do
        rc = connect(fd, &a->u.sa, a->len);
    while (rc < 0 && errno == EINTR);
    if (rc < 0 && errno != EINPROGRESS)
        return fail(e, -errno, "cannot connect to %s: %s", e->addr_text,
                    errno == EAGAIN ? "timed out (backlog full)" : strerror(errno));
    if (is_unix && fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
        return fail(e, -errno, "fcntl: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT,
                             .data.u64 = (uint64_t)(c - e->conns)};
    if (epoll_ctl(e->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        return fail(e, -errno, "epoll_ctl: %s", strerror(errno));
    c->state = CONN_CONNECTING;
    return 0;
}

/* Room for every connection's descriptor, plus a few for stdio and epoll. */
static int raise_fd_limit(engine *e, long conns)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 0;
    rlim_t need = (rlim_t)conns + 32;
    if (rl.rlim_cur >= need)
        return 0;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
        return fail(e, -EMFILE, "%ld connections need %llu descriptors, the hard limit is %llu",
                    conns, (unsigned long long)need, (unsigned long long)rl.rlim_max);
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        return fail(e, -errno, "setrlimit(RLIMIT_NOFILE, %llu): %s",
                    (unsigned long long)need, strerror(errno));
    return 0;
}

static void report(engine *e, bench_progress_fn progress, void *arg, uint64_t t,
                   uint64_t *last_t, uint64_t *last_msgs)
{
    bench_progress p = {
        .warming = !e->measuring,
        .warmed = e->warmed,
        .elapsed = (double)(t - (e->measuring ? e->t0 : e->t_start)) / 1e9,
        .messages = e->r->messages,
        .interval_rate = t > *last_t ? (double)(e->r->messages - *last_msgs) * 1e9 /
                                           (double)(t - *last_t)
                                     : 0,
        .p99_ns = bench_hist_percentile(&e->r->hist, 99.0),
    };
    progress(&p, arg);
    *last_t = t;
    *last_msgs = e->r->messages;
}

static int loop(engine *e, bench_progress_fn progress, bench_warm_fn warm, void *arg)
{
    struct epoll_event events[MAX_EVENTS];
    const uint64_t warm_deadline = e->t_start + (uint64_t)(e->o->warmup_max * 1e9);
    const uint64_t window = (uint64_t)(e->o->duration * 1e9);
    uint64_t next_tick = e->t_start + 1000000000u;
    uint64_t last_t = e->t_start, last_msgs = 0;
    bool announced = false;

    for (;;) {
        uint64_t t = now_ns();
        if (e->measuring && !announced) {
            announced = true;
            if (warm)
                warm(e->o->conns, e->r->warmup, arg);
            last_t = e->t0;
            last_msgs = 0;
            next_tick = e->t0 + 1000000000u;
        }
        uint64_t deadline = e->measuring ? e->t0 + window : warm_deadline;
        if (t >= deadline) {
            if (e->measuring) {
                e->r->seconds = (double)(t - e->t0) / 1e9;
                e->r->client_cpu = self_cpu() - e->self_cpu0;
                return 0;
            }
            return fail(e, SS_ETIMEOUT,
                        "warm-up: only %ld of %ld connections had an echo within %.1f s",
                        e->warmed, e->o->conns, e->o->warmup_max);
        }
        if (progress && t >= next_tick) {
            report(e, progress, arg, t, &last_t, &last_msgs);
            next_tick += 1000000000u;
            if (next_tick <= t)
                next_tick = t + 1000000000u;
        }
        uint64_t until = deadline;
        if (progress && next_tick < until)
            until = next_tick;
        int timeout_ms = (int)((until - t + 999999) / 1000000);
        int n = epoll_wait(e->ep, events, MAX_EVENTS, timeout_ms);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return fail(e, -errno, "epoll_wait: %s", strerror(errno));
        }
        for (int i = 0; i < n; i++) {
            conn *c = &e->conns[events[i].data.u64];
            uint32_t ev = events[i].events;
            int rc = 0;
            if (c->state == CONN_CONNECTING) {
                rc = on_connected(e, c);
            } else if (c->state == CONN_HANDSHAKE) {
                rc = handshake(e, c);
            } else {
                if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
                    rc = on_readable(e, c);
                if (rc == 0 && (ev & EPOLLOUT))
                    rc = flush(e, c);
            }
            if (rc < 0)
                return rc;
        }
    }
}

static int setup(engine *e)
{
    const bench_opts *o = e->o;
    e->window = (uint64_t)o->depth * o->size;
    e->rbuf_len = RECV_BUF;
    size_t plen = PERIOD + (e->window > e->rbuf_len ? e->window : e->rbuf_len);
    e->conns = calloc((size_t)o->conns, sizeof *e->conns);
    e->stamps = calloc((size_t)o->conns * (size_t)o->depth, sizeof *e->stamps);
    e->pattern = malloc(plen);
    e->rbuf = malloc(e->rbuf_len);
    if (!e->conns || !e->stamps || !e->pattern || !e->rbuf)
        return fail(e, -ENOMEM, "out of memory for %ld connections", o->conns);
    fill_pattern(e->pattern, plen);
    for (long i = 0; i < o->conns; i++) {
        e->conns[i].fd = -1;
        e->conns[i].phase = (uint32_t)(i % PERIOD);
        e->conns[i].stamps = e->stamps + (size_t)i * (size_t)o->depth;
    }
    e->ep = epoll_create1(EPOLL_CLOEXEC);
    if (e->ep < 0)
        return fail(e, -errno, "epoll_create1: %s", strerror(errno));
    return 0;
}

static void teardown(engine *e)
{
    if (e->conns)
        for (long i = 0; i < e->o->conns; i++) {
            if (e->conns[i].t.ops != NULL)
                e->conns[i].t.ops->close(&e->conns[i].t); /* closes the fd too */
            else if (e->conns[i].fd >= 0)
                close(e->conns[i].fd);
        }
    if (e->ep >= 0)
        close(e->ep);
    free(e->conns);
    free(e->stamps);
    free(e->pattern);
    free(e->rbuf);
}

/* --resume: one full handshake and an echo before the clock, so the context
 * holds a session ticket that every connection then offers. */
static int prime_session(engine *e)
{
    char text[SS_ADDR_STRLEN];
    if (ss_addr_format(&e->o->addr, text, sizeof text) < 0)
        return fail(e, SS_EBADADDR, "cannot format the address");
    ss_transport t;
    ss_error err = {0};
    int rc = ss_tls_dial(&t, text, e->o->tls, e->o->server_name, e->o->warmup_max, &err);
    if (rc < 0)
        return fail(e, rc, "%s", err.msg);
    ss_stream *s;
    ss_stream_opts so = {.timeout = e->o->warmup_max};
    unsigned char b = 'x';
    rc = ss_stream_new(&s, &t, &so);
    if (rc == 0 && (rc = ss_stream_write(s, &b, 1)) == 0 && (rc = ss_stream_flush(s)) == 0)
        rc = ss_stream_read_exact(s, &b, 1, NULL);
    ss_stream_free(s);
    t.ops->close(&t);
    return rc < 0 ? fail(e, rc, "--resume: the first connection failed: %s", ss_strerror(rc)) : 0;
}

int bench_run(const bench_opts *o, bench_result *r, bench_progress_fn progress,
              bench_warm_fn warm, void *arg)
{
    engine e = {.o = o, .r = r, .ep = -1};
    memset(r, 0, sizeof *r);
    bench_hist_reset(&r->hist);
    r->server_cpu = -1;
    r->conns = o->conns;
    if (o->conns < 1 || o->depth < 1 || o->size < 1 ||
        (uint64_t)o->depth * o->size > BENCH_MAX_WINDOW ||
        (o->addr.kind != SS_ADDR_TCP && o->addr.kind != SS_ADDR_UNIX))
        return fail(&e, SS_EUSAGE, "bad benchmark parameters (a tcp or unix stream address)");
    if (ss_addr_format(&o->addr, e.addr_text, sizeof e.addr_text) < 0)
        snprintf(e.addr_text, sizeof e.addr_text, "the server");

    int rc = raise_fd_limit(&e, o->conns);
    if (rc == 0)
        rc = setup(&e);
    if (rc == 0 && o->tls != NULL && o->resume)
        rc = prime_session(&e);
    e.t_start = now_ns();
    for (long i = 0; rc == 0 && i < o->conns; i++)
        rc = open_conn(&e, &e.conns[i]);
    if (rc == 0)
        rc = loop(&e, progress, warm, arg);
    if (rc == 0 && o->server_pid > 0 && e.cpu0 != UINT64_MAX) {
        long long ticks = server_ticks(o->server_pid);
        long hz = sysconf(_SC_CLK_TCK);
        if (ticks >= 0 && hz > 0)
            r->server_cpu = (double)((uint64_t)ticks - e.cpu0) / (double)hz;
    }
    teardown(&e);
    return rc;
}
