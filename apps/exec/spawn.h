/* SPDX-License-Identifier: MIT */
/*
 * spawn.h — start the program of `sockserve exec` for one connection, wait
 * for it, and end it without leaving anything behind.
 *
 * The program runs in a process group of its own (its pid is the group id)
 * with:
 *   - fd 0 and 1 the connection (made blocking), fd 2 the server's stderr,
 *     and no other descriptor (close_range above 2, whatever a library or
 *     the server opened without close-on-exec);
 *   - every signal at its default action and an empty signal mask (the
 *     server ignores SIGPIPE and blocks SIGINT/SIGTERM/SIGHUP; an ignored
 *     disposition would survive exec);
 *   - the open-files limit the server was started with (it raises its own);
 *   - SIGKILL when its parent dies (PR_SET_PDEATHSIG): a server killed
 *     hard leaves no program running unsupervised.
 * Everything the child needs is prepared before fork(): the server may be
 * threaded, so between fork and exec the child makes only
 * async-signal-safe calls.
 *
 * The group is signalled only while its leader is not reaped (an exited
 * leader is kept as a zombie until then, so its id, the group's id, cannot
 * be reused): nothing unrelated is ever hit.
 */
#ifndef SS_APPS_EXEC_SPAWN_H
#define SS_APPS_EXEC_SPAWN_H

#include "sockserve.h"

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

/*
 * Find `prog` as execvp would, once, at start: with a '/' it is taken as
 * given; else each directory of `path_env` (NULL or empty:
 * "/usr/local/bin:/usr/bin:/bin") is tried. It must be a regular file we
 * may execute. Writes the path to run into `out`. Returns 0, or -ENOENT /
 * -EACCES / -EISDIR / -ENAMETOOLONG with err->msg saying why, naming prog.
 */
int exec_resolve(const char *prog, const char *path_env, char *out, size_t len, ss_error *err);

typedef struct exec_spawn_opts {
    const char *path;  /* what to execve (exec_resolve's result) */
    char *const *argv; /* argv[0] = the name as the user gave it */
    char *const *envp;
    int stdio_fd;                /* becomes fd 0 and fd 1 */
    const struct rlimit *nofile; /* RLIMIT_NOFILE to restore; NULL = keep */
} exec_spawn_opts;

typedef struct exec_child {
    pid_t pid; /* the program, and its process group; -1 when none */
    int pidfd; /* readable once it has exited; -1 (poll in ticks) on
                  kernels without pidfd_open */
    bool reaped;
    int status; /* wait status, once reaped */
} exec_child;

/*
 * Start the program. Returns 0 when it runs (exec succeeded). Otherwise a
 * negative errno and *exec_failed says which: true when execve itself
 * failed (the child reported errno through a close-on-exec pipe and has
 * been reaped: c->status is its 126/127 exit), false when fork or a pipe
 * could not be had (no child). Any thread.
 */
int exec_spawn(exec_child *c, const exec_spawn_opts *o, bool *exec_failed);

/* Has the program exited? (It stays a zombie until exec_child_reap.) */
bool exec_child_exited(const exec_child *c);

/* What exec_child_wait returns. */
enum { EXEC_CHILD_EXITED = 0, EXEC_CHILD_WATCH = 1, EXEC_CHILD_DEADLINE = 2 };

/*
 * Wait until the program exits, a descriptor of `watch` (at most 8) is
 * ready (its revents set) or `deadline_ms` (exec_relay_now_ms clock; -1 =
 * none) passes. Returns one of the above, or a negative errno from poll.
 */
int exec_child_wait(exec_child *c, struct pollfd *watch, int nwatch, int64_t deadline_ms);

/* After it exited: SIGKILL what is left of its process group (background
 * children still holding the connection), then reap it. Idempotent. */
void exec_child_reap(exec_child *c);

/*
 * Stop a program that still runs: SIGTERM (and SIGCONT, should it be
 * stopped) to its group, up to `grace_ms` for it to exit, then SIGKILL to
 * the group, and reap. Returns the signal that ended it (SIGTERM if it left
 * in time, SIGKILL otherwise) or 0 when it had already exited.
 */
int exec_child_stop(exec_child *c, int grace_ms);

/* Close the pidfd (after reaping). */
void exec_child_close(exec_child *c);

#endif
