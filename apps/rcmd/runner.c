/* SPDX-License-Identifier: MIT */
/*
 * runner.c — fork + exec for rcmd, §7 of docs/rcmd-protocol.md.
 *
 * Everything the child needs (environment strings, /dev/null) is prepared
 * before fork: the server is threaded, so between fork and exec the child may
 * only make async-signal-safe calls.
 */
#include "runner.h"

#include "sockserve.h" /* ss_poll: a coroutine yields while it waits */

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CLEAN_PATH "/usr/local/bin:/usr/bin:/bin"
#define REAPER_GRACE_MS 5000 /* a sweep takes microseconds; this is the bound */

long long rcmd_runner_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct clean_env {
    char home[512], user[160], logname[160];
    char *vec[8];
} clean_env;

static void clean_env_init(clean_env *e)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    const char *name = "nobody", *dir = "/";
    if (getpwuid_r(getuid(), &pw, buf, sizeof buf, &res) == 0 && res != NULL) {
        name = res->pw_name;
        dir = res->pw_dir;
    }
    snprintf(e->home, sizeof e->home, "HOME=%s", dir);
    snprintf(e->user, sizeof e->user, "USER=%s", name);
    snprintf(e->logname, sizeof e->logname, "LOGNAME=%s", name);
    e->vec[0] = (char *)"PATH=" CLEAN_PATH;
    e->vec[1] = e->home;
    e->vec[2] = e->user;
    e->vec[3] = e->logname;
    e->vec[4] = (char *)"SHELL=/bin/sh";
    e->vec[5] = (char *)"LANG=C.UTF-8";
    e->vec[6] = NULL;
}

/* Child side only: async-signal-safe calls. */
static void write_str(int fd, const char *s)
{
    ssize_t r = write(fd, s, strlen(s));
    (void)r;
}

/* execvp with the clean PATH (execvpe would look at ours: same thing here,
 * but spelled out so the lookup never depends on the server's PATH). */
static void exec_lookup(char *const argv[], char *const envp[])
{
    const char *name = argv[0];
    if (strchr(name, '/') != NULL) {
        execve(name, argv, envp);
        return;
    }
    static const char *const dirs[] = {"/usr/local/bin", "/usr/bin", "/bin"};
    int saved = ENOENT;
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char path[4096];
        size_t dl = strlen(dirs[i]), nl = strlen(name);
        if (dl + 1 + nl + 1 > sizeof path) {
            saved = ENAMETOOLONG;
            continue;
        }
        memcpy(path, dirs[i], dl);
        path[dl] = '/';
        memcpy(path + dl + 1, name, nl + 1);
        execve(path, argv, envp);
        if (errno != ENOENT)
            saved = errno; /* e.g. EACCES: remember, as shells do */
    }
    errno = saved;
}

static void child(bool shell, char *const argv[], char *const envp[], int fds[3])
{
    /* in the reaper's process group (not a leader of its own): a signal
     * the server sends the group reaches it and its background children */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL); /* EINVAL for KILL/STOP/RT internals: fine */
    for (int i = 0; i < 3; i++) {
        if (fds[i] == i) {
            int fl = fcntl(i, F_GETFD);
            fcntl(i, F_SETFD, fl & ~FD_CLOEXEC);
        } else if (dup2(fds[i], i) < 0) {
            _exit(126);
        }
    }
    /* nothing above 2 survives exec, whatever a library opened */
    if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
    if (shell) {
        char *const sh[] = {(char *)"sh", (char *)"-c", argv[0], NULL};
        execve("/bin/sh", sh, envp);
    } else {
        exec_lookup(argv, envp);
    }
    int e = errno;
    write_str(2, "sockserve: rcmd-server: cannot run '");
    write_str(2, shell ? "/bin/sh" : argv[0]);
    write_str(2, "': ");
    write_str(2, strerror(e)); /* not strictly AS-safe; glibc's is a table lookup */
    write_str(2, "\n");
    _exit(e == ENOENT ? 127 : 126);
}

/* ---- the reaper: the command's parent, in the server's child -------------
 *
 * The server forks a small reaper (the "main process" the server sees: its
 * pid is the process group id and the pidfd); the reaper is a child
 * subreaper (PR_SET_CHILD_SUBREAPER) and forks the command. Whatever the
 * command leaves behind, setsid or double fork included, stays below the
 * reaper: orphans reparent to it, not to init. When the command has exited,
 * or when the server asks (SWEEP_SIGNAL), the reaper kills every descendant
 * it has, generation by generation, reaps them, and only then exits, with
 * the command's own status. So once the server sees the main process end,
 * nothing of the command is left, and no group is signalled after a reap.
 * Only async-signal-safe calls here: the server is threaded. */

