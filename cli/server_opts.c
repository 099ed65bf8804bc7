/* SPDX-License-Identifier: MIT */
/* server_opts.c — common flags, logging, listening line and signals of the servers. */
#include "server_opts.h"

#include <errno.h>
#include <grp.h>
#include <stddef.h>
#include <pthread.h>
#include <pwd.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


/*
 * The signal watcher's view of the running server. The CLI runs one server
 * per process, so file-scope state is the honest shape here (the library
 * itself keeps none). Shared between the main thread and the watcher thread,
 * hence atomic.
 */
static ss_server *running_server; /* under running_lock: never freed while used */
static cli_server *running_cli;   /* its flags, for SIGHUP's reload */
static pthread_mutex_t running_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int stop_signals;
static pid_t main_pid;

/* ---- flags ------------------------------------------------------------------ */

/*
 * The shared server options: one table (opts.h), added by every server
 * subcommand to its own. One row a flag; its apply() below it. To add a
 * flag: write `static int set_NAME(const cli_optarg *a)` (the cli_server is
 * a->ctx, the value a->value; cli_bad_value() for one that does not parse),
 * add its row to cli_server_options[] and its help line to
 * CLI_SERVER_FLAGS_HELP (server_opts.h) and man/sockserve.1.
 */

static cli_server *server_of(const cli_optarg *a)
{
    return a->ctx;
}

static int set_quiet(const cli_optarg *a)
{
    server_of(a)->verbosity = CLI_LOG_QUIET;
    return CLI_OK;
}

/* -v: one line per connection; -vv (or -v -v): debug too */
static int set_verbose(const cli_optarg *a)
{
    cli_server *c = server_of(a);
    c->verbosity = c->verbosity < CLI_LOG_VERBOSE ? CLI_LOG_VERBOSE : c->verbosity + 1;
    return CLI_OK;
}

static int set_proxy_protocol(const cli_optarg *a)
{
    server_of(a)->opts.proxy_protocol = true;
    return CLI_OK;
}

static int set_model(const cli_optarg *a)
{
    cli_server *c = server_of(a);
    if (ss_model_parse(a->value, &c->opts.model) != 0)
        return cli_bad_value(a,
                             "expected serial, threading, forking, pool, prefork, event or coroutine");
    c->model_given = true;
    return CLI_OK;
}

static int set_workers(const cli_optarg *a)
{
    cli_server *c = server_of(a);
    long n;
    if (!cli_parse_int(a->value, 1, 4096, &n))
        return cli_bad_value(a, "expected a positive integer (1-4096)");
    c->opts.workers = (int)n;
    c->workers_given = true;
    return CLI_OK;
}

/* A positive count into the int at offset in ss_server_opts. */
static int set_count(const cli_optarg *a)
{
    long n;
    if (!cli_parse_int(a->value, 1, 10000000, &n))
        return cli_bad_value(a, "expected a positive integer");
    *(int *)(void *)((char *)&server_of(a)->opts + a->opt->offset) = (int)n;
    return CLI_OK;
}

/* Seconds >= 0 into the double at offset in ss_server_opts. */
static int set_seconds(const cli_optarg *a)
{
    double sec;
    if (!cli_parse_seconds(a->value, &sec))
        return cli_bad_value(a, "expected seconds >= 0");
    *(double *)(void *)((char *)&server_of(a)->opts + a->opt->offset) = sec;
    return CLI_OK;
}

static int set_handshake_timeout(const cli_optarg *a)
{
    double sec;
    if (!cli_parse_seconds(a->value, &sec) || sec <= 0)
        return cli_bad_value(a, "expected seconds > 0");
    server_of(a)->opts.handshake_timeout = sec;
    return CLI_OK;
}

/* docs/safety.md names this flag; the library's default (60 s) holds
 * without it */
static int set_write_timeout(const cli_optarg *a)
{
    double sec;
    if (!cli_parse_seconds(a->value, &sec))
        return cli_bad_value(a, "expected seconds >= 0 (0 = never)");
    server_of(a)->opts.write_timeout = sec;
    return CLI_OK;
}

