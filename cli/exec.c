/* SPDX-License-Identifier: MIT */
/*
 * exec.c — `sockserve exec [OPTIONS] ADDRESS -- PROG [ARGS...]`: a program
 * per stream connection, as tcpserver and inetd run them, on the library's
 * server (every model, every server option).
 *
 * The handler is the program's supervisor: under forking (the default) it
 * runs in the connection's child process, under threading/pool/event on a
 * thread, under serial/prefork in the serving process. For each connection
 * it
 *   1. describes the connection in UCSPI's variables (ucspi_env.c);
 *   2. starts PROG in its own process group (spawn.c). When the connection
 *      is a plain socket with nothing read ahead, PROG gets the socket
 *      itself as fd 0 and 1, as under tcpserver; otherwise (TLS, bytes a
 *      PROXY parser or handshake read ahead, or --relay / --idle-timeout)
 *      it gets one end of a socketpair and relay.c copies between the other
 *      end and the connection's transport;
 *   3. waits for it, logs how it ended (-v), kills what it left in its
 *      group, and ends the connection with a short lingering close (the
 *      client's unread bytes are read off first, so the close sends FIN,
 *      not a reset that could destroy the program's last output);
 *   4. at a drain (SIGINT/SIGTERM) lets it run up to --drain-timeout, then
 *      sends its group SIGTERM and, 2 s later, SIGKILL.
 *
 * How the supervisors learn of the drain: the main process holds the write
 * end of a pipe whose read end every supervisor polls (threads share it,
 * forked supervisors inherit it and close their copy of the write end). At
 * the first stop signal one byte is written and never read, so the pipe
 * stays readable for all of them at once. A forked supervisor also sees the
 * pipe hang up if the main process dies, and stops its program then. The
 * library's own drain budget is set past the supervisors' (drain + 2 s
 * grace + margin), so it never kills a supervisor in the middle of that.
 */
#include "cli.h"
#include "server_opts.h"

#include "exec/relay.h"
#include "exec/spawn.h"
#include "exec/ucspi_env.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define STOP_GRACE_MS 2000  /* CLI.md: TERM, then KILL after 2 s */
#define DRAIN_MARGIN_S 2.0  /* the library waits this much beyond them */
#define LINGER_MS 1000      /* lingering close: how long, at most ... */
#define LINGER_DRAIN_MS 200 /* ... and while the server drains */
#define LINGER_BYTES (256 * 1024)
#define FLUSH_AFTER_EXIT_MS 1000 /* relay: the program's last output */
#define NO_PIDFD_TICK_MS 100
#define DEFAULT_MAX_CONNS 40 /* tcpserver's -c */

typedef struct exec_cfg {
    char path[PATH_MAX];       /* PROG as resolved at start */
    char **argv;               /* PROG ARGS..., NULL-terminated */
    char **base_env;           /* the inherited environment, cleaned */
    struct rlimit nofile;      /* the open-files limit we were started with */
    bool force_relay;          /* --relay, or --idle-timeout */
    bool behind_proxy;         /* --proxy-protocol: the socket's peer is the proxy */
    double drain_timeout;      /* the user's --drain-timeout */
    int idle_timeout_ms;       /* relay only */
    int peer_write_timeout_ms; /* relay only: the server's write_timeout */
    int drain_r, drain_w;      /* the drain pipe (see the top) */
    pid_t main_pid;
} exec_cfg;

/* One connection and its program, as the supervisor sees them. */
typedef struct session {
    exec_cfg *cfg;
    ss_request *req;
    char peer[SS_ADDR_STRLEN + 16];
    exec_child child;
    bool started, ended; /* the program ran / has been reaped */
    bool drain_seen;
    int64_t drain_deadline; /* -1 until the drain starts */
} session;

/* ---- the drain ------------------------------------------------------------ */

static void on_drain(cli_server *c)
{
    exec_cfg *cfg = c->on_drain_data;
    /* non-blocking, and one byte in an empty pipe always fits */
    (void)!write(cfg->drain_w, "d", 1);
}

/* The watch entry for the drain pipe, or none once it has been seen. */
static int drain_watch(const session *s, struct pollfd *w)
{
    if (s->drain_seen)
        return 0;
    *w = (struct pollfd){.fd = s->cfg->drain_r, .events = POLLIN};
    return 1;
}

