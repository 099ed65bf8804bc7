/* SPDX-License-Identifier: MIT */
/*
 * server.c — one native rcmd session on a blocking handler thread
 * (docs/rcmd-protocol.md §5–§8): security layer, HELLO, then EXEC after
 * EXEC. A running command is driven by one poll() over the connection and
 * its three pipes; writes to the connection block (with a deadline), which
 * is TCP's flow control: the pipes are not read meanwhile.
 */
#include "server.h"
#include "escape.h"
#include "frame.h"
#include "runner.h"
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define AUTH_DEADLINE_MS 10000
#define WRITE_DEADLINE_MS 60000
#define KILL_GRACE_MS 2000
#define STDIN_MAX_PENDING (256 * 1024)
#define STALL_PROBE_MS 1000
#define FAILURE_HOLD_MS 1000

void rcmd_server_set_tls(rcmd_server_cfg *cfg, struct rcmd_tls_ctx *ctx)
{
    cfg->tls = ctx;
}

typedef struct session {
    ss_request *req;
    const rcmd_server_cfg *cfg;
    ss_transport t;
    rcmd_reader rd;
    char peer[256];
    int64_t send_cap; /* while a command runs: its --timeout, or -1 */
    uint8_t out[RCMD_FRAME_MAX];
} session;

/* A write waits for a slow client at most WRITE_DEADLINE_MS, and never much
 * past the running command's --timeout (send_cap): a client that stopped
 * reading must not keep a command alive beyond it (the command is killed
 * with the connection when the write gives up). */
static int send_frame(session *s, const void *buf, ssize_t n)
{
    if (n < 0)
        return (int)n;
    int64_t deadline = rcmd_now_ms() + WRITE_DEADLINE_MS;
    if (s->send_cap >= 0 && s->send_cap < deadline)
        deadline = s->send_cap;
    return rcmd_transport_write_all(&s->t, buf, (size_t)n, deadline);
}

static int send_error(session *s, int code, const char *text)
{
    return send_frame(s, s->out, rcmd_error_encode(s->out, sizeof s->out, code, text));
}

/* Read what the transport has into the reader: > 0 bytes, 0 EOF, -EAGAIN. */
static ssize_t fill(session *s)
{
    size_t avail;
    uint8_t *p = rcmd_reader_space(&s->rd, &avail);
    ssize_t n = s->t.ops->read(&s->t, p, avail);
    if (n > 0)
        rcmd_reader_commit(&s->rd, (size_t)n);
    return n;
}

/* Next frame, waiting until deadline (< 0: none). 1, or 0 at EOF, or code. */
static int next_frame(session *s, rcmd_frame *f, int64_t deadline)
{
    for (;;) {
        int rc = rcmd_reader_next(&s->rd, f);
        if (rc != 0)
            return rc;
        ssize_t n = fill(s);
        if (n == 0)
            return rcmd_reader_pending(&s->rd) ? SS_EPROTO : 0;
        if (n == -EAGAIN) {
            rc = rcmd_transport_wait(&s->t, POLLIN, deadline);
            if (rc < 0)
                return rc;
        } else if (n < 0) {
            return (int)n;
        }
    }
}

typedef struct run_state {
    rcmd_child c;
    int status;
    bool exited;
    bool stdin_eof;
    bool timed_out, over_limit, kill_pending;
    long long kill_at;
    uint64_t in, out, err;
    uint8_t *pending; /* stdin waiting for the pipe */
    size_t plen;
} run_state;

static bool allowed(const rcmd_server_cfg *cfg, int mode, char **argv)
{
    if (cfg->allow == NULL)
        return true;
    if (mode != RCMD_EXEC_ARGV)
        return false;
    for (const char *const *a = cfg->allow; *a; a++)
        if (strcmp(*a, argv[0]) == 0)
            return true;
    return false;
}

static void start_kill(run_state *r, int sig)
{
    rcmd_signal_group(&r->c, sig);
    if (!r->kill_pending) {
        r->kill_pending = true;
        r->kill_at = rcmd_runner_now_ms() + KILL_GRACE_MS;
    }
}