static int set_reply_rate(const cli_optarg *a)
{
    long n;
    if (!cli_parse_int(a->value, 0, 100000000, &n))
        return cli_bad_value(a, "expected an integer >= 0 (0 = no limit)");
    server_of(a)->opts.reply_rate = (unsigned)n;
    return CLI_OK;
}

/* --allow-from, --deny-from: checked now, built into rules at check time */
static int add_rule(const cli_optarg *a)
{
    cli_server *c = server_of(a);
    bool allow = strcmp(a->opt->name, "allow-from") == 0;
    ss_access *probe;
    ss_error err = {0};
    if (ss_access_new(&probe) < 0) {
        cli_error(c->cmd, "out of memory");
        return CLI_RUNTIME;
    }
    int bad = ss_access_add(probe, allow, a->value, &err);
    ss_access_free(probe);
    if (bad < 0)
        return cli_bad_value(a, "expected an address or CIDR (10.0.0.0/8, ::1, 2001:db8::/32)");
    if (c->nrules >= CLI_MAX_RULES)
        return cli_usage_error(c->cmd, "too many --%s rules (at most %d; use --access-file)",
                               a->opt->name, CLI_MAX_RULES);
    c->rules[c->nrules++] = (cli_rule){allow, a->value};
    return CLI_OK;
}

static int set_backend(const cli_optarg *a)
{
    if (ss_backend_parse(a->value, &server_of(a)->opts.backend) != 0)
        return cli_bad_value(a, "expected epoll, io_uring or auto");
    return CLI_OK;
}

static int set_user(const cli_optarg *a)
{
    if (getpwnam(a->value) == NULL)
        return cli_bad_value(a, "no such user");
    server_of(a)->user_name = a->value;
    return CLI_OK;
}

#define SERVER_OPT(field) offsetof(ss_server_opts, field)

const cli_opt cli_server_options[] = {
    {"model", 0, CLI_VALUE, set_model, 0},
    {"workers", 0, CLI_VALUE, set_workers, 0},
    {"backend", 0, CLI_VALUE, set_backend, 0},
    {"max-conns", 0, CLI_VALUE, set_count, SERVER_OPT(max_conns)},
    {"idle-timeout", 0, CLI_VALUE, set_seconds, SERVER_OPT(idle_timeout)},
    {"drain-timeout", 0, CLI_VALUE, set_seconds, SERVER_OPT(drain_timeout)},
    {"user", 0, CLI_VALUE, set_user, 0},
    {"max-pending", 0, CLI_VALUE, set_count, SERVER_OPT(max_pending)},
    {"handshake-timeout", 0, CLI_VALUE, set_handshake_timeout, 0},
    {"write-timeout", 0, CLI_VALUE, set_write_timeout, 0},
    {"max-per-ip", 0, CLI_VALUE, set_count, SERVER_OPT(max_per_ip)},
    {"allow-from", 0, CLI_VALUE, add_rule, 0},
    {"deny-from", 0, CLI_VALUE, add_rule, 0},
    {"access-file", 0, CLI_VALUE, cli_opt_set_string, offsetof(cli_server, access_file)},
    {"reply-rate", 0, CLI_VALUE, set_reply_rate, 0},
    {"proxy-protocol", 0, CLI_NO_VALUE, set_proxy_protocol, 0},
    {"quiet", 'q', CLI_NO_VALUE, set_quiet, 0},
    {"verbose", 'v', CLI_NO_VALUE, set_verbose, 0},
    {NULL, 0, 0, NULL, 0},
};

/* --cert, --cert-key, --ca: only for subcommands that serve TLS (tls_flags) */
const cli_opt cli_server_tls_options[] = {
    {"cert", 0, CLI_VALUE, cli_opt_set_string, offsetof(cli_server, cert_file)},
    {"cert-key", 0, CLI_VALUE, cli_opt_set_string, offsetof(cli_server, cert_key_file)},
    {"ca", 0, CLI_VALUE, cli_opt_set_string, offsetof(cli_server, ca_file)},
    {NULL, 0, 0, NULL, 0},
};

