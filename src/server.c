/* SPDX-License-Identifier: MIT */
/* server.c — the socketserver core: make a server (bind + activate), the
 * loop behind serve_forever / handle_request, shutdown, server_close and the
 * accessors. How a request runs is the model's business (model_*.c, through
 * the table in server_internal.h); what a request is lives in
 * server_request.c. */
#include "server_internal.h"
#include "inherited.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>


/* ---- models -------------------------------------------------------------- */

static const char *const model_names[] = {
    [SS_MODEL_SERIAL] = "serial",   [SS_MODEL_THREADING] = "threading",
    [SS_MODEL_FORKING] = "forking", [SS_MODEL_POOL] = "pool",
    [SS_MODEL_PREFORK] = "prefork", [SS_MODEL_EVENT] = "event",
    [SS_MODEL_COROUTINE] = "coroutine",
};

const char *ss_model_name(ss_model m)
{
    if ((unsigned)m < SS__ARRAY_LEN(model_names))
        return model_names[m];
    return "unknown";
}

int ss_model_parse(const char *name, ss_model *out)
{
    for (size_t i = 0; name != NULL && i < SS__ARRAY_LEN(model_names); i++) {
        if (strcmp(name, model_names[i]) == 0) {
            *out = (ss_model)i;
            return 0;
        }
    }
    return SS_EUSAGE;
}

/* The event model, in src/model_event.c. A plain reference, so a static
 * link always pulls it in (a weak one would not). */
extern const ss__model_ops ss__model_event;

const ss__model_ops *ss__model_ops_for(ss_model m)
{
    switch (m) {
    case SS_MODEL_SERIAL:
        return &ss__model_serial;
    case SS_MODEL_THREADING:
        return &ss__model_threading;
    case SS_MODEL_FORKING:
        return &ss__model_forking;
    case SS_MODEL_POOL:
        return &ss__model_pool;
    case SS_MODEL_PREFORK:
        return &ss__model_prefork;
    case SS_MODEL_EVENT:
        return &ss__model_event;
    case SS_MODEL_COROUTINE:
        return &ss__model_coroutine;
    }
    return NULL;
}

/* ---- options --------------------------------------------------------------- */

void ss_server_opts_init(ss_server_opts *o)
{
    memset(o, 0, sizeof *o);
    o->model = SS_MODEL_SERIAL;
    o->request_queue_size = 0; /* the system's maximum */
    o->timeout = SS_TIMEOUT_NONE;
    o->block_on_close = true;
    o->max_children = 40;
    o->max_packet_size = 8192;
    o->drain_timeout = 5.0;
    o->max_pending = 1024;
    o->handshake_timeout = 10.0;
    o->write_timeout = 60.0;
    /* A handler that fails must be seen: errors and warnings go to stderr
     * unless the caller gives a sink of its own (or NULL). */
    o->log = ss_server_log_to_stderr;
}

static int check_opts(const ss_server_opts *o, ss_error *err)
{
    if (o->workers < 0)
        return ss__fail(err, SS_EUSAGE, "workers must be >= 0 (got %d)",
                        o->workers);
    if (o->pool_queue < 0)
        return ss__fail(err, SS_EUSAGE, "pool_queue must be >= 0 (got %d)",
                        o->pool_queue);
    if (o->max_children < 1)
        return ss__fail(err, SS_EUSAGE, "max_children must be >= 1 (got %d)",
                        o->max_children);
    if (o->max_conns < 0)
        return ss__fail(err, SS_EUSAGE, "max_conns must be >= 0 (got %d)",
                        o->max_conns);
    if (o->max_packet_size == 0 || o->max_packet_size > 65536 * 4)
        return ss__fail(err, SS_EUSAGE, "max_packet_size must be 1..262144");
    if (o->idle_timeout < 0)
        return ss__fail(err, SS_EUSAGE, "idle_timeout must be >= 0");
    if (o->max_unadmitted < 0)
        return ss__fail(err, SS_EUSAGE, "max_unadmitted must be >= 0 (got %d)",
                        o->max_unadmitted);
    if (o->max_pending < 0)
        return ss__fail(err, SS_EUSAGE, "max_pending must be >= 0 (got %d)",
                        o->max_pending);
    if (o->max_per_ip < 0)
        return ss__fail(err, SS_EUSAGE, "max_per_ip must be >= 0 (got %d)",
                        o->max_per_ip);
    if (o->unix_mode > 0777)
        return ss__fail(err, SS_EUSAGE, "unix_mode must be a permission mode (0-0777)");
    if (o->socket_type != 0 && o->socket_type != SOCK_STREAM && o->socket_type != SOCK_DGRAM &&
        o->socket_type != SOCK_SEQPACKET)
        return ss__fail(err, SS_EUSAGE, "socket_type must be 0, SOCK_STREAM, SOCK_DGRAM or "
                        "SOCK_SEQPACKET (got %d)", o->socket_type);
    return 0;
}

