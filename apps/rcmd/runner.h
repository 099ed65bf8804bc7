/* SPDX-License-Identifier: MIT */
/*
 * runner.h — start a command the way docs/rcmd-protocol.md §7 asks: its own
 * process group, stdin/stdout/stderr on pipes (or /dev/null), a clean
 * environment, none of the server's descriptors; and end it without leaving
 * a process behind.
 */
#ifndef SS_RCMD_RUNNER_H
#define SS_RCMD_RUNNER_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct rcmd_child {
    pid_t pid;  /* the command's reaper (its parent, a child subreaper, which
                   exits with its status once every descendant is dead); also
                   the process group id */
    bool reaped;/* pid is reaped: never signalled again (it may be reused) */
    int in_fd;  /* write end of its stdin, or -1 (then /dev/null) */
    int out_fd; /* read end of its stdout, or -1 */
    int err_fd; /* read end of its stderr, or -1 (then /dev/null) */
    int exit_fd;/* readable once the main process has ended (a pidfd), or -1
                   on a kernel without pidfd_open (< 5.3): then poll for it */
} rcmd_child;

enum { RCMD_RUN_STDIN = 1, RCMD_RUN_STDOUT = 2, RCMD_RUN_STDERR = 4 };

/*
 * Start argv (execvp-style lookup on the clean PATH) or, with `shell`,
 * `/bin/sh -c argv[0]`. `pipes` says which standard streams get a pipe; the
 * others are /dev/null. The parent's ends are close-on-exec and
 * non-blocking. Returns 0 or a negative errno (fork, pipe, EMFILE...).
 * An exec failure is reported by the child itself: a line on its stderr and
 * exit 127 (not found) or 126.
 */
int rcmd_spawn(rcmd_child *c, bool shell, char *const argv[], int pipes);

/* kill(-pgid, sig) (the reaper ignores it; the command and its group get
 * it). SIGKILL instead asks the reaper to kill every descendant, in the
 * group or not (setsid, double fork), and exit. Nothing once reaped. */
void rcmd_signal_group(const rcmd_child *c, int sig);

/* Non-blocking reap of the main process (the reaper): 1 and *status (the
 * command's own: the reaper exits with it) when it has ended, 0 while it
 * runs. By then no descendant of the command is left; should the reaper
 * have been killed from outside, its group is killed *before* the reap,
 * while the group id cannot be reused. Never signals anything after. */
int rcmd_try_reap(rcmd_child *c, int *status);

/* Kill everything of the command (the reaper's sweep; SIGKILL to reaper
 * and group if it does not finish in 5 s), reap the main process and close
 * every pipe end still open. *status, when not NULL, gets the status of a
 * process reaped here (untouched if it was reaped before). Safe twice. */
void rcmd_child_destroy(rcmd_child *c, int *status);

/* Wall clock in milliseconds (CLOCK_MONOTONIC). */
long long rcmd_runner_now_ms(void);

#endif