void cli_server_add_options(cli_spec *spec, cli_server *c)
{
    cli_spec_add(spec, cli_server_options, c);
    if (c->tls_flags)
        cli_spec_add(spec, cli_server_tls_options, c);
}

int cli_server_check(cli_server *c)
{
    /* ForkingMixIn's max_children is the forking model's worker count. */
    if (c->opts.model == SS_MODEL_FORKING && c->workers_given)
        c->opts.max_children = c->opts.workers;
    if (c->cert_file != NULL || c->cert_key_file != NULL || c->ca_file != NULL) {
        if (c->cert_file == NULL || c->cert_key_file == NULL)
            return cli_usage_error(c->cmd, "TLS needs both --cert and --cert-key");
        ss_tls_opts to = {
            .cert_file = c->cert_file, .key_file = c->cert_key_file, .ca_file = c->ca_file};
        ss_error err = {0};
        ss_tls_ctx_free(c->tls);
        c->tls = NULL;
        if (ss_tls_ctx_new(&c->tls, true, &to, &err) < 0)
            return cli_usage_error(c->cmd, "%s", err.msg);
        c->opts.tls = c->tls;
    }
    if (c->nrules > 0 || c->access_file != NULL) {
        ss_error err = {0};
        ss_access_free(c->access);
        c->access = NULL;
        if (cli_server_build_access(c, &c->access, &err) < 0) {
            ss_tls_ctx_free(c->tls);
            c->tls = c->opts.tls = NULL;
            return cli_usage_error(c->cmd, "%s", err.msg);
        }
    }
    return 0;
}

int cli_server_build_access(const cli_server *c, ss_access **out, ss_error *err)
{
    *out = NULL;
    ss_access *a;
    if (ss_access_new(&a) < 0) {
        snprintf(err->msg, sizeof err->msg, "out of memory");
        return -ENOMEM;
    }
    for (int i = 0; i < c->nrules; i++) {
        int rc = ss_access_add(a, c->rules[i].allow, c->rules[i].cidr, err);
        if (rc < 0) {
            ss_access_free(a);
            return rc;
        }
    }
    if (c->access_file != NULL) {
        int rc = ss_access_load(a, c->access_file, err);
        if (rc < 0) {
            ss_access_free(a);
            return rc;
        }
    }
    *out = a;
    return 0;
}

/* ---- logging ---------------------------------------------------------------- */

/*
 * Is stderr the journal? systemd sets JOURNAL_STREAM=DEV:INO for a service
 * whose stderr it connected to journald (systemd.exec(5)); journald stamps
 * every line itself, so ours would only repeat it. Compared with stderr's
 * own device and inode, since the variable is inherited by whatever the
 * service starts, stderr redirected or not.
 */
static bool stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    if (js == NULL || *js == '\0')
        return false;
    unsigned long long dev, ino;
    char extra;
    if (sscanf(js, "%llu:%llu%c", &dev, &ino, &extra) != 2)
        return false;
    struct stat st;
    if (fstat(STDERR_FILENO, &st) < 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/* "2026-12-07T09:30:01.123Z ": ISO 8601, UTC, milliseconds. */
static void timestamp(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (gmtime_r(&ts.tv_sec, &tm) == NULL) {
        buf[0] = '\0';
        return;
    }
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             ts.tv_nsec / 1000000L);
}