/* ---- wake-ups and counters ------------------------------------------------ */

void ss__wake(ss_server *srv)
{
    int saved = errno; /* may run in a signal handler */
    uint64_t one = 1;
    /* EAGAIN means the counter is already non-zero: the loop will wake. */
    (void)!write(srv->wake_fd, &one, sizeof one);
    errno = saved;
}

void ss__wake_consume(ss_server *srv)
{
    uint64_t v;
    (void)!read(srv->wake_fd, &v, sizeof v);
}

void ss__active_add(ss_server *srv, long delta)
{
    pthread_mutex_lock(&srv->lock);
    if (delta < 0)
        atomic_fetch_sub(&srv->active, (size_t)-delta);
    else
        atomic_fetch_add(&srv->active, (size_t)delta);
    pthread_cond_broadcast(&srv->cond);
    pthread_mutex_unlock(&srv->lock);
    if (delta < 0)
        ss__wake(srv); /* a loop waiting for room may go on */
}

static void deadline_to_timespec(int64_t deadline_ms, struct timespec *ts)
{
    ts->tv_sec = deadline_ms / 1000;
    ts->tv_nsec = (deadline_ms % 1000) * 1000000;
}

bool ss__drain_threads(ss_server *srv, int64_t deadline)
{
    struct timespec ts;
    deadline_to_timespec(deadline, &ts);
    pthread_mutex_lock(&srv->lock);
    while (atomic_load(&srv->active) > 0) {
        if (deadline < 0)
            pthread_cond_wait(&srv->cond, &srv->lock);
        else if (pthread_cond_timedwait(&srv->cond, &srv->lock, &ts) ==
                 ETIMEDOUT)
            break;
    }
    bool done = atomic_load(&srv->active) == 0;
    pthread_mutex_unlock(&srv->lock);
    return done;
}

void ss__enter_child(ss_server *srv)
{
    atomic_store(&srv->in_child, true);
    ss__acceptor_forget(srv);
    srv->deferred = NULL; /* the parent's to give again, never the child's */
    ss__tls_ctx_after_fork(srv->opts.tls);
    /* Only the forking thread lives on in the child; a lock another thread
     * held at fork() would never be released, so start from fresh ones. */
    pthread_mutex_init(&srv->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&srv->cond, &ca);
    pthread_condattr_destroy(&ca);
    /* The parent drains on SIGINT (Ctrl-C reaches the whole process group):
     * a child finishes its request instead. SIGTERM is how the parent stops
     * a child past drain_timeout, so it must not run the parent's handler. */
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_DFL);
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_UNBLOCK, &term, NULL);
}

/* ---- bind and activate ------------------------------------------------------ */

static int default_bind(ss_server *srv, ss_sock *sock, const ss_addr *a,
                        ss_error *err)
{
    (void)srv;
    return ss_sock_bind(sock, a, err);
}