#define SWEEP_SIGNAL SIGRTMAX /* not one a client may forward (§4 SIGNAL) */
#define SWEEP_ROUNDS 100000   /* each round reaps at least one process */

static void put_uint(char *p, unsigned v)
{
    char tmp[16];
    int n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n > 0)
        *p++ = tmp[--n];
    *p = '\0';
}

/* The reaper's direct children (it is single-threaded: one task). -1 when
 * /proc cannot tell (no procfs, or a kernel without the children file). */
static int list_children(pid_t *out, int max)
{
    char path[64] = "/proc/self/task/";
    put_uint(path + strlen(path), (unsigned)getpid());
    memcpy(path + strlen(path), "/children", sizeof "/children");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[4096];
    size_t len = 0;
    ssize_t r;
    while (len < sizeof buf && (r = read(fd, buf + len, sizeof buf - len)) != 0) {
        if (r < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        len += (size_t)r;
    }
    close(fd);
    if (len == sizeof buf) /* the last number may be cut: take it next round */
        while (len > 0 && buf[len - 1] != ' ')
            len--;
    int n = 0;
    unsigned v = 0;
    bool in_num = false;
    for (size_t i = 0; i < len && n < max; i++) {
        if (buf[i] >= '0' && buf[i] <= '9') {
            v = v * 10 + (unsigned)(buf[i] - '0');
            in_num = true;
        } else if (in_num) {
            out[n++] = (pid_t)v;
            v = 0;
            in_num = false;
        }
    }
    if (in_num && n < max)
        out[n++] = (pid_t)v;
    return n;
}

/* Kill every descendant: SIGKILL to each direct child (only we reap those,
 * so their pids cannot be reused meanwhile), reap, and again: the children
 * of the dead reparent to us (we are their subreaper). */
static void sweep(pid_t cmd, int *cmd_status, bool *cmd_done)
{
    for (int round = 0; round < SWEEP_ROUNDS; round++) {
        pid_t kids[512];
        int n = list_children(kids, 512);
        if (n < 0)
            return; /* cannot see them: leave what is left to the server */
        for (int i = 0; i < n; i++)
            kill(kids[i], SIGKILL);
        int st;
        pid_t p = waitpid(-1, &st, n > 0 ? 0 : WNOHANG);
        if (p < 0 && errno == EINTR)
            continue;
        if (p < 0 || (p == 0 && n == 0))
            return; /* ECHILD: nobody left */
        do {
            if (p == cmd) {
                *cmd_status = st;
                *cmd_done = true;
            }
        } while ((p = waitpid(-1, &st, WNOHANG)) > 0);
    }
}

static void reaper(bool shell, char *const argv[], char *const envp[], int fds[3])
{
    setpgid(0, 0); /* the command's group; the server calls it too */
    sigset_t wait_set;
    sigemptyset(&wait_set);
    sigaddset(&wait_set, SIGCHLD);
    sigaddset(&wait_set, SWEEP_SIGNAL);
    sigprocmask(SIG_SETMASK, &wait_set, NULL); /* before the fork: none lost */
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL);
    /* what the server (or the command) sends the group is for the command */
    static const int forwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGTERM, SIGPIPE};
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        signal(forwarded[i], SIG_IGN);
    (void)prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    pid_t cmd = fork();
    if (cmd == 0)
        child(shell, argv, envp, fds);
    /* hold none of the pipes: their end of file is the command's */
    if (syscall(SYS_close_range, 0U, ~0U, 0U) != 0)
        for (int fd = 0; fd < 1024; fd++)
            close(fd);
    if (cmd < 0)
        _exit(255);
    int status = 0;
    bool done = false, asked = false;
    while (!done && !asked) {
        int st;
        pid_t p;
        while ((p = waitpid(-1, &st, WNOHANG)) > 0)
            if (p == cmd) {
                status = st;
                done = true;
            }
        if (done)
            break;
        siginfo_t si;
        int sig = sigwaitinfo(&wait_set, &si);
        if (sig == SWEEP_SIGNAL)
            asked = true;
    }
    sweep(cmd, &status, &done);
    if (done && WIFSIGNALED(status)) {
        /* die of the same signal, so the server reports it; no core of ours */
        int sig = WTERMSIG(status);
        struct rlimit none = {0, 0};
        setrlimit(RLIMIT_CORE, &none);
        signal(sig, SIG_DFL);
        sigset_t only;
        sigemptyset(&only);
        sigaddset(&only, sig);
        sigprocmask(SIG_UNBLOCK, &only, NULL);
        kill(getpid(), sig);
    }
    _exit(done && WIFEXITED(status) ? WEXITSTATUS(status) : 255);
}