/* Forward one pipe's available output; 0, 1 at EOF, or a code. */
static int pump_output(session *s, run_state *r, int *fd, uint8_t type)
{
    ssize_t n = read(*fd, s->out + RCMD_HEADER_LEN, RCMD_MAX_PAYLOAD);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -errno;
    if (n == 0) {
        close(*fd);
        *fd = -1;
        return 1;
    }
    uint64_t *count = type == RCMD_STDOUT ? &r->out : &r->err;
    uint64_t lim = s->cfg->max_output;
    if (lim && r->out + r->err + (uint64_t)n > lim) {
        n = (ssize_t)(lim - r->out - r->err);
        if (!r->over_limit) {
            r->over_limit = true;
            start_kill(r, SIGTERM);
        }
    }
    if (n == 0)
        return 0;
    rcmd_header_encode(s->out, type, (uint32_t)n);
    *count += (uint64_t)n;
    return send_frame(s, s->out, RCMD_HEADER_LEN + n);
}

/* A frame while running: 0, or a code that ends the connection. */
static int running_frame(session *s, run_state *r, const rcmd_frame *f)
{
    switch (f->type) {
    case RCMD_STDIN:
        if (r->stdin_eof)
            return SS_EPROTO;
        r->in += f->len;
        if (r->c.in_fd < 0 || f->len == 0)
            return 0; /* the command closed its stdin: discarded */
        {
            uint8_t *p = realloc(r->pending, r->plen + f->len);
            if (p == NULL)
                return -ENOMEM;
            memcpy(p + r->plen, f->payload, f->len);
            r->pending = p;
            r->plen += f->len;
        }
        return 0;
    case RCMD_STDIN_EOF:
        if (r->stdin_eof)
            return SS_EPROTO;
        r->stdin_eof = true;
        return 0;
    case RCMD_SIGNAL: {
        int sig;
        if (rcmd_signal_decode(f, &sig) != 0)
            return SS_EPROTO;
        rcmd_signal_group(&r->c, sig);
        if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP || sig == SIGQUIT)
            start_kill(r, sig);
        return 0;
    }
    default:
        return SS_EPROTO;
    }
}

static void audit(session *s, int mode, char **argv, size_t argc, const run_state *r,
                  const char *status, long long ms)
{
    char cmd[2200];
    rcmd_format_command(cmd, sizeof cmd, mode, argv, argc, 512);
    ss_server_log(s->req->server, SS_LOG_INFO,
                  "rcmd: audit peer=%s cmd=%s status=%s%s%s time=%.3fs in=%" PRIu64
                  " out=%" PRIu64 " err=%" PRIu64,
                  s->peer, cmd, status, r->timed_out ? " timeout" : "",
                  r->over_limit ? " output-limit" : "", (double)ms / 1000.0, r->in, r->out,
                  r->err);
}