static int default_activate(ss_server *srv, ss_sock *sock, ss_error *err)
{
    /* 0 = the system's maximum: the kernel clamps any larger backlog to
     * net.core.somaxconn, and a short one drops handshakes under a burst
     * (clients then stall for a SYN retransmission, 1 s or more) */
    int rc = ss_sock_listen(sock, srv->opts.request_queue_size > 0
                                      ? srv->opts.request_queue_size
                                      : 65535);
    if (rc < 0)
        return ss__fail(err, rc, "cannot listen on %s: %s", srv->addr_text,
                        ss_strerror(rc));
    return 0;
}

static bool is_inet6_any(const ss_addr *a)
{
    return a->u.sa.sa_family == AF_INET6 &&
           memcmp(&a->u.in6.sin6_addr, &in6addr_any, sizeof in6addr_any) == 0;
}

static bool is_unix_path(const ss_addr *a)
{
    return a->u.sa.sa_family == AF_UNIX && a->len > sizeof(sa_family_t) &&
           a->u.un.sun_path[0] != '\0';
}

/* Remember the socket file we just created so server_close removes exactly
 * that file, and only from this process. */
static void remember_unix_file(ss_server *srv)
{
    if (!is_unix_path(&srv->addr))
        return;
    size_t n = srv->addr.len - offsetof(struct sockaddr_un, sun_path);
    if (n >= sizeof srv->unix_path)
        n = sizeof srv->unix_path - 1;
    memcpy(srv->unix_path, srv->addr.u.un.sun_path, n);
    srv->unix_path[n] = '\0';
    struct stat st; /* lstat: a link in its place is not the socket we made */
    if (lstat(srv->unix_path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        srv->unix_dev = st.st_dev;
        srv->unix_ino = st.st_ino;
    } else {
        srv->unix_path[0] = '\0';
    }
}

static void remove_unix_file(ss_server *srv)
{
    if (srv->unix_path[0] == '\0' || getpid() != srv->owner_pid)
        return;
    struct stat st;
    if (lstat(srv->unix_path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == srv->unix_dev &&
        st.st_ino == srv->unix_ino)
        unlink(srv->unix_path);
    srv->unix_path[0] = '\0';
}

/*
 * The socket file this server bound, opened without following a link
 * (O_PATH: no access needed). Its mode and owner are changed through this
 * descriptor, never by path: whoever can write to the socket's directory
 * can swap the file for a link to any other file between bind() and the
 * change, and a root server would then chmod or chown that file for them.
 * Returns the descriptor, -ENOTSOCK when the path no longer names the
 * socket we made, or another negative errno.
 */
static int unix_file_open_ours(const ss_server *srv)
{
    if (srv->unix_path[0] == '\0') /* right after bind() it was no socket */
        return -ENOTSOCK;
    int fd = open(srv->unix_path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode) || st.st_dev != srv->unix_dev ||
        st.st_ino != srv->unix_ino) {
        close(fd);
        return -ENOTSOCK;
    }
    return fd;
}

/* chmod through an O_PATH descriptor: fchmod() refuses one, and a socket's
 * own descriptor would change its sockfs inode, not the file. The kernel
 * resolves /proc/self/fd/N to exactly the inode opened. */
static int unix_file_chmod(int pfd, mode_t mode)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", pfd);
    return chmod(path, mode) < 0 ? -errno : 0;
}

int ss_server_chown_unix_file(ss_server *srv, uid_t uid, gid_t gid)
{
    if (srv == NULL || srv->unix_path[0] == '\0' || getpid() != srv->owner_pid)
        return SS_EUSAGE;
    int pfd = unix_file_open_ours(srv);
    if (pfd < 0)
        return pfd;
    int rc = fchownat(pfd, "", uid, gid, AT_EMPTY_PATH) < 0 ? -errno : 0;
    close(pfd);
    return rc;
}

static int set_unix_mode(ss_server *srv, ss_error *err)
{
    int pfd = unix_file_open_ours(srv);
    int rc = pfd < 0 ? pfd : unix_file_chmod(pfd, (mode_t)srv->opts.unix_mode);
    if (pfd >= 0)
        close(pfd);
    if (rc == -ENOTSOCK)
        return ss__fail(err, rc, "cannot set the mode of %s: the file is no longer the "
                        "socket this server bound (replaced since?)", srv->addr_text);
    if (rc < 0)
        return ss__fail(err, rc, "cannot set the mode of %s: %s", srv->addr_text,
                        strerror(-rc));
    return 0;
}