int rcmd_spawn(rcmd_child *c, bool shell, char *const argv[], int pipes)
{
    clean_env env;
    clean_env_init(&env);
    int p[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0)
        return -errno;
    int rc = 0;
    for (int i = 0; i < 3; i++) {
        if (pipes & (1 << i)) {
            if (pipe2(p[i], O_CLOEXEC) != 0) {
                rc = -errno;
                goto fail;
            }
        }
    }
    int fds[3];
    fds[0] = p[0][0] >= 0 ? p[0][0] : devnull;
    fds[1] = p[1][1] >= 0 ? p[1][1] : devnull;
    fds[2] = p[2][1] >= 0 ? p[2][1] : devnull;
    pid_t pid = fork();
    if (pid < 0) {
        rc = -errno;
        goto fail;
    }
    if (pid == 0)
        reaper(shell, argv, env.vec, fds);
    setpgid(pid, pid); /* both sides call it: no race with an early kill */
    close(devnull);
    c->pid = pid;
    c->reaped = false;
    /* A pidfd turns "has it exited?" into one more descriptor to poll: no
     * SIGCHLD (which belongs to no thread of a threaded server) and no
     * periodic waitpid. Always close-on-exec. */
    c->exit_fd = (int)syscall(SYS_pidfd_open, pid, 0);
    c->in_fd = p[0][1];
    c->out_fd = p[1][0];
    c->err_fd = p[2][0];
    for (int i = 0; i < 3; i++) {
        int child_end = i == 0 ? p[i][0] : p[i][1];
        if (child_end >= 0)
            close(child_end);
    }
    int mine[3] = {c->in_fd, c->out_fd, c->err_fd};
    for (int i = 0; i < 3; i++)
        if (mine[i] >= 0)
            fcntl(mine[i], F_SETFL, fcntl(mine[i], F_GETFL) | O_NONBLOCK);
    return 0;
fail:
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++)
            if (p[i][j] >= 0)
                close(p[i][j]);
    close(devnull);
    return rc;
}

void rcmd_signal_group(const rcmd_child *c, int sig)
{
    if (c->pid <= 0 || c->reaped)
        return; /* never a group whose leader we reaped: its id may be reused */
    if (sig == SIGKILL) {
        /* KILL to the group would kill the reaper before it sweeps what
         * left the group (setsid): ask it to kill everything instead (and
         * wake it, should the command have stopped the group) */
        kill(c->pid, SWEEP_SIGNAL);
        kill(c->pid, SIGCONT);
        return;
    }
    kill(-c->pid, sig);
}

int rcmd_try_reap(rcmd_child *c, int *status)
{
    if (c->pid <= 0 || c->reaped)
        return 1;
    /* Has it ended? Ask without reaping: while the main process is an
     * unreaped zombie its pid (= the group id) cannot be reused. Normally the
     * reaper left nothing; if it was killed from outside, what is left of
     * its group is killed now, still before the reap. */
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, (id_t)c->pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid == 0)
        return 0; /* still running */
    kill(-c->pid, SIGKILL);
    pid_t r;
    do
        r = waitpid(c->pid, status, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == c->pid || (r < 0 && errno == ECHILD)) {
        c->reaped = true;
        return 1;
    }
    return 0;
}

/* Wait up to `ms` for the main process to end (its pidfd, or polling). */
static bool wait_exit(rcmd_child *c, int ms)
{
    long long until = rcmd_runner_now_ms() + ms;
    for (;;) {
        siginfo_t info;
        memset(&info, 0, sizeof info);
        if (waitid(P_PID, (id_t)c->pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
            info.si_pid != 0)
            return true;
        long long left = until - rcmd_runner_now_ms();
        if (left <= 0)
            return false;
        if (c->exit_fd >= 0) {
            struct pollfd p = {.fd = c->exit_fd, .events = POLLIN};
            (void)ss_poll(&p, 1, (int)left);
        } else {
            struct timespec ts = {0, 20 * 1000000};
            nanosleep(&ts, NULL);
        }
    }
}

void rcmd_child_destroy(rcmd_child *c, int *status)
{
    if (c->pid > 0 && !c->reaped) {
        int st = 0;
        rcmd_signal_group(c, SIGKILL); /* the reaper sweeps, then exits */
        if (!wait_exit(c, REAPER_GRACE_MS)) {
            /* a reaper that cannot finish (stuck in the kernel): kill it and
             * its group, at least, before the reap */
            kill(c->pid, SIGKILL);
            kill(-c->pid, SIGKILL);
        }
        kill(-c->pid, SIGKILL); /* before the reap: the zombie pins the id */
        while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR)
            ;
        c->reaped = true;
        if (status != NULL)
            *status = st;
    }
    int *fds[4] = {&c->in_fd, &c->out_fd, &c->err_fd, &c->exit_fd};
    for (int i = 0; i < 4; i++)
        if (*fds[i] >= 0) {
            close(*fds[i]);
            *fds[i] = -1;
        }
}