/* The earlier of two deadlines, -1 meaning none. */
static long long earliest(long long a, long long b)
{
    return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

/* Run one EXEC to its EXIT. 0, or a code that ends the connection. */
static int run_exec(session *s, int mode, char **argv, size_t argc)
{
    run_state r;
    memset(&r, 0, sizeof r);
    r.c.pid = 0;
    r.c.in_fd = r.c.out_fd = r.c.err_fd = r.c.exit_fd = -1;
    long long start = rcmd_runner_now_ms();
    if (!allowed(s->cfg, mode, argv)) {
        audit(s, mode, argv, argc, &r, "denied", 0);
        int rc = send_error(s, RCMD_ERR_DENIED, "command not allowed");
        return rc ? rc : send_frame(s, s->out, rcmd_exit_encode(s->out, sizeof s->out, 0, 126));
    }
    int rc = rcmd_spawn(&r.c, mode == RCMD_EXEC_SHELL, argv,
                        RCMD_RUN_STDIN | RCMD_RUN_STDOUT | RCMD_RUN_STDERR);
    if (rc < 0) {
        audit(s, mode, argv, argc, &r, "error", 0);
        rc = send_error(s, RCMD_ERR_INTERNAL, strerror(-rc));
        return rc ? rc : send_frame(s, s->out, rcmd_exit_encode(s->out, sizeof s->out, 0, 255));
    }
    long long deadline = s->cfg->timeout > 0 ? start + (long long)(s->cfg->timeout * 1000) : -1;
    /* past --timeout the group gets TERM, then KILL 2 s later; a client that
     * reads has a further second to take the last output */
    s->send_cap = deadline >= 0 ? deadline + KILL_GRACE_MS + 1000 : -1;
    long long drain_until = -1;
    long long probe_at = -1; /* while not reading the connection, see below */
    rc = 0;
    while (rc == 0) {
        long long now = rcmd_runner_now_ms();
        if (!r.exited && rcmd_try_reap(&r.c, &r.status)) {
            r.exited = true; /* and its group is gone: rcmd_try_reap killed it */
            drain_until = now + 1000;
        }
        if (r.exited && ((r.c.out_fd < 0 && r.c.err_fd < 0) || now >= drain_until))
            break;
        if (deadline >= 0 && now >= deadline && !r.timed_out && !r.exited) {
            r.timed_out = true;
            start_kill(&r, SIGTERM);
        }
        if (r.kill_pending && r.kill_at >= 0 && !r.exited && now >= r.kill_at) {
            rcmd_signal_group(&r.c, SIGKILL);
            r.kill_at = -1; /* sent; it cannot be ignored */
        }
        /* frames already buffered (TLS may hold some the fd does not show) */
        bool conn_ok = r.plen <= STDIN_MAX_PENDING;
        if (conn_ok) {
            rcmd_frame f;
            int got;
            while ((got = rcmd_reader_next(&s->rd, &f)) == 1 && rc == 0)
                rc = running_frame(s, &r, &f);
            if (got < 0)
                rc = got;
            if (rc)
                break;
            ssize_t n = fill(s);
            if (n == 0) {
                rc = SS_EEOF;
                break;
            }
            if (n > 0)
                continue;
            if (n != -EAGAIN) {
                rc = (int)n;
                break;
            }
        }
        /* Not reading the connection (the command is not taking its stdin) means
         * not seeing the client go either: its FIN, even its reset, can wait
         * behind a shut window. An empty STDOUT frame (legal, meaningless) once
         * a second makes a vanished client's kernel answer with a reset. */
        if (conn_ok) {
            probe_at = -1;
        } else if (probe_at < 0) {
            probe_at = now + STALL_PROBE_MS;
        } else if (now >= probe_at) {
            rc = send_frame(s, s->out, rcmd_data_encode(s->out, sizeof s->out, RCMD_STDOUT,
                                                        NULL, 0));
            if (rc)
                break;
            probe_at = now + STALL_PROBE_MS;
        }
        /* After the frames: an STDIN_EOF just read must reach the command
         * before we sleep, or a command reading to EOF (tr, cat) never ends. */
        if (r.stdin_eof && r.plen == 0 && r.c.in_fd >= 0) {
            close(r.c.in_fd);
            r.c.in_fd = -1;
        }
        struct pollfd p[5];
        int np = 0, ic = -1, io = -1, ie = -1, ii = -1;
        ic = np;
        if (conn_ok)
            p[np++] = (struct pollfd){.fd = s->t.fd, .events = s->t.ops->wait_events(&s->t, POLLIN)};
        else /* not reading it (stdin backlog full), but a client that goes
              * away still ends the command */
            p[np++] = (struct pollfd){.fd = s->t.fd, .events = POLLRDHUP};
        if (r.c.out_fd >= 0) {
            io = np;
            p[np++] = (struct pollfd){.fd = r.c.out_fd, .events = POLLIN};
        }
        if (r.c.err_fd >= 0) {
            ie = np;
            p[np++] = (struct pollfd){.fd = r.c.err_fd, .events = POLLIN};
        }
        if (r.c.in_fd >= 0 && r.plen > 0) {
            ii = np;
            p[np++] = (struct pollfd){.fd = r.c.in_fd, .events = POLLOUT};
        }
        /* the exit shows on the pidfd; without one (old kernels) it is
         * polled, as SIGCHLD belongs to no thread here */
        if (!r.exited && r.c.exit_fd >= 0)
            p[np++] = (struct pollfd){.fd = r.c.exit_fd, .events = POLLIN};
        long long next = !r.exited && r.c.exit_fd < 0 ? now + 100 : -1;
        if (deadline >= 0 && !r.timed_out && !r.exited)
            next = earliest(next, deadline);
        if (r.kill_pending && r.kill_at >= 0 && !r.exited)
            next = earliest(next, r.kill_at);
        if (r.exited)
            next = earliest(next, drain_until);
        next = earliest(next, probe_at);
        int wait = next < 0 ? -1 : next <= now ? 0 : next - now > 60000 ? 60000 : (int)(next - now);
        if (ss_poll(p, (nfds_t)np, wait) < 0 && errno != EINTR) {
            rc = -errno;
            break;
        }
        if (!conn_ok && (p[ic].revents & (POLLRDHUP | POLLHUP | POLLERR))) {
            rc = SS_EEOF; /* the protocol never half-closes: the client is gone */
            break;
        }
        if (io >= 0 && p[io].revents)
            rc = pump_output(s, &r, &r.c.out_fd, RCMD_STDOUT);
        if (rc >= 0 && ie >= 0 && p[ie].revents)
            rc = pump_output(s, &r, &r.c.err_fd, RCMD_STDERR);
        if (rc > 0)
            rc = 0;
        if (rc == 0 && ii >= 0 && p[ii].revents) {
            ssize_t w = write(r.c.in_fd, r.pending, r.plen);
            if (w > 0) {
                memmove(r.pending, r.pending + w, r.plen - (size_t)w);
                r.plen -= (size_t)w;
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                close(r.c.in_fd); /* EPIPE: it closed its stdin; discard the rest */
                r.c.in_fd = -1;
                r.plen = 0;
            }
        }
    }
    free(r.pending);
    s->send_cap = -1; /* the EXIT and ERROR frames below may wait the full time */
    if (rc != 0) { /* the connection is gone or broken: the command dies with it */
        rcmd_child_destroy(&r.c, NULL);
        audit(s, mode, argv, argc, &r, "signal:KILL", rcmd_runner_now_ms() - start);
        return rc;
    }
    int st = r.status;
    rcmd_child_destroy(&r.c, NULL);
    char status[64];
    int kind, value;
    if (WIFSIGNALED(st)) {
        kind = RCMD_EXIT_SIGNAL;
        value = WTERMSIG(st);
        snprintf(status, sizeof status, "signal:%s", sigabbrev_np(value) ? sigabbrev_np(value) : "?");
    } else {
        kind = RCMD_EXIT_CODE;
        value = WEXITSTATUS(st);
        snprintf(status, sizeof status, "exit:%d", value);
    }
    audit(s, mode, argv, argc, &r, status, rcmd_runner_now_ms() - start);
    if (r.timed_out)
        rc = send_error(s, RCMD_ERR_TIMEOUT, "timeout: the command was killed");
    else if (r.over_limit)
        rc = send_error(s, RCMD_ERR_OUTPUT_LIMIT, "output limit reached: the command was killed");
    if (rc == 0)
        rc = send_frame(s, s->out, rcmd_exit_encode(s->out, sizeof s->out, kind, value));
    return rc;
}

static int converse(session *s, int64_t auth_deadline)
{
    rcmd_frame f;
    int rc = next_frame(s, &f, auth_deadline);
    if (rc == SS_ETIMEOUT)
        ss_server_log(s->req->server, SS_LOG_INFO, "rcmd: %s: authentication timed out",
                      s->peer);
    if (rc <= 0)
        return rc;
    rcmd_hello h;
    if (f.type != RCMD_HELLO || rcmd_hello_decode(&f, &h) != 0)
        return SS_EPROTO;
    if (h.version != RCMD_VERSION) {
        send_error(s, RCMD_ERR_VERSION, "version 1 only");
        return 0;
    }
    rc = send_frame(s, s->out, rcmd_hello_encode(s->out, sizeof s->out, "sockserve"));
    /* authenticated and past HELLO: give back the unauthenticated slot
     * (--max-unauth, the server core's max_unadmitted) */
    ss_request_admit(s->req);
    /* the server core's --idle-timeout, for a connection with no command */
    double idle = ss_server_options(s->req->server)->idle_timeout;
    while (rc == 0) {
        rc = next_frame(s, &f, idle > 0 ? rcmd_now_ms() + (int64_t)(idle * 1000) : -1);
        if (rc <= 0)
            return rc;
        rc = 0;
        switch (f.type) {
        case RCMD_STDIN:
        case RCMD_STDIN_EOF:
        case RCMD_SIGNAL:
            continue; /* left over from a command that has just ended */
        case RCMD_EXEC: {
            int mode;
            char **argv;
            size_t argc;
            if (rcmd_exec_decode(&f, &mode, &argv, &argc) != 0)
                return SS_EPROTO;
            rc = run_exec(s, mode, argv, argc);
            free(argv);
            break;
        }
        default:
            return SS_EPROTO;
        }
    }
    return rc;
}

/* A client host that vanishes without a word (no FIN, no reset) while its
 * command runs silently would otherwise hold the command until it ends: TCP
 * keepalive finds it in about a minute (30 s idle, then 3 probes 10 s
 * apart), as sshd's TCPKeepAlive does. Not for unix sockets (no-op). */
static void keep_alive(int fd)
{
    int on = 1, idle = 30, interval = 10, count = 3;
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) != 0)
        return;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