static int open_socket(ss_server *srv, const ss_addr *a, ss_error *err)
{
    int rc = ss_sock_open_for(&srv->sock, a);
    if (rc < 0)
        return ss__fail(err, rc, "cannot open a socket for %s: %s",
                        srv->addr_text, ss_strerror(rc));
    if (a->u.sa.sa_family != AF_UNIX) {
        if (srv->opts.allow_reuse_address)
            ss_sock_set_option(&srv->sock, SS_OPT_REUSEADDR, 1);
        if (is_inet6_any(a)) /* "[::]" means dual-stack, whatever the sysctl */
            ss_sock_set_option(&srv->sock, SS_OPT_V6ONLY, 0);
    }
    if (srv->opts.allow_reuse_port &&
        (rc = ss_sock_set_option(&srv->sock, SS_OPT_REUSEPORT, 1)) < 0)
        return ss__fail(err, rc, "cannot set SO_REUSEPORT on %s: %s",
                        srv->addr_text, ss_strerror(rc));

    ss_error local = {0};
    rc = srv->opts.server_bind != NULL
             ? srv->opts.server_bind(srv, &srv->sock, a, &local)
             : default_bind(srv, &srv->sock, a, &local);
    if (rc < 0) {
        if (local.msg[0] == '\0')
            return ss__fail(err, rc, "cannot bind %s: %s", srv->addr_text,
                            ss_strerror(rc));
        return ss__fail(err, rc, "%s", local.msg);
    }
    if (ss_sock_getsockname(&srv->sock, &srv->addr) < 0)
        srv->addr = *a;
    srv->addr.kind = a->kind;
    ss_addr_format(&srv->addr, srv->addr_text, sizeof srv->addr_text);
    remember_unix_file(srv);
    /* before listen(): until then nobody can connect, so no peer slips in
     * under the umask's mode */
    if (srv->opts.unix_mode != 0 && is_unix_path(&srv->addr) &&
        (rc = set_unix_mode(srv, err)) < 0)
        return rc;

    if (srv->stream) {
        local.msg[0] = '\0';
        rc = srv->opts.server_activate != NULL
                 ? srv->opts.server_activate(srv, &srv->sock, &local)
                 : default_activate(srv, &srv->sock, &local);
        if (rc < 0) {
            if (local.msg[0] == '\0')
                return ss__fail(err, rc, "cannot listen on %s: %s",
                                srv->addr_text, ss_strerror(rc));
            return ss__fail(err, rc, "%s", local.msg);
        }
    }
    /* The loop polls before it accepts or receives; with several waiters on
     * one socket (prefork) the losers must get EAGAIN, not block. */
    rc = ss__set_nonblocking(srv->sock.fd, 1);
    if (rc < 0)
        return ss__fail(err, rc, "cannot set %s non-blocking: %s",
                        srv->addr_text, ss_strerror(rc));
    srv->sock.timeout = 0;
    return 0;
}

/*
 * The inherited socket's counterpart of open_socket: it is bound already
 * (inherited.c checked it), so only listen() if nobody has, then make it
 * non-blocking as open_socket does.
 */
static int adopt_socket(ss_server *srv, ss_sock *sock, bool listening, ss_error *err)
{
    srv->sock = *sock;
    int rc;
    if (srv->stream && !listening) {
        ss_error local = {0};
        rc = srv->opts.server_activate != NULL
                 ? srv->opts.server_activate(srv, &srv->sock, &local)
                 : default_activate(srv, &srv->sock, &local);
        if (rc < 0) {
            if (local.msg[0] == '\0')
                return ss__fail(err, rc, "cannot listen on %s: %s", srv->addr_text,
                                ss_strerror(rc));
            return ss__fail(err, rc, "%s", local.msg);
        }
    }
    rc = ss__set_nonblocking(srv->sock.fd, 1);
    if (rc < 0)
        return ss__fail(err, rc, "cannot set %s non-blocking: %s", srv->addr_text,
                        ss_strerror(rc));
    srv->sock.timeout = 0;
    return 0;
}