/* One write() per line so lines from threads and children never interleave. */
static void log_line(void *data, ss_log_level level, const char *line)
{
    const cli_server *c = data;
    ss_log_level max = c->verbosity <= CLI_LOG_QUIET    ? SS_LOG_ERROR
                       : c->verbosity == CLI_LOG_NORMAL ? SS_LOG_WARN
                       : c->verbosity == CLI_LOG_VERBOSE ? SS_LOG_INFO
                                                         : SS_LOG_DEBUG;
    if (level > max)
        return;
    static const char *const tag[] = {"error: ", "warning: ", "", "debug: "};
    char stamp[96] = "";
    if (c->log_timestamps)
        timestamp(stamp, sizeof stamp);
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "%ssockserve: %s: %s%s\n", stamp, c->cmd,
                     (unsigned)level < 4 ? tag[level] : "", line);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof buf) {
        n = sizeof buf - 1;
        buf[n - 1] = '\n';
    }
    ssize_t w = write(STDERR_FILENO, buf, (size_t)n);
    (void)w; /* nowhere left to report a failed log write */
}

/* What a peer does to us (vanish, stall) is per-connection news, not a server error. */
static bool peer_caused(int code)
{
    switch (code) {
    case -ECONNRESET: case -EPIPE: case -ETIMEDOUT: case -ENOTCONN: case -ECONNABORTED:
    case SS_ETIMEOUT: case SS_EEOF: case SS_ECLOSED: case SS_ETOOLONG: case SS_ESHUTDOWN:
        return true;
    default:
        return false;
    }
}

static void handle_error(ss_server *srv, ss_request *req, int code)
{
    char peer[SS_ADDR_STRLEN] = "?";
    if (req != NULL && ss_addr_format(&req->client_address, peer, sizeof peer) < 0)
        strcpy(peer, "?");
    ss_server_log(srv, peer_caused(code) ? SS_LOG_INFO : SS_LOG_ERROR, "request from %s: %s",
                  peer[0] ? peer : "unnamed peer", ss_strerror(code));
}

void cli_server_init(cli_server *c, const char *cmd)
{
    memset(c, 0, sizeof *c);
    c->cmd = cmd;
    c->verbosity = CLI_LOG_NORMAL;
    c->log_timestamps = !stderr_is_journal();
    ss_server_opts_init(&c->opts);
    c->opts.drain_timeout = 5.0;
    /* a tool left running takes bursts: a backlog that overflows makes the
     * kernel drop handshakes and clients stall for seconds (SYN-ACK
     * retransmission). 0 asks for the system's maximum (net.core.somaxconn):
     * 1024 overflowed under 10,000 clients connecting at once (nstat
     * TcpExtListenOverflows), and SYN floods are the syncookies' job */
    c->opts.request_queue_size = 0;
    /* a restarted server must not wait out TIME_WAIT (as HTTPServer does) */
    c->opts.allow_reuse_address = true;
    /* the CLI's datagram servers answer anyone: bound what a spoofed
     * source can make them send (the library's default is no limit) */
    c->opts.reply_rate = 1000;
    /* under systemd (Type=notify): READY=1 once serving, STOPPING=1 at the drain */
    c->opts.notify = true;
    c->opts.log = log_line;
    c->opts.log_data = c;
    c->opts.handle_error = handle_error;
}

/* ---- running ---------------------------------------------------------------- */

/*
 * SIGINT and SIGTERM are blocked in every thread and taken by one thread that
 * waits for them with sigwaitinfo(), instead of an asynchronous handler: the
 * servers are threaded, and a signal then has no "current thread" worth
 * interrupting. (ThreadSanitizer also defers asynchronous handlers to its own
 * interception points and was seen to lose one now and then; a waited-for
 * signal cannot be lost.) The signals are blocked before the server or any
 * thread exists, so one sent as soon as the listening line appears stays
 * pending until the watcher takes it.
 */
static sigset_t stop_set, mask_before;

static void on_stop_signal(int sig)
{
    if (sig == SIGINT && atomic_load(&stop_signals) > 0)
        _exit(CLI_RUNTIME); /* Ctrl-C twice: the user does not want to wait */
    bool first = atomic_fetch_add(&stop_signals, 1) == 0;
    pthread_mutex_lock(&running_lock);
    if (running_server != NULL)
        ss_server_shutdown_nowait(running_server);
    if (first && running_cli != NULL && running_cli->on_drain != NULL)
        running_cli->on_drain(running_cli);
    pthread_mutex_unlock(&running_lock);
}