int rcmd_native_handle(ss_request *req)
{
    const rcmd_server_cfg *cfg = ss_server_handler_data(req->server);
    session *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    s->req = req;
    s->cfg = cfg;
    ss_addr_format(&req->client_address, s->peer, sizeof s->peer);
    int rc = 0;
    /* one deadline from accept for the handshake and HELLO together (§6) */
    int64_t auth_deadline = rcmd_now_ms() + AUTH_DEADLINE_MS;
    /* request/response frames: no Nagle delay (see client.c); no-op on unix */
    (void)ss_sock_set_option(req->sock, SS_OPT_NODELAY, 1);
    keep_alive(req->sock->fd);
    int fd = fcntl(req->sock->fd, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) {
        rc = -errno;
        free(s);
        return rc;
    }
    ss_error err = {0};
    if (cfg->tls != NULL) {
        rc = rcmd_tls_transport_new(&s->t, cfg->tls, fd, &err);
        if (rc < 0) {
            close(fd);
            free(s);
            return rc;
        }
        rc = rcmd_tls_handshake(&s->t, auth_deadline, &err);
        if (rc == SS_ETIMEOUT) {
            ss_server_log(req->server, SS_LOG_INFO, "rcmd: %s: authentication timed out", s->peer);
        } else if (rc == SS_ECLOSED) {
            /* gone without offering anything to check: nothing was guessed,
             * so no hold (a port scan or a flood giving up frees its slot) */
            ss_server_log(req->server, SS_LOG_INFO, "rcmd: %s: closed before authenticating",
                          s->peer);
        } else if (rc < 0) {
            ss_server_log(req->server, SS_LOG_WARN, "rcmd: %s: authentication failed: %s",
                          s->peer, err.msg);
            /* Slow guessing down: hold the connection 1 s before closing.
             * Not past an eviction (max_unadmitted shuts the socket: POLLHUP),
             * so a flood of failures cannot pile up sleeping threads. */
            struct pollfd hold = {.fd = s->t.fd, .events = 0};
            (void)ss_poll(&hold, 1, FAILURE_HOLD_MS);
        }
        if (rc < 0) {
            s->t.ops->close(&s->t);
            free(s);
            return 0;
        }
    } else {
        rcmd_plain_transport_init(&s->t, fd);
    }
    rc = rcmd_reader_init(&s->rd);
    if (rc == 0) {
        rc = converse(s, auth_deadline);
        if (rc == SS_EPROTO) {
            ss_server_log(req->server, SS_LOG_WARN, "rcmd: %s: protocol error", s->peer);
            send_error(s, RCMD_ERR_PROTOCOL, "protocol error");
        }
        rcmd_reader_free(&s->rd);
    }
    s->t.ops->close(&s->t);
    free(s);
    return rc == SS_EPROTO || rc == SS_EEOF || rc == SS_ETIMEOUT || rc == -ECONNRESET ||
                   rc == -EPIPE
               ? 0
               : rc;
}
