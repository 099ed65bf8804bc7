/* SPDX-License-Identifier: MIT */
/*
 * idle_clients.c — the load side of bench/c100k and of the 10,000-connection
 * test: open N TCP connections to an echo server, have each one answered
 * once, then hold them all open and silent until told to close them.
 *
 *   idle_clients --to 127.0.0.1:PORT --conns N [--from A,B,...] [--procs P]
 *                [--window W] [--timeout SEC]
 *
 * Ports: one destination gives each source address only the local port range
 * (32768-60999: 28,232 ports), so 100,000 connections need four sources.
 * Connection i binds --from[i % count] with IP_BIND_ADDRESS_NO_PORT (the
 * port is chosen at connect, per 4-tuple, not reserved at bind).
 *
 * Descriptors: P worker processes (fork) share the connections; each raises
 * its soft RLIMIT_NOFILE to the hard limit and says so plainly when even that
 * is too low for its share.
 *
 * Each worker keeps at most W connections between connect() and their echo:
 * the server's listen backlog (sockserve: 1024) is not flooded, so no SYN is
 * dropped and retried a second later. A connection sends one 17-byte line
 * naming its index ("c100k 0000012345\n") and must get exactly those bytes
 * back. Per connection the worker keeps its descriptor and a byte count: a
 * few bytes, so the client side of 100,000 connections stays small too.
 *
 * stdout, one line each: "ready N" once every connection was answered; then,
 * after a line or end of file on stdin, "closed N dropped D": D connections
 * the server had closed or reset while they were held (a non-blocking peek
 * before each close sees it). Exit 0 when D is 0, 1 on any failure (with
 * "idle_clients: why" on stderr).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2 */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define NAME "idle_clients"
#define MAX_SOURCES 64
#define MAX_PROCS 64
#define MSG_LEN 17 /* "c100k %010ld\n" */
#define EVENTS 256

static struct sockaddr_in to;
static struct in_addr sources[MAX_SOURCES];
static int nsources;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(NAME ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void message_of(long index, char out[MSG_LEN + 1])
{
    snprintf(out, MSG_LEN + 1, "c100k %010ld\n", index);
}

/* A worker's share: connections [first, first + n). */
typedef struct worker {
    long first, n;
    int *fd;            /* -1 before connect */
    unsigned char *got; /* echo bytes received so far */
    int ep;
} worker;

static void raise_nofile(long need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        die("getrlimit: %s", strerror(errno));
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur < need)
        die("a worker needs %ld descriptors but RLIMIT_NOFILE's hard limit is %llu: raise it "
            "(as root: ulimit -Hn) or use more --procs",
            need, (unsigned long long)rl.rlim_max);
}

static void open_one(worker *w, long i)
{
    long index = w->first + i;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket (connection %ld): %s", index, strerror(errno));
    int one = 1;
    (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in from = {.sin_family = AF_INET, .sin_addr = sources[index % nsources]};
    if (bind(fd, (struct sockaddr *)&from, sizeof from) < 0)
        die("bind %s (connection %ld): %s", inet_ntoa(from.sin_addr), index, strerror(errno));
    if (connect(fd, (struct sockaddr *)&to, sizeof to) < 0 && errno != EINPROGRESS) {
        if (errno == EADDRNOTAVAIL)
            die("connect from %s (connection %ld): no local port left: use more --from "
                "addresses",
                inet_ntoa(from.sin_addr), index);
        die("connect (connection %ld): %s", index, strerror(errno));
    }
    struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = (uint64_t)i};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    w->fd[i] = fd;
}