/* Did the caller ask for one socket type (opts.socket_type), and is this
 * address another? */
static int check_socket_type(const ss_server_opts *o, const ss_addr *a, const char *address,
                             ss_error *err)
{
    if (o->socket_type == 0 || ss_addr_socktype(a->kind) == o->socket_type)
        return 0;
    const char *want = o->socket_type == SOCK_STREAM  ? "stream"
                       : o->socket_type == SOCK_DGRAM ? "datagram"
                                                      : "seqpacket";
    return ss__fail(err, SS_EUSAGE, "cannot serve %s: this server serves %s sockets only",
                    address, want);
}

static void destroy(ss_server *srv)
{
    if (srv->model != NULL && srv->model->destroy != NULL)
        srv->model->destroy(srv);
    if (!atomic_load(&srv->in_child))
        ss__deferred_drop(srv);
    ss__acceptor_free(srv);
    ss__admit_free(srv);
    remove_unix_file(srv);
    ss_sock_close(&srv->sock);
    if (srv->wake_fd >= 0)
        close(srv->wake_fd);
    pthread_cond_destroy(&srv->cond);
    pthread_mutex_destroy(&srv->lock);
    free(srv->dgram_buf);
    free(srv->pfd);
    free(srv);
}

int ss_server_new(ss_server **out, const char *address,
                  const ss_handler *handler, const ss_server_opts *opts,
                  ss_error *err)
{
    if (out == NULL)
        return ss__fail(err, SS_EUSAGE, "ss_server_new: out is NULL");
    *out = NULL;
    if (address == NULL || handler == NULL)
        return ss__fail(err, SS_EUSAGE,
                        "ss_server_new: address and handler are required");
    ss_server_opts o;
    if (opts != NULL)
        o = *opts;
    else
        ss_server_opts_init(&o);
    int rc = check_opts(&o, err);
    if (rc < 0)
        return rc;
    const ss__model_ops *model = ss__model_ops_for(o.model);
    if (model == NULL)
        return ss__fail(err, SS_EUNSUPPORTED,
                        "the %s model is not available in this build of "
                        "libsockserve",
                        ss_model_name(o.model));

    ss_addr a;
    ss_sock inherited = SS_SOCK_INIT;
    bool is_inherited = ss_addr_is_inherited(address), listening = false;
    if (is_inherited)
        rc = ss__inherited_take(address, o.socket_type, &inherited, &a, &listening, err);
    else if ((rc = ss_addr_parse(&a, address, SS_ADDR_PASSIVE, err)) == 0)
        rc = check_socket_type(&o, &a, address, err);
    if (rc < 0)
        return rc;
    if (o.tls != NULL && !ss_addr_is_stream(a.kind))
        return ss__fail(err, SS_EUSAGE, "%s: TLS needs a stream address (tcp, unix)", address);
    /* The header is a stream's first bytes; a seqpacket message holding it
     * and data would lose the data when the header is read off it. */
    if (o.proxy_protocol && a.kind != SS_ADDR_TCP && a.kind != SS_ADDR_UNIX)
        return ss__fail(err, SS_EUSAGE, "%s: the PROXY protocol is for tcp and unix stream servers",
                        address);

    ss_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL)
        return ss__fail(err, -ENOMEM, "out of memory");
    srv->opts = o;
    srv->handler = *handler;
    srv->sock.fd = -1;
    srv->wake_fd = -1;
    srv->owner_pid = getpid();
    srv->stream = ss_addr_is_stream(a.kind);
    srv->inherited = is_inherited;
    srv->addr = a;
    ss_addr_format(&a, srv->addr_text, sizeof srv->addr_text);
    pthread_mutex_init(&srv->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* ss__deadline's clock */
    pthread_cond_init(&srv->cond, &ca);
    pthread_condattr_destroy(&ca);

    /* before anything can fail: destroy() undoes these two whatever
     * state the rest is in */
    srv->acceptor.epfd = -1;
    rc = ss__admit_init(srv);
    if (rc == 0)
        rc = ss__acceptor_init(srv);
    if (rc < 0) {
        rc = ss__fail(err, rc, "cannot set up the acceptor: %s", ss_strerror(rc));
        goto fail;
    }
    srv->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (srv->wake_fd < 0) {
        rc = ss__fail(err, -errno, "cannot create an eventfd: %s",
                      strerror(errno));
        goto fail;
    }
    rc = is_inherited ? adopt_socket(srv, &inherited, listening, err)
                      : open_socket(srv, &a, err);
    if (rc < 0)
        goto fail;
    if (!srv->stream) {
        srv->dgram_buf = malloc(o.max_packet_size);
        if (srv->dgram_buf == NULL) {
            rc = ss__fail(err, -ENOMEM, "out of memory");
            goto fail;
        }
    }
    /* A blocking stream handler under the event model: its handle() would
     * stall every connection of a loop, so connections wait in the core's
     * acceptor (epoll) for their first byte and each then runs on a thread
     * of its own. */
    if (o.model == SS_MODEL_EVENT && srv->stream && o.event == NULL)
        model = &ss__model_threading;
    srv->model = model;
    if (model->start != NULL && (rc = model->start(srv, err)) < 0)
        goto fail;
    *out = srv;
    return 0;
fail:
    if (is_inherited) {
        /* still the caller's, as the descriptor was given (blocking or
         * not; already listening stays so: that cannot be undone) */
        if (inherited.timeout != 0)
            ss__set_nonblocking(inherited.fd, 0);
        srv->sock.fd = -1;
    }
    destroy(srv);
    return rc;
}