/* The drain deadline ran out while the server is still up: cut what it is
 * serving. Needed for serial, whose one request holds serve_forever itself
 * (the other models are cut by server_close at the same deadline). */
static void drain_expired(void)
{
    pthread_mutex_lock(&running_lock);
    if (running_server != NULL)
        ss_server_abort(running_server);
    pthread_mutex_unlock(&running_lock);
}

static double drain_seconds(void)
{
    pthread_mutex_lock(&running_lock);
    double d = running_server != NULL ? ss_server_options(running_server)->drain_timeout : -1;
    pthread_mutex_unlock(&running_lock);
    return d;
}

/* SIGHUP: build the rules anew from the flags and --access-file; a file
 * that does not load keeps the old rules, and says where it is wrong. */
static void reload_access(void)
{
    pthread_mutex_lock(&running_lock);
    if (running_server != NULL && running_cli != NULL && running_cli->access_file != NULL) {
        ss_access *fresh;
        ss_error err = {0};
        if (cli_server_build_access(running_cli, &fresh, &err) == 0) {
            ss_server_set_access(running_server, fresh);
            ss_server_log(running_server, SS_LOG_WARN, "SIGHUP: access rules re-read from %s",
                          running_cli->access_file);
        } else {
            ss_server_log(running_server, SS_LOG_ERROR, "SIGHUP: %s; keeping the old rules",
                          err.msg);
        }
    }
    pthread_mutex_unlock(&running_lock);
}

/* SIGHUP: certificate renewal without a restart. */
static void reload_tls(void)
{
    pthread_mutex_lock(&running_lock);
    if (running_server != NULL && running_cli != NULL && running_cli->tls != NULL) {
        ss_error err = {0};
        if (ss_tls_ctx_reload(running_cli->tls, &err) == 0)
            ss_server_log(running_server, SS_LOG_WARN,
                          "SIGHUP: certificate re-read from %s", running_cli->cert_file);
        else
            ss_server_log(running_server, SS_LOG_ERROR, "SIGHUP: %s; keeping the old certificate",
                          err.msg);
    }
    pthread_mutex_unlock(&running_lock);
}

static void reload(void)
{
    reload_access();
    reload_tls();
}

static void *watch_stop_signals(void *started)
{
    /* Our start-up (glibc's and the sanitizers' thread set-up) is over:
     * the creator may fork now (see install_stop_watcher). */
    sem_post(started);
    for (;;) {
        int sig = sigwaitinfo(&stop_set, NULL);
        if (sig <= 0)
            continue;
        if (sig == SIGHUP) {
            reload();
            continue;
        }
        on_stop_signal(sig);
        /* draining: wait for a second signal, or for the deadline */
        double d = drain_seconds();
        if (d < 0)
            continue; /* drain forever (or no server yet) */
        struct timespec now, end;
        clock_gettime(CLOCK_MONOTONIC, &now);
        end.tv_sec = now.tv_sec + (time_t)d;
        end.tv_nsec = now.tv_nsec + (long)((d - (double)(time_t)d) * 1e9);
        if (end.tv_nsec >= 1000000000L) {
            end.tv_sec++;
            end.tv_nsec -= 1000000000L;
        }
        for (;;) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            long long left_ns = (long long)(end.tv_sec - now.tv_sec) * 1000000000LL +
                                (end.tv_nsec - now.tv_nsec);
            if (left_ns <= 0) {
                drain_expired();
                break;
            }
            struct timespec left = {.tv_sec = (time_t)(left_ns / 1000000000LL),
                                    .tv_nsec = (long)(left_ns % 1000000000LL)};
            sig = sigtimedwait(&stop_set, NULL, &left);
            if (sig == SIGHUP)
                reload();
            else if (sig > 0)
                on_stop_signal(sig); /* a second SIGINT exits; SIGTERM drains on */
        }
    }
    return NULL;
}