/* One readiness of connection i. Returns true once it has its whole echo. */
static bool step(worker *w, long i, uint32_t events)
{
    long index = w->first + i;
    int fd = w->fd[i];
    char msg[MSG_LEN + 1];
    message_of(index, msg);
    if (w->got[i] == 0 && (events & EPOLLOUT)) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0)
            die("connect (connection %ld): %s", index, strerror(err));
        /* a fresh socket takes 17 bytes whole */
        if (send(fd, msg, MSG_LEN, MSG_NOSIGNAL) != MSG_LEN)
            die("send (connection %ld): %s", index, strerror(errno));
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
        if (epoll_ctl(w->ep, EPOLL_CTL_MOD, fd, &ev) < 0)
            die("epoll_ctl: %s", strerror(errno));
        w->got[i] = 1; /* sent: from here got[i] - 1 bytes are back */
        return false;
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return false;
    char buf[MSG_LEN + 1];
    size_t have = (size_t)w->got[i] - 1;
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return false;
    if (n < 0)
        die("recv (connection %ld): %s", index, strerror(errno));
    if (n == 0)
        die("the server closed connection %ld before answering it", index);
    if (have + (size_t)n > MSG_LEN || memcmp(buf, msg + have, (size_t)n) != 0)
        die("connection %ld: the echo differs from what was sent", index);
    w->got[i] = (unsigned char)(w->got[i] + n);
    if (have + (size_t)n < MSG_LEN)
        return false;
    epoll_ctl(w->ep, EPOLL_CTL_DEL, fd, NULL); /* held from now on, unwatched */
    return true;
}

/* Open and have answered every connection of w, at most `window` unanswered
 * at a time, within `deadline`. */
static void warm(worker *w, long window, double deadline)
{
    struct epoll_event evs[EVENTS];
    long next = 0, answered = 0, inflight = 0;
    while (answered < w->n) {
        while (inflight < window && next < w->n) {
            open_one(w, next++);
            inflight++;
        }
        int k = epoll_wait(w->ep, evs, EVENTS, 100);
        if (k < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int j = 0; j < k; j++) {
            if (step(w, (long)evs[j].data.u64, evs[j].events)) {
                answered++;
                inflight--;
            }
        }
        if (now_s() > deadline)
            die("only %ld of %ld connections answered in time (worker from %ld)", answered, w->n,
                w->first);
    }
}

/* Close every connection; count those the server dropped meanwhile. */
static long close_all(worker *w)
{
    long dropped = 0;
    for (long i = 0; i < w->n; i++) {
        char c;
        ssize_t n = recv(w->fd[i], &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (!(n < 0 && errno == EAGAIN))
            dropped++; /* end of file, a reset, or bytes nobody sent for */
        close(w->fd[i]);
    }
    return dropped;
}

/* A worker process: report on `up`, wait for the word on `down`. */
static void run_worker(worker *w, long window, double deadline, int up, int down)
{
    raise_nofile(w->n + 16);
    w->fd = malloc((size_t)w->n * sizeof *w->fd);
    w->got = calloc((size_t)w->n, 1);
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    if (w->fd == NULL || w->got == NULL || w->ep < 0)
        die("out of memory");
    warm(w, window, deadline);
    if (write(up, "r", 1) != 1)
        die("parent gone");
    char c;
    while (read(down, &c, 1) < 0 && errno == EINTR)
        ; /* a byte or end of file: close */
    long dropped = close_all(w);
    if (write(up, &dropped, sizeof dropped) != sizeof dropped)
        die("parent gone");
    exit(0);
}

static void parse_sources(char *list)
{
    for (char *s = strtok(list, ","); s != NULL; s = strtok(NULL, ",")) {
        if (nsources == MAX_SOURCES)
            die("--from: at most %d addresses", MAX_SOURCES);
        if (inet_pton(AF_INET, s, &sources[nsources]) != 1)
            die("--from: %s is not an IPv4 address", s);
        nsources++;
    }
}

static void parse_to(const char *arg)
{
    char host[64];
    const char *colon = strrchr(arg, ':');
    if (strncmp(arg, "tcp://", 6) == 0)
        arg += 6;
    if (colon == NULL || (size_t)(colon - arg) >= sizeof host)
        die("--to: expected HOST:PORT, got %s", arg);
    memcpy(host, arg, (size_t)(colon - arg));
    host[colon - arg] = '\0';
    to.sin_family = AF_INET;
    to.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &to.sin_addr) != 1 || to.sin_port == 0)
        die("--to: expected IPv4:PORT, got %s", arg);
}

