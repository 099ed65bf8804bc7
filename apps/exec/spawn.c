/* SPDX-License-Identifier: MIT */
/* spawn.c — fork + exec of one connection's program (spawn.h). */
#include "spawn.h"

#include "relay.h" /* exec_relay_now_ms: one clock for every deadline */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"
#define NO_PIDFD_TICK_MS 50
#define MAX_WATCH 8

/* ---- finding the program ------------------------------------------------ */

/* 0 when `path` is a regular file we may execute, else a negative errno. */
static int check_runnable(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return -errno;
    if (S_ISDIR(st.st_mode))
        return -EISDIR;
    if (!S_ISREG(st.st_mode))
        return -EACCES; /* execve refuses devices, fifos, sockets */
    if (access(path, X_OK) < 0)
        return -errno;
    return 0;
}

static int resolve_fail(ss_error *err, int code, const char *prog, const char *why)
{
    if (err != NULL) {
        err->code = code;
        snprintf(err->msg, sizeof err->msg, "cannot run '%s': %s", prog, why);
    }
    return code;
}

int exec_resolve(const char *prog, const char *path_env, char *out, size_t len, ss_error *err)
{
    if (prog[0] == '\0')
        return resolve_fail(err, -ENOENT, prog, "empty program name");
    if (strchr(prog, '/') != NULL) {
        int rc = check_runnable(prog);
        if (rc < 0)
            return resolve_fail(err, rc, prog, strerror(-rc));
        if (strlen(prog) >= len)
            return resolve_fail(err, -ENAMETOOLONG, prog, strerror(ENAMETOOLONG));
        memcpy(out, prog, strlen(prog) + 1);
        return 0;
    }
    const char *dirs = path_env != NULL && path_env[0] != '\0' ? path_env : DEFAULT_PATH;
    int seen = -ENOENT; /* as execvp: a file found but not runnable says so */
    for (const char *p = dirs;;) {
        const char *end = strchr(p, ':');
        size_t dl = end != NULL ? (size_t)(end - p) : strlen(p);
        /* an empty entry means the current directory, as for execvp */
        int n = dl == 0 ? snprintf(out, len, "./%s", prog)
                        : snprintf(out, len, "%.*s/%s", (int)dl, p, prog);
        if (n > 0 && (size_t)n < len) {
            int rc = check_runnable(out);
            if (rc == 0)
                return 0;
            if (rc != -ENOENT && rc != -ENOTDIR)
                seen = rc;
        }
        if (end == NULL)
            break;
        p = end + 1;
    }
    out[0] = '\0';
    if (seen == -ENOENT)
        return resolve_fail(err, -ENOENT, prog, "not found in PATH");
    return resolve_fail(err, seen, prog, strerror(-seen));
}

/* ---- the child, between fork and exec: async-signal-safe only ----------- */

static void close_from(int lowest)
{
    if (syscall(SYS_close_range, (unsigned)lowest, ~0U, 0U) == 0)
        return;
    struct rlimit rl; /* a kernel before 5.9: every slot the limit allows */
    int top =
        getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1048576 ? (int)rl.rlim_cur : 1048576;
    for (int fd = lowest; fd < top; fd++)
        close(fd);
}

static void put_fd(int from, int to)
{
    if (from == to)
        fcntl(to, F_SETFD, 0); /* keep it across exec */
    else
        dup2(from, to); /* dup2 clears close-on-exec on `to` */
}

static _Noreturn void child(const exec_spawn_opts *o, pid_t parent, int err_w)
{
    /* its own group first: a signal for the group must reach it from the
     * start (the parent calls setpgid too, so neither side races) */
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) /* the parent died before prctl took */
        _exit(126);
    /* Straight to the kernel: libc refuses to touch the real-time signals
     * it keeps for itself (32 and 33 in glibc), yet an ignored one would be
     * inherited across exec all the same. An all-zero kernel sigaction is
     * SIG_DFL, no flags, empty mask, on every architecture. */
    static const unsigned long dfl[8];
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            syscall(SYS_rt_sigaction, sig, dfl, NULL, (size_t)((NSIG - 1) / 8));
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    int conn = o->stdio_fd;
    if (conn <= 2) /* keep it clear of the slots it is copied into */
        conn = fcntl(conn, F_DUPFD, 3);
    /* the connection's description is shared with the server's copy: the
     * program expects blocking reads and writes */
    int fl = fcntl(conn, F_GETFL);
    if (fl >= 0)
        fcntl(conn, F_SETFL, fl & ~O_NONBLOCK);
    put_fd(conn, 0);
    put_fd(conn, 1);
    fcntl(2, F_SETFD, 0);
    /* the error pipe goes to fd 3 (close-on-exec: exec success closes it),
     * and nothing else above 2 survives */
    if (err_w != 3) {
        dup2(err_w, 3);
        fcntl(3, F_SETFD, FD_CLOEXEC);
    }
    close_from(4);
    if (o->nofile != NULL)
        setrlimit(RLIMIT_NOFILE, o->nofile);
    execve(o->path, o->argv, o->envp);
    int e = errno;
    (void)!write(3, &e, sizeof e);
    _exit(e == ENOENT ? 127 : 126);
}

