/*
 * runner.c — fork + exec for rcmd, §7 of docs/rcmd-protocol.md.
 *
 * Everything the child needs (environment strings, /dev/null) is prepared
 * before fork: the server is threaded, so between fork and exec the child may
 * only make async-signal-safe calls.
 */
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CLEAN_PATH "/usr/local/bin:/usr/bin:/bin"

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
    setpgid(0, 0);
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
        child(shell, argv, env.vec, fds);
    setpgid(pid, pid); /* both sides call it: no race with an early kill */
    close(devnull);
    c->pid = pid;
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
    if (c->pid > 0)
        kill(-c->pid, sig);
}

int rcmd_try_reap(rcmd_child *c, int *status)
{
    if (c->pid <= 0)
        return 1;
    /* Has it ended? Ask without reaping: while the main process is an
     * unreaped zombie its pid (= the group id) cannot be reused, so killing
     * what is left of the group now hits only the command's own processes. */
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, (id_t)c->pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid == 0)
        return 0; /* still running */
    kill(-c->pid, SIGKILL); /* background children die with it */
    pid_t r;
    do
        r = waitpid(c->pid, status, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == c->pid) {
        c->pid = -c->pid; /* reaped; keep the group id for a last kill */
        return 1;
    }
    return 0;
}

void rcmd_child_destroy(rcmd_child *c, int *status)
{
    int st = 0;
    if (c->pid > 0) {
        kill(-c->pid, SIGKILL);
        while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR)
            ;
        c->pid = 0;
    } else if (c->pid < 0) {
        kill(c->pid, SIGKILL); /* the group of a main process reaped before */
        c->pid = 0;
    }
    if (status != NULL)
        *status = st;
    int *fds[4] = {&c->in_fd, &c->out_fd, &c->err_fd, &c->exit_fd};
    for (int i = 0; i < 4; i++)
        if (*fds[i] >= 0) {
            close(*fds[i]);
            *fds[i] = -1;
        }
}