static void note_drain(session *s, short revents)
{
    if (s->drain_seen || revents == 0)
        return;
    s->drain_seen = true;
    int64_t now = exec_relay_now_ms();
    /* POLLHUP alone: the main process is gone without a drain; stop now */
    s->drain_deadline = (revents & POLLIN) ? now + (int64_t)(s->cfg->drain_timeout * 1000) : now;
}

/* ---- the program ---------------------------------------------------------- */

static void log_status(session *s)
{
    int st = s->child.status;
    const char *name = s->cfg->argv[0];
    if (WIFEXITED(st))
        ss_server_log(s->req->server, SS_LOG_INFO, "%s: %s (pid %ld) exited with status %d",
                      s->peer, name, (long)s->child.pid, WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        ss_server_log(s->req->server, SS_LOG_INFO, "%s: %s (pid %ld) killed by signal %d (%s)",
                      s->peer, name, (long)s->child.pid, WTERMSIG(st), strsignal(WTERMSIG(st)));
}

/* It exited: kill what it left in its group, reap, say how it ended. */
static void finish_program(session *s)
{
    if (s->ended)
        return;
    exec_child_reap(&s->child);
    s->ended = true;
    log_status(s);
}

/* It must go (drain deadline, the connection is over): TERM, KILL. */
static void stop_program(session *s, const char *why)
{
    if (s->ended)
        return;
    if (exec_child_exited(&s->child)) {
        finish_program(s);
        return;
    }
    int sig = exec_child_stop(&s->child, STOP_GRACE_MS);
    s->ended = true;
    ss_server_log(s->req->server, SS_LOG_WARN, "%s: %s (pid %ld) still running %s: stopped by %s",
                  s->peer, s->cfg->argv[0], (long)s->child.pid, why,
                  sig == SIGTERM ? "SIGTERM" : "SIGKILL (SIGTERM was not enough)");
    log_status(s);
}

/* Wait for the program to end by itself, or stop it at the drain deadline. */
static void await_program(session *s)
{
    while (!s->ended) {
        struct pollfd w;
        int n = drain_watch(s, &w);
        int rc = exec_child_wait(&s->child, &w, n, s->drain_deadline);
        if (rc == EXEC_CHILD_EXITED) {
            finish_program(s);
        } else if (rc == EXEC_CHILD_WATCH) {
            note_drain(s, w.revents);
        } else if (rc == EXEC_CHILD_DEADLINE) {
            char why[64];
            snprintf(why, sizeof why, "at the drain deadline (%gs)", s->cfg->drain_timeout);
            stop_program(s, why);
        } else {
            stop_program(s, "after a failed wait");
        }
    }
}

static int start_program(session *s, int stdio_fd)
{
    exec_cfg *cfg = s->cfg;
    exec_conn_info info = {0};
    ss_sock *conn = s->req->sock;
    /* Behind a PROXY header, the address the client connected to is the
     * header's destination, not this socket's end of the proxy's link. */
    if (ss_request_local_address(s->req, &info.local) < 0)
        info.local.len = 0;
    info.remote = s->req->client_address;
    struct ucred cred;
    socklen_t clen = sizeof cred;
    /* SO_PEERCRED names the process at the other end of the socket: behind
     * a PROXY header that is the proxy, never the client, so a program that
     * trusts UNIXREMOTEUID must not be handed the proxy's uid as its
     * client's. */
    if (info.local.u.sa.sa_family == AF_UNIX && !cfg->behind_proxy &&
        getsockopt(conn->fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0) {
        info.have_cred = true;
        info.pid = cred.pid;
        info.uid = cred.uid;
        info.gid = cred.gid;
    }
    exec_env_vars vars;
    exec_env_describe(&info, &vars);
    char **envp = malloc((exec_env_count(cfg->base_env) + EXEC_ENV_MAX_VARS + 1) * sizeof *envp);
    if (envp == NULL)
        return -ENOMEM;
    exec_env_join(cfg->base_env, &vars, envp);

    exec_spawn_opts o = {.path = cfg->path,
                         .argv = cfg->argv,
                         .envp = envp,
                         .stdio_fd = stdio_fd,
                         .nofile = &cfg->nofile};
    bool exec_failed;
    int rc = exec_spawn(&s->child, &o, &exec_failed);
    free(envp);
    if (rc < 0) {
        if (exec_failed)
            ss_server_log(s->req->server, SS_LOG_ERROR, "%s: cannot run '%s': %s", s->peer,
                          cfg->path, strerror(-rc));
        else
            ss_server_log(s->req->server, SS_LOG_ERROR, "%s: cannot start '%s': %s", s->peer,
                          cfg->path, strerror(-rc));
        return rc;
    }
    s->started = true;
    ss_server_log(s->req->server, SS_LOG_DEBUG, "%s: started %s (pid %ld)%s", s->peer, cfg->argv[0],
                  (long)s->child.pid, stdio_fd == conn->fd ? "" : ", relayed");
    return 0;
}

/* ---- ending the connection ------------------------------------------------- */

/*
 * Send our FIN; if the client's input is still unread, read and drop it
 * (and what follows, up to its end of file or a bound) before closing.
 * Closing with unread input makes the kernel send a reset, and a reset may
 * destroy the program's output still on its way to the client (Apache's
 * lingering close, for the same reason). A client that sent nothing unread
 * costs no wait.
 */
static void linger_drop_input(int fd, bool draining)
{
    int unread = 0;
    if (ioctl(fd, FIONREAD, &unread) < 0 || unread <= 0)
        return;
    int64_t end = exec_relay_now_ms() + (draining ? LINGER_DRAIN_MS : LINGER_MS);
    size_t dropped = 0;
    char junk[4096];
    while (dropped < LINGER_BYTES) {
        ssize_t n = recv(fd, junk, sizeof junk, MSG_DONTWAIT);
        if (n > 0) {
            dropped += (size_t)n;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            return;
        int64_t left = end - exec_relay_now_ms();
        if (left <= 0)
            return;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (ss_poll(&p, 1, (int)left) == 0)
            return;
    }
}

static void linger_close(int fd, bool draining)
{
    shutdown(fd, SHUT_WR);
    linger_drop_input(fd, draining);
    /* and for anyone still holding it (a process that left the program's
     * group): the connection is over both ways */
    shutdown(fd, SHUT_RDWR);
}

/* ---- the two ways to connect the program ----------------------------------- */

/* tcpserver's way: the connection is the program's stdin and stdout. */
static int run_plain(session *s)
{
    int rc = start_program(s, s->req->sock->fd);
    if (rc < 0)
        return 0; /* logged; the connection just closes */
    await_program(s);
    linger_close(s->req->sock->fd, s->drain_seen);
    return 0;
}

/* Move what the stream had read ahead into the relay, so it goes first. */
static int take_buffered(ss_stream *stream, exec_relay *r)
{
    char buf[4096];
    while (ss_stream_buffered(stream) > 0) {
        size_t want = ss_stream_buffered(stream);
        ssize_t n = ss_stream_read(stream, buf, want < sizeof buf ? want : sizeof buf);
        if (n <= 0)
            return n < 0 ? (int)n : 0;
        int rc = exec_relay_push_up(r, buf, (size_t)n);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void relay_loop(session *s, exec_relay *r)
{
    int64_t flush_deadline = -1; /* after the program has ended */
    for (;;) {
        struct pollfd w[2];
        int has_drain = drain_watch(s, &w[0]);
        int n = has_drain;
        if (!s->ended && s->child.pidfd >= 0)
            w[n++] = (struct pollfd){.fd = s->child.pidfd, .events = POLLIN};
        int64_t deadline = flush_deadline;
        if (!s->ended && s->drain_deadline >= 0)
            deadline = s->drain_deadline;
        if (!s->ended && s->child.pidfd < 0) { /* no pidfd: look now and then */
            int64_t tick = exec_relay_now_ms() + NO_PIDFD_TICK_MS;
            if (deadline < 0 || tick < deadline)
                deadline = tick;
        }
        int rc = exec_relay_run(r, w, n, deadline);
        if (rc == 0)
            return; /* both directions ended */
        if (rc == EXEC_RELAY_WATCH && has_drain)
            note_drain(s, w[0].revents);
        if (!s->ended && exec_child_exited(&s->child)) {
            finish_program(s);
            /* its last output may still be in the socketpair: bounded, as
             * something that left its group (setsid) may hold the end */
            flush_deadline = exec_relay_now_ms() + FLUSH_AFTER_EXIT_MS;
            continue;
        }
        if (rc == EXEC_RELAY_DEADLINE) {
            if (s->ended)
                return; /* the flush after the exit is over */
            if (s->drain_deadline >= 0 && exec_relay_now_ms() >= s->drain_deadline) {
                char why[64];
                snprintf(why, sizeof why, "at the drain deadline (%gs)", s->cfg->drain_timeout);
                stop_program(s, why);
                flush_deadline = exec_relay_now_ms() + LINGER_DRAIN_MS;
            }
            continue;
        }
        if (rc == SS_ETIMEOUT) {
            bool idle = strcmp(r->why, "idle") == 0;
            ss_server_log(s->req->server, SS_LOG_INFO, "%s: %s for %gs, closing", s->peer,
                          idle ? "idle" : "not reading what it is sent",
                          (idle ? r->opts.idle_timeout_ms : r->opts.peer_write_timeout_ms) /
                              1000.0);
            return;
        }
        if (rc < 0) {
            ss_server_log(s->req->server, SS_LOG_ERROR, "%s: relay failed: %s", s->peer,
                          ss_strerror(rc));
            return;
        }
    }
}

/* The program gets a socketpair; the relay copies between it and the
 * connection's transport (TLS when the server speaks it). */
static int run_relayed(session *s)
{
    ss_stream *stream = s->req->stream;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        ss_server_log(s->req->server, SS_LOG_ERROR, "%s: cannot make a socketpair: %s", s->peer,
                      strerror(errno));
        return 0;
    }
    ss_transport prog;
    exec_relay r;
    exec_relay_opts ro = {.buffer = EXEC_RELAY_BUFFER_DEFAULT,
                          .idle_timeout_ms = s->cfg->idle_timeout_ms,
                          .peer_write_timeout_ms = s->cfg->peer_write_timeout_ms};
    if (ss_stream_buffered(stream) > ro.buffer)
        ro.buffer = ss_stream_buffered(stream);
    int rc = ss_transport_fd_init(&prog, sv[0]);
    if (rc < 0) {
        close(sv[0]);
        close(sv[1]);
        return rc;
    }
    rc = exec_relay_init(&r, ss_stream_transport(stream), &prog, &ro);
    if (rc == 0)
        rc = take_buffered(stream, &r);
    if (rc == 0)
        rc = start_program(s, sv[1]);
    close(sv[1]);
    if (rc == 0) {
        relay_loop(s, &r);
        /* the program's end of file, whatever ended the relay */
        prog.ops->close(&prog);
        if (!s->ended) {
            if (r.why != NULL) /* cut: idle, or a peer that does not read */
                stop_program(s, "after its connection was cut");
            else
                await_program(s);
        }
        linger_close(s->req->sock->fd, s->drain_seen);
    } else {
        prog.ops->close(&prog);
    }
    exec_relay_free(&r);
    return 0;
}

/* ---- the handler ------------------------------------------------------------- */

static void describe_peer(session *s)
{
    int n = ss_addr_format(&s->req->client_address, s->peer, sizeof s->peer);
    if (n > 0 && s->peer[n - 1] != ':')
        return;
    /* an unnamed unix client: its pid is what an operator can act on */
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(s->req->sock->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
        snprintf(s->peer, sizeof s->peer, "unix:(pid %ld)", (long)cred.pid);
    else
        snprintf(s->peer, sizeof s->peer, "unix:(unnamed)");
}

static bool plain_connection(const exec_cfg *cfg, ss_stream *stream)
{
    /* "fd" is the plain-descriptor transport; anything else (TLS) must be
     * relayed, and so must bytes that something read ahead */
    return !cfg->force_relay && strcmp(ss_stream_transport(stream)->ops->name, "fd") == 0 &&
           ss_stream_buffered(stream) == 0;
}

static int handle(ss_request *req)
{
    exec_cfg *cfg = ss_server_handler_data(req->server);
    bool own_process = getpid() != cfg->main_pid; /* forking, prefork */
    if (own_process) {
        /* only the main process may write the drain byte, and only then
         * does its death make the pipe hang up here */
        if (cfg->drain_w >= 0) {
            close(cfg->drain_w);
            cfg->drain_w = -1;
        }
        /* The library's SIGTERM to a child is its backstop past the drain
         * (SIGKILL follows 1 s later), and a service manager may TERM the
         * whole group: the program gets its own TERM; we stay to reap it
         * and say how it ended. */
        signal(SIGTERM, SIG_IGN);
    }
    session s = {.cfg = cfg, .req = req, .drain_deadline = -1};
    describe_peer(&s);
    int rc = plain_connection(cfg, req->stream) ? run_plain(&s) : run_relayed(&s);
    if (s.started && !s.ended)
        stop_program(&s, "at the end of its connection");
    exec_child_close(&s.child);
    if (own_process)
        signal(SIGTERM, SIG_DFL); /* a prefork worker is stopped by it */
    return rc;
}

/* ---- the command line ------------------------------------------------------------- */

static bool is_datagram_address(const char *address)
{
    return strncasecmp(address, "udp://", 6) == 0 || strncasecmp(address, "unixgram:", 9) == 0;
}

static int serve(cli_server *srv, exec_cfg *cfg, const char *address)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
        cli_error("exec", "cannot make a pipe: %s", strerror(errno));
        return CLI_RUNTIME;
    }
    cfg->drain_r = p[0];
    cfg->drain_w = p[1];
    cfg->main_pid = getpid();
    srv->on_drain = on_drain;
    srv->on_drain_data = cfg;

    ss_handler handler = {.handle = handle, .data = cfg};
    ss_server *server;
    int rc = cli_server_start(srv, address, &handler, &server);
    if (rc == CLI_OK && !ss_addr_is_stream(ss_server_address(server)->kind)) {
        /* an inherited socket (fd:, systemd:) that turned out a datagram one */
        char text[SS_ADDR_STRLEN];
        ss_addr_format(ss_server_address(server), text, sizeof text);
        cli_error("exec", "%s is a datagram socket: exec serves stream connections only", text);
        ss_server_free(server);
        rc = CLI_USAGE;
    } else if (rc == CLI_OK) {
        rc = cli_server_run(srv, server);
    }
    close(p[0]);
    close(p[1]);
    return rc;
}

/* exec's own flags (the shared server ones are cli_server_options) */
typedef struct exec_flags {
    bool relay;
    bool speaks_first;
} exec_flags;

static const cli_opt exec_options[] = {
    {"server-speaks-first", 0, CLI_NO_VALUE, cli_opt_set_true,
     offsetof(exec_flags, speaks_first)},
    {"relay", 0, CLI_NO_VALUE, cli_opt_set_true, offsetof(exec_flags, relay)},
    {NULL, 0, 0, NULL, 0},
};

/* ADDRESS: one, before the `--` that starts the program */
static int take_address(void *ctx, const char *arg)
{
    const char **address = ctx;
    if (*address != NULL)
        return cli_usage_error("exec", "unexpected argument '%s' (the program goes after '--')",
                               arg);
    *address = arg;
    return CLI_OK;
}


/* A positive timeout in seconds as the relay's milliseconds: at least 1
 * (0 would mean "none"), at most INT_MAX (a float past it is undefined in
 * the cast): never silently off. */
static int timeout_ms(double seconds)
{
    double ms = seconds * 1000.0;
    if (ms < 1.0)
        return 1;
    if (ms >= (double)INT_MAX)
        return INT_MAX;
    return (int)ms;
}

static int run(int argc, char **argv)
{
    cli_server srv;
    cli_server_init(&srv, "exec");
    srv.tls_flags = true; /* TLS is relayed to the program */
    static exec_cfg cfg; /* lives as long as the server, children included */
    memset(&cfg, 0, sizeof cfg);
    cfg.drain_r = cfg.drain_w = -1;
    const char *address = NULL;
    exec_flags flags = {0};

    cli_spec spec = {.command = &cli_cmd_exec, .operand = take_address,
                     .operand_ctx = &address, .dashdash_ends = true};
    cli_spec_add(&spec, exec_options, &flags);
    cli_server_add_options(&spec, &srv);
    int prog_at;
    int prc = cli_parse(&spec, argc, argv, &prog_at, NULL);
    if (prc != CLI_PARSE_GO_ON)
        return prc;
    cfg.force_relay = flags.relay;
    bool speaks_first = flags.speaks_first;
    if (address == NULL)
        return cli_usage_error("exec", "no ADDRESS given");
    if (prog_at >= argc)
        return cli_usage_error("exec",
                               "no program given: sockserve exec ADDRESS -- PROG [ARGS...]");
    if (is_datagram_address(address))
        return cli_usage_error("exec",
                               "'%s' is a datagram address: exec serves stream "
                               "connections only (tcp, unix, seqpacket)",
                               address);

    if (!srv.model_given)
        srv.opts.model = SS_MODEL_FORKING;
    if (srv.opts.max_conns == 0)
        srv.opts.max_conns = DEFAULT_MAX_CONNS;
    /* --max-conns is the one bound on programs at once: forking's own
     * max_children must not cut it lower (--workers still sets it) */
    if (srv.opts.model == SS_MODEL_FORKING)
        srv.opts.max_children = srv.opts.max_conns;
    srv.opts.server_speaks_first = speaks_first;
    if (cli_server_check(&srv) != 0)
        return CLI_USAGE;

    ss_error err = {0};
    if (exec_resolve(argv[prog_at], getenv("PATH"), cfg.path, sizeof cfg.path, &err) < 0)
        return cli_usage_error("exec", "%s", err.msg);
    cfg.argv = &argv[prog_at]; /* argv[argc] is NULL */
    if (exec_env_base(environ, &cfg.base_env) < 0) {
        cli_error("exec", "out of memory");
        return CLI_RUNTIME;
    }
    /* before cli_server_start raises it: the program gets the usual limit
     * (some programs close every descriptor up to it) */
    if (getrlimit(RLIMIT_NOFILE, &cfg.nofile) < 0)
        cfg.nofile = (struct rlimit){1024, 1024};

    /* the server does no I/O on a connection it gives away: an idle
     * timeout needs the relay, which sees every byte */
    if (srv.opts.idle_timeout > 0) {
        cfg.force_relay = true;
        cfg.idle_timeout_ms = timeout_ms(srv.opts.idle_timeout);
    }
    if (srv.opts.write_timeout > 0)
        cfg.peer_write_timeout_ms = timeout_ms(srv.opts.write_timeout);
    cfg.drain_timeout = srv.opts.drain_timeout;
    cfg.behind_proxy = srv.opts.proxy_protocol;
    srv.opts.drain_timeout = cfg.drain_timeout + STOP_GRACE_MS / 1000.0 + DRAIN_MARGIN_S;
    /* the stream's own timeouts never apply: the handler never reads it */
    srv.opts.idle_timeout = 0;

    int rc = serve(&srv, &cfg, address);
    exec_env_free_base(cfg.base_env);
    return rc;
}

const cli_command cli_cmd_exec = {
    .name = "exec",
    .summary = "run a program per connection, tcpserver/inetd style (UCSPI environment)",
    .usage = "usage: sockserve exec [OPTIONS] ADDRESS -- PROG [ARGS...]\n"
             "\n"
             "Every stream connection on ADDRESS (tcp, unix, seqpacket) runs PROG with the\n"
             "connection as its stdin and stdout and the server's stderr. PROG is looked up\n"
             "in PATH once, at start. Its environment is the server's plus UCSPI's:\n"
             "  PROTO=TCP, TCPLOCALIP, TCPLOCALPORT, TCPREMOTEIP, TCPREMOTEPORT, or\n"
             "  PROTO=UNIX, UNIXLOCALPATH, UNIXREMOTEUID, UNIXREMOTEGID, UNIXREMOTEPID.\n"
             "PROG runs in its own process group with only fds 0, 1 and 2, default signal\n"
             "actions and an empty signal mask. When it exits, what it left in its group is\n"
             "killed and the connection is closed. On SIGINT/SIGTERM it may run up to\n"
             "--drain-timeout, then its group gets SIGTERM and, 2 s later, SIGKILL.\n"
             "\n"
             "  --server-speaks-first  start PROG at accept, without waiting for the\n"
             "                         client's first byte (banners, SMTP, daytime); silent\n"
             "                         clients then hold a PROG each, up to --max-conns\n"
             "  --relay                give PROG a socketpair and copy through sockserve,\n"
             "                         even on plain connections (always so with TLS and\n"
             "                         with --idle-timeout)\n"
             "  -h, --help             this text\n"
             "\n"
             "Defaults here: --model forking; --max-conns 40 (programs at once; further\n"
             "clients wait, they are not refused). With -v one line per program says how it\n"
             "ended (exit status or signal).\n"
             "\n"
             "Example:  sockserve exec tcp://127.0.0.1:7000 -- tr a-z A-Z\n"
             "\n",
    .usage_more = CLI_SERVER_TLS_HELP CLI_SERVER_FLAGS_HELP,
    .run = run,
};