/* ---- readiness (systemd Type=notify) ----------------------------------------- */

static bool may_notify(ss_server *srv)
{
    return srv->opts.notify && getpid() == srv->owner_pid && !atomic_load(&srv->in_child);
}

static void notify(ss_server *srv, const char *what, const char *status)
{
    char state[64 + SS_ADDR_STRLEN];
    snprintf(state, sizeof state, "%s\nSTATUS=%s %s", what, status, srv->addr_text);
    ss_error err = {0};
    if (ss_notify(state, &err) < 0)
        ss_server_log(srv, SS_LOG_WARN, "%s", err.msg);
}

void ss__notify_ready(ss_server *srv)
{
    if (may_notify(srv) && !atomic_exchange(&srv->notified_ready, true))
        notify(srv, "READY=1", "serving on");
}

void ss__notify_stopping(ss_server *srv)
{
    /* the caller made sure this runs once (server_close's first call) */
    if (may_notify(srv) && atomic_load(&srv->notified_ready))
        notify(srv, "STOPPING=1", "draining");
}

/* ---- close and free ------------------------------------------------------------ */

static bool requests_may_wait(const ss_server *srv)
{
    if (!srv->opts.block_on_close)
        return false;
    /* daemon threads are not waited for (Python's _NoThreads) */
    return !(srv->opts.model == SS_MODEL_THREADING && srv->opts.daemon_threads);
}

static void finish_requests(ss_server *srv)
{
    bool done = true;
    if (srv->model->drain != NULL)
        done = srv->model->drain(srv, ss__deadline(srv->opts.drain_timeout));
    if (!done)
        ss_server_log(srv, SS_LOG_WARN,
                      "%s: %zu request(s) still running after %gs, stopping "
                      "them",
                      srv->addr_text, atomic_load(&srv->active),
                      srv->opts.drain_timeout);
    if (srv->model->abort != NULL)
        srv->model->abort(srv);
}