static long number(const char *flag, const char *v, long lo, long hi)
{
    char *end;
    long n = v ? strtol(v, &end, 10) : 0;
    if (v == NULL || *end != '\0' || n < lo || n > hi)
        die("%s: expected a number from %ld to %ld", flag, lo, hi);
    return n;
}

int main(int argc, char **argv)
{
    long conns = 0, procs = 1, window = 128, timeout = 60;
    char *from = NULL;
    for (int i = 1; i < argc; i += 2) { /* every flag takes a value */
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--to") == 0 && v)
            parse_to(v);
        else if (strcmp(argv[i], "--conns") == 0)
            conns = number("--conns", v, 1, 10000000);
        else if (strcmp(argv[i], "--from") == 0 && v)
            from = argv[i + 1];
        else if (strcmp(argv[i], "--procs") == 0)
            procs = number("--procs", v, 1, MAX_PROCS);
        else if (strcmp(argv[i], "--window") == 0)
            window = number("--window", v, 1, 1000000);
        else if (strcmp(argv[i], "--timeout") == 0)
            timeout = number("--timeout", v, 1, 86400);
        else
            die("usage: " NAME " --to HOST:PORT --conns N [--from A,B,...] [--procs P] "
                "[--window W] [--timeout SEC]");
    }
    if (to.sin_family == 0 || conns == 0)
        die("--to and --conns are required");
    char loopback[] = "127.0.0.1";
    parse_sources(from ? from : loopback);
    if (procs > conns)
        procs = conns;
    signal(SIGPIPE, SIG_IGN);

    double deadline = now_s() + (double)timeout;
    int up[MAX_PROCS], down[MAX_PROCS];
    pid_t pid[MAX_PROCS];
    for (long p = 0; p < procs; p++) {
        int u[2], d[2];
        if (pipe2(u, O_CLOEXEC) < 0 || pipe2(d, O_CLOEXEC) < 0)
            die("pipe: %s", strerror(errno));
        worker w = {.first = conns * p / procs};
        w.n = conns * (p + 1) / procs - w.first;
        fflush(stdout);
        pid[p] = fork();
        if (pid[p] < 0)
            die("fork: %s", strerror(errno));
        if (pid[p] == 0) {
            close(u[0]);
            close(d[1]);
            for (long q = 0; q < p; q++) { /* the earlier workers' pipes */
                close(up[q]);
                close(down[q]);
            }
            run_worker(&w, window, deadline, u[1], d[0]);
        }
        close(u[1]);
        close(d[0]);
        up[p] = u[0];
        down[p] = d[1];
    }

    int failed = 0;
    for (long p = 0; p < procs; p++) {
        char c;
        if (read(up[p], &c, 1) != 1)
            failed = 1; /* the worker died: it said why on stderr */
    }
    if (!failed) {
        printf("ready %ld\n", conns);
        fflush(stdout);
        char line[64];
        (void)!fgets(line, sizeof line, stdin); /* a line or end of file */
    }
    long dropped = 0;
    for (long p = 0; p < procs; p++) {
        close(down[p]); /* the word: close */
        long d;
        if (!failed && read(up[p], &d, sizeof d) == sizeof d)
            dropped += d;
        else
            failed = 1;
    }
    for (long p = 0; p < procs; p++) {
        int st;
        if (waitpid(pid[p], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            failed = 1;
    }
    if (failed)
        return 1;
    printf("closed %ld dropped %ld\n", conns, dropped);
    return dropped == 0 ? 0 : 1;
}