/* ---- the parent --------------------------------------------------------- */

static void reap_now(exec_child *c)
{
    int st = 0;
    pid_t r;
    do
        r = waitpid(c->pid, &st, 0);
    while (r < 0 && errno == EINTR);
    c->status = r == c->pid ? st : 0;
    c->reaped = true;
}

int exec_spawn(exec_child *c, const exec_spawn_opts *o, bool *exec_failed)
{
    *exec_failed = false;
    c->pid = -1;
    c->pidfd = -1;
    c->reaped = false;
    c->status = 0;
    int ep[2];
    if (pipe2(ep, O_CLOEXEC) < 0)
        return -errno;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(ep[0]);
        close(ep[1]);
        return -e;
    }
    if (pid == 0)
        child(o, parent, ep[1]);
    close(ep[1]);
    setpgid(pid, pid);
    c->pid = pid;
    /* end of file: execve closed the pipe, the program runs; an int: the
     * errno of a failed execve */
    int e = 0;
    ssize_t n;
    do
        n = read(ep[0], &e, sizeof e);
    while (n < 0 && errno == EINTR);
    close(ep[0]);
    if (n == (ssize_t)sizeof e) {
        reap_now(c);
        *exec_failed = true;
        return e > 0 ? -e : -ENOEXEC;
    }
    /* A pidfd makes "has it exited?" one more descriptor to poll: no
     * SIGCHLD (which no thread of a threaded server owns). */
    c->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    return 0;
}

bool exec_child_exited(const exec_child *c)
{
    if (c->pid <= 0 || c->reaped)
        return true;
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, (id_t)c->pid, &info, WEXITED | WNOHANG | WNOWAIT) < 0)
        return errno != EINTR; /* ECHILD: gone (reaped elsewhere) */
    return info.si_pid != 0;
}

int exec_child_wait(exec_child *c, struct pollfd *watch, int nwatch, int64_t deadline_ms)
{
    if (nwatch < 0 || nwatch > MAX_WATCH)
        return -EINVAL;
    for (;;) {
        if (exec_child_exited(c))
            return EXEC_CHILD_EXITED;
        int64_t now = exec_relay_now_ms();
        if (deadline_ms >= 0 && now >= deadline_ms)
            return EXEC_CHILD_DEADLINE;
        struct pollfd p[1 + MAX_WATCH];
        p[0] = (struct pollfd){.fd = c->pidfd, .events = POLLIN};
        for (int i = 0; i < nwatch; i++) {
            p[1 + i] = watch[i];
            p[1 + i].revents = 0;
        }
        int timeout = -1;
        if (deadline_ms >= 0)
            timeout = deadline_ms - now > 3600 * 1000 ? 3600 * 1000 : (int)(deadline_ms - now);
        if (c->pidfd < 0 && (timeout < 0 || timeout > NO_PIDFD_TICK_MS))
            timeout = NO_PIDFD_TICK_MS;
        if (ss_poll(p, (nfds_t)(1 + nwatch), timeout) < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        bool woken = false;
        for (int i = 0; i < nwatch; i++) {
            watch[i].revents = p[1 + i].revents;
            woken |= watch[i].revents != 0;
        }
        if (woken && !exec_child_exited(c))
            return EXEC_CHILD_WATCH;
    }
}

void exec_child_reap(exec_child *c)
{
    if (c->pid <= 0 || c->reaped)
        return;
    /* the leader is a zombie, not reaped: the group id is still ours */
    kill(-c->pid, SIGKILL);
    reap_now(c);
}

int exec_child_stop(exec_child *c, int grace_ms)
{
    if (c->pid <= 0 || c->reaped)
        return 0;
    if (exec_child_exited(c)) {
        exec_child_reap(c);
        return 0;
    }
    kill(-c->pid, SIGTERM);
    kill(-c->pid, SIGCONT); /* a stopped group would never see the TERM */
    int rc = exec_child_wait(c, NULL, 0, exec_relay_now_ms() + grace_ms);
    int used = rc == EXEC_CHILD_EXITED ? SIGTERM : SIGKILL;
    kill(-c->pid, SIGKILL); /* the rest of the group, or all of it */
    reap_now(c);
    return used;
}

void exec_child_close(exec_child *c)
{
    if (c->pidfd >= 0) {
        close(c->pidfd);
        c->pidfd = -1;
    }
}