void ss_server_close(ss_server *srv)
{
    if (srv == NULL)
        return;
    pthread_mutex_lock(&srv->lock);
    bool was_closed = srv->closed;
    bool serving = srv->serving;
    pthread_mutex_unlock(&srv->lock);
    if (was_closed)
        return;
    ss__notify_stopping(srv);
    if (serving)
        ss_server_shutdown(srv);
    pthread_mutex_lock(&srv->lock);
    srv->closed = true;
    pthread_mutex_unlock(&srv->lock);

    /* Stop taking connections first (clients now get ECONNREFUSED rather
     * than a backlog nobody serves); a datagram socket is what running
     * handlers reply through, so it stays until they are done. */
    if (srv->stream) {
        remove_unix_file(srv);
        ss_sock_close(&srv->sock);
        /* connections that never became requests are not drained */
        if (!atomic_load(&srv->in_child))
            ss__acceptor_free(srv);
    }
    /* a request held for want of a task never started: it ends here */
    if (!atomic_load(&srv->in_child))
        ss__deferred_drop(srv);
    if (requests_may_wait(srv))
        finish_requests(srv);
}

void ss_server_free(ss_server *srv)
{
    if (srv == NULL)
        return;
    ss_server_close(srv);
    /* Memory the requests use goes away now, so whatever still runs is
     * finished here, whatever block_on_close said. */
    if (!atomic_load(&srv->in_child))
        finish_requests(srv);
    destroy(srv);
}

/* ---- accessors and logging ------------------------------------------------------- */

const ss_addr *ss_server_address(const ss_server *srv) { return &srv->addr; }
int ss_server_fileno(const ss_server *srv) { return srv->sock.fd; }
void *ss_server_user(const ss_server *srv) { return srv->opts.user; }
void *ss_server_handler_data(const ss_server *srv) { return srv->handler.data; }
const ss_server_opts *ss_server_options(const ss_server *srv)
{
    return &srv->opts;
}

size_t ss_server_active(const ss_server *srv)
{
    return atomic_load(&((ss_server *)srv)->active);
}

void ss_server_stats_get(const ss_server *srv, ss_server_stats *out)
{
    ss_server *s = (ss_server *)srv; /* atomics are read-only here */
    out->accepted = atomic_load(&s->counters.accepted);
    out->refused = atomic_load(&s->counters.refused);
    out->rejected = atomic_load(&s->counters.rejected);
    out->errors = atomic_load(&s->counters.errors);
    out->active = atomic_load(&s->active);
    out->unadmitted = atomic_load(&s->unadmitted);
    out->evicted = atomic_load(&s->counters.evicted);
    out->denied = atomic_load(&s->counters.denied);
    out->over_ip = atomic_load(&s->counters.over_ip);
    out->timed_out = atomic_load(&s->counters.timed_out);
    out->dropped = atomic_load(&s->counters.dropped);
    out->tls_failed = atomic_load(&s->counters.tls_failed);
    out->bad_header = atomic_load(&s->counters.bad_header);
}

bool ss__log_wanted(const ss_server *srv, ss_log_level level)
{
    if (srv == NULL || srv->opts.log == NULL)
        return false;
    /* the default sink drops these: skip their formatting (per connection) */
    return srv->opts.log != ss_server_log_to_stderr || level <= SS_LOG_WARN;
}

void ss_server_log_to_stderr(void *log_data, ss_log_level level, const char *line)
{
    (void)log_data;
    if (level > SS_LOG_WARN)
        return;
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "%s: %s: %s\n", program_invocation_short_name,
                     level == SS_LOG_ERROR ? "error" : "warning", line);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof buf) { /* cut, but still one whole line */
        n = sizeof buf - 1;
        buf[n - 1] = '\n';
    }
    ssize_t w = write(STDERR_FILENO, buf, (size_t)n);
    (void)w; /* stderr is where failures are told: nowhere left to tell this one */
}

void ss_server_log(ss_server *srv, ss_log_level level, const char *fmt, ...)
{
    if (!ss__log_wanted(srv, level))
        return;
    char line[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    srv->opts.log(srv->opts.log_data, level, line);
}