/*
 * No fork while the watcher is at work. Everything it does on a signal runs
 * under running_lock (the SIGHUP reload inside OpenSSL, its log line inside
 * gmtime_r), so fork() takes that lock first. A child forked while the
 * watcher held one of OpenSSL's locks or glibc's tzset lock got that lock
 * held by a thread it does not have, and hung at its first handshake or log
 * line: a SIGHUP just after the listening line, as the prefork workers were
 * being forked, left one worker hung for good (seen in integration.tls under
 * load: gdb showed it in __tz_convert's lock, the forking model's children in
 * CRYPTO_THREAD_write_lock).
 */
static void before_fork(void)
{
    pthread_mutex_lock(&running_lock);
}

static void after_fork_in_parent(void)
{
    pthread_mutex_unlock(&running_lock);
}

/* A child of the forking/prefork models (or any fork) starts with the mask
 * the process had before us: there the default actions are the right ones,
 * and the parent is the one that drains. */
static void after_fork_in_child(void)
{
    pthread_mutex_unlock(&running_lock);
    pthread_sigmask(SIG_SETMASK, &mask_before, NULL);
}

void cli_server_stop(ss_server *srv)
{
    if (getpid() == main_pid)
        ss_server_shutdown_nowait(srv);
    else
        kill(main_pid, SIGTERM);
}

static int install_stop_watcher(void)
{
    static bool installed;
    if (installed)
        return 0;
    main_pid = getpid();
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGHUP);
    int rc = pthread_sigmask(SIG_BLOCK, &stop_set, &mask_before);
    /*
     * Wait until the watcher runs its own code. A new thread's start-up
     * allocates and frees before it gets there (under ASan a thread's first
     * free takes the allocator's lock for quarantine batches, its cache
     * being empty); the prefork workers are forked right after the
     * listening line, and a worker forked in that window inherited the lock
     * held by a thread it does not have. Nothing showed until its first
     * big run of frees, the rebuild after a SIGHUP: it hung there for good
     * (integration.tls's test_sighup_reload_good_then_bad under ASan and
     * load; the pthread_atfork lock below cannot cover this, the thread is
     * not in our code yet). glibc's malloc is fork-safe; libasan's is not.
     */
    static sem_t started;
    if (rc == 0 && sem_init(&started, 0, 0) < 0)
        rc = errno;
    pthread_t watcher;
    if (rc == 0)
        rc = pthread_create(&watcher, NULL, watch_stop_signals, &started);
    if (rc != 0) {
        pthread_sigmask(SIG_SETMASK, &mask_before, NULL);
        return -rc;
    }
    while (sem_wait(&started) < 0 && errno == EINTR)
        ;
    /* (never destroyed: the watcher's sem_post may still be on its way out) */
    pthread_detach(watcher);
    pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);
    installed = true;
    return 0;
}

/* A server holds a descriptor per connection: the soft limit (often 1024)
 * is what a flood reaches first, so take all the hard limit allows. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* --user: after binding, become NAME for good (groups, gid, then uid: the
 * order in which each step is still allowed). A unix socket file we made
 * becomes NAME's, so the server can still remove it at exit; an inherited
 * one (systemd:, fd:N) is not ours to give away. */
static int drop_privileges(cli_server *c, ss_server *srv, bool own_file)
{
    struct passwd *pw = getpwnam(c->user_name);
    if (pw == NULL) {
        cli_error(c->cmd, "--user %s: no such user", c->user_name);
        return CLI_USAGE;
    }
    const ss_addr *a = ss_server_address(srv);
    if (own_file && a->u.sa.sa_family == AF_UNIX && a->len > sizeof(sa_family_t) &&
        a->u.un.sun_path[0] != '\0') {
        /* never chown by path: see ss_server_chown_unix_file */
        int rc = ss_server_chown_unix_file(srv, pw->pw_uid, pw->pw_gid);
        if (rc < 0) {
            cli_error(c->cmd, "--user %s: cannot give %s to it: %s", c->user_name,
                      a->u.un.sun_path,
                      rc == -ENOTSOCK ? "it is no longer the socket this server bound "
                                        "(replaced since?)"
                                      : ss_strerror(rc));
            return CLI_RUNTIME;
        }
    }
    if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
        setuid(pw->pw_uid) < 0) {
        cli_error(c->cmd, "--user %s: cannot become it: %s", c->user_name, strerror(errno));
        return CLI_RUNTIME;
    }
    /* and there is no way back */
    if (pw->pw_uid != 0 && (setuid(0) == 0 || geteuid() == 0)) {
        cli_error(c->cmd, "--user %s: root privileges could be regained; stopping",
                  c->user_name);
        return CLI_RUNTIME;
    }
    return CLI_OK;
}

/* What cli_server_check built, when no server will take it. */
static void release_built(cli_server *c)
{
    ss_tls_ctx_free(c->tls);
    c->tls = c->opts.tls = NULL;
    ss_access_free(c->access);
    c->access = NULL;
}

int cli_server_start(cli_server *c, const char *address, const ss_handler *handler,
                     ss_server **out)
{
    ss_error err = {0};
    *out = NULL;
    int wrc = install_stop_watcher();
    if (wrc < 0) {
        cli_error(c->cmd, "cannot start the signal watcher: %s", strerror(-wrc));
        release_built(c);
        return CLI_RUNTIME;
    }
    raise_fd_limit();
    int rc = ss_server_new(out, address, handler, &c->opts, &err);
    if (rc < 0) {
        *out = NULL;
        release_built(c);
        if (rc == SS_EUNSUPPORTED && c->opts.model == SS_MODEL_EVENT)
            /* the library is built without the event engine (not landed yet) */
            return cli_usage_error(c->cmd, "--model event is not available in this build "
                                           "(use serial, threading, forking, pool or prefork)");
        if (err.msg[0])
            cli_error(NULL, "%s", err.msg);
        else
            cli_error(c->cmd, "cannot serve on %s: %s", address, ss_strerror(rc));
        return rc == SS_EBADADDR || rc == SS_EUSAGE ? CLI_USAGE : CLI_RUNTIME;
    }
    if (c->access != NULL) {
        ss_server_set_access(*out, c->access); /* the server owns it now */
        c->access = NULL;
    }
    if (c->user_name != NULL) {
        int drc = drop_privileges(c, *out, !ss_addr_is_inherited(address));
        if (drc != CLI_OK) {
            ss_server_free(*out);
            *out = NULL;
            release_built(c);
            return drc;
        }
    }
    pthread_mutex_lock(&running_lock);
    running_server = *out;
    running_cli = c;
    pthread_mutex_unlock(&running_lock);
    char bound[SS_ADDR_STRLEN];
    if (ss_addr_format(ss_server_address(*out), bound, sizeof bound) < 0)
        snprintf(bound, sizeof bound, "%s", address);
    fprintf(stderr, "sockserve: listening on %s\n", bound);
    fflush(stderr);
    return CLI_OK;
}

int cli_server_run(cli_server *c, ss_server *srv)
{
    int rc = 0;
    if (atomic_load(&stop_signals) == 0) /* a signal may have come before we got here */
        rc = ss_server_serve_forever(srv);
    if (rc < 0)
        cli_error(c->cmd, "server stopped: %s", ss_strerror(rc));
    ss_server_close(srv); /* drains for up to --drain-timeout */
    pthread_mutex_lock(&running_lock);
    running_server = NULL;
    running_cli = NULL;
    pthread_mutex_unlock(&running_lock);
    ss_server_free(srv);
    ss_tls_ctx_free(c->tls); /* after the server: its connections used it */
    c->tls = NULL;
    return rc < 0 ? CLI_RUNTIME : CLI_OK;
}

int cli_server_main(cli_server *c, const char *address, const ss_handler *handler)
{
    ss_server *srv;
    int rc = cli_server_start(c, address, handler, &srv);
    if (rc != CLI_OK)
        return rc;
    return cli_server_run(c, srv);
}
